//! Sectigo wire rules against the simulator and recorded shapes: the generic -4 is not
//! "issued", wildcards keep `*.`, a wrong base_url is Permanent, CollectSSL survives a raw
//! `+`, refunds carry a reason, `days` stays within the validity in force.

use crate::support::sectigo as sectigo_common;

use dcvd::ca::{CaOrderState, ErrorKind, Provider};
use dcvd::model::DcvMethod;
use dcvd::sim::sectigo::{self, SectigoSimOptions};
use sectigo_common::*;

async fn sim() -> sectigo::SectigoSim {
    sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// -4 "'orderNumber' argument is invalid" on a rejected order: CollectSSL is asked, and
/// the order ends as failed with the CA's words, never as issued.
#[tokio::test]
async fn order_number_refusal_on_a_rejected_order_is_failed_with_the_cas_words() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-rej",
        &["rej.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    let words = "Rejected: the domain is on a high-risk list";
    assert!(sim.reject(sub.ca_order_id.parse().unwrap(), words));
    let st = p.trigger_check(held.r(), &req.names).await.unwrap();
    match &st.order {
        CaOrderState::Failed(why) => assert!(why.contains(words), "{why}"),
        other => panic!("a rejected order reported as {other:?}"),
    }
    assert!(st.names.is_empty(), "no name is valid: {:?}", st.names);
    let collect = params(&sim.forms("download/CollectSSL")[0]);
    assert!(collect.contains(&"queryType=0".to_string()), "{collect:?}");
    let e = p
        .change_method(held.r(), &req.names, DcvMethod::Http, &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.to_string().contains(words), "{e}");
    // Refunded (cancelled) and unknown orders: failed too.
    let sub2 = p
        .submit(&request(
            "dcvd-ref",
            &["ref2.example.test"],
            &[DcvMethod::DnsCname],
            &[],
        ))
        .await
        .unwrap();
    let req2 = request(
        "dcvd-ref",
        &["ref2.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let held2 = Held::new(&req2, &sub2.ca_order_id, sub2.ca_data.clone());
    p.cancel(held2.r()).await.unwrap();
    let st = p.trigger_check(held2.r(), &req2.names).await.unwrap();
    assert!(
        matches!(st.order, CaOrderState::Failed(_)),
        "{:?}",
        st.order
    );
    let mut data = sub2.ca_data.clone();
    data["orderNumber"] = serde_json::json!("424242");
    let unknown = Held::new(&req2, "424242", data);
    let st = p.trigger_check(unknown.r(), &req2.names).await.unwrap();
    match st.order {
        CaOrderState::Failed(why) => assert!(why.contains("does not know order 424242"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wildcard_names_keep_the_star_in_auto_update_dcv() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let mut req = request(
        "dcvd-wild",
        &["*.wild.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    req.product = "289".into();
    let sub = p.submit(&req).await.unwrap();
    assert_eq!(sim.orders()[0].names[0].name, "*.wild.example.test");
    // The CNAME goes at the base name (the ADN), the only place a wildcard can use.
    let h = dcvd::ca::sectigo::hashes::csr_hashes(&req.csr_der);
    assert_eq!(
        sub.challenges[0].1.name,
        format!("_{}.wild.example.test", h.md5_upper)
    );
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    p.change_method(held.r(), &req.names, DcvMethod::DnsCname, &[])
        .await
        .unwrap();
    let form = params(&sim.forms("!AutoUpdateDCV")[0]);
    assert!(
        form.contains(&"domainName=*.wild.example.test".to_string()),
        "{form:?}"
    );
    // No file-based DCV for wildcards (SC45): the simulator refuses, dcvd says so.
    let e = p
        .change_method(held.r(), &req.names, DcvMethod::Http, &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
}

#[tokio::test]
async fn a_wrong_base_url_is_permanent_and_names_the_url() {
    let sim = sim().await;
    let base = format!("{}/v2", sim.base_url());
    let p = provider(&base);
    let req = request("dcvd-404", &["x.example.test"], &[DcvMethod::DnsCname], &[]);
    let e = p.submit(&req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.rejected, "a 404 placed nothing");
    assert_eq!(e.status, Some(404));
    let text = e.to_string();
    assert!(text.contains(&format!("{base}/!AutoApplySSL")), "{text}");
    assert!(text.contains("base_url") && text.contains("HTML"), "{text}");
    assert!(!text.contains(PASSWORD));
}

/// CollectSSL with `responseFormat=1`; the simulator writes base64 with a raw `+`, which
/// form decoding would turn into a space.
#[tokio::test]
async fn collect_ssl_asks_for_url_encoding_and_keeps_a_raw_plus() {
    let dns = dcvd::sim::dns::DnsSim::start(&[dcvd::sim::dns::ZoneSpec::new("example.test")], None)
        .await
        .unwrap();
    let sim = sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        nameserver: Some(dns.addr()),
        ..Default::default()
    })
    .await
    .unwrap();
    let p = provider(&sim.base_url());
    // A leaf's base64 holds a `+` nearly always; order again in the rare case it does not.
    let mut found = None;
    for attempt in 0..10 {
        let name = format!("plus{attempt}.example.test");
        let req = request(
            &format!("dcvd-plus-{attempt}"),
            &[name.as_str()],
            &[DcvMethod::DnsCname],
            &[],
        );
        let sub = p.submit(&req).await.unwrap();
        let (_, ch) = &sub.challenges[0];
        dns.add_cname(&ch.name, &ch.value).await.unwrap();
        let mut held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
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
        let download = params(sim.forms("download/CollectSSL").last().unwrap());
        for want in ["queryType=1", "responseType=3", "responseFormat=1"] {
            assert!(download.contains(&want.to_string()), "{want}: {download:?}");
        }
        // What the simulator sent really had a raw `+` in it.
        let body = reqwest::Client::new()
            .post(format!("{}/download/CollectSSL", sim.base_url()))
            .form(&[
                ("loginName", "dcvd"),
                ("loginPassword", PASSWORD),
                ("orderNumber", sub.ca_order_id.as_str()),
                ("queryType", "1"),
                ("responseType", "3"),
                ("responseFormat", "1"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let cert = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("certificate="))
            .unwrap()
            .to_string();
        if !cert.contains('+') {
            continue;
        }
        found = Some((sub, chain, cert));
        break;
    }
    let (sub, chain, cert) = found.expect("ten leaves without a + in their base64");
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(cert)
        .unwrap();
    use rustls::pki_types::pem::PemObject;
    let got = rustls::pki_types::CertificateDer::from_pem_slice(chain.leaf_pem.as_bytes()).unwrap();
    assert_eq!(got.as_ref(), der.as_slice());
    // Without responseFormat=1 the answer is not URL-encoded: a client must ask.
    let text = reqwest::Client::new()
        .post(format!("{}/download/CollectSSL", sim.base_url()))
        .form(&[
            ("loginName", "dcvd"),
            ("loginPassword", PASSWORD),
            ("orderNumber", sub.ca_order_id.as_str()),
            ("queryType", "0"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("errorCode="), "{text}");
}

#[tokio::test]
async fn refund_sends_a_reason_code() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-refund",
        &["rf.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    p.cancel(held.r()).await.unwrap();
    assert_eq!(
        params(&sim.forms("!AutoRefund")[0]),
        [
            format!("orderNumber={}", sub.ca_order_id),
            "refundReasonCode=11".to_string()
        ]
    );
    // Again: "already refunded" is the wanted end state.
    p.cancel(held.r()).await.unwrap();
}

#[tokio::test]
async fn days_stay_within_the_validity_in_force() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let today = dcvd::clock::Clock::now(&dcvd::clock::SystemClock).date_naive();
    let max = dcvd::model::public_tls_max_validity_days(today);
    let mut req = request(
        "dcvd-days",
        &["d.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    req.validity_days = Some(max + 1);
    let e = p.submit(&req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.rejected);
    assert!(e.to_string().contains("validity_days"), "{e}");
    assert!(e.to_string().contains(&max.to_string()), "{e}");
    assert!(sim.forms("!AutoApplySSL").is_empty(), "nothing ordered");
    req.validity_days = Some(max);
    p.submit(&req).await.unwrap();
    // The simulator has no price for more (the documented -115), and dcvd says why.
    let (csr_pem, _) = csr("d2.example.test");
    let body = reqwest::Client::new()
        .post(format!("{}/!AutoApplySSL", sim.base_url()))
        .form(&[
            ("loginName", "dcvd"),
            ("loginPassword", PASSWORD),
            ("product", "287"),
            ("days", &(max + 1).to_string()),
            ("csr", &csr_pem),
            ("serverSoftware", "-1"),
            ("dcvMethod", "CNAME_CSR_HASH"),
            ("responseFormat", "1"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = dcvd::ca::sectigo::wire::Reply::parse(&body).unwrap();
    assert_eq!(r.error_code(), Some(-115));
    let e = dcvd::ca::sectigo::wire::api_error("sec", "!AutoApplySSL", -115, &r);
    assert!(e.to_string().contains("No price found"), "{e}");
    assert!(e.to_string().contains("validity_days"), "{e}");
}
