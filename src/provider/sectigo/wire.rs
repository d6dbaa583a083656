//! Sectigo reseller API wire format: response parsing into a case-insensitive multimap,
//! `errorCode` → `ProviderError` mapping, and the DCV method names on the wire.

use std::time::Duration;

use crate::model::DcvMethod;
use crate::provider::{ApiError, ErrorKind, ProviderError};

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
            for (k, v) in url::form_urlencoded::parse(line.trim().as_bytes()) {
                pairs.push((k.trim().to_string(), v.trim().to_string()));
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

fn cut(s: &str) -> String {
    s.chars().take(60).collect()
}

/// True for AutoUpdateDCV's answer on an order that is already issued (seed document).
pub fn is_issued_order_answer(err: &ProviderError) -> bool {
    err.errors
        .iter()
        .any(|e| e.message.contains("'orderNumber' argument is invalid"))
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
        _ => (ErrorKind::Permanent, None),
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
pub fn name_status(s: &str) -> crate::provider::NameDcv {
    use crate::provider::NameDcv;
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
        let r = Reply::parse("errorCode=0&caCertificate=a%2Bb&caCertificate=c+d&x= 1 ").unwrap();
        assert_eq!(r.error_code(), Some(0));
        assert_eq!(
            r.get_all("cacertificate").collect::<Vec<_>>(),
            ["a+b", "c d"]
        );
        assert_eq!(r.get("X"), Some("1"));
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
        let e = api_error("sec", "!AutoApplySSL", -16, &r);
        assert!(
            e.to_string().contains("login failed for provider sec"),
            "{e}"
        );
    }

    #[test]
    fn dcv_status_is_matched_exactly() {
        use crate::provider::NameDcv;
        assert_eq!(name_status("Validated"), NameDcv::Valid);
        assert_eq!(name_status("Not Validated"), NameDcv::Pending);
        assert_eq!(name_status("Awaiting Validation"), NameDcv::Pending);
        assert!(matches!(name_status("Failed"), NameDcv::Invalid(_)));
    }
}
