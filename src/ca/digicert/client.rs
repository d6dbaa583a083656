//! DigiCert requests over the shared [`Transport`]: the API key header, the JSON body,
//! and the mapping of an error answer (status, error body) to `ProviderError` kinds.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::ErrorBody;
use crate::ca::limit::Limiter;
use crate::ca::transport::{ClientOptions, Transport};
use crate::ca::{ApiError, ErrorKind, ProviderError};

/// Codes that mean "token not found yet" on `check-dcv`: a normal "not yet"
/// (reference/digicert.md §1: `invalid_dns_txt` for TXT, `file_random_value_not_found`
/// for HTTP). No code is documented for `dns-cname-token`: see `NOT_YET_UNLESS`.
pub const NOT_YET_CODES: &[&str] = &["invalid_dns_txt", "file_random_value_not_found"];

/// For a `dns-cname-token` order, a 400 from `check-dcv` is read as "not validated yet"
/// unless one of its codes says the call itself was wrong (these prefixes). Our own
/// check saw the CNAME on every nameserver before the call, DigiCert keeps polling on
/// its own, and the method timeout still moves the order on; failing the order on an
/// undocumented code would throw away a paid order instead.
pub const NOT_YET_UNLESS: &[&str] = &[
    "not_found",
    "access_denied",
    "invalid_dcv_method",
    "invalid_order_status",
    "bad_request_format",
];

pub struct Api {
    base_url: String,
    api_key: SecretString,
    /// The client, the limiter (a permit per request) and the 429 pause.
    transport: Transport,
}

/// A successful answer: status and (possibly empty) body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Api {
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: SecretString,
        timeout: Duration,
    ) -> Result<Self, String> {
        let transport = Transport::new(
            name,
            &ClientOptions {
                timeout,
                connect_timeout: Some(timeout.min(Duration::from_secs(10))),
                roots: None,
            },
        )?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            transport,
        })
    }

    /// Take a permit from `limiter` for every request.
    pub fn set_limiter(&mut self, limiter: Arc<Limiter>) {
        self.transport = self.transport.clone().with_limiter(limiter);
    }

    pub fn name(&self) -> &str {
        self.transport.name()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Send one request; 2xx → `Answer`, anything else → `ProviderError`.
    /// `endpoint` is the metric name (ids replaced by `{id}`).
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        endpoint: &str,
        body: Option<&B>,
    ) -> Result<Answer, ProviderError> {
        self.send_accepting(method, path, endpoint, body, "application/json")
            .await
    }

    /// A certificate download: `pem_all` is served as `application/x-pem-file`
    /// (glossary, certificate formats), so no `Accept: application/json` here.
    pub async fn download(&self, path: &str, endpoint: &str) -> Result<Answer, ProviderError> {
        self.send_accepting::<serde_json::Value>(
            Method::GET,
            path,
            endpoint,
            None,
            "application/x-pem-file, */*",
        )
        .await
    }

    async fn send_accepting<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        endpoint: &str,
        body: Option<&B>,
        accept: &str,
    ) -> Result<Answer, ProviderError> {
        let url = format!("{}{}", self.base_url, path);
        let what = format!("{method} {path}");
        let mut req = self
            .transport
            .http()
            .request(method, &url)
            .header("X-DC-DEVKEY", self.api_key.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, accept);
        if let Some(b) = body {
            let bytes =
                serde_json::to_vec(b).map_err(|e| self.transport.encode_error(endpoint, e))?;
            req = req.body(bytes);
        }
        let answer = self.transport.send(req, endpoint).await?;
        let status = answer.status;
        if status.is_success() {
            return Ok(Answer {
                status: status.as_u16(),
                body: answer.body.to_vec(),
            });
        }
        let mut err = self.error_from(endpoint, status, &answer.body, answer.retry_after);
        if err.kind == ErrorKind::RateLimited && status != StatusCode::TOO_MANY_REQUESTS {
            // `request_limit_exceeded` under another status: hold every request of this
            // provider now (the transport already did for a 429).
            self.transport.pause(answer.retry_after);
        }
        // Name the request (path holds the order id; never the key, which is a header).
        err.detail = Some(match err.detail.take() {
            Some(d) => format!("{d} [{what}]"),
            None => format!("[{what}]"),
        });
        Err(err)
    }

    /// Send and parse a JSON answer.
    pub async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        endpoint: &str,
        body: Option<&B>,
    ) -> Result<T, ProviderError> {
        let a = self.send(method, path, endpoint, body).await?;
        self.parse(endpoint, &a)
    }

    pub fn parse<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        a: &Answer,
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&a.body).map_err(|e| {
            ProviderError::malformed(
                self.name(),
                endpoint,
                a.status,
                format!("the response body is not the expected JSON ({e}); will retry"),
            )
        })
    }

    /// Map an error response. Pure: unit-tested below.
    pub fn error_from(
        &self,
        endpoint: &str,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> ProviderError {
        error_from(self.name(), endpoint, status, body, retry_after)
    }
}

