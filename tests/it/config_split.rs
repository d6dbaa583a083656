//! A configuration split over files (issue 14 item 2): `dcvd check-config` on a main
//! file with `[defaults]` and `include = ["certificates.d/*.toml"]` lists the files it
//! read and names the file and the certificate in every error; `dcvd run` takes added,
//! changed and removed files on SIGHUP and refuses a broken one, keeping the old config.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::kill;

use base64::Engine as _;
use dcvd::sim::dns::{DnsSim, TsigAlgorithm, ZoneSpec};

const KEY: [u8; 32] = [9u8; 32];

/// The main file: daemon, one DigiCert provider, one RFC 2136 publisher, defaults for
/// every certificate key a certificate file leaves out, and the include.
fn main_file(d: &str, digicert_url: &str, ns: &str) -> String {
    format!(
        r#"
include = ["certificates.d/*.toml"]

[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
log_format = "json"
shutdown_timeout = "5s"

[defaults]
provider = "dc"
product = "ssl_dv_geotrust"
dcv = ["dns-txt"]
publisher = "dns"
output_dir = "{d}/certs/{{name}}"

[providers.dc]
kind = "digicert"
base_url = "{digicert_url}"
api_key_file = "{d}/dc.key"
poll_interval = "200ms"

[publishers.dns]
kind = "rfc2136"
server = "{ns}"
tsig_key_name = "dcvd-key"
tsig_secret = "{b64}"

[dns]
poll_interval = "100ms"
[dns.nameserver_overrides]
"example.test" = ["{ns}"]
"#,
        b64 = base64::engine::general_purpose::STANDARD.encode(KEY),
    )
}

/// A certificate file holding one `[[certificates]]` with only its own keys.
fn cert(name: &str, extra: &str) -> String {
    format!("[[certificates]]\nname = \"{name}\"\ncommon_name = \"{name}.example.test\"\n{extra}\n")
}

/// A tree under a temporary directory: `dcvd.toml` and `certificates.d/<file>`.
fn tree(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("dc.key"), "dc-key").unwrap();
    std::fs::write(
        dir.path().join("dcvd.toml"),
        main_file(&d, "http://127.0.0.1:9/services/v2", "127.0.0.1:53"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("certificates.d")).unwrap();
    for (name, text) in files {
        write(&dir.path().join("certificates.d").join(name), text);
    }
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// `dcvd check-config` on `dir/dcvd.toml`: exit code, stdout, stderr.
fn check_config(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = crate::support::dcvd_command(&dir.join("dcvd.toml"))
        .arg("check-config")
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_reads_the_included_files_and_lists_them() {
    let dir = tree(&[
        ("shop.toml", cert("shop", "")),
        (
            "api.toml",
            cert("api", "") + &cert("www", "renew_before = \"20d\""),
        ),
    ]);
    let (code, out, err) = check_config(dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    let d = dir.path();
    let inc = d.join("certificates.d");
    assert!(
        out.contains("valid (3 certificates, 1 providers, 1 publishers)"),
        "{out}"
    );
    // One line, the main file first, then the included files sorted.
    let listed = format!(
        "read 3 files: {}, {}, {}",
        d.join("dcvd.toml").display(),
        inc.join("api.toml").display(),
        inc.join("shop.toml").display()
    );
    assert!(
        out.lines().any(|l| l == listed),
        "{listed:?} not in:\n{out}"
    );

    let (code, out, _) = check_config(d, &["--verbose"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == "read 3 files:"), "{out}");
    for line in [
        format!("  {}: 0 certificates", d.join("dcvd.toml").display()),
        format!("  {}: 2 certificates", inc.join("api.toml").display()),
        format!("  {}: 1 certificate", inc.join("shop.toml").display()),
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }

    // An empty certificates.d (a new host) is valid, with a warning.
    let empty = tree(&[]);
    let (code, out, err) = check_config(empty.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid (0 certificates"), "{out}");
    assert!(
        err.contains("warning: include[0]: `certificates.d/*.toml` matches no file"),
        "{err}"
    );
}

#[test]
fn check_config_errors_name_the_file_and_the_certificate() {
    let dir = tree(&[
        ("a.toml", cert("shop", "")),
        (
            "b.toml",
            cert("shop", "") + &cert("cname", "dcv = [\"dns-cname\"]\npublisher = \"nope\""),
        ),
        ("c.toml", cert("tpl", "output_dir = \"/srv/{domain}/tls\"")),
        (
            "d.toml",
            cert("d", "") + "[providers.other]\nkind = \"acme\"\n",
        ),
    ]);
    let inc = dir.path().join("certificates.d");
    let f = |n: &str| inc.join(n).display().to_string();
    let (code, out, err) = check_config(dir.path(), &[]);
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        // A duplicate across files names both files.
        format!(
            "{}: certificate \"shop\": name: `shop` is already the name of certificates[0] in {}; this is certificates[0] in {}",
            f("b.toml"),
            f("a.toml"),
            f("b.toml")
        ),
        format!(
            "{}: certificate \"cname\": publisher: names publisher `nope`, which is not defined",
            f("b.toml")
        ),
        format!(
            "{}: certificate \"tpl\": output_dir: `/srv/{{domain}}/tls` uses the placeholder {{domain}}",
            f("c.toml")
        ),
        format!(
            "{}: providers: an included file holds only [[certificates]] tables",
            f("d.toml")
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains("certificates[2]"),
        "indexes across files:\n{err}"
    );

    // A literal include that does not exist is an error naming it.
    let main = dir.path().join("dcvd.toml");
    let text = std::fs::read_to_string(&main).unwrap().replacen(
        "include = [\"certificates.d/*.toml\"]",
        "include = [\"certificates.d/a.toml\", \"extra.toml\"]",
        1,
    );
    write(&main, &text);
    let (code, _, err) = check_config(dir.path(), &[]);
    assert_eq!(code, 2);
    let want = format!(
        "include[1]: `{}` does not exist",
        dir.path().join("extra.toml").display()
    );
    assert!(err.contains(&want), "missing {want:?} in:\n{err}");

    // A defaults template with an unknown placeholder is reported once, at its key.
    let text = text
        .replacen("\"extra.toml\"", "\"certificates.d/a.toml\"", 1)
        .replacen("/certs/{name}\"", "/certs/{host}\"", 1);
    write(&main, &text);
    let (code, _, err) = check_config(dir.path(), &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err.matches("uses the placeholder {host}").count(),
        1,
        "one problem for the defaults, none per certificate:\n{err}"
    );
    assert!(
        err.contains("defaults.output_dir: `") && err.contains("the only placeholder is {name}"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_takes_added_changed_and_removed_files_and_refuses_a_broken_one() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dns = DnsSim::start(
        &[ZoneSpec::new("example.test")],
        Some(("dcvd-key.", TsigAlgorithm::HmacSha256, &KEY[..])),
    )
    .await
    .unwrap();
    let sim = dcvd::sim::digicert::start(dcvd::sim::digicert::DigicertSimOptions {
        api_keys: vec!["dc-key".into()],
        nameserver: Some(dns.addr()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tree(&[("www.toml", cert("www", ""))]);
    let d = dir.path().display().to_string();
    let config = dir.path().join("dcvd.toml");
    write(
        &config,
        &main_file(&d, &sim.base_url(), &dns.addr().to_string()),
    );
    let inc = dir.path().join("certificates.d");

    let crate::support::Daemon {
        mut child,
        pid,
        logs: rx,
    } = crate::support::Daemon::start(&config, dir.path());
    let mut logs: Vec<serde_json::Value> = Vec::new();
    // Waits for a line matching `pred` among those logged after `from`.
    let wait_for = |what: &str,
                    from: usize,
                    pred: &dyn Fn(&serde_json::Value) -> bool,
                    logs: &mut Vec<serde_json::Value>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if logs[from.min(logs.len())..].iter().any(pred) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) => logs.push(v),
                Err(_) => panic!("timed out waiting for {what}; logs: {logs:#?}"),
            }
        }
    };
    let installed = |name: &'static str| {
        move |v: &serde_json::Value| v["kind"] == "installed" && v["certificate"] == name
    };
    let reloaded = |n: u64| {
        move |v: &serde_json::Value| {
            v["message"] == "configuration reloaded" && v["certificates"] == n
        }
    };
    wait_for("www installed", 0, &installed("www"), &mut logs);
    assert!(
        dir.path().join("certs/www/fullchain.pem").exists(),
        "the {{name}} template"
    );

    // A broken included file: the reload is refused naming the file, the old config runs.
    let from = logs.len();
    write(
        &inc.join("api.toml"),
        &(cert("api", "") + "colour = \"red\"\n"),
    );
    kill(pid, "-HUP");
    let api_file = inc.join("api.toml").display().to_string();
    wait_for(
        "the rejected reload",
        from,
        &|v| {
            v["message"].as_str().is_some_and(|m| {
                m.contains("reload rejected")
                    && m.contains(&format!(
                        "{api_file}: certificate \"api\": colour: unknown key"
                    ))
            })
        },
        &mut logs,
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "dcvd exited after a bad reload"
    );

    // The file fixed: the new certificate is managed, www is not ordered again.
    let from = logs.len();
    write(&inc.join("api.toml"), &cert("api", ""));
    kill(pid, "-HUP");
    wait_for("reload with api", from, &reloaded(2), &mut logs);
    wait_for("api installed", from, &installed("api"), &mut logs);
    assert!(dir.path().join("certs/api/fullchain.pem").exists());
    assert_eq!(sim.orders().len(), 2, "the reload must not re-order www");

    // A changed file is read again: a third certificate added to api.toml.
    let from = logs.len();
    write(
        &inc.join("api.toml"),
        &(cert("api", "") + &cert("mail", "")),
    );
    kill(pid, "-HUP");
    wait_for("reload with mail", from, &reloaded(3), &mut logs);
    wait_for("mail installed", from, &installed("mail"), &mut logs);

    // A removed file: its certificates leave the configuration, nothing is ordered.
    let from = logs.len();
    std::fs::remove_file(inc.join("api.toml")).unwrap();
    kill(pid, "-HUP");
    wait_for("reload without api.toml", from, &reloaded(1), &mut logs);
    assert_eq!(
        sim.orders().len(),
        3,
        "one order per certificate, none after removal"
    );

    kill(pid, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "dcvd did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}
