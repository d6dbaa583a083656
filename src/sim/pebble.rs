//! Runs Let's Encrypt's Pebble ACME test server (Debian package `pebble`) on loopback for
//! the interop tests, the demo and the race: a throwaway TLS CA made with rcgen, free
//! ports, `-dnsserver` at our DNS server, validation sleeps off. Killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A running Pebble.
pub struct Pebble {
    child: tokio::process::Child,
    /// `https://127.0.0.1:<port>/dir`.
    pub directory_url: String,
    /// `https://127.0.0.1:<port>` of the management API (`/roots/0`, `/intermediates/0`).
    pub management_url: String,
    /// PEM root that signed Pebble's HTTPS certificate: the ACME client's `ca_file`.
    pub tls_root: PathBuf,
    /// Pebble's own output.
    pub log: PathBuf,
}

/// How to start Pebble.
#[derive(Debug, Clone)]
pub struct PebbleOptions {
    /// Where Pebble resolves names (A, TXT, CAA): our authoritative DNS server.
    pub dns: SocketAddr,
    /// Port Pebble connects to for http-01 (on the address the name resolves to).
    pub http_port: u16,
    /// External Account Binding keys (kid, base64url HMAC key); required when non-empty.
    pub eab: Vec<(String, String)>,
}

/// True when a `pebble` binary is on PATH.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("pebble").is_file()))
}

/// A free TCP port on 127.0.0.1 (bound, then released: Pebble needs numbers in its config).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn tls_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let e = |e: rcgen::Error| format!("making Pebble's TLS certificate: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.distinguished_name
        .push(DnType::CommonName, "dcvd Pebble TLS root");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let root = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(e)?).map_err(e)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(e)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().map_err(e)?;
    let cert = leaf.signed_by(&key, &root).map_err(e)?;
    let paths = (
        dir.join("tls-root.pem"),
        dir.join("tls-cert.pem"),
        dir.join("tls-key.pem"),
    );
    let w = |p: &PathBuf, s: String| {
        std::fs::write(p, s).map_err(|e| format!("writing {}: {e}", p.display()))
    };
    w(&paths.0, root.pem())?;
    w(&paths.1, cert.pem())?;
    w(&paths.2, key.serialize_pem())?;
    Ok(paths)
}

impl Pebble {
    /// Start Pebble with its files in `dir` and wait (≤ 20 s) until it answers.
    pub async fn start(dir: &Path, opts: &PebbleOptions) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let (root, cert, key) = tls_files(dir)?;
        let (port, mgmt, tls) = (free_port()?, free_port()?, free_port()?);
        let eab: serde_json::Map<String, serde_json::Value> = opts
            .eab
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": opts.http_port,
            "tlsPort": tls,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": !eab.is_empty(),
            "externalAccountMACKeys": eab,
        }});
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string())
            .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        let log = dir.join("pebble.log");
        let out =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(opts.dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting pebble: {e} (install the Debian package `pebble`)"))?;
        let pebble = Self {
            child,
            directory_url: format!("https://127.0.0.1:{port}/dir"),
            management_url: format!("https://127.0.0.1:{mgmt}"),
            tls_root: root,
            log,
        };
        pebble.wait_ready().await?;
        Ok(pebble)
    }

    /// An HTTPS client trusting Pebble's TLS root.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let pem = std::fs::read(&self.tls_root)
            .map_err(|e| format!("reading {}: {e}", self.tls_root.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: {e}", self.tls_root.display()))?;
        super::server::client_builder()
            .tls_certs_only(roots)
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let client = self.client()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(&self.directory_url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!(
                    "pebble did not answer at {} within 20 s; its log:\n{log}",
                    self.directory_url
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The PEM root of the chain Pebble issues certificates under (management API).
    pub async fn issuing_root(&self) -> Result<String, String> {
        let r = self
            .client()?
            .get(format!("{}/roots/0", self.management_url))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        r.text().await.map_err(|e| e.to_string())
    }

    /// Stop Pebble now (also done on drop).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
