//! DigiCert CertCentral Services API v2 implementation of the `Provider` trait.
//!
//! One call per trait method except where documented: `find_order` (list pages, then
//! order details for candidates, then the random value), `order_by_id` (order details,
//! then the random value), `download` without a stored certificate id (order details
//! first) and `change_method` to email with approvers (method change, then resend-emails
//! to the configured approvers in the certificate's locale).

pub mod client;
pub mod data;
mod dcv;
mod order;
mod recover;
pub mod tokens;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::SecretString;

use self::client::Api;
use self::data::CaData;
use self::dcv::names_from;
use self::tokens::TxtPlacement;
use self::wire::*;
use crate::ca::Lookup;
use crate::ca::{
    CaOrderState, CaStatus, ErrorKind, IssuedChain, MethodScope, NameDcv, OrderRef, Provider,
    ProviderError, SubmitRequest, Submitted, Tokens,
};
use crate::config::DigicertConfig;
use crate::model::{DcvMethod, DomainName, ProviderKind};

/// No request body (`Option<&NoBody>` = `None`).
type NoBody = serde_json::Value;
const NONE: Option<&NoBody> = None;

pub struct DigicertProvider {
    api: Api,
    txt: TxtPlacement,
    server_platform: i64,
    custom_fields: Vec<CustomField>,
    poll_interval: Duration,
    request_timeout: Duration,
    /// `in_flight_margin`: CertCentral documents no server-side processing limit, and a
    /// POST we gave up on keeps running there (as the simulator's `create_delay` does).
    in_flight_margin: Duration,
    clock: crate::clock::SharedClock,
}

impl std::fmt::Debug for DigicertProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigicertProvider")
            .field("name", &self.api.name())
            .field("base_url", &self.api.base_url())
            .finish_non_exhaustive()
    }
}

impl DigicertProvider {
    pub fn new(name: &str, cfg: &DigicertConfig) -> Result<Self, String> {
        let key: SecretString = cfg.api_key.clone().ok_or_else(|| {
            format!(
                "provider `{name}`: no API key; set api_key or api_key_file in [providers.{name}]"
            )
        })?;
        let txt = match cfg.dns_txt_at.as_str() {
            "_dnsauth" | "" => TxtPlacement::DnsAuth,
            "name" => TxtPlacement::AtName,
            other => {
                return Err(format!(
                    "provider `{name}`: dns_txt_at = `{other}` is not known; use \"_dnsauth\" or \"name\""
                ));
            }
        };
        Ok(Self {
            api: Api::new(name, &cfg.base_url, key, cfg.request_timeout)?,
            txt,
            server_platform: cfg.server_platform,
            custom_fields: cfg
                .custom_fields
                .iter()
                .map(|f| CustomField {
                    metadata_id: f.metadata_id,
                    value: f.value.clone(),
                })
                .collect(),
            poll_interval: cfg.poll_interval,
            request_timeout: cfg.request_timeout,
            in_flight_margin: cfg.in_flight_margin,
            clock: crate::clock::system(),
        })
    }

    /// Take a permit from `limiter` for every HTTP request.
    pub fn with_limiter(mut self, limiter: std::sync::Arc<crate::ca::limit::Limiter>) -> Self {
        self.api.set_limiter(limiter);
        self
    }

    /// Read the time from `clock` (the engine's) instead of the system clock.
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn err(&self, endpoint: &str, kind: ErrorKind, detail: String) -> ProviderError {
        ProviderError::new(self.api.name(), endpoint, kind).with_detail(detail)
    }

