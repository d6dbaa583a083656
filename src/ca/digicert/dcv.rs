//! `PUT …/check-dcv`: ask CertCentral to validate now, and read its answer (including
//! the "not found yet" 400s) as per-name DCV state.

use reqwest::Method;

use super::client::{NOT_YET_CODES, NOT_YET_UNLESS};
use super::data::CaData;
use super::wire::*;
use super::{DigicertProvider, NONE};
use crate::ca::{CaOrderState, CaStatus, NameDcv, OrderRef, Provider, ProviderError};
use crate::model::DomainName;

impl DigicertProvider {
    /// One check-dcv call (email orders: a status read instead, check-dcv refuses them).
    pub(super) async fn check_dcv(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        const EP: &str = "order/certificate/{id}/check-dcv";
        let stored_method = CaData::from_ref(self.api.name(), &order)?.dcv_method;
        if stored_method.as_deref() == Some("email") {
            // check-dcv refuses email orders (400 invalid_dcv_method); read the status instead.
            return self.status(order).await;
        }
        let id = self.order_id(EP, order.ca_order_id)?;
        let path = format!("/order/certificate/{id}/check-dcv");
        let pending = || {
            names
                .iter()
                .map(|n| (n.clone(), NameDcv::Pending))
                .collect()
        };
        let check: CheckDcv = match self.api.json(Method::PUT, &path, EP, NONE).await {
            Ok(c) => c,
            Err(e)
                if NOT_YET_CODES.iter().any(|c| e.has_code(c))
                    || (stored_method.as_deref() == Some("dns-cname-token")
                        && e.status == Some(400)
                        && !NOT_YET_UNLESS.iter().any(|c| e.has_code(c))) =>
            {
                tracing::info!(
                    order_id = %order.reference,
                    ca_order_id = %id,
                    codes = ?e.errors.iter().map(|x| x.code.as_str()).collect::<Vec<_>>(),
                    "CertCentral has not validated the tokens yet; it keeps checking on its own"
                );
                return Ok(CaStatus {
                    order: CaOrderState::InProgress,
                    names: pending(),
                    ca_data: Self::refresh_if_unknown(order.ca_data),
                });
            }
            Err(e) => return Err(e),
        };
        let state = order_state(&check.order_status);
        let names = if state == CaOrderState::Issued
            || (check.dcv_status == "valid" && check.dns_name_validations.is_empty())
        {
            names.iter().map(|n| (n.clone(), NameDcv::Valid)).collect()
        } else if check.dns_name_validations.is_empty() {
            pending()
        } else {
            names_from(&check.dns_name_validations, names)
        };
        let still_pending =
            state != CaOrderState::Issued && names.iter().any(|(_, d)| *d != NameDcv::Valid);
        let ca_data = match (check.certificate_id, still_pending) {
            (_, true) => Self::refresh_if_unknown(order.ca_data),
            (Some(cid), false) => {
                let mut d = CaData::from_ref(self.api.name(), &order)?;
                d.certificate_id = Some(cid);
                Some(d.to_json())
            }
            (None, false) => None,
        };
        Ok(CaStatus {
            order: state,
            names,
            ca_data,
        })
    }
}

pub(super) fn name_dcv(status: &str) -> NameDcv {
    match status {
        "approved" | "valid" | "validated" | "complete" | "completed" => NameDcv::Valid,
        "rejected" | "invalid" | "failed" => NameDcv::Invalid(status.to_string()),
        _ => NameDcv::Pending,
    }
}

pub(super) fn names_from(
    validations: &[NameValidation],
    names: &[DomainName],
) -> Vec<(DomainName, NameDcv)> {
    validations
        .iter()
        .filter_map(|v| {
            let n = DomainName::parse(&v.dns_name).ok()?;
            names.contains(&n).then(|| (n, name_dcv(&v.status)))
        })
        .collect()
}

/// The registrable (base) domain of a name through the Public Suffix List
/// (`sub.example.co.uk` → `example.co.uk`): DigiCert's `email_domain` "must match the
/// dns_names base domain" (seed "Order DV SSL"). Names under an unlisted suffix count
/// the last label as the suffix (the PSL's default rule).
pub fn registrable_domain(name: &DomainName) -> String {
    let base = name.base();
    psl::domain_str(base).unwrap_or(base).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn email_domain_is_the_registrable_domain() {
        for (name, want) in [
            ("www.example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("*.shop.example.com", "example.com"),
            ("example.com", "example.com"),
            ("sub.example.test", "example.test"),
        ] {
            assert_eq!(registrable_domain(&d(name)), want, "{name}");
        }
    }
}
