//! A rate limit as written in the config (`100/5s`) and enforced by the CA clients' limiter.

use std::str::FromStr;
use std::time::Duration;

/// `N/duration`, e.g. `100/5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, w) = s.split_once('/').ok_or_else(|| {
            format!("`{s}` is not a rate limit; write it as requests/window, e.g. \"100/5s\"")
        })?;
        let requests: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` in `{s}` is not a whole number of requests"))?;
        if requests == 0 {
            return Err(format!(
                "`{s}` allows no requests at all; use a number above 0"
            ));
        }
        let window = humantime::parse_duration(w.trim())
            .map_err(|e| format!("`{w}` in `{s}` is not a duration ({e}); write e.g. 5s or 5m"))?;
        if window.is_zero() {
            return Err(format!("`{s}` has a zero window"));
        }
        Ok(Self { requests, window })
    }
}
