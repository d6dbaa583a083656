//! Propagation check against in-process authoritative servers: lagging secondaries, CNAME
//! delegation, SERVFAIL / REFUSED / timeouts / NXDOMAIN per server, zone discovery.

use std::net::SocketAddr;
use std::time::Duration;

use dcvd::config::{CheckMode, DnsConfig, HttpCheckConfig};
use dcvd::dcv::check::zone::ZoneFinder;
use dcvd::dcv::check::{self as dnscheck, ServerOutcome, check_once, render_table};
use dcvd::model::ChallengeKind;
use dcvd::sim::dns::{DnsSim, SilentServer, SimMode, ZoneSpec};

use crate::support::{dns_config, txt};

fn config(
    overrides: &[(&str, Vec<SocketAddr>)],
    check: CheckMode,
    resolvers: Vec<SocketAddr>,
) -> DnsConfig {
    dns_config(overrides, check, &resolvers, Duration::from_millis(300))
}

async fn zone_sim(origin: &str) -> DnsSim {
    DnsSim::start(&[ZoneSpec::new(origin)], None)
        .await
        .expect("sim")
}

const NAME: &str = "_dnsauth.www.example.test";

#[tokio::test]
async fn lagging_server_is_named_until_it_has_the_record() {
    let (a, b) = (
        zone_sim("example.test").await,
        zone_sim("example.test").await,
    );
    let cfg = config(
        &[("example.test.", vec![a.addr(), b.addr()])],
        CheckMode::Authoritative,
        vec![],
    );
    let check = dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap();

    a.add_txt(NAME, "tok").await.unwrap();
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(!r.present);
    assert_eq!(r.servers.len(), 2);
    assert_eq!(r.servers[0].server, a.addr().to_string());
    assert_eq!(r.servers[0].outcome, ServerOutcome::Present);
    assert_eq!(r.servers[1].server, b.addr().to_string());
    assert_eq!(r.servers[1].outcome, ServerOutcome::Nxdomain);
    let table = render_table(&r);
    assert!(
        table.contains(&format!("{}  nxdomain", b.addr())),
        "{table}"
    );
    assert!(table.contains("NOT PRESENT: 1 of 2"), "{table}");

    b.add_txt(NAME, "old").await.unwrap();
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(!r.present);
    assert_eq!(
        r.servers[1].outcome,
        ServerOutcome::OtherValue(vec!["old".into()])
    );

    b.add_txt(NAME, "tok").await.unwrap();
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(r.present, "{}", r.summary());
}

#[tokio::test]
async fn cname_into_another_zone_is_followed_to_its_servers() {
    let main = DnsSim::start(
        &[ZoneSpec::new("example.test")
            .with_record("_dnsauth.www 60 IN CNAME tok.dcv.delegated.test.")],
        None,
    )
    .await
    .unwrap();
    let delegated = zone_sim("delegated.test").await;
    let cfg = config(
        &[
            ("example.test", vec![main.addr()]),
            ("delegated.test", vec![delegated.addr()]),
        ],
        CheckMode::Authoritative,
        vec![],
    );
    let check = dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap();

    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(!r.present);
    assert_eq!(r.final_name, "tok.dcv.delegated.test");
    assert_eq!(r.servers[0].server, delegated.addr().to_string());
    assert_eq!(r.servers[0].outcome, ServerOutcome::Nxdomain);

    delegated
        .add_txt("tok.dcv.delegated.test", "tok")
        .await
        .unwrap();
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(r.present, "{}", r.summary());
    assert_eq!(r.final_name, "tok.dcv.delegated.test");
}

#[tokio::test]
async fn cname_loop_is_an_error_not_a_hang() {
    let sim = DnsSim::start(
        &[ZoneSpec::new("example.test")
            .with_record("a 60 IN CNAME b.example.test.")
            .with_record("b 60 IN CNAME a.example.test.")],
        None,
    )
    .await
    .unwrap();
    let cfg = config(
        &[("example.test", vec![sim.addr()])],
        CheckMode::Authoritative,
        vec![],
    );
    let check = dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap();
    let err = check.check(&txt("a.example.test", "x")).await.unwrap_err();
    assert!(err.detail.contains("loop"), "{err}");
}

#[tokio::test]
async fn servfail_refused_timeout_and_nxdomain_are_reported_per_server() {
    let good = zone_sim("example.test").await;
    let failing = zone_sim("example.test").await;
    let other_zone = zone_sim("unrelated.test").await;
    let silent = SilentServer::start().await.unwrap();
    good.add_txt(NAME, "tok").await.unwrap();
    failing.add_txt(NAME, "tok").await.unwrap();
    failing.set_mode(SimMode::Servfail);
    let servers = vec![
        good.addr(),
        failing.addr(),
        other_zone.addr(),
        silent.addr(),
    ];
    let cfg = config(
        &[("example.test", servers)],
        CheckMode::Authoritative,
        vec![],
    );
    let check = dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap();

    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(!r.present);
    let outcomes: Vec<_> = r.servers.iter().map(|s| s.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            ServerOutcome::Present,
            ServerOutcome::Servfail,
            ServerOutcome::Refused,
            ServerOutcome::Timeout
        ],
        "{}",
        r.summary()
    );

    // Back to normal: the failing server now answers, the other two still count against.
    failing.set_mode(SimMode::Normal);
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert_eq!(r.servers[1].outcome, ServerOutcome::Present);
    assert!(!r.present);
}

