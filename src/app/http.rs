//! The daemon's HTTP endpoint (`daemon.listen`): `/metrics` (Prometheus text format),
//! `/healthz` (process alive), `/readyz` (migrations done, scheduler running, database
//! writable) and the read-only `/api/v1/certificates` and `/api/v1/orders` JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::lifecycle::engine::Engine;

#[derive(Clone)]
pub struct HttpState {
    pub engine: Arc<Engine>,
    /// Set once the scheduler loop is running.
    pub scheduler_running: Arc<AtomicBool>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/certificates", get(certificates))
        .route("/api/v1/orders", get(orders))
        .route("/api/v1/orders/{id}", get(order))
        .with_state(state)
}

/// Refresh the gauges that mirror the database, then encode everything.
pub async fn render_metrics(engine: &Engine) -> String {
    let m = &engine.ctx.metrics;
    if let Ok(counts) = engine.store().order_counts().await {
        m.orders.clear();
        for (provider, state, n) in counts {
            m.orders
                .get_or_create(&crate::metrics::OrderLabels { provider, state })
                .set(n);
        }
    }
    if let Ok(waiting) = engine.store().awaiting_operator().await {
        // Every configured provider gets a sample (0 when none wait), so an alert can
        // tell "none" from "no data".
        m.awaiting_operator.clear();
        for p in engine.services().config.providers.keys() {
            m.awaiting_operator
                .get_or_create(&crate::metrics::ProviderLabels {
                    provider: p.clone(),
                })
                .set(0);
        }
        for (provider, n) in waiting {
            m.awaiting_operator
                .get_or_create(&crate::metrics::ProviderLabels { provider })
                .set(n);
        }
    }
    let store = engine.store();
    let certs = store.certificates().await;
    let damaged = [
        ("orders", store.damaged_orders().await.map(|d| d.len()).ok()),
        (
            "cleanup_journal",
            store.damaged_journal().await.map(|d| d.len()).ok(),
        ),
        (
            "certificates",
            certs
                .as_ref()
                .ok()
                .map(|c| c.iter().filter(|c| c.damaged.is_some()).count()),
        ),
    ];
    for (table, n) in damaged {
        // A table that cannot be read keeps its last sample rather than claiming 0.
        if let Some(n) = n {
            m.damaged_rows
                .get_or_create(&crate::metrics::TableLabels {
                    table: table.into(),
                })
                .set(n as i64);
        }
    }
    if let Ok(certs) = certs {
        m.certificate_expiry.clear();
        for c in certs {
            if let Some(t) = c.not_after {
                m.certificate_expiry
                    .get_or_create(&crate::metrics::CertLabels {
                        certificate: c.name,
                    })
                    .set(t.timestamp());
            }
        }
    }
    m.encode()
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let body = render_metrics(&s.engine).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn readyz(State(s): State<HttpState>) -> Response {
    let scheduler = s.scheduler_running.load(Ordering::SeqCst);
    let writable = s.engine.store().writable().await;
    if scheduler && writable {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = match (scheduler, writable) {
            (false, _) => "scheduler not running",
            _ => "database not writable",
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response()
    }
}

/// The certificate inventory, as `dcvd certificates --json` prints it.
async fn certificates(State(s): State<HttpState>) -> Response {
    let store = s.engine.store();
    let read = async {
        Ok::<_, crate::store::StoreError>((
            store.certificates().await?,
            store.order_overview().await?,
        ))
    };
    match read.await {
        Ok((records, overview)) => {
            let now = s.engine.ctx.clock.now();
            let services = s.engine.services();
            Json(crate::lifecycle::inventory::inventory(
                &services.config,
                records,
                &overview,
                now,
            ))
            .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn orders(State(s): State<HttpState>) -> Response {
    match s.engine.store().list_orders(None).await {
        Ok(o) => Json(o).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn order(State(s): State<HttpState>, Path(id): Path<i64>) -> Response {
    match s.engine.store().load_order(id).await {
        Ok((o, authz)) => Json(serde_json::json!({
            "id": o.id,
            "certificate": o.certificate,
            "provider": o.provider,
            "state": o.state,
            "ca_order_id": o.ca_order_id,
            "failure_reason": o.failure_reason,
            "last_error": o.last_error,
            "unsure_reason": o.unsure_reason,
            "unsure_candidates": o.unsure_candidates,
            "names": o.names,
            "authorizations": authz,
        }))
        .into_response(),
        Err(crate::store::StoreError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, "no such order\n").into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
