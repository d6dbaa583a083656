//! Response bodies in the shapes of the recorded CertCentral payloads
//! (`shared/fixtures/digicert`): extra fields, `null`s, ids as numbers, CRLF PEM.
//! GET order info carries `comments` only inside `requests[]` and the CSR as
//! `certificate.csr`, as `order.json` does; list items carry neither (`orders.json`).

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::state::SimOrder;

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// A CSR as PEM with CRLF line ends and 64-column lines, however it was sent.
pub fn csr_pem_crlf(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE REQUEST-----\r\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out.push_str("-----END CERTIFICATE REQUEST-----\r\n");
    out
}

fn product(name_id: &str) -> Value {
    json!({
        "name_id": name_id,
        "name": name_id.replace('_', " "),
        "type": "dv_ssl_certificate",
        "validation_type": "dv",
        "validation_name": "DV",
        "validation_description": "Domain Validation"
    })
}

/// The 201 of `POST /order/certificate/{product}` (seed "Order DV SSL";
/// `order_created.json`): `dcv_random_value` only for dns-txt-token and http-token.
pub fn created(o: &SimOrder) -> Value {
    let mut v = json!({
        "id": o.id,
        "certificate_id": o.certificate_id,
        "requests": [{"id": request_id(o), "status": "pending"}]
    });
    if matches!(o.dcv_method.as_str(), "dns-txt-token" | "http-token") {
        v["dcv_random_value"] = json!(o.random_value);
    }
    v
}

fn request_id(o: &SimOrder) -> u64 {
    900_000 + o.id
}

/// `GET /order/certificate/{id}` in the shape of `order.json`.
pub fn order_info(o: &SimOrder) -> Value {
    let issued = o.status == "issued";
    let valid_till = issued.then(|| {
        (o.date_created + chrono::Duration::days(i64::from(o.validity_days)))
            .format("%Y-%m-%d")
            .to_string()
    });
    json!({
        "id": o.id,
        "certificate": {
            "id": o.certificate_id,
            "thumbprint": issued.then(|| format!("{:040X}", o.certificate_id)),
            "serial_number": issued.then(|| format!("{:032X}", o.certificate_id)),
            "common_name": o.names.first(),
            "dns_names": o.names,
            "date_created": time(o.date_created),
            "valid_from": issued.then(|| o.date_created.format("%Y-%m-%d").to_string()),
            "valid_till": valid_till,
            "csr": (!o.hide_csr).then(|| csr_pem_crlf(&o.csr_der)),
            "organization": {"id": null},
            "organization_units": null,
            "server_platform": {"id": -1, "name": "OTHER", "install_url": null, "csr_url": null},
            "signature_hash": "sha256",
            "key_size": null,
            "ca_cert": {"id": "f7slk4shv9s2wr3", "name": "Simulated DV CA"}
        },
        "status": o.status,
        "is_renewal": o.renewal_of_order_id.is_some(),
        "is_renewed": false,
        "renewed_order_id": 0,
        "business_unit": null,
        "date_created": time(o.date_created),
        "organization": null,
        "disable_renewal_notifications": false,
        "container": {"id": 5, "name": "Simulated"},
        "product": product(&o.product),
        "organization_contact": null,
        "technical_contact": null,
        "user": {"id": 153208, "first_name": "Sim", "last_name": "User", "email": "sim@example.invalid"},
        "requests": [{
            "id": request_id(o),
            "date": time(o.date_created),
            "type": "new_request",
            "status": "approved",
            "comments": o.comments
        }],
        "receipt_id": 123892,
        "cs_provisioning_method": "none",
        "send_minus_90": true,
        "send_minus_60": true,
        "send_minus_30": true,
        "send_minus_7": true,
        "send_minus_3": true,
        "send_plus_7": true,
        "public_id": format!("SIM{:029}", o.id),
        "allow_duplicates": false,
        "user_assignments": [{"id": 153208, "first_name": "Sim", "last_name": "User", "email": "sim@example.invalid"}],
        "payment_method": "balance"
    })
}

/// One item of `GET /order/certificate` in the shape of `orders.json`.
pub fn list_item(o: &SimOrder) -> Value {
    let issued = o.status == "issued";
    json!({
        "id": o.id,
        "certificate": {
            "id": o.certificate_id,
            "common_name": o.names.first(),
            "dns_names": o.names,
            "valid_till": issued.then(|| {
                (o.date_created + chrono::Duration::days(i64::from(o.validity_days)))
                    .format("%Y-%m-%d")
                    .to_string()
            }),
            "signature_hash": "sha256"
        },
        "status": o.status,
        "date_created": time(o.date_created),
        "organization": {"id": null, "name": null},
        "validity_years": null,
        "container": {"id": 5, "name": "Simulated"},
        "product": {"name_id": o.product, "name": o.product.replace('_', " "), "type": "dv_ssl_certificate"},
        "price": null
    })
}

/// `{dcv_random_value, expiration_date}` (seed "Change DCV method").
pub fn random_value(o: &SimOrder) -> Value {
    json!({"dcv_random_value": o.random_value, "expiration_date": o.expiration()})
}
