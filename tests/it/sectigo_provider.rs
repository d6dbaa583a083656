//! SectigoProvider against the Sectigo simulator: CNAME/HTTP/e-mail DCV to issuance and
//! download, resend, recovery, cancel, call count, issued-order AutoUpdateDCV answer.

use crate::support as common;
use crate::support::sectigo as sectigo_common;

use std::collections::BTreeMap;

use dcvd::ca::{CaOrderState, Provider, Tokens};
use dcvd::model::{ChallengeKind, DcvMethod};
use dcvd::sim::sectigo::{self, SectigoSimOptions};
use sectigo_common::*;

async fn sim(
    dns: Option<&common::TestDns>,
    http: Option<(&[&str], &common::TestWeb)>,
) -> sectigo::SectigoSim {
    let mut http_addresses = BTreeMap::new();
    if let Some((hosts, h)) = http {
        for host in hosts {
            http_addresses.insert(host.to_string(), h.addr);
        }
    }
    sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        nameserver: dns.map(|d| d.addr),
        http_addresses,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// Leaf → intermediate → root, each issued by the next, the leaf for the CSR's key.
fn assert_chain_leaf_to_root(chain: &dcvd::ca::IssuedChain, csr_der: &[u8], cn: &str) {
    let leaf_der = der_of(&chain.leaf_pem);
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let ders: Vec<Vec<u8>> = chain.chain_pem.iter().map(|p| der_of(p)).collect();
    assert_eq!(ders.len(), 2);
    let (_, int) = x509_parser::parse_x509_certificate(&ders[0]).unwrap();
    let (_, root) = x509_parser::parse_x509_certificate(&ders[1]).unwrap();
    assert_eq!(leaf.issuer(), int.subject());
    assert_eq!(int.issuer(), root.subject());
    assert_eq!(root.issuer(), root.subject());
    let cn_got = leaf
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cn_got, cn);
    use x509_parser::prelude::FromDer;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr_der).unwrap();
    assert_eq!(
        leaf.public_key().raw,
        csr.certification_request_info.subject_pki.raw
    );
}

#[tokio::test]
async fn cname_order_issues_and_downloads_in_at_most_six_calls() {
    let dns = common::TestDns::start("example.test").await;
    let sim = sim(Some(&dns), None).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-cname-1",
        &["www.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    assert_eq!(sub.challenges.len(), 1);
    let (_, ch) = &sub.challenges[0];
    assert_eq!(ch.kind, ChallengeKind::DnsCname);
    let h = dcvd::ca::sectigo::hashes::csr_hashes(&req.csr_der);
    assert_eq!(ch.name, format!("_{}.www.example.test", h.md5_upper));
    let uv = sub.ca_data["uniqueValue"].as_str().unwrap().to_string();
    assert!(
        ch.value.ends_with(&format!(".{uv}.sectigo.com")),
        "{}",
        ch.value
    );
    dns.set_cname(&ch.name, &ch.value).await;

    let mut held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    let t = p.trigger_check(held.r(), &req.names).await.unwrap();
    assert_eq!(t.order, CaOrderState::InProgress);
    held.data = t.ca_data.unwrap();
    // Single-domain: !GetMDCDomainDetails is refused, CollectSSL tells the state.
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, CaOrderState::Issued);
    assert!(st.names.is_empty(), "{:?}", st.names);
    held.data = st.ca_data.unwrap();
    let chain = p.download(held.r()).await.unwrap();
    assert_chain_leaf_to_root(&chain, &req.csr_der, "www.example.test");

    let calls = sim.log().entries();
    let endpoints: Vec<&str> = calls.iter().map(|c| c.endpoint.as_str()).collect();
    assert_eq!(
        endpoints,
        [
            "!AutoApplySSL",
            "!ResendDCVEmail",
            "!GetMDCDomainDetails",
            "download/CollectSSL",
            "download/CollectSSL"
        ]
    );
    assert!(calls.len() <= 6);
    let apply = &sim.forms("!AutoApplySSL")[0];
    let got = params(apply);
    let max = dcvd::model::public_tls_max_validity_days(
        dcvd::clock::Clock::now(&dcvd::clock::SystemClock).date_naive(),
    );
    assert!(got.contains(&format!("days={max}")), "{got:?}");
    for want in [
        "product=287",
        "serverSoftware=-1",
        "dcvMethod=CNAME_CSR_HASH",
        "showCertificateID=Y",
        "isCustomerValidated=N",
        "responseFormat=1",
    ] {
        assert!(got.contains(&want.to_string()), "{want} missing in {got:?}");
    }
    assert!(got.contains(&format!("uniqueValue={uv}")));
    assert!(apply.params.iter().all(|(k, _)| k != "loginPassword"));

    // The order is issued now: the generic "orderNumber invalid" answer is confirmed
    // with CollectSSL, which says issued.
    let before = sim.log().counts()["download/CollectSSL"];
    let again = p.trigger_check(held.r(), &req.names).await.unwrap();
    assert_eq!(again.order, CaOrderState::Issued);
    assert_eq!(sim.log().counts()["download/CollectSSL"], before + 1);
    let tokens = p
        .change_method(held.r(), &req.names, DcvMethod::Http, &[])
        .await
        .unwrap();
    assert_eq!(tokens, Tokens::default());

    // Cancel after issuance revokes (with a reason) instead of refunding.
    p.cancel(held.r()).await.unwrap();
    let revoke = params(&sim.forms("!AutoRevokeSSL")[0]);
    assert_eq!(revoke[0], format!("orderNumber={}", sub.ca_order_id));
    assert!(revoke[1].starts_with("revocationReason="));
    assert!(sim.forms("!AutoRefund").is_empty());
    assert_eq!(
        serde_json::to_value(sim.orders()[0].state).unwrap(),
        "revoked"
    );
}

