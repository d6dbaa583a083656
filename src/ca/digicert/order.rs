//! Placing an order, and describing an existing CA order as the answer to a submit
//! (operator adoption; crash recovery in `recover.rs` uses the same description).

use reqwest::Method;

use super::data::CaData;
use super::tokens;
use super::wire::*;
use super::{DigicertProvider, NONE};
use crate::ca::{ErrorKind, ProviderError, SubmitRequest, Submitted};
use crate::model::{DcvMethod, DomainName};

impl DigicertProvider {
    /// `POST /order/certificate/{product}` with the method of the first name.
    pub(super) async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
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
        let dcv_emails = if method == DcvMethod::Email {
            req.approver_emails
                .iter()
                .map(|(n, e)| DcvEmail {
                    dns_name: n.to_string(),
                    email_domain: super::dcv::registrable_domain(n),
                    email: Some(e.clone()),
                })
                .collect()
        } else {
            Vec::new()
        };
        let body = OrderRequest {
            certificate: CertificateRequest {
                common_name: cn.to_string(),
                dns_names: req.names[1..].iter().map(|n| n.to_string()).collect(),
                csr: req.csr_pem.clone(),
                server_platform: Some(ServerPlatform {
                    id: self.server_platform,
                }),
            },
            validity_years: None,
            validity_days: Some(self.validity_days(req)),
            comments: Some(req.reference.clone()),
            dcv_method: wire_method.to_string(),
            // The order's language for every DCV email DigiCert sends for it, including
            // the ones after a later switch to email.
            locale: Some(req.locale.clone()),
            dcv_emails,
            skip_approval: Some(true),
            renewal_of_order_id: req
                .renewal_of
                .as_deref()
                .and_then(|s| s.trim().parse().ok()),
            custom_fields: self.custom_fields.clone(),
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
            locale: Some(req.locale.clone()),
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

    /// `validity_days` to send: the configured value, never more than the public TLS
    /// maximum in force today (CA/B Forum SC-081); the maximum when none is configured.
    /// (`validity_years: 1` is not sent: 365 days exceeds the maximum from 2026-03-15.)
    pub(super) fn validity_days(&self, req: &SubmitRequest) -> u32 {
        let max = crate::model::public_tls_max_validity_days(self.clock.now().date_naive());
        match req.validity_days {
            Some(d) if d <= max => d,
            Some(d) => {
                tracing::warn!(
                    certificate = %req.certificate,
                    configured = d,
                    sent = max,
                    "validity_days exceeds the public TLS maximum in force today; ordering the maximum"
                );
                max
            }
            None => max,
        }
    }

    /// `dcvd orders adopt`: GET the order; refuse it unless its names are `req.names`
    /// and (when the CA shows one) its CSR is the one dcvd holds for the certificate.
    pub(super) async fn order_by_id(
        &self,
        req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError> {
        const EP: &str = "order/certificate/{id}";
        let id = self.order_id(EP, ca_order_id)?;
        let info = self.order_info(id).await?;
        let refuse = |why: String| {
            self.err(
                EP,
                ErrorKind::Permanent,
                format!(
                    "CA order {id} cannot be adopted for certificate `{}`: {why}",
                    req.certificate
                ),
            )
        };
        let want = sorted_names(req.names.iter().map(DomainName::as_str));
        let have = order_names(&info);
        if have != want {
            return Err(refuse(format!(
                "its names are [{}], the certificate's are [{}]",
                have.join(", "),
                want.join(", ")
            )));
        }
        if let Some(csr) = info
            .certificate
            .csr
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            && crate::pki::pem::csr_der(csr).as_deref() != Some(req.csr_der.as_slice())
        {
            return Err(refuse(
                "its CSR is not the one dcvd holds for this certificate (the issued certificate would not match the private key)".into(),
            ));
        }
        self.submitted_from(&info, req, true).await
    }

    /// Describe a CA order as the answer to submitting `req`. With `tokens`, a pending
    /// token order's current random value is fetched (one more call) so that the engine
    /// can publish at once.
    pub(super) async fn submitted_from(
        &self,
        info: &OrderInfo,
        req: &SubmitRequest,
        tokens: bool,
    ) -> Result<Submitted, ProviderError> {
        let method = info
            .dcv_method
            .as_deref()
            .and_then(tokens::neutral_method)
            .or(req.methods.first().copied())
            .unwrap_or(DcvMethod::DnsTxt);
        let mut data = CaData {
            certificate_id: info.certificate.id,
            dcv_method: tokens::wire_method(method).map(str::to_string),
            locale: Some(req.locale.clone()),
            ..Default::default()
        };
        let issued = info.status == "issued";
        let mut challenges = Vec::new();
        if tokens && method != DcvMethod::Email && info.status == "pending" {
            match self.random_value(info.id).await {
                Ok(rv) => {
                    Self::store_random(&mut data, &rv);
                    let named: Vec<_> = req.names.iter().map(|n| (n.clone(), method)).collect();
                    challenges = tokens::challenges(&named, &rv.dcv_random_value, self.txt);
                }
                // GET order info may not show the method (the recorded payload does not):
                // an order without a random value validates by email.
                Err(e) if e.has_code("invalid_dcv_method") => {
                    data.dcv_method = Some("email".into());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Submitted {
            ca_order_id: info.id.to_string(),
            ca_data: data.to_json(),
            challenges,
            issued,
        })
    }

    pub(super) async fn order_info(&self, id: u64) -> Result<OrderInfo, ProviderError> {
        let path = format!("/order/certificate/{id}");
        self.api
            .json(Method::GET, &path, "order/certificate/{id}", NONE)
            .await
    }
}

fn sorted_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = names
        .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Names of an order as CertCentral shows them (common name + dns_names), sorted, unique.
pub(super) fn order_names(info: &OrderInfo) -> Vec<String> {
    sorted_names(
        std::iter::once(info.certificate.common_name.as_str())
            .chain(info.certificate.dns_names.iter().map(String::as_str)),
    )
}

/// The request's names in the same form as `order_names`.
pub(super) fn request_names(req: &SubmitRequest) -> Vec<String> {
    sorted_names(req.names.iter().map(DomainName::as_str))
}
