//! The simulated order POST: every documented check of "Order DV SSL" (seed) on the raw
//! body, then the order, created at once or by a task after `create_delay`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rustls::pki_types::CertificateSigningRequestDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use x509_parser::prelude::FromDer;

use super::api::{DV_PRODUCTS, S, base_domain, error, errors, parse_body, str_of};
use super::render;
use super::schema::{self, DCV_METHODS, LOCALES};
use super::state::{Sim, SimDcvEmail, SimOrder, random_value};

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
