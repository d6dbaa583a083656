//! Client-side rate limiting per provider: sliding windows matching the CA's published
//! limits, plus a pause when the CA answers "rate limited" with a hint.
//!
//! A token bucket refilling at N/window still lets 2N requests through in one window
//! (full bucket plus refill), which a CA counting a rolling window answers with 429.
//! A sliding log of send times keeps every window at or under N, so dcvd never causes
//! a 429 on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

pub use crate::model::RateLimit;

/// Requests may also be delayed past the window edge, to absorb the difference between
/// when we send and when the CA counts: 150 ms, or a twentieth of the window for windows
/// under 3 s (a fixed 150 ms would halve the rate of a 250 ms window).
const MARGIN: Duration = Duration::from_millis(150);

/// Finished requests stay in the log at least this long (and at most `HISTORY_MAX` of
/// them), even when no window in force is that long: a reload may bring longer windows
/// (`set_limits`), and the requests already sent must count against them.
const HISTORY: Duration = Duration::from_secs(300);
const HISTORY_MAX: usize = 10_000;

fn margin(window: Duration) -> Duration {
    MARGIN.min(window / 20)
}

/// One request in the log: in flight (counts as "now" in every window) or finished at
/// `done`. A CA counts a request when it arrives, which is before we see the answer, so
/// stamping a request with its completion time keeps every window the CA can see at or
/// under the limit however long the request spent between our limiter and the CA.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    done: Option<Instant>,
}

#[derive(Debug)]
struct State {
    /// The windows in force; replaced in place on a reload (`set_limits`), so the log
    /// of recent requests carries over to the new limits.
    limits: Vec<RateLimit>,
    sent: VecDeque<Entry>,
    next_id: u64,
    paused_until: Option<Instant>,
}

/// Told the provider name and how long a request waited for the limiter.
pub type WaitHook = Box<dyn Fn(&str, Duration) + Send + Sync>;

/// Shared by every task talking to one provider: every HTTP request to the CA takes a
/// permit from it (`ca::transport::Transport`, used by all three CA clients).
pub struct Limiter {
    state: Mutex<State>,
    /// Poked when an in-flight request finishes (it may free a slot) or the limits change.
    finished: Notify,
    /// Provider name and the hook told about every wait (the `rate_limit_waits` metric).
    on_wait: Option<(String, WaitHook)>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.limits())
            .finish_non_exhaustive()
    }
}

/// A request admitted by the limiter. It counts as in flight until dropped, and from
/// then on with the time it was dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    id: Option<u64>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.limiter.finish(id);
        }
    }
}

impl Limiter {
    pub fn new(limits: Vec<RateLimit>) -> Self {
        let keep = limits
            .iter()
            .map(|l| l.requests as usize)
            .max()
            .unwrap_or(0);
        Self {
            state: Mutex::new(State {
                limits,
                sent: VecDeque::with_capacity(keep),
                next_id: 0,
                paused_until: None,
            }),
            finished: Notify::new(),
            on_wait: None,
        }
    }

