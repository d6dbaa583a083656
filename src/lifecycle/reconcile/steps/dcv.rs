//! Steps that put tokens in place and check them: publish (following a delegation CNAME), self-check.

use super::*;

impl Step<'_> {
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
                "delegated",
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
                let now = self.now;
                if let Some(b) = self.authz_mut(id) {
                    b.state = AuthzState::Propagating;
                    b.next_check_at = Some(now);
                    b.last_error = None;
                    // The method's first attempt: `method_timeout` counts from here.
                    b.method_tried_at.get_or_insert(now);
                }
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
                self.event("published", Some(&a.domain), msg);
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
        let domain = self
            .authz
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.domain.clone());
        if let Some(a) = self.authz_mut(id) {
            a.method_failed = true;
            a.last_error = Some(reason.clone());
        }
        self.event("method_failed", domain.as_ref(), reason);
        Ok(())
    }

    pub(super) async fn check(&mut self, id: i64) -> Result<(), StepError> {
        let Some(a) = self.authz.iter().find(|a| a.id == id).cloned() else {
            return Ok(());
        };
        let Some(challenge) = a.challenge.clone() else {
            return Ok(());
        };
        let dns_cfg = &self.rt.config.dns;
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
        let changed = a.check.as_ref().map(|c| c.summary()) != Some(report.summary());
        let elapsed = (self.now - a.method_tried_at.unwrap_or(self.now))
            .to_std()
            .unwrap_or_default();
        let present = report.present;
        let summary = report.summary();
        let poll = crate::lifecycle::retry::backoff_poll(dns_cfg.poll_interval, elapsed);
        let now = self.now;
        if let Some(b) = self.authz_mut(id) {
            b.check = Some(report);
            b.checked_at = Some(now);
            b.check_rounds += 1;
            if present {
                b.state = AuthzState::Ready;
                b.next_check_at = None;
                b.last_error = None;
            } else {
                b.next_check_at = Some(after(now, poll));
                b.last_error = Some(format!("not visible everywhere yet: {summary}"));
            }
        }
        if present {
            self.event(
                "check_passed",
                Some(&a.domain),
                format!(
                    "{} visible on every server: {summary}",
                    challenge.location()
                ),
            );
        } else if elapsed >= dns_cfg.timeout {
            return self.method_failed(
                id,
                format!(
                    "{} still not visible everywhere after dns.timeout ({}): {summary}",
                    challenge.location(),
                    humantime::format_duration(dns_cfg.timeout)
                ),
            );
        } else if changed {
            self.event(
                "check_pending",
                Some(&a.domain),
                format!(
                    "{} not visible everywhere yet: {summary}",
                    challenge.location()
                ),
            );
        }
        Ok(())
    }
}
