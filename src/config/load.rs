//! Reading `dcvd.toml` with figment and turning figment/serde errors into
//! [`ConfigProblem`]s that name the key (never a secret value).
//!
//! Defaults are the schema's serde defaults. Each section (and each provider, publisher
//! and certificate) is deserialised on its own, and a bad key is dropped and the rest
//! parsed again, so one mistake does not hide the next.

use std::path::Path;

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use super::problem::{join, quote};
use super::{
    CertificateConfig, Config, ConfigErrors, ConfigProblem, DaemonConfig, DnsConfig,
    HttpCheckConfig, ProviderConfig, PublisherConfig, secrets, validate,
};

const SECTIONS: &[&str] = &[
    "daemon",
    "providers",
    "publishers",
    "dns",
    "http_check",
    "certificates",
];

/// Keys holding secrets: their values must never reach an error message.
const SECRET_KEYS: &[&str] = &["api_key", "login_password", "tsig_secret"];

/// Load `path` (TOML), apply `DCVD_` environment overrides (`__` separates keys:
/// `DCVD_DAEMON__CONCURRENCY=4`), resolve secrets (inline, `*_file`, or
/// `$CREDENTIALS_DIRECTORY/<name>`) and validate everything.
///
/// Environment values are parsed like TOML values, so a secret made only of digits
/// must be quoted: `DCVD_PROVIDERS__MAIN__API_KEY='"0123"'` (or use `api_key_file`).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    if let Err(e) = std::fs::File::open(path) {
        return Err(ConfigErrors::new(
            Some(path),
            vec![ConfigProblem::new(
                "config",
                format!(
                    "cannot read the configuration file {}: {e}; pass --config <file> or set DCVD_CONFIG",
                    path.display()
                ),
            )],
        ));
    }
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from);
    if let Some(result) = fast_path(path, credentials.as_deref()) {
        return result.map_err(|p| ConfigErrors::new(Some(path), p));
    }
    let figment = Figment::new()
        .merge(Toml::file_exact(path))
        .merge(Env::prefixed("DCVD_").ignore(&["config"]).split("__"));
    finish(&figment, credentials.as_deref()).map_err(|p| ConfigErrors::new(Some(path), p))
}

/// Without `DCVD_` overrides, a file that deserialises cleanly is read straight into
/// the typed config: one parse, none of figment's intermediate value trees (which cost
/// hundreds of MiB and seconds for 100,000 certificates). Anything that does not parse
/// returns `None`, and the figment path reports each problem with its key.
fn fast_path(
    path: &Path,
    credentials: Option<&Path>,
) -> Option<Result<Config, Vec<ConfigProblem>>> {
    let overrides = std::env::vars_os().any(|(k, _)| {
        k.to_str()
            .is_some_and(|k| k.starts_with("DCVD_") && k != "DCVD_CONFIG")
    });
    if overrides {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    parse_typed(&text, credentials)
}

/// The typed parse behind the fast path (no environment check), for tests.
fn parse_typed(
    text: &str,
    credentials: Option<&Path>,
) -> Option<Result<Config, Vec<ConfigProblem>>> {
    let mut cfg: Config = toml::from_str(text).ok()?;
    let mut problems = secrets::resolve_secrets(&mut cfg, credentials);
    problems.extend(validate::validate(&cfg));
    Some(if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    })
}

/// Load from TOML text only (no environment layer), with `credentials_dir` standing in
/// for `$CREDENTIALS_DIRECTORY`. For tests and tools.
pub fn load_from_str(toml: &str, credentials_dir: Option<&Path>) -> Result<Config, ConfigErrors> {
    let figment = Figment::new().merge(Toml::string(toml));
    finish(&figment, credentials_dir).map_err(|p| ConfigErrors::new(None, p))
}

