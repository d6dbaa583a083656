//! Validation tests: every refused case names its key; valid variants load.

use super::*;

pub(super) const DIGICERT_KEY: &str = "dc-api-key-TOPSECRET-1";
pub(super) const SECTIGO_PASS: &str = "sectigo-pass-TOPSECRET-2";
/// base64("tsig-secret-TOPSECRET-3")
pub(super) const TSIG_B64: &str = "dHNpZy1zZWNyZXQtVE9QU0VDUkVULTM=";

pub(super) fn base() -> String {
    format!(
        r#"
[daemon]
concurrency = 8

[providers.main]
kind = "digicert"
api_key = "{DIGICERT_KEY}"

[providers.reseller]
kind = "sectigo"
login_name = "acme"
login_password = "{SECTIGO_PASS}"

[publishers.bind]
kind = "rfc2136"
server = "127.0.0.1:53"
tsig_key_name = "dcvd"
tsig_secret = "{TSIG_B64}"

[publishers.www]
kind = "webroot"
path = "/var/www/html"

[publishers.hook]
kind = "exec"
command = ["/bin/true"]

[dns]
resolvers = ["127.0.0.1:53"]

[[certificates]]
name = "www"
provider = "main"
product = "ssl_dv_geotrust"
common_name = "example.com"
dns_names = ["www.example.com"]
dcv = ["dns-txt", "http", "email"]
publisher = "bind"
http_publisher = "www"
output_dir = "/tmp/certs/www"
"#
    )
}

/// `base()` with each `(old, new)` replaced once; panics if `old` is not there.
pub(super) fn with(edits: &[(&str, &str)]) -> String {
    let mut s = base();
    for (old, new) in edits {
        assert!(s.contains(old), "test setup: `{old}` not in base config");
        s = s.replacen(old, new, 1);
    }
    s
}