    /// Call `f` with `provider` and the time waited whenever a request had to wait.
    pub fn on_wait(
        mut self,
        provider: &str,
        f: impl Fn(&str, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.on_wait = Some((provider.to_string(), Box::new(f)));
        self
    }

    /// The windows in force.
    pub fn limits(&self) -> Vec<RateLimit> {
        self.lock().limits.clone()
    }

    /// Replace the windows (a reload changed `rate_limits`). The requests already sent
    /// and those in flight keep counting against the new windows, and a pause the CA
    /// asked for stays.
    pub fn set_limits(&self, limits: Vec<RateLimit>) {
        self.lock().limits = limits;
        self.finished.notify_waiters();
    }

    pub fn unlimited() -> Self {
        Self::new(Vec::new())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until one more request fits in every window, then record it as sent now.
    /// Returns how long the caller waited (for the `rate_limit_waits` metric).
    pub async fn acquire(&self) -> Duration {
        let (permit, waited) = self.permit().await;
        drop(permit);
        waited
    }

    /// Wait until one more request fits in every window; the request counts as in
    /// flight until the permit is dropped (after the answer came), then from that time.
    pub async fn permit(&self) -> (Permit<'_>, Duration) {
        let start = Instant::now();
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let wait_until = {
                let mut st = self.lock();
                let now = Instant::now();
                match Self::next_slot(&mut st, now) {
                    Slot::Free => {
                        let id = (!st.limits.is_empty()).then(|| {
                            let id = st.next_id;
                            st.next_id += 1;
                            st.sent.push_back(Entry { id, done: None });
                            id
                        });
                        drop(st);
                        let permit = Permit { limiter: self, id };
                        let waited = now - start;
                        if let Some((name, f)) = &self.on_wait
                            && !waited.is_zero()
                        {
                            f(name, waited);
                        }
                        return (permit, waited);
                    }
                    Slot::At(at) => Some(at),
                    Slot::AfterAnswer => None,
                }
            };
            match wait_until {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut finished => {}
                    }
                }
                None => finished.await,
            }
        }
    }

    fn finish(&self, id: u64) {
        let mut st = self.lock();
        let now = Instant::now();
        if let Some(e) = st.sent.iter_mut().find(|e| e.id == id) {
            e.done = Some(now);
        }
        drop(st);
        self.finished.notify_waiters();
    }

    /// When the next request may go.
    fn next_slot(st: &mut State, now: Instant) -> Slot {
        if let Some(p) = st.paused_until {
            if p > now {
                return Slot::At(p);
            }
            st.paused_until = None;
        }
        let Some(longest) = st.limits.iter().map(|l| l.window + margin(l.window)).max() else {
            return Slot::Free;
        };
        let keep = longest.max(HISTORY);
        st.sent
            .retain(|e| e.done.is_none_or(|t| now.duration_since(t) <= keep));
        while st.sent.len() > HISTORY_MAX {
            match st.sent.iter().position(|e| e.done.is_some()) {
                Some(i) => {
                    st.sent.remove(i);
                }
                None => break,
            }
        }
        let mut earliest = Slot::Free;
        let State { limits, sent, .. } = st;
        for l in limits.iter() {
            let span = l.window + margin(l.window);
            let n = l.requests as usize;
            // Times at which the requests in this window leave it; in flight: never yet.
            let mut leaving: Vec<Instant> = Vec::new();
            let mut in_flight = 0usize;
            for e in sent.iter() {
                match e.done {
                    None => in_flight += 1,
                    Some(t) if now.duration_since(t) < span => leaving.push(t + span),
                    Some(_) => {}
                }
            }
            let count = in_flight + leaving.len();
            if count < n {
                continue;
            }
            // count - n + 1 of them must leave first; in-flight ones leave only after
            // their answer.
            let must_leave = count - n + 1;
            let slot = if must_leave > leaving.len() {
                Slot::AfterAnswer
            } else {
                leaving.sort_unstable();
                Slot::At(leaving[must_leave - 1])
            };
            earliest = earliest.max(slot);
        }
        earliest
    }

    /// The CA said slow down: hold every request until `after` has passed.
    pub fn pause(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut st = self.lock();
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
    }
}

/// The limiters of every provider, by provider name. Kept across configuration reloads
/// (SIGHUP): a provider whose `rate_limits` did not change keeps its limiter as it is; one
/// whose limits changed keeps it with the new windows, so the requests of the last window
/// (and those still in flight from steps running on the old configuration) count against
/// the new ones. Without this a reload would restart every window and let old and new
/// steps each send a full window's worth.
#[derive(Debug, Default)]
pub struct Limiters {
    by_name: Mutex<HashMap<String, Arc<Limiter>>>,
}

impl Limiters {
    pub fn new() -> Self {
        Self::default()
    }

    /// The limiter of provider `name` with `limits` in force; `make` builds it the first
    /// time (e.g. to attach the wait hook).
    pub fn get(
        &self,
        name: &str,
        limits: Vec<RateLimit>,
        make: impl FnOnce(Vec<RateLimit>) -> Limiter,
    ) -> Arc<Limiter> {
        let mut map = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(name) {
            if l.limits() != limits {
                l.set_limits(limits);
            }
            return l.clone();
        }
        let l = Arc::new(make(limits));
        map.insert(name.to_string(), l.clone());
        l
    }

