//! The scheduler loop: claim due orders, run their steps concurrently (capped by
//! `daemon.concurrency`, one step per order at a time), run cleanups and the renewal
//! cron, then sleep until the next deadline, a poke, or shutdown.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::lifecycle::engine::Engine;

/// Upper bound on one sleep, so work added by another process (the CLI) or a changed
/// wall clock is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// How often cleanups are started and the overdue gauge is refreshed while busy.
const BOOKKEEPING: Duration = Duration::from_millis(250);

/// Run until `shutdown` is cancelled, then let running steps finish within `drain`.
pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken, drain: Duration) {
    let mut set: JoinSet<i64> = JoinSet::new();
    // Which order each step task runs, to name it when the task panicked.
    let mut tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
    let mut cleanup: Option<tokio::task::JoinHandle<()>> = None;
    let mut next_renewal = next_cron(&engine);
    let mut last_bookkeeping: Option<tokio::time::Instant> = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let now = engine.ctx.clock.now();
        let rt = engine.services();
        let cap = rt.config.daemon.concurrency.max(1);
        // Renewal check (cron).
        if next_renewal.is_some_and(|t| t <= now) {
            match engine.ensure_orders().await {
                Ok(c) if !c.is_empty() => info!(orders = c.len(), "renewal check created orders"),
                Ok(_) => {}
                Err(e) => {
                    error!("renewal check failed: {e}; trying again at the next scheduled check")
                }
            }
            next_renewal = next_cron(&engine);
        }
        // Claim due orders up to the concurrency cap.
        let free = cap.saturating_sub(set.len());
        if free > 0 {
            match engine
                .store()
                .due_orders(now, (free + set.len()) as u32)
                .await
            {
                Ok(ids) => {
                    let running: std::collections::HashSet<i64> =
                        engine.running().into_iter().collect();
                    for id in ids
                        .into_iter()
                        .filter(|id| !running.contains(id))
                        .take(free)
                    {
                        // The claim moves into the task: it is released when the step
                        // ends, also when it panics.
                        let Some(claim) = engine.claim(id) else {
                            continue;
                        };
                        let e = engine.clone();
                        let task = set.spawn(async move {
                            if let Err(err) = e.step_claimed(claim).await {
                                error!(
                                    order_id = id,
                                    "step could not be saved: {err}; it will run again"
                                );
                            }
                            id
                        });
                        tasks.insert(task.id(), id);
                    }
                }
                Err(e) => error!("reading due orders failed: {e}"),
            }
        }
        // Cleanups and the bookkeeping queries below run at most every BOOKKEEPING, not
        // after every finished step: at hundreds of steps per second they were most of
        // the scheduler's database load.
        let bookkeeping = last_bookkeeping.is_none_or(|t| t.elapsed() >= BOOKKEEPING);
        if bookkeeping {
            last_bookkeeping = Some(tokio::time::Instant::now());
        }
        if bookkeeping && cleanup.as_ref().is_none_or(|h| h.is_finished()) {
            let e = engine.clone();
            cleanup = Some(tokio::spawn(async move {
                if let Err(err) = e.cleanup_due(64).await {
                    warn!("token cleanup failed: {err}; retrying later");
                }
            }));
        }
        if bookkeeping {
            let overdue = engine
                .store()
                .overdue_count(engine.ctx.clock.now())
                .await
                .unwrap_or(0);
            engine
                .ctx
                .metrics
                .scheduler_overdue
                .set(overdue.saturating_sub(set.len() as i64).max(0));
        }
        // A full set cannot take more work: wait for a slot instead of spinning (and
        // without asking the database when the next order is due).
        if set.len() >= cap {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = engine.notify.notified() => {}
                Some(r) = set.join_next_with_id() => reaped(&mut tasks, r),
                _ = tokio::time::sleep(BOOKKEEPING) => {}
            }
            while let Some(r) = set.try_join_next_with_id() {
                reaped(&mut tasks, r);
            }
            continue;
        }
        // Sleep until the next deadline.
        let mut wake = engine
            .store()
            .next_due(&engine.running())
            .await
            .ok()
            .flatten();
        if let Some(t) = engine.store().journal_next_due().await.ok().flatten() {
            // Cleanups start at most every BOOKKEEPING: do not spin until then.
            let t = t.max(
                engine.ctx.clock.now()
                    + chrono::Duration::milliseconds(BOOKKEEPING.as_millis() as i64),
            );
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        if let Some(t) = next_renewal {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        let sleep = wake
            .map(|t| {
                (t - engine.ctx.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            })
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = engine.notify.notified() => {}
            Some(r) = set.join_next_with_id(), if !set.is_empty() => reaped(&mut tasks, r),
            _ = tokio::time::sleep(sleep) => {}
        }
        // Reap every step that finished meanwhile, so one pass claims all free slots.
        while let Some(r) = set.try_join_next_with_id() {
            reaped(&mut tasks, r);
        }
    }
    info!(
        running = set.len(),
        "shutting down: no new steps are started; waiting for running ones"
    );
    let drained = tokio::time::timeout(drain, async {
        while let Some(r) = set.join_next_with_id().await {
            reaped(&mut tasks, r);
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            running = set.len(),
            "steps still running after the shutdown deadline were stopped; they run again at the next start"
        );
        set.abort_all();
    }
    if let Some(h) = cleanup {
        h.abort();
    }
}

/// A finished step task: a panic is logged, not swallowed. Its order was released by
/// its claim and runs again when due.
fn reaped(
    tasks: &mut HashMap<tokio::task::Id, i64>,
    r: Result<(tokio::task::Id, i64), tokio::task::JoinError>,
) {
    match r {
        Ok((task, _)) => {
            tasks.remove(&task);
        }
        Err(e) => {
            let order_id = tasks.remove(&e.id());
            if e.is_panic() {
                error!(
                    order_id,
                    "a step panicked: {e}; the order was released and its step will be retried"
                );
            }
        }
    }
}

fn next_cron(engine: &Engine) -> Option<DateTime<Utc>> {
    let rt = engine.services();
    let schedule = cron::Schedule::from_str(&rt.config.daemon.renewal_check).ok()?;
    schedule.after(&engine.ctx.clock.now()).next()
}
