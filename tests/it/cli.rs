//! The `dcvd` binary: exit codes and output of check-config, orders, status and dns check.

use crate::support as common;

use std::path::Path;

use common::{Harness, WWW, dcvd_command as dcvd, run_ok};
use dcvd::ca::MethodScope;
use dcvd::model::OrderState;

fn write_config(h: &Harness) -> std::path::PathBuf {
    let p = h.path("dcvd.toml");
    std::fs::write(&p, &h.config_toml).unwrap();
    p
}

#[test]
fn check_config_accepts_the_example_with_its_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/dcvd.example.toml"
    ))
    .unwrap();
    let secrets = dir.path().join("etc");
    std::fs::create_dir_all(&secrets).unwrap();
    for (f, v) in [
        ("digicert.key", "k"),
        ("sectigo.pass", "p"),
        ("tsig.key", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"),
    ] {
        std::fs::write(secrets.join(f), v).unwrap();
    }
    let cfg = dir.path().join("dcvd.toml");
    std::fs::write(
        &cfg,
        example.replace("/etc/dcvd/", &format!("{}/", secrets.display())),
    )
    .unwrap();
    let out = dcvd(&cfg).arg("check-config").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[test]
fn check_config_reports_every_problem_with_its_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dcvd.toml");
    std::fs::write(
        &cfg,
        r#"
[daemon]
concurrency = 0
renewal_check = "0 */6 * * *"
[[certificates]]
name = "www"
provider = "nope"
product = "x"
common_name = "bad name.example"
output_dir = "/tmp/x"
"#,
    )
    .unwrap();
    let out = dcvd(&cfg).arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "daemon.concurrency",
        "daemon.renewal_check",
        "dcvd.toml: certificate \"www\": provider",
        "dcvd.toml: certificate \"www\": common_name",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    assert!(err.contains("seconds"), "cron hint missing:\n{err}");
    // A missing file is an error naming the path, not a crash.
    let out = dcvd(&dir.path().join("absent.toml"))
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
}

