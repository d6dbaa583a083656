//! `dcvd status`: what an operator reads in five seconds — counts by state, stuck orders
//! and why, next renewals, provider health.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::inspect::{database_path, open_readonly};
use crate::model::OrderState;

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
    let Some(store) = open_readonly(config).await? else {
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
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let mut attention = Vec::new();
    for o in store.list_orders(None).await? {
        let live = o.state.is_live();
        let reason = if let Some(why) = o.damaged.as_deref().filter(|_| live) {
            Some(format!(
                "DAMAGED, on hold: {why}; nothing is sent to the CA for it and its certificate \
                 gets no other order. Repair the row, then `dcvd orders retry {}` to resume it now",
                o.id
            ))
        } else if o.state == OrderState::SubmitUnknown {
            Some(format!(
                "NEEDS YOU: cannot tell whether the CA has this order ({}); decide with \
                 `dcvd orders adopt {} CA_ORDER_ID` or `dcvd orders resubmit {} --yes` \
                 (see `dcvd orders show {}`)",
                o.unsure_reason.as_deref().unwrap_or("no reason recorded"),
                o.id,
                o.id,
                o.id
            ))
        } else if o.state == OrderState::Failed {
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
                state: o.state.to_string(),
                reason,
            });
        }
    }
    for c in store.open_at_ca().await? {
        let (label, what) = match c.why {
            "cancel_pending" => (
                "open_at_ca",
                format!(
                    "dcvd is canceling it at the CA{}{}; if that keeps failing, cancel it in the CA's portal",
                    c.answer
                        .as_deref()
                        .map(|a| match c.attempts {
                            0 => format!(" ({a})"),
                            n => format!(" (attempt {n} failed: {a})"),
                        })
                        .unwrap_or_default(),
                    c.next_attempt_at
                        .map(|t| format!(", next try {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default()
                ),
            ),
            "cancel_refused" => (
                "open_at_ca",
                format!(
                    "the CA refused to cancel it ({}); NEEDS YOU: check it in the CA's portal and cancel it \
                     there if it is still pending",
                    c.answer.as_deref().unwrap_or("no answer recorded")
                ),
            ),
            _ => (
                "duplicate_at_ca",
                format!(
                    "a duplicate of this order's request, not canceled ({}); NEEDS YOU: cancel it in the \
                     CA's portal",
                    c.answer.as_deref().unwrap_or("no answer recorded")
                ),
            ),
        };
        attention.push(Attention {
            order_id: c.order_id,
            certificate: c.certificate,
            state: label.into(),
            reason: format!(
                "CA order {} at provider {} may still be pending at the CA: {what}",
                c.ca_order_id, c.provider
            ),
        });
    }
    for j in store.damaged_journal().await? {
        attention.push(Attention {
            order_id: j.order_id,
            certificate: String::new(),
            state: "cleanup".into(),
            reason: format!(
                "DAMAGED cleanup entry {} (publisher {}): {}; its token is not removed by dcvd. \
                 Remove it by hand and delete the entry, or repair the row",
                j.id, j.publisher, j.reason
            ),
        });
    }
    let certificates = store.certificates().await?;
    for c in certificates.iter().filter(|c| c.damaged.is_some()) {
        attention.push(Attention {
            order_id: c.current_order_id.or(c.issued_order_id).unwrap_or(0),
            certificate: c.name.clone(),
            state: "certificate".into(),
            reason: format!(
                "DAMAGED certificate row: {}; dcvd places no order or renewal for it until the row \
                 is repaired",
                c.damaged.as_deref().unwrap_or_default()
            ),
        });
    }
    for c in certificates.iter().filter(|c| c.damaged.is_none()) {
        if let Some(p) = &c.paused {
            attention.push(Attention {
                order_id: 0,
                certificate: c.name.clone(),
                state: "paused".into(),
                reason: format!(
                    "{} at {}; dcvd places no new order or renewal for it until `dcvd resume {}`",
                    p.reason,
                    p.at.format("%Y-%m-%d %H:%M UTC"),
                    c.name
                ),
            });
        }
        if let Some(hold) = &c.hold {
            attention.push(Attention {
                order_id: 0,
                certificate: c.name.clone(),
                state: "held".into(),
                reason: format!("NEEDS YOU: {hold}"),
            });
        }
    }
    let mut renewals: Vec<Renewal> = certificates
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
            if a.order_id == 0 {
                // No order to name: a certificate-level hold or damage.
                say!(
                    "  certificate {} ({}): {}",
                    a.certificate,
                    a.state,
                    a.reason
                );
            } else {
                say!(
                    "  order {} ({}, {}): {}",
                    a.order_id,
                    a.certificate,
                    a.state,
                    a.reason
                );
            }
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
