//! SQL for adopted certificates: one found valid in `output_dir` is recorded as the
//! certificate's issued one, with no order (nothing was bought).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, to_ms};
use crate::model::DomainName;

/// What [`Store::record_adopted`] writes for a certificate.
#[derive(Debug, Clone)]
pub struct Adoption {
    pub certificate: String,
    pub provider: String,
    pub names: Vec<DomainName>,
    pub not_after: DateTime<Utc>,
    pub serial: String,
    pub issuer: String,
}

impl Store {
    /// Record `a` as the certificate's issued certificate (source `adopted`). Only a
    /// certificate with no order of dcvd's in flight and none issued is adopted: returns
    /// false (and writes nothing) otherwise, so an adoption never hides an order.
    pub async fn record_adopted(
        &self,
        a: &Adoption,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let names: Vec<String> = a.names.iter().map(|n| n.to_string()).collect();
        let names_json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        let t = to_ms(now);
        let r = sqlx::query(
            "INSERT INTO certificates (name, provider, names_json, not_after, source, serial, issuer, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'adopted', ?5, ?6, ?7, ?7)
             ON CONFLICT(name) DO UPDATE SET provider = excluded.provider, names_json = excluded.names_json,
               not_after = excluded.not_after, source = 'adopted', serial = excluded.serial,
               issuer = excluded.issuer, hold = NULL, updated_at = excluded.updated_at
             WHERE certificates.current_order_id IS NULL AND certificates.issued_order_id IS NULL",
        )
        .bind(&a.certificate)
        .bind(&a.provider)
        .bind(names_json)
        .bind(to_ms(a.not_after))
        .bind(&a.serial)
        .bind(&a.issuer)
        .bind(t)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Set (`Some`) or clear (`None`) why the certificate gets no order. Creates
    /// the certificate's row if it has none. True when the value changed (log then).
    pub async fn set_hold(
        &self,
        certificate: &str,
        provider: &str,
        names: &[DomainName],
        hold: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(hold) = hold else {
            let r = sqlx::query(
                "UPDATE certificates SET hold = NULL, updated_at = ?
                 WHERE name = ? AND hold IS NOT NULL",
            )
            .bind(to_ms(now))
            .bind(certificate)
            .execute(&self.pool)
            .await?;
            return Ok(r.rows_affected() == 1);
        };
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let names_json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        let r = sqlx::query(
            "INSERT INTO certificates (name, provider, names_json, hold, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT(name) DO UPDATE SET hold = excluded.hold,
               updated_at = excluded.updated_at
             WHERE certificates.hold IS NOT excluded.hold",
        )
        .bind(certificate)
        .bind(provider)
        .bind(names_json)
        .bind(hold)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::CertSource;

    fn adoption() -> Adoption {
        Adoption {
            certificate: "www".into(),
            provider: "main".into(),
            names: vec![DomainName::parse("www.example.com").unwrap()],
            not_after: Utc.with_ymd_and_hms(2027, 3, 2, 4, 31, 11).unwrap(),
            serial: "08".into(),
            issuer: "CN=Test CA".into(),
        }
    }

    #[tokio::test]
    async fn an_adopted_certificate_reads_back_as_issued_with_its_details() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dcvd.db")).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        assert!(store.record_adopted(&adoption(), now).await.unwrap());
        let recs = store.certificates().await.unwrap();
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r.source, Some(CertSource::Adopted));
        assert!(r.has_issued());
        assert_eq!(r.issued_order_id, None);
        assert_eq!(r.not_after, Some(adoption().not_after));
        assert_eq!(r.serial.as_deref(), Some("08"));
        assert_eq!(r.issuer.as_deref(), Some("CN=Test CA"));
        assert_eq!(r.names, vec!["www.example.com".to_string()]);
        assert!(
            store.list_orders(None).await.unwrap().is_empty(),
            "no order"
        );
    }

    #[tokio::test]
    async fn a_certificate_with_an_order_of_dcvds_is_never_adopted_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dcvd.db")).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        store
            .create_order(&crate::store::orders::tests::new_order("r1"), now)
            .await
            .unwrap();
        assert!(!store.record_adopted(&adoption(), now).await.unwrap());
        let r = &store.certificates().await.unwrap()[0];
        assert_eq!(r.source, None);
        assert!(!r.has_issued());
    }

    #[tokio::test]
    async fn a_damaged_source_marks_the_row_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dcvd.db")).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        store.record_adopted(&adoption(), now).await.unwrap();
        sqlx::query("UPDATE certificates SET source = 'found-it'")
            .execute(store.pool())
            .await
            .unwrap();
        let r = &store.certificates().await.unwrap()[0];
        assert!(!r.has_issued());
        let why = r.damaged.as_deref().unwrap();
        assert!(why.contains("source") && why.contains("www"), "{why}");
    }
}
