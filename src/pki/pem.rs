//! Strict reading of PEM certificate bundles as CAs send them (`pem_all`, ACME chains):
//! every block complete and a parsable X.509 certificate, nothing else in the text.
//!
//! Why strict: a bundle cut short in transit (a proxy, a gateway, a dropped connection
//! behind a correct Content-Length) still looks like PEM up to the cut. A lenient split
//! drops the unterminated block and hands on a leaf without its issuer, which then gets
//! installed as a broken chain (reliability finding R2).

use base64::Engine;

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";

/// What is wrong with a PEM bundle. Line numbers count from 1 in the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("the bundle holds no PEM certificate ({chars} characters of text)")]
    Empty { chars: usize },
    #[error(
        "PEM block {block} (BEGIN at line {line}) has no END line: the text was cut short \
         after {lines_after} more line(s)"
    )]
    Unterminated {
        block: usize,
        line: usize,
        lines_after: usize,
    },
    #[error("PEM block {block} at line {line} is `{label}`, expected CERTIFICATE")]
    NotACertificate {
        block: usize,
        line: usize,
        label: String,
    },
    #[error("PEM block {block} (BEGIN at line {line}) ends with a mismatched line `{end}`")]
    MismatchedEnd {
        block: usize,
        line: usize,
        end: String,
    },
    #[error("PEM block {block} (BEGIN at line {line}) is not valid base64: {reason}")]
    BadBase64 {
        block: usize,
        line: usize,
        reason: String,
    },
    #[error(
        "PEM block {block} (BEGIN at line {line}) is not a complete X.509 certificate: {reason}"
    )]
    BadCertificate {
        block: usize,
        line: usize,
        reason: String,
    },
    #[error("unexpected text at line {line} outside any PEM block: `{text}`")]
    StrayText { line: usize, text: String },
}

/// One certificate from a bundle: its DER bytes and a canonical PEM rendering
/// (`BEGIN CERTIFICATE`, 64-column base64, LF line ends, final newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemCertificate {
    pub der: Vec<u8>,
    pub pem: String,
}

/// Split a bundle into its certificates, in order. Blank lines and CRLF line ends are
/// fine; anything else outside a block, a block without its END line, a block that is
/// not a CERTIFICATE, bad base64 or DER that is not one whole X.509 certificate is an
/// error naming the block and line. An empty bundle is an error too.
pub fn parse_certificates(bundle: &str) -> Result<Vec<PemCertificate>, PemError> {
    let mut out = Vec::new();
    let mut lines = bundle.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    while let Some((line, text)) = lines.next() {
        if text.is_empty() {
            continue;
        }
        let Some(label) = text
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix(DASHES))
        else {
            return Err(PemError::StrayText {
                line,
                text: shorten(text),
            });
        };
        let block = out.len() + 1;
        if label != "CERTIFICATE" {
            return Err(PemError::NotACertificate {
                block,
                line,
                label: shorten(label),
            });
        }
        let mut body = String::new();
        let mut lines_after = 0;
        let mut ended = false;
        for (_, t) in lines.by_ref() {
            if t.starts_with(END) || t.starts_with(BEGIN) {
                if t != "-----END CERTIFICATE-----" {
                    return Err(PemError::MismatchedEnd {
                        block,
                        line,
                        end: shorten(t),
                    });
                }
                ended = true;
                break;
            }
            lines_after += 1;
            body.push_str(t);
        }
        if !ended {
            return Err(PemError::Unterminated {
                block,
                line,
                lines_after,
            });
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| PemError::BadBase64 {
                block,
                line,
                reason: e.to_string(),
            })?;
        check_whole_certificate(&der).map_err(|reason| PemError::BadCertificate {
            block,
            line,
            reason,
        })?;
        let pem = to_pem(&der);
        out.push(PemCertificate { der, pem });
    }
    if out.is_empty() {
        return Err(PemError::Empty {
            chars: bundle.len(),
        });
    }
    Ok(out)
}

