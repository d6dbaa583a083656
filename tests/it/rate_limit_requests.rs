//! The rate limiter counts HTTP requests, not provider operations (R5), and keeps its
//! windows across a configuration reload (SIGHUP). Counted where the CA counts: the
//! simulators' request logs, by arrival time.

use crate::support::sectigo as sectigo_common;

use std::sync::Arc;
use std::time::Duration;

use dcvd::ca::{Lookup, SubmitRequest};
use dcvd::model::DcvMethod;
use dcvd::sim::LoggedRequest;
use dcvd::sim::digicert::{DigicertSim, DigicertSimOptions};
use sectigo_common::PASSWORD;

const KEY: &str = "limit-key-5";

/// The most requests that arrived within any `window_ms` span.
fn max_in_window(log: &[LoggedRequest], window_ms: u64) -> usize {
    log.iter()
        .map(|a| {
            log.iter()
                .filter(|b| b.at_ms >= a.at_ms && b.at_ms < a.at_ms + window_ms)
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn digicert_sim() -> DigicertSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    dcvd::sim::digicert::start(DigicertSimOptions {
        api_keys: vec![KEY.into()],
        recheck_interval: Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn digicert_toml(dir: &std::path::Path, sim: &DigicertSim, limits: &str) -> String {
    format!(
        r#"
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
[providers.dc]
kind = "digicert"
base_url = "{url}"
api_key = "{KEY}"
rate_limits = [{limits}]
"#,
        d = dir.display(),
        url = sim.base_url(),
    )
}

fn digicert_request(reference: &str) -> SubmitRequest {
    let mut req =
        sectigo_common::request(reference, &["shop.example.test"], &[DcvMethod::DnsTxt], &[]);
    req.product = "ssl_dv_geotrust".into();
    req
}

async fn runtime(
    config: &dcvd::config::Config,
) -> (dcvd::lifecycle::services::Services, dcvd::store::Store) {
    let metrics = Arc::new(dcvd::metrics::Metrics::new());
    let store = dcvd::store::Store::open(&config.daemon.database)
        .await
        .unwrap();
    let rt = dcvd::lifecycle::services::build(config, metrics, &store, dcvd::clock::system())
        .await
        .unwrap();
    (rt, store)
}

/// Provider `name` as the daemon builds it from `toml` (with its limiter).
async fn provider(toml: &str, name: &str) -> Arc<dyn dcvd::ca::Provider> {
    let config = dcvd::config::load_from_str(toml, None).unwrap_or_else(|e| panic!("{e}"));
    let (rt, _store) = runtime(&config).await;
    rt.providers[name].clone()
}

#[tokio::test]
async fn digicert_recoveries_never_send_more_requests_than_the_limit_in_any_window() {
    let sim = digicert_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = digicert_toml(dir.path(), &sim, r#""2/500ms""#);
    let config = dcvd::config::load_from_str(&toml, None).unwrap_or_else(|e| panic!("{e}"));
    let metrics = Arc::new(dcvd::metrics::Metrics::new());
    let store = dcvd::store::Store::open(&config.daemon.database)
        .await
        .unwrap();
    let rt =
        dcvd::lifecycle::services::build(&config, metrics.clone(), &store, dcvd::clock::system())
            .await
            .unwrap();
    let p = rt.providers["dc"].clone();
    let req = digicert_request("dcvd-burst-1");
    p.submit(&req).await.unwrap();
    // Three recoveries at once, as after a crash with orders in `submitting`: each is a
    // list, a GET of the candidate and a PUT dcv-random-value.
    let (a, b, c) = tokio::join!(p.find_order(&req), p.find_order(&req), p.find_order(&req));
    for r in [a, b, c] {
        assert!(matches!(r.unwrap(), Lookup::Found(f) if f.len() == 1));
    }
    let log = sim.log().entries();
    assert!(log.len() >= 10, "{log:#?}");
    assert_eq!(
        max_in_window(&log, 500),
        2,
        "more than 2 requests in 500 ms: {log:#?}"
    );
    // The waits are still counted for the operator.
    let shown = metrics.encode();
    assert!(
        shown.lines().any(
            |l| l.starts_with("dcvd_rate_limit_waits_total{provider=\"dc\"}") && !l.ends_with(" 0")
        ),
        "{shown}"
    );
}

#[tokio::test]
async fn sectigo_calls_take_one_permit_each_from_one_limiter() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = dcvd::sim::sectigo::start(dcvd::sim::sectigo::SectigoSimOptions {
        login_password: PASSWORD.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
[providers.sec]
kind = "sectigo"
base_url = "{url}"
login_name = "dcvd"
login_password = "{PASSWORD}"
rate_limits = ["2/500ms"]
"#,
        d = dir.path().display(),
        url = sim.base_url(),
    );
    let p = provider(&toml, "sec").await;
    let req = sectigo_common::request(
        "dcvd-sec-burst",
        &["shop.example.test"],
        &[DcvMethod::DnsCname],
        &[],
    );
    p.submit(&req).await.unwrap();
    let name = sectigo_common::names(&["shop.example.test"]).remove(0);
    let (a, b, c) = tokio::join!(
        p.find_order(&req),
        p.find_order(&req),
        p.approver_emails(&name)
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let log = sim.log().entries();
    assert!(log.len() >= 5, "{log:#?}");
    assert!(
        max_in_window(&log, 500) <= 2,
        "more than 2 requests in 500 ms: {log:#?}"
    );
    // One limiter, not two: 2 per 500 ms is reached, not halved.
    assert_eq!(max_in_window(&log, 500), 2, "{log:#?}");
}

#[tokio::test]
async fn a_reload_in_the_middle_of_a_burst_keeps_the_windows() {
    let sim = digicert_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcvd.toml");
    std::fs::write(&path, digicert_toml(dir.path(), &sim, r#""2/500ms""#)).unwrap();
    let config = dcvd::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let metrics = Arc::new(dcvd::metrics::Metrics::new());
    let store = dcvd::store::Store::open(&config.daemon.database)
        .await
        .unwrap();
    let rt =
        dcvd::lifecycle::services::build(&config, metrics.clone(), &store, dcvd::clock::system())
            .await
            .unwrap();
    let engine = dcvd::lifecycle::engine::Engine::new(
        store,
        Arc::new(dcvd::clock::SystemClock),
        metrics,
        rt,
    );
    let req = digicert_request("dcvd-reload-1");
    let old = engine.services().providers["dc"].clone();
    old.submit(&req).await.unwrap();

    // Steps on the old runtime keep going while SIGHUP builds a new one (same limits).
    let running = async {
        let (a, b) = tokio::join!(old.find_order(&req), old.find_order(&req));
        a.unwrap();
        b.unwrap();
    };
    let reload_then_more = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        dcvd::app::reload(&engine, &path).await;
        let new = engine.services().providers["dc"].clone();
        assert!(!Arc::ptr_eq(&new, &old), "the reload built new providers");
        let (a, b) = tokio::join!(new.find_order(&req), new.find_order(&req));
        a.unwrap();
        b.unwrap();
    };
    tokio::join!(running, reload_then_more);
    let log = sim.log().entries();
    assert!(log.len() >= 13, "{log:#?}");
    assert_eq!(
        max_in_window(&log, 500),
        2,
        "a reload let more than 2 requests through in 500 ms: {log:#?}"
    );

    // Now the limits change: the requests just sent still count against the new ones.
    let before = log.len();
    std::fs::write(&path, digicert_toml(dir.path(), &sim, r#""3/2s""#)).unwrap();
    dcvd::app::reload(&engine, &path).await;
    let new = engine.services().providers["dc"].clone();
    new.find_order(&req).await.unwrap();
    let log = sim.log().entries();
    assert!(log.len() >= before + 3, "{log:#?}");
    // Every request sent under the new limit has at most 2 others in the 2 s before it,
    // counting those sent under the old one.
    for r in &log[before..] {
        let window = log
            .iter()
            .filter(|e| e.at_ms <= r.at_ms && e.at_ms + 2000 > r.at_ms)
            .count();
        assert!(
            window <= 3,
            "the new 3/2s limit started without the old requests: {log:#?}"
        );
    }
}

/// A scripted ACME server on loopback: a directory, nonces, and a `newAccount` that
/// answers 429 with `Retry-After: 2`. It logs when each request arrived.
async fn acme_server() -> (String, Arc<std::sync::Mutex<Vec<(String, Duration)>>>) {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let log: Arc<std::sync::Mutex<Vec<(String, Duration)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let start = tokio::time::Instant::now();
    let (l, b) = (log.clone(), base.clone());
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (l, b) = (l.clone(), b.clone());
        async move {
            l.lock()
                .unwrap()
                .push((uri.path().to_string(), start.elapsed()));
            let mut h = HeaderMap::new();
            h.insert("Replay-Nonce", "bm9uY2U".parse().unwrap());
            match uri.path() {
                "/dir" => {
                    h.insert("Content-Type", "application/json".parse().unwrap());
                    let dir = format!(
                        r#"{{"newNonce":"{b}/nonce","newAccount":"{b}/acct","newOrder":"{b}/order"}}"#
                    );
                    (StatusCode::OK, h, dir)
                }
                "/nonce" => (StatusCode::OK, h, String::new()),
                _ => {
                    h.insert(
                        "Content-Type",
                        "application/problem+json".parse().unwrap(),
                    );
                    h.insert("Retry-After", "2".parse().unwrap());
                    let problem = r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new accounts","status":429}"#;
                    (StatusCode::TOO_MANY_REQUESTS, h, problem.to_string())
                }
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log)
}

#[tokio::test]
async fn acme_requests_take_one_permit_each_and_a_429_pauses_the_provider() {
    let (base, log) = acme_server().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[daemon]
database = "{d}/dcvd.db"
listen = "127.0.0.1:0"
[providers.le]
kind = "acme"
directory_url = "{base}/dir"
terms_accepted = true
rate_limits = ["2/1s"]
"#,
        d = dir.path().display(),
    );
    let p = provider(&toml, "le").await;
    let req = sectigo_common::request(
        "dcvd-acme-limit",
        &["shop.example.test"],
        &[DcvMethod::DnsTxt],
        &[],
    );
    // One operation, three requests (directory, nonce, newAccount): the third waits for
    // the 2-per-second window, as it would at DigiCert or Sectigo.
    let err = p.submit(&req).await.unwrap_err();
    assert_eq!(err.kind(), dcvd::model::ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after, Some(Duration::from_secs(2)), "{err}");
    let first: Vec<(String, Duration)> = log.lock().unwrap().clone();
    let paths: Vec<&str> = first.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/dir", "/nonce", "/acct"], "{first:?}");
    assert!(
        first[2].1 - first[0].1 >= Duration::from_secs(1),
        "three requests of one operation within 1 s: {first:?}"
    );
    // The 429 held the provider: the next operation's first request waits its Retry-After.
    let answered = first[2].1;
    let _ = p.submit(&req).await.unwrap_err();
    let all = log.lock().unwrap().clone();
    let next = all[3].1;
    assert!(
        next - answered >= Duration::from_secs(2),
        "a request went out {:?} after the 429 (Retry-After: 2): {all:?}",
        next - answered
    );
}
