//! End to end through the daemon: engine + real providers + the CA simulators + the
//! in-process authoritative DNS servers (RFC 2136 with TSIG) + webroot, config to
//! installed files. Also the restart test with each provider and its simulator.

use crate::support as common;

use std::sync::Arc;
use std::time::Duration;

use common::lose_submit::LoseSubmitAnswer;
use dcvd::lifecycle::engine::Engine;
use dcvd::model::{DomainName, OrderState};
use dcvd::sim::dns::{DnsSim, ZoneSpec};
use dcvd::sim::lab::{Lab, LabCa, LabSpec};
use dcvd::sim::{digicert, sectigo};

struct World {
    dir: tempfile::TempDir,
    /// The secondary that the test feeds by hand (the primary, in `lab`, gets the
    /// RFC 2136 updates).
    ns2: DnsSim,
    digicert: digicert::DigicertSim,
    sectigo: sectigo::SectigoSim,
    lab: Lab,
}

impl World {
    async fn start() -> Self {
        Self::start_with(ZoneSpec::new("example.test")).await
    }

    /// `zone` (example.test) on both servers; the primary also serves the token zone
    /// `dcv.example.net`, where delegated tokens go.
    async fn start_with(zone: ZoneSpec) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = LabSpec::new(dir.path(), "example.test");
        spec.zones = vec![zone];
        spec.primary_zones = vec![ZoneSpec::new("dcv.example.net")];
        spec.dns_servers = 2;
        spec.tsig_key_name = "dcvd-key".into();
        // The CAs look at the primary: they could validate before the secondary has it.
        spec.digicert = Some(LabCa {
            name: "dc".into(),
            options: digicert::DigicertSimOptions {
                api_keys: vec!["dc-key".into()],
                recheck_interval: Duration::ZERO,
                ..Default::default()
            },
            settings: "poll_interval = \"200ms\"".into(),
        });
        spec.sectigo = Some(LabCa {
            name: "sec".into(),
            options: sectigo::SectigoSimOptions {
                login_name: "acme".into(),
                login_password: "sectigo-pass".into(),
                ..Default::default()
            },
            settings: "poll_interval = \"200ms\"\ncollect_interval = \"200ms\"".into(),
        });
        let mut lab = Lab::start(spec).await.unwrap();
        World {
            dir,
            ns2: lab.dns.remove(1),
            digicert: lab.digicert.take().unwrap(),
            sectigo: lab.sectigo.take().unwrap(),
            lab,
        }
    }

    fn config(&self, certificates: &str) -> dcvd::config::Config {
        let rest = format!(
            r#"
[daemon]
database = "{{dir}}/dcvd.db"
listen = "127.0.0.1:0"
concurrency = 8
[dns]
poll_interval = "100ms"
{certificates}"#
        );
        common::lab_config(&self.lab, &rest)
    }

    async fn engine(&self, config: dcvd::config::Config) -> Arc<Engine> {
        self.engine_with(config, dcvd::clock::system()).await
    }

    /// An engine whose providers read the same `clock`.
    async fn engine_with(
        &self,
        config: dcvd::config::Config,
        clock: dcvd::clock::SharedClock,
    ) -> Arc<Engine> {
        let metrics = Arc::new(dcvd::metrics::Metrics::new());
        let store = dcvd::store::Store::open(&config.daemon.database)
            .await
            .unwrap();
        let rt = dcvd::lifecycle::services::build(&config, metrics.clone(), &store, clock.clone())
            .await
            .unwrap();
        Arc::new(Engine::new(store, clock, metrics, rt))
    }
}

fn cert(name: &str, provider: &str, product: &str, names: &[&str], dcv: &str) -> String {
    let more: Vec<String> = names[1..].iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"
[[certificates]]
name = "{name}"
provider = "{provider}"
product = "{product}"
common_name = "{cn}"
dns_names = [{more}]
dcv = ["{dcv}"]
publisher = "dns"
output_dir = "{{dir}}/certs/{name}"
"#,
        cn = names[0],
        more = more.join(", ")
    )
}

