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
//! imports nothing from `crate::provider` or `crate::csr`, so the client and the
//! simulator cannot share a misreading. Where the documents are silent it picks the
//! answer hardest for a client, and says so where it does.

mod api;
mod args;
mod cli;
mod report;
pub mod state;

pub use cli::{SectigoSimArgs, run_from_args};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::sim::ca::SimCa;
use crate::sim::{DcvLookup, Fault, Faults, RequestLog};
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

fn approve(sh: &Shared, number: u64) -> bool {
    let mut orders = sh.orders_lock();
    let Some(o) = orders.get_mut(&number) else {
        return false;
    };
    for n in o.names.iter_mut().filter(|n| n.method == "EMAIL") {
        n.validated = true;
    }
    state::issue_if_ready(o, &sh.ca);
    drop(orders);
    sh.changed.notify_waiters();
    true
}

fn reject(sh: &Shared, number: u64, reason: &str) -> bool {
    let mut orders = sh.orders_lock();
    let Some(o) = orders
        .get_mut(&number)
        .filter(|o| o.state == SimOrderState::Pending)
    else {
        return false;
    };
    o.state = SimOrderState::Rejected;
    o.reject_reason = Some(reason.to_string());
    drop(orders);
    sh.changed.notify_waiters();
    true
}

/// The endpoints the simulator serves, as documented for SSL certificates. The seed's
/// heading prints `download/!AutoUpdateDCV` (the Mark Certificate page); the SSL page and
/// the seed's own curl use `/products/!AutoUpdateDCV`, so only that one is served.
const ENDPOINTS: &[&str] = &[
    "!AutoApplySSL",
    "!AutoApplyOrder",
    "!AutoUpdateDCV",
    "!ResendDCVEmail",
    "!GetDCVEmailAddressList",
    "!GetMDCDomainDetails",
    "!WebHostReport",
    "download/CollectSSL",
    "!AutoRefund",
    "!AutoRevokeSSL",
];

async fn products(
    State(sh): State<Arc<Shared>>,
    method: Method,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/products/{endpoint}");
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        // The documents do not say what an unknown path answers; a web server's 404
        // page (HTML, not an errorCode) is the hardest for a client.
        sh.log.record(method.as_str(), &endpoint, &path, 404);
        let page = format!(
            "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>\
             <p>The requested URL {path} was not found on this server.</p></body></html>"
        );
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html; charset=iso-8859-1")],
            page,
        )
            .into_response();
    }
    let (status, text) = answer(&sh, &method, &endpoint, &body).await;
    sh.log
        .record(method.as_str(), &endpoint, &path, status.as_u16());
    (status, [("content-type", "text/plain;charset=UTF-8")], text).into_response()
}

