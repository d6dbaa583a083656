//! The DigiCert provider against the CertCentral simulator: every DCV method to an
//! issued, downloaded chain, method switch, emails, errors, faults, recovery.

use crate::support as common;

use std::time::Duration;

use common::{TestDns, TestWeb, csr};
use dcvd::ca::digicert::DigicertProvider;
use dcvd::ca::{
    CaOrderState, ErrorKind, Lookup, NameDcv, OrderRef, Provider, SubmitRequest, Submitted,
};
use dcvd::config::DigicertConfig;
use dcvd::model::{ChallengeKind, DcvMethod, DomainName};
use dcvd::sim::Fault;
use dcvd::sim::digicert::{DigicertSim, DigicertSimOptions, start};

const KEY: &str = "test-api-key-5f1c";

struct Env {
    dns: TestDns,
    web: TestWeb,
    sim: DigicertSim,
    p: DigicertProvider,
}

fn cfg(base_url: &str, key: &str) -> DigicertConfig {
    DigicertConfig {
        base_url: base_url.to_string(),
        api_key: Some(key.to_string().into()),
        api_key_file: None,
        rate_limits: None,
        dns_txt_at: "_dnsauth".into(),
        poll_interval: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        in_flight_margin: Duration::from_secs(300),
        server_platform: -1,
        custom_fields: Vec::new(),
    }
}

async fn env_with(f: impl FnOnce(&mut DigicertSimOptions)) -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dns = TestDns::start("test").await;
    let web = TestWeb::start().await;
    let mut opts = DigicertSimOptions {
        api_keys: vec![KEY.into()],
        nameserver: Some(dns.addr),
        // Deterministic tests: DigiCert's own polling is off unless a test wants it.
        recheck_interval: Duration::ZERO,
        ..Default::default()
    };
    for host in ["shop.example.test", "www.shop.example.test"] {
        opts.http_addresses.insert(host.into(), web.addr);
    }
    f(&mut opts);
    let sim = start(opts).await.unwrap();
    let p = DigicertProvider::new("dc", &cfg(&sim.base_url(), KEY)).unwrap();
    Env { dns, web, sim, p }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

fn names(n: &[&str]) -> Vec<DomainName> {
    n.iter().map(|s| DomainName::parse(s).unwrap()).collect()
}

fn request(n: &[&str], method: DcvMethod, reference: &str) -> SubmitRequest {
    let (pem, der) = csr(n);
    SubmitRequest {
        reference: reference.into(),
        certificate: "shop".into(),
        product: "ssl_dv_geotrust".into(),
        names: names(n),
        csr_pem: pem,
        csr_der: der,
        key_type: dcvd::model::KeyType::EcdsaP256,
        methods: vec![method; n.len()],
        approver_emails: Vec::new(),
        locale: "en".into(),
        validity_days: None,
        renewal_of: None,
        created_at: dcvd::clock::Clock::now(&dcvd::clock::SystemClock),
        known_ca_orders: Vec::new(),
    }
}

fn oref<'a>(req: &'a SubmitRequest, s: &'a Submitted, data: &'a serde_json::Value) -> OrderRef<'a> {
    OrderRef {
        reference: &req.reference,
        ca_order_id: &s.ca_order_id,
        ca_data: data,
        names: &req.names,
        csr_der: &req.csr_der,
    }
}

/// Download and check the leaf names and chain length.
async fn assert_issued_chain(e: &Env, o: OrderRef<'_>, want: &[&str]) {
    let chain = e.p.download(o).await.unwrap();
    assert_eq!(chain.chain_pem.len(), 2, "intermediate + root");
    let der = x509_parser::pem::parse_x509_pem(chain.leaf_pem.as_bytes())
        .unwrap()
        .1;
    let cert = der.parse_x509().unwrap();
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|g| g.to_string())
        .collect();
    let want: Vec<String> = want.iter().map(|n| format!("DNSName({n})")).collect();
    assert_eq!(sans, want);
    use x509_parser::prelude::FromDer;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(o.csr_der).unwrap();
    assert_eq!(
        cert.public_key().raw,
        csr.certification_request_info.subject_pki.raw,
        "leaf is for the CSR's key"
    );
    let chained = x509_parser::pem::parse_x509_pem(chain.chain_pem[0].as_bytes())
        .unwrap()
        .1;
    let issuer = chained.parse_x509().unwrap();
    cert.verify_signature(Some(issuer.public_key())).unwrap();
}