#[tokio::test]
async fn cname_at_a_parent_name_validates_the_subdomain() {
    let dns = common::TestDns::start("example.test").await;
    let sim = sim(Some(&dns), None).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-cname-parent",
        &["a.b.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let (_, ch) = &sub.challenges[0];
    let parent_owner = ch.name.replace(".a.b.example.test", ".example.test");
    dns.set_cname(&parent_owner, &ch.value).await;
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    p.trigger_check(held.r(), &req.names).await.unwrap();
    assert_eq!(
        p.status(held.r()).await.unwrap().order,
        CaOrderState::Issued
    );
}

#[tokio::test]
async fn http_order_issues_only_once_the_file_is_served() {
    let http = common::TestWeb::start().await;
    let sim = sim(None, Some((&["shop.example.test"], &http))).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-http-1",
        &["shop.example.test"],
        &[DcvMethod::Http],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let (_, ch) = &sub.challenges[0];
    assert_eq!(ch.kind, ChallengeKind::Http);
    let path = ch.path.clone().unwrap();
    assert!(path.starts_with("/.well-known/pki-validation/") && path.ends_with(".txt"));
    let mut held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());

    // Not served yet: the CA keeps the order pending.
    held.data = p
        .trigger_check(held.r(), &req.names)
        .await
        .unwrap()
        .ca_data
        .unwrap();
    let st = p.status(held.r()).await.unwrap();
    assert!(st.names.is_empty(), "single-domain: no per-name status");
    assert_eq!(st.order, CaOrderState::InProgress);
    held.data = st.ca_data.unwrap();
    assert_eq!(sim.log().counts()["download/CollectSSL"], 1);
    // Polling on: no further collect before collect_interval or a new trigger.
    for _ in 0..3 {
        let st = p.status(held.r()).await.unwrap();
        assert_eq!(st.order, CaOrderState::InProgress);
    }
    assert_eq!(
        sim.log().counts()["download/CollectSSL"],
        1,
        "no collect while pending"
    );
    assert_eq!(sim.log().counts()["!GetMDCDomainDetails"], 1);

    http.put("shop.example.test", &path, &ch.value);
    held.data = p
        .trigger_check(held.r(), &req.names)
        .await
        .unwrap()
        .ca_data
        .unwrap();
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, CaOrderState::Issued);
    held.data = st.ca_data.unwrap();
    let chain = p.download(held.r()).await.unwrap();
    assert_chain_leaf_to_root(&chain, &req.csr_der, "shop.example.test");
}

