//! Creating an order: a fresh key and CSR (off the async workers), each name's first DCV
//! method by `decide::first_method`, a random reference, and the pending row. Nothing is
//! sent to the CA here; the order's first step submits it.

use tracing::info;

use crate::config::CertificateConfig;
use crate::lifecycle::engine::Engine;
use crate::lifecycle::renew::Need;
use crate::model::DomainName;
use crate::store::{NewOrder, StoreError};

impl Engine {
    /// Generate the key and CSR and write a pending order for `cert`.
    pub async fn create_order(
        &self,
        cert: &CertificateConfig,
        names: Vec<DomainName>,
        renewal_of: Option<String>,
        need: &Need,
    ) -> Result<i64, StoreError> {
        let key_type = cert.key.0;
        let csr_names = names.clone();
        let kc =
            tokio::task::spawn_blocking(move || crate::pki::key::generate(key_type, &csr_names))
                .await
                .map_err(|e| StoreError::KeyGeneration {
                    certificate: cert.name.clone(),
                    detail: format!("the key generation task ended: {e}"),
                })?
                .map_err(|e| StoreError::KeyGeneration {
                    certificate: cert.name.clone(),
                    detail: e.to_string(),
                })?;
        let authz = names
            .iter()
            .map(|n| crate::lifecycle::decide::first_method(cert, n))
            .collect();
        let reference = format!("dcvd{}", hex::encode(rand::random::<[u8; 8]>()));
        let new = NewOrder {
            certificate: cert.name.clone(),
            provider: cert.provider.clone(),
            reference,
            names,
            authz,
            key_type,
            private_key_pem: kc.key_pem,
            csr_pem: kc.csr_pem,
            csr_der: kc.csr_der,
            renewal_of,
            reason: need.to_string(),
        };
        let id = self
            .ctx
            .store
            .create_order(&new, self.ctx.clock.now())
            .await?;
        info!(order_id = id, certificate = %cert.name, provider = %cert.provider, reason = %need, "new order");
        Ok(id)
    }
}
