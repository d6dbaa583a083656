//! A configuration split over files: `include` expansion and order, `[defaults]`
//! merging, `{name}` templates, and problems that name the file and the certificate.

use std::path::Path;

use super::include::{expand, render, wildcard_match};
use super::tests::problems;
use super::*;

/// Providers and publishers, no certificates.
fn head() -> &'static str {
    r#"
[providers.main]
kind = "digicert"
api_key = "dc-api-key-TOPSECRET-1"
[publishers.bind]
kind = "rfc2136"
server = "127.0.0.1:53"
tsig_key_name = "dcvd"
tsig_secret = "dHNpZy1zZWNyZXQtVE9QU0VDUkVULTM="
[publishers.hook]
kind = "exec"
command = ["/bin/true"]
"#
}

fn cert(name: &str, extra: &str) -> String {
    format!(
        "\n[[certificates]]\nname = \"{name}\"\ncommon_name = \"{name}.example.com\"\n{extra}\n"
    )
}

const DEFAULTS: &str = r#"
[defaults]
provider = "main"
product = "ssl_dv_geotrust"
publisher = "bind"
output_dir = "/var/lib/dcvd/certs/{name}"
renew_before = "20d"
deploy_hook = ["/usr/local/bin/deploy", "{name}", "{{literal}}"]
approver_emails = { "example.com" = "admin@example.com", "www.example.com" = "webmaster@example.com" }
"#;

#[test]
fn wildcards_match_like_a_shell_in_one_file_name() {
    for (p, n, want) in [
        ("*.toml", "shop.toml", true),
        ("*.toml", "shop.toml.bak", false),
        ("*.toml", ".#shop.toml", false),
        (".*.toml", ".hidden.toml", true),
        ("shop-?.toml", "shop-1.toml", true),
        ("shop-?.toml", "shop-12.toml", false),
        ("*a*b*", "xaybz", true),
        ("*a*b", "xaybz", false),
        ("*", "anything", true),
        ("exact.toml", "exact.toml", true),
        ("", "x", false),
    ] {
        assert_eq!(wildcard_match(p, n), want, "{p:?} against {n:?}");
    }
}

#[test]
fn patterns_expand_sorted_files_only_and_refuse_what_cannot_be_meant() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["b.toml", "a.toml", "c.toml.bak", ".#a.toml", "10.toml"] {
        std::fs::write(d.join(f), "").unwrap();
    }
    std::fs::create_dir(d.join("sub.toml")).unwrap();
    let names = |v: Vec<std::path::PathBuf>| -> Vec<String> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    // Relative patterns resolve against the base directory; matches come sorted, and a
    // directory or a leading-dot file is not taken.
    assert_eq!(
        names(expand(d, "*.toml").unwrap()),
        ["10.toml", "a.toml", "b.toml"]
    );
    assert_eq!(
        names(
            expand(
                Path::new("/nonexistent"),
                &format!("{}/?.toml", d.display())
            )
            .unwrap()
        ),
        ["a.toml", "b.toml"]
    );
    assert!(
        expand(d, "*.conf").unwrap().is_empty(),
        "no match is no error"
    );
    assert_eq!(names(expand(d, "a.toml").unwrap()), ["a.toml"]);
    let e = expand(d, "missing.toml").unwrap_err();
    assert!(e.contains("missing.toml` does not exist"), "{e}");
    let e = expand(d, "{a,b}.toml").unwrap_err();
    assert!(e.contains("not wildcards"), "{e}");
    let e = expand(d, "nodir/*.toml").unwrap_err();
    assert!(e.contains("nodir` does not exist"), "{e}");
    let e = expand(d, "*/a.toml").unwrap_err();
    assert!(e.contains("only in the file name"), "{e}");
    let e = expand(d, "sub.toml").unwrap_err();
    assert!(e.contains("is a directory"), "{e}");
    assert!(expand(d, " ").unwrap_err().contains("is empty"));
}

#[test]
fn templates_take_name_and_refuse_anything_else() {
    assert_eq!(
        render("/var/lib/dcvd/certs/{name}", Some("shop")).unwrap(),
        "/var/lib/dcvd/certs/shop"
    );
    assert_eq!(render("{name}-{name}", Some("a")).unwrap(), "a-a");
    assert_eq!(render("{{x}} }}", Some("a")).unwrap(), "{x} }");
    assert_eq!(render("/plain", Some("a")).unwrap(), "/plain");
    let e = render("/certs/{host}", Some("a")).unwrap_err();
    assert!(
        e.contains("{host}") && e.contains("only placeholder is {name}"),
        "{e}"
    );
    assert!(
        render("/certs/{name", Some("a"))
            .unwrap_err()
            .contains("never closed")
    );
    assert!(
        render("/certs/}", Some("a"))
            .unwrap_err()
            .contains("closes no")
    );
    assert!(
        render("/certs/{name}", Some("..")).is_err(),
        "no path escape"
    );
}

