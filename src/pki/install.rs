//! Installing an issued certificate: cert.pem, chain.pem, fullchain.pem and privkey.pem
//! (0600) written atomically into `output_dir`, then the deploy hook with a timeout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
#[error("installing into {dir}: {file}: {source}")]
pub struct InstallError {
    pub dir: PathBuf,
    pub file: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Write the four files. All temporary files are written and synced first, then renamed
/// into place, key first, so a reader never sees a half-written file.
pub fn write_files(
    dir: &Path,
    key_pem: &SecretString,
    leaf_pem: &str,
    chain_pem: &[String],
) -> Result<(), InstallError> {
    let err = |file: &'static str| {
        move |source| InstallError {
            dir: dir.to_path_buf(),
            file,
            source,
        }
    };
    create_dir(dir).map_err(err("(directory)"))?;
    let chain: String = chain_pem.iter().map(|c| ensure_newline(c)).collect();
    let leaf = ensure_newline(leaf_pem);
    let files: [(&'static str, String, u32); 4] = [
        (
            "privkey.pem",
            ensure_newline(key_pem.expose_secret()),
            0o600,
        ),
        ("cert.pem", leaf.clone(), 0o644),
        ("chain.pem", chain.clone(), 0o644),
        ("fullchain.pem", format!("{leaf}{chain}"), 0o644),
    ];
    let mut staged = Vec::new();
    for (name, content, mode) in &files {
        let tmp = dir.join(format!(".{name}.tmp"));
        if let Err(e) = write_synced(&tmp, content.as_bytes(), *mode) {
            // Nothing was renamed yet: the installed files are untouched. Leave no
            // half-written temporary (one may hold the private key) behind.
            let _ = std::fs::remove_file(&tmp);
            for (t, _, _) in &staged {
                let _ = std::fs::remove_file(t);
            }
            return Err(err(name)(e));
        }
        staged.push((tmp, dir.join(name), *name));
    }
    for (tmp, dest, name) in staged {
        std::fs::rename(&tmp, &dest).map_err(err(name))?;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Can the four files be installed into `dir` by this process? Creates `dir` (as the
/// install would) and writes, syncs and removes a probe file in it. Run before an order
/// is placed: a certificate that cannot be installed must not be bought (the CA refuses
/// to cancel an issued order).
pub fn probe_writable(dir: &Path) -> Result<(), InstallError> {
    let err = |file: &'static str| {
        move |source| InstallError {
            dir: dir.to_path_buf(),
            file,
            source,
        }
    };
    create_dir(dir).map_err(err("(directory)"))?;
    let probe = dir.join(".dcvd-write-probe.tmp");
    let written = write_synced(&probe, b"dcvd\n", 0o600);
    let _ = std::fs::remove_file(&probe);
    written.map_err(err("(a file in it)"))
}

/// Like [`probe_writable`] without creating anything but a probe file: the nearest
/// existing directory of `dir` must be one this process may create files in (for
/// `check-config`, which must not create the certificate's directory).
pub fn probe_creatable(dir: &Path) -> Result<(), InstallError> {
    let mut at = dir;
    let err = |source| InstallError {
        dir: dir.to_path_buf(),
        file: "(directory)",
        source,
    };
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(err(std::io::Error::other(format!(
                    "{} is not a directory",
                    at.display()
                ))));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match at.parent() {
                Some(p) => at = p,
                None => return Err(err(e)),
            },
            Err(e) => return Err(err(e)),
        }
    }
    let probe = at.join(format!(".dcvd-write-probe-{}.tmp", std::process::id()));
    let written = write_synced(&probe, b"dcvd\n", 0o600);
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| {
        err(std::io::Error::new(
            e.kind(),
            format!("cannot create files in {}: {e}", at.display()),
        ))
    })
}

