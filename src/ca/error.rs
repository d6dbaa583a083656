//! `ProviderError`: what a CA said (or failed to say), kept as fields, with a retry kind.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::model::ErrorKind;

/// One error item as the CA reported it (DigiCert `{code,message}`; Sectigo
/// `errorCode`/`errorMessage`/`errorItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// A failed provider call. Never holds credentials: constructors take only what the
/// server returned and the endpoint name.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub provider: String,
    /// Endpoint name as used in metrics, e.g. `order/certificate` or `!AutoApplySSL`.
    pub endpoint: String,
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub errors: Vec<ApiError>,
    pub retry_after: Option<Duration>,
    /// Transport failure text or what was wrong with the body.
    pub detail: Option<String>,
    /// True when the request certainly did not create anything at the CA (the server
    /// answered with a refusal). Used by crash-safe submission.
    pub rejected: bool,
}

impl ProviderError {
    pub fn new(provider: &str, endpoint: &str, kind: ErrorKind) -> Self {
        Self {
            provider: provider.to_string(),
            endpoint: endpoint.to_string(),
            kind,
            status: None,
            errors: Vec::new(),
            retry_after: None,
            detail: None,
            rejected: false,
        }
    }

    /// Connection refused/reset, timeout, TLS failure: transient, outcome unknown.
    pub fn transport(provider: &str, endpoint: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::new(provider, endpoint, ErrorKind::Transient)
        }
    }

    /// A response whose body could not be understood. Transient: proxies and
    /// maintenance pages produce these; the outcome of the request is unknown.
    pub fn malformed(
        provider: &str,
        endpoint: &str,
        status: u16,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status: Some(status),
            detail: Some(detail.into()),
            ..Self::new(provider, endpoint, ErrorKind::Transient)
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    pub fn with_errors(mut self, errors: Vec<ApiError>) -> Self {
        self.errors = errors;
        self
    }
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }
    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    pub fn rejected(mut self) -> Self {
        self.rejected = true;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True if any reported error code (before a `|` qualifier) equals `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.code.split('|').next() == Some(code))
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider `{}`: {} failed", self.provider, self.endpoint)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        for (i, e) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{}: {}", e.code, e.message)?;
            if let Some(item) = &e.item {
                write!(f, " [{item}]")?;
            }
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        if let Some(r) = self.retry_after {
            write!(f, " (retry after {}s)", r.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// An error's text followed by its sources (`connect error: Connection refused`), for
/// transport failures where the outermost text alone says little. Provider clients send
/// credentials in headers or bodies, never in URLs, so this holds no secret.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
