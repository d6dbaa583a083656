//! One step of one order: read it, decide (`decide::decide`), carry out that one `Next`,
//! and write the new state, next attempt time and events in one transaction (`finish`,
//! after the retry rules of `retry.rs` on failure). A step is one outside action, except
//! where noted at the step: `download` (download, install files, hook), `publish` (a
//! delegation lookup, then the publisher) and `switch_method` (approver lookup, then the
//! change).
//!
//! Every step is safe to run again after a crash at any `.await`: the outside action is
//! either idempotent (publish, check, status, download) or guarded by a durable intent
//! (submit: `submitting` + `submit_maybe_sent` are committed with a full sync before the
//! request leaves, and a maybe-sent submit is always looked up before it is repeated; the
//! cancel of an abandoned CA order: `ca_cancel = wanted` is committed with the failure,
//! and a refused repeat is checked against the CA's status, see `step/cancel.rs`).
//!
//! `step/` carries out one `decide::Next` for one order: `submit.rs` (placing and
//! recovering), `ca.rs` (method switch, tokens, trigger, resend, status), `dcv.rs` (publish,
//! check), `issue.rs` (download, verify, install), `cancel.rs` (cancel an abandoned order
//! at the CA).

use crate::model::EventKind;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{Instrument, info, warn};

use crate::ca::{CaStatus, OrderRef, Provider, SubmitRequest, Submitted};
use crate::ca::{ErrorKind, ProviderError};
use crate::clock::Clock;
use crate::config::CertificateConfig;
use crate::dcv::check::DnsError;
use crate::dcv::publish::PublishError;
use crate::lifecycle::decide::{Change, Next, Policy, decide};
use crate::lifecycle::retry::{self, Failed};
use crate::lifecycle::services::Services;
use crate::metrics::Metrics;
use crate::model::{DcvMethod, DomainName, OrderState};
use crate::store::Store;
use crate::store::{Authorization, NewEvent, Order, StoreError};

mod ca;
mod cancel;
mod dcv;
mod issue;
mod submit;

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
    run(order_id, ctx, rt).await
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

pub(super) struct Step<'a> {
    pub ctx: &'a Ctx,
    pub rt: &'a Services,
    pub cert: &'a CertificateConfig,
    pub provider: Arc<dyn Provider>,
    pub policy: Policy,
    pub order: Order,
    pub authz: Vec<Authorization>,
    pub events: Vec<NewEvent>,
    pub now: DateTime<Utc>,
    /// Order-level note kept in `last_error` after a successful step (e.g. "needs approval").
    pub note: Option<String>,
    /// Run again at this time after a successful step, instead of what `decide` says
    /// (e.g. recovery waiting for the in-flight bound).
    pub wake: Option<DateTime<Utc>>,
}

impl<'a> Step<'a> {
    /// A step on `order` with the policy its certificate and provider give it.
    pub(super) fn new(
        ctx: &'a Ctx,
        rt: &'a Services,
        cert: &'a CertificateConfig,
        provider: Arc<dyn Provider>,
        order: Order,
        authz: Vec<Authorization>,
        now: DateTime<Utc>,
    ) -> Self {
        let policy = Policy::for_order(cert, provider.as_ref(), &order);
        Step {
            ctx,
            rt,
            cert,
            provider,
            policy,
            order,
            authz,
            events: Vec::new(),
            now,
            note: None,
            wake: None,
        }
    }
}

pub(super) use crate::lifecycle::decide::after;

/// A CA call's outcome as a `ca_call` event, and counted in the provider-call metric.
fn ca_call_event<T>(
    metrics: &Metrics,
    provider: &str,
    op: &'static str,
    started: std::time::Instant,
    r: &Result<T, crate::ca::ProviderError>,
) -> NewEvent {
    let secs = started.elapsed().as_secs_f64();
    let status = match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.kind.metric_label().to_string()),
    };
    metrics.provider_call(provider, op, &status, secs);
    let message = match r {
        Ok(_) => format!("{op}: ok ({:.0} ms)", secs * 1000.0),
        Err(e) => format!("{op}: {e}"),
    };
    NewEvent {
        kind: EventKind::CaCall,
        domain: None,
        message,
    }
}

