//! `dcvd demo`: the whole pipeline in one process on loopback. An in-process
//! authoritative DNS server (TSIG updates), the DigiCert and Sectigo simulators (which
//! validate DCV for real), a web server for webroot tokens, and the daemon itself with a
//! generated config, driving several certificates to issued files. When a `pebble` binary
//! is on PATH, two certificates also come from Pebble (real ACME, dns-01 and http-01).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use rand::RngExt;
use tokio_util::sync::CancellationToken;

use crate::model::OrderState;
use crate::sim::dns::ZoneSpec;
use crate::sim::lab::{Lab, LabCa, LabSpec, TempDirGuard, write_secret};

const ZONE: &str = "demo.test";

/// One certificate of the demo and what it shows.
struct DemoCert {
    name: &'static str,
    provider: &'static str,
    names: &'static [&'static str],
    dcv: &'static [&'static str],
    /// Publisher for DNS tokens (`badkey` has a TSIG key the server refuses).
    publisher: &'static str,
    about: &'static str,
}

/// Issued by Pebble (Let's Encrypt's ACME test server) when it is installed.
const ACME_CERTS: &[DemoCert] = &[
    DemoCert {
        name: "acme",
        provider: "pebble",
        names: &["acme.demo.test"],
        dcv: &["dns-txt"],
        publisher: "dns",
        about: "ACME (Pebble), dns-01 via RFC 2136",
    },
    DemoCert {
        name: "acmeweb",
        provider: "pebble",
        names: &["acmeweb.demo.test"],
        dcv: &["http"],
        publisher: "dns",
        about: "ACME (Pebble), http-01 via webroot",
    },
];

const CERTS: &[DemoCert] = &[
    DemoCert {
        name: "www",
        provider: "digicert",
        names: &["www.demo.test"],
        dcv: &["dns-txt"],
        publisher: "dns",
        about: "DigiCert, DNS TXT via RFC 2136",
    },
    DemoCert {
        name: "shop",
        provider: "sectigo",
        names: &["shop.demo.test", "api.demo.test"],
        dcv: &["dns-cname"],
        publisher: "dns",
        about: "Sectigo, CSR-hash CNAME, two names",
    },
    DemoCert {
        name: "web",
        provider: "digicert",
        names: &["web.demo.test"],
        dcv: &["http"],
        publisher: "dns",
        about: "DigiCert, HTTP file via webroot",
    },
    DemoCert {
        name: "static",
        provider: "sectigo",
        names: &["static.demo.test"],
        dcv: &["http"],
        publisher: "dns",
        about: "Sectigo, CSR-hash HTTP file",
    },
    DemoCert {
        name: "mail",
        provider: "digicert",
        names: &["mail.demo.test"],
        dcv: &["email"],
        publisher: "dns",
        about: "DigiCert, approval email (approved after 3 s)",
    },
    DemoCert {
        name: "fallback",
        provider: "digicert",
        names: &["fallback.demo.test"],
        dcv: &["dns-txt", "http"],
        publisher: "badkey",
        about: "DigiCert, dns-txt refused (bad TSIG key) → falls back to http",
    },
];

