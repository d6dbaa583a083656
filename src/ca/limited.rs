//! `Limited`: a Provider wrapper around the per-provider rate limiter. It pauses all
//! calls when the CA answers "rate limited" (for as long as `Retry-After` says, else
//! 60 s). Providers whose transport takes a permit per HTTP request (DigiCert, Sectigo:
//! one provider operation can make several requests) are wrapped with
//! [`Limited::per_request`]; others (ACME, whose requests go through instant-acme) with
//! [`Limited::new`], which takes one permit per operation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::limit::Limiter;
use super::*;

pub struct Limited {
    inner: Arc<dyn Provider>,
    limiter: Arc<Limiter>,
    /// Take a permit per operation (the inner provider does not take one per request).
    per_operation: bool,
}

impl Limited {
    /// One permit per provider operation.
    pub fn new(inner: Arc<dyn Provider>, limiter: Arc<Limiter>) -> Self {
        Self {
            inner,
            limiter,
            per_operation: true,
        }
    }

    /// `inner` takes a permit from `limiter` for each HTTP request itself: only the
    /// pause on "rate limited" is done here.
    pub fn per_request(inner: Arc<dyn Provider>, limiter: Arc<Limiter>) -> Self {
        Self {
            inner,
            limiter,
            per_operation: false,
        }
    }

    /// The limiter shared with the inner provider.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// Wait for the limiter (per-operation mode). The request counts as in flight until
    /// the permit is dropped, i.e. until its answer came back.
    async fn gate(&self) -> Option<super::limit::Permit<'_>> {
        if !self.per_operation {
            return None;
        }
        Some(self.limiter.permit().await.0)
    }

    async fn after<T>(&self, r: Result<T, ProviderError>) -> Result<T, ProviderError> {
        if let Err(e) = &r
            && e.kind == ErrorKind::RateLimited
        {
            self.limiter
                .pause(e.retry_after.unwrap_or(Duration::from_secs(60)))
                .await;
        }
        r
    }
}

#[async_trait]
impl Provider for Limited {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }
    fn method_scope(&self) -> MethodScope {
        self.inner.method_scope()
    }
    fn poll_interval(&self) -> Duration {
        self.inner.poll_interval()
    }
    fn tokens_need_refresh(&self, ca_data: &serde_json::Value) -> bool {
        self.inner.tokens_need_refresh(ca_data)
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.submit(req).await).await
    }
    fn in_flight_bound(&self) -> Duration {
        self.inner.in_flight_bound()
    }
    async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.find_order(req).await).await
    }
    async fn order_by_id(
        &self,
        req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.order_by_id(req, ca_order_id).await)
            .await
    }
    async fn challenges(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.challenges(order, names).await).await
    }
    async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.status(order).await).await
    }
    async fn change_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        approver_emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        let _permit = self.gate().await;
        self.after(
            self.inner
                .change_method(order, names, method, approver_emails)
                .await,
        )
        .await
    }
    async fn resend_emails(
        &self,
        order: OrderRef<'_>,
        approver_emails: &[(DomainName, String)],
        locale: &str,
    ) -> Result<(), ProviderError> {
        let _permit = self.gate().await;
        self.after(
            self.inner
                .resend_emails(order, approver_emails, locale)
                .await,
        )
        .await
    }
    async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.trigger_check(order, names).await)
            .await
    }
    async fn approver_emails(&self, name: &DomainName) -> Result<Vec<String>, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.approver_emails(name).await).await
    }
    async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.download(order).await).await
    }
    async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        let _permit = self.gate().await;
        self.after(self.inner.cancel(order).await).await
    }
    fn suggests_renewal_windows(&self) -> bool {
        self.inner.suggests_renewal_windows()
    }
    async fn renewal_window(
        &self,
        cert_pem: &str,
    ) -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
        // Not gated: asked for every issued certificate of every provider on each renewal
        // check (a no-op for most), and ACME's renewalInfo is a plain GET with its own limits.
        self.inner.renewal_window(cert_pem).await
    }
}
