//! Interop with Let's Encrypt's Pebble (Debian package `pebble`), run by CI with
//! `--ignored`: the real daemon (config → App) gets certificates by dns-01 (RFC 2136 to the
//! in-process DNS server), http-01 (webroot served on loopback) and dns-01 through a
//! delegated `_acme-challenge` CNAME. Pebble itself resolves and fetches what dcvd published.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dcvd::model::OrderState;
use dcvd::sim::dns::{DnsSim, TsigAlgorithm, ZoneSpec};
use dcvd::sim::pebble::{Pebble, PebbleOptions};
use dcvd::store::Store;
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::*;

const ZONE: &str = "acme.test";
const EAB_KID: &str = "kid-1";
const EAB_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

struct Env {
    dir: tempfile::TempDir,
    dns: DnsSim,
    web: SocketAddr,
    pebble: Pebble,
}

/// Serve `<root>/.well-known/{acme-challenge,pki-validation}/<file>`, as a web server would.
async fn serve_webroot(root: PathBuf) -> SocketAddr {
    use axum::extract::{Path as AxPath, State};
    use axum::http::StatusCode;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/.well-known/{dir}/{file}",
            axum::routing::get(
                |State(root): State<PathBuf>, AxPath((dir, file)): AxPath<(String, String)>| async move {
                    if file.contains("..") || !["acme-challenge", "pki-validation"].contains(&dir.as_str()) {
                        return Err(StatusCode::NOT_FOUND);
                    }
                    tokio::fs::read_to_string(root.join(".well-known").join(dir).join(file))
                        .await
                        .map_err(|_| StatusCode::NOT_FOUND)
                },
            ),
        )
        .with_state(root);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn env(hosts: &[&str], eab: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let tsig: [u8; 32] = rand::random();
    let mut zone = ZoneSpec::new(ZONE)
        .with_record("_acme-challenge.delegated 60 IN CNAME delegated.dcv-target.acme.test.");
    for h in hosts {
        let rel = h.trim_end_matches(&format!(".{ZONE}")).to_string();
        zone.a.push((rel, Ipv4Addr::LOCALHOST));
    }
    let dns = DnsSim::start(&[zone], Some(("dcvd.", TsigAlgorithm::HmacSha256, &tsig)))
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("tsig.key"),
        base64::engine::general_purpose::STANDARD.encode(tsig),
    )
    .unwrap();
    std::fs::write(dir.path().join("eab.key"), EAB_KEY).unwrap();
    let web = serve_webroot(dir.path().join("www")).await;
    let eab = if eab {
        vec![(EAB_KID.to_string(), EAB_KEY.to_string())]
    } else {
        vec![]
    };
    let pebble = Pebble::start(
        &dir.path().join("pebble"),
        &PebbleOptions {
            dns: dns.addr(),
            http_port: web.port(),
            eab,
        },
    )
    .await
    .unwrap();
    Env {
        dir,
        dns,
        web,
        pebble,
    }
}

impl Env {
    /// The daemon's config: one ACME provider at Pebble; `certs` as (name, names, dcv).
    fn config(&self, provider_extra: &str, certs: &[(&str, &[&str], &str)]) -> PathBuf {
        let d = self.dir.path().display();
        let mut s = format!(
            r#"
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
shutdown_timeout = "5s"

[providers.pebble]
kind = "acme"
directory_url = "{dir_url}"
ca_file = "{root}"
contact = ["hostmaster@acme.test"]
terms_accepted = true
poll_interval = "200ms"
{provider_extra}

[publishers.dns]
kind = "rfc2136"
server = "{dns}"
zone = "{ZONE}"
tsig_key_name = "dcvd"
tsig_secret_file = "{d}/tsig.key"

[publishers.www]
kind = "webroot"
path = "{d}/www"

[dns]
poll_interval = "100ms"
[dns.nameserver_overrides]
"{ZONE}" = ["{dns}"]

[http_check.overrides]
"#,
            dir_url = self.pebble.directory_url,
            root = self.pebble.tls_root.display(),
            dns = self.dns.addr(),
        );
        for (_, names, _) in certs {
            for n in *names {
                s.push_str(&format!("\"{n}\" = \"{}\"\n", self.web));
            }
        }
        for (name, names, dcv) in certs {
            let rest: Vec<String> = names[1..].iter().map(|n| format!("\"{n}\"")).collect();
            s.push_str(&format!(
                r#"
[[certificates]]
name = "{name}"
provider = "pebble"
common_name = "{cn}"
dns_names = [{rest}]
dcv = ["{dcv}"]
publisher = "dns"
http_publisher = "www"
output_dir = "{d}/certs/{name}"
"#,
                cn = names[0],
                rest = rest.join(", ")
            ));
        }
        let path = self.dir.path().join("dcvd.toml");
        std::fs::write(&path, s).unwrap();
        path
    }
}

