//! Typed rows, parsed once from SQLite into domain types. A row that does not parse
//! becomes `StoreError::Corrupt` naming table, id and column.

use secrecy::SecretString;
use sqlx::FromRow;

use super::{StoreError, from_ms};
use crate::model::DomainName;
pub use crate::model::{Authorization, Event, Order};

#[derive(FromRow)]
pub(super) struct OrderRow {
    id: i64,
    certificate: String,
    provider: String,
    state: String,
    failure_reason: Option<String>,
    reference: String,
    ca_order_id: Option<String>,
    ca_data: String,
    submit_maybe_sent: i64,
    submit_sent_at: Option<i64>,
    unsure_reason: Option<String>,
    unsure_candidates: Option<String>,
    dup_check_at: Option<i64>,
    ca_cancel: Option<String>,
    ca_cancel_at: Option<i64>,
    ca_cancel_attempts: i64,
    ca_cancel_answer: Option<String>,
    damaged: Option<String>,
    names_json: String,
    key_type: String,
    private_key_pem: String,
    csr_pem: String,
    csr_der: Vec<u8>,
    renewal_of: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    last_status_at: Option<i64>,
    ca_state: Option<String>,
    cert_pem: Option<String>,
    chain_pem: Option<String>,
    not_after: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

fn corrupt(
    table: &'static str,
    id: i64,
    column: &'static str,
    detail: &dyn std::fmt::Display,
) -> StoreError {
    StoreError::Corrupt {
        table,
        id,
        column,
        detail: detail.to_string(),
    }
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;
    fn try_from(r: OrderRow) -> Result<Self, StoreError> {
        let id = r.id;
        let c = |col, e: &dyn std::fmt::Display| corrupt("orders", id, col, e);
        Ok(Order {
            id,
            state: r.state.parse().map_err(|e| c("state", &e))?,
            ca_data: serde_json::from_str(&r.ca_data).map_err(|e| c("ca_data", &e))?,
            names: serde_json::from_str(&r.names_json).map_err(|e| c("names_json", &e))?,
            key_type: r.key_type.parse().map_err(|e| c("key_type", &e))?,
            private_key_pem: SecretString::from(r.private_key_pem),
            certificate: r.certificate,
            provider: r.provider,
            failure_reason: r.failure_reason,
            reference: r.reference,
            ca_order_id: r.ca_order_id,
            submit_maybe_sent: r.submit_maybe_sent != 0,
            submit_sent_at: r.submit_sent_at.map(from_ms),
            unsure_candidates: r
                .unsure_candidates
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| c("unsure_candidates", &e))?
                .unwrap_or_default(),
            unsure_reason: r.unsure_reason,
            dup_check_at: r.dup_check_at.map(from_ms),
            ca_cancel: r
                .ca_cancel
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| c("ca_cancel", &e))?,
            ca_cancel_at: r.ca_cancel_at.map(from_ms),
            ca_cancel_attempts: r.ca_cancel_attempts.clamp(0, u32::MAX as i64) as u32,
            ca_cancel_answer: r.ca_cancel_answer,
            damaged: r.damaged,
            csr_pem: r.csr_pem,
            csr_der: r.csr_der,
            renewal_of: r.renewal_of,
            attempts: r.attempts.clamp(0, u32::MAX as i64) as u32,
            next_attempt_at: from_ms(r.next_attempt_at),
            last_error: r.last_error,
            last_status_at: r.last_status_at.map(from_ms),
            ca_state: r
                .ca_state
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| c("ca_state", &e))?,
            cert_pem: r.cert_pem,
            chain_pem: r.chain_pem,
            not_after: r.not_after.map(from_ms),
            created_at: from_ms(r.created_at),
            updated_at: from_ms(r.updated_at),
        })
    }
}

#[derive(FromRow)]
pub(super) struct AuthzRow {
    id: i64,
    order_id: i64,
    domain: String,
    method: String,
    method_index: i64,
    method_started_at: i64,
    method_tried_at: Option<i64>,
    method_failed: i64,
    state: String,
    challenge_json: Option<String>,
    approver_email: Option<String>,
    check_json: Option<String>,
    checked_at: Option<i64>,
    next_check_at: Option<i64>,
    check_rounds: i64,
    resends: i64,
    next_resend_at: Option<i64>,
    last_error: Option<String>,
}

impl TryFrom<AuthzRow> for Authorization {
    type Error = StoreError;
    fn try_from(r: AuthzRow) -> Result<Self, StoreError> {
        let id = r.id;
        let c = |col, e: &dyn std::fmt::Display| corrupt("authorizations", id, col, e);
        Ok(Authorization {
            id,
            order_id: r.order_id,
            domain: DomainName::parse(&r.domain).map_err(|e| c("domain", &e))?,
            method: r.method.parse().map_err(|e| c("method", &e))?,
            method_index: r.method_index.clamp(0, u32::MAX as i64) as u32,
            method_started_at: from_ms(r.method_started_at),
            method_tried_at: r.method_tried_at.map(from_ms),
            method_failed: r.method_failed != 0,
            state: r.state.parse().map_err(|e| c("state", &e))?,
            challenge: r
                .challenge_json
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| c("challenge_json", &e))?,
            approver_email: r.approver_email,
            check: r
                .check_json
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| c("check_json", &e))?,
            checked_at: r.checked_at.map(from_ms),
            next_check_at: r.next_check_at.map(from_ms),
            check_rounds: r.check_rounds.clamp(0, u32::MAX as i64) as u32,
            resends: r.resends.clamp(0, u32::MAX as i64) as u32,
            next_resend_at: r.next_resend_at.map(from_ms),
            last_error: r.last_error,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct EventRow {
    pub(super) id: i64,
    pub(super) order_id: i64,
    pub(super) at: i64,
    pub(super) kind: String,
    pub(super) domain: Option<String>,
    pub(super) message: String,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            order_id: r.order_id,
            at: from_ms(r.at),
            kind: r.kind,
            domain: r.domain,
            message: r.message,
        }
    }
}
