//! Collecting config problems: `Problems` for one load and `join` for the key path each
//! problem names (`providers.digicert.api_key_file`).

use std::path::Path;

use super::ConfigProblem;

/// Collects problems for one load.
pub(super) struct Problems(pub(super) Vec<ConfigProblem>);

impl Problems {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem::new(key, message));
    }
}

/// `prefix.segment`, quoting segments that are not bare keys (`"example.com."`).
pub(crate) fn join(prefix: &str, segment: &str) -> String {
    let seg = quote(segment);
    if prefix.is_empty() {
        seg
    } else {
        format!("{prefix}.{seg}")
    }
}

pub(super) fn quote(segment: &str) -> String {
    let bare = !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        segment.to_string()
    } else {
        format!("{segment:?}")
    }
}

/// How a problem names one `[[certificates]]` entry: `<file>: certificate "<name>"`, or
/// `<file>: certificates[<index>]` when it has no usable name (the index counts that
/// file's entries from 0). Without a file (a configuration given as a string) just the
/// second part.
pub(crate) fn certificate_location(
    file: Option<&Path>,
    name: Option<&str>,
    index: usize,
) -> String {
    let who = match name {
        Some(n) if !n.is_empty() => format!("certificate {n:?}"),
        _ => format!("certificates[{index}]"),
    };
    match file {
        Some(f) => format!("{}: {who}", f.display()),
        None => who,
    }
}

/// A key inside a certificate: `<location>: <field>` (`…: certificate "www": dcv[1]`).
pub(crate) fn in_certificate(location: &str, field: &str) -> String {
    format!("{location}: {}", quote(field))
}
