//! `dcvd adopt`: a fleet moving to dcvd keeps the certificates it has. Each case is a
//! real `output_dir` and the real binary: what the first start would do, and what it
//! records.

use std::path::Path;

use assert_cmd::Command;
use chrono::{DateTime, Duration, Utc};
use dcvd::clock::{Clock, SystemClock};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};

struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "Fleet Test CA");
    let cert = p.self_signed(&key).unwrap();
    Ca { key, cert }
}

fn ts(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
}

/// Install a leaf for `sans` valid from `from` to `until` into `dir`, as dcvd would;
/// `key` replaces the leaf's own private key when given.
fn install(
    dir: &Path,
    ca: &Ca,
    sans: &[&str],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    key: Option<&KeyPair>,
) {
    let own = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.not_before = ts(from);
    p.not_after = ts(until);
    p.serial_number = Some(SerialNumber::from(vec![0x08]));
    let leaf = p
        .signed_by(
            &own,
            &Issuer::from_ca_cert_der(ca.cert.der(), &ca.key).unwrap(),
        )
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("chain.pem"), ca.cert.pem()).unwrap();
    std::fs::write(
        dir.join("fullchain.pem"),
        format!("{}{}", leaf.pem(), ca.cert.pem()),
    )
    .unwrap();
    std::fs::write(dir.join("privkey.pem"), key.unwrap_or(&own).serialize_pem()).unwrap();
}

struct Fleet {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    now: DateTime<Utc>,
}

/// Five certificates: `kept` valid and in place, `fresh` with nothing installed, `old`
/// expired, `moved` for other names than configured, `odd` with a key that is not its
/// own; `never` valid but configured with adopt = "never".
fn fleet() -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let now = SystemClock.now();
    let ca = ca();
    let certs = |n: &str| dir.path().join("certs").join(n);
    let valid = (now - Duration::days(20), now + Duration::days(70));
    install(
        &certs("kept"),
        &ca,
        &["kept.example.com"],
        valid.0,
        valid.1,
        None,
    );
    install(
        &certs("never"),
        &ca,
        &["never.example.com"],
        valid.0,
        valid.1,
        None,
    );
    install(
        &certs("old"),
        &ca,
        &["old.example.com"],
        now - Duration::days(100),
        now - Duration::days(10),
        None,
    );
    install(
        &certs("moved"),
        &ca,
        &["elsewhere.example.com"],
        valid.0,
        valid.1,
        None,
    );
    let stranger = KeyPair::generate().unwrap();
    install(
        &certs("odd"),
        &ca,
        &["odd.example.com"],
        valid.0,
        valid.1,
        Some(&stranger),
    );
    let mut toml = format!(
        r#"
[daemon]
database = "{d}/dcvd.db"
[providers.ca]
kind = "digicert"
api_key = "test-key"
[publishers.dns]
kind = "manual"
"#
    );
    for name in ["fresh", "kept", "moved", "never", "odd", "old"] {
        toml.push_str(&format!(
            r#"
[[certificates]]
name = "{name}"
provider = "ca"
product = "ssl_dv_geotrust"
common_name = "{name}.example.com"
dcv = ["dns-txt"]
publisher = "dns"
output_dir = "{d}/certs/{name}"
{extra}
"#,
            extra = if name == "never" {
                "adopt = \"never\""
            } else {
                ""
            }
        ));
    }
    let config = dir.path().join("dcvd.toml");
    std::fs::write(&config, toml).unwrap();
    Fleet { dir, config, now }
}

fn dcvd(config: &Path) -> Command {
    crate::support::dcvd_command(config)
}

