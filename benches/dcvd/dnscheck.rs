//! Bench 6: propagation checks per second (`dnscheck::build(..).check(..)`, many at once)
//! against two local authoritative servers for the zone, 10,000 distinct names.

use std::collections::BTreeMap;
use std::time::Instant;

use dcvd::model::{Challenge, ChallengeKind};
use dcvd::sim::dns::{DnsSim, ZoneSpec};
use futures_util::StreamExt;

use crate::cpu::Tracked;
use crate::world::ZONE;
use crate::{Row, pct, quick};

pub fn run() -> Result<Vec<Row>, String> {
    let names = if quick() { 2000 } else { 10_000 };
    let concurrency = 256;
    let sims = Tracked::new("sim", 2);
    let checker_rt = Tracked::new("dcvd", 2);
    let mut zone = ZoneSpec::new(ZONE);
    for i in 0..names {
        zone = zone.with_record(&format!("_dnsauth.n{i} 60 IN TXT \"value-{i}\""));
    }
    let servers: Vec<DnsSim> = sims.rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(DnsSim::start(std::slice::from_ref(&zone), None).await?);
        }
        Ok::<_, String>(v)
    })?;
    let dns = dcvd::config::DnsConfig {
        nameserver_overrides: BTreeMap::from([(
            ZONE.to_string(),
            servers.iter().map(|s| s.addr().to_string()).collect(),
        )]),
        ..Default::default()
    };
    let checker = dcvd::dcv::check::build(&dns, &dcvd::config::HttpCheckConfig::default())?;
    let challenges: Vec<Challenge> = (0..names)
        .map(|i| Challenge {
            kind: ChallengeKind::DnsTxt,
            name: format!("_dnsauth.n{i}.{ZONE}"),
            path: None,
            value: format!("value-{i}"),
        })
        .collect();
    let cpu0 = checker_rt.cpu();
    let started = Instant::now();
    let results: Vec<(bool, f64)> = checker_rt.rt.block_on(async {
        futures_util::stream::iter(challenges.iter())
            .map(|c| {
                let checker = checker.clone();
                async move {
                    let t = Instant::now();
                    let ok = checker.check(c).await.is_ok_and(|r| r.present);
                    (ok, t.elapsed().as_secs_f64())
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = checker_rt.cpu() - cpu0;
    let present = results.iter().filter(|r| r.0).count();
    let mut lat: Vec<f64> = results.iter().map(|r| r.1).collect();
    lat.sort_by(f64::total_cmp);
    drop(servers);
    let b = "6 dns check";
    Ok(vec![
        Row::new(
            b,
            &format!("checks/s, {names} names, 2 servers, {concurrency} at once"),
            format!(
                "{:.0} ({:.0} queries/s; {present} present)",
                names as f64 / elapsed,
                2.0 * names as f64 / elapsed
            ),
            "",
            Some(present == names),
        ),
        Row::new(
            b,
            "check latency p50 / p99; checker CPU per check",
            format!(
                "{:.1} ms / {:.1} ms; {:.0} µs",
                pct(&lat, 50.0) * 1000.0,
                pct(&lat, 99.0) * 1000.0,
                cpu / names as f64 * 1e6
            ),
            "",
            None,
        ),
    ])
}
