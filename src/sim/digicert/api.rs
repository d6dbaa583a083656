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
use chrono::{DateTime, NaiveDate, Utc};
use rustls::pki_types::CertificateSigningRequestDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::FromDer;

use super::state::{Sim, SimOrder, random_value};
use crate::provider::CONSTRUCTED_MAILBOXES;
use crate::provider::digicert::wire::*;

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

pub fn error(status: StatusCode, items: &[(&str, &str)]) -> Response {
    let body = ErrorBody {
        errors: Errors::Many(
            items
                .iter()
                .map(|(c, m)| ErrorItem {
                    code: c.to_string(),
                    message: m.to_string(),
                })
                .collect(),
        ),
    };
    (status, Json(body)).into_response()
}

pub(super) fn not_found_order() -> Response {
    error(
        StatusCode::NOT_FOUND,
        &[("not_found|order", "The specified order was not found.")],
    )
}

pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &[(
                "bad_request_format",
                &format!("The request body could not be read: {e}"),
            )],
        )
    })
}

pub(super) fn order_id(raw: &str) -> Result<u64, Response> {
    raw.parse().map_err(|_| not_found_order())
}

fn info(o: &SimOrder, now: DateTime<Utc>) -> OrderInfo {
    let issued = o.status == "issued";
    OrderInfo {
        id: o.id,
        status: o.status.clone(),
        certificate: CertificateInfo {
            id: Some(o.certificate_id),
            common_name: o.names.first().cloned().unwrap_or_default(),
            dns_names: o.names.clone(),
            date_created: Some(o.date_created.to_rfc3339()),
            valid_from: issued.then(|| now.format("%Y-%m-%d").to_string()),
            valid_till: None,
            serial_number: None,
        },
        date_created: Some(o.date_created.to_rfc3339()),
        comments: o.comments.clone(),
        dcv_method: Some(o.dcv_method.clone()),
        product: Some(ProductRef {
            name_id: o.product.clone(),
        }),
        dns_name_validations: Vec::new(),
    }
}

