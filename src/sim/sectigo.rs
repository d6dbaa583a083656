//! Sectigo reseller API simulator (axum): same paths, form encoding and error codes,
//! real DCV checks via [`DcvLookup`], real certificates from [`SimCa`].
//!
//! Differences from the real service, on purpose: plain HTTP; both `HTTP_CSR_HASH` and
//! `HTTPS_CSR_HASH` files are fetched over `http://`, and only for hosts listed in
//! `http_addresses` (never the internet); downloads support `responseType=3` only.
//! Faults (a dropped connection is a real one) and the admin routes come from
//! [`crate::sim::server`], the same as the DigiCert simulator's. E-mail DCV is approved through
//! `POST /_sim/approve/{orderNumber}`, a rejection at the CA through
//! `POST /_sim/reject/{orderNumber}` (body: the CA's words) or [`SectigoSim::reject`].
//!
//! Written from the documents only (seed page, reference/sectigo.md, fixtures): it
//! imports nothing from `crate::ca` or `crate::pki`, so the client and the
//! simulator cannot share a misreading. Where the documents are silent it picks the
//! answer hardest for a client, and says so where it does.

mod api;
mod args;
mod cli;
mod report;
mod routes;
pub mod state;

pub use crate::sim::server::{ApproveError, SimError};
pub use cli::{SectigoSimArgs, run_from_args};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, post};

use crate::sim::ca::SimCa;
use crate::sim::server::{self, FaultInjector, Running};
use crate::sim::{DcvLookup, Fault, Faults, RequestLog};
use routes::{admin_reject, approve, products, reject};
use state::{SimOrder, SimOrderState};

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SectigoSimOptions {
    /// Port 0 picks a free port.
    pub listen: SocketAddr,
    pub login_name: String,
    pub login_password: String,
    /// Authoritative DNS server for CNAME checks.
    pub nameserver: Option<SocketAddr>,
    /// Where to fetch HTTP(S) DCV files per host name.
    pub http_addresses: BTreeMap<String, SocketAddr>,
    /// Background re-check of pending orders; zero = off (checks happen on
    /// AutoApplySSL, AutoUpdateDCV and ResendDCVEmail only).
    pub check_interval: Duration,
    /// At most this many API calls per window, then `-42`.
    pub rate_limit: Option<(u32, Duration)>,
    pub faults: Faults,
    /// Extra time each CollectSSL answer takes (lets tests see overlapping calls).
    pub collect_latency: Duration,
    /// The time the simulator lives by (order dates, report times, leaf validity).
    pub clock: crate::clock::SharedClock,
    /// How long `!AutoApplySSL` takes to create the order. The work runs in its own task:
    /// after this delay the order is created (and only then visible to reports and
    /// status calls) whether or not the client is still waiting, then the answer is sent.
    pub create_delay: Duration,
}

impl Default for SectigoSimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            login_name: "dcvd".into(),
            login_password: "sim-password".into(),
            nameserver: None,
            http_addresses: BTreeMap::new(),
            check_interval: Duration::ZERO,
            rate_limit: None,
            faults: Faults::default(),
            collect_latency: Duration::ZERO,
            clock: crate::clock::system(),
            create_delay: Duration::ZERO,
        }
    }
}

/// One request form as received (the password is removed before storing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceivedForm {
    pub endpoint: String,
    pub params: Vec<(String, String)>,
}

pub(crate) struct Shared {
    opts: SectigoSimOptions,
    log: RequestLog,
    forms: Mutex<Vec<ReceivedForm>>,
    orders: Mutex<BTreeMap<u64, SimOrder>>,
    next: AtomicU64,
    ca: SimCa,
    dcv: DcvLookup,
    calls: Mutex<VecDeque<tokio::time::Instant>>,
    faults: FaultInjector,
    collects_in_flight: AtomicUsize,
    max_concurrent_collects: AtomicUsize,
    /// Poked after every DCV check and approval (for `wait_for_state`).
    changed: tokio::sync::Notify,
}

impl Shared {
    /// The simulator's time (`SectigoSimOptions::clock`).
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.opts.clock.now()
    }

    fn orders_lock(&self) -> MutexGuard<'_, BTreeMap<u64, SimOrder>> {
        self.orders.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn next_number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
    async fn check(&self, number: u64) {
        let hosts = |h: &str| self.opts.http_addresses.contains_key(h);
        state::check_order(&self.orders, number, &self.dcv, &hosts, &self.ca).await;
        self.changed.notify_waiters();
    }
    /// Sliding-window call limit; true when this call is over it.
    fn over_limit(&self) -> bool {
        let Some((n, window)) = self.opts.rate_limit else {
            return false;
        };
        let now = tokio::time::Instant::now();
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            calls.pop_front();
        }
        if calls.len() >= n as usize {
            return true;
        }
        calls.push_back(now);
        false
    }
}

/// A running simulator; stops when dropped.
pub struct SectigoSim {
    server: Running,
    shared: Arc<Shared>,
}

