//! CertCentral Services API v2 wire types, shared by the client and the simulator.
//!
//! Response types are lenient (unknown fields ignored, most fields optional): real
//! responses carry many fields we do not use (see tests/fixtures/digicert). The order
//! request is strict (`deny_unknown_fields`) because the simulator parses it and must
//! refuse what the real API would not understand.

use serde::{Deserialize, Serialize};

/// `POST /order/certificate/{product_name_id}` body (documented fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub certificate: CertificateRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_years: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_expiration_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcv_method: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dcv_emails: Vec<DcvEmail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_approval: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_of_order_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_thumbprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_renew: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_renewal_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_renewal_notifications: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_ct: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technical_contact: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_auth_key: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    #[serde(default)]
    pub common_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    #[serde(default)]
    pub csr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_platform: Option<ServerPlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_units: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ServerPlatform {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcvEmail {
    pub dns_name: String,
    pub email_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// 201 answer to an order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderCreated {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RequestRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcv_random_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<Vec<ChainEntry>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestRef {
    pub id: u64,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChainEntry {
    #[serde(default)]
    pub subject_common_name: String,
    pub pem: String,
}

/// `GET /order/certificate/{id}` (and one element of the order list).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderInfo {
    pub id: u64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub certificate: CertificateInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcv_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductRef>,
    /// Per-name DCV state, when the response carries it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_name_validations: Vec<NameValidation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CertificateInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default)]
    pub common_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_till: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProductRef {
    #[serde(default)]
    pub name_id: String,
}

/// `GET /order/certificate` list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderList {
    #[serde(default)]
    pub orders: Vec<OrderInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Page {
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// `PUT …/dcv-random-value` and token-method `PUT …/dcv-method` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RandomValue {
    pub dcv_random_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcvMethodChange {
    pub dcv_method: String,
}

/// `PUT …/check-dcv` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckDcv {
    #[serde(default)]
    pub order_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    #[serde(default)]
    pub dcv_status: String,
    #[serde(default)]
    pub dns_name_validations: Vec<NameValidation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NameValidation {
    pub dns_name: String,
    #[serde(default)]
    pub status: String,
}

/// `PUT …/resend-emails` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendEmails {
    #[serde(default)]
    pub domain_approval_emails: Vec<DomainApprovalEmail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainApprovalEmail {
    pub domain: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_domain: Option<String>,
}

/// `GET /domain/{fqdn}/dcv/emails` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DcvEmails {
    #[serde(default)]
    pub name_scope: String,
    #[serde(default)]
    pub base_emails: Vec<String>,
    #[serde(default)]
    pub whois_emails: Vec<String>,
    #[serde(default)]
    pub dns_txt_emails: Vec<String>,
}

/// `PUT …/status` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: String,
    #[serde(default)]
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_emails: Option<bool>,
}

/// `{"errors": [...]}`; some responses carry a single object instead of an array.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub errors: Errors,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    pub fn one(code: &str, message: &str) -> Self {
        Self {
            errors: Errors::Many(vec![ErrorItem {
                code: code.to_string(),
                message: message.to_string(),
            }]),
        }
    }
}