#[test]
fn defaults_fill_what_a_certificate_leaves_out_and_its_own_values_win() {
    let toml = format!(
        "{}{DEFAULTS}{}{}",
        head(),
        cert("shop", ""),
        cert(
            "www",
            "renew_before = \"10d\"\noutput_dir = \"/srv/{name}/tls\"\n\
             dns_names = [\"www.example.com\"]\n\
             approver_emails = { \"www.example.com\" = \"hostmaster@example.com\" }"
        )
    );
    let cfg = load_from_str(&toml, None).unwrap();
    let (shop, www) = (&cfg.certificates[0], &cfg.certificates[1]);
    assert_eq!(shop.provider, "main");
    assert_eq!(shop.publisher.as_deref(), Some("bind"));
    assert_eq!(shop.output_dir, Path::new("/var/lib/dcvd/certs/shop"));
    assert_eq!(
        shop.renew_before,
        std::time::Duration::from_secs(20 * 86400)
    );
    assert_eq!(
        shop.deploy_hook,
        ["/usr/local/bin/deploy", "shop", "{literal}"]
    );
    assert_eq!(www.renew_before, std::time::Duration::from_secs(10 * 86400));
    assert_eq!(www.output_dir, Path::new("/srv/www/tls"), "own template");
    assert_eq!(www.deploy_hook[1], "www");
    // Tables merge key by key, the certificate's entry winning.
    assert_eq!(www.approver_emails["example.com"], "admin@example.com");
    assert_eq!(
        www.approver_emails["www.example.com"],
        "hostmaster@example.com"
    );
    // The fast typed path assembles the same document as figment's.
    let fast = super::load::parse_typed(&toml, None)
        .expect("parses")
        .expect("valid");
    assert_eq!(format!("{fast:?}"), format!("{cfg:?}"));
}

#[test]
fn without_the_key_after_defaults_a_certificate_gets_todays_error() {
    let no_dir = DEFAULTS.replace("output_dir = \"/var/lib/dcvd/certs/{name}\"\n", "");
    let toml = format!("{}{no_dir}{}", head(), cert("shop", ""));
    let ps = problems(&toml);
    assert!(
        ps.iter()
            .any(|p| p.key == "certificate \"shop\": output_dir"
                && p.message == "is required but missing"),
        "{ps:?}"
    );
}

#[test]
fn bad_defaults_are_reported_once_at_their_key() {
    let od = "output_dir = \"/var/lib/dcvd/certs/{name}\"";
    for (old, new, key, needle) in [
        (
            "renew_before = \"20d\"",
            "renew_before = 20",
            "defaults.renew_before",
            "duration",
        ),
        (
            "renew_before = \"20d\"",
            "colour = 1",
            "defaults.colour",
            "unknown key",
        ),
        (
            "renew_before = \"20d\"",
            "name = \"x\"",
            "defaults.name",
            "names itself",
        ),
        (
            od,
            "output_dir = \"/certs/{host}\"",
            "defaults.output_dir",
            "placeholder {host}",
        ),
        (
            "\"{name}\", \"{{literal}}\"",
            "\"{name\"",
            "defaults.deploy_hook[1]",
            "never closed",
        ),
    ] {
        assert!(DEFAULTS.contains(old), "test setup: {old}");
        let d = DEFAULTS.replacen(old, new, 1);
        let toml = format!("{}{d}{}{}", head(), cert("a", ""), cert("b", ""));
        let ps = problems(&toml);
        let at: Vec<_> = ps.iter().filter(|p| p.key == key).collect();
        assert_eq!(at.len(), 1, "{key} once in {ps:?}");
        assert!(at[0].message.contains(needle), "{ps:?}");
        assert!(
            !ps.iter().any(|p| p.key.starts_with("certificate ")),
            "bad defaults are not repeated per certificate: {ps:?}"
        );
    }
}

#[test]
fn a_certificates_own_unknown_placeholder_names_the_certificate() {
    let toml = format!(
        "{}{DEFAULTS}{}",
        head(),
        cert("shop", "output_dir = \"/srv/{domain}\"")
    );
    let ps = problems(&toml);
    assert!(
        ps.iter()
            .any(|p| p.key == "certificate \"shop\": output_dir" && p.message.contains("{domain}")),
        "{ps:?}"
    );
}

