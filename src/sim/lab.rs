//! The lab: one builder of the simulated world the demo, the tests and the benches run
//! dcvd against. In-process authoritative DNS (a primary taking TSIG-signed RFC 2136
//! updates and optional secondaries), the DigiCert and Sectigo simulators validating DCV
//! at the primary, Pebble when asked, the secret files, and the config TEXT for all of
//! them.
//!
//! `sim` may not import `config` (the layering puts config above sim's dependencies), so
//! the lab stops at the text: callers load it with `config::load` (secrets, validation),
//! exactly as `dcvd check-config` and the daemon would.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::digicert::{self, DigicertSim, DigicertSimOptions};
use super::dns::{DnsSim, TsigAlgorithm, ZoneSpec};
use super::pebble::{Pebble, PebbleOptions};
use super::sectigo::{self, SectigoSim, SectigoSimOptions};

/// A CA simulator of the lab and the `[providers.<name>]` block that points at it.
#[derive(Debug, Clone)]
pub struct LabCa<O> {
    /// The provider's name in the config.
    pub name: String,
    /// Simulator options; the lab sets `nameserver` to the primary.
    pub options: O,
    /// More lines for the provider block, e.g. `poll_interval = "1s"`.
    pub settings: String,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Where the secret files (`secrets/`) and the config go; the caller owns it.
    pub dir: PathBuf,
    /// Zones every DNS server serves.
    pub zones: Vec<ZoneSpec>,
    /// Zones only the primary serves (e.g. where delegated tokens go).
    pub primary_zones: Vec<ZoneSpec>,
    /// DNS servers for `zones`: the primary and `dns_servers - 1` secondaries (at least 1).
    pub dns_servers: usize,
    /// TSIG key name for updates, without trailing dot (HMAC-SHA256, random secret).
    pub tsig_key_name: String,
    /// `zone` of `[publishers.dns]`; `None`: the publisher finds the zone itself.
    pub publisher_zone: Option<String>,
    pub digicert: Option<LabCa<DigicertSimOptions>>,
    pub sectigo: Option<LabCa<SectigoSimOptions>>,
    /// Start Pebble (ACME) with http-01 sent to this port; `settings` as for the CAs.
    pub pebble: Option<LabCa<u16>>,
}

impl LabSpec {
    /// A lab in `dir` for `zone` on one DNS server, no CA simulator yet.
    pub fn new(dir: &Path, zone: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            zones: vec![ZoneSpec::new(zone)],
            primary_zones: Vec::new(),
            dns_servers: 1,
            tsig_key_name: "dcvd-lab".into(),
            publisher_zone: None,
            digicert: None,
            sectigo: None,
            pebble: None,
        }
    }
}

/// The running lab; everything stops when it is dropped.
pub struct Lab {
    pub dir: PathBuf,
    /// The primary first.
    pub dns: Vec<DnsSim>,
    pub digicert: Option<DigicertSim>,
    pub sectigo: Option<SectigoSim>,
    pub pebble: Option<Pebble>,
    /// The config for everything above (providers, `[publishers.dns]`, nameservers).
    infrastructure: String,
}

#[derive(Debug, thiserror::Error)]
#[error("lab: {0}")]
pub struct LabError(String);

fn err(what: &str) -> impl Fn(String) -> LabError + '_ {
    move |e| LabError(format!("{what}: {e}"))
}

