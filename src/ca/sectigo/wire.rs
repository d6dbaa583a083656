//! Sectigo reseller API wire format: response parsing into a case-insensitive multimap,
//! `errorCode` → `ProviderError` mapping, and the DCV method names on the wire.

use std::time::Duration;

use crate::ca::{ApiError, ErrorKind, ProviderError};
use crate::model::DcvMethod;

/// The answer of one call: key/value pairs in order; keys may repeat (`caCertificate`).
/// Keys are matched without regard to case (`errorcode` happens), values are trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub pairs: Vec<(String, String)>,
}

impl Reply {
    /// Parse either format Sectigo answers with:
    /// - URL-encoded `errorCode=0&orderNumber=…` (pairs may also be split over lines);
    /// - text: a status line (`0` or `-N`), then `key<TAB>value` lines (GetDCVEmailAddressList),
    ///   or for errors the message on the second line.
    pub fn parse(body: &str) -> Result<Reply, String> {
        let body = body.trim_start_matches('\u{feff}').trim();
        if body.is_empty() {
            return Err("empty body".into());
        }
        let mut lines = body.lines();
        let first = lines.next().unwrap_or_default().trim();
        if !first.contains('=') {
            let code: i64 = first.parse().map_err(|_| {
                format!(
                    "neither URL-encoded nor a status line: starts with {:?}",
                    cut(first)
                )
            })?;
            let mut pairs = vec![("errorCode".to_string(), code.to_string())];
            if code < 0 {
                let msg: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
                pairs.push(("errorMessage".into(), msg.join(" ")));
                return Ok(Reply { pairs });
            }
            for line in lines.filter(|l| !l.trim().is_empty()) {
                let (k, v) = line
                    .split_once('\t')
                    .or_else(|| line.trim().split_once(' '))
                    .ok_or_else(|| format!("text line without a tab: {:?}", cut(line)))?;
                pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
            return Ok(Reply { pairs });
        }
        let mut pairs = Vec::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            if !line.contains('=') {
                return Err(format!("line without `=`: {:?}", cut(line)));
            }
            for part in line.trim().split('&').filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                let key = decode(k);
                // Base64 certificates may come with a raw `+` (not `%2B`); form decoding
                // would make it a space and corrupt the DER (checkdomain keeps these two
                // out of its decoding too). `+` is never a space there.
                let value = if BASE64_KEYS
                    .iter()
                    .any(|b| b.eq_ignore_ascii_case(key.trim()))
                {
                    decode(&v.replace('+', "%2B"))
                } else {
                    decode(v)
                };
                pairs.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
        Ok(Reply { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// `errorCode`, or `None` when absent or not a number (a malformed answer).
    pub fn error_code(&self) -> Option<i64> {
        self.get("errorCode")?.parse().ok()
    }
}

/// Values that are base64 (CollectSSL `responseType=3`).
const BASE64_KEYS: &[&str] = &["certificate", "caCertificate"];

/// One form-urlencoded component (`+` = space, `%XX`).
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn cut(s: &str) -> String {
    s.chars().take(60).collect()
}

/// True for the -4 "The value of the 'orderNumber' argument is invalid!" answer. The seed
/// gives it for an order "already issued", but it is the generic -4 text: an unknown,
/// cancelled, rejected or other account's order gets the same. It never decides a
/// state by itself; callers confirm with `download/CollectSSL`.
pub fn is_order_number_refusal(err: &ProviderError) -> bool {
    err.errors.iter().any(|e| {
        e.code == "-4"
            && (e.item.as_deref() == Some("orderNumber")
                || e.message.contains("'orderNumber' argument is invalid"))
    })
}

/// What an error code means, for the operator (reference/sectigo.md §3; the SiteLock
/// response page for -115). Codes whose meaning no source gives keep only the CA's message.
pub fn code_meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        -1 => "the request was not made over HTTPS (check base_url)",
        -2 => "an argument dcvd sent is not recognised by Sectigo",
        -3 => "a required argument is missing",
        -4 => "an argument's value is invalid",
        -13..=-5 => "the CSR was refused",
        -15 => "not enough credit on the Sectigo account",
        -17 => "the request was not a POST",
        -18 => "the order was already refunded",
        -20 => "the order was rejected or cancelled at Sectigo",
        -21 => "the certificate was revoked",
        -26 => "the certificate is being issued",
        -35 | -19 => "the name is an IP address",
        -40 => "the key is known to be compromised; use a new key",
        -115 => {
            "no price for this product and term: check product and validity_days \
             (the days value is invalid for the product)"
        }
        _ => return None,
    })
}

/// Map an answer with `errorCode < 0` to a `ProviderError`. The server certainly did
/// not act on the request, so it is marked `rejected`.
pub fn api_error(provider: &str, endpoint: &str, code: i64, reply: &Reply) -> ProviderError {
    let message = reply.get("errorMessage").unwrap_or("(no errorMessage)");
    let item = reply.get("errorItem").map(str::to_string);
    let errors = vec![ApiError {
        code: code.to_string(),
        message: message.to_string(),
        item,
    }];
    let (kind, detail) = match code {
        -42 => (
            ErrorKind::RateLimited,
            Some("Sectigo call limit reached; requests paused".to_string()),
        ),
        -14 => (
            ErrorKind::Transient,
            Some("Sectigo reported an unknown error; will retry".into()),
        ),
        -16 => (
            ErrorKind::Permanent,
            Some(format!(
                "login failed for provider {provider}: check login_name/login_password \
                 (or account locked, IP not allowed, API not enabled)"
            )),
        ),
        c => (
            ErrorKind::Permanent,
            Some(match code_meaning(c) {
                Some(m) => format!("Sectigo error {c}: {m}"),
                None => {
                    format!("Sectigo error {c} (meaning not documented; the CA's message follows)")
                }
            }),
        ),
    };
    let mut e = ProviderError::new(provider, endpoint, kind)
        .with_errors(errors)
        .rejected();
    if code == -42 {
        e = e.with_retry_after(Some(RATE_LIMIT_PAUSE));
    }
    if let Some(d) = detail {
        e = e.with_detail(d);
    }
    e
}

/// How long to hold requests after -42 (Sectigo publishes no number).
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// `dcvMethod` / `newMethod` value; `None` for methods Sectigo cannot do (dns-txt).
pub fn method_wire(m: DcvMethod) -> Option<&'static str> {
    match m {
        DcvMethod::DnsCname => Some("CNAME_CSR_HASH"),
        DcvMethod::Http => Some("HTTP_CSR_HASH"),
        DcvMethod::Https => Some("HTTPS_CSR_HASH"),
        DcvMethod::Email => Some("EMAIL"),
        DcvMethod::DnsTxt => None,
    }
}

