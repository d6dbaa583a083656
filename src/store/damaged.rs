//! Quarantine of damaged rows: an order (or cleanup entry) whose row does not parse is
//! marked with the reason and pushed back with plain UPDATEs that read and write no
//! column that could be the damaged one, so one bad row never stalls the rest.

use crate::model::EventKind;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::events::{NewEvent, insert_event};
use super::{Store, StoreError, from_ms, to_ms};

/// Why an order failed before anything was bought: its stored key or CSR is damaged.
/// The certificate gets a fresh order (with a fresh key) at once, as no CA order exists.
pub const DAMAGED_KEY_REASON: &str = "the order's stored private key or CSR is damaged";

/// An order marked damaged, for `status`, `orders show` and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedOrder {
    pub id: i64,
    pub certificate: String,
    /// The raw `state` column (it may be the damaged value itself).
    pub state: String,
    pub reason: String,
    pub since: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

/// A cleanup journal entry marked damaged.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedJournal {
    pub id: i64,
    pub order_id: i64,
    pub publisher: String,
    pub reason: String,
}

impl Store {
    /// Mark order `id` damaged with `reason` and move its next attempt (and a due look for
    /// a late duplicate) to `retry_at`. Returns true when the marker is new or its reason
    /// changed (then an event records it), false when it only backed off again.
    pub async fn quarantine_order(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let previous: Option<Option<String>> =
            sqlx::query_scalar("SELECT damaged FROM orders WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(previous) = previous else {
            return Err(StoreError::NotFound(format!("order {id}")));
        };
        let t = to_ms(now);
        sqlx::query(
            "UPDATE orders SET damaged = ?1, damaged_at = COALESCE(damaged_at, ?2), attempts = attempts + 1,
             next_attempt_at = ?3, dup_check_at = CASE WHEN dup_check_at IS NULL THEN NULL ELSE ?3 END,
             ca_cancel_at = CASE WHEN ca_cancel_at IS NULL THEN NULL ELSE ?3 END
             WHERE id = ?4",
        )
        .bind(reason)
        .bind(t)
        .bind(to_ms(retry_at))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let changed = previous.as_deref() != Some(reason);
        if changed {
            insert_event(
                &mut tx,
                id,
                t,
                &NewEvent {
                    kind: EventKind::Damaged,
                    domain: None,
                    message: format!(
                        "{reason}; the order is on hold (nothing is sent to the CA for it) until the row is repaired"
                    ),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Attempts recorded on a damaged order (the column is an integer, read alone).
    pub async fn damaged_attempts(&self, id: i64) -> Result<u32, StoreError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT attempts FROM orders WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.unwrap_or(0).clamp(0, u32::MAX as i64) as u32)
    }

    /// The order's row reads whole again: drop the marker. True when there was one.
    pub async fn clear_damaged(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE orders SET damaged = NULL, damaged_at = NULL WHERE id = ? AND damaged IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let cleared = r.rows_affected() == 1;
        if cleared {
            insert_event(
                &mut tx,
                id,
                to_ms(now),
                &NewEvent {
                    kind: EventKind::Repaired,
                    domain: None,
                    message: "the order's rows read correctly again; it continues".into(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(cleared)
    }

    /// The damage marker of one order (`None` when it is fine), read alone.
    pub async fn order_damage(&self, id: i64) -> Result<Option<String>, StoreError> {
        let d: Option<Option<String>> =
            sqlx::query_scalar("SELECT damaged FROM orders WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(d.flatten())
    }

    /// Every order marked damaged, oldest mark first.
    pub async fn damaged_orders(&self) -> Result<Vec<DamagedOrder>, StoreError> {
        let rows: Vec<(i64, String, String, String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT id, certificate, state, damaged, damaged_at, next_attempt_at FROM orders
             WHERE damaged IS NOT NULL ORDER BY damaged_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, certificate, state, reason, since, next)| DamagedOrder {
                    id,
                    certificate,
                    state,
                    reason,
                    since: from_ms(since.unwrap_or(0)),
                    next_attempt_at: from_ms(next),
                },
            )
            .collect())
    }

    /// Mark cleanup entry `id` damaged and retry it at `retry_at`. True when the marker
    /// is new or changed (the caller logs then).
    pub async fn journal_quarantine(
        &self,
        id: i64,
        reason: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let previous: Option<Option<String>> =
            sqlx::query_scalar("SELECT damaged FROM cleanup_journal WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        sqlx::query(
            "UPDATE cleanup_journal SET damaged = ?1, attempts = attempts + 1, last_error = ?1, due_at = ?2
             WHERE id = ?3",
        )
        .bind(reason)
        .bind(to_ms(retry_at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(previous.flatten().as_deref() != Some(reason))
    }

    /// Every cleanup entry marked damaged.
    pub async fn damaged_journal(&self) -> Result<Vec<DamagedJournal>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, order_id, publisher, damaged FROM cleanup_journal WHERE damaged IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, order_id, publisher, reason)| DamagedJournal {
                id,
                order_id,
                publisher,
                reason,
            })
            .collect())
    }

    /// True when order `id` failed before anything was bought because its stored key or
    /// CSR was damaged (see `LatestOrder::replace_now`).
    pub async fn failed_before_purchase(&self, id: i64) -> Result<bool, StoreError> {
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM orders WHERE id = ?1 AND state = 'failed' AND ca_order_id IS NULL
             AND submit_maybe_sent = 0 AND substr(failure_reason, 1, length(?2)) = ?2",
        )
        .bind(id)
        .bind(DAMAGED_KEY_REASON)
        .fetch_optional(&self.pool)
        .await?;
        Ok(hit.is_some())
    }
}
