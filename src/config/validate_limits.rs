//! What the CAs refuse, refused at load instead: names that are not LDH hostnames or
//! not IDNA2008, validity beyond the CA/B Forum cap in force, more names than the
//! product takes, and durations beyond any sane bound (reliability finding R17).
//!
//! Public CAs (DigiCert, Sectigo, and ACME unless `ca_file` names a private CA's roots)
//! get every check. A private ACME CA sets its own rules: its names only need to be DNS
//! names (`_` allowed), and the public validity cap and name limits do not apply.

use std::time::Duration;

use chrono::NaiveDate;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use crate::model::public_tls_max_validity_days;

use super::load::join;
use super::validate::Problems;
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

/// A DNS name a public CA accepts in a certificate: LDH labels (letters, digits, `-`;
/// 1-63 characters, no `-` first or last, no `??--` unless an `xn--` A-label), at most
/// 253 characters, `*.` only as the whole left-most label; U-labels and A-labels valid
/// IDNA2008 (UTS-46 non-transitional, an A-label must round-trip). `Err` says why.
pub(super) fn check_public_hostname(raw: &str) -> Result<(), String> {
    let name = raw.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    let rest = name.strip_prefix("*.").unwrap_or(name);
    if rest.contains('*') {
        return Err("`*` is allowed only as the whole left-most label, as in *.example.com".into());
    }
    let ascii = if rest.is_ascii() {
        rest.to_ascii_lowercase()
    } else {
        Uts46::new()
            .to_ascii(
                rest.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::Check,
                DnsLength::Verify,
            )
            .map_err(|_| {
                "it is not a valid internationalised name (UTS-46 refuses it: a character \
                 that is not allowed, a `-` in a forbidden place, or mixed-direction text)"
                    .to_string()
            })?
            .into_owned()
    };
    let total = ascii.len() + (name.len() - rest.len());
    if total > 253 {
        return Err(format!(
            "it is {total} characters long in ASCII form; at most 253 are allowed"
        ));
    }
    for label in ascii.split('.') {
        check_label(label)?;
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row)".into());
    }
    if label.len() > 63 {
        return Err(format!(
            "label `{label}` is {} characters long; at most 63 are allowed",
            label.len()
        ));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        let what = if bad == '_' {
            "`_`: public CAs accept only letters, digits and `-` in host names (underscore \
             names such as _dmarc are DNS records, not hosts)"
                .to_string()
        } else {
            format!("`{bad}`: host names hold only letters, digits and `-`")
        };
        return Err(format!("label `{label}` contains {what}"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label `{label}` starts or ends with `-`"));
    }
    if label.get(2..4) == Some("--") {
        return match label.strip_prefix("xn--") {
            Some(puny) => check_a_label(label, puny),
            None => Err(format!(
                "label `{label}` has `--` in the third and fourth place, reserved for IDN \
                 A-labels (`xn--`)"
            )),
        };
    }
    Ok(())
}

/// An `xn--` label: valid punycode, round-trips through UTS-46, and every code point of
/// its U-label is allowed by IDNA2008 (RFC 5892).
fn check_a_label(label: &str, puny: &str) -> Result<(), String> {
    let unicode = idna::punycode::decode_to_string(puny)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| format!("label `{label}` is not valid punycode"))?;
    if let Some(c) = unicode.chars().find(|c| idna2008_disallowed(*c)) {
        return Err(format!(
            "label `{label}` (`{unicode}`) holds U+{:04X} `{c}`, which IDNA2008 does not allow \
             (only letters, digits, marks and `-`; no symbols, emoji or punctuation)",
            c as u32
        ));
    }
    let again = Uts46::new()
        .to_ascii(
            unicode.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Check,
            DnsLength::Verify,
        )
        .map_err(|_| format!("label `{label}` (`{unicode}`) is not a valid IDN under UTS-46"))?;
    if again != label {
        return Err(format!(
            "label `{label}` does not round-trip: it decodes to `{unicode}`, which encodes as \
             `{again}`; write the name as `{again}` or in Unicode"
        ));
    }
    Ok(())
}

/// RFC 5892 derived property, without the contextual rules' context checks: PVALID are
/// lower-case LDH and letters/digits/marks that are stable and not ignorable; the
/// listed exceptions; CONTEXTJ/CONTEXTO code points are let through.
fn idna2008_disallowed(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    }
    match c as u32 {
        // 2.6 Exceptions: PVALID.
        0xDF | 0x3C2 | 0x6FD | 0x6FE | 0xF0B | 0x3007 => return false,
        // CONTEXTO and CONTEXTJ.
        0xB7 | 0x375 | 0x5F3 | 0x5F4 | 0x30FB | 0x660..=0x669 | 0x6F0..=0x6F9 | 0x200C | 0x200D => {
            return false;
        }
        // 2.6 Exceptions: DISALLOWED.
        0x640 | 0x7FA | 0x302E | 0x302F | 0x3031..=0x3035 | 0x303B => return true,
        // 2.9 OldHangulJamo; 2.8 IgnorableBlocks.
        0x1100..=0x11FF | 0xA960..=0xA97F | 0xD7B0..=0xD7FF => return true,
        0x20D0..=0x20FF | 0x1D100..=0x1D24F => return true,
        _ => {}
    }
    if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
        return true;
    }
    !matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::LowercaseLetter
            | GeneralCategory::OtherLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::DecimalNumber
    )
}

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
    let k = |field: &str| join(key, field);
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

/// Things that work today but will stop working: a `validity_days` within today's cap
/// that the cap will have dropped below by the time the certificate is renewed.
pub fn warnings_at(cfg: &Config, today: NaiveDate) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
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
                format!("certificates[{i}].validity_days"),
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
            ProviderConfig::Digicert(d) => (d.poll_interval, d.request_timeout),
            ProviderConfig::Sectigo(s) => {
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
        let key = format!("certificates[{i}]");
        // DigiCert stops re-checking DCV after 10 days and random values live 30 days.
        at_most(&join(&key, "method_timeout"), c.method_timeout, 30 * DAY, p);
        at_most(
            &join(&key, "deploy_hook_timeout"),
            c.deploy_hook_timeout,
            HOUR,
            p,
        );
        at_most(&join(&key, "renew_before"), c.renew_before, 398 * DAY, p);
    }
}