/// Run the daemon on `config` until every configured certificate is issued (≤ 60 s).
async fn run_daemon(config: &Path, expect: usize) -> Store {
    let cfg = dcvd::config::load(config).unwrap_or_else(|e| panic!("config refused:\n{e}"));
    let app = dcvd::app::App::build(cfg).await.unwrap();
    let store = app.engine.store().clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run(shutdown.clone()));
    let started = Instant::now();
    loop {
        let orders = store.list_orders(None).await.unwrap();
        if let Some(f) = orders.iter().find(|o| o.state == OrderState::Failed) {
            let events = store.events(f.id).await.unwrap();
            panic!(
                "order {} ({}) failed: {:?}\n{events:#?}",
                f.id, f.certificate, f.failure_reason
            );
        }
        if orders.len() >= expect && orders.iter().all(|o| o.state == OrderState::Issued) {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let mut detail = String::new();
            for o in &orders {
                detail.push_str(&format!(
                    "{o:?}\n{:#?}\n",
                    store.events(o.id).await.unwrap()
                ));
            }
            panic!("not issued within 60 s:\n{detail}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    daemon.await.unwrap().unwrap();
    store
}

fn pem_ders(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in Pem::iter_from_buffer(pem.as_bytes()) {
        out.push(p.unwrap().contents);
    }
    out
}

/// The installed chain: leaf for exactly `names`, signed by the next certificate, which
/// chains up to Pebble's issuing root.
fn verify_installed(dir: &Path, names: &[&str], root_pem: &str) {
    let full = std::fs::read_to_string(dir.join("fullchain.pem")).unwrap();
    let ders = pem_ders(&full);
    assert!(ders.len() >= 2, "leaf and intermediate in fullchain.pem");
    let certs: Vec<X509Certificate<'_>> = ders
        .iter()
        .map(|d| parse_x509_certificate(d).unwrap().1)
        .collect();
    let mut sans: Vec<String> = certs[0]
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    sans.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(sans, want);
    for pair in certs.windows(2) {
        pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .unwrap();
    }
    let root_der = pem_ders(root_pem).remove(0);
    let root = parse_x509_certificate(&root_der).unwrap().1;
    certs
        .last()
        .unwrap()
        .verify_signature(Some(root.public_key()))
        .unwrap();
    assert!(dir.join("privkey.pem").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble; CI runs --ignored"]
async fn pebble_issues_by_dns01_http01_and_delegated_cname() {
    let certs: &[(&str, &[&str], &str)] = &[
        ("txt", &["txt.acme.test", "www.txt.acme.test"], "dns-txt"),
        ("web", &["web.acme.test"], "http"),
        ("cname", &["delegated.acme.test"], "dns-cname"),
    ];
    let hosts: Vec<&str> = certs.iter().flat_map(|c| c.1.iter().copied()).collect();
    let env = env(&hosts, false).await;
    let config = env.config("", certs);
    let store = run_daemon(&config, certs.len()).await;
    let root = env.pebble.issuing_root().await.unwrap();
    for (name, names, _) in certs {
        verify_installed(&env.dir.path().join("certs").join(name), names, &root);
    }
    // One account for all orders, kept in the database.
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM acme_accounts")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(accounts, 1);
    let account = store
        .acme_account("pebble", &env.pebble.directory_url)
        .await
        .unwrap()
        .unwrap();
    // The delegated token was written at the CNAME target, not under the CNAME.
    let events = store.events(3).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("delegated.dcv-target.acme.test")),
        "{events:#?}"
    );

    // A restart with one more certificate reuses the stored account.
    let more: Vec<(&str, &[&str], &str)> = certs
        .iter()
        .copied()
        .chain([("later", &["later.acme.test"][..], "dns-txt")])
        .collect();
    drop(store);
    let config = env.config("", &more);
    let store = run_daemon(&config, more.len()).await;
    let again = store
        .acme_account("pebble", &env.pebble.directory_url)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.account_url, account.account_url);
    verify_installed(
        &env.dir.path().join("certs/later"),
        &["later.acme.test"],
        &root,
    );

    // Pebble 2.4's directory has no renewalInfo: no ARI window, renew_before decides.
    let cfg = dcvd::config::load(&config).unwrap();
    let rt = dcvd::lifecycle::services::build(
        &cfg,
        std::sync::Arc::new(dcvd::metrics::Metrics::new()),
        &store,
        dcvd::clock::system(),
    )
    .await
    .unwrap();
    let leaf = std::fs::read_to_string(env.dir.path().join("certs/later/cert.pem")).unwrap();
    assert_eq!(rt.providers["pebble"].renewal_window(&leaf).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble; CI runs --ignored"]
async fn pebble_with_external_account_binding() {
    let certs: &[(&str, &[&str], &str)] = &[("eab", &["eab.acme.test"], "dns-txt")];
    let env = env(&["eab.acme.test"], true).await;
    let key_file = env.dir.path().join("eab.key");
    let extra = format!(
        "eab_kid = \"{EAB_KID}\"\neab_hmac_key_file = \"{}\"",
        key_file.display()
    );
    let config = env.config(&extra, certs);
    run_daemon(&config, 1).await;
    let root = env.pebble.issuing_root().await.unwrap();
    verify_installed(&env.dir.path().join("certs/eab"), &["eab.acme.test"], &root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble; CI runs --ignored"]
async fn a_restart_resumes_the_same_acme_order() {
    let certs: &[(&str, &[&str], &str)] = &[("resume", &["resume.acme.test"], "dns-txt")];
    let env = env(&["resume.acme.test"], false).await;
    let path = env.config("", certs);
    let good = std::fs::read_to_string(&path).unwrap();
    // First run: the DNS server for updates is unreachable, so the order is placed (its
    // URL stored) but its token cannot be published.
    let closed = format!("127.0.0.1:{}", dcvd::sim::pebble::free_port().unwrap());
    let bad = good.replace(
        &format!("server = \"{}\"", env.dns.addr()),
        &format!("server = \"{closed}\""),
    );
    assert_ne!(bad, good);
    std::fs::write(&path, &bad).unwrap();
    let app = dcvd::app::App::build(dcvd::config::load(&path).unwrap())
        .await
        .unwrap();
    let store = app.engine.store().clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run(shutdown.clone()));
    let started = Instant::now();
    let url = loop {
        let orders = store.list_orders(None).await.unwrap();
        if let Some(o) = orders.first()
            && let Some(url) = &o.ca_order_id
            && store
                .events(o.id)
                .await
                .unwrap()
                .iter()
                .any(|e| e.kind == dcvd::model::EventKind::Error)
        {
            assert_eq!(o.state, OrderState::Validating);
            break url.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{orders:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    shutdown.cancel();
    daemon.await.unwrap().unwrap();
    drop(store);

    // Restart with the DNS server reachable: the same ACME order goes on to issuance.
    std::fs::write(&path, &good).unwrap();
    let store = run_daemon(&path, 1).await;
    let orders = store.list_orders(None).await.unwrap();
    assert_eq!(orders.len(), 1, "no second order");
    assert_eq!(orders[0].ca_order_id.as_deref(), Some(url.as_str()));
    let root = env.pebble.issuing_root().await.unwrap();
    verify_installed(
        &env.dir.path().join("certs/resume"),
        &["resume.acme.test"],
        &root,
    );
}
