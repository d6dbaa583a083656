//! Shared set-up for the Sectigo tests (was `tests/sectigo_common/`): config, CSRs, requests, order references.
#![allow(dead_code)]

use std::time::Duration;

use dcvd::ca::sectigo::SectigoProvider;
use dcvd::ca::{OrderRef, SubmitRequest};
use dcvd::config::SectigoConfig;
use dcvd::model::{DcvMethod, DomainName, KeyType};

pub const PASSWORD: &str = "s3cret-Pa55word";

pub fn config(base_url: &str, password: &str) -> SectigoConfig {
    SectigoConfig {
        base_url: base_url.to_string(),
        login_name: "dcvd".into(),
        login_password: Some(password.to_string().into()),
        login_password_file: None,
        rate_limits: None,
        dcv_suffix: "sectigo.com".into(),
        poll_interval: Duration::from_secs(60),
        collect_interval: Duration::from_secs(300),
        request_timeout: Duration::from_secs(10),
        in_flight_margin: Duration::from_secs(300),
        server_software: -1,
    }
}

pub fn provider(base_url: &str) -> SectigoProvider {
    SectigoProvider::new("sectigo-test", &config(base_url, PASSWORD)).unwrap()
}

pub use super::names;

/// A P-256 CSR with CN = SAN = `cn`; (PEM, DER).
pub fn csr(cn: &str) -> (String, Vec<u8>) {
    super::csr(&[cn])
}

pub fn request(
    reference: &str,
    list: &[&str],
    methods: &[DcvMethod],
    emails: &[(&str, &str)],
) -> SubmitRequest {
    let (csr_pem, csr_der) = csr(list[0]);
    SubmitRequest {
        reference: reference.to_string(),
        certificate: "web".into(),
        product: "287".into(),
        names: names(list),
        csr_pem,
        csr_der,
        key_type: KeyType::EcdsaP256,
        methods: methods.to_vec(),
        approver_emails: emails
            .iter()
            .map(|(n, e)| (DomainName::parse(n).unwrap(), e.to_string()))
            .collect(),
        locale: "en".into(),
        validity_days: None,
        renewal_of: None,
        created_at: dcvd::clock::Clock::now(&dcvd::clock::SystemClock),
        known_ca_orders: Vec::new(),
    }
}

/// The order as the engine would hold it.
pub struct Held {
    pub reference: String,
    pub id: String,
    pub data: serde_json::Value,
    pub names: Vec<DomainName>,
    pub der: Vec<u8>,
}

impl Held {
    pub fn new(req: &SubmitRequest, id: &str, data: serde_json::Value) -> Held {
        Held {
            reference: req.reference.clone(),
            id: id.to_string(),
            data,
            names: req.names.clone(),
            der: req.csr_der.clone(),
        }
    }
    pub fn r(&self) -> OrderRef<'_> {
        OrderRef {
            reference: &self.reference,
            ca_order_id: &self.id,
            ca_data: &self.data,
            names: &self.names,
            csr_der: &self.der,
        }
    }
}

/// Parameters of a received form as `key=value` strings, in order, without loginName.
pub fn params(form: &dcvd::sim::sectigo::ReceivedForm) -> Vec<String> {
    form.params
        .iter()
        .filter(|(k, _)| k != "loginName")
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}
