//! Sectigo reseller ("trust-provider") API client implementing [`Provider`].
//!
//! Calls per operation (each is one POST unless noted):
//! - `submit`: `!AutoApplySSL` (+ one `!GetDCVEmailAddressList` per e-mail name whose
//!   approver list is not cached from the last 24 h).
//! - `find_order`: `!WebHostReport` pages (10 rows each) until one comes back empty, then
//!   one `download/CollectSSL queryType=0` per candidate (see `recovery`).
//! - `order_by_id`: `download/CollectSSL queryType=0` (+ `!GetMDCDomainDetails` for a
//!   multi-name request).
//! - `challenges`: none (computed from the CSR hashes).
//! - `trigger_check`: `!ResendDCVEmail`, which resets Sectigo's re-test schedule
//!   (reference §1.5). `change_method`: `!AutoUpdateDCV`, split into several calls when
//!   the documented lengths (`newMethods` 32, `domainNames` 255 …) require it.
//!   A -4 "'orderNumber' argument is invalid" answer to either is confirmed with one
//!   `download/CollectSSL queryType=0`.
//! - `status`: `!GetMDCDomainDetails` (multi-domain orders; once refused for an order it is
//!   not asked again), plus `download/CollectSSL queryType=0` only when every name has just
//!   become validated, after a re-check was triggered on an order without per-name status,
//!   or when the last collect is older than `collect_interval` (3 h by default, Sectigo's
//!   "no more frequently than once every 3 hours"); never concurrently (`collect_lock`).
//! - `download`: `download/CollectSSL queryType=1`.
//! - `cancel`: `!AutoRefund` (not issued) or `!AutoRevokeSSL` (issued).
//!
//! A single-name `dns-cname` order costs 5 calls from submit to download when the first
//! status poll comes after the re-check: AutoApplySSL, ResendDCVEmail, GetMDCDomainDetails
//! (refused), CollectSSL(0), CollectSSL(1); one CollectSSL(0) more when a poll comes first.

mod approvers;
mod chain;
mod dcv;
pub mod hashes;
mod order;
mod recovery;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ca::Lookup;
use crate::ca::limit::Limiter;
use crate::ca::transport::{ClientOptions, Transport};
use crate::ca::{
    CaStatus, IssuedChain, MethodScope, OrderRef, Provider, ProviderError, SubmitRequest,
    Submitted, Tokens,
};
use crate::config::SectigoConfig;
use crate::model::{DcvMethod, DomainName, ProviderKind};
use wire::Reply;

/// What dcvd keeps about a Sectigo order (stored as the order's `ca_data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderData {
    #[serde(rename = "orderNumber")]
    pub order_number: String,
    #[serde(rename = "certificateID", default)]
    pub certificate_id: Option<String>,
    #[serde(rename = "uniqueValue")]
    pub unique_value: String,
    #[serde(rename = "dcvSuffix")]
    pub dcv_suffix: String,
    /// Current method per name (what `trigger_check` re-sends).
    #[serde(default)]
    pub methods: BTreeMap<String, DcvMethod>,
    /// Approver address per e-mail name.
    #[serde(default)]
    pub emails: BTreeMap<String, String>,
    /// Unix seconds of the last `CollectSSL` for this order (submit time at first).
    #[serde(rename = "lastCollect", default)]
    pub last_collect: Option<i64>,
    /// Set once a CollectSSL ran after every name was validated.
    #[serde(rename = "collectedWhenValid", default)]
    pub collected_when_valid: bool,
    /// Sectigo refused `!GetMDCDomainDetails` for this order (single-domain orders):
    /// per-name status comes from nowhere else, so it is not asked again.
    #[serde(rename = "mdcRefused", default)]
    pub mdc_refused: bool,
    /// Unix seconds of the last re-check dcvd asked for (`!ResendDCVEmail`).
    #[serde(rename = "lastTrigger", default)]
    pub last_trigger: Option<i64>,
    #[serde(default)]
    pub issued: bool,
}

