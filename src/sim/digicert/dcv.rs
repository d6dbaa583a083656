//! The simulated CertCentral DCV endpoints of an order: random value, method change,
//! check-dcv (real token lookups) and resend-emails.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::api::{S, TOKEN_METHODS, error, not_found_order, order_id, parse_body};
use super::state::random_value;
use crate::provider::digicert::wire::*;

/// `PUT …/dcv-random-value`: the current value, or a new one once it expired.
pub async fn dcv_random_value(State(sim): S, Path(id): Path<String>) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    let lifetime = sim.lifetime();
    let mut orders = sim.lock();
    let Some(o) = orders.get_mut(&id) else {
        return not_found_order();
    };
    if !TOKEN_METHODS.contains(&o.dcv_method.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "invalid_dcv_method",
                "The order's DCV method does not use a random value.",
            )],
        );
    }
    if o.random_value_expires <= sim.now() {
        o.random_value = random_value();
        o.random_value_expires = sim.now() + lifetime;
    }
    Json(RandomValue {
        dcv_random_value: o.random_value.clone(),
        expiration_date: Some(o.expiration()),
    })
    .into_response()
}

/// `PUT …/dcv-method`.
pub async fn dcv_method(State(sim): S, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    let req: DcvMethodChange = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let lifetime = sim.lifetime();
    let mut orders = sim.lock();
    let Some(o) = orders.get_mut(&id) else {
        return not_found_order();
    };
    let m = req.dcv_method.as_str();
    if !TOKEN_METHODS.contains(&m) && m != "email" {
        return error(
            StatusCode::BAD_REQUEST,
            &[("invalid_dcv_method", "Unknown DCV method.")],
        );
    }
    if m == "http-token" && o.is_wildcard() {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "invalid_wildcard_dcv_method",
                "Wildcard domains cannot be validated with http-token.",
            )],
        );
    }
    if o.status != "pending" {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "invalid_order_status",
                "Only pending orders can change their DCV method.",
            )],
        );
    }
    o.dcv_method = m.to_string();
    o.method_changes += 1;
    o.random_value = random_value();
    o.random_value_expires = sim.now() + lifetime;
    if m == "email" {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(RandomValue {
        dcv_random_value: o.random_value.clone(),
        expiration_date: Some(o.expiration()),
    })
    .into_response()
}

/// `PUT …/check-dcv`: looks the tokens up now.
pub async fn check_dcv(State(sim): S, Path(id): Path<String>) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    let (method, status) = match sim.lock().get(&id) {
        Some(o) => (o.dcv_method.clone(), o.status.clone()),
        None => return not_found_order(),
    };
    if method == "email" {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "invalid_dcv_method",
                "check-dcv is only for dns-txt-token, dns-cname-token and http-token orders.",
            )],
        );
    }
    if status != "pending" && status != "issued" {
        return error(
            StatusCode::BAD_REQUEST,
            &[("invalid_order_status", "The order is not pending.")],
        );
    }
    let Some(result) = sim.validate(id).await else {
        return not_found_order();
    };
    let all = result.iter().all(|(_, ok)| *ok);
    if method == "http-token" && !all {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "file_random_value_not_found",
                "The random value was not found at the expected location for one or more domains.",
            )],
        );
    }
    let (order_status, certificate_id) = match sim.lock().get(&id) {
        Some(o) => (o.status.clone(), o.certificate_id),
        None => return not_found_order(),
    };
    Json(CheckDcv {
        order_status,
        certificate_id: Some(certificate_id),
        dcv_status: if all { "valid" } else { "pending" }.into(),
        dns_name_validations: result
            .into_iter()
            .map(|(n, ok)| NameValidation {
                dns_name: n,
                status: if ok { "approved" } else { "pending" }.into(),
            })
            .collect(),
    })
    .into_response()
}

/// `PUT …/resend-emails`.
pub async fn resend_emails(State(sim): S, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(id) = order_id(&id) else {
        return not_found_order();
    };
    let req: ResendEmails = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut orders = sim.lock();
    let Some(o) = orders.get_mut(&id) else {
        return not_found_order();
    };
    if o.dcv_method != "email" || o.status != "pending" {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "invalid_dcv_method",
                "Emails can be resent only for pending orders using email DCV.",
            )],
        );
    }
    for a in &req.domain_approval_emails {
        let scope = a.email_domain.as_deref().unwrap_or(&a.domain);
        let on_order = o
            .names
            .iter()
            .any(|n| n.strip_prefix("*.").unwrap_or(n) == a.domain);
        let below = a.domain == scope || a.domain.ends_with(&format!(".{scope}"));
        if !on_order || !below || !a.email.contains('@') {
            return error(
                StatusCode::BAD_REQUEST,
                &[(
                    "invalid_email",
                    &format!("`{}` cannot approve `{}`.", a.email, a.domain),
                )],
            );
        }
    }
    o.resent_emails.push(req);
    StatusCode::NO_CONTENT.into_response()
}
