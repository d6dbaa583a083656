//! Engine tests with in-memory fakes: config → installed files, method fallback, email
//! resends, renewal, error handling and cleanup. Time moves by a manual clock.

use crate::support as common;

use std::time::Duration;

use common::fakes::{permanent, transient};
use common::{Harness, NowUtc, WWW};
use dcvd::ca::{ErrorKind, MethodScope};
use dcvd::dcv::publish::PublishError;
use dcvd::model::{AuthzState, ChallengeKind, OrderState};

async fn start(h: &Harness) -> (std::sync::Arc<dcvd::lifecycle::engine::Engine>, i64) {
    let engine = h.engine().await;
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1, "one certificate, one order");
    (engine, created[0])
}

fn events(kinds: &[dcvd::store::Event], kind: &str) -> Vec<String> {
    kinds
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.message.clone())
        .collect()
}

#[tokio::test]
async fn certificate_from_config_to_installed_files() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = start(&h).await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);

    let (order, authz) = engine.store().load_order(id).await.unwrap();
    assert!(authz.iter().all(|a| a.state == AuthzState::Valid));
    assert!(order.not_after.is_some());
    let dir = h.path("certs/www");
    for f in ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("privkey.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Exactly one CA order; the call sequence is economical and the check came after
    // our own propagation check passed.
    assert_eq!(h.ca.order_count(), 1);
    let calls = h.ca.calls();
    assert_eq!(calls.first().map(String::as_str), Some("submit"));
    assert!(calls.len() <= 5, "{calls:?}");
    let evs = engine.store().events(id).await.unwrap();
    let pos = |k: &str| {
        evs.iter()
            .position(|e| e.kind == k)
            .unwrap_or_else(|| panic!("no {k} event"))
    };
    let trigger = evs
        .iter()
        .position(|e| {
            e.kind == dcvd::model::EventKind::CaCall && e.message.starts_with("trigger_check")
        })
        .unwrap();
    assert!(
        pos("check_passed") < trigger,
        "CA asked to check before our check passed"
    );
    // Published tokens are gone after the order ended.
    assert_eq!(h.world.count(), 0, "tokens left behind");
    // A second pass creates nothing: the certificate is issued and not due.
    assert!(engine.ensure_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_ca_is_asked_only_after_every_server_has_the_token() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    *h.world.lag_checks.lock().unwrap() = 3;
    let (engine, id) = start(&h).await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let evs = engine.store().events(id).await.unwrap();
    let pending = events(&evs, "check_pending");
    assert!(!pending.is_empty());
    assert!(
        pending[0].contains("ns2.fake"),
        "the lagging server is named: {pending:?}"
    );
    let first_trigger = evs
        .iter()
        .position(|e| e.message.starts_with("trigger_check"))
        .unwrap();
    let passed: Vec<usize> = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == dcvd::model::EventKind::CheckPassed)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(passed.len(), 2, "both names checked");
    assert!(passed.iter().all(|p| *p < first_trigger));
}

#[tokio::test]
async fn method_falls_back_after_method_timeout() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // DNS TXT tokens never become visible: dns-txt stalls, http must take over.
    h.world
        .invisible
        .lock()
        .unwrap()
        .insert(ChallengeKind::DnsTxt);
    let (engine, id) = start(&h).await;
    let t0 = h.clock.now_utc();
    assert_eq!(h.drive(&engine, id, 400).await, OrderState::Issued);
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    assert!(
        authz
            .iter()
            .all(|a| a.method == dcvd::model::DcvMethod::Http)
    );
    let evs = engine.store().events(id).await.unwrap();
    let switches = events(&evs, "method_switch");
    assert_eq!(switches.len(), 2, "{switches:?}");
    assert!(
        switches[0].contains("dns-txt → http") && switches[0].contains("method_timeout"),
        "{switches:?}"
    );
    // The switch happened only after two hours.
    assert!(h.clock.now_utc() - t0 >= chrono::Duration::hours(2));
    assert!(h.ca.calls().contains(&"change_method".to_string()));
    // The stale TXT tokens were cleaned up with the rest.
    assert_eq!(h.world.count(), 0);
}