async fn run(order_id: i64, ctx: &Ctx, rt: &Services) -> Result<Action, StoreError> {
    let now = ctx.clock.now();
    let (mut order, authz) = match ctx.store.load_order(order_id).await {
        Ok(o) => o,
        // A row that does not parse: on hold with backoff, never a busy loop.
        Err(e @ StoreError::Corrupt { .. }) => {
            return quarantine(order_id, ctx, &e.to_string()).await;
        }
        Err(e) => return Err(e),
    };
    // An ended order runs only for its due look for a late duplicate.
    let sweep_due = order.dup_check_at.is_some_and(|t| t <= now);
    let cancel_due = crate::lifecycle::decide::cancel_due(&order, now);
    if order.state.is_terminal()
        && !(sweep_due && order.state != OrderState::Canceled)
        && !cancel_due
    {
        return Ok(Action::Done);
    }
    // Before anything is bought with them: the stored key and CSR must be usable, or the
    // issued certificate could never be installed.
    if order.ca_order_id.is_none() && !order.state.is_terminal() {
        let checked = (order.private_key_pem.clone(), order.csr_pem.clone());
        let (csr_der, names) = (order.csr_der.clone(), order.names.clone());
        let check = tokio::task::spawn_blocking(move || {
            crate::pki::key::check_stored(&checked.0, &checked.1, &csr_der, &names)
        })
        .await
        .unwrap_or_else(|e| Err(format!("checking the stored key and CSR failed: {e}")));
        if let Err(why) = check {
            if order.submit_maybe_sent || order.state == OrderState::SubmitUnknown {
                // A CA order may exist: a fresh order could be a second purchase, and
                // adopting it would issue a certificate that cannot be installed.
                let reason = format!(
                    "{}: {why}; a CA order for reference {} may already exist, so dcvd neither \
                     adopts it nor places another",
                    DAMAGED_KEY_REASON, order.reference
                );
                return quarantine(order_id, ctx, &reason).await;
            }
            let reason = format!(
                "{}: {why}; nothing was ordered at the CA, so the certificate gets a fresh order \
                 with a fresh key",
                DAMAGED_KEY_REASON
            );
            warn!(order_id, certificate = %order.certificate, reason = %reason, "order failed");
            let (mut authz, mut events) = (authz, Vec::new());
            Change {
                order: &mut order,
                authz: &mut authz,
                events: &mut events,
                now,
            }
            .fail(reason);
            ctx.store.save(&order, &authz, &events, false, now).await?;
            ctx.store.clear_damaged(order_id, now).await?;
            return Ok(Action::Done);
        }
    }
    if order.damaged.is_some() && ctx.store.clear_damaged(order_id, now).await? {
        info!(
            order_id,
            certificate = %order.certificate,
            "order {order_id} reads correctly again (the damaged row was repaired); it continues"
        );
        order.damaged = None;
    }
    let (cert, provider) = match (
        rt.certificate(&order.certificate),
        rt.providers.get(&order.provider),
    ) {
        (Some(c), Some(p)) => (c, p.clone()),
        (None, Some(p)) if cancel_due && !sweep_due => {
            // The certificate left the configuration, its provider did not: the abandoned
            // CA order is still canceled (the cancel needs nothing of the certificate).
            let (mut authz, mut events) = (authz, Vec::new());
            cancel::cancel_at_ca(ctx, p.as_ref(), &mut order, &mut authz, &mut events, now).await;
            ctx.store.save(&order, &authz, &events, false, now).await?;
            return Ok(Action::Done);
        }
        (c, _) => {
            let what = if c.is_none() {
                format!("certificate `{}`", order.certificate)
            } else {
                format!("provider `{}`", order.provider)
            };
            let msg = format!(
                "{what} is no longer in the configuration; order {} is left as it is and checked again in an hour \
                 (restore the config, or end it with `dcvd orders cancel {}`)",
                order.id, order.id
            );
            warn!(order_id, certificate = %order.certificate, "{msg}");
            order.last_error = Some(msg);
            order.next_attempt_at = after(now, retry::UNCONFIGURED_RETRY);
            if order.state.is_terminal() {
                if order.dup_check_at.is_some() {
                    order.dup_check_at = Some(order.next_attempt_at);
                }
                if order.ca_cancel_at.is_some() {
                    // `status` shows why the cancel waits.
                    order.ca_cancel_at = Some(order.next_attempt_at);
                    order.ca_cancel_answer = Some(format!(
                        "{what} is no longer in the configuration; the cancel waits until it is \
                         back (or cancel the CA order in the CA's portal)"
                    ));
                }
            }
            ctx.store.save(&order, &authz, &[], false, now).await?;
            return Ok(Action::Requeue(order.next_attempt_at));
        }
    };
    let span = tracing::info_span!(
        "step",
        order_id,
        certificate = %order.certificate,
        provider = %order.provider,
    );
    let mut s = Step::new(ctx, rt, cert, provider, order, authz, now);
    let next = decide(&s.order, &s.authz, &s.policy, now);
    let outcome = match next {
        Next::Done => return Ok(Action::Done),
        Next::Wait(t) => {
            // Nothing to do yet (e.g. woken early): just record when.
            s.order.next_attempt_at = t;
            s.ctx
                .store
                .save(&s.order, &s.authz, &[], false, now)
                .await?;
            return Ok(Action::Requeue(t));
        }
        next => s.execute(next).instrument(span).await,
    };
    s.finish(outcome).await
}

