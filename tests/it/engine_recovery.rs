//! Recovery that never orders twice: a submit whose answer never came is looked up, "no
//! order" counts only once the request can no longer arrive, doubt waits for the
//! operator (adopt / resubmit), duplicates are canceled. And the DCV method timer, which
//! counts from the method's first attempt and asks the CA before switching.

use crate::support as common;

use std::time::Duration;

use common::fakes::{permanent, transient};
use common::{Harness, NowUtc, WWW};
use dcvd::ca::{Lookup, MethodScope, ProviderError};
use dcvd::lifecycle::operator::{self, OperatorError};
use dcvd::model::{AuthzState, ChallengeKind, DcvMethod, OrderState};

/// Wait (bounded) until `cond` holds, yielding to other tasks in between.
async fn until(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition not reached");
}

/// Place the order and kill the process while the submit is in flight: the CA has it
/// (or is creating it), dcvd never saw the answer.
async fn crash_in_the_submit_window(h: &Harness) -> i64 {
    *h.ca.hang_after_submit.lock().unwrap() = true;
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let e = engine.clone();
    let step = tokio::spawn(async move { e.step(id).await });
    until(|| h.ca.total_orders() >= 1).await;
    step.abort();
    let _ = step.await;
    *h.ca.hang_after_submit.lock().unwrap() = false;
    id
}

/// Move the clock to the order's pending look for a late duplicate and run it.
async fn run_late_sweep(h: &Harness, engine: &dcvd::lifecycle::engine::Engine, id: i64) {
    let (o, _) = engine.store().load_order(id).await.unwrap();
    let at = o.dup_check_at.expect("a look for a late copy is pending");
    h.clock.set(at);
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.dup_check_at, None, "the look ran");
}

fn count(calls: &[String], op: &str) -> usize {
    calls.iter().filter(|c| *c == op).count()
}

async fn kinds(engine: &dcvd::lifecycle::engine::Engine, id: i64, kind: &str) -> Vec<String> {
    engine
        .store()
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.message)
        .collect()
}

fn unsure(candidates: &[&str]) -> Lookup {
    Lookup::Unsure {
        reason: "two orders carry these names but neither shows our reference".into(),
        candidates: candidates.iter().map(|c| c.to_string()).collect(),
    }
}

#[tokio::test]
async fn an_ambiguous_lookup_waits_for_the_operator_who_adopts() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = crash_in_the_submit_window(&h).await;
    h.ca.lookups
        .lock()
        .unwrap()
        .push_back(unsure(&["1000", "977"]));
    let engine = h.engine().await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::SubmitUnknown);
    assert!(
        o.unsure_reason
            .as_deref()
            .unwrap()
            .contains("neither shows our reference")
    );
    assert_eq!(o.unsure_candidates, ["1000", "977"]);
    let ev = kinds(&engine, id, "submit_unknown").await;
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0].contains(&format!("dcvd orders adopt {id} CA_ORDER_ID"))
            && ev[0].contains(&format!("dcvd orders resubmit {id} --yes")),
        "{ev:?}"
    );
    let metrics = dcvd::app::http::render_metrics(&engine).await;
    assert!(
        metrics.contains("dcvd_orders_awaiting_operator{provider=\"ca\"} 1"),
        "{metrics}"
    );
    // Days pass: no automatic progress, no second order.
    for _ in 0..4 {
        h.advance(Duration::from_secs(25 * 3600));
        engine.run_due().await.unwrap();
    }
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::SubmitUnknown);
    let calls = h.ca.calls();
    assert_eq!(
        (count(&calls, "submit"), count(&calls, "find_order")),
        (1, 1),
        "{calls:?}"
    );
    assert!(
        engine.ensure_orders().await.unwrap().is_empty(),
        "the order is still live"
    );

    // The provider refuses a CA order it does not have (or with other names): nothing changes.
    let rt = engine.services();
    match operator::adopt(&engine.ctx, &rt, id, "4242").await {
        Err(OperatorError::Refused(m)) => assert!(m.contains("no CA order 4242"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        engine.store().load_order(id).await.unwrap().0.state,
        OrderState::SubmitUnknown
    );
    // The right one: the order continues to issued with that CA order.
    let msg = operator::adopt(&engine.ctx, &rt, id, "1000").await.unwrap();
    assert!(msg.contains("adopted CA order 1000"), "{msg}");
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_order_id.as_deref(), Some("1000"));
    assert_eq!(h.ca.order_count(), 1);
    assert_eq!(count(&h.ca.calls(), "submit"), 1);
    let metrics = dcvd::app::http::render_metrics(&engine).await;
    assert!(metrics.contains("dcvd_orders_awaiting_operator{provider=\"ca\"} 0"));
    // Adopting again is refused: it is no longer in doubt.
    assert!(matches!(
        operator::adopt(&engine.ctx, &rt, id, "1000").await,
        Err(OperatorError::Refused(_))
    ));
}

