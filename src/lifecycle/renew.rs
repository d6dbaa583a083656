//! When a certificate gets a new order: first issuance, changed names, renewal due
//! (`renew_before`), the CA's suggested window (ACME ARI), or a retry after a failed
//! order. `need_for` is the pure rule; `ensure_orders` runs it for every configured
//! certificate on `renewal_check` (and at start-up) and creates the orders.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::config::CertificateConfig;
use crate::lifecycle::adopt::{self, FirstStart};
use crate::lifecycle::engine::Engine;
use crate::lifecycle::retry;
use crate::lifecycle::services::Services;
use crate::model::{DomainName, OrderState};
use crate::store::StoreError;

/// Why a certificate needs a new order, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    First,
    NamesChanged,
    RenewalDue(DateTime<Utc>),
    /// The CA's suggested renewal window (ACME ARI) started at this time.
    RenewalWindow(DateTime<Utc>),
    RetryAfterFailure,
    /// The last order failed before anything was bought: its stored key or CSR was damaged.
    DamagedKey,
    /// An operator asked for a new order although none was due (`dcvd renew --force`).
    Forced,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC");
        match self {
            Need::First => f.write_str("first order"),
            Need::NamesChanged => f.write_str("the configured names changed"),
            Need::RenewalDue(t) => write!(f, "renewal due since {} (renew_before)", at(t)),
            Need::RenewalWindow(t) => write!(f, "the CA's renewal window opened {}", at(t)),
            Need::RetryAfterFailure => f.write_str("retry after a failed or canceled order"),
            Need::DamagedKey => f.write_str("the last order's stored key or CSR was damaged"),
            Need::Forced => f.write_str("operator: dcvd renew --force"),
        }
    }
}

/// What a renewal pass (or `dcvd renew`) did for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// A new order was written; the daemon takes it from the database.
    Placed { order_id: i64, need: Need },
    /// The certificate has a live order already (never two at once): nothing done.
    Live(i64),
    /// Nothing is due: the certificate renews from this time (None: not known).
    NotDue { renew_from: Option<DateTime<Utc>> },
    /// Paused by an operator (`dcvd pause`, `dcvd orders cancel`): no order until resumed.
    Paused(String),
    /// The valid certificate in its output_dir was adopted instead of ordering one.
    Adopted,
    /// No order now, and why (damaged row, bad names, held for the operator, the store failed).
    Skipped(String),
}

impl Engine {
    /// Create orders for every configured certificate that needs one. Returns their ids.
    pub async fn ensure_orders(&self) -> Result<Vec<i64>, StoreError> {
        let created: Vec<i64> = self
            .renew(None, false)
            .await?
            .into_iter()
            .filter_map(|(_, r)| match r {
                Renewal::Placed { order_id, .. } => Some(order_id),
                _ => None,
            })
            .collect();
        Ok(created)
    }

    /// Consider the configured certificates named in `only` (every configured one with
    /// `None`; a name not in the configuration is left out: the caller checks) and order
    /// those that are due, or, with `force`, every one that has no live order and is not
    /// paused. A paused certificate gets no order either way. What happened to each, in configuration order.
    pub async fn renew(
        &self,
        only: Option<&[String]>,
        force: bool,
    ) -> Result<Vec<(String, Renewal)>, StoreError> {
        let rt = self.services();
        let now = self.ctx.clock.now();
        let records: BTreeMap<String, _> = self
            .ctx
            .store
            .certificates()
            .await?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let overview = self.ctx.store.order_overview().await?;
        let mut out = Vec::new();
        for cert in &rt.config.certificates {
            if only.is_some_and(|o| !o.contains(&cert.name)) {
                continue;
            }
            let r = self
                .consider(
                    &rt,
                    cert,
                    records.get(&cert.name),
                    overview.get(&cert.name),
                    force,
                    now,
                )
                .await;
            out.push((cert.name.clone(), r));
        }
        if out.iter().any(|(_, r)| matches!(r, Renewal::Placed { .. })) {
            self.notify.notify_one();
        }
        Ok(out)
    }

