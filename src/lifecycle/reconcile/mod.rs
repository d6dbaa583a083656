//! One step of one order: read it, decide (`state::decide`), do at most one outside
//! action, write the new state, next attempt time and events in one transaction.
//!
//! Every step is safe to run again after a crash at any `.await`: the outside action is
//! either idempotent (publish, check, status, download) or guarded by a durable intent
//! (submit: `submitting` + `submit_maybe_sent` are committed with a full sync before the
//! request leaves, and a maybe-sent submit is always looked up before it is repeated).

pub mod operator;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ca::{ErrorKind, ProviderError};
use crate::clock::Clock;
use crate::dcv::check::DnsError;
use crate::dcv::publish::PublishError;
use crate::lifecycle::retry::Failed;
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
    /// The step's action, or our propagation check (never terminal, see `retry`).
    pub failed: Failed,
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        Self {
            kind: e.kind,
            message: e.to_string(),
            retry_after: e.retry_after,
            failed: Failed::Step,
        }
    }
}
impl From<PublishError> for StepError {
    fn from(e: PublishError) -> Self {
        Self {
            kind: e.kind,
            message: e.to_string(),
            retry_after: None,
            failed: Failed::Step,
        }
    }
}
impl From<DnsError> for StepError {
    fn from(e: DnsError) -> Self {
        Self {
            kind: e.kind,
            message: e.to_string(),
            retry_after: None,
            failed: Failed::Step,
        }
    }
}
impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
            retry_after: None,
            failed: Failed::Step,
        }
    }
}

impl StepError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
            retry_after: None,
            failed: Failed::Step,
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
/// (`retry::quarantine_delay`), one log line each time. Nothing is sent to the CA
/// for it meanwhile; the first step that finds it whole again clears the mark.
pub async fn quarantine(order_id: i64, ctx: &Ctx, reason: &str) -> Result<Action, StoreError> {
    let now = ctx.clock.now();
    let attempts = ctx
        .store
        .damaged_attempts(order_id)
        .await?
        .saturating_add(1);
    let delay = crate::lifecycle::retry::quarantine_delay(attempts);
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
