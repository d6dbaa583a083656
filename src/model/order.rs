//! One order and its authorizations as dcvd keeps them (the `orders`, `authorizations` and
//! `events` tables, parsed), and the order and name states as a CA reports them.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{
    AuthzState, CaCancel, Challenge, CheckReport, DcvMethod, DomainName, KeyType, OrderState,
};

/// Order-level state as the CA reports it, in neutral terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum CaOrderState {
    /// Still validating or processing.
    InProgress,
    /// Waiting for a person at the CA side (DigiCert `needs_approval`). Surfaced, not retried blindly.
    NeedsApproval,
    Issued,
    /// Rejected, canceled, revoked or expired at the CA; the CA's word kept.
    Failed(String),
}

/// DCV state of one name as the CA sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum NameDcv {
    Pending,
    Valid,
    Invalid(String),
}

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
    /// A failed order whose CA order dcvd asks the CA to cancel, and how that went
    /// (`None`: nothing to cancel).
    pub ca_cancel: Option<CaCancel>,
    /// When a wanted cancel is (next) due.
    pub ca_cancel_at: Option<DateTime<Utc>>,
    /// Transient failures of the cancel call so far (its backoff).
    pub ca_cancel_attempts: u32,
    /// The CA's answer to the cancel (its refusal text, or how it was found ended).
    pub ca_cancel_answer: Option<String>,
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
    pub ca_state: Option<CaOrderState>,
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
