//! ACME account rows: the account URL and key of each `kind = "acme"` provider, per
//! directory URL, written once when the account is registered.

use chrono::{DateTime, Utc};
use secrecy::SecretSlice;

use super::{Store, StoreError, to_ms};
use crate::ca::acme::AccountStore;

pub use crate::ca::acme::AcmeAccount;

/// The ACME client keeps its account here (it does not know the database).
#[async_trait::async_trait]
impl AccountStore for Store {
    async fn load(
        &self,
        provider: &str,
        directory_url: &str,
    ) -> Result<Option<AcmeAccount>, String> {
        self.acme_account(provider, directory_url)
            .await
            .map_err(|e| e.to_string())
    }

    async fn save(
        &self,
        provider: &str,
        directory_url: &str,
        account_url: &str,
        key_pkcs8: &[u8],
        now: DateTime<Utc>,
    ) -> Result<AcmeAccount, String> {
        self.save_acme_account(provider, directory_url, account_url, key_pkcs8, now)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Store {
    /// The account of `provider` at `directory_url`, if one was registered.
    pub async fn acme_account(
        &self,
        provider: &str,
        directory_url: &str,
    ) -> Result<Option<AcmeAccount>, StoreError> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT account_url, key_pkcs8 FROM acme_accounts WHERE provider = ? AND directory_url = ?",
        )
        .bind(provider)
        .bind(directory_url)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(account_url, key)| AcmeAccount {
            account_url,
            key_pkcs8: SecretSlice::from(key),
        }))
    }

    /// Keep a newly registered account. A row already there (another process registered
    /// first) wins and is returned, so every caller ends up using the same account.
    pub async fn save_acme_account(
        &self,
        provider: &str,
        directory_url: &str,
        account_url: &str,
        key_pkcs8: &[u8],
        now: DateTime<Utc>,
    ) -> Result<AcmeAccount, StoreError> {
        sqlx::query(
            "INSERT INTO acme_accounts (provider, directory_url, account_url, key_pkcs8, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, directory_url) DO NOTHING",
        )
        .bind(provider)
        .bind(directory_url)
        .bind(account_url)
        .bind(key_pkcs8)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        self.acme_account(provider, directory_url)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("ACME account of provider {provider}")))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn the_first_saved_account_wins_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dcvd.db");
        let store = super::Store::open(&path).await.unwrap();
        let url = "https://acme.test/dir";
        assert!(store.acme_account("le", url).await.unwrap().is_none());
        let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 23, 12, 0, 0).unwrap();
        let a = store
            .save_acme_account("le", url, "https://acme.test/acct/1", &[1, 2, 3], now)
            .await
            .unwrap();
        assert_eq!(a.account_url, "https://acme.test/acct/1");
        let b = store
            .save_acme_account("le", url, "https://acme.test/acct/2", &[9], now)
            .await
            .unwrap();
        assert_eq!(b.account_url, "https://acme.test/acct/1");
        assert_eq!(b.key_pkcs8.expose_secret(), &[1, 2, 3]);
        assert!(!format!("{b:?}").contains("[1, 2, 3]"));
        // Another directory (or provider) is another account.
        assert!(
            store
                .acme_account("le", "https://other.test/dir")
                .await
                .unwrap()
                .is_none()
        );
        drop(store);
        let store = super::Store::open(&path).await.unwrap();
        assert!(store.acme_account("le", url).await.unwrap().is_some());
    }
}
