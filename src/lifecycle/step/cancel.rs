//! Cancel at the CA an order dcvd abandoned: it failed after the CA had it. `Change::fail`
//! set the durable "cancel wanted" marker in the failure's own commit, so this step runs
//! after a restart too. The call goes through the provider like every other CA call (rate
//! limited by its transport); a transient error or a rate limit is retried with the retry
//! policy (`retry::error_policy`), a refusal is recorded with the CA's words and not asked
//! again (`dcvd status` lists the order), and the order keeps its `failed` state.

use super::*;

impl Step<'_> {
    pub(super) async fn cancel_at_ca(&mut self) -> Result<(), StepError> {
        let ca_id = self.order.ca_order_id.clone().unwrap_or_default();
        let started = std::time::Instant::now();
        let r = self.provider.cancel(self.order_ref()).await;
        self.ca_call("cancel", started, &r);
        match r {
            Ok(()) => self.apply(|c| c.ca_canceled(format!("CA order {ca_id} canceled at the CA"))),
            Err(e) if e.kind == ErrorKind::Permanent => {
                // A cancel sent before a crash may have landed: then the CA refuses this
                // one because the order has already ended. Its status tells.
                let started = std::time::Instant::now();
                let st = self.provider.status(self.order_ref()).await;
                self.ca_call("status", started, &st);
                match st {
                    Ok(CaStatus {
                        order: crate::model::CaOrderState::Failed(words),
                        ..
                    }) => self.apply(|c| {
                        c.ca_canceled(format!(
                            "CA order {ca_id} has already ended at the CA ({words}); nothing left to cancel"
                        ))
                    }),
                    _ => {
                        warn!(
                            order_id = self.order.id,
                            certificate = %self.order.certificate,
                            "the CA refused to cancel CA order {ca_id}: {e}; `dcvd status` lists it \
                             until it is dealt with in the CA's portal"
                        );
                        // Logged once, above, as a warning: not again as an event.
                        self.quietly(|c| c.ca_cancel_refused(e.to_string()))
                    }
                }
            }
            Err(e) => {
                let attempts = self.order.ca_cancel_attempts.saturating_add(1);
                let delay = retry::error_policy(e.kind, attempts, e.retry_after)
                    .unwrap_or(retry::BACKOFF_CAP);
                let at = after(self.now, delay);
                warn!(
                    order_id = self.order.id,
                    certificate = %self.order.certificate,
                    attempt = attempts,
                    retry_in_s = delay.as_secs(),
                    "canceling CA order {ca_id} failed: {e}; retrying"
                );
                self.quietly(|c| c.ca_cancel_retry(e.to_string(), at));
            }
        }
        Ok(())
    }

    /// `apply` without logging the events (the caller logged the outcome itself).
    fn quietly(&mut self, f: impl FnOnce(&mut Change<'_>)) {
        f(&mut Change {
            order: &mut self.order,
            authz: &mut self.authz,
            events: &mut self.events,
            now: self.now,
        });
    }
}
