//! SQL for certificates, orders and authorizations.

use crate::model::EventKind;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::{Acquire, FromRow};

use super::events::{NewEvent, insert_event};
use super::rows::{AuthzRow, OrderRow};
use super::{Authorization, Order, Store, StoreError, from_ms, to_ms};
use crate::model::{AuthzState, CertSource, DcvMethod, DomainName, KeyType, OrderState};

/// SQL for "the order has not ended": the complement of `OrderState::is_terminal`, spelled
/// once (a unit test below keeps the two in step).
macro_rules! live {
    () => {
        "state NOT IN ('issued','failed','canceled')"
    };
}

/// What `create_order` writes: a pending order with one authorization per name.
pub struct NewOrder {
    pub certificate: String,
    pub provider: String,
    pub reference: String,
    pub names: Vec<DomainName>,
    /// One authorization per name, as `lifecycle::decide::first_method` chose it: written
    /// as given.
    pub authz: Vec<NewAuthz>,
    pub key_type: KeyType,
    pub private_key_pem: secrecy::SecretString,
    pub csr_pem: String,
    pub csr_der: Vec<u8>,
    pub renewal_of: Option<String>,
    /// Why the order is placed (first order, renewal due, forced by an operator, ...):
    /// recorded in its `created` event.
    pub reason: String,
}

/// An order's `state` column as a listing reads it: a known state, or the raw text of a
/// damaged one (shown as it is, and counted as live so it is not hidden).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedState {
    Known(OrderState),
    Unreadable(String),
}

impl ListedState {
    fn read(raw: String) -> Self {
        match raw.parse() {
            Ok(s) => ListedState::Known(s),
            Err(_) => ListedState::Unreadable(raw),
        }
    }

    /// Not issued, failed or canceled (an unreadable state counts as live).
    pub fn is_live(&self) -> bool {
        !matches!(self, ListedState::Known(s) if s.is_terminal())
    }

    pub fn as_str(&self) -> &str {
        match self {
            ListedState::Known(s) => s.as_str(),
            ListedState::Unreadable(raw) => raw,
        }
    }
}

impl PartialEq<OrderState> for ListedState {
    fn eq(&self, other: &OrderState) -> bool {
        *self == ListedState::Known(*other)
    }
}

impl std::fmt::Display for ListedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for ListedState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for ListedState {
    fn decode(v: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(ListedState::read(
            <String as sqlx::Decode<sqlx::Sqlite>>::decode(v)?,
        ))
    }
}