/// Run due steps until `cond` holds for the order (bounded in wall time).
async fn run_until(
    engine: &Engine,
    id: i64,
    what: &str,
    cond: impl Fn(&dcvd::store::Order, &[dcvd::store::Event]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        engine.run_due().await.unwrap();
        let (o, _) = engine.store().load_order(id).await.unwrap();
        let evs = engine.store().events(id).await.unwrap();
        if cond(&o, &evs) {
            return;
        }
        assert!(
            !o.state.is_terminal(),
            "order ended ({}) before {what}: {:?}",
            o.state,
            o.failure_reason
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // Wait for the order's next step time (short: polls are 100–200 ms here).
        let next = engine.store().next_due(&[]).await.unwrap();
        let wait = next
            .map(|t| {
                (t - dcvd::clock::Clock::now(&dcvd::clock::SystemClock))
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or(Duration::from_millis(50));
        tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
    }
}

fn issued(o: &dcvd::store::Order, _: &[dcvd::store::Event]) -> bool {
    o.state == OrderState::Issued
}

#[tokio::test]
async fn digicert_dns_txt_waits_for_every_nameserver_then_issues() {
    let w = World::start().await;
    let engine = w
        .engine(w.config(&cert(
            "www",
            "dc",
            "ssl_dv_geotrust",
            &["www.example.test"],
            "dns-txt",
        )))
        .await;
    let id = engine.ensure_orders().await.unwrap()[0];
    // The token reaches the primary; the secondary does not have it yet.
    run_until(
        &engine,
        id,
        "a check that names the lagging server",
        |_, evs| {
            evs.iter().any(|e| {
                e.kind == dcvd::model::EventKind::CheckPending
                    && e.message.contains(&w.ns2.addr().to_string())
            })
        },
    )
    .await;
    let log = w.digicert.log().entries();
    assert!(
        !log.iter().any(|r| r.path.ends_with("/check-dcv")),
        "check-dcv before the record was on every nameserver: {log:?}"
    );
    // The secondary catches up (as a zone transfer would).
    let (o, authz) = engine.store().load_order(id).await.unwrap();
    let ch = authz[0].challenge.clone().unwrap();
    assert_eq!(ch.name, "_dnsauth.www.example.test");
    w.ns2.add_txt(&ch.name, &ch.value).await.unwrap();
    run_until(&engine, id, "issuance", issued).await;

    // Installed, and the leaf is for our key and names.
    let dir = w.dir.path().join("certs/www");
    let leaf = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let chain = [std::fs::read_to_string(dir.join("chain.pem")).unwrap()];
    let names = vec![DomainName::parse("www.example.test").unwrap()];
    dcvd::pki::verify_leaf(&leaf, &chain[..1], &o.private_key_pem, &names).unwrap();

    // One order at the CA, at most five calls, check-dcv only after our check passed.
    assert_eq!(w.digicert.orders().len(), 1);
    let log = w.digicert.log().entries();
    assert!(log.len() <= 5, "{} calls: {log:#?}", log.len());
    let evs = engine.store().events(id).await.unwrap();
    let passed = evs
        .iter()
        .position(|e| e.kind == dcvd::model::EventKind::CheckPassed)
        .unwrap();
    let trigger = evs
        .iter()
        .position(|e| e.message.starts_with("trigger_check"))
        .unwrap();
    assert!(passed < trigger);
    // The token is gone from the primary after the order ended.
    engine.run_due().await.unwrap();
    let still = dcvd::dcv::check::check_once(
        &w.config("").dns,
        &ch.name,
        dcvd::model::ChallengeKind::DnsTxt,
        &ch.value,
    )
    .await
    .unwrap();
    assert!(
        !still.servers[0]
            .outcome
            .eq(&dcvd::dcv::check::ServerOutcome::Present),
        "{still:?}"
    );
}

#[tokio::test]
async fn sectigo_cname_two_names_to_installed_files() {
    let w = World::start().await;
    let engine = w
        .engine(w.config(&cert(
            "shop",
            "sec",
            "287",
            &["shop.example.test", "api.example.test"],
            "dns-cname",
        )))
        .await;
    let id = engine.ensure_orders().await.unwrap()[0];
    // Feed the secondary whatever the primary got, as soon as the tokens are known.
    run_until(&engine, id, "both tokens published", |_, evs| {
        evs.iter()
            .filter(|e| e.kind == dcvd::model::EventKind::Published)
            .count()
            == 2
    })
    .await;
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    for a in &authz {
        let ch = a.challenge.clone().unwrap();
        assert!(
            ch.name.starts_with('_') && ch.value.ends_with(".sectigo.com"),
            "{ch:?}"
        );
        w.ns2.add_cname(&ch.name, &ch.value).await.unwrap();
    }
    run_until(&engine, id, "issuance", issued).await;
    assert!(w.dir.path().join("certs/shop/fullchain.pem").exists());
    assert_eq!(w.sectigo.orders().len(), 1);
    let counts = w.sectigo.log().counts();
    let total: u64 = counts.values().sum();
    // Two names: one status call per poll covers both; six is the single-name target.
    assert!(total <= 8, "{counts:?}");
    assert!(w.sectigo.max_concurrent_collects() <= 1);
}

#[tokio::test]
async fn a_delegated_token_name_is_published_at_the_cname_target() {
    // `_dnsauth.www.example.test` was pointed, once, at a token zone dcvd may update.
    let zone =
        ZoneSpec::new("example.test").with_record("_dnsauth.www 60 IN CNAME www.dcv.example.net.");
    let w = World::start_with(zone).await;
    let engine = w
        .engine(w.config(&cert(
            "www",
            "dc",
            "ssl_dv_geotrust",
            &["www.example.test"],
            "dns-txt",
        )))
        .await;
    let id = engine.ensure_orders().await.unwrap()[0];
    run_until(&engine, id, "issuance", issued).await;
    let evs = engine.store().events(id).await.unwrap();
    let delegated: Vec<_> = evs
        .iter()
        .filter(|e| e.kind == dcvd::model::EventKind::Delegated)
        .collect();
    assert_eq!(delegated.len(), 1, "{evs:#?}");
    assert!(delegated[0].message.contains("www.dcv.example.net"));
    let published = evs
        .iter()
        .find(|e| e.kind == dcvd::model::EventKind::Published)
        .unwrap();
    assert!(
        published.message.contains("TXT www.dcv.example.net"),
        "{}",
        published.message
    );
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    let check = authz[0].check.clone().unwrap();
    assert_eq!(check.final_name, "www.dcv.example.net");
    assert_eq!(w.digicert.orders().len(), 1);
    // The token at the target was cleaned up after issuance.
    engine.run_due().await.unwrap();
    assert!(
        engine
            .store()
            .journal_for_order(id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn restart_in_the_submit_window(provider: &str, product: &str, dcv: &str, names: &[&str]) {
    let w = World::start().await;
    let config = w.config(&cert("c", provider, product, names, dcv));
    // First process: the submit reaches the CA, then the process dies.
    let engine = {
        let metrics = Arc::new(dcvd::metrics::Metrics::new());
        let store = dcvd::store::Store::open(&config.daemon.database)
            .await
            .unwrap();
        let mut rt = dcvd::lifecycle::services::build(
            &config,
            metrics.clone(),
            &store,
            dcvd::clock::system(),
        )
        .await
        .unwrap();
        let real = rt.providers[provider].clone();
        rt.providers
            .insert(provider.to_string(), Arc::new(LoseSubmitAnswer(real)));
        Arc::new(Engine::new(
            store,
            Arc::new(dcvd::clock::SystemClock),
            metrics,
            rt,
        ))
    };
    let id = engine.ensure_orders().await.unwrap()[0];
    let e = engine.clone();
    let step = tokio::spawn(async move { e.step(id).await });
    let placed = || w.digicert.orders().len() + w.sectigo.orders().len();
    tokio::time::timeout(Duration::from_secs(10), async {
        while placed() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the submit never reached the CA");
    step.abort();
    let _ = step.await;
    drop(engine);

    // Restart after every single step from here on, feeding the secondary as we go. The
    // engine's clock is moved to each next step: after the recovery, dcvd holds the download
    // until the first request can no longer land as a copy (`in_flight_bound`, minutes).
    let clock = Arc::new(dcvd::clock::ManualClock::new(dcvd::clock::Clock::now(
        &dcvd::clock::SystemClock,
    )));
    let mut fed = std::collections::HashSet::new();
    for _ in 0..300 {
        let engine = w.engine_with(config.clone(), clock.clone()).await;
        let (o, authz) = engine.store().load_order(id).await.unwrap();
        if o.state == OrderState::Issued {
            break;
        }
        assert!(!o.state.is_terminal(), "{:?}", o.failure_reason);
        for a in authz {
            if let Some(ch) = a.challenge
                && fed.insert(ch.value.clone())
            {
                match ch.kind {
                    dcvd::model::ChallengeKind::DnsTxt => {
                        w.ns2.add_txt(&ch.name, &ch.value).await.unwrap()
                    }
                    _ => w.ns2.add_cname(&ch.name, &ch.value).await.unwrap(),
                }
            }
        }
        // Real time passes for the simulators (DNS, CA checks); the engine's clock jumps.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = dcvd::clock::Clock::now(&*clock) + chrono::Duration::milliseconds(50);
        clock.set(now.max(o.next_attempt_at));
        engine.step(id).await.unwrap();
    }
    let engine = w.engine(config.clone()).await;
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(o.state, OrderState::Issued, "{:?}", o.last_error);
    assert_eq!(placed(), 1, "exactly one order at the CA");
    let evs = engine.store().events(id).await.unwrap();
    assert!(
        evs.iter()
            .any(|e| e.message.contains("recovered after an unanswered submit"))
    );
    assert!(w.dir.path().join("certs/c/privkey.pem").exists());
}

#[tokio::test]
async fn digicert_restart_in_the_submit_window_finds_the_order() {
    restart_in_the_submit_window("dc", "ssl_dv_geotrust", "dns-txt", &["www.example.test"]).await;
}

#[tokio::test]
async fn sectigo_restart_in_the_submit_window_finds_the_order_from_the_report() {
    restart_in_the_submit_window("sec", "287", "dns-cname", &["shop.example.test"]).await;
}
