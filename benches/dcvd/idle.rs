//! Bench 5: idle scale. A database with 100,000 certificates, all issued and far from
//! renewal, a config listing all of them, and the real `dcvd run` binary: time to READY=1
//! (systemd notify socket), peak RSS and CPU use over a quiet minute.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cpu::pid_cpu;
use crate::{Row, quick};

const ZONE: &str = "idle.test";

pub fn run() -> Result<Vec<Row>, String> {
    let (n, window) = if quick() {
        (20_000usize, Duration::from_secs(10))
    } else {
        (100_000usize, Duration::from_secs(60))
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let config = d.join("dcvd.toml");
    let t = Instant::now();
    write_config(d, &config, n)?;
    fill_database(&d.join("dcvd.db"), n)?;
    eprintln!(
        "   setup ({n} certificates) took {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // `--dcvd-bin=PATH` measures another build (e.g. an older one for before/after).
    let bin = crate::setting("dcvd-bin").unwrap_or_else(|| env!("CARGO_BIN_EXE_dcvd").to_string());
    let bin = bin.as_str();

    // Config load + validation alone.
    let t = Instant::now();
    let out = Command::new(bin)
        .args(["--config"])
        .arg(&config)
        .arg("check-config")
        .output()
        .map_err(|e| format!("running {bin}: {e}"))?;
    let check_config = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "check-config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    let sock_path = d.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(d.join("dcvd.log")).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {bin}: {e}"))?;
    let pid = child.id();
    let ready = loop {
        let mut buf = [0u8; 4096];
        match sock.recv(&mut buf) {
            Ok(k) if String::from_utf8_lossy(&buf[..k]).contains("READY=1") => {
                break started.elapsed().as_secs_f64();
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(d.join("dcvd.log")).unwrap_or_default();
                return Err(format!("no READY=1 from dcvd: {e}; log: {log}"));
            }
        }
    };
    let rss_at_ready = status_kib(pid, "VmRSS:");
    // After READY the daemon checks every certificate once (which need an order?) and
    // says so on its STATUS line; the quiet minute starts after that.
    let settled = loop {
        let mut buf = [0u8; 4096];
        match sock.recv(&mut buf) {
            Ok(k) if String::from_utf8_lossy(&buf[..k]).contains("certificates checked") => {
                break started.elapsed().as_secs_f64();
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                return Err(format!("no start-up STATUS from dcvd: {e}"));
            }
        }
    };
    let cpu0 = pid_cpu(pid).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut rss_max_quiet = 0;
    while t0.elapsed() < window {
        std::thread::sleep(Duration::from_millis(500));
        rss_max_quiet = rss_max_quiet.max(status_kib(pid, "VmRSS:"));
    }
    let cpu = pid_cpu(pid).unwrap_or(0.0) - cpu0;
    let share = cpu / t0.elapsed().as_secs_f64();
    let hwm = status_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let mib = |k: u64| k as f64 / 1024.0;
    let b = "5 idle scale";
    Ok(vec![
        Row::new(
            b,
            &format!("{n} certs: start → READY=1"),
            format!("{ready:.2} s (check-config alone {check_config:.2} s)"),
            "≤ 1 s",
            Some(ready <= 1.0),
        ),
        Row::new(
            b,
            &format!("{n} certs: start → start-up pass over all certificates done"),
            format!("{settled:.2} s"),
            "",
            None,
        ),
        Row::new(
            b,
            &format!("{n} certs: peak RSS (VmHWM, start-up included) / RSS while idle"),
            format!(
                "{:.1} MiB / {:.1} MiB (at READY {:.1} MiB)",
                mib(hwm),
                mib(rss_max_quiet),
                mib(rss_at_ready)
            ),
            "≤ 64 MiB",
            Some(mib(hwm) <= 64.0),
        ),
        Row::new(
            b,
            &format!(
                "{n} certs: CPU over {} s idle (after the start-up pass)",
                window.as_secs()
            ),
            format!("{:.2}% of one core ({cpu:.2} CPU s)", share * 100.0),
            "≤ 1%",
            Some(share <= 0.01),
        ),
    ])
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn write_config(d: &Path, path: &Path, n: usize) -> Result<(), String> {
    std::fs::create_dir_all(d.join("secrets")).map_err(|e| e.to_string())?;
    std::fs::write(d.join("secrets/digicert.key"), "idle-key").map_err(|e| e.to_string())?;
    std::fs::write(
        d.join("secrets/tsig.key"),
        "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=",
    )
    .map_err(|e| e.to_string())?;
    let dd = d.display();
    let mut s = format!(
        r#"[daemon]
database = "{dd}/dcvd.db"
listen = "127.0.0.1:0"

[providers.digicert]
kind = "digicert"
base_url = "http://127.0.0.1:9/services/v2"
api_key_file = "{dd}/secrets/digicert.key"

[publishers.dns]
kind = "rfc2136"
server = "127.0.0.1:9"
zone = "{ZONE}"
tsig_key_name = "idle"
tsig_algorithm = "hmac-sha256"
tsig_secret_file = "{dd}/secrets/tsig.key"

[dns.nameserver_overrides]
"{ZONE}" = ["127.0.0.1:9"]
"#
    );
    for i in 0..n {
        let _ = write!(
            s,
            "\n[[certificates]]\nname = \"c{i}\"\nprovider = \"digicert\"\nproduct = \"ssl_dv_geotrust\"\n\
             common_name = \"c{i}.{ZONE}\"\ndcv = [\"dns-txt\"]\npublisher = \"dns\"\noutput_dir = \"{dd}/certs/c{i}\"\n"
        );
    }
    std::fs::write(path, s).map_err(|e| e.to_string())
}

/// Every certificate issued (not after in a year), written straight into the database.
fn fill_database(db: &Path, n: usize) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let store = dcvd::store::Store::open(db)
            .await
            .map_err(|e| e.to_string())?;
        let now = dcvd::clock::Clock::now(&dcvd::clock::SystemClock).timestamp_millis();
        let not_after = now + 365 * 86_400_000;
        let seq = format!(
            "WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x < {})",
            n - 1
        );
        let q1 = format!(
            "{seq} INSERT INTO certificates (name, provider, names_json, issued_order_id, not_after, created_at, updated_at)
             SELECT 'c' || x, 'digicert', '[\"c' || x || '.{ZONE}\"]', x + 1, {not_after}, {now}, {now} FROM s"
        );
        let q2 = format!(
            "{seq} INSERT INTO orders (id, certificate, provider, state, reference, names_json, key_type,
               private_key_pem, csr_pem, csr_der, next_attempt_at, not_after, created_at, updated_at)
             SELECT x + 1, 'c' || x, 'digicert', 'issued', 'ref' || x, '[\"c' || x || '.{ZONE}\"]', 'ecdsa-p256',
               '', '', x'', {now}, {not_after}, {now}, {now} FROM s"
        );
        for q in [q1, q2] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(q))
                .execute(store.pool())
                .await
                .map_err(|e| e.to_string())?;
        }
        store.pool().close().await;
        Ok(())
    })
}
