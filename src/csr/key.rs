//! TEMPORARY stand-in (replaced by the full implementation at merge): ECDSA keys and CSRs.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::model::{DomainName, KeyType};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CsrError(pub String);

pub struct KeyAndCsr {
    pub key_pem: SecretString,
    pub csr_pem: String,
    pub csr_der: Vec<u8>,
}

pub struct LeafInfo {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub serial_hex: String,
    pub sans: Vec<String>,
}

pub fn generate(_key_type: KeyType, names: &[DomainName]) -> Result<KeyAndCsr, CsrError> {
    let kp = rcgen::KeyPair::generate().map_err(|e| CsrError(e.to_string()))?;
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .map_err(|e| CsrError(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names[0].as_str());
    p.distinguished_name = dn;
    let csr = p
        .serialize_request(&kp)
        .map_err(|e| CsrError(e.to_string()))?;
    Ok(KeyAndCsr {
        key_pem: SecretString::from(kp.serialize_pem()),
        csr_pem: csr.pem().map_err(|e| CsrError(e.to_string()))?,
        csr_der: csr.der().to_vec(),
    })
}

pub fn verify_leaf(
    leaf_pem: &str,
    _chain_pem: &[String],
    key_pem: &SecretString,
    _names: &[DomainName],
) -> Result<LeafInfo, CsrError> {
    let kp =
        rcgen::KeyPair::from_pem(key_pem.expose_secret()).map_err(|e| CsrError(e.to_string()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(leaf_pem.as_bytes())
        .map_err(|e| CsrError(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| CsrError(e.to_string()))?;
    if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&kp).as_slice() {
        return Err(CsrError("certificate is for another key".into()));
    }
    let ts = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    Ok(LeafInfo {
        not_before: ts(cert.validity().not_before.timestamp()),
        not_after: ts(cert.validity().not_after.timestamp()),
        serial_hex: cert.raw_serial_as_string(),
        sans: Vec::new(),
    })
}
