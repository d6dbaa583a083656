//! Placing the order, and recovering from a submit whose answer never came without ever
//! ordering twice: "no order at the CA" counts only once the first request can no longer
//! arrive, doubt waits for the operator, and duplicates found beside the adopted order
//! are canceled at the CA.

use super::*;
use crate::ca::{ErrorKind, Lookup, Submitted};
use crate::model::EventKind;

/// After a duplicate's cancellation failed during recovery: when to look again.
const DUPLICATE_RETRY: Duration = Duration::from_secs(10 * 60);

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl Step<'_> {
    /// Safe to run twice: the intent (`submitting`, maybe sent, the send time) is
    /// committed with a full sync before the request leaves, and a maybe-sent submit is
    /// always looked up (`recover`) before it is sent again.
    pub(super) async fn submit(&mut self) -> Result<(), StepError> {
        let req = self.submit_request(false).await?;
        self.apply(|c| c.submitting());
        let attempt_msg = format!("submitting order {} to the CA", self.order.reference);
        self.event(EventKind::Submitting, None, attempt_msg);
        let events = std::mem::take(&mut self.events);
        self.ctx
            .store
            .save(&self.order, &self.authz, &events, true, self.now)
            .await?;
        let started = std::time::Instant::now();
        let r = self.provider.submit(&req).await;
        self.ca_call("submit", started, &r);
        match r {
            Ok(sub) => {
                self.adopt(sub, "submitted");
                Ok(())
            }
            Err(e) if e.rejected => {
                // The CA refused: nothing was created, so the next try may submit again.
                self.apply(|c| c.not_sent());
                Err(e.into())
            }
            Err(e) => {
                // No definite refusal: the CA may have created the order. Never fail the
                // order here (a failed order is replaced by a new one later); the intent
                // stays "maybe sent", so the next try looks the order up first.
                let mut err = StepError::from(e);
                if err.kind == ErrorKind::Permanent {
                    err.kind = ErrorKind::Transient;
                }
                err.message = format!(
                    "{}; the CA may have received order {} anyway, so dcvd looks it up before any new submit",
                    err.message, self.order.reference
                );
                Err(err)
            }
        }
    }

    /// Look up a submit that may have reached the CA. A lookup, then cancellations of
    /// duplicates dcvd does not track yet (recorded as they happen); safe to repeat.
    pub(super) async fn recover(&mut self) -> Result<(), StepError> {
        let req = self.submit_request(true).await?;
        let bound = self.provider.in_flight_bound();
        // Unknown send time (a database from before it was kept): count from now.
        let sent_at = *self.order.submit_sent_at.get_or_insert(self.now);
        let settled_at = after(sent_at, bound);
        let started = std::time::Instant::now();
        let r = self.provider.find_order(&req).await;
        self.ca_call("find_order", started, &r);
        let reference = self.order.reference.clone();
        let lookup = match r {
            Ok(l) => l,
            Err(e) => {
                // Never a reason to submit, nor to fail the order: retry with backoff.
                let mut err = StepError::from(e);
                if err.kind == ErrorKind::Permanent {
                    err.kind = ErrorKind::Transient;
                }
                err.message = format!(
                    "looking up order {reference} at the CA after an unanswered submit: {}; \
                     dcvd looks again later and submits nothing until the CA answers",
                    err.message
                );
                return Err(err);
            }
        };
        // A provider that ignored `known_ca_orders` must still not get one adopted twice.
        let lookup = match lookup {
            Lookup::Found(subs) => {
                let (tracked, fresh): (Vec<Submitted>, Vec<Submitted>) = subs
                    .into_iter()
                    .partition(|s| req.known_ca_orders.contains(&s.ca_order_id));
                if fresh.is_empty() && !tracked.is_empty() {
                    let ids: Vec<String> = tracked.into_iter().map(|s| s.ca_order_id).collect();
                    Lookup::Unsure {
                        reason: format!(
                            "the only matching CA orders ({}) are already tracked by dcvd",
                            ids.join(", ")
                        ),
                        candidates: ids,
                    }
                } else {
                    Lookup::Found(fresh)
                }
            }
            other => other,
        };
        match lookup {
            Lookup::Found(subs) if !subs.is_empty() => {
                let mut subs = subs.into_iter();
                if let Some(first) = subs.next() {
                    self.adopt(first, "recovered after an unanswered submit");
                }
                let all_canceled = self.cancel_duplicates(subs.collect()).await?;
                if self.now < settled_at {
                    self.order.dup_check_at = Some(settled_at);
                    self.event(
                        EventKind::Recovery,
                        None,
                        format!(
                            "the request sent at {} may still arrive as a second order until {}; \
                             dcvd looks once more then and cancels any copy",
                            ts(sent_at),
                            ts(settled_at)
                        ),
                    );
                } else if !all_canceled {
                    self.order.dup_check_at = Some(after(self.now, DUPLICATE_RETRY));
                }
                Ok(())
            }
            Lookup::Found(_) => {
                self.submit_unknown(
                    "the provider reported a match but named no CA order".into(),
                    Vec::new(),
                );
                Ok(())
            }
            Lookup::Unsure { reason, candidates } => {
                self.submit_unknown(reason, candidates);
                Ok(())
            }
            Lookup::NotFound if self.now >= settled_at => {
                self.apply(|c| c.not_sent());
                self.event(
                    EventKind::Recovery,
                    None,
                    format!(
                        "the CA has no order with reference {reference}, and the request sent at {} can no \
                         longer arrive (in-flight bound {}); it will be submitted again",
                        ts(sent_at),
                        humantime::format_duration(bound)
                    ),
                );
                Ok(())
            }
            Lookup::NotFound => {
                self.wake = Some(settled_at);
                self.note = Some(format!(
                    "the CA shows no order yet; the unanswered submit may still arrive until {}, \
                     dcvd looks again then",
                    ts(settled_at)
                ));
                self.event(
                    EventKind::RecoveryWait,
                    None,
                    format!(
                        "the CA shows no order with reference {reference} yet, but the request sent at {} \
                         may still arrive until {} (in-flight bound {}); dcvd looks again then and does \
                         not submit before",
                        ts(sent_at),
                        ts(settled_at),
                        humantime::format_duration(bound)
                    ),
                );
                Ok(())
            }
        }
    }

    /// The lookup did not settle it: wait for the operator, never submit on our own.
    fn submit_unknown(&mut self, reason: String, candidates: Vec<String>) {
        let id = self.order.id;
        let msg = format!(
            "cannot tell whether the CA has order {}: {reason}; candidates: {}. dcvd will not submit \
             again on its own: `dcvd orders adopt {id} CA_ORDER_ID` adopts a CA order, \
             `dcvd orders resubmit {id} --yes` allows a new one (which may buy a second certificate)",
            self.order.reference,
            if candidates.is_empty() {
                "none named".to_string()
            } else {
                candidates.join(", ")
            }
        );
        warn!(order_id = id, certificate = %self.order.certificate, provider = %self.order.provider, "{msg}");
        self.apply(|c| c.submit_unknown(reason, candidates));
        self.event(EventKind::SubmitUnknown, None, msg.clone());
        self.note = Some(msg);
    }

    /// After the in-flight bound of an adopted order's unanswered submit: look once more
    /// for further orders from the same request and cancel them. Only a lookup and
    /// cancellations of orders dcvd does not track; safe to repeat.
    pub(super) async fn sweep_duplicates(&mut self) -> Result<(), StepError> {
        let req = self.submit_request(true).await?;
        let started = std::time::Instant::now();
        let r = self.provider.find_order(&req).await;
        self.ca_call("find_order", started, &r);
        self.order.dup_check_at = None;
        let adopted = self.order.ca_order_id.clone().unwrap_or_default();
        match r {
            Ok(Lookup::Found(subs)) => {
                let dups: Vec<Submitted> = subs
                    .into_iter()
                    .filter(|s| {
                        s.ca_order_id != adopted && !req.known_ca_orders.contains(&s.ca_order_id)
                    })
                    .collect();
                if dups.is_empty() {
                    self.no_late_copy(&adopted);
                } else {
                    self.cancel_duplicates(dups).await?;
                }
            }
            Ok(Lookup::NotFound) => self.no_late_copy(&adopted),
            Ok(Lookup::Unsure { reason, candidates }) => self.event(
                EventKind::DuplicateUnsure,
                None,
                format!(
                    "could not tell whether the CA holds a second order from this request: {reason}; \
                     candidates: {}. Check them at the CA and cancel any copy of CA order {adopted}",
                    candidates.join(", ")
                ),
            ),
            Err(e) if e.kind != ErrorKind::Permanent => {
                let at = after(self.now, DUPLICATE_RETRY);
                self.order.dup_check_at = Some(at);
                self.event(
                    EventKind::Recovery,
                    None,
                    format!("looking for a late copy of the request failed: {e}; trying again at {}", ts(at)),
                );
            }
            Err(e) => self.event(
                EventKind::DuplicateUnsure,
                None,
                format!(
                    "looking for a late copy of the request failed: {e}; check at the CA for a second \
                     order with reference {} and cancel it",
                    self.order.reference
                ),
            ),
        }
        Ok(())
    }

    fn no_late_copy(&mut self, adopted: &str) {
        let msg = format!(
            "no further CA order from this request after the in-flight bound: CA order {adopted} is the only one"
        );
        self.event(EventKind::Recovery, None, msg);
    }

    /// Cancel CA orders that duplicate the adopted one; each gets an event and a row with
    /// the CA's answer. True when every cancellation was accepted.
    async fn cancel_duplicates(&mut self, dups: Vec<Submitted>) -> Result<bool, StepError> {
        let adopted = self.order.ca_order_id.clone().unwrap_or_default();
        let mut all = true;
        for d in dups.into_iter().filter(|d| d.ca_order_id != adopted) {
            let started = std::time::Instant::now();
            let r = self
                .provider
                .cancel(OrderRef {
                    reference: &self.order.reference,
                    ca_order_id: &d.ca_order_id,
                    ca_data: &d.ca_data,
                    names: &self.order.names,
                    csr_der: &self.order.csr_der,
                })
                .await;
            self.ca_call("cancel", started, &r);
            let (canceled, outcome) = match &r {
                Ok(()) => (true, "the CA accepted its cancellation".to_string()),
                Err(e) => (
                    false,
                    format!(
                        "canceling it failed: {e}; cancel CA order {} by hand",
                        d.ca_order_id
                    ),
                ),
            };
            all &= canceled;
            self.ctx
                .store
                .record_duplicate(
                    self.order.id,
                    &self.order.provider,
                    &d.ca_order_id,
                    canceled,
                    &outcome,
                    self.now,
                )
                .await?;
            self.ctx
                .metrics
                .duplicate_orders
                .get_or_create(&crate::metrics::ProviderLabels {
                    provider: self.order.provider.clone(),
                })
                .inc();
            self.event(
                EventKind::Duplicate,
                None,
                format!(
                    "CA order {} is a second order from the same request as CA order {adopted}: {outcome}",
                    d.ca_order_id
                ),
            );
        }
        Ok(all)
    }
}
