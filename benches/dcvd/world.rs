//! The bench world, built by `dcvd::sim::lab` as `dcvd demo` builds it: in-process authoritative DNS (one or two
//! servers for the zone, TSIG-signed RFC 2136 updates), the DigiCert and Sectigo
//! simulators validating DCV for real, a generated config and the daemon (`App`).
//! Simulators run on their own runtime so dcvd's CPU time can be measured apart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dcvd::sim::dns::DnsSim;
use dcvd::sim::lab::{Lab, LabCa, LabSpec};

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
    /// Start the lab (`dcvd::sim::lab`, as `dcvd demo` does) on `sims` and write the config.
    pub fn start(spec: &Spec, sims: &tokio::runtime::Runtime) -> Result<World, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut lab_spec = LabSpec::new(dir.path(), ZONE);
        lab_spec.dns_servers = spec.dns_servers.max(1);
        lab_spec.tsig_key_name = "dcvd-bench".into();
        lab_spec.publisher_zone = Some(ZONE.into());
        lab_spec.digicert = Some(LabCa {
            name: "digicert".into(),
            options: dcvd::sim::digicert::DigicertSimOptions {
                api_keys: vec!["bench-digicert-key".into()],
                rate_limits: spec.digicert_scale.is_some(),
                rate_limit_scale: spec.digicert_scale.unwrap_or(1.0),
                recheck_interval: spec.digicert_recheck.unwrap_or(Duration::ZERO),
                ..Default::default()
            },
            settings: format!(
                "poll_interval = \"1s\"\nrate_limits = [{}]",
                spec.digicert_limits
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        lab_spec.sectigo = Some(LabCa {
            name: "sectigo".into(),
            options: dcvd::sim::sectigo::SectigoSimOptions {
                login_name: "bench".into(),
                login_password: "bench-sectigo-pass".into(),
                ..Default::default()
            },
            settings: "poll_interval = \"1s\"\ncollect_interval = \"1s\"\nrate_limits = []".into(),
        });
        let mut lab = sims
            .block_on(Lab::start(lab_spec))
            .map_err(|e| e.to_string())?;
        let config_path = lab
            .write_config(&config_text(spec, dir.path()))
            .map_err(|e| e.to_string())?;
        let (Some(digicert), Some(sectigo)) = (lab.digicert.take(), lab.sectigo.take()) else {
            return Err("the lab started without its CA simulators".into());
        };
        Ok(World {
            _dir: dir,
            dns: std::mem::take(&mut lab.dns),
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

/// The bench's part of the config: the lab adds providers, publisher and nameservers.
fn config_text(spec: &Spec, dir: &Path) -> String {
    let d = dir.display();
    let mut s = format!(
        r#"[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
concurrency = {conc}
shutdown_timeout = "5s"

[dns]
poll_interval = "{poll}"
"#,
        conc = spec.concurrency,
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
