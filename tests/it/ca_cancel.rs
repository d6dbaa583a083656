//! Clean CA state (issue 14 item 4): an order that fails after the CA has it is canceled
//! at the CA, once, through the step machinery: a durable marker committed with the
//! failure (a restart finishes it), transient errors retried with backoff, a refusal
//! recorded with the CA's words and shown by `dcvd status`. Engine tests with the
//! Harness fakes here; the DigiCert and Sectigo simulators end to end below.

use crate::support as common;

use std::sync::Arc;
use std::time::Duration;

use common::fakes::{permanent, transient};
use common::{Harness, NowUtc, WWW};
use dcvd::ca::MethodScope;
use dcvd::lifecycle::engine::Engine;
use dcvd::model::{CaCancel, OrderState};

fn count(calls: &[String], op: &str) -> usize {
    calls.iter().filter(|c| *c == op).count()
}

async fn cancel_events(engine: &Engine, id: i64) -> Vec<String> {
    engine
        .store()
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "ca_cancel")
        .map(|e| e.message)
        .collect()
}

/// An order of `WWW` whose `trigger_check` the CA refuses: it fails after the CA has it.
async fn failing(h: &Harness) -> (Arc<Engine>, i64) {
    h.ca.fail_next(
        "trigger_check",
        permanent(
            "ca",
            "trigger_check",
            "invalid_order_status",
            "The order is locked.",
        ),
    );
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    (engine, id)
}

/// Step `id` one step at a time (no other work) until it has failed.
async fn step_until_failed(h: &Harness, engine: &Engine, id: i64) {
    for _ in 0..200 {
        engine.step(id).await.unwrap();
        let (o, _) = engine.store().load_order(id).await.unwrap();
        if o.state == OrderState::Failed {
            return;
        }
        assert!(!o.state.is_terminal(), "ended {}", o.state);
        if o.next_attempt_at > h.clock.now_utc() {
            h.clock.set(o.next_attempt_at);
        }
    }
    panic!("order {id} did not fail");
}

#[tokio::test]
async fn a_failed_order_is_canceled_at_the_ca_once() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    assert_eq!(h.drive(&engine, id, 200).await, OrderState::Failed);
    let (o, _) = engine.store().load_order(id).await.unwrap();
    let ca_id = o.ca_order_id.clone().expect("the CA had the order");
    assert!(o.failure_reason.unwrap().contains("The order is locked."));
    assert_eq!(o.state, OrderState::Failed, "the order keeps its state");
    assert_eq!(o.ca_cancel, Some(CaCancel::Canceled));
    assert_eq!(h.ca.canceled_ids(), vec![ca_id.clone()]);
    let evs = cancel_events(&engine, id).await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(
        evs[0].contains(&ca_id) && evs[0].contains("canceled"),
        "{evs:?}"
    );
    // Nothing more to do for it, however long we wait and however often dcvd restarts.
    for _ in 0..3 {
        h.advance(Duration::from_secs(7 * 3600));
        h.engine().await.run_due().await.unwrap();
    }
    assert_eq!(count(&h.ca.calls(), "cancel"), 1, "{:?}", h.ca.calls());
    assert!(engine.store().open_at_ca().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_transient_error_on_cancel_is_retried_with_backoff() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    h.ca.fail_next("cancel", transient("ca", "cancel"));
    h.ca.fail_next("cancel", transient("ca", "cancel"));
    assert_eq!(h.drive(&engine, id, 200).await, OrderState::Failed);
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Wanted),
        "still wanted after a 503"
    );
    assert_eq!(o.ca_cancel_attempts, 1);
    let next = o.ca_cancel_at.unwrap();
    let wait = (next - h.clock.now_utc()).num_milliseconds();
    assert!(
        (4_000..=6_000).contains(&wait),
        "first retry after ~5 s, got {wait} ms"
    );
    // Not hammered: nothing is sent before the backoff ends.
    engine.run_due().await.unwrap();
    assert_eq!(count(&h.ca.calls(), "cancel"), 1);
    // `status` says it is not done yet.
    let open = engine.store().open_at_ca().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].why, open[0].attempts), ("cancel_pending", 1));
    // The second try fails too and waits longer; the third goes through.
    h.clock.set(next);
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_cancel_attempts, 2);
    let wait = (o.ca_cancel_at.unwrap() - h.clock.now_utc()).num_milliseconds();
    assert!(
        (8_000..=12_000).contains(&wait),
        "backoff doubles, got {wait} ms"
    );
    h.clock.set(o.ca_cancel_at.unwrap());
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_cancel, Some(CaCancel::Canceled));
    assert_eq!(o.state, OrderState::Failed);
    assert_eq!(count(&h.ca.calls(), "cancel"), 3);
    assert_eq!(h.ca.canceled_ids().len(), 1);
    assert!(engine.store().open_at_ca().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_between_the_marker_and_the_call_cancels_after_restart() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    step_until_failed(&h, &engine, id).await;
    // The failure is committed with the marker; the daemon dies before the cancel step.
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_cancel, Some(CaCancel::Wanted));
    assert_eq!(count(&h.ca.calls(), "cancel"), 0);
    drop(engine);
    let engine = h.engine().await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_cancel, Some(CaCancel::Canceled));
    assert_eq!(count(&h.ca.calls(), "cancel"), 1);
    assert_eq!(h.ca.canceled_ids(), vec![o.ca_order_id.unwrap()]);
}

