//! Steps that put tokens in place and check them: publish (following a delegation CNAME), self-check.

use super::*;
use crate::model::EventKind;

impl Step<'_> {
    /// Put the token of authorization `id` in place (at the target of a delegation
    /// CNAME). Safe to run twice: the token is in the cleanup journal (committed) before it
    /// is published, so nothing is left behind that dcvd does not know of, and publishing
    /// the same token again is idempotent (an RFC 2136 add of an existing record, the same
    /// webroot file, the same hook call, the same note to the operator).
    pub(super) async fn publish(&mut self, id: i64) -> Result<(), StepError> {
        let Some(a) = self.authz.iter().find(|a| a.id == id).cloned() else {
            return Ok(());
        };
        let Some(challenge) = a.challenge.clone() else {
            return Ok(());
        };
        let Some(publisher) = self.rt.publisher_for(self.cert, a.method.is_http()) else {
            return self.method_failed(
                id,
                format!("no publisher configured for {} tokens", a.method),
            );
        };
        // A TXT token name that is a CNAME into another zone is published at the target
        // (the check and the CA follow the CNAME there). Not finding that out is a check
        // error: never terminal (`retry::after_step_error`).
        let mut target = challenge.clone();
        let delegated = match challenge.kind {
            crate::model::ChallengeKind::DnsTxt => self
                .rt
                .checker
                .delegated_to(&challenge.name)
                .await
                .map_err(|e| StepError {
                    failed: Failed::Check { authz: id },
                    ..StepError::from(e)
                })?,
            _ => None,
        };
        if let Some(to) = delegated {
            self.event(
                EventKind::Delegated,
                Some(&a.domain),
                format!(
                    "{} is a CNAME to {to}; publishing the token there",
                    challenge.name
                ),
            );
            target.name = to;
        }
        let challenge = target;
        let entry = self
            .ctx
            .store
            .journal_add(self.order.id, publisher.name(), &challenge, self.now)
            .await?;
        match publisher.present(&challenge).await {
            Ok(()) => {
                let msg = if publisher.is_manual() {
                    format!(
                        "waiting for the operator to publish {} {} = {}",
                        challenge.kind,
                        challenge.location(),
                        challenge.value
                    )
                } else {
                    format!(
                        "published {} {} via {}",
                        challenge.kind,
                        challenge.location(),
                        publisher.name()
                    )
                };
                self.apply(|c| c.published(id, msg));
                Ok(())
            }
            Err(e) if e.kind == crate::ca::ErrorKind::Permanent => {
                // Refused outright (REFUSED, NOTAUTH, bad TSIG, hook not startable):
                // nothing was published, so there is nothing to clean up either.
                self.ctx.store.journal_done(entry).await?;
                self.method_failed(id, e.to_string())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The current method cannot work for this authorization: fall back now.
    pub(super) fn method_failed(&mut self, id: i64, reason: String) -> Result<(), StepError> {
        self.apply(|c| c.method_failed(id, reason));
        Ok(())
    }

    /// One round of our propagation check of authorization `id` on every authoritative
    /// server (or the HTTP URL). Safe to run twice: only reads.
    pub(super) async fn check(&mut self, id: i64) -> Result<(), StepError> {
        let Some(challenge) = self
            .authz
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.challenge.clone())
        else {
            return Ok(());
        };
        let report = match self.rt.checker.check(&challenge).await {
            Ok(r) => r,
            // The check itself could not run: an error for the retry policy, which never
            // fails the order for it (`retry::after_step_error`); `finish` records it on
            // this authorization and sets its next check.
            Err(e) => {
                return Err(StepError {
                    failed: Failed::Check { authz: id },
                    ..StepError::from(e)
                });
            }
        };
        for s in &report.servers {
            self.ctx
                .metrics
                .dns_checks
                .get_or_create(&crate::metrics::DnsLabels {
                    result: s.outcome.metric_label().into(),
                    nameserver: s.server.clone(),
                })
                .inc();
        }
        let (poll, timeout) = (self.rt.config.dns.poll_interval, self.rt.config.dns.timeout);
        self.apply(|c| c.checked(id, report, poll, timeout));
        Ok(())
    }
}
