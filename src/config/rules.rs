//! Small checks shared by the validators of the daemon, providers, publishers and
//! certificates: durations, cron expressions, which publisher can do which method.

use std::str::FromStr;
use std::time::Duration;

use super::problem::Problems;
use super::{ProviderConfig, PublisherConfig};
use crate::model::{DcvMethod, ProviderKind};

pub(super) fn nonzero(key: &str, d: Duration, p: &mut Problems) {
    if d.is_zero() {
        p.push(key, "is zero; write a duration with a unit, e.g. 90s or 2h");
    }
}

thread_local! {
    /// Verdicts per distinct cron expression during one `validate` (cleared at its start):
    /// thousands of certificates usually share one `resend_schedule`, and parsing it is
    /// the costliest check per certificate.
    static CRON_VERDICTS: std::cell::RefCell<std::collections::HashMap<String, Result<(), String>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Forget the verdicts of the previous `validate`.
pub(super) fn clear_cron_cache() {
    CRON_VERDICTS.with(|c| c.borrow_mut().clear());
}

/// A cron expression as the `cron` crate takes it: 6 fields with seconds first.
pub(super) fn check_cron(expr: &str) -> Result<(), String> {
    if let Some(v) = CRON_VERDICTS.with(|c| c.borrow().get(expr).cloned()) {
        return v;
    }
    let verdict = check_cron_uncached(expr);
    CRON_VERDICTS.with(|c| c.borrow_mut().insert(expr.to_string(), verdict.clone()));
    verdict
}

fn check_cron_uncached(expr: &str) -> Result<(), String> {
    let schedule = match cron::Schedule::from_str(expr) {
        Ok(s) => s,
        Err(e) => {
            let fields = expr.split_whitespace().count();
            let with_seconds = format!("0 {}", expr.trim());
            if fields == 5 && cron::Schedule::from_str(&with_seconds).is_ok() {
                return Err(format!(
                    "`{expr}` has 5 fields, but dcvd's cron needs 6, starting with seconds; write \"{with_seconds}\""
                ));
            }
            return Err(format!(
                "`{expr}` is not a cron expression ({e}); write 6 fields, seconds first \
                 (sec min hour day month weekday, weekdays 1-7 = Sun-Sat or Mon-Fri), e.g. \"0 0 9 * * *\""
            ));
        }
    };
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!(
            "`{expr}` never fires; pick a date that exists, e.g. \"0 0 9 * * *\""
        ));
    }
    Ok(())
}

/// Which publisher kinds can put which tokens in place.
pub(super) fn can_publish(publisher: &PublisherConfig, method: DcvMethod) -> bool {
    match publisher {
        PublisherConfig::Rfc2136(_) => method.is_dns(),
        PublisherConfig::Webroot(_) => method.is_http(),
        PublisherConfig::Exec(_) | PublisherConfig::Manual(_) => true,
    }
}

pub(super) fn provider_kind(p: &ProviderConfig) -> ProviderKind {
    match p {
        ProviderConfig::Digicert(_) => ProviderKind::Digicert,
        ProviderConfig::Sectigo(_) => ProviderKind::Sectigo,
        ProviderConfig::Acme(_) => ProviderKind::Acme,
    }
}

pub(super) fn publisher_kind(p: &PublisherConfig) -> &'static str {
    match p {
        PublisherConfig::Rfc2136(_) => "rfc2136",
        PublisherConfig::Exec(_) => "exec",
        PublisherConfig::Webroot(_) => "webroot",
        PublisherConfig::Manual(_) => "manual",
    }
}
