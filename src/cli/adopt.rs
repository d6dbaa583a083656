//! `dcvd adopt [--dry-run]`: what the first start does for every configured certificate
//! that dcvd has not ordered yet (adopt the certificate already in its `output_dir`,
//! order a new one, or refuse and wait for the operator), and why.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use super::EXIT_CONFIG;
use super::inspect::{open, open_readonly};
use crate::config::CertificateConfig;
use crate::lifecycle::adopt::{Candidate, FirstStart, first_start, hold, look};
use crate::lifecycle::renew::cert_names;
use crate::store::{CertificateRecord, Store};

#[derive(Serialize)]
struct Line {
    certificate: String,
    /// adopt, order, refuse, or managed (dcvd already has orders or a certificate for it).
    action: &'static str,
    detail: String,
}

/// Exit 0, or 1 when any certificate is refused (it needs the operator), 2 when the
/// configuration is invalid.
pub(super) async fn adopt(config: &Path, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = match crate::config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: {} problem(s):", config.display(), errors.len());
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let store = if dry_run {
        open_readonly(config).await?
    } else {
        match open(config).await? {
            Some(s) => Some(s),
            // Creating it here would make it this user's (root's, under sudo), and the
            // daemon could not write it; the daemon adopts at its first start anyway.
            None => anyhow::bail!(
                "no database at {} yet: the daemon adopts at its first start; \
                 `dcvd adopt --dry-run` shows what it will do",
                cfg.daemon.database.display()
            ),
        }
    };
    let (records, with_orders) = match &store {
        Some(s) => (
            s.certificates().await?,
            s.order_overview()
                .await?
                .into_iter()
                .filter(|(_, o)| o.latest.is_some() || o.damaged.is_some())
                .map(|(name, _)| name)
                .collect::<std::collections::BTreeSet<_>>(),
        ),
        None => Default::default(),
    };
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let mut lines = Vec::new();
    for cert in &cfg.certificates {
        let rec = records.iter().find(|r| r.name == cert.name);
        if let Some(managed) = managed(rec, with_orders.contains(&cert.name)) {
            lines.push(Line {
                certificate: cert.name.clone(),
                action: "managed",
                detail: managed,
            });
            continue;
        }
        let decision = decide(cert, store.as_ref().filter(|_| !dry_run), now).await?;
        lines.push(Line {
            certificate: cert.name.clone(),
            action: decision.action(),
            detail: decision.detail(),
        });
    }
    let refused = lines.iter().filter(|l| l.action == "refuse").count();
    if json {
        say!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        for l in &lines {
            say!("{:<24} {:<8} {}", l.certificate, l.action, l.detail);
        }
        let count = |a: &str| lines.iter().filter(|l| l.action == a).count();
        say!(
            "{}: {} to adopt, {} to order, {} refused, {} managed already{}",
            if dry_run { "dry run" } else { "done" },
            count("adopt"),
            count("order"),
            refused,
            count("managed"),
            if dry_run {
                ""
            } else {
                " (adoptions recorded; the daemon places the orders)"
            }
        );
    }
    Ok(if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Why adoption does not apply: dcvd has an order or a certificate for it already.
fn managed(rec: Option<&CertificateRecord>, has_orders: bool) -> Option<String> {
    let rec = rec?;
    if let Some(why) = &rec.damaged {
        return Some(format!("its database row is damaged: {why}"));
    }
    if let Some(source) = rec.source {
        let until = rec
            .not_after
            .map(|t| format!(", valid until {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        return Some(format!("issued ({source}{until})"));
    }
    if let Some(id) = rec.current_order_id {
        return Some(format!("order {id} in flight"));
    }
    has_orders.then(|| "dcvd has ordered for it before; adoption is for the first start".into())
}

async fn decide(
    cert: &CertificateConfig,
    store: Option<&Store>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<FirstStart> {
    let names = match cert_names(cert) {
        Ok(n) => n,
        Err(e) => return Ok(FirstStart::Refuse(format!("its names do not parse: {e}"))),
    };
    let candidate = Candidate {
        certificate: &cert.name,
        provider: &cert.provider,
        names: &names,
        output_dir: &cert.output_dir,
        mode: cert.adopt,
    };
    let Some(store) = store else {
        return Ok(look(&candidate, now).await);
    };
    let decision = first_start(store, &candidate, now).await?;
    if let FirstStart::Refuse(why) = &decision {
        hold(store, &candidate, Some(why), now).await?;
    }
    Ok(decision)
}
