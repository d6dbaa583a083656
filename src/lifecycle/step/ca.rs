//! Steps that talk to the CA about a placed order: switch method, tokens, check, resend,
//! status. (Submitting and recovery are in `submit.rs`.)

use super::*;
use crate::model::EventKind;

impl Step<'_> {
    /// Move authorizations `ids` to method `to` at the CA (an email method first finds
    /// each name's approver). Safe to run twice: the request names the target method, so
    /// a repeat after a crash asks for the same end state (for email, the approval emails
    /// go out once more); the method is recorded only in the step's commit, and replaced
    /// tokens are handed to the cleanup journal, never removed here.
    pub(super) async fn switch_method(
        &mut self,
        ids: &[i64],
        to: usize,
        reason: String,
    ) -> Result<(), StepError> {
        let method = self.policy.dcv[to];
        let names: Vec<DomainName> = self
            .authz
            .iter()
            .filter(|a| ids.contains(&a.id))
            .map(|a| a.domain.clone())
            .collect();
        let mut emails = Vec::new();
        if method == DcvMethod::Email {
            for n in &names {
                emails.push((n.clone(), self.approver_for(n).await?));
            }
        }
        let started = std::time::Instant::now();
        let r = self
            .provider
            .change_method(self.order_ref(), &names, method, &emails)
            .await;
        self.ca_call("change_method", started, &r);
        let tokens = match r {
            Ok(t) => t,
            Err(e) if e.kind == crate::ca::ErrorKind::Permanent => {
                // The CA refuses this method: skip it, the next step moves on to the one after.
                let msg = format!("the CA refused {method}: {e}");
                self.apply(|c| c.method_refused(ids, to, method, msg));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let resend_at = self.next_resend();
        for id in ids {
            let Some(a) = self.authz.iter().find(|a| a.id == *id).cloned() else {
                continue;
            };
            if let Some(old) = &a.challenge {
                self.ctx
                    .store
                    .journal_release(self.order.id, old, self.now)
                    .await?;
            }
            self.ctx
                .metrics
                .method_switches
                .get_or_create(&crate::metrics::SwitchLabels {
                    provider: self.order.provider.clone(),
                    from: a.method.to_string(),
                    to: method.to_string(),
                })
                .inc();
            let email = emails
                .iter()
                .find(|(n, _)| *n == a.domain)
                .map(|(_, e)| e.clone());
            self.apply(|c| c.method_switched(*id, to, method, email, resend_at, &reason));
        }
        for old in self.apply(|c| c.tokens(tokens)) {
            self.ctx
                .store
                .journal_release(self.order.id, &old, self.now)
                .await?;
        }
        Ok(())
    }

    /// The approver for `name`: from config (the name or a parent), else the first
    /// address the CA offers.
    pub(super) async fn approver_for(&mut self, name: &DomainName) -> Result<String, StepError> {
        if let Some(e) = self.cert.approver_for(name) {
            return Ok(e.to_string());
        }
        let started = std::time::Instant::now();
        let r = self.provider.approver_emails(name).await;
        self.ca_call("approver_emails", started, &r);
        r?.into_iter().next().ok_or_else(|| {
            StepError::permanent(format!(
                "no approver email for {name}: none in approver_emails and the CA offered none"
            ))
        })
    }

    /// Ask the CA for the tokens of `ids`. Safe to run twice: a read (a repeat gets the
    /// same or fresher tokens); a replaced token goes to the cleanup journal.
    pub(super) async fn fetch_tokens(&mut self, ids: &[i64]) -> Result<(), StepError> {
        let names: Vec<(DomainName, DcvMethod)> = self
            .authz
            .iter()
            .filter(|a| ids.contains(&a.id))
            .map(|a| (a.domain.clone(), a.method))
            .collect();
        let started = std::time::Instant::now();
        let r = self.provider.challenges(self.order_ref(), &names).await;
        self.ca_call("challenges", started, &r);
        let tokens = r?;
        let got = tokens.challenges.len();
        for old in self.apply(|c| c.tokens(tokens)) {
            self.ctx
                .store
                .journal_release(self.order.id, &old, self.now)
                .await?;
        }
        if self.policy.refresh_tokens && self.provider.tokens_need_refresh(&self.order.ca_data) {
            // Never loop on a provider that keeps asking for a refresh.
            return Err(StepError {
                kind: crate::ca::ErrorKind::Transient,
                message: format!(
                    "provider `{}` still reports its DCV tokens as expiring after renewing them",
                    self.order.provider
                ),
                retry_after: None,
                failed: crate::lifecycle::retry::Failed::Step,
            });
        }
        if got == 0 {
            return Err(StepError {
                kind: crate::ca::ErrorKind::Transient,
                message: format!(
                    "provider `{}` returned no DCV tokens for {} name(s)",
                    self.order.provider,
                    names.len()
                ),
                retry_after: None,
                failed: crate::lifecycle::retry::Failed::Step,
            });
        }
        Ok(())
    }

    /// Our check saw every token: ask the CA to validate `ids` now. Safe to run twice:
    /// asking again for names the CA is validating changes nothing there, and its answer
    /// is folded like any status.
    pub(super) async fn trigger_check(&mut self, ids: &[i64]) -> Result<(), StepError> {
        let names: Vec<DomainName> = self
            .authz
            .iter()
            .filter(|a| ids.contains(&a.id))
            .map(|a| a.domain.clone())
            .collect();
        let started = std::time::Instant::now();
        let r = self.provider.trigger_check(self.order_ref(), &names).await;
        self.ca_call("trigger_check", started, &r);
        let status = r?;
        self.apply(|c| c.triggered(ids));
        self.fold_status(status);
        Ok(())
    }

    /// Resend the approval emails of `ids`. Safe to run twice: a repeat after a crash
    /// sends one more email per name (the count is saved with the step, so `max_resends`
    /// still bounds them).
    pub(super) async fn resend(&mut self, ids: &[i64]) -> Result<(), StepError> {
        let pairs: Vec<(DomainName, String)> = self
            .authz
            .iter()
            .filter(|a| ids.contains(&a.id))
            .filter_map(|a| Some((a.domain.clone(), a.approver_email.clone()?)))
            .collect();
        let started = std::time::Instant::now();
        let r = self
            .provider
            .resend_emails(self.order_ref(), &pairs, &self.cert.locale)
            .await;
        self.ca_call("resend_emails", started, &r);
        r?;
        let next = self.next_resend();
        self.apply(|c| c.resent(ids, next));
        self.ctx
            .metrics
            .emails_resent
            .get_or_create(&crate::metrics::ProviderLabels {
                provider: self.order.provider.clone(),
            })
            .inc_by(pairs.len() as u64);
        for (d, e) in &pairs {
            self.event(
                EventKind::EmailResent,
                Some(d),
                format!("approval email resent to {e}"),
            );
        }
        Ok(())
    }

    /// Ask the CA for the order's status. Safe to run twice: a read, and folding the same
    /// answer twice gives the same rows.
    pub(super) async fn poll_status(&mut self) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let r = self.provider.status(self.order_ref()).await;
        self.ca_call("status", started, &r);
        self.fold_status(r?);
        Ok(())
    }
}
