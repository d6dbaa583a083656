//! Certificate verbs through the real binary (`dcvd renew`, `pause`, `resume`, `forget`,
//! and the order verbs by certificate name) over a database prepared with the `Harness`
//! engine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{Harness, NowUtc, WWW, dcvd_command as dcvd, run_ok};
use dcvd::ca::MethodScope;
use dcvd::model::OrderState;

fn write_config(h: &Harness) -> PathBuf {
    let p = h.path("dcvd.toml");
    std::fs::write(&p, &h.config_toml).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A harness whose `www` certificate is issued (by the harness's engine and fake CA).
async fn issued(certs: &str) -> (Harness, PathBuf, i64) {
    issued_days_ago(certs, 0).await
}

/// [`issued`], `days` before the wall clock. The `dcvd` binary decides "due" by the wall
/// clock, so the harness issues relative to it: the test means the same on any date (and
/// under faketime).
async fn issued_days_ago(certs: &str, days: i64) -> (Harness, PathBuf, i64) {
    let h = Harness::new(certs, MethodScope::PerOrder);
    h.clock
        .set(dcvd::clock::Clock::now(&dcvd::clock::SystemClock) - chrono::Duration::days(days));
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let cfg = write_config(&h);
    (h, cfg, id)
}

/// `dcvd` as a child process (for `--wait`, which runs while the test drives the engine).
fn spawn_dcvd(config: &std::path::Path, args: &[&str]) -> std::process::Child {
    let mut c = crate::support::dcvd_process(config);
    c.args(args);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The pending order the child process placed for `cert`, once it is in the database.
async fn await_pending(h: &Harness, cert: &str) -> i64 {
    let store = dcvd::store::Store::open(&h.config().daemon.database)
        .await
        .unwrap();
    let t0 = Instant::now();
    loop {
        let orders = store.list_orders(Some(OrderState::Pending)).await.unwrap();
        if let Some(o) = orders.iter().find(|o| o.certificate == cert) {
            return o.id;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no order placed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finish(child: std::process::Child) -> std::process::Output {
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[tokio::test]
async fn renew_force_places_exactly_one_order_and_a_second_force_is_refused_while_it_lives() {
    let (h, cfg, first) = issued(WWW).await;
    let out = run_ok(dcvd(&cfg).args(["renew", "www", "--force"]));
    let said = text(&out.stdout);
    assert!(said.contains("placed order"), "{said}");
    let engine = h.engine().await;
    let orders = engine.store().list_orders(None).await.unwrap();
    assert_eq!(orders.len(), 2, "exactly one new order");
    let new = orders.iter().find(|o| o.id != first).unwrap();
    assert_eq!(new.state, OrderState::Pending);
    let created = engine.store().events(new.id).await.unwrap();
    assert!(
        created[0].message.contains("operator"),
        "the reason is recorded: {}",
        created[0].message
    );
    let (o, _) = engine.store().load_order(new.id).await.unwrap();
    assert!(o.renewal_of.is_some(), "it renews the issued order");

    let out = dcvd(&cfg)
        .args(["renew", "www", "--force"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(
        said.contains("live order") && said.contains(&new.id.to_string()),
        "{said}"
    );
    assert_eq!(engine.store().list_orders(None).await.unwrap().len(), 2);
    // The placed order runs to issuance like any other.
    assert_eq!(h.drive(&engine, new.id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 2);
}

#[tokio::test]
async fn renew_due_with_nothing_due_does_nothing() {
    let (h, cfg, _) = issued(WWW).await;
    for args in [
        &["renew", "--due"][..],
        &["renew", "www", "--due"],
        &["renew", "www"],
    ] {
        let out = run_ok(dcvd(&cfg).args(args));
        let said = text(&out.stdout);
        assert!(
            said.contains("not due (renews from") || said.contains("0 ordered; 1 not due"),
            "{said}"
        );
    }
    let engine = h.engine().await;
    assert_eq!(engine.store().list_orders(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn renew_due_orders_a_due_certificate_and_refuses_unknown_names() {
    // The fake CA issues 90-day certificates; issued 10 days ago, 85 days before expiry
    // has passed by the wall clock the binary reads.
    let (h, cfg, _) = issued_days_ago(
        &WWW.replace("method_timeout", "renew_before = \"85d\"\nmethod_timeout"),
        10,
    )
    .await;
    let out = dcvd(&cfg).args(["renew", "nope", "www"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    let out = run_ok(dcvd(&cfg).args(["renew", "--due"]));
    let said = text(&out.stdout);
    assert!(said.contains("renewal due"), "{said}");
    let engine = h.engine().await;
    assert_eq!(engine.store().list_orders(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn renew_wait_exits_0_once_issued() {
    let (h, cfg, _) = issued(WWW).await;
    let child = spawn_dcvd(&cfg, &["renew", "www", "--force", "--wait"]);
    let id = await_pending(&h, "www").await;
    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains(&format!("order {id} is issued")));
}

#[tokio::test]
async fn renew_wait_exits_1_when_the_order_fails() {
    let (h, cfg, _) = issued(WWW).await;
    let child = spawn_dcvd(&cfg, &["renew", "www", "--force", "--wait"]);
    let id = await_pending(&h, "www").await;
    h.ca.fail_next(
        "submit",
        crate::support::fakes::permanent("ca", "submit", "invalid_product", "no such product"),
    );
    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Failed);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&format!("order {id} is failed")));
}

#[tokio::test]
async fn pause_stops_renewal_and_resume_brings_it_back() {
    let (h, cfg, _) =
        issued(&WWW.replace("method_timeout", "renew_before = \"80d\"\nmethod_timeout")).await;
    let out = run_ok(dcvd(&cfg).args(["pause", "www"]));
    assert!(
        text(&out.stdout).contains("paused"),
        "{}",
        text(&out.stdout)
    );
    // Past renew_before (90-day certificates, 80 days before expiry): due, but paused.
    h.advance(Duration::from_secs(11 * 86400));
    let engine = h.engine().await;
    assert!(
        engine.ensure_orders().await.unwrap().is_empty(),
        "paused: no order"
    );
    let out = dcvd(&cfg)
        .args(["renew", "www", "--force"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("paused"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(engine.store().list_orders(None).await.unwrap().len(), 1);

    let out = run_ok(dcvd(&cfg).args(["certificates", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["state"], "paused", "{v}");
    let out = run_ok(dcvd(&cfg).arg("status"));
    let said = text(&out.stdout);
    assert!(
        said.contains("certificate www (paused)") && said.contains("dcvd resume www"),
        "{said}"
    );

    // Over the whole fleet a paused certificate is counted, not an error.
    let out = run_ok(dcvd(&cfg).args(["renew", "--due"]));
    assert!(
        text(&out.stdout).contains("0 ordered; 0 not due, 0 with a live order, 1 paused"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(engine.store().list_orders(None).await.unwrap().len(), 1);

    let out = run_ok(dcvd(&cfg).args(["resume", "www"]));
    assert!(
        text(&out.stdout).contains("resumed"),
        "{}",
        text(&out.stdout)
    );
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1, "renewed once resumed");
    assert_eq!(h.drive(&engine, created[0], 50).await, OrderState::Issued);
}

#[tokio::test]
async fn a_paused_certificate_keeps_its_live_order() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let cfg = write_config(&h);
    let out = run_ok(dcvd(&cfg).args(["pause", "www"]));
    assert!(
        text(&out.stdout).contains(&format!("live order {id} continues")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
}

#[tokio::test]
async fn canceling_a_certificates_order_pauses_it_past_the_failed_order_retry() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let cfg = write_config(&h);
    let out = run_ok(dcvd(&cfg).args(["orders", "cancel", &id.to_string()]));
    let said = text(&out.stdout);
    assert!(
        said.contains("paused") && said.contains("dcvd resume www"),
        "{said}"
    );
    // Without the pause a new order would follow after FAILED_ORDER_RETRY (6 h) from
    // the cancel, which the binary dated by the real clock.
    let canceled_at = engine.store().load_order(id).await.unwrap().0.updated_at;
    h.clock.set(canceled_at + chrono::Duration::hours(7));
    assert!(engine.ensure_orders().await.unwrap().is_empty());
    let out = dcvd(&cfg)
        .args(["orders", "retry", &id.to_string()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "retry of a paused certificate is refused"
    );
    assert!(
        text(&out.stderr).contains("dcvd resume www"),
        "{}",
        text(&out.stderr)
    );
    run_ok(dcvd(&cfg).args(["resume", "www"]));
    assert_eq!(engine.ensure_orders().await.unwrap().len(), 1);
}

#[tokio::test]
async fn order_verbs_take_a_certificate_name() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let cfg = write_config(&h);
    let out = run_ok(dcvd(&cfg).args(["orders", "retry", "www"]));
    assert!(
        text(&out.stdout).contains(&format!("order {id} (www) will take its next step")),
        "{}",
        text(&out.stdout)
    );
    let out = run_ok(dcvd(&cfg).args(["orders", "cancel", "www"]));
    assert!(
        text(&out.stdout).contains(&format!("order {id} canceled")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        engine.store().load_order(id).await.unwrap().0.state,
        OrderState::Canceled
    );
    run_ok(dcvd(&cfg).args(["resume", "www"]));
    // The newest order has ended: retry by name places a new one.
    let out = run_ok(dcvd(&cfg).args(["orders", "retry", "www"]));
    assert!(
        text(&out.stdout).contains("placed new order"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(engine.store().list_orders(None).await.unwrap().len(), 2);
    let out = dcvd(&cfg)
        .args(["orders", "cancel", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`nope`"),
        "{}",
        text(&out.stderr)
    );
}

/// The harness's configuration with `www` replaced by another certificate: what the
/// operator's file looks like once `www` is removed from it.
fn config_without_www(h: &Harness) -> PathBuf {
    let p = h.path("dcvd-removed.toml");
    std::fs::write(
        &p,
        h.config_toml
            .replace("name = \"www\"", "name = \"other\"")
            .replace("certs/www", "certs/other"),
    )
    .unwrap();
    p
}

#[tokio::test]
async fn forget_refuses_a_configured_certificate() {
    let (h, cfg, id) = issued(WWW).await;
    let out = dcvd(&cfg)
        .args(["forget", "www", "--yes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is in the configuration"),
        "{}",
        text(&out.stderr)
    );
    let engine = h.engine().await;
    assert!(engine.store().load_order(id).await.is_ok());
    assert_eq!(engine.store().certificates().await.unwrap().len(), 1);
}

#[tokio::test]
async fn forget_refuses_a_live_order_and_published_tokens() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // The tokens stay unseen by the checks: the order waits with them published.
    *h.world.lag_checks.lock().unwrap() = 1000;
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    // Submitted and its tokens published.
    for _ in 0..10 {
        engine.run_due().await.unwrap();
        if !engine
            .store()
            .journal_for_order(id)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        let next = engine.store().next_due(&[]).await.unwrap().unwrap();
        h.clock.set(next.max(h.clock.now_utc()));
    }
    assert!(h.world.count() > 0, "tokens published");
    let removed = config_without_www(&h);
    let out = dcvd(&removed)
        .args(["forget", "www", "--yes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("live order ({id})")),
        "{}",
        text(&out.stderr)
    );
    // Canceled, but its tokens are not removed yet: forgetting would lose the entries
    // that remove them.
    // (Canceled in the store: `orders cancel` would call the CA, which has the order.)
    assert!(
        engine
            .store()
            .cancel_order(id, "test", h.clock.now_utc())
            .await
            .unwrap()
    );
    let out = dcvd(&removed)
        .args(["forget", "www", "--yes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("still to be removed"),
        "{}",
        text(&out.stderr)
    );
    assert!(engine.store().load_order(id).await.is_ok());
    // The daemon removes them; then it is forgotten.
    engine.run_due().await.unwrap();
    assert_eq!(h.world.count(), 0, "tokens removed");
    run_ok(dcvd(&removed).args(["forget", "www", "--yes"]));
    assert!(engine.store().list_orders(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn forget_removes_everything_of_a_removed_certificate_and_its_metrics() {
    let (h, _cfg, id) = issued(WWW).await;
    let engine = h.engine().await;
    let page = dcvd::app::http::render_metrics(&engine).await;
    assert!(
        page.lines()
            .any(|l| l.starts_with("dcvd_certificate_expiry") && l.contains("\"www\"")),
        "{page}"
    );
    let removed = config_without_www(&h);
    // No terminal on stdin and no --yes: nothing is deleted (and nothing blocks).
    let out = dcvd(&removed).args(["forget", "www"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(engine.store().load_order(id).await.is_ok());

    let out = run_ok(dcvd(&removed).args(["forget", "www", "--yes"]));
    assert!(
        text(&out.stdout).contains("forgot certificate `www`"),
        "{}",
        text(&out.stdout)
    );
    let store = engine.store();
    assert!(store.certificates().await.unwrap().is_empty());
    assert!(store.list_orders(None).await.unwrap().is_empty());
    assert!(store.events(id).await.unwrap().is_empty());
    assert!(store.journal_for_order(id).await.unwrap().is_empty());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM authorizations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let page = dcvd::app::http::render_metrics(&engine).await;
    assert!(
        !page
            .lines()
            .any(|l| l.starts_with("dcvd_certificate_expiry") && l.contains("\"www\"")),
        "{page}"
    );
    let out = run_ok(dcvd(&removed).args(["certificates", "--json"]));
    assert!(
        !text(&out.stdout).contains("\"www\""),
        "{}",
        text(&out.stdout)
    );
    // Twice: nothing left to forget.
    let out = dcvd(&removed)
        .args(["forget", "www", "--yes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
