//! A step that panics must not leave its order claimed (issue 13): the claim is an RAII
//! guard, so the same order is claimed and stepped again without a restart.

use crate::support as common;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, WWW};
use dcvd::ca::MethodScope;
use dcvd::clock::SystemClock;
use dcvd::model::OrderState;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_panicking_step_releases_its_order_and_the_order_runs_again() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    h.ca.panic_next.lock().unwrap().insert("trigger_check");

    let first = AssertUnwindSafe(h.drive(&engine, id, 50))
        .catch_unwind()
        .await;
    assert!(first.is_err(), "the scripted panic did not happen");
    assert!(
        h.ca.calls().iter().any(|c| c == "trigger_check"),
        "the panic came from the step's CA call"
    );
    // The panic unwound through the step: its claim was released.
    assert!(
        engine.running().is_empty(),
        "order left claimed after a panic: {:?}",
        engine.running()
    );
    let claim = engine.claim(id).expect("the order can be claimed again");
    drop(claim);

    // Same engine, no restart: the order goes on to where it would have gone.
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1, "no second CA order");
    assert!(h.path("certs/www/fullchain.pem").exists());
    assert!(engine.running().is_empty());
}

async fn until(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition not reached");
}

/// The daemon's scheduler: a step task that panics is reaped (and logged), its order
/// is not skipped as "running" forever but stepped again until issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_retries_an_order_whose_step_panicked() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let config = h.config();
    let store = dcvd::store::Store::open(&config.daemon.database)
        .await
        .unwrap();
    // The scheduler sleeps real time between steps: a real clock.
    let engine = {
        let tmp = h.engine().await;
        let rt = tmp.services();
        let rt = dcvd::lifecycle::services::Services::new(
            rt.config.clone(),
            rt.providers.clone(),
            rt.publishers.clone(),
            rt.checker.clone(),
        );
        Arc::new(dcvd::lifecycle::engine::Engine::new(
            store,
            Arc::new(SystemClock),
            Arc::new(dcvd::metrics::Metrics::new()),
            rt,
        ))
    };
    let id = engine.ensure_orders().await.unwrap()[0];
    h.ca.panic_next.lock().unwrap().insert("trigger_check");
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(dcvd::app::scheduler::run(
        engine.clone(),
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    until(|| h.path("certs/www/fullchain.pem").exists()).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("scheduler did not stop")
        .unwrap();
    let calls = h.ca.calls();
    assert!(
        calls.iter().filter(|c| *c == "trigger_check").count() >= 2,
        "the panicking call was made again: {calls:?}"
    );
    assert!(
        h.ca.panic_next.lock().unwrap().is_empty(),
        "the panic happened"
    );
    let (order, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(order.state, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1);
}
