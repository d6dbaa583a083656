//! SQL for paused certificates: an operator stopped new orders and renewals for one
//! (`dcvd pause`, `dcvd orders cancel`) until `dcvd resume`.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, to_ms};
use crate::model::DomainName;

/// When and why an operator paused a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Paused {
    pub at: DateTime<Utc>,
    pub reason: String,
}

impl Store {
    /// Pause the certificate (creating its row if it has none). An already paused one
    /// keeps its first time and reason. True when it was not paused before.
    pub async fn pause_certificate(
        &self,
        certificate: &str,
        provider: &str,
        names: &[DomainName],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let names_json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        let r = sqlx::query(
            "INSERT INTO certificates (name, provider, names_json, paused_at, paused_reason, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?4)
             ON CONFLICT(name) DO UPDATE SET paused_at = excluded.paused_at,
               paused_reason = excluded.paused_reason, updated_at = excluded.updated_at
             WHERE certificates.paused_at IS NULL",
        )
        .bind(certificate)
        .bind(provider)
        .bind(names_json)
        .bind(to_ms(now))
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Pause the certificate whose row exists (`dcvd orders cancel`: its order made it).
    /// True when it was not paused before.
    pub async fn pause_existing(
        &self,
        certificate: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE certificates SET paused_at = ?1, paused_reason = ?2, updated_at = ?1
             WHERE name = ?3 AND paused_at IS NULL",
        )
        .bind(to_ms(now))
        .bind(reason)
        .bind(certificate)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Resume a paused certificate. True when it was paused.
    pub async fn resume_certificate(
        &self,
        certificate: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE certificates SET paused_at = NULL, paused_reason = NULL, updated_at = ?
             WHERE name = ? AND paused_at IS NOT NULL",
        )
        .bind(to_ms(now))
        .bind(certificate)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn pause_keeps_the_first_reason_and_resume_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dcvd.db")).await.unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let names = [DomainName::parse("www.example.com").unwrap()];
        assert!(
            store
                .pause_certificate("www", "ca", &names, "first", t0)
                .await
                .unwrap()
        );
        let t1 = t0 + chrono::Duration::hours(1);
        assert!(!store.pause_existing("www", "second", t1).await.unwrap());
        let r = &store.certificates().await.unwrap()[0];
        assert_eq!(
            r.paused,
            Some(Paused {
                at: t0,
                reason: "first".into()
            })
        );
        assert_eq!(r.names, vec!["www.example.com".to_string()]);
        assert!(store.resume_certificate("www", t1).await.unwrap());
        assert!(!store.resume_certificate("www", t1).await.unwrap());
        assert_eq!(store.certificates().await.unwrap()[0].paused, None);
        assert!(!store.pause_existing("absent", "x", t1).await.unwrap());
    }
}
