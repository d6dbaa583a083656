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
        .filter(|e| e.kind == dcvd::model::EventKind::CaCancel)
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
async fn a_damaged_row_with_a_cancel_due_backs_off_and_cancels_once_repaired() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    step_until_failed(&h, &engine, id).await;
    let pool = engine.store().pool();
    sqlx::query("UPDATE orders SET names_json = 'not json' WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    // Held aside with a backoff, never a busy loop on the due cancel.
    let steps = engine.run_due().await.unwrap();
    assert!(steps <= 2, "{steps} steps for one damaged order");
    let at: i64 = sqlx::query_scalar("SELECT ca_cancel_at FROM orders WHERE id = ?")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(at > h.clock.now_utc().timestamp_millis(), "pushed past now");
    assert_eq!(
        count(&h.ca.calls(), "cancel"),
        0,
        "nothing sent for a damaged row"
    );
    sqlx::query(
        "UPDATE orders SET names_json = '[\"example.com\",\"www.example.com\"]' WHERE id = ?",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    h.advance(Duration::from_secs(3600));
    engine.run_due().await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    assert_eq!(count(&h.ca.calls(), "cancel"), 1);
}

#[tokio::test]
async fn a_certificate_removed_from_the_config_still_gets_its_ca_order_canceled() {
    let mut h = Harness::new(WWW, MethodScope::PerOrder);
    let (engine, id) = failing(&h).await;
    step_until_failed(&h, &engine, id).await;
    drop(engine);
    // The operator removes the certificate; the provider stays.
    let start = h.config_toml.find("[[certificates]]").unwrap();
    h.config_toml.truncate(start);
    h.config_toml.push_str(
        r#"
[[certificates]]
name = "other"
provider = "ca"
product = "ssl_dv_geotrust"
common_name = "other.example.com"
dcv = ["dns-txt"]
publisher = "dns"
output_dir = "/nonexistent-dcvd-test/other"
"#,
    );
    let engine = h.engine().await;
    engine.step(id).await.unwrap();
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    assert_eq!(count(&h.ca.calls(), "cancel"), 1);
    assert_eq!(h.ca.canceled_ids(), vec![o.ca_order_id.unwrap()]);
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

// ---------------------------------------------------------------------------------------
// End to end with the simulators: the lab (primary DNS with RFC 2136, a secondary that is
// never fed, so dcvd's own check never sees the token on every nameserver), the real
// providers, `method_timeout = "1s"` with one method: the order fails while the CA holds
// it pending.

mod sims {
    use super::*;

    use dcvd::sim::dns::DnsSim;
    use dcvd::sim::lab::{Lab, LabCa, LabSpec};
    use dcvd::sim::{digicert, sectigo};

    pub struct World {
        pub _dir: tempfile::TempDir,
        /// Never fed: dcvd's check of every nameserver never passes.
        pub _ns2: DnsSim,
        pub _lab: Lab,
        pub digicert: Option<digicert::DigicertSim>,
        pub sectigo: Option<sectigo::SectigoSim>,
        pub config: dcvd::config::Config,
        pub config_path: std::path::PathBuf,
    }

    /// A lab with the simulator of `ca` ("digicert" or "sectigo"); `email`: the one
    /// method is email (approved by nobody) instead of a DNS token.
    pub async fn world(ca: &str, email: bool) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = LabSpec::new(dir.path(), "example.test");
        spec.dns_servers = 2;
        spec.tsig_key_name = "dcvd-key".into();
        let (provider, dcv) = if ca == "digicert" {
            spec.digicert = Some(LabCa {
                name: "dc".into(),
                options: digicert::DigicertSimOptions {
                    api_keys: vec!["dc-key".into()],
                    // DigiCert's own re-checks off: it validates only when a test says so.
                    recheck_interval: Duration::ZERO,
                    ..Default::default()
                },
                settings: "poll_interval = \"200ms\"".into(),
            });
            ("dc", "dns-txt")
        } else {
            spec.sectigo = Some(LabCa {
                name: "sec".into(),
                options: sectigo::SectigoSimOptions {
                    login_name: "acme".into(),
                    login_password: "sectigo-pass".into(),
                    ..Default::default()
                },
                settings: "poll_interval = \"200ms\"".into(),
            });
            ("sec", "dns-cname")
        };
        let (dcv, approver) = if email {
            (
                "email",
                "approver_emails = { \"shop.example.test\" = \"admin@shop.example.test\" }",
            )
        } else {
            (dcv, "")
        };
        let product = if ca == "digicert" {
            "ssl_dv_geotrust"
        } else {
            "287"
        };
        let mut lab = Lab::start(spec).await.unwrap();
        let rest = format!(
            r#"
[daemon]
database = "{{dir}}/dcvd.db"
listen = "127.0.0.1:0"
[dns]
poll_interval = "100ms"
[[certificates]]
name = "c"
provider = "{provider}"
product = "{product}"
common_name = "shop.example.test"
dcv = ["{dcv}"]
method_timeout = "1s"
{approver}
publisher = "dns"
output_dir = "{{dir}}/certs/c"
"#
        );
        let config = common::lab_config(&lab, &rest);
        let config_path = lab
            .write_config(&rest.replace("{dir}", &lab.dir.display().to_string()))
            .unwrap();
        World {
            _dir: dir,
            _ns2: lab.dns.remove(1),
            digicert: lab.digicert.take(),
            sectigo: lab.sectigo.take(),
            _lab: lab,
            config,
            config_path,
        }
    }

    impl World {
        pub async fn engine(&self) -> Arc<Engine> {
            let metrics = Arc::new(dcvd::metrics::Metrics::new());
            let store = dcvd::store::Store::open(&self.config.daemon.database)
                .await
                .unwrap();
            let rt = dcvd::lifecycle::services::build(
                &self.config,
                metrics.clone(),
                &store,
                dcvd::clock::system(),
            )
            .await
            .unwrap();
            Arc::new(Engine::new(
                store,
                Arc::new(dcvd::clock::SystemClock),
                metrics,
                rt,
            ))
        }

        /// `dcvd status` on this lab's config: its stdout.
        pub fn status(&self) -> String {
            let out = common::run_ok(common::dcvd_command(&self.config_path).arg("status"));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }

    /// Step only order `id` (no cleanups, no other work) until `done` holds, sleeping to
    /// its next attempt in between (bounded in wall time).
    pub async fn step_until(
        engine: &Engine,
        id: i64,
        what: &str,
        done: impl Fn(&dcvd::store::Order) -> bool,
    ) -> dcvd::store::Order {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (o, _) = engine.store().load_order(id).await.unwrap();
            if done(&o) {
                return o;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {} {:?} {:?}",
                o.state,
                o.last_error,
                o.failure_reason
            );
            let now = dcvd::clock::Clock::now(&dcvd::clock::SystemClock);
            let next = if o.state.is_terminal() {
                o.ca_cancel_at.unwrap_or(now)
            } else {
                o.next_attempt_at
            };
            if next > now {
                let wait = (next - now).to_std().unwrap_or_default();
                tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                continue;
            }
            engine.step(id).await.unwrap();
        }
    }

    pub fn failed(o: &dcvd::store::Order) -> bool {
        o.state == OrderState::Failed
    }

    pub fn cancel_answered(o: &dcvd::store::Order) -> bool {
        o.state == OrderState::Failed && o.ca_cancel.is_some_and(|c| c != CaCancel::Wanted)
    }
}

use sims::{cancel_answered, failed, step_until, world};

/// Requests the DigiCert simulator saw to the cancel endpoint.
fn digicert_cancels(sim: &dcvd::sim::digicert::DigicertSim) -> Vec<dcvd::sim::LoggedRequest> {
    sim.log()
        .entries()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.endpoint == "order/certificate/{id}/status")
        .collect()
}

