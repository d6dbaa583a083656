//! The simulated CertCentral order endpoints (read, list, cancel, download,
//! approver addresses): documented paths, bodies, status codes and error codes
//! (reference/digicert.md). The order POST lives in `create.rs`, DCV endpoints in `dcv.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;

use serde_json::{Value, json};

use super::render;
use super::schema;
use super::state::{Sim, SimOrder};

pub type S = State<Arc<Sim>>;

pub(super) const DV_PRODUCTS: &[&str] = &[
    "ssl_dv_geotrust",
    "ssl_dv_rapidssl",
    "wildcard_dv_geotrust",
    "wildcard_dv_rapidssl",
    "cloud_dv_geotrust",
    "ssl_dv_geotrust_flex",
];
pub(super) const TOKEN_METHODS: &[&str] = &["dns-txt-token", "dns-cname-token", "http-token"];

/// The constructed approver mailboxes (seed "Resend emails": admin@, administrator@,
/// webmaster@, hostmaster@, postmaster@).
const CONSTRUCTED: &[&str] = &[
    "admin",
    "administrator",
    "webmaster",
    "hostmaster",
    "postmaster",
];

/// DigiCert's documented error shape: `{"errors":[{"code","message"}]}`.
pub fn error(status: StatusCode, items: &[(&str, &str)]) -> Response {
    let errors: Vec<Value> = items
        .iter()
        .map(|(c, m)| json!({"code": c, "message": m}))
        .collect();
    (status, Json(json!({ "errors": errors }))).into_response()
}

pub(super) fn errors(status: StatusCode, items: &[(String, String)]) -> Response {
    let items: Vec<(&str, &str)> = items
        .iter()
        .map(|(c, m)| (c.as_str(), m.as_str()))
        .collect();
    error(status, &items)
}

pub(super) fn not_found_order() -> Response {
    error(
        StatusCode::NOT_FOUND,
        &[("not_found|order", "The specified order was not found.")],
    )
}

/// Read a body as JSON and check it against the documented fields.
pub(super) fn parse_body(body: &Bytes, fields: &[schema::Field]) -> Result<Value, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &[(
                "bad_request_format",
                &format!("The request body could not be read: {e}"),
            )],
        )
    })?;
    let problems = schema::check(&v, fields);
    if problems.is_empty() {
        Ok(v)
    } else {
        Err(errors(StatusCode::BAD_REQUEST, &problems))
    }
}

/// The `{id}` of an order path; a path whose id is not a number gets the same
/// `not_found|order` answer as an unknown order.
pub(super) struct OrderId(pub u64);

impl<St: Send + Sync> FromRequestParts<St> for OrderId {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Response> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found_order())?;
        raw.parse().map(OrderId).map_err(|_| not_found_order())
    }
}

/// Run `f` on order `id` under the orders lock; `not_found|order` when there is none.
pub(super) fn with_order<R: IntoResponse>(
    sim: &Sim,
    id: u64,
    f: impl FnOnce(&mut SimOrder) -> R,
) -> Response {
    match sim.lock().get_mut(&id) {
        Some(o) => f(o).into_response(),
        None => not_found_order(),
    }
}

