//! Every retry and backoff rule of an order's life, and nothing else: how long after a
//! failed step (`error_policy`, and `after_step_error` with the "a check error is never
//! terminal" rule), how often a token is checked while it propagates (`backoff_poll`), how
//! a damaged row or cleanup entry and a failed cleanup back off, when a failed
//! certificate is ordered again. The CA rate limits are `ca/limit.rs`, not rules here.

use std::time::Duration;

use rand::RngExt;

use crate::model::ErrorKind;

/// First retry delay and cap for transient errors.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
pub const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// Wait after "rate limited" without a hint from the CA.
pub const RATE_LIMIT_DEFAULT: Duration = Duration::from_secs(60);

/// After an order failed, wait this long before placing a new one for the certificate
/// on our own (an operator can do it at once with `dcvd orders retry`).
pub const FAILED_ORDER_RETRY: Duration = Duration::from_secs(6 * 3600);

/// How often a damaged cleanup journal entry is read again (it may have been repaired).
pub const DAMAGED_JOURNAL_RETRY: Duration = Duration::from_secs(3600);

/// How often an order (or a token to remove) whose certificate, provider or publisher
/// is no longer configured is looked at again.
pub const UNCONFIGURED_RETRY: Duration = Duration::from_secs(3600);

/// `d` ± 20 %, so orders that failed together do not retry together.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// Turn an error's kind into a delay, or `None` when the order must fail.
/// `attempts` counts consecutive failures of this order, starting at 1.
pub fn error_policy(
    kind: ErrorKind,
    attempts: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    match kind {
        ErrorKind::Permanent => None,
        ErrorKind::RateLimited => {
            Some(retry_after.unwrap_or(RATE_LIMIT_DEFAULT) + jitter(Duration::from_secs(1)))
        }
        ErrorKind::Transient => Some(transient(attempts)),
    }
}

/// The capped, jittered exponential backoff of a transient error: 5 s doubling up to
/// `BACKOFF_CAP`.
fn transient(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    let raw = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    jitter(raw).min(BACKOFF_CAP)
}

/// Which part of a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// The step's outside action (a CA call, publishing, the store).
    Step,
    /// Our own propagation check of authorization `authz` could not be run (e.g. every
    /// nameserver unreachable). It says nothing about the CA order, which is already bought.
    Check { authz: i64 },
}

/// The delay after a failed step, or `None` when the order must fail.
///
/// A check error is never terminal: whatever its kind it backs off like a transient
/// error (capped, and never sooner than the check's own `poll` interval), or as long
/// as a rate limit asks. Failing the order would throw away a purchase because our side
/// could not look.
pub fn after_step_error(
    failed: Failed,
    kind: ErrorKind,
    attempts: u32,
    retry_after: Option<Duration>,
    poll: Duration,
) -> Option<Duration> {
    match (failed, kind) {
        (Failed::Step, kind) => error_policy(kind, attempts, retry_after),
        (Failed::Check { .. }, ErrorKind::RateLimited) => {
            error_policy(ErrorKind::RateLimited, attempts, retry_after)
        }
        (Failed::Check { .. }, ErrorKind::Permanent | ErrorKind::Transient) => {
            Some(transient(attempts).max(poll.min(BACKOFF_CAP)))
        }
    }
}

/// When an order whose rows (or key and CSR) cannot be used is looked at again, after
/// `attempts` consecutive looks (starting at 1): as a transient error.
pub fn quarantine_delay(attempts: u32) -> Duration {
    transient(attempts)
}

/// When a token whose removal failed `attempts` times (starting at 1) is tried again.
pub fn cleanup_delay(attempts: u32) -> Duration {
    transient(attempts)
}