#[tokio::test]
async fn resubmit_after_doubt_places_exactly_one_new_order() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // The request was lost in transit: the CA has nothing, but says it cannot tell.
    h.ca.fail_next(
        "submit",
        ProviderError::transport("ca", "submit", "connection reset"),
    );
    h.ca.lookups.lock().unwrap().push_back(unsure(&[]));
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    engine.run_due().await.unwrap();
    h.advance(Duration::from_secs(10));
    engine.run_due().await.unwrap();
    assert_eq!(
        engine.store().load_order(id).await.unwrap().0.state,
        OrderState::SubmitUnknown
    );
    let msg = operator::resubmit(&engine.ctx, id).await.unwrap();
    assert!(msg.contains("second certificate"), "{msg}");
    assert!(kinds(&engine, id, "operator").await[0].contains("resubmit --yes"));
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1);
    assert_eq!(
        count(&h.ca.calls(), "submit"),
        2,
        "the lost one and the allowed one"
    );
    // Not in doubt any more: refused.
    assert!(matches!(
        operator::resubmit(&engine.ctx, id).await,
        Err(OperatorError::Refused(m)) if m.contains("issued")
    ));
    assert!(matches!(
        operator::resubmit(&engine.ctx, 999).await,
        Err(OperatorError::Refused(m)) if m.contains("no order 999")
    ));
}

#[tokio::test]
async fn a_slow_ca_gets_no_new_order_while_the_first_request_may_still_land() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // Order creation outlasts request_timeout: the submit times out, the order appears 3 min later.
    *h.ca.create_after.lock().unwrap() = Some(Duration::from_secs(180));
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let sent = h.clock.now_utc();
    engine.run_due().await.unwrap();
    *h.ca.create_after.lock().unwrap() = None;
    // The first lookup (after the backoff) sees nothing yet: wait, do not submit.
    let next = engine
        .store()
        .load_order(id)
        .await
        .unwrap()
        .0
        .next_attempt_at;
    h.clock.set(next);
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::Submitting);
    assert_eq!(o.next_attempt_at, sent + chrono::Duration::seconds(300));
    let wait = kinds(&engine, id, "recovery_wait").await;
    assert!(wait[0].contains("may still arrive until"), "{wait:?}");
    assert_eq!(count(&h.ca.calls(), "submit"), 1);
    // The late order appeared meanwhile: adopted, not duplicated.
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let calls = h.ca.calls();
    assert_eq!(
        &calls[..3],
        ["submit", "find_order", "find_order"],
        "{calls:?}"
    );
    assert_eq!(count(&calls, "submit"), 1, "{calls:?}");
    assert_eq!(h.ca.order_count(), 1);
    assert!(
        kinds(&engine, id, "ca_order").await[0].contains("recovered after an unanswered submit")
    );
}

