//! Recorded CertCentral responses (`shared/fixtures/digicert`, from riboseinc/digicert)
//! parse with the provider's wire types, quirks included, and the simulator serves each
//! recorded shape for the same endpoint (every JSON path and type of the fixture is in
//! the simulator's answer; a `null` there stands for any value).

use crate::support as common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dcvd::ca::CaOrderState;
use dcvd::ca::digicert::client::parse_errors;
use dcvd::ca::digicert::wire::order_state;
use dcvd::ca::digicert::wire::{OrderCreated, OrderInfo, OrderList};
use dcvd::pki::pem::{csr_der, split_certificates};
use dcvd::sim::digicert::{DigicertSim, DigicertSimOptions, start};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/digicert")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parse one fixture file with the client type for its endpoint.
fn parse_with_client(name: &str, body: &[u8]) {
    match name {
        "errors.json" => assert!(!parse_errors(body).unwrap().is_empty()),
        "order.json" => {
            serde_json::from_slice::<OrderInfo>(body).unwrap();
        }
        "orders.json" => {
            serde_json::from_slice::<OrderList>(body).unwrap();
        }
        "order_created.json" | "order_created_with_immediate_issuance.json" => {
            serde_json::from_slice::<OrderCreated>(body).unwrap();
        }
        // A request record (`GET /request/{id}`, not called by dcvd): its `order` is an
        // order-info object and must read as one.
        "certificate_request.json" => {
            let v: Value = serde_json::from_slice(body).unwrap();
            let o: OrderInfo = serde_json::from_value(v["order"].clone()).unwrap();
            assert_eq!(o.id, 542757);
            assert_eq!(
                o.all_comments().collect::<Vec<_>>(),
                ["request comments"],
                "comments inside requests[] are read"
            );
        }
        other => panic!("fixture {other} has no parser test: add one"),
    }
}

#[test]
fn every_fixture_file_parses_with_the_client() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        parse_with_client(&name, &std::fs::read(&path).unwrap());
        seen += 1;
    }
    assert!(seen >= 6, "{seen} fixture files");
}

#[test]
fn errors_as_a_single_object_parse() {
    let errors = parse_errors(&fixture("errors.json")).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "not_found|route");
    assert_eq!(errors[0].message, "The specified route was not found.");
}

#[test]
fn errors_as_an_array_keep_every_item() {
    let body = br#"{"errors":[{"code":"a|x","message":"one"},{"code":"b","message":"two"}]}"#;
    let errors = parse_errors(body).unwrap();
    assert_eq!(
        errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(),
        ["a|x", "b"]
    );
    assert!(parse_errors(b"<html>bad gateway</html>").is_none());
}

#[test]
fn order_info_keeps_comments_in_requests_and_the_placeholder_csr_is_not_a_csr() {
    let o: OrderInfo = serde_json::from_slice(&fixture("order.json")).unwrap();
    assert_eq!(o.id, 123456789);
    assert_eq!(o.certificate.id, Some(112358));
    assert_eq!(o.certificate.dns_names, ["digicert.com"]);
    assert_eq!(o.status, "approved");
    assert_eq!(order_state(&o.status), CaOrderState::InProgress);
    assert!(o.comments.is_none());
    assert_eq!(o.all_comments().collect::<Vec<_>>(), ["Form autofill"]);
    let csr = o.certificate.csr.as_deref().unwrap();
    assert_eq!(
        csr_der(csr),
        None,
        "`------ [CSR HERE] ------` proves nothing"
    );
}

#[test]
fn order_list_parses_with_a_missing_valid_till() {
    let l: OrderList = serde_json::from_slice(&fixture("orders.json")).unwrap();
    assert_eq!(l.orders.len(), 3);
    assert!(l.orders[2].certificate.valid_till.is_none());
    assert!(l.orders.iter().all(|o| o.comments.is_none()));
    assert_eq!(
        order_state(&l.orders[1].status),
        CaOrderState::NeedsApproval
    );
    assert_eq!(l.page.unwrap().limit, Some(1000));
}

#[test]
fn order_created_without_certificate_id_parses() {
    let c: OrderCreated = serde_json::from_slice(&fixture("order_created.json")).unwrap();
    assert_eq!(c.id, 542772);
    assert!(c.certificate_id.is_none() && c.dcv_random_value.is_none());
}