const NAMES: &[&str] = &["shop.example.test", "www.shop.example.test"];

#[tokio::test]
async fn dns_txt_order_validates_issues_and_downloads() {
    let e = env().await;
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-txt-1");
    let s = e.p.submit(&req).await.unwrap();
    assert_eq!(s.challenges.len(), 2);
    let o = oref(&req, &s, &s.ca_data);
    // Nothing published yet: the CA says "not yet", not an error.
    let st = e.p.trigger_check(o, &req.names).await.unwrap();
    assert_eq!(st.order, CaOrderState::InProgress);
    assert!(st.names.iter().all(|(_, d)| *d == NameDcv::Pending));
    for (_, c) in &s.challenges {
        assert_eq!(c.kind, ChallengeKind::DnsTxt);
        assert!(c.name.starts_with("_dnsauth."));
        e.dns.set_txt(&c.name, &c.value).await;
    }
    let st = e.p.trigger_check(o, &req.names).await.unwrap();
    assert_eq!(st.order, CaOrderState::Issued);
    let st = e.p.status(o).await.unwrap();
    assert_eq!(st.order, CaOrderState::Issued);
    assert!(st.names.iter().all(|(_, d)| *d == NameDcv::Valid));
    assert_issued_chain(&e, o, NAMES).await;
    let sent = &e.sim.orders()[0];
    assert_eq!(sent.comments.as_deref(), Some("dcvd-txt-1"));
    assert_eq!(sent.dcv_method, "dns-txt-token");
}

#[tokio::test]
async fn dns_cname_order_is_issued_by_the_background_recheck() {
    let e = env().await;
    let req = request(NAMES, DcvMethod::DnsCname, "dcvd-cname-1");
    let s = e.p.submit(&req).await.unwrap();
    assert!(
        s.challenges.is_empty(),
        "S2: the 201 has dcv_random_value only for dns-txt-token and http-token"
    );
    let o = oref(&req, &s, &s.ca_data);
    // Not published yet: the simulator answers an undocumented 400 code for CNAME,
    // which the client reads as "not yet", not as a failed order.
    let st = e.p.trigger_check(o, &req.names).await.unwrap();
    assert_eq!(st.order, CaOrderState::InProgress);
    let pairs: Vec<_> = req
        .names
        .iter()
        .map(|n| (n.clone(), DcvMethod::DnsCname))
        .collect();
    let t = e.p.challenges(o, &pairs).await.unwrap();
    assert_eq!(t.challenges.len(), 2);
    for (_, c) in &t.challenges {
        assert_eq!(c.kind, ChallengeKind::DnsCname);
        assert!(c.value.ends_with(".dcv.digicert.com"));
        e.dns.set_cname(&c.name, &c.value).await;
    }
    e.sim.recheck_now().await;
    assert_eq!(e.p.status(o).await.unwrap().order, CaOrderState::Issued);
    assert_issued_chain(&e, o, NAMES).await;
}

#[tokio::test]
async fn http_token_not_found_is_not_yet_then_issues() {
    let e = env().await;
    let req = request(NAMES, DcvMethod::Http, "dcvd-http-1");
    let s = e.p.submit(&req).await.unwrap();
    let o = oref(&req, &s, &s.ca_data);
    let st = e.p.trigger_check(o, &req.names).await.unwrap();
    assert_eq!(
        st.order,
        CaOrderState::InProgress,
        "file_random_value_not_found is 'not yet'"
    );
    for (_, c) in &s.challenges {
        assert_eq!(c.kind, ChallengeKind::Http);
        e.web.put(&c.name, c.path.as_deref().unwrap(), &c.value);
    }
    assert_eq!(
        e.p.trigger_check(o, &req.names).await.unwrap().order,
        CaOrderState::Issued
    );
    assert_issued_chain(&e, o, NAMES).await;
}

