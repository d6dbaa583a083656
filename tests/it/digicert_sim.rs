//! The CertCentral simulator on the wire: status codes, error bodies, admin endpoints,
//! email auto-approval, and the `dcvd-sim digicert` binary.

use crate::support as common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::csr;
use dcvd::sim::digicert::{DigicertSim, DigicertSimOptions, start};
use serde_json::{Value, json};

const KEY: &str = "sim-key-77";

async fn sim(f: impl FnOnce(&mut DigicertSimOptions)) -> DigicertSim {
    let mut o = DigicertSimOptions {
        api_keys: vec![KEY.into()],
        recheck_interval: Duration::ZERO,
        ..Default::default()
    };
    f(&mut o);
    start(o).await.unwrap()
}

async fn call(s: &DigicertSim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}{path}", s.base_url());
    let mut r = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .header("X-DC-DEVKEY", KEY)
        .header("Content-Type", "application/json");
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Error codes of a body whose `errors` is an array or (as recorded) a single object.
fn codes(v: &Value) -> Vec<String> {
    let items = match &v["errors"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    items
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect()
}

fn order_body(method: &str, names: &[&str]) -> Value {
    json!({
        "certificate": {"common_name": names[0], "dns_names": &names[1..], "csr": csr(names).0,
                        "server_platform": {"id": -1}},
        "validity_days": 90, "dcv_method": method, "skip_approval": true, "comments": "dcvd-sim-test",
        "dcv_emails": [{"dns_name": names[0], "email_domain": "example.test", "email": "admin@example.test"}]
    })
}

#[tokio::test]
async fn unknown_key_route_and_order_have_documented_errors() {
    let s = sim(|_| {}).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/order/certificate/1", s.base_url()))
        .header("X-DC-DEVKEY", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        403,
        "docs silent: 403, the harder case for a client"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(codes(&body), ["access_denied|invalid_api_key"]);
    let (st, body) = call(&s, "GET", "/order/certificate/424242", None).await;
    assert_eq!(
        (st, codes(&body)),
        (404, vec!["not_found|order".to_string()])
    );
    let (st, body) = call(&s, "GET", "/no/such/route", None).await;
    assert_eq!(
        (st, codes(&body)),
        (404, vec!["not_found|route".to_string()])
    );
    let (st, body) = call(
        &s,
        "POST",
        "/order/certificate/ssl_ev_plus",
        Some(order_body("email", &["a.example.test"])),
    )
    .await;
    assert_eq!(
        (st, codes(&body)),
        (404, vec!["not_found|product".to_string()])
    );
}

#[tokio::test]
async fn order_validation_reports_every_problem() {
    let s = sim(|_| {}).await;
    let body =
        json!({"certificate": {"common_name": "", "csr": ""}, "dcv_method": "carrier-pigeon"});
    let (st, body) = call(&s, "POST", "/order/certificate/ssl_dv_geotrust", Some(body)).await;
    assert_eq!(st, 400);
    assert_eq!(
        codes(&body),
        [
            "missing_field|certificate.common_name",
            "missing_field|certificate.csr",
            "missing_field|validity_years",
            "invalid_dcv_method"
        ]
    );
    let (st, body) = call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(json!({"certificate": {}, "bogus": 1})),
    )
    .await;
    assert_eq!(
        (st, codes(&body)),
        (400, vec!["bad_request_format".to_string()])
    );
    let wild = order_body("http-token", &["*.example.test"]);
    let (st, body) = call(
        &s,
        "POST",
        "/order/certificate/wildcard_dv_geotrust",
        Some(wild),
    )
    .await;
    assert_eq!(
        (st, codes(&body)),
        (400, vec!["invalid_wildcard_dcv_method".to_string()])
    );
    assert_eq!(s.orders().len(), 0);
}

#[tokio::test]
async fn email_orders_refuse_token_calls_and_auto_approve() {
    let s = sim(|o| o.auto_approve_email_after = Some(Duration::ZERO)).await;
    let (st, created) = call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(order_body("email", &["a.example.test"])),
    )
    .await;
    assert_eq!(st, 201);
    assert!(
        created.get("dcv_random_value").is_none(),
        "email orders get no random value"
    );
    let id = created["id"].as_u64().unwrap();
    let (st, body) = call(
        &s,
        "PUT",
        &format!("/order/certificate/{id}/check-dcv"),
        None,
    )
    .await;
    assert_eq!(
        (st, codes(&body)),
        (400, vec!["invalid_dcv_method".to_string()])
    );
    let (st, _) = call(
        &s,
        "PUT",
        &format!("/order/certificate/{id}/dcv-random-value"),
        None,
    )
    .await;
    assert_eq!(st, 400);
    s.recheck_now().await;
    let (st, info) = call(&s, "GET", &format!("/order/certificate/{id}"), None).await;
    assert_eq!((st, info["status"].as_str()), (200, Some("issued")));
    let cid = info["certificate"]["id"].as_u64().unwrap();
    let pem = reqwest::Client::new()
        .get(format!(
            "{}/certificate/{cid}/download/format/pem_all",
            s.base_url()
        ))
        .header("X-DC-DEVKEY", KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 3);
}

