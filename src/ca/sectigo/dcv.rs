//! Sectigo DCV calls: local CSR-hash tokens, `!AutoUpdateDCV` (method change, split to
//! the documented lengths), `!ResendDCVEmail` (re-check and e-mail resend).

use sha2::{Digest, Sha256};

use super::hashes::{cname_record, csr_hashes, http_file};
use super::{OrderData, SectigoProvider, wire};
use crate::ca::{CaOrderState, CaStatus, NameDcv, OrderRef, ProviderError, Tokens};
use crate::model::{Challenge, ChallengeKind, DcvMethod, DomainName};

const UPDATE_DCV: &str = "!AutoUpdateDCV";
const RESEND: &str = "!ResendDCVEmail";

/// Documented maximum lengths of `!AutoUpdateDCV` arguments (seed page).
const MAX_DOMAIN_NAMES: usize = 255;
const MAX_NEW_METHODS: usize = 32;
const MAX_NEW_EMAILS: usize = 255;

/// How an `!AutoUpdateDCV` went.
enum Answered {
    Done,
    /// Refused with "'orderNumber' invalid", and CollectSSL says why (issued, or ended).
    Ended(CaOrderState),
}

fn describe(state: &CaOrderState) -> String {
    match state {
        CaOrderState::Failed(w) => w.clone(),
        s => format!("{s:?}"),
    }
}

type Item<'a> = (&'a str, &'a str, Option<&'a str>);