#[tokio::test]
async fn a_token_never_visible_within_dns_timeout_falls_back() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let h = Harness {
        config_toml: h
            .config_toml
            .replace("timeout = \"12h\"", "timeout = \"10m\""),
        ..h
    };
    h.world
        .invisible
        .lock()
        .unwrap()
        .insert(ChallengeKind::DnsTxt);
    let (engine, id) = start(&h).await;
    let t0 = h.clock.now_utc();
    assert_eq!(h.drive(&engine, id, 400).await, OrderState::Issued);
    let elapsed = h.clock.now_utc() - t0;
    assert!(
        elapsed >= chrono::Duration::minutes(10) && elapsed < chrono::Duration::hours(1),
        "{elapsed}"
    );
    let evs = engine.store().events(id).await.unwrap();
    let failed = events(&evs, "method_failed");
    assert!(
        failed[0].contains("dns.timeout") && failed[0].contains("ns2.fake"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_refused_publisher_switches_method_at_once() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    h.dns.fail_present.lock().unwrap().push_back(PublishError {
        publisher: "dns".into(),
        action: "present",
        what: "TXT _dnsauth.example.com at 192.0.2.53:53 zone example.com".into(),
        detail: "REFUSED: TSIG key not accepted".into(),
        kind: ErrorKind::Permanent,
    });
    let (engine, id) = start(&h).await;
    let t0 = h.clock.now_utc();
    assert_eq!(h.drive(&engine, id, 100).await, OrderState::Issued);
    assert!(
        h.clock.now_utc() - t0 < chrono::Duration::minutes(10),
        "did not wait for method_timeout"
    );
    let evs = engine.store().events(id).await.unwrap();
    assert!(events(&evs, "method_failed")[0].contains("TSIG key not accepted"));
    assert!(events(&evs, "method_switch")[0].contains("dns-txt → http"));
    // The refused token was never published, so no removal of it is attempted.
    assert!(
        !evs.iter()
            .any(|e| e.kind == dcvd::model::EventKind::Cleanup && e.message.contains("TXT"))
    );
    common::assert_journal_empty(&engine, id).await;
}

#[tokio::test]
async fn all_methods_exhausted_fails_the_order_with_the_reason() {
    let cert = WWW.replace(
        r#"dcv = ["dns-txt", "http", "email"]"#,
        r#"dcv = ["dns-txt"]"#,
    );
    let h = Harness::new(&cert, MethodScope::PerOrder);
    h.world
        .invisible
        .lock()
        .unwrap()
        .insert(ChallengeKind::DnsTxt);
    let (engine, id) = start(&h).await;
    assert_eq!(h.drive(&engine, id, 400).await, OrderState::Failed);
    let (order, _) = engine.store().load_order(id).await.unwrap();
    let reason = order.failure_reason.unwrap();
    assert!(
        reason.contains("no DCV method left") && reason.contains("dns-txt"),
        "{reason}"
    );
}

#[tokio::test]
async fn approval_emails_are_resent_on_schedule_up_to_max_resends() {
    let cert = WWW
        .replace(
            r#"dcv = ["dns-txt", "http", "email"]"#,
            r#"dcv = ["email"]"#,
        )
        .replace(
            "method_timeout = \"2h\"",
            "method_timeout = \"30d\"\nresend_schedule = \"0 0 * * * *\"\nmax_resends = 3",
        );
    let h = Harness::new(&cert, MethodScope::PerOrder);
    let (engine, id) = start(&h).await;
    // Ten hours pass without an approval: three resends, hourly, then no more.
    for _ in 0..10 {
        engine.run_due().await.unwrap();
        h.advance(Duration::from_secs(3600));
    }
    engine.run_due().await.unwrap();
    let resent = h.ca.resent.lock().unwrap().clone();
    assert_eq!(resent.len(), 3 * 2, "3 resends × 2 names: {resent:?}");
    assert!(resent.iter().all(|(_, e)| e == "admin@example.com"));
    // The approver clicks: the order completes.
    h.ca.approved
        .lock()
        .unwrap()
        .extend(["example.com".to_string(), "www.example.com".to_string()]);
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let evs = engine.store().events(id).await.unwrap();
    assert_eq!(events(&evs, "email_resent").len(), 6);
}

#[tokio::test]
async fn renewal_when_renew_before_is_reached() {
    let h = Harness::new(
        &WWW.replace("method_timeout", "renew_before = \"80d\"\nmethod_timeout"),
        MethodScope::PerOrder,
    );
    let (engine, first) = start(&h).await;
    assert_eq!(h.drive(&engine, first, 50).await, OrderState::Issued);
    // The simulator CA issues 90-day certificates, so renewal falls due after ~10 days.
    h.advance(Duration::from_secs(5 * 86400));
    assert!(
        engine.ensure_orders().await.unwrap().is_empty(),
        "not due yet"
    );
    h.advance(Duration::from_secs(6 * 86400));
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1);
    let second = created[0];
    let (o, _) = engine.store().load_order(second).await.unwrap();
    let first_ca = engine
        .store()
        .load_order(first)
        .await
        .unwrap()
        .0
        .ca_order_id;
    assert_eq!(
        o.renewal_of, first_ca,
        "the renewal names the order it renews"
    );
    assert_eq!(h.drive(&engine, second, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 2);
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    for _ in 0..3 {
        h.ca.fail_next("submit", transient("ca", "submit"));
    }
    let (engine, id) = start(&h).await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::Submitting);
    assert_eq!(o.attempts, 1);
    assert!(o.last_error.as_deref().unwrap().contains("503"));
    let first_delay = o.next_attempt_at - h.clock.now_utc();
    assert!(first_delay >= chrono::Duration::seconds(4), "{first_delay}");
    assert_eq!(h.drive(&engine, id, 100).await, OrderState::Issued);
    // Each unanswered submit was looked up before the next one (at once, and again once
    // the request could no longer be in flight): one order at the CA.
    assert_eq!(h.ca.order_count(), 1);
    let calls = h.ca.calls();
    let sf = ["submit", "find_order", "find_order"];
    let want: Vec<&str> = [&sf[..], &sf, &sf, &["submit"]].concat();
    assert_eq!(calls[..10], want[..], "{calls:?}");
}

