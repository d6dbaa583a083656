//! What `Engine::ensure_orders` needs to know about every certificate's orders, read in
//! one query (not two per certificate), so start-up with many certificates stays fast.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_ms};
use crate::model::{DomainName, OrderState};

/// The newest order of a certificate.
#[derive(Debug, Clone)]
pub struct LatestOrder {
    pub id: i64,
    pub state: OrderState,
    pub updated_at: DateTime<Utc>,
    /// Its names; read only for failed and canceled orders (empty otherwise), the only
    /// ones whose names decide anything.
    pub names: Vec<DomainName>,
    /// It failed before anything was bought (no CA order, no submit that may have
    /// reached the CA) because its stored key or CSR was damaged: replace it at once.
    pub replace_now: bool,
}

/// Per certificate: its newest order, and the CA's id of its issued order (for renewals).
#[derive(Debug, Clone, Default)]
pub struct OrderOverview {
    pub latest: Option<LatestOrder>,
    pub issued_ca_order_id: Option<String>,
    /// The newest order's row does not read (`latest` is then `None`): dcvd places no
    /// order for this certificate until it is repaired, as it cannot tell whether that
    /// order is still live.
    pub damaged: Option<String>,
}

type Row = (
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

impl Store {
    /// Every certificate's newest order and issued order's CA id, keyed by certificate.
    pub async fn order_overview(&self) -> Result<HashMap<String, OrderOverview>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT c.name, o.id, o.state, o.updated_at,
                    CASE WHEN o.state IN ('failed', 'canceled') THEN o.names_json END,
                    i.ca_order_id,
                    o.state = 'failed' AND o.ca_order_id IS NULL AND o.submit_maybe_sent = 0
                      AND substr(o.failure_reason, 1, length(?1)) = ?1
             FROM certificates c
             LEFT JOIN orders o ON o.id = (SELECT MAX(id) FROM orders WHERE certificate = c.name)
             LEFT JOIN orders i ON i.id = c.issued_order_id",
        )
        .bind(super::DAMAGED_KEY_REASON)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for (name, id, state, updated_at, names_json, issued_ca_order_id, replace_now) in rows {
            let mut damaged = None;
            let latest = match (id, state, updated_at) {
                (Some(id), Some(state), Some(updated_at)) => {
                    let corrupt = |column, detail: String| {
                        StoreError::Corrupt {
                            table: "orders",
                            id,
                            column,
                            detail,
                        }
                        .to_string()
                    };
                    let parsed = state
                        .parse::<OrderState>()
                        .map_err(|e| corrupt("state", e))
                        .and_then(|state| {
                            let names = match names_json {
                                Some(j) => serde_json::from_str(&j)
                                    .map_err(|e| corrupt("names_json", e.to_string()))?,
                                None => Vec::new(),
                            };
                            Ok((state, names))
                        });
                    match parsed {
                        Ok((state, names)) => Some(LatestOrder {
                            id,
                            state,
                            updated_at: from_ms(updated_at),
                            names,
                            replace_now: replace_now.unwrap_or(false),
                        }),
                        Err(e) => {
                            damaged = Some(e);
                            None
                        }
                    }
                }
                _ => None,
            };
            out.insert(
                name,
                OrderOverview {
                    latest,
                    issued_ca_order_id,
                    damaged,
                },
            );
        }
        Ok(out)
    }
}
