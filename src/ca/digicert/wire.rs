//! CertCentral Services API v2 wire types of the client (the simulator has its own).
//!
//! Request bodies carry only the fields the seed pages document. Response types are
//! lenient: unknown fields are ignored, an explicit `null` reads as the field's default
//! (`nullable`), and ids are accepted as JSON numbers or as strings of digits (`id` /
//! `opt_id`): recorded payloads (`shared/fixtures/digicert`) carry many fields we do not
//! use, and nothing documents that a field is never `null`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ca::CaOrderState;

/// `POST /order/certificate/{product_name_id}` body (seed "Order DV SSL" fields only).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrderRequest {
    pub certificate: CertificateRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_years: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    pub dcv_method: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dcv_emails: Vec<DcvEmail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_approval: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_of_order_id: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomField>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CertificateRequest {
    pub common_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    pub csr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_platform: Option<ServerPlatform>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerPlatform {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DcvEmail {
    pub dns_name: String,
    pub email_domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Account-specific custom field (seed: `metadata_id` int, `value` string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomField {
    pub metadata_id: u64,
    pub value: String,
}

/// 201 answer to an order.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderCreated {
    #[serde(deserialize_with = "id")]
    pub id: u64,
    #[serde(default, deserialize_with = "opt_id")]
    pub certificate_id: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub requests: Vec<RequestRef>,
    #[serde(default)]
    pub dcv_random_value: Option<String>,
    #[serde(default)]
    pub certificate_chain: Option<Vec<ChainEntry>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestRef {
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    /// On GET order info the reference dcvd wrote as the order's `comments` comes back
    /// here (fixture `order.json`: no top-level `comments`).
    #[serde(default)]
    pub comments: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChainEntry {
    #[serde(default, deserialize_with = "nullable")]
    pub subject_common_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub pem: String,
}

/// `GET /order/certificate/{id}` (and one element of the order list).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderInfo {
    #[serde(deserialize_with = "id")]
    pub id: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub certificate: CertificateInfo,
    #[serde(default)]
    pub date_created: Option<String>,
    /// Not in the recorded payload; read when present.
    #[serde(default)]
    pub comments: Option<String>,
    #[serde(default)]
    pub dcv_method: Option<String>,
    #[serde(default)]
    pub product: Option<ProductRef>,
    #[serde(default, deserialize_with = "nullable")]
    pub requests: Vec<RequestRef>,
    /// Per-name DCV state, when the response carries it.
    #[serde(default, deserialize_with = "nullable")]
    pub dns_name_validations: Vec<NameValidation>,
}

impl OrderInfo {
    /// Every `comments` the order carries (top level, then each request's).
    pub fn all_comments(&self) -> impl Iterator<Item = &str> {
        self.comments
            .iter()
            .chain(self.requests.iter().filter_map(|r| r.comments.as_ref()))
            .map(|c| c.trim())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CertificateInfo {
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub common_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_names: Vec<String>,
    /// The order's CSR (PEM): what recovery matches on.
    #[serde(default)]
    pub csr: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_till: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductRef {
    #[serde(default, deserialize_with = "nullable")]
    pub name_id: String,
}

/// `GET /order/certificate` list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderList {
    #[serde(default, deserialize_with = "nullable")]
    pub orders: Vec<OrderInfo>,
    #[serde(default)]
    pub page: Option<Page>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Page {
    #[serde(default, deserialize_with = "opt_id")]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "opt_id")]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "opt_id")]
    pub offset: Option<u64>,
}

/// `PUT …/dcv-random-value` and token-method `PUT …/dcv-method` answers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RandomValue {
    #[serde(default, deserialize_with = "nullable")]
    pub dcv_random_value: String,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DcvMethodChange {
    pub dcv_method: String,
}

/// `PUT …/check-dcv` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckDcv {
    #[serde(default, deserialize_with = "nullable")]
    pub order_status: String,
    #[serde(default, deserialize_with = "opt_id")]
    pub certificate_id: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub dcv_status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_name_validations: Vec<NameValidation>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NameValidation {
    #[serde(default, deserialize_with = "nullable")]
    pub dns_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
}

/// `PUT …/resend-emails` body (seed "Resend emails", EN page).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResendEmails {
    pub domain_approval_emails: Vec<DomainApprovalEmail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainApprovalEmail {
    pub domain: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_domain: Option<String>,
}

/// `GET /domain/{fqdn}/dcv/emails` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DcvEmails {
    #[serde(default, deserialize_with = "nullable")]
    pub name_scope: String,
    #[serde(default, deserialize_with = "nullable")]
    pub base_emails: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub whois_emails: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_txt_emails: Vec<String>,
}

/// `PUT …/status` body.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChange {
    pub status: String,
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_emails: Option<bool>,
}

/// `{"errors": [...]}`; some responses carry a single object instead of an array.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub errors: Errors,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Errors {
    Many(Vec<ErrorItem>),
    One(ErrorItem),
}

impl Errors {
    pub fn into_vec(self) -> Vec<ErrorItem> {
        match self {
            Errors::Many(v) => v,
            Errors::One(e) => vec![e],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorItem {
    #[serde(default, deserialize_with = "nullable")]
    pub code: String,
    #[serde(default, deserialize_with = "nullable")]
    pub message: String,
}

/// A field that may be absent or `null`: both read as `T::default()`.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Num(u64),
    Text(String),
}

fn raw_id<E: serde::de::Error>(raw: RawId) -> Result<u64, E> {
    match raw {
        RawId::Num(n) => Ok(n),
        RawId::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| E::custom(format!("`{s}` is not a numeric id"))),
    }
}

/// An id as a JSON number or a string of digits.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    raw_id(RawId::deserialize(d)?)
}

/// An optional id: absent, `null`, `""`, a number or a string of digits.
fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<RawId>::deserialize(d)? {
        None => Ok(None),
        Some(RawId::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(raw) => raw_id(raw).map(Some),
    }
}

/// CertCentral order status → neutral state.
pub fn order_state(status: &str) -> CaOrderState {
    match status {
        "issued" => CaOrderState::Issued,
        "needs_approval" => CaOrderState::NeedsApproval,
        "rejected" | "canceled" | "revoked" | "expired" | "denied" => {
            CaOrderState::Failed(status.to_string())
        }
        // pending, processing, waiting_pickup, reissue_pending, approved, and anything new.
        _ => CaOrderState::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_string_ids_parse_in_every_response_type() {
        let o: OrderInfo = serde_json::from_str(
            r#"{"id":"42","status":null,"certificate":{"id":"7","common_name":null,"dns_names":null,"csr":null},
                "requests":null,"dns_name_validations":null,"product":{"name_id":null}}"#,
        )
        .unwrap();
        assert_eq!(
            (o.id, o.certificate.id, o.status.as_str()),
            (42, Some(7), "")
        );
        assert!(o.certificate.dns_names.is_empty() && o.requests.is_empty());
        let o: OrderInfo = serde_json::from_str(r#"{"id":1,"certificate":null}"#).unwrap();
        assert!(o.certificate.id.is_none());
        let l: OrderList =
            serde_json::from_str(r#"{"orders":[{"id":"5"}],"page":{"total":"3","limit":null}}"#)
                .unwrap();
        let page = l.page.unwrap();
        assert_eq!((l.orders[0].id, page.total, page.limit), (5, Some(3), None));
        let l: OrderList = serde_json::from_str(r#"{"orders":null,"page":null}"#).unwrap();
        assert!(l.orders.is_empty() && l.page.is_none());
        let c: OrderCreated = serde_json::from_str(
            r#"{"id":"9","certificate_id":null,"requests":[{"id":"3","status":null}],"dcv_random_value":null,"certificate_chain":null}"#,
        )
        .unwrap();
        assert_eq!(
            (c.id, c.certificate_id, c.requests[0].id),
            (9, None, Some(3))
        );
        let c: CheckDcv = serde_json::from_str(
            r#"{"order_status":null,"certificate_id":"11","dcv_status":null,"dns_name_validations":[{"dns_name":"a.test","status":null}]}"#,
        )
        .unwrap();
        assert_eq!(c.certificate_id, Some(11));
        let r: RandomValue =
            serde_json::from_str(r#"{"dcv_random_value":"x","expiration_date":null}"#).unwrap();
        assert_eq!(r.dcv_random_value, "x");
        let e: DcvEmails = serde_json::from_str(
            r#"{"name_scope":null,"base_emails":["a@b.test"],"whois_emails":null,"dns_txt_emails":null}"#,
        )
        .unwrap();
        assert_eq!(e.base_emails.len(), 1);
        let e: ErrorBody =
            serde_json::from_str(r#"{"errors":[{"code":"x","message":null}]}"#).unwrap();
        assert_eq!(e.errors.into_vec()[0].code, "x");
        assert!(serde_json::from_str::<OrderInfo>(r#"{"id":"twelve"}"#).is_err());
    }

    #[test]
    fn statuses_map_to_neutral_states() {
        for (s, want) in [
            ("issued", CaOrderState::Issued),
            ("pending", CaOrderState::InProgress),
            ("processing", CaOrderState::InProgress),
            ("waiting_pickup", CaOrderState::InProgress),
            ("reissue_pending", CaOrderState::InProgress),
            ("approved", CaOrderState::InProgress),
            ("needs_approval", CaOrderState::NeedsApproval),
            ("denied", CaOrderState::Failed("denied".into())),
            ("canceled", CaOrderState::Failed("canceled".into())),
        ] {
            assert_eq!(order_state(s), want, "{s}");
        }
    }
}