fn finish(figment: &Figment, credentials: Option<&Path>) -> Result<Config, Vec<ConfigProblem>> {
    let root: Dict = figment.extract().map_err(|e| describe_all("", e))?;
    let (mut cfg, mut problems, complete) = parse_sections(&root);
    if !complete {
        // An entry is missing altogether: checks across entries (references,
        // certificate indices) would mislead. Report what parsing found.
        return Err(problems);
    }
    problems.extend(secrets::resolve_secrets(&mut cfg, credentials));
    problems.extend(validate::validate(&cfg));
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

/// The config, the problems found while parsing, and whether every entry made it
/// (possibly without its bad keys).
fn parse_sections(root: &Dict) -> (Config, Vec<ConfigProblem>, bool) {
    let mut problems = Vec::new();
    let mut complete = true;
    let mut cfg = Config {
        daemon: DaemonConfig::default(),
        providers: Default::default(),
        publishers: Default::default(),
        dns: DnsConfig::default(),
        http_check: HttpCheckConfig::default(),
        certificates: Vec::new(),
    };
    for (key, value) in root {
        match key.as_str() {
            "daemon" => set(&mut cfg.daemon, parse(key, value, &mut problems), &mut complete),
            "dns" => set(&mut cfg.dns, parse(key, value, &mut problems), &mut complete),
            "http_check" => set(
                &mut cfg.http_check,
                parse(key, value, &mut problems),
                &mut complete,
            ),
            "providers" | "publishers" => {
                let Some(table) = value.as_dict() else {
                    problems.push(ConfigProblem::new(
                        key,
                        format!("must be a table of named entries, e.g. [{key}.main]"),
                    ));
                    continue;
                };
                for (name, v) in table {
                    let k = join(key, name);
                    let ok = if key == "providers" {
                        parse_provider(&k, v, &mut problems)
                            .map(|p| cfg.providers.insert(name.clone(), p))
                            .is_some()
                    } else {
                        parse_publisher(&k, v, &mut problems)
                            .map(|p| cfg.publishers.insert(name.clone(), p))
                            .is_some()
                    };
                    complete &= ok;
                }
            }
            "certificates" => {
                let Some(list) = value.as_array() else {
                    problems.push(ConfigProblem::new(
                        key,
                        "must be a list of [[certificates]] tables",
                    ));
                    continue;
                };
                for (i, v) in list.iter().enumerate() {
                    let k = format!("certificates[{i}]");
                    match parse::<CertificateConfig>(&k, v, &mut problems) {
                        Some(c) => cfg.certificates.push(c),
                        None => complete = false,
                    }
                }
            }
            other => problems.push(ConfigProblem::new(
                quote(other),
                format!(
                    "unknown section; the known ones are: {} (environment variables starting with DCVD_ are read as keys too)",
                    SECTIONS.join(", ")
                ),
            )),
        }
    }
    (cfg, problems, complete)
}

fn parse_provider(
    key: &str,
    v: &Value,
    problems: &mut Vec<ConfigProblem>,
) -> Option<ProviderConfig> {
    let (kind, rest) = split_kind(key, v, &["digicert", "sectigo", "acme"], problems)?;
    match kind.as_str() {
        "digicert" => parse(key, &rest, problems).map(ProviderConfig::Digicert),
        "acme" => parse(key, &rest, problems).map(ProviderConfig::Acme),
        _ => parse(key, &rest, problems).map(ProviderConfig::Sectigo),
    }
}

fn parse_publisher(
    key: &str,
    v: &Value,
    problems: &mut Vec<ConfigProblem>,
) -> Option<PublisherConfig> {
    let kinds = &["rfc2136", "exec", "webroot", "manual"];
    let (kind, rest) = split_kind(key, v, kinds, problems)?;
    match kind.as_str() {
        "rfc2136" => parse(key, &rest, problems).map(PublisherConfig::Rfc2136),
        "exec" => parse(key, &rest, problems).map(PublisherConfig::Exec),
        "webroot" => parse(key, &rest, problems).map(PublisherConfig::Webroot),
        _ => parse(key, &rest, problems).map(PublisherConfig::Manual),
    }
}

/// The `kind` of a `[providers.x]` / `[publishers.x]` table and the table without it.
/// Deserialising the kind's own struct (rather than serde's tagged enum, which buffers
/// and loses key paths) lets errors name the exact key, and secrets be recognised.
fn split_kind(
    key: &str,
    v: &Value,
    kinds: &[&str],
    problems: &mut Vec<ConfigProblem>,
) -> Option<(String, Value)> {
    let Some(table) = v.as_dict() else {
        problems.push(ConfigProblem::new(key, "must be a table with a `kind` key"));
        return None;
    };
    let kind = match table.get("kind").map(|k| k.as_str()) {
        Some(Some(k)) if kinds.contains(&k) => k.to_string(),
        Some(Some(k)) => {
            problems.push(ConfigProblem::new(
                join(key, "kind"),
                format!("`{k}` is not allowed; use one of: {}", kinds.join(", ")),
            ));
            return None;
        }
        _ => {
            problems.push(ConfigProblem::new(
                join(key, "kind"),
                format!(
                    "is required: say which implementation this entry uses, one of: {}",
                    kinds.join(", ")
                ),
            ));
            return None;
        }
    };
    let mut rest = table.clone();
    rest.remove("kind");
    Some((kind, Value::from(rest)))
}

fn set<T>(slot: &mut T, value: Option<T>, complete: &mut bool) {
    match value {
        Some(v) => *slot = v,
        None => *complete = false,
    }
}

/// Deserialise one table. When a key in it is bad (unknown, wrong type, bad value) the
/// problem is recorded, the key is dropped and the rest parsed again, so one mistake
/// does not hide the next. `None` when the table cannot be parsed even so, e.g. a
/// required key is missing.
fn parse<T: DeserializeOwned>(
    key: &str,
    value: &Value,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let mut value = value.clone();
    for _ in 0..64 {
        let err = match value.deserialize::<T>() {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let bad_keys: Vec<String> = err
            .clone()
            .into_iter()
            .filter(|e| !matches!(e.kind, Kind::MissingField(_)))
            .filter_map(|e| e.path.first().cloned())
            .collect();
        problems.extend(describe_all(key, err));
        let Value::Dict(_, dict) = &mut value else {
            break;
        };
        let before = dict.len();
        for k in &bad_keys {
            dict.remove(k);
        }
        if dict.len() == before {
            break;
        }
    }
    None
}

fn describe_all(prefix: &str, err: figment::Error) -> Vec<ConfigProblem> {
    err.into_iter().map(|e| describe(prefix, e)).collect()
}

/// One figment error as a problem.
fn describe(prefix: &str, e: figment::Error) -> ConfigProblem {
    // figment names sequence elements by their index: render them as `dcv[1]`.
    let mut key = e.path.iter().fold(prefix.to_string(), |k, s| {
        if !k.is_empty() && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            format!("{k}[{s}]")
        } else {
            join(&k, s)
        }
    });
    let field = e.path.last().cloned().unwrap_or_default();
    let secret = SECRET_KEYS.contains(&field.as_str());
    let mut message = match e.kind {
        Kind::UnknownField(found, expected) => {
            if e.path.last() != Some(&found) {
                key = join(&key, &found);
            }
            format!(
                "unknown key; the keys allowed here are: {}",
                expected.join(", ")
            )
        }
        Kind::MissingField(name) => {
            if e.path.last().map(String::as_str) != Some(&*name) {
                key = join(&key, &name);
            }
            "is required but missing".to_string()
        }
        Kind::UnknownVariant(found, expected) => {
            format!(
                "`{found}` is not allowed; use one of: {}",
                expected.join(", ")
            )
        }
        Kind::InvalidType(_, _) | Kind::InvalidValue(_, _) if secret => format!(
            "must be a string (value not shown); in an environment variable quote it, e.g. \
             DCVD_…__{}='\"…\"', or put it in a file named by `{field}_file`",
            field.to_ascii_uppercase()
        ),
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {}", actual)
        }
        Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {}", actual)
        }
        Kind::Message(m) if secret => {
            let _ = m;
            "has an invalid value (not shown)".to_string()
        }
        Kind::Message(m) => without_source_lines(&m),
        other => other.to_string(),
    };
    if is_duration_key(&field) && !message.contains("unknown key") {
        message.push_str("; write a duration with a unit, e.g. 90s or 2h");
    }
    ConfigProblem::new(if key.is_empty() { "config".into() } else { key }, message)
}

fn is_duration_key(field: &str) -> bool {
    field.ends_with("timeout") || field.ends_with("interval") || field == "renew_before"
}

/// TOML syntax errors quote the offending source line, which may hold a secret:
/// keep the position and the explanation, drop the quoted source.
fn without_source_lines(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('|')
                && !l
                    .split_once('|')
                    .is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()))
        })
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn the_fast_path_reads_the_example_exactly_as_figment_does() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["digicert.key", "sectigo.pass", "tsig.key"] {
            std::fs::write(dir.path().join(f), "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
        }
        let example = include_str!("../../config/dcvd.example.toml")
            .replace("/etc/dcvd/", &format!("{}/", dir.path().display()));
        let fast = parse_typed(&example, None).expect("parses").expect("valid");
        let slow = load_from_str(&example, None).expect("valid");
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        // What the typed parse refuses goes to figment for per-key messages.
        assert!(parse_typed("[daemon]\nbogus = 1\n", None).is_none());
    }
}
