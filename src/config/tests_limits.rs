//! What the CAs would refuse is refused at load (R17): host names, IDNs, validity against
//! the public cap in force, name counts, absurd durations; valid edge cases still load.

use chrono::NaiveDate;

use super::tests::{base, problems, with};
use super::*;

#[track_caller]
fn assert_refused(toml: &str, key: &str, needles: &[&str]) {
    let ps = problems(toml);
    assert!(
        ps.iter()
            .any(|p| p.key == key && needles.iter().all(|n| p.message.contains(n))),
        "expected a problem at `{key}` mentioning {needles:?}, got:\n{}",
        ConfigErrors::new(None, ps.clone())
    );
}

#[track_caller]
fn assert_loads(toml: &str) {
    let ps = problems(toml);
    assert!(ps.is_empty(), "{}", ConfigErrors::new(None, ps));
}

fn with_name(name: &str) -> String {
    with(&[(
        "dns_names = [\"www.example.com\"]",
        &format!("dns_names = [\"www.example.com\", \"{name}\"]"),
    )])
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn names_public_cas_refuse_are_refused_with_the_reason() {
    let k = "certificate \"www\": dns_names[1]";
    assert_refused(
        &with_name("_one.example.com"),
        k,
        &["`_one.example.com`", "`_`", "provider `main` would refuse"],
    );
    // R17's emoji IDN, in Unicode and as its A-label.
    for name in ["💩.example.com", "xn--ls8h.example.com"] {
        assert_refused(
            &with_name(name),
            k,
            &["xn--ls8h", "U+1F4A9", "IDNA2008 does not allow"],
        );
    }
    assert_refused(&with_name("ab--cd.example.com"), k, &["reserved"]);
    // An A-label of a decomposed `ü` (u + U+0308): valid letters, but not what UTS-46
    // encodes `bücher` as, so it does not round-trip. (Loading already refuses it when
    // parsing the name; the hostname check refuses it on its own too.)
    let decomposed = format!(
        "xn--{}.example",
        idna::punycode::encode_str("bu\u{308}cher").unwrap()
    );
    assert!(problems(&with_name(&decomposed)).iter().any(|p| p.key == k));
    let e = super::hostname::check_public_hostname(&decomposed).unwrap_err();
    assert!(
        e.contains("does not round-trip") && e.contains("xn--bcher-kva"),
        "{e}"
    );
    let e = super::hostname::check_public_hostname("xn--99999999999.example").unwrap_err();
    assert!(e.contains("not valid punycode"), "{e}");
    let cn_65 = format!("{}.example.com", "a".repeat(53));
    assert_refused(
        &with(&[(
            "common_name = \"example.com\"",
            &format!("common_name = \"{cn_65}\""),
        )]),
        "certificate \"www\": common_name",
        &["65 characters", "at most 64"],
    );
}

#[test]
fn valid_edge_cases_load() {
    let label_63 = "a".repeat(63);
    assert_loads(&with_name(&format!("{label_63}.example.com")));
    // 253 characters in all: 3 × 63 + 61, with dots.
    let long = format!("{0}.{0}.{0}.{1}.com", "b".repeat(63), "c".repeat(57));
    assert_eq!(long.len(), 253);
    assert_loads(&with_name(&long));
    assert_loads(&with_name("bücher.example"));
    assert_loads(&with_name("xn--bcher-kva.example"));
    assert_loads(&with_name("München.Example.com"));
    assert_loads(&with_name("a-b.x1.example.com"));
    assert_loads(&with(&[
        (
            "dcv = [\"dns-txt\", \"http\", \"email\"]",
            "dcv = [\"dns-txt\", \"email\"]",
        ),
        ("\"www.example.com\"]", "\"*.example.com\"]"),
    ]));
    // The CN is 64 characters: the most allowed.
    let cn_64 = format!("{}.example.com", "a".repeat(52));
    assert_loads(&with(&[(
        "common_name = \"example.com\"",
        &format!("common_name = \"{cn_64}\""),
    )]));
}

fn acme(ca_file: Option<&std::path::Path>, name: &str, validity: &str) -> String {
    let ca = ca_file
        .map(|f| format!("ca_file = \"{}\"", f.display()))
        .unwrap_or_default();
    format!(
        r#"
[daemon]
database = "/tmp/x.db"
[providers.inhouse]
kind = "acme"
directory_url = "https://acme.internal.test/directory"
terms_accepted = true
{ca}
[publishers.web]
kind = "webroot"
path = "/var/www"
[[certificates]]
name = "svc"
provider = "inhouse"
common_name = "{name}"
dcv = ["http"]
http_publisher = "web"
output_dir = "/tmp/certs"
{validity}
"#
    )
}

#[test]
fn a_private_acme_ca_sets_its_own_name_and_validity_rules() {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    let ca = crate::sim::ca::SimCa::new("Private", crate::clock::system()).unwrap();
    std::fs::write(&roots, ca.root_pem()).unwrap();
    assert_loads(&acme(
        Some(&roots),
        "_svc.internal.example",
        "validity_days = 100000",
    ));
    // The same at a public ACME CA (no ca_file) is refused.
    assert_refused(
        &acme(None, "_svc.internal.example", ""),
        "certificate \"svc\": common_name",
        &["`_`"],
    );
    assert_refused(
        &acme(None, "svc.example.com", "validity_days = 100000"),
        "certificate \"svc\": validity_days",
        &["100000", "at most"],
    );
}

#[test]
fn validity_beyond_the_cap_in_force_is_refused_whatever_the_date() {
    assert_refused(
        &with(&[(
            "output_dir = \"/tmp/certs/www\"",
            "output_dir = \"/tmp/certs/www\"\nvalidity_days = 100000",
        )]),
        "certificate \"www\": validity_days",
        &["is 100000", "CA/B Forum"],
    );
}

#[test]
fn validity_is_checked_against_the_cap_of_the_day_and_names_the_next_drop() {
    let mut cfg = load_from_str(&base(), None).unwrap();
    let key = "certificate \"www\": validity_days";
    let at = |cfg: &Config, d: NaiveDate| -> Vec<ConfigProblem> {
        validate_at(cfg, d)
            .into_iter()
            .filter(|p| p.key == key)
            .collect()
    };
    cfg.certificates[0].validity_days = Some(201);
    let ps = at(&cfg, day(2026, 12, 2));
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert!(
        ps[0].message.contains("at most 200 days")
            && ps[0].message.contains("drops to 100 days on 2027-03-15"),
        "{}",
        ps[0].message
    );
    // Before 2026-03-15 the cap was 398.
    assert!(at(&cfg, day(2026, 3, 14)).is_empty());
    cfg.certificates[0].validity_days = Some(200);
    assert!(at(&cfg, day(2026, 12, 2)).is_empty());
    assert_eq!(at(&cfg, day(2027, 3, 15)).len(), 1);
    cfg.certificates[0].validity_days = Some(47);
    assert!(at(&cfg, day(2035, 1, 1)).is_empty());
    let ps = at(
        &{
            let mut c = cfg.clone();
            c.certificates[0].validity_days = Some(48);
            c
        },
        day(2035, 1, 1),
    );
    assert!(
        ps[0].message.contains("at most 47") && !ps[0].message.contains("drops"),
        "{}",
        ps[0].message
    );
}

#[test]
fn a_validity_the_cap_drops_below_before_renewal_is_a_warning_not_a_refusal() {
    let mut cfg = load_from_str(&base(), None).unwrap();
    cfg.certificates[0].validity_days = Some(200);
    cfg.certificates[0].renew_before = std::time::Duration::from_secs(30 * 86400);
    let today = day(2026, 12, 2);
    assert!(validate_at(&cfg, today).is_empty(), "allowed today");
    let ws = warnings_at(&cfg, today);
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].key, "certificate \"www\": validity_days");
    assert!(
        ws[0].message.contains("2027-03-15")
            && ws[0].message.contains("100 days")
            && ws[0].message.contains("around 2027-05-21"),
        "{}",
        ws[0].message
    );
    // Renewed (day 60) before the cap drops: nothing to say.
    cfg.certificates[0].validity_days = Some(90);
    assert!(warnings_at(&cfg, today).is_empty());
    // Not set: the product's default follows the CA, nothing to say.
    cfg.certificates[0].validity_days = None;
    assert!(warnings_at(&cfg, today).is_empty());
}

