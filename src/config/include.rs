//! A configuration split over several files: `include` and `[defaults]`.
//!
//! The main file may say `include = ["/etc/dcvd/certificates.d/*.toml"]`. Each pattern
//! (relative ones resolve against the main file's directory) is expanded and its
//! matches sorted by file name; patterns are taken in the order written, and a file
//! matched twice (by two patterns, through a symlink, or the main file by its own
//! pattern) is read once, at its first place. The wildcards are `*` (any
//! run of characters) and `?` (one character), in the file name only (the last path
//! component), and like a shell's they do not match a leading `.` (editor lock files
//! such as `.#shop.toml` are skipped). dcvd uses this small matcher rather than a glob
//! crate: it is all an include needs. A pattern with wildcards that matches nothing is
//! allowed (a warning: an empty directory on a new host); a file name without wildcards
//! must exist, and so must the directory of a pattern. Included files hold
//! `[[certificates]]` only; includes do not nest.
//!
//! `[defaults]` holds any certificate key except `name`; a certificate's own value wins.
//! Keys are taken whole (a certificate's `dcv` or `dns_names` list replaces the
//! default's), except tables, which merge key by key: `approver_emails` from the
//! defaults and from the certificate are combined, the certificate's entry winning for
//! the same domain (and a default entry is taken only by the certificates it covers: a
//! domain at or above one of their names). `output_dir` and the `deploy_hook` arguments are templates, in the
//! defaults and in a certificate: `{name}` becomes the certificate's name (`{{` and `}}`
//! are literal braces); any other placeholder is an error.
//!
//! All this happens on the TOML tables before anything is deserialised, so the typed
//! parse, figment's per-key messages and the `DCVD_` environment layer work on the
//! assembled document exactly as on a single file.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::problem::{certificate_location, quote};
use super::{CertificateConfig, CertificateOrigin, ConfigProblem, ConfigSources};
use crate::model::DomainName;

/// The main document with every certificate in place (defaults applied, templates
/// rendered), where each came from, and the problems found on the way.
pub(super) struct Assembled {
    /// The main file's table without `include` and `defaults`; `certificates` holds the
    /// main file's entries followed by each included file's.
    pub(super) doc: Table,
    pub(super) sources: ConfigSources,
    pub(super) problems: Vec<ConfigProblem>,
}

/// Keys holding templates (`{name}`).
const TEMPLATE_KEYS: &[&str] = &["output_dir", "deploy_hook"];

