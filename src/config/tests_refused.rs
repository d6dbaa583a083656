//! Every refused configuration names its key and says what is wrong.

use super::tests::{base, problems, with};
use super::*;

#[track_caller]
fn assert_refused(toml: &str, key: &str, needle: &str) {
    let ps = problems(toml);
    assert!(
        ps.iter()
            .any(|p| p.key == key && p.message.contains(needle)),
        "expected a problem at `{key}` mentioning `{needle}`, got:\n{}",
        ConfigErrors::new(None, ps.clone())
    );
}

#[test]
fn each_refused_case_names_its_key() {
    let c = "certificate \"www\"";
    let cases: Vec<(String, String, &str)> = vec![
        (
            with(&[("output_dir", "colour = \"red\"\noutput_dir")]),
            format!("{c}: colour"),
            "unknown key",
        ),
        (
            format!("{}\n[extras]\na = 1\n", base()),
            "extras".into(),
            "unknown section",
        ),
        (
            with(&[("kind = \"digicert\"", "kind = \"digicert\"\napikey = \"x\"")]),
            "providers.main.apikey".into(),
            "unknown key",
        ),
        (
            with(&[("kind = \"digicert\"", "kind = \"letsencrypt\"")]),
            "providers.main.kind".into(),
            "digicert",
        ),
        (
            with(&[(
                "common_name = \"example.com\"",
                "common_name = \"exa mple.com\"",
            )]),
            format!("{c}: common_name"),
            "not a valid DNS name",
        ),
        (
            with(&[("\"www.example.com\"]", "\"www.example.com\", \"a..b.com\"]")]),
            format!("{c}: dns_names[1]"),
            "empty label",
        ),
        (
            with(&[("provider = \"main\"", "provider = \"nope\"")]),
            format!("{c}: provider"),
            "main, reseller",
        ),
        (
            with(&[("publisher = \"bind\"", "publisher = \"nope\"")]),
            format!("{c}: publisher"),
            "not defined",
        ),
        (
            with(&[("http_publisher = \"www\"", "http_publisher = \"nope\"")]),
            format!("{c}: http_publisher"),
            "not defined",
        ),
        (
            with(&[("provider = \"main\"", "provider = \"reseller\"")]),
            format!("{c}: dcv[0]"),
            "not offered by sectigo",
        ),
        (
            with(&[("\"dns-txt\", \"http\", \"email\"", "\"dns-txt\", \"https\"")]),
            format!("{c}: dcv[1]"),
            "not offered by digicert",
        ),
        (
            with(&[("\"www.example.com\"]", "\"*.example.com\"]")]),
            format!("{c}: dcv[1]"),
            "wildcard name `*.example.com`",
        ),
        (
            with(&[("publisher = \"bind\"\n", "")]),
            format!("{c}: dcv[0]"),
            "needs a publisher",
        ),
        (
            with(&[("publisher = \"bind\"\n", "publisher = \"www\"\n")]),
            format!("{c}: dcv[0]"),
            "a webroot publisher",
        ),
        (
            with(&[("http_publisher = \"www\"\n", "")]),
            format!("{c}: dcv[1]"),
            "a rfc2136 publisher",
        ),
        (
            with(&[(
                "output_dir",
                "approver_emails = { \"example.com\" = \"bob@example.com\" }\noutput_dir",
            )]),
            format!("{c}: approver_emails.\"example.com\""),
            "approver_contacts",
        ),
        (
            with(&[(
                "output_dir",
                "approver_emails = { \"example.com\" = \"admin@other.test\" }\noutput_dir",
            )]),
            format!("{c}: approver_emails.\"example.com\""),
            "admin@",
        ),
        (
            with(&[(
                "output_dir",
                "approver_emails = { \"example.com\" = \"admin@www.example.com\" }\noutput_dir",
            )]),
            format!("{c}: approver_emails.\"example.com\""),
            "parent domain",
        ),
        (
            with(&[(
                "output_dir",
                "approver_emails = { \"other.test\" = \"admin@other.test\" }\noutput_dir",
            )]),
            format!("{c}: approver_emails.\"other.test\""),
            "neither a name",
        ),
        (
            with(&[("output_dir", "method_timeout = \"soon\"\noutput_dir")]),
            format!("{c}: method_timeout"),
            "90s or 2h",
        ),
        (
            with(&[("output_dir", "renew_before = 30\noutput_dir")]),
            format!("{c}: renew_before"),
            "90s or 2h",
        ),
        (
            with(&[("output_dir", "resend_schedule = \"0 9 * * *\"\noutput_dir")]),
            format!("{c}: resend_schedule"),
            "write \"0 0 9 * * *\"",
        ),
        (
            with(&[(
                "concurrency = 8",
                "concurrency = 8\nrenewal_check = \"every day\"",
            )]),
            "daemon.renewal_check".into(),
            "6 fields",
        ),
        (
            with(&[(
                "kind = \"digicert\"",
                "kind = \"digicert\"\nrate_limits = [\"100/5s\", \"lots\"]",
            )]),
            "providers.main.rate_limits[1]".into(),
            "100/5s",
        ),
        (
            with(&[("concurrency = 8", "concurrency = 8\nlisten = \"localhost\"")]),
            "daemon.listen".into(),
            "ip:port",
        ),
        (
            with(&[(
                "kind = \"digicert\"",
                "kind = \"digicert\"\nbase_url = \"ftp://ca.test\"",
            )]),
            "providers.main.base_url".into(),
            "https://",
        ),
        (
            with(&[(
                "kind = \"digicert\"",
                "kind = \"digicert\"\nbase_url = \"not a url\"",
            )]),
            "providers.main.base_url".into(),
            "not a URL",
        ),
        (
            with(&[("\"dns-txt\", \"http\", \"email\"", "")]),
            format!("{c}: dcv"),
            "is empty",
        ),
        (
            with(&[(
                "\"dns-txt\", \"http\", \"email\"",
                "\"dns-txt\", \"dns-txt\"",
            )]),
            format!("{c}: dcv[1]"),
            "twice",
        ),
        (
            with(&[("\"dns-txt\", \"http\", \"email\"", "\"dns\"")]),
            format!("{c}: dcv[0]"),
            "dns-txt, dns-cname",
        ),
        (
            with(&[("concurrency = 8", "concurrency = 0")]),
            "daemon.concurrency".into(),
            "at least 1",
        ),
        (
            with(&[("server = \"127.0.0.1:53\"", "server = \"127.0.0.1\"")]),
            "publishers.bind.server".into(),
            "host:port",
        ),
        (
            with(&[(
                "tsig_key_name = \"dcvd\"",
                "tsig_key_name = \"dcvd\"\ntsig_algorithm = \"hmac-md5\"",
            )]),
            "publishers.bind.tsig_algorithm".into(),
            "hmac-sha384",
        ),
        (
            with(&[(
                "tsig_key_name = \"dcvd\"",
                "tsig_key_name = \"dcvd\"\ntransport = \"quic\"",
            )]),
            "publishers.bind.transport".into(),
            "\"tcp\" or \"udp\"",
        ),
        (
            with(&[("\"127.0.0.1:53\"]", "\"dns.example:53\"]")]),
            "dns.resolvers[0]".into(),
            "IP address",
        ),
        (
            format!(
                "{}\n[dns.nameserver_overrides]\n\"example.com.\" = [\"ns1\"]\n",
                base()
            ),
            "dns.nameserver_overrides.\"example.com.\"[0]".into(),
            "IP address",
        ),
        (
            with(&[("path = \"/var/www/html\"", "path = \"www\"")]),
            "publishers.www.path".into(),
            "absolute",
        ),
        (
            with(&[("command = [\"/bin/true\"]", "command = []")]),
            "publishers.hook.command".into(),
            "program",
        ),
        (
            with(&[(
                "output_dir = \"/tmp/certs/www\"",
                "output_dir = \"certs/www\"",
            )]),
            format!("{c}: output_dir"),
            "absolute",
        ),
        (
            with(&[("login_name = \"acme\"\n", "")]),
            "providers.reseller.login_name".into(),
            "required",
        ),
        (
            with(&[("kind = \"exec\"\n", "")]),
            "publishers.hook.kind".into(),
            "required",
        ),
        (
            format!(
                "{}\n{}",
                base(),
                base()
                    .split("[[certificates]]")
                    .nth(1)
                    .map(|s| format!("[[certificates]]{s}"))
                    .unwrap_or_default()
            ),
            format!("{c}: name"),
            "is already the name of certificates[0]; this is certificates[1]; certificate names must be unique",
        ),
        (
            with(&[("[daemon]", "[daemon]\nshutdown_timeout = \"0s\"")]),
            "daemon.shutdown_timeout".into(),
            "is zero",
        ),
    ];
    for (toml, key, needle) in &cases {
        assert_refused(toml, key, needle);
    }
}

