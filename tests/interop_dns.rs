//! Interop: the rfc2136 publisher and the propagation check against real BIND 9 and Knot,
//! started unprivileged on 127.0.0.1 high ports, cross-checked with `dig`.
//!
//! Needs `named`, `knotd` and `dig` (Debian: `apt-get install -y bind9 bind9-dnsutils knot
//! knot-dnsutils`). Run with `cargo test --test interop_dns -- --ignored` (CI does).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use dcvd::ca::ErrorKind;
use dcvd::config::{CheckMode, DnsConfig, HttpCheckConfig, PublisherConfig, Rfc2136Config};
use dcvd::dcv::check::{self as dnscheck, PropagationCheck, ServerOutcome};
use dcvd::dcv::publish::{self, Publisher};
use dcvd::model::{Challenge, ChallengeKind};
use hickory_proto::rr::RecordType;

const ZONE: &str = "example.test";
const NAME: &str = "_dnsauth.www.example.test";

fn need(binary: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "`{binary}` is not installed; the interop tests need BIND and Knot: \
         apt-get install -y bind9 bind9-dnsutils knot knot-dnsutils"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A free port on 127.0.0.1 for both UDP and TCP (released for the server to take).
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair");
}

/// Kills the server when the test ends, also on panic.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program args` (as nobody when we are root) in `dir`.
fn spawn(dir: &Path, program: &Path, args: &[&str]) -> Running {
    let mut cmd = if is_root() {
        let st = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "chown of the test directory failed");
        let mut c = Command::new(need("setpriv"));
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Running(cmd.spawn().expect("start the DNS server"))
}

fn workdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    d
}

fn zone_file(port_hint: u16) -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 60\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n\
         @ IN NS ns1.{ZONE}.\nns1 IN A 127.0.0.1\n; port {port_hint}\n"
    )
}

/// Waits until the server answers an SOA query (readiness poll, not a fixed sleep).
async fn wait_ready(server: &mut Running, addr: SocketAddr) {
    let zone = dcvd::dcv::dns::query::fqdn(ZONE).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the DNS server exited during start-up: {status}");
        }
        let r = dcvd::dcv::dns::query::query(
            addr,
            &zone,
            RecordType::SOA,
            false,
            Duration::from_millis(200),
        )
        .await;
        if r.is_ok_and(|rep| !rep.answers.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the DNS server at {addr} did not answer within 15 s");
}

fn publisher(addr: SocketAddr, secret_b64: &str, transport: &str) -> std::sync::Arc<dyn Publisher> {
    publish::build(
        "interop",
        &PublisherConfig::Rfc2136(Rfc2136Config {
            server: addr.to_string(),
            zone: None,
            tsig_key_name: "dcv-key".into(),
            tsig_algorithm: "hmac-sha256".into(),
            tsig_secret: Some(secret_b64.to_string().into()),
            tsig_secret_file: None,
            transport: transport.into(),
            ttl: 60,
            timeout: Duration::from_secs(5),
        }),
    )
    .unwrap()
}

fn checker(addr: SocketAddr) -> std::sync::Arc<dyn PropagationCheck> {
    let mut overrides = BTreeMap::new();
    overrides.insert(ZONE.to_string(), vec![addr.to_string()]);
    let cfg = DnsConfig {
        check: CheckMode::Authoritative,
        resolvers: vec![addr.to_string()],
        query_timeout: Duration::from_secs(2),
        nameserver_overrides: overrides,
        ..DnsConfig::default()
    };
    dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap()
}

