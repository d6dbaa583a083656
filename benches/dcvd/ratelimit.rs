//! Bench 3: the DigiCert simulator enforces its limits (100 / 5 s, 1000 / 5 min) scaled in
//! time, dcvd's limiter is configured with the same scaled windows, and enough DigiCert
//! certificates are ordered to keep it saturated. Reports the request rate as a share of
//! the limit (complete windows of the long limit) and the number of 429 answers.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cpu::Tracked;
use crate::world::{Spec, World, wait_issued};
use crate::{Row, quick};

pub fn run() -> Result<Vec<Row>, String> {
    // (scale, certificates): 0.05 → 100/250ms and 1000/15s.
    let (scale, n) = if quick() { (0.01, 700) } else { (0.05, 1000) };
    let short = Duration::from_secs(5).mul_f64(scale);
    let long = Duration::from_secs(300).mul_f64(scale);
    let fmt = |d: Duration| format!("{}ms", d.as_millis());
    let sims = Tracked::new("sim", 2);
    let dcvd_rt = Tracked::new("dcvd", 2);
    let spec = Spec {
        digicert: n,
        sectigo: 0,
        concurrency: 128,
        dns_servers: 1,
        dns_poll: "1s",
        digicert_scale: Some(scale),
        digicert_limits: vec![format!("100/{}", fmt(short)), format!("1000/{}", fmt(long))],
        digicert_recheck: None,
    };
    let world = World::start(&spec, &sims.rt)?;
    let started = Instant::now();
    dcvd_rt.rt.block_on(async {
        let app = world.app(|_| {}).await?;
        let store = app.engine.store().clone();
        let shutdown = CancellationToken::new();
        let daemon = tokio::spawn(app.run(shutdown.clone()));
        let r = wait_issued(&store, n as i64, Duration::from_secs(300)).await;
        shutdown.cancel();
        let _ = daemon.await;
        r
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = world.digicert.log().entries();
    let too_many = log.iter().filter(|e| e.status == 429).count();
    let mut at: Vec<u64> = log.iter().map(|e| e.at_ms).collect();
    at.sort_unstable();
    let peak = |w: Duration| {
        let w = w.as_millis() as u64;
        let (mut lo, mut best) = (0usize, 0usize);
        for hi in 0..at.len() {
            while at[hi] - at[lo] >= w {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    };
    // Requests in each complete long window from the first request on.
    let first = at.first().copied().unwrap_or(0);
    let last = at.last().copied().unwrap_or(0);
    let lw = long.as_millis() as u64;
    let windows: Vec<usize> = (0..)
        .map(|k| first + k * lw)
        .take_while(|s| s + lw <= last)
        .map(|s| at.iter().filter(|t| **t >= s && **t < s + lw).count())
        .collect();
    // Steady state: the windows after the first (which starts with the short-window burst).
    let steady: Vec<usize> = if windows.len() > 1 {
        windows[1..].to_vec()
    } else {
        windows.clone()
    };
    let share = steady.iter().sum::<usize>() as f64 / (steady.len().max(1) * 1000) as f64;
    let b = "3 rate limits";
    Ok(vec![
        Row::new(
            b,
            &format!(
                "sustained rate / limit (1000/{}, steady windows {:?} of all {:?})",
                fmt(long),
                steady,
                windows
            ),
            format!("{:.1}%", share * 100.0),
            "≥ 90%",
            Some(share >= 0.9 && !steady.is_empty()),
        ),
        Row::new(
            b,
            "429 answers",
            format!("{too_many} of {} requests", at.len()),
            "0",
            Some(too_many == 0),
        ),
        Row::new(
            b,
            &format!("peak requests in any {} / {} window", fmt(short), fmt(long)),
            format!("{} / {}", peak(short), peak(long)),
            "≤ 100 / ≤ 1000",
            Some(peak(short) <= 100 && peak(long) <= 1000),
        ),
        Row::new(
            b,
            &format!("run time ({n} DigiCert certificates)"),
            format!("{elapsed:.1} s"),
            "< 60 s",
            Some(elapsed < 60.0),
        ),
    ])
}
