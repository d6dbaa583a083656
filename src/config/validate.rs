//! Checks on a parsed [`Config`] beyond what serde checks, reporting every problem
//! at once, each with the key it concerns and the fix.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::model::DomainName;
use crate::model::RateLimit;

use super::problem::{Problems, in_certificate, join};
use super::rules::{check_cron, clear_cron_cache, nonzero};
use super::{Config, ConfigProblem, ProviderConfig, PublisherConfig};

/// Everything wrong with `cfg` (empty when it is usable). Secrets are expected to be
/// resolved already; this never looks at their values. Date-dependent rules (the public
/// validity cap) use today's date from the system clock.
pub fn validate(cfg: &Config) -> Vec<ConfigProblem> {
    validate_at(cfg, today())
}

/// Today's date (UTC) for the date-dependent rules.
pub(super) fn today() -> chrono::NaiveDate {
    crate::clock::Clock::now(&crate::clock::SystemClock).date_naive()
}

/// [`validate`] as of `today`.
pub fn validate_at(cfg: &Config, today: chrono::NaiveDate) -> Vec<ConfigProblem> {
    clear_cron_cache();
    let mut p = Problems(Vec::new());
    daemon(cfg, &mut p);
    for (name, provider) in &cfg.providers {
        check_provider(&join("providers", name), name, provider, &mut p);
    }
    for (name, publisher) in &cfg.publishers {
        check_publisher(&join("publishers", name), name, publisher, &mut p);
    }
    dns(cfg, &mut p);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dirs: BTreeMap<std::path::PathBuf, usize> = BTreeMap::new();
    for (i, cert) in cfg.certificates.iter().enumerate() {
        let key = cfg.certificate_key(i);
        // `a/b/` and `a/./b` are the same directory: compare by components.
        let dir: std::path::PathBuf = cert.output_dir.components().collect();
        match dirs.get(&dir) {
            Some(&first) => p.push(
                in_certificate(&key, "output_dir"),
                format!(
                    "`{}` is also the output_dir of certificate `{}` ({}); two certificates \
                     would overwrite each other's files: give each its own directory (for \
                     example \"/var/lib/dcvd/certs/{{name}}\")",
                    cert.output_dir.display(),
                    cfg.certificates[first].name,
                    entry_at(cfg, first)
                ),
            ),
            None => {
                dirs.insert(dir, i);
            }
        }
        match seen.get(cert.name.as_str()) {
            Some(&first) => p.push(
                in_certificate(&key, "name"),
                format!(
                    "`{}` is already the name of {}; this is {}; certificate names must be unique",
                    cert.name,
                    entry_at(cfg, first),
                    entry_at(cfg, i)
                ),
            ),
            None => {
                seen.insert(&cert.name, i);
            }
        }
        super::validate_cert::check_certificate(cfg, &key, cert, &mut p);
        super::validate_digicert::check_certificate(cfg, &key, cert, &mut p);
        if let Some(provider) = cfg.providers.get(&cert.provider) {
            super::validate_limits::check_certificate_limits(&key, cert, provider, today, &mut p);
        }
    }
    super::validate_limits::check_durations(cfg, &mut p);
    p.0
}

/// `certificates[3] in /etc/dcvd/certificates.d/shop.toml` (the index counts that file's
/// entries from 0), for messages that point at a second entry.
fn entry_at(cfg: &Config, i: usize) -> String {
    let index = cfg.sources.certificates.get(i).map_or(i, |o| o.index);
    match cfg.certificate_file(i) {
        Some(f) => format!("certificates[{index}] in {}", f.display()),
        None => format!("certificates[{index}]"),
    }
}

