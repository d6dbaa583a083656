//! Sectigo error handling: -42, -16 without the password, malformed answers, HTTP 5xx,
//! the simulator's argument checks, recorded fixtures, serialised CollectSSL.

use crate::support::sectigo as sectigo_common;

use std::time::Duration;

use dcvd::ca::sectigo::SectigoProvider;
use dcvd::ca::sectigo::wire::Reply;
use dcvd::ca::{ErrorKind, Provider};
use dcvd::model::{DcvMethod, DomainName};
use dcvd::sim::Faults;
use dcvd::sim::sectigo::{self, SectigoSimOptions};
use sectigo_common::*;

async fn sim_with(opts: SectigoSimOptions) -> sectigo::SectigoSim {
    sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        ..opts
    })
    .await
    .unwrap()
}

fn name(n: &str) -> DomainName {
    DomainName::parse(n).unwrap()
}

#[tokio::test]
async fn call_limit_answer_is_rate_limited() {
    let sim = sim_with(SectigoSimOptions {
        rate_limit: Some((1, Duration::from_secs(3600))),
        ..Default::default()
    })
    .await;
    let p = provider(&sim.base_url());
    p.approver_emails(&name("example.test")).await.unwrap();
    let err = p.approver_emails(&name("example.test")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited, "{err}");
    assert!(err.has_code("-42"));
    assert!(err.retry_after.is_some());
}

#[tokio::test]
async fn bad_login_is_permanent_and_never_shows_the_password() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let wrong = "hunter2-WRONG-pass";
    let p = SectigoProvider::new("sectigo-prod", &config(&sim.base_url(), wrong)).unwrap();
    let err = p.approver_emails(&name("example.test")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.has_code("-16"));
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("login failed for provider sectigo-prod"),
        "{shown}"
    );
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains(PASSWORD));
}

#[test]
fn missing_password_is_a_config_error() {
    let mut cfg = config("http://127.0.0.1:9/products", PASSWORD);
    cfg.login_password = None;
    let err = SectigoProvider::new("sec", &cfg).err().unwrap();
    assert!(err.contains("login_password"), "{err}");
}

