//! The simulators' certificate authority: a root and an intermediate made at start-up,
//! issuing real leaf certificates for a CSR's key with exactly the ordered names.

use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls::pki_types::CertificateSigningRequestDer;

/// Root → intermediate → leaf. Not trusted by anything; for tests, benchmarks and the demo.
pub struct SimCa {
    root_pem: String,
    intermediate: CertifiedIssuer<'static, KeyPair>,
    serial: AtomicU64,
    /// How long issued leaves are valid.
    pub leaf_validity: time::Duration,
    clock: crate::clock::SharedClock,
}

#[derive(Debug, thiserror::Error)]
#[error("simulator CA: {0}")]
pub struct SimCaError(pub String);

impl SimCa {
    /// A new root and intermediate; every validity period is counted from `clock`.
    pub fn new(name: &str, clock: crate::clock::SharedClock) -> Result<Self, SimCaError> {
        let e = |e: rcgen::Error| SimCaError(e.to_string());
        let now = crate::clock::offset_now(&*clock);
        let root_key = KeyPair::generate().map_err(e)?;
        let root = CertifiedIssuer::self_signed(ca_params(&format!("{name} Root"), now)?, root_key)
            .map_err(e)?;
        let int_key = KeyPair::generate().map_err(e)?;
        let intermediate = CertifiedIssuer::signed_by(
            ca_params(&format!("{name} DV Intermediate"), now)?,
            int_key,
            &root,
        )
        .map_err(e)?;
        Ok(Self {
            root_pem: root.pem(),
            intermediate,
            serial: AtomicU64::new(1),
            leaf_validity: time::Duration::days(90),
            clock,
        })
    }

    /// Sign a leaf for the public key in `csr_der`, for `names` (first = common name).
    /// Returns leaf PEM and the chain `[intermediate, root]` as PEM.
    pub fn issue(
        &self,
        csr_der: &[u8],
        names: &[String],
    ) -> Result<(String, Vec<String>), SimCaError> {
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(
            csr_der.to_vec(),
        ))
        .map_err(|e| SimCaError(format!("CSR rejected: {e}")))?;
        let mut params = CertificateParams::new(names.to_vec())
            .map_err(|e| SimCaError(format!("bad names: {e}")))?;
        let mut dn = DistinguishedName::new();
        if let Some(cn) = names.first() {
            dn.push(DnType::CommonName, cn.as_str());
        }
        params.distinguished_name = dn;
        let now = crate::clock::offset_now(&*self.clock);
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + self.leaf_validity;
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf = params
            .signed_by(&csr.public_key, &self.intermediate)
            .map_err(|e| SimCaError(e.to_string()))?;
        Ok((
            leaf.pem(),
            vec![self.intermediate.pem(), self.root_pem.clone()],
        ))
    }

    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }
}

fn ca_params(cn: &str, now: time::OffsetDateTime) -> Result<CertificateParams, SimCaError> {
    let mut p =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| SimCaError(e.to_string()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "dcvd simulator");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_leaf_for_the_csr_key_with_the_ordered_names() {
        let ca = SimCa::new("Test", crate::clock::system()).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::new(vec!["ignored.example".to_string()])
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let names = vec!["example.com".to_string(), "www.example.com".to_string()];
        let (leaf, chain) = ca.issue(csr.der(), &names).unwrap();
        assert_eq!(chain.len(), 2);
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(leaf.as_bytes())
            .map(|d: rustls::pki_types::CertificateDer<'static>| d)
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(
            sans,
            vec!["DNSName(example.com)", "DNSName(www.example.com)"]
        );
        assert_eq!(
            cert.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
        );
    }
}
