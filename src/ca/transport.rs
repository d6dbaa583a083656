//! The one HTTP transport of the CA clients (DigiCert, Sectigo, and ACME through
//! instant-acme's `HttpClient` seam in `acme/http.rs`).
//!
//! It owns what every CA request shares: the reqwest client (built once per provider:
//! timeouts, user agent, `ca_file` roots), a permit from the provider's [`Limiter`] for
//! every HTTP request (held until the whole answer is read, R5), `Retry-After` parsing,
//! the pause of every request of the provider when the CA answers HTTP 429, and the text
//! and kind of a transport failure. The clients keep only request building and reading
//! their bodies and error documents; a client whose CA says "rate limited" in the body
//! (DigiCert `request_limit_exceeded`, Sectigo `-42`) asks for the pause with [`Transport::pause`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::error::error_chain;
use super::limit::Limiter;
use super::{ErrorKind, ProviderError};

/// How long every request of a provider is held after "rate limited" without a
/// `Retry-After` (none of the three CAs documents a number).
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

/// How the reqwest client of one provider is built.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout, when shorter than `timeout` matters.
    pub connect_timeout: Option<Duration>,
    /// Trust only these roots (`ca_file`) instead of the built-in ones.
    pub roots: Option<Vec<reqwest::Certificate>>,
}

/// One provider's HTTP transport. Cheap to clone (the client and limiter are shared).
#[derive(Clone)]
pub struct Transport {
    name: String,
    http: reqwest::Client,
    /// Every request takes a permit; unlimited until the provider's limiter is set.
    limiter: Arc<Limiter>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("name", &self.name)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// What came back: any status (the client reads errors from the body), the headers and
/// the whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `Retry-After`, as seconds or an HTTP date.
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Transport {
    /// The client for provider `name`; errors name the provider.
    pub fn new(name: &str, opts: &ClientOptions) -> Result<Self, String> {
        let mut b = crate::net::client_builder(opts.timeout);
        if let Some(c) = opts.connect_timeout {
            b = b.connect_timeout(c);
        }
        if let Some(roots) = &opts.roots {
            b = b.tls_certs_only(roots.clone());
        }
        let http = b
            .build()
            .map_err(|e| format!("provider `{name}`: cannot build the HTTP client: {e}"))?;
        Ok(Self {
            name: name.to_string(),
            http,
            limiter: Arc::new(Limiter::unlimited()),
        })
    }

    /// Take a permit from `limiter` (the provider's, from the `Limiters` registry) for
    /// every request.
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client, to build requests with (`http().post(url)…`).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// Send one request under a permit and read the whole answer. Any HTTP status is an
    /// `Answer`; only a failure to send or to read is an error (Transient, outcome
    /// unknown). A 429 holds every request of this provider for its `Retry-After` (else
    /// [`DEFAULT_PAUSE`]) before the answer is returned. `endpoint` names the call in
    /// errors (ids replaced by `{id}`).
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        endpoint: &str,
    ) -> Result<Answer, ProviderError> {
        self.send_gated(req, endpoint, true).await
    }

    /// As [`send`](Self::send); `gated: false` sends without a permit (ACME renewalInfo,
    /// which CAs exempt from their limits and which is asked for every certificate on
    /// every renewal check).
    pub async fn send_gated(
        &self,
        req: reqwest::RequestBuilder,
        endpoint: &str,
        gated: bool,
    ) -> Result<Answer, ProviderError> {
        // In flight until the whole answer is read; the window counts it from then.
        let _permit = match gated {
            true => Some(self.limiter.permit().await.0),
            false => None,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(endpoint, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let retry_after = retry_after(&headers);
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(endpoint, &e))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.pause(retry_after);
        }
        Ok(Answer {
            status,
            headers,
            retry_after,
            body,
        })
    }

    /// The CA said "rate limited": hold every request of this provider (all tasks, all
    /// steps) for `retry_after`, else [`DEFAULT_PAUSE`].
    pub fn pause(&self, retry_after: Option<Duration>) {
        self.limiter.pause(retry_after.unwrap_or(DEFAULT_PAUSE));
    }

    /// A request that got no (whole) answer: Transient, the outcome unknown. reqwest's
    /// text carries the URL, which holds no secret (credentials travel in headers or
    /// form bodies).
    pub fn transport_error(&self, endpoint: &str, e: &reqwest::Error) -> ProviderError {
        let what = if e.is_timeout() {
            "request timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "connection failed"
        };
        ProviderError::transport(
            &self.name,
            endpoint,
            format!("{what} ({}); outcome unknown, will retry", error_chain(e)),
        )
    }

    /// A body that could not be encoded: nothing was sent.
    pub fn encode_error(&self, endpoint: &str, e: impl std::fmt::Display) -> ProviderError {
        ProviderError::new(&self.name, endpoint, ErrorKind::Permanent)
            .with_detail(format!("cannot encode the request body: {e}"))
            .rejected()
    }
}

/// `Retry-After` as seconds or an HTTP date, relative to now.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(
        at.duration_since(SystemTime::from(crate::clock::Clock::now(
            &crate::clock::SystemClock,
        )))
        .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Fri, 31 Dec 1999 23:59:59 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    fn transport(name: &str) -> Transport {
        let opts = ClientOptions {
            timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        };
        Transport::new(name, &opts).unwrap()
    }

    /// A loopback server answering 429 with `Retry-After: 1` first, then 200; it logs
    /// when each request arrived.
    async fn server() -> (String, Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>) {
        let log: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let l = log.clone();
        let app = axum::Router::new().fallback(move || {
            let l = l.clone();
            async move {
                let mut seen = l.lock().unwrap();
                seen.push(tokio::time::Instant::now());
                match seen.len() {
                    1 => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("Retry-After", "1")],
                        "slow",
                    ),
                    _ => (StatusCode::OK, [("Retry-After", "0")], "ok"),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, log)
    }

    #[tokio::test]
    async fn a_429_holds_every_request_of_the_provider_for_its_retry_after() {
        let (url, log) = server().await;
        let t = transport("sec");
        let first = t.send(t.http().post(&url), "x").await.unwrap();
        assert_eq!(first.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(first.retry_after, Some(Duration::from_secs(1)));
        // Another clone (another step of the same provider) is held too, once.
        let other = t.clone();
        let second = other.send(other.http().post(&url), "y").await.unwrap();
        assert_eq!(second.status, StatusCode::OK);
        assert_eq!(&second.body[..], b"ok");
        let at = log.lock().unwrap().clone();
        let gap = at[1] - at[0];
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_secs(2),
            "the next request went {gap:?} after a 429 with Retry-After: 1"
        );
    }

    #[tokio::test]
    async fn a_request_without_an_answer_is_transient_and_names_the_provider() {
        // A port nothing listens on: bind one, then close it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let t = transport("dc");
        let e = t
            .send(t.http().get(format!("http://{addr}/")), "order/certificate")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(!e.rejected);
        let shown = e.to_string();
        assert!(
            shown.starts_with("provider `dc`: order/certificate failed: could not connect"),
            "{shown}"
        );
        assert!(shown.contains("outcome unknown, will retry"), "{shown}");
    }
}
