//! Crash safety: stop the engine at every state boundary, including between "submitting
//! written" and "submit answered", start a new engine on the same database, and check the
//! CA saw exactly one order and the certificate got installed.

use crate::support as common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, WWW};
use dcvd::ca::{MethodScope, ProviderError};
use dcvd::clock::SystemClock;
use dcvd::model::OrderState;
use tokio_util::sync::CancellationToken;

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

#[tokio::test]
async fn crash_after_the_submit_left_but_before_the_answer() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    *h.ca.hang_after_submit.lock().unwrap() = true;
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let e = engine.clone();
    let step = tokio::spawn(async move { e.step(id).await });
    // The CA has recorded the order; our process never sees the answer.
    until(|| h.ca.order_count() == 1).await;
    step.abort();
    let _ = step.await;
    drop(engine);

    let (o, _) = h.engine().await.store().load_order(id).await.unwrap();
    assert_eq!(
        o.state,
        OrderState::Submitting,
        "the intent was committed before the request"
    );
    assert!(o.submit_maybe_sent);

    *h.ca.hang_after_submit.lock().unwrap() = false;
    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(
        h.ca.order_count(),
        1,
        "recovery must find the order, not place a second"
    );
    let calls = h.ca.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "submit").count(),
        1,
        "{calls:?}"
    );
    assert!(calls.contains(&"find_order".to_string()));
    let evs = engine.store().events(id).await.unwrap();
    assert!(
        evs.iter()
            .any(|e| e.message.contains("recovered after an unanswered submit"))
    );
    assert!(h.path("certs/www/fullchain.pem").exists());
}

#[tokio::test]
async fn crash_before_the_submit_reached_the_ca_submits_once() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // The request fails in transit (never recorded by the CA, outcome unknown to us).
    h.ca.fail_next(
        "submit",
        ProviderError::transport("ca", "submit", "connection reset"),
    );
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    engine.step(id).await.unwrap();
    drop(engine);

    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1);
    let calls = h.ca.calls();
    // submit (lost) → find_order (none yet: the request may still be in flight) →
    // find_order once it cannot be (still none) → submit → …
    assert_eq!(
        &calls[..4],
        ["submit", "find_order", "find_order", "submit"],
        "{calls:?}"
    );
    let submits: Vec<_> = engine
        .store()
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == dcvd::model::EventKind::Submitting)
        .map(|e| e.at)
        .collect();
    assert_eq!(submits.len(), 2);
    assert!(
        submits[1] - submits[0] >= chrono::Duration::from_std(h.ca.bound).unwrap(),
        "the second submit left before the first could no longer arrive: {submits:?}"
    );
}

#[tokio::test]
async fn restart_between_every_step() {
    for scope in [MethodScope::PerOrder, MethodScope::PerName] {
        let h = Harness::new(WWW, scope);
        *h.world.lag_checks.lock().unwrap() = 2;
        let id = h.engine().await.ensure_orders().await.unwrap()[0];
        let mut states = Vec::new();
        for _ in 0..200 {
            // A new process for every single step.
            let engine = h.engine().await;
            let (o, _) = engine.store().load_order(id).await.unwrap();
            if states.last() != Some(&o.state) {
                states.push(o.state);
            }
            if o.state.is_terminal() {
                engine.run_due().await.unwrap();
                break;
            }
            if o.next_attempt_at > common::NowUtc::now_utc(&*h.clock) {
                h.clock.set(o.next_attempt_at);
            }
            engine.step(id).await.unwrap();
        }
        assert_eq!(
            states,
            [
                OrderState::Pending,
                OrderState::Validating,
                OrderState::AwaitingIssuance,
                OrderState::Issued
            ],
            "{scope:?}"
        );
        assert_eq!(h.ca.order_count(), 1, "{scope:?}");
        assert!(h.path("certs/www/privkey.pem").exists());
        assert_eq!(h.world.count(), 0, "tokens cleaned up across restarts");
    }
}

#[tokio::test]
async fn the_scheduler_issues_and_drains_on_shutdown() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let config = h.config();
    let store = dcvd::store::Store::open(&config.daemon.database)
        .await
        .unwrap();
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
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(dcvd::app::scheduler::run(
        engine.clone(),
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    // The scheduler runs on its own; wait (bounded) for the installed files.
    until(|| h.path("certs/www/fullchain.pem").exists()).await;
    shutdown.cancel();
    let _ = id;
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("scheduler did not stop")
        .unwrap();
    assert_eq!(h.ca.order_count(), 1);
}

/// A database written before the recovery/timer migration: an unanswered submit keeps
/// its send time, a method marked failed the old way (start at the epoch) is flagged
/// failed, and methods already tried keep their start as first attempt.
#[tokio::test]
async fn upgrading_a_database_keeps_in_flight_submits_and_method_timers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let all = sqlx::migrate!("./migrations");
        let old = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                all.migrations
                    .iter()
                    .filter(|m| m.version <= 2)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        old.run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO certificates (name, provider, names_json, created_at, updated_at) VALUES ('www', 'ca', '[\"example.com\"]', 1, 1)",
            "INSERT INTO orders (id, certificate, provider, state, reference, submit_maybe_sent, names_json, key_type, private_key_pem, csr_pem, csr_der, next_attempt_at, created_at, updated_at)
             VALUES (1, 'www', 'ca', 'submitting', 'dcvdold', 1, '[\"example.com\",\"www.example.com\",\"api.example.com\"]', 'ecdsa-p256', '', '', x'00', 5000, 1000, 4000)",
            "INSERT INTO authorizations (order_id, domain, method, method_index, method_started_at, state) VALUES (1, 'example.com', 'dns-txt', 0, 0, 'propagating')",
            "INSERT INTO authorizations (order_id, domain, method, method_index, method_started_at, state) VALUES (1, 'www.example.com', 'email', 2, 3000, 'email_sent')",
            "INSERT INTO authorizations (order_id, domain, method, method_index, method_started_at, state) VALUES (1, 'api.example.com', 'dns-txt', 0, 3000, 'publishing')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = dcvd::store::Store::open(&path).await.unwrap();
    let (o, authz) = store.load_order(1).await.unwrap();
    assert_eq!(o.submit_sent_at, Some(dcvd::store::from_ms_pub(4000)));
    let by = |d: &str| authz.iter().find(|a| a.domain.as_str() == d).unwrap();
    assert!(by("example.com").method_failed, "epoch start meant failed");
    assert_eq!(
        by("www.example.com").method_tried_at,
        Some(dcvd::store::from_ms_pub(3000))
    );
    assert!(!by("www.example.com").method_failed);
    assert_eq!(
        by("api.example.com").method_tried_at,
        None,
        "never published"
    );
}