#[tokio::test]
async fn method_change_to_email_is_204_and_tokens_get_a_new_value() {
    let s = sim(|_| {}).await;
    let (_, created) = call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(order_body("dns-txt-token", &["b.example.test"])),
    )
    .await;
    let id = created["id"].as_u64().unwrap();
    let first = created["dcv_random_value"].as_str().unwrap().to_string();
    let (st, rv) = call(
        &s,
        "PUT",
        &format!("/order/certificate/{id}/dcv-random-value"),
        None,
    )
    .await;
    assert_eq!(
        (st, rv["dcv_random_value"].as_str()),
        (200, Some(first.as_str())),
        "unexpired value is kept"
    );
    assert!(rv["expiration_date"].as_str().unwrap().ends_with("+00:00"));
    let (st, rv) = call(
        &s,
        "PUT",
        &format!("/order/certificate/{id}/dcv-method"),
        Some(json!({"dcv_method": "dns-cname-token"})),
    )
    .await;
    assert_eq!(st, 200);
    assert_ne!(rv["dcv_random_value"].as_str().unwrap(), first);
    let (st, _) = call(
        &s,
        "PUT",
        &format!("/order/certificate/{id}/dcv-method"),
        Some(json!({"dcv_method": "email"})),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(s.order(id).unwrap().dcv_method, "email");
}

#[tokio::test]
async fn admin_endpoints_show_requests_and_orders() {
    let s = sim(|_| {}).await;
    call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(order_body("dns-txt-token", &["c.example.test"])),
    )
    .await;
    call(
        &s,
        "GET",
        "/order/certificate?filters%5Bcommon_name%5D=c.example.test",
        None,
    )
    .await;
    let base = format!("http://{}", s.addr());
    let orders: Value = reqwest::get(format!("{base}/_sim/orders"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["count"], 1);
    assert_eq!(orders["orders"][0]["names"], json!(["c.example.test"]));
    let log: Value = reqwest::get(format!("{base}/_sim/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen: Vec<(String, String, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().into(),
                r["endpoint"].as_str().unwrap().into(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "POST".to_string(),
                "order/certificate/{id}".to_string(),
                201
            ),
            ("GET".to_string(), "order/certificate".to_string(), 200)
        ]
    );
}

#[test]
fn binary_prints_its_url_and_serves() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dcvd-sim"))
        .args([
            "digicert",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "--http-address",
            "www.example.test=127.0.0.1:8080",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_string);
    let result = url.as_ref().map(|u| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            reqwest::Client::new()
                .get(format!("{u}/domain/www.example.test/dcv/emails"))
                .header("X-DC-DEVKEY", KEY)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let url = url.unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/services/v2"),
        "{url}"
    );
    assert_eq!(result.unwrap().unwrap(), 200);
}

fn at(date: &str) -> std::sync::Arc<dcvd::clock::ManualClock> {
    let t = chrono::DateTime::parse_from_rfc3339(date).unwrap().to_utc();
    std::sync::Arc::new(dcvd::clock::ManualClock::new(t))
}

#[tokio::test]
async fn validity_above_the_maximum_in_force_is_refused_by_the_simulators_date() {
    let clock = at("2027-06-01T00:00:00Z");
    let s = sim(|o| o.clock = clock.clone()).await;
    let mut body = order_body("dns-txt-token", &["v.example.test"]);
    let post = |b: Value| {
        let s = &s;
        async move { call(s, "POST", "/order/certificate/ssl_dv_geotrust", Some(b)).await }
    };
    body["validity_days"] = json!(101);
    let (st, r) = post(body.clone()).await;
    assert_eq!(
        (st, codes(&r)),
        (400, vec!["invalid_value:validity_days".to_string()])
    );
    body["validity_days"] = json!(100);
    assert_eq!(post(body.clone()).await.0, 201);
    let mut years = body.clone();
    years.as_object_mut().unwrap().remove("validity_days");
    years["validity_years"] = json!(1);
    let (st, r) = post(years.clone()).await;
    assert_eq!(
        (st, codes(&r)),
        (400, vec!["invalid_value:validity_years".to_string()])
    );
    let mut custom = body.clone();
    custom["custom_expiration_date"] = json!("2027-12-01");
    let (st, r) = post(custom).await;
    assert_eq!(
        (st, codes(&r)),
        (
            400,
            vec!["invalid_value:custom_expiration_date".to_string()]
        )
    );
    // Before SC-081's first step, one year was allowed.
    clock.set(
        chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .unwrap()
            .to_utc(),
    );
    assert_eq!(post(years.clone()).await.0, 201);
    years["validity_years"] = json!(3);
    assert_eq!(post(years).await.0, 400);
}

