//! `webroot` publisher: writes HTTP token files under `<path>/.well-known/pki-validation/`
//! (DigiCert, Sectigo) or `<path>/.well-known/acme-challenge/` (ACME http-01),
//! atomically (temp file + rename, 0644), and removes them on cleanup. `{host}` in `path`
//! stands for the host name being validated.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{PublishError, Publisher};
use crate::config::WebrootConfig;
use crate::model::ErrorKind;
use crate::model::{Challenge, ChallengeKind};

const PREFIX: &str = "/.well-known/pki-validation/";
/// ACME http-01 (RFC 8555 §8.3).
const ACME_PREFIX: &str = "/.well-known/acme-challenge/";

#[derive(Debug)]
pub struct WebrootPublisher {
    name: String,
    root: PathBuf,
}

/// The document root for `host`: `path` with `{host}` replaced, for web servers whose
/// virtual hosts each have their own root (and so that DigiCert's fixed file name does
/// not collide between hosts validating at the same time).
pub fn root_for(root: &Path, host: &str) -> Result<PathBuf, String> {
    let text = root.to_string_lossy();
    if !text.contains("{host}") {
        return Ok(root.to_path_buf());
    }
    let plain = !host.is_empty()
        && !host.starts_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !plain {
        return Err(format!(
            "host name `{host}` cannot be used as a directory name"
        ));
    }
    Ok(PathBuf::from(text.replace("{host}", host)))
}

/// The file for a token path, refusing anything but one plain file name under
/// `/.well-known/pki-validation/` or `/.well-known/acme-challenge/`.
pub fn token_file(root: &Path, url_path: &str) -> Result<PathBuf, String> {
    let (file, dir) = match url_path.strip_prefix(PREFIX) {
        Some(f) => (f, "pki-validation"),
        None => (
            url_path.strip_prefix(ACME_PREFIX).ok_or_else(|| {
                format!(
                    "token path `{url_path}` is not under {PREFIX} or {ACME_PREFIX}; refusing to write it"
                )
            })?,
            "acme-challenge",
        ),
    };
    let ok = !file.is_empty()
        && file != "."
        && file != ".."
        && !file.contains(['/', '\\', '\0'])
        && !file.starts_with('.');
    if !ok || url_path.contains("..") {
        return Err(format!(
            "token path `{url_path}` must name one plain file in /.well-known/{dir}/ (no `..`, no sub-directories)"
        ));
    }
    Ok(root.join(".well-known").join(dir).join(file))
}

fn write_atomically(target: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("token file has no parent directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.dcvd-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(body)?;
        // The umask may have narrowed the mode; the web server must be able to read it.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl WebrootPublisher {
    pub fn new(name: &str, cfg: &WebrootConfig) -> Result<Self, String> {
        if cfg.path.as_os_str().is_empty() || !cfg.path.is_absolute() {
            return Err(format!(
                "publishers.{name}.path must be an absolute directory (the web server's document root)"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            root: cfg.path.clone(),
        })
    }

    fn target(&self, action: &'static str, c: &Challenge) -> Result<PathBuf, PublishError> {
        let err = |detail: String| PublishError {
            publisher: self.name.clone(),
            action,
            what: format!("HTTP token {}", c.location()),
            detail,
            kind: ErrorKind::Permanent,
        };
        if !matches!(c.kind, ChallengeKind::Http | ChallengeKind::Https) {
            return Err(err(format!(
                "webroot publishes HTTP files only, not {}",
                c.kind
            )));
        }
        let path = c
            .path
            .as_deref()
            .ok_or_else(|| err("the challenge has no URL path".into()))?;
        let root = root_for(&self.root, &c.name).map_err(err)?;
        token_file(&root, path).map_err(err)
    }

    fn io_error(&self, action: &'static str, file: &Path, e: std::io::Error) -> PublishError {
        let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
            ErrorKind::Permanent
        } else {
            ErrorKind::Transient
        };
        PublishError {
            publisher: self.name.clone(),
            action,
            what: format!("file {}", file.display()),
            detail: e.to_string(),
            kind,
        }
    }
}

#[async_trait]
impl Publisher for WebrootPublisher {
    fn name(&self) -> &str {
        &self.name
    }

    fn can_publish(&self, challenge: &Challenge) -> bool {
        matches!(challenge.kind, ChallengeKind::Http | ChallengeKind::Https)
    }

    async fn present(&self, c: &Challenge) -> Result<(), PublishError> {
        let file = self.target("present", c)?;
        let body = c.value.clone().into_bytes();
        let f = file.clone();
        let r = tokio::task::spawn_blocking(move || write_atomically(&f, &body))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        r.map_err(|e| self.io_error("present", &file, e))?;
        tracing::info!(publisher = %self.name, file = %file.display(), "token file written");
        Ok(())
    }

    async fn cleanup(&self, c: &Challenge) -> Result<(), PublishError> {
        let file = self.target("cleanup", c)?;
        // Another order may have replaced the file since (DigiCert's name is fixed per
        // host): remove it only while it still holds our token.
        match tokio::fs::read_to_string(&file).await {
            Ok(body) if body != c.value => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            _ => {}
        }
        match tokio::fs::remove_file(&file).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("cleanup", &file, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{root_for, token_file};
    use std::path::Path;

    #[test]
    fn host_placeholder_picks_a_root_per_host() {
        let r = root_for(Path::new("/srv/{host}/htdocs"), "www.example.com").unwrap();
        assert_eq!(r, Path::new("/srv/www.example.com/htdocs"));
        assert_eq!(
            root_for(Path::new("/var/www"), "a.example").unwrap(),
            Path::new("/var/www")
        );
        for bad in ["..", "../etc", "a/b", ""] {
            assert!(root_for(Path::new("/srv/{host}"), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn acme_http01_tokens_go_under_acme_challenge() {
        let root = Path::new("/srv/www");
        assert_eq!(
            token_file(
                root,
                "/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
            )
            .unwrap(),
            Path::new(
                "/srv/www/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
            )
        );
    }

    #[test]
    fn only_plain_files_under_pki_validation_are_accepted() {
        let root = Path::new("/srv/www");
        assert_eq!(
            token_file(root, "/.well-known/pki-validation/fileauth.txt").unwrap(),
            Path::new("/srv/www/.well-known/pki-validation/fileauth.txt")
        );
        for bad in [
            "/.well-known/pki-validation/../../etc/passwd",
            "/.well-known/pki-validation/a/b.txt",
            "/.well-known/pki-validation/",
            "/.well-known/pki-validation/..",
            "/.well-known/acme-challenge/../x",
            "/.well-known/acme-challenge/a/b",
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/.hidden",
            "/.well-known/acme-challengex",
            "/etc/passwd",
            "/.well-known/pki-validation/.hidden",
        ] {
            assert!(token_file(root, bad).is_err(), "{bad}");
        }
    }
}
