//! Orders and authorizations: new-order, tokens per name, challenge readiness, status,
//! deactivation. Each function reads the order afresh from its URL (no state is kept).

use base64::Engine;
use instant_acme::{
    AuthorizationState, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, NewOrder,
    Order, OrderStatus,
};
use sha2::Digest;

use super::http::observed;
use super::{AcmeProvider, OrderData};
use crate::ca::{
    CaOrderState, CaStatus, ErrorKind, NameDcv, OrderRef, ProviderError, SubmitRequest, Submitted,
    Tokens,
};
use crate::dcv::check::dns::Expect;
use crate::model::{Challenge, ChallengeKind, DcvMethod, DomainName};

/// One challenge of an authorization, as the CA listed it.
#[derive(Debug, Clone)]
pub(super) struct Chal {
    pub kind: ChallengeType,
    pub token: String,
    pub error: Option<String>,
}

/// One authorization (one name) as read from the CA.
#[derive(Debug, Clone)]
pub(super) struct Authz {
    pub name: Option<DomainName>,
    pub status: AuthorizationStatus,
    pub challenges: Vec<Chal>,
}

impl Authz {
    fn from_state(s: &AuthorizationState) -> Self {
        Self {
            name: DomainName::parse(&s.identifier().to_string()).ok(),
            status: s.status,
            challenges: s
                .challenges
                .iter()
                .map(|c| Chal {
                    kind: c.r#type.clone(),
                    token: c.token.clone(),
                    error: c.error.as_ref().map(|p| p.to_string()),
                })
                .collect(),
        }
    }

    /// The name's DCV state in neutral terms.
    pub(super) fn dcv(&self) -> NameDcv {
        match self.status {
            AuthorizationStatus::Pending => NameDcv::Pending,
            AuthorizationStatus::Valid => NameDcv::Valid,
            AuthorizationStatus::Invalid => NameDcv::Invalid(
                self.challenges
                    .iter()
                    .find_map(|c| c.error.clone())
                    .unwrap_or_else(|| "the CA marked the authorization invalid".into()),
            ),
            other => NameDcv::Invalid(format!("the authorization is {other:?}")),
        }
    }
}

/// Every authorization of `order`, fetched from the CA.
pub(super) async fn read_authz(order: &mut Order) -> Result<Vec<Authz>, instant_acme::Error> {
    let mut out = Vec::new();
    let mut it = order.authorizations();
    while let Some(h) = it.next().await {
        let h = h?;
        out.push(Authz::from_state(&h));
    }
    Ok(out)
}

/// The ACME challenge type that carries a neutral method.
pub(super) fn challenge_type(method: DcvMethod) -> ChallengeType {
    match method {
        DcvMethod::Http | DcvMethod::Https => ChallengeType::Http01,
        _ => ChallengeType::Dns01,
    }
}

/// base64url(SHA-256(key authorization)): the dns-01 TXT value (RFC 8555 §8.4).
pub(super) fn dns01_value(key_authorization: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(key_authorization.as_bytes()))
}

