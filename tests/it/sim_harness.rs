//! The harness both CA simulators share (`sim::server`): fault injection means the same
//! at both (a dropped connection is a real drop: the client sees a transport error,
//! outcome unknown, never an HTTP answer), and the `/_sim` admin routes answer alike.

use std::time::Duration;

use dcvd::ca::ErrorKind;
use dcvd::ca::digicert::DigicertProvider;
use dcvd::ca::sectigo::SectigoProvider;
use dcvd::config::{DigicertConfig, SectigoConfig};
use dcvd::model::DomainName;
use dcvd::sim::Fault;
use dcvd::sim::digicert::{self, DigicertSimOptions};
use dcvd::sim::sectigo::{self, SectigoSimOptions};

const KEY: &str = "fault-test-key";
const PASSWORD: &str = "fault-test-password";

async fn sims() -> (digicert::DigicertSim, sectigo::SectigoSim) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dc = digicert::start(DigicertSimOptions {
        api_keys: vec![KEY.into()],
        recheck_interval: Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap();
    let sec = sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    (dc, sec)
}

/// One request that reaches fault injection at each simulator, by raw HTTP.
async fn raw_call(client: &reqwest::Client, dc: &str, sec: &str) -> [reqwest::Result<String>; 2] {
    let body = |r: reqwest::Result<reqwest::Response>| async move { r?.text().await };
    let d = client
        .get(format!("{dc}/domain/example.test/dcv/emails"))
        .header("X-DC-DEVKEY", KEY)
        .send()
        .await;
    let s = client
        .post(format!("{sec}/!GetDCVEmailAddressList"))
        .body("loginName=dcvd&domainName=example.test")
        .send()
        .await;
    [body(d).await, body(s).await]
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_at_both_simulators() {
    let (dc, sec) = sims().await;
    let client = reqwest::Client::new();
    dc.force_faults(Fault::Drop, 1);
    sec.force_faults(Fault::Drop, 1);
    for (ca, r) in ["DigiCert", "Sectigo"]
        .into_iter()
        .zip(raw_call(&client, &dc.base_url(), &sec.base_url()).await)
    {
        let err = r.expect_err(ca);
        assert!(
            err.status().is_none() && (err.is_body() || err.is_request() || err.is_decode()),
            "{ca}: {err:?}"
        );
    }
    // Forced faults are used up: the next calls are answered.
    let [d, s] = raw_call(&client, &dc.base_url(), &sec.base_url()).await;
    assert!(d.unwrap().contains("base_emails"));
    assert!(!s.unwrap().is_empty());
}

#[tokio::test]
async fn both_clients_read_a_dropped_connection_as_transient_with_no_status() {
    let (dc, sec) = sims().await;
    let name = DomainName::parse("shop.example.test").unwrap();
    let dp = DigicertProvider::new(
        "dc",
        &DigicertConfig {
            base_url: dc.base_url(),
            api_key: Some(KEY.to_string().into()),
            api_key_file: None,
            rate_limits: None,
            dns_txt_at: "_dnsauth".into(),
            poll_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            in_flight_margin: Duration::from_secs(300),
            server_platform: -1,
            custom_fields: Vec::new(),
        },
    )
    .unwrap();
    let sp = SectigoProvider::new(
        "sec",
        &SectigoConfig {
            base_url: sec.base_url(),
            login_name: "dcvd".into(),
            login_password: Some(PASSWORD.to_string().into()),
            login_password_file: None,
            rate_limits: None,
            dcv_suffix: "sectigo.com".into(),
            poll_interval: Duration::from_secs(60),
            collect_interval: Duration::from_secs(300),
            request_timeout: Duration::from_secs(5),
            in_flight_margin: Duration::from_secs(300),
            server_software: -1,
        },
    )
    .unwrap();
    use dcvd::ca::Provider;
    dc.force_faults(Fault::Drop, 1);
    let err = dp.approver_emails(&name).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status),
        (ErrorKind::Transient, None),
        "{err}"
    );
    assert!(!err.rejected);
    sec.force_faults(Fault::Drop, 1);
    let err = sp.approver_emails(&name).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::Transient, None),
        "{err}"
    );
    assert!(!err.rejected, "{err}");
    // And the same call succeeds once the fault is spent.
    dp.approver_emails(&name).await.unwrap();
    assert!(!sp.approver_emails(&name).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_admin_routes_answer_alike_at_both_simulators() {
    let (dc, sec) = sims().await;
    let client = reqwest::Client::new();
    for (ca, addr) in [("DigiCert", dc.addr()), ("Sectigo", sec.addr())] {
        let orders: serde_json::Value = client
            .get(format!("http://{addr}/_sim/orders"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            orders,
            serde_json::json!({"count": 0, "orders": []}),
            "{ca}"
        );
        let r = client
            .post(format!("http://{addr}/_sim/approve/4242"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{ca}");
        assert_eq!(r.text().await.unwrap(), "order 4242 not found", "{ca}");
        let log: serde_json::Value = client
            .get(format!("http://{addr}/_sim/requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(log[0]["endpoint"], "_sim/approve/{id}", "{ca}");
        assert_eq!(log[0]["status"], 404, "{ca}");
    }
    assert_eq!(
        dc.approve(4242),
        Err(digicert::ApproveError::NotFound(4242))
    );
    assert_eq!(
        sec.approve(4242),
        Err(sectigo::ApproveError::NotFound(4242))
    );
}
