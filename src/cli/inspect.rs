//! `orders list` and `orders show`: read the database, print for people or JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::OrderState;
use crate::store::{Authorization, Event, Order, Store};

/// The database path from the config (file + `DCVD_` env), without validating the rest,
/// so inspection works even while the config has problems.
pub(super) fn database_path(config: &Path) -> anyhow::Result<PathBuf> {
    use figment::providers::{Env, Format, Toml};
    if !config.exists() {
        anyhow::bail!(
            "configuration file {} not found; pass --config or set DCVD_CONFIG",
            config.display()
        );
    }
    let f = figment::Figment::new()
        .merge(Toml::file_exact(config))
        .merge(Env::prefixed("DCVD_").split("__"));
    Ok(f.extract_inner::<PathBuf>("daemon.database")
        .unwrap_or_else(|_| crate::config::DaemonConfig::default().database))
}

/// The database named by `config`, or `None` (said on stderr) when dcvd has not created
/// it yet.
fn existing_database(config: &Path) -> anyhow::Result<Option<PathBuf>> {
    let db = database_path(config)?;
    if db.exists() {
        return Ok(Some(db));
    }
    eprintln!(
        "no database at {} yet (dcvd has not run with this configuration)",
        db.display()
    );
    Ok(None)
}

/// Open the database read-only for inspection (no migration, no writes; the schema must
/// match this binary); `None` when dcvd has not created it yet.
pub(super) async fn open_readonly(config: &Path) -> anyhow::Result<Option<Store>> {
    match existing_database(config)? {
        Some(db) => Ok(Some(Store::open_readonly(&db).await?)),
        None => Ok(None),
    }
}

/// Open the database for a command that writes (retry, cancel, adopt, resubmit): like the
/// daemon, this migrates; `None` when dcvd has not created it yet.
pub(super) async fn open(config: &Path) -> anyhow::Result<Option<Store>> {
    let Some(db) = existing_database(config)? else {
        return Ok(None);
    };
    Ok(Some(
        Store::open(&db)
            .await
            .with_context(|| format!("opening {}", db.display()))?,
    ))
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ms(t: i64) -> String {
    ts(crate::store::from_ms_pub(t))
}

pub(super) async fn list(
    config: &Path,
    state: Option<OrderState>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let orders = match open_readonly(config).await? {
        Some(store) => store.list_orders(state).await?,
        None => Vec::new(),
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&orders)?);
        return Ok(ExitCode::SUCCESS);
    }
    if orders.is_empty() {
        say!("no orders");
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:>6}  {:<20} {:<10} {:<18} {:<12} {:<24} NOTE",
        "ID",
        "CERTIFICATE",
        "PROVIDER",
        "STATE",
        "CA ORDER",
        "UPDATED"
    );
    for o in orders {
        let note = o.failure_reason.or(o.last_error).unwrap_or_default();
        say!(
            "{:>6}  {:<20} {:<10} {:<18} {:<12} {:<24} {}",
            o.id,
            o.certificate,
            o.provider,
            o.state,
            o.ca_order_id.unwrap_or_else(|| "-".into()),
            ms(o.updated_at),
            note.chars().take(100).collect::<String>()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What `orders show --json` prints: everything but the private key.
#[derive(Serialize)]
struct OrderView {
    id: i64,
    certificate: String,
    provider: String,
    state: OrderState,
    failure_reason: Option<String>,
    reference: String,
    ca_order_id: Option<String>,
    ca_state: Option<crate::ca::CaOrderState>,
    names: Vec<String>,
    key_type: String,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    /// When the submit request was last sent, while its answer may be missing.
    submit_sent_at: Option<DateTime<Utc>>,
    submit_maybe_sent: bool,
    /// `submit_unknown`: why, and the CA orders that may be this one.
    unsure_reason: Option<String>,
    unsure_candidates: Vec<String>,
    /// When dcvd looks once more for a late second order from the same request.
    dup_check_at: Option<DateTime<Utc>>,
    /// Canceling the abandoned CA order at the CA: `wanted`, `canceled` or `refused`.
    ca_cancel: Option<crate::model::CaCancel>,
    /// The CA's answer to that cancel (or the last error while it is retried).
    ca_cancel_answer: Option<String>,
    /// When a wanted cancel is tried (again).
    ca_cancel_at: Option<DateTime<Utc>>,
    damaged: Option<String>,
    not_after: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id,
            certificate: o.certificate.clone(),
            provider: o.provider.clone(),
            state: o.state,
            failure_reason: o.failure_reason.clone(),
            reference: o.reference.clone(),
            ca_order_id: o.ca_order_id.clone(),
            ca_state: o.ca_state.clone(),
            names: o.names.iter().map(|n| n.to_string()).collect(),
            key_type: o.key_type.to_string(),
            attempts: o.attempts,
            next_attempt_at: o.next_attempt_at,
            last_error: o.last_error.clone(),
            submit_sent_at: o.submit_sent_at,
            submit_maybe_sent: o.submit_maybe_sent,
            unsure_reason: o.unsure_reason.clone(),
            unsure_candidates: o.unsure_candidates.clone(),
            dup_check_at: o.dup_check_at,
            ca_cancel: o.ca_cancel,
            ca_cancel_answer: o.ca_cancel_answer.clone(),
            ca_cancel_at: o.ca_cancel_at,
            damaged: o.damaged.clone(),
            not_after: o.not_after,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Serialize)]
struct CleanupView {
    token: crate::model::Challenge,
    removable: bool,
    last_error: Option<String>,
}

/// The order `target` names: an order id, or a certificate name (its newest order, which
/// is its live one while it has one).
pub(super) async fn resolve_order(store: &Store, target: &str) -> anyhow::Result<i64> {
    if let Ok(id) = target.parse::<i64>() {
        return Ok(id);
    }
    store
        .latest_order_of(target)
        .await?
        .with_context(|| format!("no order with id or certificate name `{target}`"))
}

pub(super) async fn show(config: &Path, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(store) = open_readonly(config).await? else {
        anyhow::bail!("no order {target}: there is no database yet");
    };
    let id = resolve_order(&store, target).await?;
    let (order, authz) = match store.load_order(id).await {
        Ok(o) => o,
        Err(e @ crate::store::StoreError::Corrupt { .. }) => {
            let hold = match store.order_damage(id).await? {
                Some(_) => "dcvd has put it on hold: nothing is sent to the CA for it and its \
                            certificate gets no other order; it is read again with backoff"
                    .to_string(),
                None => "dcvd puts it on hold at its next step".into(),
            };
            anyhow::bail!(
                "order {id}: {e}. {hold}. Repair the row, then `dcvd orders retry {id}` to resume \
                 it now"
            );
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("order {id}"))),
    };
    let events = store.events(id).await?;
    let duplicates = store.duplicates(id).await?;
    let cleanup: Vec<CleanupView> = store
        .journal_for_order(id)
        .await?
        .into_iter()
        .map(|(token, removable, last_error)| CleanupView {
            token,
            removable,
            last_error,
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "order": OrderView::from(&order),
            "authorizations": authz,
            "events": events,
            "tokens": cleanup,
            "duplicates": duplicates,
        });
        say!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_order(&order, &authz, &events, &cleanup, &duplicates);
    Ok(ExitCode::SUCCESS)
}

