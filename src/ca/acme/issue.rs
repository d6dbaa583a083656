//! Finalizing with our CSR, waiting for issuance and fetching the chain; ARI windows.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use instant_acme::{CertificateIdentifier, OrderStatus};
use rustls::pki_types::CertificateDer;

use super::http::{last_retry_after, observed, ungated};
use super::{AcmeProvider, DOWNLOAD_WAIT};
use crate::ca::{ErrorKind, IssuedChain, OrderRef, ProviderError};

/// Longest one renewalInfo lookup may take (it runs while looking for due renewals).
const ARI_TIMEOUT: Duration = Duration::from_secs(5);

/// How one download attempt ended.
enum Fetched {
    Chain(String),
    NotReady(OrderStatus),
    Invalid(String),
    StillProcessing(Option<Duration>),
}

impl AcmeProvider {
    /// Finalize when the order is `ready` (never twice: a finalized order is `processing`
    /// or `valid`), wait up to `DOWNLOAD_WAIT` while it is processing, fetch the chain.
    pub(super) async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        let account = self.account().await?;
        let started = tokio::time::Instant::now();
        let (r, seen) = observed(async {
            let mut o = account.order(order.ca_order_id.to_string()).await?;
            if o.state().status == OrderStatus::Ready {
                o.finalize_csr(order.csr_der).await?;
            }
            let mut delay = Duration::from_millis(25);
            loop {
                match o.state().status {
                    OrderStatus::Valid => {
                        return match o.certificate().await? {
                            Some(pem) => Ok(Fetched::Chain(pem)),
                            None => Ok(Fetched::StillProcessing(None)),
                        };
                    }
                    OrderStatus::Invalid => {
                        let why = o.state().error.as_ref().map(|p| p.to_string());
                        return Ok(Fetched::Invalid(why.unwrap_or_else(|| "invalid".into())));
                    }
                    OrderStatus::Pending => return Ok(Fetched::NotReady(OrderStatus::Pending)),
                    OrderStatus::Ready | OrderStatus::Processing => {}
                }
                let hint = last_retry_after();
                let wait = hint.unwrap_or(delay);
                if started.elapsed() + wait > DOWNLOAD_WAIT {
                    return Ok(Fetched::StillProcessing(hint));
                }
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(1));
                o.refresh().await?;
            }
        })
        .await;
        let fetched = r.map_err(|e| self.err("finalize", e, seen))?;
        let endpoint = "certificate";
        match fetched {
            Fetched::Chain(pem) => IssuedChain::from_bundle(&pem).map_err(|why| {
                ProviderError::malformed(
                    &self.name,
                    endpoint,
                    200,
                    format!(
                        "the certificate chain of order {} is damaged ({why}); will retry",
                        order.ca_order_id
                    ),
                )
            }),
            Fetched::Invalid(why) => Err(self.permanent(
                endpoint,
                format!("the CA refused to issue order {}: {why}", order.ca_order_id),
            )),
            Fetched::NotReady(s) => Err(ProviderError::new(
                &self.name,
                endpoint,
                ErrorKind::Transient,
            )
            .with_detail(format!(
                "order {} is {s:?}, not ready to finalize; will poll again",
                order.ca_order_id
            ))),
            Fetched::StillProcessing(hint) => {
                Err(
                    ProviderError::new(&self.name, endpoint, ErrorKind::Transient)
                        .with_retry_after(hint)
                        .with_detail(format!(
                            "the CA is still processing order {} after {}s; will try again",
                            order.ca_order_id,
                            DOWNLOAD_WAIT.as_secs()
                        )),
                )
            }
        }
    }

    /// The CA's suggested renewal window (RFC 9773) for the leaf in `cert_pem`; `None`
    /// when the server offers no renewalInfo or the lookup fails (logged).
    pub(super) async fn renewal_window(
        &self,
        cert_pem: &str,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let leaf = crate::pki::pem::parse_certificates(cert_pem)
            .ok()?
            .into_iter()
            .next()?;
        let der = CertificateDer::from(leaf.der);
        let id = match CertificateIdentifier::try_from(&der) {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(provider = %self.name, "no ARI identifier for the certificate: {e}");
                return None;
            }
        };
        if self.ari_unsupported.load(Ordering::Relaxed) {
            return None;
        }
        let account = self.account().await.ok()?;
        // Without a rate-limit permit: asked for every certificate on every renewal check,
        // and CAs exempt renewalInfo from their limits.
        let lookup = ungated(observed(account.renewal_info(&id)));
        let Ok((r, _)) = tokio::time::timeout(ARI_TIMEOUT, lookup).await else {
            tracing::warn!(provider = %self.name, "ACME renewalInfo lookup timed out; renewing by renew_before");
            return None;
        };
        match r {
            Ok((info, _)) => {
                let w = info.suggested_window;
                let conv = |t: time::OffsetDateTime| {
                    DateTime::<Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond())
                };
                Some((conv(w.start)?, conv(w.end)?))
            }
            Err(instant_acme::Error::Unsupported(_)) => {
                // The directory has no renewalInfo: do not ask again until a restart.
                self.ari_unsupported.store(true, Ordering::Relaxed);
                None
            }
            Err(e) => {
                tracing::warn!(provider = %self.name, "ACME renewalInfo lookup failed: {e}; renewing by renew_before");
                None
            }
        }
    }
}
