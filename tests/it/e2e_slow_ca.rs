//! A slow CA is not "no order" (reliability finding R1), at both CAs, through the engine,
//! the real providers and the simulators written from the documents.
//!
//! The simulators take `create_delay` (3 s) to create an order, and create it even when
//! the client has given up or died. dcvd's `request_timeout` is 1 s, so its order request
//! always times out while the CA is still at work. Measured before the fix: every such
//! certificate got two billed orders. Each test ends with exactly one order at the CA.

use std::sync::Arc;
use std::time::Duration;

use dcvd::lifecycle::engine::Engine;
use dcvd::model::OrderState;
use dcvd::sim::lab::{Lab, LabCa, LabSpec};
use dcvd::sim::{digicert, sectigo};

const CREATE_DELAY: Duration = Duration::from_secs(3);

/// Both providers: the order request times out after 1 s; recovery may conclude
/// "no order" only 1 s + 4 s after it was sent, after the CA finished (3 s).
const SLOW: &str = "poll_interval = \"200ms\"\nrequest_timeout = \"1s\"\nin_flight_margin = \"4s\"";

struct World {
    dir: tempfile::TempDir,
    digicert: digicert::DigicertSim,
    sectigo: sectigo::SectigoSim,
    lab: Lab,
}

impl World {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = LabSpec::new(dir.path(), "example.test");
        spec.tsig_key_name = "dcvd-key".into();
        spec.digicert = Some(LabCa {
            name: "dc".into(),
            options: digicert::DigicertSimOptions {
                api_keys: vec!["dc-key".into()],
                create_delay: CREATE_DELAY,
                ..Default::default()
            },
            settings: SLOW.into(),
        });
        spec.sectigo = Some(LabCa {
            name: "sec".into(),
            options: sectigo::SectigoSimOptions {
                login_name: "acme".into(),
                login_password: "sectigo-pass".into(),
                create_delay: CREATE_DELAY,
                ..Default::default()
            },
            settings: SLOW.into(),
        });
        let mut lab = Lab::start(spec).await.unwrap();
        World {
            dir,
            digicert: lab.digicert.take().unwrap(),
            sectigo: lab.sectigo.take().unwrap(),
            lab,
        }
    }

    /// One certificate at `provider` (see `SLOW` for the timings).
    fn config(&self, provider: &str) -> dcvd::config::Config {
        let (product, dcv) = match provider {
            "dc" => ("ssl_dv_geotrust", "dns-txt"),
            _ => ("287", "dns-cname"),
        };
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
common_name = "slow.example.test"
dcv = ["{dcv}"]
publisher = "dns"
output_dir = "{{dir}}/certs/c"
"#
        );
        crate::support::lab_config(&self.lab, &rest)
    }

    /// A fresh process on the same database.
    async fn engine(&self, config: &dcvd::config::Config) -> Arc<Engine> {
        let metrics = Arc::new(dcvd::metrics::Metrics::new());
        let store = dcvd::store::Store::open(&config.daemon.database)
            .await
            .unwrap();
        let clock = dcvd::clock::system();
        let rt = dcvd::lifecycle::services::build(config, metrics.clone(), &store, clock.clone())
            .await
            .unwrap();
        Arc::new(Engine::new(store, clock, metrics, rt))
    }

    fn orders_at(&self, provider: &str) -> usize {
        match provider {
            "dc" => self.digicert.orders().len(),
            _ => self.sectigo.orders().len(),
        }
    }
}

/// Run due steps until the order is issued (bounded in wall time), then check that the
/// CA holds exactly one order and the certificate is installed.
async fn issue_with_one_order(w: &World, engine: &Engine, id: i64, provider: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        engine.run_due().await.unwrap();
        let (o, _) = engine.store().load_order(id).await.unwrap();
        if o.state == OrderState::Issued {
            break;
        }
        assert!(
            !o.state.is_terminal(),
            "order ended ({}): {:?}",
            o.state,
            o.failure_reason
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "not issued within 60 s: {} {:?}",
            o.state,
            o.last_error
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a request the CA might still be carrying out the time to land.
    tokio::time::sleep(CREATE_DELAY).await;
    let evs = engine.store().events(id).await.unwrap();
    assert_eq!(
        w.orders_at(provider),
        1,
        "exactly one order at the CA; events: {:#?}",
        evs.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
    assert!(
        evs.iter()
            .any(|e| e.message.contains("recovered after an unanswered submit")),
        "the timed-out request was found, not placed again"
    );
    assert!(w.dir.path().join("certs/c/fullchain.pem").exists());
}

/// Creation (3 s) slower than `request_timeout` (1 s), no crash.
async fn creation_slower_than_the_request_timeout(provider: &str) {
    let w = World::start().await;
    let config = w.config(provider);
    let engine = w.engine(&config).await;
    let id = engine.ensure_orders().await.unwrap()[0];
    issue_with_one_order(&w, &engine, id, provider).await;
}

/// kill -9 while the CA is still creating the order; the restart looks it up at once.
async fn killed_during_a_slow_order_creation(provider: &str) {
    let w = World::start().await;
    let config = w.config(provider);
    let first = w.engine(&config).await;
    let id = first.ensure_orders().await.unwrap()[0];
    let e = first.clone();
    let step = tokio::spawn(async move { e.step(id).await });
    // The intent is on disk before the request leaves; give the request a moment to go.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while first.store().load_order(id).await.unwrap().0.state != OrderState::Submitting {
        assert!(tokio::time::Instant::now() < deadline, "no submit intent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    step.abort();
    let _ = step.await;
    drop(first);
    let (o, _) = w
        .engine(&config)
        .await
        .store()
        .load_order(id)
        .await
        .unwrap();
    assert_eq!(o.state, OrderState::Submitting, "killed inside the submit");
    assert_eq!(w.orders_at(provider), 0, "the CA is still creating it");

    let second = w.engine(&config).await;
    issue_with_one_order(&w, &second, id, provider).await;
}

#[tokio::test]
async fn digicert_creation_slower_than_the_request_timeout_orders_once() {
    creation_slower_than_the_request_timeout("dc").await;
}

#[tokio::test]
async fn sectigo_creation_slower_than_the_request_timeout_orders_once() {
    creation_slower_than_the_request_timeout("sec").await;
}

#[tokio::test]
async fn digicert_kill_during_a_slow_order_creation_orders_once() {
    killed_during_a_slow_order_creation("dc").await;
}

#[tokio::test]
async fn sectigo_kill_during_a_slow_order_creation_orders_once() {
    killed_during_a_slow_order_creation("sec").await;
}
