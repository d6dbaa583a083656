//! Sectigo crash recovery and operator adoption against the simulator: `find_order` on
//! `!WebHostReport` rows in the public-client shape, confirmed by CollectSSL; the
//! ambiguous case; `order_by_id`; a submit the CA carries out after the client gave up.

use crate::support::sectigo as sectigo_common;

use std::sync::Arc;
use std::time::Duration;

use dcvd::ca::sectigo::SectigoProvider;
use dcvd::ca::{ErrorKind, Lookup, Provider};
use dcvd::clock::{Clock, ManualClock};
use dcvd::model::DcvMethod;
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

fn provider_with_timeout(base_url: &str, timeout: Duration) -> SectigoProvider {
    let mut cfg = config(base_url, PASSWORD);
    cfg.request_timeout = timeout;
    SectigoProvider::new("sectigo-test", &cfg).unwrap()
}

/// The submit's answer is lost (the client times out while Sectigo is still creating the
/// order); the order appears at the CA afterwards; a fresh provider finds exactly it.
#[tokio::test]
async fn a_submit_carried_out_after_the_client_gave_up_is_found_once() {
    let sim = sim_with(SectigoSimOptions {
        create_delay: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let timeout = Duration::from_millis(300);
    let p = provider_with_timeout(&sim.base_url(), timeout);
    let req = request(
        "dcvd-lost-1",
        &["lost.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let err = p.submit(&req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(!err.rejected, "a timed-out submit may have reached the CA");
    // Not there yet: inside the in-flight bound recovery must not conclude anything.
    assert_eq!(sim.order_count(), 0);
    assert!(p.in_flight_bound() >= timeout + Duration::from_secs(60));
    // The simulator finishes the work although the client is gone.
    assert!(sim.wait_for_orders(1, Duration::from_secs(10)).await);
    let fresh = provider(&sim.base_url());
    let Lookup::Found(found) = fresh.find_order(&req).await.unwrap() else {
        panic!("the order placed by the lost submit was not found");
    };
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].ca_order_id,
        sim.orders()[0].order_number.to_string()
    );
    assert_eq!(
        found[0].ca_data["uniqueValue"],
        sim.orders()[0].unique_value
    );
    // Same tokens as the submit would have given: the CNAME carries our uniqueValue.
    assert!(
        found[0].challenges[0]
            .1
            .value
            .contains(&sim.orders()[0].unique_value)
    );
    assert_eq!(sim.forms("!AutoApplySSL").len(), 1);
    assert_eq!(sim.order_count(), 1, "exactly one order at the CA");
    // Recovery used the public-client arguments, confirmed by a status call.
    let report = params(&sim.forms("!WebHostReport")[0]);
    assert!(
        report.contains(&"firstResultNo=1".to_string()),
        "{report:?}"
    );
    assert!(
        report.contains(&"lastResultNo=10".to_string()),
        "{report:?}"
    );
    assert_eq!(sim.forms("download/CollectSSL").len(), 1);
}

#[tokio::test]
async fn the_report_is_read_page_by_page_to_the_end() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    // 25 orders with the same common name and another SAN each: three report pages of
    // at most 10 rows, then an empty one.
    for i in 0..25 {
        let other = request(
            &format!("dcvd-other-{i}"),
            &["pg.example.test", &format!("s{i}.example.test")],
            &[DcvMethod::DnsCname, DcvMethod::DnsCname],
            &[],
        );
        p.submit(&other).await.unwrap();
    }
    let last = request(
        "dcvd-other-24",
        &["pg.example.test", "s24.example.test"],
        &[DcvMethod::DnsCname, DcvMethod::DnsCname],
        &[],
    );
    let Lookup::Found(found) = p.find_order(&last).await.unwrap() else {
        panic!("the 25th row was not read");
    };
    assert_eq!(
        found[0].ca_order_id,
        sim.orders()[24].order_number.to_string()
    );
    let pages: Vec<Vec<String>> = sim.forms("!WebHostReport").iter().map(params).collect();
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(
        pages[2].contains(&"firstResultNo=21".to_string()),
        "{pages:?}"
    );
    // Only the common name: no row has exactly these names.
    let cn_only = request(
        "dcvd-cn-only",
        &["pg.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    assert_eq!(p.find_order(&cn_only).await.unwrap(), Lookup::NotFound);
    assert_eq!(sim.forms("!AutoApplySSL").len(), 25);
}

#[tokio::test]
async fn two_orders_for_the_same_names_in_the_window_are_unsure() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-amb-1",
        &["amb.example.test", "www.amb.example.test"],
        &[DcvMethod::DnsCname, DcvMethod::DnsCname],
        &[],
    );
    let a = p.submit(&req).await.unwrap();
    // The same names ordered again in the same minutes (by hand, or a duplicate).
    let mut by_hand = req.clone();
    by_hand.reference = "someone-else".into();
    let b = p.submit(&by_hand).await.unwrap();
    let applied = sim.forms("!AutoApplySSL").len();
    let Lookup::Unsure { reason, candidates } =
        provider(&sim.base_url()).find_order(&req).await.unwrap()
    else {
        panic!("two candidates must not be adopted");
    };
    assert_eq!(candidates, [a.ca_order_id.clone(), b.ca_order_id.clone()]);
    assert!(reason.contains("amb.example.test"), "{reason}");
    assert!(reason.contains(&a.ca_order_id) && reason.contains(&b.ca_order_id));
    assert!(reason.contains("dcvd orders adopt"), "{reason}");
    assert_eq!(sim.forms("!AutoApplySSL").len(), applied, "no order placed");
    // One of them already tracked by dcvd: the other is the answer.
    let mut known = req.clone();
    known.known_ca_orders = vec![b.ca_order_id.clone()];
    let Lookup::Found(found) = provider(&sim.base_url()).find_order(&known).await.unwrap() else {
        panic!("the untracked order is the only candidate");
    };
    assert_eq!(found[0].ca_order_id, a.ca_order_id);
    // Both tracked: nothing of ours at the CA.
    known.known_ca_orders.push(a.ca_order_id.clone());
    assert_eq!(
        provider(&sim.base_url()).find_order(&known).await.unwrap(),
        Lookup::NotFound
    );
}

#[tokio::test]
async fn orders_outside_the_submit_window_or_with_other_names_do_not_match() {
    let clock = Arc::new(ManualClock::new("2026-12-02T06:00:00Z".parse().unwrap()));
    let sim = sim_with(SectigoSimOptions {
        clock: clock.clone(),
        ..Default::default()
    })
    .await;
    let p = provider(&sim.base_url()).with_clock(clock.clone());
    let mut old = request("dcvd-old", &["w.example.test"], &[DcvMethod::DnsCname], &[]);
    old.created_at = clock.now();
    p.submit(&old).await.unwrap();
    // Same CN with an extra SAN: not the same certificate.
    let mut wider = request(
        "dcvd-wider",
        &["w.example.test", "x.example.test"],
        &[DcvMethod::DnsCname, DcvMethod::DnsCname],
        &[],
    );
    wider.created_at = clock.now();
    p.submit(&wider).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    let mut req = request("dcvd-new", &["w.example.test"], &[DcvMethod::DnsCname], &[]);
    req.created_at = clock.now();
    assert_eq!(p.find_order(&req).await.unwrap(), Lookup::NotFound);
    // Within the window again (an hour back): the old order is the one.
    req.created_at = clock.now() - chrono::Duration::minutes(61);
    assert!(matches!(p.find_order(&req).await.unwrap(), Lookup::Found(f) if f.len() == 1));
}

#[tokio::test]
async fn a_refused_report_is_unsure_never_not_found() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    let req = request(
        "dcvd-refused",
        &["ref.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    p.submit(&req).await.unwrap();
    let wrong = SectigoProvider::new("sectigo-test", &config(&sim.base_url(), "wrong")).unwrap();
    let Lookup::Unsure { reason, .. } = wrong.find_order(&req).await.unwrap() else {
        panic!("a refused report must not mean 'no order'");
    };
    assert!(reason.contains("refused the order report"), "{reason}");
    assert!(reason.contains("dcvd-refused"), "{reason}");
    assert!(
        !reason.contains("wrong"),
        "no password in the reason: {reason}"
    );
}

#[tokio::test]
async fn order_by_id_adopts_the_right_order_and_refuses_others() {
    let sim = sim_with(SectigoSimOptions::default()).await;
    let p = provider(&sim.base_url());
    let single = request(
        "dcvd-adopt-1",
        &["adopt.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let placed = p.submit(&single).await.unwrap();
    let multi = request(
        "dcvd-adopt-2",
        &["m.example.test", "www.m.example.test"],
        &[DcvMethod::DnsCname, DcvMethod::DnsCname],
        &[],
    );
    let placed_multi = p.submit(&multi).await.unwrap();

    let fresh = provider(&sim.base_url());
    let got = fresh
        .order_by_id(&single, &placed.ca_order_id)
        .await
        .unwrap();
    assert_eq!(got.ca_order_id, placed.ca_order_id);
    assert_eq!(got.challenges, placed.challenges);
    let got = fresh
        .order_by_id(&multi, &placed_multi.ca_order_id)
        .await
        .unwrap();
    assert_eq!(got.challenges, placed_multi.challenges);

    // Names differ: refused, naming both sides.
    let e = fresh
        .order_by_id(&multi, &placed.ca_order_id)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    let text = e.to_string();
    assert!(
        text.contains("adopt.example.test") && text.contains("www.m.example.test"),
        "{text}"
    );
    let e = fresh
        .order_by_id(&single, &placed_multi.ca_order_id)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    // Already tracked, not a number, unknown, rejected: refused.
    let mut tracked = single.clone();
    tracked.known_ca_orders = vec![placed.ca_order_id.clone()];
    assert!(
        fresh
            .order_by_id(&tracked, &placed.ca_order_id)
            .await
            .is_err()
    );
    assert!(fresh.order_by_id(&single, "12ab").await.is_err());
    let e = fresh.order_by_id(&single, "999").await.unwrap_err();
    assert!(e.to_string().contains("does not know order 999"), "{e}");
    assert!(sim.reject(
        placed.ca_order_id.parse().unwrap(),
        "Domain is on a high-risk list"
    ));
    let e = fresh
        .order_by_id(&single, &placed.ca_order_id)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("Domain is on a high-risk list"),
        "{e}"
    );
    assert_eq!(sim.forms("!AutoApplySSL").len(), 2, "adoption never orders");
}

#[tokio::test]
async fn an_order_dated_after_our_clock_is_unsure() {
    // Sectigo's clock an hour ahead of dcvd's: the row cannot be placed in the window.
    let ours = Arc::new(ManualClock::new("2026-12-02T06:00:00Z".parse().unwrap()));
    let theirs = Arc::new(ManualClock::new("2026-12-02T07:00:00Z".parse().unwrap()));
    let sim = sim_with(SectigoSimOptions {
        clock: theirs,
        ..Default::default()
    })
    .await;
    let p = provider(&sim.base_url()).with_clock(ours.clone());
    let mut req = request(
        "dcvd-skew",
        &["skew.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    req.created_at = ours.now();
    p.submit(&req).await.unwrap();
    let Lookup::Unsure { reason, .. } = provider(&sim.base_url())
        .with_clock(ours)
        .find_order(&req)
        .await
        .unwrap()
    else {
        panic!("an order for our names dated in the future must not be passed over");
    };
    assert!(reason.contains("clocks differ"), "{reason}");
}
