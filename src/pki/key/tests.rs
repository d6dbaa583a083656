//! Key, CSR and leaf-check tests against the simulator CA.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::*;
use crate::sim::ca::SimCa;

fn names(list: &[&str]) -> Vec<DomainName> {
    list.iter().map(|n| DomainName::parse(n).unwrap()).collect()
}

/// Parse and verify a CSR; returns (CN, SAN DNS names, key size in bits).
fn inspect_csr(k: &KeyAndCsr) -> (String, Vec<String>, usize) {
    let (_, csr) = X509CertificationRequest::from_der(&k.csr_der).unwrap();
    csr.verify_signature().expect("CSR self-signature verifies");
    let info = &csr.certification_request_info;
    let cn = info
        .subject
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let mut sans = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for g in &san.general_names {
                if let GeneralName::DNSName(d) = g {
                    sans.push(d.to_string());
                }
            }
        }
    }
    let bits = match info.subject_pki.parsed().unwrap() {
        PublicKey::RSA(r) => r.key_size(),
        PublicKey::EC(ec) => ec.key_size(),
        other => panic!("unexpected key {other:?}"),
    };
    (cn, sans, bits)
}

#[test]
fn each_key_type_makes_a_verifiable_csr_with_cn_and_sans() {
    let n = names(&["example.com", "*.example.com", "WWW.example.com"]);
    for (kt, want_bits) in [
        (KeyType::EcdsaP256, 256),
        (KeyType::EcdsaP384, 384),
        (KeyType::Rsa2048, 2048),
    ] {
        let k = generate(kt, &n).unwrap();
        assert!(
            k.key_pem
                .expose_secret()
                .starts_with("-----BEGIN PRIVATE KEY-----"),
            "{kt}"
        );
        assert!(
            k.csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{kt}"
        );
        let (cn, sans, bits) = inspect_csr(&k);
        assert_eq!(cn, "example.com", "{kt}");
        assert_eq!(
            sans,
            vec!["example.com", "*.example.com", "www.example.com"],
            "{kt}"
        );
        assert_eq!(bits, want_bits, "{kt}");
    }
}

// RSA 3072/4096 generation takes seconds (4096: 2-15 s here); one test each so they
// run in parallel.
#[test]
fn rsa_3072_key_has_its_size() {
    let (_, _, bits) = inspect_csr(&generate(KeyType::Rsa3072, &names(&["example.com"])).unwrap());
    assert_eq!(bits, 3072);
}

#[test]
fn rsa_4096_key_has_its_size() {
    let (_, _, bits) = inspect_csr(&generate(KeyType::Rsa4096, &names(&["example.com"])).unwrap());
    assert_eq!(bits, 4096);
}

#[test]
fn csr_from_key_keeps_the_key() {
    let k = generate(KeyType::EcdsaP256, &names(&["a.example.com"])).unwrap();
    let again = csr_from_key(&k.key_pem, &names(&["b.example.com", "a.example.com"])).unwrap();
    let spki = |der: &[u8]| {
        let (_, csr) = X509CertificationRequest::from_der(der).unwrap();
        csr.certification_request_info.subject_pki.raw.to_vec()
    };
    assert_eq!(spki(&k.csr_der), spki(&again.csr_der));
    assert_eq!(inspect_csr(&again).0, "b.example.com");
    let bad = csr_from_key(
        &SecretString::from("-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n"),
        &names(&["a.example.com"]),
    );
    let msg = bad.unwrap_err().to_string();
    assert!(
        msg.contains("stored private key") && !msg.contains("TOPSECRET"),
        "{msg}"
    );
    assert!(matches!(
        generate(KeyType::EcdsaP256, &[]),
        Err(CsrError::NoNames)
    ));
}

#[test]
fn debug_never_shows_the_key() {
    let k = generate(KeyType::EcdsaP256, &names(&["example.com"])).unwrap();
    let body: String = k
        .key_pem
        .expose_secret()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let debug = format!("{k:?}");
    assert!(
        !debug.contains(&body) && !debug.contains("PRIVATE KEY"),
        "{debug}"
    );
    assert!(debug.contains("REDACTED"));
}

