//! A provider whose submit reaches the CA and then never answers: the process dies while
//! the order request is in flight (the crash window crash recovery exists for).

use std::sync::Arc;

use async_trait::async_trait;
use dcvd::ca::*;
use dcvd::model::{DcvMethod, DomainName, ProviderKind};

/// Wraps a provider: `submit` reaches the CA, but the answer is never seen (a crash
/// or lost connection right after the request left).
pub struct LoseSubmitAnswer(pub Arc<dyn Provider>);

#[async_trait]
impl Provider for LoseSubmitAnswer {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn kind(&self) -> ProviderKind {
        self.0.kind()
    }
    fn method_scope(&self) -> MethodScope {
        self.0.method_scope()
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let _ = self.0.submit(req).await;
        std::future::pending().await
    }
    async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        self.0.find_order(req).await
    }
    async fn order_by_id(
        &self,
        req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError> {
        self.0.order_by_id(req, ca_order_id).await
    }
    fn in_flight_bound(&self) -> std::time::Duration {
        self.0.in_flight_bound()
    }
    async fn challenges(
        &self,
        o: OrderRef<'_>,
        n: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        self.0.challenges(o, n).await
    }
    async fn status(&self, o: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        self.0.status(o).await
    }
    async fn change_method(
        &self,
        o: OrderRef<'_>,
        n: &[DomainName],
        m: DcvMethod,
        e: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        self.0.change_method(o, n, m, e).await
    }
    async fn resend_emails(
        &self,
        o: OrderRef<'_>,
        e: &[(DomainName, String)],
        l: &str,
    ) -> Result<(), ProviderError> {
        self.0.resend_emails(o, e, l).await
    }
    async fn trigger_check(
        &self,
        o: OrderRef<'_>,
        n: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        self.0.trigger_check(o, n).await
    }
    async fn approver_emails(&self, n: &DomainName) -> Result<Vec<String>, ProviderError> {
        self.0.approver_emails(n).await
    }
    async fn download(&self, o: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        self.0.download(o).await
    }
    async fn cancel(&self, o: OrderRef<'_>) -> Result<(), ProviderError> {
        self.0.cancel(o).await
    }
}
