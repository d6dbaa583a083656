//! Reading `dcvd.toml` with figment and turning figment/serde errors into
//! [`ConfigProblem`]s that name the key (never a secret value).
//!
//! Defaults are the schema's serde defaults. Each section (and each provider, publisher
//! and certificate) is deserialised on its own, and a bad key is dropped and the rest
//! parsed again, so one mistake does not hide the next.

use std::path::Path;

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use super::problem::{certificate_location, join, quote};
use super::{
    CertificateConfig, CertificateOrigin, Config, ConfigErrors, ConfigProblem, ConfigSources,
    DaemonConfig, DnsConfig, HttpCheckConfig, ProviderConfig, PublisherConfig, include, secrets,
    validate,
};

/// `<location>: <key>` for a key already rendered inside a certificate (`dcv[1]`).
fn in_certificate_key(location: &str, key: &str) -> String {
    format!("{location}: {key}")
}

const SECTIONS: &[&str] = &[
    "include",
    "defaults",
    "daemon",
    "providers",
    "publishers",
    "dns",
    "http_check",
    "certificates",
];

/// Keys holding secrets: their values must never reach an error message.
const SECRET_KEYS: &[&str] = &["api_key", "login_password", "tsig_secret"];

/// Load `path` (TOML) with the files its `include` names and its `[defaults]` applied
/// (see `config/include.rs`), apply `DCVD_` environment overrides (`__` separates keys:
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
    let overrides = std::env::vars_os().any(|(k, _)| {
        k.to_str()
            .is_some_and(|k| k.starts_with("DCVD_") && k != "DCVD_CONFIG")
    });
    let env = || Env::prefixed("DCVD_").ignore(&["config"]).split("__");
    let text = std::fs::read_to_string(path).ok();
    if !overrides
        && let Some(text) = &text
        && let Some(result) = fast_path(text, Some(path), credentials.as_deref())
    {
        return result.map_err(|p| ConfigErrors::new(Some(path), p));
    }
    // What the fast path does not take: per-key messages from figment, on the assembled
    // document (or the file itself when it is not TOML, for figment's syntax message).
    let assembled = text
        .as_deref()
        .and_then(|t| toml::from_str::<toml::Table>(t).ok())
        .map(|table| include::assemble(Some(path), table));
    let result = match assembled {
        Some(a) => {
            let figment = Figment::new()
                .merge(Serialized::defaults(&a.doc))
                .merge(env());
            finish(&figment, a.sources, a.problems, credentials.as_deref())
        }
        None => {
            let figment = Figment::new().merge(Toml::file_exact(path)).merge(env());
            finish(
                &figment,
                single_file(Some(path), 0),
                Vec::new(),
                credentials.as_deref(),
            )
        }
    };
    result.map_err(|p| ConfigErrors::new(Some(path), p))
}

/// Sources for `certificates` certificates all written in the main file (`None`: a string).
fn single_file(path: Option<&Path>, certificates: usize) -> ConfigSources {
    ConfigSources {
        files: path.map(Path::to_path_buf).into_iter().collect(),
        certificates: (0..certificates)
            .map(|index| CertificateOrigin {
                file: path.map(|_| 0),
                index,
            })
            .collect(),
        ..Default::default()
    }
}

/// Without `DCVD_` overrides, a document that deserialises cleanly is read straight into
/// the typed config: none of figment's intermediate value trees (which cost hundreds of
/// MiB and seconds for 100,000 certificates). A single file without `include` or
/// `defaults` is parsed in one step. Anything that does not parse returns `None`, and
/// the figment path reports each problem with its key.
fn fast_path(
    text: &str,
    path: Option<&Path>,
    credentials: Option<&Path>,
) -> Option<Result<Config, Vec<ConfigProblem>>> {
    // A document that never says `include` or `defaults` needs no assembly. (A mention
    // elsewhere, in a comment or value, only costs the assembled path below.)
    if !text.contains("include") && !text.contains("defaults") {
        let mut cfg: Config = toml::from_str(text).ok()?;
        cfg.sources = single_file(path, cfg.certificates.len());
        return Some(check(cfg, Vec::new(), credentials));
    }
    let table: toml::Table = toml::from_str(text).ok()?;
    let a = include::assemble(path, table);
    let mut cfg: Config = toml::Value::Table(a.doc).try_into().ok()?;
    cfg.sources = a.sources;
    Some(check(cfg, a.problems, credentials))
}