fn issue(ca: &SimCa, k: &KeyAndCsr, list: &[&str]) -> (String, Vec<String>) {
    let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    ca.issue(&k.csr_der, &list).unwrap()
}

#[test]
fn verify_leaf_accepts_the_sim_ca_leaf_for_our_csr() {
    let ca = SimCa::new("Test", crate::clock::system()).unwrap();
    let n = names(&["example.com", "*.example.com"]);
    let k = generate(KeyType::EcdsaP256, &n).unwrap();
    let (leaf, chain) = issue(&ca, &k, &["*.example.com", "Example.com"]);
    let info = verify_leaf(&leaf, &chain, &k.key_pem, &n).unwrap();
    assert_eq!(info.sans, vec!["*.example.com", "Example.com"]);
    assert!(info.not_after - info.not_before > chrono::Duration::days(89));
    assert!(!info.serial_hex.is_empty());
    // RSA keys compare by the same public-key bytes
    let r = generate(KeyType::Rsa2048, &n).unwrap();
    let (leaf, chain) = issue(&ca, &r, &["example.com", "*.example.com"]);
    verify_leaf(&leaf, &chain, &r.key_pem, &n).unwrap();
    // Without the root is fine too: servers send the intermediate, clients have the root.
    verify_leaf(&leaf, &chain[..1], &r.key_pem, &n).unwrap();
}

