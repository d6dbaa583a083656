//! A DigiCert CertCentral Services API v2 simulator (axum) that validates DCV for real.
//!
//! Serves the DV order endpoints under `/services/v2` with the documented paths,
//! headers, bodies, status codes and error codes, plus admin endpoints under `/_sim`:
//! `POST /_sim/approve/{order_id}` (an approver clicked the email link),
//! `GET /_sim/requests` (request log) and `GET /_sim/orders` (orders and count).
//!
//! Requests are parsed from the documented field tables in `schema.rs` (the seed pages),
//! never with the client's types: the simulator imports nothing from the client module
//! (tests/it/sim_independence.rs checks). Responses follow the recorded payloads (`render.rs`).
//!
//! Choices where the docs are silent, each the answer hardest for the client: an
//! unknown API key gets 403 (not 401) with `access_denied|invalid_api_key`, so a client
//! must not read every 403 as "missing permission" nor only 401 as a bad key; bodies
//! that do not follow the documented fields (unknown field, wrong type) get 400
//! `bad_request_format`; 429 carries `Retry-After` only when `retry_after` is set (the
//! docs promise none); `check-dcv` on a `dns-cname-token` order whose CNAME is missing
//! answers 400 with an undocumented code; `pem_all` refuses `Accept: application/json`;
//! an empty `domain_approval_emails` is refused.

mod api;
mod create;
mod dcv;
mod render;
mod schema;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};

use self::state::Sim;
pub use self::state::{SimApprovalEmail, SimDcvEmail, SimOrder, SimResend};
use super::ca::SimCa;
use super::server::{self, FaultInjector, Running};
use super::{DcvLookup, Fault, Faults, RequestLog};

/// How the simulator behaves. `Default` is the real API's behaviour with no faults.
#[derive(Debug, Clone)]
pub struct DigicertSimOptions {
    pub listen: SocketAddr,
    /// Accepted `X-DC-DEVKEY` values.
    pub api_keys: Vec<String>,
    /// Where DNS tokens are looked up (authoritative server; `None`: DNS never validates).
    pub nameserver: Option<SocketAddr>,
    /// Host → address to fetch HTTP tokens from instead of resolving the host.
    pub http_addresses: BTreeMap<String, SocketAddr>,
    pub faults: Faults,
    /// Enforce 100 requests / 5 s and 1000 / 5 min per key (sliding windows).
    pub rate_limits: bool,
    /// Multiplies both windows (e.g. 0.01 for benchmarks: 100 / 50 ms).
    pub rate_limit_scale: f64,
    /// `Retry-After` seconds sent with 429 answers (none by default, as documented).
    pub retry_after: Option<u64>,
    pub random_value_lifetime: Duration,
    /// Approve email orders by themselves this long after they were placed.
    pub auto_approve_email_after: Option<Duration>,
    /// DigiCert re-checks pending token orders on its own; zero turns that off.
    pub recheck_interval: Duration,
    pub ca_name: String,
    /// The time the simulator lives by (order dates, random-value expiry, leaf validity,
    /// the maximum validity in force).
    pub clock: crate::clock::SharedClock,
    /// A slow CA: the order POST is carried out by a task that waits this long, then
    /// creates the order (visible to GET and the list only from then on) whether or not
    /// the client is still connected, and only then answers.
    pub create_delay: Duration,
}

impl Default for DigicertSimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_keys: Vec::new(),
            nameserver: None,
            http_addresses: BTreeMap::new(),
            faults: Faults::default(),
            rate_limits: true,
            rate_limit_scale: 1.0,
            retry_after: None,
            random_value_lifetime: Duration::from_secs(30 * 86400),
            auto_approve_email_after: None,
            recheck_interval: Duration::from_secs(1),
            ca_name: "dcvd Simulated DigiCert".into(),
            clock: crate::clock::system(),
            create_delay: Duration::ZERO,
        }
    }
}

pub use super::server::{ApproveError, SimError};

const SIM: &str = "DigiCert";

/// A running simulator. Stops when dropped or on `shutdown()`.
pub struct DigicertSim {
    server: Running,
    sim: Arc<Sim>,
}

impl DigicertSim {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
    pub fn base_url(&self) -> String {
        format!("http://{}/services/v2", self.addr())
    }
    pub fn log(&self) -> &RequestLog {
        &self.sim.log
    }
    /// A copy of every order.
    pub fn orders(&self) -> Vec<SimOrder> {
        self.sim.lock().values().cloned().collect()
    }
    pub fn order(&self, id: u64) -> Option<SimOrder> {
        self.sim.lock().get(&id).cloned()
    }
    /// The next `n` API requests (after auth) get `fault`, before any random faults.
    pub fn force_faults(&self, fault: Fault, n: usize) {
        self.sim.faults.force(fault, n);
    }
    pub fn set_faults(&self, faults: Faults) {
        self.sim.faults.set(faults);
    }
    /// Lifetime of random values created from now on (tests: expire values at once).
    pub fn set_random_value_lifetime(&self, d: Duration) {
        *self.sim.lifetime.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }
    /// GET order info shows no CSR for this order from now on (`certificate.csr: null`),
    /// as a CA answer that cannot confirm whose order it is.
    pub fn forget_csr(&self, order_id: u64) {
        if let Some(o) = self.sim.lock().get_mut(&order_id) {
            o.hide_csr = true;
        }
    }
    /// Same as `POST /_sim/approve/{id}`.
    pub fn approve(&self, order_id: u64) -> Result<(), ApproveError> {
        self.sim.approve_email(order_id)
    }
    /// Run DigiCert's own re-check for every pending order once, now.
    pub async fn recheck_now(&self) {
        self.sim.background_round(true).await;
    }
    pub fn shutdown(self) {
        drop(self.server);
    }
}

