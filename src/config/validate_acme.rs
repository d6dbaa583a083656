//! Checks on a `kind = "acme"` provider: terms accepted, contacts, EAB pair, CA file.

use super::AcmeConfig;
use super::problem::{Problems, join};
use super::rules::nonzero;

pub(super) fn check_acme(key: &str, a: &AcmeConfig, p: &mut Problems) {
    if !a.terms_accepted {
        p.push(
            join(key, "terms_accepted"),
            "is not true; registering an ACME account accepts the CA's terms of service: \
             read them (the directory's meta.termsOfService) and write terms_accepted = true",
        );
    }
    for (i, c) in a.contact.iter().enumerate() {
        let addr = c.strip_prefix("mailto:").unwrap_or(c);
        let ok = addr
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !addr.contains([' ', ',']));
        if !ok {
            p.push(
                format!("{}[{i}]", join(key, "contact")),
                format!("`{c}` is not an e-mail address; write e.g. \"hostmaster@example.com\""),
            );
        }
    }
    let has_key = a.eab_hmac_key.is_some() || a.eab_hmac_key_file.is_some();
    match (&a.eab_kid, has_key) {
        (Some(kid), _) if kid.trim().is_empty() => p.push(
            join(key, "eab_kid"),
            "is empty; write the key id the CA gave you with the HMAC key, or remove both",
        ),
        (None, true) => p.push(
            join(key, "eab_kid"),
            "is missing while an eab_hmac_key is set; External Account Binding needs both \
             (the CA shows them together)",
        ),
        _ => {}
    }
    if let Some(k) = &a.eab_hmac_key
        && crate::config::tls::decode_eab_key(k).is_err()
    {
        p.push(
            join(key, "eab_hmac_key"),
            "is not base64url (value not shown); paste the HMAC key exactly as the CA shows it",
        );
    }
    if let Some(f) = &a.ca_file {
        if !f.is_absolute() {
            p.push(
                join(key, "ca_file"),
                format!(
                    "`{}` is not an absolute path; write the PEM file's full path",
                    f.display()
                ),
            );
        } else if let Err(m) = crate::config::tls::load_roots(f) {
            p.push(join(key, "ca_file"), m);
        }
    }
    nonzero(&join(key, "poll_interval"), a.poll_interval, p);
    nonzero(&join(key, "request_timeout"), a.request_timeout, p);
}