fn daemon(cfg: &Config, p: &mut Problems) {
    let d = &cfg.daemon;
    if d.database.as_os_str().is_empty() {
        p.push(
            "daemon.database",
            "is empty; write the SQLite file path, e.g. /var/lib/dcvd/dcvd.db",
        );
    }
    if d.listen.parse::<SocketAddr>().is_err() {
        p.push(
            "daemon.listen",
            format!(
                "`{}` is not a socket address; write ip:port, e.g. 127.0.0.1:9750 or [::1]:9750",
                d.listen
            ),
        );
    }
    if d.concurrency == 0 {
        p.push(
            "daemon.concurrency",
            "is 0, so no order would ever be worked on; use at least 1 (default 32)",
        );
    }
    if let Err(m) = check_cron(&d.renewal_check) {
        p.push("daemon.renewal_check", m);
    }
    nonzero("daemon.shutdown_timeout", d.shutdown_timeout, p);
}

fn check_provider(key: &str, name: &str, provider: &ProviderConfig, p: &mut Problems) {
    check_entry_name(key, name, "provider", p);
    let (url_key, base_url, limits) = match provider {
        ProviderConfig::Digicert(d) => {
            if d.dns_txt_at != "_dnsauth" && d.dns_txt_at != "name" {
                p.push(
                    join(key, "dns_txt_at"),
                    format!(
                        "`{}` is not allowed; use \"_dnsauth\" (TXT at _dnsauth.<name>) or \"name\" (TXT at the name)",
                        d.dns_txt_at
                    ),
                );
            }
            nonzero(&join(key, "poll_interval"), d.poll_interval, p);
            nonzero(&join(key, "request_timeout"), d.request_timeout, p);
            nonzero(&join(key, "in_flight_margin"), d.in_flight_margin, p);
            for (i, f) in d.custom_fields.iter().enumerate() {
                let at = format!("{}[{i}]", join(key, "custom_fields"));
                if f.metadata_id == 0 {
                    p.push(
                        format!("{at}.metadata_id"),
                        "is 0; write the custom field's id from CertCentral (Settings > Custom order fields)",
                    );
                }
                if f.value.trim().is_empty() {
                    p.push(
                        format!("{at}.value"),
                        "is empty; write the value to send, or remove the field",
                    );
                }
            }
            ("base_url", &d.base_url, &d.rate_limits)
        }
        ProviderConfig::Sectigo(s) => {
            if s.login_name.trim().is_empty() {
                p.push(
                    join(key, "login_name"),
                    "is empty; write the Sectigo account login name",
                );
            }
            if DomainName::parse(&s.dcv_suffix).is_err() {
                p.push(
                    join(key, "dcv_suffix"),
                    format!(
                        "`{}` is not a DNS name; use \"sectigo.com\" (default) or \"comodoca.com\"",
                        s.dcv_suffix
                    ),
                );
            }
            nonzero(&join(key, "poll_interval"), s.poll_interval, p);
            nonzero(&join(key, "collect_interval"), s.collect_interval, p);
            nonzero(&join(key, "request_timeout"), s.request_timeout, p);
            nonzero(&join(key, "in_flight_margin"), s.in_flight_margin, p);
            ("base_url", &s.base_url, &s.rate_limits)
        }
        ProviderConfig::Acme(a) => {
            super::validate_acme::check_acme(key, a, p);
            ("directory_url", &a.directory_url, &a.rate_limits)
        }
    };
    if let Err(m) = check_url(base_url) {
        p.push(join(key, url_key), m);
    }
    for (i, l) in limits.iter().flatten().enumerate() {
        if let Err(m) = l.parse::<RateLimit>() {
            p.push(format!("{}[{i}]", join(key, "rate_limits")), m);
        }
    }
}