/// A main file and `certificates.d/` under a temporary directory.
fn tree(main_extra: &str, files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certificates.d")).unwrap();
    std::fs::write(
        dir.path().join("dcvd.toml"),
        format!(
            "include = [\"certificates.d/*.toml\"]\n{}{DEFAULTS}{main_extra}",
            head()
        ),
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("certificates.d").join(name), text).unwrap();
    }
    dir
}

/// `load` the tree's main file inside a figment `Jail`, so no other test's `DCVD_`
/// variables are set meanwhile; `env` are set for this load only.
fn load_tree_env(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let mut out = None;
    figment::Jail::expect_with(|jail| {
        for (k, v) in env {
            jail.set_env(k, v);
        }
        out = Some(super::load(&dir.path().join("dcvd.toml")));
        Ok(())
    });
    out.expect("the jail ran")
}

fn load_tree(dir: &tempfile::TempDir) -> Result<Config, ConfigErrors> {
    load_tree_env(dir, &[])
}

#[test]
fn included_files_are_read_in_order_and_each_certificate_knows_its_file() {
    let dir = tree(
        &cert("main", ""),
        &[
            ("b.toml", cert("b1", "") + &cert("b2", "")),
            ("a.toml", cert("a1", "")),
            ("empty.toml", String::new()),
        ],
    );
    let cfg = load_tree(&dir).unwrap();
    let names: Vec<&str> = cfg.certificates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["main", "a1", "b1", "b2"]);
    let d = dir.path();
    let inc = d.join("certificates.d");
    assert_eq!(
        cfg.sources.files,
        [
            d.join("dcvd.toml"),
            inc.join("a.toml"),
            inc.join("b.toml"),
            inc.join("empty.toml")
        ]
    );
    assert!(cfg.sources.uses_include);
    // A file matched twice, and the main file matched by a pattern, are read once.
    let main = d.join("dcvd.toml");
    let text = std::fs::read_to_string(&main).unwrap().replacen(
        "include = [\"certificates.d/*.toml\"]",
        "include = [\"certificates.d/*.toml\", \"certificates.d/a.toml\", \"*.toml\"]",
        1,
    );
    std::fs::write(&main, text).unwrap();
    let again = load_tree(&dir).unwrap();
    assert_eq!(again.sources.files, cfg.sources.files);
    assert_eq!(again.certificates.len(), 4);
    assert_eq!(cfg.certificate_file(3), Some(inc.join("b.toml").as_path()));
    assert_eq!(
        cfg.certificate_key(3),
        format!("{}: certificate \"b2\"", inc.join("b.toml").display())
    );
    assert_eq!(cfg.certificate_file(0), Some(d.join("dcvd.toml").as_path()));
}

#[test]
fn included_file_problems_name_the_file_and_the_certificate() {
    let dir = tree(
        "",
        &[
            (
                "shop.toml",
                cert("shop", "dcv = [\"dns-cname\"]\npublisher = \"nope\""),
            ),
            ("www.toml", cert("www", "") + "[daemon]\nconcurrency = 2\n"),
            ("nested.toml", "include = [\"x/*.toml\"]\n".into()),
            (
                "broken.toml",
                "[[certificates]\nname = \"TOPSECRET\"".into(),
            ),
        ],
    );
    let err = load_tree(&dir).unwrap_err().to_string();
    let inc = dir.path().join("certificates.d");
    let f = |n: &str| inc.join(n).display().to_string();
    for want in [
        format!(
            "{}: certificate \"shop\": publisher: names publisher `nope`",
            f("shop.toml")
        ),
        format!(
            "{}: daemon: an included file holds only [[certificates]]",
            f("www.toml")
        ),
        format!("{}: include: includes do not nest", f("nested.toml")),
        format!("{}: TOML parse error", f("broken.toml")),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains("TOPSECRET"),
        "source lines must not be quoted:\n{err}"
    );
    assert!(
        !err.contains("certificates[0]"),
        "no index for named entries:\n{err}"
    );
}

