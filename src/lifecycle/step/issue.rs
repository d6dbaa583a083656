//! The last step: download the chain, verify it against our key and names, install, deploy hook.

use super::*;
use crate::model::EventKind;

impl Step<'_> {
    /// Download the chain, verify it against our key and names, install the files and run
    /// the deploy hook. Safe to run twice: the download is a read of an issued certificate
    /// and nothing is written before it verifies; the files are written to temporaries and
    /// renamed (a reader sees the old set or the new one); the order is marked issued only
    /// in the step's commit, so a crash before it downloads and installs the same
    /// certificate again (and runs the hook once more), never orders anything.
    pub(super) async fn download(&mut self) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let r = self.provider.download(self.order_ref()).await;
        self.ca_call("download", started, &r);
        let chain = r?;
        // Nothing is written before the whole download checks out: a cut or broken chain
        // (R2), a leaf for another key or other names. Such a download is retried with
        // backoff, never installed, and never fails the order: failing would lead to a new
        // (paid) order, while the CA's next download usually is whole.
        let leaf = crate::pki::key::verify_leaf(
            &chain.leaf_pem,
            &chain.chain_pem,
            &self.order.private_key_pem,
            &self.order.names,
        )
        .map_err(|e| StepError {
            kind: crate::ca::ErrorKind::Transient,
            message: format!(
                "download refused for order {} ({}): {e}; nothing was written to {} (what is \
                 installed there stays), the download is retried with backoff",
                self.order.id,
                self.order
                    .names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.cert.output_dir.display()
            ),
            retry_after: None,
            failed: crate::lifecycle::retry::Failed::Step,
        })?;
        // Four fsynced files and a directory sync: off the async workers.
        let (dir, key, leaf_pem, chain_pem) = (
            self.cert.output_dir.clone(),
            self.order.private_key_pem.clone(),
            chain.leaf_pem.clone(),
            chain.chain_pem.clone(),
        );
        tokio::task::spawn_blocking(move || {
            crate::pki::install::write_files(&dir, &key, &leaf_pem, &chain_pem)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| {
            Err(format!(
                "installing the certificate files: task failed: {e}"
            ))
        })
        .map_err(|message| StepError {
            kind: crate::ca::ErrorKind::Transient,
            message,
            retry_after: None,
            failed: crate::lifecycle::retry::Failed::Step,
        })?;
        let (leaf_pem, chain_pem) = (chain.leaf_pem.clone(), chain.chain_pem.concat());
        self.apply(|c| c.issued(leaf_pem, chain_pem, leaf.not_after));
        self.event(
            EventKind::Installed,
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
            let outcome = crate::pki::install::run_hook(
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
            self.event(EventKind::DeployHook, None, msg);
        }
        Ok(())
    }
}