fn check_publisher(key: &str, name: &str, publisher: &PublisherConfig, p: &mut Problems) {
    check_entry_name(key, name, "publisher", p);
    match publisher {
        PublisherConfig::Rfc2136(r) => {
            if let Err(m) = check_host_port(&r.server) {
                p.push(join(key, "server"), m);
            }
            if let Some(zone) = &r.zone
                && let Err(e) = DomainName::parse(zone)
            {
                p.push(
                    join(key, "zone"),
                    format!("{e}; write the zone apex, e.g. \"example.com\""),
                );
            }
            if r.tsig_key_name.trim().is_empty() {
                p.push(
                    join(key, "tsig_key_name"),
                    "is empty; write the key name the DNS server knows, e.g. \"dcvd\"",
                );
            }
            if !["hmac-sha256", "hmac-sha384", "hmac-sha512"].contains(&r.tsig_algorithm.as_str()) {
                p.push(
                    join(key, "tsig_algorithm"),
                    format!(
                        "`{}` is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512",
                        r.tsig_algorithm
                    ),
                );
            }
            if r.transport != "tcp" && r.transport != "udp" {
                p.push(
                    join(key, "transport"),
                    format!("`{}` is not allowed; use \"tcp\" or \"udp\"", r.transport),
                );
            }
            nonzero(&join(key, "timeout"), r.timeout, p);
        }
        PublisherConfig::Exec(e) => {
            if e.command.first().is_none_or(|c| c.trim().is_empty()) {
                p.push(
                    join(key, "command"),
                    "is empty; name the program to run first, e.g. command = [\"/usr/local/bin/dns-hook\"]",
                );
            }
            nonzero(&join(key, "timeout"), e.timeout, p);
        }
        PublisherConfig::Webroot(w) => {
            if !w.path.is_absolute() {
                p.push(
                    join(key, "path"),
                    format!("`{}` is not an absolute path; write the web server's document root, e.g. /var/www/html", w.path.display()),
                );
            }
        }
        PublisherConfig::Manual(_) => {}
    }
}

fn dns(cfg: &Config, p: &mut Problems) {
    let d = &cfg.dns;
    for (i, r) in d.resolvers.iter().enumerate() {
        if let Err(m) = parse_socket(r, 53) {
            p.push(format!("dns.resolvers[{i}]"), m);
        }
    }
    for (zone, servers) in &d.nameserver_overrides {
        let key = join("dns.nameserver_overrides", zone);
        if let Err(e) = DomainName::parse(zone) {
            p.push(
                key.clone(),
                format!("{e}; write the zone, e.g. \"example.com.\""),
            );
        }
        if servers.is_empty() {
            p.push(
                key.clone(),
                "lists no servers; write at least one ip:port, or remove the entry",
            );
        }
        for (i, s) in servers.iter().enumerate() {
            if let Err(m) = parse_socket(s, 53) {
                p.push(format!("{key}[{i}]"), m);
            }
        }
    }
    nonzero("dns.poll_interval", d.poll_interval, p);
    nonzero("dns.timeout", d.timeout, p);
    nonzero("dns.query_timeout", d.query_timeout, p);
    let h = &cfg.http_check;
    for (host, addr) in &h.overrides {
        let key = join("http_check.overrides", host);
        if let Err(e) = DomainName::parse(host) {
            p.push(
                key.clone(),
                format!("{e}; write the host name, e.g. \"www.example.com\""),
            );
        }
        if let Err(m) = parse_socket(addr, 80) {
            p.push(key, m);
        }
    }
    nonzero("http_check.timeout", h.timeout, p);
}

/// Provider/publisher names become file names under `$CREDENTIALS_DIRECTORY`.
fn check_entry_name(key: &str, name: &str, what: &str, p: &mut Problems) {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        p.push(
            key,
            format!("`{name}` is not a usable {what} name; use letters, digits, `-` and `_` only"),
        );
    }
}

fn check_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "`{url}` uses scheme `{}`; write an http:// or https:// URL with a host",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "`{url}` is not a URL ({e}); write e.g. https://www.digicert.com/services/v2"
        )),
    }
}

/// `ip:port`, or a bare IP address meaning port `default_port`.
pub(super) fn parse_socket(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(format!(
        "`{s}` is not an IP address with optional port; write e.g. 192.0.2.53:{default_port}, 192.0.2.53 or [2001:db8::53]:{default_port}"
    ))
}

/// `host:port` where host is an IP address or a DNS name.
fn check_host_port(s: &str) -> Result<(), String> {
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let hint = format!("`{s}` is not host:port; write e.g. 192.0.2.53:53 or ns1.example.com:53");
    let (host, port) = s.rsplit_once(':').ok_or_else(|| hint.clone())?;
    if port.parse::<u16>().is_err() || host.contains(':') || DomainName::parse(host).is_err() {
        return Err(hint);
    }
    Ok(())
}
