//! End to end with DigiCert: engine + the real DigiCert provider + the CertCentral
//! simulator + an in-process authoritative DNS server (RFC 2136 with TSIG), config to
//! installed files. A wildcard through dns-txt, and a restart after a submit whose
//! answer never came (the CA created the order after the client gave up).

use std::sync::Arc;
use std::time::Duration;

use dcvd::lifecycle::engine::Engine;
use dcvd::model::{DomainName, OrderState};
use dcvd::sim::digicert;
use dcvd::sim::lab::{Lab, LabCa, LabSpec};

struct World {
    dir: tempfile::TempDir,
    sim: digicert::DigicertSim,
    lab: Lab,
}

/// The lab with a DigiCert simulator set up by `f`; `provider_extra`: more lines for
/// dcvd's `[providers.dc]`.
async fn world(f: impl FnOnce(&mut digicert::DigicertSimOptions), provider_extra: &str) -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = digicert::DigicertSimOptions {
        api_keys: vec!["dc-key".into()],
        recheck_interval: Duration::ZERO,
        ..Default::default()
    };
    f(&mut opts);
    let mut spec = LabSpec::new(dir.path(), "example.test");
    spec.tsig_key_name = "dcvd-key".into();
    spec.digicert = Some(LabCa {
        name: "dc".into(),
        options: opts,
        settings: format!(
            "poll_interval = \"200ms\"\n\
             custom_fields = [{{ metadata_id = 12, value = \"Invoice #12345\" }}]\n{provider_extra}"
        ),
    });
    let mut lab = Lab::start(spec).await.unwrap();
    World {
        dir,
        sim: lab.digicert.take().unwrap(),
        lab,
    }
}

impl World {
    fn config(&self, names: &[&str], product: &str) -> dcvd::config::Config {
        let more: Vec<String> = names[1..].iter().map(|n| format!("\"{n}\"")).collect();
        let rest = format!(
            r#"
[daemon]
database = "{{dir}}/dcvd.db"
listen = "127.0.0.1:0"
[dns]
poll_interval = "100ms"
[[certificates]]
name = "c"
provider = "dc"
product = "{product}"
common_name = "{cn}"
dns_names = [{more}]
dcv = ["dns-txt"]
publisher = "dns"
output_dir = "{{dir}}/certs/c"
"#,
            cn = names[0],
            more = more.join(", "),
        );
        crate::support::lab_config(&self.lab, &rest)
    }

    async fn engine(&self, config: &dcvd::config::Config) -> Arc<Engine> {
        let metrics = Arc::new(dcvd::metrics::Metrics::new());
        let store = dcvd::store::Store::open(&config.daemon.database)
            .await
            .unwrap();
        let rt = dcvd::lifecycle::services::build(
            config,
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
}

/// Run due steps until the order is issued (bounded in wall time).
async fn run_to_issued(engine: &Engine, id: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        engine.run_due().await.unwrap();
        let (o, _) = engine.store().load_order(id).await.unwrap();
        if o.state == OrderState::Issued {
            return;
        }
        assert!(
            !o.state.is_terminal(),
            "order ended ({}): {:?}",
            o.state,
            o.failure_reason
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out in {}: {:?}",
            o.state,
            o.last_error
        );
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

fn assert_installed(w: &World, names: &[&str], key_pem: &secrecy::SecretString) {
    let dir = w.dir.path().join("certs/c");
    let leaf = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let chain = std::fs::read_to_string(dir.join("chain.pem")).unwrap();
    let names: Vec<DomainName> = names
        .iter()
        .map(|n| DomainName::parse(n).unwrap())
        .collect();
    dcvd::pki::verify_leaf(&leaf, &[chain], key_pem, &names).unwrap();
}

#[tokio::test]
async fn a_wildcard_through_dns_txt_is_issued_and_installed() {
    let w = world(|_| {}, "").await;
    let names = ["*.example.test", "example.test"];
    let config = w.config(&names, "wildcard_dv_geotrust");
    let engine = w.engine(&config).await;
    let id = engine.ensure_orders().await.unwrap()[0];
    run_to_issued(&engine, id).await;
    let (o, authz) = engine.store().load_order(id).await.unwrap();
    assert_installed(&w, &names, &o.private_key_pem);
    for a in &authz {
        let ch = a.challenge.as_ref().unwrap();
        assert_eq!(ch.name, "_dnsauth.example.test", "{}", a.domain);
    }
    let orders = w.sim.orders();
    assert_eq!(orders.len(), 1);
    let sent = &orders[0].request;
    assert_eq!(sent["certificate"]["common_name"], "*.example.test");
    assert_eq!(sent["dcv_method"], "dns-txt-token");
    assert_eq!(sent["custom_fields"][0]["metadata_id"], 12);
    assert_eq!(orders[0].csr_der, o.csr_der, "the CA saw our CSR");
}

#[tokio::test]
async fn a_restart_after_the_ca_created_an_unanswered_order_recovers_it_and_orders_once() {
    // The CA takes 1.5 s to place the order; the first process gives up after 300 ms.
    let w = world(
        |o| o.create_delay = Duration::from_millis(1500),
        "request_timeout = \"300ms\"",
    )
    .await;
    let names = ["www.example.test"];
    let config = w.config(&names, "ssl_dv_geotrust");
    let id = {
        let engine = w.engine(&config).await;
        let id = engine.ensure_orders().await.unwrap()[0];
        engine.step(id).await.unwrap();
        let (o, _) = engine.store().load_order(id).await.unwrap();
        assert!(
            o.submit_maybe_sent && o.ca_order_id.is_none(),
            "the submit timed out with its outcome unknown: {:?}",
            o.state
        );
        id
    };
    // The first process is gone; the CA finishes the order anyway.
    tokio::time::timeout(Duration::from_secs(10), async {
        while w.sim.orders().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the CA never created the order");
    let engine = w.engine(&config).await;
    run_to_issued(&engine, id).await;
    assert_eq!(w.sim.orders().len(), 1, "exactly one order at the CA");
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_eq!(
        o.ca_order_id.as_deref(),
        Some(w.sim.orders()[0].id.to_string().as_str())
    );
    let evs = engine.store().events(id).await.unwrap();
    assert!(
        evs.iter()
            .any(|e| e.message.contains("recovered after an unanswered submit")),
        "{evs:#?}"
    );
    assert_installed(&w, &names, &o.private_key_pem);
}
