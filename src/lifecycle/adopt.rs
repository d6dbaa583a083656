//! Adoption: before a certificate's first order, what its `output_dir` already holds
//! decides whether dcvd buys one at all (an order is a purchase; a fleet moving to dcvd
//! has most of its certificates in place).

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::model::{AdoptMode, DomainName};
use crate::pki::adopt::{Existing, Found, examine};
use crate::store::{Adoption, Store, StoreError};

/// What the first start does for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstStart {
    /// Record the certificate found in `output_dir` as issued (source `adopted`); it is
    /// renewed at `renew_before` like any other.
    Adopt(Found),
    /// Order a new certificate. `found` says what was there and why it is replaced.
    Order { found: Option<String> },
    /// Order nothing until the operator looks: the text says what is wrong and how to
    /// go on.
    Refuse(String),
}

impl FirstStart {
    /// `adopt`, `order` or `refuse`.
    pub fn action(&self) -> &'static str {
        match self {
            FirstStart::Adopt(_) => "adopt",
            FirstStart::Order { .. } => "order",
            FirstStart::Refuse(_) => "refuse",
        }
    }

    /// What was found and why this action.
    pub fn detail(&self) -> String {
        match self {
            FirstStart::Adopt(f) => format!(
                "serial {} from {}, valid until {}",
                f.serial_hex,
                f.issuer,
                f.not_after.format("%Y-%m-%d %H:%M UTC")
            ),
            FirstStart::Order { found: None } => "nothing installed yet".into(),
            FirstStart::Order { found: Some(why) } | FirstStart::Refuse(why) => why.clone(),
        }
    }

    /// One line for the logs: the action and the detail.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.action(), self.detail())
    }
}

/// The rule, pure: `existing` is what [`examine`] found in `output_dir`.
pub fn decide(mode: AdoptMode, existing: Existing, certificate: &str) -> FirstStart {
    match (mode, existing) {
        (_, Existing::Nothing) => FirstStart::Order { found: None },
        (AdoptMode::Never, Existing::Found(_)) => FirstStart::Order {
            found: Some("a valid certificate is installed, but adopt = \"never\"".into()),
        },
        (AdoptMode::Never, Existing::Unusable(u)) => FirstStart::Order {
            found: Some(format!("{u} (adopt = \"never\")")),
        },
        (AdoptMode::IfValid, Existing::Found(f)) => FirstStart::Adopt(f),
        (AdoptMode::IfValid, Existing::Unusable(u)) if u.replaceable() => FirstStart::Order {
            found: Some(format!("{u}: a new certificate replaces it")),
        },
        (AdoptMode::IfValid, Existing::Unusable(u)) => FirstStart::Refuse(format!(
            "{u}; dcvd orders nothing for certificate {certificate}, because a new one would \
             overwrite these files on a guess and is a purchase: fix or remove the files, or \
             set adopt = \"never\" for it to order a new one"
        )),
    }
}

/// What a certificate to start is: its config, as far as adoption needs it.
pub struct Candidate<'a> {
    pub certificate: &'a str,
    pub provider: &'a str,
    pub names: &'a [DomainName],
    pub output_dir: &'a Path,
    pub mode: AdoptMode,
}

/// Look at `output_dir` (off the async threads) and decide.
pub async fn look(c: &Candidate<'_>, now: DateTime<Utc>) -> FirstStart {
    let dir = c.output_dir.to_path_buf();
    let names = c.names.to_vec();
    let existing = tokio::task::spawn_blocking(move || examine(&dir, &names, now))
        .await
        .unwrap_or_else(|e| {
            Existing::Unusable(crate::pki::adopt::Unusable::Unreadable {
                path: c.output_dir.to_path_buf(),
                reason: format!("reading the directory failed: {e}"),
            })
        });
    decide(c.mode, existing, c.certificate)
}

