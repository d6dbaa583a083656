//! Interop with real third-party tools (run by CI after installing them):
//! `promtool check metrics` on what a running daemon serves at /metrics.

#[path = "it/support/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{Harness, WWW};
use dcvd::ca::MethodScope;
use tokio_util::sync::CancellationToken;

#[tokio::test]
#[ignore = "needs promtool (Debian package prometheus); CI runs --ignored"]
async fn promtool_accepts_the_metrics_of_a_running_daemon() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let h = Harness {
        config_toml: h.config_toml.replace(
            "concurrency = 4",
            "concurrency = 4\nlisten = \"127.0.0.1:0\"",
        ),
        ..h
    };
    let engine = h.engine().await;
    let rt = engine.services();
    let rt = dcvd::lifecycle::services::Services::new(
        rt.config.clone(),
        rt.providers.clone(),
        rt.publishers.clone(),
        rt.checker.clone(),
    );
    drop(engine);
    let app = dcvd::app::App::with_services(rt, Arc::new(dcvd::metrics::Metrics::new()))
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(app.run(shutdown.clone()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    // Wait (bounded) for the certificate, so every metric family has samples.
    // The issued counter moves when the step installs the files; the expiry
    // gauge is read from the store, which the step's commit writes a moment
    // later: wait for both.
    let ready = |body: &str| {
        body.contains("dcvd_certificates_issued_total{provider=\"ca\"} 1")
            && body.contains("dcvd_certificate_expiry_timestamp_seconds{")
    };
    let mut body = String::new();
    for _ in 0..200 {
        body = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if ready(&body) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready(&body), "{body}");
    for family in [
        "dcvd_orders{",
        "dcvd_provider_requests_total{",
        "dcvd_provider_request_duration_seconds_bucket{",
        "dcvd_dns_checks_total{",
        "dcvd_certificate_expiry_timestamp_seconds{",
        "dcvd_build_info{",
        "dcvd_scheduler_overdue_orders",
    ] {
        assert!(body.contains(family), "missing {family}");
    }
    assert!(!body.contains("test-key"), "a secret reached the metrics");
    let health = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    shutdown.cancel();
    run.await.unwrap().unwrap();

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: apt-get install -y prometheus");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}