#[tokio::test]
async fn dropped_queries_time_out_and_slow_answers_within_the_timeout_count() {
    let sim = zone_sim("example.test").await;
    sim.add_txt(NAME, "tok").await.unwrap();
    let cfg = config(
        &[("example.test", vec![sim.addr()])],
        CheckMode::Authoritative,
        vec![],
    );
    let check = dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap();
    sim.set_mode(SimMode::Drop);
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert_eq!(r.servers[0].outcome, ServerOutcome::Timeout);
    sim.set_mode(SimMode::Delay(Duration::from_millis(50)));
    assert!(check.check(&txt(NAME, "tok")).await.unwrap().present);
}

#[tokio::test]
async fn zone_is_found_by_soa_walk_and_ns_addresses_via_resolvers() {
    let sim = zone_sim("example.test").await;
    let finder = ZoneFinder::new(vec![sim.addr()], vec![], Duration::from_millis(500));
    let name = dcvd::dcv::dns::query::fqdn("_dnsauth.deep.www.example.test").unwrap();
    let zs = finder.servers_for(&name).await.unwrap();
    assert_eq!(zs.zone.to_ascii(), "example.test.");
    assert_eq!(zs.servers.len(), 1);
    assert_eq!(zs.servers[0].label, "ns1.example.test (127.0.0.1:53)");

    // A name in no zone the resolver knows: a clear error, not a panic.
    let outside = dcvd::dcv::dns::query::fqdn("www.nowhere.invalid").unwrap();
    let err = finder.servers_for(&outside).await.unwrap_err();
    assert!(!err.detail.is_empty());
}

#[tokio::test]
async fn recursive_and_both_modes_ask_the_resolvers() {
    let sim = zone_sim("example.test").await;
    let lagging = zone_sim("example.test").await;
    sim.add_txt(NAME, "tok").await.unwrap();

    // recursive: the resolver has it; the authoritative lagging server is not asked.
    let cfg = config(
        &[("example.test", vec![lagging.addr()])],
        CheckMode::Recursive,
        vec![sim.addr()],
    );
    let r = check_once(&cfg, NAME, ChallengeKind::DnsTxt, "tok")
        .await
        .unwrap();
    assert!(r.present, "{}", r.summary());
    assert_eq!(r.servers[0].server, format!("resolver {}", sim.addr()));

    // both: the lagging authoritative server holds it back.
    let cfg = config(
        &[("example.test", vec![lagging.addr()])],
        CheckMode::Both,
        vec![sim.addr()],
    );
    let r = check_once(&cfg, NAME, ChallengeKind::DnsTxt, "tok")
        .await
        .unwrap();
    assert!(!r.present);
    assert_eq!(r.servers.len(), 2);
    assert_eq!(r.servers[0].outcome, ServerOutcome::Nxdomain);
    assert_eq!(r.servers[1].outcome, ServerOutcome::Present);
}

#[tokio::test]
async fn check_once_compares_cname_targets_case_insensitively() {
    let sim = DnsSim::start(
        &[ZoneSpec::new("example.test").with_record("_x.www 60 IN CNAME Tok.DCV.Example.NET.")],
        None,
    )
    .await
    .unwrap();
    let cfg = config(
        &[("example.test", vec![sim.addr()])],
        CheckMode::Authoritative,
        vec![],
    );
    let r = check_once(
        &cfg,
        "_x.www.example.test.",
        ChallengeKind::DnsCname,
        "tok.dcv.example.net.",
    )
    .await
    .unwrap();
    assert!(r.present, "{}", r.summary());
    let r = check_once(
        &cfg,
        "_x.www.example.test",
        ChallengeKind::DnsCname,
        "other.example.net",
    )
    .await
    .unwrap();
    assert_eq!(
        r.servers[0].outcome,
        ServerOutcome::OtherValue(vec!["tok.dcv.example.net".into()])
    );
    assert!(
        check_once(&cfg, "x.example.test", ChallengeKind::Http, "v")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn cname_only_on_some_servers_is_not_followed_and_is_shown() {
    let (a, b) = (
        zone_sim("example.test").await,
        zone_sim("example.test").await,
    );
    let delegated = zone_sim("delegated.test").await;
    delegated
        .add_txt("tok.delegated.test", "tok")
        .await
        .unwrap();
    a.add_cname(NAME, "tok.delegated.test").await.unwrap();
    let cfg = config(
        &[
            ("example.test", vec![a.addr(), b.addr()]),
            ("delegated.test", vec![delegated.addr()]),
        ],
        CheckMode::Authoritative,
        vec![],
    );
    let check = dnscheck::build(&cfg, &HttpCheckConfig::default()).unwrap();
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(!r.present);
    assert_eq!(r.final_name, NAME);
    assert_eq!(
        r.servers[0].outcome,
        ServerOutcome::OtherValue(vec!["CNAME tok.delegated.test".into()])
    );
    assert_eq!(r.servers[1].outcome, ServerOutcome::Nxdomain);

    b.add_cname(NAME, "tok.delegated.test").await.unwrap();
    let r = check.check(&txt(NAME, "tok")).await.unwrap();
    assert!(r.present, "{}", r.summary());
    assert_eq!(r.final_name, "tok.delegated.test");
}