async fn answer(
    sh: &Arc<Shared>,
    method: &Method,
    endpoint: &str,
    body: &[u8],
) -> (StatusCode, String) {
    let faults = sh.faults.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    match faults.pick() {
        Fault::None => {}
        Fault::ServerError => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error".into(),
            );
        }
        Fault::RateLimited => {
            return (StatusCode::OK, api::error(-42, "Call limit reached!", None));
        }
        Fault::Drop => return (StatusCode::BAD_GATEWAY, String::new()),
        Fault::Malformed => {
            return (
                StatusCode::OK,
                "<html><body>Down for maintenance</body></html>".into(),
            );
        }
    }
    if method != Method::POST {
        return (
            StatusCode::OK,
            api::error(-17, "Request must be made using POST!", None),
        );
    }
    let form = api::Form(url::form_urlencoded::parse(body).into_owned().collect());
    let stored: Vec<(String, String)> = form
        .0
        .iter()
        .filter(|(k, _)| k != "loginPassword")
        .cloned()
        .collect();
    sh.forms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ReceivedForm {
            endpoint: endpoint.to_string(),
            params: stored,
        });
    if sh.over_limit() {
        return (
            StatusCode::OK,
            api::error(-42, "Call limit reached! Please try again later.", None),
        );
    }
    if form.get("loginName") != Some(sh.opts.login_name.as_str())
        || form.get("loginPassword") != Some(sh.opts.login_password.as_str())
    {
        return (StatusCode::OK, api::error(-16, "Permission denied!", None));
    }
    let spec = match endpoint {
        "!AutoApplySSL" | "!AutoApplyOrder" => args::AUTO_APPLY_SSL,
        "!AutoUpdateDCV" => args::AUTO_UPDATE_DCV,
        "!ResendDCVEmail" => args::RESEND_DCV_EMAIL,
        "!GetDCVEmailAddressList" => args::GET_DCV_EMAIL_ADDRESS_LIST,
        "!GetMDCDomainDetails" => args::GET_MDC_DOMAIN_DETAILS,
        "!WebHostReport" => args::WEB_HOST_REPORT,
        "download/CollectSSL" => args::COLLECT_SSL,
        "!AutoRefund" => args::AUTO_REFUND,
        _ => args::AUTO_REVOKE_SSL,
    };
    if let Err(refusal) = args::check(&form, spec) {
        return (StatusCode::OK, refusal);
    }
    let result = match endpoint {
        "!AutoApplySSL" | "!AutoApplyOrder" => api::auto_apply_ssl(sh, form).await,
        "!AutoUpdateDCV" => api::auto_update_dcv(sh, &form).await,
        "!ResendDCVEmail" => api::resend_dcv_email(sh, &form).await,
        "!GetDCVEmailAddressList" => report::get_dcv_email_address_list(&form),
        "!GetMDCDomainDetails" => report::get_mdc_domain_details(sh, &form),
        "!WebHostReport" => report::web_host_report(sh, &form),
        "download/CollectSSL" => {
            let now = sh.collects_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            sh.max_concurrent_collects.fetch_max(now, Ordering::SeqCst);
            if !sh.opts.collect_latency.is_zero() {
                tokio::time::sleep(sh.opts.collect_latency).await;
            }
            let r = report::collect_ssl(sh, &form);
            sh.collects_in_flight.fetch_sub(1, Ordering::SeqCst);
            r
        }
        "!AutoRefund" => report::auto_refund(sh, &form),
        "!AutoRevokeSSL" => report::auto_revoke_ssl(sh, &form),
        _ => Err(api::error(-14, "Unknown API endpoint", None)),
    };
    // ResendDCVEmail's recorded answer has its key in lower case (fixture
    // `resenddcvemail-lowercase-key.txt`); serve it that way, keys must match without case.
    let result = match (endpoint, result) {
        ("!ResendDCVEmail", Ok(r)) => Ok(r.replacen("errorCode=", "errorcode=", 1)),
        (_, r) => r,
    };
    (StatusCode::OK, result.unwrap_or_else(|e| e))
}

async fn admin_reject(
    State(sh): State<Arc<Shared>>,
    Path(order): Path<u64>,
    body: String,
) -> Response {
    let reason = if body.trim().is_empty() {
        "The certificate request has been rejected!"
    } else {
        body.trim()
    };
    if reject(&sh, order, reason) {
        let o = sh.orders_lock().get(&order).cloned();
        axum::Json(o).into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no pending order {order}")).into_response()
    }
}

async fn admin_requests(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(sh.log.entries()).into_response()
}

async fn admin_orders(State(sh): State<Arc<Shared>>) -> Response {
    let orders: Vec<SimOrder> = sh.orders_lock().values().cloned().collect();
    axum::Json(orders).into_response()
}

async fn admin_approve(State(sh): State<Arc<Shared>>, Path(order): Path<u64>) -> Response {
    if approve(&sh, order) {
        let o = sh.orders_lock().get(&order).cloned();
        axum::Json(o).into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no order {order}")).into_response()
    }
}