#[tokio::test]
async fn digicert_a_failed_order_is_canceled_at_certcentral_once() {
    let w = world("digicert", false).await;
    let sim = w.digicert.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = step_until(&engine, id, "the cancel", cancel_answered).await;
    assert!(
        o.failure_reason
            .as_deref()
            .unwrap_or_default()
            .contains("no DCV method left"),
        "{:?}",
        o.failure_reason
    );
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    let ca_id: u64 = o.ca_order_id.unwrap().parse().unwrap();
    assert_eq!(sim.order(ca_id).unwrap().status, "canceled");
    // Everything else due runs too (cleanups); the cancel is never sent again.
    engine.run_due().await.unwrap();
    let cancels = digicert_cancels(sim);
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0].status, 204);
    assert!(!w.status().contains("may still be pending at the CA"));
}

#[tokio::test]
async fn digicert_a_refused_cancel_is_shown_in_status() {
    let w = world("digicert", false).await;
    let sim = w.digicert.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = step_until(&engine, id, "the failure", failed).await;
    assert_eq!(o.ca_cancel, Some(CaCancel::Wanted));
    // Between the failure and the cancel, DigiCert validates the token it finds on the
    // primary and issues: "Only pending orders can be canceled".
    sim.recheck_now().await;
    let ca_id = o.ca_order_id.clone().unwrap();
    assert_eq!(sim.order(ca_id.parse().unwrap()).unwrap().status, "issued");
    let o = step_until(&engine, id, "the cancel", cancel_answered).await;
    assert_eq!(o.ca_cancel, Some(CaCancel::Refused));
    let answer = o.ca_cancel_answer.clone().unwrap();
    assert!(
        answer.contains("Only pending orders can be canceled."),
        "{answer}"
    );
    assert_eq!(o.state, OrderState::Failed);
    // Recorded, not retried.
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.run_due().await.unwrap();
    let cancels = digicert_cancels(sim);
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0].status, 400);
    let status = w.status();
    assert!(
        status.contains(&format!(
            "CA order {ca_id} at provider dc may still be pending at the CA"
        )) && status.contains("Only pending orders can be canceled.")
            && status.contains("cancel it there"),
        "{status}"
    );
    let out = common::run_ok(common::dcvd_command(&w.config_path).args(["status", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&serde_json::Value> = v["attention"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "open_at_ca")
        .collect();
    assert_eq!(listed.len(), 1, "{v:#}");
    assert_eq!(listed[0]["order_id"], id);
    assert!(listed[0]["reason"].as_str().unwrap().contains(&ca_id));
    let out = common::run_ok(common::dcvd_command(&w.config_path).args([
        "orders",
        "show",
        &id.to_string(),
    ]));
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        show.contains("CA cancel:  REFUSED by the CA")
            && show.contains("Only pending orders can be canceled."),
        "{show}"
    );
}

#[tokio::test]
async fn digicert_a_server_error_on_cancel_is_retried() {
    let w = world("digicert", false).await;
    let sim = w.digicert.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    step_until(&engine, id, "the failure", failed).await;
    sim.force_faults(dcvd::sim::Fault::ServerError, 1);
    let o = step_until(&engine, id, "the cancel", |o| o.ca_cancel_attempts > 0).await;
    assert_eq!(o.ca_cancel, Some(CaCancel::Wanted));
    assert!(w.status().contains("dcvd is canceling it at the CA"));
    let o = step_until(&engine, id, "the cancel", cancel_answered).await;
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    let ca_id: u64 = o.ca_order_id.unwrap().parse().unwrap();
    assert_eq!(sim.order(ca_id).unwrap().status, "canceled");
}

#[tokio::test]
async fn sectigo_a_failed_order_is_refunded_with_a_reason_code_once() {
    let w = world("sectigo", false).await;
    let sim = w.sectigo.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = step_until(&engine, id, "the cancel", cancel_answered).await;
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    let number = o.ca_order_id.unwrap();
    engine.run_due().await.unwrap();
    let refunds = sim.forms("!AutoRefund");
    assert_eq!(refunds.len(), 1);
    let params: Vec<String> = refunds[0]
        .params
        .iter()
        .filter(|(k, _)| k != "loginName" && k != "loginPassword")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        params,
        [
            format!("orderNumber={number}"),
            "refundReasonCode=11".into()
        ]
    );
    let at_ca = sim
        .orders()
        .into_iter()
        .find(|o| o.order_number.to_string() == number)
        .unwrap();
    assert_eq!(
        at_ca.state,
        dcvd::sim::sectigo::state::SimOrderState::Cancelled
    );
    assert!(!w.status().contains("may still be pending at the CA"));
}