#[tokio::test]
async fn rate_limited_waits_as_told() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    h.ca.fail_next(
        "submit",
        dcvd::ca::ProviderError::new("ca", "submit", ErrorKind::RateLimited)
            .with_status(429)
            .with_retry_after(Some(Duration::from_secs(120)))
            .rejected(),
    );
    let (engine, id) = start(&h).await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    let wait = o.next_attempt_at - h.clock.now_utc();
    assert!(
        wait >= chrono::Duration::seconds(120) && wait < chrono::Duration::seconds(125),
        "{wait}"
    );
    assert!(
        !o.submit_maybe_sent,
        "a 429 created nothing; no lookup needed"
    );
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1);
}

#[tokio::test]
async fn permanent_error_fails_the_order_with_the_reason() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    h.ca.fail_next(
        "submit",
        permanent("ca", "submit", "not_found|product", "Product not found."),
    );
    let (engine, id) = start(&h).await;
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::Failed);
    let reason = o.failure_reason.unwrap();
    assert!(
        reason.contains("not_found|product") && reason.contains("Product not found."),
        "{reason}"
    );
    let evs = engine.store().events(id).await.unwrap();
    assert_eq!(events(&evs, "failed").len(), 1);
    // No immediate re-order of a failed certificate.
    assert!(engine.ensure_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn cleanup_failures_are_retried_until_the_token_is_gone() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    *h.dns.fail_cleanup.lock().unwrap() = 2;
    let (engine, id) = start(&h).await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    // Both removals failed at their first attempt; they wait for their retry.
    assert_eq!(h.world.count(), 2);
    let left = engine.store().journal_for_order(id).await.unwrap();
    assert!(left.iter().all(|(_, due, err)| *due
        && err.as_deref()
            == Some("publisher `dns` could not cleanup _dnsauth.example.com: server timed out")
        || err.is_some()));
    // A restart does not forget what is left to remove.
    let engine = h.engine().await;
    for _ in 0..5 {
        h.advance(Duration::from_secs(60));
        engine.run_due().await.unwrap();
    }
    assert_eq!(h.world.count(), 0);
    common::assert_journal_empty(&engine, id).await;
}

#[tokio::test]
async fn a_damaged_row_is_reported_not_a_panic() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = start(&h).await;
    sqlx::query("UPDATE orders SET state = 'bogus' WHERE id = ?")
        .bind(id)
        .execute(engine.store().pool())
        .await
        .unwrap();
    let err = engine.store().load_order(id).await.unwrap_err().to_string();
    assert!(
        err.contains("orders") && err.contains("state") && err.contains("bogus"),
        "{err}"
    );
}

#[tokio::test]
async fn expiring_tokens_are_renewed_and_republished() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    *h.ca.expire_token_once.lock().unwrap() = true;
    let (engine, id) = start(&h).await;
    assert_eq!(h.drive(&engine, id, 100).await, OrderState::Issued);
    let evs = engine.store().events(id).await.unwrap();
    assert_eq!(
        events(&evs, "token_renewed").len(),
        2,
        "both names republish"
    );
    assert!(h.ca.calls().contains(&"challenges".to_string()));
    // Old and new tokens are all removed in the end.
    assert_eq!(h.world.count(), 0);
    assert_eq!(h.ca.order_count(), 1);
}