/// Decide, and record an adoption as the certificate's issued one. The caller holds the
/// certificate for a refusal ([`hold`]) and places the order for [`FirstStart::Order`].
pub async fn first_start(
    store: &Store,
    c: &Candidate<'_>,
    now: DateTime<Utc>,
) -> Result<FirstStart, StoreError> {
    let decision = look(c, now).await;
    match &decision {
        FirstStart::Adopt(f) => {
            let recorded = store
                .record_adopted(
                    &Adoption {
                        certificate: c.certificate.to_string(),
                        provider: c.provider.to_string(),
                        names: c.names.to_vec(),
                        not_after: f.not_after,
                        serial: f.serial_hex.clone(),
                        issuer: f.issuer.clone(),
                    },
                    now,
                )
                .await?;
            if recorded {
                tracing::info!(
                    certificate = c.certificate,
                    dir = %c.output_dir.display(),
                    "adopted the installed certificate instead of ordering one: {}; it is \
                     renewed at renew_before",
                    decision.describe()
                );
            }
        }
        FirstStart::Refuse(_) => {}
        FirstStart::Order { found } => {
            if let Some(why) = found {
                tracing::debug!(certificate = c.certificate, "first order: {why}");
            }
        }
    }
    Ok(decision)
}

/// Hold the certificate (`Some`: no order until the cause is gone, shown by `status`) or
/// release it (`None`). Logs only when that changes, so a pass over 10,000 certificates
/// every `renewal_check` does not repeat itself.
pub async fn hold(
    store: &Store,
    c: &Candidate<'_>,
    why: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if store
        .set_hold(c.certificate, c.provider, c.names, why, now)
        .await?
    {
        match why {
            Some(why) => tracing::warn!(
                certificate = c.certificate,
                "no order for this certificate until the operator acts: {why}"
            ),
            None => tracing::info!(
                certificate = c.certificate,
                "the certificate is no longer held; it is ordered as usual"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::pki::adopt::Unusable;

    fn found() -> Found {
        Found {
            not_before: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            not_after: DateTime::from_timestamp(1_810_000_000, 0).unwrap(),
            serial_hex: "08".into(),
            issuer: "CN=Test CA".into(),
        }
    }

    #[test]
    fn the_first_start_rule() {
        let p = || PathBuf::from("/var/lib/dcvd/certs/www/cert.pem");
        let expired = Unusable::Expired {
            path: p(),
            not_after: found().not_after,
        };
        let mismatch = Unusable::KeyMismatch {
            cert: p(),
            key: PathBuf::from("/var/lib/dcvd/certs/www/privkey.pem"),
        };
        use AdoptMode::*;
        let adopt = |f: &FirstStart| matches!(f, FirstStart::Adopt(_));
        let order = |f: &FirstStart| matches!(f, FirstStart::Order { .. });
        let refuse = |f: &FirstStart| matches!(f, FirstStart::Refuse(_));
        type Check = fn(&FirstStart) -> bool;
        let table: [(AdoptMode, Existing, Check); 7] = [
            (IfValid, Existing::Nothing, order),
            (Never, Existing::Nothing, order),
            (IfValid, Existing::Found(found()), adopt),
            (Never, Existing::Found(found()), order),
            (IfValid, Existing::Unusable(expired.clone()), order),
            (IfValid, Existing::Unusable(mismatch.clone()), refuse),
            (Never, Existing::Unusable(mismatch.clone()), order),
        ];
        for (mode, existing, want) in table {
            let got = decide(mode, existing.clone(), "www");
            assert!(want(&got), "{mode} {existing:?}: {got:?}");
        }
        let FirstStart::Refuse(why) = decide(IfValid, Existing::Unusable(mismatch), "www") else {
            panic!()
        };
        for part in ["privkey.pem", "certificate www", "adopt = \"never\""] {
            assert!(why.contains(part), "{part}: {why}");
        }
        assert_eq!(
            decide(IfValid, Existing::Unusable(expired), "www").describe(),
            format!(
                "order: {} expired on {}: a new certificate replaces it",
                p().display(),
                found().not_after.format("%Y-%m-%d %H:%M UTC")
            )
        );
    }
}
