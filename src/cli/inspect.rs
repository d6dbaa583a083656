//! `status`, `orders list` and `orders show`: read the database, print for people or JSON.

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

/// Open the database for inspection; `None` when dcvd has not created it yet.
pub(super) async fn open(config: &Path) -> anyhow::Result<Option<Store>> {
    let db = database_path(config)?;
    if !db.exists() {
        eprintln!(
            "no database at {} yet (dcvd has not run with this configuration)",
            db.display()
        );
        return Ok(None);
    }
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
    let orders = match open(config).await? {
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
    ca_state: Option<crate::provider::CaOrderState>,
    names: Vec<String>,
    key_type: String,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
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

pub(super) async fn show(config: &Path, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(store) = open(config).await? else {
        anyhow::bail!("no order {target}: there is no database yet");
    };
    let id = match target.parse::<i64>() {
        Ok(id) => id,
        Err(_) => store
            .latest_order_of(target)
            .await?
            .with_context(|| format!("no order with id or certificate name `{target}`"))?,
    };
    let (order, authz) = store
        .load_order(id)
        .await
        .with_context(|| format!("order {id}"))?;
    let events = store.events(id).await?;
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
        });
        say!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_order(&order, &authz, &events, &cleanup);
    Ok(ExitCode::SUCCESS)
}

fn print_order(o: &Order, authz: &[Authorization], events: &[Event], cleanup: &[CleanupView]) {
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
    if !o.state.is_terminal() {
        say!(
            "  next step:  {} (attempt {})",
            ts(o.next_attempt_at),
            o.attempts
        );
    }
    if let Some(r) = &o.failure_reason {
        say!("  FAILED:     {r}");
    }
    if let Some(e) = &o.last_error {
        say!("  last error: {e}");
    }
    if let Some(t) = o.not_after {
        say!("  expires:    {}", ts(t));
    }
    say!("\nNames:");
    for a in authz {
        say!(
            "  {}  method {} (since {})  state {}",
            a.domain,
            a.method,
            ts(a.method_started_at),
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
                    crate::dnscheck::ServerOutcome::OtherValue(v) => format!("other value {v:?}"),
                    crate::dnscheck::ServerOutcome::Error(e) => format!("error: {e}"),
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

#[derive(Serialize)]
struct StatusView {
    database: String,
    orders_by_state: std::collections::BTreeMap<String, i64>,
    attention: Vec<Attention>,
    renewals: Vec<Renewal>,
    providers: Vec<ProviderHealth>,
}

#[derive(Serialize)]
struct Attention {
    order_id: i64,
    certificate: String,
    state: String,
    reason: String,
}

#[derive(Serialize)]
struct Renewal {
    certificate: String,
    expires: DateTime<Utc>,
    renew_from: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct ProviderHealth {
    provider: String,
    ok: bool,
    last_call_at: DateTime<Utc>,
    last_call: String,
}

pub(super) async fn status(config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let db = database_path(config)?;
    let Some(store) = open(config).await? else {
        if json {
            say!(
                "{}",
                serde_json::json!({"database": db, "orders_by_state": {}, "attention": [], "renewals": [], "providers": []})
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut by_state = std::collections::BTreeMap::new();
    for (_, state, n) in store.order_counts().await? {
        *by_state.entry(state).or_insert(0) += n;
    }
    let renew_before: std::collections::HashMap<String, std::time::Duration> =
        crate::config::load(config)
            .map(|c| {
                c.certificates
                    .into_iter()
                    .map(|c| (c.name, c.renew_before))
                    .collect()
            })
            .unwrap_or_default();
    let now = Utc::now();
    let mut attention = Vec::new();
    for o in store.list_orders(None).await? {
        let live = !matches!(o.state.as_str(), "issued" | "failed" | "canceled");
        let reason = if o.state == "failed" {
            // Only the newest order of a certificate matters.
            if store.latest_order_of(&o.certificate).await? != Some(o.id) {
                continue;
            }
            o.failure_reason.clone()
        } else if live {
            o.last_error.clone().or_else(|| {
                let age = now.timestamp_millis() - o.created_at;
                (age > 3_600_000).then(|| {
                    format!(
                        "in progress for {}",
                        humantime::format_duration(std::time::Duration::from_secs(
                            (age / 1000) as u64
                        ))
                    )
                })
            })
        } else {
            None
        };
        if let Some(reason) = reason {
            attention.push(Attention {
                order_id: o.id,
                certificate: o.certificate,
                state: o.state,
                reason,
            });
        }
    }
    let mut renewals: Vec<Renewal> = store
        .certificates()
        .await?
        .into_iter()
        .filter_map(|c| {
            let expires = c.not_after?;
            let renew_from = renew_before
                .get(&c.name)
                .map(|d| expires - chrono::Duration::from_std(*d).unwrap_or_default());
            Some(Renewal {
                certificate: c.name,
                expires,
                renew_from,
            })
        })
        .collect();
    renewals.sort_by_key(|r| r.renew_from.unwrap_or(r.expires));
    let providers: Vec<ProviderHealth> = store
        .provider_health()
        .await?
        .into_iter()
        .map(|(provider, at, msg)| ProviderHealth {
            ok: msg.contains(": ok"),
            provider,
            last_call_at: at,
            last_call: msg,
        })
        .collect();
    let view = StatusView {
        database: db.display().to_string(),
        orders_by_state: by_state,
        attention,
        renewals,
        providers,
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    let counts: Vec<String> = view
        .orders_by_state
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    say!("dcvd status — database {}", view.database);
    say!(
        "Orders: {}",
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(", ")
        }
    );
    if view.attention.is_empty() {
        say!("Attention: nothing stuck");
    } else {
        say!("Attention:");
        for a in &view.attention {
            say!(
                "  order {} ({}, {}): {}",
                a.order_id,
                a.certificate,
                a.state,
                a.reason
            );
        }
    }
    if !view.renewals.is_empty() {
        say!("Next renewals:");
        for r in view.renewals.iter().take(10) {
            say!(
                "  {:<24} expires {}{}",
                r.certificate,
                r.expires.format("%Y-%m-%d"),
                r.renew_from
                    .map(|t| format!(", renews from {}", t.format("%Y-%m-%d")))
                    .unwrap_or_default()
            );
        }
    }
    if !view.providers.is_empty() {
        say!("Providers:");
        for p in &view.providers {
            let age = humantime::format_duration(std::time::Duration::from_secs(
                (now - p.last_call_at).num_seconds().max(0) as u64,
            ));
            if p.ok {
                say!("  {}: ok (last call {age} ago)", p.provider);
            } else {
                say!(
                    "  {}: FAILING — last call {age} ago: {}",
                    p.provider,
                    p.last_call
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
