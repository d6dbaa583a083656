//! What a certificate's `output_dir` already holds, read before dcvd orders for it the
//! first time: a certificate that dcvd can adopt instead of buying it again, nothing, or
//! something it must not overwrite without the operator.
//!
//! The files are the ones dcvd installs (and certbot writes): `cert.pem` (the leaf),
//! `chain.pem` (its issuers; `fullchain.pem` after the leaf when there is no `chain.pem`)
//! and `privkey.pem` (unencrypted PKCS#8). Nothing here writes or logs key material.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::key::{CsrError, verify_leaf};
use crate::model::DomainName;

/// A certificate found valid in `output_dir`: for exactly the configured names, for the
/// private key beside it, signed by the chain beside it, and valid now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Serial number, lower-case hex of its DER bytes.
    pub serial_hex: String,
    /// The issuer's distinguished name, as OpenSSL-style text.
    pub issuer: String,
}

/// Why what is in `output_dir` is not a certificate dcvd can adopt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("{} expired on {}", path.display(), not_after.format("%Y-%m-%d %H:%M UTC"))]
    Expired {
        path: PathBuf,
        not_after: DateTime<Utc>,
    },
    #[error("{} is not valid before {}", path.display(), not_before.format("%Y-%m-%d %H:%M UTC"))]
    NotYetValid {
        path: PathBuf,
        not_before: DateTime<Utc>,
    },
    #[error("{} is for [{got}], the certificate is configured for [{want}]", path.display())]
    OtherNames {
        path: PathBuf,
        got: String,
        want: String,
    },
    #[error("{} is not the private key of {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{} is missing beside {}", missing.display(), cert.display())]
    Incomplete { cert: PathBuf, missing: PathBuf },
    #[error("{} cannot be read: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{} does not verify against its chain: {reason}", path.display())]
    BadChain { path: PathBuf, reason: String },
}

impl Unusable {
    /// True when ordering a new certificate over it loses nothing worth keeping: the old
    /// one has expired, or it is for other names than the configuration now asks for.
    /// Anything else (a key that does not match, a file dcvd cannot read, a broken
    /// chain) may be a working installation dcvd does not understand: it waits for the
    /// operator rather than buying a replacement on a guess.
    pub fn replaceable(&self) -> bool {
        matches!(self, Unusable::Expired { .. } | Unusable::OtherNames { .. })
    }
}

/// What `output_dir` holds for a certificate of `names` at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// No `cert.pem`: nothing installed yet.
    Nothing,
    Found(Found),
    Unusable(Unusable),
}

/// Read `dir` (blocking file reads: call from `spawn_blocking` in async code).
pub fn examine(dir: &Path, names: &[DomainName], now: DateTime<Utc>) -> Existing {
    match examine_inner(dir, names, now) {
        Ok(Some(found)) => Existing::Found(found),
        Ok(None) => Existing::Nothing,
        Err(why) => Existing::Unusable(why),
    }
}

fn examine_inner(
    dir: &Path,
    names: &[DomainName],
    now: DateTime<Utc>,
) -> Result<Option<Found>, Unusable> {
    let cert_path = dir.join("cert.pem");
    let Some(leaf_pem) = read(&cert_path)? else {
        return Ok(None);
    };
    let key_path = dir.join("privkey.pem");
    let key_pem = read(&key_path)?.ok_or_else(|| Unusable::Incomplete {
        cert: cert_path.clone(),
        missing: key_path.clone(),
    })?;
    let chain_pem = chain(dir, &cert_path, &leaf_pem)?;
    let info =
        verify_leaf(&leaf_pem, &[chain_pem], &SecretString::from(key_pem), names).map_err(|e| {
            match e {
                CsrError::KeyMismatch => Unusable::KeyMismatch {
                    cert: cert_path.clone(),
                    key: key_path.clone(),
                },
                CsrError::NameMismatch { got, want } => Unusable::OtherNames {
                    path: cert_path.clone(),
                    got,
                    want,
                },
                CsrError::BadKey { reason } => Unusable::Unreadable {
                    path: key_path.clone(),
                    reason: format!("{reason} (dcvd reads unencrypted PKCS#8, BEGIN PRIVATE KEY)"),
                },
                CsrError::LeafParse { reason } => Unusable::Unreadable {
                    path: cert_path.clone(),
                    reason,
                },
                other => Unusable::BadChain {
                    path: cert_path.clone(),
                    reason: other.to_string(),
                },
            }
        })?;
    if info.not_after <= now {
        return Err(Unusable::Expired {
            path: cert_path,
            not_after: info.not_after,
        });
    }
    if info.not_before > now {
        return Err(Unusable::NotYetValid {
            path: cert_path,
            not_before: info.not_before,
        });
    }
    Ok(Some(Found {
        not_before: info.not_before,
        not_after: info.not_after,
        serial_hex: info.serial_hex,
        issuer: issuer_of(&leaf_pem).unwrap_or_default(),
    }))
}