#[tokio::test]
async fn orders_list_json_on_an_empty_database() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let cfg = write_config(&h);
    // No database yet: an empty list, and a note on stderr.
    let out = dcvd(&cfg)
        .args(["orders", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    // A migrated database with no orders.
    dcvd::store::Store::open(&h.config().daemon.database)
        .await
        .unwrap();
    let out = dcvd(&cfg)
        .args(["orders", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn orders_show_and_status_explain_an_order_without_secrets() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    *h.world.lag_checks.lock().unwrap() = 2;
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    drop(engine);
    let cfg = write_config(&h);

    let out = dcvd(&cfg).args(["orders", "show", "www"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "issued",
        "example.com",
        "method dns-txt",
        "ns2.fake (127.0.0.2:53)",
        "present",
        "Events:",
        "check_passed",
        "installed",
    ] {
        assert!(text.contains(want), "`{want}` missing:\n{text}");
    }
    assert!(!text.contains("PRIVATE KEY"));

    let out = dcvd(&cfg)
        .args(["orders", "show", &id.to_string(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["order"]["state"], "issued");
    assert_eq!(v["authorizations"].as_array().unwrap().len(), 2);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PRIVATE KEY"));

    let out = dcvd(&cfg).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["orders_by_state"]["issued"], 1);
    assert_eq!(v["renewals"][0]["certificate"], "www");
    let out = dcvd(&cfg).arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Orders: 1 issued"));

    let out = dcvd(&cfg)
        .args(["orders", "show", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[tokio::test]
async fn cancel_and_retry_from_the_command_line() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    drop(engine);
    let cfg = write_config(&h);
    // Not yet placed at the CA: cancel needs no CA call.
    run_ok(dcvd(&cfg).args(["orders", "cancel", &id.to_string()]));
    let engine = h.engine().await;
    assert_eq!(
        engine.store().load_order(id).await.unwrap().0.state,
        OrderState::Canceled
    );
    drop(engine);
    let out = dcvd(&cfg)
        .args(["orders", "cancel", &id.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "canceling twice is refused");
    // Retry of an ended order places a new one for the certificate (once the certificate,
    // paused by the cancel, is resumed).
    run_ok(dcvd(&cfg).args(["resume", "www"]));
    run_ok(dcvd(&cfg).args(["orders", "retry", &id.to_string()]));
    let engine = h.engine().await;
    let orders = engine.store().list_orders(None).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[1].state, OrderState::Pending);
}

#[tokio::test]
async fn dns_check_prints_the_table_and_exits_by_presence() {
    use dcvd::sim::dns::{DnsSim, ZoneSpec};
    let ns = DnsSim::start(&[ZoneSpec::new("example.test")], None)
        .await
        .unwrap();
    ns.add_txt("_dnsauth.www.example.test", "token-1")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dcvd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[dns.nameserver_overrides]\n\"example.test\" = [\"{}\"]\n",
            ns.addr()
        ),
    )
    .unwrap();
    // The CLI runs on a blocking thread so the in-process DNS server keeps answering.
    let run = |value: &str| {
        let cfg = cfg.clone();
        let value = value.to_string();
        tokio::task::spawn_blocking(move || {
            dcvd(&cfg)
                .args(["dns", "check", "_dnsauth.www.example.test", "TXT", &value])
                .output()
                .unwrap()
        })
    };
    let ok = run("token-1").await.unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&ns.addr().to_string()));
    let missing = run("token-2").await.unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("other_value")
            || String::from_utf8_lossy(&missing.stdout).contains("other value")
    );
}

/// A CA endpoint on 127.0.0.1 that answers every request with a DigiCert-style 404.
fn ca_that_knows_no_order() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let body = r#"{"errors":[{"code":"not_found","message":"Order not found"}]}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/services/v2")
}

#[tokio::test]
async fn adopt_and_resubmit_from_the_command_line_with_their_refusals() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // The submit got no answer and the CA's answer to the lookup does not settle it.
    h.ca.fail_next(
        "submit",
        dcvd::ca::ProviderError::transport("ca", "submit", "connection reset"),
    );
    h.ca.lookups
        .lock()
        .unwrap()
        .push_back(dcvd::ca::Lookup::Unsure {
            reason: "the order report call was refused".into(),
            candidates: vec!["1000".into()],
        });
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    engine.run_due().await.unwrap();
    h.advance(std::time::Duration::from_secs(10));
    engine.run_due().await.unwrap();
    drop(engine);
    let cfg = h.path("dcvd.toml");
    std::fs::write(
        &cfg,
        h.config_toml.replace(
            "api_key = \"test-key\"",
            &format!(
                "api_key = \"test-key\"\nbase_url = \"{}\"",
                ca_that_knows_no_order()
            ),
        ),
    )
    .unwrap();
    let ids = id.to_string();
    let stdout = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).to_string();

    // `orders show` explains the reason, the candidates and both ways out.
    let out = run_ok(dcvd(&cfg).args(["orders", "show", &ids]));
    let text = stdout(&out);
    for want in [
        "submit_unknown",
        "NEEDS YOU",
        "the order report call was refused",
        "candidates: 1000",
        &format!("dcvd orders adopt {id} CA_ORDER_ID"),
        &format!("dcvd orders resubmit {id} --yes"),
        "second certificate",
    ] {
        assert!(text.contains(want), "`{want}` missing:\n{text}");
    }
    let out = dcvd(&cfg)
        .args(["orders", "show", &ids, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["order"]["state"], "submit_unknown");
    assert_eq!(v["order"]["unsure_candidates"], serde_json::json!(["1000"]));
    // `status` lists it as needing attention.
    let out = dcvd(&cfg).arg("status").output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains(&format!("order {id} (www, submit_unknown): NEEDS YOU")),
        "{text}"
    );
    // `orders retry` changes nothing and points at the two commands.
    let out = dcvd(&cfg).args(["orders", "retry", &ids]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("orders adopt"), "{}", stderr(&out));

    // Refusals: unknown order; the provider refuses the CA order; resubmit without --yes.
    let out = dcvd(&cfg)
        .args(["orders", "adopt", "999", "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("order 999"), "{}", stderr(&out));
    let out = dcvd(&cfg)
        .args(["orders", "adopt", &ids, "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refused") && stderr(&out).contains("left as it was"),
        "{}",
        stderr(&out)
    );
    let out = dcvd(&cfg)
        .args(["orders", "resubmit", &ids])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("second certificate") && err.contains("--yes") && err.contains("1000"),
        "{err}"
    );
    let engine = h.engine().await;
    assert_eq!(
        engine.store().load_order(id).await.unwrap().0.state,
        OrderState::SubmitUnknown,
        "refusals change nothing"
    );
    drop(engine);

    // Confirmed: the order goes back to submitting, without a maybe-sent intent.
    let out = run_ok(dcvd(&cfg).args(["orders", "resubmit", &ids, "--yes"]));
    assert!(stdout(&out).contains("second certificate"));
    let engine = h.engine().await;
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::Submitting);
    assert!(!o.submit_maybe_sent && o.unsure_reason.is_none());
    drop(engine);
    // Wrong state now: both commands refuse.
    for args in [
        vec!["orders", "resubmit", &ids, "--yes"],
        vec!["orders", "adopt", &ids, "1000"],
    ] {
        let out = dcvd(&cfg).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("no submit of it is in doubt"),
            "{}",
            stderr(&out)
        );
    }
    // The daemon submits it once.
    let engine = h.engine().await;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(h.ca.order_count(), 1);
}