#[tokio::test]
async fn sectigo_a_refused_refund_is_shown_in_status() {
    // Email: nobody approves within method_timeout, so the order fails; the approval
    // arrives at Sectigo before the refund, which Sectigo then refuses.
    let w = world("sectigo", true).await;
    let sim = w.sectigo.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = step_until(&engine, id, "the failure", failed).await;
    let number = o.ca_order_id.clone().unwrap();
    // Sectigo issues it before the refund arrives.
    sim.approve(number.parse().unwrap()).unwrap();
    let o = step_until(&engine, id, "the cancel", cancel_answered).await;
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Refused),
        "{:?}",
        o.ca_cancel_answer
    );
    assert_eq!(sim.forms("!AutoRefund").len(), 1);
    let status = w.status();
    assert!(
        status.contains(&format!(
            "CA order {number} at provider sec may still be pending at the CA"
        )) && status.contains("refused"),
        "{status}"
    );
}

// ---------------------------------------------------------------------------------------
// The cancel request on the wire, against the documented shape (reference/digicert.md §1
// "Cancel pending order": `PUT /order/certificate/{order_id}/status`, body
// `{status:"canceled", note, send_emails?}`, 204). Sectigo's `!AutoRefund` form is
// checked in `sectigo_wire.rs::refund_sends_a_reason_code` and end to end above.

