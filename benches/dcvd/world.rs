//! The bench world, as `dcvd demo` builds it: in-process authoritative DNS (one or two
//! servers for the zone, TSIG-signed RFC 2136 updates), the DigiCert and Sectigo
//! simulators validating DCV for real, a generated config and the daemon (`App`).
//! Simulators run on their own runtime so dcvd's CPU time can be measured apart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use dcvd::sim::dns::{DnsSim, TsigAlgorithm, ZoneSpec};
use rand::RngExt;

pub const ZONE: &str = "bench.test";

pub struct Spec {
    pub digicert: usize,
    pub sectigo: usize,
    pub concurrency: usize,
    /// DNS servers for the zone (dcvd publishes to the first and checks all).
    pub dns_servers: usize,
    pub dns_poll: &'static str,
    /// DigiCert simulator enforces its limits scaled by this (None: limits off).
    pub digicert_scale: Option<f64>,
    /// `rate_limits` for dcvd's DigiCert provider (empty: no limiter).
    pub digicert_limits: Vec<String>,
    /// The DigiCert simulator's own background re-check (None: off).
    pub digicert_recheck: Option<Duration>,
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub dns: Vec<DnsSim>,
    pub digicert: dcvd::sim::digicert::DigicertSim,
    pub sectigo: dcvd::sim::sectigo::SectigoSim,
    pub config_path: PathBuf,
}

impl World {
    /// Start the simulators on `sims` and write the config.
    pub fn start(spec: &Spec, sims: &tokio::runtime::Runtime) -> Result<World, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.path().join("secrets")).map_err(|e| e.to_string())?;
        let tsig: [u8; 32] = rand::rng().random();
        let b64 = base64::engine::general_purpose::STANDARD;
        write(dir.path(), "tsig.key", &b64.encode(tsig))?;
        write(dir.path(), "digicert.key", "bench-digicert-key")?;
        write(dir.path(), "sectigo.pass", "bench-sectigo-pass")?;
        let world = sims.block_on(async {
            let mut dns = Vec::new();
            for _ in 0..spec.dns_servers.max(1) {
                dns.push(
                    DnsSim::start(
                        &[ZoneSpec::new(ZONE)],
                        Some(("dcvd-bench.", TsigAlgorithm::HmacSha256, &tsig)),
                    )
                    .await?,
                );
            }
            let digicert = dcvd::sim::digicert::start(dcvd::sim::digicert::DigicertSimOptions {
                api_keys: vec!["bench-digicert-key".into()],
                nameserver: Some(dns[0].addr()),
                rate_limits: spec.digicert_scale.is_some(),
                rate_limit_scale: spec.digicert_scale.unwrap_or(1.0),
                recheck_interval: spec.digicert_recheck.unwrap_or(Duration::ZERO),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
            let sectigo = dcvd::sim::sectigo::start(dcvd::sim::sectigo::SectigoSimOptions {
                login_name: "bench".into(),
                login_password: "bench-sectigo-pass".into(),
                nameserver: Some(dns[0].addr()),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
            Ok::<_, String>((dns, digicert, sectigo))
        })?;
        let (dns, digicert, sectigo) = world;
        let config_path = dir.path().join("dcvd.toml");
        let text = config_text(
            spec,
            dir.path(),
            &dns,
            &digicert.base_url(),
            &sectigo.base_url(),
        );
        std::fs::write(&config_path, text).map_err(|e| e.to_string())?;
        Ok(World {
            _dir: dir,
            dns,
            digicert,
            sectigo,
            config_path,
        })
    }

    /// Load the config and build the runtime; `adjust` may wrap publishers or the checker.
    pub async fn app(
        &self,
        adjust: impl FnOnce(&mut dcvd::lifecycle::services::Services),
    ) -> Result<dcvd::app::App, String> {
        let cfg = dcvd::config::load(&self.config_path).map_err(|e| e.to_string())?;
        let metrics = Arc::new(dcvd::metrics::Metrics::new());
        let store = dcvd::app::open_store(&cfg)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let mut rt =
            dcvd::lifecycle::services::build(&cfg, metrics.clone(), &store, dcvd::clock::system())
                .await?;
        adjust(&mut rt);
        dcvd::app::App::with_store(store, rt, metrics)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

fn write(dir: &Path, name: &str, value: &str) -> Result<(), String> {
    std::fs::write(dir.join("secrets").join(name), value).map_err(|e| e.to_string())
}

fn config_text(spec: &Spec, dir: &Path, dns: &[DnsSim], digicert: &str, sectigo: &str) -> String {
    let d = dir.display();
    let limits = |l: &[String]| {
        l.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let servers = dns
        .iter()
        .map(|s| format!("\"{}\"", s.addr()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        r#"[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
concurrency = {conc}
shutdown_timeout = "5s"

[providers.digicert]
kind = "digicert"
base_url = "{digicert}"
api_key_file = "{d}/secrets/digicert.key"
poll_interval = "1s"
rate_limits = [{dl}]

[providers.sectigo]
kind = "sectigo"
base_url = "{sectigo}"
login_name = "bench"
login_password_file = "{d}/secrets/sectigo.pass"
poll_interval = "1s"
collect_interval = "1s"
rate_limits = []

[publishers.dns]
kind = "rfc2136"
server = "{dns0}"
zone = "{ZONE}"
tsig_key_name = "dcvd-bench"
tsig_algorithm = "hmac-sha256"
tsig_secret_file = "{d}/secrets/tsig.key"

[dns]
poll_interval = "{poll}"
[dns.nameserver_overrides]
"{ZONE}" = [{servers}]
"#,
        conc = spec.concurrency,
        dl = limits(&spec.digicert_limits),
        dns0 = dns[0].addr(),
        poll = spec.dns_poll,
    );
    let certs = (0..spec.digicert)
        .map(|i| (format!("d{i}"), "digicert", "ssl_dv_geotrust", "dns-txt"))
        .chain((0..spec.sectigo).map(|i| (format!("s{i}"), "sectigo", "287", "dns-cname")));
    for (name, provider, product, dcv) in certs {
        let _ = write!(
            s,
            r#"
[[certificates]]
name = "{name}"
provider = "{provider}"
product = "{product}"
common_name = "{name}.{ZONE}"
dcv = ["{dcv}"]
publisher = "dns"
key = "ecdsa-p256"
output_dir = "{d}/certs/{name}"
"#
        );
    }
    s
}

/// Order counts by state, from the daemon's database.
pub async fn states(store: &dcvd::store::Store) -> Result<(i64, i64, i64), String> {
    let c = store.order_counts().await.map_err(|e| e.to_string())?;
    let sum = |f: &dyn Fn(&str) -> bool| c.iter().filter(|r| f(&r.1)).map(|r| r.2).sum::<i64>();
    Ok((
        sum(&|s| s == "issued"),
        sum(&|s| s == "failed" || s == "canceled"),
        sum(&|_| true),
    ))
}

/// Wait until `want` orders are issued (or one failed, or `limit` passed).
pub async fn wait_issued(
    store: &dcvd::store::Store,
    want: i64,
    limit: Duration,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    loop {
        let (issued, failed, _) = states(store).await?;
        if failed > 0 {
            let f = store
                .list_orders(Some(dcvd::model::OrderState::Failed))
                .await
                .map_err(|e| e.to_string())?;
            return Err(format!(
                "{failed} orders failed, e.g. {:?}",
                f.first().and_then(|o| o.failure_reason.clone())
            ));
        }
        if issued >= want {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "only {issued} of {want} issued after {} s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
