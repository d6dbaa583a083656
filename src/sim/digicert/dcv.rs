//! The simulated CertCentral DCV endpoints of an order: random value, method change,
//! check-dcv (real token lookups) and resend-emails.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use serde_json::{Value, json};

use super::api::{
    OrderId, S, TOKEN_METHODS, base_domain, error, not_found_order, parse_body, str_of, with_order,
};
use super::render;
use super::schema::{self, DCV_METHODS, LOCALES};
use super::state::{SimApprovalEmail, SimResend, random_value};

/// `PUT …/dcv-random-value`: the current value, or a new one once it expired.
pub async fn dcv_random_value(State(sim): S, OrderId(id): OrderId) -> Response {
    let lifetime = sim.lifetime();
    with_order(&sim, id, |o| {
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
        Json(render::random_value(o)).into_response()
    })
}

/// `PUT …/dcv-method`.
pub async fn dcv_method(State(sim): S, OrderId(id): OrderId, body: Bytes) -> Response {
    let req = match parse_body(&body, schema::DCV_METHOD) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let lifetime = sim.lifetime();
    with_order(&sim, id, |o| {
        let m = str_of(&req, "dcv_method").unwrap_or_default();
        if !DCV_METHODS.contains(&m) {
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
            // Seed: "// empty".
            return StatusCode::NO_CONTENT.into_response();
        }
        Json(render::random_value(o)).into_response()
    })
}

/// `PUT …/check-dcv`: looks the tokens up now.
pub async fn check_dcv(State(sim): S, OrderId(id): OrderId) -> Response {
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
    if !all {
        // "Not found yet" as reference/digicert.md §1 documents it: 400 `invalid_dns_txt`
        // (TXT) and `file_random_value_not_found` (HTTP). For CNAME the docs name no
        // code; the simulator answers one the docs never mention, the hardest case for
        // a client that matches a fixed list.
        let (code, msg) = match method.as_str() {
            "http-token" => (
                "file_random_value_not_found",
                "The random value was not found at the expected location for one or more domains.",
            ),
            "dns-txt-token" => (
                "invalid_dns_txt",
                "The DNS TXT record was not found or does not hold the random value.",
            ),
            _ => (
                "dcv_cname_not_found",
                "The DNS CNAME record was not found or does not point to the expected target.",
            ),
        };
        return error(StatusCode::BAD_REQUEST, &[(code, msg)]);
    }
    let (order_status, certificate_id) = match sim.lock().get(&id) {
        Some(o) => (o.status.clone(), o.certificate_id),
        None => return not_found_order(),
    };
    let validations: Vec<Value> = result
        .into_iter()
        .map(|(n, ok)| json!({"dns_name": n, "status": if ok { "approved" } else { "pending" }}))
        .collect();
    Json(json!({
        "order_status": order_status,
        "certificate_id": certificate_id,
        "dcv_status": "valid",
        "dns_name_validations": validations
    }))
    .into_response()
}

/// `PUT …/resend-emails`.
pub async fn resend_emails(State(sim): S, OrderId(id): OrderId, body: Bytes) -> Response {
    let req = match parse_body(&body, schema::RESEND) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let emails: Vec<SimApprovalEmail> = req
        .get("domain_approval_emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| SimApprovalEmail {
            domain: str_of(a, "domain").unwrap_or_default().to_ascii_lowercase(),
            email: str_of(a, "email").unwrap_or_default().to_string(),
            email_domain: str_of(a, "email_domain").map(str::to_ascii_lowercase),
        })
        .collect();
    if emails.is_empty() {
        // Neither resend page describes an empty (or absent) list; refused, the answer
        // hardest for a client that sends one.
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "missing_field|domain_approval_emails",
                "At least one domain approval email is required.",
            )],
        );
    }
    let locale = str_of(&req, "locale").map(str::to_string);
    if let Some(l) = &locale
        && !LOCALES.contains(&l.as_str())
    {
        return error(
            StatusCode::BAD_REQUEST,
            &[(
                "invalid_value:locale",
                "Not a locale code (see Glossary - Locale codes).",
            )],
        );
    }
    with_order(&sim, id, |o| {
        // Neither resend page says what happens for a token or non-pending order; refused
        // (the harder answer for a client that resends blindly).
        if o.dcv_method != "email" || o.status != "pending" {
            return error(
                StatusCode::BAD_REQUEST,
                &[(
                    "invalid_dcv_method",
                    "Emails can be resent only for pending orders using email DCV.",
                )],
            );
        }
        for a in &emails {
            // `email_domain`: "the base domain to use when verifying DCV email addresses".
            if a.email_domain
                .as_deref()
                .is_some_and(|d| d != base_domain(&a.domain) && d != a.domain)
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    &[(
                        "invalid_value:email_domain",
                        &format!(
                            "`{}` is not the base domain of `{}`.",
                            a.email_domain.as_deref().unwrap_or_default(),
                            a.domain
                        ),
                    )],
                );
            }
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
        o.resent_emails.push(SimResend {
            domain_approval_emails: emails,
            locale,
        });
        StatusCode::NO_CONTENT.into_response()
    })
}
