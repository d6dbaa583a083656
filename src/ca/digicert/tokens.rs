//! DigiCert specifics kept out of the request code: neutral ↔ wire method names,
//! token placement from the order random value, the `ca_data` JSON, PEM splitting.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ca::CaOrderState;
use crate::model::{Challenge, ChallengeKind, DcvMethod, DomainName};

/// Path of the HTTP token file (DigiCert `http-token`).
pub const HTTP_TOKEN_PATH: &str = "/.well-known/pki-validation/fileauth.txt";
/// The label DigiCert looks under for DNS tokens.
pub const DNSAUTH_LABEL: &str = "_dnsauth";
/// The zone a `dns-cname-token` CNAME points into.
pub const CNAME_TARGET_ZONE: &str = "dcv.digicert.com";

pub use crate::config::validate_digicert::LOCALES;

/// Wire `dcv_method` for a neutral method; `None` for methods DigiCert cannot do.
pub fn wire_method(m: DcvMethod) -> Option<&'static str> {
    match m {
        DcvMethod::DnsTxt => Some("dns-txt-token"),
        DcvMethod::DnsCname => Some("dns-cname-token"),
        DcvMethod::Http => Some("http-token"),
        DcvMethod::Email => Some("email"),
        DcvMethod::Https => None,
    }
}

pub fn neutral_method(wire: &str) -> Option<DcvMethod> {
    match wire {
        "dns-txt-token" => Some(DcvMethod::DnsTxt),
        "dns-cname-token" => Some(DcvMethod::DnsCname),
        "http-token" => Some(DcvMethod::Http),
        "email" => Some(DcvMethod::Email),
        _ => None,
    }
}

/// Where `dns-txt` tokens go (`dns_txt_at` in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxtPlacement {
    /// `_dnsauth.<name>` (default: leaves the apex TXT set alone).
    DnsAuth,
    /// At `<name>` itself.
    AtName,
}

/// The token for one name, or `None` when the method publishes nothing (email) or
/// cannot apply (http for a wildcard: DigiCert refuses it).
pub fn challenge_for(
    name: &DomainName,
    method: DcvMethod,
    random: &str,
    txt: TxtPlacement,
) -> Option<Challenge> {
    let base = name.base();
    let dnsauth = format!("{DNSAUTH_LABEL}.{base}");
    match method {
        DcvMethod::DnsTxt => Some(Challenge {
            kind: ChallengeKind::DnsTxt,
            name: match txt {
                TxtPlacement::DnsAuth => dnsauth,
                TxtPlacement::AtName => base.to_string(),
            },
            path: None,
            value: random.to_string(),
        }),
        DcvMethod::DnsCname => Some(Challenge {
            kind: ChallengeKind::DnsCname,
            name: dnsauth,
            path: None,
            value: format!("{random}.{CNAME_TARGET_ZONE}"),
        }),
        DcvMethod::Http if !name.is_wildcard() => Some(Challenge {
            kind: ChallengeKind::Http,
            name: name.as_str().to_string(),
            path: Some(HTTP_TOKEN_PATH.to_string()),
            value: random.to_string(),
        }),
        _ => None,
    }
}

pub fn challenges(
    names: &[(DomainName, DcvMethod)],
    random: &str,
    txt: TxtPlacement,
) -> Vec<(DomainName, Challenge)> {
    names
        .iter()
        .filter_map(|(n, m)| challenge_for(n, *m, random, txt).map(|c| (n.clone(), c)))
        .collect()
}

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
    pub fn from_json(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
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

/// The registrable (base) domain of a name through the Public Suffix List
/// (`sub.example.co.uk` → `example.co.uk`): DigiCert's `email_domain` "must match the
/// dns_names base domain" (seed "Order DV SSL"). Names under an unlisted suffix count
/// the last label as the suffix (the PSL's default rule).
pub fn registrable_domain(name: &DomainName) -> String {
    let base = name.base();
    psl::domain_str(base).unwrap_or(base).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn token_placement_per_method() {
        let c = challenge_for(
            &d("*.example.com"),
            DcvMethod::DnsTxt,
            "r1",
            TxtPlacement::DnsAuth,
        )
        .unwrap();
        assert_eq!(
            (c.kind, c.name.as_str(), c.value.as_str()),
            (ChallengeKind::DnsTxt, "_dnsauth.example.com", "r1")
        );
        let c = challenge_for(
            &d("www.example.com"),
            DcvMethod::DnsTxt,
            "r1",
            TxtPlacement::AtName,
        )
        .unwrap();
        assert_eq!(c.name, "www.example.com");
        let c = challenge_for(
            &d("www.example.com"),
            DcvMethod::DnsCname,
            "r1",
            TxtPlacement::DnsAuth,
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.value.as_str()),
            ("_dnsauth.www.example.com", "r1.dcv.digicert.com")
        );
        let c = challenge_for(
            &d("www.example.com"),
            DcvMethod::Http,
            "r1",
            TxtPlacement::DnsAuth,
        )
        .unwrap();
        assert_eq!(
            c.location(),
            "http://www.example.com/.well-known/pki-validation/fileauth.txt"
        );
        assert!(
            challenge_for(
                &d("*.example.com"),
                DcvMethod::Http,
                "r1",
                TxtPlacement::DnsAuth
            )
            .is_none()
        );
        assert!(
            challenge_for(
                &d("example.com"),
                DcvMethod::Email,
                "r1",
                TxtPlacement::DnsAuth
            )
            .is_none()
        );
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

    #[test]
    fn email_domain_is_the_registrable_domain() {
        for (name, want) in [
            ("www.example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("*.shop.example.com", "example.com"),
            ("example.com", "example.com"),
            ("sub.example.test", "example.test"),
        ] {
            assert_eq!(registrable_domain(&d(name)), want, "{name}");
        }
    }
}