impl OrderData {
    fn from_ref(provider: &str, order: &OrderRef<'_>) -> Result<Self, ProviderError> {
        order.record(provider, "a Sectigo order record")
    }

    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// One Sectigo account.
pub struct SectigoProvider {
    name: String,
    base_url: String,
    login_name: String,
    password: SecretString,
    /// The client, the limiter (a permit per request) and the 429 pause.
    transport: Transport,
    suffix: String,
    server_software: i64,
    poll_interval: Duration,
    collect_interval: Duration,
    request_timeout: Duration,
    /// `in_flight_margin`: time for a request that left dcvd just before the timeout to
    /// be carried out at Sectigo (queueing on either side; no documented limit).
    in_flight_margin: Duration,
    /// Sectigo asks never to run CollectSSL concurrently: one at a time per account.
    collect_lock: tokio::sync::Mutex<()>,
    /// Approver lists per domain with the end of their 24-hour validity.
    approvers: std::sync::Mutex<HashMap<String, (tokio::time::Instant, Vec<String>)>>,
    clock: crate::clock::SharedClock,
}

impl SectigoProvider {
    pub fn new(name: &str, cfg: &SectigoConfig) -> Result<Self, String> {
        let password = cfg.login_password.clone().ok_or_else(|| {
            format!("provider {name}: login_password is not set (set login_password or login_password_file)")
        })?;
        let transport = Transport::new(
            name,
            &ClientOptions {
                timeout: cfg.request_timeout,
                ..ClientOptions::default()
            },
        )?;
        Ok(Self {
            name: name.to_string(),
            base_url: cfg.base_url.trim_end_matches('/').to_string(),
            login_name: cfg.login_name.clone(),
            password,
            transport,
            suffix: cfg.dcv_suffix.clone(),
            server_software: cfg.server_software,
            poll_interval: cfg.poll_interval,
            collect_interval: cfg.collect_interval,
            request_timeout: cfg.request_timeout,
            in_flight_margin: cfg.in_flight_margin,
            collect_lock: tokio::sync::Mutex::new(()),
            approvers: std::sync::Mutex::new(HashMap::new()),
            clock: crate::clock::system(),
        })
    }

    /// Take a permit from `limiter` for every HTTP request (the provider's `rate_limits`).
    pub fn with_limiter(mut self, limiter: std::sync::Arc<Limiter>) -> Self {
        self.transport = self.transport.with_limiter(limiter);
        self
    }

