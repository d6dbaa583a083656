//! Typed rows, parsed once from SQLite into domain types. A row that does not parse
//! becomes `StoreError::Corrupt` naming table, id and column.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::FromRow;

use super::{StoreError, from_ms};
use crate::dnscheck::CheckReport;
use crate::model::{AuthzState, Challenge, DcvMethod, DomainName, KeyType, OrderState};

/// One issuance attempt. Field meanings follow the `orders` table.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: i64,
    pub certificate: String,
    pub provider: String,
    pub state: OrderState,
    pub failure_reason: Option<String>,
    pub reference: String,
    pub ca_order_id: Option<String>,
    pub ca_data: serde_json::Value,
    pub submit_maybe_sent: bool,
    /// When the submit request was last sent: recovery concludes "no order at the CA"
    /// only `Provider::in_flight_bound` after it.
    pub submit_sent_at: Option<DateTime<Utc>>,
    /// `submit_unknown`: why the recovery lookup did not settle it, for the operator.
    pub unsure_reason: Option<String>,
    /// `submit_unknown`: CA order ids that may be this order.
    pub unsure_candidates: Vec<String>,
    /// After adopting an order whose submit was unanswered: when to look once more for
    /// a late duplicate of the request (and cancel it).
    pub dup_check_at: Option<DateTime<Utc>>,
    /// Why the order is on hold as damaged (`Store::quarantine_order`); `None` when fine.
    /// Written and cleared only by its own UPDATEs, never by `save`.
    pub damaged: Option<String>,
    pub names: Vec<DomainName>,
    pub key_type: KeyType,
    pub private_key_pem: SecretString,
    pub csr_pem: String,
    pub csr_der: Vec<u8>,
    pub renewal_of: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_status_at: Option<DateTime<Utc>>,
    pub ca_state: Option<crate::provider::CaOrderState>,
    pub cert_pem: Option<String>,
    pub chain_pem: Option<String>,
    pub not_after: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    pub id: i64,
    pub order_id: i64,
    pub domain: DomainName,
    pub method: DcvMethod,
    pub method_index: u32,
    /// When the current method was chosen (order created, or switched to it).
    pub method_started_at: DateTime<Utc>,
    /// When the current method was first tried (token published, approval emails sent);
    /// `None` until then. `method_timeout` counts from here, so a method that never got
    /// its chance (e.g. the daemon was down) is tried, not timed out.
    pub method_tried_at: Option<DateTime<Utc>>,
    /// The current method cannot work (refused by the CA or publisher, reported invalid):
    /// the next step falls back at once, with `last_error` as the reason.
    pub method_failed: bool,
    pub state: AuthzState,
    pub challenge: Option<Challenge>,
    pub approver_email: Option<String>,
    pub check: Option<CheckReport>,
    pub checked_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub check_rounds: u32,
    pub resends: u32,
    pub next_resend_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub id: i64,
    pub order_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub domain: Option<String>,
    pub message: String,
}

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
