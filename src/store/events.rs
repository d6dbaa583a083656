//! SQL for the append-only event history of each order.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::rows::EventRow;
use super::{Event, Store, StoreError, from_ms, to_ms};
use crate::model::EventKind;

/// An event to append in the same transaction as a state change.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub domain: Option<String>,
    pub message: String,
}

impl Store {
    /// Append one event outside a state change (e.g. a deploy hook's outcome).
    pub async fn add_event(
        &self,
        order_id: i64,
        e: &NewEvent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_event(&mut tx, order_id, to_ms(now), e).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn events(&self, order_id: i64) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> =
            sqlx::query_as("SELECT * FROM events WHERE order_id = ? ORDER BY id")
                .bind(order_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(Event::from).collect())
    }

    /// The newest CA call event per provider: (provider, when, message). For `status`.
    pub async fn provider_health(
        &self,
    ) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT o.provider, e.at, e.message FROM events e JOIN orders o ON o.id = e.order_id
             WHERE e.id IN (SELECT MAX(e2.id) FROM events e2 JOIN orders o2 ON o2.id = e2.order_id
                            WHERE e2.kind = ?1 GROUP BY o2.provider)
             ORDER BY o.provider",
        )
        .bind(EventKind::CaCall.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(p, at, m)| (p, from_ms(at), m))
            .collect())
    }

    /// Events with an id above `after`, oldest first, with their order's certificate
    /// (for live progress displays such as `dcvd demo`).
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(String, Event)>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            certificate: String,
            #[sqlx(flatten)]
            event: EventRow,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.certificate, e.id, e.order_id, e.at, e.kind, e.domain, e.message
             FROM events e JOIN orders o ON o.id = e.order_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.certificate, Event::from(r.event)))
            .collect())
    }
}

pub(super) async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    order_id: i64,
    at: i64,
    e: &NewEvent,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO events (order_id, at, kind, domain, message) VALUES (?, ?, ?, ?, ?)")
        .bind(order_id)
        .bind(at)
        .bind(e.kind.as_str())
        .bind(&e.domain)
        .bind(&e.message)
        .execute(tx)
        .await?;
    Ok(())
}