#[tokio::test]
async fn email_order_resends_and_issues_after_approval() {
    let e = env().await;
    let mut req = request(NAMES, DcvMethod::Email, "dcvd-mail-1");
    req.approver_emails = vec![
        (req.names[0].clone(), "admin@example.test".into()),
        (req.names[1].clone(), "admin@example.test".into()),
    ];
    let s = e.p.submit(&req).await.unwrap();
    assert!(s.challenges.is_empty());
    let id: u64 = s.ca_order_id.parse().unwrap();
    let order = e.sim.order(id).unwrap();
    assert_eq!(order.dcv_emails[0].email_domain, "example.test");
    assert_eq!(order.locale.as_deref(), Some("en"));
    let o = oref(&req, &s, &s.ca_data);
    e.p.resend_emails(o, &req.approver_emails, "fr")
        .await
        .unwrap();
    let resent = &e.sim.order(id).unwrap().resent_emails;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].locale.as_deref(), Some("fr"));
    let first = &resent[0].domain_approval_emails[0];
    assert_eq!(
        (first.domain.as_str(), first.email.as_str()),
        ("shop.example.test", "admin@example.test")
    );
    assert_eq!(
        first.email_domain.as_deref(),
        Some("example.test"),
        "approver domain is a parent"
    );
    assert_eq!(e.p.status(o).await.unwrap().order, CaOrderState::InProgress);
    let st = e.p.trigger_check(o, &req.names).await.unwrap();
    assert_eq!(
        st.order,
        CaOrderState::InProgress,
        "email orders are not sent to check-dcv"
    );
    let admin = reqwest::Client::new()
        .post(format!("http://{}/_sim/approve/{id}", e.sim.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 204);
    assert_eq!(e.p.status(o).await.unwrap().order, CaOrderState::Issued);
    assert_issued_chain(&e, o, NAMES).await;
    let approvers = e.p.approver_emails(&req.names[1]).await.unwrap();
    assert!(
        approvers.contains(&"admin@example.test".to_string()),
        "{approvers:?}"
    );
}

#[tokio::test]
async fn method_switch_gets_a_new_random_value_and_issues() {
    let e = env().await;
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-switch-1");
    let s = e.p.submit(&req).await.unwrap();
    let old = s.challenges[0].1.value.clone();
    let o = oref(&req, &s, &s.ca_data);
    let t =
        e.p.change_method(o, &req.names, DcvMethod::Http, &[])
            .await
            .unwrap();
    assert_eq!(t.challenges.len(), 2);
    let new = &t.challenges[0].1.value;
    assert_ne!(*new, old);
    let data = t.ca_data.unwrap();
    assert_eq!(data["dcv_method"], "http-token");
    assert_eq!(data["dcv_random_value"], new.as_str());
    assert!(data["random_value_expires_at"].is_string());
    for (_, c) in &t.challenges {
        e.web.put(&c.name, c.path.as_deref().unwrap(), &c.value);
    }
    let o = oref(&req, &s, &data);
    assert_eq!(
        e.p.trigger_check(o, &req.names).await.unwrap().order,
        CaOrderState::Issued
    );
    let log = e.sim.log().entries();
    assert!(
        log.iter()
            .any(|r| r.method == "PUT" && r.endpoint == "order/certificate/{id}/dcv-method")
    );
}

#[tokio::test]
async fn expired_random_value_is_not_yet_until_refreshed() {
    let e = env_with(|o| o.random_value_lifetime = Duration::ZERO).await;
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-exp-1");
    let s = e.p.submit(&req).await.unwrap();
    for (_, c) in &s.challenges {
        e.dns.set_txt(&c.name, &c.value).await;
    }
    let o = oref(&req, &s, &s.ca_data);
    let st = e.p.trigger_check(o, &req.names).await.unwrap();
    assert_eq!(
        st.order,
        CaOrderState::InProgress,
        "an expired value proves nothing"
    );
    // The expiry was never learned, so "not yet" asks the engine for a refresh.
    let data = st.ca_data.unwrap();
    assert_eq!(data["random_value_refresh_due"], true);
    assert!(e.p.tokens_need_refresh(&data));
    e.sim
        .set_random_value_lifetime(Duration::from_secs(30 * 86400));
    let pairs: Vec<_> = req
        .names
        .iter()
        .map(|n| (n.clone(), DcvMethod::DnsTxt))
        .collect();
    let t = e.p.challenges(o, &pairs).await.unwrap();
    assert_ne!(
        t.challenges[0].1.value, s.challenges[0].1.value,
        "a new value replaces the expired one"
    );
    for (_, c) in &t.challenges {
        e.dns.set_txt(&c.name, &c.value).await;
    }
    let data = t.ca_data.unwrap();
    let o = oref(&req, &s, &data);
    assert_eq!(
        e.p.trigger_check(o, &req.names).await.unwrap().order,
        CaOrderState::Issued
    );
}