/// One HTTP request read raw from a socket: request line, headers (lower-cased names),
/// body; answered with `reply`.
async fn capture_one(
    listener: tokio::net::TcpListener,
    reply: &'static str,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    sock.write_all(reply.as_bytes()).await.unwrap();
    sock.shutdown().await.ok();
    (
        request_line,
        headers,
        buf[head_end..head_end + len].to_vec(),
    )
}

fn digicert_provider(base_url: &str) -> dcvd::ca::digicert::DigicertProvider {
    let cfg = dcvd::config::DigicertConfig {
        base_url: base_url.to_string(),
        api_key: Some("wire-key".to_string().into()),
        api_key_file: None,
        rate_limits: None,
        dns_txt_at: "_dnsauth".into(),
        poll_interval: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        in_flight_margin: Duration::from_secs(300),
        server_platform: -1,
        custom_fields: Vec::new(),
    };
    dcvd::ca::digicert::DigicertProvider::new("dc", &cfg).unwrap()
}

fn oref<'a>(id: &'a str, data: &'a serde_json::Value) -> dcvd::ca::OrderRef<'a> {
    dcvd::ca::OrderRef {
        reference: "dcvd-wire-cancel",
        ca_order_id: id,
        ca_data: data,
        names: &[],
        csr_der: &[],
    }
}

