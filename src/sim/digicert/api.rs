//! The simulated CertCentral order endpoints (place, read, list, cancel, download,
//! approver addresses): documented paths, bodies, status codes and error codes
//! (reference/digicert.md). DCV endpoints live in `dcv.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rustls::pki_types::CertificateSigningRequestDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::FromDer;

use serde_json::{Value, json};

use super::render;
use super::schema::{self, DCV_METHODS, LOCALES};
use super::state::{Sim, SimDcvEmail, SimOrder, random_value};

pub type S = State<Arc<Sim>>;

const DV_PRODUCTS: &[&str] = &[
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

fn errors(status: StatusCode, items: &[(String, String)]) -> Response {
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

pub(super) fn order_id(raw: &str) -> Result<u64, Response> {
    raw.parse().map_err(|_| not_found_order())
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

/// Validity the body asks for, in days, or the refusal. `custom_expiration_date`
/// overrides `validity_days`, which overrides `validity_years` (seed). Every form is
/// refused (400 `invalid_value:<unit>`, the code DigiCert documents for a validity it
/// does not allow) above the public TLS maximum in force on the simulator's date.
fn validity(sim: &Sim, req: &Value, e: &mut Vec<(String, String)>) -> u32 {
    let today = sim.now().date_naive();
    let max = crate::model::public_tls_max_validity_days(today);
    let mut refuse = |unit: &str, why: String| {
        e.push((format!("invalid_value:{unit}"), why));
        max
    };
    let custom = str_of(req, "custom_expiration_date").filter(|s| !s.is_empty());
    if let Some(date) = custom {
        let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
            return refuse(
                "custom_expiration_date",
                format!("`{date}` is not a date in the format yyyy-MM-dd."),
            );
        };
        let days = (d - today).num_days();
        if days <= 0 || days > i64::from(max) || days >= 825 {
            return refuse(
                "custom_expiration_date",
                format!(
                    "{date} is more than the maximum validity of {max} days from today, or not in the future."
                ),
            );
        }
        return days as u32;
    }
    if let Some(d) = req.get("validity_days").and_then(Value::as_i64) {
        if d <= 0 || d > i64::from(max) {
            return refuse(
                "validity_days",
                format!("A validity of {d} days is not allowed; the maximum is {max} days."),
            );
        }
        return d as u32;
    }
    match req.get("validity_years").and_then(Value::as_i64) {
        Some(y) if !(1..=2).contains(&y) => refuse(
            "validity_years",
            format!("Validity of {y} years is not allowed; allowed values: 1, 2."),
        ),
        Some(y) if y * 365 > i64::from(max) => refuse(
            "validity_years",
            format!(
                "A validity of {y} years exceeds the maximum of {max} days; use validity_days."
            ),
        ),
        Some(y) => (y * 365) as u32,
        None => {
            e.push((
                "missing_field|validity_years".into(),
                "Validity is required.".into(),
            ));
            max
        }
    }
}

/// `POST /order/certificate/{product}`. Checked at once; with `create_delay` the order
/// is then created by a task that outlives the client's connection.
pub async fn create(State(sim): S, Path(product): Path<String>, body: Bytes) -> Response {
    let req = match parse_body(&body, schema::ORDER) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !DV_PRODUCTS.contains(&product.as_str()) {
        return error(
            StatusCode::NOT_FOUND,
            &[("not_found|product", "The specified product was not found.")],
        );
    }
    let mut errs: Vec<(String, String)> = Vec::new();
    let cert = &req["certificate"];
    let common_name = str_of(cert, "common_name").unwrap_or_default();
    if common_name.trim().is_empty() {
        errs.push((
            "missing_field|certificate.common_name".into(),
            "Common name is required.".into(),
        ));
    }
    let csr = str_of(cert, "csr").unwrap_or_default();
    let csr_der = if csr.trim().is_empty() {
        errs.push((
            "missing_field|certificate.csr".into(),
            "CSR is required.".into(),
        ));
        None
    } else {
        let der = CertificateSigningRequestDer::from_pem_slice(csr.as_bytes()).ok();
        let parses = der.as_ref().is_some_and(|d| {
            x509_parser::certification_request::X509CertificationRequest::from_der(d.as_ref())
                .is_ok()
        });
        if !parses {
            errs.push((
                "csr_invalid_cannot_parse".into(),
                "The CSR could not be parsed.".into(),
            ));
        }
        der.map(|d| d.as_ref().to_vec())
    };
    let validity_days = validity(&sim, &req, &mut errs);
    let method = str_of(&req, "dcv_method").unwrap_or_default().to_string();
    let mut names: Vec<String> = Vec::new();
    let listed = cert
        .get("dns_names")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for n in std::iter::once(common_name).chain(listed.iter().filter_map(Value::as_str)) {
        let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    if method.is_empty() {
        errs.push((
            "missing_field|dcv_method".into(),
            "DCV method is required.".into(),
        ));
    } else if !DCV_METHODS.contains(&method.as_str()) {
        errs.push((
            "invalid_dcv_method".into(),
            format!("`{method}` is not a DCV method."),
        ));
    } else if method == "http-token" && names.iter().any(|n| n.starts_with("*.")) {
        errs.push((
            "invalid_wildcard_dcv_method".into(),
            "Wildcard domains cannot be validated with http-token.".into(),
        ));
    }
    if let Some(l) = str_of(&req, "locale")
        && !LOCALES.contains(&l)
    {
        errs.push((
            "invalid_value:locale".into(),
            format!("`{l}` is not a locale code (see Glossary - Locale codes)."),
        ));
    }
    if let Some(y) = req.get("auto_renew").and_then(Value::as_i64)
        && !(0..=1).contains(&y)
    {
        errs.push((
            "invalid_value:auto_renew".into(),
            "Allowed values: 0, 1.".into(),
        ));
    }
    if let Some(pm) = str_of(&req, "payment_method")
        && !["balance", "card", "profile"].contains(&pm)
    {
        errs.push((
            "invalid_value:payment_method".into(),
            "Allowed values: balance, card, profile.".into(),
        ));
    }
    let mut dcv_emails = Vec::new();
    for (i, d) in req
        .get("dcv_emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let dns_name = str_of(d, "dns_name")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let email_domain = str_of(d, "email_domain")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let email = str_of(d, "email").map(str::to_string);
        if !names.contains(&dns_name) {
            errs.push((
                format!("invalid_value:dcv_emails[{i}].dns_name"),
                format!("`{dns_name}` is not a DNS name on the certificate."),
            ));
        } else if email_domain != base_domain(&dns_name) {
            errs.push((
                format!("invalid_value:dcv_emails[{i}].email_domain"),
                format!(
                    "`{email_domain}` does not match the base domain of `{dns_name}` ({}).",
                    base_domain(&dns_name)
                ),
            ));
        }
        if email.as_deref().is_some_and(|e| !e.contains('@')) {
            errs.push((
                format!("invalid_value:dcv_emails[{i}].email"),
                "Not an email address.".into(),
            ));
        }
        dcv_emails.push(SimDcvEmail {
            dns_name,
            email_domain,
            email,
        });
    }
    if !errs.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &errs);
    }
    let make = {
        let sim = sim.clone();
        move || {
            let id = sim
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let order = SimOrder {
                id,
                certificate_id: 500_000 + id,
                product,
                names,
                csr_der: csr_der.unwrap_or_default(),
                request: req.clone(),
                hide_csr: false,
                validity_days,
                status: "pending".into(),
                dcv_method: method,
                random_value: random_value(),
                random_value_expires: sim.now() + sim.lifetime(),
                validated: Default::default(),
                comments: str_of(&req, "comments").map(str::to_string),
                date_created: sim.now(),
                renewal_of_order_id: req.get("renewal_of_order_id").and_then(Value::as_u64),
                dcv_emails,
                locale: str_of(&req, "locale").map(str::to_string),
                resent_emails: Vec::new(),
                method_changes: 0,
                leaf_pem: None,
                chain_pem: Vec::new(),
            };
            let body = render::created(&order);
            sim.lock().insert(id, order);
            body
        }
    };
    let delay = sim.opts.create_delay;
    let created = if delay.is_zero() {
        make()
    } else {
        // The CA goes on with the order whether or not the client still waits.
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            make()
        });
        match task.await {
            Ok(v) => v,
            Err(_) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &[("internal_error", "An internal error occurred.")],
                );
            }
        }
    };
    (StatusCode::CREATED, Json(created)).into_response()
}

/// `GET /order/certificate/{id}`.
pub async fn get_order(State(sim): S, Path(id): Path<String>) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    match sim.lock().get(&id) {
        Some(o) => Json(render::order_info(o)).into_response(),
        None => not_found_order(),
    }
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
pub async fn update_status(State(sim): S, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    let req = match parse_body(&body, schema::STATUS) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut orders = sim.lock();
    let Some(o) = orders.get_mut(&id) else {
        return not_found_order();
    };
    if str_of(&req, "status") != Some("canceled") {
        return error(
            StatusCode::BAD_REQUEST,
            &[("invalid_status", "Only `canceled` is supported.")],
        );
    }
    if !matches!(
        o.status.as_str(),
        "pending" | "waiting_pickup" | "needs_approval" | "reissue_pending"
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