    /// Forget providers no longer configured.
    pub fn retain(&self, names: &[&str]) {
        let mut map = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| names.contains(&k.as_str()));
    }
}

/// The outcome of one look at the windows, ordered from soonest to latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Free,
    At(Instant),
    /// Blocked by requests still in flight: wait for an answer.
    AfterAnswer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits_and_explains_errors() {
        assert_eq!(
            "100/5s".parse::<RateLimit>().unwrap(),
            RateLimit {
                requests: 100,
                window: Duration::from_secs(5)
            }
        );
        assert!("100".parse::<RateLimit>().unwrap_err().contains("100/5s"));
        assert!(
            "x/5s"
                .parse::<RateLimit>()
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            "5/soon"
                .parse::<RateLimit>()
                .unwrap_err()
                .contains("duration")
        );
        assert!("0/5s".parse::<RateLimit>().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn never_exceeds_any_window() {
        let l = Limiter::new(vec!["3/1s".parse().unwrap(), "5/10s".parse().unwrap()]);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..7 {
            l.acquire().await;
            at.push(Instant::now() - start);
        }
        // First three at once, the next two after the 1 s window, the rest after 10 s.
        assert!(at[2] < Duration::from_millis(1));
        assert!(at[3] >= Duration::from_secs(1) && at[4] < Duration::from_secs(2));
        assert!(at[5] >= Duration::from_secs(10));
        for w in at.windows(4) {
            assert!(
                w[3] - w[0] >= Duration::from_secs(1),
                "4 requests within 1s: {at:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counts_from_its_answer() {
        // 2 per 1 s (margin 50 ms). Two requests in flight fill the window until one is
        // answered; then the window runs from the answer, not from when it was sent.
        let l = Limiter::new(vec!["2/1s".parse().unwrap()]);
        let start = Instant::now();
        let (a, _) = l.permit().await;
        let (b, _) = l.permit().await;
        let third = async {
            l.acquire().await;
            Instant::now() - start
        };
        let answer_a = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(a);
        };
        let (waited, ()) = tokio::join!(third, answer_a);
        assert_eq!(
            waited,
            Duration::from_millis(6050),
            "5 s in flight + 1 s + margin"
        );
        drop(b);
    }

    #[test]
    fn margin_scales_with_short_windows() {
        assert_eq!(
            margin(Duration::from_millis(250)),
            Duration::from_micros(12_500)
        );
        assert_eq!(margin(Duration::from_secs(15)), Duration::from_millis(150));
        assert_eq!(margin(Duration::from_secs(300)), Duration::from_millis(150));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_requests() {
        let l = Limiter::unlimited();
        l.pause(Duration::from_secs(30));
        let start = Instant::now();
        l.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn new_limits_count_the_requests_already_sent() {
        // 2 per second in force, 2 sent; a reload raises it to 3 per 10 s: one more may go
        // now, the next only when the first two leave the 10 s window.
        let l = Limiter::new(vec!["2/1s".parse().unwrap()]);
        let start = Instant::now();
        l.acquire().await;
        l.acquire().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        l.set_limits(vec!["3/10s".parse().unwrap()]);
        assert!(l.acquire().await.is_zero());
        l.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_millis(10_150));
    }

    #[test]
    fn limiters_are_kept_by_provider_name() {
        let all = Limiters::new();
        let a = all.get("dc", vec!["2/1s".parse().unwrap()], Limiter::new);
        let same = all.get("dc", vec!["2/1s".parse().unwrap()], Limiter::new);
        assert!(Arc::ptr_eq(&a, &same));
        let changed = all.get("dc", vec!["5/1s".parse().unwrap()], Limiter::new);
        assert!(Arc::ptr_eq(&a, &changed), "changed limits keep the limiter");
        assert_eq!(a.limits(), vec!["5/1s".parse().unwrap()]);
        let other = all.get("sec", vec!["2/1s".parse().unwrap()], Limiter::new);
        assert!(!Arc::ptr_eq(&a, &other));
        all.retain(&["sec"]);
        let fresh = all.get("dc", vec!["5/1s".parse().unwrap()], Limiter::new);
        assert!(
            !Arc::ptr_eq(&a, &fresh),
            "a removed provider's limiter is dropped"
        );
    }
}