    fn wire(&self, endpoint: &str, m: DcvMethod) -> Result<&'static str, ProviderError> {
        tokens::wire_method(m).ok_or_else(|| {
            self.err(
                endpoint,
                ErrorKind::Permanent,
                format!(
                    "DigiCert cannot validate with `{m}`; use dns-txt, dns-cname, http or email"
                ),
            )
            .rejected()
        })
    }

    fn order_id(&self, endpoint: &str, id: &str) -> Result<u64, ProviderError> {
        id.trim().parse().map_err(|_| {
            self.err(
                endpoint,
                ErrorKind::Permanent,
                format!("`{id}` is not a DigiCert order id"),
            )
        })
    }

    async fn random_value(&self, id: u64) -> Result<RandomValue, ProviderError> {
        let path = format!("/order/certificate/{id}/dcv-random-value");
        self.api
            .json(
                Method::PUT,
                &path,
                "order/certificate/{id}/dcv-random-value",
                NONE,
            )
            .await
    }

    /// The locale stored at submit; "en" (DigiCert's example) for orders stored before.
    fn locale_of(&self, order: OrderRef<'_>) -> Result<String, ProviderError> {
        Ok(CaData::from_ref(self.api.name(), &order)?
            .locale
            .unwrap_or_else(|| "en".to_string()))
    }

    fn store_random(data: &mut CaData, rv: &RandomValue) {
        data.dcv_random_value = Some(rv.dcv_random_value.clone());
        data.random_value_expires_at = rv.expiration_date.as_deref().and_then(data::parse_time);
        data.random_value_refresh_due = false;
    }

    /// The CA did not find a token our own check saw. If we never learned when the
    /// order's random value expires (the 201 does not say), it may have expired: ask
    /// the engine to fetch the current value once (`challenges()` learns the expiry).
    fn refresh_if_unknown(ca_data: &serde_json::Value) -> Option<serde_json::Value> {
        // A damaged record was reported by the caller's own read of it.
        let mut d = CaData::parse(ca_data).ok()?;
        if d.random_value_expires_at.is_some() || d.dcv_random_value.is_none() {
            return None;
        }
        d.random_value_refresh_due = true;
        Some(d.to_json())
    }

    /// Resend-emails `email_domain`: sent when the address's domain is not the domain
    /// scope itself (seed: "Include this parameter when the domain scope of the email is
    /// different from the domain being validated"); then it is the registrable domain,
    /// the only scope DigiCert accepts above the name.
    fn email_domain(name: &DomainName, email: &str) -> Option<String> {
        let domain = email.rsplit_once('@')?.1.to_ascii_lowercase();
        (domain != name.base()).then(|| dcv::registrable_domain(name))
    }
}

