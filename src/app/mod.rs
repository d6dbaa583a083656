//! The daemon as a value: `App::build(config)` opens the database, builds the services and
//! binds the listener; `app.run(shutdown)` runs the scheduler and the HTTP endpoint until
//! the token is cancelled. Tests and `dcvd demo` use the same path as `dcvd run`.

pub mod http;
pub mod scheduler;
pub mod telemetry;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::lifecycle::engine::Engine;
use crate::lifecycle::services::Services;
use crate::metrics::Metrics;
use crate::store::Store;

pub struct App {
    pub engine: Arc<Engine>,
    listener: TcpListener,
    drain: Duration,
    /// Set while the scheduler loop runs (for `/readyz`).
    pub scheduler_running: Arc<AtomicBool>,
}

impl App {
    /// Open the database (running migrations), build providers/publishers/checker, bind `daemon.listen`.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let metrics = Arc::new(Metrics::new());
        let store = open_store(&config).await?;
        let rt = crate::lifecycle::services::build(
            &config,
            metrics.clone(),
            &store,
            crate::clock::system(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
        Self::with_store(store, rt, metrics).await
    }

    /// As `build`, with services made by the caller (tests, the demo).
    pub async fn with_services(rt: Services, metrics: Arc<Metrics>) -> anyhow::Result<App> {
        let store = open_store(&rt.config).await?;
        Self::with_store(store, rt, metrics).await
    }

    /// As `with_services`, on a database the caller opened (the one the services' ACME
    /// providers keep their accounts in).
    pub async fn with_store(
        store: Store,
        rt: Services,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<App> {
        let listen = rt.config.daemon.listen.clone();
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("binding daemon.listen = {listen}"))?;
        let drain = rt.config.daemon.shutdown_timeout;
        let engine = Arc::new(Engine::new(store, Arc::new(SystemClock), metrics, rt));
        Ok(App {
            engine,
            listener,
            drain,
            scheduler_running: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Run until `shutdown` is cancelled: serve HTTP, tell systemd we are ready, place
    /// orders for certificates that need one, run the scheduler. Returns once running
    /// steps have drained.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let state = crate::app::http::HttpState {
            engine: self.engine.clone(),
            scheduler_running: self.scheduler_running.clone(),
        };
        let http_shutdown = shutdown.clone();
        let http = tokio::spawn(async move {
            let r = axum::serve(self.listener, crate::app::http::router(state))
                .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
                .await;
            if let Err(e) = r {
                error!("HTTP endpoint stopped: {e}");
            }
        });
        // Migrations ran and the config validated (App::build): that is readiness. The
        // pass over every certificate below is work, not a condition for it.
        self.scheduler_running.store(true, Ordering::SeqCst);
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        let started = std::time::Instant::now();
        let checked = self.engine.services().config.certificates.len();
        let placed = self.engine.ensure_orders().await;
        notify_systemd(&[sd_notify::NotifyState::Status(&format!(
            "start-up: {checked} certificates checked in {} ms",
            started.elapsed().as_millis()
        ))]);
        match placed {
            Ok(created) if !created.is_empty() => {
                info!(
                    orders = created.len(),
                    "created orders for certificates that need one"
                )
            }
            Ok(_) => {}
            Err(e) => error!(
                "placing orders for configured certificates failed: {e}; the renewal check tries again"
            ),
        }
        let status = tokio::spawn(status_loop(self.engine.clone(), shutdown.clone()));
        crate::app::scheduler::run(self.engine.clone(), shutdown, self.drain).await;
        self.scheduler_running.store(false, Ordering::SeqCst);
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        status.abort();
        let _ = http.await;
        info!("stopped");
        Ok(())
    }
}

/// Reload the configuration (SIGHUP): an invalid new config is rejected with its errors
/// logged and the old one keeps running.
pub async fn reload(engine: &Engine, path: &Path) {
    // Loading a large config takes seconds (config/load.rs): off the runtime's workers, so
    // running steps and the HTTP endpoint are not stalled meanwhile.
    let owned = path.to_path_buf();
    let loaded = match tokio::task::spawn_blocking(move || crate::config::load(&owned)).await {
        Ok(r) => r,
        Err(e) => {
            error!("configuration reload failed ({e}); still running the previous configuration");
            return;
        }
    };
    match loaded {
        Err(errors) => {
            error!(
                "configuration reload rejected; still running the previous configuration:\n{errors}"
            );
        }
        Ok(cfg) => {
            // The running services' limiters: windows keep counting across the reload,
            // and steps still running on the old services share them with new ones.
            match crate::lifecycle::services::build_reusing(
                &cfg,
                engine.ctx.metrics.clone(),
                engine.store(),
                engine.ctx.clock.clone(),
                engine.services().limiters.clone(),
            )
            .await
            {
                Err(e) => error!(
                    "configuration reload rejected ({e}); still running the previous configuration"
                ),
                Ok(rt) => {
                    let old_db = engine.services().config.daemon.database.clone();
                    if cfg.daemon.database != old_db {
                        warn!("daemon.database changed; that takes effect only after a restart");
                    }
                    engine.replace_services(rt);
                    for w in crate::config::warnings(&cfg) {
                        warn!(key = %w.key, "configuration: {}", w.message);
                    }
                    info!(
                        certificates = cfg.certificates.len(),
                        files = cfg.sources.files.len(),
                        "configuration reloaded"
                    );
                    if let Err(e) = engine.ensure_orders().await {
                        error!("after reload, placing orders failed: {e}");
                    }
                }
            }
        }
    }
}

/// Open (and migrate) `daemon.database`.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let db = &config.daemon.database;
    Store::open(db)
        .await
        .with_context(|| format!("opening the database {}", db.display()))
}

fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    let _ = sd_notify::notify(states);
}

/// STATUS= lines for systemd, and WATCHDOG=1 when the unit sets WatchdogSec.
async fn status_loop(engine: Arc<Engine>, shutdown: CancellationToken) {
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog
        .map(|w| w / 2)
        .unwrap_or(Duration::from_secs(30))
        .min(Duration::from_secs(30));
    loop {
        let live: i64 = engine.store().live_order_count().await.unwrap_or(0);
        let next = engine.store().next_due(&[]).await.ok().flatten();
        let status = format!(
            "{live} orders in flight; next step {}",
            next.map(|t| t.format("%H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "none".into())
        );
        let mut states = vec![sd_notify::NotifyState::Status(&status)];
        if watchdog.is_some() {
            states.push(sd_notify::NotifyState::Watchdog);
        }
        notify_systemd(&states);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
