//! Domain newtypes parsed once at the edges: DNS names, DCV methods, states, key types.

pub mod check;
pub mod error;
pub mod order;
pub mod rate;

pub use check::{CheckReport, ServerOutcome, ServerResult};
pub use error::ErrorKind;
pub use order::{Authorization, CaOrderState, Event, NameDcv, Order};
pub use rate::RateLimit;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A DNS name in canonical form: ASCII (IDN converted to punycode), lower case,
/// no trailing dot. A wildcard is allowed only as the whole first label (`*.example.com`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid DNS name: {reason}")]
pub struct DomainNameError {
    pub input: String,
    pub reason: String,
}

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, DomainNameError> {
        let err = |reason: &str| DomainNameError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        let (wildcard, rest) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let ascii = idna::domain_to_ascii(rest)
            .map_err(|_| err("it cannot be converted to ASCII (IDNA/punycode)"))?;
        if ascii.len() + if wildcard { 2 } else { 0 } > 253 {
            return Err(err("it is longer than 253 characters"));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(err(
                "it needs at least two labels (a certificate for a bare top-level name is not possible)",
            ));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(err("it has an empty label (two dots in a row)"));
            }
            if label.len() > 63 {
                return Err(err("a label is longer than 63 characters"));
            }
            if label.contains('*') {
                return Err(err(
                    "`*` is allowed only as the whole first label, as in *.example.com",
                ));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err("labels may hold only letters, digits, `-` and `_`"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(err("a label may not start or end with `-`"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(err("it looks like an IP address, not a DNS name"));
        }
        let name = if wildcard {
            format!("*.{ascii}")
        } else {
            ascii
        };
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name without a leading `*.`: where DNS tokens for a wildcard go.
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }

    /// True when `self` equals `other` or lies below it (`a.b.example.com` under `example.com`).
    pub fn is_at_or_below(&self, other: &str) -> bool {
        let base = self.base();
        let other = other.trim_end_matches('.').to_ascii_lowercase();
        base == other || base.ends_with(&format!(".{other}"))
    }
}

impl TryFrom<String> for DomainName {
    type Error = DomainNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $s:literal),+ $(,)? } what = $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not a known {}; expected one of: {}",
                        $what,
                        [$($s),+].join(", ")
                    )),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> { s.parse() }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> &'static str { v.as_str() }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// Provider-neutral DCV method names, as written in config and shown by the CLI.
    DcvMethod {
        DnsTxt => "dns-txt",
        DnsCname => "dns-cname",
        Http => "http",
        Https => "https",
        Email => "email",
    } what = "DCV method"
);

impl DcvMethod {
    pub fn is_dns(self) -> bool {
        matches!(self, DcvMethod::DnsTxt | DcvMethod::DnsCname)
    }
    pub fn is_http(self) -> bool {
        matches!(self, DcvMethod::Http | DcvMethod::Https)
    }
}

string_enum!(
    /// Which CA API a provider speaks.
    ProviderKind {
        Digicert => "digicert",
        Sectigo => "sectigo",
        Acme => "acme",
    } what = "provider kind"
);

impl ProviderKind {
    /// The DCV methods each CA's API can do (DESIGN.md table).
    pub fn supports(self, method: DcvMethod) -> bool {
        match self {
            ProviderKind::Digicert => method != DcvMethod::Https,
            ProviderKind::Sectigo => method != DcvMethod::DnsTxt,
            // dns-01 (dns-txt, or dns-cname via a delegated `_acme-challenge` CNAME) and http-01.
            ProviderKind::Acme => matches!(
                method,
                DcvMethod::DnsTxt | DcvMethod::DnsCname | DcvMethod::Http
            ),
        }
    }
}

string_enum!(
    /// Life of one issuance attempt at one CA.
    OrderState {
        Pending => "pending",
        Submitting => "submitting",
        /// The CA's answer to a recovery lookup did not settle whether it has the order:
        /// not terminal, no automatic progress; the operator adopts a CA order
        /// (`dcvd orders adopt`) or allows a new one (`dcvd orders resubmit --yes`).
        SubmitUnknown => "submit_unknown",
        Validating => "validating",
        AwaitingIssuance => "awaiting_issuance",
        Issued => "issued",
        Failed => "failed",
        Canceled => "canceled",
    } what = "order state"
);

impl OrderState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderState::Issued | OrderState::Failed | OrderState::Canceled
        )
    }
}

