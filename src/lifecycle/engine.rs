//! The engine: turns configured certificates into orders when they need one (first
//! issuance, changed names, renewal due), runs due steps, and removes published tokens
//! recorded in the cleanup journal. The scheduler loop (`scheduler`) drives it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::CertificateConfig;
use crate::lifecycle::retry;
use crate::lifecycle::services::Services;
use crate::lifecycle::step::{self, Action, Ctx};
use crate::metrics::Metrics;
use crate::model::{DomainName, OrderState};
use crate::store::{NewOrder, Store, StoreError};

pub struct Engine {
    pub ctx: Ctx,
    services: RwLock<Arc<Services>>,
    /// Poked when new work appears (new order, reload, CLI) so the scheduler wakes early.
    pub notify: Notify,
    /// Orders whose step is running now: never two steps of one order at once.
    running: Arc<Mutex<HashSet<i64>>>,
}

/// An order claimed for one step. Dropping it releases the order, also when the step
/// panicked or its task was aborted, so the order is never left claimed until a restart.
#[must_use = "the order is released as soon as the claim is dropped"]
pub struct Claim {
    running: Arc<Mutex<HashSet<i64>>>,
    id: i64,
}

impl Claim {
    pub fn id(&self) -> i64 {
        self.id
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

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
}

impl Engine {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        services: Services,
    ) -> Self {
        Self {
            ctx: Ctx {
                store,
                clock,
                metrics,
            },
            services: RwLock::new(Arc::new(services)),
            notify: Notify::new(),
            running: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    pub fn services(&self) -> Arc<Services> {
        self.services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swap in a new validated `Services` (SIGHUP). Steps already running finish with the old one.
    pub fn replace_services(&self, rt: Services) {
        *self.services.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rt);
        self.notify.notify_one();
    }

    /// Create orders for every configured certificate that needs one. Returns their ids.
    pub async fn ensure_orders(&self) -> Result<Vec<i64>, StoreError> {
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
        let mut created = Vec::new();
        for cert in &rt.config.certificates {
            let rec = records.get(&cert.name);
            if rec.is_some_and(|r| r.current_order_id.is_some()) {
                continue;
            }
            // A damaged row: dcvd cannot tell what the certificate has, so it orders
            // nothing for it (a second order would be a second purchase) until repaired.
            let damaged = rec
                .and_then(|r| r.damaged.as_deref())
                .or_else(|| overview.get(&cert.name).and_then(|o| o.damaged.as_deref()));
            if let Some(why) = damaged {
                warn!(
                    certificate = %cert.name,
                    "no new order or renewal for this certificate until its row is repaired: {why}"
                );
                continue;
            }
            let names = match cert_names(cert) {
                Ok(n) => n,
                Err(e) => {
                    warn!(certificate = %cert.name, "skipping certificate: {e}");
                    continue;
                }
            };
            let ov = overview.get(&cert.name);
            let latest = ov.and_then(|o| o.latest.as_ref());
            let need = match need_for(cert, &names, rec, latest, now) {
                Some(n) => Some(n),
                None => self.renewal_window_need(&rt, cert, latest, now).await,
            };
            let Some(need) = need else {
                continue;
            };
            let renewal_of = match rec.and_then(|r| r.issued_order_id) {
                Some(_) => ov.and_then(|o| o.issued_ca_order_id.clone()),
                None => None,
            };
            match self.create_order(cert, names, renewal_of, &need).await {
                Ok(id) => created.push(id),
                Err(e) => warn!(certificate = %cert.name, "could not create an order: {e}"),
            }
        }
        if !created.is_empty() {
            self.notify.notify_one();
        }
        Ok(created)
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

    /// Generate the key and CSR and write a pending order for `cert`.
    pub async fn create_order(
        &self,
        cert: &CertificateConfig,
        names: Vec<DomainName>,
        renewal_of: Option<String>,
        need: &Need,
    ) -> Result<i64, StoreError> {
        let key_type = cert.key.0;
        let csr_names = names.clone();
        let kc =
            tokio::task::spawn_blocking(move || crate::pki::key::generate(key_type, &csr_names))
                .await
                .map_err(|e| StoreError::KeyGeneration {
                    certificate: cert.name.clone(),
                    detail: format!("the key generation task ended: {e}"),
                })?
                .map_err(|e| StoreError::KeyGeneration {
                    certificate: cert.name.clone(),
                    detail: e.to_string(),
                })?;
        let authz = names
            .iter()
            .map(|n| crate::lifecycle::decide::first_method(cert, n))
            .collect();
        let reference = format!("dcvd{}", hex::encode(rand::random::<[u8; 8]>()));
        let new = NewOrder {
            certificate: cert.name.clone(),
            provider: cert.provider.clone(),
            reference,
            names,
            authz,
            key_type,
            private_key_pem: kc.key_pem,
            csr_pem: kc.csr_pem,
            csr_der: kc.csr_der,
            renewal_of,
        };
        let id = self
            .ctx
            .store
            .create_order(&new, self.ctx.clock.now())
            .await?;
        info!(order_id = id, certificate = %cert.name, provider = %cert.provider, reason = ?need, "new order");
        Ok(id)
    }

    /// Try to claim an order for a step. None when a step of it is already running.
    /// The order stays claimed until the returned guard is dropped.
    pub fn claim(&self, id: i64) -> Option<Claim> {
        let fresh = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        fresh.then(|| Claim {
            running: self.running.clone(),
            id,
        })
    }

    pub fn running(&self) -> Vec<i64> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// One step of one order, claimed for its duration.
    pub async fn step(&self, id: i64) -> Result<Option<Action>, StoreError> {
        let Some(claim) = self.claim(id) else {
            return Ok(None);
        };
        self.step_claimed(claim).await.map(Some)
    }

    /// One step of an order already claimed; the claim is released when the step ends,
    /// returns an error or panics.
    pub async fn step_claimed(&self, claim: Claim) -> Result<Action, StoreError> {
        let id = claim.id();
        let rt = self.services();
        let r = step::reconcile(id, &self.ctx, &rt).await;
        drop(claim);
        if matches!(r, Ok(Action::Done)) && self.ctx.store.failed_before_purchase(id).await? {
            // Its key or CSR was damaged and nothing was bought: a fresh order now.
            if let Err(e) = self.ensure_orders().await {
                warn!(
                    order_id = id,
                    "placing a fresh order after a damaged key failed: {e}; the next renewal check tries again"
                );
            }
        }
        r
    }

    /// Run due steps (and cleanups) one after another until nothing is due at the
    /// current clock time. For tests and one-shot use; the daemon uses the scheduler.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let mut steps = 0;
        loop {
            let now = self.ctx.clock.now();
            let due = self.ctx.store.due_orders(now, 64).await?;
            let cleaned = self.cleanup_due(64).await?;
            if due.is_empty() && cleaned == 0 {
                return Ok(steps);
            }
            for id in due {
                self.step(id).await?;
                steps += 1;
            }
            if steps > 100_000 {
                return Ok(steps);
            }
        }
    }

    /// Remove up to `limit` due tokens. A failure is retried later with backoff.
    pub async fn cleanup_due(&self, limit: u32) -> Result<usize, StoreError> {
        let now = self.ctx.clock.now();
        let rt = self.services();
        let entries = self.ctx.store.journal_due(now, limit).await?;
        let n = entries.len();
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err((order_id, err)) => {
                    // One damaged entry: skip it (retried later, in case it is repaired)
                    // and clean the others.
                    let StoreError::Corrupt { id, .. } = &err else {
                        continue;
                    };
                    let again = now
                        + chrono::Duration::from_std(retry::DAMAGED_JOURNAL_RETRY)
                            .unwrap_or_default();
                    if self
                        .ctx
                        .store
                        .journal_quarantine(*id, &err.to_string(), again)
                        .await?
                    {
                        warn!(
                            order_id,
                            "{err}: this token cannot be removed by dcvd (remove it by hand, then delete \
                             cleanup_journal row {id}, or repair the row); the other tokens are cleaned. \
                             Tried again every {}",
                            humantime::format_duration(retry::DAMAGED_JOURNAL_RETRY)
                        );
                    }
                    continue;
                }
            };
            let Some(publisher) = rt.publishers.get(&e.publisher) else {
                let again =
                    now + chrono::Duration::from_std(retry::UNCONFIGURED_RETRY).unwrap_or_default();
                let msg = format!(
                    "publisher `{}` is no longer configured; {} {} stays until it is",
                    e.publisher,
                    e.challenge.kind,
                    e.challenge.location()
                );
                warn!(order_id = e.order_id, "{msg}");
                self.ctx.store.journal_failed(e.id, &msg, again).await?;
                continue;
            };
            match publisher.cleanup(&e.challenge).await {
                Ok(()) => {
                    self.ctx.store.journal_done(e.id).await?;
                    self.ctx
                        .store
                        .add_event(
                            e.order_id,
                            &crate::store::NewEvent {
                                kind: "cleanup",
                                domain: None,
                                message: format!(
                                    "removed {} {}",
                                    e.challenge.kind,
                                    e.challenge.location()
                                ),
                            },
                            now,
                        )
                        .await?;
                }
                Err(err) => {
                    let delay = retry::cleanup_delay(e.attempts + 1);
                    let again = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    warn!(
                        order_id = e.order_id,
                        attempt = e.attempts + 1,
                        "cleanup failed: {err}; retrying"
                    );
                    self.ctx
                        .store
                        .journal_failed(e.id, &err.to_string(), again)
                        .await?;
                }
            }
        }
        Ok(n)
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
    let Some(rec) = rec.filter(|r| r.issued_order_id.is_some()) else {
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

/// An engine for one-off CLI actions (placing an order by hand): services built from
/// `config` with a fresh metrics registry and the system clock.
pub async fn engine_for_cli(store: Store, config: crate::config::Config) -> anyhow::Result<Engine> {
    let metrics = Arc::new(Metrics::new());
    let clock = crate::clock::system();
    let services =
        crate::lifecycle::services::build(&config, metrics.clone(), &store, clock.clone())
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Engine::new(store, clock, metrics, services))
}