#[test]
fn immediate_issuance_chain_with_crlf_splits() {
    let c: OrderCreated =
        serde_json::from_slice(&fixture("order_created_with_immediate_issuance.json")).unwrap();
    let chain = c.certificate_chain.unwrap();
    assert_eq!(chain.len(), 3);
    let joined: String = chain.iter().map(|e| e.pem.as_str()).collect();
    let blocks = split_certificates(&joined).unwrap();
    assert_eq!(blocks.len(), 3);
    for b in &blocks {
        let (_, pem) = x509_parser::pem::parse_x509_pem(b.as_bytes()).unwrap();
        pem.parse_x509().unwrap();
    }
}

/// JSON path → type name, arrays as `[]` (every element merged).
fn shape(v: &Value, at: &str, out: &mut BTreeMap<String, &'static str>) {
    let ty = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.entry(at.to_string()).or_insert(ty);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                shape(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

/// Every path of `recorded` is in `served` with the same type, or `served` has `null`
/// there or at an ancestor.
fn assert_same_shape(what: &str, recorded: &Value, served: &Value) {
    let (mut want, mut have) = (BTreeMap::new(), BTreeMap::new());
    shape(recorded, "", &mut want);
    shape(served, "", &mut have);
    let mut missing = Vec::new();
    for (path, ty) in &want {
        if *ty == "null" {
            continue;
        }
        let nulled_above = (0..=path.len()).any(|i| {
            path.is_char_boundary(i)
                && (i == path.len() || matches!(&path[i..i + 1], "." | "["))
                && have.get(&path[..i]) == Some(&"null")
        });
        match have.get(path) {
            Some(t) if t == ty || *t == "null" => {}
            _ if nulled_above => {}
            got => missing.push(format!("{path}: recorded {ty}, served {got:?}")),
        }
    }
    assert!(missing.is_empty(), "{what}:\n{}", missing.join("\n"));
}

const KEY: &str = "fixture-key";

async fn sim() -> DigicertSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    start(DigicertSimOptions {
        api_keys: vec![KEY.into()],
        recheck_interval: Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn call(s: &DigicertSim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", s.base_url()))
        .header("X-DC-DEVKEY", KEY)
        .header("Content-Type", "application/json");
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_simulator_serves_every_recorded_shape() {
    let s = sim().await;
    let names = ["shape.example.test", "www.shape.example.test"];
    let body = json!({
        "certificate": {"common_name": names[0], "dns_names": [names[1]], "csr": common::csr(&names).0},
        "validity_days": 90, "dcv_method": "dns-txt-token", "comments": "dcvd-shape"
    });
    let (st, created) = call(&s, "POST", "/order/certificate/ssl_dv_geotrust", Some(body)).await;
    assert_eq!(st, 201, "{created}");
    let recorded = |n: &str| serde_json::from_slice::<Value>(&fixture(n)).unwrap();
    assert_same_shape(
        "POST order (order_created.json)",
        &recorded("order_created.json"),
        &created,
    );
    let id = created["id"].as_u64().unwrap();
    let (_, info) = call(&s, "GET", &format!("/order/certificate/{id}"), None).await;
    assert_same_shape("GET order (order.json)", &recorded("order.json"), &info);
    assert!(
        info.get("comments").is_none(),
        "comments only inside requests[]"
    );
    assert_eq!(info["requests"][0]["comments"], "dcvd-shape");
    assert!(
        info["certificate"]["csr"]
            .as_str()
            .unwrap()
            .contains("\r\n")
    );
    let (_, list) = call(
        &s,
        "GET",
        "/order/certificate?filters%5Bcommon_name%5D=shape.example.test",
        None,
    )
    .await;
    assert_same_shape("GET list (orders.json)", &recorded("orders.json"), &list);
    let (st, err) = call(&s, "GET", "/no/such/route", None).await;
    assert_eq!(st, 404);
    assert_same_shape(
        "unknown route (errors.json)",
        &recorded("errors.json"),
        &err,
    );
    // And the client reads what the simulator serves.
    serde_json::from_value::<OrderInfo>(info).unwrap();
    serde_json::from_value::<OrderList>(list).unwrap();
    serde_json::from_value::<OrderCreated>(created).unwrap();
}