/// Assemble `table`, the parsed main file `main` (`None`: a string; relative include
/// patterns then resolve against the current directory).
pub(super) fn assemble(main: Option<&Path>, mut table: Table) -> Assembled {
    let mut sources = ConfigSources::default();
    let mut problems = Vec::new();
    if let Some(m) = main {
        sources.files.push(m.to_path_buf());
    }
    let main_file = main.map(|_| 0);
    let include = table.remove("include");
    let defaults = table.remove("defaults");
    let mut certs: Vec<(Value, CertificateOrigin)> = Vec::new();
    match table.remove("certificates") {
        Some(Value::Array(list)) => certs.extend(list.into_iter().enumerate().map(|(i, v)| {
            (
                v,
                CertificateOrigin {
                    file: main_file,
                    index: i,
                },
            )
        })),
        Some(_) => problems.push(ConfigProblem::new(
            "certificates",
            "must be a list of [[certificates]] tables",
        )),
        None => {}
    }

    if let Some(include) = include {
        sources.uses_include = true;
        let base = main
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Files already taken, by canonical path: a file matched twice (or through a
        // symlink), or the main file matched by its own pattern, is read once.
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let mut seen: std::collections::HashSet<PathBuf> =
            main.map(canonical).into_iter().collect();
        for (i, pattern) in patterns(include, &mut problems) {
            let key = format!("include[{i}]");
            match expand(base, &pattern) {
                Ok(files) if files.is_empty() => sources.unmatched.push((i, pattern)),
                Ok(files) => {
                    for f in files {
                        if !seen.insert(canonical(&f)) {
                            continue;
                        }
                        sources.files.push(f);
                        let at = sources.files.len() - 1;
                        read_included(&sources.files[at], at, &mut certs, &mut problems);
                    }
                }
                Err(m) => problems.push(ConfigProblem::new(key, m)),
            }
        }
    }

    let defaults = match defaults {
        None => Some(Table::new()),
        Some(Value::Table(d)) => check_defaults(&d, &mut problems).then_some(d),
        Some(_) => {
            problems.push(ConfigProblem::new(
                "defaults",
                "must be a table: [defaults] followed by certificate keys, e.g. output_dir = \"/var/lib/dcvd/certs/{name}\"",
            ));
            None
        }
    };
    // With unusable defaults every certificate would report the same missing or bad
    // key: report the defaults alone; the certificates are checked once they are fixed.
    let mut list = Vec::with_capacity(certs.len());
    if let Some(defaults) = defaults {
        for (mut v, origin) in certs {
            if let Value::Table(t) = &mut v {
                apply_defaults(t, &defaults);
                let file = origin.file.map(|f| sources.files[f].as_path());
                render_templates(t, file, origin.index, &mut problems);
            }
            list.push(v);
            sources.certificates.push(origin);
        }
    }
    table.insert("certificates".into(), Value::Array(list));
    Assembled {
        doc: table,
        sources,
        problems,
    }
}

/// The `include` value as `(position, pattern)`s; anything else is a problem.
fn patterns(include: Value, problems: &mut Vec<ConfigProblem>) -> Vec<(usize, String)> {
    let Value::Array(list) = include else {
        problems.push(ConfigProblem::new(
            "include",
            "must be a list of files or patterns, e.g. include = [\"/etc/dcvd/certificates.d/*.toml\"]",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        match v {
            Value::String(s) => out.push((i, s)),
            other => problems.push(ConfigProblem::new(
                format!("include[{i}]"),
                format!(
                    "expected a file name or pattern (a string), found {}",
                    other.type_str()
                ),
            )),
        }
    }
    out
}

/// The files `pattern` names, sorted (see the module documentation for the rules).
pub(super) fn expand(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    if pattern.trim().is_empty() {
        return Err(
            "is empty; write a file or a pattern such as \"/etc/dcvd/certificates.d/*.toml\""
                .into(),
        );
    }
    let path = base.join(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!(
            "`{pattern}` does not name a file; write e.g. \"/etc/dcvd/certificates.d/*.toml\""
        ));
    };
    let name = name.to_string_lossy();
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!(
            "`{pattern}`: wildcards (* and ?) are allowed only in the file name, not in the directory `{}`",
            dir.display()
        ));
    }
    if !name.contains(['*', '?']) {
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => Err(format!(
                "`{}` is a directory; include the files in it with a pattern, e.g. \"{}/*.toml\"",
                path.display(),
                pattern.trim_end_matches('/')
            )),
            Ok(_) => Ok(vec![path]),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "`{}` does not exist; create it or remove it from include (only a pattern with * or ? may match nothing{})",
                path.display(),
                if name.contains(['[', '{']) {
                    "; [..] and {..} are not wildcards here"
                } else {
                    ""
                }
            )),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        };
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "the directory `{}` does not exist; create it (an empty directory is fine) or fix the pattern `{pattern}`",
                dir.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot read the directory `{}`: {e}",
                dir.display()
            ));
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("cannot read the directory `{}`: {e}", dir.display()))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !wildcard_match(&name, file_name) {
            continue;
        }
        let p = entry.path();
        // Directories are not files to read; anything unreadable is reported when read.
        if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        out.push(p);
    }
    out.sort();
    Ok(out)
}

/// `*` and `?` against one file name; neither matches a leading `.`.
pub(super) fn wildcard_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Read one included file's `[[certificates]]` into `certs`; anything else in it is a
/// problem naming the file and the key.
fn read_included(
    path: &Path,
    file: usize,
    certs: &mut Vec<(Value, CertificateOrigin)>,
    problems: &mut Vec<ConfigProblem>,
) {
    let here = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(ConfigProblem::new(
                here,
                format!("cannot read this included file: {e}"),
            ));
            return;
        }
    };
    let table: Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            problems.push(ConfigProblem::new(
                here,
                super::load::without_source_lines(&e.to_string()),
            ));
            return;
        }
    };
    for (key, value) in table {
        match (key.as_str(), value) {
            ("certificates", Value::Array(list)) => {
                certs.extend(list.into_iter().enumerate().map(|(i, v)| {
                    (
                        v,
                        CertificateOrigin {
                            file: Some(file),
                            index: i,
                        },
                    )
                }))
            }
            ("certificates", _) => problems.push(ConfigProblem::new(
                format!("{here}: certificates"),
                "must be a list of [[certificates]] tables",
            )),
            ("include", _) => problems.push(ConfigProblem::new(
                format!("{here}: include"),
                "includes do not nest: an included file holds only [[certificates]]; \
                 list this pattern in the main file's include instead",
            )),
            (other, _) => problems.push(ConfigProblem::new(
                format!("{here}: {}", quote(other)),
                format!(
                    "an included file holds only [[certificates]] tables; `{other}` belongs in the main file"
                ),
            )),
        }
    }
}

/// Whether `[defaults]` is usable: no `name`, known keys of the right types, good
/// templates. Each problem is reported once, at `defaults.<key>`.
fn check_defaults(d: &Table, problems: &mut Vec<ConfigProblem>) -> bool {
    let before = problems.len();
    if d.contains_key("name") {
        problems.push(ConfigProblem::new(
            "defaults.name",
            "cannot have a default: each certificate names itself",
        ));
    }
    for key in TEMPLATE_KEYS {
        for (at, template) in template_values(d, key) {
            if let Err(m) = render(template, None) {
                problems.push(ConfigProblem::new(format!("defaults.{at}"), m));
            }
        }
    }
    // Types and unknown keys, by parsing the defaults as a certificate whose required
    // keys are filled in where the defaults leave them out.
    let mut probe = d.clone();
    probe.remove("name");
    for (k, v) in [
        ("name", "defaults"),
        ("provider", "defaults"),
        ("common_name", "defaults.invalid"),
        ("output_dir", "/"),
    ] {
        probe
            .entry(k.to_string())
            .or_insert_with(|| Value::String(v.into()));
    }
    match figment::value::Value::serialize(&probe) {
        Ok(v) => {
            super::load::parse::<CertificateConfig>("defaults", &v, problems);
        }
        Err(e) => problems.push(ConfigProblem::new("defaults", e.to_string())),
    }
    problems.len() == before
}