/// A method longer than a few lines is written as the inherent method of the same name in
/// the file for its job (`order.rs`, `recover.rs`); `self.submit(..)` below calls that one
/// (inherent methods come first in Rust's method lookup), it does not recurse.
#[async_trait]
impl Provider for DigicertProvider {
    fn name(&self) -> &str {
        self.api.name()
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Digicert
    }
    fn method_scope(&self) -> MethodScope {
        MethodScope::PerOrder
    }
    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }
    fn tokens_need_refresh(&self, ca_data: &serde_json::Value) -> bool {
        // A damaged record: no refresh here; the next call reports it.
        CaData::parse(ca_data).is_ok_and(|d| d.random_value_refresh_due)
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

    /// `request_timeout` plus `in_flight_margin` (5 minutes by default).
    fn in_flight_bound(&self) -> Duration {
        self.request_timeout + self.in_flight_margin
    }

    async fn challenges(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        if names.iter().all(|(_, m)| *m == DcvMethod::Email) {
            // Email DCV has no token; the random-value call would be refused.
            return Ok(Tokens::default());
        }
        let id = self.order_id("order/certificate/{id}/dcv-random-value", order.ca_order_id)?;
        let rv = self.random_value(id).await?;
        let mut data = CaData::from_ref(self.api.name(), &order)?;
        Self::store_random(&mut data, &rv);
        Ok(Tokens {
            challenges: tokens::challenges(names, &rv.dcv_random_value, self.txt),
            ca_data: Some(data.to_json()),
        })
    }

    async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        let id = self.order_id("order/certificate/{id}", order.ca_order_id)?;
        let info = self.order_info(id).await?;
        let state = order_state(&info.status);
        let mut data = CaData::from_ref(self.api.name(), &order)?;
        if info.certificate.id.is_some() {
            data.certificate_id = info.certificate.id;
        }
        if let Some(m) = &info.dcv_method {
            data.dcv_method = Some(m.clone());
        }
        let token_method = data.dcv_method.as_deref().is_some_and(|m| m != "email");
        data.random_value_refresh_due = state == CaOrderState::InProgress
            && token_method
            && data.expires_within(self.clock.now(), chrono::Duration::days(1));
        let names = if state == CaOrderState::Issued {
            order
                .names
                .iter()
                .map(|n| (n.clone(), NameDcv::Valid))
                .collect()
        } else if !info.dns_name_validations.is_empty() {
            names_from(&info.dns_name_validations, order.names)
        } else {
            order
                .names
                .iter()
                .map(|n| (n.clone(), NameDcv::Pending))
                .collect()
        };
        Ok(CaStatus {
            order: state,
            names,
            ca_data: Some(data.to_json()),
        })
    }

    async fn change_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        approver_emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        const EP: &str = "order/certificate/{id}/dcv-method";
        let id = self.order_id(EP, order.ca_order_id)?;
        let wire_method = self.wire(EP, method)?;
        let path = format!("/order/certificate/{id}/dcv-method");
        let body = DcvMethodChange {
            dcv_method: wire_method.to_string(),
        };
        let answer = self.api.send(Method::PUT, &path, EP, Some(&body)).await?;
        let mut data = CaData::from_ref(self.api.name(), &order)?;
        data.dcv_method = Some(wire_method.to_string());
        let mut out = Tokens::default();
        if method == DcvMethod::Email {
            data.dcv_random_value = None;
            data.random_value_expires_at = None;
            data.random_value_refresh_due = false;
            if !approver_emails.is_empty() {
                self.resend_emails(order, approver_emails, &self.locale_of(order)?)
                    .await?;
            }
        } else {
            let rv: RandomValue = if answer.body.iter().all(u8::is_ascii_whitespace) {
                self.random_value(id).await?
            } else {
                self.api.parse(EP, &answer)?
            };
            Self::store_random(&mut data, &rv);
            let named: Vec<_> = names.iter().map(|n| (n.clone(), method)).collect();
            out.challenges = tokens::challenges(&named, &rv.dcv_random_value, self.txt);
        }
        out.ca_data = Some(data.to_json());
        Ok(out)
    }

    async fn resend_emails(
        &self,
        order: OrderRef<'_>,
        approver_emails: &[(DomainName, String)],
        locale: &str,
    ) -> Result<(), ProviderError> {
        const EP: &str = "order/certificate/{id}/resend-emails";
        let id = self.order_id(EP, order.ca_order_id)?;
        if approver_emails.is_empty() {
            // An empty `domain_approval_emails` is described by neither resend page.
            return Err(self
                .err(
                    EP,
                    ErrorKind::Permanent,
                    format!("order {id}: no approver address to resend DCV emails to; set approver_emails for its names"),
                )
                .rejected());
        }
        let body = ResendEmails {
            domain_approval_emails: approver_emails
                .iter()
                .map(|(n, e)| DomainApprovalEmail {
                    domain: n.base().to_string(),
                    email: e.clone(),
                    email_domain: Self::email_domain(n, e),
                })
                .collect(),
            locale: Some(locale.to_string()),
        };
        let path = format!("/order/certificate/{id}/resend-emails");
        self.api.send(Method::PUT, &path, EP, Some(&body)).await?;
        Ok(())
    }

    async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        self.check_dcv(order, names).await
    }

    async fn approver_emails(&self, name: &DomainName) -> Result<Vec<String>, ProviderError> {
        let path = format!("/domain/{}/dcv/emails", name.base());
        let e: DcvEmails = self
            .api
            .json(Method::GET, &path, "domain/{id}/dcv/emails", NONE)
            .await?;
        let mut out = Vec::new();
        for a in e
            .base_emails
            .into_iter()
            .chain(e.whois_emails)
            .chain(e.dns_txt_emails)
        {
            let a = a.trim().to_ascii_lowercase();
            if !a.is_empty() && !out.contains(&a) {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        const EP: &str = "certificate/{id}/download/format/pem_all";
        let cert_id = match CaData::from_ref(self.api.name(), &order)?.certificate_id {
            Some(c) => c,
            None => {
                let id = self.order_id(EP, order.ca_order_id)?;
                self.order_info(id).await?.certificate.id.ok_or_else(|| {
                    self.err(
                        EP,
                        ErrorKind::Transient,
                        format!("order {id} has no certificate id yet; will retry"),
                    )
                })?
            }
        };
        let path = format!("/certificate/{cert_id}/download/format/pem_all");
        let a = self.api.download(&path, EP).await?;
        IssuedChain::from_bundle(&String::from_utf8_lossy(&a.body)).map_err(|why| {
            ProviderError::malformed(
                self.api.name(),
                EP,
                a.status,
                format!("certificate {cert_id}: the PEM download is damaged ({why}); will retry"),
            )
        })
    }

    async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        const EP: &str = "order/certificate/{id}/status";
        let id = self.order_id(EP, order.ca_order_id)?;
        let body = StatusChange {
            status: "canceled".into(),
            note: format!("canceled by dcvd ({})", order.reference),
            send_emails: None,
        };
        let path = format!("/order/certificate/{id}/status");
        match self.api.send(Method::PUT, &path, EP, Some(&body)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