string_enum!(
    /// Cancelling at the CA an order dcvd abandoned (it failed after the CA had it).
    CaCancel {
        /// The durable marker: written with the failure, before any cancel call, so a
        /// restart finishes it. Due at `Order::ca_cancel_at`.
        Wanted => "wanted",
        /// The CA accepted the cancel, or already showed the order ended.
        Canceled => "canceled",
        /// The CA refused (for example: already issued, not pending); its words in
        /// `Order::ca_cancel_answer`. Not asked again: `status` shows it.
        Refused => "refused",
    } what = "CA cancel state"
);

string_enum!(
    /// What dcvd does with a certificate already in `output_dir` before its first order
    /// (config key `adopt`).
    #[derive(Default)]
    AdoptMode {
        /// Adopt it when it is valid, for exactly the names, with its key and chain.
        #[default]
        IfValid => "if-valid",
        /// Always order a new one.
        Never => "never",
    } what = "adopt mode"
);

string_enum!(
    /// Where the certificate dcvd manages came from.
    CertSource {
        /// Issued for one of dcvd's orders.
        Ordered => "ordered",
        /// Found valid in `output_dir` before dcvd ordered anything for it.
        Adopted => "adopted",
    } what = "certificate source"
);

string_enum!(
    /// What an order's event records (the `kind` column of `events`; `orders show`).
    EventKind {
        /// The order was written (pending).
        Created => "created",
        /// The order's state changed.
        State => "state",
        /// The order failed, with the reason.
        Failed => "failed",
        /// A DCV token was published.
        Published => "published",
        /// The DCV name is delegated by a CNAME (ACME dns-cname).
        Delegated => "delegated",
        /// A propagation check round: not visible everywhere yet.
        CheckPending => "check_pending",
        /// A propagation check round: visible on every server.
        CheckPassed => "check_passed",
        /// The propagation check itself failed (retried, never terminal).
        CheckError => "check_error",
        /// A CA API call and its outcome.
        CaCall => "ca_call",
        /// The CA's order id became known.
        CaOrder => "ca_order",
        /// The CA reported a new order state.
        CaState => "ca_state",
        /// The CA validated a name.
        Validated => "validated",
        /// The CA gave up on a method for a name.
        CaInvalid => "ca_invalid",
        /// DCV fell back to the next method.
        MethodSwitch => "method_switch",
        /// A DCV method failed for a name.
        MethodFailed => "method_failed",
        /// A DCV method cannot be used (publisher refused, not supported).
        MethodRefused => "method_refused",
        /// Approval emails were resent.
        EmailResent => "email_resent",
        /// The CA's token was renewed (it had expired).
        TokenRenewed => "token_renewed",
        /// The durable submit intent, before the order is sent.
        Submitting => "submitting",
        /// Dcvd cannot tell whether the CA has the order; waits for the operator.
        SubmitUnknown => "submit_unknown",
        /// A recovery lookup after an unanswered submit.
        Recovery => "recovery",
        /// Recovery waits for the CA to show the order.
        RecoveryWait => "recovery_wait",
        /// A duplicate CA order was found (and canceled).
        Duplicate => "duplicate",
        /// A possible duplicate CA order was found.
        DuplicateUnsure => "duplicate_unsure",
        /// The certificate was installed.
        Installed => "installed",
        /// The deploy hook ran, with its outcome.
        DeployHook => "deploy_hook",
        /// A step failed (retried by the retry policy).
        Error => "error",
        /// A published token was removed.
        Cleanup => "cleanup",
        /// The order's row does not read whole; held aside.
        Damaged => "damaged",
        /// The order's row reads whole again.
        Repaired => "repaired",
        /// An operator command acted on the order.
        Operator => "operator",
        /// The order was canceled.
        Canceled => "canceled",
        /// dcvd canceled an abandoned order at the CA, or the CA refused or the call failed.
        CaCancel => "ca_cancel",
    } what = "event kind"
);

/// Tests and callers compare a read-back event's kind with the enum, not with a string.
impl PartialEq<EventKind> for String {
    fn eq(&self, other: &EventKind) -> bool {
        self == other.as_str()
    }
}

string_enum!(
    /// DCV of one DNS name within one order.
    AuthzState {
        Publishing => "publishing",
        Propagating => "propagating",
        Ready => "ready",
        Submitted => "submitted",
        Valid => "valid",
        EmailSent => "email_sent",
        Failed => "failed",
    } what = "authorization state"
);

string_enum!(
    /// Private key algorithm and size.
    KeyType {
        EcdsaP256 => "ecdsa-p256",
        EcdsaP384 => "ecdsa-p384",
        Rsa2048 => "rsa-2048",
        Rsa3072 => "rsa-3072",
        Rsa4096 => "rsa-4096",
    } what = "key type"
);