/// [`parse_certificates`] as canonical PEM strings: what `IssuedChain` carries.
pub fn split_certificates(bundle: &str) -> Result<Vec<String>, PemError> {
    Ok(parse_certificates(bundle)?
        .into_iter()
        .map(|c| c.pem)
        .collect())
}

/// Exactly one certificate in `pem`, nothing else.
pub fn parse_one(pem: &str) -> Result<PemCertificate, String> {
    let mut certs = parse_certificates(pem).map_err(|e| e.to_string())?;
    if certs.len() != 1 {
        return Err(format!(
            "holds {} certificates where one was expected",
            certs.len()
        ));
    }
    Ok(certs.remove(0))
}

fn check_whole_certificate(der: &[u8]) -> Result<(), String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], _)) => Ok(()),
        Ok((rest, _)) => Err(format!(
            "{} bytes follow the certificate inside the block",
            rest.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// One certificate sent as base64 DER without PEM armour (Sectigo `CollectSSL`), or as
/// a single PEM block: whitespace and line breaks are fine, the DER must be one whole
/// X.509 certificate.
pub fn from_base64(text: &str) -> Result<PemCertificate, String> {
    if text.trim_start().starts_with(BEGIN) {
        return parse_one(text);
    }
    let body: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("not base64: {e}"))?;
    check_whole_certificate(&der)?;
    let pem = to_pem(&der);
    Ok(PemCertificate { der, pem })
}

/// The DER of a CSR given as PEM (any line ends and whitespace, `NEW CERTIFICATE
/// REQUEST` armour too) or as bare base64; `None` when it is neither.
pub fn csr_der(text: &str) -> Option<Vec<u8>> {
    let mut body = text.trim();
    if let Some(start) = body.find("-----BEGIN") {
        let after = &body[start + "-----BEGIN".len()..];
        let open = after.find("-----")?;
        let after = &after[open + 5..];
        let close = after.find("-----END")?;
        body = &after[..close];
    }
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if b64.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// DER as canonical PEM (`BEGIN CERTIFICATE`, 64-column base64, LF, final newline).
pub fn to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// At most 60 characters of `s` for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::ca::SimCa;

    /// A real leaf + intermediate + root bundle from the simulator CA.
    fn bundle() -> (String, Vec<String>) {
        let ca = SimCa::new("Pem", crate::clock::system()).unwrap();
        let k = crate::pki::generate(
            crate::model::KeyType::EcdsaP256,
            &[crate::model::DomainName::parse("example.com").unwrap()],
        )
        .unwrap();
        let (leaf, chain) = ca.issue(&k.csr_der, &["example.com".into()]).unwrap();
        let mut blocks = vec![leaf];
        blocks.extend(chain);
        (blocks.concat(), blocks)
    }

    #[test]
    fn a_whole_bundle_splits_in_order_crlf_and_blank_lines_too() {
        let (text, blocks) = bundle();
        let got = split_certificates(&text).unwrap();
        assert_eq!(got.len(), 3);
        for (g, want) in got.iter().zip(&blocks) {
            assert_eq!(
                parse_one(g).unwrap().der,
                parse_one(want).unwrap().der,
                "same certificate"
            );
            assert!(g.ends_with("-----END CERTIFICATE-----\n"));
        }
        let crlf = format!("\r\n\r\n{}\r\n\r\n", text.replace('\n', "\r\n\r\n"));
        assert_eq!(split_certificates(&crlf).unwrap(), got);
    }

    #[test]
    fn a_bundle_cut_inside_the_intermediate_is_refused() {
        let (_, blocks) = bundle();
        let cut = blocks[0].len() + blocks[1].len() / 2;
        let text = blocks.concat();
        let e = parse_certificates(&text[..cut]).unwrap_err();
        assert!(
            matches!(e, PemError::Unterminated { block: 2, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("has no END line"), "{e}");
        // Cut right after the BEGIN line of the intermediate: still refused.
        let begin = blocks[0].len() + "-----BEGIN CERTIFICATE-----\n".len();
        assert!(matches!(
            parse_certificates(&text[..begin]),
            Err(PemError::Unterminated { block: 2, .. })
        ));
    }

    #[test]
    fn a_block_with_lines_missing_is_not_a_certificate() {
        let (_, blocks) = bundle();
        let lines: Vec<&str> = blocks[1].lines().collect();
        // Drop two body lines, keep BEGIN/END: base64 still decodes, the DER does not parse.
        let mut short: Vec<&str> = lines.clone();
        short.drain(2..4);
        let text = format!("{}{}\n", blocks[0], short.join("\n"));
        let e = parse_certificates(&text).unwrap_err();
        assert!(
            matches!(
                e,
                PemError::BadCertificate { block: 2, .. } | PemError::BadBase64 { block: 2, .. }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn stray_text_other_labels_and_bad_base64_are_refused() {
        let (_, blocks) = bundle();
        let e =
            parse_certificates(&format!("{}subject=CN = x\n{}", blocks[0], blocks[1])).unwrap_err();
        assert!(
            matches!(e, PemError::StrayText { ref text, .. } if text == "subject=CN = x"),
            "{e:?}"
        );
        let e =
            parse_certificates(&format!("{}<html>502 Bad Gateway</html>", blocks[0])).unwrap_err();
        assert!(e.to_string().contains("502 Bad Gateway"), "{e}");

        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = parse_certificates(&format!("{}{key}", blocks[0])).unwrap_err();
        assert!(
            matches!(e, PemError::NotACertificate { block: 2, ref label, .. } if label == "PRIVATE KEY"),
            "{e:?}"
        );

        let e = parse_certificates(
            "-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(matches!(e, PemError::BadBase64 { block: 1, .. }), "{e:?}");

        // A second BEGIN before the first block's END.
        let e = parse_certificates(&format!("-----BEGIN CERTIFICATE-----\nAAAA\n{}", blocks[0]))
            .unwrap_err();
        assert!(
            matches!(e, PemError::MismatchedEnd { block: 1, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn empty_bundles_and_trailing_bytes_inside_a_block_are_refused() {
        assert!(matches!(
            parse_certificates(""),
            Err(PemError::Empty { .. })
        ));
        assert!(matches!(
            parse_certificates("\n  \r\n"),
            Err(PemError::Empty { .. })
        ));
        let (_, blocks) = bundle();
        let mut der = parse_one(&blocks[0]).unwrap().der;
        der.extend_from_slice(&[0, 0, 0]);
        let e = parse_certificates(&to_pem(&der)).unwrap_err();
        assert!(e.to_string().contains("3 bytes follow"), "{e}");
        let e = parse_one(&blocks.concat()).unwrap_err();
        assert!(e.contains("holds 3 certificates"), "{e}");
    }

    #[test]
    fn bare_base64_der_reads_as_one_certificate() {
        let (_, blocks) = bundle();
        let cert = parse_one(&blocks[1]).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&cert.der);
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(from_base64(&wrapped).unwrap(), cert);
        assert_eq!(from_base64(&blocks[1]).unwrap(), cert, "a PEM block too");
        assert!(
            from_base64("not base64!")
                .unwrap_err()
                .contains("not base64")
        );
        let cut = &b64[..b64.len() / 2 / 4 * 4];
        assert!(from_base64(cut).is_err(), "half a certificate");
        assert!(from_base64(&blocks.concat()).is_err(), "three certificates");
    }

    #[test]
    fn csr_der_reads_pem_in_any_layout_and_bare_base64() {
        let pem =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAEC\nAwQ=\n-----END CERTIFICATE REQUEST-----\n";
        let want = vec![0, 1, 2, 3, 4];
        assert_eq!(csr_der(pem), Some(want.clone()));
        assert_eq!(csr_der(&pem.replace('\n', "\r\n")), Some(want.clone()));
        assert_eq!(
            csr_der(
                "-----BEGIN NEW CERTIFICATE REQUEST-----AAECAwQ=-----END NEW CERTIFICATE REQUEST-----"
            ),
            Some(want.clone())
        );
        assert_eq!(csr_der(" AAEC AwQ= "), Some(want));
        assert_eq!(csr_der("------ [CSR HERE] ------"), None);
        assert_eq!(csr_der(""), None);
    }
}
