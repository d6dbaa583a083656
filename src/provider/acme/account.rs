//! The ACME account: loaded from the database, or registered once (terms accepted,
//! contacts, External Account Binding) and its key written to the database.
//!
//! Registration happens before the key is stored (instant-acme generates the key inside
//! `create`); a crash between the two leaves an unused account at the CA, and the next
//! start registers another. Concurrent first orders share one registration (`OnceCell`).

use instant_acme::{Account, ExternalAccountKey, NewAccount};
use rustls::pki_types::PrivatePkcs8KeyDer;
use secrecy::ExposeSecret;
use tracing::info;

use super::AcmeProvider;
use super::http::{ReqwestHttp, observed};
use crate::provider::{ErrorKind, ProviderError};

impl AcmeProvider {
    /// The account, loading or registering it on first use.
    pub(super) async fn account(&self) -> Result<Account, ProviderError> {
        self.account
            .get_or_try_init(|| self.load_or_register())
            .await
            .cloned()
    }

    fn builder(&self) -> instant_acme::AccountBuilder {
        Account::builder_with_http(Box::new(ReqwestHttp(self.http.clone())))
    }

    fn store_error(&self, e: crate::store::StoreError) -> ProviderError {
        ProviderError::new(&self.name, "account", ErrorKind::Transient).with_detail(format!(
            "reading or writing the ACME account in the database: {e}"
        ))
    }

    async fn restore(&self, url: String, key: &[u8]) -> Result<Account, ProviderError> {
        let (r, seen) = observed(self.builder().from_parts(
            url,
            PrivatePkcs8KeyDer::from(key.to_vec()),
            self.directory_url.clone(),
        ))
        .await;
        r.map_err(|e| self.err("directory", e, seen))
    }

    async fn load_or_register(&self) -> Result<Account, ProviderError> {
        let stored = self
            .store
            .acme_account(&self.name, &self.directory_url)
            .await
            .map_err(|e| self.store_error(e))?;
        if let Some(a) = stored {
            return self
                .restore(a.account_url, a.key_pkcs8.expose_secret())
                .await;
        }
        let contact: Vec<&str> = self.contact.iter().map(String::as_str).collect();
        let eab = self
            .eab
            .as_ref()
            .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key.expose_secret()));
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (r, seen) = observed(self.builder().create(
            &new,
            self.directory_url.clone(),
            eab.as_ref(),
        ))
        .await;
        let (account, credentials) = r.map_err(|e| self.err("new-account", e, seen))?;
        let saved = self
            .store
            .save_acme_account(
                &self.name,
                &self.directory_url,
                account.id(),
                credentials.private_key().secret_pkcs8_der(),
                self.clock.now(),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        info!(provider = %self.name, account = %saved.account_url, "ACME account ready");
        if saved.account_url == account.id() {
            Ok(account)
        } else {
            // Another process registered first: use the stored account, as it will.
            self.restore(saved.account_url, saved.key_pkcs8.expose_secret())
                .await
        }
    }
}