    /// Read the time from `clock` (the engine's) instead of the system clock.
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// POST one call and parse the answer; `errorCode < 0` is returned as a reply, not
    /// an error, so callers can read order states (-20/-21) themselves.
    async fn call_raw(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<(i64, Reply), ProviderError> {
        let url = format!("{}/{}", self.base_url, endpoint);
        let mut form: Vec<(&str, &str)> = vec![
            ("loginName", self.login_name.as_str()),
            ("loginPassword", self.password.expose_secret()),
        ];
        form.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        // Never the form in an error (it holds the password); the URL has no secret.
        let answer = self
            .transport
            .send(self.transport.http().post(&url).form(&form), endpoint)
            .await?;
        let status = answer.status.as_u16();
        let body = String::from_utf8_lossy(&answer.body);
        if status == 429 {
            // The transport holds every request for the Retry-After, else a minute.
            return Err(ProviderError::new(
                &self.name,
                endpoint,
                crate::ca::ErrorKind::RateLimited,
            )
            .with_status(status)
            .with_retry_after(Some(answer.retry_after.unwrap_or(wire::RATE_LIMIT_PAUSE))));
        }
        if (400..500).contains(&status) && status != 408 {
            // Sectigo answers with an errorCode, never a 4xx: this is a wrong base_url, a
            // renamed endpoint or a proxy/WAF refusing us. Retrying cannot fix it.
            return Err(
                ProviderError::new(&self.name, endpoint, crate::ca::ErrorKind::Permanent)
                    .with_status(status)
                    .with_detail(format!(
                        "{url} answered HTTP {status} ({}), not a Sectigo API answer: \
                         check base_url (normally https://secure.trust-provider.com/products) \
                         and any proxy; dcvd will not retry this call",
                        looks_like(&body)
                    ))
                    .rejected(),
            );
        }
        if !(200..300).contains(&status) {
            return Err(ProviderError::malformed(
                &self.name,
                endpoint,
                status,
                format!("{url} answered HTTP {status}; will retry"),
            ));
        }
        let reply = Reply::parse(&body).map_err(|e| {
            ProviderError::malformed(
                &self.name,
                endpoint,
                status,
                format!(
                    "{url} answered {} that is not a Sectigo API answer ({e}); will retry",
                    looks_like(&body)
                ),
            )
        })?;
        let code = reply.error_code().ok_or_else(|| {
            ProviderError::malformed(
                &self.name,
                endpoint,
                status,
                "answer has no numeric errorCode",
            )
        })?;
        if code == -42 {
            self.transport.pause(Some(wire::RATE_LIMIT_PAUSE));
        }
        Ok((code, reply))
    }

    /// `call_raw` with every negative `errorCode` turned into an error.
    async fn call(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<Reply, ProviderError> {
        let (code, reply) = self.call_raw(endpoint, params).await?;
        if code < 0 {
            let e = wire::api_error(&self.name, endpoint, code, &reply);
            tracing::debug!(provider = %self.name, endpoint, code, error = %e, "Sectigo refused a call");
            return Err(e);
        }
        Ok(reply)
    }

    fn permanent(&self, endpoint: &str, detail: String) -> ProviderError {
        ProviderError::new(&self.name, endpoint, crate::ca::ErrorKind::Permanent)
            .with_detail(detail)
    }
}

/// A short description of a body that is not an API answer, for error messages.
fn looks_like(body: &str) -> String {
    let t = body.trim_start();
    if t.is_empty() {
        "an empty body".into()
    } else if t.starts_with('<') {
        "an HTML page".into()
    } else {
        format!("{:?}", t.chars().take(40).collect::<String>())
    }
}

/// A method longer than a few lines is written as the inherent method of the same name in
/// the file for its job (`order.rs`, `recovery.rs`, `dcv.rs`); `self.submit(..)` below calls that one
/// (inherent methods come first in Rust's method lookup), it does not recurse.
#[async_trait]
impl Provider for SectigoProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sectigo
    }
    fn method_scope(&self) -> MethodScope {
        MethodScope::PerName
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        self.submit(req).await
    }

    async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        self.find_order(req).await
    }

    async fn order_by_id(
        &self,
        req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError> {
        self.order_by_id(req, ca_order_id).await
    }

    /// `request_timeout` + `in_flight_margin` (5 minutes by default): reqwest gives up on the submit after
    /// `request_timeout`, and Sectigo carries out what it received within the margin.
    fn in_flight_bound(&self) -> Duration {
        self.request_timeout + self.in_flight_margin
    }

    async fn challenges(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        Ok(Tokens {
            challenges: self.compute_challenges(&data, order.csr_der, names)?,
            ca_data: None,
        })
    }

    async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        self.status(order).await
    }

    async fn change_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        approver_emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        self.change_method(order, names, method, approver_emails)
            .await
    }

    async fn resend_emails(
        &self,
        order: OrderRef<'_>,
        approver_emails: &[(DomainName, String)],
        _locale: &str,
    ) -> Result<(), ProviderError> {
        self.resend_emails(order, approver_emails).await
    }

    async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        self.trigger_check(order, names).await
    }

    async fn approver_emails(&self, name: &DomainName) -> Result<Vec<String>, ProviderError> {
        self.fetch_approvers(name.base()).await
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
}
