//! Benches 1 and 2: N single-name certificates (half DigiCert dns-txt, half Sectigo
//! dns-cname) from config to installed files, rate limits off; and from the same run the
//! CA calls per issued certificate (simulator request logs) and premature-check audit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cpu::{Tracked, process_cpu};
use crate::world::{Spec, World, wait_issued};
use crate::{Row, pct, quick, setting};

fn sizes() -> Vec<usize> {
    if let Some(n) = setting("n").and_then(|v| v.parse().ok()) {
        return vec![n];
    }
    if quick() {
        vec![200, 1000]
    } else {
        vec![1000, 10_000]
    }
}

fn concurrency() -> usize {
    setting("concurrency")
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// Throughput rows for every size; economy rows from the smallest run when asked.
pub fn run(with_economy: bool) -> (Result<Vec<Row>, String>, bool) {
    let mut rows = Vec::new();
    let mut econ_done = false;
    for (i, n) in sizes().into_iter().enumerate() {
        match one(n, with_economy && i == 0) {
            Ok((mut r, e)) => {
                rows.append(&mut r);
                if let Some(mut e) = e {
                    rows.append(&mut e);
                    econ_done = true;
                }
            }
            Err(e) => rows.push(Row::new(
                "throughput",
                &format!("N={n}"),
                format!("error: {e}"),
                "",
                Some(false),
            )),
        }
    }
    (Ok(rows), econ_done)
}

pub fn economy_only() -> Result<Vec<Row>, String> {
    let n = if quick() { 200 } else { 1000 };
    Ok(one(n, true)?.1.unwrap_or_default())
}

fn one(n: usize, economy: bool) -> Result<(Vec<Row>, Option<Vec<Row>>), String> {
    let sims = Tracked::new("sim", 2);
    let dcvd_rt = Tracked::new("dcvd", 2);
    let spec = Spec {
        digicert: n / 2,
        sectigo: n - n / 2,
        concurrency: concurrency(),
        dns_servers: 1,
        dns_poll: "1s",
        digicert_scale: None,
        digicert_limits: Vec::new(),
        digicert_recheck: None,
    };
    let world = World::start(&spec, &sims.rt)?;
    let cpu0 = process_cpu();
    let sim0 = sims.cpu();
    let started = Instant::now();
    let (store, built) = dcvd_rt.rt.block_on(async {
        let app = world.app(|_| {}).await?;
        let built = started.elapsed();
        let store = app.engine.store().clone();
        let shutdown = CancellationToken::new();
        let daemon = tokio::spawn(app.run(shutdown.clone()));
        let r = wait_issued(&store, n as i64, Duration::from_secs(1800)).await;
        shutdown.cancel();
        let _ = daemon.await;
        r.map(|_| (store, built))
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu0;
    // dcvd = the whole process but the simulators' runtime (so SQLite's own threads
    // count as dcvd's).
    let sim_cpu = sims.cpu() - sim0;
    let dcvd_cpu = cpu - sim_cpu;
    let times = dcvd_rt.rt.block_on(order_times(&store))?;
    let mut total: Vec<f64> = times.iter().map(|t| t.0).collect();
    let mut active: Vec<f64> = times.iter().map(|t| t.1).collect();
    total.sort_by(f64::total_cmp);
    active.sort_by(f64::total_cmp);
    let rate = n as f64 / elapsed;
    let target = (n >= 10_000).then_some(rate >= 100.0);
    let b = "1 throughput";
    let mut rows = vec![
        Row::new(
            b,
            &format!("N={n}: certificates/s"),
            format!(
                "{rate:.1} ({n} in {elapsed:.1} s; config+runtime {:.2} s)",
                built.as_secs_f64()
            ),
            if n >= 10_000 { "≥ 100/s" } else { "" },
            target,
        ),
        Row::new(
            b,
            &format!("N={n}: time per cert, created → issued p50/p99"),
            format!("{:.2} s / {:.2} s", pct(&total, 50.0), pct(&total, 99.0)),
            "",
            None,
        ),
        Row::new(
            b,
            &format!("N={n}: time per cert, first step → issued p50/p99"),
            format!("{:.3} s / {:.3} s", pct(&active, 50.0), pct(&active, 99.0)),
            "",
            None,
        ),
        Row::new(
            b,
            &format!("N={n}: CPU s per cert: dcvd / whole process"),
            format!(
                "{:.4} / {:.4} (sims {:.4})",
                dcvd_cpu / n as f64,
                cpu / n as f64,
                sim_cpu / n as f64
            ),
            "",
            None,
        ),
    ];
    let econ = if economy {
        Some(dcvd_rt.rt.block_on(economy_rows(&world, &store))?)
    } else {
        None
    };
    // Shut the simulators down on their own runtime.
    drop(world);
    rows.shrink_to_fit();
    Ok((rows, econ))
}

/// Per issued order: (created → issued, first `submitting` event → issued) in seconds.
async fn order_times(store: &dcvd::store::Store) -> Result<Vec<(f64, f64)>, String> {
    let rows: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT o.created_at, o.updated_at,
                (SELECT MIN(e.at) FROM events e WHERE e.order_id = o.id AND e.kind = 'submitting')
         FROM orders o WHERE o.state = 'issued'",
    )
    .fetch_all(store.pool())
    .await
    .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|(c, u, s)| {
            (
                (u - c) as f64 / 1000.0,
                (u - s.unwrap_or(c)) as f64 / 1000.0,
            )
        })
        .collect())
}