impl AcmeProvider {
    pub(super) async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = req
            .names
            .iter()
            .map(|n| Identifier::Dns(n.to_string()))
            .collect();
        let (r, seen) = observed(account.new_order(&NewOrder::new(&ids))).await;
        let mut order = r.map_err(|e| self.err("new-order", e, seen))?;
        let data = OrderData {
            methods: req
                .names
                .iter()
                .zip(&req.methods)
                .map(|(n, m)| (n.to_string(), *m))
                .collect(),
        };
        let status = order.state().status;
        let mut sub = Submitted {
            ca_order_id: order.url().to_string(),
            ca_data: data.to_value(),
            challenges: Vec::new(),
            // Every authorization already valid (reused): nothing to validate.
            issued: matches!(
                status,
                OrderStatus::Ready | OrderStatus::Processing | OrderStatus::Valid
            ),
        };
        if sub.issued {
            return Ok(sub);
        }
        // Tokens now save a round trip; if this fails the engine asks `challenges` later.
        let (r, _) = observed(read_authz(&mut order)).await;
        match r {
            Ok(authz) => {
                let thumb = account.key_thumbprint().to_string();
                for (name, method) in req.names.iter().zip(&req.methods) {
                    let Some(a) = authz.iter().find(|a| a.name.as_ref() == Some(name)) else {
                        continue;
                    };
                    if let Ok(ch) = self.challenge_for(name, *method, a, &thumb).await {
                        sub.challenges.push((name.clone(), ch));
                    }
                }
            }
            Err(e) => tracing::debug!(provider = %self.name, order = %sub.ca_order_id,
                "authorizations not read with the new order ({e}); fetched in the next step"),
        }
        Ok(sub)
    }

    /// The token to publish for `name` by `method`, from its authorization.
    async fn challenge_for(
        &self,
        name: &DomainName,
        method: DcvMethod,
        authz: &Authz,
        thumb: &str,
    ) -> Result<Challenge, ProviderError> {
        let ty = challenge_type(method);
        let chal = authz
            .challenges
            .iter()
            .find(|c| c.kind == ty)
            .ok_or_else(|| {
                self.permanent(
                    "authorization",
                    format!("the CA offers no {ty:?} challenge for {name} (method {method})"),
                )
            })?;
        let key_auth = format!("{}.{thumb}", chal.token);
        let owner = format!("_acme-challenge.{}", name.base());
        Ok(match method {
            DcvMethod::Http | DcvMethod::Https => Challenge {
                kind: ChallengeKind::Http,
                name: name.to_string(),
                path: Some(format!("/.well-known/acme-challenge/{}", chal.token)),
                value: key_auth,
            },
            DcvMethod::DnsCname => {
                let value = dns01_value(&key_auth);
                let target = self.delegated_target(&owner, &value).await?;
                Challenge {
                    kind: ChallengeKind::DnsTxt,
                    name: target,
                    path: None,
                    value,
                }
            }
            _ => Challenge {
                kind: ChallengeKind::DnsTxt,
                name: owner,
                path: None,
                value: dns01_value(&key_auth),
            },
        })
    }

    /// Where `_acme-challenge.<name>` points: the CNAME target every authoritative server
    /// agrees on (followed to the end of the chain).
    async fn delegated_target(&self, owner: &str, value: &str) -> Result<String, ProviderError> {
        let transient = |detail: String| {
            ProviderError::new(&self.name, "dns-cname", ErrorKind::Transient).with_detail(detail)
        };
        let report = self
            .dns
            .check_name(owner, &Expect::Txt(value.to_string()))
            .await
            .map_err(|e| transient(format!("cannot follow the delegation CNAME: {e}")))?;
        if report.final_name.eq_ignore_ascii_case(owner) {
            return Err(transient(format!(
                "dns-cname needs a CNAME at {owner} pointing into a zone dcvd's publisher can \
                 update, and there is none ({}); create it, or use dns-txt",
                report.summary()
            )));
        }
        Ok(report.final_name)
    }

    pub(super) async fn tokens(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        let mut data = OrderData::from_ref(&self.name, &order)?;
        let account = self.account().await?;
        let (r, seen) = observed(async {
            let mut o = account.order(order.ca_order_id.to_string()).await?;
            read_authz(&mut o).await
        })
        .await;
        let authz = r.map_err(|e| self.err("authorizations", e, seen))?;
        let thumb = account.key_thumbprint().to_string();
        let mut challenges = Vec::new();
        for (name, method) in names {
            let a = authz
                .iter()
                .find(|a| a.name.as_ref() == Some(name))
                .ok_or_else(|| {
                    self.permanent(
                        "authorizations",
                        format!(
                            "order {} has no authorization for {name}",
                            order.ca_order_id
                        ),
                    )
                })?;
            challenges.push((
                name.clone(),
                self.challenge_for(name, *method, a, &thumb).await?,
            ));
            data.methods.insert(name.to_string(), *method);
        }
        Ok(Tokens {
            challenges,
            ca_data: Some(data.to_value()),
        })
    }

    /// Tell the CA the challenge of each name is in place (skipping names no longer
    /// pending and challenges already processing, so a repeat is harmless).
    pub(super) async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        let data = OrderData::from_ref(&self.name, &order)?;
        let account = self.account().await?;
        let (r, seen) = observed(async {
            let mut o = account.order(order.ca_order_id.to_string()).await?;
            let mut out = Vec::new();
            let mut it = o.authorizations();
            while let Some(h) = it.next().await {
                let mut h = h?;
                let a = Authz::from_state(&h);
                let Some(name) = a.name.clone().filter(|n| names.contains(n)) else {
                    continue;
                };
                if a.status != AuthorizationStatus::Pending {
                    out.push((name, a.dcv()));
                    continue;
                }
                let method = data.methods.get(name.as_str()).copied();
                let ty = challenge_type(method.unwrap_or(DcvMethod::DnsTxt));
                match h.challenge(ty.clone()) {
                    Some(mut ch) => {
                        if ch.status == ChallengeStatus::Pending {
                            ch.set_ready().await?;
                        }
                        out.push((name, NameDcv::Pending));
                    }
                    None => out.push((
                        name,
                        NameDcv::Invalid(format!("the CA offers no {ty:?} challenge")),
                    )),
                }
            }
            Ok::<_, instant_acme::Error>(out)
        })
        .await;
        Ok(CaStatus {
            order: CaOrderState::InProgress,
            names: r.map_err(|e| self.err("challenge", e, seen))?,
            ca_data: None,
        })
    }

    pub(super) async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        let account = self.account().await?;
        let (r, seen) = observed(async {
            let mut o = account.order(order.ca_order_id.to_string()).await?;
            let status = o.state().status;
            let error = o.state().error.as_ref().map(|p| p.to_string());
            let authz = match status {
                OrderStatus::Pending | OrderStatus::Invalid => read_authz(&mut o).await?,
                _ => Vec::new(),
            };
            Ok::<_, instant_acme::Error>((status, error, authz))
        })
        .await;
        let (status, error, authz) = r.map_err(|e| self.err("order", e, seen))?;
        Ok(status_of(status, error, &authz, order.names))
    }

    /// Deactivate every pending or valid authorization of the order (ACME has no order
    /// cancel; the order itself then becomes invalid).
    pub(super) async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        let account = self.account().await?;
        let (r, seen) = observed(async {
            let mut o = account.order(order.ca_order_id.to_string()).await?;
            let mut it = o.authorizations();
            while let Some(h) = it.next().await {
                let mut h = h?;
                if matches!(
                    h.status,
                    AuthorizationStatus::Pending | AuthorizationStatus::Valid
                ) {
                    h.deactivate().await?;
                }
            }
            Ok::<_, instant_acme::Error>(())
        })
        .await;
        r.map_err(|e| self.err("deactivate", e, seen))
    }
}

/// The neutral status of an order from its ACME status and authorizations. `ready`,
/// `processing` and `valid` all read as issued: `download` finalizes and fetches.
pub(super) fn status_of(
    status: OrderStatus,
    error: Option<String>,
    authz: &[Authz],
    names: &[DomainName],
) -> CaStatus {
    let per_name = |authz: &[Authz]| -> Vec<(DomainName, NameDcv)> {
        authz
            .iter()
            .filter_map(|a| Some((a.name.clone()?, a.dcv())))
            .collect()
    };
    let (order, names) = match status {
        OrderStatus::Pending => (CaOrderState::InProgress, per_name(authz)),
        OrderStatus::Ready | OrderStatus::Processing | OrderStatus::Valid => (
            CaOrderState::Issued,
            names.iter().map(|n| (n.clone(), NameDcv::Valid)).collect(),
        ),
        OrderStatus::Invalid => {
            let names = per_name(authz);
            let why = error
                .or_else(|| {
                    names.iter().find_map(|(n, d)| match d {
                        NameDcv::Invalid(w) => Some(format!("{n}: {w}")),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| "the order is invalid".into());
            (CaOrderState::Failed(why), names)
        }
    };
    CaStatus {
        order,
        names,
        ca_data: None,
    }
}
