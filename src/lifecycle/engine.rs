//! The `Engine` handle: the store, clock and metrics (`Ctx`), the current `Services`
//! (swapped whole on SIGHUP), the claims that keep two steps of one order apart, and step
//! dispatch. What it does lives beside it: `renew.rs` (which certificates need an order),
//! `create.rs` (creating one), `step.rs` (one step of one order), `cleanup.rs` (removing
//! published tokens). The scheduler loop (`app/scheduler.rs`) drives it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tracing::warn;

use crate::clock::Clock;
use crate::lifecycle::services::Services;
use crate::lifecycle::step::{self, Action, Ctx};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

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