fn dig_txt(addr: SocketAddr, name: &str) -> Vec<String> {
    let out = Command::new(need("dig"))
        .args([
            "+short",
            "+norec",
            "-p",
            &addr.port().to_string(),
            &format!("@{}", addr.ip()),
            name,
            "TXT",
        ])
        .output()
        .expect("run dig");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_matches('"').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn txt(value: &str) -> Challenge {
    Challenge {
        kind: ChallengeKind::DnsTxt,
        name: NAME.into(),
        path: None,
        value: value.into(),
    }
}

/// The same scenario for every server: publish (TCP and UDP), check, dig, cleanup of only
/// our value, wrong key refused.
async fn scenario(addr: SocketAddr, secret_b64: &str) {
    let check = checker(addr);
    for transport in ["tcp", "udp"] {
        let other = publisher(addr, secret_b64, transport);
        other
            .present(&txt("other-value"))
            .await
            .expect("present other");
        let p = publisher(addr, secret_b64, transport);
        let ours = txt(&format!("token-{transport}"));
        assert!(!check.check(&ours).await.unwrap().present);
        p.present(&ours)
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        let r = check.check(&ours).await.unwrap();
        assert!(r.present, "{transport}: {}", r.summary());
        assert_eq!(
            dig_txt(addr, NAME),
            vec!["other-value".to_string(), format!("token-{transport}")]
        );

        p.cleanup(&ours).await.unwrap();
        p.cleanup(&ours).await.expect("cleanup is idempotent");
        let r = check.check(&ours).await.unwrap();
        assert_eq!(
            r.servers[0].outcome,
            ServerOutcome::OtherValue(vec!["other-value".into()])
        );
        assert_eq!(dig_txt(addr, NAME), vec!["other-value".to_string()]);
        other.cleanup(&txt("other-value")).await.unwrap();
        assert!(dig_txt(addr, NAME).is_empty());
    }
    let wrong =
        base64::engine::general_purpose::STANDARD.encode(b"definitely-not-the-key-0123456789");
    let err = publisher(addr, &wrong, "tcp")
        .present(&txt("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(err.detail.contains("TSIG"), "{err}");
    assert!(
        dig_txt(addr, NAME).is_empty(),
        "nothing was written with the wrong key"
    );
}

fn secret() -> String {
    let raw: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[tokio::test]
#[ignore = "needs BIND/Knot; run with --ignored (CI does)"]
async fn bind9_accepts_tsig_updates_and_check_sees_them() {
    let named = need("named");
    need("dig");
    let dir = workdir();
    let d = dir.path().display().to_string();
    let port = free_port();
    let secret = secret();
    std::fs::write(
        dir.path().join("key.conf"),
        format!("key \"dcv-key\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("example.test.zone"), zone_file(port)).unwrap();
    std::fs::write(
        dir.path().join("named.conf"),
        format!(
            "include \"{d}/key.conf\";\n\
             options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\";\n\
               managed-keys-directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n\
               recursion no; dnssec-validation no; allow-query {{ any; }}; }};\n\
             controls {{ }};\n\
             zone \"{ZONE}\" {{ type primary; file \"{d}/example.test.zone\";\n\
               update-policy {{ grant dcv-key zonesub TXT CNAME; }}; }};\n"
        ),
    )
    .unwrap();
    let conf = format!("{d}/named.conf");
    let mut server = spawn(dir.path(), &named, &["-g", "-n", "1", "-c", &conf]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_ready(&mut server, addr).await;
    scenario(addr, &secret).await;
}

#[tokio::test]
#[ignore = "needs BIND/Knot; run with --ignored (CI does)"]
async fn knot_accepts_tsig_updates_and_check_sees_them() {
    let knotd = need("knotd");
    need("dig");
    let dir = workdir();
    let d = dir.path().display().to_string();
    let port = free_port();
    let secret = secret();
    std::fs::write(dir.path().join("example.test.zone"), zone_file(port)).unwrap();
    std::fs::write(
        dir.path().join("knot.conf"),
        format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             database:\n    storage: \"{d}\"\n\
             key:\n  - id: dcv-key\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             acl:\n  - id: dcv_update\n    key: dcv-key\n    action: update\n    update-type: [TXT, CNAME]\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    file: \"%s.zone\"\n    zonefile-sync: -1\n    \
             zonefile-load: difference-no-serial\n    journal-content: all\n\
             zone:\n  - domain: {ZONE}\n    acl: dcv_update\n"
        ),
    )
    .unwrap();
    let conf = format!("{d}/knot.conf");
    let mut server = spawn(dir.path(), &knotd, &["-c", &conf]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_ready(&mut server, addr).await;
    scenario(addr, &secret).await;
}
