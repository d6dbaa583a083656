//! What a propagation self-check found, per server: kept in the order's authorization and
//! shown by `orders show`.

use serde::{Deserialize, Serialize};

/// What one server said in one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum ServerOutcome {
    /// Exactly the expected value is there.
    Present,
    /// The name does not exist.
    Nxdomain,
    /// The name exists but has no record of this type.
    NoData,
    /// Records of this type exist but none has the expected value (values listed).
    OtherValue(Vec<String>),
    Servfail,
    Refused,
    Timeout,
    /// Anything else (transport error, HTTP status, …), described.
    Error(String),
}

impl ServerOutcome {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ServerOutcome::Present => "present",
            ServerOutcome::Nxdomain => "nxdomain",
            ServerOutcome::NoData => "nodata",
            ServerOutcome::OtherValue(_) => "other_value",
            ServerOutcome::Servfail => "servfail",
            ServerOutcome::Refused => "refused",
            ServerOutcome::Timeout => "timeout",
            ServerOutcome::Error(_) => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerResult {
    /// Who was asked, e.g. `ns1.example.com (192.0.2.1:53)`, a resolver, or a URL.
    pub server: String,
    pub outcome: ServerOutcome,
}

/// One round of checking one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// True only when every server that must have the token has exactly it.
    pub present: bool,
    /// The name the lookup ended at after following CNAMEs (equal to the token name
    /// when there was no CNAME).
    pub final_name: String,
    pub servers: Vec<ServerResult>,
}

impl CheckReport {
    /// One line for logs and `orders show`: `ns1 (…): present; ns2 (…): nxdomain`.
    pub fn summary(&self) -> String {
        self.servers
            .iter()
            .map(|s| match &s.outcome {
                ServerOutcome::OtherValue(v) => format!("{}: other value {:?}", s.server, v),
                ServerOutcome::Error(e) => format!("{}: error {e}", s.server),
                o => format!("{}: {}", s.server, o.metric_label()),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
