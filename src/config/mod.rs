//! Configuration: figment load (defaults → TOML file → `DCVD_` env), secrets, validation.
//!
//! [`load`] is the one entry point: it returns a [`Config`] whose secrets are all
//! resolved (the inline `api_key` / `login_password` / `tsig_secret` fields are filled)
//! and whose every value has been checked, or every problem found, each naming its key.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::RateLimit;
use crate::model::{DcvMethod, DomainName};

mod hostname;
mod include;
mod load;
mod problem;
mod rules;
pub mod schema;
mod secrets;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_refused;
#[cfg(test)]
mod tests_split;
pub mod tls;
mod validate;
mod validate_acme;
mod validate_cert;
pub(crate) mod validate_digicert;
mod validate_limits;

pub use load::{load, load_from_str};
pub use schema::*;
pub use secrets::{parse_tsig_secret, resolve_secrets};
pub use validate::{validate, validate_at};
pub use validate_limits::warnings_at;

/// [`warnings_at`] as of today (system clock): what still works but will stop working.
pub fn warnings(cfg: &Config) -> Vec<ConfigProblem> {
    warnings_at(cfg, validate::today())
}

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/dcvd/dcvd.toml";

/// `$DCVD_CONFIG`, else `/etc/dcvd/dcvd.toml`.
pub fn default_path() -> PathBuf {
    match std::env::var_os("DCVD_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// One thing wrong with the configuration: the key it concerns (e.g.
/// `providers.main.rate_limits[0]`, or for a certificate its file and name:
/// `/etc/dcvd/certificates.d/shop.toml: certificate "shop": dcv[0]`) and what to do about it.
/// Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in one load, displayed one per line as `key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file that was loaded (for the heading printed by `check-config`).
    pub path: Option<PathBuf>,
    pub problems: Vec<ConfigProblem>,
}

impl ConfigErrors {
    pub fn new(path: Option<&Path>, problems: Vec<ConfigProblem>) -> Self {
        Self {
            path: path.map(Path::to_path_buf),
            problems,
        }
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Sectigo publishes no request limits (its API only answers error -42 "too many
/// requests"), so this default of 10 requests a second is a conservative guess.
pub const SECTIGO_DEFAULT_LIMITS: &[&str] = &["10/1s"];
/// DigiCert CertCentral: 100 requests per 5 seconds and 1000 per 5 minutes per API key.
pub const DIGICERT_DEFAULT_LIMITS: &[&str] = &["100/5s", "1000/5m"];
/// ACME: Let's Encrypt allows 250 requests a second per IP on its API (20/s for new
/// nonces); dcvd counts provider calls, each a few requests, so 50 calls a second.
pub const ACME_DEFAULT_LIMITS: &[&str] = &["50/1s"];

/// The request windows the scheduler enforces for a provider: the `rate_limits` key,
/// or the kind's defaults when the key is absent. An empty list means no limit.
/// Entries that do not parse are skipped ([`validate`] refuses them at load).
pub fn rate_limits(cfg: &ProviderConfig) -> Vec<RateLimit> {
    let (configured, defaults) = match cfg {
        ProviderConfig::Digicert(d) => (&d.rate_limits, DIGICERT_DEFAULT_LIMITS),
        ProviderConfig::Sectigo(s) => (&s.rate_limits, SECTIGO_DEFAULT_LIMITS),
        ProviderConfig::Acme(a) => (&a.rate_limits, ACME_DEFAULT_LIMITS),
    };
    match configured {
        Some(list) => list.iter().filter_map(|s| s.parse().ok()).collect(),
        None => defaults.iter().filter_map(|s| s.parse().ok()).collect(),
    }
}

impl Config {
    /// How problems name `certificates[i]`: its file and name
    /// (`/etc/dcvd/certificates.d/shop.toml: certificate "shop"`), see [`ConfigSources`].
    pub fn certificate_key(&self, i: usize) -> String {
        let origin = self.sources.certificates.get(i);
        problem::certificate_location(
            self.certificate_file(i),
            self.certificates.get(i).map(|c| c.name.as_str()),
            origin.map_or(i, |o| o.index),
        )
    }

    /// The file `certificates[i]` was written in (`None` for a configuration given as a
    /// string, or one built in code).
    pub fn certificate_file(&self, i: usize) -> Option<&Path> {
        let file = self.sources.certificates.get(i)?.file?;
        self.sources.files.get(file).map(PathBuf::as_path)
    }
}

impl ConfigSources {
    /// What `check-config` says about the files it read, one line each: nothing for a
    /// single file without `include`; else `read N files: a, b, …` (up to
    /// [`LISTED_FILES`] files, a count beyond); `verbose`: `read N files:` and one line
    /// per file with the number of certificates taken from it.
    pub fn report(&self, verbose: bool) -> Vec<String> {
        if !self.uses_include {
            return Vec::new();
        }
        let n = self.files.len();
        let mut out = vec![if verbose {
            format!("read {n} file{}:", if n == 1 { "" } else { "s" })
        } else if n <= LISTED_FILES {
            let list: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
            format!(
                "read {n} file{}: {}",
                if n == 1 { "" } else { "s" },
                list.join(", ")
            )
        } else {
            format!(
                "read {n} files: {} and {} included (check-config --verbose lists them)",
                self.files
                    .first()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default(),
                n - 1
            )
        }];
        if verbose {
            let mut counts = vec![0usize; n];
            for o in &self.certificates {
                if let Some(c) = o.file.and_then(|f| counts.get_mut(f)) {
                    *c += 1;
                }
            }
            for (f, c) in self.files.iter().zip(counts) {
                out.push(format!(
                    "  {}: {c} certificate{}",
                    f.display(),
                    if c == 1 { "" } else { "s" }
                ));
            }
        }
        out
    }
}

/// How many files `check-config` names in its one-line list without `--verbose`.
pub const LISTED_FILES: usize = 10;

impl CertificateConfig {
    /// `common_name` then `dns_names`, canonical (IDN as punycode, lower case) and without
    /// repeats. Names that do not parse are left out; [`load`] refuses them.
    pub fn names(&self) -> Vec<DomainName> {
        let mut out: Vec<DomainName> = Vec::new();
        for raw in std::iter::once(&self.common_name).chain(&self.dns_names) {
            if let Ok(n) = DomainName::parse(raw)
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
        out
    }

    /// The publisher that puts `method`'s tokens in place: `http_publisher` (else
    /// `publisher`) for http/https, `publisher` for DNS methods, none for email.
    pub fn publisher_for(&self, method: DcvMethod) -> Option<&str> {
        if method.is_http() {
            self.http_publisher.as_deref().or(self.publisher.as_deref())
        } else if method.is_dns() {
            self.publisher.as_deref()
        } else {
            None
        }
    }

    /// The configured approver address for `name`: the entry for the name itself or
    /// its closest parent in `approver_emails`. `None`: ask the provider.
    pub fn approver_for(&self, name: &DomainName) -> Option<&str> {
        self.approver_emails
            .iter()
            .map(|(domain, email)| (domain.trim_start_matches("*.").trim_end_matches('.'), email))
            .filter(|(domain, _)| name.is_at_or_below(domain))
            .max_by_key(|(domain, _)| domain.len())
            .map(|(_, email)| email.as_str())
    }
}
