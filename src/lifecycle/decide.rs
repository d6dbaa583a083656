//! Pure decisions and transitions of an order and its authorizations. `decide`: given an
//! order, its authorizations, the certificate's DCV policy and the time, which single
//! action comes next. `Change`: every write of their states, as the steps apply the
//! answers they got (table-tested here). `first_method`: a new order's first methods. No
//! I/O here; `step.rs` carries the actions out and commits the changes.

use crate::model::EventKind;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ca::{CaStatus, Provider, Submitted, Tokens};
use crate::config::CertificateConfig;
use crate::model::{Authorization, Challenge, CheckReport, DomainName, NameDcv, Order};
use crate::model::{AuthzState, CaCancel, DcvMethod, OrderState};
use crate::model::{CaOrderState, MethodScope};
use crate::store::{NewAuthz, NewEvent};

/// What the certificate's config and provider say about DCV for this order.
#[derive(Debug, Clone)]
pub struct Policy {
    pub dcv: Vec<DcvMethod>,
    pub method_timeout: Duration,
    pub scope: MethodScope,
    /// How often to ask the CA for order status while waiting on it.
    pub status_interval: Duration,
    pub max_resends: u32,
    /// Names that are wildcards cannot use http/https; config refuses that, but a
    /// fallback must skip such methods too.
    pub wildcard_names: Vec<String>,
    /// The provider says the published tokens expire soon: fetch fresh ones.
    pub refresh_tokens: bool,
}

impl Policy {
    /// The DCV policy for `order` of certificate `cert` at `provider`.
    pub fn for_order(cert: &CertificateConfig, provider: &dyn Provider, order: &Order) -> Policy {
        Policy {
            dcv: cert.dcv.clone(),
            method_timeout: cert.method_timeout,
            scope: provider.method_scope(),
            status_interval: provider.poll_interval(),
            max_resends: cert.max_resends,
            // The order's own names, parsed when it was read: no parsing per step.
            wildcard_names: order
                .names
                .iter()
                .filter(|n| n.is_wildcard())
                .map(|n| n.to_string())
                .collect(),
            refresh_tokens: provider.tokens_need_refresh(&order.ca_data),
        }
    }
}

/// The one next action for an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Write the `submitting` intent durably, then send the order.
    Submit,
    /// A submit may have reached the CA: look the order up before anything else.
    Recover,
    /// An order adopted after an unanswered submit: the in-flight bound has passed, so
    /// look once more for further CA orders from the same request and cancel them.
    SweepDuplicates,
    /// Move these authorizations to the next method (index into `Policy::dcv`).
    SwitchMethod {
        authz: Vec<i64>,
        to: usize,
        reason: String,
    },
    /// No method left for this name: the order fails.
    Exhausted {
        authz: i64,
        reason: String,
    },
    /// Ask the provider for the tokens of these authorizations.
    FetchTokens {
        authz: Vec<i64>,
    },
    Publish {
        authz: i64,
    },
    Check {
        authz: i64,
    },
    /// Our own check saw every token: ask the CA to validate these.
    TriggerCheck {
        authz: Vec<i64>,
    },
    Resend {
        authz: Vec<i64>,
    },
    PollStatus,
    Download,
    /// A failed order the CA still has: ask the CA to cancel it (`step/cancel.rs`).
    CancelAtCa,
    /// Nothing to do before this time.
    Wait(DateTime<Utc>),
    Done,
}

/// How long an order in `submit_unknown` sleeps between steps: it moves only on an
/// operator's command (`dcvd orders adopt` / `resubmit`), which makes it due at once.
pub const OPERATOR_WAIT: Duration = Duration::from_secs(24 * 3600);

/// `t` plus `d` (ten years when `d` does not fit: "not in this lifetime").
pub fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}

/// Can `method` validate a name? A wildcard cannot be validated over http/https (config
/// refuses that, but the first method and every fallback skip such methods too).
fn usable(method: DcvMethod, wildcard: bool) -> bool {
    !(wildcard && method.is_http())
}

/// Index of the next method usable for `domain` after `current`, if any.
pub fn next_method(policy: &Policy, domain: &str, current: usize) -> Option<usize> {
    let wildcard = policy.wildcard_names.iter().any(|w| w == domain);
    (current + 1..policy.dcv.len()).find(|&i| usable(policy.dcv[i], wildcard))
}

/// The state an authorization starts in with `method`, before the CA has the order: an
/// email method waits for the approval emails that placing the order sends; any other
/// method needs its token first.
pub fn initial_state(method: DcvMethod) -> AuthzState {
    match method {
        DcvMethod::Email => AuthzState::EmailSent,
        _ => AuthzState::Publishing,
    }
}

/// The authorization of `name` in a new order of `cert`: the first method in its `dcv`
/// list the name can use (the first of the list when none can; validation refuses such
/// a config), the state that method starts in, and the approver of an email method.
pub fn first_method(cert: &CertificateConfig, name: &DomainName) -> NewAuthz {
    let index = cert
        .dcv
        .iter()
        .position(|m| usable(*m, name.is_wildcard()))
        .unwrap_or(0);
    let method = cert.dcv.get(index).copied().unwrap_or(DcvMethod::DnsTxt);
    NewAuthz {
        domain: name.clone(),
        method,
        method_index: index as u32,
        state: initial_state(method),
        approver_email: (method == DcvMethod::Email)
            .then(|| cert.approver_for(name).map(str::to_string))
            .flatten(),
    }
}

fn pending(a: &Authorization) -> bool {
    !matches!(a.state, AuthzState::Valid | AuthzState::Failed)
}

pub fn decide(order: &Order, authz: &[Authorization], policy: &Policy, now: DateTime<Utc>) -> Next {
    match order.state {
        // An ended order may still owe the look for a late duplicate of its request.
        OrderState::Issued | OrderState::Failed => match order.dup_check_at {
            Some(t) if t <= now => Next::SweepDuplicates,
            _ if cancel_due(order, now) => Next::CancelAtCa,
            _ => Next::Done,
        },
        OrderState::Canceled => Next::Done,
        OrderState::Pending => Next::Submit,
        OrderState::SubmitUnknown => Next::Wait(after(now, OPERATOR_WAIT)),
        OrderState::Submitting if order.submit_maybe_sent => Next::Recover,
        OrderState::Submitting => Next::Submit,
        OrderState::AwaitingIssuance => {
            if let Some(next) = sweep_first(order, now) {
                next
            } else if order.ca_state == Some(CaOrderState::Issued) {
                Next::Download
            } else {
                earliest(poll_or_wait(order, policy, now), order.dup_check_at)
            }
        }
        OrderState::Validating => match sweep_first(order, now) {
            Some(next) => next,
            None => earliest(validating(order, authz, policy, now), order.dup_check_at),
        },
    }
}

/// A failed order whose cancel at the CA is wanted and due.
pub fn cancel_due(order: &Order, now: DateTime<Utc>) -> bool {
    order.state == OrderState::Failed
        && order.ca_cancel == Some(CaCancel::Wanted)
        && order.ca_cancel_at.is_none_or(|t| t <= now)
}

/// The look for late duplicates, when it is due: before anything else.
fn sweep_first(order: &Order, now: DateTime<Utc>) -> Option<Next> {
    order
        .dup_check_at
        .filter(|t| *t <= now)
        .map(|_| Next::SweepDuplicates)
}

/// A wait ends no later than `also`.
fn earliest(next: Next, also: Option<DateTime<Utc>>) -> Next {
    match (next, also) {
        (Next::Wait(t), Some(u)) => Next::Wait(t.min(u)),
        (next, _) => next,
    }
}

fn poll_or_wait(order: &Order, policy: &Policy, now: DateTime<Utc>) -> Next {
    match order.last_status_at {
        Some(t) if after(t, policy.status_interval) > now => {
            Next::Wait(after(t, policy.status_interval))
        }
        _ => Next::PollStatus,
    }
}

