//! Bench 4: propagation detection latency. Two authoritative servers for the zone; dcvd
//! publishes to server 1 (RFC 2136) and checks both (poll 1 s). When a publish returns,
//! the bench adds the same TXT to server 2 after a random delay and measures from that
//! moment to the moment dcvd's check of the name first comes back `present`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dcvd::dcv::check::{CheckReport, DnsError, PropagationCheck};
use dcvd::dcv::publish::{PublishError, Publisher};
use dcvd::model::Challenge;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::RngExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cpu::Tracked;
use crate::world::{Spec, World, wait_issued};
use crate::{Row, pct, quick};

/// Tells the bench when a record was published on server 1.
struct Tap {
    inner: Arc<dyn Publisher>,
    tx: mpsc::UnboundedSender<(String, String)>,
}

#[async_trait]
impl Publisher for Tap {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn can_publish(&self, c: &Challenge) -> bool {
        self.inner.can_publish(c)
    }
    async fn present(&self, c: &Challenge) -> Result<(), PublishError> {
        let r = self.inner.present(c).await;
        if r.is_ok() {
            let _ = self.tx.send((c.name.clone(), c.value.clone()));
        }
        r
    }
    async fn cleanup(&self, c: &Challenge) -> Result<(), PublishError> {
        self.inner.cleanup(c).await
    }
}

/// Records when dcvd's check of each name first passed.
struct Seen {
    inner: Arc<dyn PropagationCheck>,
    passed: Arc<Mutex<HashMap<String, Instant>>>,
}

#[async_trait]
impl PropagationCheck for Seen {
    async fn check(&self, c: &Challenge) -> Result<CheckReport, DnsError> {
        let r = self.inner.check(c).await;
        if r.as_ref().is_ok_and(|r| r.present) {
            let now = Instant::now();
            self.passed
                .lock()
                .unwrap()
                .entry(c.name.clone())
                .or_insert(now);
        }
        r
    }
}

pub fn run() -> Result<Vec<Row>, String> {
    let n = if quick() { 20 } else { 50 };
    let poll = Duration::from_secs(1);
    let sims = Tracked::new("sim", 2);
    let dcvd_rt = Tracked::new("dcvd", 2);
    let spec = Spec {
        digicert: n,
        sectigo: 0,
        concurrency: 64,
        dns_servers: 2,
        dns_poll: "1s",
        digicert_scale: None,
        digicert_limits: Vec::new(),
        digicert_recheck: None,
    };
    let world = World::start(&spec, &sims.rt)?;
    let passed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let added: HashMap<String, Instant> = dcvd_rt.rt.block_on(async {
        let p = passed.clone();
        let app = world
            .app(move |rt| {
                let inner = rt.publishers["dns"].clone();
                rt.publishers
                    .insert("dns".into(), Arc::new(Tap { inner, tx }));
                rt.checker = Arc::new(Seen {
                    inner: rt.checker.clone(),
                    passed: p,
                });
            })
            .await?;
        let store = app.engine.store().clone();
        let shutdown = CancellationToken::new();
        let daemon = tokio::spawn(app.run(shutdown.clone()));
        let server2 = &world.dns[1];
        let mut added = HashMap::new();
        let mut pending = FuturesUnordered::new();
        let done = wait_issued(&store, n as i64, Duration::from_secs(120));
        tokio::pin!(done);
        let outcome = loop {
            tokio::select! {
                Some((name, value)) = rx.recv() => {
                    let delay = Duration::from_millis(rand::rng().random_range(300..3000));
                    pending.push(async move {
                        tokio::time::sleep(delay).await;
                        let t0 = Instant::now();
                        let r = server2.add_txt(&name, &value).await;
                        (name, t0, r)
                    });
                }
                Some((name, t0, r)) = pending.next(), if !pending.is_empty() => {
                    r.map_err(|e| format!("adding {name} to server 2: {e}"))?;
                    added.insert(name, t0);
                }
                r = &mut done => break r,
            }
        };
        shutdown.cancel();
        let _ = daemon.await;
        outcome.map(|_| added)
    })?;
    let passed = passed.lock().unwrap().clone();
    let mut lat: Vec<f64> = added
        .iter()
        .filter_map(|(name, t0)| Some(passed.get(name)?.duration_since(*t0).as_secs_f64()))
        .collect();
    lat.sort_by(f64::total_cmp);
    let p99 = pct(&lat, 99.0);
    let limit = poll.as_secs_f64() + 0.1;
    let b = "4 propagation";
    Ok(vec![Row::new(
        b,
        &format!(
            "record on last server → check passed, poll 1 s, {} samples: p50 / p99 / max",
            lat.len()
        ),
        format!(
            "{:.0} ms / {:.0} ms / {:.0} ms",
            pct(&lat, 50.0) * 1000.0,
            p99 * 1000.0,
            lat.last().copied().unwrap_or(f64::NAN) * 1000.0
        ),
        "p99 ≤ 1100 ms",
        Some(p99 <= limit && lat.len() == n),
    )])
}
