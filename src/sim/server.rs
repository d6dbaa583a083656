//! The harness both CA simulators (DigiCert, Sectigo) share: binding, serving with a
//! graceful stop, the background tick loop, stopping on drop, fault injection with the
//! same meaning at both CAs, the `/_sim/{requests,orders,approve/{id}}` admin routes,
//! one error type, and the simulators' HTTP client.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};

use super::{Fault, Faults, RequestLog};

/// Why a simulator did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{sim} simulator: cannot listen on {addr}: {source}")]
    Bind {
        sim: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{sim} simulator: {what}: {detail}")]
    Setup {
        sim: &'static str,
        what: &'static str,
        detail: String,
    },
}

/// Why `approve` (an approver's click on the e-mail link) did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("order {0} not found")]
    NotFound(u64),
    #[error("order {id} is {state}, not pending")]
    NotPending { id: u64, state: String },
}

/// A reqwest client builder for the simulators' own outgoing requests (DCV lookups,
/// Pebble's management API). Installs the process-wide rustls provider reqwest needs.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Listen on `listen` (port 0 picks a free one).
pub async fn bind(
    sim: &'static str,
    listen: SocketAddr,
) -> Result<tokio::net::TcpListener, SimError> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Bind {
            sim,
            addr: listen,
            source,
        })
}

/// A simulator's server and background tasks; all of them stop when this is dropped.
pub struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Serve `app` on `listener` until dropped (in-flight requests finish first).
    pub fn serve(
        sim: &'static str,
        listener: tokio::net::TcpListener,
        app: Router,
    ) -> Result<Self, SimError> {
        let addr = listener.local_addr().map_err(|e| SimError::Setup {
            sim,
            what: "local address",
            detail: e.to_string(),
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "{sim} simulator stopped serving");
            }
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            tasks: vec![task],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Run `round` every `period` (the first at once; a slow round delays the next,
    /// missed ticks are not caught up) until the simulator stops.
    pub fn every<F, Fut>(&mut self, period: Duration, mut round: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                round().await;
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The faults in force: random shares ([`Faults`]) and a queue of forced ones.
#[derive(Debug, Default)]
pub struct FaultInjector {
    faults: Mutex<Faults>,
    forced: Mutex<VecDeque<Fault>>,
}

impl FaultInjector {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults: Mutex::new(faults),
            forced: Mutex::new(VecDeque::new()),
        }
    }
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }
    /// The next `n` requests that reach fault injection get `fault`, before any random one.
    pub fn force(&self, fault: Fault, n: usize) {
        let mut q = self.forced.lock().unwrap_or_else(|p| p.into_inner());
        q.extend(std::iter::repeat_n(fault, n));
    }
    /// Wait the configured latency (added to every request).
    pub async fn delay(&self) {
        let latency = self
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
    /// This request's fault: a forced one first, else a random pick.
    pub fn pick(&self) -> Fault {
        let forced = self
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        forced.unwrap_or_else(|| self.faults.lock().unwrap_or_else(|p| p.into_inner()).pick())
    }
}

/// [`Fault::Drop`] at both CAs: a response that promises more body than it sends, so
/// hyper aborts the connection mid-message and the client sees a reset (outcome unknown).
pub fn dropped() -> Response {
    let mut r = Response::new(Body::from("{"));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
    r
}

/// What the admin routes need from a simulator.
pub trait Admin: Send + Sync + 'static {
    fn request_log(&self) -> &RequestLog;
    /// Every order, as JSON.
    fn orders_json(&self) -> Vec<serde_json::Value>;
    /// Approve every e-mail name of a pending order (what the approver's click does).
    fn approve(&self, id: u64) -> Result<(), ApproveError>;
}

/// `GET /_sim/requests` (the request log), `GET /_sim/orders` (`{count, orders}`) and
/// `POST /_sim/approve/{id}` (204; 404 unknown order; 409 not pending; logged).
pub fn admin_routes<A: Admin>() -> Router<Arc<A>> {
    Router::new()
        .route("/_sim/requests", get(admin_requests::<A>))
        .route("/_sim/orders", get(admin_orders::<A>))
        .route("/_sim/approve/{id}", post(admin_approve::<A>))
}

async fn admin_requests<A: Admin>(State(sim): State<Arc<A>>) -> Response {
    Json(sim.request_log().entries()).into_response()
}

async fn admin_orders<A: Admin>(State(sim): State<Arc<A>>) -> Response {
    let orders = sim.orders_json();
    Json(serde_json::json!({ "count": orders.len(), "orders": orders })).into_response()
}

async fn admin_approve<A: Admin>(State(sim): State<Arc<A>>, Path(id): Path<u64>) -> Response {
    let (status, body) = match sim.approve(id) {
        Ok(()) => (StatusCode::NO_CONTENT, String::new()),
        Err(e @ ApproveError::NotFound(_)) => (StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ ApproveError::NotPending { .. }) => (StatusCode::CONFLICT, e.to_string()),
    };
    sim.request_log().record(
        "POST",
        "_sim/approve/{id}",
        &format!("/_sim/approve/{id}"),
        status.as_u16(),
    );
    (status, body).into_response()
}
