//! R4, R6, R14: a damaged database row (damaged with a raw UPDATE, as an operator's
//! sqlite3 would) puts only its own order or cleanup entry on hold: no busy loop, the
//! other orders issue, `status` and `orders show` say why, and a repaired row resumes.
//! A damaged key or CSR fails its order before anything is bought.

use crate::support as common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Harness, NowUtc, WWW};
use dcvd::ca::MethodScope;
use dcvd::lifecycle::engine::Engine;
use dcvd::model::OrderState;

const API: &str = r#"
[[certificates]]
name = "api"
provider = "ca"
product = "ssl_dv_geotrust"
common_name = "api.example.com"
dcv = ["dns-txt", "http", "email"]
method_timeout = "2h"
publisher = "dns"
http_publisher = "web"
approver_emails = { "api.example.com" = "admin@example.com" }
output_dir = "{dir}/certs/api"
"#;

fn two_certs() -> Harness {
    Harness::new(&format!("{WWW}{API}"), MethodScope::PerOrder)
}

/// Both certificates' first orders, as (www, api).
async fn start(h: &Harness) -> (std::sync::Arc<Engine>, i64, i64) {
    let engine = h.engine().await;
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 2);
    let www = engine
        .store()
        .latest_order_of("www")
        .await
        .unwrap()
        .unwrap();
    let api = engine
        .store()
        .latest_order_of("api")
        .await
        .unwrap()
        .unwrap();
    (engine, www, api)
}

/// The `dcvd_damaged_rows{table=…}` sample of the metrics page.
async fn damaged_gauge(engine: &Engine, table: &str) -> i64 {
    let page = dcvd::app::http::render_metrics(engine).await;
    let prefix = format!("dcvd_damaged_rows{{table=\"{table}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} sample in:\n{page}"))
        .parse()
        .unwrap()
}

async fn sql(engine: &Engine, q: &str, id: i64) {
    sqlx::query(sqlx::AssertSqlSafe(q.to_string()))
        .bind(id)
        .execute(engine.store().pool())
        .await
        .unwrap();
}

async fn scalar_i64(engine: &Engine, q: &str, id: i64) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(q.to_string()))
        .bind(id)
        .fetch_one(engine.store().pool())
        .await
        .unwrap()
}

/// Run everything that falls due for `d` of simulated time, jumping the clock from
/// deadline to deadline. Returns the steps run.
async fn run_for(h: &Harness, engine: &Engine, d: Duration) -> usize {
    let end = h.clock.now_utc() + chrono::Duration::from_std(d).unwrap();
    let mut steps = 0;
    loop {
        let n = engine.run_due().await.unwrap();
        steps += n;
        let next = [
            engine.store().next_due(&[]).await.unwrap(),
            engine.store().journal_next_due().await.unwrap(),
        ]
        .into_iter()
        .flatten()
        .min();
        let now = h.clock.now_utc();
        match next {
            Some(t) if t < end => h.clock.set(t.max(now + chrono::Duration::seconds(1))),
            _ => {
                h.clock.set(end);
                steps += engine.run_due().await.unwrap();
                return steps;
            }
        }
    }
}

fn write_config(h: &Harness) -> std::path::PathBuf {
    let p = h.path("dcvd.toml");
    std::fs::write(&p, &h.config_toml).unwrap();
    p
}