#[test]
fn acme_provider_problems_name_their_keys() {
    let toml = r#"
[daemon]
database = "/tmp/x.db"
[providers.le]
kind = "acme"
directory_url = "ftp://acme.test/dir"
contact = ["not-an-address"]
eab_hmac_key = "c2VjcmV0"
ca_file = "relative.pem"
[publishers.web]
kind = "webroot"
path = "/var/www"
[[certificates]]
name = "www"
provider = "le"
common_name = "www.example.com"
dcv = ["http", "email"]
http_publisher = "web"
output_dir = "/tmp/certs"
"#;
    let err = super::load_from_str(toml, None).unwrap_err().to_string();
    for want in [
        "providers.le.terms_accepted: is not true",
        "providers.le.directory_url:",
        "providers.le.contact[0]:",
        "providers.le.eab_kid: is missing",
        "providers.le.ca_file:",
        "certificate \"www\": dcv[1]: `email` is not offered by acme",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("product"), "ACME needs no product:\n{err}");
    assert!(!err.contains("c2VjcmV0"), "a secret leaked:\n{err}");
}

#[test]
fn acme_provider_with_eab_from_a_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("eab.key");
    std::fs::write(
        &key,
        "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W\n",
    )
    .unwrap();
    let toml = format!(
        r#"
[daemon]
database = "/tmp/x.db"
[providers.le]
kind = "acme"
directory_url = "https://acme.test/dir"
contact = ["hostmaster@example.com"]
terms_accepted = true
eab_kid = "kid-1"
eab_hmac_key_file = "{}"
[publishers.dns]
kind = "manual"
[[certificates]]
name = "www"
provider = "le"
common_name = "www.example.com"
dcv = ["dns-txt", "dns-cname"]
publisher = "dns"
output_dir = "/tmp/certs"
"#,
        key.display()
    );
    let cfg = super::load_from_str(&toml, None).unwrap_or_else(|e| panic!("{e}"));
    let super::ProviderConfig::Acme(a) = &cfg.providers["le"] else {
        panic!("not acme")
    };
    use secrecy::ExposeSecret;
    assert_eq!(
        a.eab_hmac_key.as_ref().unwrap().expose_secret(),
        "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    );
    assert!(crate::config::tls::decode_eab_key(a.eab_hmac_key.as_ref().unwrap()).is_ok());
}