#[tokio::test]
async fn email_order_issues_after_approval() {
    let sim = sim(None, None).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-email-1",
        &["mail.example.test"],
        &[DcvMethod::Email],
        &[("mail.example.test", "admin@example.test")],
    );
    let sub = p.submit(&req).await.unwrap();
    assert!(sub.challenges.is_empty());
    let got = params(&sim.forms("!AutoApplySSL")[0]);
    assert!(got.contains(&"dcvMethod=EMAIL".to_string()));
    assert!(got.contains(&"dcvEmailAddress=admin@example.test".to_string()));
    assert_eq!(sim.log().counts()["!GetDCVEmailAddressList"], 1);

    let mut held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, CaOrderState::InProgress);
    held.data = st.ca_data.unwrap();

    // Resend uses the cached list (no second list call) and names the address.
    p.resend_emails(held.r(), &req.approver_emails, "en")
        .await
        .unwrap();
    assert_eq!(sim.log().counts()["!GetDCVEmailAddressList"], 1);
    let resent = params(&sim.forms("!ResendDCVEmail")[0]);
    assert_eq!(
        resent,
        [
            format!("orderNumber={}", sub.ca_order_id),
            "dcvEmailAddress=admin@example.test".into()
        ]
    );
    // After 24 h the list is fetched again before the address is used.
    p.backdate_approver_lists(std::time::Duration::from_secs(25 * 3600));
    p.resend_emails(held.r(), &req.approver_emails, "en")
        .await
        .unwrap();
    assert_eq!(sim.log().counts()["!GetDCVEmailAddressList"], 2);
    assert_eq!(sim.forms("!ResendDCVEmail").len(), 2);

    let number: u64 = sub.ca_order_id.parse().unwrap();
    let url = format!("http://{}/_sim/approve/{number}", sim.addr());
    assert!(
        reqwest::Client::new()
            .post(url)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    // An e-mail approval happens at the CA: dcvd learns of it at the next collect,
    // no sooner than collect_interval after the last one (Sectigo's 3 hours).
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, CaOrderState::InProgress);
    let last = held.data["lastCollect"].as_i64().unwrap();
    held.data["lastCollect"] = serde_json::json!(last - 300);
    let st = p.status(held.r()).await.unwrap();
    assert_eq!(st.order, CaOrderState::Issued);
    held.data = st.ca_data.unwrap();
    let chain = p.download(held.r()).await.unwrap();
    assert_chain_leaf_to_root(&chain, &req.csr_der, "mail.example.test");
    let admin = |path: &str| format!("http://{}/_sim/{path}", sim.addr());
    let orders: serde_json::Value = reqwest::get(admin("orders"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["count"], 1);
    assert_eq!(orders["orders"][0]["state"], "issued");
    assert_eq!(
        orders["orders"][0]["names"][0]["email"],
        "admin@example.test"
    );
    let log: serde_json::Value = reqwest::get(admin("requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log[0]["endpoint"], "!GetDCVEmailAddressList");
}

#[tokio::test]
async fn cancel_refunds_a_pending_order_and_status_reports_failed() {
    let sim = sim(None, None).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-cancel-1",
        &["z.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let mut data = sub.ca_data.clone();
    data["lastCollect"] = serde_json::json!(0);
    let held = Held::new(&req, &sub.ca_order_id, data);
    p.cancel(held.r()).await.unwrap();
    assert_eq!(sim.log().counts()["!AutoRefund"], 1);
    let st = p.status(held.r()).await.unwrap();
    assert!(
        matches!(st.order, CaOrderState::Failed(_)),
        "{:?}",
        st.order
    );
}

#[tokio::test]
async fn background_check_issues_without_a_trigger() {
    let dns = common::TestDns::start("example.test").await;
    let sim = sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        nameserver: Some(dns.addr),
        check_interval: std::time::Duration::from_millis(20),
        ..Default::default()
    })
    .await
    .unwrap();
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-bg-1",
        &["bg.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let number: u64 = sub.ca_order_id.parse().unwrap();
    assert_eq!(
        sim.orders()[0].state,
        sectigo::state::SimOrderState::Pending
    );
    let (_, ch) = &sub.challenges[0];
    dns.set_cname(&ch.name, &ch.value).await;
    let issued = sectigo::state::SimOrderState::Issued;
    assert!(
        sim.wait_for_state(number, issued, std::time::Duration::from_secs(10))
            .await
    );
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    assert_eq!(
        p.status(held.r()).await.unwrap().order,
        CaOrderState::Issued
    );
    assert!(sim.forms("!AutoUpdateDCV").is_empty());
}
