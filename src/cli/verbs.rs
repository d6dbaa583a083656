//! Certificate verbs: `dcvd renew`. They write the database like `orders retry` does; the
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
            Renewal::Live(id) => {
                say!("{name}: has a live order ({id}); nothing done (see `dcvd orders show {id}`)");
                refused |= force || !names.is_empty();
            }
            Renewal::NotDue { renew_from } => {
                // `--due` over the whole fleet: only what it did is worth a line.
                if !names.is_empty() {
                    say!(
                        "{name}: not due{}; nothing done (`dcvd renew --force {name}` orders anyway)",
                        renew_from
                            .map(|t| format!(" (renews from {})", t.format("%Y-%m-%d %H:%M UTC")))
                            .unwrap_or_default()
                    );
                }
            }
            Renewal::Adopted => {
                say!("{name}: the valid certificate in its output_dir was adopted; nothing ordered")
            }
            Renewal::Skipped(why) => {
                say!("{name}: no order placed: {why}");
                refused = true;
            }
        }
    }
    if names.is_empty() && placed.is_empty() {
        say!("nothing is due");
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
pub async fn wait_for(
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