/// `chain.pem`, or what follows the leaf in `fullchain.pem`.
fn chain(dir: &Path, cert_path: &Path, leaf_pem: &str) -> Result<String, Unusable> {
    let chain_path = dir.join("chain.pem");
    if let Some(chain) = read(&chain_path)? {
        return Ok(chain);
    }
    let full_path = dir.join("fullchain.pem");
    let Some(full) = read(&full_path)? else {
        return Err(Unusable::Incomplete {
            cert: cert_path.to_path_buf(),
            missing: chain_path,
        });
    };
    let unreadable = |reason: String| Unusable::Unreadable {
        path: full_path.clone(),
        reason,
    };
    let certs = super::pem::parse_certificates(&full).map_err(|e| unreadable(e.to_string()))?;
    let leaf = super::pem::parse_one(leaf_pem).map_err(|reason| Unusable::Unreadable {
        path: cert_path.to_path_buf(),
        reason,
    })?;
    match certs.split_first() {
        Some((first, rest)) if first.der == leaf.der && !rest.is_empty() => {
            Ok(rest.iter().map(|c| c.pem.as_str()).collect())
        }
        Some((first, _)) if first.der == leaf.der => Err(Unusable::Incomplete {
            cert: cert_path.to_path_buf(),
            missing: chain_path,
        }),
        _ => Err(unreadable(format!(
            "it does not start with the certificate in {}",
            cert_path.display()
        ))),
    }
}