/// `dcvd status --json`'s attention list, as (order id, state, reason).
fn attention(h: &Harness) -> Vec<(i64, String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcvd"))
        .args([
            "--config",
            write_config(h).to_str().unwrap(),
            "status",
            "--json",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["order_id"].as_i64().unwrap(),
                a["state"].as_str().unwrap().to_string(),
                a["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn orders_show(h: &Harness, id: i64) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcvd"))
        .args([
            "--config",
            write_config(h).to_str().unwrap(),
            "orders",
            "show",
            &id.to_string(),
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The ten row cases of R4 that made the scheduler spin: (table, column, damage).
const CASES: &[(&str, &str, &str)] = &[
    ("orders", "state", "'exploded'"),
    ("orders", "names_json", "'[\"example.com\"'"),
    ("orders", "ca_data", "'{'"),
    ("orders", "key_type", "'rsa-1'"),
    ("orders", "ca_state", "'{'"),
    ("authorizations", "state", "'melted'"),
    ("authorizations", "challenge_json", "'{\"kind\":'"),
    ("authorizations", "domain", "'-not a name-'"),
    ("authorizations", "method", "'carrier-pigeon'"),
    ("authorizations", "check_json", "'['"),
];

#[tokio::test]
async fn each_damaged_row_is_put_on_hold_without_spinning_and_resumes_once_repaired() {
    for &(table, column, damage) in CASES {
        let case = format!("{table}.{column}");
        let h = two_certs();
        let (engine, www, api) = start(&h).await;
        // One row: the order's, or its first authorization.
        let key = if table == "orders" {
            "id = ?"
        } else {
            "id = (SELECT MIN(id) FROM authorizations WHERE order_id = ?)"
        };
        // Keep the good value to repair the row with afterwards.
        let good: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {column} FROM {table} WHERE {key}"
        )))
        .bind(www)
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
        sql(
            &engine,
            &format!("UPDATE {table} SET {column} = {damage} WHERE {key}"),
            www,
        )
        .await;
        assert!(
            engine.store().load_order(www).await.is_err(),
            "{case}: not damaged"
        );

        // A simulated hour: the damaged order is looked at a bounded number of times,
        // the other certificate is issued, ensure_orders keeps working.
        run_for(&h, &engine, Duration::from_secs(3600)).await;
        let looks = scalar_i64(&engine, "SELECT attempts FROM orders WHERE id = ?", www).await;
        assert!(
            (3..=15).contains(&looks),
            "{case}: {looks} looks in an hour"
        );
        let (api_order, _) = engine.store().load_order(api).await.unwrap();
        assert_eq!(
            api_order.state,
            OrderState::Issued,
            "{case}: the other order"
        );
        assert!(engine.ensure_orders().await.unwrap().is_empty(), "{case}");
        // No second order (a second purchase) for the certificate whose order is damaged.
        assert_eq!(
            engine.store().latest_order_of("www").await.unwrap(),
            Some(www),
            "{case}"
        );
        assert_eq!(h.ca.order_count(), 1, "{case}: only api was ordered");
        let reason = engine
            .store()
            .order_damage(www)
            .await
            .unwrap()
            .expect("marked");
        assert!(reason.contains(column), "{case}: {reason}");
        assert_eq!(damaged_gauge(&engine, "orders").await, 1, "{case}");

        let att = attention(&h);
        let hit = att
            .iter()
            .find(|(id, _, _)| *id == www)
            .unwrap_or_else(|| panic!("{case}: not in status: {att:?}"));
        assert!(
            hit.2.contains("DAMAGED") && hit.2.contains(column),
            "{case}: {hit:?}"
        );
        let (ok, text) = orders_show(&h, www);
        assert!(!ok, "{case}");
        assert!(
            text.contains("on hold") && text.contains(column),
            "{case}: {text}"
        );

        // The operator repairs the row: the next look picks it up and the order issues.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET {column} = ? WHERE {key}"
        )))
        .bind(good)
        .bind(www)
        .execute(engine.store().pool())
        .await
        .unwrap();
        assert_eq!(
            h.drive(&engine, www, 200).await,
            OrderState::Issued,
            "{case}"
        );
        assert_eq!(
            engine.store().order_damage(www).await.unwrap(),
            None,
            "{case}"
        );
        assert_eq!(damaged_gauge(&engine, "orders").await, 0, "{case}");
        let events = engine.store().events(www).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == dcvd::model::EventKind::Damaged)
                .count(),
            1,
            "{case}: one damage event, not one per look"
        );
        assert!(
            events
                .iter()
                .any(|e| e.kind == dcvd::model::EventKind::Repaired),
            "{case}"
        );
        assert!(
            !attention(&h)
                .iter()
                .any(|(id, _, r)| *id == www && r.contains("DAMAGED"))
        );
        assert_eq!(h.ca.order_count(), 2, "{case}");
    }
}

