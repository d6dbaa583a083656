//! `dcvd certificates`: every certificate, configured or still in the database, with its
//! state, expiry, next renewal, last order and where its certificate came from.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::EXIT_CONFIG;
use super::inspect::open_readonly;
use crate::model::OrderState;
use crate::store::{CertificateRecord, OrderOverview};

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    names: Vec<String>,
    provider: String,
    /// not_ordered, ordering, issued, expired, failed, canceled, paused, held, damaged, or
    /// not_configured (in the database only: removed from the configuration).
    state: &'static str,
    /// The live order's state while `ordering`, or why a certificate is paused / held /
    /// damaged.
    detail: Option<String>,
    expires: Option<DateTime<Utc>>,
    renew_from: Option<DateTime<Utc>>,
    last_order: Option<i64>,
    last_order_state: Option<String>,
    /// ordered or adopted; none while nothing is issued.
    source: Option<String>,
}

pub(super) async fn certificates(config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = match crate::config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: {} problem(s):", config.display(), errors.len());
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let (records, overview) = match open_readonly(config).await? {
        Some(store) => (store.certificates().await?, store.order_overview().await?),
        None => Default::default(),
    };
    let mut records: BTreeMap<String, CertificateRecord> =
        records.into_iter().map(|r| (r.name.clone(), r)).collect();
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let mut rows = Vec::new();
    for c in &cfg.certificates {
        let rec = records.remove(&c.name);
        let names = crate::lifecycle::renew::cert_names(c)
            .map(|n| n.iter().map(|d| d.to_string()).collect())
            .unwrap_or_else(|_| {
                std::iter::once(c.common_name.clone())
                    .chain(c.dns_names.iter().cloned())
                    .collect()
            });
        let renew_before = chrono::Duration::from_std(c.renew_before).unwrap_or_default();
        rows.push(row(
            c.name.clone(),
            names,
            c.provider.clone(),
            rec.as_ref(),
            overview.get(&c.name),
            Some(renew_before),
            now,
        ));
    }
    for (name, rec) in records {
        let mut r = row(
            name.clone(),
            rec.names.clone(),
            rec.provider.clone(),
            Some(&rec),
            overview.get(&name),
            None,
            now,
        );
        r.detail = Some(match r.detail {
            Some(d) => format!("removed from the configuration (was: {} {d})", r.state),
            None => format!("removed from the configuration (was: {})", r.state),
        });
        r.state = "not_configured";
        rows.push(r);
    }
    if json {
        say!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        say!("no certificates");
        return Ok(ExitCode::SUCCESS);
    }
    let day = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "-".into())
    };
    say!(
        "{:<24} {:<10} {:<14} {:<10} {:<10} {:<10} {:<8} NAMES",
        "NAME",
        "PROVIDER",
        "STATE",
        "EXPIRES",
        "RENEW",
        "LAST",
        "SOURCE"
    );
    for r in &rows {
        let last = match (r.last_order, &r.last_order_state) {
            (Some(id), Some(s)) => format!("{id} {s}"),
            (Some(id), None) => id.to_string(),
            _ => "-".into(),
        };
        say!(
            "{:<24} {:<10} {:<14} {:<10} {:<10} {:<10} {:<8} {}",
            r.name,
            r.provider,
            r.state,
            day(r.expires),
            day(r.renew_from),
            last,
            r.source.as_deref().unwrap_or("-"),
            r.names.join(",")
        );
        if let Some(d) = &r.detail {
            say!("{:<24} {d}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(
    name: String,
    names: Vec<String>,
    provider: String,
    rec: Option<&CertificateRecord>,
    ov: Option<&OrderOverview>,
    renew_before: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Row {
    let latest = ov.and_then(|o| o.latest.as_ref());
    let expires = rec.and_then(|r| r.not_after);
    let (state, detail) = state_of(rec, ov, expires, now);
    Row {
        name,
        names,
        provider,
        state,
        detail,
        expires,
        renew_from: expires.zip(renew_before).map(|(e, b)| e - b),
        last_order: latest.map(|o| o.id),
        last_order_state: latest.map(|o| o.state.to_string()),
        source: rec.and_then(|r| r.source).map(|s| s.to_string()),
    }
}

fn state_of(
    rec: Option<&CertificateRecord>,
    ov: Option<&OrderOverview>,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (&'static str, Option<String>) {
    if let Some(why) = rec
        .and_then(|r| r.damaged.clone())
        .or_else(|| ov.and_then(|o| o.damaged.clone()))
    {
        return ("damaged", Some(why));
    }
    let latest = ov.and_then(|o| o.latest.as_ref());
    let paused = rec.and_then(|r| r.paused.as_ref());
    if let Some(o) = latest.filter(|o| !o.state.is_terminal()) {
        let then = match paused {
            Some(p) => format!("; {}, so no renewal after it", p.reason),
            None => String::new(),
        };
        return (
            "ordering",
            Some(format!("order {} is {}{then}", o.id, o.state)),
        );
    }
    if let Some(p) = paused {
        return (
            "paused",
            Some(format!(
                "{} at {}; no new order or renewal until `dcvd resume`",
                p.reason,
                p.at.format("%Y-%m-%d %H:%M UTC")
            )),
        );
    }
    if let Some(why) = rec.and_then(|r| r.hold.clone()) {
        return ("held", Some(why));
    }
    if rec.is_some_and(|r| r.has_issued()) {
        return match expires {
            Some(t) if t <= now => ("expired", None),
            _ => ("issued", None),
        };
    }
    match latest.map(|o| o.state) {
        Some(OrderState::Failed) => ("failed", None),
        Some(OrderState::Canceled) => ("canceled", None),
        _ => ("not_ordered", None),
    }
}
