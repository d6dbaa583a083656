//! Private keys and CSRs for one certificate, and the check that an issued leaf is for
//! our key, our names and the chain that came with it.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use secrecy::{ExposeSecret, SecretString};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::model::{DomainName, KeyType};

/// A fresh (or stored) private key and a CSR for it. `Debug` never shows the key.
pub struct KeyAndCsr {
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: SecretString,
    pub csr_pem: String,
    /// The CSR's DER bytes: what Sectigo's DCV hashes are computed over.
    pub csr_der: Vec<u8>,
}

impl fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("key_pem", &"[REDACTED]")
            .field("csr_pem", &self.csr_pem)
            .field("csr_der", &format_args!("<{} bytes>", self.csr_der.len()))
            .finish()
    }
}

/// What [`verify_leaf`] learned about an issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Serial number as lower-case hex of its DER bytes.
    pub serial_hex: String,
    /// DNS names in the subjectAltName, as the certificate lists them.
    pub sans: Vec<String>,
}

/// Errors from key, CSR and leaf handling. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("no DNS names given: a CSR needs at least one (the first becomes the common name)")]
    NoNames,
    #[error("generating a {key_type} private key failed: {reason}")]
    KeyGeneration { key_type: KeyType, reason: String },
    #[error(
        "the stored private key cannot be used: {reason}; it must be an unencrypted PKCS#8 PEM \
         (BEGIN PRIVATE KEY) ECDSA P-256/P-384 or RSA key"
    )]
    BadKey { reason: String },
    #[error("building the CSR for {names} failed: {reason}")]
    Csr { names: String, reason: String },
    #[error("the issued certificate cannot be read: {reason}")]
    LeafParse { reason: String },
    #[error("chain certificate {index} from the CA cannot be read: {reason}")]
    ChainParse { index: usize, reason: String },
    #[error(
        "the issued certificate is for a different public key than the order's private key; \
         it is not installed (was the CSR replaced at the CA?)"
    )]
    KeyMismatch,
    #[error("certificate names [{got}] differ from ordered [{want}]; it is not installed")]
    NameMismatch { got: String, want: String },
    #[error(
        "the issued certificate (issuer `{issuer}`) is not signed by the first chain certificate \
         (`{chain_subject}`): {reason}; it is not installed"
    )]
    NotSignedByChain {
        issuer: String,
        chain_subject: String,
        reason: String,
    },
    #[error(
        "the CA sent no chain certificates with the issued certificate (its issuer `{issuer}` \
         is missing); a certificate without its issuer is not installed"
    )]
    NoChain { issuer: String },
    #[error(
        "chain certificate {index} (`{subject}`, issued by `{issuer}`) is not signed by the next \
         chain certificate (`{next_subject}`): {reason}; it is not installed"
    )]
    ChainBroken {
        index: usize,
        subject: String,
        issuer: String,
        next_subject: String,
        reason: String,
    },
}

/// Make a new private key of `key_type` and a CSR with CN = `names[0]` and
/// SAN = all `names` (wildcards allowed). RSA generation is CPU-bound and can take
/// seconds (rsa-4096): call it from `tokio::task::spawn_blocking`.
pub fn generate(key_type: KeyType, names: &[DomainName]) -> Result<KeyAndCsr, CsrError> {
    if names.is_empty() {
        return Err(CsrError::NoNames);
    }
    let key_pem = new_key_pem(key_type)?;
    csr_from_key(&key_pem, names)
}

/// A CSR for a stored key (PKCS#8 PEM), e.g. to re-order with the same key.
pub fn csr_from_key(key_pem: &SecretString, names: &[DomainName]) -> Result<KeyAndCsr, CsrError> {
    let first = names.first().ok_or(CsrError::NoNames)?;
    let key = load_key(key_pem)?;
    let list = names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let csr_err = |e: rcgen::Error| CsrError::Csr {
        names: list.clone(),
        reason: e.to_string(),
    };
    let sans: Vec<String> = names.iter().map(|n| n.as_str().to_string()).collect();
    let mut params = CertificateParams::new(sans).map_err(csr_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first.as_str());
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).map_err(csr_err)?;
    Ok(KeyAndCsr {
        key_pem: key_pem.clone(),
        csr_pem: csr.pem().map_err(csr_err)?,
        csr_der: csr.der().to_vec(),
    })
}

fn new_key_pem(key_type: KeyType) -> Result<SecretString, CsrError> {
    let fail = |reason: String| CsrError::KeyGeneration { key_type, reason };
    let bits = match key_type {
        KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
            let alg = if key_type == KeyType::EcdsaP256 {
                &rcgen::PKCS_ECDSA_P256_SHA256
            } else {
                &rcgen::PKCS_ECDSA_P384_SHA384
            };
            let kp = KeyPair::generate_for(alg).map_err(|e| fail(e.to_string()))?;
            return Ok(SecretString::from(kp.serialize_pem()));
        }
        KeyType::Rsa2048 => 2048,
        KeyType::Rsa3072 => 3072,
        KeyType::Rsa4096 => 4096,
    };
    // ring cannot generate RSA keys: the `rsa` crate does, and rcgen loads its PKCS#8.
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key =
        rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).map_err(|e| fail(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| fail(format!("PKCS#8 encoding: {e}")))?;
    Ok(SecretString::from(pem.as_str()))
}

fn load_key(key_pem: &SecretString) -> Result<KeyPair, CsrError> {
    // rcgen's parse errors describe the format problem, not the key bytes.
    KeyPair::from_pem(key_pem.expose_secret()).map_err(|e| CsrError::BadKey {
        reason: e.to_string(),
    })
}

