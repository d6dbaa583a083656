//! `exec` publisher: runs an operator's program (no shell) to put a token in place or remove it.
//!
//! Contract: `command[0] command[1..] present|cleanup <name> <TXT|CNAME|HTTP|HTTPS> <value>`,
//! with the same in `DCVD_ACTION`, `DCVD_NAME`, `DCVD_TYPE`, `DCVD_VALUE` (and
//! `DCVD_HTTP_PATH` for HTTP kinds). Exit 0 = done; anything else is an error carrying the
//! program's stderr. The program is killed when `timeout` passes.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

use super::{PublishError, Publisher};
use crate::config::ExecConfig;
use crate::model::ErrorKind;
use crate::model::{Challenge, ChallengeKind};

/// Most stderr bytes kept in an error.
const STDERR_MAX: usize = 1024;

#[derive(Debug)]
pub struct ExecPublisher {
    name: String,
    command: Vec<String>,
    timeout: Duration,
}

impl ExecPublisher {
    pub fn new(name: &str, cfg: &ExecConfig) -> Result<Self, String> {
        if cfg.command.first().is_none_or(|c| c.trim().is_empty()) {
            return Err(format!(
                "publishers.{name}.command is empty; give the program and its fixed arguments"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            command: cfg.command.clone(),
            timeout: cfg.timeout,
        })
    }

    async fn run(&self, action: &'static str, c: &Challenge) -> Result<(), PublishError> {
        let what = format!("{} {} via `{}`", c.kind, c.location(), self.command[0]);
        let err = |detail: String, kind| PublishError {
            publisher: self.name.clone(),
            action,
            what: what.clone(),
            detail,
            kind,
        };
        let mut cmd = Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .args([action, c.name.as_str(), c.kind.as_str(), c.value.as_str()])
            .env("DCVD_ACTION", action)
            .env("DCVD_NAME", &c.name)
            .env("DCVD_TYPE", c.kind.as_str())
            .env("DCVD_VALUE", &c.value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if matches!(c.kind, ChallengeKind::Http | ChallengeKind::Https) {
            cmd.env("DCVD_HTTP_PATH", c.path.as_deref().unwrap_or_default());
        }
        let child = cmd.spawn().map_err(|e| {
            err(
                format!("cannot start `{}`: {e}", self.command[0]),
                ErrorKind::Permanent,
            )
        })?;
        // Dropping the future on timeout drops the child, which kills it (kill_on_drop).
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => {
                return Err(err(
                    format!(
                        "the hook did not finish within {}; it was killed, will retry",
                        humantime::format_duration(self.timeout)
                    ),
                    ErrorKind::Transient,
                ));
            }
            Ok(Err(e)) => {
                return Err(err(
                    format!("waiting for the hook: {e}"),
                    ErrorKind::Transient,
                ));
            }
            Ok(Ok(o)) => o,
        };
        if output.status.success() {
            tracing::info!(publisher = %self.name, action, token = %c.location(), "exec hook succeeded");
            return Ok(());
        }
        let stderr = stderr_text(&output.stderr);
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        Err(err(
            format!("the hook failed ({status}); stderr: {stderr}; will retry"),
            ErrorKind::Transient,
        ))
    }
}

fn stderr_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return "(empty)".to_string();
    }
    if text.len() <= STDERR_MAX {
        return text.to_string();
    }
    let mut end = STDERR_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [truncated]", &text[..end])
}

#[async_trait]
impl Publisher for ExecPublisher {
    fn name(&self) -> &str {
        &self.name
    }

    fn can_publish(&self, _challenge: &Challenge) -> bool {
        true
    }

    async fn present(&self, challenge: &Challenge) -> Result<(), PublishError> {
        self.run("present", challenge).await
    }

    async fn cleanup(&self, challenge: &Challenge) -> Result<(), PublishError> {
        self.run("cleanup", challenge).await
    }
}

#[cfg(test)]
mod tests {
    use super::stderr_text;

    #[test]
    fn stderr_is_truncated_to_about_one_kib() {
        let long = "é".repeat(2000);
        let t = stderr_text(long.as_bytes());
        assert!(t.len() < 1100, "{}", t.len());
        assert!(t.ends_with("[truncated]"));
        assert_eq!(stderr_text(b"  \n"), "(empty)");
    }
}
