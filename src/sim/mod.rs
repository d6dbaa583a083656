//! Simulators of the CA APIs (DigiCert CertCentral, Sectigo) and an in-process
//! authoritative DNS server, for tests, benchmarks and `dcvd demo`.
//!
//! Shared here: the request log and counters every simulator keeps, fault injection,
//! and [`DcvLookup`], which checks DCV tokens for real (DNS at a configured nameserver,
//! HTTP at a configured address), exactly where the real CA would look.

pub mod ca;
pub mod digicert;
pub mod dns;
pub mod lab;
pub mod pebble;
pub mod sectigo;
pub mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use rand::RngExt;
use serde::Serialize;

/// One request as the simulator saw it. Tests assert on these.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    pub method: String,
    /// Endpoint name, e.g. `order/certificate` or `!AutoApplySSL` (ids replaced by `{id}`).
    pub endpoint: String,
    pub path: String,
    pub status: u16,
}

/// Append-only request log with a start instant.
#[derive(Debug)]
pub struct RequestLog {
    start: std::time::Instant,
    entries: Mutex<Vec<LoggedRequest>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self {
            start: std::time::Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl RequestLog {
    pub fn record(&self, method: &str, endpoint: &str, path: &str, status: u16) {
        let at_ms = self.start.elapsed().as_millis() as u64;
        self.entries
            .lock()
            .expect("request log lock")
            .push(LoggedRequest {
                at_ms,
                method: method.to_string(),
                endpoint: endpoint.to_string(),
                path: path.to_string(),
                status,
            });
    }

    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.lock().expect("request log lock").clone()
    }

    /// Requests per endpoint.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in self.entries.lock().expect("request log lock").iter() {
            *m.entry(e.endpoint.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// Faults a simulator injects, each as a share of requests (0.0–1.0).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every request.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    pub server_error_rate: f64,
    pub rate_limit_rate: f64,
    /// Close the connection without answering.
    pub drop_rate: f64,
    /// Answer 200 with a body that does not parse.
    pub malformed_rate: f64,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    ServerError,
    RateLimited,
    Drop,
    Malformed,
}

impl Faults {
    pub fn pick(&self) -> Fault {
        let mut rng = rand::rng();
        let r: f64 = rng.random();
        let mut acc = 0.0;
        for (rate, f) in [
            (self.server_error_rate, Fault::ServerError),
            (self.rate_limit_rate, Fault::RateLimited),
            (self.drop_rate, Fault::Drop),
            (self.malformed_rate, Fault::Malformed),
        ] {
            acc += rate;
            if r < acc {
                return f;
            }
        }
        Fault::None
    }
}

/// Looks DCV tokens up where a CA would: DNS at `nameserver` (recursion not desired,
/// no cache), HTTP at an address from `http_addresses` (or the name itself on port 80).
#[derive(Clone)]
pub struct DcvLookup {
    resolver: Option<TokioResolver>,
    http: reqwest::Client,
    http_addresses: BTreeMap<String, SocketAddr>,
}

impl DcvLookup {
    pub fn new(
        nameserver: Option<SocketAddr>,
        http_addresses: BTreeMap<String, SocketAddr>,
    ) -> Result<Self, String> {
        let resolver = match nameserver {
            None => None,
            Some(ns) => {
                let (mut udp, mut tcp) = (ConnectionConfig::udp(), ConnectionConfig::tcp());
                udp.port = ns.port();
                tcp.port = ns.port();
                let cfg = ResolverConfig::from_parts(
                    None,
                    vec![],
                    vec![NameServerConfig::new(ns.ip(), true, vec![udp, tcp])],
                );
                let mut o = ResolverOpts::default();
                o.cache_size = 0;
                o.attempts = 1;
                o.timeout = Duration::from_secs(2);
                o.recursion_desired = false;
                Some(
                    TokioResolver::builder_with_config(cfg, TokioRuntimeProvider::default())
                        .with_options(o)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
            }
        };
        let http = server::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            resolver,
            http,
            http_addresses,
        })
    }

    /// TXT strings (each record's strings joined) at `name`; empty when absent.
    pub async fn txt(&self, name: &str) -> Vec<String> {
        self.lookup(name, RecordType::TXT).await
    }

    /// CNAME targets at `name`, lower case, without trailing dot.
    pub async fn cname(&self, name: &str) -> Vec<String> {
        self.lookup(name, RecordType::CNAME).await
    }

    async fn lookup(&self, name: &str, rtype: RecordType) -> Vec<String> {
        let Some(r) = &self.resolver else {
            return Vec::new();
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let Ok(lookup) = r.lookup(fqdn.as_str(), rtype).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::TXT(t) if rtype == RecordType::TXT => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                RData::CNAME(c) if rtype == RecordType::CNAME => {
                    Some(c.0.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                }
                _ => None,
            })
            .collect()
    }

    /// Body of `scheme://host/path`, or `None` when it cannot be fetched with 200.
    pub async fn http_body(&self, https: bool, host: &str, path: &str) -> Option<String> {
        let scheme = if https { "https" } else { "http" };
        let url = match self.http_addresses.get(host) {
            // Connect to the mapped address; the Host header still names the host.
            Some(addr) => format!("{scheme}://{addr}{path}"),
            None => format!("{scheme}://{host}{path}"),
        };
        let resp = self
            .http
            .get(&url)
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok()
    }
}