#[test]
fn a_name_defined_in_two_files_names_both() {
    let dir = tree(
        "",
        &[
            ("a.toml", cert("shop", "")),
            ("b.toml", cert("other", "") + &cert("shop", "")),
        ],
    );
    let ps = load_tree(&dir).unwrap_err().problems;
    let inc = dir.path().join("certificates.d");
    let dup: Vec<_> = ps.iter().filter(|p| p.key.ends_with(": name")).collect();
    assert_eq!(dup.len(), 1, "{ps:?}");
    assert_eq!(
        dup[0].key,
        format!(
            "{}: certificate \"shop\": name",
            inc.join("b.toml").display()
        )
    );
    assert!(
        dup[0].message.contains(&format!(
            "already the name of certificates[0] in {}; this is certificates[1] in {}",
            inc.join("a.toml").display(),
            inc.join("b.toml").display()
        )),
        "{ps:?}"
    );
}

#[test]
fn a_pattern_matching_nothing_is_a_warning_and_a_missing_file_an_error() {
    let dir = tree("", &[]);
    let cfg = load_tree(&dir).expect("an empty certificates.d is fine");
    let ws = warnings(&cfg);
    assert!(
        ws.iter()
            .any(|w| w.key == "include[0]" && w.message.contains("matches no file")),
        "{ws:?}"
    );
    std::fs::write(
        dir.path().join("dcvd.toml"),
        format!(
            "include = [\"certificates.d/*.toml\", \"shop.toml\"]\n{}",
            head()
        ),
    )
    .unwrap();
    let err = load_tree(&dir).unwrap_err().to_string();
    assert!(
        err.contains("include[1]: `") && err.contains("shop.toml` does not exist"),
        "{err}"
    );
}

#[test]
fn an_entry_without_a_usable_name_keeps_its_index() {
    let toml = format!(
        "{}{DEFAULTS}\n[[certificates]]\ncommon_name = \"x.example.com\"\n",
        head()
    );
    let ps = problems(&toml);
    assert!(
        ps.iter()
            .any(|p| p.key == "certificates[0]: name" && p.message.contains("required")),
        "{ps:?}"
    );
}

#[test]
fn environment_overrides_apply_to_a_split_configuration() {
    let dir = tree("", &[("shop.toml", cert("shop", "publisher = \"nope\""))]);
    // Through figment (a DCVD_ variable is set): same assembly, same file-naming keys.
    let ps = load_tree_env(&dir, &[("DCVD_DAEMON__CONCURRENCY", "0")])
        .unwrap_err()
        .problems;
    let shop = dir.path().join("certificates.d/shop.toml");
    for key in [
        "daemon.concurrency".to_string(),
        format!("{}: certificate \"shop\": publisher", shop.display()),
    ] {
        assert!(ps.iter().any(|p| p.key == key), "{key} not in {ps:?}");
    }
    std::fs::write(&shop, cert("shop", "")).unwrap();
    let cfg = load_tree_env(&dir, &[("DCVD_DAEMON__CONCURRENCY", "4")]).unwrap();
    assert_eq!(cfg.daemon.concurrency, 4);
    assert_eq!(
        cfg.certificates[0].output_dir,
        Path::new("/var/lib/dcvd/certs/shop")
    );
    assert_eq!(cfg.certificate_file(0), Some(shop.as_path()));
    // include and defaults are the main file's: not settable from the environment.
    let ps = load_tree_env(&dir, &[("DCVD_DEFAULTS__PRODUCT", "\"x\"")])
        .unwrap_err()
        .problems;
    assert!(
        ps.iter()
            .any(|p| p.key == "defaults" && p.message.contains("environment")),
        "{ps:?}"
    );
}

#[test]
fn an_unreadable_included_file_is_an_error_naming_it() {
    let dir = tree("", &[("a.toml", cert("a", ""))]);
    let gone = dir.path().join("certificates.d/gone.toml");
    std::os::unix::fs::symlink(dir.path().join("nowhere.toml"), &gone).unwrap();
    let ps = load_tree(&dir).unwrap_err().problems;
    assert!(
        ps.iter().any(|p| p.key == gone.display().to_string()
            && p.message.starts_with("cannot read this included file")),
        "{ps:?}"
    );
}

#[test]
fn a_single_file_takes_the_one_step_parse_with_the_same_result() {
    let text = super::tests::base();
    assert!(!text.contains("include") && !text.contains("defaults"));
    let fast = super::load::parse_typed(&text, None)
        .expect("parses")
        .expect("valid");
    let slow = load_from_str(&text, None).unwrap();
    assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
    assert_eq!(fast.sources.certificates.len(), 1);
    assert!(!fast.sources.uses_include);
    assert!(
        fast.sources.report(true).is_empty(),
        "no files line without include"
    );
}
