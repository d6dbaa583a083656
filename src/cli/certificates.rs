//! `dcvd certificates`: every certificate, configured or still in the database, with its
//! state, expiry, next renewal, last order and where its certificate came from.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::EXIT_CONFIG;
use super::inspect::open_readonly;

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
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let rows = crate::lifecycle::inventory::inventory(&cfg, records, &overview, now);
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