fn ensure_newline(s: &str) -> String {
    let t = s.trim_end();
    format!("{t}\n")
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_synced(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The umask may have narrowed the mode; a key must never be wider than asked.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_synced(path: &Path, data: &[u8], _mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// How a deploy hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    Exited {
        code: i32,
        stderr: String,
    },
    Killed {
        signal_or_timeout: String,
        stderr: String,
    },
    NotStarted(String),
}

impl HookOutcome {
    pub fn success(&self) -> bool {
        matches!(self, HookOutcome::Exited { code: 0, .. })
    }
    pub fn describe(&self) -> String {
        match self {
            HookOutcome::Exited { code, stderr } if stderr.is_empty() => {
                format!("exited with status {code}")
            }
            HookOutcome::Exited { code, stderr } => format!("exited with status {code}: {stderr}"),
            HookOutcome::Killed {
                signal_or_timeout,
                stderr,
            } => format!("{signal_or_timeout} {stderr}").trim().to_string(),
            HookOutcome::NotStarted(e) => format!("could not be started: {e}"),
        }
    }
}

/// Run `command` (no shell) with `env`, killing it after `timeout`. Stderr is kept (last 1 KiB).
pub async fn run_hook(
    command: &[String],
    env: &[(&str, String)],
    timeout: Duration,
) -> HookOutcome {
    let Some((program, args)) = command.split_first() else {
        return HookOutcome::NotStarted("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return HookOutcome::NotStarted(format!("{program}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => HookOutcome::Killed {
            signal_or_timeout: format!(
                "killed after timeout of {}",
                humantime::format_duration(timeout)
            ),
            stderr: String::new(),
        },
        Ok(Err(e)) => HookOutcome::NotStarted(format!("{program}: {e}")),
        Ok(Ok(out)) => {
            let stderr = tail(&String::from_utf8_lossy(&out.stderr), 1024);
            match out.status.code() {
                Some(code) => HookOutcome::Exited { code, stderr },
                None => HookOutcome::Killed {
                    signal_or_timeout: "killed by a signal".into(),
                    stderr,
                },
            }
        }
    }
}

fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_four_files_key_private() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs/www");
        let key = SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----".to_string(),
        );
        write_files(&out, &key, "LEAF", &["INT\n".into(), "ROOT".into()]).unwrap();
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        assert_eq!(read("cert.pem"), "LEAF\n");
        assert_eq!(read("chain.pem"), "INT\nROOT\n");
        assert_eq!(read("fullchain.pem"), "LEAF\nINT\nROOT\n");
        assert!(read("privkey.pem").contains("PRIVATE KEY"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |f: &str| std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("privkey.pem"), 0o600);
            assert_eq!(mode("cert.pem"), 0o644);
        }
        // No temporary files left behind; a second install replaces the first.
        write_files(&out, &key, "LEAF2", &[]).unwrap();
        assert_eq!(read("fullchain.pem"), "LEAF2\n");
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_failed_write_leaves_installed_files_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("www");
        let key = SecretString::from("KEY".to_string());
        write_files(&out, &key, "OLD", &["INT".into()]).unwrap();
        // A directory where a temporary file must go makes that write fail.
        std::fs::create_dir(out.join(".chain.pem.tmp")).unwrap();
        assert!(write_files(&out, &key, "NEW", &["INT2".into()]).is_err());
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        assert_eq!(read("cert.pem"), "OLD\n");
        assert_eq!(read("fullchain.pem"), "OLD\nINT\n");
        assert!(
            !out.join(".privkey.pem.tmp").exists(),
            "key temporary left behind"
        );
        assert!(!out.join(".cert.pem.tmp").exists());
    }

    #[tokio::test]
    async fn hook_outcomes() {
        let ok = run_hook(&["true".into()], &[], Duration::from_secs(5)).await;
        assert!(ok.success());
        let fail = run_hook(
            &["sh".into(), "-c".into(), "echo broken >&2; exit 3".into()],
            &[],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            fail,
            HookOutcome::Exited {
                code: 3,
                stderr: "broken".into()
            }
        );
        let slow = run_hook(
            &["sleep".into(), "5".into()],
            &[],
            Duration::from_millis(100),
        )
        .await;
        assert!(matches!(slow, HookOutcome::Killed { .. }), "{slow:?}");
        let missing = run_hook(&["/nonexistent/hook".into()], &[], Duration::from_secs(1)).await;
        assert!(matches!(missing, HookOutcome::NotStarted(_)));
    }
}
