//! HTTP self-check of `http`/`https` tokens: fetch the file as the CA would and compare.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::zone::parse_server;
use super::{CheckReport, DnsError, ServerOutcome, ServerResult};
use crate::config::HttpCheckConfig;
use crate::model::ErrorKind;
use crate::model::{Challenge, ChallengeKind};

/// Same-host redirects followed at most.
const MAX_REDIRECTS: usize = 3;

pub struct HttpCheck {
    client: reqwest::Client,
}

impl HttpCheck {
    pub fn new(cfg: &HttpCheckConfig) -> Result<Self, String> {
        let mut overrides: BTreeMap<String, SocketAddr> = BTreeMap::new();
        for (host, addr) in &cfg.overrides {
            let a =
                parse_server(addr).map_err(|e| format!("http_check.overrides.\"{host}\": {e}"))?;
            overrides.insert(host.trim_end_matches('.').to_ascii_lowercase(), a);
        }
        let mut b = crate::net::client_builder(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // The CA checks the content, not the certificate; a self-check must not be stricter.
            .tls_danger_accept_invalid_certs(true)
            .user_agent(format!("{} (DCV self-check)", crate::net::USER_AGENT));
        for (host, addr) in overrides {
            b = b.resolve(&host, addr);
        }
        let client = b
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client })
    }

    /// One fetch of the token URL, reported as one server result keyed by the URL.
    pub async fn check(&self, c: &Challenge) -> Result<CheckReport, DnsError> {
        let scheme = match c.kind {
            ChallengeKind::Http => "http",
            ChallengeKind::Https => "https",
            _ => {
                return Err(DnsError {
                    what: c.location(),
                    detail: "not an HTTP challenge".into(),
                    kind: ErrorKind::Permanent,
                });
            }
        };
        let path = c.path.as_deref().unwrap_or("/");
        let url = format!("{scheme}://{}{path}", c.name);
        let outcome = self.fetch(&url, &c.value).await;
        Ok(CheckReport {
            present: outcome == ServerOutcome::Present,
            final_name: url.clone(),
            servers: vec![ServerResult {
                server: url,
                outcome,
            }],
        })
    }

    async fn fetch(&self, url: &str, expected: &str) -> ServerOutcome {
        let Ok(mut current) = reqwest::Url::parse(url) else {
            return ServerOutcome::Error(format!("`{url}` is not a valid URL"));
        };
        let host = current.host_str().unwrap_or_default().to_string();
        for _ in 0..=MAX_REDIRECTS {
            let resp = match self.client.get(current.clone()).send().await {
                Ok(r) => r,
                Err(e) if e.is_timeout() => return ServerOutcome::Timeout,
                Err(e) => return ServerOutcome::Error(format!("{current}: {e}")),
            };
            let status = resp.status();
            if status.is_redirection() {
                let Some(loc) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                else {
                    return ServerOutcome::Error(format!("HTTP {status} without Location"));
                };
                let Ok(next) = current.join(loc) else {
                    return ServerOutcome::Error(format!("HTTP {status} to bad Location `{loc}`"));
                };
                if next.host_str() != Some(host.as_str()) {
                    return ServerOutcome::Error(format!(
                        "redirect to another host ({next}); the CA will not follow it"
                    ));
                }
                current = next;
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND {
                return ServerOutcome::NoData;
            }
            if !status.is_success() {
                return ServerOutcome::Error(format!("HTTP {status}"));
            }
            return match resp.text().await {
                Ok(body) if body_matches(&body, expected) => ServerOutcome::Present,
                Ok(body) => ServerOutcome::OtherValue(vec![truncate(body.trim(), 200)]),
                Err(e) => ServerOutcome::Error(format!("reading the body: {e}")),
            };
        }
        ServerOutcome::Error(format!("more than {MAX_REDIRECTS} redirects"))
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// DigiCert tokens (one line) must match exactly after trimming; Sectigo files (several
/// lines: hash, `sectigo.com`, optional unique value) line by line, trailing whitespace
/// ignored, hex compared case-insensitively.
pub fn body_matches(body: &str, expected: &str) -> bool {
    let expected = expected.trim();
    if !expected.contains('\n') {
        return body.trim() == expected;
    }
    let lines = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .trim()
            .lines()
            .map(|l| l.trim_end().to_ascii_lowercase())
            .collect();
        while v.last().is_some_and(|l| l.is_empty()) {
            v.pop();
        }
        v
    };
    lines(body) == lines(expected)
}

#[cfg(test)]
mod tests {
    use super::body_matches;

    #[test]
    fn digicert_tokens_match_exactly_after_trim() {
        assert!(body_matches("abc123\n", "abc123"));
        assert!(!body_matches("ABC123", "abc123"));
        assert!(!body_matches("abc1234", "abc123"));
    }

    #[test]
    fn sectigo_files_match_line_by_line() {
        let want = "ABCDEF0123\nsectigo.com\nuniq";
        assert!(body_matches(
            "abcdef0123  \r\nsectigo.com\r\nuniq\n\n",
            want
        ));
        assert!(!body_matches("abcdef0123\ncomodoca.com\nuniq", want));
        assert!(!body_matches("abcdef0123\nsectigo.com", want));
    }
}
