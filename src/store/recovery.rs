//! SQL for submit recovery: the CA order ids dcvd tracks at a provider, and duplicate CA
//! orders found beside an adopted one (with the CA's answer to their cancellation).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError, from_ms, to_ms};

/// A CA order found beside the one an order adopted: the same request placed twice.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Duplicate {
    pub order_id: i64,
    pub ca_order_id: String,
    pub found_at: DateTime<Utc>,
    /// The CA accepted the cancellation.
    pub canceled: bool,
    /// The CA's answer to the cancel request.
    pub outcome: String,
}

impl Store {
    /// Every CA order id dcvd tracks at `provider`: orders' own, and duplicates it has
    /// canceled. Recovery never adopts one of them (again). Duplicates whose cancellation
    /// failed are left out, so the next lookup finds them and tries again.
    pub async fn known_ca_orders(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT ca_order_id FROM orders WHERE provider = ?1 AND ca_order_id IS NOT NULL
             UNION SELECT ca_order_id FROM ca_duplicates WHERE provider = ?1 AND canceled = 1",
        )
        .bind(provider)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The order that tracks CA order `ca_order_id` at `provider`, if any.
    pub async fn order_with_ca_order(
        &self,
        provider: &str,
        ca_order_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE provider = ?1 AND ca_order_id = ?2
             UNION SELECT order_id FROM ca_duplicates WHERE provider = ?1 AND ca_order_id = ?2
             LIMIT 1",
        )
        .bind(provider)
        .bind(ca_order_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Record (or update) what happened to a duplicate CA order of `order_id`.
    pub async fn record_duplicate(
        &self,
        order_id: i64,
        provider: &str,
        ca_order_id: &str,
        canceled: bool,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ca_duplicates (order_id, provider, ca_order_id, found_at, canceled, outcome)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(provider, ca_order_id) DO UPDATE SET canceled = excluded.canceled,
             outcome = excluded.outcome",
        )
        .bind(order_id)
        .bind(provider)
        .bind(ca_order_id)
        .bind(to_ms(now))
        .bind(canceled as i64)
        .bind(outcome)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Duplicate CA orders found for `order_id`, oldest first (for `orders show`).
    pub async fn duplicates(&self, order_id: i64) -> Result<Vec<Duplicate>, StoreError> {
        let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT ca_order_id, found_at, canceled, outcome FROM ca_duplicates
             WHERE order_id = ? ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(ca_order_id, at, canceled, outcome)| Duplicate {
                order_id,
                ca_order_id,
                found_at: from_ms(at),
                canceled: canceled != 0,
                outcome,
            })
            .collect())
    }

    /// Orders waiting for an operator's decision (`submit_unknown`), by provider.
    pub async fn awaiting_operator(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT provider, COUNT(*) FROM orders WHERE state = 'submit_unknown'
             GROUP BY provider ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
