//! What the CAs refuse, refused at load instead: names that are not LDH hostnames or
//! not IDNA2008, validity beyond the CA/B Forum cap in force, more names than the
//! product takes, and durations beyond any sane bound (reliability finding R17).
//!
//! Public CAs (DigiCert, Sectigo, and ACME unless `ca_file` names a private CA's roots)
//! get every check. A private ACME CA sets its own rules: its names only need to be DNS
//! names (`_` allowed), and the public validity cap and name limits do not apply.

use std::time::Duration;

use crate::model::public_tls_max_validity_days;
use chrono::NaiveDate;

use super::hostname::check_public_hostname;
use super::problem::{Problems, in_certificate, join};
use super::{CertificateConfig, Config, ConfigProblem, ProviderConfig, PublisherConfig};

/// True when `provider` issues publicly trusted certificates, so the CA/B Forum rules hold.
pub(super) fn is_public(provider: &ProviderConfig) -> bool {
    match provider {
        ProviderConfig::Digicert(_) | ProviderConfig::Sectigo(_) => true,
        // `ca_file` replaces the web PKI roots for the ACME server: a private CA
        // (step-ca, Pebble, an internal Boulder). Without it, a public one.
        ProviderConfig::Acme(a) => a.ca_file.is_none(),
    }
}

/// The most names (common name and SANs together) one certificate of `provider`'s
/// `product` may hold, and where that number comes from. `None` for a private CA.
///
/// Neither CA's API documentation in our references gives a per-product name limit, so
/// each CA's largest documented limit is used for all its products (README "Configure").
pub(super) fn name_limit(
    provider: &ProviderConfig,
    _product: &str,
) -> Option<(usize, &'static str)> {
    match provider {
        // Largest documented for DigiCert's DV brands (GeoTrust, RapidSSL): 100 SANs
        // (reseller brand comparison, xolphin.com "Multi Domain certificate").
        ProviderConfig::Digicert(_) => Some((100, "DigiCert's DV products take at most 100 names")),
        // Largest documented for Sectigo multi-domain products: 1000 SANs (reseller FAQ,
        // tbs-certificates.co.uk "SANs management with Sectigo").
        ProviderConfig::Sectigo(_) => Some((1000, "Sectigo products take at most 1000 names")),
        // Let's Encrypt: 100 names per certificate (letsencrypt.org/docs/rate-limits).
        ProviderConfig::Acme(_) if is_public(provider) => Some((
            100,
            "public ACME CAs (Let's Encrypt) take at most 100 names",
        )),
        ProviderConfig::Acme(_) => None,
    }
}

/// A certificate's common name becomes the CN attribute, at most 64 characters (RFC 5280
/// `ub-common-name`); CAs refuse longer ones.
const MAX_COMMON_NAME: usize = 64;

/// The day after `today` on which the public validity cap next changes, and its new value.
fn next_cap_drop(today: NaiveDate) -> Option<(NaiveDate, u32)> {
    let now = public_tls_max_validity_days(today);
    (1..=4000)
        .filter_map(|d| today.checked_add_days(chrono::Days::new(d)))
        .map(|day| (day, public_tls_max_validity_days(day)))
        .find(|(_, cap)| *cap != now)
}

