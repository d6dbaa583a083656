//! Sectigo order life: `!AutoApplySSL`, status from `!GetMDCDomainDetails` +
//! `download/CollectSSL`, download, refund/revoke.

use super::chain::order_chain;
use super::dcv::unique_value_for;
use super::{OrderData, SectigoProvider, wire};
use crate::ca::{
    CaOrderState, CaStatus, ErrorKind, IssuedChain, NameDcv, OrderRef, ProviderError,
    SubmitRequest, Submitted,
};
use crate::model::{DcvMethod, DomainName};
use crate::pki::pem::{from_base64, to_pem};

const APPLY: &str = "!AutoApplySSL";
const COLLECT: &str = "download/CollectSSL";
const MDC_DETAILS: &str = "!GetMDCDomainDetails";

/// `refundReasonCode` sent with `!AutoRefund`: 11, "other" (as upmind sends it; the
/// code table itself is not in any source dcvd has).
const REFUND_REASON_OTHER: &str = "11";

impl SectigoProvider {
    pub(super) async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let uv = unique_value_for(&req.reference);
        let days = self.days_for(req)?;
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
            ("days", days.to_string()),
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
            mdc_refused: false,
            last_trigger: None,
            issued: false,
        };
        self.submitted(data, &req.csr_der)
    }

    /// `days`: the configured `validity_days`, or the CA/B Forum maximum in force today.
    /// Sectigo has no price (-115) for a term it does not sell; a term above the maximum
    /// a public certificate may have is refused here, before anything is ordered.
    fn days_for(&self, req: &SubmitRequest) -> Result<u32, ProviderError> {
        let today = self.clock.now().date_naive();
        let max = crate::model::public_tls_max_validity_days(today);
        match req.validity_days {
            None => Ok(max),
            Some(d) if (1..=max).contains(&d) => Ok(d),
            Some(d) => Err(self
                .permanent(
                    APPLY,
                    format!(
                        "certificate {}: validity_days = {d} is outside 1..={max}, the longest \
                         a public TLS certificate may be valid on {today} (CA/B Forum); set \
                         validity_days to at most {max} or remove it; nothing was ordered",
                        req.certificate
                    ),
                )
                .rejected()),
        }
    }

    pub(super) fn submitted(
        &self,
        data: OrderData,
        csr_der: &[u8],
    ) -> Result<Submitted, ProviderError> {
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

    pub(super) async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        let mut data = OrderData::from_ref(&self.name, &order)?;
        let mut names = Vec::new();
        let mut changed = false;
        let mut collect_now = false;
        if !data.mdc_refused {
            let params = [("orderNumber", data.order_number.clone())];
            let (code, reply) = self.call_raw(MDC_DETAILS, &params).await?;
            match code {
                0.. => names = mdc_names(&reply, order.names),
                -14 | -16 | -42 => {
                    return Err(wire::api_error(&self.name, MDC_DETAILS, code, &reply));
                }
                _ => {
                    // Documented for multi-domain orders only: a refusal is not a failure
                    // of the order. Learn its state from CollectSSL now, and never ask again.
                    tracing::info!(provider = %self.name, order = %data.order_number, code,
                        message = reply.get("errorMessage").unwrap_or_default(),
                        "Sectigo refused !GetMDCDomainDetails for this order (documented for \
                         multi-domain orders only); order status comes from CollectSSL");
                    data.mdc_refused = true;
                    changed = true;
                    collect_now = true;
                }
            }
        }
        let all_valid = !names.is_empty() && names.iter().all(|(_, s)| *s == NameDcv::Valid);
        let now = self.clock.now().timestamp();
        if !collect_now && !collect_due(&data, all_valid, now, self.collect_interval) {
            return Ok(CaStatus {
                order: CaOrderState::InProgress,
                names,
                ca_data: changed.then(|| data.to_value()),
            });
        }
        let (code, reply) = self.collect_status(&data.order_number).await?;
        data.last_collect = Some(now);
        data.last_trigger = None;
        data.collected_when_valid |= all_valid;
        let state = self.collect_state(&data.order_number, code, &reply)?;
        data.issued = state == CaOrderState::Issued;
        Ok(CaStatus {
            order: state,
            names,
            ca_data: Some(data.to_value()),
        })
    }

    /// One `download/CollectSSL queryType=0` (one at a time per account). `showFQDN`
    /// adds the order's common name (`fqdn`, reference §1.6).
    pub(super) async fn collect_status(
        &self,
        order_number: &str,
    ) -> Result<(i64, wire::Reply), ProviderError> {
        let _one_at_a_time = self.collect_lock.lock().await;
        let params = [
            ("orderNumber", order_number.to_string()),
            ("queryType", "0".into()),
            ("showFQDN", "Y".into()),
            ("responseFormat", "1".into()),
        ];
        self.call_raw(COLLECT, &params).await
    }

    /// The order state a CollectSSL answer says, with the CA's words for the ends.
    pub(super) fn collect_state(
        &self,
        order_number: &str,
        code: i64,
        reply: &wire::Reply,
    ) -> Result<CaOrderState, ProviderError> {
        let words = reply.get("errorMessage").unwrap_or("(no message)");
        Ok(match code {
            -20 => CaOrderState::Failed(format!(
                "Sectigo rejected or cancelled order {order_number}: {words}"
            )),
            -21 => CaOrderState::Failed(format!(
                "Sectigo revoked the certificate of order {order_number}: {words}"
            )),
            -26 => CaOrderState::InProgress,
            -4 if reply.get("errorItem").is_none_or(|i| i == "orderNumber") => {
                CaOrderState::Failed(format!(
                    "Sectigo does not know order {order_number} in this account (refunded, \
                     or placed from another account): {words}"
                ))
            }
            c if c < 0 => return Err(wire::api_error(&self.name, COLLECT, c, reply)),
            c if c >= 1 || reply.get("certificateStatus") == Some("Issued") => CaOrderState::Issued,
            _ => CaOrderState::InProgress,
        })
    }

    pub(super) async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let params = [
            ("orderNumber", data.order_number.clone()),
            ("queryType", "1".into()),
            ("responseType", "3".into()),
            ("responseEncoding", "0".into()),
            // Both public clients ask for URL-encoded; the default is not documented.
            ("responseFormat", "1".into()),
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
        let leaf = from_base64(leaf).map_err(|e| bad("certificate", e))?.der;
        let mut rest = Vec::new();
        for c in reply.get_all("caCertificate") {
            rest.push(from_base64(c).map_err(|e| bad("caCertificate", e))?.der);
        }
        let chain = order_chain(&leaf, rest).map_err(|e| bad("chain", e))?;
        Ok(IssuedChain {
            leaf_pem: to_pem(&leaf),
            chain_pem: chain.iter().map(|c| to_pem(c)).collect(),
        })
    }

    pub(super) async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let number = ("orderNumber", data.order_number.clone());
        let result = if data.issued {
            let reason = (
                "revocationReason",
                "dcvd: order canceled by the operator".to_string(),
            );
            self.call("!AutoRevokeSSL", &[number, reason]).await
        } else {
            let reason = ("refundReasonCode", REFUND_REASON_OTHER.to_string());
            self.call("!AutoRefund", &[number, reason]).await
        };
        match result {
            // Already cancelled / refunded / revoked: the wanted end state.
            Err(e) if e.has_code("-20") || e.has_code("-21") || e.has_code("-18") => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

/// Our names in a `!GetMDCDomainDetails` answer. Only our names: Sectigo may add a free
/// `www.` that can fail harmlessly.
pub(super) fn mdc_names(reply: &wire::Reply, ours: &[DomainName]) -> Vec<(DomainName, NameDcv)> {
    let mut names = Vec::new();
    for i in 1.. {
        let Some(d) = reply.get(&format!("{i}_domainName")) else {
            break;
        };
        let status = reply.get(&format!("{i}_dcvStatus")).unwrap_or_default();
        match DomainName::parse(d) {
            Ok(d) if ours.contains(&d) => names.push((d, wire::name_status(status))),
            _ => {}
        }
    }
    names
}

/// Sectigo asks for CollectSSL rarely ("no more frequently than once every 3 hours"):
/// once as soon as every name is validated (multi-domain orders, where per-name status is
/// known), once after a re-check was asked for on an order without per-name status (its
/// moment of validation), and otherwise at most once per `interval`.
fn collect_due(data: &OrderData, all_valid: bool, now: i64, interval: std::time::Duration) -> bool {
    let interval_passed = data
        .last_collect
        .is_none_or(|t| now.saturating_sub(t) >= interval.as_secs() as i64);
    // `last_trigger` is cleared by the collect that answers it.
    let triggered_since = data.mdc_refused && data.last_trigger.is_some();
    interval_passed || (all_valid && !data.collected_when_valid) || triggered_since
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
            mdc_refused: false,
            last_trigger: None,
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
        // Without per-name status: once after each trigger, not again until the next.
        d.collected_when_valid = false;
        d.mdc_refused = true;
        d.last_trigger = Some(1050);
        assert!(collect_due(&d, false, 1100, iv));
        d.last_collect = Some(1100);
        d.last_trigger = None;
        assert!(!collect_due(&d, false, 1200, iv));
        d.last_collect = None;
        assert!(collect_due(&d, false, 0, iv));
    }
}