#[tokio::test]
async fn cancel_and_cancel_of_a_gone_order() {
    let e = env().await;
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-cancel-1");
    let s = e.p.submit(&req).await.unwrap();
    e.p.cancel(oref(&req, &s, &s.ca_data)).await.unwrap();
    assert_eq!(e.sim.orders()[0].status, "canceled");
    let st = e.p.status(oref(&req, &s, &s.ca_data)).await.unwrap();
    assert_eq!(st.order, CaOrderState::Failed("canceled".into()));
    let gone = Submitted {
        ca_order_id: "999999".into(),
        ..s.clone()
    };
    e.p.cancel(oref(&req, &gone, &s.ca_data)).await.unwrap();
}

#[tokio::test]
async fn find_order_recovers_by_csr() {
    let e = env().await;
    let first = request(NAMES, DcvMethod::DnsTxt, "dcvd-find-1");
    let second = request(NAMES, DcvMethod::DnsTxt, "dcvd-find-2");
    e.p.submit(&first).await.unwrap();
    let placed = e.p.submit(&second).await.unwrap();
    let before = e.sim.log().entries().len();
    let Lookup::Found(mut found) = e.p.find_order(&second).await.unwrap() else {
        panic!("order not found");
    };
    let found = found.remove(0);
    let calls: Vec<String> = e.sim.log().entries()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.endpoint))
        .collect();
    assert_eq!(
        calls,
        [
            "GET order/certificate",
            "GET order/certificate/{id}",
            "GET order/certificate/{id}",
            "PUT order/certificate/{id}/dcv-random-value"
        ],
        "the list omits CSRs: each same-names candidate's details are read, then the match's random value"
    );
    assert_eq!(found.ca_order_id, placed.ca_order_id);
    assert_eq!(
        found.challenges, placed.challenges,
        "same random value, same tokens"
    );
    assert!(found.ca_data["random_value_expires_at"].is_string());
    let none = request(NAMES, DcvMethod::DnsTxt, "dcvd-never-placed");
    assert_eq!(e.p.find_order(&none).await.unwrap(), Lookup::NotFound);
    assert_eq!(e.sim.orders().len(), 2, "recovery never orders");
}

#[tokio::test]
async fn unknown_key_is_a_permanent_auth_error_without_the_key() {
    let e = env().await;
    let secret = "wrong-key-3b9d7";
    let p = DigicertProvider::new("dc", &cfg(&e.sim.base_url(), secret)).unwrap();
    let err = p
        .submit(&request(NAMES, DcvMethod::DnsTxt, "dcvd-auth"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert_eq!(err.status, Some(403));
    assert!(err.has_code("access_denied"));
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("authentication failed for provider dc: check api_key"),
        "{shown}"
    );
    assert!(!shown.contains(secret), "{shown}");
    assert!(
        DigicertProvider::new(
            "dc",
            &DigicertConfig {
                api_key: None,
                ..cfg("http://x", "k")
            }
        )
        .is_err()
    );
}

#[tokio::test]
async fn refusal_keeps_every_error_and_is_rejected() {
    let e = env().await;
    let mut req = request(&["*.shop.example.test"], DcvMethod::Http, "dcvd-bad");
    req.csr_pem = "not a csr".into();
    let err = e.p.submit(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(err.rejected);
    assert!(err.has_code("csr_invalid_cannot_parse"), "{err}");
    assert!(err.has_code("invalid_wildcard_dcv_method"), "{err}");
    assert_eq!(err.errors.len(), 2);
    assert!(e.sim.orders().is_empty());
}

#[tokio::test]
async fn rate_limited_with_and_without_retry_after() {
    let e = env().await;
    let name = DomainName::parse("shop.example.test").unwrap();
    e.sim.force_faults(Fault::RateLimited, 1);
    let err = e.p.approver_emails(&name).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.retry_after),
        (ErrorKind::RateLimited, None)
    );
    assert!(err.has_code("request_limit_exceeded"));

    let e = env_with(|o| o.retry_after = Some(7)).await;
    e.sim.force_faults(Fault::RateLimited, 1);
    let err = e.p.approver_emails(&name).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.retry_after),
        (ErrorKind::RateLimited, Some(Duration::from_secs(7)))
    );
}