#[tokio::test]
async fn a_cancel_that_landed_before_a_crash_is_not_taken_for_a_refusal() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    step_until_failed(&h, &engine, id).await;
    // The cancel reached the CA, the daemon died before recording the answer: the CA
    // now refuses a second cancel, and its status shows the order canceled.
    for o in h.ca.orders.lock().unwrap().iter_mut() {
        o.canceled = true;
    }
    h.ca.fail_next(
        "cancel",
        permanent(
            "ca",
            "cancel",
            "invalid_order_status",
            "Only pending orders can be canceled.",
        ),
    );
    let engine = {
        drop(engine);
        h.engine().await
    };
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    assert!(o.ca_cancel_answer.unwrap().contains("already ended"));
    assert!(engine.store().open_at_ca().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_cancel_is_recorded_once_and_listed() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    h.ca.fail_next(
        "cancel",
        permanent(
            "ca",
            "cancel",
            "invalid_order_status",
            "Only pending orders can be canceled.",
        ),
    );
    assert_eq!(h.drive(&engine, id, 200).await, OrderState::Failed);
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.ca_cancel, Some(CaCancel::Refused));
    assert_eq!(o.state, OrderState::Failed);
    let answer = o.ca_cancel_answer.unwrap();
    assert!(
        answer.contains("Only pending orders can be canceled."),
        "{answer}"
    );
    let evs = cancel_events(&engine, id).await;
    assert_eq!(evs.len(), 1);
    assert!(
        evs[0].contains("refused") && evs[0].contains("portal"),
        "{evs:?}"
    );
    // Not retried forever: never asked again.
    h.advance(Duration::from_secs(24 * 3600));
    engine.run_due().await.unwrap();
    assert_eq!(count(&h.ca.calls(), "cancel"), 1);
    let open = engine.store().open_at_ca().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].why, "cancel_refused");
    assert_eq!(Some(open[0].ca_order_id.clone()), o.ca_order_id);
}

#[tokio::test]
async fn an_order_failed_before_the_ca_had_it_is_not_canceled() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    h.ca.fail_next(
        "submit",
        permanent("ca", "submit", "not_found|product", "Product not found."),
    );
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    assert_eq!(h.drive(&engine, id, 20).await, OrderState::Failed);
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!((o.ca_order_id, o.ca_cancel), (None, None));
    assert_eq!(count(&h.ca.calls(), "cancel"), 0);
}