/// The file's text; `None` when it does not exist (nor does its directory: a path
/// through a regular file holds nothing either; installing there is what fails).
fn read(path: &Path) -> Result<Option<String>, Unusable> {
    use std::io::ErrorKind;
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(Unusable::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn issuer_of(leaf_pem: &str) -> Option<String> {
    let der = super::pem::parse_one(leaf_pem).ok()?.der;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.issuer().to_string())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rcgen::{CertificateParams, IsCa, KeyPair};

    use super::*;

    struct Ca {
        key: KeyPair,
        cert: rcgen::Certificate,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Adoption Test CA");
        let cert = p.self_signed(&key).unwrap();
        Ca { key, cert }
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    /// A leaf for `sans` valid 2026-11-01 .. 2027-03-01, and its PKCS#8 key.
    fn leaf(ca: &Ca, sans: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.not_before =
            time::OffsetDateTime::from_unix_timestamp(at(2026, 11, 1).timestamp()).unwrap();
        p.not_after =
            time::OffsetDateTime::from_unix_timestamp(at(2027, 3, 1).timestamp()).unwrap();
        p.serial_number = Some(rcgen::SerialNumber::from(vec![0x0a, 0xbc]));
        let issuer = rcgen::Issuer::from_ca_cert_der(ca.cert.der(), &ca.key).unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn names(list: &[&str]) -> Vec<DomainName> {
        list.iter().map(|n| DomainName::parse(n).unwrap()).collect()
    }

    fn install(dir: &Path, ca: &Ca, cert: &str, key: &str) {
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("chain.pem"), ca.cert.pem()).unwrap();
        std::fs::write(
            dir.join("fullchain.pem"),
            format!("{cert}{}", ca.cert.pem()),
        )
        .unwrap();
        std::fs::write(dir.join("privkey.pem"), key).unwrap();
    }

    const NOW: fn() -> DateTime<Utc> = || at(2026, 12, 2);

    #[test]
    fn a_valid_certificate_for_exactly_the_names_is_found() {
        let d = tempfile::tempdir().unwrap();
        let ca = ca();
        let (cert, key) = leaf(&ca, &["www.example.com", "example.com"]);
        install(d.path(), &ca, &cert, &key);
        let Existing::Found(f) =
            examine(d.path(), &names(&["example.com", "www.example.com"]), NOW())
        else {
            panic!("not found");
        };
        assert_eq!(f.not_after, at(2027, 3, 1));
        assert_eq!(f.not_before, at(2026, 11, 1));
        assert_eq!(f.serial_hex, "0abc");
        assert!(f.issuer.contains("Adoption Test CA"), "{}", f.issuer);
    }

    #[test]
    fn an_empty_or_missing_directory_holds_nothing() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            examine(d.path(), &names(&["www.example.com"]), NOW()),
            Existing::Nothing
        );
        assert_eq!(
            examine(
                &d.path().join("absent"),
                &names(&["www.example.com"]),
                NOW()
            ),
            Existing::Nothing
        );
    }

    #[test]
    fn fullchain_serves_when_there_is_no_chain_file() {
        let d = tempfile::tempdir().unwrap();
        let ca = ca();
        let (cert, key) = leaf(&ca, &["www.example.com"]);
        install(d.path(), &ca, &cert, &key);
        std::fs::remove_file(d.path().join("chain.pem")).unwrap();
        assert!(matches!(
            examine(d.path(), &names(&["www.example.com"]), NOW()),
            Existing::Found(_)
        ));
        std::fs::remove_file(d.path().join("fullchain.pem")).unwrap();
        let Existing::Unusable(u) = examine(d.path(), &names(&["www.example.com"]), NOW()) else {
            panic!()
        };
        assert!(matches!(u, Unusable::Incomplete { .. }), "{u}");
        assert!(!u.replaceable());
    }

    #[test]
    fn each_partial_match_says_why_and_whether_a_new_order_may_replace_it() {
        let ca = ca();
        let (cert, key) = leaf(&ca, &["www.example.com"]);
        let (_, other_key) = leaf(&ca, &["www.example.com"]);
        let want = names(&["www.example.com"]);
        type Setup<'a> = Box<dyn Fn(&Path) + 'a>;
        let cases: Vec<(&str, Setup, DateTime<Utc>, &str, bool)> = vec![
            (
                "expired",
                Box::new(|p: &Path| install(p, &ca, &cert, &key)),
                at(2027, 3, 2),
                "expired on 2027-03-01",
                true,
            ),
            (
                "not yet valid",
                Box::new(|p: &Path| install(p, &ca, &cert, &key)),
                at(2026, 10, 1),
                "not valid before 2026-11-01",
                false,
            ),
            (
                "other names",
                Box::new(|p: &Path| {
                    let (c, k) = leaf(&ca, &["api.example.com"]);
                    install(p, &ca, &c, &k)
                }),
                NOW(),
                "is for [api.example.com], the certificate is configured for [www.example.com]",
                true,
            ),
            (
                "key mismatch",
                Box::new(|p: &Path| install(p, &ca, &cert, &other_key)),
                NOW(),
                "privkey.pem is not the private key of",
                false,
            ),
            (
                "no key",
                Box::new(|p: &Path| {
                    install(p, &ca, &cert, &key);
                    std::fs::remove_file(p.join("privkey.pem")).unwrap();
                }),
                NOW(),
                "privkey.pem is missing beside",
                false,
            ),
            (
                "cut short",
                Box::new(|p: &Path| install(p, &ca, &cert[..cert.len() / 2], &key)),
                NOW(),
                "cert.pem cannot be read",
                false,
            ),
            (
                "wrong chain",
                Box::new(|p: &Path| {
                    install(p, &ca, &cert, &key);
                    std::fs::write(p.join("chain.pem"), self::ca().cert.pem()).unwrap();
                }),
                NOW(),
                "does not verify against its chain",
                false,
            ),
            (
                "a key in another format",
                Box::new(|p: &Path| {
                    install(
                        p,
                        &ca,
                        &cert,
                        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                    )
                }),
                NOW(),
                "privkey.pem cannot be read",
                false,
            ),
        ];
        for (case, setup, now, says, replaceable) in cases {
            let d = tempfile::tempdir().unwrap();
            setup(d.path());
            let Existing::Unusable(u) = examine(d.path(), &want, now) else {
                panic!("{case}: {:?}", examine(d.path(), &want, now));
            };
            let text = u.to_string();
            assert!(text.contains(says), "{case}: {text}");
            assert_eq!(u.replaceable(), replaceable, "{case}: {text}");
            assert!(
                !text.contains("PRIVATE KEY-----\nA"),
                "{case}: key text in {text}"
            );
        }
    }

    #[test]
    fn a_key_file_that_cannot_be_read_is_reported_not_treated_as_absent() {
        let d = tempfile::tempdir().unwrap();
        let ca = ca();
        let (cert, key) = leaf(&ca, &["www.example.com"]);
        install(d.path(), &ca, &cert, &key);
        // A read error other than "not found" (a directory fails as root too).
        let k = d.path().join("privkey.pem");
        std::fs::remove_file(&k).unwrap();
        std::fs::create_dir(&k).unwrap();
        let Existing::Unusable(u) = examine(d.path(), &names(&["www.example.com"]), NOW()) else {
            panic!()
        };
        assert!(u.to_string().contains("privkey.pem cannot be read"), "{u}");
        assert!(!u.replaceable());
    }
}
