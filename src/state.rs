//! Pure decisions: given an order, its authorizations, the certificate's DCV policy and
//! the time, which single action comes next. No I/O here; `reconcile` carries it out.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{AuthzState, DcvMethod, OrderState};
use crate::provider::{CaOrderState, MethodScope};
use crate::store::{Authorization, Order};

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
}

/// The one next action for an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Write the `submitting` intent durably, then send the order.
    Submit,
    /// A submit may have reached the CA: look the order up before anything else.
    Recover,
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
    /// Nothing to do before this time.
    Wait(DateTime<Utc>),
    Done,
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}

/// Index of the next method usable for `domain` after `current`, if any.
pub fn next_method(policy: &Policy, domain: &str, current: usize) -> Option<usize> {
    let wildcard = policy.wildcard_names.iter().any(|w| w == domain);
    (current + 1..policy.dcv.len()).find(|&i| !(wildcard && policy.dcv[i].is_http()))
}

fn pending(a: &Authorization) -> bool {
    !matches!(a.state, AuthzState::Valid | AuthzState::Failed)
}

pub fn decide(order: &Order, authz: &[Authorization], policy: &Policy, now: DateTime<Utc>) -> Next {
    match order.state {
        OrderState::Issued | OrderState::Failed | OrderState::Canceled => Next::Done,
        OrderState::Pending => Next::Submit,
        OrderState::Submitting if order.submit_maybe_sent => Next::Recover,
        OrderState::Submitting => Next::Submit,
        OrderState::AwaitingIssuance => {
            if order.ca_state == Some(CaOrderState::Issued) {
                Next::Download
            } else {
                poll_or_wait(order, policy, now)
            }
        }
        OrderState::Validating => validating(order, authz, policy, now),
    }
}

fn poll_or_wait(order: &Order, policy: &Policy, now: DateTime<Utc>) -> Next {
    match order.last_status_at {
        Some(t) if add(t, policy.status_interval) > now => {
            Next::Wait(add(t, policy.status_interval))
        }
        _ => Next::PollStatus,
    }
}

fn validating(order: &Order, authz: &[Authorization], policy: &Policy, now: DateTime<Utc>) -> Next {
    if order.ca_state == Some(CaOrderState::Issued) {
        return Next::Download;
    }
    // 1. Methods that ran out of time (or were refused) move to the next one.
    for a in authz.iter().filter(|a| pending(a)) {
        let deadline = add(a.method_started_at, policy.method_timeout);
        if deadline <= now {
            // A method marked failed has its start moved to the epoch; anything else ran out of time.
            let failed_now = a.method_started_at == DateTime::<Utc>::UNIX_EPOCH;
            let reason = match (&a.last_error, failed_now) {
                (Some(e), true) => e.clone(),
                (last, _) => format!(
                    "{} did not validate within method_timeout ({}){}",
                    a.method,
                    humantime::format_duration(policy.method_timeout),
                    last.as_ref()
                        .map(|e| format!("; last: {e}"))
                        .unwrap_or_default()
                ),
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
    }
    // 2. Tokens first, then publishing, then checking, one authorization at a time.
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
    // 3. Everything we publish is visible: let the CA look.
    let propagating = authz.iter().any(|a| a.state == AuthzState::Propagating);
    let ready: Vec<i64> = authz
        .iter()
        .filter(|a| a.state == AuthzState::Ready)
        .map(|a| a.id)
        .collect();
    if !ready.is_empty() && !propagating {
        return Next::TriggerCheck { authz: ready };
    }
    // 4. Approval emails due for a resend.
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
    // 5. Waiting on the CA: poll its status now and then.
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
            .filter(|a| pending(a))
            .map(|a| add(a.method_started_at, policy.method_timeout)),
    );
    Next::Wait(
        wake.into_iter()
            .min()
            .unwrap_or_else(|| add(now, policy.status_interval)),
    )
}