#[tokio::test]
async fn duplicates_found_by_recovery_are_canceled_all_but_the_oldest() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // The one request landed three times (a retrying proxy).
    *h.ca.copies_after.lock().unwrap() = vec![Duration::ZERO, Duration::ZERO];
    let id = crash_in_the_submit_window(&h).await;
    until(|| h.ca.total_orders() == 3).await;
    h.advance(Duration::from_secs(600));
    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_order_id.as_deref(), Some("1000"));
    assert_eq!(h.ca.canceled_ids(), ["1001", "1002"]);
    let dups = engine.store().duplicates(id).await.unwrap();
    assert_eq!(dups.len(), 2);
    assert!(dups.iter().all(|d| d.canceled), "{dups:?}");
    let ev = kinds(&engine, id, "duplicate").await;
    assert_eq!(ev.len(), 2);
    assert!(
        ev[0].contains("CA order 1001") && ev[0].contains("accepted its cancellation"),
        "{ev:?}"
    );
    // They are tracked: no later lookup adopts them.
    let known = engine.store().known_ca_orders("ca").await.unwrap();
    for want in ["1000", "1001", "1002"] {
        assert!(known.iter().any(|k| k == want), "{known:?}");
    }
}

#[tokio::test]
async fn a_late_copy_landing_after_the_adoption_is_canceled() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    *h.ca.copies_after.lock().unwrap() = vec![Duration::from_secs(120)];
    let id = crash_in_the_submit_window(&h).await;
    // Restart at once: the lookup finds the first order and adopts it; the copy lands later.
    let engine = h.engine().await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_order_id.as_deref(), Some("1000"));
    assert!(o.dup_check_at.is_some());
    // The certificate is installed without waiting; the look after the bound still comes.
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert!(h.path("certs/www/fullchain.pem").exists());
    run_late_sweep(&h, &engine, id).await;
    assert_eq!(h.ca.canceled_ids(), ["1001"]);
    assert_eq!(count(&h.ca.calls(), "submit"), 1);
    let ev = kinds(&engine, id, "duplicate").await;
    assert!(ev[0].contains("CA order 1001"), "{ev:?}");
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.ca_order_id.as_deref(),
        Some("1000"),
        "the adopted order was kept"
    );
}

#[tokio::test]
async fn lookup_errors_are_retried_and_never_lead_to_a_submit() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = crash_in_the_submit_window(&h).await;
    h.ca.fail_next(
        "find_order",
        permanent(
            "ca",
            "find_order",
            "access_denied",
            "key lacks order list permission",
        ),
    );
    h.ca.fail_next("find_order", transient("ca", "find_order"));
    let engine = h.engine().await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.state,
        OrderState::Submitting,
        "a lookup error never fails the order"
    );
    assert!(
        o.last_error
            .unwrap()
            .contains("submits nothing until the CA answers")
    );
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    run_late_sweep(&h, &engine, id).await;
    let calls = h.ca.calls();
    assert_eq!(count(&calls, "submit"), 1, "{calls:?}");
    // Two failed lookups, the one that adopted, and the look for a late copy after the bound.
    assert_eq!(count(&calls, "find_order"), 4, "{calls:?}");
    assert_eq!(h.ca.order_count(), 1);
}

#[tokio::test]
async fn recovery_never_adopts_an_order_dcvd_already_tracks() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = crash_in_the_submit_window(&h).await;
    // The CA order exists, but another order of ours already tracks it (as after an
    // adoption by hand): the lookup is told, so it concludes none once the bound passed.
    let engine = h.engine().await;
    sqlx::query("UPDATE orders SET submit_sent_at = submit_sent_at - 600000 WHERE id = ?")
        .bind(id)
        .execute(engine.store().pool())
        .await
        .unwrap();
    engine
        .store()
        .record_duplicate(id, "ca", "1000", true, "test", h.clock.now_utc())
        .await
        .unwrap();
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_ne!(o.ca_order_id.as_deref(), Some("1000"));
    assert_eq!(h.ca.order_count(), 2, "submitted anew after the bound");
}

#[tokio::test]
async fn after_downtime_longer_than_method_timeout_the_untried_method_is_tried() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    // Submitted; the daemon stops before publishing any token.
    engine.step(id).await.unwrap();
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    assert!(authz.iter().all(|a| a.method_tried_at.is_none()));
    drop(engine);
    h.advance(Duration::from_secs(3 * 3600));
    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert!(kinds(&engine, id, "method_switch").await.is_empty());
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    assert!(
        authz
            .iter()
            .all(|a| a.method == DcvMethod::DnsTxt && a.state == AuthzState::Valid)
    );
    assert!(!h.ca.calls().contains(&"change_method".to_string()));
}