/// Split `!AutoUpdateDCV` items into calls that respect the documented lengths.
fn batches<'a, 'b>(items: &'b [Item<'a>]) -> Result<Vec<&'b [Item<'a>]>, String> {
    let joined = |v: &[Item<'a>]| {
        let names: usize =
            v.iter().map(|(n, _, _)| n.len()).sum::<usize>() + v.len().saturating_sub(1);
        let methods: usize =
            v.iter().map(|(_, m, _)| m.len()).sum::<usize>() + v.len().saturating_sub(1);
        let emails: Vec<usize> = v.iter().filter_map(|(_, _, e)| e.map(str::len)).collect();
        let emails = emails.iter().sum::<usize>() + emails.len().saturating_sub(1);
        names <= MAX_DOMAIN_NAMES && methods <= MAX_NEW_METHODS && emails <= MAX_NEW_EMAILS
    };
    let mut out = Vec::new();
    let mut start = 0;
    for end in 1..=items.len() {
        if !joined(&items[start..end]) {
            if end - start == 1 {
                let (n, _, e) = items[start];
                return Err(format!(
                    "{n}: the name or its approver {} is longer than Sectigo's !AutoUpdateDCV accepts (255 characters)",
                    e.unwrap_or("-")
                ));
            }
            out.push(&items[start..end - 1]);
            start = end - 1;
        }
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    Ok(out)
}

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

    /// `!AutoUpdateDCV` for `names` with one method each, in as many calls as the
    /// documented lengths need (seed: `domainNames`/`newDCVEmailAddresses` 255 chars,
    /// `newMethods` 32). A batch of one uses the single-name form. Names keep their `*.`:
    /// the order holds `*.example.com`, not `example.com`.
    async fn auto_update_dcv(
        &self,
        data: &OrderData,
        names: &[(DomainName, DcvMethod, Option<String>)],
    ) -> Result<Answered, ProviderError> {
        let mut items = Vec::new();
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
            items.push((name.as_str(), m, email.as_deref()));
        }
        for batch in batches(&items).map_err(|d| self.permanent(UPDATE_DCV, d))? {
            // Never `responseFormat` here: AutoUpdateDCV refuses it with -2.
            let mut params = vec![("orderNumber", data.order_number.clone())];
            if let [(name, method, email)] = batch {
                params.push(("domainName", name.to_string()));
                params.push(("newMethod", method.to_string()));
                if let Some(e) = email {
                    params.push(("newDCVEmailAddress", e.to_string()));
                }
            } else {
                let list: Vec<&str> = batch.iter().map(|(n, _, _)| *n).collect();
                let methods: Vec<&str> = batch.iter().map(|(_, m, _)| *m).collect();
                let emails: Vec<&str> = batch.iter().filter_map(|(_, _, e)| *e).collect();
                params.push(("domainNames", list.join(" ")));
                params.push(("newMethods", methods.join(",")));
                if !emails.is_empty() {
                    params.push(("newDCVEmailAddresses", emails.join(" ")));
                }
            }
            match self.call(UPDATE_DCV, &params).await {
                Ok(_) => {}
                Err(e) if wire::is_order_number_refusal(&e) => {
                    return self.confirm_refusal(data, e).await.map(Answered::Ended);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Answered::Done)
    }

    /// After a -4 "'orderNumber' argument is invalid": what CollectSSL says of the order.
    /// Issued or ended (rejected, refunded, unknown) is returned; an order CollectSSL
    /// still shows in progress keeps the original refusal, which nothing here explains.
    async fn confirm_refusal(
        &self,
        data: &OrderData,
        refusal: ProviderError,
    ) -> Result<CaOrderState, ProviderError> {
        let (code, reply) = self.collect_status(&data.order_number).await?;
        let state = self.collect_state(&data.order_number, code, &reply)?;
        tracing::info!(provider = %self.name, order = %data.order_number, endpoint = %refusal.endpoint,
            state = ?state, "Sectigo refused the order number; CollectSSL says the order is in this state");
        match state {
            CaOrderState::InProgress | CaOrderState::NeedsApproval => Err(refusal),
            s => Ok(s),
        }
    }

    pub(super) async fn change_method(
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
        match self.auto_update_dcv(&data, &items).await? {
            Answered::Done => {}
            Answered::Ended(CaOrderState::Issued) => return Ok(Tokens::default()),
            Answered::Ended(state) => {
                return Err(self.permanent(
                    UPDATE_DCV,
                    format!(
                        "cannot change the DCV method of order {}: {}",
                        data.order_number,
                        describe(&state)
                    ),
                ));
            }
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

    /// Ask Sectigo to re-check now: `!ResendDCVEmail`, which "resets how often Sectigo
    /// re-tests control" for the non-e-mail methods (reference §1.5, Sectigo DCV policy).
    /// Re-sending the same method through `!AutoUpdateDCV` is documented nowhere.
    pub(super) async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        let mut data = OrderData::from_ref(&self.name, &order)?;
        if let Some(n) = names
            .iter()
            .find(|n| !data.methods.contains_key(n.as_str()))
        {
            return Err(self.permanent(
                RESEND,
                format!(
                    "{n} is not part of Sectigo order {} (no method stored)",
                    data.order_number
                ),
            ));
        }
        let params = [("orderNumber", data.order_number.clone())];
        let now = self.clock.now().timestamp();
        match self.call(RESEND, &params).await {
            Ok(_) => {
                data.last_trigger = Some(now);
                Ok(CaStatus {
                    order: CaOrderState::InProgress,
                    names: names
                        .iter()
                        .map(|n| (n.clone(), NameDcv::Pending))
                        .collect(),
                    ca_data: Some(data.to_value()),
                })
            }
            Err(e) if wire::is_order_number_refusal(&e) => {
                let state = self.confirm_refusal(&data, e).await?;
                data.last_collect = Some(now);
                data.issued = state == CaOrderState::Issued;
                let names = if data.issued {
                    names.iter().map(|n| (n.clone(), NameDcv::Valid)).collect()
                } else {
                    Vec::new()
                };
                Ok(CaStatus {
                    order: state,
                    names,
                    ca_data: Some(data.to_value()),
                })
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn resend_emails(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_split_to_the_documented_lengths() {
        let names: Vec<String> = (0..40)
            .map(|i| format!("host-{i:02}.example.com"))
            .collect();
        let items: Vec<Item<'_>> = names
            .iter()
            .map(|n| (n.as_str(), "CNAME_CSR_HASH", None))
            .collect();
        let got = batches(&items).unwrap();
        // Two 14-char methods + comma = 29 ≤ 32; three would be 44.
        assert!(got.iter().all(|b| b.len() <= 2), "{got:?}");
        assert_eq!(got.iter().map(|b| b.len()).sum::<usize>(), 40);
        let single = [("a.example.com", "HTTPS_CSR_HASH", None)];
        assert_eq!(batches(&single).unwrap().len(), 1);
        let long = "x".repeat(250) + "@example.com";
        let bad = [("a.example.com", "EMAIL", Some(long.as_str()))];
        assert!(batches(&bad).is_err());
        // Names: 20 of 30 chars fill 255 before methods of 5 (EMAIL) fill 32? 5 EMAILs = 29.
        let n30: Vec<String> = (0..20)
            .map(|i| format!("{i:02}{}", "a".repeat(16) + ".example.com"))
            .collect();
        let items: Vec<Item<'_>> = n30
            .iter()
            .map(|n| (n.as_str(), "EMAIL", Some("admin@example.com")))
            .collect();
        for b in batches(&items).unwrap() {
            let names: Vec<&str> = b.iter().map(|x| x.0).collect();
            let methods: Vec<&str> = b.iter().map(|x| x.1).collect();
            let emails: Vec<&str> = b.iter().filter_map(|x| x.2).collect();
            assert!(names.join(" ").len() <= 255);
            assert!(methods.join(",").len() <= 32);
            assert!(emails.join(" ").len() <= 255);
        }
    }

    #[test]
    fn unique_value_is_deterministic_alphanumeric_20() {
        let a = unique_value_for("dcvd-0001");
        assert_eq!(a, unique_value_for("dcvd-0001"));
        assert_ne!(a, unique_value_for("dcvd-0002"));
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