/// How often a token is checked while it propagates, `elapsed` after the method's
/// first attempt: every `poll` for the first five minutes, then gently less often.
pub fn backoff_poll(poll: Duration, elapsed: Duration) -> Duration {
    let poll = poll.max(Duration::from_millis(100));
    if elapsed < Duration::from_secs(300) {
        poll
    } else if elapsed < Duration::from_secs(1800) {
        poll.max(Duration::from_secs(10))
    } else {
        poll.max(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, lo: u64, hi: u64) -> bool {
        d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi)
    }

    #[test]
    fn error_policy_by_kind() {
        assert_eq!(error_policy(ErrorKind::Permanent, 1, None), None);
        let first = error_policy(ErrorKind::Transient, 1, None).unwrap();
        assert!(within(first, 4, 6), "{first:?}");
        let later = error_policy(ErrorKind::Transient, 4, None).unwrap();
        assert!(within(later, 32, 48), "{later:?}");
        // Capped however many failures came before.
        for n in [20, 100, u32::MAX] {
            assert!(error_policy(ErrorKind::Transient, n, None).unwrap() <= BACKOFF_CAP);
        }
        let told = error_policy(ErrorKind::RateLimited, 1, Some(Duration::from_secs(30))).unwrap();
        assert!(
            told >= Duration::from_secs(30) && told < Duration::from_secs(32),
            "{told:?}"
        );
        let untold = error_policy(ErrorKind::RateLimited, 1, None).unwrap();
        assert!(untold >= RATE_LIMIT_DEFAULT);
    }

    const CHECK: Failed = Failed::Check { authz: 1 };

    #[test]
    fn a_check_error_is_never_terminal() {
        use ErrorKind::*;
        let poll = Duration::from_secs(2);
        // (what failed, kind, attempts, retry-after, expected delay range in s; None = fail)
        type Row = (Failed, ErrorKind, u32, Option<u64>, Option<(u64, u64)>);
        let table: &[Row] = &[
            (Failed::Step, Permanent, 1, None, None),
            (Failed::Step, Transient, 1, None, Some((4, 6))),
            (CHECK, Permanent, 1, None, Some((4, 6))),
            (CHECK, Permanent, 4, None, Some((32, 48))),
            (CHECK, Permanent, 1_000, None, Some((0, 15 * 60))),
            (CHECK, Transient, 1, None, Some((4, 6))),
            (CHECK, Transient, 2, None, Some((8, 12))),
            (CHECK, Transient, u32::MAX, None, Some((0, 15 * 60))),
            (CHECK, RateLimited, 1, Some(30), Some((30, 32))),
            (CHECK, RateLimited, 1, None, Some((60, 62))),
        ];
        for &(failed, kind, attempts, after, want) in table {
            let got =
                after_step_error(failed, kind, attempts, after.map(Duration::from_secs), poll);
            match (got, want) {
                (None, None) => {}
                (Some(d), Some((lo, hi))) => assert!(
                    within(d, lo, hi),
                    "{failed:?} {kind:?} attempt {attempts}: {d:?} not in {lo}..={hi} s"
                ),
                _ => panic!("{failed:?} {kind:?} attempt {attempts}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_check_error_waits_at_least_the_poll_interval_and_at_most_the_cap() {
        let slow = Duration::from_secs(120);
        let d = after_step_error(CHECK, ErrorKind::Transient, 1, None, slow).unwrap();
        assert_eq!(d, slow, "never checks more often than dns.poll_interval");
        let absurd = Duration::from_secs(24 * 3600);
        let d = after_step_error(CHECK, ErrorKind::Permanent, 1, None, absurd).unwrap();
        assert_eq!(d, BACKOFF_CAP);
    }

    #[test]
    fn polls_less_often_as_time_goes_by() {
        let p = Duration::from_secs(2);
        assert_eq!(backoff_poll(p, Duration::from_secs(10)), p);
        assert_eq!(
            backoff_poll(p, Duration::from_secs(600)),
            Duration::from_secs(10)
        );
        assert_eq!(
            backoff_poll(p, Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            backoff_poll(Duration::ZERO, Duration::ZERO),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn damaged_rows_and_cleanups_back_off_capped() {
        assert!(within(quarantine_delay(1), 4, 6));
        assert!(within(cleanup_delay(3), 16, 24));
        for n in [30, u32::MAX] {
            assert!(quarantine_delay(n) <= BACKOFF_CAP);
            assert!(cleanup_delay(n) <= BACKOFF_CAP);
        }
    }
}