#[test]
fn two_certificates_in_one_output_dir_are_refused_naming_both() {
    let second = r#"
[[certificates]]
name = "shop"
provider = "main"
product = "ssl_dv_geotrust"
common_name = "shop.example.com"
publisher = "bind"
output_dir = "/tmp/certs/./www/"
"#;
    let toml = format!("{}{second}", base());
    assert_refused(
        &toml,
        "certificate \"shop\": output_dir",
        "is also the output_dir of certificate `www`",
    );
    // Its own directory is fine.
    assert!(problems(&toml.replace("/tmp/certs/./www/", "/tmp/certs/shop")).is_empty());
}

#[test]
fn renew_before_not_shorter_than_the_lifetime_is_a_renewal_loop() {
    let c = "certificate \"www\": renew_before";
    assert_refused(
        &with(&[(
            "output_dir",
            "validity_days = 30\nrenew_before = \"30d\"\noutput_dir",
        )]),
        c,
        "valid for at most 30 days (validity_days)",
    );
    assert_refused(
        &with(&[("output_dir", "renew_before = \"398d\"\noutput_dir")]),
        c,
        "the CA/B Forum maximum",
    );
    assert!(
        problems(&with(&[(
            "output_dir",
            "validity_days = 30\nrenew_before = \"10d\"\noutput_dir"
        )]))
        .is_empty()
    );
}
