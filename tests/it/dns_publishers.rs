//! exec and webroot publishers, and the HTTP self-check against a local web server.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use dcvd::ca::ErrorKind;
use dcvd::config::{
    DnsConfig, ExecConfig, HttpCheckConfig, ManualConfig, PublisherConfig, WebrootConfig,
};
use dcvd::dcv::check::{self as dnscheck, ServerOutcome};
use dcvd::dcv::publish;
use dcvd::model::{Challenge, ChallengeKind};

fn script(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("hook.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

fn exec(command: Vec<String>, timeout: Duration) -> std::sync::Arc<dyn publish::Publisher> {
    publish::build(
        "hook",
        &PublisherConfig::Exec(ExecConfig { command, timeout }),
    )
    .unwrap()
}

fn http_challenge(host: &str, value: &str) -> Challenge {
    Challenge {
        kind: ChallengeKind::Http,
        name: host.into(),
        path: Some("/.well-known/pki-validation/fileauth.txt".into()),
        value: value.into(),
    }
}

#[tokio::test]
async fn exec_hook_gets_arguments_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let hook = script(
        dir.path(),
        &format!(
            "printf '%s|' \"$@\" > {out}\nprintf '%s|%s|%s|%s|%s' \"$DCVD_ACTION\" \"$DCVD_NAME\" \"$DCVD_TYPE\" \"$DCVD_VALUE\" \"$DCVD_HTTP_PATH\" >> {out}",
            out = out.display()
        ),
    );
    let p = exec(
        vec![hook, "--zone".into(), "example.test".into()],
        Duration::from_secs(10),
    );
    let c = Challenge {
        kind: ChallengeKind::DnsTxt,
        name: "_dnsauth.www.example.test".into(),
        path: None,
        value: "tok en".into(),
    };
    p.present(&c).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "--zone|example.test|present|_dnsauth.www.example.test|TXT|tok en|present|_dnsauth.www.example.test|TXT|tok en|"
    );
    p.cleanup(&http_challenge("www.example.test", "v"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "--zone|example.test|cleanup|www.example.test|HTTP|v|cleanup|www.example.test|HTTP|v|/.well-known/pki-validation/fileauth.txt"
    );
}

#[tokio::test]
async fn failing_hook_error_carries_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "echo 'API said: zone locked' >&2\nexit 3");
    let p = exec(vec![hook], Duration::from_secs(10));
    let err = p
        .present(&http_challenge("www.example.test", "v"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exit status 3"), "{text}");
    assert!(text.contains("API said: zone locked"), "{text}");
    assert_eq!(err.publisher, "hook");
    assert_eq!(err.action, "present");
}

#[tokio::test]
async fn slow_hook_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "exec sleep 30");
    let p = exec(vec![hook], Duration::from_millis(300));
    let started = Instant::now();
    let err = p
        .present(&http_challenge("www.example.test", "v"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(err.detail.contains("did not finish within"), "{err}");
}

#[tokio::test]
async fn missing_program_is_a_permanent_error() {
    let p = exec(
        vec!["/nonexistent/dcvd-hook".into()],
        Duration::from_secs(1),
    );
    let err = p
        .present(&http_challenge("www.example.test", "v"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.detail.contains("/nonexistent/dcvd-hook"), "{err}");
}

#[tokio::test]
async fn webroot_writes_0644_file_atomically_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = publish::build(
        "www",
        &PublisherConfig::Webroot(WebrootConfig {
            path: dir.path().to_path_buf(),
        }),
    )
    .unwrap();
    let c = http_challenge("www.example.test", "abc123");
    assert!(p.can_publish(&c));
    assert!(!p.can_publish(&Challenge {
        kind: ChallengeKind::DnsTxt,
        ..c.clone()
    }));
    p.present(&c).await.unwrap();
    let file = dir.path().join(".well-known/pki-validation/fileauth.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "abc123");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let parent = file.parent().unwrap();
    assert_eq!(
        std::fs::metadata(parent).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(parent).unwrap().count(), 1);
    // Overwrite with a new value (re-present after a method switch).
    p.present(&http_challenge("www.example.test", "def456"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "def456");
    // Cleaning up the old token leaves the file that now holds another order's token.
    p.cleanup(&c).await.unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "def456");
    p.cleanup(&http_challenge("www.example.test", "def456"))
        .await
        .unwrap();
    assert!(!file.exists());
    p.cleanup(&c)
        .await
        .expect("cleanup of an absent file succeeds");
}

#[tokio::test]
async fn webroot_host_placeholder_keeps_hosts_apart() {
    let dir = tempfile::tempdir().unwrap();
    let p = publish::build(
        "www",
        &PublisherConfig::Webroot(WebrootConfig {
            path: dir.path().join("{host}"),
        }),
    )
    .unwrap();
    // DigiCert's file name is the same for every host; each host gets its own root.
    p.present(&http_challenge("a.example.test", "one"))
        .await
        .unwrap();
    p.present(&http_challenge("b.example.test", "two"))
        .await
        .unwrap();
    let file = |h: &str| {
        dir.path()
            .join(h)
            .join(".well-known/pki-validation/fileauth.txt")
    };
    assert_eq!(
        std::fs::read_to_string(file("a.example.test")).unwrap(),
        "one"
    );
    assert_eq!(
        std::fs::read_to_string(file("b.example.test")).unwrap(),
        "two"
    );
    p.cleanup(&http_challenge("a.example.test", "one"))
        .await
        .unwrap();
    assert!(!file("a.example.test").exists());
    assert!(file("b.example.test").exists());
}

#[tokio::test]
async fn webroot_refuses_path_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    let p = publish::build(
        "www",
        &PublisherConfig::Webroot(WebrootConfig { path: root.clone() }),
    )
    .unwrap();
    for path in [
        "/.well-known/pki-validation/../../escape.txt",
        "/etc/passwd",
        "/.well-known/pki-validation/a/b",
    ] {
        let c = Challenge {
            path: Some(path.into()),
            ..http_challenge("www.example.test", "x")
        };
        let err = p.present(&c).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent, "{path}");
    }
    assert!(!dir.path().join("escape.txt").exists());
    assert!(!root.exists(), "nothing was created");
}

