//! The TOML schema of `dcvd.toml` as serde types (raw, before validation).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::model::{AdoptMode, DcvMethod, KeyType};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub publishers: BTreeMap<String, PublisherConfig>,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub http_check: HttpCheckConfig,
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    /// The files this configuration was read from and where each certificate came from
    /// (not a TOML key: filled by [`super::load`]).
    #[serde(skip)]
    pub sources: ConfigSources,
}

/// Where a loaded configuration came from: the main file, the files its `include`
/// patterns matched, and each certificate's file, for messages that name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSources {
    /// Every file read: the main file first (absent when loaded from a string), then
    /// the included files in the order their certificates were taken.
    pub files: Vec<PathBuf>,
    /// Per entry of [`Config::certificates`], in the same order: where it was written.
    pub certificates: Vec<CertificateOrigin>,
    /// `include` patterns that matched no file: `(position in include, pattern)`.
    pub unmatched: Vec<(usize, String)>,
    /// Whether the main file has an `include` key (`check-config` then lists the files).
    pub uses_include: bool,
}

/// Where one `[[certificates]]` entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateOrigin {
    /// Index into [`ConfigSources::files`]; `None` for a configuration given as a string.
    pub file: Option<usize>,
    /// Its position among that file's `[[certificates]]` entries, from 0.
    pub index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    pub database: PathBuf,
    pub listen: String,
    pub log_format: LogFormat,
    pub concurrency: usize,
    /// Cron expression with seconds field.
    pub renewal_check: String,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            database: PathBuf::from("/var/lib/dcvd/dcvd.db"),
            listen: "127.0.0.1:9750".into(),
            log_format: LogFormat::Text,
            concurrency: 32,
            renewal_check: "0 0 */6 * * *".into(),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    Digicert(DigicertConfig),
    Sectigo(SectigoConfig),
    Acme(AcmeConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigicertConfig {
    #[serde(default = "default_digicert_url")]
    pub base_url: String,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// `N/duration` windows, e.g. `["100/5s", "1000/5m"]`; empty list = no limit.
    #[serde(default)]
    pub rate_limits: Option<Vec<String>>,
    /// Where `dns-txt` tokens go: `_dnsauth` (`_dnsauth.<name>`, default) or `name` (at the name).
    #[serde(default = "default_dns_txt_at")]
    pub dns_txt_at: String,
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long after `request_timeout` an unanswered order request may still become an
    /// order at the CA. Crash recovery concludes "no order" only after both have passed.
    #[serde(default = "default_in_flight_margin", with = "humantime_serde")]
    pub in_flight_margin: Duration,
    /// `server_platform.id` sent with orders (-1 = other).
    #[serde(default = "default_server_platform")]
    pub server_platform: i64,
    /// Account-specific custom fields sent with every order of this provider (CertCentral
    /// `custom_fields`; accounts can make some mandatory).
    #[serde(default)]
    pub custom_fields: Vec<DigicertCustomField>,
}

/// One CertCentral custom field: `{ metadata_id = 12, value = "Invoice #12345" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigicertCustomField {
    pub metadata_id: u64,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectigoConfig {
    #[serde(default = "default_sectigo_url")]
    pub base_url: String,
    pub login_name: String,
    #[serde(default)]
    pub login_password: Option<SecretString>,
    #[serde(default)]
    pub login_password_file: Option<PathBuf>,
    #[serde(default)]
    pub rate_limits: Option<Vec<String>>,
    /// Last labels of CSR-hash tokens: `sectigo.com` (default) or legacy `comodoca.com`.
    #[serde(default = "default_dcv_suffix")]
    pub dcv_suffix: String,
    /// How often to ask `!GetMDCDomainDetails` while validating.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often `download/CollectSSL` may be called for one order. Sectigo: "no more
    /// frequently than once every 3 hours" (docs.sectigo.com/sps/collect-ssl/overview);
    /// besides, one collect as soon as the order validates.
    #[serde(default = "default_collect_interval", with = "humantime_serde")]
    pub collect_interval: Duration,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long after `request_timeout` an unanswered order request may still become an
    /// order at the CA. Crash recovery concludes "no order" only after both have passed.
    #[serde(default = "default_in_flight_margin", with = "humantime_serde")]
    pub in_flight_margin: Duration,
    #[serde(default = "default_server_software")]
    pub server_software: i64,
}

/// An ACME (RFC 8555) CA: Let's Encrypt, ZeroSSL, Google, DigiCert/Sectigo ACME, Pebble.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The server's directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory_url: String,
    /// External Account Binding key id (CAs that require EAB: Sectigo, DigiCert, ZeroSSL, Google).
    #[serde(default)]
    pub eab_kid: Option<String>,
    /// The EAB HMAC key as the CA shows it (base64url). Secret.
    #[serde(default)]
    pub eab_hmac_key: Option<SecretString>,
    #[serde(default)]
    pub eab_hmac_key_file: Option<PathBuf>,
    /// Contact address(es) for the account, e.g. `["hostmaster@example.com"]`.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Must be `true`: registering an account accepts the CA's terms of service.
    #[serde(default)]
    pub terms_accepted: bool,
    /// PEM file with the root certificate(s) to trust for the ACME server's HTTPS. When
    /// set, only these roots are trusted (private ACME CAs, Pebble).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub rate_limits: Option<Vec<String>>,
    /// How often to poll order and authorization status while the CA validates.
    #[serde(default = "default_acme_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// ACME validations take a second or two at public CAs; polling every 500 ms while one
/// runs costs a few requests per order (and the provider's rate limit caps the total).
fn default_acme_poll() -> Duration {
    Duration::from_millis(500)
}

fn default_digicert_url() -> String {
    "https://www.digicert.com/services/v2".into()
}
fn default_sectigo_url() -> String {
    "https://secure.trust-provider.com/products".into()
}
fn default_dns_txt_at() -> String {
    "_dnsauth".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(60)
}
fn default_collect_interval() -> Duration {
    Duration::from_secs(3 * 3600)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_in_flight_margin() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_server_platform() -> i64 {
    -1
}
fn default_server_software() -> i64 {
    -1
}
fn default_dcv_suffix() -> String {
    "sectigo.com".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PublisherConfig {
    Rfc2136(Rfc2136Config),
    Exec(ExecConfig),
    Webroot(WebrootConfig),
    Manual(ManualConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// `host:port` of the primary that accepts updates.
    pub server: String,
    /// Zone to update; found by SOA walk when absent.
    #[serde(default)]
    pub zone: Option<String>,
    pub tsig_key_name: String,
    #[serde(default = "default_tsig_alg")]
    pub tsig_algorithm: String,
    #[serde(default)]
    pub tsig_secret: Option<SecretString>,
    #[serde(default)]
    pub tsig_secret_file: Option<PathBuf>,
    /// `tcp` (default) or `udp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    #[serde(default = "default_update_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_tsig_alg() -> String {
    "hmac-sha256".into()
}
fn default_transport() -> String {
    "tcp".into()
}
fn default_ttl() -> u32 {
    60
}
fn default_update_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    pub command: Vec<String>,
    #[serde(default = "default_exec_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_exec_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebrootConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ManualConfig {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    #[default]
    Authoritative,
    Recursive,
    Both,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    pub check: CheckMode,
    /// `ip:port` resolvers used to find zones (and for `recursive`); empty = system resolvers.
    pub resolvers: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Give up on a token (and fall back to the next method) after this long.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Zone (with or without trailing dot) → `ip:port` servers to ask instead of its NS set.
    pub nameserver_overrides: BTreeMap<String, Vec<String>>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            check: CheckMode::Authoritative,
            resolvers: Vec::new(),
            poll_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(30 * 60),
            query_timeout: Duration::from_secs(3),
            nameserver_overrides: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpCheckConfig {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Host name → `ip:port` to connect to instead of resolving the name.
    pub overrides: BTreeMap<String, String>,
}

impl Default for HttpCheckConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            overrides: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    pub name: String,
    pub provider: String,
    /// The CA's product id (DigiCert, Sectigo); not used by ACME, where it may be left out.
    #[serde(default)]
    pub product: String,
    pub common_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default = "default_dcv")]
    pub dcv: Vec<DcvMethod>,
    #[serde(default = "default_method_timeout", with = "humantime_serde")]
    pub method_timeout: Duration,
    /// Publisher for DNS tokens (and for HTTP tokens unless `http_publisher` is set).
    #[serde(default)]
    pub publisher: Option<String>,
    #[serde(default)]
    pub http_publisher: Option<String>,
    /// Name (or parent domain) → approver address.
    #[serde(default)]
    pub approver_emails: BTreeMap<String, String>,
    /// Addresses known to be WHOIS/DNS-TXT contacts, accepted although not constructed.
    #[serde(default)]
    pub approver_contacts: Vec<String>,
    #[serde(default = "default_resend")]
    pub resend_schedule: String,
    #[serde(default = "default_max_resends")]
    pub max_resends: u32,
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default)]
    pub key: KeyTypeDefault,
    pub output_dir: PathBuf,
    #[serde(default)]
    pub deploy_hook: Vec<String>,
    #[serde(default = "default_hook_timeout", with = "humantime_serde")]
    pub deploy_hook_timeout: Duration,
    #[serde(default = "default_renew_before", with = "humantime_serde")]
    pub renew_before: Duration,
    #[serde(default)]
    pub validity_days: Option<u32>,
    /// A certificate already in `output_dir` before dcvd's first order for it:
    /// `"if-valid"` (default) adopts it when it is valid for exactly these names with its
    /// key, `"never"` orders a new one anyway.
    #[serde(default)]
    pub adopt: AdoptMode,
}

/// `KeyType` with ecdsa-p256 as the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KeyTypeDefault(pub KeyType);

impl Default for KeyTypeDefault {
    fn default() -> Self {
        Self(KeyType::EcdsaP256)
    }
}

fn default_dcv() -> Vec<DcvMethod> {
    vec![DcvMethod::DnsTxt]
}
fn default_method_timeout() -> Duration {
    Duration::from_secs(2 * 3600)
}
fn default_resend() -> String {
    "0 0 9 * * *".into()
}
fn default_max_resends() -> u32 {
    5
}
fn default_locale() -> String {
    "en".into()
}
fn default_hook_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_renew_before() -> Duration {
    Duration::from_secs(30 * 86400)
}
