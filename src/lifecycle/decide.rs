//! Pure decisions: given an order, its authorizations, the certificate's DCV policy and
//! the time, which single action comes next. No I/O here; `reconcile` carries it out.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ca::Provider;
use crate::config::CertificateConfig;
use crate::model::{Authorization, DomainName, Order};
use crate::model::{AuthzState, DcvMethod, OrderState};
use crate::model::{CaOrderState, MethodScope};
use crate::store::NewAuthz;

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
    /// Nothing to do before this time.
    Wait(DateTime<Utc>),
    Done,
}

/// How long an order in `submit_unknown` sleeps between steps: it moves only on an
/// operator's command (`dcvd orders adopt` / `resubmit`), which makes it due at once.
pub const OPERATOR_WAIT: Duration = Duration::from_secs(24 * 3600);

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
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
            _ => Next::Done,
        },
        OrderState::Canceled => Next::Done,
        OrderState::Pending => Next::Submit,
        OrderState::SubmitUnknown => Next::Wait(add(now, OPERATOR_WAIT)),
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
            let deadline = add(tried, policy.method_timeout);
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
            .map(|t| add(t, policy.method_timeout)),
    );
    Next::Wait(
        wake.into_iter()
            .min()
            .unwrap_or_else(|| add(now, policy.status_interval)),
    )
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
        let table: &[(&str, &str, DcvMethod, u32, AuthzState, Option<&str>)] = &[
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
}