#[tokio::test]
async fn manual_publisher_only_logs() {
    let p = publish::build("ops", &PublisherConfig::Manual(ManualConfig {})).unwrap();
    assert!(p.is_manual());
    p.present(&http_challenge("www.example.test", "v"))
        .await
        .unwrap();
    p.cleanup(&http_challenge("www.example.test", "v"))
        .await
        .unwrap();
}

async fn web_server(root: std::path::PathBuf) -> std::net::SocketAddr {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Redirect};
    async fn serve(
        State(root): State<std::path::PathBuf>,
        headers: HeaderMap,
        Path(rest): Path<String>,
    ) -> axum::response::Response {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if host != "www.example.test" && host != "other.example.test" {
            return (StatusCode::MISDIRECTED_REQUEST, "wrong host").into_response();
        }
        if rest == "old.txt" {
            return Redirect::permanent("/.well-known/pki-validation/fileauth.txt").into_response();
        }
        if rest == "away.txt" {
            return Redirect::temporary("http://elsewhere.example/x").into_response();
        }
        match std::fs::read_to_string(root.join(".well-known/pki-validation").join(&rest)) {
            Ok(body) => body.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new()
        .route(
            "/.well-known/pki-validation/{*rest}",
            axum::routing::get(serve),
        )
        .with_state(root);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn http_self_check_fetches_through_overrides_like_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let addr = web_server(dir.path().to_path_buf()).await;
    let mut overrides = BTreeMap::new();
    overrides.insert("www.example.test".to_string(), addr.to_string());
    let http = HttpCheckConfig {
        timeout: Duration::from_secs(3),
        overrides,
    };
    let check = dnscheck::build(&DnsConfig::default(), &http).unwrap();
    let webroot = publish::build(
        "www",
        &PublisherConfig::Webroot(WebrootConfig {
            path: dir.path().to_path_buf(),
        }),
    )
    .unwrap();
    let c = http_challenge("www.example.test", "abc123");

    let r = check.check(&c).await.unwrap();
    assert!(!r.present);
    assert_eq!(
        r.servers[0].server,
        "http://www.example.test/.well-known/pki-validation/fileauth.txt"
    );
    assert_eq!(r.servers[0].outcome, ServerOutcome::NoData);

    webroot
        .present(&http_challenge("www.example.test", "wrong"))
        .await
        .unwrap();
    let r = check.check(&c).await.unwrap();
    assert_eq!(
        r.servers[0].outcome,
        ServerOutcome::OtherValue(vec!["wrong".into()])
    );

    webroot.present(&c).await.unwrap();
    let r = check.check(&c).await.unwrap();
    assert!(r.present, "{}", r.summary());

    // A same-host redirect is followed; one to another host is not.
    let moved = Challenge {
        path: Some("/.well-known/pki-validation/old.txt".into()),
        ..c.clone()
    };
    assert!(check.check(&moved).await.unwrap().present);
    let away = Challenge {
        path: Some("/.well-known/pki-validation/away.txt".into()),
        ..c.clone()
    };
    let r = check.check(&away).await.unwrap();
    assert!(
        matches!(&r.servers[0].outcome, ServerOutcome::Error(e) if e.contains("another host")),
        "{r:?}"
    );
}

#[tokio::test]
async fn http_self_check_compares_sectigo_files_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let addr = web_server(dir.path().to_path_buf()).await;
    let mut overrides = BTreeMap::new();
    overrides.insert("www.example.test".to_string(), addr.to_string());
    let check = dnscheck::build(
        &DnsConfig::default(),
        &HttpCheckConfig {
            timeout: Duration::from_secs(3),
            overrides,
        },
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join(".well-known/pki-validation")).unwrap();
    std::fs::write(
        dir.path().join(".well-known/pki-validation/fileauth.txt"),
        "abcdef0123 \r\nsectigo.com\r\n",
    )
    .unwrap();
    assert!(
        check
            .check(&http_challenge(
                "www.example.test",
                "ABCDEF0123\nsectigo.com"
            ))
            .await
            .unwrap()
            .present
    );
    assert!(
        !check
            .check(&http_challenge(
                "www.example.test",
                "ABCDEF0123\ncomodoca.com"
            ))
            .await
            .unwrap()
            .present
    );
}
