//! Folding provider answers (a placed order, tokens, a status) into the order and its
//! authorizations. Pure bookkeeping on the in-memory step; saved by the caller.

use super::steps::Step;
use crate::ca::{CaOrderState, CaStatus, NameDcv, Submitted, Tokens};
use crate::model::{AuthzState, DcvMethod, OrderState};

/// The CA has our order (just placed, or found by recovery).
pub(super) fn adopt(s: &mut Step<'_>, sub: Submitted, how: &str) {
    s.order.ca_order_id = Some(sub.ca_order_id.clone());
    s.order.ca_data = sub.ca_data;
    s.order.submit_maybe_sent = false;
    let (resend_at, now) = (s.next_resend(), s.now);
    for a in s.authz.iter_mut() {
        if a.method == DcvMethod::Email {
            // Placing the order sent the approval emails: the method's first attempt.
            a.state = AuthzState::EmailSent;
            a.next_resend_at = Some(resend_at);
            a.method_tried_at.get_or_insert(now);
        }
    }
    s.set_state(OrderState::Validating);
    s.event(
        "ca_order",
        None,
        format!("CA order {} {how}", sub.ca_order_id),
    );
    tokens(
        s,
        Tokens {
            challenges: sub.challenges,
            ca_data: None,
        },
    );
    if sub.issued {
        s.order.ca_state = Some(CaOrderState::Issued);
        s.set_state(OrderState::AwaitingIssuance);
    }
}

/// New tokens: an authorization still publishing takes the token for its name; one
/// further along whose token changed (renewed before expiry) publishes the new one, and
/// the old one is released for cleanup.
pub(super) fn tokens(s: &mut Step<'_>, t: Tokens) -> Vec<crate::model::Challenge> {
    if let Some(d) = t.ca_data {
        s.order.ca_data = d;
    }
    let mut released = Vec::new();
    let mut renewed = Vec::new();
    for (name, ch) in t.challenges {
        let Some(a) = s.authz.iter_mut().find(|a| {
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
        s.event(
            "token_renewed",
            Some(&d),
            "the CA issued a new token before the old one expired; publishing it".into(),
        );
    }
    released
}

/// What the CA says about the order and each name.
pub(super) fn status(s: &mut Step<'_>, st: CaStatus) {
    s.order.last_status_at = Some(s.now);
    if let Some(d) = st.ca_data {
        s.order.ca_data = d;
    }
    for (name, dcv) in &st.names {
        let Some(a) = s.authz.iter_mut().find(|a| &a.domain == name) else {
            continue;
        };
        match dcv {
            NameDcv::Valid if a.state != AuthzState::Valid => {
                a.state = AuthzState::Valid;
                a.last_error = None;
                let d = a.domain.clone();
                s.event("validated", Some(&d), "the CA validated this name".into());
            }
            NameDcv::Invalid(why) if a.state != AuthzState::Valid => {
                // The CA gave up on this method for this name: fall back at once.
                a.method_failed = true;
                a.last_error = Some(format!("the CA reports {} failed: {why}", a.method));
                let (d, m) = (a.domain.clone(), a.last_error.clone().unwrap_or_default());
                s.event("ca_invalid", Some(&d), m);
            }
            _ => {}
        }
    }
    if s.order.ca_state.as_ref() != Some(&st.order) {
        s.event(
            "ca_state",
            None,
            format!("CA reports the order as {:?}", st.order),
        );
    }
    match &st.order {
        CaOrderState::Failed(why) => {
            let reason = format!("the CA ended the order: {why}");
            s.order.ca_state = Some(st.order.clone());
            s.fail(reason);
            return;
        }
        CaOrderState::NeedsApproval => {
            s.note = Some(
                "the CA holds the order for approval by an administrator of the CA account; \
                 dcvd keeps polling and continues once it is approved"
                    .into(),
            );
        }
        CaOrderState::Issued | CaOrderState::InProgress => {}
    }
    s.order.ca_state = Some(st.order.clone());
    let all_valid = s.authz.iter().all(|a| a.state == AuthzState::Valid);
    if st.order == CaOrderState::Issued || all_valid {
        s.set_state(OrderState::AwaitingIssuance);
    }
}
