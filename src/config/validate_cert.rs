//! Checks on one `[[certificates]]` entry: names, provider, DCV methods against the
//! provider and publishers, approver addresses, schedules and paths.

use std::collections::HashSet;

use crate::model::{DcvMethod, DomainName};

use super::problem::{Problems, in_certificate, join};
use super::rules::{can_publish, check_cron, nonzero, provider_kind, publisher_kind};
use super::{CertificateConfig, Config};

/// Local parts the CAs build approver addresses from (CA/B Forum BR 3.2.2.4.4).
const CONSTRUCTED: &[&str] = &[
    "admin",
    "administrator",
    "webmaster",
    "hostmaster",
    "postmaster",
];

pub(super) fn check_certificate(cfg: &Config, key: &str, c: &CertificateConfig, p: &mut Problems) {
    let k = |field: &str| in_certificate(key, field);
    if c.name.is_empty()
        || !c
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        p.push(
            k("name"),
            format!(
                "`{}` is not a usable certificate name; use letters, digits, `-`, `_` and `.`",
                c.name
            ),
        );
    }
    let provider = cfg.providers.get(&c.provider);
    if provider.is_none() {
        p.push(
            k("provider"),
            format!(
                "names provider `{}`, which is not defined; {}",
                c.provider,
                defined("providers", cfg.providers.keys())
            ),
        );
    }
    let acme = provider.is_some_and(|p| provider_kind(p) == crate::model::ProviderKind::Acme);
    if c.product.trim().is_empty() && !acme {
        p.push(
            k("product"),
            "is empty; write the CA's product id, e.g. \"ssl_dv_geotrust\"",
        );
    }

    let mut names = Vec::new();
    match DomainName::parse(&c.common_name) {
        Ok(n) => names.push(n),
        Err(e) => p.push(k("common_name"), e.to_string()),
    }
    for (j, n) in c.dns_names.iter().enumerate() {
        match DomainName::parse(n) {
            Ok(n) => names.push(n),
            Err(e) => p.push(format!("{}[{j}]", k("dns_names")), e.to_string()),
        }
    }
    let wildcard = names.iter().find(|n| n.is_wildcard());

    for name in ["publisher", "http_publisher"] {
        let value = if name == "publisher" {
            &c.publisher
        } else {
            &c.http_publisher
        };
        if let Some(v) = value
            && !cfg.publishers.contains_key(v)
        {
            p.push(
                k(name),
                format!(
                    "names publisher `{v}`, which is not defined; {}",
                    defined("publishers", cfg.publishers.keys())
                ),
            );
        }
    }

    if c.dcv.is_empty() {
        p.push(
            k("dcv"),
            "is empty; list the DCV methods to try in order, e.g. dcv = [\"dns-txt\", \"email\"]",
        );
    }
    let mut seen = HashSet::new();
    for (j, &m) in c.dcv.iter().enumerate() {
        let mk = format!("{}[{j}]", k("dcv"));
        if !seen.insert(m) {
            p.push(
                mk.clone(),
                format!("`{m}` is listed twice; list each method once"),
            );
            continue;
        }
        if let Some(pr) = provider {
            let kind = provider_kind(pr);
            if !kind.supports(m) {
                let ok: Vec<&str> = DcvMethod::ALL
                    .iter()
                    .filter(|x| kind.supports(**x))
                    .map(|x| x.as_str())
                    .collect();
                p.push(
                    mk.clone(),
                    format!(
                        "`{m}` is not offered by {kind} (provider `{}`); use one of: {}",
                        c.provider,
                        ok.join(", ")
                    ),
                );
            }
        }
        if m.is_http()
            && let Some(w) = wildcard
        {
            p.push(
                mk.clone(),
                format!(
                    "`{m}` cannot validate the wildcard name `{w}`; use dns-txt, dns-cname or email"
                ),
            );
        }
        check_method_publisher(cfg, c, m, &mk, p);
    }

    for (name, email) in &c.approver_emails {
        check_approver(
            c,
            &names,
            &join(&k("approver_emails"), name),
            name,
            email,
            p,
        );
    }
    for (j, a) in c.approver_contacts.iter().enumerate() {
        if split_email(a).is_none() {
            p.push(
                format!("{}[{j}]", k("approver_contacts")),
                format!("`{a}` is not an email address"),
            );
        }
    }
    if let Err(m) = check_cron(&c.resend_schedule) {
        p.push(k("resend_schedule"), m);
    }
    if c.locale.is_empty()
        || !c
            .locale
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-')
    {
        p.push(
            k("locale"),
            format!("`{}` is not a language code; write e.g. \"en\"", c.locale),
        );
    }
    if !c.output_dir.is_absolute() {
        p.push(
            k("output_dir"),
            format!(
                "`{}` is not an absolute path; write e.g. /var/lib/dcvd/certs/{}",
                c.output_dir.display(),
                c.name
            ),
        );
    }
    if c.deploy_hook
        .first()
        .is_some_and(|cmd| cmd.trim().is_empty())
    {
        p.push(k("deploy_hook"), "starts with an empty program name; write e.g. [\"systemctl\", \"reload\", \"nginx\"] or leave it out");
    }
    if c.validity_days == Some(0) {
        p.push(
            k("validity_days"),
            "is 0; leave it out for the product's default, or write the number of days",
        );
    }
    nonzero(&k("method_timeout"), c.method_timeout, p);
    nonzero(&k("deploy_hook_timeout"), c.deploy_hook_timeout, p);
    nonzero(&k("renew_before"), c.renew_before, p);
}