impl sqlx::Type<sqlx::Sqlite> for ListedState {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

/// A new order's authorization of one name: its first method, that method's index in
/// the certificate's `dcv` list, the state it starts in and the approver address of an
/// email method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthz {
    pub domain: DomainName,
    pub method: DcvMethod,
    pub method_index: u32,
    pub state: AuthzState,
    pub approver_email: Option<String>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct OrderSummary {
    pub id: i64,
    pub certificate: String,
    pub provider: String,
    pub state: ListedState,
    pub ca_order_id: Option<String>,
    pub failure_reason: Option<String>,
    pub last_error: Option<String>,
    /// `submit_unknown`: why dcvd cannot tell whether the CA has the order.
    pub unsure_reason: Option<String>,
    /// Why the order's rows do not read whole (see `Store::quarantine_order`).
    pub damaged: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub not_after: Option<i64>,
}

#[derive(FromRow)]
struct CertRow {
    rowid: i64,
    name: String,
    provider: String,
    names_json: String,
    current_order_id: Option<i64>,
    issued_order_id: Option<i64>,
    not_after: Option<i64>,
    source: Option<String>,
    serial: Option<String>,
    issuer: Option<String>,
    hold: Option<String>,
    paused_at: Option<i64>,
    paused_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertificateRecord {
    pub name: String,
    pub provider: String,
    pub names: Vec<String>,
    pub current_order_id: Option<i64>,
    pub issued_order_id: Option<i64>,
    pub not_after: Option<DateTime<Utc>>,
    /// Where the issued certificate came from; `None` while none is issued.
    pub source: Option<CertSource>,
    /// An adopted certificate's serial (hex) and issuer; `None` for dcvd's own orders,
    /// whose certificate is in the order row.
    pub serial: Option<String>,
    pub issuer: Option<String>,
    /// Why dcvd places no order until the operator acts: `output_dir` holds a
    /// certificate it can neither adopt nor safely replace (see `lifecycle::adopt`), or
    /// cannot be written.
    pub hold: Option<String>,
    /// An operator paused it (`dcvd pause`, `dcvd orders cancel`): no new order or
    /// renewal until `dcvd resume`.
    pub paused: Option<super::Paused>,
    /// Why the row does not read whole (then `names` is empty): dcvd places no order
    /// for this certificate until the row is repaired.
    pub damaged: Option<String>,
}

impl CertificateRecord {
    /// A certificate is in place: issued for an order of dcvd's, or adopted.
    pub fn has_issued(&self) -> bool {
        self.issued_order_id.is_some() || self.source == Some(CertSource::Adopted)
    }
}

const ORDER_COLS: &str = "id, certificate, provider, state, failure_reason, reference, ca_order_id, ca_data, \
    submit_maybe_sent, submit_sent_at, unsure_reason, unsure_candidates, dup_check_at, ca_cancel, ca_cancel_at, ca_cancel_attempts, ca_cancel_answer, damaged, names_json, key_type, private_key_pem, csr_pem, csr_der, renewal_of, attempts, \
    next_attempt_at, last_error, last_status_at, ca_state, cert_pem, chain_pem, not_after, created_at, updated_at";

impl Store {
    /// Insert a pending order, its authorizations and a `created` event, and make it the
    /// certificate's current order, in one transaction. Fails if the certificate already
    /// has a live order (never two orders for one certificate at once).
    pub async fn create_order(&self, o: &NewOrder, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let names_json = serde_json::to_string(&o.names).unwrap_or_else(|_| "[]".into());
        let mut tx = self.pool.begin().await?;
        let t = to_ms(now);
        sqlx::query(
            "INSERT INTO certificates (name, provider, names_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET provider = excluded.provider, names_json = excluded.names_json,
             updated_at = excluded.updated_at",
        )
        .bind(&o.certificate)
        .bind(&o.provider)
        .bind(&names_json)
        .bind(t)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        let live: Option<(i64,)> = sqlx::query_as(concat!(
            "SELECT id FROM orders WHERE certificate = ? AND ",
            live!(),
            " LIMIT 1"
        ))
        .bind(&o.certificate)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id,)) = live {
            return Err(StoreError::Conflict(format!(
                "certificate {} already has a live order {id}; a new one is placed only when it ends",
                o.certificate
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (certificate, provider, state, reference, names_json, key_type, private_key_pem,
             csr_pem, csr_der, renewal_of, next_attempt_at, created_at, updated_at)
             VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&o.certificate)
        .bind(&o.provider)
        .bind(&o.reference)
        .bind(&names_json)
        .bind(o.key_type.as_str())
        .bind(o.private_key_pem.expose_secret())
        .bind(&o.csr_pem)
        .bind(&o.csr_der)
        .bind(&o.renewal_of)
        .bind(t)
        .bind(t)
        .bind(t)
        .fetch_one(&mut *tx)
        .await?;
        for a in &o.authz {
            sqlx::query(
                "INSERT INTO authorizations (order_id, domain, method, method_index, method_started_at, state, approver_email)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(a.domain.as_str())
            .bind(a.method.as_str())
            .bind(a.method_index as i64)
            .bind(t)
            .bind(a.state.as_str())
            .bind(&a.approver_email)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE certificates SET current_order_id = ? WHERE name = ?")
            .bind(id)
            .bind(&o.certificate)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            id,
            t,
            &NewEvent {
                kind: EventKind::Created,
                domain: None,
                message: format!(
                    "order created for {} ({}), reference {}{}; reason: {}",
                    o.certificate,
                    o.names
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    o.reference,
                    o.renewal_of
                        .as_deref()
                        .map(|r| format!(", renewing CA order {r}"))
                        .unwrap_or_default(),
                    o.reason
                ),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn load_order(&self, id: i64) -> Result<(Order, Vec<Authorization>), StoreError> {
        let row: Option<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let order =
            Order::try_from(row.ok_or_else(|| StoreError::NotFound(format!("order {id}")))?)?;
        let authz: Vec<AuthzRow> =
            sqlx::query_as("SELECT * FROM authorizations WHERE order_id = ? ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let authz = authz
            .into_iter()
            .map(Authorization::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((order, authz))
    }

    /// Write the order, its authorizations and new events in one transaction. With
    /// `durable`, the commit is fsynced (`synchronous=FULL`) so it survives power loss:
    /// used for the intent written before an order request leaves.
    ///
    /// A step's save is dropped when the order was canceled meanwhile, or when an operator
    /// adopted a CA order for it meanwhile (the row has a CA order id the step did not see).
    pub async fn save(
        &self,
        order: &Order,
        authz: &[Authorization],
        events: &[NewEvent],
        durable: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.save_inner(order, authz, events, durable, false, now)
            .await
            .map(|_| ())
    }

    /// An operator's decision on an order whose submit is in doubt (`dcvd orders adopt`,
    /// `dcvd orders resubmit`): written only while the row is still in doubt (in
    /// `submit_unknown`, or `submitting` with an unanswered submit, and no CA order).
    /// False when it no longer was (the daemon settled it meanwhile).
    pub async fn save_operator_decision(
        &self,
        order: &Order,
        authz: &[Authorization],
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.save_inner(order, authz, events, true, true, now).await
    }

    async fn save_inner(
        &self,
        order: &Order,
        authz: &[Authorization],
        events: &[NewEvent],
        durable: bool,
        operator: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if durable {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await?;
        }
        let result = async {
            let mut tx = conn.begin().await?;
            let t = to_ms(now);
            let updated = sqlx::query(
                "UPDATE orders SET state = ?, failure_reason = ?, ca_order_id = ?, ca_data = ?, submit_maybe_sent = ?,
                 submit_sent_at = ?, unsure_reason = ?, unsure_candidates = ?, dup_check_at = ?,
                 attempts = ?, next_attempt_at = ?, last_error = ?, last_status_at = ?, ca_state = ?, cert_pem = ?, chain_pem = ?,
                 not_after = ?, updated_at = ? WHERE id = ? AND state != 'canceled'
                 AND NOT (ca_order_id IS NOT NULL AND ?20 IS NULL)
                 AND (?21 = 0 OR (ca_order_id IS NULL AND (state = 'submit_unknown'
                      OR (state = 'submitting' AND submit_maybe_sent = 1))))",
            )
            .bind(order.state.as_str())
            .bind(&order.failure_reason)
            .bind(&order.ca_order_id)
            .bind(order.ca_data.to_string())
            .bind(order.submit_maybe_sent as i64)
            .bind(order.submit_sent_at.map(to_ms))
            .bind(&order.unsure_reason)
            .bind(
                (!order.unsure_candidates.is_empty())
                    .then(|| serde_json::to_string(&order.unsure_candidates).ok())
                    .flatten(),
            )
            .bind(order.dup_check_at.map(to_ms))
            .bind(order.attempts as i64)
            .bind(to_ms(order.next_attempt_at))
            .bind(&order.last_error)
            .bind(order.last_status_at.map(to_ms))
            .bind(order.ca_state.as_ref().and_then(|s| serde_json::to_string(s).ok()))
            .bind(&order.cert_pem)
            .bind(&order.chain_pem)
            .bind(order.not_after.map(to_ms))
            .bind(t)
            .bind(order.id)
            .bind(&order.ca_order_id)
            .bind(operator as i64)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                // Canceled (by `dcvd orders cancel`) or adopted (by `dcvd orders adopt`)
                // while this step ran: drop the step's result, but if canceled make sure
                // whatever it published is cleaned up.
                drop(tx);
                sqlx::query(
                    "UPDATE cleanup_journal SET due_at = ? WHERE order_id = ? AND due_at IS NULL
                     AND EXISTS (SELECT 1 FROM orders WHERE id = ?2 AND state = 'canceled')",
                )
                .bind(t)
                .bind(order.id)
                .execute(&mut *conn)
                .await?;
                return Ok(false);
            }
            // The CA cancel marker and its answer, in the same commit as the failure that
            // asks for it (see `lifecycle::step::cancel`).
            sqlx::query(
                "UPDATE orders SET ca_cancel = ?, ca_cancel_at = ?, ca_cancel_attempts = ?,
                 ca_cancel_answer = ? WHERE id = ?",
            )
            .bind(order.ca_cancel.map(|c| c.as_str()))
            .bind(order.ca_cancel_at.map(to_ms))
            .bind(order.ca_cancel_attempts as i64)
            .bind(&order.ca_cancel_answer)
            .bind(order.id)
            .execute(&mut *tx)
            .await?;
            for a in authz {
                sqlx::query(
                    "UPDATE authorizations SET method = ?, method_index = ?, method_started_at = ?,
                     method_tried_at = ?, method_failed = ?, state = ?,
                     challenge_json = ?, approver_email = ?, check_json = ?, checked_at = ?, next_check_at = ?,
                     check_rounds = ?, resends = ?, next_resend_at = ?, last_error = ? WHERE id = ?",
                )
                .bind(a.method.as_str())
                .bind(a.method_index as i64)
                .bind(to_ms(a.method_started_at))
                .bind(a.method_tried_at.map(to_ms))
                .bind(a.method_failed as i64)
                .bind(a.state.as_str())
                .bind(a.challenge.as_ref().and_then(|c| serde_json::to_string(c).ok()))
                .bind(&a.approver_email)
                .bind(a.check.as_ref().and_then(|c| serde_json::to_string(c).ok()))
                .bind(a.checked_at.map(to_ms))
                .bind(a.next_check_at.map(to_ms))
                .bind(a.check_rounds as i64)
                .bind(a.resends as i64)
                .bind(a.next_resend_at.map(to_ms))
                .bind(&a.last_error)
                .bind(a.id)
                .execute(&mut *tx)
                .await?;
            }
            for e in events {
                insert_event(&mut tx, order.id, t, e).await?;
            }
            if order.state.is_terminal() {
                // The order ended: its certificate may get a new one; its tokens may go.
                sqlx::query("UPDATE certificates SET current_order_id = NULL, updated_at = ? WHERE name = ? AND current_order_id = ?")
                    .bind(t)
                    .bind(&order.certificate)
                    .bind(order.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE cleanup_journal SET due_at = ? WHERE order_id = ? AND due_at IS NULL")
                    .bind(t)
                    .bind(order.id)
                    .execute(&mut *tx)
                    .await?;
            }
            if order.state == OrderState::Issued {
                sqlx::query("UPDATE certificates SET issued_order_id = ?, not_after = ?, source = 'ordered', serial = NULL, issuer = NULL, updated_at = ? WHERE name = ?")
                    .bind(order.id)
                    .bind(order.not_after.map(to_ms))
                    .bind(t)
                    .bind(&order.certificate)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        }
        .await;
        if durable {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await?;
        }
        result
    }

    /// Live orders due at or before `now`, earliest first.
    /// Also ended (issued or failed) orders whose look for a late duplicate is due, and
    /// failed orders whose cancel at the CA is due.
    pub async fn due_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT id FROM (
               SELECT id, next_attempt_at AS t FROM orders
               WHERE ",
            live!(),
            " AND next_attempt_at <= ?1
               UNION ALL
               SELECT id, dup_check_at AS t FROM orders
               WHERE state IN ('issued','failed') AND dup_check_at <= ?1
               UNION ALL
               SELECT id, ca_cancel_at AS t FROM orders
               WHERE state = 'failed' AND ca_cancel = 'wanted' AND ca_cancel_at <= ?1)
             GROUP BY id ORDER BY MIN(t) LIMIT ?2"
        ))
        .bind(to_ms(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the next live order (or an ended order's look for a late duplicate) falls due,
    /// ignoring `exclude`, the ones running now.
    pub async fn next_due(&self, exclude: &[i64]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ids = serde_json::to_string(exclude).unwrap_or_else(|_| "[]".into());
        let t: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT MIN(t) FROM (
               SELECT MIN(next_attempt_at) AS t FROM orders WHERE ",
            live!(),
            "
               AND id NOT IN (SELECT value FROM json_each(?1))
               UNION ALL
               SELECT MIN(dup_check_at) FROM orders WHERE state IN ('issued','failed')
               AND dup_check_at IS NOT NULL AND id NOT IN (SELECT value FROM json_each(?1))
               UNION ALL
               SELECT MIN(ca_cancel_at) FROM orders WHERE state = 'failed' AND ca_cancel = 'wanted'
               AND id NOT IN (SELECT value FROM json_each(?1)))"
        ))
        .bind(ids)
        .fetch_one(&self.pool)
        .await?;
        Ok(t.map(from_ms))
    }

    /// Count of live orders whose time has come, for the scheduler-lag metric and status.
    pub async fn overdue_count(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM orders WHERE ",
            live!(),
            " AND next_attempt_at <= ?"
        ))
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn list_orders(
        &self,
        state: Option<OrderState>,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let q = "SELECT id, certificate, provider, state, ca_order_id, failure_reason, last_error, unsure_reason, damaged, attempts,
                 next_attempt_at, created_at, updated_at, not_after FROM orders
                 WHERE (?1 IS NULL OR state = ?1) ORDER BY id";
        Ok(sqlx::query_as(q)
            .bind(state.map(|s| s.as_str()))
            .fetch_all(&self.pool)
            .await?)
    }

    /// How many orders have not ended (`sd_notify` status line).
    pub async fn live_order_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar(concat!("SELECT COUNT(*) FROM orders WHERE ", live!()))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Order counts by (provider, state), for metrics and `status`.
    pub async fn order_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT provider, state, COUNT(*) FROM orders GROUP BY provider, state ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest order of a certificate, if any.
    pub async fn latest_order_of(&self, certificate: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(id) FROM orders WHERE certificate = ?")
                .bind(certificate)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Every certificate row. A row whose `names_json` does not parse is returned with
    /// `damaged` set and no names, beside the others, instead of failing them all.
    pub async fn certificates(&self) -> Result<Vec<CertificateRecord>, StoreError> {
        let rows: Vec<CertRow> = sqlx::query_as(
            "SELECT rowid, name, provider, names_json, current_order_id, issued_order_id, not_after,
                    source, serial, issuer, hold, paused_at, paused_reason FROM certificates ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let corrupt = |column, detail: String| {
                    StoreError::Corrupt {
                        table: "certificates",
                        id: r.rowid,
                        column,
                        detail: format!("certificate {}: {detail}", r.name),
                    }
                    .to_string()
                };
                let (names, mut damaged) = match serde_json::from_str(&r.names_json) {
                    Ok(n) => (n, None),
                    Err(e) => (Vec::new(), Some(corrupt("names_json", e.to_string()))),
                };
                let source = match r.source.as_deref().map(str::parse::<CertSource>) {
                    None => None,
                    Some(Ok(s)) => Some(s),
                    Some(Err(e)) => {
                        damaged = damaged.or(Some(corrupt("source", e)));
                        None
                    }
                };
                CertificateRecord {
                    name: r.name,
                    provider: r.provider,
                    names,
                    current_order_id: r.current_order_id,
                    issued_order_id: r.issued_order_id,
                    not_after: r.not_after.map(from_ms),
                    source,
                    serial: r.serial,
                    issuer: r.issuer,
                    hold: r.hold,
                    paused: r.paused_at.map(|t| super::Paused {
                        at: from_ms(t),
                        reason: r.paused_reason.unwrap_or_default(),
                    }),
                    damaged,
                }
            })
            .collect())
    }

    /// Make an order due now (CLI `orders retry`, SIGHUP, tests).
    pub async fn make_due(&self, order_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let r = sqlx::query(concat!(
            "UPDATE orders SET next_attempt_at = ?, attempts = 0 WHERE id = ? AND ",
            live!()
        ))
        .bind(to_ms(now))
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

impl Store {
    /// Mark a live order canceled (after the CA was told), release its certificate and
    /// tokens. Returns false if the order had already ended.
    pub async fn cancel_order(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = cancel_in(&mut tx, id, reason, now).await?;
        if done {
            tx.commit().await?;
        }
        Ok(done)
    }

    /// `dcvd orders cancel` in one transaction: end the order here, record the CA's answer
    /// to the cancel (when the CA was asked), and pause its certificate so the failed-order
    /// retry does not bring it back; a crash leaves all of it or none. Returns (canceled,
    /// newly paused).
    pub async fn cancel_by_operator(
        &self,
        id: i64,
        reason: &str,
        ca_answer: Option<(crate::model::CaCancel, &str)>,
        pause: (&str, &str),
        now: DateTime<Utc>,
    ) -> Result<(bool, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        if !cancel_in(&mut tx, id, reason, now).await? {
            return Ok((false, false));
        }
        let t = to_ms(now);
        if let Some((state, answer)) = ca_answer {
            sqlx::query(
                "UPDATE orders SET ca_cancel = ?, ca_cancel_at = NULL, ca_cancel_answer = ? WHERE id = ?",
            )
            .bind(state.as_str())
            .bind(answer)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            insert_event(
                &mut tx,
                id,
                t,
                &NewEvent {
                    kind: EventKind::CaCancel,
                    domain: None,
                    message: answer.to_string(),
                },
            )
            .await?;
        }
        let (certificate, pause_reason) = pause;
        let paused = sqlx::query(
            "UPDATE certificates SET paused_at = ?1, paused_reason = ?2, updated_at = ?1
             WHERE name = ?3 AND paused_at IS NULL",
        )
        .bind(t)
        .bind(pause_reason)
        .bind(certificate)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok((true, paused))
    }
}

/// Cancel order `id` inside `tx` (see [`Store::cancel_order`]); false when it had ended.
async fn cancel_in(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    {
        let t = to_ms(now);
        let r = sqlx::query(concat!(
            "UPDATE orders SET state = 'canceled', failure_reason = ?, updated_at = ?
             WHERE id = ? AND ",
            live!()
        ))
        .bind(reason)
        .bind(t)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE certificates SET current_order_id = NULL WHERE current_order_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE cleanup_journal SET due_at = ? WHERE order_id = ? AND due_at IS NULL")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_event(
            tx,
            id,
            t,
            &NewEvent {
                kind: EventKind::Canceled,
                domain: None,
                message: reason.to_string(),
            },
        )
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A pending order for certificate `www` (www.example.com, dns-txt).
    pub(in crate::store) fn new_order(reference: &str) -> NewOrder {
        NewOrder {
            certificate: "www".into(),
            provider: "digicert".into(),
            reference: reference.into(),
            names: vec![DomainName::parse("www.example.com").unwrap()],
            authz: vec![NewAuthz {
                domain: DomainName::parse("www.example.com").unwrap(),
                method: DcvMethod::DnsTxt,
                method_index: 0,
                state: AuthzState::Publishing,
                approver_email: None,
            }],
            key_type: KeyType::EcdsaP256,
            private_key_pem: secrecy::SecretString::from("not a real key".to_string()),
            csr_pem: String::new(),
            csr_der: Vec::new(),
            renewal_of: None,
            reason: "first order".into(),
        }
    }

    #[tokio::test]
    async fn a_second_live_order_for_a_certificate_is_a_conflict_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dcvd.db")).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let first = store.create_order(&new_order("r1"), now).await.unwrap();
        let e = store.create_order(&new_order("r2"), now).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "certificate www already has a live order {first}; a new one is placed only \
                 when it ends"
            )
        );
        assert!(!e.to_string().contains("not found"));
        assert_eq!(
            store.list_orders(None).await.unwrap().len(),
            1,
            "nothing was written"
        );
    }

    #[test]
    fn a_key_generation_failure_names_the_certificate() {
        let e = StoreError::KeyGeneration {
            certificate: "www".into(),
            detail: "rsa: bad size".into(),
        };
        assert_eq!(
            e.to_string(),
            "generating the private key and CSR for certificate www failed: rsa: bad size"
        );
        assert!(!e.to_string().contains("not found"));
    }

    #[test]
    fn the_live_sql_is_the_complement_of_is_terminal() {
        let sql = live!();
        let list = sql
            .strip_prefix("state NOT IN (")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap();
        let spelled: Vec<&str> = list.split(',').map(|s| s.trim_matches('\'')).collect();
        for state in OrderState::ALL {
            assert_eq!(
                spelled.contains(&state.as_str()),
                state.is_terminal(),
                "{state} in the live!() SQL disagrees with OrderState::is_terminal"
            );
        }
        assert_eq!(
            spelled.len(),
            OrderState::ALL.iter().filter(|s| s.is_terminal()).count()
        );
    }

    #[tokio::test]
    async fn a_listing_shows_an_unreadable_state_as_it_is_and_counts_it_live() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dcvd.db")).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let id = store.create_order(&new_order("r1"), now).await.unwrap();
        let listed = &store.list_orders(None).await.unwrap()[0];
        assert_eq!(listed.state, OrderState::Pending);
        assert!(listed.state.is_live());
        sqlx::query("UPDATE orders SET state = 'halfway' WHERE id = ?")
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        let listed = &store.list_orders(None).await.unwrap()[0];
        assert_eq!(listed.state, ListedState::Unreadable("halfway".into()));
        assert!(listed.state.is_live());
        assert_eq!(
            serde_json::to_value(listed).unwrap()["state"],
            serde_json::json!("halfway")
        );
        assert_eq!(store.live_order_count().await.unwrap(), 1);
    }
}
