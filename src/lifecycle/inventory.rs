//! The certificate inventory: every configured certificate, and those only left in the
//! database, with its state, expiry, next renewal, last order and source. What
//! `dcvd certificates` prints and `/api/v1/certificates` serves.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::model::OrderState;
use crate::store::{CertificateRecord, OrderOverview};

/// One certificate of the inventory.
#[derive(Debug, Serialize)]
pub struct CertificateRow {
    pub name: String,
    pub names: Vec<String>,
    pub provider: String,
    /// not_ordered, ordering, issued, expired, failed, canceled, paused, held, damaged, or
    /// not_configured (in the database only: removed from the configuration).
    pub state: &'static str,
    /// The live order's state while `ordering`, or why a certificate is paused / held /
    /// damaged.
    pub detail: Option<String>,
    pub expires: Option<DateTime<Utc>>,
    pub renew_from: Option<DateTime<Utc>>,
    pub last_order: Option<i64>,
    pub last_order_state: Option<String>,
    /// ordered or adopted; none while nothing is issued.
    pub source: Option<String>,
}

/// The inventory from the configuration and what the store holds, configured certificates
/// first (in configuration order), then those only in the database.
pub fn inventory(
    cfg: &Config,
    records: Vec<CertificateRecord>,
    overview: &HashMap<String, OrderOverview>,
    now: DateTime<Utc>,
) -> Vec<CertificateRow> {
    let mut records: BTreeMap<String, CertificateRecord> =
        records.into_iter().map(|r| (r.name.clone(), r)).collect();
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
    rows
}

fn row(
    name: String,
    names: Vec<String>,
    provider: String,
    rec: Option<&CertificateRecord>,
    ov: Option<&OrderOverview>,
    renew_before: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> CertificateRow {
    let latest = ov.and_then(|o| o.latest.as_ref());
    let expires = rec.and_then(|r| r.not_after);
    let (state, detail) = state_of(rec, ov, expires, now);
    CertificateRow {
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