/// `POST /order/certificate/{product}`.
pub async fn create(State(sim): S, Path(product): Path<String>, body: Bytes) -> Response {
    let req: OrderRequest = match parse_body(&body) {
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
    let mut e = |c: &str, m: String| errs.push((c.to_string(), m));
    let cert = &req.certificate;
    if cert.common_name.trim().is_empty() {
        e(
            "missing_field|certificate.common_name",
            "Common name is required.".into(),
        );
    }
    let csr_der = if cert.csr.trim().is_empty() {
        e("missing_field|certificate.csr", "CSR is required.".into());
        None
    } else {
        let der = CertificateSigningRequestDer::from_pem_slice(cert.csr.as_bytes()).ok();
        let parses = der.as_ref().is_some_and(|d| {
            x509_parser::certification_request::X509CertificationRequest::from_der(d.as_ref())
                .is_ok()
        });
        if !parses {
            e(
                "csr_invalid_cannot_parse",
                "The CSR could not be parsed.".into(),
            );
        }
        der.map(|d| d.as_ref().to_vec())
    };
    if req.validity_years.is_none()
        && req.validity_days.is_none()
        && req.custom_expiration_date.is_none()
    {
        e(
            "missing_field|validity_years",
            "Validity is required.".into(),
        );
    }
    if let Some(y) = req.validity_years
        && !(1..=2).contains(&y)
    {
        e(
            "invalid_validity_years",
            format!("Validity of {y} years is not allowed."),
        );
    }
    let method = req.dcv_method.clone().unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for n in std::iter::once(&cert.common_name).chain(cert.dns_names.iter()) {
        let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    if method.is_empty() {
        e("missing_field|dcv_method", "DCV method is required.".into());
    } else if !TOKEN_METHODS.contains(&method.as_str()) && method != "email" {
        e(
            "invalid_dcv_method",
            format!("`{method}` is not a DCV method."),
        );
    } else if method == "http-token" && names.iter().any(|n| n.starts_with("*.")) {
        e(
            "invalid_wildcard_dcv_method",
            "Wildcard domains cannot be validated with http-token.".into(),
        );
    }
    if !errs.is_empty() {
        let items: Vec<(&str, &str)> = errs.iter().map(|(c, m)| (c.as_str(), m.as_str())).collect();
        return error(StatusCode::BAD_REQUEST, &items);
    }
    let mut orders = sim.lock();
    let id = 100_000 + orders.len() as u64 + 1;
    let order = SimOrder {
        id,
        certificate_id: 500_000 + id,
        product,
        names,
        csr_der: csr_der.unwrap_or_default(),
        status: "pending".into(),
        dcv_method: method.clone(),
        random_value: random_value(),
        random_value_expires: sim.now() + sim.lifetime(),
        validated: Default::default(),
        comments: req.comments.clone(),
        date_created: sim.now(),
        renewal_of_order_id: req.renewal_of_order_id,
        dcv_emails: req.dcv_emails.clone(),
        locale: req.locale.clone(),
        resent_emails: Vec::new(),
        method_changes: 0,
        leaf_pem: None,
        chain_pem: Vec::new(),
    };
    let created = OrderCreated {
        id,
        certificate_id: Some(order.certificate_id),
        requests: vec![RequestRef {
            id: 900_000 + id,
            status: "approved".into(),
        }],
        dcv_random_value: TOKEN_METHODS
            .contains(&method.as_str())
            .then(|| order.random_value.clone()),
        certificate_chain: None,
    };
    orders.insert(id, order);
    (StatusCode::CREATED, Json(created)).into_response()
}

/// `GET /order/certificate/{id}`.
pub async fn get_order(State(sim): S, Path(id): Path<String>) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    match sim.lock().get(&id) {
        Some(o) => Json(info(o, sim.now())).into_response(),
        None => not_found_order(),
    }
}

/// `GET /order/certificate` with `filters[common_name]`, `filters[status]`,
/// `filters[date_created]=a...b`,
/// `sort=-date_created`, `limit`, `offset`. List items carry no `comments` (as observed).
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
    let mut matching: Vec<OrderInfo> = orders
        .values()
        .filter(|o| cn.as_ref().is_none_or(|cn| o.names.first() == Some(cn)))
        .filter(|o| status.is_none_or(|s| *s == o.status))
        .filter(|o| {
            range.is_none_or(|(a, b)| {
                let d = o.date_created.date_naive();
                a <= d && d <= b
            })
        })
        .map(|o| OrderInfo {
            comments: None,
            ..info(o, sim.now())
        })
        .collect();
    let desc = q.get("sort").is_none_or(|s| s.starts_with('-'));
    if desc {
        matching.reverse();
    }
    let total = matching.len() as u64;
    let page: Vec<OrderInfo> = matching.into_iter().skip(offset).take(limit).collect();
    Json(OrderList {
        orders: page,
        page: Some(Page {
            total,
            limit: limit as u64,
            offset: offset as u64,
        }),
    })
    .into_response()
}

/// `PUT …/status` (cancel).
pub async fn update_status(State(sim): S, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    let req: StatusChange = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut orders = sim.lock();
    let Some(o) = orders.get_mut(&id) else {
        return not_found_order();
    };
    if req.status != "canceled" {
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
    let scope = labels[labels.len() - 2..].join(".");
    Json(DcvEmails {
        base_emails: CONSTRUCTED_MAILBOXES
            .iter()
            .map(|m| format!("{m}@{scope}"))
            .collect(),
        name_scope: scope,
        whois_emails: Vec::new(),
        dns_txt_emails: Vec::new(),
    })
    .into_response()
}

/// `GET /certificate/{id}/download/format/{format}`.
pub async fn download(State(sim): S, Path((cid, format)): Path<(String, String)>) -> Response {
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
    let body: String = blocks.into_iter().map(String::as_str).collect();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], body).into_response()
}