#[tokio::test]
async fn undocumented_fields_locales_and_empty_resends_are_refused() {
    let s = sim(|_| {}).await;
    let mut body = order_body("email", &["u.example.test"]);
    body["certificate"]["signature_hash"] = json!("sha256");
    body["use_auth_key"] = json!(false);
    let (st, r) = call(&s, "POST", "/order/certificate/ssl_dv_geotrust", Some(body)).await;
    assert_eq!(st, 400);
    assert_eq!(codes(&r), ["bad_request_format", "bad_request_format"]);
    let mut body = order_body("email", &["u.example.test"]);
    body["locale"] = json!("fr-FR");
    let (st, r) = call(&s, "POST", "/order/certificate/ssl_dv_geotrust", Some(body)).await;
    assert_eq!(
        (st, codes(&r)),
        (400, vec!["invalid_value:locale".to_string()])
    );
    let mut body = order_body("email", &["u.example.test"]);
    body["dcv_emails"][0]["email_domain"] = json!("u.example.test");
    let (st, r) = call(&s, "POST", "/order/certificate/ssl_dv_geotrust", Some(body)).await;
    assert_eq!(
        (st, codes(&r)),
        (
            400,
            vec!["invalid_value:dcv_emails[0].email_domain".to_string()]
        ),
        "email_domain must be the base domain"
    );
    let (st, created) = call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(order_body("email", &["u.example.test"])),
    )
    .await;
    assert_eq!(st, 201);
    let id = created["id"].as_u64().unwrap();
    let resend = format!("/order/certificate/{id}/resend-emails");
    let (st, r) = call(
        &s,
        "PUT",
        &resend,
        Some(json!({"domain_approval_emails": [], "locale": "en"})),
    )
    .await;
    assert_eq!(
        (st, codes(&r)),
        (
            400,
            vec!["missing_field|domain_approval_emails".to_string()]
        )
    );
    let ok = json!({"domain_approval_emails": [{"domain": "u.example.test", "email": "admin@example.test", "email_domain": "example.test"}], "locale": "fr"});
    assert_eq!(call(&s, "PUT", &resend, Some(ok)).await.0, 204);
}

#[tokio::test]
async fn check_dcv_not_found_yet_is_the_documented_400_and_pem_refuses_json_accept() {
    let s = sim(|o| o.auto_approve_email_after = Some(Duration::ZERO)).await;
    for (method, code) in [
        ("dns-txt-token", "invalid_dns_txt"),
        ("http-token", "file_random_value_not_found"),
    ] {
        let (_, created) = call(
            &s,
            "POST",
            "/order/certificate/ssl_dv_geotrust",
            Some(order_body(method, &["k.example.test"])),
        )
        .await;
        assert!(created["dcv_random_value"].is_string(), "{method}");
        let id = created["id"].as_u64().unwrap();
        let (st, r) = call(
            &s,
            "PUT",
            &format!("/order/certificate/{id}/check-dcv"),
            None,
        )
        .await;
        assert_eq!((st, codes(&r)), (400, vec![code.to_string()]), "{method}");
    }
    let (_, created) = call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(order_body("dns-cname-token", &["k.example.test"])),
    )
    .await;
    assert!(
        created.get("dcv_random_value").is_none(),
        "S2: not for dns-cname-token"
    );
    let (_, created) = call(
        &s,
        "POST",
        "/order/certificate/ssl_dv_geotrust",
        Some(order_body("email", &["m.example.test"])),
    )
    .await;
    s.recheck_now().await;
    let id = created["id"].as_u64().unwrap();
    let (_, info) = call(&s, "GET", &format!("/order/certificate/{id}"), None).await;
    let cid = info["certificate"]["id"].as_u64().unwrap();
    let url = format!("{}/certificate/{cid}/download/format/pem_all", s.base_url());
    let get = |accept: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut r = reqwest::Client::new().get(url).header("X-DC-DEVKEY", KEY);
            if let Some(a) = accept {
                r = r.header("Accept", a);
            }
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    assert_eq!(get(Some("application/json")).await.0, 406);
    let (st, pem) = get(None).await;
    assert_eq!(st, 200);
    assert!(pem.contains("-----END CERTIFICATE-----\r\n"), "CRLF PEM");
}
