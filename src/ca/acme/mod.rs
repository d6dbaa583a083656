//! ACME (RFC 8555, with External Account Binding and ARI) provider, over instant-acme.
//!
//! Neutral methods map to ACME challenges: `dns-txt` → dns-01 (TXT at
//! `_acme-challenge.<name>` = base64url(SHA-256(key authorization))), `http` → http-01
//! (`/.well-known/acme-challenge/<token>` = key authorization), `dns-cname` → dns-01 via a
//! `_acme-challenge.<name>` CNAME the operator delegated once: `challenges` follows that
//! CNAME (with the propagation checker's DNS settings) and hands out the TXT at its
//! target, which is where the publisher writes and the check looks.
//!
//! The order URL is the CA order id; `ca_data` keeps the method per name ([`OrderData`]).
//! Requests per call: `submit` new-order + one per authorization; `challenges`,
//! `trigger_check`, `status` and `cancel` fetch the order and its authorizations (plus one
//! POST per challenge told ready / authorization deactivated; `status` skips the
//! authorizations once the order is ready); `download` fetches the order, finalizes with
//! our CSR when it is `ready`, polls it (≤ [`DOWNLOAD_WAIT`], honouring Retry-After) and
//! fetches the chain. instant-acme retries `badNonce` answers itself.
//!
//! Crash recovery: ACME cannot list orders by our reference (Let's Encrypt does not serve
//! the account's `orders` list), so `find_order` answers `None` and the engine places a
//! new order. An abandoned pending order costs nothing at an ACME CA and expires there.
//! A failed challenge makes the whole ACME order invalid (RFC 8555 §7.1.6), so falling back
//! to another method after the CA said `invalid` needs a new order; fallbacks before the
//! CA was asked (publisher refused, propagation timeout) stay within the order.

mod account;
mod http;
mod issue;
mod order;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretSlice;
use serde::{Deserialize, Serialize};

use crate::ca::Lookup;
use crate::ca::transport::{ClientOptions, Transport};
use crate::ca::{
    CaStatus, ErrorKind, IssuedChain, MethodScope, OrderRef, Provider, ProviderError,
    SubmitRequest, Submitted, Tokens,
};
use crate::config::{AcmeConfig, DnsConfig};
use crate::model::{DcvMethod, DomainName, ProviderKind};

/// Longest `download` waits for an order the CA is still processing before it returns a
/// transient error (the engine then retries with backoff).
pub const DOWNLOAD_WAIT: Duration = Duration::from_secs(10);

/// What dcvd keeps about an ACME order (its `ca_data`): the method in use per name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderData {
    #[serde(default)]
    pub methods: BTreeMap<String, DcvMethod>,
}

impl OrderData {
    fn from_ref(provider: &str, order: &OrderRef<'_>) -> Result<Self, ProviderError> {
        order.record(provider, "an ACME order record")
    }

    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// One ACME account at one directory.
pub struct AcmeProvider {
    name: String,
    directory_url: String,
    /// `mailto:` URIs.
    contact: Vec<String>,
    eab: Option<(String, SecretSlice<u8>)>,
    /// The client (`ca_file` roots, timeout), a permit per request, the 429 pause.
    transport: Transport,
    store: Arc<dyn AccountStore>,
    /// Follows `_acme-challenge` CNAMEs for `dns-cname` (the checker's `[dns]` settings).
    /// Kept here rather than left to the publish step's `PropagationCheck::delegated_to`:
    /// for `dns-cname` a missing CNAME must be an error ("create it, or use dns-txt"),
    /// where the step would publish at the owner name as for `dns-txt`, and the token's
    /// stored name is the target every server agrees on.
    dns: Arc<crate::dcv::check::dns::DnsCheck>,
    account: tokio::sync::OnceCell<instant_acme::Account>,
    poll_interval: Duration,
    /// Set once the directory turned out to have no renewalInfo (ARI).
    ari_unsupported: std::sync::atomic::AtomicBool,
    clock: crate::clock::SharedClock,
}

pub use crate::config::tls::{decode_eab_key, load_roots};
pub use account::{AccountStore, AcmeAccount};

impl AcmeProvider {
    /// Nothing is sent until the first order: the account is loaded from (or registered
    /// and written to) `store` then.
    pub fn new(
        name: &str,
        cfg: &AcmeConfig,
        dns: &DnsConfig,
        store: Arc<dyn AccountStore>,
    ) -> Result<Self, String> {
        if !cfg.terms_accepted {
            return Err("terms_accepted must be true".into());
        }
        let eab = match (&cfg.eab_kid, &cfg.eab_hmac_key) {
            (Some(kid), Some(key)) => Some((kid.clone(), SecretSlice::from(decode_eab_key(key)?))),
            (None, None) => None,
            _ => return Err("eab_kid and eab_hmac_key must be set together".into()),
        };
        let roots = match &cfg.ca_file {
            Some(f) => Some(load_roots(f).map_err(|e| format!("ca_file: {e}"))?),
            None => None,
        };
        let transport = Transport::new(
            name,
            &ClientOptions {
                timeout: cfg.request_timeout,
                connect_timeout: None,
                roots,
            },
        )?;
        let dns = crate::dcv::check::build_dns(dns).map_err(|e| format!("dns: {e}"))?;
        Ok(Self {
            name: name.to_string(),
            directory_url: cfg.directory_url.clone(),
            contact: cfg
                .contact
                .iter()
                .map(|c| match c.starts_with("mailto:") {
                    true => c.clone(),
                    false => format!("mailto:{c}"),
                })
                .collect(),
            eab,
            transport,
            store,
            dns: Arc::new(dns),
            account: tokio::sync::OnceCell::new(),
            poll_interval: cfg.poll_interval,
            ari_unsupported: std::sync::atomic::AtomicBool::new(false),
            clock: crate::clock::system(),
        })
    }

