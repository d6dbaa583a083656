//! `PropagationCheck`: is a token visible everywhere the CA will look? One round per call,
//! with the result per nameserver (or per HTTP fetch) so "stuck" always has a reason.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::Challenge;
use crate::provider::ErrorKind;

/// What one server said in one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum ServerOutcome {
    /// Exactly the expected value is there.
    Present,
    /// The name does not exist.
    Nxdomain,
    /// The name exists but has no record of this type.
    NoData,
    /// Records of this type exist but none has the expected value (values listed).
    OtherValue(Vec<String>),
    Servfail,
    Refused,
    Timeout,
    /// Anything else (transport error, HTTP status, …), described.
    Error(String),
}

impl ServerOutcome {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ServerOutcome::Present => "present",
            ServerOutcome::Nxdomain => "nxdomain",
            ServerOutcome::NoData => "nodata",
            ServerOutcome::OtherValue(_) => "other_value",
            ServerOutcome::Servfail => "servfail",
            ServerOutcome::Refused => "refused",
            ServerOutcome::Timeout => "timeout",
            ServerOutcome::Error(_) => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerResult {
    /// Who was asked, e.g. `ns1.example.com (192.0.2.1:53)`, a resolver, or a URL.
    pub server: String,
    pub outcome: ServerOutcome,
}

/// One round of checking one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// True only when every server that must have the token has exactly it.
    pub present: bool,
    /// The name the lookup ended at after following CNAMEs (equal to the token name
    /// when there was no CNAME).
    pub final_name: String,
    pub servers: Vec<ServerResult>,
}

impl CheckReport {
    /// One line for logs and `orders show`: `ns1 (…): present; ns2 (…): nxdomain`.
    pub fn summary(&self) -> String {
        self.servers
            .iter()
            .map(|s| match &s.outcome {
                ServerOutcome::OtherValue(v) => format!("{}: other value {:?}", s.server, v),
                ServerOutcome::Error(e) => format!("{}: error {e}", s.server),
                o => format!("{}: {}", s.server, o.metric_label()),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The check could not run at all (e.g. no nameserver for the zone could be found).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("checking {what} failed: {detail}")]
pub struct DnsError {
    pub what: String,
    pub detail: String,
    pub kind: ErrorKind,
}

/// One round of the self-check of a token: DNS (authoritative/recursive) or HTTP fetch.
#[async_trait]
pub trait PropagationCheck: Send + Sync {
    async fn check(&self, challenge: &Challenge) -> Result<CheckReport, DnsError>;

    /// If the DNS owner name `name` is a CNAME into another zone, the name a TXT token
    /// must be published at instead (the end of the chain); `None` otherwise.
    async fn delegated_to(&self, _name: &str) -> Result<Option<String>, DnsError> {
        Ok(None)
    }
}

pub mod dns;
pub mod http;
pub mod query;
pub mod table;
pub mod zone;

pub use table::{check_once, render_table};

use std::sync::Arc;

use crate::config::{DnsConfig, HttpCheckConfig};

/// Routes DNS challenges to the DNS check and HTTP(S) challenges to the HTTP self-check.
pub struct Router {
    dns: dns::DnsCheck,
    http: http::HttpCheck,
}

#[async_trait]
impl PropagationCheck for Router {
    async fn check(&self, challenge: &Challenge) -> Result<CheckReport, DnsError> {
        match dns::Expect::from_challenge(challenge) {
            Some(expect) => self.dns.check_name(&challenge.name, &expect).await,
            None => self.http.check(challenge).await,
        }
    }

    async fn delegated_to(&self, name: &str) -> Result<Option<String>, DnsError> {
        self.dns.delegated_to(name).await
    }
}

/// Builds the DNS part of the check from `[dns]`.
pub fn build_dns(cfg: &DnsConfig) -> Result<dns::DnsCheck, String> {
    let resolvers = dns::resolver_addrs(&cfg.resolvers)?;
    let overrides = zone::parse_overrides(&cfg.nameserver_overrides)?;
    let finder = zone::ZoneFinder::new(resolvers, overrides, cfg.query_timeout);
    Ok(dns::DnsCheck::new(finder, cfg.check, cfg.query_timeout))
}

/// Builds the checker the engine uses, from `[dns]` and `[http_check]`.
pub fn build(dns: &DnsConfig, http: &HttpCheckConfig) -> Result<Arc<dyn PropagationCheck>, String> {
    Ok(Arc::new(Router {
        dns: build_dns(dns)?,
        http: http::HttpCheck::new(http)?,
    }))
}
