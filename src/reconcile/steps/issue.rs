//! The last step: download the chain, verify it against our key and names, install, deploy hook.

use super::*;

impl Step<'_> {
    pub(super) async fn download(&mut self) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let r = self.provider.download(self.order_ref()).await;
        self.ca_call("download", started, &r);
        let chain = r?;
        let leaf = crate::csr::key::verify_leaf(
            &chain.leaf_pem,
            &chain.chain_pem,
            &self.order.private_key_pem,
            &self.order.names,
        )
        .map_err(|e| {
            StepError::permanent(format!(
                "the CA's certificate does not match this order: {e}"
            ))
        })?;
        // Four fsynced files and a directory sync: off the async workers.
        let (dir, key, leaf_pem, chain_pem) = (
            self.cert.output_dir.clone(),
            self.order.private_key_pem.clone(),
            chain.leaf_pem.clone(),
            chain.chain_pem.clone(),
        );
        tokio::task::spawn_blocking(move || {
            crate::install::write_files(&dir, &key, &leaf_pem, &chain_pem)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| {
            Err(format!(
                "installing the certificate files: task failed: {e}"
            ))
        })
        .map_err(|message| StepError {
            kind: crate::provider::ErrorKind::Transient,
            message,
            retry_after: None,
        })?;
        self.order.cert_pem = Some(chain.leaf_pem.clone());
        self.order.chain_pem = Some(chain.chain_pem.concat());
        self.order.not_after = Some(leaf.not_after);
        self.set_state(OrderState::Issued);
        self.event(
            "installed",
            None,
            format!(
                "certificate serial {} valid until {} installed in {}",
                leaf.serial_hex,
                leaf.not_after.format("%Y-%m-%d %H:%M UTC"),
                self.cert.output_dir.display()
            ),
        );
        self.ctx
            .metrics
            .certificates_issued
            .get_or_create(&crate::metrics::ProviderLabels {
                provider: self.order.provider.clone(),
            })
            .inc();
        if !self.cert.deploy_hook.is_empty() {
            let env = [
                ("DCVD_CERTIFICATE", self.order.certificate.clone()),
                (
                    "DCVD_OUTPUT_DIR",
                    self.cert.output_dir.display().to_string(),
                ),
                ("DCVD_ORDER_ID", self.order.id.to_string()),
            ];
            let outcome = crate::install::run_hook(
                &self.cert.deploy_hook,
                &env,
                self.cert.deploy_hook_timeout,
            )
            .await;
            let msg = format!(
                "deploy hook {:?} {}",
                self.cert.deploy_hook,
                outcome.describe()
            );
            if !outcome.success() {
                warn!(order_id = self.order.id, certificate = %self.order.certificate, "{msg}; the certificate files are installed, the hook is not retried");
            }
            self.event("deploy_hook", None, msg);
        }
        Ok(())
    }
}
