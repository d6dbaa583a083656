//! Every recorded Sectigo payload in `shared/fixtures/sectigo` is parsed by the client,
//! and the simulator serves each recorded shape: same key layout, key case, format.

use crate::support::sectigo as sectigo_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dcvd::ca::sectigo::wire::Reply;
use dcvd::ca::{Lookup, Provider};
use dcvd::clock::ManualClock;
use dcvd::model::DcvMethod;
use dcvd::sim::sectigo::{self, SectigoSimOptions};
use sectigo_common::*;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sectigo")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Keys with their numbers replaced by `N` (`1_1_domain` → `N_N_domain`).
fn layout(r: &Reply) -> BTreeSet<String> {
    r.pairs
        .iter()
        .map(|(k, _)| {
            k.split('_')
                .map(|p| {
                    if p.bytes().all(|b| b.is_ascii_digit()) {
                        "N"
                    } else {
                        p
                    }
                })
                .collect::<Vec<_>>()
                .join("_")
        })
        .collect()
}

#[test]
fn every_recorded_payload_parses() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let r = Reply::parse(&fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.error_code(), Some(0), "{name}");
        match name.as_str() {
            "autoapplyssl-urlencoded.txt" => {
                assert_eq!(r.get("orderNumber"), Some("3040824"));
                assert_eq!(r.get("uniqueValue"), Some("TnerFu0d"));
            }
            "getdcvemailaddresslist-text.txt" => {
                assert_eq!(r.get("domain_name"), Some("www.test-domain.org"));
                assert_eq!(r.get("whois_email"), Some("suport@test-domain.org"));
            }
            "getmdcdomaindetails.txt" => {
                assert_eq!(r.get("1_domainName"), Some("test.com"));
                assert_eq!(
                    dcvd::ca::sectigo::wire::name_status(r.get("1_dcvStatus").unwrap()),
                    dcvd::ca::NameDcv::Valid
                );
            }
            "resenddcvemail-lowercase-key.txt" => {}
            "webhostreport-shape.txt" => {
                assert_eq!(
                    r.get("2_1_mdcDomainNames"),
                    Some("www.multi.example.com,api.multi.example.com")
                );
                assert_eq!(r.get("1_dateTime"), Some("1796186238"));
            }
            other => panic!("new fixture {other}: add what the client must read from it"),
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

/// A stand-in Sectigo that answers each endpoint with a fixed body.
async fn stub(bodies: BTreeMap<&'static str, String>) -> std::net::SocketAddr {
    use axum::extract::Path;
    let bodies = Arc::new(bodies);
    let app = axum::Router::new().route(
        "/products/{*ep}",
        axum::routing::post(move |Path(ep): Path<String>| {
            let bodies = bodies.clone();
            async move { bodies.get(ep.as_str()).cloned().unwrap_or_default() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Recovery reads the report in the public-client shape: the row for our name in the
/// window is found and confirmed by a status call.
#[tokio::test]
async fn recovery_reads_the_public_client_report_shape() {
    let report = fixture("webhostreport-shape.txt");
    let empty = "errorCode=0&noOfResults=2".to_string();
    // First page: the fixture; the next page: no rows.
    let pages = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r1, e1, p1) = (report.clone(), empty.clone(), pages.clone());
    let app = axum::Router::new().route(
        "/products/{*ep}",
        axum::routing::post(
            move |axum::extract::Path(ep): axum::extract::Path<String>| {
                let (r, e, p) = (r1.clone(), e1.clone(), p1.clone());
                async move {
                    match ep.as_str() {
                    "!WebHostReport" => {
                        if p.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                            r
                        } else {
                            e
                        }
                    }
                    "download/CollectSSL" => {
                        "errorCode=0&certificateStatus=Awaiting+Validation&fqdn=shop.example.com"
                            .to_string()
                    }
                    _ => String::new(),
                }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let placed: chrono::DateTime<chrono::Utc> =
        chrono::DateTime::from_timestamp(1796186238, 0).unwrap();
    let clock = Arc::new(ManualClock::new(placed + chrono::Duration::minutes(5)));
    let p = provider(&format!("http://{addr}/products")).with_clock(clock);
    let mut req = request(
        "dcvd-fx",
        &["shop.example.com"],
        &[DcvMethod::DnsCname],
        &[],
    );
    req.created_at = placed - chrono::Duration::seconds(20);
    let Lookup::Found(found) = p.find_order(&req).await.unwrap() else {
        panic!("the fixture's row was not recognised");
    };
    assert_eq!(found[0].ca_order_id, "3040824");
    assert_eq!(found[0].ca_data["certificateID"], "8040824");
    assert_eq!(pages.load(std::sync::atomic::Ordering::SeqCst), 2);
    // The multi-domain row matches on all three names, but the confirming status call
    // (this stub always says shop.example.com) disagrees: not adopted.
    let mut multi = request(
        "dcvd-fx2",
        &[
            "multi.example.com",
            "api.multi.example.com",
            "www.multi.example.com",
        ],
        &[DcvMethod::DnsCname; 3],
        &[],
    );
    multi.created_at = req.created_at;
    pages.store(0, std::sync::atomic::Ordering::SeqCst);
    let Lookup::Unsure { reason, candidates } = p.find_order(&multi).await.unwrap() else {
        panic!("a candidate the status call contradicts must not be adopted");
    };
    assert_eq!(candidates, ["3040825"]);
    assert!(
        reason.contains("CollectSSL names it shop.example.com"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_report_row_without_its_date_is_unsure() {
    let body = fixture("webhostreport-shape.txt").replace("&1_dateTime=1796186238", "");
    let addr = stub(BTreeMap::from([("!WebHostReport", body)])).await;
    let p = provider(&format!("http://{addr}/products"));
    let req = request(
        "dcvd-fx3",
        &["shop.example.com"],
        &[DcvMethod::DnsCname],
        &[],
    );
    let Lookup::Unsure { reason, .. } = p.find_order(&req).await.unwrap() else {
        panic!("a row dcvd cannot read must not be passed over");
    };
    assert!(reason.contains("no 1_dateTime"), "{reason}");
}

/// The simulator's answers have the recorded layouts.
#[tokio::test]
async fn the_simulator_serves_the_recorded_shapes() {
    let sim = sectigo::start(SectigoSimOptions {
        login_password: PASSWORD.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let p = provider(&sim.base_url());
    let multi = request(
        "dcvd-shape",
        &["shape.example.test", "www.shape.example.test"],
        &[DcvMethod::DnsCname, DcvMethod::DnsCname],
        &[],
    );
    let sub = p.submit(&multi).await.unwrap();
    let post = |ep: &'static str, extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("loginName", "dcvd".to_string()),
            ("loginPassword", PASSWORD.to_string()),
        ];
        form.extend(extra);
        let url = format!("{}/{ep}", sim.base_url());
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let on = || ("orderNumber", sub.ca_order_id.clone());
    let parsed = |s: &str| Reply::parse(s).unwrap();

    // AutoApplySSL, responseFormat=1: the recorded keys (+ certificateID when asked).
    let (csr_pem, _) = csr("shape2.example.test");
    let apply = post(
        "!AutoApplySSL",
        vec![
            ("product", "287".into()),
            ("days", "47".into()),
            ("csr", csr_pem),
            ("serverSoftware", "-1".into()),
            ("dcvMethod", "CNAME_CSR_HASH".into()),
            ("responseFormat", "1".into()),
        ],
    )
    .await;
    assert_eq!(
        layout(&parsed(&apply)),
        layout(&parsed(&fixture("autoapplyssl-urlencoded.txt")))
    );

    // GetDCVEmailAddressList: text, a status line, tab-separated, the stray space.
    let list = post(
        "!GetDCVEmailAddressList",
        vec![("domainName", "www.shape.example.test".into())],
    )
    .await;
    let rec = fixture("getdcvemailaddresslist-text.txt");
    assert_eq!(list.lines().next(), rec.lines().next());
    assert!(list.lines().nth(1).unwrap().starts_with("domain_name\t"));
    assert!(list.contains("_email\t "), "{list}");
    assert!(layout(&parsed(&rec)).is_subset(&{
        let mut l = layout(&parsed(&list));
        l.insert("whois_email".into());
        l
    }));

    // GetMDCDomainDetails: numbered per-domain fields.
    let mdc = post("!GetMDCDomainDetails", vec![on()]).await;
    assert_eq!(
        layout(&parsed(&mdc)),
        layout(&parsed(&fixture("getmdcdomaindetails.txt")))
    );

    // ResendDCVEmail: the key in lower case, as recorded.
    let resend = post("!ResendDCVEmail", vec![on()]).await;
    assert_eq!(
        resend.trim(),
        fixture("resenddcvemail-lowercase-key.txt").trim()
    );

    // WebHostReport: the public client's row layout, no uniqueValue.
    let report = post(
        "!WebHostReport",
        vec![("firstResultNo", "1".into()), ("lastResultNo", "10".into())],
    )
    .await;
    let got = layout(&parsed(&report));
    let recorded = layout(&parsed(&fixture("webhostreport-shape.txt")));
    assert!(
        got.is_subset(&recorded),
        "extra keys: {:?}",
        got.difference(&recorded)
    );
    let pending_row: BTreeSet<String> = parsed(&fixture("webhostreport-shape.txt"))
        .pairs
        .iter()
        .filter(|(k, _)| k.starts_with("1_"))
        .map(|(k, _)| k.replacen('1', "N", 1).replacen("_1_", "_N_", 1))
        .collect();
    assert!(
        pending_row.is_subset(&got),
        "{:?}",
        pending_row.difference(&got)
    );
    assert!(!report.to_ascii_lowercase().contains("uniquevalue"));
}
