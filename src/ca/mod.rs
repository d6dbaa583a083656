//! The CA-neutral `Provider` trait, its request/response types and `ProviderError`.
//!
//! Each implementation (`digicert`, `sectigo`, `acme`) maps these neutral calls to its wire
//! API; all three send their HTTP requests through one [`transport::Transport`] (client,
//! rate-limit permit per request, the pause on "rate limited", transport errors).
//! Provider-private facts about an order (DigiCert certificate id and random value,
//! Sectigo uniqueValue …) travel as the opaque JSON `ca_data`, which the engine stores
//! with the order and hands back on every call.

pub mod acme;
pub mod digicert;
pub mod error;
pub mod limit;
pub mod sectigo;
pub mod transport;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{Challenge, DcvMethod, DomainName, KeyType, ProviderKind};

pub use crate::model::{CaOrderState, MethodScope, NameDcv};
pub use error::{ApiError, ErrorKind, ProviderError};

/// Everything a CA needs to place an order. Built by the engine from config + stored key.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// Our own reference for the order (`dcvd-…`), written to the CA so that crash
    /// recovery can recognise the order (DigiCert `comments`, Sectigo `uniqueValue`).
    pub reference: String,
    pub certificate: String,
    pub product: String,
    /// Common name first, then the other names; no duplicates.
    pub names: Vec<DomainName>,
    pub csr_pem: String,
    pub csr_der: Vec<u8>,
    pub key_type: KeyType,
    /// Initial method per name, in `names` order.
    pub methods: Vec<DcvMethod>,
    /// Approver address for names whose method is `email`.
    pub approver_emails: Vec<(DomainName, String)>,
    pub locale: String,
    pub validity_days: Option<u32>,
    /// CA order id of the order this one renews, when known.
    pub renewal_of: Option<String>,
    /// When the intent was written: the start of the window recovery searches.
    pub created_at: DateTime<Utc>,
    /// CA order ids dcvd already tracks at this provider (any certificate's order):
    /// recovery never adopts one of them a second time.
    pub known_ca_orders: Vec<String>,
}

/// What the engine knows of a placed order; passed back to every call.
#[derive(Debug, Clone, Copy)]
pub struct OrderRef<'a> {
    pub reference: &'a str,
    pub ca_order_id: &'a str,
    pub ca_data: &'a serde_json::Value,
    pub names: &'a [DomainName],
    pub csr_der: &'a [u8],
}

impl OrderRef<'_> {
    /// The provider's record stored with this order (its `ca_data`), read as `T` without
    /// a copy. One that is not such a record (a damaged row, another provider's) is a
    /// Permanent error naming the order: carrying on with defaults would lose the CA's ids
    /// without a word. `what` names the record for the operator ("a Sectigo order record").
    pub fn record<T: serde::de::DeserializeOwned>(
        &self,
        provider: &str,
        what: &str,
    ) -> Result<T, ProviderError> {
        T::deserialize(self.ca_data).map_err(|e| {
            ProviderError::new(provider, "ca_data", ErrorKind::Permanent).with_detail(format!(
                "stored ca_data of order {} is not {what}: {e}",
                self.ca_order_id
            ))
        })
    }
}

/// The CA accepted an order (or recovery found it).
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub ca_order_id: String,
    pub ca_data: serde_json::Value,
    /// Tokens to publish, per name, when the CA already told us (may be empty).
    pub challenges: Vec<(DomainName, Challenge)>,
    /// Set when the CA issued at once (e.g. DigiCert with pre-validated domains).
    pub issued: bool,
}

/// What crash recovery learned from the CA about a submit that may have reached it.
///
/// A second order is a second purchase, so only `NotFound` lets the engine submit again,
/// and only once the first request can no longer be in flight
/// (`Provider::in_flight_bound` after the intent was written).
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The CA positively shows no order placed for this request: every source the
    /// provider searches was read in full and none matched.
    NotFound,
    /// Orders that are certainly ours (DigiCert: the order's CSR is the one in the submit
    /// intent; Sectigo: a report row confirmed by a status call), oldest first. More than
    /// one means duplicates: the engine keeps the first and cancels the others.
    Found(Vec<Submitted>),
    /// The CA's answer does not settle it (two possible candidates, a report call
    /// refused, a field missing). The order waits for the operator.
    Unsure {
        /// For the operator: what was seen and why it does not decide.
        reason: String,
        /// CA order ids that may be ours.
        candidates: Vec<String>,
    },
}

