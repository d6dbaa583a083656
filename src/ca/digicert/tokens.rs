//! DigiCert DCV tokens: neutral ↔ wire method names and where each method's token goes,
//! built from the order's random value.

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
}