/// The older per-domain token in AutoApplySSL's `dcvEmailAddresses` (reference §1.2).
pub fn legacy_token(m: DcvMethod) -> Option<&'static str> {
    match m {
        DcvMethod::DnsCname => Some("CNAMECSRHASH"),
        DcvMethod::Http => Some("HTTPCSRHASH"),
        DcvMethod::Https => Some("HTTPSCSRHASH"),
        DcvMethod::Email | DcvMethod::DnsTxt => None,
    }
}

/// GetMDCDomainDetails `dcvStatus`, matched exactly ("Not Validated" must not count).
pub fn name_status(s: &str) -> crate::ca::NameDcv {
    use crate::ca::NameDcv;
    match s.trim() {
        "Validated" => NameDcv::Valid,
        "Failed" | "Rejected" | "Expired" | "Invalid" => NameDcv::Invalid(s.trim().to_string()),
        _ => NameDcv::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urlencoded_and_repeated_keys() {
        let r =
            Reply::parse("errorCode=0&caCertificate=a%2Bb&caCertificate=c+d&x= 1 &y=p+q").unwrap();
        assert_eq!(r.error_code(), Some(0));
        // base64 values keep a raw `+`; other values decode it as a space.
        assert_eq!(
            r.get_all("cacertificate").collect::<Vec<_>>(),
            ["a+b", "c+d"]
        );
        assert_eq!(r.get("X"), Some("1"));
        assert_eq!(r.get("y"), Some("p q"));
        let r = Reply::parse("errorCode=-4&errorMessage=The+value+of+the+%27orderNumber%27+argument+is+invalid%21&errorItem=orderNumber").unwrap();
        let e = api_error("sec", "!AutoUpdateDCV", -4, &r);
        assert!(is_order_number_refusal(&e));
        let r = Reply::parse("errorCode=-4&errorMessage=x&errorItem=domainName").unwrap();
        assert!(!is_order_number_refusal(&api_error("sec", "x", -4, &r)));
    }

    #[test]
    fn parses_text_format_and_text_errors() {
        let r = Reply::parse("0\ndomain_name\twww.x.org\nwhois_email\t a@x.org\n").unwrap();
        assert_eq!(r.error_code(), Some(0));
        assert_eq!(r.get("whois_email"), Some("a@x.org"));
        let r = Reply::parse("-16\nPermission denied!\n").unwrap();
        assert_eq!(r.error_code(), Some(-16));
        assert_eq!(r.get("errorMessage"), Some("Permission denied!"));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for b in ["", "<html>maintenance</html>", "ok\nfoo"] {
            assert!(Reply::parse(b).is_err(), "{b}");
        }
        assert_eq!(Reply::parse("errorCode=abc").unwrap().error_code(), None);
    }

    #[test]
    fn error_codes_map_to_kinds() {
        let r = Reply::parse("errorCode=-3&errorMessage=missing&errorItem=csr").unwrap();
        let cases = [
            (-42, ErrorKind::RateLimited),
            (-14, ErrorKind::Transient),
            (-16, ErrorKind::Permanent),
            (-3, ErrorKind::Permanent),
            (-10, ErrorKind::Permanent),
        ];
        for (code, kind) in cases {
            let e = api_error("sec", "!AutoApplySSL", code, &r);
            assert_eq!(e.kind, kind, "{code}");
            assert!(e.rejected);
            assert_eq!(e.errors[0].item.as_deref(), Some("csr"));
        }
        let r115 = Reply::parse("errorCode=-115&errorMessage=No+price+found").unwrap();
        let e = api_error("sec", "!AutoApplySSL", -115, &r115);
        assert!(e.to_string().contains("validity_days"), "{e}");
        assert!(e.to_string().contains("No price found"), "{e}");
        let e = api_error("sec", "!AutoApplySSL", -16, &r);
        assert!(
            e.to_string().contains("login failed for provider sec"),
            "{e}"
        );
    }

    #[test]
    fn dcv_status_is_matched_exactly() {
        use crate::ca::NameDcv;
        assert_eq!(name_status("Validated"), NameDcv::Valid);
        assert_eq!(name_status("Not Validated"), NameDcv::Pending);
        assert_eq!(name_status("Awaiting Validation"), NameDcv::Pending);
        assert!(matches!(name_status("Failed"), NameDcv::Invalid(_)));
    }
}
