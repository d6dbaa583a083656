//! instant-acme's `HttpClient` over the shared CA [`Transport`] (client with `ca_file`
//! roots and timeouts, a rate-limit permit per request, the 429 pause), and the mapping
//! of instant-acme errors to `ProviderError`.
//!
//! Each response's HTTP status and `Retry-After` are noted in a task-local slot for the
//! provider call in progress ([`observed`]), because instant-acme's `Problem` keeps
//! neither the header nor (always) the status.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use crate::ca::transport::Transport;
use crate::ca::{ApiError, ErrorKind, ProviderError};

/// What the last response of the current provider call said besides its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Seen {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

tokio::task_local! {
    static SEEN: Cell<Seen>;
}

/// Run `f` (one provider call) and return what its last response's headers said.
pub(super) async fn observed<F: Future>(f: F) -> (F::Output, Seen) {
    SEEN.scope(Cell::new(Seen::default()), async {
        let out = f.await;
        (out, SEEN.with(Cell::get))
    })
    .await
}

/// The `Retry-After` of the last response in the current [`observed`] call.
pub(super) fn last_retry_after() -> Option<Duration> {
    SEEN.try_with(Cell::get).ok().and_then(|s| s.retry_after)
}

tokio::task_local! {
    static UNGATED: ();
}

/// Run `f` with its requests sent without a rate-limit permit (renewalInfo lookups).
pub(super) async fn ungated<F: Future>(f: F) -> F::Output {
    UNGATED.scope((), f).await
}

/// instant-acme's transport: our [`Transport`], so every ACME request takes a permit
/// from the provider's limiter and a 429 pauses the provider, as for DigiCert and Sectigo.
pub(super) struct ReqwestHttp(pub Transport);

impl HttpClient for ReqwestHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let transport = self.0.clone();
        let gated = UNGATED.try_with(|_| ()).is_err();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(never) => match never {},
            };
            let req = transport
                .http()
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body);
            // The endpoint is not known here; `map_error` names it.
            let answer = transport
                .send_gated(req, "acme", gated)
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let seen = Seen {
                status: Some(answer.status.as_u16()),
                retry_after: answer.retry_after,
            };
            let _ = SEEN.try_with(|c| c.set(seen));
            let mut shell = http::Response::new(());
            *shell.status_mut() = answer.status;
            *shell.headers_mut() = answer.headers;
            let (parts, ()) = shell.into_parts();
            Ok(BytesResponse {
                parts,
                body: Box::new(answer.body),
            })
        })
    }
}

/// ACME problem types (RFC 8555 §6.7) after which trying again may succeed.
const TRANSIENT_PROBLEMS: &[&str] = &["badNonce", "serverInternal", "connection", "dns"];

/// Map an instant-acme error from `endpoint` to a `ProviderError`.
pub(super) fn map_error(
    provider: &str,
    endpoint: &str,
    e: instant_acme::Error,
    seen: Seen,
) -> ProviderError {
    use instant_acme::Error as E;
    match e {
        E::Api(problem) => {
            let status = problem.status.or(seen.status);
            let code = problem
                .r#type
                .as_deref()
                .map(|t| {
                    t.trim_start_matches("urn:ietf:params:acme:error:")
                        .to_string()
                })
                .unwrap_or_default();
            let mut errors = vec![ApiError {
                code: code.clone(),
                message: problem.detail.clone().unwrap_or_default(),
                item: None,
            }];
            errors.extend(problem.subproblems.iter().map(|sp| {
                ApiError {
                    code: sp
                        .r#type
                        .as_deref()
                        .map(|t| {
                            t.trim_start_matches("urn:ietf:params:acme:error:")
                                .to_string()
                        })
                        .unwrap_or_default(),
                    message: sp.detail.clone().unwrap_or_default(),
                    item: sp
                        .identifier
                        .as_ref()
                        .map(|i| i.authorized(false).to_string()),
                }
            }));
            let kind = if code == "rateLimited" || status == Some(429) {
                ErrorKind::RateLimited
            } else if TRANSIENT_PROBLEMS.contains(&code.as_str()) || status.is_none_or(|s| s >= 500)
            {
                ErrorKind::Transient
            } else {
                ErrorKind::Permanent
            };
            let mut err = ProviderError::new(provider, endpoint, kind)
                .with_errors(errors)
                .with_retry_after(seen.retry_after);
            if let Some(s) = status {
                err = err.with_status(s);
            }
            // A 4xx problem: the server refused, nothing was created.
            if status.is_some_and(|s| (400..500).contains(&s)) {
                err = err.rejected();
            }
            err
        }
        E::Json(j) => {
            let mut err = ProviderError::transport(
                provider,
                endpoint,
                format!("the answer is not the expected JSON: {j}"),
            )
            .with_retry_after(seen.retry_after);
            if let Some(s) = seen.status {
                err = err.with_status(s);
            }
            err
        }
        E::Crypto | E::KeyRejected => ProviderError::new(provider, endpoint, ErrorKind::Permanent)
            .with_detail(format!(
                "the stored ACME account key cannot be used ({e}); remove the provider's row \
                 from acme_accounts to register a new account"
            )),
        E::Unsupported(what) => ProviderError::new(provider, endpoint, ErrorKind::Permanent)
            .with_detail(format!("the ACME server does not support {what}")),
        E::Other(inner) => match inner.downcast::<ProviderError>() {
            // A transport failure: keep its text and kind, named after this call.
            Ok(t) => ProviderError {
                endpoint: endpoint.to_string(),
                ..*t
            },
            Err(other) => ProviderError::transport(provider, endpoint, other.to_string())
                .with_retry_after(seen.retry_after),
        },
        other => ProviderError::transport(provider, endpoint, other.to_string())
            .with_retry_after(seen.retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(json: &str) -> instant_acme::Error {
        instant_acme::Error::Api(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn problems_map_to_kinds() {
        let seen = Seen {
            status: Some(429),
            retry_after: Some(Duration::from_secs(7)),
        };
        let e = map_error(
            "le",
            "new-order",
            problem(
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many","status":429}"#,
            ),
            seen,
        );
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert!(e.has_code("rateLimited"));

        let e = map_error(
            "le",
            "new-order",
            problem(
                r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no","status":400}"#,
            ),
            Seen::default(),
        );
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.rejected);
        assert!(e.to_string().contains("rejectedIdentifier: no"), "{e}");

        for t in ["badNonce", "serverInternal"] {
            let json = format!(r#"{{"type":"urn:ietf:params:acme:error:{t}","status":400}}"#);
            let e = map_error("le", "x", problem(&json), Seen::default());
            assert_eq!(e.kind, ErrorKind::Transient, "{t}");
        }
        let e = map_error(
            "le",
            "x",
            problem(r#"{"detail":"gateway"}"#),
            Seen {
                status: Some(502),
                retry_after: None,
            },
        );
        assert_eq!((e.kind, e.status), (ErrorKind::Transient, Some(502)));
    }
}