    /// One certificate of a renewal pass: order it if due (or `force`), else say why not.
    async fn consider(
        &self,
        rt: &Services,
        cert: &CertificateConfig,
        rec: Option<&crate::store::CertificateRecord>,
        ov: Option<&crate::store::OrderOverview>,
        force: bool,
        now: DateTime<Utc>,
    ) -> Renewal {
        if let Some(live) = rec.and_then(|r| r.current_order_id) {
            return Renewal::Live(live);
        }
        // A damaged row: dcvd cannot tell what the certificate has, so it orders
        // nothing for it (a second order would be a second purchase) until repaired.
        let damaged = rec
            .and_then(|r| r.damaged.as_deref())
            .or_else(|| ov.and_then(|o| o.damaged.as_deref()));
        if let Some(why) = damaged {
            warn!(
                certificate = %cert.name,
                "no new order or renewal for this certificate until its row is repaired: {why}"
            );
            return Renewal::Skipped(format!("its database row is damaged: {why}"));
        }
        if let Some(why) = rec.and_then(|r| r.paused.as_ref()) {
            debug!(certificate = %cert.name, "paused, no order: {}", why.reason);
            return Renewal::Paused(why.reason.clone());
        }
        let names = match cert_names(cert) {
            Ok(n) => n,
            Err(e) => {
                warn!(certificate = %cert.name, "skipping certificate: {e}");
                return Renewal::Skipped(e);
            }
        };
        let latest = ov.and_then(|o| o.latest.as_ref());
        let need = if force {
            Some(Need::Forced)
        } else {
            match need_for(cert, &names, rec, latest, now) {
                Some(n) => Some(n),
                None => self.renewal_window_need(rt, cert, latest, now).await,
            }
        };
        let Some(need) = need else {
            let renew_from = rec
                .and_then(|r| r.not_after)
                .map(|t| t - chrono::Duration::from_std(cert.renew_before).unwrap_or_default());
            return Renewal::NotDue { renew_from };
        };
        if let Err(r) = self
            .may_order(cert, &names, &need, latest.is_none(), now)
            .await
        {
            return r;
        }
        let renewal_of = match rec.and_then(|r| r.issued_order_id) {
            Some(_) => ov.and_then(|o| o.issued_ca_order_id.clone()),
            None => None,
        };
        match self.create_order(cert, names, renewal_of, &need).await {
            Ok(order_id) => Renewal::Placed { order_id, need },
            Err(e) => {
                warn!(certificate = %cert.name, "could not create an order: {e}");
                Renewal::Skipped(format!("creating the order failed: {e}"))
            }
        }
    }

    /// The checks before anything is bought: before a certificate's first order, what its
    /// `output_dir` already holds (adopted instead, or held for the operator; see
    /// `adopt.rs`); before any order, that the certificate could be installed there (the
    /// CA does not cancel an issued order). Err (what happened instead) when no order is
    /// to be placed now; a held certificate shows in `status` and is looked at again on
    /// the next pass.
    async fn may_order(
        &self,
        cert: &CertificateConfig,
        names: &[DomainName],
        need: &Need,
        never_ordered: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Renewal> {
        let store = &self.ctx.store;
        let candidate = &adopt::Candidate {
            certificate: &cert.name,
            provider: &cert.provider,
            names,
            output_dir: &cert.output_dir,
            mode: cert.adopt,
        };
        let held = |why: String| async move {
            if let Err(e) = adopt::hold(store, candidate, Some(&why), now).await {
                warn!(certificate = %cert.name, "recording why the certificate is held failed: {e}");
            }
            Err(Renewal::Skipped(format!("held for the operator: {why}")))
        };
        if *need == Need::First && never_ordered {
            match adopt::first_start(store, candidate, now).await {
                Ok(FirstStart::Order { .. }) => {}
                Ok(FirstStart::Adopt(_)) => return Err(Renewal::Adopted),
                Ok(FirstStart::Refuse(why)) => return held(why).await,
                Err(e) => {
                    warn!(certificate = %cert.name, "no first order this pass: recording the adoption failed: {e}");
                    return Err(Renewal::Skipped(format!(
                        "recording the adoption failed: {e}"
                    )));
                }
            }
        }
        let dir = cert.output_dir.clone();
        let probe =
            tokio::task::spawn_blocking(move || crate::pki::install::probe_writable(&dir)).await;
        let unwritable = match probe {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("checking {}: {e}", cert.output_dir.display())),
        };
        if let Some(e) = unwritable {
            return held(format!(
                "{e}; dcvd orders nothing for this certificate while it cannot install it \
                 there: fix the directory or its permissions (under the shipped unit, \
                 ReadWritePaths=)"
            ))
            .await;
        }
        if let Err(e) = adopt::hold(store, candidate, None, now).await {
            warn!(certificate = %cert.name, "clearing the certificate's hold failed: {e}");
        }
        Ok(())
    }

