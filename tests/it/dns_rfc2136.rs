//! rfc2136 publisher against the in-process DNS server, checked with the propagation check.

use std::time::Duration;

use base64::Engine;
use dcvd::ca::ErrorKind;
use dcvd::config::{CheckMode, DnsConfig, HttpCheckConfig, PublisherConfig, Rfc2136Config};
use dcvd::dcv::check::{self as dnscheck, ServerOutcome};
use dcvd::dcv::publish;
use dcvd::model::{Challenge, ChallengeKind};
use dcvd::sim::dns::{DnsSim, ZoneSpec};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

use crate::support::{self, txt};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn rfc_config(server: &str, secret: &[u8], transport: &str, zone: Option<&str>) -> PublisherConfig {
    PublisherConfig::Rfc2136(Rfc2136Config {
        server: server.to_string(),
        zone: zone.map(str::to_string),
        tsig_key_name: "dcv-key".into(),
        tsig_algorithm: "hmac-sha256".into(),
        tsig_secret: Some(
            base64::engine::general_purpose::STANDARD
                .encode(secret)
                .into(),
        ),
        tsig_secret_file: None,
        transport: transport.into(),
        ttl: 60,
        timeout: Duration::from_secs(3),
    })
}

fn dns_config(zone: &str, servers: &[std::net::SocketAddr]) -> DnsConfig {
    let resolvers = ["127.0.0.1:9".parse().unwrap()];
    support::dns_config(
        &[(zone, servers.to_vec())],
        CheckMode::Authoritative,
        &resolvers,
        Duration::from_millis(500),
    )
}

async fn sim() -> DnsSim {
    DnsSim::start(
        &[ZoneSpec::new("example.test")],
        Some(("dcv-key", TsigAlgorithm::HmacSha256, KEY)),
    )
    .await
    .expect("dns sim")
}

async fn publish_check_cleanup(transport: &str) {
    let sim = sim().await;
    let p = publish::build(
        "bind",
        &rfc_config(&sim.addr().to_string(), KEY, transport, None),
    )
    .expect("publisher");
    let check = dnscheck::build(
        &dns_config("example.test", &[sim.addr()]),
        &HttpCheckConfig::default(),
    )
    .expect("check");
    let name = "_dnsauth.www.example.test";
    let ours = txt(name, "token-ours");

    // Another TXT value at the same name, not ours.
    sim.add_txt(name, "someone-else").await.unwrap();
    let before = check.check(&ours).await.unwrap();
    assert!(!before.present);
    assert_eq!(
        before.servers[0].outcome,
        ServerOutcome::OtherValue(vec!["someone-else".into()])
    );

    p.present(&ours).await.expect("present");
    p.present(&ours).await.expect("present again is idempotent");
    let after = check.check(&ours).await.unwrap();
    assert!(after.present, "{}", after.summary());
    assert_eq!(after.final_name, name);

    p.cleanup(&ours).await.expect("cleanup");
    p.cleanup(&ours)
        .await
        .expect("cleanup of an absent record succeeds");
    let gone = check.check(&ours).await.unwrap();
    assert!(!gone.present);
    // Only our value went away; the other one survived.
    assert_eq!(
        gone.servers[0].outcome,
        ServerOutcome::OtherValue(vec!["someone-else".into()])
    );
}

#[tokio::test]
async fn publish_and_cleanup_over_tcp_touch_only_our_value() {
    publish_check_cleanup("tcp").await;
}

#[tokio::test]
async fn publish_and_cleanup_over_udp_touch_only_our_value() {
    publish_check_cleanup("udp").await;
}

#[tokio::test]
async fn cname_challenge_is_published_and_checked_as_cname() {
    let sim = sim().await;
    let p = publish::build(
        "bind",
        &rfc_config(&sim.addr().to_string(), KEY, "tcp", Some("example.test")),
    )
    .unwrap();
    let check = dnscheck::build(
        &dns_config("example.test", &[sim.addr()]),
        &HttpCheckConfig::default(),
    )
    .unwrap();
    let c = Challenge {
        kind: ChallengeKind::DnsCname,
        name: "_abc.www.example.test".into(),
        path: None,
        value: "AAAA.BBBB.sectigo.com".into(),
    };
    assert!(p.can_publish(&c));
    assert!(!check.check(&c).await.unwrap().present);
    p.present(&c).await.unwrap();
    let r = check.check(&c).await.unwrap();
    assert!(r.present, "{}", r.summary());
    assert_eq!(
        r.final_name, "_abc.www.example.test",
        "a CNAME challenge is not followed"
    );
    p.cleanup(&c).await.unwrap();
    assert!(!check.check(&c).await.unwrap().present);
}

#[tokio::test]
async fn wrong_tsig_key_is_a_permanent_error_naming_server_and_zone() {
    let sim = sim().await;
    for transport in ["tcp", "udp"] {
        let p = publish::build(
            "bind",
            &rfc_config(
                &sim.addr().to_string(),
                b"not-the-right-key-at-all-000000",
                transport,
                None,
            ),
        )
        .unwrap();
        let err = p
            .present(&txt("_dnsauth.www.example.test", "x"))
            .await
            .expect_err("wrong key must fail");
        assert_eq!(err.kind, ErrorKind::Permanent, "{transport}: {err}");
        let text = err.to_string();
        assert!(text.contains(&sim.addr().to_string()), "{text}");
        assert!(text.contains("zone example.test"), "{text}");
        assert!(text.contains("_dnsauth.www.example.test"), "{text}");
        assert!(text.contains("did not accept our TSIG signature"), "{text}");
    }
}

#[tokio::test]
async fn record_outside_served_zones_names_the_server() {
    let sim = sim().await;
    let p = publish::build(
        "bind",
        &rfc_config(&sim.addr().to_string(), KEY, "tcp", None),
    )
    .unwrap();
    let err = p
        .present(&txt("_dnsauth.other.test", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.to_string().contains("not authoritative"), "{err}");
}

#[tokio::test]
async fn http_challenges_are_refused_and_bad_config_is_explained() {
    let sim = sim().await;
    let p = publish::build(
        "bind",
        &rfc_config(&sim.addr().to_string(), KEY, "tcp", None),
    )
    .unwrap();
    let http = Challenge {
        kind: ChallengeKind::Http,
        name: "www.example.test".into(),
        path: Some("/.well-known/pki-validation/fileauth.txt".into()),
        value: "x".into(),
    };
    assert!(!p.can_publish(&http));
    let mut bad = rfc_config("127.0.0.1:53", KEY, "quic", None);
    let err = publish::build("bind", &bad).err().unwrap();
    assert!(err.contains("publishers.bind.transport"), "{err}");
    if let PublisherConfig::Rfc2136(c) = &mut bad {
        c.transport = "tcp".into();
        c.tsig_secret = Some("%%%".to_string().into());
    }
    let err = publish::build("bind", &bad).err().unwrap();
    assert!(err.contains("not valid base64"), "{err}");
    assert!(!err.contains("%%%"), "the secret must not be echoed: {err}");
}
