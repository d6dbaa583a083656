//! `PropagationCheck`: is a token visible everywhere the CA will look? One round per call,
//! with the result per nameserver (or per HTTP fetch) so "stuck" always has a reason.

use async_trait::async_trait;

use crate::model::Challenge;
use crate::model::ErrorKind;

pub use crate::model::check::{CheckReport, ServerOutcome, ServerResult};

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
