//! Sectigo CSR-hash DCV tokens: MD5/SHA-256 over the CSR's DER bytes, the
//! `.well-known/pki-validation` file and the `_<MD5>` CNAME record built from them.

use md5::{Digest, Md5};
use sha2::Sha256;

/// Token suffix Sectigo documents today; `comodoca.com` is the legacy one.
pub const DEFAULT_SUFFIX: &str = "sectigo.com";

/// The two hashes of one CSR, in the letter case Sectigo's documentation shows:
/// the MD5 names the file/record (upper case), the SHA-256 is the content (lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrHashes {
    pub md5_upper: String,
    pub sha256_lower: String,
}

/// Hashes over the DER bytes of the PKCS#10 request (never over the PEM text).
pub fn csr_hashes(der: &[u8]) -> CsrHashes {
    CsrHashes {
        md5_upper: hex::encode_upper(Md5::digest(der)),
        sha256_lower: hex::encode(Sha256::digest(der)),
    }
}

/// The HTTP(S) file: `(path, body)`. Body lines: SHA-256, suffix and, when the order
/// carries one, the uniqueValue, joined with `\n`.
pub fn http_file(h: &CsrHashes, suffix: &str, unique_value: Option<&str>) -> (String, String) {
    let path = format!("/.well-known/pki-validation/{}.txt", h.md5_upper);
    let mut lines = vec![h.sha256_lower.as_str(), suffix];
    if let Some(u) = unique_value.filter(|u| !u.is_empty()) {
        lines.push(u);
    }
    (path, lines.join("\n"))
}

/// The CNAME record: `(owner, target)`, both without a trailing dot.
/// Owner `_<MD5>.<name_base>`; target `<SHA256[0..32]>.<SHA256[32..64]>[.<uniqueValue>].<suffix>`.
pub fn cname_record(
    h: &CsrHashes,
    name_base: &str,
    suffix: &str,
    unique_value: Option<&str>,
) -> (String, String) {
    let owner = format!("_{}.{}", h.md5_upper, name_base.trim_end_matches('.'));
    let (first, second) = h.sha256_lower.split_at(h.sha256_lower.len() / 2);
    let target = match unique_value.filter(|u| !u.is_empty()) {
        Some(u) => format!("{first}.{second}.{u}.{suffix}"),
        None => format!("{first}.{second}.{suffix}"),
    };
    (owner, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// Decode a PEM CSR the plain way (body lines, base64), independent of other code.
    fn der_of(pem: &str) -> Vec<u8> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    /// Vectors computed with `openssl req -outform DER | md5sum / sha256sum`.
    const VECTORS: &[(&str, &str, &str)] = &[
        (
            include_str!("../../../tests/fixtures/csr/ec1.csr"),
            include_str!("../../../tests/fixtures/csr/ec1.md5"),
            include_str!("../../../tests/fixtures/csr/ec1.sha256"),
        ),
        (
            include_str!("../../../tests/fixtures/csr/ec2.csr"),
            include_str!("../../../tests/fixtures/csr/ec2.md5"),
            include_str!("../../../tests/fixtures/csr/ec2.sha256"),
        ),
    ];

    #[test]
    fn hashes_match_openssl_vectors() {
        for (pem, md5, sha) in VECTORS {
            let h = csr_hashes(&der_of(pem));
            assert_eq!(h.md5_upper, md5.trim().to_ascii_uppercase());
            assert_eq!(h.sha256_lower, sha.trim());
        }
        assert_ne!(
            csr_hashes(&der_of(VECTORS[0].0)),
            csr_hashes(&der_of(VECTORS[1].0))
        );
    }

    #[test]
    fn http_file_has_upper_md5_name_and_lines() {
        let (pem, md5, sha) = VECTORS[0];
        let h = csr_hashes(&der_of(pem));
        let (path, body) = http_file(&h, DEFAULT_SUFFIX, Some("dcvdABC123"));
        assert_eq!(
            path,
            format!(
                "/.well-known/pki-validation/{}.txt",
                md5.trim().to_ascii_uppercase()
            )
        );
        assert_eq!(body, format!("{}\nsectigo.com\ndcvdABC123", sha.trim()));
        let (_, body) = http_file(&h, "comodoca.com", None);
        assert_eq!(body, format!("{}\ncomodoca.com", sha.trim()));
    }

    #[test]
    fn cname_splits_sha256_in_halves() {
        let (pem, md5, sha) = VECTORS[1];
        let (md5, sha) = (md5.trim().to_ascii_uppercase(), sha.trim());
        let h = csr_hashes(&der_of(pem));
        let (owner, target) = cname_record(&h, "example.com.", DEFAULT_SUFFIX, Some("u1"));
        assert_eq!(owner, format!("_{md5}.example.com"));
        assert_eq!(
            target,
            format!("{}.{}.u1.sectigo.com", &sha[..32], &sha[32..])
        );
        let (_, target) = cname_record(&h, "example.com", "comodoca.com", None);
        assert_eq!(
            target,
            format!("{}.{}.comodoca.com", &sha[..32], &sha[32..])
        );
    }
}