#[tokio::test]
async fn a_damaged_certificate_row_blocks_only_its_own_renewal() {
    let h = two_certs();
    let (engine, www, api) = start(&h).await;
    assert_eq!(h.drive(&engine, www, 200).await, OrderState::Issued);
    assert_eq!(h.drive(&engine, api, 200).await, OrderState::Issued);
    sqlx::query("UPDATE certificates SET names_json = '[\"api.example.com\"' WHERE name = 'api'")
        .execute(engine.store().pool())
        .await
        .unwrap();
    // Both are due for renewal a year on: only www gets one, and nothing fails.
    h.advance(Duration::from_secs(400 * 86400));
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(
        engine.store().latest_order_of("www").await.unwrap(),
        Some(created[0])
    );
    assert_eq!(
        engine.store().latest_order_of("api").await.unwrap(),
        Some(api)
    );
    let att = attention(&h);
    assert!(
        att.iter()
            .any(|(_, s, r)| s == "certificate" && r.contains("names_json") && r.contains("api")),
        "{att:?}"
    );
    assert_eq!(damaged_gauge(&engine, "certificates").await, 1);
    // Repaired: api renews too.
    sqlx::query("UPDATE certificates SET names_json = '[\"api.example.com\"]' WHERE name = 'api'")
        .execute(engine.store().pool())
        .await
        .unwrap();
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(
        engine.store().latest_order_of("api").await.unwrap(),
        Some(created[0])
    );
    assert_eq!(damaged_gauge(&engine, "certificates").await, 0);
}

#[tokio::test]
async fn a_damaged_latest_order_state_blocks_only_its_certificate() {
    let h = two_certs();
    let (engine, www, api) = start(&h).await;
    assert_eq!(h.drive(&engine, www, 200).await, OrderState::Issued);
    assert_eq!(h.drive(&engine, api, 200).await, OrderState::Issued);
    sql(
        &engine,
        "UPDATE orders SET state = 'exploded' WHERE id = ?",
        api,
    )
    .await;
    h.advance(Duration::from_secs(400 * 86400));
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1, "www renews, api waits for the operator");
    assert_eq!(
        engine.store().latest_order_of("api").await.unwrap(),
        Some(api)
    );
}