#[tokio::test]
async fn sliding_window_limit_answers_429_on_the_101st_request() {
    let e = env().await;
    let name = DomainName::parse("shop.example.test").unwrap();
    for i in 0..100 {
        e.p.approver_emails(&name)
            .await
            .unwrap_or_else(|err| panic!("request {i}: {err}"));
    }
    let err = e.p.approver_emails(&name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status, Some(429));
}

#[tokio::test]
async fn server_errors_are_transient_then_success() {
    let e = env().await;
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-5xx");
    e.sim.force_faults(Fault::ServerError, 3);
    for _ in 0..3 {
        let err = e.p.submit(&req).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.status, err.rejected),
            (ErrorKind::Transient, Some(500), false)
        );
    }
    e.p.submit(&req).await.unwrap();
    assert_eq!(e.sim.orders().len(), 1);
}

#[tokio::test]
async fn malformed_and_dropped_answers_are_transient() {
    let e = env().await;
    let name = DomainName::parse("shop.example.test").unwrap();
    e.sim.force_faults(Fault::Malformed, 1);
    let err = e.p.approver_emails(&name).await.unwrap_err();
    assert_eq!((err.kind(), err.status), (ErrorKind::Transient, Some(200)));
    e.sim.force_faults(Fault::Drop, 1);
    let err = e.p.approver_emails(&name).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status),
        (ErrorKind::Transient, None),
        "{err}"
    );
    assert!(!err.rejected);
    e.p.approver_emails(&name).await.unwrap();
}

#[tokio::test]
async fn timeout_is_transient_and_outcome_unknown() {
    let e = env().await;
    let mut c = cfg(&e.sim.base_url(), KEY);
    c.request_timeout = Duration::from_millis(300);
    let p = DigicertProvider::new("dc", &c).unwrap();
    e.sim.set_faults(dcvd::sim::Faults {
        latency: Duration::from_secs(3),
        ..Default::default()
    });
    let err = p
        .submit(&request(NAMES, DcvMethod::DnsTxt, "dcvd-slow"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.status, err.rejected),
        (ErrorKind::Transient, None, false)
    );
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn debug_output_holds_no_key() {
    let e = env().await;
    let shown = format!("{:?}", e.p);
    assert!(shown.contains("dc") && !shown.contains(KEY), "{shown}");
}

#[tokio::test]
async fn dns_txt_at_the_name_is_validated_there() {
    let e = env().await;
    let mut c = cfg(&e.sim.base_url(), KEY);
    c.dns_txt_at = "name".into();
    let p = DigicertProvider::new("dc", &c).unwrap();
    let req = request(&["*.shop.example.test"], DcvMethod::DnsTxt, "dcvd-at-name");
    let s = p.submit(&req).await.unwrap();
    let (_, ch) = &s.challenges[0];
    assert_eq!(
        ch.name, "shop.example.test",
        "wildcard token at the base name"
    );
    e.dns.set_txt(&ch.name, &ch.value).await;
    let st = p
        .trigger_check(oref(&req, &s, &s.ca_data), &req.names)
        .await
        .unwrap();
    assert_eq!(st.order, CaOrderState::Issued);
}

#[tokio::test]
async fn a_damaged_pem_download_is_a_retried_error_never_a_shorter_chain() {
    use axum::routing::get;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let e = env_with(|o| o.auto_approve_email_after = Some(Duration::ZERO)).await;
    // A real chain from the simulator, then served cut after the second block.
    let mut req = request(&["shop.example.test"], DcvMethod::Email, "dcvd-cut-1");
    req.approver_emails = vec![(req.names[0].clone(), "admin@example.test".into())];
    let s = e.p.submit(&req).await.unwrap();
    e.sim.recheck_now().await;
    let o = oref(&req, &s, &s.ca_data);
    let chain = e.p.download(o).await.unwrap();
    let full = format!("{}{}", chain.leaf_pem, chain.chain_pem.join(""));
    let cut_at = full.rfind("-----END CERTIFICATE-----").unwrap();
    for (what, body) in [
        ("cut", full[..cut_at].to_string()),
        ("leftover", format!("{full}<html>proxy error</html>")),
    ] {
        let app = axum::Router::new().route(
            "/services/v2/certificate/{id}/download/format/pem_all",
            get(move || {
                let b = body.clone();
                async move { b }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let p =
            DigicertProvider::new("dc", &cfg(&format!("http://{addr}/services/v2"), KEY)).unwrap();
        let err = p.download(o).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{what}: {err}");
        assert!(err.to_string().contains("damaged"), "{what}: {err}");
    }
}
