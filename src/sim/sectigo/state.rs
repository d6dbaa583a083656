//! Sectigo simulator orders: per-name DCV checked for real (CNAME in DNS, file over
//! HTTP), approver lists, and issuance from `SimCa` once every name validates.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::sim::DcvLookup;
use crate::sim::ca::SimCa;

/// Wire method names the simulator accepts.
pub const METHODS: &[&str] = &["EMAIL", "HTTP_CSR_HASH", "HTTPS_CSR_HASH", "CNAME_CSR_HASH"];

/// Suffixes accepted at the end of CSR-hash tokens.
const SUFFIXES: &[&str] = &["sectigo.com", "comodoca.com"];

/// The constructed approver mailboxes (CA/B Forum BR 3.2.2.4.4), written here from the
/// BRs rather than taken from the client, so the two cannot share a misreading.
const MAILBOXES: &[&str] = &[
    "admin",
    "administrator",
    "webmaster",
    "hostmaster",
    "postmaster",
];

/// The CSR hashes as Sectigo documents them (reference §2): MD5 and SHA-256 over the
/// DER bytes of the PKCS#10 request, never over the PEM text. The MD5 names the file and
/// the CNAME owner (upper-case hex), the SHA-256 is the content (compared without case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrHashes {
    pub md5_upper: String,
    pub sha256_lower: String,
}

pub fn csr_hashes(der: &[u8]) -> CsrHashes {
    CsrHashes {
        md5_upper: hex::encode_upper(Md5::digest(der)),
        sha256_lower: hex::encode(Sha256::digest(der)),
    }
}

/// Two-label public suffixes the ADN walk never goes up to (a small list, for tests).
const TWO_LABEL_SUFFIXES: &[&str] = &["co.uk", "org.uk", "com.au", "co.jp", "com.br"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOrderState {
    Pending,
    Issued,
    Cancelled,
    Revoked,
    /// Rejected at the CA while validating (`SectigoSim::reject`); `reject_reason` says why.
    Rejected,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimName {
    pub name: String,
    pub method: String,
    pub email: Option<String>,
    pub validated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimOrder {
    pub order_number: u64,
    pub certificate_id: u64,
    /// `product` of `!AutoApplySSL` (shown as `N_M_type` in `!WebHostReport`).
    pub product: u32,
    pub unique_value: String,
    pub names: Vec<SimName>,
    pub state: SimOrderState,
    /// The CA's words when it rejected the order.
    pub reject_reason: Option<String>,
    /// Placed with `domainNames` (multi-domain form): only those answer `!GetMDCDomainDetails`.
    pub multi_domain: bool,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub csr_der: Vec<u8>,
    #[serde(skip)]
    pub hashes: CsrHashes,
    #[serde(skip)]
    pub leaf_der: Option<Vec<u8>>,
    /// Intermediate then root, DER.
    #[serde(skip)]
    pub chain_der: Vec<Vec<u8>>,
}

impl SimOrder {
    pub fn new(
        order_number: u64,
        unique_value: String,
        csr_der: Vec<u8>,
        names: Vec<SimName>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            order_number,
            certificate_id: order_number + 5_000_000,
            product: 0,
            unique_value,
            names,
            state: SimOrderState::Pending,
            reject_reason: None,
            multi_domain: false,
            created_at,
            hashes: csr_hashes(&csr_der),
            csr_der,
            leaf_der: None,
            chain_der: Vec::new(),
        }
    }
}

/// Names in a CSR: the subject CN, else the first DNS SAN.
pub fn csr_names(der: &[u8]) -> Result<Vec<String>, String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::FromDer;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| format!("CSR does not parse: {e}"))?;
    let info = &csr.certification_request_info;
    if let Some(Ok(s)) = info.subject.iter_common_name().next().map(|cn| cn.as_str()) {
        return Ok(vec![s.to_ascii_lowercase()]);
    }
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for g in &san.general_names {
                if let GeneralName::DNSName(d) = g {
                    return Ok(vec![d.to_ascii_lowercase()]);
                }
            }
        }
    }
    Err("CSR has neither a common name nor a DNS subject alternative name".into())
}

/// `name` and each parent above the public suffix, most specific first (the ADN walk).
pub fn adn_candidates(name: &str) -> Vec<String> {
    let base = name
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let labels: Vec<&str> = base.split('.').collect();
    let n = labels.len();
    let suffix_len = if n >= 2 && TWO_LABEL_SUFFIXES.contains(&labels[n - 2..].join(".").as_str()) {
        2
    } else {
        1
    };
    (0..n.saturating_sub(suffix_len))
        .map(|i| labels[i..].join("."))
        .collect()
}

/// Addresses the simulator accepts as approvers: the constructed mailboxes at the
/// name and each parent (`level<N>_email`, N = label count).
pub fn approver_list(domain: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for adn in adn_candidates(domain) {
        let level = adn.split('.').count();
        for local in MAILBOXES {
            out.push((format!("level{level}_email"), format!("{local}@{adn}")));
        }
    }
    out
}