#[tokio::test]
async fn malformed_answers_and_server_errors_are_transient() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Default::default()
    });
    let err = p.approver_emails(&name("example.test")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    assert_eq!(err.status, Some(200));
    assert!(
        err.detail
            .as_deref()
            .unwrap_or_default()
            .contains("status line"),
        "{err}"
    );
    sim.set_faults(Faults {
        server_error_rate: 1.0,
        ..Default::default()
    });
    let err = p.approver_emails(&name("example.test")).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Transient, Some(500)));
    sim.set_faults(Faults::default());
    assert!(
        !p.approver_emails(&name("example.test"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn transport_failure_is_transient_and_not_rejected() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = provider(&format!("http://{addr}/products"));
    let req = request(
        "dcvd-down",
        &["x.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let err = p.submit(&req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(!err.rejected);
}

#[tokio::test]
async fn refused_order_is_rejected_and_keeps_error_item() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    let mut req = request(
        "dcvd-badcsr",
        &["x.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    req.csr_pem =
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into();
    let err = p.submit(&req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.rejected);
    assert_eq!(err.errors[0].item.as_deref(), Some("csr"));
    let req = request("dcvd-txt", &["x.example.test"], &[DcvMethod::DnsTxt], &[]);
    let err = p.submit(&req).await.unwrap_err();
    assert!(err.rejected && err.to_string().contains("dns-txt"), "{err}");
}

/// The simulator enforces the seed's rules, so a client that breaks them fails tests.
#[tokio::test]
async fn simulator_checks_auto_update_dcv_arguments() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-args",
        &["www.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let http = reqwest::Client::new();
    let post = |path: &'static str, extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("loginName", "dcvd".to_string()),
            ("loginPassword", PASSWORD.to_string()),
        ];
        form.extend(extra);
        let url = format!("{}/{path}", sim.base_url());
        let http = http.clone();
        async move {
            Reply::parse(
                &http
                    .post(url)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            )
            .unwrap()
        }
    };
    let on = || ("orderNumber", sub.ca_order_id.clone());
    let r = post(
        "!AutoUpdateDCV",
        vec![
            on(),
            ("newMethod", "EMAIL".into()),
            ("responseFormat", "1".into()),
        ],
    )
    .await;
    assert_eq!(
        (r.error_code(), r.get("errorItem")),
        (Some(-2), Some("responseFormat"))
    );
    let r = post(
        "!AutoUpdateDCV",
        vec![
            on(),
            ("newMethod", "HTTP_CSR_HASH".into()),
            ("showDetails", "Y".into()),
        ],
    )
    .await;
    assert_eq!(
        (r.error_code(), r.get("errorItem")),
        (Some(-2), Some("showDetails"))
    );
    let r = post("!AutoUpdateDCV", vec![on(), ("newMethod", "EMAIL".into())]).await;
    assert_eq!(
        (r.error_code(), r.get("errorItem")),
        (Some(-3), Some("newDCVEmailAddress"))
    );
    // Documented lengths: newMethods 32, domainNames 255.
    let r = post(
        "!AutoUpdateDCV",
        vec![
            on(),
            (
                "domainNames",
                "a.example.test b.example.test c.example.test".into(),
            ),
            (
                "newMethods",
                "CNAME_CSR_HASH,CNAME_CSR_HASH,CNAME_CSR_HASH".into(),
            ),
        ],
    )
    .await;
    assert_eq!(
        (r.error_code(), r.get("errorItem")),
        (Some(-4), Some("newMethods"))
    );
    let long = vec!["n.example.test"; 20].join(" ");
    let r = post(
        "!AutoUpdateDCV",
        vec![on(), ("domainNames", long), ("newMethods", "EMAIL".into())],
    )
    .await;
    assert_eq!(
        (r.error_code(), r.get("errorItem")),
        (Some(-4), Some("domainNames"))
    );
    // The Mark Certificate path of the seed's heading is not the SSL API: a 404 page.
    let wrong = http
        .post(format!("{}/download/!AutoUpdateDCV", sim.base_url()))
        .form(&[("loginName", "dcvd"), ("loginPassword", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    assert!(wrong.text().await.unwrap().contains("<html>"));
    let r = post(
        "!AutoUpdateDCV",
        vec![
            on(),
            ("newMethod", "EMAIL".into()),
            ("newDCVEmailAddress", "root@example.test".into()),
        ],
    )
    .await;
    assert_eq!(r.error_code(), Some(-4));
    let r = post(
        "!AutoUpdateDCV",
        vec![
            ("orderNumber", "999".into()),
            ("newMethod", "HTTP_CSR_HASH".into()),
        ],
    )
    .await;
    assert_eq!(
        r.get("errorMessage"),
        Some("The value of the 'orderNumber' argument is invalid!")
    );
    let r = post(
        "!AutoUpdateDCV",
        vec![
            on(),
            ("domainNames", "www.example.test".into()),
            ("newMethods", "A,B".into()),
        ],
    )
    .await;
    assert_eq!(
        (r.error_code(), r.get("errorItem")),
        (Some(-4), Some("newMethods"))
    );
    let get = http
        .get(format!("{}/!AutoUpdateDCV", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(Reply::parse(&get).unwrap().error_code(), Some(-17));
}

#[tokio::test]
async fn collect_ssl_is_never_concurrent_and_rationed() {
    // Slow CollectSSL answers, so overlapping calls would be seen by the simulator.
    let sim = sim_with(SectigoSimOptions {
        collect_latency: Duration::from_millis(30),
        ..Default::default()
    })
    .await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-collect",
        &["c.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    // Fresh single-domain order: !GetMDCDomainDetails is refused (documented for
    // multi-domain orders only), which is not fatal: one CollectSSL learns the state,
    // and neither is asked again before collect_interval.
    let mut held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, dcvd::ca::CaOrderState::InProgress);
    assert_eq!(sim.log().counts()["download/CollectSSL"], 1);
    held.data = st.ca_data.unwrap();
    assert_eq!(held.data["mdcRefused"], true);
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, dcvd::ca::CaOrderState::InProgress);
    let counts = sim.log().counts();
    assert_eq!(counts["download/CollectSSL"], 1);
    assert_eq!(counts["!GetMDCDomainDetails"], 1);
    let collect = params(&sim.forms("download/CollectSSL")[0]);
    assert!(
        collect.contains(&"responseFormat=1".to_string()),
        "{collect:?}"
    );
    // An old last collect: every status call collects, one at a time.
    let mut data = held.data.clone();
    data["lastCollect"] = serde_json::json!(0);
    let old = Held::new(&req, &sub.ca_order_id, data);
    let r = old.r();
    let (a, b, c) = tokio::join!(p.status(r), p.status(r), p.status(r));
    let (d, e, f) = tokio::join!(p.status(r), p.status(r), p.status(r));
    for st in [a, b, c, d, e, f] {
        let st = st.unwrap();
        assert!(st.ca_data.unwrap()["lastCollect"].as_i64().unwrap() > 0);
    }
    assert_eq!(sim.log().counts()["download/CollectSSL"], 7);
    assert_eq!(sim.max_concurrent_collects(), 1);
}

#[test]
fn recorded_fixtures_parse() {
    let read = |f: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/sectigo/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let r = Reply::parse(&read("resenddcvemail-lowercase-key.txt")).unwrap();
    assert_eq!(r.error_code(), Some(0));
    let r = Reply::parse(&read("getdcvemailaddresslist-text.txt")).unwrap();
    assert_eq!(r.error_code(), Some(0));
    assert_eq!(r.get("domain_name"), Some("www.test-domain.org"));
    assert_eq!(r.get("whois_email"), Some("suport@test-domain.org"));
    let r = Reply::parse(&read("getmdcdomaindetails.txt")).unwrap();
    assert_eq!(r.get("1_domainName"), Some("test.com"));
    assert_eq!(r.get("1_dcvStatus"), Some("Validated"));
    let r = Reply::parse(&read("autoapplyssl-urlencoded.txt")).unwrap();
    assert_eq!(r.get("orderNumber"), Some("3040824"));
    assert_eq!(r.get("uniqueValue"), Some("TnerFu0d"));
    assert_eq!(r.get("totalCost"), Some("210.00"));
}