/// A certificate's table with the defaults filled in: missing keys are copied, tables
/// present in both merge key by key (the certificate's entries win). The defaults'
/// `approver_emails` entries are taken only for domains at or above one of the
/// certificate's names: one `[defaults]` serves certificates of several domains.
fn apply_defaults(cert: &mut Table, defaults: &Table) {
    for (k, dv) in defaults {
        let dv = if k == "approver_emails"
            && let Value::Table(d) = dv
        {
            &Value::Table(covering(cert, d))
        } else {
            dv
        };
        match (cert.get_mut(k), dv) {
            (None, _) => {
                cert.insert(k.clone(), dv.clone());
            }
            (Some(Value::Table(own)), Value::Table(d)) => {
                for (kk, vv) in d {
                    own.entry(kk.clone()).or_insert_with(|| vv.clone());
                }
            }
            (Some(_), _) => {}
        }
    }
}

/// The entries of `approver_emails` whose domain is one of `cert`'s names or a parent
/// of one (a domain that does not parse is kept, for validation to report).
fn covering(cert: &Table, approver_emails: &Table) -> Table {
    let names: Vec<DomainName> = cert
        .get("common_name")
        .into_iter()
        .chain(
            cert.get("dns_names")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(Value::as_str)
        .filter_map(|n| DomainName::parse(n).ok())
        .collect();
    approver_emails
        .iter()
        .filter(|(domain, _)| match DomainName::parse(domain) {
            Ok(d) => names.iter().any(|n| n.is_at_or_below(d.base())),
            Err(_) => true,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The string values of template key `key`: `output_dir` itself, or each `deploy_hook`
/// argument, as `(key as problems name it, value)`.
fn template_values<'a>(t: &'a Table, key: &str) -> Vec<(String, &'a str)> {
    match t.get(key) {
        Some(Value::String(s)) => vec![(key.to_string(), s.as_str())],
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .filter_map(|(j, v)| v.as_str().map(|s| (format!("{key}[{j}]"), s)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Render the template keys of one certificate in place.
fn render_templates(
    t: &mut Table,
    file: Option<&Path>,
    index: usize,
    problems: &mut Vec<ConfigProblem>,
) {
    let name = t.get("name").and_then(Value::as_str).map(str::to_string);
    for key in TEMPLATE_KEYS {
        let Some(value) = t.get_mut(*key) else {
            continue;
        };
        let slots: Vec<(String, &mut String)> = match value {
            Value::String(s) => vec![(key.to_string(), s)],
            Value::Array(list) => list
                .iter_mut()
                .enumerate()
                .filter_map(|(j, v)| match v {
                    Value::String(s) => Some((format!("{key}[{j}]"), s)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (at, s) in slots {
            if !s.contains(['{', '}']) {
                continue;
            }
            match render(s, name.as_deref()) {
                Ok(r) => *s = r,
                Err(m) => {
                    // Without a name the entry is refused for that already.
                    if name.is_some() {
                        let loc = certificate_location(file, name.as_deref(), index);
                        problems.push(ConfigProblem::new(format!("{loc}: {at}"), m));
                    }
                }
            }
        }
    }
}

/// `template` with `{name}` replaced by `name` (`None`: only check the template).
/// `{{` and `}}` are literal braces.
pub(super) fn render(template: &str, name: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let r = &rest[i..];
        if let Some(after) = r.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = r.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if r.starts_with('}') {
            return Err(format!(
                "`{template}` has a `}}` that closes no placeholder; write `}}}}` for a literal brace"
            ));
        } else {
            let Some(end) = r.find('}') else {
                return Err(format!(
                    "`{template}` has a `{{` that is never closed; write {{name}} for the certificate's name, or `{{{{` for a literal brace"
                ));
            };
            let placeholder = &r[1..end];
            if placeholder != "name" {
                return Err(format!(
                    "`{template}` uses the placeholder {{{placeholder}}}, which dcvd does not know; \
                     the only placeholder is {{name}}, the certificate's name"
                ));
            }
            match name {
                Some("." | "..") => {
                    return Err(format!(
                        "`{template}`: the certificate name `{}` cannot stand for a directory; rename the certificate",
                        name.unwrap_or_default()
                    ));
                }
                Some(n) => out.push_str(n),
                None => out.push_str("name"),
            }
            rest = &r[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}