fn lines(json: &[u8]) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["certificate"].as_str().unwrap().to_string(),
                l["action"].as_str().unwrap().to_string(),
                l["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_dry_run_says_for_each_certificate_whether_it_is_adopted_ordered_or_refused_and_why() {
    let f = fleet();
    let check = dcvd(&f.config).arg("check-config").output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let out = dcvd(&f.config)
        .args(["adopt", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one certificate is refused");
    let got = lines(&out.stdout);
    let action = |name: &str| {
        got.iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing: {got:?}"))
            .clone()
    };
    assert_eq!(got.len(), 6, "{got:?}");
    let (_, a, d) = action("kept");
    assert_eq!(a, "adopt", "{d}");
    assert!(
        d.contains("serial 08") && d.contains("Fleet Test CA"),
        "{d}"
    );
    assert_eq!(action("fresh").1, "order");
    assert!(action("fresh").2.contains("nothing installed"));
    let (_, a, d) = action("old");
    assert_eq!(a, "order");
    assert!(d.contains("expired on"), "{d}");
    let (_, a, d) = action("moved");
    assert_eq!(a, "order");
    assert!(
        d.contains("elsewhere.example.com") && d.contains("moved.example.com"),
        "{d}"
    );
    let (_, a, d) = action("never");
    assert_eq!(a, "order");
    assert!(d.contains("adopt = \"never\""), "{d}");
    let (_, a, d) = action("odd");
    assert_eq!(a, "refuse");
    assert!(d.contains("privkey.pem is not the private key"), "{d}");
    assert!(!d.contains("BEGIN"), "no key material: {d}");

    // A dry run writes nothing: no database appears.
    assert!(!f.dir.path().join("dcvd.db").exists());

    let text = dcvd(&f.config)
        .args(["adopt", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("dry run: 1 to adopt, 4 to order, 1 refused, 0 managed already"),
        "{text}"
    );
}

#[tokio::test]
async fn adopting_records_the_certificate_as_issued_and_holds_the_refused_one() {
    let f = fleet();
    // Without a database it refuses (the daemon creates it, as its own user).
    let out = dcvd(&f.config).arg("adopt").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the daemon adopts at its first start"));
    assert!(!f.dir.path().join("dcvd.db").exists());
    drop(
        dcvd::store::Store::open(&f.dir.path().join("dcvd.db"))
            .await
            .unwrap(),
    );
    let out = dcvd(&f.config).args(["adopt", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = dcvd::store::Store::open_readonly(&f.dir.path().join("dcvd.db"))
        .await
        .unwrap();
    let recs = store.certificates().await.unwrap();
    let kept = recs
        .iter()
        .find(|r| r.name == "kept")
        .expect("kept recorded");
    assert_eq!(kept.source, Some(dcvd::model::CertSource::Adopted));
    assert!(kept.has_issued());
    let not_after = kept.not_after.unwrap();
    assert!(
        (not_after - (f.now + Duration::days(70)))
            .num_seconds()
            .abs()
            < 5
    );
    let odd = recs.iter().find(|r| r.name == "odd").expect("odd recorded");
    assert!(
        odd.hold
            .as_deref()
            .is_some_and(|h| h.contains("privkey.pem")),
        "{odd:?}"
    );
    assert!(!odd.has_issued());
    assert!(
        store.list_orders(None).await.unwrap().is_empty(),
        "nothing ordered"
    );
    let status = dcvd(&f.config).arg("status").output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("certificate odd (held): NEEDS YOU: ")
            && status.contains("privkey.pem is not the private key"),
        "{status}"
    );

    // `dcvd certificates` lists each with its state and source.
    let out = dcvd(&f.config)
        .args(["certificates", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {list}"))
            .clone()
    };
    let kept = by("kept");
    assert_eq!(kept["state"], "issued");
    assert_eq!(kept["source"], "adopted");
    assert_eq!(kept["names"], serde_json::json!(["kept.example.com"]));
    let expires: DateTime<Utc> = kept["expires"].as_str().unwrap().parse().unwrap();
    let renew: DateTime<Utc> = kept["renew_from"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires - renew,
        Duration::days(30),
        "the default renew_before"
    );
    assert_eq!(by("odd")["state"], "held");
    assert!(
        by("odd")["detail"]
            .as_str()
            .unwrap()
            .contains("privkey.pem")
    );
    assert_eq!(by("fresh")["state"], "not_ordered");
    assert_eq!(by("fresh")["source"], serde_json::Value::Null);

    // Run again: the adopted one is managed now, the rest as before.
    let again = dcvd(&f.config)
        .args(["adopt", "--dry-run", "--json"])
        .output()
        .unwrap();
    let got = lines(&again.stdout);
    let kept = got.iter().find(|(n, _, _)| n == "kept").unwrap();
    assert_eq!(kept.1, "managed", "{kept:?}");
    assert!(kept.2.contains("issued (adopted"), "{kept:?}");

    // The operator fixes the odd one (its own key back): the hold is cleared, it is adopted.
    let ca = ca();
    let now = f.now;
    install(
        &f.dir.path().join("certs/odd"),
        &ca,
        &["odd.example.com"],
        now - Duration::days(1),
        now + Duration::days(80),
        None,
    );
    let out = dcvd(&f.config).args(["adopt", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let recs = store.certificates().await.unwrap();
    let odd = recs.iter().find(|r| r.name == "odd").unwrap();
    assert_eq!(odd.hold, None);
    assert_eq!(odd.source, Some(dcvd::model::CertSource::Adopted));
    let status = dcvd(&f.config).arg("status").output().unwrap();
    assert!(!String::from_utf8_lossy(&status.stdout).contains("NEEDS YOU"));

    // A certificate taken out of the configuration is still listed, as not configured.
    let toml = std::fs::read_to_string(&f.config).unwrap();
    let (head, rest) = toml
        .split_once("\n[[certificates]]\nname = \"kept\"")
        .unwrap();
    let rest = &rest[rest.find("[[certificates]]").unwrap()..];
    std::fs::write(&f.config, format!("{head}\n{rest}")).unwrap();
    let out = dcvd(&f.config).arg("certificates").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let kept = text
        .lines()
        .skip_while(|l| !l.starts_with("kept "))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        kept.contains("not_configured")
            && kept.contains("adopted")
            && kept.contains("removed from the configuration (was: issued)"),
        "{text}"
    );
}

// --- the daemon's first start (engine with a fake CA) ------------------------------

mod first_start {
    use super::*;
    use crate::support::{Harness, NowUtc, WWW};
    use dcvd::ca::MethodScope;
    use dcvd::model::{CertSource, OrderState};

    const NAMES: &[&str] = &["example.com", "www.example.com"];

    /// GET /api/v1/certificates from the daemon's router on 127.0.0.1:0.
    async fn api_certificates(
        engine: std::sync::Arc<dcvd::lifecycle::engine::Engine>,
    ) -> Vec<serde_json::Value> {
        dcvd::net::install_crypto();
        let state = dcvd::app::http::HttpState {
            engine,
            scheduler_running: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, dcvd::app::http::router(state))
                .await
                .unwrap()
        });
        let body = dcvd::net::client_builder(std::time::Duration::from_secs(5))
            .build()
            .unwrap()
            .get(format!("http://{addr}/api/v1/certificates"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        body.as_array().unwrap().clone()
    }

    #[tokio::test]
    async fn a_valid_installed_certificate_is_adopted_not_bought_and_renewed_at_renew_before() {
        let h = Harness::new(WWW, MethodScope::PerOrder);
        let now = h.clock.now_utc();
        install(
            &h.path("certs/www"),
            &ca(),
            NAMES,
            now - Duration::days(30),
            now + Duration::days(60),
            None,
        );
        let engine = h.engine().await;
        assert!(
            engine.ensure_orders().await.unwrap().is_empty(),
            "nothing bought"
        );
        assert_eq!(h.ca.order_count(), 0);
        let rec = &engine.store().certificates().await.unwrap()[0];
        assert_eq!(rec.source, Some(CertSource::Adopted));
        // The HTTP API's inventory says the same as `dcvd certificates --json`.
        let listed = api_certificates(engine.clone()).await;
        assert_eq!(listed[0]["name"], "www");
        assert_eq!(listed[0]["state"], "issued");
        assert_eq!(listed[0]["source"], "adopted");
        // Nothing more until renew_before (30 days by default) before its expiry.
        h.advance(std::time::Duration::from_secs(29 * 86400));
        assert!(engine.ensure_orders().await.unwrap().is_empty());
        h.advance(std::time::Duration::from_secs(2 * 86400));
        let created = engine.ensure_orders().await.unwrap();
        assert_eq!(created.len(), 1, "renewed like any other");
        assert_eq!(h.drive(&engine, created[0], 200).await, OrderState::Issued);
        assert_eq!(h.ca.order_count(), 1);
        let rec = &engine.store().certificates().await.unwrap()[0];
        assert_eq!(rec.source, Some(CertSource::Ordered));
        assert_eq!(rec.issued_order_id, Some(created[0]));
        // The renewal replaced the adopted files.
        assert!(matches!(
            dcvd::pki::adopt::examine(
                &h.path("certs/www"),
                &NAMES
                    .iter()
                    .map(|n| dcvd::model::DomainName::parse(n).unwrap())
                    .collect::<Vec<_>>(),
                h.clock.now_utc()
            ),
            dcvd::pki::adopt::Existing::Found(f) if f.serial_hex != "08"
        ));
    }

    #[tokio::test]
    async fn a_certificate_dcvd_cannot_use_is_held_until_the_files_are_fixed() {
        let h = Harness::new(WWW, MethodScope::PerOrder);
        let now = h.clock.now_utc();
        let ca = ca();
        let stranger = KeyPair::generate().unwrap();
        let valid = (now - Duration::days(1), now + Duration::days(80));
        install(
            &h.path("certs/www"),
            &ca,
            NAMES,
            valid.0,
            valid.1,
            Some(&stranger),
        );
        let engine = h.engine().await;
        for _ in 0..3 {
            assert!(engine.ensure_orders().await.unwrap().is_empty());
        }
        assert_eq!(h.ca.order_count(), 0, "nothing bought on a guess");
        let rec = &engine.store().certificates().await.unwrap()[0];
        assert!(rec.hold.as_deref().unwrap().contains("not the private key"));
        // Removing the files makes it a plain first order.
        std::fs::remove_dir_all(h.path("certs/www")).unwrap();
        let created = engine.ensure_orders().await.unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(engine.store().certificates().await.unwrap()[0].hold, None);
    }

    #[tokio::test]
    async fn a_certificate_that_could_not_be_installed_is_not_bought() {
        let h = Harness::new(WWW, MethodScope::PerOrder);
        // A file where output_dir's parent must be a directory.
        std::fs::write(h.path("certs"), "not a directory").unwrap();
        let engine = h.engine().await;
        assert!(engine.ensure_orders().await.unwrap().is_empty());
        assert_eq!(h.ca.order_count(), 0);
        let rec = &engine.store().certificates().await.unwrap()[0];
        let hold = rec.hold.as_deref().unwrap();
        assert!(
            hold.contains("certs/www") && hold.contains("cannot install it"),
            "{hold}"
        );
        std::fs::remove_file(h.path("certs")).unwrap();
        let created = engine.ensure_orders().await.unwrap();
        assert_eq!(
            created.len(),
            1,
            "ordered once the directory can be written"
        );
        assert_eq!(engine.store().certificates().await.unwrap()[0].hold, None);
        assert_eq!(h.drive(&engine, created[0], 200).await, OrderState::Issued);
    }
}