impl server::Admin for Sim {
    fn request_log(&self) -> &RequestLog {
        &self.log
    }
    fn orders_json(&self) -> Vec<serde_json::Value> {
        self.lock()
            .values()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect()
    }
    fn approve(&self, id: u64) -> Result<(), ApproveError> {
        self.approve_email(id)
    }
}

pub async fn start(opts: DigicertSimOptions) -> Result<DigicertSim, SimError> {
    let setup = |what: &'static str| {
        move |detail: String| SimError::Setup {
            sim: SIM,
            what,
            detail,
        }
    };
    let lookup = DcvLookup::new(opts.nameserver, opts.http_addresses.clone())
        .map_err(setup("DCV lookup"))?;
    let ca =
        SimCa::new(&opts.ca_name, opts.clock.clone()).map_err(|e| setup("CA")(e.to_string()))?;
    let listener = server::bind(SIM, opts.listen).await?;
    let sim = Arc::new(Sim {
        faults: FaultInjector::new(opts.faults.clone()),
        lifetime: Mutex::new(opts.random_value_lifetime),
        opts,
        ca,
        lookup,
        log: Arc::new(RequestLog::default()),
        orders: Mutex::new(BTreeMap::new()),
        sent: Mutex::new(BTreeMap::new()),
        next_id: std::sync::atomic::AtomicU64::new(100_001),
    });
    let mut server = Running::serve(SIM, listener, router(sim.clone()))?;
    if let Some(tick) = background_tick(&sim.opts) {
        let sim = sim.clone();
        let interval = sim.opts.recheck_interval;
        let mut last_recheck = tokio::time::Instant::now();
        server.every(tick, move || {
            let recheck = !interval.is_zero() && last_recheck.elapsed() >= interval;
            if recheck {
                last_recheck = tokio::time::Instant::now();
            }
            let sim = sim.clone();
            async move { sim.background_round(recheck).await }
        });
    }
    Ok(DigicertSim { server, sim })
}

fn background_tick(o: &DigicertSimOptions) -> Option<Duration> {
    let mut t: Option<Duration> = (!o.recheck_interval.is_zero()).then_some(o.recheck_interval);
    if let Some(a) = o.auto_approve_email_after {
        let a = a.max(Duration::from_millis(10));
        t = Some(t.map_or(a, |t| t.min(a)));
    }
    t
}

fn router(sim: Arc<Sim>) -> Router {
    let v2 = Router::new()
        .route("/order/certificate", get(api::list))
        .route(
            "/order/certificate/{id}",
            post(create::create).get(api::get_order),
        )
        .route(
            "/order/certificate/{id}/dcv-random-value",
            put(dcv::dcv_random_value),
        )
        .route("/order/certificate/{id}/dcv-method", put(dcv::dcv_method))
        .route("/order/certificate/{id}/check-dcv", put(dcv::check_dcv))
        .route(
            "/order/certificate/{id}/resend-emails",
            put(dcv::resend_emails),
        )
        .route("/order/certificate/{id}/status", put(api::update_status))
        .route("/domain/{id}/dcv/emails", get(api::domain_emails))
        .route(
            "/certificate/{id}/download/format/{format}",
            get(api::download),
        )
        .route_layer(middleware::from_fn_with_state(sim.clone(), gate));
    Router::new()
        .nest("/services/v2", v2)
        .merge(server::admin_routes::<Sim>())
        .fallback(fallback)
        .with_state(sim)
}

async fn fallback(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    sim.log.record(req.method().as_str(), "unknown", &path, 404);
    // Exactly the recorded payload (fixtures/digicert/errors.json): `errors` as a single
    // object, not the array the docs show.
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"errors": {
            "code": "not_found|route",
            "message": "The specified route was not found."
        }})),
    )
        .into_response()
}

/// Logging, latency, authentication, rate limits and injected faults, in that order.
async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().trim_start_matches("/services/v2/").to_string())
        .unwrap_or_else(|| path.clone());
    sim.faults.delay().await;
    let key = req
        .headers()
        .get("X-DC-DEVKEY")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let resp = if !sim.opts.api_keys.contains(&key) {
        api::error(
            StatusCode::FORBIDDEN,
            &[(
                "access_denied|invalid_api_key",
                "The API key is missing or not valid.",
            )],
        )
    } else if !sim.admit(&key) {
        rate_limited(&sim)
    } else {
        match sim.faults.pick() {
            Fault::None => next.run(req).await,
            Fault::ServerError => api::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &[("internal_error", "An internal error occurred.")],
            ),
            Fault::RateLimited => rate_limited(&sim),
            Fault::Malformed => (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"id\": 12, \"status\": [",
            )
                .into_response(),
            Fault::Drop => server::dropped(),
        }
    };
    sim.log
        .record(&method, &endpoint, &path, resp.status().as_u16());
    resp
}

fn rate_limited(sim: &Sim) -> Response {
    let mut r = api::error(
        StatusCode::TOO_MANY_REQUESTS,
        &[(
            "request_limit_exceeded",
            "You have exceeded the request limit. Wait a few seconds and try again.",
        )],
    );
    if let Some(s) = sim.opts.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