impl Step<'_> {
    pub fn order_ref(&self) -> OrderRef<'_> {
        OrderRef {
            reference: &self.order.reference,
            ca_order_id: self.order.ca_order_id.as_deref().unwrap_or(""),
            ca_data: &self.order.ca_data,
            names: &self.order.names,
            csr_der: &self.order.csr_der,
        }
    }

    pub fn event(&mut self, kind: EventKind, domain: Option<&DomainName>, message: String) {
        self.events.push(NewEvent {
            kind,
            domain: domain.map(|d| d.to_string()),
            message,
        });
        self.log_events(self.events.len() - 1);
    }

    /// Log the events recorded from index `from` on, as they happen.
    fn log_events(&self, from: usize) {
        for e in &self.events[from..] {
            if e.kind == EventKind::Failed {
                warn!(order_id = self.order.id, certificate = %self.order.certificate, reason = %e.message, "order failed");
                continue;
            }
            info!(
                order_id = self.order.id,
                certificate = %self.order.certificate,
                provider = %self.order.provider,
                domain = e.domain.as_deref().unwrap_or(""),
                kind = e.kind.as_str(),
                "{}",
                e.message
            );
        }
    }

    /// Change the order and its authorizations by the transitions of `decide.rs`; the
    /// events they record are logged like every other step event.
    pub fn apply<R>(&mut self, f: impl FnOnce(&mut Change<'_>) -> R) -> R {
        let from = self.events.len();
        let r = f(&mut Change {
            order: &mut self.order,
            authz: &mut self.authz,
            events: &mut self.events,
            now: self.now,
        });
        self.log_events(from);
        r
    }

    /// The CA has our order (placed, recovered or adopted by an operator).
    pub fn adopt(&mut self, sub: Submitted, how: &str) {
        let resend_at = self.next_resend();
        self.apply(|c| c.adopt(sub, how, resend_at));
    }

    /// What the CA says about the order; an approval hold is kept as the order's note.
    pub fn fold_status(&mut self, st: CaStatus) {
        if let Some(note) = self.apply(|c| c.status(st)) {
            self.note = Some(note);
        }
    }

    /// Record a CA call's outcome as an event and a metric.
    pub fn ca_call<T>(
        &mut self,
        op: &'static str,
        started: std::time::Instant,
        r: &Result<T, crate::ca::ProviderError>,
    ) {
        let e = ca_call_event(&self.ctx.metrics, &self.order.provider, op, started, r);
        self.events.push(e);
    }

    /// The request as submitted, or looked up by recovery (`for_lookup`): then with every
    /// CA order id dcvd tracks at this provider, so recovery never adopts one twice. (A
    /// plain submit does not need the list, and reading it per submit would cost O(orders).)
    pub async fn submit_request(&self, for_lookup: bool) -> Result<SubmitRequest, StoreError> {
        let known_ca_orders = if for_lookup {
            self.ctx.store.known_ca_orders(&self.order.provider).await?
        } else {
            Vec::new()
        };
        Ok(SubmitRequest {
            reference: self.order.reference.clone(),
            certificate: self.order.certificate.clone(),
            product: self.cert.product.clone(),
            names: self.order.names.clone(),
            csr_pem: self.order.csr_pem.clone(),
            csr_der: self.order.csr_der.clone(),
            key_type: self.order.key_type,
            methods: self.authz.iter().map(|a| a.method).collect(),
            approver_emails: self
                .authz
                .iter()
                .filter_map(|a| Some((a.domain.clone(), a.approver_email.clone()?)))
                .collect(),
            locale: self.cert.locale.clone(),
            validity_days: self.cert.validity_days,
            renewal_of: self.order.renewal_of.clone(),
            created_at: self.order.created_at,
            known_ca_orders,
        })
    }

    /// Next time approval emails should be resent, per the certificate's cron schedule.
    pub fn next_resend(&self) -> DateTime<Utc> {
        cron::Schedule::from_str(&self.cert.resend_schedule)
            .ok()
            .and_then(|s| s.after(&self.now).next())
            .unwrap_or_else(|| after(self.now, Duration::from_secs(86400)))
    }

    async fn execute(&mut self, next: Next) -> Result<(), StepError> {
        match next {
            Next::Submit => self.submit().await,
            Next::Recover => self.recover().await,
            Next::SweepDuplicates => self.sweep_duplicates().await,
            Next::SwitchMethod { authz, to, reason } => {
                self.switch_method(&authz, to, reason).await
            }
            Next::Exhausted { authz, reason } => {
                self.apply(|c| c.exhausted(authz, reason));
                Ok(())
            }
            Next::FetchTokens { authz } => self.fetch_tokens(&authz).await,
            Next::Publish { authz } => self.publish(authz).await,
            Next::Check { authz } => self.check(authz).await,
            Next::TriggerCheck { authz } => self.trigger_check(&authz).await,
            Next::Resend { authz } => self.resend(&authz).await,
            Next::PollStatus => self.poll_status().await,
            Next::Download => self.download().await,
            Next::CancelAtCa => self.cancel_at_ca().await,
            Next::Wait(_) | Next::Done => Ok(()),
        }
    }

    pub fn fail(&mut self, reason: String) {
        self.apply(|c| c.fail(reason));
    }

    /// Apply the outcome (error policy on failure), compute the next run, save.
    async fn finish(mut self, outcome: Result<(), StepError>) -> Result<Action, StoreError> {
        let mut retry_at = None;
        match outcome {
            Ok(()) => {
                self.order.attempts = 0;
                self.order.last_error = self.note.take();
            }
            Err(e) => {
                self.order.attempts = self.order.attempts.saturating_add(1);
                self.ctx
                    .metrics
                    .reconcile_errors
                    .get_or_create(&crate::metrics::KindLabels {
                        kind: e.kind.metric_label().into(),
                    })
                    .inc();
                let poll = self.rt.config.dns.poll_interval;
                match retry::after_step_error(
                    e.failed,
                    e.kind,
                    self.order.attempts,
                    e.retry_after,
                    poll,
                ) {
                    None => self.fail(e.message),
                    Some(delay) => {
                        let at = after(self.now, delay);
                        let (kind, domain, then) = match e.failed {
                            // Our check could not look: the authorization keeps the reason
                            // (shown by `status`) and is checked again after the backoff.
                            Failed::Check { authz } => {
                                let domain = self.apply(|c| c.check_failed(authz, &e.message, at));
                                (
                                    EventKind::CheckError,
                                    domain,
                                    "the order stays live; checking again",
                                )
                            }
                            Failed::Step => (EventKind::Error, None, "retrying"),
                        };
                        warn!(
                            order_id = self.order.id,
                            certificate = %self.order.certificate,
                            domain = domain.as_ref().map(|d| d.as_str()).unwrap_or(""),
                            kind = e.kind.metric_label(),
                            attempt = self.order.attempts,
                            retry_in_s = delay.as_secs(),
                            "{}; {then}",
                            e.message
                        );
                        let at_s = at.format("%Y-%m-%d %H:%M:%S UTC");
                        let message = match e.failed {
                            Failed::Check { .. } => format!(
                                "{} (attempt {}; the order stays live, dcvd checks again at {at_s})",
                                e.message, self.order.attempts
                            ),
                            Failed::Step => format!(
                                "{} (attempt {}, {}; retry at {at_s})",
                                e.message,
                                self.order.attempts,
                                e.kind.metric_label()
                            ),
                        };
                        self.events.push(NewEvent {
                            kind,
                            domain: domain.map(|d| d.to_string()),
                            message,
                        });
                        self.order.last_error = Some(e.message);
                        retry_at = Some(at);
                    }
                }
            }
        }
        let action = if self.order.state.is_terminal() {
            self.order.next_attempt_at = self.now;
            Action::Done
        } else {
            let at = retry_at.or(self.wake).unwrap_or_else(|| {
                match decide(&self.order, &self.authz, &self.policy, self.now) {
                    Next::Wait(t) => t,
                    _ => self.now,
                }
            });
            self.order.next_attempt_at = at;
            Action::Requeue(at)
        };
        self.ctx
            .store
            .save(&self.order, &self.authz, &self.events, false, self.now)
            .await?;
        Ok(action)
    }
}
