//! Secrets (DigiCert `api_key`, Sectigo `login_password`, ACME `eab_hmac_key`, RFC 2136 `tsig_secret`):
//! resolved from the inline key, a `*_file`, or systemd's `$CREDENTIALS_DIRECTORY/<name>`.
//!
//! After [`resolve_secrets`] the inline field is always filled (or a problem is
//! reported). Messages name the key and the file, never the content.

use std::path::{Path, PathBuf};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigProblem, ProviderConfig, PublisherConfig};

/// Which secret is being resolved, for messages and for post-processing.
struct Slot<'a> {
    /// `providers.main` / `publishers.bind`.
    section: String,
    /// `api_key`, `login_password`, `tsig_secret`.
    field: &'static str,
    /// The entry's name: the systemd credential looked for.
    name: &'a str,
    /// For TSIG: the configured `tsig_algorithm`, checked against a key file's own.
    tsig: Option<&'a str>,
}

/// Fill every inline secret field from its source. Returns the problems found.
pub fn resolve_secrets(cfg: &mut Config, credentials: Option<&Path>) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for (name, provider) in cfg.providers.iter_mut() {
        let section = super::problem::join("providers", name);
        let (field, inline, file) = match provider {
            ProviderConfig::Digicert(d) => ("api_key", &mut d.api_key, &d.api_key_file),
            ProviderConfig::Sectigo(s) => (
                "login_password",
                &mut s.login_password,
                &s.login_password_file,
            ),
            // EAB is optional: its key is looked for only when some EAB key is set.
            ProviderConfig::Acme(a)
                if a.eab_kid.is_none()
                    && a.eab_hmac_key.is_none()
                    && a.eab_hmac_key_file.is_none() =>
            {
                continue;
            }
            ProviderConfig::Acme(a) => ("eab_hmac_key", &mut a.eab_hmac_key, &a.eab_hmac_key_file),
        };
        let slot = Slot {
            section,
            field,
            name,
            tsig: None,
        };
        problems.extend(resolve(&slot, inline, file.as_deref(), credentials));
    }
    for (name, publisher) in cfg.publishers.iter_mut() {
        if let PublisherConfig::Rfc2136(r) = publisher {
            let slot = Slot {
                section: super::problem::join("publishers", name),
                field: "tsig_secret",
                name,
                tsig: Some(&r.tsig_algorithm),
            };
            problems.extend(resolve(
                &slot,
                &mut r.tsig_secret,
                r.tsig_secret_file.as_deref(),
                credentials,
            ));
        }
    }
    problems
}

fn resolve(
    slot: &Slot<'_>,
    inline: &mut Option<SecretString>,
    file: Option<&Path>,
    credentials: Option<&Path>,
) -> Option<ConfigProblem> {
    let key = format!("{}.{}", slot.section, slot.field);
    let file_key = format!("{key}_file");
    let (text, from_key, origin) = match (inline.as_ref(), file) {
        (Some(_), Some(_)) => {
            return Some(ConfigProblem::new(
                file_key,
                format!(
                    "both `{0}` and `{0}_file` are set; keep only one",
                    slot.field
                ),
            ));
        }
        (Some(s), None) => (s.expose_secret().to_string(), key, None),
        (None, Some(path)) => {
            let full = match (path.is_absolute(), credentials) {
                (true, _) => path.to_path_buf(),
                (false, Some(dir)) => dir.join(path),
                (false, None) => {
                    return Some(ConfigProblem::new(
                        file_key,
                        format!(
                            "`{}` is a relative path, which is only allowed when $CREDENTIALS_DIRECTORY \
                             is set (systemd LoadCredential); write an absolute path",
                            path.display()
                        ),
                    ));
                }
            };
            match read_secret_file(&full) {
                Ok(t) => (t, file_key, Some(full)),
                Err(m) => return Some(ConfigProblem::new(file_key, m)),
            }
        }
        (None, None) => {
            let Some(path) = credentials
                .map(|d| d.join(slot.name))
                .filter(|p| p.exists())
            else {
                return Some(ConfigProblem::new(
                    key,
                    format!(
                        "no secret given: set `{0}_file = \"/etc/dcvd/{1}.key\"` (a file holding it), \
                         or `{0}`, or pass systemd credential `{1}` (LoadCredential={1}:/path/to/file)",
                        slot.field, slot.name
                    ),
                ));
            };
            match read_secret_file(&path) {
                Ok(t) => (t, key, Some(path)),
                Err(m) => return Some(ConfigProblem::new(key, m)),
            }
        }
    };
    let text = text.trim();
    let from = origin
        .map(|p| format!("the file {}", p.display()))
        .unwrap_or_else(|| "the value".to_string());
    if text.is_empty() {
        return Some(ConfigProblem::new(
            from_key,
            format!("{from} is empty; put the secret in it"),
        ));
    }
    let value = if let Some(configured) = slot.tsig {
        if let Some(alg) = find_field(text, "algorithm")
            && !alg.trim_end_matches('.').eq_ignore_ascii_case(configured)
        {
            return Some(ConfigProblem::new(
                from_key,
                format!(
                    "{from} is a key for algorithm `{alg}` but {}.tsig_algorithm is `{configured}`; make them match",
                    slot.section
                ),
            ));
        }
        match parse_tsig_secret(text) {
            Ok(v) => v,
            Err(why) => return Some(ConfigProblem::new(from_key, format!("{from} {why}"))),
        }
    } else {
        text.to_string()
    };
    *inline = Some(SecretString::from(value));
    None
}

fn read_secret_file(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the secret file {}: {e}; check that it exists and that the dcvd user may read it",
            path.display()
        )
    })
}

/// The base64 TSIG secret from: the bare base64 text, a BIND / `tsig-keygen` key file
/// (`key "name" { algorithm hmac-sha256; secret "…"; };`) or a Knot `keymgr` YAML
/// (`secret: …`). The result is checked to decode as base64. The error (a phrase
/// following "the file X" / "the value") never contains the input.
pub fn parse_tsig_secret(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bare = !text
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | ':' | ';' | '"'));
    let candidate = if bare {
        text.to_string()
    } else {
        find_field(text, "secret").ok_or_else(|| {
            "has no `secret` entry; expected the bare base64 secret, a BIND key file \
             (secret \"…\";) or a Knot keymgr file (secret: …)"
                .to_string()
        })?
    };
    match base64::engine::general_purpose::STANDARD.decode(candidate.as_bytes()) {
        Ok(raw) if !raw.is_empty() => Ok(candidate),
        _ => Err(
            "does not hold a valid base64 TSIG secret (value not shown); generate one with \
             `tsig-keygen -a hmac-sha256 dcvd` or `keymgr -t dcvd hmac-sha256`"
                .to_string(),
        ),
    }
}

/// The value after the first `word` keyword: `secret "X";` (BIND) or `secret: X` (Knot).
fn find_field(text: &str, word: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before_ok = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ';' | '-'));
        let after = &rest[at + word.len()..];
        let after_ok = after
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace() || matches!(c, ':' | '"'));
        if before_ok && after_ok {
            let v = after.trim_start().trim_start_matches(':').trim_start();
            let value = match v.strip_prefix('"') {
                Some(q) => q.split('"').next().unwrap_or(""),
                None => v
                    .split(|c: char| c.is_whitespace() || c == ';')
                    .next()
                    .unwrap_or(""),
            };
            let value = value.trim().trim_matches('\'');
            if !value.is_empty() {
                return Some(value.to_string());
            }
        }
        rest = after;
    }
    None
}
