//! DigiCert crash recovery and operator adoption against the simulator, which serves
//! GET order in the recorded shape (`comments` only in `requests[]`, `certificate.csr`),
//! plus the client fixes of the wire audit that need a CA to show them.

use crate::support as common;

use std::time::Duration;

use common::csr;
use dcvd::ca::digicert::DigicertProvider;
use dcvd::ca::{ErrorKind, Lookup, OrderRef, Provider, SubmitRequest};
use dcvd::config::{DigicertConfig, DigicertCustomField};
use dcvd::model::{DcvMethod, DomainName};
use dcvd::sim::digicert::{DigicertSim, DigicertSimOptions, start};

const KEY: &str = "recovery-key-91";
const NAMES: &[&str] = &["shop.example.test", "www.shop.example.test"];

fn cfg(sim: &DigicertSim) -> DigicertConfig {
    DigicertConfig {
        base_url: sim.base_url(),
        api_key: Some(KEY.to_string().into()),
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

async fn sim_with(f: impl FnOnce(&mut DigicertSimOptions)) -> DigicertSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut o = DigicertSimOptions {
        api_keys: vec![KEY.into()],
        recheck_interval: Duration::ZERO,
        ..Default::default()
    };
    f(&mut o);
    start(o).await.unwrap()
}

fn provider(sim: &DigicertSim) -> DigicertProvider {
    DigicertProvider::new("dc", &cfg(sim)).unwrap()
}

fn request(n: &[&str], method: DcvMethod, reference: &str) -> SubmitRequest {
    let (pem, der) = csr(n);
    SubmitRequest {
        reference: reference.into(),
        certificate: "shop".into(),
        product: "ssl_dv_geotrust".into(),
        names: n.iter().map(|s| DomainName::parse(s).unwrap()).collect(),
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

/// Wait (bounded) until the simulator holds `n` orders.
async fn until_orders(sim: &DigicertSim, n: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while sim.orders().len() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the simulator never created the order");
}

#[tokio::test]
async fn a_submit_whose_answer_is_lost_is_found_by_its_csr_and_never_ordered_twice() {
    // A slow CA: the order is created 1 s after the POST, the client gives up at 300 ms.
    let sim = sim_with(|o| o.create_delay = Duration::from_secs(1)).await;
    let mut c = cfg(&sim);
    c.request_timeout = Duration::from_millis(300);
    let impatient = DigicertProvider::new("dc", &c).unwrap();
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-lost-1");
    let err = impatient.submit(&req).await.unwrap_err();
    assert_eq!((err.kind(), err.rejected), (ErrorKind::Transient, false));
    drop(impatient);
    // Nothing at the CA yet: NotFound is the truth now, which is why the engine may act
    // on it only after `in_flight_bound`.
    let fresh = provider(&sim);
    assert_eq!(fresh.find_order(&req).await.unwrap(), Lookup::NotFound);
    // The CA keeps creating the order although the client gave up.
    until_orders(&sim, 1).await;
    let placed = sim.orders()[0].clone();
    assert!(
        placed.request.get("comments").is_some()
            && placed.comments.as_deref() == Some("dcvd-lost-1")
    );
    let Lookup::Found(found) = fresh.find_order(&req).await.unwrap() else {
        panic!("the order placed by the lost submit was not found");
    };
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ca_order_id, placed.id.to_string());
    assert_eq!(
        found[0].challenges.len(),
        2,
        "pending token order: tokens come back"
    );
    assert_eq!(found[0].challenges[0].1.value, placed.random_value);
    assert_eq!(sim.orders().len(), 1, "recovery never orders");
    assert!(
        fresh.in_flight_bound() >= c.request_timeout + Duration::from_secs(60),
        "{:?}",
        fresh.in_flight_bound()
    );
}

#[tokio::test]
async fn the_reference_alone_is_not_proof_a_candidate_without_csr_is_unsure() {
    let sim = sim_with(|_| {}).await;
    let p = provider(&sim);
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-doubt-1");
    let placed = p.submit(&req).await.unwrap();
    let id: u64 = placed.ca_order_id.parse().unwrap();
    sim.forget_csr(id);
    let before = sim.orders().len();
    match p.find_order(&req).await.unwrap() {
        Lookup::Unsure { reason, candidates } => {
            assert_eq!(candidates, vec![placed.ca_order_id.clone()]);
            assert!(reason.contains("dcvd-doubt-1"), "{reason}");
            assert!(reason.contains("no CSR"), "{reason}");
            assert!(reason.contains("adopt"), "{reason}");
        }
        other => panic!("expected Unsure, got {other:?}"),
    }
    // A different request for the same names (another CSR, another reference) cannot
    // rule the CSR-less order out either.
    let other = request(NAMES, DcvMethod::DnsTxt, "dcvd-doubt-2");
    assert!(matches!(
        p.find_order(&other).await.unwrap(),
        Lookup::Unsure { .. }
    ));
    assert_eq!(sim.orders().len(), before, "no order placed");
}

#[tokio::test]
async fn duplicates_are_all_found_oldest_first_and_known_orders_are_never_adopted() {
    let sim = sim_with(|_| {}).await;
    let p = provider(&sim);
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-dup-1");
    let first = p.submit(&req).await.unwrap();
    let second = p.submit(&req).await.unwrap();
    let Lookup::Found(found) = p.find_order(&req).await.unwrap() else {
        panic!("not found");
    };
    let ids: Vec<&str> = found.iter().map(|s| s.ca_order_id.as_str()).collect();
    assert_eq!(
        ids,
        [first.ca_order_id.as_str(), second.ca_order_id.as_str()]
    );
    assert!(
        !found[0].challenges.is_empty(),
        "the kept (oldest) order has its tokens"
    );
    let mut tracked = req.clone();
    tracked.known_ca_orders = vec![first.ca_order_id.clone()];
    let Lookup::Found(found) = p.find_order(&tracked).await.unwrap() else {
        panic!("not found");
    };
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ca_order_id, second.ca_order_id);
    tracked.known_ca_orders.push(second.ca_order_id.clone());
    assert_eq!(p.find_order(&tracked).await.unwrap(), Lookup::NotFound);
}

#[tokio::test]
async fn the_whole_list_is_read_past_the_first_page() {
    let sim = sim_with(|o| o.rate_limits = false).await;
    let p = provider(&sim);
    let ours = request(NAMES, DcvMethod::DnsTxt, "dcvd-page-ours");
    p.submit(&ours).await.unwrap();
    // 110 newer orders for the same names: ours is on the second page, newest first.
    for i in 0..110 {
        p.submit(&request(
            NAMES,
            DcvMethod::DnsTxt,
            &format!("dcvd-page-{i}"),
        ))
        .await
        .unwrap();
    }
    let before = sim.log().entries().len();
    let Lookup::Found(found) = p.find_order(&ours).await.unwrap() else {
        panic!("our order on page two was not found");
    };
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ca_order_id, sim.orders()[0].id.to_string());
    let lists: Vec<String> = sim.log().entries()[before..]
        .iter()
        .filter(|r| r.endpoint == "order/certificate")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
}

