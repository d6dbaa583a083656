//! End to end with DigiCert: engine + the real DigiCert provider + the CertCentral
//! simulator + an in-process authoritative DNS server (RFC 2136 with TSIG), config to
//! installed files. A wildcard through dns-txt, and a restart after a submit whose
//! answer never came (the CA created the order after the client gave up).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use dcvd::lifecycle::engine::Engine;
use dcvd::model::{DomainName, OrderState};
use dcvd::sim::digicert;
use dcvd::sim::dns::{DnsSim, TsigAlgorithm, ZoneSpec};

const KEY: [u8; 32] = [9u8; 32];

struct World {
    dir: tempfile::TempDir,
    ns: DnsSim,
    sim: digicert::DigicertSim,
}

async fn world(f: impl FnOnce(&mut digicert::DigicertSimOptions)) -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tsig = Some(("dcvd-key.", TsigAlgorithm::HmacSha256, &KEY[..]));
    let ns = DnsSim::start(&[ZoneSpec::new("example.test")], tsig)
        .await
        .unwrap();
    let mut opts = digicert::DigicertSimOptions {
        api_keys: vec!["dc-key".into()],
        nameserver: Some(ns.addr()),
        recheck_interval: Duration::ZERO,
        ..Default::default()
    };
    f(&mut opts);
    let sim = digicert::start(opts).await.unwrap();
    World {
        dir: tempfile::tempdir().unwrap(),
        ns,
        sim,
    }
}

impl World {
    fn config(&self, provider_extra: &str, names: &[&str], product: &str) -> dcvd::config::Config {
        let d = self.dir.path().display();
        let b64 = base64::engine::general_purpose::STANDARD.encode(KEY);
        let more: Vec<String> = names[1..].iter().map(|n| format!("\"{n}\"")).collect();
        let toml = format!(
            r#"
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
[providers.dc]
kind = "digicert"
base_url = "{dc}"
api_key = "dc-key"
poll_interval = "200ms"
custom_fields = [{{ metadata_id = 12, value = "Invoice #12345" }}]
{provider_extra}
[publishers.dns]
kind = "rfc2136"
server = "{ns}"
tsig_key_name = "dcvd-key"
tsig_secret = "{b64}"
[dns]
poll_interval = "100ms"
[dns.nameserver_overrides]
"example.test" = ["{ns}"]
[[certificates]]
name = "c"
provider = "dc"
product = "{product}"
common_name = "{cn}"
dns_names = [{more}]
dcv = ["dns-txt"]
publisher = "dns"
output_dir = "{d}/certs/c"
"#,
            dc = self.sim.base_url(),
            ns = self.ns.addr(),
            cn = names[0],
            more = more.join(", "),
        );
        dcvd::config::load_from_str(&toml, None).unwrap_or_else(|e| panic!("{e}"))
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
    let w = world(|_| {}).await;
    let names = ["*.example.test", "example.test"];
    let config = w.config("", &names, "wildcard_dv_geotrust");
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
    let w = world(|o| o.create_delay = Duration::from_millis(1500)).await;
    let names = ["www.example.test"];
    let config = w.config("request_timeout = \"300ms\"", &names, "ssl_dv_geotrust");
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
