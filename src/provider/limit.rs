//! Client-side rate limiting per provider: sliding windows matching the CA's published
//! limits, plus a pause when the CA answers "rate limited" with a hint.
//!
//! A token bucket refilling at N/window still lets 2N requests through in one window
//! (full bucket plus refill), which a CA counting a rolling window answers with 429.
//! A sliding log of send times keeps every window at or under N, so dcvd never causes
//! a 429 on its own.

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// `N/duration`, e.g. `100/5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, w) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a rate limit; write it as requests/window, e.g. \"100/5s\""))?;
        let requests: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` in `{s}` is not a whole number of requests"))?;
        if requests == 0 {
            return Err(format!("`{s}` allows no requests at all; use a number above 0"));
        }
        let window = humantime::parse_duration(w.trim())
            .map_err(|e| format!("`{w}` in `{s}` is not a duration ({e}); write e.g. 5s or 5m"))?;
        if window.is_zero() {
            return Err(format!("`{s}` has a zero window"));
        }
        Ok(Self { requests, window })
    }
}

/// Requests may also be delayed this long past the window edge, to absorb the
/// difference between when we send and when the CA counts.
const MARGIN: Duration = Duration::from_millis(150);

#[derive(Debug)]
struct State {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// Shared by every task talking to one provider.
#[derive(Debug)]
pub struct Limiter {
    limits: Vec<RateLimit>,
    state: Mutex<State>,
}

impl Limiter {
    pub fn new(limits: Vec<RateLimit>) -> Self {
        let keep = limits.iter().map(|l| l.requests as usize).max().unwrap_or(0);
        Self {
            limits,
            state: Mutex::new(State {
                sent: VecDeque::with_capacity(keep),
                paused_until: None,
            }),
        }
    }

    pub fn unlimited() -> Self {
        Self::new(Vec::new())
    }

    /// Wait until one more request fits in every window, then record it. Returns how
    /// long the caller waited (for the `rate_limit_waits` metric).
    pub async fn acquire(&self) -> Duration {
        let start = Instant::now();
        loop {
            let wait_until = {
                let mut st = self.state.lock().await;
                let now = Instant::now();
                match self.next_slot(&mut st, now) {
                    None => {
                        if !self.limits.is_empty() {
                            st.sent.push_back(now);
                        }
                        return now - start;
                    }
                    Some(at) => at,
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// The earliest time a request may go, or `None` if it may go now.
    fn next_slot(&self, st: &mut State, now: Instant) -> Option<Instant> {
        if let Some(p) = st.paused_until {
            if p > now {
                return Some(p);
            }
            st.paused_until = None;
        }
        let longest = self.limits.iter().map(|l| l.window).max()?;
        while st
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) > longest + MARGIN)
        {
            st.sent.pop_front();
        }
        let mut earliest: Option<Instant> = None;
        for l in &self.limits {
            let n = l.requests as usize;
            let in_window = st
                .sent
                .iter()
                .rev()
                .take_while(|t| now.duration_since(**t) < l.window + MARGIN)
                .count();
            if in_window >= n {
                // The n-th most recent send must leave the window first.
                let oldest_blocking = st.sent[st.sent.len() - n];
                let at = oldest_blocking + l.window + MARGIN;
                earliest = Some(earliest.map_or(at, |e| e.max(at)));
            }
        }
        earliest
    }

    /// The CA said slow down: hold every request until `after` has passed.
    pub async fn pause(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut st = self.state.lock().await;
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits_and_explains_errors() {
        assert_eq!(
            "100/5s".parse::<RateLimit>().unwrap(),
            RateLimit { requests: 100, window: Duration::from_secs(5) }
        );
        assert!("100".parse::<RateLimit>().unwrap_err().contains("100/5s"));
        assert!("x/5s".parse::<RateLimit>().unwrap_err().contains("whole number"));
        assert!("5/soon".parse::<RateLimit>().unwrap_err().contains("duration"));
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
            assert!(w[3] - w[0] >= Duration::from_secs(1), "4 requests within 1s: {at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_requests() {
        let l = Limiter::unlimited();
        l.pause(Duration::from_secs(30)).await;
        let start = Instant::now();
        l.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(30));
    }
}