    /// Take a permit from `limiter` for every HTTP request (set before the first order:
    /// the account keeps the transport it was made with).
    pub fn with_limiter(mut self, limiter: Arc<crate::ca::limit::Limiter>) -> Self {
        self.transport = self.transport.with_limiter(limiter);
        self
    }

    /// Read the time from `clock` (the engine's) instead of the system clock.
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn err(&self, endpoint: &str, e: instant_acme::Error, seen: http::Seen) -> ProviderError {
        let err = http::map_error(&self.name, endpoint, e, seen);
        if err.kind == ErrorKind::RateLimited && err.status != Some(429) {
            // A `rateLimited` problem under another status: hold every request of this
            // provider too (the transport already did for a 429).
            self.transport.pause(err.retry_after);
        }
        err
    }

    fn permanent(&self, endpoint: &str, detail: String) -> ProviderError {
        ProviderError::new(&self.name, endpoint, ErrorKind::Permanent).with_detail(detail)
    }
}

/// A method longer than a few lines is written as the inherent method of the same name in
/// the file for its job (`order.rs`, `issue.rs`); `self.submit(..)` below calls that one
/// (inherent methods come first in Rust's method lookup), it does not recurse.
#[async_trait]
impl Provider for AcmeProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Acme
    }
    fn method_scope(&self) -> MethodScope {
        MethodScope::PerName
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        self.submit(req).await
    }

    /// ACME cannot find an order by our reference: `None`, so a new order is placed.
    async fn find_order(&self, _req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        // An ACME order is free and an abandoned one expires by itself: a new one is fine.
        Ok(Lookup::NotFound)
    }

    async fn order_by_id(
        &self,
        _req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError> {
        Err(self.permanent(
            "order_by_id",
            format!(
                "ACME orders are not adopted by hand ({ca_order_id}); a new order costs nothing"
            ),
        ))
    }

    async fn challenges(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        self.tokens(order, names).await
    }

    async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        self.status(order).await
    }

    /// Per name and without a CA call of its own: the authorization offers every challenge
    /// type, so switching is picking another one.
    async fn change_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        _approver_emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        if !ProviderKind::Acme.supports(method) {
            return Err(self
                .permanent("change_method", format!("ACME has no {method} validation"))
                .rejected());
        }
        let pairs: Vec<(DomainName, DcvMethod)> =
            names.iter().map(|n| (n.clone(), method)).collect();
        self.tokens(order, &pairs).await
    }

    async fn resend_emails(
        &self,
        _order: OrderRef<'_>,
        _approver_emails: &[(DomainName, String)],
        _locale: &str,
    ) -> Result<(), ProviderError> {
        Err(self.permanent("resend_emails", "ACME has no e-mail validation".into()))
    }

    async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        self.trigger_check(order, names).await
    }

    async fn approver_emails(&self, _name: &DomainName) -> Result<Vec<String>, ProviderError> {
        Err(self.permanent("approver_emails", "ACME has no e-mail validation".into()))
    }

    async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        self.download(order).await
    }

    async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        self.cancel(order).await
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn suggests_renewal_windows(&self) -> bool {
        true
    }

    async fn renewal_window(&self, cert_pem: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.renewal_window(cert_pem).await
    }
}