async fn economy_rows(world: &World, store: &dcvd::store::Store) -> Result<Vec<Row>, String> {
    let issued: Vec<(String, i64)> = sqlx::query_as(
        "SELECT provider, COUNT(*) FROM orders WHERE state = 'issued' GROUP BY provider",
    )
    .fetch_all(store.pool())
    .await
    .map_err(|e| e.to_string())?;
    let issued: BTreeMap<String, i64> = issued.into_iter().collect();
    let b = "2 economy";
    let mut rows = Vec::new();
    for (provider, log, limit, check_ep) in [
        (
            "digicert",
            world.digicert.log(),
            5.0,
            "order/certificate/{id}/check-dcv",
        ),
        ("sectigo", world.sectigo.log(), 6.0, "!AutoUpdateDCV"),
    ] {
        let n = *issued.get(provider).unwrap_or(&0) as f64;
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for e in log.entries() {
            *by.entry(format!("{} {}", e.method, e.endpoint))
                .or_default() += 1;
        }
        let total: u64 = by.values().sum();
        let per = total as f64 / n.max(1.0);
        let detail = by
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", *v as f64 / n.max(1.0)))
            .collect::<Vec<_>>()
            .join("; ");
        let checks: u64 = by
            .iter()
            .filter(|(k, _)| k.ends_with(check_ep))
            .map(|(_, v)| v)
            .sum();
        rows.push(Row::new(
            b,
            &format!("{provider}: API calls per issued cert"),
            format!("{per:.2} ({detail})"),
            &format!("≤ {limit}"),
            Some(per <= limit),
        ));
        rows.push(Row::new(
            b,
            &format!("{provider}: {check_ep} calls per cert"),
            format!("{:.2}", checks as f64 / n.max(1.0)),
            "",
            None,
        ));
    }
    // A trigger_check (check-dcv / AutoUpdateDCV) not preceded by check_passed for the
    // order's name is premature: the CA was asked before our own check saw the record
    // on every authoritative server.
    let premature: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events t WHERE t.kind = 'ca_call' AND t.message LIKE 'trigger_check%'
         AND NOT EXISTS (SELECT 1 FROM events c WHERE c.order_id = t.order_id
                         AND c.kind = 'check_passed' AND c.id < t.id)",
    )
    .fetch_one(store.pool())
    .await
    .map_err(|e| e.to_string())?;
    let triggers: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE kind = 'ca_call' AND message LIKE 'trigger_check%'",
    )
    .fetch_one(store.pool())
    .await
    .map_err(|e| e.to_string())?;
    rows.push(Row::new(
        b,
        "premature check-dcv / AutoUpdateDCV calls",
        format!("{premature} of {triggers}"),
        "0",
        Some(premature == 0),
    ));
    Ok(rows)
}