/// The result of a method change or token refresh.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tokens {
    pub challenges: Vec<(DomainName, Challenge)>,
    /// Replacement for the stored `ca_data`, when the call changed it.
    pub ca_data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaStatus {
    pub order: CaOrderState,
    /// Names the CA reported on; names absent here are unknown (treated as pending).
    pub names: Vec<(DomainName, NameDcv)>,
    pub ca_data: Option<serde_json::Value>,
}

/// The issued certificate as PEM blocks, leaf first, then intermediates towards the root.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedChain {
    pub leaf_pem: String,
    pub chain_pem: Vec<String>,
}

impl IssuedChain {
    /// A PEM bundle as the CA sent it, leaf first, read strictly (`pki::pem`): a block
    /// cut short, stray text or a damaged certificate is an error, never a shorter chain.
    pub fn from_bundle(bundle: &str) -> Result<Self, crate::pki::pem::PemError> {
        let mut blocks = crate::pki::pem::split_certificates(bundle)?.into_iter();
        // `split_certificates` never returns an empty list.
        let leaf_pem = blocks.next().unwrap_or_default();
        Ok(Self {
            leaf_pem,
            chain_pem: blocks.collect(),
        })
    }
}

/// One CA account. Implementations hold their HTTP client and credentials; they keep
/// no per-order state (that lives in the database via `ca_data`).
///
/// Every method is a single CA request (or a small fixed number, documented on the
/// implementation) and is safe to repeat: the engine may call it again after a crash.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The configured provider name (`[providers.<name>]`).
    fn name(&self) -> &str;
    fn kind(&self) -> ProviderKind;
    fn method_scope(&self) -> MethodScope;

    /// Place a new order.
    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError>;

    /// Crash recovery: look for orders placed for `req` (see [`Lookup`]); the window
    /// searched starts at `req.created_at`. Safe to repeat.
    async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError>;

    /// Operator adoption (`dcvd orders adopt`): read CA order `ca_order_id` and describe
    /// it as the answer to submitting `req`. Refused (Permanent) when the CA order's names
    /// are not `req.names`.
    async fn order_by_id(
        &self,
        req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError>;

    /// How long after a submit request left it may still land at the CA as an order:
    /// the request timeout plus a margin. Recovery never concludes "no order" earlier.
    fn in_flight_bound(&self) -> Duration {
        Duration::from_secs(5 * 60)
    }

    /// Current tokens for the given names (e.g. DigiCert's `dcv-random-value`, which
    /// renews an expired value; Sectigo computes them locally without a call).
    async fn challenges(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError>;

    async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError>;

    /// Switch the DCV method. With `MethodScope::PerOrder`, `names` holds every name
    /// still pending and all get `method`.
    async fn change_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        approver_emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError>;

    async fn resend_emails(
        &self,
        order: OrderRef<'_>,
        approver_emails: &[(DomainName, String)],
        locale: &str,
    ) -> Result<(), ProviderError>;

    /// Ask the CA to check DCV now. Called only after our own check saw the tokens.
    /// "Token not found yet" answers are `Ok` with the names still pending.
    async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError>;

    /// Addresses the CA accepts as approvers for `name`.
    async fn approver_emails(&self, name: &DomainName) -> Result<Vec<String>, ProviderError>;

    async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError>;

    async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError>;

    /// True when the stored tokens are about to expire and `challenges()` should be
    /// called to get fresh ones (DigiCert random values live 30 days).
    fn tokens_need_refresh(&self, _ca_data: &serde_json::Value) -> bool {
        false
    }

    /// How often to poll order status while waiting on the CA.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// True for providers whose `renewal_window` can return a window (ACME with ARI):
    /// the engine reads the issued certificate only for those.
    fn suggests_renewal_windows(&self) -> bool {
        false
    }

    /// The CA's suggested renewal window for an issued certificate (ACME Renewal
    /// Information, RFC 9773), when the CA offers one. `None`: `renew_before` alone decides.
    async fn renewal_window(&self, _cert_pem: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        None
    }
}

/// The constructed approver mailboxes CAs accept (CA/B Forum BR 3.2.2.4.4).
pub const CONSTRUCTED_MAILBOXES: &[&str] = &[
    "admin",
    "administrator",
    "webmaster",
    "hostmaster",
    "postmaster",
];
