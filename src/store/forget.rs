//! SQL for `dcvd forget`: drop everything the database holds about a certificate that
//! was removed from the configuration.

use super::{Store, StoreError};

/// What [`Store::forget_certificate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forget {
    /// Its rows are gone: the certificate row and this many orders (with their
    /// authorizations, events and recorded CA duplicates).
    Done { orders: u64 },
    /// The database holds nothing for it.
    Unknown,
    /// It has a live order: cancel that first.
    Live(i64),
    /// Tokens its orders published are still to be removed (cleanup-journal entries):
    /// dropping them would leave the tokens published with nobody to remove them.
    Cleanups(usize),
}

impl Store {
    /// Delete the certificate's row and all its orders' rows, in one transaction; refused
    /// (nothing deleted) while it has a live order or a pending cleanup-journal entry.
    pub async fn forget_certificate(&self, certificate: &str) -> Result<Forget, StoreError> {
        let mut tx = self.pool.begin().await?;
        let known: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM certificates WHERE name = ?1)
                  + (SELECT COUNT(*) FROM orders WHERE certificate = ?1)",
        )
        .bind(certificate)
        .fetch_one(&mut *tx)
        .await?;
        if known == 0 {
            return Ok(Forget::Unknown);
        }
        // Live as `orders.rs` counts it: any state but an ended one (a damaged, unreadable
        // state counts as live too), or the certificate's current order.
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE certificate = ?1
               AND (state NOT IN ('issued','failed','canceled')
                    OR id IN (SELECT current_order_id FROM certificates WHERE name = ?1))
             ORDER BY id DESC LIMIT 1",
        )
        .bind(certificate)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = live {
            return Ok(Forget::Live(id));
        }
        let cleanups: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cleanup_journal
             WHERE order_id IN (SELECT id FROM orders WHERE certificate = ?)",
        )
        .bind(certificate)
        .fetch_one(&mut *tx)
        .await?;
        if cleanups > 0 {
            return Ok(Forget::Cleanups(cleanups as usize));
        }
        for sql in [
            "DELETE FROM authorizations WHERE order_id IN (SELECT id FROM orders WHERE certificate = ?)",
            "DELETE FROM events WHERE order_id IN (SELECT id FROM orders WHERE certificate = ?)",
            "DELETE FROM ca_duplicates WHERE order_id IN (SELECT id FROM orders WHERE certificate = ?)",
        ] {
            sqlx::query(sql).bind(certificate).execute(&mut *tx).await?;
        }
        let orders = sqlx::query("DELETE FROM orders WHERE certificate = ?")
            .bind(certificate)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM certificates WHERE name = ?")
            .bind(certificate)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Forget::Done { orders })
    }
}