/// What an operator must know about a submit in doubt, and the two ways out.
fn print_doubt(o: &Order) {
    if o.state == OrderState::SubmitUnknown {
        say!("\nNEEDS YOU: dcvd cannot tell whether the CA already has this order, and will not");
        say!("submit it again on its own (a second order is a second purchase).");
        say!(
            "  why:        {}",
            o.unsure_reason.as_deref().unwrap_or("(no reason recorded)")
        );
    } else if o.state == OrderState::Submitting && o.submit_maybe_sent {
        say!(
            "\nThe submit sent at {} got no answer; dcvd looks the order up at the CA before any new submit.",
            o.submit_sent_at
                .map(ts)
                .unwrap_or_else(|| "(unknown)".into())
        );
    } else {
        return;
    }
    say!(
        "  candidates: {}",
        if o.unsure_candidates.is_empty() {
            "none named by the CA".to_string()
        } else {
            format!(
                "{} (CA order ids that may be this order)",
                o.unsure_candidates.join(", ")
            )
        }
    );
    say!(
        "  Check the CA's order list for reference {} and names {}, then:",
        o.reference,
        o.names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    say!(
        "    if the CA has it:   dcvd orders adopt {} CA_ORDER_ID",
        o.id
    );
    say!(
        "    if it has none:     dcvd orders resubmit {} --yes   (if the CA does have it, this buys a second certificate)",
        o.id
    );
}

fn print_order(
    o: &Order,
    authz: &[Authorization],
    events: &[Event],
    cleanup: &[CleanupView],
    duplicates: &[crate::store::Duplicate],
) {
    say!(
        "Order {} — certificate {} at provider {}: {}",
        o.id,
        o.certificate,
        o.provider,
        o.state
    );
    say!(
        "  CA order:   {}",
        o.ca_order_id.as_deref().unwrap_or("(not placed yet)")
    );
    if let Some(s) = &o.ca_state {
        say!("  CA says:    {s:?}");
    }
    say!("  reference:  {}", o.reference);
    say!(
        "  names:      {}",
        o.names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    say!("  key:        {}", o.key_type);
    say!(
        "  created:    {}   updated: {}",
        ts(o.created_at),
        ts(o.updated_at)
    );
    if o.state == OrderState::SubmitUnknown {
        say!("  next step:  none until an operator decides (see below)");
    } else if !o.state.is_terminal() {
        say!(
            "  next step:  {} (attempt {})",
            ts(o.next_attempt_at),
            o.attempts
        );
    }
    if let Some(r) = &o.failure_reason {
        say!("  FAILED:     {r}");
    }
    if let Some(r) = o.damaged.as_deref().filter(|_| !o.state.is_terminal()) {
        say!(
            "  DAMAGED:    {r} (on hold; repair it, then `dcvd orders retry {}`)",
            o.id
        );
    }
    if let Some(e) = o
        .last_error
        .as_ref()
        .filter(|_| o.state != OrderState::SubmitUnknown)
    {
        say!("  last error: {e}");
    }
    if let Some(t) = o.not_after {
        say!("  expires:    {}", ts(t));
    }
    if let Some(t) = o.dup_check_at {
        say!(
            "  recovery:   looks once more at {} for a late second order from the same request",
            ts(t)
        );
    }
    if let Some(c) = o.ca_cancel {
        let ca = o.ca_order_id.as_deref().unwrap_or("?");
        let answer = o
            .ca_cancel_answer
            .as_deref()
            .map(|a| format!(": {a}"))
            .unwrap_or_default();
        match c {
            crate::model::CaCancel::Wanted => say!(
                "  CA cancel:  CA order {ca} is being canceled at the CA{}{answer}",
                o.ca_cancel_at
                    .map(|t| format!(" (next try {})", ts(t)))
                    .unwrap_or_default()
            ),
            crate::model::CaCancel::Canceled => say!("  CA cancel:  done{answer}"),
            crate::model::CaCancel::Refused => say!(
                "  CA cancel:  REFUSED by the CA{answer}; CA order {ca} may still be pending: \
                 cancel it in the CA's portal"
            ),
        }
    }
    print_doubt(o);
    if !duplicates.is_empty() {
        say!("\nDuplicate CA orders (the same request placed twice):");
        for d in duplicates {
            say!(
                "  CA order {}  found {}  {}: {}",
                d.ca_order_id,
                ts(d.found_at),
                if d.canceled {
                    "canceled"
                } else {
                    "NOT CANCELED"
                },
                d.outcome
            );
        }
    }
    say!("\nNames:");
    for a in authz {
        let timer = if a.method_failed {
            "failed, falling back".to_string()
        } else {
            match a.method_tried_at {
                Some(t) => format!("first tried {}", ts(t)),
                None => "not tried yet".to_string(),
            }
        };
        say!(
            "  {}  method {} ({timer})  state {}",
            a.domain,
            a.method,
            a.state
        );
        if let Some(c) = &a.challenge {
            say!("    token: {} {} = {}", c.kind, c.location(), c.value);
        }
        if let Some(e) = &a.approver_email {
            say!("    approver: {e} ({} resends)", a.resends);
        }
        if let Some(e) = &a.last_error {
            say!("    last: {e}");
        }
        if let Some(check) = &a.check {
            say!(
                "    last check {} (round {}), ended at {}:",
                a.checked_at.map(ts).unwrap_or_default(),
                a.check_rounds,
                check.final_name
            );
            for s in &check.servers {
                let outcome = match &s.outcome {
                    crate::dcv::check::ServerOutcome::OtherValue(v) => format!("other value {v:?}"),
                    crate::dcv::check::ServerOutcome::Error(e) => format!("error: {e}"),
                    other => other.metric_label().to_string(),
                };
                say!("      {:<44} {outcome}", s.server);
            }
        }
    }
    if !cleanup.is_empty() {
        say!("\nPublished tokens not yet removed:");
        for c in cleanup {
            say!(
                "  {} {} {}{}",
                c.token.kind,
                c.token.location(),
                if c.removable {
                    "(removal pending)"
                } else {
                    "(in use)"
                },
                c.last_error
                    .as_deref()
                    .map(|e| format!(" last error: {e}"))
                    .unwrap_or_default()
            );
        }
    }
    say!("\nEvents:");
    for e in events {
        say!(
            "  {}  {:<14} {}{}",
            ts(e.at),
            e.kind,
            e.domain
                .as_deref()
                .map(|d| format!("[{d}] "))
                .unwrap_or_default(),
            e.message
        );
    }
}