/// Names, validity and name count of one certificate entry, for its provider.
pub(super) fn check_certificate_limits(
    key: &str,
    c: &CertificateConfig,
    provider: &ProviderConfig,
    today: NaiveDate,
    p: &mut Problems,
) {
    let k = |field: &str| in_certificate(key, field);
    let public = is_public(provider);
    if public {
        // Names that do not even parse are reported by the certificate checks.
        let raw = std::iter::once((k("common_name"), &c.common_name)).chain(
            c.dns_names
                .iter()
                .enumerate()
                .map(|(j, n)| (format!("{}[{j}]", k("dns_names")), n)),
        );
        for (nk, name) in raw {
            if crate::model::DomainName::parse(name).is_ok()
                && let Err(why) = check_public_hostname(name)
            {
                p.push(
                    nk,
                    format!(
                        "`{name}` cannot be in a publicly trusted certificate: {why}; \
                         provider `{}` would refuse the order",
                        c.provider
                    ),
                );
            }
        }
        if let Ok(cn) = crate::model::DomainName::parse(&c.common_name)
            && cn.as_str().len() > MAX_COMMON_NAME
        {
            p.push(
                k("common_name"),
                format!(
                    "`{cn}` is {} characters; a certificate's common name holds at most {MAX_COMMON_NAME} \
                     (RFC 5280): put a shorter name in common_name and this one in dns_names",
                    cn.as_str().len()
                ),
            );
        }
        // Renewing this close to expiry, every certificate is due the moment it is issued:
        // an order per renewal check, each a purchase (reliability finding R3).
        let lifetime = c
            .validity_days
            .unwrap_or_else(|| public_tls_max_validity_days(today));
        if c.renew_before.as_secs() >= u64::from(lifetime) * 86_400 {
            p.push(
                k("renew_before"),
                format!(
                    "is {}, but the certificate will be valid for at most {lifetime} days ({}): it \
                     would be due for renewal as soon as it is issued, and ordered again on every \
                     renewal check; make renew_before shorter than that (a third of it is usual)",
                    humantime::format_duration(c.renew_before),
                    if c.validity_days.is_some() {
                        "validity_days".to_string()
                    } else {
                        format!("the CA/B Forum maximum for certificates issued today, {today}")
                    }
                ),
            );
        }
        if let Some(days) = c.validity_days {
            let cap = public_tls_max_validity_days(today);
            if days > cap {
                let next = next_cap_drop(today)
                    .map(|(day, n)| format!("; it drops to {n} days on {day}"))
                    .unwrap_or_default();
                p.push(
                    k("validity_days"),
                    format!(
                        "is {days}, but publicly trusted certificates issued today ({today}) may be valid \
                         for at most {cap} days (CA/B Forum){next}; write at most {cap}, or leave it out \
                         for the product's default"
                    ),
                );
            }
        }
    }
    let count = std::iter::once(&c.common_name)
        .chain(&c.dns_names)
        .filter_map(|n| crate::model::DomainName::parse(n).ok())
        .collect::<std::collections::HashSet<_>>()
        .len();
    if let Some((limit, why)) = name_limit(provider, &c.product)
        && count > limit
    {
        p.push(
            k("dns_names"),
            format!(
                "certificate `{}` has {count} distinct names (common_name and dns_names); {why}: \
                 split it into certificates of at most {limit} names",
                c.name
            ),
        );
    }
}

/// Include patterns that match no file, and things that work today but will stop working: a `validity_days` within today's cap
/// that the cap will have dropped below by the time the certificate is renewed.
pub fn warnings_at(cfg: &Config, today: NaiveDate) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    for (i, pattern) in &cfg.sources.unmatched {
        out.push(ConfigProblem::new(
            format!("include[{i}]"),
            format!(
                "`{pattern}` matches no file, so no certificates come from it (fine for an empty directory on a new host)"
            ),
        ));
    }
    for (i, c) in cfg.certificates.iter().enumerate() {
        let (Some(days), Some(provider)) = (c.validity_days, cfg.providers.get(&c.provider)) else {
            continue;
        };
        let cap = public_tls_max_validity_days(today);
        if !is_public(provider) || days > cap {
            continue;
        }
        let lead = chrono::Days::new(c.renew_before.as_secs() / 86400);
        let Some(renewal) = today
            .checked_add_days(chrono::Days::new(u64::from(days)))
            .and_then(|d| d.checked_sub_days(lead))
        else {
            continue;
        };
        let then = public_tls_max_validity_days(renewal);
        if then < days {
            let drop = next_cap_drop(today)
                .map(|(d, _)| d.to_string())
                .unwrap_or_else(|| "before then".into());
            out.push(ConfigProblem::new(
                in_certificate(&cfg.certificate_key(i), "validity_days"),
                format!(
                    "is {days}, allowed today, but the public validity cap drops below it on {drop} \
                     ({then} days when certificate `{}` is next renewed, around {renewal}); that \
                     renewal would be refused: lower validity_days to {then} or leave it out",
                    c.name
                ),
            ));
        }
    }
    out
}

