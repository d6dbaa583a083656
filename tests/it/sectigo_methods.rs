//! SectigoProvider method changes against the simulator: the exact `!AutoUpdateDCV`
//! forms (single, multi-domain, mixed with e-mail) and the approver-list rule.

use crate::support::sectigo as sectigo_common;

use dcvd::ca::Provider;
use dcvd::model::{ChallengeKind, DcvMethod};
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

#[tokio::test]
async fn approver_not_on_the_list_is_refused_before_sending() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-email-2",
        &["x.example.test"],
        &[DcvMethod::Email],
        &[("x.example.test", "admin@example.test")],
    );
    let sub = p.submit(&req).await.unwrap();
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    let bad = vec![(req.names[0].clone(), "root@example.test".to_string())];
    let err = p.resend_emails(held.r(), &bad, "en").await.unwrap_err();
    assert_eq!(err.kind, dcvd::ca::ErrorKind::Permanent);
    assert!(err.to_string().contains("root@example.test"), "{err}");
    assert!(sim.forms("!ResendDCVEmail").is_empty());
}

#[tokio::test]
async fn method_switch_single_name_sends_the_seed_form() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-switch-1",
        &["www.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&req).await.unwrap();
    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    let tokens = p
        .change_method(held.r(), &req.names, DcvMethod::Https, &[])
        .await
        .unwrap();
    assert_eq!(tokens.challenges.len(), 1);
    assert_eq!(tokens.challenges[0].1.kind, ChallengeKind::Https);
    let data = tokens.ca_data.unwrap();
    assert_eq!(data["methods"]["www.example.test"], "https");
    let forms = sim.forms("!AutoUpdateDCV");
    assert_eq!(
        params(&forms[0]),
        [
            format!("orderNumber={}", sub.ca_order_id),
            "domainName=www.example.test".into(),
            "newMethod=HTTPS_CSR_HASH".into(),
        ]
    );
    // Switch to e-mail: one list fetch, then the address in newDCVEmailAddress.
    let emails = vec![(
        req.names[0].clone(),
        "webmaster@www.example.test".to_string(),
    )];
    let t = p
        .change_method(held.r(), &req.names, DcvMethod::Email, &emails)
        .await
        .unwrap();
    assert!(t.challenges.is_empty());
    assert_eq!(
        params(&sim.forms("!AutoUpdateDCV")[1]),
        [
            format!("orderNumber={}", sub.ca_order_id),
            "domainName=www.example.test".into(),
            "newMethod=EMAIL".into(),
            "newDCVEmailAddress=webmaster@www.example.test".into(),
        ]
    );
    assert_eq!(sim.orders()[0].names[0].method, "EMAIL");
}

#[tokio::test]
async fn multi_domain_mixed_methods_in_apply_and_update_forms() {
    let sim = sim().await;
    let p = provider(&sim.base_url());
    let list = ["a.example.test", "b.example.test", "c.example.test"];
    let methods = [DcvMethod::DnsCname, DcvMethod::Email, DcvMethod::Http];
    let req = request(
        "dcvd-multi-1",
        &list,
        &methods,
        &[("b.example.test", "admin@example.test")],
    );
    let sub = p.submit(&req).await.unwrap();
    assert_eq!(
        sub.challenges.len(),
        2,
        "CNAME for a, file for c, nothing for e-mail b"
    );
    let apply = params(&sim.forms("!AutoApplySSL")[0]);
    assert!(
        apply.contains(&"domainNames=a.example.test,b.example.test,c.example.test".to_string())
    );
    assert!(
        apply
            .contains(&"dcvEmailAddresses=CNAMECSRHASH,admin@example.test,HTTPCSRHASH".to_string())
    );

    let held = Held::new(&req, &sub.ca_order_id, sub.ca_data.clone());
    // The re-check is !ResendDCVEmail (reference §1.5), not a documented-nowhere
    // re-send of the same methods through !AutoUpdateDCV.
    let st = p.trigger_check(held.r(), &req.names).await.unwrap();
    assert_eq!(st.names.len(), 3);
    assert_eq!(
        params(&sim.forms("!ResendDCVEmail")[0]),
        [format!("orderNumber={}", sub.ca_order_id)]
    );
    assert!(sim.forms("!AutoUpdateDCV").is_empty());
    // Three methods are 44 characters; `newMethods` takes 32: several calls.
    p.change_method(held.r(), &req.names, DcvMethod::DnsCname, &[])
        .await
        .unwrap();
    let forms: Vec<Vec<String>> = sim.forms("!AutoUpdateDCV").iter().map(params).collect();
    assert_eq!(
        forms,
        [
            vec![
                format!("orderNumber={}", sub.ca_order_id),
                "domainNames=a.example.test b.example.test".into(),
                "newMethods=CNAME_CSR_HASH,CNAME_CSR_HASH".into(),
            ],
            vec![
                format!("orderNumber={}", sub.ca_order_id),
                "domainName=c.example.test".into(),
                "newMethod=CNAME_CSR_HASH".into(),
            ],
        ]
    );
    let two = &req.names[1..];
    let emails = vec![
        (two[0].clone(), "admin@example.test".to_string()),
        (two[1].clone(), "hostmaster@c.example.test".to_string()),
    ];
    p.change_method(held.r(), two, DcvMethod::Email, &emails)
        .await
        .unwrap();
    let last = sim.forms("!AutoUpdateDCV").pop().unwrap();
    assert_eq!(
        params(&last),
        [
            format!("orderNumber={}", sub.ca_order_id),
            "domainNames=b.example.test c.example.test".into(),
            "newMethods=EMAIL,EMAIL".into(),
            "newDCVEmailAddresses=admin@example.test hostmaster@c.example.test".into(),
        ]
    );
    let m: Vec<String> = sim.orders()[0]
        .names
        .iter()
        .map(|n| n.method.clone())
        .collect();
    assert_eq!(m, ["CNAME_CSR_HASH", "EMAIL", "EMAIL"]);
    for f in sim.forms("!AutoUpdateDCV") {
        for (k, v) in &f.params {
            let max = match k.as_str() {
                "newMethods" | "newMethod" => 32,
                "domainNames" | "domainName" | "newDCVEmailAddresses" => 255,
                _ => usize::MAX,
            };
            assert!(v.len() <= max, "{k}={v} is over the documented {max}");
        }
    }
    assert!(
        sim.forms("!AutoUpdateDCV")
            .iter()
            .all(|f| f.params.iter().all(|(k, _)| k != "responseFormat"))
    );
}
