//! The `dcvd run` process as systemd drives it: READY=1 on NOTIFY_SOCKET after
//! migrations, JSON logs, certificates issued against the simulators, SIGHUP reloads
//! (an invalid config is rejected and the old one keeps running), SIGTERM exits 0.

use std::time::{Duration, Instant};

use crate::support::kill;

use dcvd::sim::lab::{Lab, LabCa, LabSpec};

fn cert(name: &str, host: &str, dir: &str) -> String {
    format!(
        r#"
[[certificates]]
name = "{name}"
provider = "dc"
product = "ssl_dv_geotrust"
common_name = "{host}"
dcv = ["dns-txt"]
publisher = "dns"
output_dir = "{dir}/certs/{name}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_notifies_systemd_reloads_on_sighup_and_stops_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut spec = LabSpec::new(dir.path(), "example.test");
    spec.tsig_key_name = "dcvd-key".into();
    spec.digicert = Some(LabCa {
        name: "dc".into(),
        options: dcvd::sim::digicert::DigicertSimOptions {
            api_keys: vec!["dc-key".into()],
            ..Default::default()
        },
        settings: "poll_interval = \"200ms\"".into(),
    });
    let mut lab = Lab::start(spec).await.unwrap();
    let sim = lab.digicert.take().unwrap();
    let base = format!(
        r#"
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
log_format = "json"
shutdown_timeout = "5s"
[dns]
poll_interval = "100ms"
"#
    );
    // Every version of the config: the test's part, then the lab's (sim::lab).
    let write_config = |rest: String| lab.write_config(&rest).unwrap();
    let config = write_config(format!("{base}{}", cert("www", "www.example.test", &d)));

    let crate::support::Daemon {
        mut child,
        pid,
        logs: rx,
    } = crate::support::Daemon::start(&config, dir.path());
    let mut logs: Vec<serde_json::Value> = Vec::new();
    let wait_for = |what: &str,
                    pred: &dyn Fn(&serde_json::Value) -> bool,
                    logs: &mut Vec<serde_json::Value>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if logs.iter().any(pred) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) => logs.push(v),
                Err(_) => panic!("timed out waiting for {what}; logs: {logs:#?}"),
            }
        }
    };
    let installed = |name: &'static str| {
        move |v: &serde_json::Value| v["kind"] == "installed" && v["certificate"] == name
    };
    wait_for("www installed", &installed("www"), &mut logs);
    assert!(dir.path().join("certs/www/fullchain.pem").exists());
    // Every state change log line carries the order's fields.
    let state_line = logs
        .iter()
        .find(|v| v["kind"] == "state")
        .expect("state log line");
    for f in ["order_id", "certificate", "provider"] {
        assert!(!state_line[f].is_null(), "{f} missing: {state_line}");
    }
    assert!(
        !logs.iter().any(|v| v.to_string().contains("dc-key")),
        "the API key reached the logs"
    );

    // An invalid config is rejected on SIGHUP; the daemon keeps running the old one.
    write_config(format!(
        "{base}{}bogus_key = 1\n",
        cert("api", "api.example.test", &d)
    ));
    kill(pid, "-HUP");
    wait_for(
        "the rejected reload",
        &|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("reload rejected") && m.contains("bogus_key"))
        },
        &mut logs,
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "dcvd exited after a bad reload"
    );

    // A valid config with a new certificate is taken on SIGHUP and ordered.
    write_config(format!(
        "{base}{}{}",
        cert("www", "www.example.test", &d),
        cert("api", "api.example.test", &d)
    ));
    kill(pid, "-HUP");
    wait_for("api installed", &installed("api"), &mut logs);
    assert_eq!(sim.orders().len(), 2, "the reload must not re-order www");

    // SIGTERM: stop claiming work, drain, exit 0.
    kill(pid, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "dcvd did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    wait_for("the stop line", &|v| v["message"] == "stopped", &mut logs);
}