/// The largest value each duration key may sensibly have: anything above is a typo or
/// a unit mix-up (`500000000years`) that would make dcvd wait forever.
const HOUR: u64 = 3600;
const DAY: u64 = 86400;

pub(super) fn at_most(key: &str, d: Duration, max_secs: u64, p: &mut Problems) {
    if d.as_secs() > max_secs {
        let max = short(max_secs);
        p.push(
            key,
            format!(
                "is {}, more than the sane maximum of {max}; write a duration of at most {max}",
                short(d.as_secs())
            ),
        );
    }
}

/// A duration the way the config writes it (`30d`, `1h`, `90s`, `365d 6h`).
fn short(secs: u64) -> String {
    if secs > 1000 * 365 * DAY {
        return format!("over {} years", secs / (365 * DAY));
    }
    let parts = [
        (secs / DAY, "d"),
        (secs % DAY / HOUR, "h"),
        (secs % HOUR / 60, "m"),
        (secs % 60, "s"),
    ];
    let out: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() {
        "0s".into()
    } else {
        out.join(" ")
    }
}

/// Every duration key against its bound.
pub(super) fn check_durations(cfg: &Config, p: &mut Problems) {
    at_most(
        "daemon.shutdown_timeout",
        cfg.daemon.shutdown_timeout,
        HOUR,
        p,
    );
    for (name, pr) in &cfg.providers {
        let key = join("providers", name);
        let (poll, request) = match pr {
            ProviderConfig::Digicert(d) => {
                at_most(&join(&key, "in_flight_margin"), d.in_flight_margin, HOUR, p);
                (d.poll_interval, d.request_timeout)
            }
            ProviderConfig::Sectigo(s) => {
                at_most(&join(&key, "in_flight_margin"), s.in_flight_margin, HOUR, p);
                at_most(
                    &join(&key, "collect_interval"),
                    s.collect_interval,
                    7 * DAY,
                    p,
                );
                (s.poll_interval, s.request_timeout)
            }
            ProviderConfig::Acme(a) => (a.poll_interval, a.request_timeout),
        };
        at_most(&join(&key, "poll_interval"), poll, DAY, p);
        // The in-flight bound of a submit (recovery waits that long) follows this one.
        at_most(&join(&key, "request_timeout"), request, 10 * 60, p);
    }
    for (name, pb) in &cfg.publishers {
        let key = join(&join("publishers", name), "timeout");
        match pb {
            PublisherConfig::Rfc2136(r) => at_most(&key, r.timeout, 10 * 60, p),
            PublisherConfig::Exec(e) => at_most(&key, e.timeout, HOUR, p),
            PublisherConfig::Webroot(_) | PublisherConfig::Manual(_) => {}
        }
    }
    at_most("dns.poll_interval", cfg.dns.poll_interval, HOUR, p);
    at_most("dns.timeout", cfg.dns.timeout, 30 * DAY, p);
    at_most("dns.query_timeout", cfg.dns.query_timeout, 5 * 60, p);
    at_most("http_check.timeout", cfg.http_check.timeout, 5 * 60, p);
    for (i, c) in cfg.certificates.iter().enumerate() {
        let key = cfg.certificate_key(i);
        // DigiCert stops re-checking DCV after 10 days and random values live 30 days.
        let k = |field: &str| in_certificate(&key, field);
        at_most(&k("method_timeout"), c.method_timeout, 30 * DAY, p);
        at_most(&k("deploy_hook_timeout"), c.deploy_hook_timeout, HOUR, p);
        at_most(&k("renew_before"), c.renew_before, 398 * DAY, p);
    }
}