/// Published at T, never visible to our check; the daemon is down past method_timeout.
async fn published_then_down(h: &Harness) -> i64 {
    h.world
        .invisible
        .lock()
        .unwrap()
        .insert(ChallengeKind::DnsTxt);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    engine.run_due().await.unwrap();
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    assert!(
        authz
            .iter()
            .all(|a| a.state == AuthzState::Propagating && a.method_tried_at.is_some())
    );
    drop(engine);
    h.advance(Duration::from_secs(3 * 3600));
    id
}

#[tokio::test]
async fn timer_expiry_asks_the_ca_first_and_keeps_a_validated_method() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = published_then_down(&h).await;
    // The CA validated meanwhile (its resolvers saw what ours did not).
    for o in h.ca.orders.lock().unwrap().iter_mut() {
        o.valid = o.names.iter().map(|n| n.to_string()).collect();
        o.issued = true;
    }
    let before = h.ca.calls().len();
    let engine = h.engine().await;
    engine.step(id).await.unwrap();
    assert_eq!(h.ca.calls()[before..], ["status"]);
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert!(!h.ca.calls().contains(&"change_method".to_string()));
    assert!(kinds(&engine, id, "method_switch").await.is_empty());
}

#[tokio::test]
async fn timer_expiry_switches_after_the_ca_still_says_pending() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = published_then_down(&h).await;
    let before = h.ca.calls().len();
    let engine = h.engine().await;
    engine.step(id).await.unwrap();
    engine.step(id).await.unwrap();
    assert_eq!(h.ca.calls()[before..], ["status", "change_method"]);
    let sw = kinds(&engine, id, "method_switch").await;
    assert!(
        sw[0].contains("dns-txt → http") && sw[0].contains("of its first attempt at"),
        "{sw:?}"
    );
    assert_eq!(h.drive(&engine, id, 80).await, OrderState::Issued);
}

#[tokio::test]
async fn a_step_that_raced_an_operator_adoption_does_not_overwrite_it() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = crash_in_the_submit_window(&h).await;
    let engine = h.engine().await;
    // A daemon step loaded the order (maybe sent, no CA order) before the operator acted.
    let (stale, stale_authz) = engine.store().load_order(id).await.unwrap();
    let rt = engine.services();
    operator::adopt(&engine.ctx, &rt, id, "1000").await.unwrap();
    // The step finishes and saves what it believed: the adoption must survive.
    let mut belief = stale.clone();
    belief.submit_maybe_sent = false;
    engine
        .store()
        .save(&belief, &stale_authz, &[], false, h.clock.now_utc())
        .await
        .unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_order_id.as_deref(), Some("1000"));
    assert_eq!(o.state, OrderState::Validating);
    // And an operator decision on an order the daemon settled meanwhile is refused.
    match operator::resubmit(&engine.ctx, id).await {
        Err(OperatorError::Refused(m)) => assert!(m.contains("already has CA order 1000"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        engine
            .store()
            .save_operator_decision(&stale, &stale_authz, &[], h.clock.now_utc())
            .await,
        Ok(false)
    ));
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1);
}

#[tokio::test]
async fn a_provider_answering_with_a_tracked_order_gets_it_not_adopted_twice() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let id = crash_in_the_submit_window(&h).await;
    let engine = h.engine().await;
    engine
        .store()
        .record_duplicate(id, "ca", "1000", true, "test", h.clock.now_utc())
        .await
        .unwrap();
    // A provider that ignores known_ca_orders and answers with the tracked order.
    h.ca.lookups
        .lock()
        .unwrap()
        .push_back(Lookup::Found(vec![dcvd::ca::Submitted {
            ca_order_id: "1000".into(),
            ca_data: serde_json::json!({}),
            challenges: vec![],
            issued: false,
        }]));
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::SubmitUnknown);
    assert_eq!(o.ca_order_id, None);
    assert_eq!(o.unsure_candidates, ["1000"]);
    assert!(o.unsure_reason.unwrap().contains("already tracked by dcvd"));
}