string_enum!(
    /// The kind of token a challenge asks us to put in place.
    ChallengeKind {
        DnsTxt => "TXT",
        DnsCname => "CNAME",
        Http => "HTTP",
        Https => "HTTPS",
    } what = "challenge kind"
);

/// Where and what to publish for one DNS name's DCV, as the provider computed it.
/// `name` is a DNS owner name (no trailing dot) for DNS kinds, the host name for HTTP(S).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub kind: ChallengeKind,
    pub name: String,
    /// URL path for HTTP(S) tokens, e.g. `/.well-known/pki-validation/fileauth.txt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// TXT text, CNAME target (no trailing dot) or HTTP file body.
    pub value: String,
}

impl Challenge {
    pub fn is_dns(&self) -> bool {
        matches!(self.kind, ChallengeKind::DnsTxt | ChallengeKind::DnsCname)
    }
    /// The `https://host/path` form of an HTTP(S) token; the owner name for DNS ones.
    pub fn location(&self) -> String {
        match (self.kind, &self.path) {
            (ChallengeKind::Http, Some(p)) => format!("http://{}{}", self.name, p),
            (ChallengeKind::Https, Some(p)) => format!("https://{}{}", self.name, p),
            _ => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_canonicalised() {
        let cases = [
            ("Example.COM.", "example.com"),
            ("*.example.com", "*.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("_dnsauth.www.example.com", "_dnsauth.www.example.com"),
        ];
        for (input, want) in cases {
            assert_eq!(DomainName::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn bad_domain_names_are_refused_with_a_reason() {
        for bad in [
            "",
            "com",
            "a..b.com",
            "www.*.example.com",
            "-a.example.com",
            "a b.example.com",
            "10.0.0.1",
            &format!("{}.com", "a".repeat(64)),
        ] {
            let err = DomainName::parse(bad).unwrap_err();
            assert!(!err.reason.is_empty(), "{bad}");
        }
    }

    #[test]
    fn wildcard_base_and_parent_test() {
        let w = DomainName::parse("*.Example.com").unwrap();
        assert!(w.is_wildcard());
        assert_eq!(w.base(), "example.com");
        assert!(w.is_at_or_below("example.com"));
        let d = DomainName::parse("a.b.example.com").unwrap();
        assert!(d.is_at_or_below("b.example.com."));
        assert!(!d.is_at_or_below("ample.com"));
    }

    #[test]
    fn enums_round_trip_and_list_choices_on_error() {
        for m in DcvMethod::ALL {
            assert_eq!(m.as_str().parse::<DcvMethod>().unwrap(), *m);
        }
        let err = "dns".parse::<DcvMethod>().unwrap_err();
        assert!(
            err.contains("dns-txt, dns-cname, http, https, email"),
            "{err}"
        );
        assert!(!ProviderKind::Sectigo.supports(DcvMethod::DnsTxt));
        assert!(!ProviderKind::Digicert.supports(DcvMethod::Https));
    }
}

/// The longest validity, in days, a publicly trusted TLS certificate may have when issued
/// on `on` (CA/Browser Forum Baseline Requirements 6.3.2 as amended by ballot SC-081:
/// 398 days until 2026-03-15, then 200, from 2027-03-15 100, from 2029-03-15 47).
pub fn public_tls_max_validity_days(on: chrono::NaiveDate) -> u32 {
    let d =
        |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day).unwrap_or(chrono::NaiveDate::MIN);
    if on < d(2026, 3, 15) {
        398
    } else if on < d(2027, 3, 15) {
        200
    } else if on < d(2029, 3, 15) {
        100
    } else {
        47
    }
}

#[cfg(test)]
mod validity_cap_tests {
    use super::public_tls_max_validity_days as cap;
    use chrono::NaiveDate;

    #[test]
    fn the_sc081_steps_take_effect_on_their_dates() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(cap(d(2026, 3, 14)), 398);
        assert_eq!(cap(d(2026, 3, 15)), 200);
        assert_eq!(cap(d(2026, 12, 2)), 200);
        assert_eq!(cap(d(2027, 3, 15)), 100);
        assert_eq!(cap(d(2029, 3, 14)), 100);
        assert_eq!(cap(d(2029, 3, 15)), 47);
    }
}

/// Whether a method change applies to one name or to the whole order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodScope {
    /// DigiCert: `dcv_method` is an order attribute.
    PerOrder,
    /// Sectigo: `!AutoUpdateDCV` per domain.
    PerName,
}