#[tokio::test]
async fn order_by_id_adopts_matching_orders_and_refuses_others() {
    let sim = sim_with(|_| {}).await;
    let p = provider(&sim);
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-adopt-1");
    let placed = p.submit(&req).await.unwrap();
    let adopted = p.order_by_id(&req, &placed.ca_order_id).await.unwrap();
    assert_eq!(adopted.ca_order_id, placed.ca_order_id);
    assert_eq!(adopted.challenges, placed.challenges);
    assert!(!adopted.issued);

    let other_names = request(&["api.example.test"], DcvMethod::DnsTxt, "dcvd-adopt-2");
    let err = p
        .order_by_id(&other_names, &placed.ca_order_id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    let shown = err.to_string();
    assert!(
        shown.contains("shop.example.test") && shown.contains("api.example.test"),
        "{shown}"
    );

    let other_key = request(NAMES, DcvMethod::DnsTxt, "dcvd-adopt-3");
    let err = p
        .order_by_id(&other_key, &placed.ca_order_id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CSR"), "{err}");

    // An order placed by hand with email DCV: adopted without tokens, as an email order.
    let mut by_hand = request(&["mail.example.test"], DcvMethod::Email, "dcvd-adopt-4");
    by_hand.approver_emails = vec![(by_hand.names[0].clone(), "admin@example.test".into())];
    let placed = p.submit(&by_hand).await.unwrap();
    by_hand.methods = vec![DcvMethod::DnsTxt];
    let adopted = p.order_by_id(&by_hand, &placed.ca_order_id).await.unwrap();
    assert!(adopted.challenges.is_empty());
    assert_eq!(adopted.ca_data["dcv_method"], "email");

    let err = p.order_by_id(&req, "424242").await.unwrap_err();
    assert_eq!((err.kind(), err.status), (ErrorKind::Permanent, Some(404)));
    let err = p.order_by_id(&req, "not-a-number").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
}

#[tokio::test]
async fn order_body_holds_documented_fields_capped_validity_and_custom_fields() {
    let sim = sim_with(|_| {}).await;
    let mut c = cfg(&sim);
    c.custom_fields = vec![DigicertCustomField {
        metadata_id: 12,
        value: "Invoice #12345".into(),
    }];
    let p = DigicertProvider::new("dc", &c).unwrap();
    let mut req = request(NAMES, DcvMethod::Email, "dcvd-body-1");
    req.validity_days = Some(397);
    req.locale = "fr".into();
    req.approver_emails = req
        .names
        .iter()
        .map(|n| (n.clone(), "admin@example.test".to_string()))
        .collect();
    let placed = p.submit(&req).await.unwrap();
    let o = sim.order(placed.ca_order_id.parse().unwrap()).unwrap();
    let max = dcvd::model::public_tls_max_validity_days(
        dcvd::clock::Clock::now(&dcvd::clock::SystemClock).date_naive(),
    );
    assert_eq!(o.validity_days, max.min(397));
    assert!(o.request.get("validity_years").is_none());
    assert_eq!(
        o.request["custom_fields"],
        serde_json::json!([{"metadata_id": 12, "value": "Invoice #12345"}])
    );
    assert_eq!(o.locale.as_deref(), Some("fr"));
    // email_domain is the registrable domain, not the name itself.
    assert!(
        o.dcv_emails
            .iter()
            .all(|d| d.email_domain == "example.test"),
        "{:?}",
        o.dcv_emails
    );
}

#[tokio::test]
async fn a_switch_to_email_resends_in_the_certificates_locale() {
    let sim = sim_with(|_| {}).await;
    let p = provider(&sim);
    let mut req = request(NAMES, DcvMethod::DnsTxt, "dcvd-locale-1");
    req.locale = "de".into();
    let placed = p.submit(&req).await.unwrap();
    let approvers: Vec<(DomainName, String)> = req
        .names
        .iter()
        .map(|n| (n.clone(), "hostmaster@example.test".to_string()))
        .collect();
    let o = OrderRef {
        reference: &req.reference,
        ca_order_id: &placed.ca_order_id,
        ca_data: &placed.ca_data,
        names: &req.names,
        csr_der: &req.csr_der,
    };
    p.change_method(o, &req.names, DcvMethod::Email, &approvers)
        .await
        .unwrap();
    let order = sim.order(placed.ca_order_id.parse().unwrap()).unwrap();
    assert_eq!(order.resent_emails.len(), 1);
    assert_eq!(order.resent_emails[0].locale.as_deref(), Some("de"));
    let sent = &order.resent_emails[0].domain_approval_emails;
    assert!(
        sent.iter()
            .all(|a| a.email_domain.as_deref() == Some("example.test")),
        "{sent:?}"
    );
    // No approver: nothing is sent, and the refusal says what to configure.
    let err = p.resend_emails(o, &[], "de").await.unwrap_err();
    assert!(err.to_string().contains("approver_emails"), "{err}");
    assert_eq!(
        sim.order(placed.ca_order_id.parse().unwrap())
            .unwrap()
            .resent_emails
            .len(),
        1
    );
}

/// A stand-in CertCentral serving fixed answers: the list at `/order/certificate`, and
/// `detail` for any order id.
async fn fixed_ca(list: serde_json::Value, detail: serde_json::Value) -> std::net::SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/services/v2/order/certificate",
            get(move || {
                let l = list.clone();
                async move { axum::Json(l) }
            }),
        )
        .route(
            "/services/v2/order/certificate/{id}",
            get(move || {
                let d = detail.clone();
                async move { axum::Json(d) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn fixed_provider(addr: std::net::SocketAddr) -> DigicertProvider {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = DigicertConfig {
        base_url: format!("http://{addr}/services/v2"),
        api_key: Some(KEY.to_string().into()),
        api_key_file: None,
        rate_limits: None,
        dns_txt_at: "_dnsauth".into(),
        poll_interval: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        in_flight_margin: Duration::from_secs(300),
        server_platform: -1,
        custom_fields: Vec::new(),
    };
    DigicertProvider::new("dc", &c).unwrap()
}

#[tokio::test]
async fn the_recorded_order_payload_with_an_unreadable_csr_is_unsure_never_not_found() {
    let order: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/fixtures/digicert/order.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let list = serde_json::json!({
        "orders": [{"id": 123456789, "certificate": {"common_name": "digicert.com", "dns_names": ["digicert.com"]}}],
        "page": {"total": 1, "limit": 100, "offset": 0}
    });
    let p = fixed_provider(fixed_ca(list, order).await);
    let req = request(&["digicert.com"], DcvMethod::DnsTxt, "dcvd-fixture-1");
    match p.find_order(&req).await.unwrap() {
        Lookup::Unsure { reason, candidates } => {
            assert_eq!(candidates, vec!["123456789".to_string()]);
            assert!(reason.contains("could not be read"), "{reason}");
        }
        other => panic!("expected Unsure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_whose_pages_do_not_reach_its_total_is_unsure() {
    let list = serde_json::json!({"orders": [], "page": {"total": 3, "limit": 100, "offset": 0}});
    let p = fixed_provider(fixed_ca(list, serde_json::json!({})).await);
    let req = request(NAMES, DcvMethod::DnsTxt, "dcvd-short-1");
    match p.find_order(&req).await.unwrap() {
        Lookup::Unsure { reason, candidates } => {
            assert!(candidates.is_empty());
            assert!(reason.contains("could not be read in full"), "{reason}");
            assert!(reason.contains("dcvd-short-1"), "{reason}");
        }
        other => panic!("expected Unsure, got {other:?}"),
    }
    // A full page without totals may hide more: the client asks for the next one.
    let item = serde_json::json!({"id": 1, "certificate": {"common_name": "other.example.test", "dns_names": []}});
    let full = serde_json::json!({ "orders": vec![item; 100] });
    let p = fixed_provider(fixed_ca(full, serde_json::json!({})).await);
    match p.find_order(&req).await.unwrap() {
        Lookup::Unsure { reason, .. } => assert!(reason.contains("more than"), "{reason}"),
        other => panic!("expected Unsure, got {other:?}"),
    }
}
