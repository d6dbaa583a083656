//! Carrying out one `state::Next` for one order.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{Instrument, info, warn};

use super::{Action, Ctx, StepError, apply, error_policy};
use crate::config::CertificateConfig;
use crate::model::{AuthzState, DcvMethod, DomainName, OrderState};
use crate::provider::{OrderRef, Provider, SubmitRequest};
use crate::runtime::Runtime;
use crate::state::{Next, Policy, decide};
use crate::store::{Authorization, NewEvent, Order, StoreError};

pub(super) struct Step<'a> {
    pub ctx: &'a Ctx,
    pub rt: &'a Runtime,
    pub cert: &'a CertificateConfig,
    pub provider: Arc<dyn Provider>,
    pub policy: Policy,
    pub order: Order,
    pub authz: Vec<Authorization>,
    pub events: Vec<NewEvent>,
    pub now: DateTime<Utc>,
    /// Order-level note kept in `last_error` after a successful step (e.g. "needs approval").
    pub note: Option<String>,
}

pub(super) fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}

pub(super) async fn run(order_id: i64, ctx: &Ctx, rt: &Runtime) -> Result<Action, StoreError> {
    let now = ctx.clock.now();
    let (mut order, authz) = ctx.store.load_order(order_id).await?;
    if order.state.is_terminal() {
        return Ok(Action::Done);
    }
    let (cert, provider) = match (
        rt.certificate(&order.certificate),
        rt.providers.get(&order.provider),
    ) {
        (Some(c), Some(p)) => (c, p.clone()),
        (c, _) => {
            let what = if c.is_none() {
                format!("certificate `{}`", order.certificate)
            } else {
                format!("provider `{}`", order.provider)
            };
            let msg = format!(
                "{what} is no longer in the configuration; order {} is left as it is and checked again in an hour \
                 (restore the config, or end it with `dcvd orders cancel {}`)",
                order.id, order.id
            );
            warn!(order_id, certificate = %order.certificate, "{msg}");
            order.last_error = Some(msg);
            order.next_attempt_at = after(now, Duration::from_secs(3600));
            ctx.store.save(&order, &authz, &[], false, now).await?;
            return Ok(Action::Requeue(order.next_attempt_at));
        }
    };
    let policy = rt.policy(cert, provider.as_ref(), &order.ca_data);
    let next = decide(&order, &authz, &policy, now);
    let span = tracing::info_span!(
        "step",
        order_id,
        certificate = %order.certificate,
        provider = %order.provider,
    );
    let mut s = Step {
        ctx,
        rt,
        cert,
        provider,
        policy,
        order,
        authz,
        events: Vec::new(),
        now,
        note: None,
    };
    let outcome = match next {
        Next::Done => return Ok(Action::Done),
        Next::Wait(t) => {
            // Nothing to do yet (e.g. woken early): just record when.
            s.order.next_attempt_at = t;
            s.ctx
                .store
                .save(&s.order, &s.authz, &[], false, now)
                .await?;
            return Ok(Action::Requeue(t));
        }
        next => s.execute(next).instrument(span).await,
    };
    s.finish(outcome).await
}