#[tokio::test]
async fn one_damaged_cleanup_entry_does_not_stop_the_others() {
    let h = two_certs();
    let (engine, www, api) = start(&h).await;
    // Run until both orders have published their tokens.
    let journal = |engine: std::sync::Arc<Engine>| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cleanup_journal")
            .fetch_one(engine.store().pool())
            .await
            .unwrap()
    };
    // A published token per order, recorded in the journal as the publish step does.
    for (id, name) in [
        (www, "_dnsauth.example.com"),
        (api, "_dnsauth.api.example.com"),
    ] {
        let ch = dcvd::model::Challenge {
            kind: dcvd::model::ChallengeKind::DnsTxt,
            name: name.into(),
            path: None,
            value: format!("token-{id}"),
        };
        engine
            .store()
            .journal_add(id, "dns", &ch, h.clock.now_utc())
            .await
            .unwrap();
        h.world
            .published
            .lock()
            .unwrap()
            .insert((ch.kind, ch.name.clone(), ch.value.clone()));
    }
    let published = journal(engine.clone()).await;
    assert!(published >= 2, "tokens published");
    let now: DateTime<Utc> = h.clock.now_utc();
    for id in [www, api] {
        assert!(engine.store().cancel_order(id, "test", now).await.unwrap());
    }
    let broken: i64 = scalar_i64(
        &engine,
        "SELECT MIN(id) FROM cleanup_journal WHERE order_id = ?",
        www,
    )
    .await;
    let good: String =
        sqlx::query_scalar("SELECT challenge_json FROM cleanup_journal WHERE id = ?")
            .bind(broken)
            .fetch_one(engine.store().pool())
            .await
            .unwrap();
    sql(
        &engine,
        "UPDATE cleanup_journal SET challenge_json = '{\"kind\":' WHERE id = ?",
        broken,
    )
    .await;
    let steps = run_for(&h, &engine, Duration::from_secs(600)).await;
    assert!(steps < 100, "{steps} steps");
    let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cleanup_journal")
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    assert_eq!(h.world.count(), 1, "the other order's token was removed");
    assert_eq!(
        remaining, 1,
        "every token but the damaged entry's removed (of {published})"
    );
    let looks = scalar_i64(
        &engine,
        "SELECT attempts FROM cleanup_journal WHERE id = ?",
        broken,
    )
    .await;
    assert_eq!(looks, 1, "looked at once, then backed off");
    let damaged = engine.store().damaged_journal().await.unwrap();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged_gauge(&engine, "cleanup_journal").await, 1);
    assert!(damaged[0].reason.contains("challenge_json"));
    let att = attention(&h);
    assert!(
        att.iter()
            .any(|(id, s, r)| *id == www && s == "cleanup" && r.contains("DAMAGED")),
        "{att:?}"
    );

    // Repaired: removed at its next look.
    sqlx::query("UPDATE cleanup_journal SET challenge_json = ? WHERE id = ?")
        .bind(good)
        .bind(broken)
        .execute(engine.store().pool())
        .await
        .unwrap();
    run_for(&h, &engine, Duration::from_secs(3700)).await;
    assert_eq!(journal(engine.clone()).await, 0);
    assert_eq!(h.world.count(), 0);
    assert!(engine.store().damaged_journal().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_damaged_key_fails_the_order_before_anything_is_bought_and_a_fresh_one_issues() {
    for (what, damage) in [
        (
            "emptied key",
            "UPDATE orders SET private_key_pem = '' WHERE id = ?",
        ),
        (
            "truncated key",
            "UPDATE orders SET private_key_pem = substr(private_key_pem, 1, 90) WHERE id = ?",
        ),
        (
            "truncated CSR",
            "UPDATE orders SET csr_der = substr(csr_der, 1, 40) WHERE id = ?",
        ),
        (
            "CSR of another order",
            "UPDATE orders SET csr_der = (SELECT csr_der FROM orders WHERE certificate = 'api'),
             csr_pem = (SELECT csr_pem FROM orders WHERE certificate = 'api') WHERE id = ?",
        ),
    ] {
        let h = two_certs();
        let (engine, www, api) = start(&h).await;
        sql(&engine, damage, www).await;
        engine.run_due().await.unwrap();
        let (o, _) = engine.store().load_order(www).await.unwrap();
        assert_eq!(o.state, OrderState::Failed, "{what}");
        let reason = o.failure_reason.unwrap();
        assert!(
            reason.contains(dcvd::lifecycle::step::DAMAGED_KEY_REASON),
            "{what}: {reason}"
        );
        // A fresh order with a fresh key, and it issues; the CA saw one order per certificate.
        let fresh = engine
            .store()
            .latest_order_of("www")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(fresh, www, "{what}");
        let (f, _) = engine.store().load_order(fresh).await.unwrap();
        assert_ne!(f.csr_der, o.csr_der, "{what}: a new key and CSR");
        assert_eq!(
            h.drive(&engine, fresh, 200).await,
            OrderState::Issued,
            "{what}"
        );
        assert_eq!(
            h.drive(&engine, api, 200).await,
            OrderState::Issued,
            "{what}"
        );
        assert_eq!(h.ca.order_count(), 2, "{what}");
    }
}

#[tokio::test]
async fn a_damaged_key_after_an_unanswered_submit_waits_for_the_operator() {
    let h = two_certs();
    let (engine, www, api) = start(&h).await;
    let now = h.clock.now_utc().timestamp_millis();
    sqlx::query(
        "UPDATE orders SET state = 'submitting', submit_maybe_sent = 1, submit_sent_at = ?,
         private_key_pem = '' WHERE id = ?",
    )
    .bind(now)
    .bind(www)
    .execute(engine.store().pool())
    .await
    .unwrap();
    run_for(&h, &engine, Duration::from_secs(3600)).await;
    let (o, _) = engine.store().load_order(www).await.unwrap();
    assert_eq!(
        o.state,
        OrderState::Submitting,
        "neither failed nor adopted"
    );
    assert!(
        o.damaged
            .as_deref()
            .unwrap()
            .contains(dcvd::lifecycle::step::DAMAGED_KEY_REASON)
    );
    assert!(o.attempts <= 15, "{} looks", o.attempts);
    assert_eq!(
        engine.store().latest_order_of("www").await.unwrap(),
        Some(www)
    );
    assert_eq!(
        engine.store().load_order(api).await.unwrap().0.state,
        OrderState::Issued
    );
    // Only api's order was placed, and www's was not even looked up.
    assert_eq!(h.ca.order_count(), 1);
    assert!(
        !h.ca.calls().iter().any(|c| c == "find_order"),
        "{:?}",
        h.ca.calls()
    );
    let att = attention(&h);
    assert!(
        att.iter()
            .any(|(id, _, r)| *id == www && r.contains("DAMAGED")),
        "{att:?}"
    );
    let (ok, text) = orders_show(&h, www);
    assert!(ok && text.contains("DAMAGED"), "{text}");
}
