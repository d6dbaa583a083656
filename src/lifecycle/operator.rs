//! Operator decisions on an order whose submit is in doubt (`submit_unknown`, or
//! `submitting` with an unanswered submit): adopt a CA order the operator names, or allow
//! a new submit. Run by the CLI (`dcvd orders adopt` / `dcvd orders resubmit`); the
//! daemon picks the result up from the database.

use crate::lifecycle::decide::Change;
use crate::lifecycle::services::Services;
use crate::lifecycle::step::{Ctx, Step};
use crate::model::EventKind;
use crate::model::OrderState;
use crate::store::{NewEvent, Order, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The command does not apply (unknown order, wrong state, the CA refused); nothing changed.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(msg: impl Into<String>) -> OperatorError {
    OperatorError::Refused(msg.into())
}

/// Ok when `o` waits for an operator's decision on its submit; else why not.
pub fn check_in_doubt(o: &Order) -> Result<(), String> {
    let in_doubt = o.ca_order_id.is_none()
        && (o.state == OrderState::SubmitUnknown
            || (o.state == OrderState::Submitting && o.submit_maybe_sent));
    if in_doubt {
        return Ok(());
    }
    let detail = match (&o.ca_order_id, o.state) {
        (Some(ca), _) => format!("it already has CA order {ca}"),
        (None, OrderState::Submitting) | (None, OrderState::Pending) => {
            "no submit of it is in doubt".to_string()
        }
        _ => "only an order whose submit is in doubt can be adopted or resubmitted".to_string(),
    };
    Err(format!(
        "order {} is {}: {detail} (this applies to orders in submit_unknown, or in submitting after an unanswered submit)",
        o.id, o.state
    ))
}

async fn load(
    ctx: &Ctx,
    order_id: i64,
) -> Result<(Order, Vec<crate::store::Authorization>), OperatorError> {
    match ctx.store.load_order(order_id).await {
        Ok(v) => Ok(v),
        Err(StoreError::NotFound(_)) => Err(refused(format!("no order {order_id}"))),
        Err(e) => Err(e.into()),
    }
}

/// Adopt CA order `ca_order_id` as the answer to order `order_id`'s submit, after the
/// provider confirmed it (`Provider::order_by_id`: refused when its names differ).
/// Returns what happened, for the operator.
pub async fn adopt(
    ctx: &Ctx,
    rt: &Services,
    order_id: i64,
    ca_order_id: &str,
) -> Result<String, OperatorError> {
    let now = ctx.clock.now();
    let (order, authz) = load(ctx, order_id).await?;
    check_in_doubt(&order).map_err(refused)?;
    let ca_order_id = ca_order_id.trim();
    if ca_order_id.is_empty() {
        return Err(refused("the CA order id is empty"));
    }
    if let Some(other) = ctx
        .store
        .order_with_ca_order(&order.provider, ca_order_id)
        .await?
    {
        return Err(refused(format!(
            "CA order {ca_order_id} at provider `{}` is already order {other}'s; nothing changed",
            order.provider
        )));
    }
    let (Some(cert), Some(provider)) = (
        rt.certificate(&order.certificate),
        rt.providers.get(&order.provider).cloned(),
    ) else {
        return Err(refused(format!(
            "certificate `{}` or provider `{}` is not in the configuration; nothing changed",
            order.certificate, order.provider
        )));
    };
    let mut s = Step::new(ctx, rt, cert, provider, order, authz, now);
    let req = s.submit_request(true).await?;
    let started = std::time::Instant::now();
    let r = s.provider.order_by_id(&req, ca_order_id).await;
    s.ca_call("order_by_id", started, &r);
    let sub = match r {
        Ok(sub) => sub,
        Err(e) => {
            let msg = format!(
                "`dcvd orders adopt {order_id} {ca_order_id}` refused: {e}; the order is left as it was"
            );
            ctx.store
                .add_event(
                    order_id,
                    &NewEvent {
                        kind: EventKind::Operator,
                        domain: None,
                        message: msg.clone(),
                    },
                    now,
                )
                .await?;
            return Err(refused(msg));
        }
    };
    let sent_at = s.order.submit_sent_at;
    let bound = s.provider.in_flight_bound();
    s.adopt(sub, "adopted by an operator (dcvd orders adopt)");
    if let Some(settled) = sent_at.map(|t| crate::lifecycle::decide::after(t, bound))
        && settled > now
    {
        // The unanswered request may still land as a second order: look once more then.
        s.order.dup_check_at = Some(settled);
    }
    s.order.attempts = 0;
    s.order.last_error = None;
    s.order.next_attempt_at = now;
    if !ctx
        .store
        .save_operator_decision(&s.order, &s.authz, &s.events, now)
        .await?
    {
        return Err(refused(format!(
            "order {order_id} changed meanwhile (the daemon settled its submit); nothing adopted, see `dcvd orders show {order_id}`"
        )));
    }
    Ok(format!(
        "order {order_id} ({}) adopted CA order {ca_order_id}; the daemon continues with DCV",
        s.order.certificate
    ))
}

/// Allow order `order_id` to be submitted again although the CA may already have it
/// (the operator checked and found none, or accepts a second purchase).
pub async fn resubmit(ctx: &Ctx, order_id: i64) -> Result<String, OperatorError> {
    let now = ctx.clock.now();
    let (mut order, authz) = load(ctx, order_id).await?;
    check_in_doubt(&order).map_err(refused)?;
    let candidates = if order.unsure_candidates.is_empty() {
        String::new()
    } else {
        format!(
            "; candidates not adopted: {} (if one of them is this order, the CA now holds two)",
            order.unsure_candidates.join(", ")
        )
    };
    let (mut authz, mut events) = (
        authz,
        vec![NewEvent {
            kind: EventKind::Operator,
            domain: None,
            message: format!(
                "an operator allowed a new submit (dcvd orders resubmit --yes){candidates}"
            ),
        }],
    );
    Change {
        order: &mut order,
        authz: &mut authz,
        events: &mut events,
        now,
    }
    .resubmit_allowed();
    if !ctx
        .store
        .save_operator_decision(&order, &authz, &events, now)
        .await?
    {
        return Err(refused(format!(
            "order {order_id} changed meanwhile (the daemon settled its submit); nothing changed, see `dcvd orders show {order_id}`"
        )));
    }
    Ok(format!(
        "order {order_id} ({}) will be submitted again: this may buy a second certificate if the CA already has it",
        order.certificate
    ))
}
