//! `CaData`: what the DigiCert client keeps about an order between calls (the order's
//! `ca_data` JSON in the database).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ca::{OrderRef, ProviderError};

/// What the provider remembers about an order between calls (stored by the engine).
///
/// `random_value_refresh_due` is set by `status()` when the stored random value expires
/// within a day (or its expiry is unknown while the order still validates): the engine
/// should then call `challenges()`, which fetches the current value (DigiCert returns a
/// new one once the old one expired) and republish when it changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcv_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcv_random_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_value_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub random_value_refresh_due: bool,
    /// The certificate's `locale` at submit: the language of emails resent after a
    /// switch to email (`change_method` has no locale argument).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl CaData {
    /// The record stored with `order`. One that is not a DigiCert record (a damaged row,
    /// or another provider's) is a Permanent error naming the order, as for Sectigo and
    /// ACME: carrying on with an empty record would lose the certificate id and random
    /// value without a word.
    pub fn from_ref(provider: &str, order: &OrderRef<'_>) -> Result<Self, ProviderError> {
        match order.ca_data {
            serde_json::Value::Null => Ok(Self::default()),
            _ => order.record(provider, "a DigiCert order record"),
        }
    }

    /// `null` (nothing stored yet) is the empty record; anything else must be a record.
    pub fn parse(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        match v {
            serde_json::Value::Null => Ok(Self::default()),
            v => Self::deserialize(v),
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
    /// True when the value expires within `margin` of `now`.
    pub fn expires_within(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        self.random_value_expires_at
            .is_some_and(|t| t - now <= margin)
    }
}

/// Parse DigiCert's `expiration_date` (RFC 3339, e.g. `2023-02-24T16:25:52+00:00`).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::ErrorKind;

    fn order(v: &serde_json::Value) -> OrderRef<'_> {
        OrderRef {
            reference: "dcvd-1",
            ca_order_id: "123",
            ca_data: v,
            names: &[],
            csr_der: &[],
        }
    }

    #[test]
    fn a_record_round_trips_and_nothing_stored_is_empty() {
        let d = CaData {
            certificate_id: Some(7),
            dcv_random_value: Some("rv".into()),
            ..CaData::default()
        };
        assert_eq!(CaData::from_ref("dc", &order(&d.to_json())).unwrap(), d);
        assert_eq!(
            CaData::from_ref("dc", &order(&serde_json::Value::Null)).unwrap(),
            CaData::default()
        );
        assert_eq!(
            CaData::from_ref("dc", &order(&serde_json::json!({}))).unwrap(),
            CaData::default()
        );
    }

    #[test]
    fn a_damaged_record_is_a_permanent_error_naming_the_order() {
        for bad in [
            serde_json::json!({"certificate_id": "not a number"}),
            serde_json::json!([1, 2]),
            serde_json::json!("text"),
        ] {
            let e = CaData::from_ref("dc", &order(&bad)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Permanent, "{bad}");
            assert!(
                e.to_string()
                    .contains("ca_data of order 123 is not a DigiCert order record"),
                "{e}"
            );
        }
    }
}
