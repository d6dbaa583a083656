//! Sectigo order life: `!AutoApplySSL`, recovery via `!WebHostReport`, status from
//! `!GetMDCDomainDetails` + `download/CollectSSL`, download, refund/revoke.

use super::chain::{order_chain, pem, to_der};
use super::dcv::unique_value_for;
use super::{DEFAULT_DAYS, OrderData, SectigoProvider, wire};
use crate::model::{DcvMethod, DomainName};
use crate::provider::{
    CaOrderState, CaStatus, ErrorKind, IssuedChain, NameDcv, OrderRef, ProviderError,
    SubmitRequest, Submitted,
};

const APPLY: &str = "!AutoApplySSL";
const COLLECT: &str = "download/CollectSSL";

impl SectigoProvider {
    pub(super) async fn submit_order(
        &self,
        req: &SubmitRequest,
    ) -> Result<Submitted, ProviderError> {
        let uv = unique_value_for(&req.reference);
        let email_of = |n: &DomainName| {
            req.approver_emails
                .iter()
                .find(|(a, _)| a == n)
                .map(|(_, e)| e.clone())
        };
        let mut tokens = Vec::new();
        for (i, name) in req.names.iter().enumerate() {
            let method = req.methods.get(i).copied().ok_or_else(|| {
                self.permanent(APPLY, format!("{name}: no DCV method given"))
                    .rejected()
            })?;
            wire::method_wire(method).ok_or_else(|| {
                self.permanent(APPLY, format!("{name}: Sectigo has no {method} method"))
                    .rejected()
            })?;
            let token = match wire::legacy_token(method) {
                Some(t) => t.to_string(),
                None => {
                    let addr = email_of(name).ok_or_else(|| {
                        self.permanent(
                            APPLY,
                            format!("{name}: method email needs an approver address"),
                        )
                        .rejected()
                    })?;
                    self.ensure_approver(name, &addr)
                        .await
                        .map_err(ProviderError::rejected)?;
                    addr
                }
            };
            tokens.push((name.clone(), method, token));
        }
        let Some((cn, cn_method, cn_token)) = tokens.first().cloned() else {
            return Err(self
                .permanent(APPLY, "order has no names".into())
                .rejected());
        };
        let mut params = vec![
            ("product", req.product.clone()),
            (
                "days",
                req.validity_days.unwrap_or(DEFAULT_DAYS).to_string(),
            ),
            ("csr", req.csr_pem.clone()),
            ("serverSoftware", self.server_software.to_string()),
            (
                "dcvMethod",
                wire::method_wire(cn_method).unwrap_or_default().to_string(),
            ),
            ("showCertificateID", "Y".into()),
            ("isCustomerValidated", "N".into()),
            ("responseFormat", "1".into()),
            ("uniqueValue", uv.clone()),
        ];
        if cn_method == DcvMethod::Email {
            params.push(("dcvEmailAddress", cn_token));
        }
        if tokens.len() > 1 {
            let names: Vec<&str> = tokens.iter().map(|(n, _, _)| n.as_str()).collect();
            let per: Vec<&str> = tokens.iter().map(|(_, _, t)| t.as_str()).collect();
            params.push(("domainNames", names.join(",")));
            params.push(("dcvEmailAddresses", per.join(",")));
        }
        let reply = self.call(APPLY, &params).await?;
        let order_number = reply
            .get("orderNumber")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ProviderError::malformed(
                    &self.name,
                    APPLY,
                    200,
                    "success answer without orderNumber",
                )
            })?
            .to_string();
        tracing::info!(provider = %self.name, reference = %req.reference, order = %order_number,
            domain = %cn, "Sectigo order placed");
        let data = OrderData {
            order_number: order_number.clone(),
            certificate_id: reply.get("certificateID").map(str::to_string),
            unique_value: reply
                .get("uniqueValue")
                .filter(|u| !u.is_empty())
                .unwrap_or(&uv)
                .to_string(),
            dcv_suffix: self.suffix.clone(),
            methods: tokens.iter().map(|(n, m, _)| (n.to_string(), *m)).collect(),
            emails: tokens
                .iter()
                .filter(|(_, m, _)| *m == DcvMethod::Email)
                .map(|(n, _, t)| (n.to_string(), t.clone()))
                .collect(),
            last_collect: Some(self.clock.now().timestamp()),
            collected_when_valid: false,
            issued: false,
        };
        self.submitted(data, &req.csr_der)
    }

    fn submitted(&self, data: OrderData, csr_der: &[u8]) -> Result<Submitted, ProviderError> {
        let mut pairs = Vec::new();
        for (n, m) in &data.methods {
            if let Ok(d) = DomainName::parse(n) {
                pairs.push((d, *m));
            }
        }
        Ok(Submitted {
            ca_order_id: data.order_number.clone(),
            challenges: self.compute_challenges(&data, csr_der, &pairs)?,
            ca_data: data.to_value(),
            issued: false,
        })
    }

    /// Recovery. Assumed `!WebHostReport` shape (kept in step with `sim::sectigo`):
    /// request `startDate`/`endDate` (RFC 3339), `fqdn`, `lastResultToShow`; answer
    /// `noOfResults=N` and per row `<i>_orderNumber`, `<i>_certificateID`, `<i>_fqdn`,
    /// `<i>_uniqueValue`. Rows match on our uniqueValue only, never on names alone.
    pub(super) async fn find(
        &self,
        req: &SubmitRequest,
    ) -> Result<Option<Submitted>, ProviderError> {
        let uv = unique_value_for(&req.reference);
        let Some(cn) = req.names.first() else {
            return Ok(None);
        };
        let start = req.created_at - chrono::Duration::minutes(10);
        let end = self.clock.now() + chrono::Duration::minutes(10);
        let params = [
            (
                "startDate",
                start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            (
                "endDate",
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("fqdn", cn.to_string()),
            ("lastResultToShow", "500".into()),
        ];
        let reply = self.call("!WebHostReport", &params).await?;
        let rows: usize = reply
            .get("noOfResults")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
            .min(reply.pairs.len());
        for i in 1..=rows {
            let row_uv = reply.get(&format!("{i}_uniqueValue")).unwrap_or_default();
            if !row_uv.eq_ignore_ascii_case(&uv) {
                continue;
            }
            let Some(number) = reply.get(&format!("{i}_orderNumber")) else {
                continue;
            };
            let methods = req
                .names
                .iter()
                .cloned()
                .zip(req.methods.iter().copied())
                .collect();
            let data = OrderData {
                order_number: number.to_string(),
                certificate_id: reply.get(&format!("{i}_certificateID")).map(str::to_string),
                unique_value: row_uv.to_string(),
                dcv_suffix: self.suffix.clone(),
                methods: names_map(methods),
                emails: req
                    .approver_emails
                    .iter()
                    .filter(|(n, _)| {
                        let i = req.names.iter().position(|x| x == n);
                        i.and_then(|i| req.methods.get(i)) == Some(&DcvMethod::Email)
                    })
                    .map(|(n, e)| (n.to_string(), e.clone()))
                    .collect(),
                last_collect: Some(self.clock.now().timestamp()),
                collected_when_valid: false,
                issued: false,
            };
            return self.submitted(data, &req.csr_der).map(Some);
        }
        Ok(None)
    }

    pub(super) async fn order_status(
        &self,
        order: OrderRef<'_>,
    ) -> Result<CaStatus, ProviderError> {
        let mut data = OrderData::from_ref(&self.name, &order)?;
        let reply = self
            .call(
                "!GetMDCDomainDetails",
                &[("orderNumber", data.order_number.clone())],
            )
            .await?;
        let mut names = Vec::new();
        for i in 1.. {
            let Some(d) = reply.get(&format!("{i}_domainName")) else {
                break;
            };
            let status = reply.get(&format!("{i}_dcvStatus")).unwrap_or_default();
            // Only our names: Sectigo may add a free `www.` that can fail harmlessly.
            match DomainName::parse(d) {
                Ok(d) if order.names.contains(&d) => names.push((d, wire::name_status(status))),
                _ => {}
            }
        }
        let all_valid = !names.is_empty() && names.iter().all(|(_, s)| *s == NameDcv::Valid);
        let now = self.clock.now().timestamp();
        if !collect_due(&data, all_valid, now, self.collect_interval) {
            return Ok(CaStatus {
                order: CaOrderState::InProgress,
                names,
                ca_data: None,
            });
        }
        let (code, reply) = {
            let _one_at_a_time = self.collect_lock.lock().await;
            let params = [
                ("orderNumber", data.order_number.clone()),
                ("queryType", "0".into()),
            ];
            self.call_raw(COLLECT, &params).await?
        };
        data.last_collect = Some(now);
        data.collected_when_valid |= all_valid;
        let issued = code >= 1 || reply.get("certificateStatus") == Some("Issued");
        let state = match code {
            -20 => CaOrderState::Failed(format!(
                "Sectigo: order rejected or cancelled ({})",
                reply.get("errorMessage").unwrap_or("-20")
            )),
            -21 => CaOrderState::Failed("Sectigo: certificate revoked".into()),
            -26 => CaOrderState::InProgress,
            c if c < 0 => return Err(wire::api_error(&self.name, COLLECT, c, &reply)),
            _ if issued => CaOrderState::Issued,
            _ => CaOrderState::InProgress,
        };
        data.issued = state == CaOrderState::Issued;
        Ok(CaStatus {
            order: state,
            names,
            ca_data: Some(data.to_value()),
        })
    }

    pub(super) async fn collect_chain(
        &self,
        order: OrderRef<'_>,
    ) -> Result<IssuedChain, ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let params = [
            ("orderNumber", data.order_number.clone()),
            ("queryType", "1".into()),
            ("responseType", "3".into()),
            ("responseEncoding", "0".into()),
        ];
        let reply = {
            let _one_at_a_time = self.collect_lock.lock().await;
            self.call(COLLECT, &params).await?
        };
        let leaf = reply
            .get("certificate")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ProviderError::new(&self.name, COLLECT, ErrorKind::Transient).with_detail(format!(
                    "order {} has no certificate yet (certificateStatus {:?}); will retry",
                    data.order_number,
                    reply.get("certificateStatus").unwrap_or("unknown")
                ))
            })?;
        let bad = |what: &str, e: String| {
            ProviderError::malformed(&self.name, COLLECT, 200, format!("{what}: {e}"))
        };
        let leaf = to_der(leaf).map_err(|e| bad("certificate", e))?;
        let mut rest = Vec::new();
        for c in reply.get_all("caCertificate") {
            rest.push(to_der(c).map_err(|e| bad("caCertificate", e))?);
        }
        let chain = order_chain(&leaf, rest).map_err(|e| bad("chain", e))?;
        Ok(IssuedChain {
            leaf_pem: pem(&leaf),
            chain_pem: chain.iter().map(|c| pem(c)).collect(),
        })
    }

    pub(super) async fn cancel_order(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let number = ("orderNumber", data.order_number.clone());
        let result = if data.issued {
            let reason = (
                "revocationReason",
                "dcvd: order canceled by the operator".to_string(),
            );
            self.call("!AutoRevokeSSL", &[number, reason]).await
        } else {
            self.call("!AutoRefund", &[number]).await
        };
        match result {
            // Already cancelled / refunded / revoked: the wanted end state.
            Err(e) if e.has_code("-20") || e.has_code("-21") || e.has_code("-18") => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

/// Sectigo asks for CollectSSL rarely: once as soon as every name is validated, and
/// otherwise at most once per `interval` (also while validated but not yet issued).
fn collect_due(data: &OrderData, all_valid: bool, now: i64, interval: std::time::Duration) -> bool {
    let interval_passed = data
        .last_collect
        .is_none_or(|t| now.saturating_sub(t) >= interval.as_secs() as i64);
    interval_passed || (all_valid && !data.collected_when_valid)
}

fn names_map(pairs: Vec<(DomainName, DcvMethod)>) -> std::collections::BTreeMap<String, DcvMethod> {
    pairs.into_iter().map(|(n, m)| (n.to_string(), m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_is_rationed() {
        let mut d = OrderData {
            order_number: "1".into(),
            certificate_id: None,
            unique_value: "u".into(),
            dcv_suffix: "sectigo.com".into(),
            methods: Default::default(),
            emails: Default::default(),
            last_collect: Some(1000),
            collected_when_valid: false,
            issued: false,
        };
        let iv = std::time::Duration::from_secs(300);
        // (all_valid, now, collected_when_valid) -> due
        let cases = [
            (false, 1100, false, false),
            (false, 1300, false, true),
            (true, 1100, false, true),
            (true, 1100, true, false),
            (true, 1300, true, true),
        ];
        for (valid, now, once, want) in cases {
            d.collected_when_valid = once;
            assert_eq!(
                collect_due(&d, valid, now, iv),
                want,
                "{valid} {now} {once}"
            );
        }
        d.last_collect = None;
        assert!(collect_due(&d, false, 0, iv));
    }
}