const SIM: &str = "Sectigo";

impl server::Admin for Shared {
    fn request_log(&self) -> &RequestLog {
        &self.log
    }
    fn orders_json(&self) -> Vec<serde_json::Value> {
        self.orders_lock()
            .values()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect()
    }
    fn approve(&self, id: u64) -> Result<(), ApproveError> {
        approve(self, id)
    }
}

pub async fn start(opts: SectigoSimOptions) -> Result<SectigoSim, SimError> {
    let setup = |what: &'static str| {
        move |detail: String| SimError::Setup {
            sim: SIM,
            what,
            detail,
        }
    };
    let dcv = DcvLookup::new(opts.nameserver, opts.http_addresses.clone())
        .map_err(setup("DCV lookup"))?;
    let ca =
        SimCa::new("Sectigo Sim", opts.clock.clone()).map_err(|x| setup("CA")(x.to_string()))?;
    let listener = server::bind(SIM, opts.listen).await?;
    let shared = Arc::new(Shared {
        faults: FaultInjector::new(opts.faults.clone()),
        opts,
        log: RequestLog::default(),
        forms: Mutex::new(Vec::new()),
        orders: Mutex::new(BTreeMap::new()),
        next: AtomicU64::new(1_000_001),
        ca,
        dcv,
        calls: Mutex::new(VecDeque::new()),
        collects_in_flight: AtomicUsize::new(0),
        max_concurrent_collects: AtomicUsize::new(0),
        changed: tokio::sync::Notify::new(),
    });
    let app = Router::new()
        .route("/products/{*endpoint}", any(products))
        .merge(server::admin_routes::<Shared>())
        .route("/_sim/reject/{order}", post(admin_reject))
        .with_state(shared.clone());
    let mut server = Running::serve(SIM, listener, app)?;
    let every = shared.opts.check_interval;
    if !every.is_zero() {
        let sh = shared.clone();
        server.every(every, move || {
            let sh = sh.clone();
            async move {
                let pending: Vec<u64> = sh
                    .orders_lock()
                    .values()
                    .filter(|o| o.state == SimOrderState::Pending)
                    .map(|o| o.order_number)
                    .collect();
                for n in pending {
                    sh.check(n).await;
                }
            }
        });
    }
    Ok(SectigoSim { server, shared })
}

impl SectigoSim {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
    /// What to put in `base_url` of a `[providers.x] kind = "sectigo"` block.
    pub fn base_url(&self) -> String {
        format!("http://{}/products", self.addr())
    }
    pub fn log(&self) -> &RequestLog {
        &self.shared.log
    }
    /// Forms received at `endpoint` (e.g. `!AutoUpdateDCV`), oldest first, no password.
    pub fn forms(&self, endpoint: &str) -> Vec<ReceivedForm> {
        let forms = self.shared.forms.lock().unwrap_or_else(|p| p.into_inner());
        forms
            .iter()
            .filter(|f| f.endpoint == endpoint)
            .cloned()
            .collect()
    }
    pub fn orders(&self) -> Vec<SimOrder> {
        self.shared.orders_lock().values().cloned().collect()
    }
    pub fn set_faults(&self, f: Faults) {
        self.shared.faults.set(f);
    }
    /// The next `n` API calls get `fault`, before any random faults.
    pub fn force_faults(&self, fault: Fault, n: usize) {
        self.shared.faults.force(fault, n);
    }
    /// Approve every e-mail name of a pending order (what the approver's click does);
    /// may issue. Same as `POST /_sim/approve/{orderNumber}`.
    pub fn approve(&self, order_number: u64) -> Result<(), ApproveError> {
        approve(&self.shared, order_number)
    }
    /// Reject order `number` at the CA while it validates (what a Sectigo validation
    /// agent does), with `reason` as the CA's words. False when there is no such pending order.
    pub fn reject(&self, order_number: u64, reason: &str) -> bool {
        reject(&self.shared, order_number, reason)
    }
    /// Orders created so far (those still inside `create_delay` are not counted).
    pub fn order_count(&self) -> usize {
        self.shared.orders_lock().len()
    }
    /// Wait until at least `n` orders exist (e.g. one still being created inside
    /// `create_delay`); false when `timeout` passes first.
    pub async fn wait_for_orders(&self, n: usize, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.shared.orders_lock().len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
    /// Wait until order `number` is in `state` (e.g. issued by the background check);
    /// false when `timeout` passes first.
    pub async fn wait_for_state(
        &self,
        number: u64,
        state: SimOrderState,
        timeout: Duration,
    ) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self
                    .shared
                    .orders_lock()
                    .get(&number)
                    .is_some_and(|o| o.state == state)
                {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
    /// Highest number of CollectSSL calls seen running at once.
    pub fn max_concurrent_collects(&self) -> usize {
        self.shared.max_concurrent_collects.load(Ordering::Relaxed)
    }
    pub fn ca_root_pem(&self) -> &str {
        self.shared.ca.root_pem()
    }
}