/// DNS methods need a DNS-capable `publisher`; HTTP methods an HTTP-capable
/// `http_publisher` (or `publisher`). Email needs none.
fn check_method_publisher(
    cfg: &Config,
    c: &CertificateConfig,
    m: DcvMethod,
    mk: &str,
    p: &mut Problems,
) {
    let (chosen, field) = if m.is_dns() {
        (c.publisher.as_ref(), "publisher")
    } else if m.is_http() {
        match (&c.http_publisher, &c.publisher) {
            (Some(h), _) => (Some(h), "http_publisher"),
            (None, pb) => (pb.as_ref(), "publisher"),
        }
    } else {
        return;
    };
    let capable = if m.is_dns() {
        "rfc2136, exec or manual"
    } else {
        "webroot, exec or manual"
    };
    match chosen {
        None => p.push(
            mk,
            format!("`{m}` needs a publisher to put the token in place; set {field} = \"<name>\" to a {capable} publisher"),
        ),
        Some(name) => {
            // An undefined name is reported once, on the publisher key itself.
            if let Some(pb) = cfg.publishers.get(name)
                && !can_publish(pb, m)
            {
                p.push(
                    mk,
                    format!(
                        "`{m}` cannot be published by `{name}`, a {} publisher; {}",
                        publisher_kind(pb),
                        if m.is_http() {
                            format!("set http_publisher to a {capable} publisher")
                        } else {
                            format!("set publisher to a {capable} publisher")
                        }
                    ),
                );
            }
        }
    }
}

fn check_approver(
    c: &CertificateConfig,
    names: &[DomainName],
    key: &str,
    name: &str,
    email: &str,
    p: &mut Problems,
) {
    let domain = match DomainName::parse(name) {
        Ok(d) => d,
        Err(e) => return p.push(key, e.to_string()),
    };
    if !names.is_empty() && !names.iter().any(|n| n.is_at_or_below(domain.base())) {
        return p.push(
            key,
            format!("`{domain}` is neither a name of this certificate nor a parent domain of one; use a name from common_name or dns_names"),
        );
    }
    let Some((local, at)) = split_email(email) else {
        return p.push(
            key,
            format!("`{email}` is not an email address; write e.g. admin@{domain}"),
        );
    };
    if c.approver_contacts
        .iter()
        .any(|a| a.eq_ignore_ascii_case(email))
    {
        return;
    }
    let constructed = CONSTRUCTED.contains(&local.to_ascii_lowercase().as_str());
    let above =
        DomainName::parse(at).is_ok_and(|d| !d.is_wildcard() && domain.is_at_or_below(d.as_str()));
    if !(constructed && above) {
        p.push(
            key,
            format!(
                "`{email}` cannot approve `{domain}`: the CA accepts only admin@, administrator@, webmaster@, \
                 hostmaster@ or postmaster@ at the name or a parent domain (e.g. admin@{}); if `{email}` is the \
                 domain's WHOIS or DNS contact, add it to approver_contacts",
                domain.base()
            ),
        );
    }
}

fn split_email(s: &str) -> Option<(&str, &str)> {
    let (local, domain) = s.rsplit_once('@')?;
    (!local.is_empty() && !local.contains(char::is_whitespace) && DomainName::parse(domain).is_ok())
        .then_some((local, domain))
}

fn defined<'a>(section: &str, names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(String::as_str).collect();
    if list.is_empty() {
        format!("there are no [{section}.<name>] entries; add one")
    } else {
        format!(
            "define [{section}.<name>] or use one of: {}",
            list.join(", ")
        )
    }
}
