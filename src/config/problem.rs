//! Collecting config problems: `Problems` for one load and `join` for the key path each
//! problem names (`providers.digicert.api_key_file`).

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
