//! Sectigo reseller API simulator (axum): same paths, form encoding and error codes,
//! real DCV checks via [`DcvLookup`], real certificates from [`SimCa`].
//!
//! Differences from the real service, on purpose: plain HTTP; both `HTTP_CSR_HASH` and
//! `HTTPS_CSR_HASH` files are fetched over `http://`, and only for hosts listed in
//! `http_addresses` (never the internet); a "dropped connection" fault answers 502;
//! downloads support `responseType=3` only. E-mail DCV is approved through
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

pub use cli::{SectigoSimArgs, run_from_args};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};

use crate::sim::ca::SimCa;
use crate::sim::{DcvLookup, Faults, RequestLog};
use routes::{
    admin_approve, admin_orders, admin_reject, admin_requests, approve, products, reject,
};
use state::{SimOrder, SimOrderState};

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SectigoSimOptions {
    /// 0 picks a free port. Always binds 127.0.0.1.
    pub port: u16,
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
            port: 0,
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
    faults: Mutex<Faults>,
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
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
#[error("Sectigo simulator: {0}")]
pub struct SectigoSimError(String);

pub async fn start(opts: SectigoSimOptions) -> Result<SectigoSim, SectigoSimError> {
    let e = |what: &str, err: String| SectigoSimError(format!("{what}: {err}"));
    // DcvLookup builds a reqwest client, which needs a process-wide rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dcv = DcvLookup::new(opts.nameserver, opts.http_addresses.clone())
        .map_err(|x| e("DCV lookup", x))?;
    let ca = SimCa::new("Sectigo Sim", opts.clock.clone()).map_err(|x| e("CA", x.to_string()))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|x| e(&format!("bind 127.0.0.1:{}", opts.port), x.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|x| e("local address", x.to_string()))?;
    let shared = Arc::new(Shared {
        faults: Mutex::new(opts.faults.clone()),
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
        .route("/_sim/requests", get(admin_requests))
        .route("/_sim/orders", get(admin_orders))
        .route("/_sim/approve/{order}", post(admin_approve))
        .route("/_sim/reject/{order}", post(admin_reject))
        .with_state(shared.clone());
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "Sectigo simulator stopped");
        }
    })];
    let every = shared.opts.check_interval;
    if !every.is_zero() {
        let sh = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
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
        }));
    }
    Ok(SectigoSim {
        addr,
        shared,
        tasks,
    })
}

impl SectigoSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// What to put in `base_url` of a `[providers.x] kind = "sectigo"` block.
    pub fn base_url(&self) -> String {
        format!("http://{}/products", self.addr)
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
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }
    /// Approve every e-mail name of the order (what the approver's click does); may issue.
    pub fn approve(&self, order_number: u64) -> bool {
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

impl Drop for SectigoSim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
