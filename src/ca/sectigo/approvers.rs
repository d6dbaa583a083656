//! Sectigo approver lists: `!GetDCVEmailAddressList` and the 24-hour rule (a
//! `dcvEmailAddress` must come from a list fetched within the last 24 hours, ref §1.1).

use std::time::Duration;

use super::SectigoProvider;
use crate::ca::{ErrorKind, ProviderError};
use crate::model::DomainName;

/// Sectigo accepts a `dcvEmailAddress` only if a list fetched this recently held it.
const APPROVER_LIST_TTL: Duration = Duration::from_secs(24 * 3600);

impl SectigoProvider {
    /// Make every cached approver list look `by` older (tests of the 24-hour rule).
    #[doc(hidden)]
    pub fn backdate_approver_lists(&self, by: Duration) {
        if let Ok(mut cache) = self.approvers.lock() {
            let now = tokio::time::Instant::now();
            for (until, _) in cache.values_mut() {
                *until = until.checked_sub(by).unwrap_or(now);
            }
        }
    }

    /// `!GetDCVEmailAddressList` (text format); refreshes the 24-hour cache.
    pub(super) async fn fetch_approvers(&self, domain: &str) -> Result<Vec<String>, ProviderError> {
        let reply = self
            .call(
                "!GetDCVEmailAddressList",
                &[("domainName", domain.to_string())],
            )
            .await?;
        let list: Vec<String> = reply
            .pairs
            .iter()
            .filter(|(k, v)| k.to_ascii_lowercase().ends_with("_email") && v.contains('@'))
            .map(|(_, v)| v.clone())
            .collect();
        if let Ok(mut cache) = self.approvers.lock() {
            cache.insert(
                domain.to_ascii_lowercase(),
                (
                    tokio::time::Instant::now() + APPROVER_LIST_TTL,
                    list.clone(),
                ),
            );
        }
        Ok(list)
    }

    /// Refuse an approver that no list from the last 24 h holds (refreshing the list once).
    pub(super) async fn ensure_approver(
        &self,
        name: &DomainName,
        addr: &str,
    ) -> Result<(), ProviderError> {
        let domain = name.base().to_ascii_lowercase();
        let cached = self.approvers.lock().ok().and_then(|c| {
            c.get(&domain)
                .filter(|(until, _)| tokio::time::Instant::now() < *until)
                .map(|(_, l)| l.clone())
        });
        let list = match cached {
            Some(l) => l,
            None => self.fetch_approvers(&domain).await?,
        };
        if list.iter().any(|a| a.eq_ignore_ascii_case(addr)) {
            return Ok(());
        }
        Err(
            ProviderError::new(&self.name, "!GetDCVEmailAddressList", ErrorKind::Permanent)
                .with_detail(format!(
                    "approver {addr} for {name} is not in Sectigo's address list for {domain} \
                 (fetched within 24 h); choose one of: {}. Contacts published in a \
                 _validation-contactemail TXT record are listed only in the JSON answer, \
                 which dcvd does not read",
                    list.join(", ")
                )),
        )
    }
}
