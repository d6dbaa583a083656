//! The chain from `download/CollectSSL` put in leaf → root order by issuer/subject
//! (Sectigo's order is not to be trusted). Reading the base64 DER is `pki::pem`'s.

/// Order CA certificates leaf → root by issuer/subject, whatever order they came in.
/// Certificates that fit nowhere are appended at the end.
pub fn order_chain(leaf: &[u8], mut rest: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
    let names = |der: &[u8]| -> Result<(Vec<u8>, Vec<u8>), String> {
        let (_, c) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        Ok((c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
    };
    let (mut subject, mut issuer) = names(leaf)?;
    let mut out = Vec::new();
    while subject != issuer {
        let mut found = None;
        for (i, c) in rest.iter().enumerate() {
            if names(c)?.0 == issuer {
                found = Some(i);
                break;
            }
        }
        let Some(i) = found else { break };
        let c = rest.remove(i);
        (subject, issuer) = names(&c)?;
        out.push(c);
    }
    out.extend(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_ordered_by_issuer_whatever_the_input_order() {
        let ca = crate::sim::ca::SimCa::new("T", crate::clock::system()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let (leaf, chain) = ca.issue(csr.der(), &["a.example".to_string()]).unwrap();
        let der = |pem: &str| crate::pki::pem::parse_one(pem).unwrap().der;
        let (leaf, int, root) = (der(&leaf), der(&chain[0]), der(&chain[1]));
        let ordered = order_chain(&leaf, vec![root.clone(), int.clone()]).unwrap();
        assert_eq!(ordered, vec![int.clone(), root.clone()]);
        assert!(order_chain(b"junk", vec![]).is_err());
    }
}