pub async fn run(exit_when_done: bool, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    crate::net::install_crypto();
    if std::env::var_os("RUST_LOG").is_none() {
        // Progress lines are the demo's output; the daemon's own logs only when asked.
        crate::app::telemetry::init_with(
            "warn,hickory_server=off,hickory_proto=off",
            crate::config::LogFormat::Text,
        );
    } else {
        crate::app::telemetry::init(crate::config::LogFormat::Text);
    }
    let started = Instant::now();
    // Without --dir the demo's state lives in a temporary directory, removed at the end.
    let (dir, _remove_at_exit) = match dir {
        Some(d) => (d, None),
        None => {
            let t = TempDirGuard::new("dcvd-demo")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    std::fs::create_dir_all(dir.join("secrets")).context("creating the demo directory")?;
    say!(
        "dcvd demo — everything runs in this process on 127.0.0.1; state in {}",
        dir.display()
    );

    let with_acme = crate::sim::pebble::available();
    let certs: Vec<&DemoCert> = CERTS
        .iter()
        .chain(if with_acme { ACME_CERTS } else { &[] })
        .collect();
    // Web server for webroot tokens; every demo host name points at it.
    let webroot = dir.join("www");
    std::fs::create_dir_all(&webroot)?;
    let web = serve_webroot(webroot.clone()).await?;
    let hosts: BTreeMap<String, SocketAddr> = certs
        .iter()
        .flat_map(|c| c.names.iter())
        .map(|h| (h.to_string(), web))
        .collect();

    // The lab: DNS (one zone, updates signed with a TSIG key the daemon reads from a
    // file), the DigiCert and Sectigo simulators, Pebble when installed.
    let mut zone = ZoneSpec::new(ZONE);
    for host in ACME_CERTS.iter().flat_map(|c| c.names.iter()) {
        // Pebble connects to the address a name resolves to for http-01.
        zone.a.push((
            host.trim_end_matches(&format!(".{ZONE}")).to_string(),
            std::net::Ipv4Addr::LOCALHOST,
        ));
    }
    let mut spec = LabSpec::new(&dir, ZONE);
    spec.zones = vec![zone];
    spec.tsig_key_name = "dcvd-demo".into();
    spec.publisher_zone = Some(ZONE.into());
    spec.digicert = Some(LabCa {
        name: "digicert".into(),
        options: crate::sim::digicert::DigicertSimOptions {
            api_keys: vec!["demo-digicert-api-key".into()],
            http_addresses: hosts.clone(),
            ..Default::default()
        },
        settings: "poll_interval = \"1s\"".into(),
    });
    spec.sectigo = Some(LabCa {
        name: "sectigo".into(),
        options: crate::sim::sectigo::SectigoSimOptions {
            login_name: "demo".into(),
            login_password: "demo-sectigo-password".into(),
            http_addresses: hosts.clone(),
            check_interval: Duration::from_millis(500),
            ..Default::default()
        },
        settings: "poll_interval = \"1s\"\ncollect_interval = \"1s\"".into(),
    });
    spec.pebble = with_acme.then(|| LabCa {
        name: "pebble".into(),
        options: web.port(),
        settings: "poll_interval = \"200ms\"".into(),
    });
    let mut lab = Lab::start(spec).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    write_secret(
        &dir.join("secrets"),
        "wrong-tsig.key",
        &b64.encode(rand::rng().random::<[u8; 32]>()),
    )?;
    let config_path = lab.write_config(&config_text(&dir, lab.primary(), web, &certs))?;
    let cfg = crate::config::load(&config_path)
        .map_err(|e| anyhow::anyhow!("the generated demo config is invalid:\n{e}"))?;
    let app = crate::app::App::build(cfg).await?;
    let listen = app.local_addr()?;
    let store = app.engine.store().clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run(shutdown.clone()));

    say!("certificates:");
    for DemoCert {
        name,
        names,
        about: what,
        ..
    } in &certs
    {
        say!("  {name:<9} {:<40} {what}", names.join(", "));
    }
    say!();

    // The approver of the email certificate "clicks the link" after a few seconds.
    let (digicert, sectigo) = (lab.digicert.take(), lab.sectigo.take());
    let approver = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
            }
            if let Some(d) = &digicert {
                for o in d.orders() {
                    let _ = d.approve(o.id);
                }
            }
            // Keep the simulators alive until the demo ends.
            shutdown.cancelled().await;
            drop((digicert, sectigo));
        }
    };
    let approver = tokio::spawn(approver);

    let outcome = watch(&store, started, exit_when_done, &shutdown, certs.len()).await;
    match &outcome {
        Ok(()) => {
            say!(
                "\nall {} certificates issued in {:.1} s; files:",
                certs.len(),
                started.elapsed().as_secs_f64()
            );
            if !with_acme {
                say!("(install the Debian package `pebble` to see ACME certificates too)");
            }
            for DemoCert { name, .. } in certs.iter().copied() {
                say!(
                    "  {}",
                    dir.join("certs").join(name).join("fullchain.pem").display()
                );
            }
            say!("\nmetrics:  http://{listen}/metrics   (also /healthz, /readyz, /api/v1/orders)");
            say!(
                "inspect:  dcvd --config {} orders show fallback",
                config_path.display()
            );
            say!("          dcvd --config {} status", config_path.display());
            say!("          (from a checkout: cargo run --release -- --config … instead of dcvd)");
        }
        Err(e) => say!("\ndemo failed: {e}"),
    }
    if outcome.is_ok() && !exit_when_done {
        say!("\nthe daemon keeps running; Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
    let _ = daemon.await;
    let _ = approver.await;
    if let Some(p) = lab.pebble.take() {
        p.stop().await;
    }
    drop(lab);
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Print the notable events as they happen; finish when all are issued.
async fn watch(
    store: &crate::store::Store,
    started: Instant,
    exit_when_done: bool,
    shutdown: &CancellationToken,
    expect: usize,
) -> Result<(), String> {
    use crate::model::EventKind as K;
    const SHOWN: &[K] = &[
        K::Created,
        K::CaOrder,
        K::Published,
        K::CheckPassed,
        K::MethodFailed,
        K::MethodSwitch,
        K::Validated,
        K::EmailResent,
        K::Installed,
        K::Failed,
        K::Error,
    ];
    let mut last = 0;
    let deadline = Duration::from_secs(120);
    loop {
        for (cert, e) in store
            .events_after(last, 500)
            .await
            .map_err(|e| e.to_string())?
        {
            last = e.id;
            if SHOWN.iter().any(|k| e.kind == *k) {
                let msg: String = e.message.chars().take(110).collect();
                let domain = e.domain.map(|d| format!("[{d}] ")).unwrap_or_default();
                say!(
                    "[{:>5.1}s] {cert:<9} {:<13} {domain}{msg}",
                    started.elapsed().as_secs_f64(),
                    e.kind
                );
            }
        }
        let orders = store.list_orders(None).await.map_err(|e| e.to_string())?;
        if let Some(f) = orders.iter().find(|o| o.state == OrderState::Failed) {
            return Err(format!(
                "order {} ({}) failed: {}",
                f.id,
                f.certificate,
                f.failure_reason.clone().unwrap_or_default()
            ));
        }
        if orders.len() >= expect && orders.iter().all(|o| o.state == OrderState::Issued) {
            return Ok(());
        }
        if exit_when_done && started.elapsed() > deadline {
            return Err(format!(
                "not all certificates were issued within {} s",
                deadline.as_secs()
            ));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err("stopped".into()),
            _ = tokio::signal::ctrl_c() => return Err("interrupted".into()),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// The demo's part of the config; the lab adds the providers, `[publishers.dns]` and
/// the nameservers.
fn config_text(dir: &Path, dns: SocketAddr, web: SocketAddr, certs: &[&DemoCert]) -> String {
    let d = dir.display();
    let mut s = format!(
        r#"# Generated by `dcvd demo`: simulators and DNS on 127.0.0.1.
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
concurrency = 16
shutdown_timeout = "5s"

[publishers.badkey]
kind = "rfc2136"
server = "{dns}"
zone = "{ZONE}"
tsig_key_name = "dcvd-demo"
tsig_algorithm = "hmac-sha256"
tsig_secret_file = "{d}/secrets/wrong-tsig.key"

[publishers.www]
kind = "webroot"
path = "{d}/www/{{host}}"

[dns]
poll_interval = "300ms"

[http_check.overrides]
"#
    );
    for DemoCert { names, .. } in certs.iter().copied() {
        for n in *names {
            s.push_str(&format!("\"{n}\" = \"{web}\"\n"));
        }
    }
    for DemoCert {
        name,
        provider,
        names,
        dcv,
        publisher,
        ..
    } in certs.iter().copied()
    {
        let product = if *provider == "digicert" {
            "ssl_dv_geotrust"
        } else {
            "287"
        };
        let dcv: Vec<String> = dcv.iter().map(|m| format!("\"{m}\"")).collect();
        let dns_names: Vec<String> = names[1..].iter().map(|n| format!("\"{n}\"")).collect();
        s.push_str(&format!(
            r#"
[[certificates]]
name = "{name}"
provider = "{provider}"
product = "{product}"
common_name = "{cn}"
dns_names = [{dns_names}]
dcv = [{dcv}]
publisher = "{publisher}"
http_publisher = "www"
approver_emails = {{ "{ZONE}" = "admin@{ZONE}" }}
output_dir = "{d}/certs/{name}"
"#,
            cn = names[0],
            dns_names = dns_names.join(", "),
            dcv = dcv.join(", "),
        ));
    }
    s
}

/// Serve `root/<host>/.well-known/{pki-validation,acme-challenge}/*` over HTTP on 127.0.0.1, one document
/// root per virtual host, as a web server would.
async fn serve_webroot(root: PathBuf) -> anyhow::Result<SocketAddr> {
    use axum::extract::{Path as AxPath, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/.well-known/{dir}/{file}",
            get(
                |State(root): State<PathBuf>,
                 headers: HeaderMap,
                 AxPath((tokens, file)): AxPath<(String, String)>| async move {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(|h| h.split(':').next().unwrap_or(h).to_string())
                        .unwrap_or_default();
                    let dir = crate::dcv::publish::webroot::root_for(&root.join("{host}"), &host)
                        .map_err(|_| StatusCode::NOT_FOUND)?;
                    if file.contains('/')
                        || file.contains("..")
                        || !["pki-validation", "acme-challenge"].contains(&tokens.as_str())
                    {
                        return Err(StatusCode::NOT_FOUND);
                    }
                    tokio::fs::read_to_string(dir.join(".well-known").join(tokens).join(file))
                        .await
                        .map_err(|_| StatusCode::NOT_FOUND)
                },
            ),
        )
        .with_state(root);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}
