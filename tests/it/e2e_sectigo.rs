//! Sectigo end to end: engine + real SectigoProvider + the Sectigo simulator written from
//! the documents + in-process authoritative DNS (primary with RFC 2136, a secondary fed
//! by hand). A rejection at the CA ends the order with the CA's words and installs
//! nothing; a wildcard issues through CNAME_CSR_HASH; a lost submit answer is recovered
//! from the report with exactly one order at the CA.

use crate::support as common;

use std::sync::Arc;
use std::time::Duration;

use common::lose_submit::LoseSubmitAnswer;
use dcvd::ca::*;
use dcvd::lifecycle::engine::Engine;
use dcvd::model::{DomainName, OrderState};
use dcvd::sim::dns::DnsSim;
use dcvd::sim::lab::{Lab, LabCa, LabSpec};
use dcvd::sim::sectigo;

struct World {
    dir: tempfile::TempDir,
    /// The secondary, fed by hand (the primary, in `lab`, gets the RFC 2136 updates).
    ns2: DnsSim,
    sectigo: sectigo::SectigoSim,
    lab: Lab,
}

impl World {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = LabSpec::new(dir.path(), "example.test");
        spec.dns_servers = 2;
        spec.tsig_key_name = "dcvd-key".into();
        spec.sectigo = Some(LabCa {
            name: "sec".into(),
            options: sectigo::SectigoSimOptions {
                login_name: "acme".into(),
                login_password: "sectigo-pass".into(),
                ..Default::default()
            },
            settings: "poll_interval = \"200ms\"".into(),
        });
        let mut lab = Lab::start(spec).await.unwrap();
        World {
            dir,
            ns2: lab.dns.remove(1),
            sectigo: lab.sectigo.take().unwrap(),
            lab,
        }
    }

    /// `collect_interval` is left at its default (3 h): nothing here may depend on
    /// polling CollectSSL more often than Sectigo asks.
    fn config(&self, product: &str, names: &[&str]) -> dcvd::config::Config {
        let more: Vec<String> = names[1..].iter().map(|n| format!("\"{n}\"")).collect();
        let rest = format!(
            r#"
[daemon]
database = "{{dir}}/dcvd.db"
listen = "127.0.0.1:0"
concurrency = 4
[dns]
poll_interval = "100ms"
[[certificates]]
name = "c"
provider = "sec"
product = "{product}"
common_name = "{cn}"
dns_names = [{more}]
dcv = ["dns-cname"]
publisher = "dns"
output_dir = "{{dir}}/certs/c"
"#,
            cn = names[0],
            more = more.join(", "),
        );
        common::lab_config(&self.lab, &rest)
    }

    async fn engine_with(
        &self,
        config: &dcvd::config::Config,
        wrap: impl FnOnce(Arc<dyn Provider>) -> Arc<dyn Provider>,
    ) -> Arc<Engine> {
        let metrics = Arc::new(dcvd::metrics::Metrics::new());
        let store = dcvd::store::Store::open(&config.daemon.database)
            .await
            .unwrap();
        let mut rt = dcvd::lifecycle::services::build(
            config,
            metrics.clone(),
            &store,
            dcvd::clock::system(),
        )
        .await
        .unwrap();
        let real = rt.providers["sec"].clone();
        rt.providers.insert("sec".into(), wrap(real));
        Arc::new(Engine::new(
            store,
            Arc::new(dcvd::clock::SystemClock),
            metrics,
            rt,
        ))
    }

    async fn engine(&self, config: &dcvd::config::Config) -> Arc<Engine> {
        self.engine_with(config, |p| p).await
    }

    /// Give the secondary every token the primary has for this order (a zone transfer).
    async fn feed_secondary(&self, engine: &Engine, id: i64, fed: &mut Vec<String>) {
        let (_, authz) = engine.store().load_order(id).await.unwrap();
        for a in authz {
            if let Some(ch) = a.challenge
                && !fed.contains(&ch.name)
            {
                // Keyed by owner: every name of one CSR has the same CNAME target.
                self.ns2.add_cname(&ch.name, &ch.value).await.unwrap();
                fed.push(ch.name.clone());
            }
        }
    }
}