/// Parse an error body: `{"errors":[…]}` or `{"errors":{…}}`; `None` if neither.
pub fn parse_errors(body: &[u8]) -> Option<Vec<ApiError>> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    Some(
        parsed
            .errors
            .into_vec()
            .into_iter()
            .map(|e| ApiError {
                code: e.code,
                message: e.message,
                item: None,
            })
            .collect(),
    )
}

pub fn error_from(
    provider: &str,
    endpoint: &str,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ProviderError {
    let errors = parse_errors(body).unwrap_or_default();
    let code = status.as_u16();
    let limited = errors
        .iter()
        .any(|e| e.code.split('|').next() == Some("request_limit_exceeded"));
    let base = |kind| {
        ProviderError::new(provider, endpoint, kind)
            .with_status(code)
            .with_errors(errors.clone())
    };
    if code == 429 || limited {
        return base(ErrorKind::RateLimited)
            .with_retry_after(retry_after)
            .rejected();
    }
    if status.is_server_error() {
        return base(ErrorKind::Transient).with_detail("server error at the CA; will retry");
    }
    let lacks_permission = errors
        .iter()
        .any(|e| e.code.starts_with("access_denied|missing_permission"));
    if code == 403 && lacks_permission {
        return base(ErrorKind::Permanent)
            .with_detail(format!(
                "the API key of provider {provider} is valid but lacks a permission for this call; grant it in CertCentral (Account > API keys) or use a key that has it"
            ))
            .rejected();
    }
    if code == 401 || code == 403 {
        return base(ErrorKind::Permanent)
            .with_detail(format!(
                "authentication failed for provider {provider}: check api_key"
            ))
            .rejected();
    }
    if errors.is_empty() && !body.is_empty() && status.is_client_error() && code != 404 {
        // A 4xx whose body we cannot read: still a refusal, keep a snippet for the operator.
        let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
        return base(ErrorKind::Permanent)
            .with_detail(format!("unreadable error body: {snippet}"))
            .rejected();
    }
    base(ErrorKind::Permanent).rejected()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_by_status_and_code() {
        let many = br#"{"errors":[{"code":"missing_field|csr","message":"CSR is required"},{"code":"invalid_dcv_method","message":"bad"}]}"#;
        let e = error_from(
            "dc",
            "order/certificate",
            StatusCode::BAD_REQUEST,
            many,
            None,
        );
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.rejected);
        assert_eq!(e.errors.len(), 2);
        assert!(e.has_code("missing_field") && e.has_code("invalid_dcv_method"));

        let one = br#"{"errors":{"code":"not_found|route","message":"The specified route was not found."}}"#;
        let e = error_from("dc", "x", StatusCode::NOT_FOUND, one, None);
        assert!(e.has_code("not_found"));

        let limited = br#"{"errors":[{"code":"request_limit_exceeded","message":"slow"}]}"#;
        let e = error_from(
            "dc",
            "x",
            StatusCode::TOO_MANY_REQUESTS,
            limited,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));

        let e = error_from("dc", "x", StatusCode::BAD_GATEWAY, b"<html>", None);
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(!e.rejected);

        let denied = br#"{"errors":[{"code":"access_denied|missing_permission","message":"no"}]}"#;
        let e = error_from("dc", "x", StatusCode::FORBIDDEN, denied, None);
        assert_eq!(e.kind, ErrorKind::Permanent);
        let shown = e.to_string();
        assert!(shown.contains("lacks a permission"), "{shown}");
        assert!(!shown.contains("check api_key"), "{shown}");

        let e = error_from("dc", "x", StatusCode::FORBIDDEN, b"", None);
        assert!(e.to_string().contains("check api_key"));

        let e = error_from("dc", "x", StatusCode::UNAUTHORIZED, b"", None);
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(
            e.to_string()
                .contains("authentication failed for provider dc: check api_key")
        );
    }
}