    /// ARI: renew an issued, otherwise not yet due certificate once the window its CA
    /// suggests has started (at its start rather than a random point in it: dcvd checks
    /// only every `renewal_check`, which spreads renewals already). One provider call.
    async fn renewal_window_need(
        &self,
        rt: &Services,
        cert: &CertificateConfig,
        latest: Option<&crate::store::LatestOrder>,
        now: DateTime<Utc>,
    ) -> Option<Need> {
        let issued = latest.filter(|o| o.state == OrderState::Issued)?;
        let provider = rt.providers.get(&cert.provider)?;
        // Only providers that can suggest a window cost a database read here.
        if !provider.suggests_renewal_windows() {
            return None;
        }
        let (order, _) = self.ctx.store.load_order(issued.id).await.ok()?;
        if order.provider != cert.provider {
            return None;
        }
        let (start, _end) = provider.renewal_window(order.cert_pem.as_deref()?).await?;
        window_need(start, now)
    }
}

/// The certificate's names, common name first, without duplicates.
pub fn cert_names(cert: &CertificateConfig) -> Result<Vec<DomainName>, String> {
    let mut out: Vec<DomainName> = Vec::new();
    for n in std::iter::once(&cert.common_name).chain(cert.dns_names.iter()) {
        let d = DomainName::parse(n).map_err(|e| e.to_string())?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Renewal by the CA's suggested window: due once the window has started.
pub fn window_need(start: DateTime<Utc>, now: DateTime<Utc>) -> Option<Need> {
    (start <= now).then_some(Need::RenewalWindow(start))
}

/// Does `cert` need a new order now? Pure, so it is tested directly.
pub fn need_for(
    cert: &CertificateConfig,
    names: &[DomainName],
    rec: Option<&crate::store::CertificateRecord>,
    latest: Option<&crate::store::LatestOrder>,
    now: DateTime<Utc>,
) -> Option<Need> {
    if let Some(o) = latest {
        if o.replace_now {
            return Some(Need::DamagedKey);
        }
        match o.state {
            // An order that failed or that an operator canceled is not replaced at once:
            // a new one follows after retry::FAILED_ORDER_RETRY (or `dcvd orders retry`), or
            // straight away when the configured names changed.
            OrderState::Failed | OrderState::Canceled if o.names.as_slice() == names => {
                let retry_at = o.updated_at
                    + chrono::Duration::from_std(retry::FAILED_ORDER_RETRY).unwrap_or_default();
                if retry_at > now {
                    return None;
                }
                return Some(Need::RetryAfterFailure);
            }
            _ => {}
        }
    }
    let Some(rec) = rec.filter(|r| r.has_issued()) else {
        return Some(Need::First);
    };
    let issued_names: Vec<String> = rec.names.clone();
    let want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    if issued_names != want {
        return Some(Need::NamesChanged);
    }
    let not_after = rec.not_after?;
    let renew_at = not_after - chrono::Duration::from_std(cert.renew_before).unwrap_or_default();
    (renew_at <= now).then_some(Need::RenewalDue(renew_at))
}
