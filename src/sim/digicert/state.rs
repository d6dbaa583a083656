//! The DigiCert simulator's orders and their DCV: random values with expiry, real token
//! lookups (DNS/HTTP via `DcvLookup`), email approval, and issuance by `SimCa`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngExt;
use serde::Serialize;

use super::DigicertSimOptions;
use crate::sim::ca::SimCa;
use crate::sim::server::{ApproveError, FaultInjector};
use crate::sim::{DcvLookup, RequestLog};

/// Where DigiCert looks for tokens (reference/digicert.md §2), written here from the
/// docs rather than taken from the client.
const DNSAUTH_LABEL: &str = "_dnsauth";
const CNAME_TARGET_ZONE: &str = "dcv.digicert.com";
pub const HTTP_TOKEN_PATH: &str = "/.well-known/pki-validation/fileauth.txt";

/// A `dcv_emails[]` entry of the order POST as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimDcvEmail {
    pub dns_name: String,
    pub email_domain: String,
    pub email: Option<String>,
}

/// One `domain_approval_emails[]` entry of a resend-emails body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimApprovalEmail {
    pub domain: String,
    pub email: String,
    pub email_domain: Option<String>,
}

/// A resend-emails body as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimResend {
    pub domain_approval_emails: Vec<SimApprovalEmail>,
    pub locale: Option<String>,
}

/// One order as the simulator keeps it. Serialised for `GET /_sim/orders`.
#[derive(Debug, Clone, Serialize)]
pub struct SimOrder {
    pub id: u64,
    pub certificate_id: u64,
    pub product: String,
    /// Common name first.
    pub names: Vec<String>,
    /// The DER of the CSR the order was placed with.
    #[serde(skip)]
    pub csr_der: Vec<u8>,
    /// The order POST body exactly as received (tests: what the client sent).
    pub request: serde_json::Value,
    /// GET order info answers `certificate.csr: null` (`DigicertSim::forget_csr`).
    pub hide_csr: bool,
    /// Certificate validity the order asked for, in days.
    pub validity_days: u32,
    pub status: String,
    pub dcv_method: String,
    pub random_value: String,
    pub random_value_expires: DateTime<Utc>,
    pub validated: BTreeSet<String>,
    pub comments: Option<String>,
    pub date_created: DateTime<Utc>,
    pub renewal_of_order_id: Option<u64>,
    pub dcv_emails: Vec<SimDcvEmail>,
    pub locale: Option<String>,
    /// Every resend-emails body received, in order.
    pub resent_emails: Vec<SimResend>,
    pub method_changes: u32,
    #[serde(skip)]
    pub leaf_pem: Option<String>,
    #[serde(skip)]
    pub chain_pem: Vec<String>,
}

impl SimOrder {
    pub fn is_wildcard(&self) -> bool {
        self.names.iter().any(|n| n.starts_with("*."))
    }
    pub fn expiration(&self) -> String {
        self.random_value_expires
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }
}

pub struct Sim {
    pub opts: DigicertSimOptions,
    pub ca: SimCa,
    pub lookup: DcvLookup,
    pub log: std::sync::Arc<RequestLog>,
    pub orders: Mutex<BTreeMap<u64, SimOrder>>,
    /// Send times per API key, for the sliding-window limits.
    pub sent: Mutex<BTreeMap<String, VecDeque<Instant>>>,
    /// Random and forced faults (`crate::sim::server::FaultInjector`).
    pub faults: FaultInjector,
    /// Next order id (orders created by delayed tasks may finish in any order).
    pub next_id: std::sync::atomic::AtomicU64,
    /// Lifetime of new random values (starts as `opts.random_value_lifetime`).
    pub lifetime: Mutex<Duration>,
}