/// Check an issued leaf before installing it: it is for our key, its SAN DNS names are
/// exactly `names` (case-insensitive, any order), and it verifies against the chain the
/// CA sent: at least one chain certificate, the leaf signed by `chain_pem[0]`, each chain
/// certificate signed by the next (a self-signed root at the end, or no root, is fine),
/// and every PEM block complete with nothing else around it (see [`super::pem`]). The
/// leaf string holds exactly one certificate; a chain string may hold several, in order.
pub fn verify_leaf(
    leaf_pem: &str,
    chain_pem: &[String],
    key_pem: &SecretString,
    names: &[DomainName],
) -> Result<LeafInfo, CsrError> {
    let leaf_der = super::pem::parse_one(leaf_pem)
        .map_err(|reason| CsrError::LeafParse { reason })?
        .der;
    let leaf = parse_cert(&leaf_der).map_err(|reason| CsrError::LeafParse { reason })?;

    let key = load_key(key_pem)?;
    if leaf.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(CsrError::KeyMismatch);
    }

    let sans = dns_sans(&leaf).map_err(|reason| CsrError::LeafParse { reason })?;
    let got: BTreeSet<String> = sans.iter().map(|s| s.to_ascii_lowercase()).collect();
    if let Err((got, want)) = same_names(&got, names) {
        return Err(CsrError::NameMismatch { got, want });
    }

    verify_chain(&leaf, chain_pem)?;

    let validity = leaf.validity();
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::<Utc>::from_timestamp(t.timestamp(), 0).ok_or_else(|| CsrError::LeafParse {
            reason: format!("validity time {t} is out of range"),
        })
    };
    Ok(LeafInfo {
        not_before: time(validity.not_before)?,
        not_after: time(validity.not_after)?,
        serial_hex: hex::encode(leaf.raw_serial()),
        sans,
    })
}

/// The leaf signed by `chain_pem[0]`, each chain certificate by the next one.
fn verify_chain(leaf: &X509Certificate<'_>, chain_pem: &[String]) -> Result<(), CsrError> {
    if chain_pem.is_empty() {
        return Err(CsrError::NoChain {
            issuer: leaf.issuer().to_string(),
        });
    }
    // Each entry is normally one certificate; a bundle of several is read in order.
    let mut ders = Vec::new();
    for (index, pem) in chain_pem.iter().enumerate() {
        let certs = super::pem::parse_certificates(pem).map_err(|e| CsrError::ChainParse {
            index,
            reason: e.to_string(),
        })?;
        ders.extend(certs.into_iter().map(|c| c.der));
    }
    let chain = ders
        .iter()
        .enumerate()
        .map(|(index, der)| {
            parse_cert(der).map_err(|reason| CsrError::ChainParse { index, reason })
        })
        .collect::<Result<Vec<_>, _>>()?;
    leaf.verify_signature(Some(chain[0].public_key()))
        .map_err(|e| CsrError::NotSignedByChain {
            issuer: leaf.issuer().to_string(),
            chain_subject: chain[0].subject().to_string(),
            reason: e.to_string(),
        })?;
    for (index, pair) in chain.windows(2).enumerate() {
        let (child, parent) = (&pair[0], &pair[1]);
        child
            .verify_signature(Some(parent.public_key()))
            .map_err(|e| CsrError::ChainBroken {
                index,
                subject: child.subject().to_string(),
                issuer: child.issuer().to_string(),
                next_subject: parent.subject().to_string(),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("not an X.509 certificate ({e})"))
}

fn dns_sans(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let ext = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName extension ({e})"))?;
    Ok(ext
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests;

/// Check an order's stored key and CSR before anything is bought with them: the key
/// parses, the CSR (DER, and the PEM sent to the CA, which must be the same bytes)
/// parses and is self-signed by that key, and its DNS names are exactly `names`. The
/// error says what is wrong, never any key material.
pub fn check_stored(
    key_pem: &SecretString,
    csr_pem: &str,
    csr_der: &[u8],
    names: &[DomainName],
) -> Result<(), String> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::FromDer;

    let key = load_key(key_pem).map_err(|e| e.to_string())?;
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|e| format!("the stored CSR (DER) is not a certificate request ({e})"))?;
    if !rest.is_empty() {
        return Err(format!(
            "the stored CSR (DER) has {} bytes after its end",
            rest.len()
        ));
    }
    csr.verify_signature()
        .map_err(|e| format!("the stored CSR's signature does not verify ({e})"))?;
    let info = &csr.certification_request_info;
    if info.subject_pki.subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err("the stored CSR is for another key than the order's private key".into());
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes())
        .map_err(|e| format!("the stored CSR (PEM) cannot be read ({e})"))?;
    if pem.label != "CERTIFICATE REQUEST" || pem.contents != csr_der {
        return Err("the stored CSR PEM is not the same request as the stored CSR DER".into());
    }
    let mut got = BTreeSet::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for g in &san.general_names {
                if let GeneralName::DNSName(d) = g {
                    got.insert(d.to_ascii_lowercase());
                }
            }
        }
    }
    if let Err((got, want)) = same_names(&got, names) {
        return Err(format!(
            "the stored CSR names {got} but the order is for {want}"
        ));
    }
    Ok(())
}

/// `got` (lower-cased names) against the order's names; on a difference both as lists.
fn same_names(got: &BTreeSet<String>, names: &[DomainName]) -> Result<(), (String, String)> {
    let want: BTreeSet<String> = names
        .iter()
        .map(|n| n.as_str().to_ascii_lowercase())
        .collect();
    if *got == want {
        return Ok(());
    }
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    Err((join(got), join(&want)))
}
