//! How the engine reacts to an error, shared by the CA clients, the checks, the publishers
//! and the store.

use serde::{Deserialize, Serialize};

/// How the engine reacts to an error (see `lifecycle::retry::error_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Try again later with capped, jittered backoff (timeouts, 5xx, resets).
    Transient,
    /// The CA (or our own limiter) said slow down; wait as told.
    RateLimited,
    /// Retrying will not help (bad credentials, refused request). The order fails.
    Permanent,
}

impl ErrorKind {
    pub fn metric_label(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Permanent => "permanent",
        }
    }
}
