//! The `Publisher` trait: put a DCV token in place (DNS record or HTTP file) and take it away.
//!
//! Implementations: `rfc2136` (DNS UPDATE + TSIG), `exec` (external program),
//! `webroot` (files under a web root), `manual` (an operator does it).

use async_trait::async_trait;

use crate::model::Challenge;
use crate::model::ErrorKind;

/// A failed publish or cleanup, naming what was attempted where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("publisher `{publisher}` could not {action} {what}: {detail}")]
pub struct PublishError {
    pub publisher: String,
    /// `present` or `cleanup`.
    pub action: &'static str,
    /// The record or file, e.g. `TXT _dnsauth.www.example.com` at server 192.0.2.53:53 zone example.com.
    pub what: String,
    pub detail: String,
    pub kind: ErrorKind,
}

/// Puts tokens in place. `present` and `cleanup` must be idempotent: the engine calls
/// them again after a crash, and cleanup of something already gone is success.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// The configured name (`[publishers.<name>]`).
    fn name(&self) -> &str;
    /// Whether this publisher can place this kind of token (DNS vs HTTP).
    fn can_publish(&self, challenge: &Challenge) -> bool;
    /// True for `manual`: nothing is done, the operator is told what to publish.
    fn is_manual(&self) -> bool {
        false
    }
    async fn present(&self, challenge: &Challenge) -> Result<(), PublishError>;
    async fn cleanup(&self, challenge: &Challenge) -> Result<(), PublishError>;
}

pub mod exec;
pub mod manual;
pub mod rfc2136;

pub mod webroot;

use std::sync::Arc;

use crate::config::PublisherConfig;

/// Builds the publisher `[publishers.<name>]` describes. Errors name the key and the fix.
pub fn build(name: &str, cfg: &PublisherConfig) -> Result<Arc<dyn Publisher>, String> {
    Ok(match cfg {
        PublisherConfig::Rfc2136(c) => Arc::new(rfc2136::Rfc2136Publisher::new(name, c)?),
        PublisherConfig::Exec(c) => Arc::new(exec::ExecPublisher::new(name, c)?),
        PublisherConfig::Webroot(c) => Arc::new(webroot::WebrootPublisher::new(name, c)?),
        PublisherConfig::Manual(_) => Arc::new(manual::ManualPublisher::new(name)),
    })
}