impl Step<'_> {
    pub fn order_ref(&self) -> OrderRef<'_> {
        OrderRef {
            reference: &self.order.reference,
            ca_order_id: self.order.ca_order_id.as_deref().unwrap_or(""),
            ca_data: &self.order.ca_data,
            names: &self.order.names,
            csr_der: &self.order.csr_der,
        }
    }

    pub fn event(&mut self, kind: &'static str, domain: Option<&DomainName>, message: String) {
        info!(
            order_id = self.order.id,
            certificate = %self.order.certificate,
            provider = %self.order.provider,
            domain = domain.map(|d| d.as_str()).unwrap_or(""),
            kind,
            "{message}"
        );
        self.events.push(NewEvent {
            kind,
            domain: domain.map(|d| d.to_string()),
            message,
        });
    }

    /// Record a CA call's outcome as an event and a metric.
    pub fn ca_call<T>(
        &mut self,
        op: &'static str,
        started: std::time::Instant,
        r: &Result<T, crate::provider::ProviderError>,
    ) {
        let secs = started.elapsed().as_secs_f64();
        let status = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.kind.metric_label().to_string()),
        };
        self.ctx
            .metrics
            .provider_call(&self.order.provider, op, &status, secs);
        let msg = match r {
            Ok(_) => format!("{op}: ok ({:.0} ms)", secs * 1000.0),
            Err(e) => format!("{op}: {e}"),
        };
        self.events.push(NewEvent {
            kind: "ca_call",
            domain: None,
            message: msg,
        });
    }

    pub fn authz_mut(&mut self, id: i64) -> Option<&mut Authorization> {
        self.authz.iter_mut().find(|a| a.id == id)
    }

    pub fn set_state(&mut self, to: OrderState) {
        if self.order.state != to {
            let from = self.order.state;
            self.order.state = to;
            self.event("state", None, format!("order {from} → {to}"));
        }
    }

    pub fn submit_request(&self) -> SubmitRequest {
        SubmitRequest {
            reference: self.order.reference.clone(),
            certificate: self.order.certificate.clone(),
            product: self.cert.product.clone(),
            names: self.order.names.clone(),
            csr_pem: self.order.csr_pem.clone(),
            csr_der: self.order.csr_der.clone(),
            key_type: self.order.key_type,
            methods: self.authz.iter().map(|a| a.method).collect(),
            approver_emails: self
                .authz
                .iter()
                .filter_map(|a| Some((a.domain.clone(), a.approver_email.clone()?)))
                .collect(),
            locale: self.cert.locale.clone(),
            validity_days: self.cert.validity_days,
            renewal_of: self.order.renewal_of.clone(),
            created_at: self.order.created_at,
        }
    }

    /// Next time approval emails should be resent, per the certificate's cron schedule.
    pub fn next_resend(&self) -> DateTime<Utc> {
        cron::Schedule::from_str(&self.cert.resend_schedule)
            .ok()
            .and_then(|s| s.after(&self.now).next())
            .unwrap_or_else(|| after(self.now, Duration::from_secs(86400)))
    }

    async fn execute(&mut self, next: Next) -> Result<(), StepError> {
        match next {
            Next::Submit => self.submit().await,
            Next::Recover => self.recover().await,
            Next::SwitchMethod { authz, to, reason } => {
                self.switch_method(&authz, to, reason).await
            }
            Next::Exhausted { authz, reason } => {
                if let Some(a) = self.authz_mut(authz) {
                    a.state = AuthzState::Failed;
                    a.last_error = Some(reason.clone());
                }
                self.fail(reason);
                Ok(())
            }
            Next::FetchTokens { authz } => self.fetch_tokens(&authz).await,
            Next::Publish { authz } => self.publish(authz).await,
            Next::Check { authz } => self.check(authz).await,
            Next::TriggerCheck { authz } => self.trigger_check(&authz).await,
            Next::Resend { authz } => self.resend(&authz).await,
            Next::PollStatus => self.poll_status().await,
            Next::Download => self.download().await,
            Next::Wait(_) | Next::Done => Ok(()),
        }
    }

    pub fn fail(&mut self, reason: String) {
        warn!(order_id = self.order.id, certificate = %self.order.certificate, reason = %reason, "order failed");
        self.order.failure_reason = Some(reason.clone());
        self.set_state(OrderState::Failed);
        self.event("failed", None, reason);
    }

    /// Apply the outcome (error policy on failure), compute the next run, save.
    async fn finish(mut self, outcome: Result<(), StepError>) -> Result<Action, StoreError> {
        let mut retry_at = None;
        match outcome {
            Ok(()) => {
                self.order.attempts = 0;
                self.order.last_error = self.note.take();
            }
            Err(e) => {
                self.order.attempts = self.order.attempts.saturating_add(1);
                self.ctx
                    .metrics
                    .reconcile_errors
                    .get_or_create(&crate::metrics::KindLabels {
                        kind: e.kind.metric_label().into(),
                    })
                    .inc();
                match error_policy(e.kind, self.order.attempts, e.retry_after) {
                    None => self.fail(e.message),
                    Some(delay) => {
                        let at = after(self.now, delay);
                        warn!(
                            order_id = self.order.id,
                            certificate = %self.order.certificate,
                            kind = e.kind.metric_label(),
                            attempt = self.order.attempts,
                            retry_in_s = delay.as_secs(),
                            "{}; retrying",
                            e.message
                        );
                        self.events.push(NewEvent {
                            kind: "error",
                            domain: None,
                            message: format!(
                                "{} (attempt {}, {}; retry at {})",
                                e.message,
                                self.order.attempts,
                                e.kind.metric_label(),
                                at.format("%Y-%m-%d %H:%M:%S UTC")
                            ),
                        });
                        self.order.last_error = Some(e.message);
                        retry_at = Some(at);
                    }
                }
            }
        }
        let action = if self.order.state.is_terminal() {
            self.order.next_attempt_at = self.now;
            Action::Done
        } else {
            let at = retry_at.unwrap_or_else(|| {
                match decide(&self.order, &self.authz, &self.policy, self.now) {
                    Next::Wait(t) => t,
                    _ => self.now,
                }
            });
            self.order.next_attempt_at = at;
            Action::Requeue(at)
        };
        self.ctx
            .store
            .save(&self.order, &self.authz, &self.events, false, self.now)
            .await?;
        Ok(action)
    }

    // ---- the steps ------------------------------------------------------------------

    async fn submit(&mut self) -> Result<(), StepError> {
        // The intent goes to disk (fsynced) before the request leaves.
        self.set_state(OrderState::Submitting);
        self.order.submit_maybe_sent = true;
        let attempt_msg = format!("submitting order {} to the CA", self.order.reference);
        self.event("submitting", None, attempt_msg);
        let events = std::mem::take(&mut self.events);
        self.ctx
            .store
            .save(&self.order, &self.authz, &events, true, self.now)
            .await?;
        let req = self.submit_request();
        let started = std::time::Instant::now();
        let r = self.provider.submit(&req).await;
        self.ca_call("submit", started, &r);
        match r {
            Ok(sub) => {
                apply::adopt(self, sub, "submitted");
                Ok(())
            }
            Err(e) => {
                if e.rejected {
                    // The CA refused: nothing was created, so the next try may submit again.
                    self.order.submit_maybe_sent = false;
                }
                Err(e.into())
            }
        }
    }

    async fn recover(&mut self) -> Result<(), StepError> {
        let req = self.submit_request();
        let started = std::time::Instant::now();
        let r = self.provider.find_order(&req).await;
        self.ca_call("find_order", started, &r);
        match r? {
            Some(sub) => {
                apply::adopt(self, sub, "recovered after an unanswered submit");
                Ok(())
            }
            None => {
                self.order.submit_maybe_sent = false;
                self.event(
                    "recovery",
                    None,
                    format!(
                        "the CA has no order with reference {}; it will be submitted again",
                        self.order.reference
                    ),
                );
                Ok(())
            }
        }
    }

    async fn switch_method(
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
            Err(e) if e.kind == crate::provider::ErrorKind::Permanent => {
                // The CA refuses this method: skip it, the next step moves on to the one after.
                let msg = format!("the CA refused {method}: {e}");
                for id in ids {
                    if let Some(a) = self.authz_mut(*id) {
                        a.method_index = to as u32;
                        a.method = method;
                        a.method_started_at = DateTime::<Utc>::UNIX_EPOCH;
                        a.last_error = Some(msg.clone());
                    }
                }
                self.event("method_refused", None, msg);
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
            let now = self.now;
            let email = emails
                .iter()
                .find(|(n, _)| *n == a.domain)
                .map(|(_, e)| e.clone());
            if let Some(b) = self.authz_mut(*id) {
                b.method = method;
                b.method_index = to as u32;
                b.method_started_at = now;
                b.challenge = None;
                b.check = None;
                b.check_rounds = 0;
                b.next_check_at = None;
                b.last_error = None;
                b.resends = 0;
                if method == DcvMethod::Email {
                    b.state = AuthzState::EmailSent;
                    b.approver_email = email;
                    b.next_resend_at = Some(resend_at);
                } else {
                    b.state = AuthzState::Publishing;
                }
            }
            self.event(
                "method_switch",
                Some(&a.domain),
                format!("DCV method {} → {method}: {reason}", a.method),
            );
        }
        for old in apply::tokens(self, tokens) {
            self.ctx
                .store
                .journal_release(self.order.id, &old, self.now)
                .await?;
        }
        Ok(())
    }

    /// The approver for `name`: from config (the name or a parent), else the first
    /// address the CA offers.
    async fn approver_for(&mut self, name: &DomainName) -> Result<String, StepError> {
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

    async fn fetch_tokens(&mut self, ids: &[i64]) -> Result<(), StepError> {
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
        for old in apply::tokens(self, tokens) {
            self.ctx
                .store
                .journal_release(self.order.id, &old, self.now)
                .await?;
        }
        if self.policy.refresh_tokens && self.provider.tokens_need_refresh(&self.order.ca_data) {
            // Never loop on a provider that keeps asking for a refresh.
            return Err(StepError {
                kind: crate::provider::ErrorKind::Transient,
                message: format!(
                    "provider `{}` still reports its DCV tokens as expiring after renewing them",
                    self.order.provider
                ),
                retry_after: None,
            });
        }
        if got == 0 {
            return Err(StepError {
                kind: crate::provider::ErrorKind::Transient,
                message: format!(
                    "provider `{}` returned no DCV tokens for {} name(s)",
                    self.order.provider,
                    names.len()
                ),
                retry_after: None,
            });
        }
        Ok(())
    }

    async fn publish(&mut self, id: i64) -> Result<(), StepError> {
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
        // (the check and the CA follow the CNAME there).
        let mut target = challenge.clone();
        if challenge.kind == crate::model::ChallengeKind::DnsTxt
            && let Some(to) = self.rt.checker.delegated_to(&challenge.name).await?
        {
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
            Err(e) if e.kind == crate::provider::ErrorKind::Permanent => {
                // Refused outright (REFUSED, NOTAUTH, bad TSIG, hook not startable):
                // nothing was published, so there is nothing to clean up either.
                self.ctx.store.journal_done(entry).await?;
                self.method_failed(id, e.to_string())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The current method cannot work for this authorization: fall back now.
    fn method_failed(&mut self, id: i64, reason: String) -> Result<(), StepError> {
        let domain = self
            .authz
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.domain.clone());
        if let Some(a) = self.authz_mut(id) {
            a.method_started_at = DateTime::<Utc>::UNIX_EPOCH;
            a.last_error = Some(reason.clone());
        }
        self.event("method_failed", domain.as_ref(), reason);
        Ok(())
    }

    async fn check(&mut self, id: i64) -> Result<(), StepError> {
        let Some(a) = self.authz.iter().find(|a| a.id == id).cloned() else {
            return Ok(());
        };
        let Some(challenge) = a.challenge.clone() else {
            return Ok(());
        };
        let dns_cfg = &self.rt.config.dns;
        let report = match self.rt.checker.check(&challenge).await {
            Ok(r) => r,
            Err(e) => {
                let now = self.now;
                let poll = dns_cfg.poll_interval;
                if let Some(b) = self.authz_mut(id) {
                    b.last_error = Some(e.to_string());
                    b.next_check_at = Some(after(now, poll.max(Duration::from_secs(1))));
                }
                self.event("check_error", Some(&a.domain), e.to_string());
                return Ok(());
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
        let elapsed = (self.now - a.method_started_at)
            .to_std()
            .unwrap_or_default();
        let present = report.present;
        let summary = report.summary();
        let poll = backoff_poll(dns_cfg.poll_interval, elapsed);
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

    async fn trigger_check(&mut self, ids: &[i64]) -> Result<(), StepError> {
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
        for id in ids {
            if let Some(a) = self.authz_mut(*id) {
                a.state = AuthzState::Submitted;
            }
        }
        apply::status(self, status);
        Ok(())
    }

    async fn resend(&mut self, ids: &[i64]) -> Result<(), StepError> {
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
        for id in ids {
            if let Some(a) = self.authz_mut(*id) {
                a.resends += 1;
                a.next_resend_at = Some(next);
            }
        }
        self.ctx
            .metrics
            .emails_resent
            .get_or_create(&crate::metrics::ProviderLabels {
                provider: self.order.provider.clone(),
            })
            .inc_by(pairs.len() as u64);
        for (d, e) in &pairs {
            self.event(
                "email_resent",
                Some(d),
                format!("approval email resent to {e}"),
            );
        }
        Ok(())
    }

    async fn poll_status(&mut self) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let r = self.provider.status(self.order_ref()).await;
        self.ca_call("status", started, &r);
        apply::status(self, r?);
        Ok(())
    }

    async fn download(&mut self) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let r = self.provider.download(self.order_ref()).await;
        self.ca_call("download", started, &r);
        let chain = r?;
        let leaf = crate::csr::key::verify_leaf(
            &chain.leaf_pem,
            &chain.chain_pem,
            &self.order.private_key_pem,
            &self.order.names,
        )
        .map_err(|e| {
            StepError::permanent(format!(
                "the CA's certificate does not match this order: {e}"
            ))
        })?;
        // Four fsynced files and a directory sync: off the async workers.
        let (dir, key, leaf_pem, chain_pem) = (
            self.cert.output_dir.clone(),
            self.order.private_key_pem.clone(),
            chain.leaf_pem.clone(),
            chain.chain_pem.clone(),
        );
        tokio::task::spawn_blocking(move || {
            crate::install::write_files(&dir, &key, &leaf_pem, &chain_pem)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| {
            Err(format!(
                "installing the certificate files: task failed: {e}"
            ))
        })
        .map_err(|message| StepError {
            kind: crate::provider::ErrorKind::Transient,
            message,
            retry_after: None,
        })?;
        self.order.cert_pem = Some(chain.leaf_pem.clone());
        self.order.chain_pem = Some(chain.chain_pem.concat());
        self.order.not_after = Some(leaf.not_after);
        self.set_state(OrderState::Issued);
        self.event(
            "installed",
            None,
            format!(
                "certificate serial {} valid until {} installed in {}",
                leaf.serial_hex,
                leaf.not_after.format("%Y-%m-%d %H:%M UTC"),
                self.cert.output_dir.display()
            ),
        );
        self.ctx
            .metrics
            .certificates_issued
            .get_or_create(&crate::metrics::ProviderLabels {
                provider: self.order.provider.clone(),
            })
            .inc();
        if !self.cert.deploy_hook.is_empty() {
            let env = [
                ("DCVD_CERTIFICATE", self.order.certificate.clone()),
                (
                    "DCVD_OUTPUT_DIR",
                    self.cert.output_dir.display().to_string(),
                ),
                ("DCVD_ORDER_ID", self.order.id.to_string()),
            ];
            let outcome = crate::install::run_hook(
                &self.cert.deploy_hook,
                &env,
                self.cert.deploy_hook_timeout,
            )
            .await;
            let msg = format!(
                "deploy hook {:?} {}",
                self.cert.deploy_hook,
                outcome.describe()
            );
            if !outcome.success() {
                warn!(order_id = self.order.id, certificate = %self.order.certificate, "{msg}; the certificate files are installed, the hook is not retried");
            }
            self.event("deploy_hook", None, msg);
        }
        Ok(())
    }
}

/// Poll every `poll` for the first five minutes, then gently less often.
fn backoff_poll(poll: Duration, elapsed: Duration) -> Duration {
    let poll = poll.max(Duration::from_millis(100));
    if elapsed < Duration::from_secs(300) {
        poll
    } else if elapsed < Duration::from_secs(1800) {
        poll.max(Duration::from_secs(10))
    } else {
        poll.max(Duration::from_secs(60))
    }
}
