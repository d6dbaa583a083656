//! Certificate verbs: `dcvd renew`, `pause`, `resume`. They write the database like `orders retry` does; the
//! running daemon takes the new orders from there.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::lifecycle::renew::Renewal;
use crate::model::OrderState;
use crate::store::Store;

/// How often `--wait` reads the orders' state.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// The configuration, or an error listing its problems.
fn load_config(config: &Path) -> anyhow::Result<crate::config::Config> {
    crate::config::load(config).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))
}

/// Every name in `names` is a configured certificate, or an error naming those that are not.
fn check_configured(cfg: &crate::config::Config, names: &[String]) -> anyhow::Result<()> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !cfg.certificates.iter().any(|c| &c.name == *n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "not in the configuration: {} (see `dcvd certificates`); nothing was done",
            unknown.join(", ")
        );
    }
    Ok(())
}

/// `dcvd renew NAME… [--force] [--due] [--wait]`.
pub(super) async fn renew(
    config: &Path,
    names: &[String],
    force: bool,
    due: bool,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    if names.is_empty() && !due {
        anyhow::bail!(
            "name the certificates to renew (`dcvd renew NAME… [--force]`), or renew every one \
             that is due with `dcvd renew --due`"
        );
    }
    if force && due {
        anyhow::bail!("--force and --due contradict each other: --force orders even when not due");
    }
    let cfg = load_config(config)?;
    check_configured(&cfg, names)?;
    let Some(store) = super::inspect::open(config).await? else {
        anyhow::bail!(
            "there is no database yet: start the daemon (`dcvd run`) once, it orders what is due"
        );
    };
    let engine = crate::lifecycle::engine::engine_for_cli(store.clone(), cfg).await?;
    let only = (!names.is_empty()).then_some(names);
    let results = engine.renew(only, force).await?;
    let named = !names.is_empty();
    let mut placed = Vec::new();
    let mut refused = false;
    for (name, r) in &results {
        match r {
            Renewal::Placed { order_id, need } => {
                say!(
                    "{name}: placed order {order_id} ({}); the running daemon takes it within seconds",
                    need
                );
                placed.push((name.clone(), *order_id));
            }
            // `--due` over the whole fleet: only what it did, and what needs the operator,
            // is worth a line.
            Renewal::Live(id) if named => {
                say!("{name}: has a live order ({id}); nothing done (see `dcvd orders show {id}`)");
                refused = true;
            }
            Renewal::NotDue { renew_from } if named => {
                say!(
                    "{name}: not due{}; nothing done (`dcvd renew --force {name}` orders anyway)",
                    renew_from
                        .map(|t| format!(" (renews from {})", t.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default()
                );
            }
            Renewal::Paused(why) if named => {
                say!(
                    "{name}: paused ({why}); nothing done. `dcvd resume {name}` lets it renew again"
                );
                refused = true;
            }
            Renewal::Adopted => {
                say!("{name}: the valid certificate in its output_dir was adopted; nothing ordered")
            }
            Renewal::Skipped(why) => {
                say!("{name}: no order placed: {why}");
                refused = true;
            }
            Renewal::Live(_) | Renewal::Paused(_) | Renewal::NotDue { .. } => {}
        }
    }
    if !named {
        let count = |f: fn(&Renewal) -> bool| results.iter().filter(|(_, r)| f(r)).count();
        say!(
            "{} ordered; {} not due, {} with a live order, {} paused",
            placed.len(),
            count(|r| matches!(r, Renewal::NotDue { .. })),
            count(|r| matches!(r, Renewal::Live(_))),
            count(|r| matches!(r, Renewal::Paused(_))),
        );
    }
    if wait && !placed.is_empty() {
        let all_issued = wait_for(&store, &placed, WAIT_POLL).await?;
        return Ok(if all_issued {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Follow `orders` (certificate, order id) until every one has ended, printing each state
/// change as it is seen (every `poll`). True when every one was issued.
pub(super) async fn wait_for(
    store: &Store,
    orders: &[(String, i64)],
    poll: Duration,
) -> anyhow::Result<bool> {
    let mut last: Vec<Option<OrderState>> = vec![None; orders.len()];
    let mut ended = vec![false; orders.len()];
    loop {
        for (i, (name, id)) in orders.iter().enumerate() {
            if ended[i] {
                continue;
            }
            let (o, _) = store
                .load_order(*id)
                .await
                .with_context(|| format!("following order {id} ({name})"))?;
            if last[i] != Some(o.state) {
                let why = match (&o.failure_reason, o.state) {
                    (Some(r), OrderState::Failed | OrderState::Canceled) => format!(": {r}"),
                    _ => String::new(),
                };
                say!("{name}: order {id} is {}{why}", o.state);
                last[i] = Some(o.state);
            }
            ended[i] = o.state.is_terminal();
        }
        if ended.iter().all(|e| *e) {
            return Ok(last.iter().all(|s| *s == Some(OrderState::Issued)));
        }
        tokio::time::sleep(poll).await;
    }
}

/// `dcvd pause NAME…`: no new order and no renewal for them until `dcvd resume`.
pub(super) async fn pause(config: &Path, names: &[String]) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    check_configured(&cfg, names)?;
    let store = open_or_create(config, &cfg).await?;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let records = store.certificates().await?;
    for name in names {
        let cert = cfg
            .certificates
            .iter()
            .find(|c| &c.name == name)
            .expect("checked above");
        let names = crate::lifecycle::renew::cert_names(cert).unwrap_or_default();
        let rec = records.iter().find(|r| &r.name == name);
        if store
            .pause_certificate(name, &cert.provider, &names, PAUSED_BY_PAUSE, now)
            .await?
        {
            match rec.and_then(|r| r.current_order_id) {
                Some(id) => say!(
                    "{name}: paused; its live order {id} continues (`dcvd orders cancel {name}` \
                     stops it); no renewal after it until `dcvd resume {name}`"
                ),
                None => say!("{name}: paused; no new order or renewal until `dcvd resume {name}`"),
            }
        } else {
            say!("{name}: already paused; nothing changed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Why `dcvd pause` paused a certificate.
const PAUSED_BY_PAUSE: &str = "paused by an operator (dcvd pause)";

/// `dcvd resume NAME…`: renew them again from the next renewal check.
pub(super) async fn resume(config: &Path, names: &[String]) -> anyhow::Result<ExitCode> {
    let Some(store) = super::inspect::open(config).await? else {
        anyhow::bail!("nothing is paused: there is no database yet");
    };
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let known = store.certificates().await?;
    let mut missing = false;
    for name in names {
        if !known.iter().any(|r| &r.name == name) {
            say!("{name}: no such certificate in the database; nothing changed");
            missing = true;
        } else if store.resume_certificate(name, now).await? {
            say!(
                "{name}: resumed; the daemon orders it when due (next renewal check), or now \
                 with `dcvd renew {name}`"
            );
        } else {
            say!("{name}: was not paused; nothing changed");
        }
    }
    Ok(if missing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The database, created (and migrated) when it does not exist yet: pausing a
/// certificate before the first start is allowed.
async fn open_or_create(config: &Path, cfg: &crate::config::Config) -> anyhow::Result<Store> {
    if let Some(s) = super::inspect::open(config).await? {
        return Ok(s);
    }
    Store::open(&cfg.daemon.database)
        .await
        .with_context(|| format!("creating {}", cfg.daemon.database.display()))
}

/// `dcvd forget NAME [--yes]`: drop what the database holds about a certificate removed
/// from the configuration. Refused while it is configured, has a live order, or has
/// published tokens still to remove (the journal entries are what removes them).
pub(super) async fn forget(config: &Path, name: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    if cfg.certificates.iter().any(|c| c.name == name) {
        anyhow::bail!(
            "certificate `{name}` is in the configuration; nothing was forgotten. Remove it from \
             the configuration first (and reload the daemon), or `dcvd pause {name}` to stop \
             its renewals"
        );
    }
    let Some(store) = super::inspect::open(config).await? else {
        anyhow::bail!("no certificate `{name}`: there is no database yet");
    };
    let orders = store
        .list_orders(None)
        .await?
        .into_iter()
        .filter(|o| o.certificate == name)
        .count();
    if !yes {
        use std::io::IsTerminal as _;
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            anyhow::bail!(
                "forgetting `{name}` deletes its row and the history of its {orders} order(s); \
                 nothing was deleted. Run `dcvd forget {name} --yes` to confirm"
            );
        }
        eprint!(
            "Forget certificate `{name}`: delete its row and the history of its {orders} \
             order(s)? Type `yes`: "
        );
        let mut answer = String::new();
        stdin.read_line(&mut answer)?;
        if answer.trim() != "yes" {
            say!("nothing was deleted");
            return Ok(ExitCode::FAILURE);
        }
    }
    match store.forget_certificate(name).await? {
        crate::store::Forget::Done { orders } => {
            say!(
                "forgot certificate `{name}`: its row and {orders} order(s) with their events are \
                 deleted; its metrics disappear at the next scrape. Its files in output_dir are \
                 left as they are"
            );
            Ok(ExitCode::SUCCESS)
        }
        crate::store::Forget::Unknown => {
            anyhow::bail!("no certificate `{name}` in the database (see `dcvd certificates`)")
        }
        crate::store::Forget::Live(id) => anyhow::bail!(
            "certificate `{name}` has a live order ({id}); nothing was forgotten. Cancel it first: \
             `dcvd orders cancel {id}`"
        ),
        crate::store::Forget::Cleanups(n) => anyhow::bail!(
            "{n} token(s) that `{name}`'s orders published are still to be removed; nothing was \
             forgotten. The running daemon removes them (a damaged entry needs removing by hand: \
             see `dcvd status`); run `dcvd forget {name}` again once they are gone"
        ),
    }
}
