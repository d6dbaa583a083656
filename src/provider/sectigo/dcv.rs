//! Sectigo DCV calls: local CSR-hash tokens, `!AutoUpdateDCV` (method change and
//! re-check), `!ResendDCVEmail`, and approver lists under the 24-hour rule.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{OrderData, SectigoProvider, wire};
use crate::csr::hash::{cname_record, csr_hashes, http_file};
use crate::model::{Challenge, ChallengeKind, DcvMethod, DomainName};
use crate::provider::{
    CaOrderState, CaStatus, ErrorKind, NameDcv, OrderRef, ProviderError, Tokens,
};

/// Sectigo accepts a `dcvEmailAddress` only if a list fetched this recently held it.
const APPROVER_LIST_TTL: Duration = Duration::from_secs(24 * 3600);

const UPDATE_DCV: &str = "!AutoUpdateDCV";

/// The uniqueValue we send for an order: `dcvd` + 16 hex of SHA-256(reference).
/// Deterministic, so crash recovery can recognise the order; alphanumeric, 20 chars.
pub fn unique_value_for(reference: &str) -> String {
    let h = hex::encode(Sha256::digest(reference.as_bytes()));
    format!("dcvd{}", &h[..16])
}

impl SectigoProvider {
    /// Tokens for `names` from the CSR hashes and the order's uniqueValue. No call.
    pub(super) fn compute_challenges(
        &self,
        data: &OrderData,
        csr_der: &[u8],
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Vec<(DomainName, Challenge)>, ProviderError> {
        let h = csr_hashes(csr_der);
        let uv = Some(data.unique_value.as_str());
        let mut out = Vec::new();
        for (name, method) in names {
            let challenge = match method {
                DcvMethod::Email => continue,
                DcvMethod::DnsTxt => {
                    return Err(self.permanent(
                        "challenges",
                        format!("{name}: Sectigo has no dns-txt method; use dns-cname, http, https or email"),
                    ));
                }
                DcvMethod::DnsCname => {
                    let (owner, target) = cname_record(&h, name.base(), &data.dcv_suffix, uv);
                    Challenge {
                        kind: ChallengeKind::DnsCname,
                        name: owner,
                        path: None,
                        value: target,
                    }
                }
                DcvMethod::Http | DcvMethod::Https => {
                    let (path, body) = http_file(&h, &data.dcv_suffix, uv);
                    let kind = if *method == DcvMethod::Http {
                        ChallengeKind::Http
                    } else {
                        ChallengeKind::Https
                    };
                    Challenge {
                        kind,
                        name: name.base().to_string(),
                        path: Some(path),
                        value: body,
                    }
                }
            };
            out.push((name.clone(), challenge));
        }
        Ok(out)
    }

    /// `!AutoUpdateDCV` for `names` with one method each. Returns `Ok(false)` when
    /// Sectigo answers that the order is already issued (seed document).
    async fn auto_update_dcv(
        &self,
        data: &OrderData,
        names: &[(DomainName, DcvMethod, Option<String>)],
    ) -> Result<bool, ProviderError> {
        let mut wire_methods = Vec::new();
        for (name, method, email) in names {
            let m = wire::method_wire(*method).ok_or_else(|| {
                self.permanent(
                    UPDATE_DCV,
                    format!("{name}: Sectigo has no {method} method"),
                )
            })?;
            if let Some(addr) = email {
                self.ensure_approver(name, addr).await?;
            } else if *method == DcvMethod::Email {
                return Err(self.permanent(
                    UPDATE_DCV,
                    format!("{name}: method email needs an approver address; none is configured"),
                ));
            }
            wire_methods.push(m);
        }
        // Never `responseFormat` here: AutoUpdateDCV refuses it with -2.
        let mut params = vec![("orderNumber", data.order_number.clone())];
        let emails: Vec<&str> = names.iter().filter_map(|(_, _, e)| e.as_deref()).collect();
        if let [(name, _, email)] = names {
            params.push(("domainName", name.base().to_string()));
            params.push(("newMethod", wire_methods[0].to_string()));
            if let Some(e) = email {
                params.push(("newDCVEmailAddress", e.clone()));
            }
        } else {
            let list: Vec<&str> = names.iter().map(|(n, _, _)| n.base()).collect();
            params.push(("domainNames", list.join(" ")));
            params.push(("newMethods", wire_methods.join(",")));
            if !emails.is_empty() {
                params.push(("newDCVEmailAddresses", emails.join(" ")));
            }
        }
        match self.call(UPDATE_DCV, &params).await {
            Ok(_) => Ok(true),
            Err(e) if wire::is_issued_order_answer(&e) => {
                tracing::info!(provider = %self.name, order = %data.order_number,
                    "AutoUpdateDCV: Sectigo says the order is already issued");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn update_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        approver_emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        let mut data = OrderData::from_ref(&self.name, &order)?;
        let mut items = Vec::new();
        for n in names {
            let email = if method == DcvMethod::Email {
                approver_emails
                    .iter()
                    .find(|(a, _)| a == n)
                    .map(|(_, e)| e.clone())
            } else {
                None
            };
            items.push((n.clone(), method, email));
        }
        if !self.auto_update_dcv(&data, &items).await? {
            return Ok(Tokens::default());
        }
        for (n, m, e) in &items {
            data.methods.insert(n.to_string(), *m);
            match e {
                Some(e) => data.emails.insert(n.to_string(), e.clone()),
                None => data.emails.remove(n.as_str()),
            };
        }
        let pairs: Vec<(DomainName, DcvMethod)> =
            names.iter().map(|n| (n.clone(), method)).collect();
        Ok(Tokens {
            challenges: self.compute_challenges(&data, order.csr_der, &pairs)?,
            ca_data: Some(data.to_value()),
        })
    }

    /// Re-send each name's current method, which makes Sectigo check again.
    pub(super) async fn retrigger(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let mut items = Vec::new();
        for n in names {
            let method = data.methods.get(n.as_str()).copied().ok_or_else(|| {
                self.permanent(
                    UPDATE_DCV,
                    format!(
                        "{n} is not part of Sectigo order {} (no method stored)",
                        data.order_number
                    ),
                )
            })?;
            items.push((n.clone(), method, data.emails.get(n.as_str()).cloned()));
        }
        if !self.auto_update_dcv(&data, &items).await? {
            return Ok(CaStatus {
                order: CaOrderState::Issued,
                names: names.iter().map(|n| (n.clone(), NameDcv::Valid)).collect(),
                ca_data: None,
            });
        }
        Ok(CaStatus {
            order: CaOrderState::InProgress,
            names: names
                .iter()
                .map(|n| (n.clone(), NameDcv::Pending))
                .collect(),
            ca_data: None,
        })
    }

    pub(super) async fn resend(
        &self,
        order: OrderRef<'_>,
        approver_emails: &[(DomainName, String)],
    ) -> Result<(), ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let mut sent: Vec<&str> = Vec::new();
        for (name, addr) in approver_emails {
            if sent.iter().any(|s| s.eq_ignore_ascii_case(addr)) {
                continue;
            }
            self.ensure_approver(name, addr).await?;
            let params = [
                ("orderNumber", data.order_number.clone()),
                ("dcvEmailAddress", addr.clone()),
            ];
            self.call("!ResendDCVEmail", &params).await?;
            sent.push(addr);
        }
        if approver_emails.is_empty() {
            self.call(
                "!ResendDCVEmail",
                &[("orderNumber", data.order_number.clone())],
            )
            .await?;
        }
        Ok(())
    }

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
                 (fetched within 24 h); choose one of: {}",
                    list.join(", ")
                )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_value_is_deterministic_alphanumeric_20() {
        let a = unique_value_for("dcvd-0001");
        assert_eq!(a, unique_value_for("dcvd-0001"));
        assert_ne!(a, unique_value_for("dcvd-0002"));
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