pub(super) fn problems(toml: &str) -> Vec<ConfigProblem> {
    match load_from_str(toml, None) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

#[test]
fn base_config_loads_with_defaults_and_secrets() {
    let cfg = load_from_str(&base(), None).unwrap();
    assert_eq!(cfg.daemon.concurrency, 8);
    assert_eq!(cfg.daemon.listen, "127.0.0.1:9750");
    assert_eq!(cfg.certificates[0].dcv.len(), 3);
    assert_eq!(cfg.certificates[0].key.0, crate::model::KeyType::EcdsaP256);
    match &cfg.publishers["bind"] {
        PublisherConfig::Rfc2136(r) => {
            use secrecy::ExposeSecret;
            assert_eq!(r.tsig_secret.as_ref().unwrap().expose_secret(), TSIG_B64);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn allowed_variants_load() {
    let ok = [
        // email with no approver for a name: the provider will be asked
        with(&[]),
        with(&[("output_dir", "max_resends = 0\noutput_dir")]),
        // approver keyed by the wildcard name
        with(&[
            ("\"www.example.com\"]", "\"*.example.com\"]"),
            ("\"dns-txt\", \"http\", \"email\"", "\"dns-txt\", \"email\""),
            (
                "output_dir",
                "approver_emails = { \"*.example.com\" = \"admin@example.com\" }\noutput_dir",
            ),
        ]),
        // a WHOIS contact listed in approver_contacts may approve
        with(&[(
            "output_dir",
            "approver_emails = { \"www.example.com\" = \"jane@corp.test\" }\napprover_contacts = [\"jane@corp.test\"]\noutput_dir",
        )]),
        // constructed address at a parent domain, case-insensitive
        with(&[(
            "output_dir",
            "approver_emails = { \"www.example.com\" = \"Admin@Example.com\" }\noutput_dir",
        )]),
        // bare IP resolver means port 53; DNS name as rfc2136 server
        with(&[
            ("\"127.0.0.1:53\"]", "\"127.0.0.1\", \"[::1]:5353\"]"),
            (
                "server = \"127.0.0.1:53\"",
                "server = \"ns1.example.com:53\"",
            ),
        ]),
        // IDN names become punycode
        with(&[(
            "\"www.example.com\"]",
            "\"www.example.com\", \"bücher.example.com\"]",
        )]),
        // sectigo with dns-cname and https via an exec publisher
        with(&[
            ("provider = \"main\"", "provider = \"reseller\""),
            (
                "\"dns-txt\", \"http\", \"email\"",
                "\"dns-cname\", \"https\"",
            ),
            ("http_publisher = \"www\"", "http_publisher = \"hook\""),
        ]),
        // empty rate limit list = no limit
        with(&[(
            "kind = \"digicert\"",
            "kind = \"digicert\"\nrate_limits = []",
        )]),
    ];
    for (i, toml) in ok.iter().enumerate() {
        let ps = problems(toml);
        assert!(
            ps.is_empty(),
            "case {i} refused:\n{}",
            ConfigErrors::new(None, ps)
        );
    }
}

#[test]
fn five_problems_are_reported_at_once() {
    let toml = with(&[
        ("concurrency = 8", "concurrency = 0"),
        ("server = \"127.0.0.1:53\"", "server = \"nowhere\""),
        ("provider = \"main\"", "provider = \"missing\""),
        (
            "output_dir = \"/tmp/certs/www\"",
            "output_dir = \"relative\"",
        ),
        ("\"127.0.0.1:53\"]", "\"bad\"]"),
    ]);
    let err = load_from_str(&toml, None).unwrap_err();
    assert_eq!(err.len(), 5, "{err}");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 5);
    for key in [
        "daemon.concurrency: ",
        "publishers.bind.server: ",
        "certificate \"www\": provider: ",
        "certificate \"www\": output_dir: ",
        "dns.resolvers[0]: ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(key)),
            "{key} missing in:\n{text}"
        );
    }
}

#[test]
fn unknown_keys_in_several_sections_are_all_reported() {
    let toml = with(&[
        ("concurrency = 8", "concurrency = 8\nthreads = 2"),
        ("output_dir", "colour = \"red\"\noutput_dir"),
        ("kind = \"webroot\"", "kind = \"webroot\"\nroot = \"/x\""),
    ]);
    let keys: Vec<String> = problems(&toml).into_iter().map(|p| p.key).collect();
    for k in [
        "daemon.threads",
        "certificate \"www\": colour",
        "publishers.www.root",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
}

#[test]
fn rate_limit_defaults_per_kind() {
    let cfg = load_from_str(&base(), None).unwrap();
    let main = rate_limits(&cfg.providers["main"]);
    assert_eq!(
        main,
        vec!["100/5s".parse().unwrap(), "1000/5m".parse().unwrap()]
    );
    assert_eq!(
        rate_limits(&cfg.providers["reseller"]),
        vec!["10/1s".parse().unwrap()]
    );
    let cfg = load_from_str(
        &with(&[(
            "kind = \"digicert\"",
            "kind = \"digicert\"\nrate_limits = []",
        )]),
        None,
    )
    .unwrap();
    assert!(rate_limits(&cfg.providers["main"]).is_empty());
}

#[test]
fn cron_messages_explain_the_seconds_field() {
    assert!(rules::check_cron("0 0 */6 * * *").is_ok());
    let five = rules::check_cron("*/5 * * * *").unwrap_err();
    assert!(five.contains("\"0 */5 * * * *\""), "{five}");
    let bad = rules::check_cron("61 * * * * *").unwrap_err();
    assert!(bad.contains("seconds first"), "{bad}");
}

#[test]
fn certificate_helpers() {
    let toml = with(&[
        (
            "dns_names = [\"www.example.com\"]",
            "dns_names = [\"WWW.example.com\", \"Example.com\", \"bücher.example.com\"]",
        ),
        (
            "output_dir",
            "approver_emails = { \"example.com\" = \"admin@example.com\", \"www.example.com\" = \"webmaster@www.example.com\" }\noutput_dir",
        ),
    ]);
    let cfg = load_from_str(&toml, None).unwrap();
    let c = &cfg.certificates[0];
    let n = c.names();
    let names: Vec<&str> = n.iter().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "example.com",
            "www.example.com",
            "xn--bcher-kva.example.com"
        ]
    );
    assert_eq!(c.approver_for(&n[0]), Some("admin@example.com"));
    assert_eq!(c.approver_for(&n[1]), Some("webmaster@www.example.com"));
    assert_eq!(c.approver_for(&n[2]), Some("admin@example.com"));
    assert_eq!(
        c.publisher_for(crate::model::DcvMethod::DnsTxt),
        Some("bind")
    );
    assert_eq!(c.publisher_for(crate::model::DcvMethod::Http), Some("www"));
    assert_eq!(c.publisher_for(crate::model::DcvMethod::Email), None);
}