#[test]
fn verify_leaf_refuses_a_missing_cut_or_broken_chain() {
    let ca = SimCa::new("Test", crate::clock::system()).unwrap();
    let n = names(&["example.com"]);
    let k = generate(KeyType::EcdsaP256, &n).unwrap();
    let (leaf, chain) = issue(&ca, &k, &["example.com"]);

    // R2: no chain at all (a lenient split dropped the cut intermediate).
    let e = verify_leaf(&leaf, &[], &k.key_pem, &n).unwrap_err();
    assert!(matches!(e, CsrError::NoChain { .. }), "{e}");
    assert!(e.to_string().contains("Test DV Intermediate"), "{e}");

    // The intermediate cut in half, handed on as it came.
    let half = chain[0][..chain[0].len() / 2].to_string();
    let e = verify_leaf(&leaf, &[half, chain[1].clone()], &k.key_pem, &n).unwrap_err();
    assert!(
        matches!(e, CsrError::ChainParse { index: 0, ref reason } if reason.contains("no END line")),
        "{e}"
    );

    // A chain entry may be a bundle (chain.pem as installed), but text around the blocks
    // is refused, and the leaf must be exactly one certificate.
    verify_leaf(&leaf, &[chain.concat()], &k.key_pem, &n).unwrap();
    let e = verify_leaf(
        &leaf,
        &[format!("{}junk\n", chain.concat())],
        &k.key_pem,
        &n,
    )
    .unwrap_err();
    assert!(matches!(e, CsrError::ChainParse { index: 0, .. }), "{e}");
    let e = verify_leaf(&format!("{leaf}junk"), &chain, &k.key_pem, &n).unwrap_err();
    assert!(matches!(e, CsrError::LeafParse { .. }), "{e}");
    let e = verify_leaf(&format!("{leaf}{}", chain[0]), &chain, &k.key_pem, &n).unwrap_err();
    assert!(matches!(e, CsrError::LeafParse { .. }), "{e}");

    // The intermediate followed by a root that did not sign it.
    let other = SimCa::new("Other", crate::clock::system()).unwrap();
    let wrong_root = other.root_pem().to_string();
    let e = verify_leaf(
        &leaf,
        &[chain[0].clone(), wrong_root.clone()],
        &k.key_pem,
        &n,
    )
    .unwrap_err();
    assert!(matches!(e, CsrError::ChainBroken { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("Other Root"), "{e}");
    // A stray certificate after a good root is refused as well.
    let e = verify_leaf(
        &leaf,
        &[chain[0].clone(), chain[1].clone(), wrong_root],
        &k.key_pem,
        &n,
    )
    .unwrap_err();
    assert!(matches!(e, CsrError::ChainBroken { index: 1, .. }), "{e}");
    // CRLF line ends are fine.
    let crlf: Vec<String> = chain.iter().map(|c| c.replace('\n', "\r\n")).collect();
    verify_leaf(&leaf.replace('\n', "\r\n"), &crlf, &k.key_pem, &n).unwrap();
}

#[test]
fn verify_leaf_rejects_other_key_names_and_chain() {
    let ca = SimCa::new("Test", crate::clock::system()).unwrap();
    let n = names(&["a.example.com", "b.example.com"]);
    let ours = generate(KeyType::EcdsaP256, &n).unwrap();
    let theirs = generate(KeyType::EcdsaP256, &n).unwrap();

    let (leaf, chain) = issue(&ca, &theirs, &["a.example.com", "b.example.com"]);
    let e = verify_leaf(&leaf, &chain, &ours.key_pem, &n).unwrap_err();
    assert!(matches!(e, CsrError::KeyMismatch), "{e}");

    let (leaf, chain) = issue(&ca, &ours, &["a.example.com", "c.example.com"]);
    let e = verify_leaf(&leaf, &chain, &ours.key_pem, &n)
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate names [a.example.com, c.example.com] differ from ordered [a.example.com, b.example.com]"), "{e}");
    let (leaf, _) = issue(&ca, &ours, &["a.example.com"]);
    assert!(matches!(
        verify_leaf(&leaf, &[], &ours.key_pem, &n),
        Err(CsrError::NameMismatch { .. })
    ));

    let (leaf, chain) = issue(&ca, &ours, &["a.example.com", "b.example.com"]);
    let other = SimCa::new("Other", crate::clock::system()).unwrap();
    let (_, other_chain) = issue(&other, &ours, &["a.example.com"]);
    let e = verify_leaf(&leaf, &other_chain, &ours.key_pem, &n).unwrap_err();
    assert!(matches!(e, CsrError::NotSignedByChain { .. }), "{e}");
    // the root did not sign the leaf directly either
    let e = verify_leaf(&leaf, &chain[1..], &ours.key_pem, &n).unwrap_err();
    assert!(e.to_string().contains("Test DV Intermediate"), "{e}");

    let e = verify_leaf("garbage", &chain, &ours.key_pem, &n).unwrap_err();
    assert!(matches!(e, CsrError::LeafParse { .. }), "{e}");
}

#[test]
fn check_stored_accepts_a_fresh_pair_and_refuses_damaged_ones() {
    let n = names(&["example.com", "www.example.com"]);
    let k = generate(KeyType::EcdsaP256, &n).unwrap();
    check_stored(&k.key_pem, &k.csr_pem, &k.csr_der, &n).unwrap();

    let empty = SecretString::from("");
    assert!(
        check_stored(&empty, &k.csr_pem, &k.csr_der, &n)
            .unwrap_err()
            .contains("private key")
    );
    let cut: String = k.key_pem.expose_secret().chars().take(60).collect();
    assert!(check_stored(&SecretString::from(cut), &k.csr_pem, &k.csr_der, &n).is_err());
    let other = generate(KeyType::EcdsaP256, &n).unwrap();
    let e = check_stored(&other.key_pem, &k.csr_pem, &k.csr_der, &n).unwrap_err();
    assert!(e.contains("another key"), "{e}");
    let e = check_stored(
        &k.key_pem,
        &k.csr_pem,
        &k.csr_der[..k.csr_der.len() - 5],
        &n,
    )
    .unwrap_err();
    assert!(e.contains("CSR"), "{e}");
    let e = check_stored(&k.key_pem, "", &k.csr_der, &n).unwrap_err();
    assert!(e.contains("PEM"), "{e}");
    let e = check_stored(&k.key_pem, &k.csr_pem, &k.csr_der, &names(&["example.com"])).unwrap_err();
    assert!(e.contains("www.example.com"), "{e}");
    // The message never carries key material.
    assert!(!e.contains("PRIVATE KEY-----\n"));
}