#[test]
fn more_names_than_the_product_takes_are_refused() {
    let names = |n: usize| {
        (0..n)
            .map(|i| format!("\"h{i}.example.com\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key = "certificate \"www\": dns_names";
    // R17's 10,000 SANs.
    assert_refused(
        &with(&[(
            "dns_names = [\"www.example.com\"]",
            &format!("dns_names = [{}]", names(10_000)),
        )]),
        key,
        &["10001 distinct names", "at most 100"],
    );
    // The common name plus 99: 100 names, the most DigiCert takes.
    assert_loads(&with(&[(
        "dns_names = [\"www.example.com\"]",
        &format!("dns_names = [{}]", names(99)),
    )]));
    assert_refused(
        &with(&[(
            "dns_names = [\"www.example.com\"]",
            &format!("dns_names = [{}]", names(100)),
        )]),
        key,
        &["101 distinct names"],
    );
    // A name listed twice (or the common name again) counts once.
    assert_loads(&with(&[(
        "dns_names = [\"www.example.com\"]",
        &format!(
            "dns_names = [\"example.com\", \"H0.example.com\", {}]",
            names(99)
        ),
    )]));
}

#[test]
fn absurd_durations_are_refused_with_the_bound() {
    assert_refused(
        &with(&[(
            "concurrency = 8",
            "concurrency = 8\nshutdown_timeout = \"500000000years\"",
        )]),
        "daemon.shutdown_timeout",
        &["is over 500", "years", "sane maximum of 1h"],
    );
    assert_refused(
        &with(&[(
            "api_key = \"dc-api-key",
            "request_timeout = \"2h\"\napi_key = \"dc-api-key",
        )]),
        "providers.main.request_timeout",
        &["is 2h", "sane maximum of 10m"],
    );
    let cert = |line: &str| {
        with(&[(
            "output_dir = \"/tmp/certs/www\"",
            &format!("output_dir = \"/tmp/certs/www\"\n{line}"),
        )])
    };
    assert_refused(
        &cert("method_timeout = \"31d\""),
        "certificate \"www\": method_timeout",
        &["is 31d", "sane maximum of 30d"],
    );
    assert_loads(&cert("method_timeout = \"30d\""));
    assert_refused(
        &cert("renew_before = \"10years\""),
        "certificate \"www\": renew_before",
        &["sane maximum"],
    );
    assert_refused(
        &with(&[(
            "resolvers = [\"127.0.0.1:53\"]",
            "resolvers = [\"127.0.0.1:53\"]\ntimeout = \"1y\"",
        )]),
        "dns.timeout",
        &["is 365d 6h", "sane maximum of 30d"],
    );
    assert_loads(&with(&[(
        "concurrency = 8",
        "concurrency = 8\nshutdown_timeout = \"1h\"",
    )]));
}

#[test]
fn hostname_rules_case_by_case() {
    use super::hostname::check_public_hostname as check;
    for ok in [
        "Example.COM.",
        "*.bücher.example",
        "xn--bcher-kva.example",
        "straße.example", // ß is PVALID in IDNA2008 (non-transitional: xn--strae-oqa)
        "ελληνικά.example",
        "例え.テスト",
        "مثال.example",
        "a1-b2.example",
    ] {
        assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
    }
    for (bad, why) in [
        ("a.b_c.example", "`_`"),
        ("☃.example", "U+2603"),
        ("xn--n3h.example", "U+2603"),
        ("www.*.example", "left-most"),
        ("**.example", "left-most"),
        ("ab--cd.example", "reserved"),
    ] {
        let e = check(bad).expect_err(bad);
        assert!(e.contains(why), "{bad}: {e}");
    }
}