pub(super) fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The registrable domain of a name (Public Suffix List, default rule for unlisted
/// suffixes): what `email_domain` "must match" (seed: "the dns_names base domain").
pub(super) fn base_domain(name: &str) -> String {
    let name = name.strip_prefix("*.").unwrap_or(name);
    psl::domain_str(name).unwrap_or(name).to_ascii_lowercase()
}

/// `GET /order/certificate/{id}`.
pub async fn get_order(State(sim): S, OrderId(id): OrderId) -> Response {
    with_order(&sim, id, |o| Json(render::order_info(o)))
}

/// `GET /order/certificate` with `filters[common_name]`, `filters[status]`,
/// `filters[date_created]=a...b`, `sort=[-]date_created`, `limit` (at most 1000),
/// `offset`. List items carry no `comments` and no CSR (`orders.json`).
pub async fn list(State(sim): S, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let cn = q
        .get("filters[common_name]")
        .map(|s| s.to_ascii_lowercase());
    let status = q.get("filters[status]");
    let range = q.get("filters[date_created]").and_then(|r| {
        let (a, b) = r.split_once("...")?;
        let d = |s: &str| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok();
        Some((d(a)?, d(b)?))
    });
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let offset: usize = q.get("offset").and_then(|l| l.parse().ok()).unwrap_or(0);
    let orders = sim.lock();
    let mut matching: Vec<&SimOrder> = orders
        .values()
        .filter(|o| cn.as_ref().is_none_or(|cn| o.names.first() == Some(cn)))
        .filter(|o| status.is_none_or(|s| *s == o.status))
        .filter(|o| {
            range.is_none_or(|(a, b)| {
                let d = o.date_created.date_naive();
                a <= d && d <= b
            })
        })
        .collect();
    matching.sort_by_key(|o| (o.date_created, o.id));
    if q.get("sort").is_none_or(|s| s.starts_with('-')) {
        matching.reverse();
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(render::list_item)
        .collect();
    Json(json!({
        "orders": page,
        "page": {"total": total, "limit": limit, "offset": offset}
    }))
    .into_response()
}

/// `PUT …/status` (cancel).
pub async fn update_status(State(sim): S, OrderId(id): OrderId, body: Bytes) -> Response {
    let req = match parse_body(&body, schema::STATUS) {
        Ok(r) => r,
        Err(r) => return r,
    };
    with_order(&sim, id, |o| {
        if str_of(&req, "status") != Some("canceled") {
            return error(
                StatusCode::BAD_REQUEST,
                &[("invalid_status", "Only `canceled` is supported.")],
            );
        }
        // reference/digicert.md §1: "allowed only when `pending` or `waiting_pickup` (or
        // `reissue_pending` to cancel a reissue)"; anything else (issued, needs_approval,
        // already canceled, ...) is refused. The documents give no error code or HTTP
        // status for the refusal: 400 `invalid_order_status` with the docs' sentence is
        // this simulator's choice (the shape of every other CertCentral 400), and a
        // second cancel of a canceled order is refused too, the answer hardest for a
        // client that may repeat its cancel after a crash.
        if !matches!(
            o.status.as_str(),
            "pending" | "waiting_pickup" | "reissue_pending"
        ) {
            return error(
                StatusCode::BAD_REQUEST,
                &[(
                    "invalid_order_status",
                    "Only pending orders can be canceled.",
                )],
            );
        }
        o.status = "canceled".into();
        StatusCode::NO_CONTENT.into_response()
    })
}

/// `GET /domain/{fqdn}/dcv/emails`: constructed addresses at the base domain.
pub async fn domain_emails(Path(fqdn): Path<String>) -> Response {
    let fqdn = fqdn.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = fqdn.split('.').collect();
    if labels.len() < 2 {
        return error(
            StatusCode::NOT_FOUND,
            &[("not_found|domain", "The specified domain was not found.")],
        );
    }
    let scope = base_domain(&fqdn);
    let base: Vec<String> = CONSTRUCTED.iter().map(|m| format!("{m}@{scope}")).collect();
    // reference/digicert.md §1 shape; a list with nothing in it comes as `null`
    // (the docs do not say it cannot).
    Json(json!({
        "name_scope": scope,
        "base_emails": base,
        "whois_emails": [],
        "dns_txt_emails": null
    }))
    .into_response()
}

/// `GET /certificate/{id}/download/format/{format}`.
/// The docs do not say how `Accept` is handled here; the answer hardest for a client is
/// taken: `Accept: application/json` alone (no PEM type, no wildcard) is refused with
/// 406, since the body is `application/x-pem-file`. Blocks end in CRLF.
pub async fn download(
    State(sim): S,
    Path((cid, format)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
        .to_ascii_lowercase();
    if !accept.contains("*/*")
        && !accept.contains("application/x-pem-file")
        && !accept.contains("application/*")
    {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            &[(
                "invalid_accept",
                "pem_all is served as application/x-pem-file.",
            )],
        );
    }
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            &[(
                "not_found|certificate",
                "The specified certificate was not found.",
            )],
        )
    };
    let Ok(cid) = cid.parse::<u64>() else {
        return not_found();
    };
    let orders = sim.lock();
    let Some(o) = orders.values().find(|o| o.certificate_id == cid) else {
        return not_found();
    };
    let Some(leaf) = &o.leaf_pem else {
        return not_found();
    };
    let blocks: Vec<&String> = match format.as_str() {
        "pem_all" => std::iter::once(leaf).chain(o.chain_pem.iter()).collect(),
        "pem_noroot" => std::iter::once(leaf)
            .chain(o.chain_pem.iter().take(1))
            .collect(),
        "pem_nointermediate" => vec![leaf],
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &[("invalid_format", "Unsupported format.")],
            );
        }
    };
    let body: String = blocks
        .into_iter()
        .map(|b| b.replace("\r\n", "\n").replace('\n', "\r\n"))
        .collect();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], body).into_response()
}
