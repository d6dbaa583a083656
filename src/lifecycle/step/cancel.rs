//! Cancel at the CA an order dcvd abandoned: it failed after the CA had it. `Change::fail`
//! set the durable "cancel wanted" marker in the failure's own commit, so this step runs
//! after a restart too. The call goes through the provider like every other CA call (rate
//! limited by its transport); a transient error or a rate limit is retried with the retry
//! policy (`retry::error_policy`), a refusal is recorded with the CA's words and not asked
//! again (`dcvd status` lists the order), and the order keeps its `failed` state. It needs
//! nothing of the certificate's config: a certificate removed from the config still gets
//! its abandoned CA order canceled (`step::run`).

use super::*;

impl Step<'_> {
    pub(super) async fn cancel_at_ca(&mut self) -> Result<(), StepError> {
        cancel_at_ca(
            self.ctx,
            self.provider.as_ref(),
            &mut self.order,
            &mut self.authz,
            &mut self.events,
            self.now,
        )
        .await;
        Ok(())
    }
}

/// Ask `provider` to cancel `order`'s CA order and record the answer on `order` (through
/// `Change`) and in `events`; the caller saves. Each outcome is logged once.
pub(super) async fn cancel_at_ca(
    ctx: &Ctx,
    provider: &dyn Provider,
    order: &mut Order,
    authz: &mut [Authorization],
    events: &mut Vec<NewEvent>,
    now: DateTime<Utc>,
) {
    let ca_id = order.ca_order_id.clone().unwrap_or_default();
    // The order is changed below while the CA's answers are read: the call works on copies.
    let (reference, ca_data) = (order.reference.clone(), order.ca_data.clone());
    let (names, csr_der) = (order.names.clone(), order.csr_der.clone());
    let oref = OrderRef {
        reference: &reference,
        ca_order_id: &ca_id,
        ca_data: &ca_data,
        names: &names,
        csr_der: &csr_der,
    };
    let started = std::time::Instant::now();
    let r = provider.cancel(oref).await;
    events.push(ca_call_event(
        &ctx.metrics,
        &order.provider,
        "cancel",
        started,
        &r,
    ));
    let (id, certificate) = (order.id, order.certificate.clone());
    let mut change =
        |order: &mut Order, events: &mut Vec<NewEvent>, f: &dyn Fn(&mut Change<'_>)| {
            f(&mut Change {
                order,
                authz: &mut *authz,
                events,
                now,
            })
        };
    match r {
        Ok(()) => {
            let answer = format!("CA order {ca_id} canceled at the CA");
            info!(order_id = id, certificate = %certificate, "{answer}");
            change(order, events, &|c| c.ca_canceled(answer.clone()));
        }
        Err(e) if e.kind == ErrorKind::Permanent => {
            // A cancel sent before a crash may have landed: then the CA refuses this one
            // because the order has already ended. Its status tells.
            let started = std::time::Instant::now();
            let st = provider.status(oref).await;
            events.push(ca_call_event(
                &ctx.metrics,
                &order.provider,
                "status",
                started,
                &st,
            ));
            match st {
                Ok(CaStatus {
                    order: crate::model::CaOrderState::Failed(words),
                    ..
                }) => {
                    let answer = format!(
                        "CA order {ca_id} has already ended at the CA ({words}); nothing left to cancel"
                    );
                    info!(order_id = id, certificate = %certificate, "{answer}");
                    change(order, events, &|c| c.ca_canceled(answer.clone()));
                }
                _ => {
                    warn!(
                        order_id = id,
                        certificate = %certificate,
                        "the CA refused to cancel CA order {ca_id}: {e}; `dcvd status` lists it \
                         until it is dealt with in the CA's portal"
                    );
                    change(order, events, &|c| c.ca_cancel_refused(e.to_string()));
                }
            }
        }
        Err(e) => {
            let attempts = order.ca_cancel_attempts.saturating_add(1);
            let delay =
                retry::error_policy(e.kind, attempts, e.retry_after).unwrap_or(retry::BACKOFF_CAP);
            let at = after(now, delay);
            warn!(
                order_id = id,
                certificate = %certificate,
                attempt = attempts,
                retry_in_s = delay.as_secs(),
                "canceling CA order {ca_id} failed: {e}; retrying"
            );
            change(order, events, &|c| c.ca_cancel_retry(e.to_string(), at));
        }
    }
}