pub fn is_approver(domain: &str, addr: &str) -> bool {
    approver_list(domain)
        .iter()
        .any(|(_, a)| a.eq_ignore_ascii_case(addr.trim()))
}

/// Check every unvalidated non-email name of order `number` and issue when all are valid.
/// DNS and HTTP lookups run without holding the lock.
pub async fn check_order(
    orders: &Mutex<BTreeMap<u64, SimOrder>>,
    number: u64,
    dcv: &DcvLookup,
    http_hosts: &(dyn Fn(&str) -> bool + Sync),
    ca: &SimCa,
) {
    let snapshot = match orders.lock() {
        Ok(o) => match o.get(&number) {
            Some(o) if o.state == SimOrderState::Pending => o.clone(),
            _ => return,
        },
        Err(_) => return,
    };
    let mut passed = Vec::new();
    for (i, n) in snapshot.names.iter().enumerate() {
        if n.validated {
            continue;
        }
        let ok = match n.method.as_str() {
            "CNAME_CSR_HASH" => cname_ok(dcv, &snapshot, &n.name).await,
            "HTTP_CSR_HASH" | "HTTPS_CSR_HASH" if http_hosts(&n.name) => {
                http_ok(dcv, &snapshot, &n.name).await
            }
            _ => false,
        };
        if ok {
            passed.push(i);
        }
    }
    let Ok(mut all) = orders.lock() else { return };
    let Some(order) = all.get_mut(&number) else {
        return;
    };
    for i in passed {
        if let Some(n) = order.names.get_mut(i) {
            n.validated = true;
        }
    }
    issue_if_ready(order, ca);
}

/// Issue a real certificate once every name is validated.
pub fn issue_if_ready(order: &mut SimOrder, ca: &SimCa) {
    if order.state != SimOrderState::Pending || !order.names.iter().all(|n| n.validated) {
        return;
    }
    let names: Vec<String> = order.names.iter().map(|n| n.name.clone()).collect();
    match ca.issue(&order.csr_der, &names) {
        Ok((leaf, chain)) => {
            order.leaf_der = pem_der(&leaf);
            order.chain_der = chain.iter().filter_map(|p| pem_der(p)).collect();
            order.state = SimOrderState::Issued;
        }
        Err(e) => tracing::warn!(order = order.order_number, error = %e, "sim: issuance failed"),
    }
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|d| d.to_vec())
}

async fn cname_ok(dcv: &DcvLookup, o: &SimOrder, name: &str) -> bool {
    let sha = &o.hashes.sha256_lower;
    let (a, b) = sha.split_at(32);
    let wanted: Vec<String> = SUFFIXES
        .iter()
        .flat_map(|s| {
            [
                format!("{a}.{b}.{}.{s}", o.unique_value),
                format!("{a}.{b}.{s}"),
            ]
        })
        .map(|w| w.to_ascii_lowercase())
        .collect();
    for adn in adn_candidates(name) {
        let owner = format!("_{}.{adn}", o.hashes.md5_upper);
        if dcv.cname(&owner).await.iter().any(|t| wanted.contains(t)) {
            return true;
        }
    }
    false
}

/// Both HTTP methods are fetched over plain HTTP (the simulator sets up no TLS).
async fn http_ok(dcv: &DcvLookup, o: &SimOrder, name: &str) -> bool {
    let path = format!("/.well-known/pki-validation/{}.txt", o.hashes.md5_upper);
    let Some(body) = dcv.http_body(false, name, &path).await else {
        return false;
    };
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let sha_ok = lines
        .first()
        .is_some_and(|l| l.eq_ignore_ascii_case(&o.hashes.sha256_lower));
    let suffix_ok = lines
        .get(1)
        .is_some_and(|l| SUFFIXES.contains(&l.to_ascii_lowercase().as_str()));
    let uv_ok = match lines.get(2) {
        Some(u) => *u == o.unique_value,
        None => o.unique_value.is_empty(),
    };
    sha_ok && suffix_ok && uv_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_hashes_are_md5_and_sha256_of_the_der_bytes() {
        // RFC 1321 / FIPS 180-2 test vectors ("abc").
        let h = csr_hashes(b"abc");
        assert_eq!(h.md5_upper, "900150983CD24FB0D6963F7D28E17F72");
        assert_eq!(
            h.sha256_lower,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn adn_walk_stops_below_the_public_suffix() {
        assert_eq!(
            adn_candidates("a.b.example.com"),
            ["a.b.example.com", "b.example.com", "example.com"]
        );
        assert_eq!(
            adn_candidates("*.shop.example.co.uk"),
            ["shop.example.co.uk", "example.co.uk"]
        );
    }

    #[test]
    fn approvers_are_constructed_mailboxes_up_the_tree() {
        assert!(is_approver("www.example.com", "admin@example.com"));
        assert!(is_approver("www.example.com", "webmaster@www.example.com"));
        assert!(!is_approver("www.example.com", "admin@com"));
        assert!(!is_approver("www.example.com", "root@example.com"));
    }
}