impl Lab {
    pub async fn start(spec: LabSpec) -> Result<Lab, LabError> {
        let d = spec.dir.display().to_string();
        let secrets = spec.dir.join("secrets");
        std::fs::create_dir_all(&secrets).map_err(|e| err("creating secrets/")(e.to_string()))?;
        let tsig: [u8; 32] = rand::random();
        let b64 = base64::engine::general_purpose::STANDARD;
        write_secret(&secrets, "tsig.key", &base64::Engine::encode(&b64, tsig))?;
        let key_name = format!("{}.", spec.tsig_key_name.trim_end_matches('.'));
        let mut dns = Vec::new();
        for i in 0..spec.dns_servers.max(1) {
            let mut zones = spec.zones.clone();
            if i == 0 {
                zones.extend(spec.primary_zones.iter().cloned());
            }
            let server = DnsSim::start(&zones, Some((&key_name, TsigAlgorithm::HmacSha256, &tsig)))
                .await
                .map_err(err("starting a DNS server"))?;
            dns.push(server);
        }
        let primary = dns[0].addr();
        let mut text = String::new();
        let digicert = match spec.digicert {
            None => None,
            Some(ca) => {
                let key = ca.options.api_keys.first().cloned().unwrap_or_default();
                write_secret(&secrets, &format!("{}.key", ca.name), &key)?;
                let sim = digicert::start(DigicertSimOptions {
                    nameserver: Some(primary),
                    ..ca.options
                })
                .await
                .map_err(|e| LabError(e.to_string()))?;
                let _ = write!(
                    text,
                    "[providers.{n}]\nkind = \"digicert\"\nbase_url = \"{u}\"\n\
                     api_key_file = \"{d}/secrets/{n}.key\"\n{s}\n",
                    n = ca.name,
                    u = sim.base_url(),
                    s = ca.settings.trim_end(),
                );
                Some(sim)
            }
        };
        let sectigo = match spec.sectigo {
            None => None,
            Some(ca) => {
                write_secret(
                    &secrets,
                    &format!("{}.pass", ca.name),
                    &ca.options.login_password,
                )?;
                let login = ca.options.login_name.clone();
                let sim = sectigo::start(SectigoSimOptions {
                    nameserver: Some(primary),
                    ..ca.options
                })
                .await
                .map_err(|e| LabError(e.to_string()))?;
                let _ = write!(
                    text,
                    "[providers.{n}]\nkind = \"sectigo\"\nbase_url = \"{u}\"\n\
                     login_name = \"{login}\"\nlogin_password_file = \"{d}/secrets/{n}.pass\"\n{s}\n",
                    n = ca.name,
                    u = sim.base_url(),
                    s = ca.settings.trim_end(),
                );
                Some(sim)
            }
        };
        let pebble = match spec.pebble {
            None => None,
            Some(ca) => {
                let p = Pebble::start(
                    &spec.dir.join("pebble"),
                    &PebbleOptions {
                        dns: primary,
                        http_port: ca.options,
                        eab: Vec::new(),
                    },
                )
                .await
                .map_err(err("starting pebble"))?;
                let _ = write!(
                    text,
                    "[providers.{n}]\nkind = \"acme\"\ndirectory_url = \"{u}\"\n\
                     ca_file = \"{root}\"\nterms_accepted = true\n{s}\n",
                    n = ca.name,
                    u = p.directory_url,
                    root = p.tls_root.display(),
                    s = ca.settings.trim_end(),
                );
                Some(p)
            }
        };
        let _ = write!(
            text,
            "[publishers.dns]\nkind = \"rfc2136\"\nserver = \"{primary}\"\n{zone}\
             tsig_key_name = \"{k}\"\ntsig_algorithm = \"hmac-sha256\"\n\
             tsig_secret_file = \"{d}/secrets/tsig.key\"\n\n[dns.nameserver_overrides]\n",
            zone = spec
                .publisher_zone
                .map(|z| format!("zone = \"{z}\"\n"))
                .unwrap_or_default(),
            k = spec.tsig_key_name.trim_end_matches('.'),
        );
        let quoted = |servers: &[&DnsSim]| {
            servers
                .iter()
                .map(|s| format!("\"{}\"", s.addr()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let all: Vec<&DnsSim> = dns.iter().collect();
        for z in &spec.zones {
            let _ = writeln!(text, "\"{}\" = [{}]", z.origin, quoted(&all));
        }
        for z in &spec.primary_zones {
            let _ = writeln!(text, "\"{}\" = [{}]", z.origin, quoted(&all[..1]));
        }
        Ok(Lab {
            dir: spec.dir,
            dns,
            digicert,
            sectigo,
            pebble,
            infrastructure: text,
        })
    }

    /// The primary DNS server (takes the updates; the CAs look here).
    pub fn primary(&self) -> SocketAddr {
        self.dns[0].addr()
    }

    /// The whole config: `rest` (`[daemon]`, `[dns]` settings, certificates, more
    /// publishers…) followed by the lab's providers, `[publishers.dns]` and
    /// `[dns.nameserver_overrides]`. `rest` may not define those tables itself.
    pub fn config_text(&self, rest: &str) -> String {
        format!(
            "{}\n\n# The lab (sim::lab)\n{}",
            rest.trim_end(),
            self.infrastructure
        )
    }

    /// Write [`Lab::config_text`] to `dcvd.toml` in the lab's directory; its path.
    pub fn write_config(&self, rest: &str) -> Result<PathBuf, LabError> {
        let path = self.dir.join("dcvd.toml");
        std::fs::write(&path, self.config_text(rest))
            .map_err(|e| LabError(format!("writing {}: {e}", path.display())))?;
        Ok(path)
    }
}

/// Write `secrets/<name>` readable by the owner only.
pub fn write_secret(secrets: &Path, name: &str, value: &str) -> Result<(), LabError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let path = secrets.join(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| LabError(format!("writing {}: {e}", path.display())))
}

/// A directory removed (with everything in it) when this is dropped.
pub struct TempDirGuard(PathBuf);

impl TempDirGuard {
    /// A new directory `<tmp>/<prefix>-<pid>-<random>`.
    pub fn new(prefix: &str) -> Result<Self, LabError> {
        let d = std::env::temp_dir().join(format!(
            "{prefix}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d)
            .map_err(|e| LabError(format!("creating {}: {e}", d.display())))?;
        Ok(Self(d))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_config_names_every_server_and_the_secrets_are_written() {
        let tmp = TempDirGuard::new("dcvd-lab-test").unwrap();
        let mut spec = LabSpec::new(tmp.path(), "example.test");
        spec.dns_servers = 2;
        spec.primary_zones.push(ZoneSpec::new("dcv.example.net"));
        spec.digicert = Some(LabCa {
            name: "dc".into(),
            options: DigicertSimOptions {
                api_keys: vec!["k1".into()],
                ..Default::default()
            },
            settings: "poll_interval = \"1s\"".into(),
        });
        let lab = Lab::start(spec).await.unwrap();
        let text = lab.config_text("[daemon]\nconcurrency = 2");
        let (p, s) = (lab.dns[0].addr(), lab.dns[1].addr());
        assert!(text.starts_with("[daemon]\nconcurrency = 2\n"), "{text}");
        assert!(
            text.contains(&format!("\"example.test\" = [\"{p}\", \"{s}\"]")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\"dcv.example.net\" = [\"{p}\"]")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "base_url = \"{}\"",
            lab.digicert.as_ref().unwrap().base_url()
        )));
        assert!(!text.contains("k1"), "secrets go to files: {text}");
        let key = std::fs::read_to_string(tmp.path().join("secrets/dc.key")).unwrap();
        assert_eq!(key, "k1");
        let path = tmp.path().to_path_buf();
        drop(lab);
        drop(tmp);
        assert!(!path.exists(), "the guard removes its directory");
    }
}
