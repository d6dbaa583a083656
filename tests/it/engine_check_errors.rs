//! Our propagation check failing to run (every nameserver unreachable) goes through the
//! retry policy: the bought order stays live, backs off, counts the attempts and shows
//! why it is stuck; when the DNS answers again it issues.

use crate::support as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use common::fakes::FakeChecker;
use common::{Harness, NowUtc, WWW};
use dcvd::ca::{ErrorKind, MethodScope, Provider};
use dcvd::dcv::check::{CheckReport, DnsError, PropagationCheck};
use dcvd::dcv::publish::Publisher;
use dcvd::lifecycle::engine::Engine;
use dcvd::lifecycle::services::Services;
use dcvd::metrics::{KindLabels, Metrics};
use dcvd::model::{AuthzState, Challenge, OrderState};

/// The fake checker, or (while `down`) an error of kind Permanent as a resolver gives
/// when no nameserver of the zone answers.
struct Unreachable {
    inner: FakeChecker,
    down: AtomicBool,
    failed: AtomicU32,
}

#[async_trait]
impl PropagationCheck for Unreachable {
    async fn check(&self, c: &Challenge) -> Result<CheckReport, DnsError> {
        if self.down.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(DnsError {
                what: c.name.clone(),
                detail: "no authoritative nameserver answered (ns1.example.net, ns2.example.net)"
                    .into(),
                kind: ErrorKind::Permanent,
            });
        }
        self.inner.check(c).await
    }
}

async fn engine(h: &Harness, checker: Arc<Unreachable>) -> Arc<Engine> {
    let config = h.config();
    let store = dcvd::store::Store::open(&config.daemon.database)
        .await
        .unwrap();
    let mut providers: std::collections::HashMap<String, Arc<dyn Provider>> = Default::default();
    providers.insert("ca".into(), h.ca.clone());
    let mut publishers: std::collections::HashMap<String, Arc<dyn Publisher>> = Default::default();
    publishers.insert("dns".into(), h.dns.clone());
    publishers.insert("web".into(), h.web.clone());
    let services = Services::new(config, providers, publishers, checker);
    Arc::new(Engine::new(
        store,
        h.clock.clone(),
        Arc::new(Metrics::new()),
        services,
    ))
}

#[tokio::test]
async fn a_failing_check_backs_off_keeps_the_order_and_issues_once_dns_answers() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let checker = Arc::new(Unreachable {
        inner: FakeChecker {
            world: h.world.clone(),
        },
        down: AtomicBool::new(true),
        failed: AtomicU32::new(0),
    });
    let engine = engine(&h, checker.clone()).await;
    let id = engine.ensure_orders().await.unwrap()[0];

    // Until the first check fails: submitted, tokens fetched and published.
    for _ in 0..20 {
        engine.run_due().await.unwrap();
        if checker.failed.load(Ordering::SeqCst) > 0 {
            break;
        }
        let next = engine.store().next_due(&[]).await.unwrap().unwrap();
        if next > h.clock.now_utc() {
            h.clock.set(next);
        }
    }
    assert_eq!(
        checker.failed.load(Ordering::SeqCst),
        1,
        "the check never ran"
    );
    let bought = h.ca.order_count();
    assert_eq!(bought, 1);
    let calls_before = h.ca.calls().len();
    let authz_domain = engine.store().load_order(id).await.unwrap().1[0]
        .domain
        .to_string();

    // Six more failed checks, each at the order's next attempt.
    let mut waits = Vec::new();
    for round in 1..=6u32 {
        let (o, authz) = engine.store().load_order(id).await.unwrap();
        assert_eq!(o.state, OrderState::Validating, "round {round}: {o:?}");
        assert_eq!(o.attempts, round, "each failed check is an attempt");
        let why = o.last_error.clone().unwrap_or_default();
        assert!(
            why.contains("no authoritative nameserver answered"),
            "status shows why: {why:?}"
        );
        let a = &authz[0];
        assert_eq!(a.state, AuthzState::Propagating);
        assert!(
            a.last_error
                .as_deref()
                .is_some_and(|e| e.contains("no authoritative nameserver answered")),
            "{a:?}"
        );
        assert_eq!(a.next_check_at, Some(o.next_attempt_at));
        let now = h.clock.now_utc();
        waits.push((o.next_attempt_at - now).num_milliseconds());
        // Nothing is due before the backoff ends.
        assert!(engine.store().due_orders(now, 10).await.unwrap().is_empty());
        h.clock.set(o.next_attempt_at);
        engine.run_due().await.unwrap();
        assert_eq!(checker.failed.load(Ordering::SeqCst), round + 1);
    }
    // Backs off: every wait is longer than the one before (doubling, ±20 % jitter).
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
    assert!(
        waits[0] >= 2_000,
        "not sooner than dns.poll_interval: {waits:?}"
    );
    assert!(
        *waits.last().unwrap() <= 15 * 60 * 1000,
        "capped: {waits:?}"
    );
    let metric = engine
        .ctx
        .metrics
        .reconcile_errors
        .get_or_create(&KindLabels {
            kind: ErrorKind::Permanent.metric_label().into(),
        })
        .get();
    assert_eq!(
        metric, 7,
        "every failed check is counted in reconcile_errors"
    );
    let events = engine.store().events(id).await.unwrap();
    let errors: Vec<_> = events
        .iter()
        .filter(|e| e.kind == dcvd::model::EventKind::CheckError)
        .collect();
    assert_eq!(errors.len(), 7);
    assert!(
        errors[6].message.contains("attempt 7") && errors[6].message.contains("stays live"),
        "{:?}",
        errors[6]
    );
    assert_eq!(
        errors[6].domain.as_deref(),
        Some(authz_domain.as_str()),
        "the event names the name whose check failed"
    );
    assert!(
        events
            .iter()
            .all(|e| e.kind != dcvd::model::EventKind::Failed)
    );
    // The CA was not asked anything while our check could not look.
    assert_eq!(h.ca.calls().len(), calls_before, "{:?}", h.ca.calls());

    // `dcvd status` names the order and why it is stuck.
    let cfg = h.path("dcvd.toml");
    std::fs::write(&cfg, &h.config_toml).unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("dcvd").unwrap();
    cmd.arg("--config")
        .arg(&cfg)
        .arg("status")
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DCVD_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("order {id} (www, validating)"))
            && text.contains("no authoritative nameserver answered"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The DNS answers again: it issues, with the one order bought.
    checker.down.store(false, Ordering::SeqCst);
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), bought);
    let (o, authz) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.attempts, 0);
    assert!(authz.iter().all(|a| a.state == AuthzState::Valid));
}
