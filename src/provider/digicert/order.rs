//! Placing an order and finding it again after a crash (the two calls that carry the
//! whole `SubmitRequest`).

use reqwest::Method;

use super::tokens::{self, CaData};
use super::wire::*;
use super::{DigicertProvider, NONE};
use crate::model::DcvMethod;
use crate::provider::{ErrorKind, ProviderError, SubmitRequest, Submitted};

impl DigicertProvider {
    /// `POST /order/certificate/{product}` with the method of the first name.
    pub(super) async fn place(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        const EP: &str = "order/certificate";
        let (Some(cn), Some(method)) = (req.names.first(), req.methods.first().copied()) else {
            return Err(self
                .err(
                    EP,
                    ErrorKind::Permanent,
                    format!(
                        "certificate `{}` has no names or no DCV method",
                        req.certificate
                    ),
                )
                .rejected());
        };
        let wire_method = self.wire(EP, method)?;
        let dcv_emails = req
            .approver_emails
            .iter()
            .map(|(n, e)| DcvEmail {
                dns_name: n.to_string(),
                email_domain: Self::email_domain(n, e).unwrap_or_else(|| n.base().to_string()),
                email: Some(e.clone()),
            })
            .collect::<Vec<_>>();
        let body = OrderRequest {
            certificate: CertificateRequest {
                common_name: cn.to_string(),
                dns_names: req.names[1..].iter().map(|n| n.to_string()).collect(),
                csr: req.csr_pem.clone(),
                server_platform: Some(ServerPlatform {
                    id: self.server_platform,
                }),
                ..Default::default()
            },
            validity_years: req.validity_days.is_none().then_some(1),
            validity_days: req.validity_days,
            comments: Some(req.reference.clone()),
            dcv_method: Some(wire_method.to_string()),
            locale: (method == DcvMethod::Email).then(|| req.locale.clone()),
            dcv_emails: if method == DcvMethod::Email {
                dcv_emails
            } else {
                Vec::new()
            },
            skip_approval: Some(true),
            renewal_of_order_id: req
                .renewal_of
                .as_deref()
                .and_then(|s| s.trim().parse().ok()),
            ..Default::default()
        };
        let path = format!("/order/certificate/{}", req.product);
        let created: OrderCreated = self.api.json(Method::POST, &path, EP, Some(&body)).await?;
        let data = CaData {
            certificate_id: created.certificate_id,
            dcv_method: Some(wire_method.to_string()),
            dcv_random_value: created.dcv_random_value.clone(),
            // The 201 carries no expiry. It is fetched (one extra call) only if the CA
            // answers "not yet" although our own check saw the token: see trigger_check.
            random_value_expires_at: None,
            random_value_refresh_due: false,
        };
        let named: Vec<_> = req.names.iter().map(|n| (n.clone(), method)).collect();
        let challenges = created
            .dcv_random_value
            .as_deref()
            .map(|rv| tokens::challenges(&named, rv, self.txt))
            .unwrap_or_default();
        Ok(Submitted {
            ca_order_id: created.id.to_string(),
            ca_data: data.to_json(),
            challenges,
            issued: created.certificate_chain.is_some_and(|c| !c.is_empty()),
        })
    }

    /// List orders for the common name in the creation window, keep those with the same
    /// names, and match our reference in `comments` (fetching order details when the
    /// list omits them). A pending token order's random value is fetched as well.
    pub(super) async fn recover(
        &self,
        req: &SubmitRequest,
    ) -> Result<Option<Submitted>, ProviderError> {
        const EP: &str = "order/certificate (list)";
        let Some(cn) = req.names.first() else {
            return Ok(None);
        };
        let from = (req.created_at - chrono::Duration::days(1)).format("%Y-%m-%d");
        let to = (self.clock.now() + chrono::Duration::days(1)).format("%Y-%m-%d");
        let path = format!(
            "/order/certificate?filters%5Bcommon_name%5D={cn}&filters%5Bdate_created%5D={from}...{to}&sort=-date_created&limit=100"
        );
        let list: OrderList = self.api.json(Method::GET, &path, EP, NONE).await?;
        let mut want: Vec<String> = req.names.iter().map(|n| n.to_string()).collect();
        want.sort();
        want.dedup();
        for candidate in list.orders.iter().filter(|o| order_names(o) == want) {
            let info = match &candidate.comments {
                Some(_) => candidate.clone(),
                None => self.order_info(candidate.id).await?,
            };
            if info.comments.as_deref().map(str::trim) != Some(req.reference.as_str()) {
                continue;
            }
            let method = info
                .dcv_method
                .as_deref()
                .and_then(tokens::neutral_method)
                .or(req.methods.first().copied())
                .unwrap_or(DcvMethod::DnsTxt);
            let mut data = CaData {
                certificate_id: info.certificate.id,
                dcv_method: tokens::wire_method(method).map(str::to_string),
                ..Default::default()
            };
            let issued = info.status == "issued";
            let mut challenges = Vec::new();
            if method != DcvMethod::Email && info.status == "pending" {
                let rv = self.random_value(info.id).await?;
                Self::store_random(&mut data, &rv);
                let named: Vec<_> = req.names.iter().map(|n| (n.clone(), method)).collect();
                challenges = tokens::challenges(&named, &rv.dcv_random_value, self.txt);
            }
            return Ok(Some(Submitted {
                ca_order_id: info.id.to_string(),
                ca_data: data.to_json(),
                challenges,
                issued,
            }));
        }
        Ok(None)
    }
}

/// Names of an order as CertCentral lists them (common name + dns_names), sorted, unique.
fn order_names(info: &OrderInfo) -> Vec<String> {
    let mut v: Vec<String> = std::iter::once(&info.certificate.common_name)
        .chain(info.certificate.dns_names.iter())
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}
