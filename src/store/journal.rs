//! The cleanup journal: every token is recorded before it is published and removed
//! (with retries, across restarts) once its order ended or its method was replaced.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Store, StoreError, to_ms};
use crate::model::Challenge;

#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub id: i64,
    pub order_id: i64,
    pub publisher: String,
    pub challenge: Challenge,
    pub attempts: u32,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    order_id: i64,
    publisher: String,
    challenge_json: String,
    attempts: i64,
}

impl Store {
    /// Record a token about to be published. Idempotent per (order, publisher, token):
    /// a step re-run after a crash finds the entry it wrote before.
    pub async fn journal_add(
        &self,
        order_id: i64,
        publisher: &str,
        challenge: &Challenge,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let json = serde_json::to_string(challenge).unwrap_or_default();
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM cleanup_journal WHERE order_id = ? AND publisher = ? AND challenge_json = ? AND due_at IS NULL",
        )
        .bind(order_id)
        .bind(publisher)
        .bind(&json)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO cleanup_journal (order_id, publisher, challenge_json, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(order_id)
        .bind(publisher)
        .bind(json)
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?)
    }

    /// Tokens of `order_id` for `challenge` may go now (method replaced, token renewed).
    pub async fn journal_release(
        &self,
        order_id: i64,
        challenge: &Challenge,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Matched on kind and value, not the name: a delegated token was published at
        // the CNAME target rather than at the challenge's own name.
        sqlx::query(
            "UPDATE cleanup_journal SET due_at = ? WHERE order_id = ? AND due_at IS NULL
             AND json_extract(challenge_json, '$.kind') = ? AND json_extract(challenge_json, '$.value') = ?",
        )
            .bind(to_ms(now))
            .bind(order_id)
            .bind(challenge.kind.as_str())
            .bind(&challenge.value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Due entries, oldest first. An entry whose row does not parse comes back as
    /// `Err((order_id, error))` beside the others, so one damaged row never stops the
    /// cleanup of the rest (the caller quarantines it).
    pub async fn journal_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Result<JournalEntry, (i64, StoreError)>>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, order_id, publisher, challenge_json, attempts FROM cleanup_journal
             WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
        )
        .bind(to_ms(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let challenge = serde_json::from_str(&r.challenge_json).map_err(|e| {
                    (
                        r.order_id,
                        StoreError::Corrupt {
                            table: "cleanup_journal",
                            id: r.id,
                            column: "challenge_json",
                            detail: e.to_string(),
                        },
                    )
                })?;
                Ok(JournalEntry {
                    challenge,
                    id: r.id,
                    order_id: r.order_id,
                    publisher: r.publisher,
                    attempts: r.attempts.clamp(0, u32::MAX as i64) as u32,
                })
            })
            .collect())
    }

    pub async fn journal_next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<i64> =
            sqlx::query_scalar("SELECT MIN(due_at) FROM cleanup_journal WHERE due_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(t.map(super::from_ms))
    }

    pub async fn journal_done(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cleanup_journal WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn journal_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE cleanup_journal SET attempts = attempts + 1, last_error = ?, due_at = ? WHERE id = ?")
            .bind(error)
            .bind(to_ms(retry_at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Entries still present (published or due), for `orders show` and tests.
    pub async fn journal_for_order(
        &self,
        order_id: i64,
    ) -> Result<Vec<(Challenge, bool, Option<String>)>, StoreError> {
        let rows: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT challenge_json, due_at, last_error FROM cleanup_journal WHERE order_id = ? ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(j, due, err)| Some((serde_json::from_str(&j).ok()?, due.is_some(), err)))
            .collect())
    }
}