fn validating(order: &Order, authz: &[Authorization], policy: &Policy, now: DateTime<Utc>) -> Next {
    if order.ca_state == Some(CaOrderState::Issued) {
        return Next::Download;
    }
    // 1. Methods that failed move to the next one; methods that ran out of time too, once
    //    the CA was asked after the deadline (it may have validated meanwhile). The timer
    //    runs from the method's first attempt: one never tried has not run out.
    for a in authz.iter().filter(|a| pending(a)) {
        let reason = if a.method_failed {
            a.last_error
                .clone()
                .unwrap_or_else(|| format!("{} cannot be used", a.method))
        } else {
            let Some(tried) = a.method_tried_at else {
                continue;
            };
            let deadline = after(tried, policy.method_timeout);
            if deadline > now {
                continue;
            }
            if order.last_status_at.is_none_or(|t| t < deadline) {
                return Next::PollStatus;
            }
            format!(
                "{} did not validate within method_timeout ({}) of its first attempt at {}{}",
                a.method,
                humantime::format_duration(policy.method_timeout),
                tried.format("%Y-%m-%d %H:%M:%S UTC"),
                a.last_error
                    .as_ref()
                    .map(|e| format!("; last: {e}"))
                    .unwrap_or_default()
            )
        };
        return match next_method(policy, a.domain.as_str(), a.method_index as usize) {
            None => Next::Exhausted {
                authz: a.id,
                reason: format!(
                    "no DCV method left for {} after {}: {reason}",
                    a.domain, a.method
                ),
            },
            Some(to) => {
                let ids = match policy.scope {
                    MethodScope::PerName => vec![a.id],
                    // One method per order: every name still pending moves together.
                    MethodScope::PerOrder => {
                        authz.iter().filter(|b| pending(b)).map(|b| b.id).collect()
                    }
                };
                Next::SwitchMethod {
                    authz: ids,
                    to,
                    reason,
                }
            }
        };
    }
    // 2. Tokens about to expire are renewed (and republished if they changed).
    if policy.refresh_tokens {
        let ids: Vec<i64> = authz
            .iter()
            .filter(|a| pending(a) && a.method != DcvMethod::Email && a.challenge.is_some())
            .map(|a| a.id)
            .collect();
        if !ids.is_empty() {
            return Next::FetchTokens { authz: ids };
        }
    }
    // 3. Tokens first, then publishing, then checking, one authorization at a time.
    let need_tokens: Vec<i64> = authz
        .iter()
        .filter(|a| a.state == AuthzState::Publishing && a.challenge.is_none())
        .map(|a| a.id)
        .collect();
    if !need_tokens.is_empty() {
        return Next::FetchTokens { authz: need_tokens };
    }
    if let Some(a) = authz.iter().find(|a| a.state == AuthzState::Publishing) {
        return Next::Publish { authz: a.id };
    }
    let mut wake: Vec<DateTime<Utc>> = Vec::new();
    for a in authz.iter().filter(|a| a.state == AuthzState::Propagating) {
        match a.next_check_at {
            Some(t) if t > now => wake.push(t),
            _ => return Next::Check { authz: a.id },
        }
    }
    // 4. Everything we publish is visible: let the CA look.
    let propagating = authz.iter().any(|a| a.state == AuthzState::Propagating);
    let ready: Vec<i64> = authz
        .iter()
        .filter(|a| a.state == AuthzState::Ready)
        .map(|a| a.id)
        .collect();
    if !ready.is_empty() && !propagating {
        return Next::TriggerCheck { authz: ready };
    }
    // 5. Approval emails due for a resend.
    let resend: Vec<i64> = authz
        .iter()
        .filter(|a| {
            a.state == AuthzState::EmailSent
                && a.resends < policy.max_resends
                && a.next_resend_at.is_some_and(|t| t <= now)
        })
        .map(|a| a.id)
        .collect();
    if !resend.is_empty() {
        return Next::Resend { authz: resend };
    }
    wake.extend(
        authz
            .iter()
            .filter(|a| a.state == AuthzState::EmailSent && a.resends < policy.max_resends)
            .filter_map(|a| a.next_resend_at),
    );
    // 6. Waiting on the CA: poll its status now and then.
    let waiting_on_ca = authz
        .iter()
        .any(|a| matches!(a.state, AuthzState::Submitted | AuthzState::EmailSent))
        || authz.iter().all(|a| a.state == AuthzState::Valid);
    if waiting_on_ca {
        match poll_or_wait(order, policy, now) {
            Next::Wait(t) => wake.push(t),
            other => return other,
        }
    }
    wake.extend(
        authz
            .iter()
            .filter(|a| pending(a) && !a.method_failed)
            .filter_map(|a| a.method_tried_at)
            .map(|t| after(t, policy.method_timeout)),
    );
    Next::Wait(
        wake.into_iter()
            .min()
            .unwrap_or_else(|| after(now, policy.status_interval)),
    )
}

// ---------------------------------------------------------------------------------------
// Transitions: every write of an order's or an authorization's state, applied by the step
// that got the answer. Pure: each changes the rows in memory and records what changed as
// events; the step saves them in its one commit.

/// An order and its authorizations as one step changes them.
pub struct Change<'a> {
    pub order: &'a mut Order,
    pub authz: &'a mut [Authorization],
    pub events: &'a mut Vec<NewEvent>,
    pub now: DateTime<Utc>,
}