/// Secrets and validation of a parsed config; `problems` are those found before.
fn check(
    mut cfg: Config,
    mut problems: Vec<ConfigProblem>,
    credentials: Option<&Path>,
) -> Result<Config, Vec<ConfigProblem>> {
    problems.extend(secrets::resolve_secrets(&mut cfg, credentials));
    problems.extend(validate::validate(&cfg));
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

/// The typed parse behind the fast path (no environment check), for tests.
#[cfg(test)]
pub(super) fn parse_typed(
    text: &str,
    credentials: Option<&Path>,
) -> Option<Result<Config, Vec<ConfigProblem>>> {
    fast_path(text, None, credentials)
}

/// Load from TOML text only (no environment layer), with `credentials_dir` standing in
/// for `$CREDENTIALS_DIRECTORY`. For tests and tools. `include` patterns that are
/// relative resolve against the current directory.
pub fn load_from_str(toml: &str, credentials_dir: Option<&Path>) -> Result<Config, ConfigErrors> {
    let result = match toml::from_str::<toml::Table>(toml) {
        Ok(table) => {
            let a = include::assemble(None, table);
            let figment = Figment::new().merge(Serialized::defaults(&a.doc));
            finish(&figment, a.sources, a.problems, credentials_dir)
        }
        Err(_) => {
            let figment = Figment::new().merge(Toml::string(toml));
            finish(
                &figment,
                ConfigSources::default(),
                Vec::new(),
                credentials_dir,
            )
        }
    };
    result.map_err(|p| ConfigErrors::new(None, p))
}

/// Parse the figment document whose certificates came from `sources`, after the
/// `earlier` problems found while assembling it.
fn finish(
    figment: &Figment,
    sources: ConfigSources,
    earlier: Vec<ConfigProblem>,
    credentials: Option<&Path>,
) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = earlier;
    let root: Dict = match figment.extract() {
        Ok(r) => r,
        Err(e) => {
            problems.extend(describe_all("", e));
            return Err(problems);
        }
    };
    let (mut cfg, parsed, complete) = parse_sections(&root, &sources);
    problems.extend(parsed);
    cfg.sources = sources;
    if cfg.sources.certificates.len() != cfg.certificates.len() {
        // The list was replaced through the environment: no file to name.
        cfg.sources.certificates.clear();
    }
    if !complete {
        // An entry is missing altogether: checks across entries (references,
        // certificate indices) would mislead. Report what parsing found.
        return Err(problems);
    }
    check(cfg, problems, credentials)
}

/// The config, the problems found while parsing, and whether every entry made it
/// (possibly without its bad keys).
fn parse_sections(root: &Dict, sources: &ConfigSources) -> (Config, Vec<ConfigProblem>, bool) {
    let mut problems = Vec::new();
    let mut complete = true;
    let mut cfg = Config {
        daemon: DaemonConfig::default(),
        providers: Default::default(),
        publishers: Default::default(),
        dns: DnsConfig::default(),
        http_check: HttpCheckConfig::default(),
        certificates: Vec::new(),
        sources: ConfigSources::default(),
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
                // Sources describe the assembled list; a list replaced through the
                // environment has no files to name.
                let origins = (sources.certificates.len() == list.len())
                    .then_some(&sources.certificates);
                for (i, v) in list.iter().enumerate() {
                    let origin = origins.map(|o| o[i]);
                    let file = origin
                        .and_then(|o| o.file)
                        .and_then(|f| sources.files.get(f))
                        .map(|f| f.as_path());
                    let name = v
                        .as_dict()
                        .and_then(|d| d.get("name"))
                        .and_then(|n| n.as_str());
                    let loc = certificate_location(file, name, origin.map_or(i, |o| o.index));
                    let mut found = Vec::new();
                    let parsed = parse::<CertificateConfig>("", v, &mut found);
                    problems.extend(found.into_iter().map(|mut p| {
                        p.key = if p.key == "config" {
                            loc.clone()
                        } else {
                            in_certificate_key(&loc, &p.key)
                        };
                        p
                    }));
                    match parsed {
                        Some(c) => cfg.certificates.push(c),
                        None => complete = false,
                    }
                }
            }
            "include" | "defaults" => problems.push(ConfigProblem::new(
                key,
                "cannot be set by a DCVD_ environment variable; write it in the main configuration file",
            )),
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
pub(super) fn parse<T: DeserializeOwned>(
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
pub(super) fn without_source_lines(message: &str) -> String {
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