/// Step the engine until `done` holds (bounded in wall time); feeds the secondary.
async fn drive(
    w: &World,
    engine: &Engine,
    id: i64,
    what: &str,
    feed: bool,
    done: impl Fn(&dcvd::store::Order) -> bool,
) -> dcvd::store::Order {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut fed = Vec::new();
    loop {
        engine.run_due().await.unwrap();
        if feed {
            w.feed_secondary(engine, id, &mut fed).await;
        }
        let (o, _) = engine.store().load_order(id).await.unwrap();
        if done(&o) {
            return o;
        }
        assert!(
            !o.state.is_terminal(),
            "order ended ({}) before {what}: {:?}",
            o.state,
            o.failure_reason
        );
        if tokio::time::Instant::now() >= deadline {
            let evs = engine.store().events(id).await.unwrap();
            let evs: Vec<String> = evs
                .iter()
                .map(|e| format!("{}: {}", e.kind, e.message))
                .collect();
            panic!(
                "timed out waiting for {what}: {:?} {:?}\n{evs:#?}",
                o.state, o.last_error
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_order_rejected_at_the_ca_fails_with_its_words_and_installs_nothing() {
    let w = World::start().await;
    let config = w.config("287", &["rej.example.test"]);
    let engine = w.engine(&config).await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = drive(&w, &engine, id, "the order at the CA", false, |o| {
        o.ca_order_id.is_some()
    })
    .await;
    let number: u64 = o.ca_order_id.unwrap().parse().unwrap();
    let words = "Rejected by Sectigo validation: the domain is on a high-risk list";
    assert!(w.sectigo.reject(number, words));
    // The tokens reach every nameserver, dcvd asks Sectigo to check, Sectigo answers
    // the generic -4, CollectSSL says rejected.
    let o = drive(&w, &engine, id, "the failure", true, |o| {
        o.state.is_terminal()
    })
    .await;
    assert_eq!(o.state, OrderState::Failed, "{:?}", o.failure_reason);
    let why = o.failure_reason.unwrap_or_default();
    assert!(why.contains(words), "{why}");
    assert!(!w.dir.path().join("certs/c/cert.pem").exists());
    assert!(!w.dir.path().join("certs/c/fullchain.pem").exists());
    assert_eq!(w.sectigo.order_count(), 1);
}

#[tokio::test]
async fn a_wildcard_issues_through_cname_csr_hash() {
    let w = World::start().await;
    let config = w.config("289", &["*.example.test"]);
    let engine = w.engine(&config).await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let o = drive(&w, &engine, id, "issuance", true, |o| {
        o.state == OrderState::Issued
    })
    .await;
    let (_, authz) = engine.store().load_order(id).await.unwrap();
    let ch = authz[0].challenge.clone().unwrap();
    // `_<MD5>.example.test`: the base name is where a wildcard's CNAME goes.
    assert!(
        ch.name.starts_with('_') && ch.name.ends_with(".example.test"),
        "{ch:?}"
    );
    assert_eq!(ch.name.matches('.').count(), 2, "{}", ch.name);
    let orders = w.sectigo.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].names[0].name, "*.example.test");
    let dir = w.dir.path().join("certs/c");
    let leaf = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let chain = [std::fs::read_to_string(dir.join("chain.pem")).unwrap()];
    let names = vec![DomainName::parse("*.example.test").unwrap()];
    dcvd::pki::verify_leaf(&leaf, &chain[..1], &o.private_key_pem, &names).unwrap();
    // Sectigo's rationing held: one collect at validation, one download.
    let counts = w.sectigo.log().counts();
    assert_eq!(counts["download/CollectSSL"], 2, "{counts:?}");
    assert!(w.sectigo.max_concurrent_collects() <= 1);
}

#[tokio::test]
async fn restart_in_the_submit_window_recovers_from_the_report_with_one_order() {
    let w = World::start().await;
    let config = w.config("279", &["shop.example.test", "api.example.test"]);
    let engine = w
        .engine_with(&config, |real| Arc::new(LoseSubmitAnswer(real)))
        .await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let e = engine.clone();
    let step = tokio::spawn(async move { e.step(id).await });
    assert!(
        w.sectigo.wait_for_orders(1, Duration::from_secs(10)).await,
        "the submit never reached the CA"
    );
    step.abort();
    let _ = step.await;
    drop(engine);

    // A new process on the same database, with the simulator rebuilt from the documents.
    let engine = w.engine(&config).await;
    drive(&w, &engine, id, "issuance", true, |o| {
        o.state == OrderState::Issued
    })
    .await;
    assert_eq!(w.sectigo.order_count(), 1, "exactly one order at the CA");
    assert_eq!(w.sectigo.forms("!AutoApplySSL").len(), 1);
    assert!(!w.sectigo.forms("!WebHostReport").is_empty());
    let evs = engine.store().events(id).await.unwrap();
    assert!(
        evs.iter()
            .any(|e| e.message.contains("recovered after an unanswered submit")),
        "{evs:#?}"
    );
    assert!(w.dir.path().join("certs/c/fullchain.pem").exists());
}

/// Two orders for the same name in the submit window, neither known to this database (a
/// second dcvd host placed one, ours lost its answer): the report cannot tell which is
/// ours, so the order waits for the operator instead of buying a third; the operator
/// adopts ours and it issues.
#[tokio::test]
async fn two_candidates_in_the_submit_window_wait_for_the_operator_who_adopts_ours() {
    let w = World::start().await;
    let config = w.config("287", &["twin.example.test"]);

    // Another dcvd (its own database) orders the same name at the same account.
    let mut elsewhere = config.clone();
    elsewhere.daemon.database = w.dir.path().join("other.db").display().to_string().into();
    let other = w.engine(&elsewhere).await;
    let other_id = other.ensure_orders().await.unwrap()[0];
    drive(&w, &other, other_id, "the other host's order", false, |o| {
        o.ca_order_id.is_some()
    })
    .await;
    drop(other);

    // Ours reaches the CA, and the process dies before the answer.
    let engine = w
        .engine_with(&config, |real| Arc::new(LoseSubmitAnswer(real)))
        .await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let e = engine.clone();
    let step = tokio::spawn(async move { e.step(id).await });
    assert!(
        w.sectigo.wait_for_orders(2, Duration::from_secs(10)).await,
        "our submit never reached the CA"
    );
    step.abort();
    let _ = step.await;
    drop(engine);
    let ours = w
        .sectigo
        .orders()
        .iter()
        .map(|o| o.order_number)
        .max()
        .unwrap();

    let engine = w.engine(&config).await;
    let o = drive(&w, &engine, id, "the operator's turn", false, |o| {
        o.state == OrderState::SubmitUnknown
    })
    .await;
    assert!(
        o.unsure_reason.is_some(),
        "the reason is kept for orders show"
    );
    // Days may pass: nothing is ordered while it waits.
    for _ in 0..5 {
        engine.run_due().await.unwrap();
    }
    assert_eq!(w.sectigo.order_count(), 2, "no order placed on doubt");

    let said =
        dcvd::lifecycle::operator::adopt(&engine.ctx, &engine.services(), id, &ours.to_string())
            .await
            .unwrap();
    assert!(said.contains(&ours.to_string()), "{said}");
    let o = drive(&w, &engine, id, "issuance", true, |o| {
        o.state == OrderState::Issued
    })
    .await;
    assert_eq!(o.ca_order_id.as_deref(), Some(ours.to_string().as_str()));
    assert_eq!(w.sectigo.order_count(), 2, "still only the two orders");
    assert!(w.dir.path().join("certs/c/fullchain.pem").exists());
}