#[tokio::test]
async fn orders_show_lists_duplicate_ca_orders_and_what_the_ca_said() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // The submit times out; the one request lands twice at the CA a second later.
    *h.ca.copies_after.lock().unwrap() = vec![std::time::Duration::ZERO];
    // The CA refuses both cancellations (at recovery and at the look after the bound).
    for _ in 0..2 {
        h.ca.fail_next("cancel", common::fakes::transient("ca", "cancel"));
    }
    *h.ca.create_after.lock().unwrap() = Some(std::time::Duration::from_secs(1));
    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    engine.run_due().await.unwrap();
    *h.ca.create_after.lock().unwrap() = None;
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    // The look for a late copy after the in-flight bound tries the cancellation again.
    let at = engine
        .store()
        .load_order(id)
        .await
        .unwrap()
        .0
        .dup_check_at
        .unwrap();
    h.clock.set(at);
    engine.run_due().await.unwrap();
    assert_eq!(h.ca.calls().iter().filter(|c| *c == "cancel").count(), 2);
    drop(engine);
    let cfg = write_config(&h);
    let out = dcvd(&cfg)
        .args(["orders", "show", &id.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Duplicate CA orders (the same request placed twice):"),
        "{text}"
    );
    assert!(
        text.contains("CA order 1001") && text.contains("NOT CANCELED") && text.contains("503"),
        "{text}"
    );
    let out = dcvd(&cfg)
        .args(["orders", "show", &id.to_string(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["duplicates"][0]["ca_order_id"], "1001",
        "{}",
        v["duplicates"]
    );
}

/// A migrated database at `h`'s path, closed, with `sql` applied; returns its path.
async fn database_with(h: &Harness, sql: &'static str) -> std::path::PathBuf {
    let db = h.config().daemon.database;
    let store = dcvd::store::Store::open(&db).await.unwrap();
    if !sql.is_empty() {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    store.pool().close().await;
    db
}

/// The database file and its WAL, byte for byte (the WAL as its length, 0 when absent).
fn snapshot(db: &Path) -> (Vec<u8>, u64) {
    let wal = std::fs::metadata(format!("{}-wal", db.display()))
        .map(|m| m.len())
        .unwrap_or(0);
    (std::fs::read(db).unwrap(), wal)
}

#[tokio::test]
async fn read_only_commands_do_not_write_a_current_database() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let cfg = write_config(&h);
    let db = database_with(&h, "").await;
    let before = snapshot(&db);
    for args in [
        &["orders", "list", "--json"][..],
        &["status", "--json"],
        &["orders", "show", "www"],
    ] {
        let out = dcvd(&cfg).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("schema version"), "{args:?}: {err}");
        if args[1] != "show" {
            assert!(out.status.success(), "{args:?}: {err}");
        }
        assert_eq!(snapshot(&db), before, "{args:?} changed the database");
    }
}

/// Every migration version this build carries (the numeric prefixes), ascending.
fn migrations() -> Vec<i64> {
    let mut v: Vec<i64> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse().ok()
        })
        .collect();
    v.sort();
    v
}

/// The newest migration version this build carries (the numeric prefix of the last file).
fn newest_migration() -> i64 {
    *migrations().last().unwrap()
}

/// The version before the newest (versions need not be consecutive: engineers working
/// in parallel reserve numbers).
fn previous_migration() -> i64 {
    let v = migrations();
    v[v.len() - 2]
}

#[tokio::test]
async fn read_only_commands_refuse_an_older_schema_and_leave_it_alone() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let cfg = write_config(&h);
    let db = database_with(
        &h,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    let before = snapshot(&db);
    for args in [
        &["orders", "list"][..],
        &["status"],
        &["orders", "show", "1"],
    ] {
        let out = dcvd(&cfg).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} read an older schema");
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [
            db.display().to_string(),
            format!("schema version {}", previous_migration()),
            format!("expects {}", newest_migration()),
            "start the daemon of this version".into(),
        ] {
            assert!(err.contains(&want), "{args:?}: `{want}` missing in {err}");
        }
        assert_eq!(snapshot(&db), before, "{args:?} changed the database");
    }
    // Nothing was migrated behind the daemon's back: the newest is still not applied.
    let store = dcvd::store::Store::open_readonly(&db).await;
    assert!(store.is_err());
}

#[tokio::test]
async fn read_only_commands_refuse_a_newer_schema() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let cfg = write_config(&h);
    let db = database_with(
        &h,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, \
         execution_time) VALUES (9999, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
    )
    .await;
    let before = snapshot(&db);
    let out = dcvd(&cfg).args(["orders", "list"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "schema version 9999, this dcvd expects {}",
            newest_migration()
        )),
        "{err}"
    );
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert_eq!(snapshot(&db), before);
}

#[tokio::test]
async fn open_readonly_does_not_create_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.db");
    let err = dcvd::store::Store::open_readonly(&db).await.unwrap_err();
    assert!(err.to_string().contains("absent.db"), "{err}");
    assert!(!db.exists());
}

#[test]
fn check_config_warns_about_an_output_dir_it_cannot_create() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    // A regular file where a directory of the path must be: fails as root too.
    std::fs::write(h.path("certs"), "not a directory").unwrap();
    let cfg = write_config(&h);
    let out = dcvd(&cfg).arg("check-config").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("dcvd.toml: certificate \"www\": output_dir: installing into")
            && err.to_lowercase().contains("not a directory")
            && err.contains("dcvd orders nothing for this certificate"),
        "{err}"
    );
    std::fs::remove_file(h.path("certs")).unwrap();
    let out = dcvd(&cfg).arg("check-config").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("output_dir"), "{err}");
    assert!(!h.path("certs").exists(), "check-config created nothing");
}