impl Change<'_> {
    fn event(&mut self, kind: EventKind, domain: Option<&DomainName>, message: String) {
        self.events.push(NewEvent {
            kind,
            domain: domain.map(|d| d.to_string()),
            message,
        });
    }

    fn authz_mut(&mut self, id: i64) -> Option<&mut Authorization> {
        self.authz.iter_mut().find(|a| a.id == id)
    }

    /// The order moves to `to` (an event when it changes).
    pub fn set_state(&mut self, to: OrderState) {
        if self.order.state != to {
            let from = self.order.state;
            self.order.state = to;
            self.event(EventKind::State, None, format!("order {from} → {to}"));
        }
    }

    /// The order fails for `reason`. If the CA has it and has not ended it, the durable
    /// "cancel wanted" marker is set in the same change: the next step asks the CA to
    /// cancel it (a restart finishes it).
    pub fn fail(&mut self, reason: String) {
        self.order.failure_reason = Some(reason.clone());
        self.set_state(OrderState::Failed);
        self.event(EventKind::Failed, None, reason);
        self.want_ca_cancel();
    }

    /// Abandoned with a CA order that may be pending: mark it to be canceled at the CA.
    /// Nothing to cancel when the CA itself ended it (rejected, canceled, expired).
    fn want_ca_cancel(&mut self) {
        let ended_at_ca = matches!(self.order.ca_state, Some(CaOrderState::Failed(_)));
        if self.order.ca_order_id.is_none() || self.order.ca_cancel.is_some() || ended_at_ca {
            return;
        }
        self.order.ca_cancel = Some(CaCancel::Wanted);
        self.order.ca_cancel_at = Some(self.now);
        self.order.ca_cancel_attempts = 0;
        self.order.ca_cancel_answer = None;
    }

    /// The CA canceled the order (or already showed it ended): `answer` says how.
    pub fn ca_canceled(&mut self, answer: String) {
        self.order.ca_cancel = Some(CaCancel::Canceled);
        self.order.ca_cancel_at = None;
        self.order.ca_cancel_answer = Some(answer.clone());
        self.event(EventKind::CaCancel, None, answer);
    }

    /// The CA refused to cancel the order: recorded with its words, not asked again.
    pub fn ca_cancel_refused(&mut self, answer: String) {
        let id = self.order.ca_order_id.clone().unwrap_or_default();
        self.order.ca_cancel = Some(CaCancel::Refused);
        self.order.ca_cancel_at = None;
        self.order.ca_cancel_answer = Some(answer.clone());
        self.event(
            EventKind::CaCancel,
            None,
            format!(
                "the CA refused to cancel CA order {id}: {answer}; it may stay open at the CA \
                 (check it in the CA's portal and cancel it there if it is still pending)"
            ),
        );
    }

    /// The cancel call failed in a way worth retrying: try again at `at`.
    pub fn ca_cancel_retry(&mut self, error: String, at: DateTime<Utc>) {
        let id = self.order.ca_order_id.clone().unwrap_or_default();
        self.order.ca_cancel_attempts = self.order.ca_cancel_attempts.saturating_add(1);
        self.order.ca_cancel_at = Some(at);
        self.order.ca_cancel_answer = Some(error.clone());
        self.event(
            EventKind::CaCancel,
            None,
            format!(
                "canceling CA order {id} failed: {error} (attempt {}); retrying at {}",
                self.order.ca_cancel_attempts,
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        );
    }

    /// No method is left for authorization `id`: it fails, and with it the order.
    pub fn exhausted(&mut self, id: i64, reason: String) {
        if let Some(a) = self.authz_mut(id) {
            a.state = AuthzState::Failed;
            a.last_error = Some(reason.clone());
        }
        self.fail(reason);
    }

    /// The submit intent, written durably before the request leaves: the order is
    /// `submitting` and maybe sent, so a crash from here on looks it up before any resend.
    pub fn submitting(&mut self) {
        self.set_state(OrderState::Submitting);
        self.order.submit_maybe_sent = true;
        self.order.submit_sent_at = Some(self.now);
        self.order.unsure_reason = None;
        self.order.unsure_candidates.clear();
    }

    /// The submit certainly created nothing at the CA (refused outright, or the lookup
    /// found nothing once the request could no longer arrive): it may be sent again.
    pub fn not_sent(&mut self) {
        self.order.submit_maybe_sent = false;
    }

    /// Recovery cannot tell whether the CA has the order: it waits for the operator.
    pub fn submit_unknown(&mut self, reason: String, candidates: Vec<String>) {
        self.order.unsure_reason = Some(reason);
        self.order.unsure_candidates = candidates;
        self.set_state(OrderState::SubmitUnknown);
    }

    /// An operator allowed a new submit of an order in doubt (`dcvd orders resubmit`):
    /// it is sent at once, with a fresh attempt count.
    pub fn resubmit_allowed(&mut self) {
        self.set_state(OrderState::Submitting);
        self.order.submit_maybe_sent = false;
        self.order.unsure_reason = None;
        self.order.unsure_candidates.clear();
        self.order.attempts = 0;
        self.order.last_error = None;
        self.order.next_attempt_at = self.now;
    }

    /// The certificate is verified and installed: the order ends issued.
    pub fn issued(&mut self, leaf_pem: String, chain_pem: String, not_after: DateTime<Utc>) {
        self.order.cert_pem = Some(leaf_pem);
        self.order.chain_pem = Some(chain_pem);
        self.order.not_after = Some(not_after);
        self.set_state(OrderState::Issued);
    }

    /// The CA has our order (just placed, or found by recovery): emails went out with it,
    /// its tokens (if any) are taken (nothing was published yet, so none is replaced).
    pub fn adopt(&mut self, sub: Submitted, how: &str, resend_at: DateTime<Utc>) {
        self.order.ca_order_id = Some(sub.ca_order_id.clone());
        self.order.ca_data = sub.ca_data;
        self.order.submit_maybe_sent = false;
        self.order.unsure_reason = None;
        self.order.unsure_candidates.clear();
        let now = self.now;
        for a in self.authz.iter_mut() {
            if a.method == DcvMethod::Email {
                // Placing the order sent the approval emails: the method's first attempt.
                a.state = AuthzState::EmailSent;
                a.next_resend_at = Some(resend_at);
                a.method_tried_at.get_or_insert(now);
            }
        }
        self.set_state(OrderState::Validating);
        self.event(
            EventKind::CaOrder,
            None,
            format!("CA order {} {how}", sub.ca_order_id),
        );
        self.tokens(Tokens {
            challenges: sub.challenges,
            ca_data: None,
        });
        if sub.issued {
            self.order.ca_state = Some(CaOrderState::Issued);
            self.set_state(OrderState::AwaitingIssuance);
        }
    }

    /// New tokens: an authorization still publishing takes the token for its name; one
    /// further along whose token changed (renewed before expiry) publishes the new one,
    /// and the old one is returned, to be released for cleanup.
    pub fn tokens(&mut self, t: Tokens) -> Vec<Challenge> {
        if let Some(d) = t.ca_data {
            self.order.ca_data = d;
        }
        let mut released = Vec::new();
        let mut renewed = Vec::new();
        for (name, ch) in t.challenges {
            let Some(a) = self.authz.iter_mut().find(|a| {
                a.domain == name
                    && !matches!(
                        a.state,
                        AuthzState::Valid | AuthzState::Failed | AuthzState::EmailSent
                    )
            }) else {
                continue;
            };
            match (&a.challenge, a.state) {
                (_, AuthzState::Publishing) => a.challenge = Some(ch),
                (Some(old), _) if *old != ch => {
                    released.push(old.clone());
                    a.challenge = Some(ch);
                    a.state = AuthzState::Publishing;
                    a.check = None;
                    a.next_check_at = None;
                    renewed.push(a.domain.clone());
                }
                _ => {}
            }
        }
        for d in renewed {
            self.event(
                EventKind::TokenRenewed,
                Some(&d),
                "the CA issued a new token before the old one expired; publishing it".into(),
            );
        }
        released
    }

    /// What the CA says about the order and each name. Returns the note to keep on the
    /// order while it waits (an approval hold), if any.
    pub fn status(&mut self, st: CaStatus) -> Option<String> {
        self.order.last_status_at = Some(self.now);
        if let Some(d) = st.ca_data {
            self.order.ca_data = d;
        }
        let mut said: Vec<(EventKind, DomainName, String)> = Vec::new();
        for (name, dcv) in &st.names {
            let Some(a) = self.authz.iter_mut().find(|a| &a.domain == name) else {
                continue;
            };
            match dcv {
                NameDcv::Valid if a.state != AuthzState::Valid => {
                    a.state = AuthzState::Valid;
                    a.last_error = None;
                    said.push((
                        EventKind::Validated,
                        a.domain.clone(),
                        "the CA validated this name".into(),
                    ));
                }
                NameDcv::Invalid(why) if a.state != AuthzState::Valid => {
                    // The CA gave up on this method for this name: fall back at once.
                    a.method_failed = true;
                    let m = format!("the CA reports {} failed: {why}", a.method);
                    a.last_error = Some(m.clone());
                    said.push((EventKind::CaInvalid, a.domain.clone(), m));
                }
                _ => {}
            }
        }
        for (kind, d, m) in said {
            self.event(kind, Some(&d), m);
        }
        if self.order.ca_state.as_ref() != Some(&st.order) {
            self.event(
                EventKind::CaState,
                None,
                format!("CA reports the order as {:?}", st.order),
            );
        }
        let mut note = None;
        match &st.order {
            CaOrderState::Failed(why) => {
                let reason = format!("the CA ended the order: {why}");
                self.order.ca_state = Some(st.order.clone());
                self.fail(reason);
                return None;
            }
            CaOrderState::NeedsApproval => {
                note = Some(
                    "the CA holds the order for approval by an administrator of the CA account; \
                     dcvd keeps polling and continues once it is approved"
                        .into(),
                );
            }
            CaOrderState::Issued | CaOrderState::InProgress => {}
        }
        self.order.ca_state = Some(st.order.clone());
        let all_valid = self.authz.iter().all(|a| a.state == AuthzState::Valid);
        if st.order == CaOrderState::Issued || all_valid {
            self.set_state(OrderState::AwaitingIssuance);
        }
        note
    }

    /// The current method cannot work for authorization `id`: fall back at the next step.
    pub fn method_failed(&mut self, id: i64, reason: String) {
        let domain = self.authz_mut(id).map(|a| {
            a.method_failed = true;
            a.last_error = Some(reason.clone());
            a.domain.clone()
        });
        self.event(EventKind::MethodFailed, domain.as_ref(), reason);
    }

    /// The CA refused `method` (index `to`) for authorizations `ids`: recorded as tried and
    /// failed, so the next step moves on to the method after it.
    pub fn method_refused(&mut self, ids: &[i64], to: usize, method: DcvMethod, msg: String) {
        let now = self.now;
        for a in self.authz.iter_mut().filter(|a| ids.contains(&a.id)) {
            a.method_index = to as u32;
            a.method = method;
            a.method_started_at = now;
            a.method_tried_at = None;
            a.method_failed = true;
            a.last_error = Some(msg.clone());
        }
        self.event(EventKind::MethodRefused, None, msg);
    }

    /// Authorization `id` now uses `method` (index `to`): an email method has sent its
    /// emails to `email` (its first attempt, now); a token method needs its token.
    pub fn method_switched(
        &mut self,
        id: i64,
        to: usize,
        method: DcvMethod,
        email: Option<String>,
        resend_at: DateTime<Utc>,
        reason: &str,
    ) {
        let now = self.now;
        let Some(b) = self.authz_mut(id) else {
            return;
        };
        let (from, domain) = (b.method, b.domain.clone());
        b.method = method;
        b.method_index = to as u32;
        b.method_started_at = now;
        b.method_failed = false;
        b.method_tried_at = (method == DcvMethod::Email).then_some(now);
        b.challenge = None;
        b.check = None;
        b.check_rounds = 0;
        b.next_check_at = None;
        b.last_error = None;
        b.resends = 0;
        if method == DcvMethod::Email {
            b.state = AuthzState::EmailSent;
            b.approver_email = email;
            b.next_resend_at = Some(resend_at);
        } else {
            b.state = AuthzState::Publishing;
        }
        self.event(
            EventKind::MethodSwitch,
            Some(&domain),
            format!("DCV method {from} → {method}: {reason}"),
        );
    }

    /// The token of authorization `id` is in place (or the operator was asked to put it
    /// there): check it from now on; `method_timeout` counts from its first attempt.
    pub fn published(&mut self, id: i64, message: String) {
        let now = self.now;
        let domain = self.authz_mut(id).map(|b| {
            b.state = AuthzState::Propagating;
            b.next_check_at = Some(now);
            b.last_error = None;
            b.method_tried_at.get_or_insert(now);
            b.domain.clone()
        });
        self.event(EventKind::Published, domain.as_ref(), message);
    }

    /// One round of our propagation check of authorization `id` saw `report`. Visible on
    /// every server: ready for the CA. Not yet: checked again after `poll`, and once
    /// `timeout` has passed since the method's first attempt, the method has failed.
    pub fn checked(&mut self, id: i64, report: CheckReport, poll: Duration, timeout: Duration) {
        let now = self.now;
        let Some(a) = self.authz_mut(id) else {
            return;
        };
        let Some(location) = a.challenge.as_ref().map(|c| c.location()) else {
            return;
        };
        let changed = a.check.as_ref().map(|c| c.summary()) != Some(report.summary());
        let elapsed = (now - a.method_tried_at.unwrap_or(now))
            .to_std()
            .unwrap_or_default();
        let (present, summary) = (report.present, report.summary());
        let poll = crate::lifecycle::retry::backoff_poll(poll, elapsed);
        a.check = Some(report);
        a.checked_at = Some(now);
        a.check_rounds += 1;
        if present {
            a.state = AuthzState::Ready;
            a.next_check_at = None;
            a.last_error = None;
        } else {
            a.next_check_at = Some(after(now, poll));
            a.last_error = Some(format!("not visible everywhere yet: {summary}"));
        }
        let domain = a.domain.clone();
        if present {
            self.event(
                EventKind::CheckPassed,
                Some(&domain),
                format!("{location} visible on every server: {summary}"),
            );
        } else if elapsed >= timeout {
            self.method_failed(
                id,
                format!(
                    "{location} still not visible everywhere after dns.timeout ({}): {summary}",
                    humantime::format_duration(timeout)
                ),
            );
        } else if changed {
            self.event(
                EventKind::CheckPending,
                Some(&domain),
                format!("{location} not visible everywhere yet: {summary}"),
            );
        }
    }

    /// Our check of authorization `id` could not run (`retry::after_step_error`): the
    /// reason stays on it (for `status`) and it is checked again at `again`. Returns its name.
    pub fn check_failed(
        &mut self,
        id: i64,
        reason: &str,
        again: DateTime<Utc>,
    ) -> Option<DomainName> {
        self.authz_mut(id).map(|a| {
            a.last_error = Some(reason.to_string());
            a.next_check_at = Some(again);
            a.domain.clone()
        })
    }

    /// The CA was asked to validate authorizations `ids`.
    pub fn triggered(&mut self, ids: &[i64]) {
        for a in self.authz.iter_mut().filter(|a| ids.contains(&a.id)) {
            a.state = AuthzState::Submitted;
        }
    }

    /// The approval emails of `ids` went out again; the next resend is due at `next`.
    pub fn resent(&mut self, ids: &[i64], next: DateTime<Utc>) {
        for a in self.authz.iter_mut().filter(|a| ids.contains(&a.id)) {
            a.resends += 1;
            a.next_resend_at = Some(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Challenge, ChallengeKind, DomainName, KeyType};
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn order(state: OrderState) -> Order {
        Order {
            id: 1,
            certificate: "www".into(),
            provider: "ca".into(),
            state,
            failure_reason: None,
            reference: "r".into(),
            ca_order_id: Some("9".into()),
            ca_data: serde_json::json!({}),
            submit_maybe_sent: false,
            submit_sent_at: None,
            unsure_reason: None,
            unsure_candidates: vec![],
            dup_check_at: None,
            ca_cancel: None,
            ca_cancel_at: None,
            ca_cancel_attempts: 0,
            ca_cancel_answer: None,
            damaged: None,
            names: vec![],
            key_type: KeyType::EcdsaP256,
            private_key_pem: secrecy::SecretString::from(String::new()),
            csr_pem: String::new(),
            csr_der: vec![],
            renewal_of: None,
            attempts: 0,
            next_attempt_at: t(0),
            last_error: None,
            last_status_at: None,
            ca_state: None,
            cert_pem: None,
            chain_pem: None,
            not_after: None,
            created_at: t(0),
            updated_at: t(0),
        }
    }

    fn authz(
        id: i64,
        name: &str,
        state: AuthzState,
        method: DcvMethod,
        index: u32,
    ) -> Authorization {
        Authorization {
            id,
            order_id: 1,
            domain: DomainName::parse(name).unwrap(),
            method,
            method_index: index,
            method_started_at: t(0),
            method_tried_at: Some(t(0)),
            method_failed: false,
            state,
            challenge: Some(Challenge {
                kind: ChallengeKind::DnsTxt,
                name: format!("_dnsauth.{name}"),
                path: None,
                value: "v".into(),
            }),
            approver_email: None,
            check: None,
            checked_at: None,
            next_check_at: None,
            check_rounds: 0,
            resends: 0,
            next_resend_at: None,
            last_error: None,
        }
    }

    fn policy(scope: MethodScope) -> Policy {
        Policy {
            dcv: vec![DcvMethod::DnsTxt, DcvMethod::Http, DcvMethod::Email],
            method_timeout: Duration::from_secs(7200),
            scope,
            status_interval: Duration::from_secs(60),
            max_resends: 2,
            wildcard_names: vec!["*.example.com".into()],
            refresh_tokens: false,
        }
    }

    use AuthzState::*;
    use DcvMethod::*;

    #[test]
    fn method_timer_asks_the_ca_once_before_switching() {
        let p = policy(MethodScope::PerName);
        let a = vec![authz(1, "example.com", Submitted, DnsTxt, 0)];
        let mut o = order(OrderState::Validating);
        // Before the deadline: wait for it (or the next poll).
        o.last_status_at = Some(t(7000));
        assert_eq!(decide(&o, &a, &p, t(7030)), Next::Wait(t(7060)));
        // Deadline passed, last status from before it: ask the CA first.
        assert_eq!(decide(&o, &a, &p, t(7200)), Next::PollStatus);
        // Asked after the deadline, still pending: switch, naming the first attempt.
        o.last_status_at = Some(t(7200));
        match decide(&o, &a, &p, t(7200)) {
            Next::SwitchMethod { authz, to, reason } => {
                assert_eq!((authz, to), (vec![1], 1));
                assert!(reason.contains("of its first attempt at"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // The timer counts from the first attempt, not from when the method was chosen.
        let mut late_try = a[0].clone();
        late_try.method_started_at = t(0);
        late_try.method_tried_at = Some(t(5000));
        assert!(matches!(
            decide(&o, &[late_try], &p, t(7200)),
            Next::PollStatus | Next::Wait(_)
        ));
    }

    #[test]
    fn submit_doubt_and_duplicate_sweep() {
        let p = policy(MethodScope::PerOrder);
        // submit_unknown never moves on its own.
        assert_eq!(
            decide(&order(OrderState::SubmitUnknown), &[], &p, t(1)),
            Next::Wait(t(1 + OPERATOR_WAIT.as_secs() as i64))
        );
        let a = vec![authz(1, "example.com", Submitted, DnsTxt, 0)];
        let mut o = order(OrderState::Validating);
        o.last_status_at = Some(t(0));
        o.dup_check_at = Some(t(300));
        // Not due yet: the wait ends no later than the sweep.
        o.last_status_at = Some(t(290));
        assert_eq!(decide(&o, &a, &p, t(295)), Next::Wait(t(300)));
        // Due: sweep before anything else.
        assert_eq!(decide(&o, &a, &p, t(300)), Next::SweepDuplicates);
        // Issued at the CA before the sweep: the download does not wait for it.
        let mut issued = order(OrderState::AwaitingIssuance);
        issued.ca_state = Some(CaOrderState::Issued);
        issued.dup_check_at = Some(t(300));
        assert_eq!(decide(&issued, &a, &p, t(100)), Next::Download);
        // An ended order still owes the sweep, then is done.
        let mut ended = order(OrderState::Issued);
        ended.dup_check_at = Some(t(300));
        assert_eq!(decide(&ended, &a, &p, t(100)), Next::Done);
        assert_eq!(decide(&ended, &a, &p, t(300)), Next::SweepDuplicates);
        ended.state = OrderState::Canceled;
        assert_eq!(decide(&ended, &a, &p, t(300)), Next::Done);
    }

    #[test]
    fn order_level_transitions() {
        let p = policy(MethodScope::PerOrder);
        let mut sent = order(OrderState::Submitting);
        sent.submit_maybe_sent = true;
        let mut issued_at_ca = order(OrderState::AwaitingIssuance);
        issued_at_ca.ca_state = Some(CaOrderState::Issued);
        let mut polled = order(OrderState::AwaitingIssuance);
        polled.last_status_at = Some(t(0));
        let cases: Vec<(&str, Order, Next)> = vec![
            ("pending submits", order(OrderState::Pending), Next::Submit),
            (
                "submitting, nothing sent",
                order(OrderState::Submitting),
                Next::Submit,
            ),
            ("submitting, maybe sent: look it up", sent, Next::Recover),
            (
                "awaiting issuance polls",
                order(OrderState::AwaitingIssuance),
                Next::PollStatus,
            ),
            ("awaiting, polled recently: wait", polled, Next::Wait(t(60))),
            ("issued at CA: download", issued_at_ca, Next::Download),
            ("issued is done", order(OrderState::Issued), Next::Done),
            ("failed is done", order(OrderState::Failed), Next::Done),
            ("canceled is done", order(OrderState::Canceled), Next::Done),
        ];
        for (what, o, want) in cases {
            assert_eq!(decide(&o, &[], &p, t(1)), want, "{what}");
        }
    }

    #[test]
    fn authorization_transitions() {
        let o = order(OrderState::Validating);
        let mut no_token = authz(1, "example.com", Publishing, DnsTxt, 0);
        no_token.challenge = None;
        let mut checked_later = authz(1, "example.com", Propagating, DnsTxt, 0);
        checked_later.next_check_at = Some(t(30));
        let mut email_due = authz(2, "www.example.com", EmailSent, Email, 2);
        email_due.next_resend_at = Some(t(5));
        let mut email_maxed = email_due.clone();
        email_maxed.resends = 2;
        let cases: Vec<(&str, Vec<Authorization>, Next)> = vec![
            (
                "tokens unknown: fetch",
                vec![no_token],
                Next::FetchTokens { authz: vec![1] },
            ),
            (
                "publishing: publish",
                vec![authz(1, "example.com", Publishing, DnsTxt, 0)],
                Next::Publish { authz: 1 },
            ),
            (
                "propagating: check",
                vec![authz(1, "example.com", Propagating, DnsTxt, 0)],
                Next::Check { authz: 1 },
            ),
            (
                "check not due: wait",
                vec![checked_later],
                Next::Wait(t(30)),
            ),
            (
                "all ready: ask the CA",
                vec![
                    authz(1, "example.com", Ready, DnsTxt, 0),
                    authz(2, "www.example.com", Ready, DnsTxt, 0),
                ],
                Next::TriggerCheck { authz: vec![1, 2] },
            ),
            (
                "one still propagating: do not ask yet",
                vec![
                    authz(1, "example.com", Ready, DnsTxt, 0),
                    authz(2, "www.example.com", Propagating, DnsTxt, 0),
                ],
                Next::Check { authz: 2 },
            ),
            (
                "submitted: poll",
                vec![authz(1, "example.com", Submitted, DnsTxt, 0)],
                Next::PollStatus,
            ),
            (
                "email resend due",
                vec![email_due],
                Next::Resend { authz: vec![2] },
            ),
            (
                "email at max resends: poll only",
                vec![email_maxed],
                Next::PollStatus,
            ),
            (
                "all valid: poll for issuance",
                vec![authz(1, "example.com", Valid, DnsTxt, 0)],
                Next::PollStatus,
            ),
        ];
        for (what, a, want) in cases {
            assert_eq!(
                decide(&o, &a, &policy(MethodScope::PerName), t(10)),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn fallback_and_failure_edges() {
        let late = t(7200);
        // The CA was asked after the deadline and the name is still pending.
        let mut o = order(OrderState::Validating);
        o.last_status_at = Some(late);
        // Per name: only the stalled name moves.
        let a = vec![
            authz(1, "example.com", Propagating, DnsTxt, 0),
            authz(2, "www.example.com", Valid, DnsTxt, 0),
        ];
        match decide(&o, &a, &policy(MethodScope::PerName), late) {
            Next::SwitchMethod { authz, to, reason } => {
                assert_eq!((authz, to), (vec![1], 1));
                assert!(reason.contains("method_timeout (2h)"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Per order: every pending name moves together, valid ones stay.
        let a = vec![
            authz(1, "example.com", Propagating, DnsTxt, 0),
            authz(2, "www.example.com", Ready, DnsTxt, 0),
            authz(3, "api.example.com", Valid, DnsTxt, 0),
        ];
        assert!(matches!(
            decide(&o, &a, &policy(MethodScope::PerOrder), late),
            Next::SwitchMethod { ref authz, to: 1, .. } if authz == &vec![1, 2]
        ));
        // A wildcard skips http and goes straight to email.
        let a = vec![authz(1, "*.example.com", Propagating, DnsTxt, 0)];
        assert!(matches!(
            decide(&o, &a, &policy(MethodScope::PerName), late),
            Next::SwitchMethod { to: 2, .. }
        ));
        // A method marked failed falls back at once with its reason.
        let mut failed = authz(1, "example.com", Propagating, DnsTxt, 0);
        failed.method_failed = true;
        failed.last_error = Some("REFUSED by 192.0.2.53".into());
        match decide(&o, &[failed], &policy(MethodScope::PerName), t(1)) {
            Next::SwitchMethod { reason, .. } => assert_eq!(reason, "REFUSED by 192.0.2.53"),
            other => panic!("{other:?}"),
        }
        // The last method exhausted: fail.
        let a = vec![authz(1, "example.com", EmailSent, Email, 2)];
        match decide(&o, &a, &policy(MethodScope::PerName), late) {
            Next::Exhausted { authz: 1, reason } => {
                assert!(reason.contains("no DCV method left for example.com"))
            }
            other => panic!("{other:?}"),
        }
        // A method never tried (token not yet published, e.g. the daemon was down for
        // longer than method_timeout) is tried, not timed out.
        let mut untried = authz(1, "example.com", Publishing, DnsTxt, 0);
        untried.method_tried_at = None;
        assert_eq!(
            decide(&o, &[untried], &policy(MethodScope::PerName), t(86_400)),
            Next::Publish { authz: 1 }
        );
        // The CA issued: download whatever the authorizations say.
        let mut issued = order(OrderState::Validating);
        issued.ca_state = Some(CaOrderState::Issued);
        assert_eq!(
            decide(&issued, &a, &policy(MethodScope::PerName), t(1)),
            Next::Download
        );
    }

    fn cert(dcv: &str) -> CertificateConfig {
        toml::from_str(&format!(
            r#"
name = "www"
provider = "ca"
common_name = "example.com"
dcv = {dcv}
output_dir = "/tmp/unused"
approver_emails = {{ "example.com" = "admin@example.com" }}
"#
        ))
        .unwrap()
    }

    #[test]
    fn first_method_table() {
        use DcvMethod::*;
        // (dcv list, name, method, index, state, approver)
        type Row<'a> = (
            &'a str,
            &'a str,
            DcvMethod,
            u32,
            AuthzState,
            Option<&'a str>,
        );
        let table: &[Row] = &[
            (
                r#"["dns-txt", "http"]"#,
                "www.example.com",
                DnsTxt,
                0,
                AuthzState::Publishing,
                None,
            ),
            (
                r#"["http", "dns-txt"]"#,
                "www.example.com",
                Http,
                0,
                AuthzState::Publishing,
                None,
            ),
            // A wildcard skips http/https, as every fallback does.
            (
                r#"["http", "dns-txt"]"#,
                "*.example.com",
                DnsTxt,
                1,
                AuthzState::Publishing,
                None,
            ),
            (
                r#"["https", "http", "email"]"#,
                "*.example.com",
                Email,
                2,
                AuthzState::EmailSent,
                Some("admin@example.com"),
            ),
            // Email waits for the mails placing the order sends; the approver by parent domain.
            (
                r#"["email", "dns-txt"]"#,
                "www.example.com",
                Email,
                0,
                AuthzState::EmailSent,
                Some("admin@example.com"),
            ),
            (
                r#"["email"]"#,
                "other.test",
                Email,
                0,
                AuthzState::EmailSent,
                None,
            ),
            // Nothing usable (config validation refuses it): the first of the list.
            (
                r#"["http"]"#,
                "*.example.com",
                Http,
                0,
                AuthzState::Publishing,
                None,
            ),
        ];
        for &(dcv, name, method, index, state, approver) in table {
            let got = first_method(&cert(dcv), &DomainName::parse(name).unwrap());
            assert_eq!(
                (
                    got.method,
                    got.method_index,
                    got.state,
                    got.approver_email.as_deref()
                ),
                (method, index, state, approver),
                "{dcv} {name}"
            );
            assert_eq!(got.domain.as_str(), name);
        }
    }

    #[test]
    fn first_method_and_fallback_agree_on_wildcards() {
        let c = cert(r#"["http", "https", "dns-txt", "email"]"#);
        let first = first_method(&c, &DomainName::parse("*.example.com").unwrap());
        let policy = Policy {
            dcv: c.dcv.clone(),
            method_timeout: c.method_timeout,
            scope: MethodScope::PerName,
            status_interval: Duration::from_secs(60),
            max_resends: 0,
            wildcard_names: vec!["*.example.com".into()],
            refresh_tokens: false,
        };
        assert_eq!(
            next_method(&policy, "*.example.com", 0),
            Some(first.method_index as usize)
        );
    }

    /// Run one transition on `order`/`authz` at `now`; the event kinds it recorded.
    fn change<R>(
        order: &mut Order,
        authz: &mut [Authorization],
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Change<'_>) -> R,
    ) -> (R, Vec<&'static str>) {
        let mut events = Vec::new();
        let r = f(&mut Change {
            order,
            authz,
            events: &mut events,
            now,
        });
        (r, events.iter().map(|e| e.kind.as_str()).collect())
    }

    fn name(n: &str) -> DomainName {
        DomainName::parse(n).unwrap()
    }

    fn token(n: &str, value: &str) -> Challenge {
        Challenge {
            kind: ChallengeKind::DnsTxt,
            name: format!("_dnsauth.{n}"),
            path: None,
            value: value.into(),
        }
    }

    #[test]
    fn status_fold_table() {
        let names = |v: Vec<(&str, NameDcv)>| -> Vec<(DomainName, NameDcv)> {
            v.into_iter().map(|(n, d)| (name(n), d)).collect()
        };
        // (CA order state, per-name answers, order state after, authz states after, events)
        type Row<'a> = (
            CaOrderState,
            Vec<(&'a str, NameDcv)>,
            OrderState,
            [AuthzState; 2],
            Vec<&'a str>,
        );
        let table: Vec<Row> = vec![
            (
                CaOrderState::InProgress,
                vec![("a.example.com", NameDcv::Valid)],
                OrderState::Validating,
                [Valid, Submitted],
                vec!["validated", "ca_state"],
            ),
            (
                CaOrderState::InProgress,
                vec![
                    ("a.example.com", NameDcv::Valid),
                    ("b.example.com", NameDcv::Valid),
                ],
                OrderState::AwaitingIssuance,
                [Valid, Valid],
                vec!["validated", "validated", "ca_state", "state"],
            ),
            (
                CaOrderState::InProgress,
                vec![("b.example.com", NameDcv::Invalid("no TXT".into()))],
                OrderState::Validating,
                [Submitted, Submitted],
                vec!["ca_invalid", "ca_state"],
            ),
            (
                CaOrderState::Issued,
                vec![],
                OrderState::AwaitingIssuance,
                [Submitted, Submitted],
                vec!["ca_state", "state"],
            ),
            (
                CaOrderState::Failed("revoked".into()),
                vec![],
                OrderState::Failed,
                [Submitted, Submitted],
                vec!["ca_state", "state", "failed"],
            ),
            (
                CaOrderState::NeedsApproval,
                vec![],
                OrderState::Validating,
                [Submitted, Submitted],
                vec!["ca_state"],
            ),
        ];
        for (ca, answers, state, authz_after, kinds) in table {
            let mut o = order(OrderState::Validating);
            let mut a = vec![
                authz(1, "a.example.com", Submitted, DnsTxt, 0),
                authz(2, "b.example.com", Submitted, DnsTxt, 0),
            ];
            let st = CaStatus {
                order: ca.clone(),
                names: names(answers),
                ca_data: None,
            };
            let (note, got) = change(&mut o, &mut a, t(5), |c| c.status(st));
            assert_eq!(o.state, state, "{ca:?}");
            assert_eq!([a[0].state, a[1].state], authz_after, "{ca:?}");
            assert_eq!(got, kinds, "{ca:?}");
            assert_eq!(o.last_status_at, Some(t(5)));
            assert_eq!(note.is_some(), ca == CaOrderState::NeedsApproval, "{ca:?}");
            if let CaOrderState::Failed(_) = ca {
                assert!(o.failure_reason.as_deref().unwrap().contains("revoked"));
            } else {
                assert_eq!(o.ca_state, Some(ca.clone()));
            }
        }
        // An invalid name falls back at once, with the CA's reason.
        let mut o = order(OrderState::Validating);
        let mut a = vec![authz(1, "a.example.com", Submitted, DnsTxt, 0)];
        let st = CaStatus {
            order: CaOrderState::InProgress,
            names: vec![(name("a.example.com"), NameDcv::Invalid("no TXT".into()))],
            ca_data: None,
        };
        change(&mut o, &mut a, t(5), |c| c.status(st));
        assert!(a[0].method_failed);
        assert!(a[0].last_error.as_deref().unwrap().contains("no TXT"));
    }

    #[test]
    fn token_fold_takes_new_tokens_and_releases_replaced_ones() {
        let mut o = order(OrderState::Validating);
        let mut publishing = authz(1, "a.example.com", Publishing, DnsTxt, 0);
        publishing.challenge = None;
        let mut a = vec![
            publishing,
            authz(2, "b.example.com", Propagating, DnsTxt, 0),
            authz(3, "c.example.com", EmailSent, Email, 2),
            authz(4, "d.example.com", Ready, DnsTxt, 0),
        ];
        a[2].challenge = None;
        let t2 = Tokens {
            challenges: vec![
                (name("a.example.com"), token("a.example.com", "new-a")),
                (name("b.example.com"), token("b.example.com", "new-b")),
                (name("c.example.com"), token("c.example.com", "new-c")),
                // Unchanged: nothing to do.
                (name("d.example.com"), token("d.example.com", "v")),
            ],
            ca_data: Some(serde_json::json!({"k": 1})),
        };
        let (released, kinds) = change(&mut o, &mut a, t(1), |c| c.tokens(t2));
        assert_eq!(released, vec![token("b.example.com", "v")]);
        assert_eq!(kinds, vec!["token_renewed"]);
        assert_eq!(a[0].challenge, Some(token("a.example.com", "new-a")));
        assert_eq!(a[0].state, Publishing);
        assert_eq!(a[1].state, Publishing, "a renewed token is published again");
        assert_eq!(a[1].challenge, Some(token("b.example.com", "new-b")));
        assert_eq!(a[2].challenge, None, "an email name takes no token");
        assert_eq!(a[3].state, Ready);
        assert_eq!(o.ca_data, serde_json::json!({"k": 1}));
    }

    #[test]
    fn adopt_starts_validation_and_emails() {
        for issued in [false, true] {
            let mut o = order(OrderState::Submitting);
            o.submit_maybe_sent = true;
            let mut a = vec![
                authz(1, "a.example.com", Publishing, DnsTxt, 0),
                authz(2, "b.example.com", EmailSent, Email, 2),
            ];
            a[1].method_tried_at = None;
            let sub = crate::ca::Submitted {
                ca_order_id: "77".into(),
                ca_data: serde_json::json!({}),
                challenges: vec![],
                issued,
            };
            let ((), kinds) = change(&mut o, &mut a, t(3), |c| c.adopt(sub, "submitted", t(99)));
            assert_eq!(o.ca_order_id.as_deref(), Some("77"));
            assert!(!o.submit_maybe_sent);
            assert_eq!(a[1].next_resend_at, Some(t(99)));
            assert_eq!(a[1].method_tried_at, Some(t(3)), "the emails went out now");
            assert_eq!(a[0].next_resend_at, None);
            if issued {
                assert_eq!(o.state, OrderState::AwaitingIssuance);
                assert_eq!(kinds, vec!["state", "ca_order", "state"]);
            } else {
                assert_eq!(o.state, OrderState::Validating);
                assert_eq!(kinds, vec!["state", "ca_order"]);
            }
        }
    }

    #[test]
    fn check_results_table() {
        let report = |present: bool| CheckReport {
            present,
            final_name: "_dnsauth.a.example.com".into(),
            servers: vec![],
        };
        let poll = Duration::from_secs(2);
        let timeout = Duration::from_secs(3600);
        // (seconds since the first attempt, visible, state after, next check in s, events)
        type Row<'a> = (i64, bool, AuthzState, Option<i64>, &'a [&'a str]);
        let table: &[Row] = &[
            (10, true, Ready, None, &["check_passed"]),
            (10, false, Propagating, Some(2), &["check_pending"]),
            (600, false, Propagating, Some(10), &["check_pending"]),
            (3600, false, Propagating, Some(60), &["method_failed"]),
        ];
        for &(since, present, state, next, kinds) in table {
            let mut o = order(OrderState::Validating);
            let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
            let now = t(since);
            let ((), got) = change(&mut o, &mut a, now, |c| {
                c.checked(1, report(present), poll, timeout)
            });
            assert_eq!(a[0].state, state, "{since} {present}");
            assert_eq!(
                a[0].next_check_at,
                next.map(|s| now + chrono::Duration::seconds(s)),
                "{since} {present}"
            );
            assert_eq!(got, kinds, "{since} {present}");
            assert_eq!(a[0].check_rounds, 1);
            assert_eq!(a[0].method_failed, since >= 3600 && !present);
        }
        // The same pending answer again is not a new event.
        let mut o = order(OrderState::Validating);
        let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
        a[0].check = Some(report(false));
        let ((), got) = change(&mut o, &mut a, t(10), |c| {
            c.checked(1, report(false), poll, timeout)
        });
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn method_switch_and_publish_transitions() {
        let mut o = order(OrderState::Validating);
        let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
        a[0].method_failed = true;
        a[0].resends = 1;
        let ((), kinds) = change(&mut o, &mut a, t(7), |c| {
            c.method_switched(
                1,
                2,
                Email,
                Some("admin@example.com".into()),
                t(50),
                "timeout",
            )
        });
        assert_eq!(kinds, vec!["method_switch"]);
        let b = &a[0];
        assert_eq!((b.method, b.method_index, b.state), (Email, 2, EmailSent));
        assert_eq!(b.approver_email.as_deref(), Some("admin@example.com"));
        assert_eq!(b.method_tried_at, Some(t(7)));
        assert_eq!(b.next_resend_at, Some(t(50)));
        assert!(!b.method_failed && b.challenge.is_none() && b.resends == 0);

        let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
        change(&mut o, &mut a, t(7), |c| {
            c.method_switched(1, 1, Http, None, t(50), "x")
        });
        assert_eq!((a[0].state, a[0].method_tried_at), (Publishing, None));

        let mut a = vec![authz(1, "a.example.com", Publishing, Http, 1)];
        a[0].method_tried_at = None;
        let ((), kinds) = change(&mut o, &mut a, t(8), |c| c.published(1, "published".into()));
        assert_eq!(kinds, vec!["published"]);
        assert_eq!(a[0].state, Propagating);
        assert_eq!(a[0].next_check_at, Some(t(8)));
        assert_eq!(
            a[0].method_tried_at,
            Some(t(8)),
            "method_timeout counts from here"
        );

        let ((), kinds) = change(&mut o, &mut a, t(9), |c| {
            c.method_refused(&[1], 2, Email, "no".into())
        });
        assert_eq!(kinds, vec!["method_refused"]);
        assert!(a[0].method_failed);
        assert_eq!(
            (a[0].method, a[0].method_index, a[0].method_tried_at),
            (Email, 2, None)
        );

        let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
        let ((), kinds) = change(&mut o, &mut a, t(9), |c| {
            c.exhausted(1, "nothing left".into())
        });
        assert_eq!(kinds, vec!["state", "failed"]);
        assert_eq!(
            (a[0].state, o.state),
            (AuthzState::Failed, OrderState::Failed)
        );
        assert_eq!(o.failure_reason.as_deref(), Some("nothing left"));
    }

    #[test]
    fn trigger_resend_and_check_failure_transitions() {
        let mut o = order(OrderState::Validating);
        let mut a = vec![
            authz(1, "a.example.com", Ready, DnsTxt, 0),
            authz(2, "b.example.com", EmailSent, Email, 2),
        ];
        change(&mut o, &mut a, t(1), |c| c.triggered(&[1]));
        assert_eq!(a[0].state, Submitted);
        change(&mut o, &mut a, t(1), |c| c.resent(&[2], t(40)));
        assert_eq!((a[1].resends, a[1].next_resend_at), (1, Some(t(40))));
        let (d, kinds) = change(&mut o, &mut a, t(1), |c| {
            c.check_failed(1, "no NS answered", t(30))
        });
        assert_eq!(d, Some(name("a.example.com")));
        assert!(kinds.is_empty());
        assert_eq!(a[0].next_check_at, Some(t(30)));
        assert_eq!(a[0].last_error.as_deref(), Some("no NS answered"));
        assert_eq!(o.state, OrderState::Validating, "never fails the order");
    }

    #[test]
    fn submit_intent_doubt_and_issue_transitions() {
        let mut a = vec![authz(1, "a.example.com", Publishing, DnsTxt, 0)];
        let mut o = order(OrderState::Pending);
        o.unsure_reason = Some("old".into());
        let ((), kinds) = change(&mut o, &mut a, t(4), |c| c.submitting());
        assert_eq!(kinds, vec!["state"]);
        assert_eq!(o.state, OrderState::Submitting);
        assert!(o.submit_maybe_sent, "maybe sent before the request leaves");
        assert_eq!(
            (o.submit_sent_at, o.unsure_reason.as_ref()),
            (Some(t(4)), None)
        );
        // Retrying the intent changes nothing but the send time.
        let ((), kinds) = change(&mut o, &mut a, t(5), |c| c.submitting());
        assert!(kinds.is_empty());
        assert_eq!(o.submit_sent_at, Some(t(5)));

        change(&mut o, &mut a, t(6), |c| c.not_sent());
        assert!(!o.submit_maybe_sent);
        assert_eq!(o.state, OrderState::Submitting, "submitted again next");

        let ((), kinds) = change(&mut o, &mut a, t(7), |c| {
            c.submit_unknown("two candidates".into(), vec!["1".into(), "2".into()])
        });
        assert_eq!(kinds, vec!["state"]);
        assert_eq!(o.state, OrderState::SubmitUnknown);
        assert_eq!(o.unsure_candidates, vec!["1".to_string(), "2".to_string()]);

        o.attempts = 3;
        o.last_error = Some("x".into());
        change(&mut o, &mut a, t(8), |c| c.resubmit_allowed());
        assert_eq!(o.state, OrderState::Submitting);
        assert!(
            !o.submit_maybe_sent && o.unsure_reason.is_none() && o.unsure_candidates.is_empty()
        );
        assert_eq!(
            (o.attempts, o.last_error.as_ref(), o.next_attempt_at),
            (0, None, t(8))
        );

        let mut o = order(OrderState::AwaitingIssuance);
        let ((), kinds) = change(&mut o, &mut a, t(9), |c| {
            c.issued("leaf".into(), "chain".into(), t(900))
        });
        assert_eq!(kinds, vec!["state"]);
        assert_eq!(o.state, OrderState::Issued);
        assert_eq!(
            (o.cert_pem.as_deref(), o.chain_pem.as_deref(), o.not_after),
            (Some("leaf"), Some("chain"), Some(t(900)))
        );
    }

    #[test]
    fn a_failure_after_the_ca_has_the_order_wants_it_canceled_there() {
        use AuthzState::*;
        use DcvMethod::*;
        let p = policy(MethodScope::PerName);
        let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
        // Failed by dcvd with a CA order: the marker is set in the failure's own change,
        // and the cancel is the next step.
        let mut o = order(OrderState::Validating);
        change(&mut o, &mut a, t(5), |c| c.fail("no method left".into()));
        assert_eq!(o.state, OrderState::Failed);
        assert_eq!(
            (o.ca_cancel, o.ca_cancel_at),
            (Some(CaCancel::Wanted), Some(t(5)))
        );
        assert_eq!(decide(&o, &a, &p, t(5)), Next::CancelAtCa);
        assert_eq!(decide(&o, &a, &p, t(4)), Next::Done, "not before it is due");
        // A late-duplicate look that is due comes first.
        let mut swept = o.clone();
        swept.dup_check_at = Some(t(5));
        assert_eq!(decide(&swept, &a, &p, t(5)), Next::SweepDuplicates);

        // No CA order: nothing to cancel.
        let mut o = order(OrderState::Submitting);
        o.ca_order_id = None;
        change(&mut o, &mut a, t(5), |c| c.fail("refused".into()));
        assert_eq!(o.ca_cancel, None);
        assert_eq!(decide(&o, &a, &p, t(5)), Next::Done);

        // The CA ended it itself: nothing pending there.
        let mut o = order(OrderState::Validating);
        change(&mut o, &mut a, t(5), |c| {
            c.status(CaStatus {
                order: CaOrderState::Failed("rejected".into()),
                names: vec![],
                ca_data: None,
            })
        });
        assert_eq!(o.state, OrderState::Failed);
        assert_eq!(o.ca_cancel, None);
    }

    #[test]
    fn ca_cancel_answers() {
        use AuthzState::*;
        use DcvMethod::*;
        let p = policy(MethodScope::PerName);
        let mut a = vec![authz(1, "a.example.com", Propagating, DnsTxt, 0)];
        let mut o = order(OrderState::Validating);
        change(&mut o, &mut a, t(5), |c| c.fail("x".into()));

        let ((), kinds) = change(&mut o, &mut a, t(6), |c| {
            c.ca_cancel_retry("503".into(), t(20))
        });
        assert_eq!(kinds, vec!["ca_cancel"]);
        assert_eq!((o.ca_cancel_attempts, o.ca_cancel_at), (1, Some(t(20))));
        assert_eq!(o.ca_cancel, Some(CaCancel::Wanted), "still wanted");
        assert_eq!(decide(&o, &a, &p, t(19)), Next::Done);
        assert_eq!(decide(&o, &a, &p, t(20)), Next::CancelAtCa);

        let mut refused = o.clone();
        let ((), kinds) = change(&mut refused, &mut a, t(21), |c| {
            c.ca_cancel_refused("Only pending orders can be canceled.".into())
        });
        assert_eq!(kinds, vec!["ca_cancel"]);
        assert_eq!(refused.ca_cancel, Some(CaCancel::Refused));
        assert_eq!(
            refused.ca_cancel_answer.as_deref(),
            Some("Only pending orders can be canceled.")
        );
        assert_eq!(
            decide(&refused, &a, &p, t(99)),
            Next::Done,
            "never asked again"
        );
        assert_eq!(refused.state, OrderState::Failed);

        let ((), kinds) = change(&mut o, &mut a, t(21), |c| c.ca_canceled("canceled".into()));
        assert_eq!(kinds, vec!["ca_cancel"]);
        assert_eq!(
            (o.ca_cancel, o.ca_cancel_at),
            (Some(CaCancel::Canceled), None)
        );
        assert_eq!(decide(&o, &a, &p, t(99)), Next::Done);
        // A second failure of the same order does not ask again.
        change(&mut o, &mut a, t(22), |c| c.fail("again".into()));
        assert_eq!(o.ca_cancel, Some(CaCancel::Canceled));
    }
}
