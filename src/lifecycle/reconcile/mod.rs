//! One step of one order: read it, decide (`state::decide`), do at most one outside
//! action, write the new state, next attempt time and events in one transaction.
//!
//! Every step is safe to run again after a crash at any `.await`: the outside action is
//! either idempotent (publish, check, status, download) or guarded by a durable intent
//! (submit: `submitting` + `submit_maybe_sent` are committed with a full sync before the
//! request leaves, and a maybe-sent submit is always looked up before it is repeated).

mod apply;
pub mod operator;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;

use crate::ca::{ErrorKind, ProviderError};
use crate::clock::Clock;
use crate::dcv::check::DnsError;
use crate::dcv::publish::PublishError;
use crate::lifecycle::services::Services;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// What the scheduler does with the order after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run again at this time (may be now).
    Requeue(DateTime<Utc>),
    /// The order ended.
    Done,
}

/// Shared by all steps.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}

/// A step failed. Keeps the kind for the retry decision and a message for the operator.
#[derive(Debug, Clone)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        Self {
            kind: e.kind,
            message: e.to_string(),
            retry_after: e.retry_after,
        }
    }
}
impl From<PublishError> for StepError {
    fn from(e: PublishError) -> Self {
        Self {
            kind: e.kind,
            message: e.to_string(),
            retry_after: None,
        }
    }
}
impl From<DnsError> for StepError {
    fn from(e: DnsError) -> Self {
        Self {
            kind: e.kind,
            message: e.to_string(),
            retry_after: None,
        }
    }
}
impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
            retry_after: None,
        }
    }
}

impl StepError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// First retry delay and cap for transient errors.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
pub const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// Wait after "rate limited" without a hint from the CA.
pub const RATE_LIMIT_DEFAULT: Duration = Duration::from_secs(60);

/// Turn an error's kind into a delay, or `None` when the order must fail.
/// `attempts` counts consecutive failures of this order, starting at 1.
pub fn error_policy(
    kind: ErrorKind,
    attempts: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let jitter = |d: Duration| d.mul_f64(rand::rng().random_range(0.8..1.2));
    match kind {
        ErrorKind::Permanent => None,
        ErrorKind::RateLimited => {
            Some(retry_after.unwrap_or(RATE_LIMIT_DEFAULT) + jitter(Duration::from_secs(1)))
        }
        ErrorKind::Transient => {
            let exp = attempts.saturating_sub(1).min(16);
            let raw = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
            Some(jitter(raw).min(BACKOFF_CAP))
        }
    }
}

/// Run one step of order `order_id`. Errors returned here are about the database itself;
/// everything else is recorded on the order (a row that does not parse included: the
/// order is quarantined, see [`quarantine`]).
pub async fn reconcile(order_id: i64, ctx: &Ctx, rt: &Services) -> Result<Action, StoreError> {
    steps::run(order_id, ctx, rt).await
}

pub use crate::store::DAMAGED_KEY_REASON;

/// Put order `order_id` on hold because its rows (or its key and CSR, once a CA order may
/// exist) cannot be used: mark it damaged with `reason` and try it again after a backoff
/// (5 s doubling up to `BACKOFF_CAP`), one log line each time. Nothing is sent to the CA
/// for it meanwhile; the first step that finds it whole again clears the mark.
pub async fn quarantine(order_id: i64, ctx: &Ctx, reason: &str) -> Result<Action, StoreError> {
    let now = ctx.clock.now();
    let attempts = ctx
        .store
        .damaged_attempts(order_id)
        .await?
        .saturating_add(1);
    let delay = error_policy(ErrorKind::Transient, attempts, None).unwrap_or(BACKOFF_CAP);
    let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
    let new = ctx
        .store
        .quarantine_order(order_id, reason, now, at)
        .await?;
    let next = at.format("%Y-%m-%d %H:%M:%S UTC");
    if new {
        tracing::error!(
            order_id,
            "order {order_id} is on hold: {reason}; nothing is sent to the CA for it and its \
             certificate gets no other order meanwhile. Repair the row (dcvd picks the fix up at its \
             next look, or at once with `dcvd orders retry {order_id}`). Next look at {next}"
        );
    } else {
        tracing::warn!(
            order_id,
            attempt = attempts,
            "order {order_id} is still damaged ({reason}); next look at {next}"
        );
    }
    Ok(Action::Requeue(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_policy_by_kind() {
        assert_eq!(error_policy(ErrorKind::Permanent, 1, None), None);
        let first = error_policy(ErrorKind::Transient, 1, None).unwrap();
        assert!(
            first >= Duration::from_secs(4) && first <= Duration::from_secs(6),
            "{first:?}"
        );
        let later = error_policy(ErrorKind::Transient, 4, None).unwrap();
        assert!(
            later >= Duration::from_secs(32) && later <= Duration::from_secs(48),
            "{later:?}"
        );
        // Capped however many failures came before.
        for n in [20, 100, u32::MAX] {
            assert!(error_policy(ErrorKind::Transient, n, None).unwrap() <= BACKOFF_CAP);
        }
        let told = error_policy(ErrorKind::RateLimited, 1, Some(Duration::from_secs(30))).unwrap();
        assert!(
            told >= Duration::from_secs(30) && told < Duration::from_secs(32),
            "{told:?}"
        );
        let untold = error_policy(ErrorKind::RateLimited, 1, None).unwrap();
        assert!(untold >= RATE_LIMIT_DEFAULT);
    }
}
