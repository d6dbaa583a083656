//! SQL for `dcvd status`: CA orders dcvd no longer tracks that may still be pending at
//! the CA. Failed orders whose cancel at the CA is not done yet or was refused, and
//! duplicate CA orders (found beside an adopted one) whose cancellation did not go through.

use serde::Serialize;

use super::{Store, StoreError, from_ms};
use chrono::{DateTime, Utc};

/// A CA order that may still be pending at the CA although dcvd no longer tracks it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenAtCa {
    /// dcvd's order it belongs to (the failed order, or the order a duplicate was found beside).
    pub order_id: i64,
    pub certificate: String,
    pub provider: String,
    pub ca_order_id: String,
    /// `cancel_pending` (dcvd is still trying), `cancel_refused` (the CA said no) or
    /// `duplicate_not_canceled`.
    pub why: &'static str,
    /// The CA's last answer (its refusal, or the last error of a cancel still retried).
    pub answer: Option<String>,
    /// Cancel attempts that failed so far (pending cancels only).
    pub attempts: u32,
    /// When dcvd tries again (pending cancels only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
);

impl Store {
    /// Every CA order that may still be pending at the CA although dcvd abandoned it,
    /// oldest order first.
    pub async fn open_at_ca(&self) -> Result<Vec<OpenAtCa>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, certificate, provider, ca_order_id, ca_cancel, ca_cancel_answer,
                    ca_cancel_attempts, ca_cancel_at
             FROM orders
             WHERE ca_cancel IN ('wanted', 'refused') AND ca_order_id IS NOT NULL
             UNION ALL
             SELECT d.order_id, o.certificate, d.provider, d.ca_order_id, 'duplicate', d.outcome, 0, NULL
             FROM ca_duplicates d JOIN orders o ON o.id = d.order_id
             WHERE d.canceled = 0
             ORDER BY 1, 4",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(order_id, certificate, provider, ca_order_id, state, answer, attempts, at)| {
                    OpenAtCa {
                        order_id,
                        certificate,
                        provider,
                        ca_order_id,
                        why: match state.as_str() {
                            "wanted" => "cancel_pending",
                            "refused" => "cancel_refused",
                            _ => "duplicate_not_canceled",
                        },
                        answer,
                        attempts: attempts.clamp(0, u32::MAX as i64) as u32,
                        next_attempt_at: at.map(from_ms),
                    }
                },
            )
            .collect())
    }
}
