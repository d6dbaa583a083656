//! `run`, `check-config` and `dns check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::EXIT_CONFIG;
use crate::model::{Challenge, ChallengeKind};

pub(super) fn check_config(path: &Path, verbose: bool) -> anyhow::Result<ExitCode> {
    match crate::config::load(path) {
        Ok(cfg) => {
            say!(
                "{}: valid ({} certificates, {} providers, {} publishers)",
                path.display(),
                cfg.certificates.len(),
                cfg.providers.len(),
                cfg.publishers.len()
            );
            for line in cfg.sources.report(verbose) {
                say!("{line}");
            }
            for w in crate::config::warnings(&cfg) {
                eprintln!("warning: {w}");
            }
            // A certificate that cannot be installed must not be bought: the daemon holds
            // its order (see `lifecycle::create`); say so before the first start.
            for (i, c) in cfg.certificates.iter().enumerate() {
                if let Err(e) = crate::pki::install::probe_creatable(&c.output_dir) {
                    eprintln!(
                        "warning: {}: output_dir: {e}; dcvd orders nothing for this certificate \
                         while it cannot install it (check as the daemon's user: \
                         `sudo -u dcvd dcvd check-config`; under the shipped unit, also \
                         ReadWritePaths=)",
                        cfg.certificate_key(i)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{}: {} problem(s):", path.display(), errors.len());
            eprintln!("{errors}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
    }
}

pub(super) async fn daemon(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = match crate::config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!(
                "{}: {} problem(s); not starting:",
                path.display(),
                errors.len()
            );
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    crate::app::telemetry::init(cfg.daemon.log_format);
    for w in crate::config::warnings(&cfg) {
        tracing::warn!(key = %w.key, "configuration: {}", w.message);
    }
    let app = crate::app::App::build(cfg).await?;
    info!(listen = %app.local_addr()?, version = env!("CARGO_PKG_VERSION"), "dcvd started");
    let shutdown = CancellationToken::new();
    let engine = app.engine.clone();
    let signals = tokio::spawn(handle_signals(engine, path.to_path_buf(), shutdown.clone()));
    app.run(shutdown).await?;
    signals.abort();
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM/SIGINT stop the daemon (a second one is not needed: steps drain within
/// `daemon.shutdown_timeout`); SIGHUP reloads the configuration.
async fn handle_signals(
    engine: std::sync::Arc<crate::lifecycle::engine::Engine>,
    path: PathBuf,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop dcvd with SIGKILL only");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); shutdown.cancel(); return; }
            _ = int.recv() => { info!("SIGINT: shutting down"); shutdown.cancel(); return; }
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", path.display());
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                crate::app::reload(&engine, &path).await;
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    }
}

pub(super) async fn dns_check(
    config: &Path,
    fqdn: &str,
    rtype: &str,
    value: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Without a config file the check uses the system resolvers and defaults.
    let cfg = if config.exists() {
        crate::config::load(config).map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?
    } else {
        crate::config::load_from_str("", None).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let kind = match rtype.to_ascii_uppercase().as_str() {
        "TXT" => ChallengeKind::DnsTxt,
        "CNAME" => ChallengeKind::DnsCname,
        other => anyhow::bail!("record type `{other}` is not supported; use TXT or CNAME"),
    };
    let name = crate::model::DomainName::parse(fqdn).map_err(|e| anyhow::anyhow!("{e}"))?;
    let checker =
        crate::dcv::check::build(&cfg.dns, &cfg.http_check).map_err(|e| anyhow::anyhow!(e))?;
    let challenge = Challenge {
        kind,
        name: name.to_string(),
        path: None,
        value: value.to_string(),
    };
    let report = checker
        .check(&challenge)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say!("{}", crate::dcv::check::render_table(&report).trim_end());
    }
    Ok(if report.present {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
