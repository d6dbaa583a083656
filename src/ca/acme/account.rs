//! The ACME account: loaded from the database, or registered once (terms accepted,
//! contacts, External Account Binding) and its key written to the database.
//!
//! Registration happens before the key is stored (instant-acme generates the key inside
//! `create`); a crash between the two leaves an unused account at the CA, and the next
//! start registers another. Concurrent first orders share one registration (`OnceCell`).

use instant_acme::{Account, ExternalAccountKey, NewAccount};
use rustls::pki_types::PrivatePkcs8KeyDer;
use secrecy::{ExposeSecret, SecretSlice};
use tracing::info;

use super::AcmeProvider;
use super::http::{ReqwestHttp, observed};
use crate::ca::{ErrorKind, ProviderError};

impl AcmeProvider {
    /// The account, loading or registering it on first use.
    pub(super) async fn account(&self) -> Result<Account, ProviderError> {
        self.account
            .get_or_try_init(|| self.load_or_register())
            .await
            .cloned()
    }

    fn builder(&self) -> instant_acme::AccountBuilder {
        Account::builder_with_http(Box::new(ReqwestHttp(self.transport.clone())))
    }

    fn store_error(&self, e: String) -> ProviderError {
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
            .load(&self.name, &self.directory_url)
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
            .save(
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

/// A registered ACME account. The key never appears in Debug output.
pub struct AcmeAccount {
    pub account_url: String,
    /// PKCS#8 DER of the account's ECDSA P-256 key.
    pub key_pkcs8: SecretSlice<u8>,
}

impl std::fmt::Debug for AcmeAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeAccount")
            .field("account_url", &self.account_url)
            .field("key_pkcs8", &"[redacted]")
            .finish()
    }
}

/// Where the ACME client keeps its accounts: the database (`impl AccountStore for Store`).
/// Errors are text for the operator; the caller retries them as transient.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// The account of `provider` at `directory_url`, if one was registered.
    async fn load(
        &self,
        provider: &str,
        directory_url: &str,
    ) -> Result<Option<AcmeAccount>, String>;

    /// Keep a newly registered account. A row already there (another process registered
    /// first) wins and is returned, so every caller ends up using the same account.
    async fn save(
        &self,
        provider: &str,
        directory_url: &str,
        account_url: &str,
        key_pkcs8: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<AcmeAccount, String>;
}
