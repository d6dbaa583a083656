//! Shared test harness: an engine on a temporary database with a manual clock and fakes.

#![allow(dead_code)]

pub mod dcv_env;
pub mod fakes;
pub mod lose_submit;
pub mod sectigo;

#[allow(unused_imports)]
pub use dcv_env::*;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use dcvd::ca::{MethodScope, Provider};
use dcvd::clock::ManualClock;
use dcvd::config::Config;
use dcvd::dcv::publish::Publisher;
use dcvd::lifecycle::engine::Engine;
use dcvd::lifecycle::services::Services;
use dcvd::metrics::Metrics;
use dcvd::model::OrderState;
use dcvd::store::Store;
use fakes::{FakeCa, FakeChecker, FakePublisher, World};

/// `dcvd --config <config>` as a plain process (to spawn), without `RUST_LOG` or any
/// `DCVD_*` from the environment.
pub fn dcvd_process(config: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dcvd"));
    c.arg("--config").arg(config).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("DCVD_") {
            c.env_remove(k);
        }
    }
    c
}

/// [`dcvd_process`] for assert_cmd (output checks).
pub fn dcvd_command(config: &std::path::Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(dcvd_process(config))
}

/// A `dcvd run` child under a fake systemd: started with `NOTIFY_SOCKET`, returned once it
/// sent READY=1, its JSON log lines arriving on `logs`.
pub struct Daemon {
    pub child: std::process::Child,
    pub pid: u32,
    pub logs: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Daemon {
    pub fn start(config: &std::path::Path, dir: &std::path::Path) -> Self {
        use std::io::BufRead;
        use std::process::Stdio;
        let notify_path = dir.join("notify.sock");
        let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut child = dcvd_process(config)
            .arg("run")
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        // READY=1 arrives once migrations ran and the config validated.
        let mut buf = [0u8; 4096];
        let mut ready = false;
        while !ready {
            let n = notify.recv(&mut buf).expect("no READY=1 from dcvd run");
            ready = String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1");
        }
        // Logs are JSON lines; collect them on a thread.
        let stderr = child.stderr.take().unwrap();
        let (tx, logs) = std::sync::mpsc::channel::<serde_json::Value>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let v: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Daemon { child, pid, logs }
    }
}

/// Send `sig` (`-HUP`, `-TERM`) to process `pid` with kill(1).
pub fn kill(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Run `cmd` and assert it exited 0, showing its stderr when it did not; its output.
pub fn run_ok(cmd: &mut assert_cmd::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} exited with {}: {}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Assert that no token of order `id` is left to remove (its cleanup journal is empty).
pub async fn assert_journal_empty(engine: &Engine, id: i64) {
    let left = engine.store().journal_for_order(id).await.unwrap();
    assert!(left.is_empty(), "order {id} still has cleanups: {left:?}");
}

/// A DNS TXT challenge: `value` at `name`.
pub fn txt(name: &str, value: &str) -> dcvd::model::Challenge {
    dcvd::model::Challenge {
        kind: dcvd::model::ChallengeKind::DnsTxt,
        name: name.into(),
        path: None,
        value: value.into(),
    }
}

/// A `[dns]` config: `overrides` (zone → its authoritative servers) checked with `check`,
/// `resolvers` for everything else, each query waiting at most `query_timeout`.
pub fn dns_config(
    overrides: &[(&str, Vec<std::net::SocketAddr>)],
    check: dcvd::config::CheckMode,
    resolvers: &[std::net::SocketAddr],
    query_timeout: Duration,
) -> dcvd::config::DnsConfig {
    dcvd::config::DnsConfig {
        check,
        resolvers: resolvers.iter().map(|s| s.to_string()).collect(),
        query_timeout,
        nameserver_overrides: overrides
            .iter()
            .map(|(zone, servers)| {
                (
                    zone.to_string(),
                    servers.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect(),
        ..dcvd::config::DnsConfig::default()
    }
}

/// Domain names from strings (panics on a bad one: test input).
pub fn names(list: &[&str]) -> Vec<dcvd::model::DomainName> {
    list.iter()
        .map(|n| dcvd::model::DomainName::parse(n).unwrap())
        .collect()
}

/// The config of `lab` with `rest` (daemon, certificates, …), written to the lab's
/// `dcvd.toml` and loaded through `config::load`, as the daemon and `check-config` do.
/// `{dir}` in `rest` stands for the lab's directory.
pub fn lab_config(lab: &dcvd::sim::lab::Lab, rest: &str) -> Config {
    let rest = rest.replace("{dir}", &lab.dir.display().to_string());
    let path = lab.write_config(&rest).unwrap();
    dcvd::config::load(&path).unwrap_or_else(|e| {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        panic!("the lab config is refused:\n{e}\n{text}")
    })
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub world: Arc<World>,
    pub ca: Arc<FakeCa>,
    pub dns: Arc<FakePublisher>,
    pub web: Arc<FakePublisher>,
    pub config_toml: String,
}

/// A certificate section; `{dir}` is replaced by the temp dir.
pub const WWW: &str = r#"
[[certificates]]
name = "www"
provider = "ca"
product = "ssl_dv_geotrust"
common_name = "example.com"
dns_names = ["www.example.com"]
dcv = ["dns-txt", "http", "email"]
method_timeout = "2h"
publisher = "dns"
http_publisher = "web"
approver_emails = { "example.com" = "admin@example.com" }
output_dir = "{dir}/certs/www"
"#;

impl Harness {
    pub fn new(certificates: &str, scope: MethodScope) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let world = Arc::new(World::default());
        let config_toml = format!(
            r#"
[daemon]
database = "{{dir}}/dcvd.db"
concurrency = 4
[providers.ca]
kind = "digicert"
api_key = "test-key"
[publishers.dns]
kind = "manual"
[publishers.web]
kind = "manual"
[dns]
poll_interval = "2s"
timeout = "12h"
{certificates}"#
        )
        .replace("{dir}", &dir.path().display().to_string());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
        ));
        Self {
            ca: Arc::new(FakeCa::new("ca", world.clone(), scope, clock.clone())),
            clock,
            dns: Arc::new(FakePublisher::new("dns", world.clone(), false)),
            web: Arc::new(FakePublisher::new("web", world.clone(), true)),
            world,
            dir,
            config_toml,
        }
    }

    /// The config through `config::load_from_str` (secrets, validation): what
    /// `dcvd check-config` would accept.
    pub fn config(&self) -> Config {
        dcvd::config::load_from_str(&self.config_toml, None)
            .unwrap_or_else(|e| panic!("the test config is refused:\n{e}\n{}", self.config_toml))
    }

    /// A fresh engine on the same database: what a restart looks like.
    pub async fn engine(&self) -> Arc<Engine> {
        let config = self.config();
        let store = Store::open(&config.daemon.database).await.unwrap();
        let mut providers: std::collections::HashMap<String, Arc<dyn Provider>> =
            Default::default();
        providers.insert("ca".into(), self.ca.clone());
        let mut publishers: std::collections::HashMap<String, Arc<dyn Publisher>> =
            Default::default();
        publishers.insert("dns".into(), self.dns.clone());
        publishers.insert("web".into(), self.web.clone());
        let rt = Services::new(
            config,
            providers,
            publishers,
            Arc::new(FakeChecker {
                world: self.world.clone(),
            }),
        );
        Arc::new(Engine::new(
            store,
            self.clock.clone(),
            Arc::new(Metrics::new()),
            rt,
        ))
    }

    /// Run due work; when nothing is due, move the clock to the next deadline. Stops when
    /// `order_id` ends or after `max_rounds` clock jumps.
    pub async fn drive(&self, engine: &Engine, order_id: i64, max_rounds: usize) -> OrderState {
        for _ in 0..max_rounds {
            engine.run_due().await.unwrap();
            let (o, _) = engine.store().load_order(order_id).await.unwrap();
            if o.state.is_terminal() {
                // Let cleanups that became due run too.
                engine.run_due().await.unwrap();
                return o.state;
            }
            let next = engine.store().next_due(&[]).await.unwrap().unwrap();
            let now = self.clock.now_utc();
            if next > now {
                self.clock.set(next);
            }
        }
        engine.store().load_order(order_id).await.unwrap().0.state
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

pub trait NowUtc {
    fn now_utc(&self) -> chrono::DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> chrono::DateTime<Utc> {
        dcvd::clock::Clock::now(self)
    }
}