#[tokio::test]
async fn digicert_cancel_request_has_the_documented_shape() {
    use dcvd::ca::Provider;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(capture_one(
        listener,
        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    ));
    let p = digicert_provider(&format!("http://{addr}/services/v2"));
    let data = serde_json::json!({});
    p.cancel(oref("4711", &data)).await.unwrap();
    let (line, headers, body) = server.await.unwrap();
    assert_eq!(
        line,
        "PUT /services/v2/order/certificate/4711/status HTTP/1.1"
    );
    let header = |k: &str| {
        headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-dc-devkey"), Some("wire-key"));
    assert_eq!(header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let obj = body.as_object().unwrap();
    assert_eq!(obj["status"], "canceled");
    assert!(
        obj["note"].as_str().unwrap().contains("dcvd-wire-cancel"),
        "the note names dcvd's reference: {body}"
    );
    for k in obj.keys() {
        assert!(
            ["status", "note", "send_emails"].contains(&k.as_str()),
            "undocumented field {k}: {body}"
        );
    }
}

#[tokio::test]
async fn digicert_refusal_of_a_cancel_is_permanent_with_the_cas_words() {
    use dcvd::ca::Provider;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(capture_one(
        listener,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 93\r\n\
         Connection: close\r\n\r\n\
         {\"errors\":[{\"code\":\"invalid_order_status\",\"message\":\"Only pending orders can be canceled.\"}]}",
    ));
    let p = digicert_provider(&format!("http://{addr}/services/v2"));
    let data = serde_json::json!({});
    let e = p.cancel(oref("4711", &data)).await.unwrap_err();
    server.await.unwrap();
    assert_eq!(e.kind, dcvd::ca::ErrorKind::Permanent, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("invalid_order_status")
            && text.contains("Only pending orders can be canceled."),
        "{text}"
    );
}

// Multi-threaded: the simulator must answer while the test waits for the `dcvd` process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digicert_an_operator_cancel_the_ca_refuses_still_ends_the_order_and_is_listed() {
    // operator-findings D4: an order issued at the CA that cannot be installed could
    // never be ended (`orders cancel` stopped at DigiCert's refusal).
    let w = world("digicert", false).await;
    let sim = w.digicert.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = step_until(&engine, id, "the CA order", |o| o.ca_order_id.is_some()).await;
    let ca_id = o.ca_order_id.unwrap();
    // DigiCert issues (it validates the token on the primary) before the operator acts.
    let mut tries = 0;
    while sim.order(ca_id.parse().unwrap()).unwrap().status != "issued" {
        tries += 1;
        assert!(tries < 100, "the simulator never issued");
        engine.step(id).await.unwrap();
        sim.recheck_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(engine);
    let out = common::run_ok(common::dcvd_command(&w.config_path).args([
        "orders",
        "cancel",
        &id.to_string(),
    ]));
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("refused") && said.contains("Only pending orders can be canceled."),
        "{said}"
    );
    let engine = w.engine().await;
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.state,
        OrderState::Canceled,
        "ended here as the operator asked"
    );
    assert_eq!(o.ca_cancel, Some(CaCancel::Refused));
    let status = w.status();
    assert!(
        status.contains(&format!(
            "CA order {ca_id} at provider dc may still be pending at the CA"
        )) && status.contains("Only pending orders can be canceled."),
        "{status}"
    );
}

#[tokio::test]
async fn sectigo_a_server_error_on_refund_is_retried() {
    let w = world("sectigo", false).await;
    let sim = w.sectigo.as_ref().unwrap();
    let engine = w.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    step_until(&engine, id, "the failure", failed).await;
    sim.force_faults(dcvd::sim::Fault::ServerError, 1);
    let o = step_until(&engine, id, "the first refund", |o| {
        o.ca_cancel_attempts > 0
    })
    .await;
    assert_eq!(o.ca_cancel, Some(CaCancel::Wanted));
    let o = step_until(&engine, id, "the refund", cancel_answered).await;
    assert_eq!(
        o.ca_cancel,
        Some(CaCancel::Canceled),
        "{:?}",
        o.ca_cancel_answer
    );
    let number = o.ca_order_id.unwrap();
    let at_ca = sim
        .orders()
        .into_iter()
        .find(|o| o.order_number.to_string() == number)
        .unwrap();
    assert_eq!(
        at_ca.state,
        dcvd::sim::sectigo::state::SimOrderState::Cancelled
    );
}