pub fn random_value() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Sim {
    /// The simulator's time (`DigicertSimOptions::clock`).
    pub fn now(&self) -> DateTime<Utc> {
        self.opts.clock.now()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SimOrder>> {
        self.orders.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lifetime(&self) -> chrono::Duration {
        let d = *self.lifetime.lock().unwrap_or_else(|p| p.into_inner());
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(30))
    }

    /// True when the request fits the sliding windows (and counts it).
    pub fn admit(&self, key: &str) -> bool {
        if !self.opts.rate_limits {
            return true;
        }
        let now = Instant::now();
        let scale = self.opts.rate_limit_scale.max(0.000_001);
        let windows = [
            (100usize, Duration::from_secs(5).mul_f64(scale)),
            (1000usize, Duration::from_secs(300).mul_f64(scale)),
        ];
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let q = sent.entry(key.to_string()).or_default();
        let longest = windows.iter().map(|w| w.1).max().unwrap_or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) > longest) {
            q.pop_front();
        }
        for (n, w) in windows {
            if q.iter().filter(|t| now.duration_since(**t) <= w).count() >= n {
                return false;
            }
        }
        q.push_back(now);
        true
    }

    /// Look for one name's token where DigiCert would.
    async fn token_present(&self, name: &str, method: &str, random: &str) -> bool {
        let base = name.strip_prefix("*.").unwrap_or(name);
        let dnsauth = format!("{DNSAUTH_LABEL}.{base}");
        match method {
            "dns-txt-token" => {
                for owner in [dnsauth.as_str(), base] {
                    if self
                        .lookup
                        .txt(owner)
                        .await
                        .iter()
                        .any(|v| v.trim() == random)
                    {
                        return true;
                    }
                }
                false
            }
            "dns-cname-token" => {
                let want = format!("{random}.{CNAME_TARGET_ZONE}");
                self.lookup.cname(&dnsauth).await.contains(&want)
            }
            "http-token" if !name.starts_with("*.") => self
                .lookup
                .http_body(false, name, HTTP_TOKEN_PATH)
                .await
                .is_some_and(|b| b.trim() == random),
            _ => false,
        }
    }

    /// Check every name of a pending token order; issue when all are valid.
    /// Returns per-name validity, or `None` when the order is unknown.
    pub async fn validate(&self, id: u64) -> Option<Vec<(String, bool)>> {
        let (names, method, random, expired, status) = {
            let orders = self.lock();
            let o = orders.get(&id)?;
            (
                o.names.clone(),
                o.dcv_method.clone(),
                o.random_value.clone(),
                o.random_value_expires <= self.now(),
                o.status.clone(),
            )
        };
        if status != "pending" || method == "email" {
            let valid = status == "issued";
            return Some(names.into_iter().map(|n| (n, valid)).collect());
        }
        let mut found = Vec::new();
        for n in &names {
            // An expired random value proves nothing, even if it is still published.
            let ok = !expired && self.token_present(n, &method, &random).await;
            found.push((n.clone(), ok));
        }
        let mut orders = self.lock();
        let o = orders.get_mut(&id)?;
        if o.random_value != random || o.status != "pending" {
            // Changed while we looked (method switch, cancel): report, don't apply.
            return Some(found);
        }
        for (n, ok) in &found {
            if *ok {
                o.validated.insert(n.clone());
            }
        }
        let result: Vec<(String, bool)> = o
            .names
            .iter()
            .map(|n| (n.clone(), o.validated.contains(n)))
            .collect();
        if result.iter().all(|(_, ok)| *ok) {
            self.issue(o);
        }
        Some(result)
    }

    /// The approver clicked the link: every name of an email order is validated.
    pub fn approve_email(&self, id: u64) -> Result<(), ApproveError> {
        let mut orders = self.lock();
        let o = orders.get_mut(&id).ok_or(ApproveError::NotFound(id))?;
        if o.status != "pending" {
            return Err(ApproveError::NotPending {
                id,
                state: o.status.clone(),
            });
        }
        o.validated = o.names.iter().cloned().collect();
        self.issue(o);
        Ok(())
    }

    fn issue(&self, o: &mut SimOrder) {
        match self.ca.issue(&o.csr_der, &o.names) {
            Ok((leaf, chain)) => {
                o.leaf_pem = Some(leaf);
                o.chain_pem = chain;
                o.status = "issued".into();
            }
            Err(e) => {
                tracing::warn!(order_id = o.id, error = %e, "simulator could not issue; order rejected");
                o.status = "rejected".into();
            }
        }
    }

    /// One background round: what DigiCert's own polling does (token re-checks only
    /// when `recheck`; due email auto-approvals always).
    pub async fn background_round(&self, recheck: bool) {
        let now = self.now();
        let (token_orders, emails): (Vec<u64>, Vec<u64>) = {
            let orders = self.lock();
            let pending = orders.values().filter(|o| o.status == "pending");
            let mut t = Vec::new();
            let mut e = Vec::new();
            for o in pending {
                if o.dcv_method == "email" {
                    let due = self.opts.auto_approve_email_after.is_some_and(|d| {
                        chrono::Duration::from_std(d).is_ok_and(|d| o.date_created + d <= now)
                    });
                    if due {
                        e.push(o.id);
                    }
                } else {
                    t.push(o.id);
                }
            }
            (t, e)
        };
        for id in emails {
            let _ = self.approve_email(id);
        }
        if recheck {
            for id in token_orders {
                self.validate(id).await;
            }
        }
    }
}
