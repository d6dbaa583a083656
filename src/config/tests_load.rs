//! Loading tests: the file, `DCVD_` env overrides, secrets from files and systemd
//! credentials, the shipped example, and that secrets never leak into output.

use std::path::Path;

use figment::Jail;
use secrecy::ExposeSecret;

use super::tests::{DIGICERT_KEY, SECTIGO_PASS, TSIG_B64, base, problems, with};
use super::*;

fn api_key(cfg: &Config) -> String {
    match &cfg.providers["main"] {
        ProviderConfig::Digicert(d) => d
            .api_key
            .as_ref()
            .map(|s| s.expose_secret().to_string())
            .unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

fn tsig(cfg: &Config) -> String {
    match &cfg.publishers["bind"] {
        PublisherConfig::Rfc2136(r) => r
            .tsig_secret
            .as_ref()
            .map(|s| s.expose_secret().to_string())
            .unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

fn without_inline_key() -> String {
    with(&[(&format!("api_key = \"{DIGICERT_KEY}\"\n"), "")])
}

#[test]
fn env_overrides_file_values_and_supplies_secrets() {
    Jail::expect_with(|jail| {
        jail.create_file("dcvd.toml", &without_inline_key())?;
        jail.set_env("DCVD_DAEMON__CONCURRENCY", "4");
        jail.set_env("DCVD_PROVIDERS__MAIN__API_KEY", "\"0123\"");
        jail.set_env("DCVD_CONFIG", "/somewhere/else.toml");
        let cfg = load(&jail.directory().join("dcvd.toml")).map_err(|e| e.to_string())?;
        assert_eq!(cfg.daemon.concurrency, 4);
        assert_eq!(api_key(&cfg), "0123");
        Ok(())
    });
}

#[test]
fn unquoted_numeric_secret_from_env_is_refused_without_showing_it() {
    Jail::expect_with(|jail| {
        jail.create_file("dcvd.toml", &without_inline_key())?;
        jail.set_env("DCVD_PROVIDERS__MAIN__API_KEY", "98765432");
        let err = load(&jail.directory().join("dcvd.toml")).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(
            text.contains("providers.main.api_key: must be a string"),
            "{text}"
        );
        assert!(text.contains("quote it"), "{text}");
        assert!(!text.contains("98765432"), "{text}");
        Ok(())
    });
}

#[test]
fn credentials_directory_supplies_secrets() {
    Jail::expect_with(|jail| {
        let creds = jail.directory().join("creds");
        std::fs::create_dir(&creds).map_err(|e| e.to_string())?;
        std::fs::write(creds.join("main"), "from-credentials\n").map_err(|e| e.to_string())?;
        std::fs::write(
            creds.join("tsig.key"),
            format!("key \"dcvd\" {{ algorithm hmac-sha256; secret \"{TSIG_B64}\"; }};\n"),
        )
        .map_err(|e| e.to_string())?;
        let toml = without_inline_key().replacen(
            &format!("tsig_secret = \"{TSIG_B64}\""),
            "tsig_secret_file = \"tsig.key\"",
            1,
        );
        jail.create_file("dcvd.toml", &toml)?;
        jail.set_env("CREDENTIALS_DIRECTORY", creds.display());
        let cfg = load(&jail.directory().join("dcvd.toml")).map_err(|e| e.to_string())?;
        assert_eq!(api_key(&cfg), "from-credentials");
        assert_eq!(tsig(&cfg), TSIG_B64);
        Ok(())
    });
}

#[test]
fn missing_file_error_names_the_path() {
    let err = load(Path::new("/nonexistent/dcvd/dcvd.toml")).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(
        err.to_string().contains("/nonexistent/dcvd/dcvd.toml"),
        "{err}"
    );
    assert!(err.to_string().contains("--config"), "{err}");
}

#[test]
fn default_path_honours_dcvd_config() {
    Jail::expect_with(|jail| {
        jail.set_env("DCVD_CONFIG", "/srv/dcvd.toml");
        assert_eq!(default_path(), Path::new("/srv/dcvd.toml"));
        jail.set_env("DCVD_CONFIG", "");
        assert_eq!(default_path(), Path::new(DEFAULT_PATH));
        Ok(())
    });
}

#[test]
fn example_config_validates_when_its_secret_files_exist() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/dcvd.example.toml"
    ))
    .unwrap();
    let mut text = example.clone();
    for (file, content) in [
        ("digicert.key", format!("{DIGICERT_KEY}\n")),
        ("sectigo.pass", SECTIGO_PASS.to_string()),
        (
            "tsig.key",
            format!("key \"dcvd\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{TSIG_B64}\";\n}};\n"),
        ),
    ] {
        let from = format!("\"/etc/dcvd/{file}\"");
        assert!(text.contains(&from), "example lacks {from}");
        let to = dir.path().join(file);
        std::fs::write(&to, content).unwrap();
        text = text.replace(&from, &format!("{:?}", to.display().to_string()));
    }
    let path = dir.path().join("dcvd.toml");
    std::fs::write(&path, &text).unwrap();
    let cfg = load_from_str(&text, None).unwrap_or_else(|e| panic!("example refused:\n{e}"));
    assert_eq!(cfg.certificates.len(), 3);
    assert_eq!(api_key(&cfg), DIGICERT_KEY);
    assert_eq!(tsig(&cfg), TSIG_B64);
    // The unchanged example points at secret files that do not exist here: refused by key.
    let err = load_from_str(&example, None).unwrap_err().to_string();
    assert!(
        err.contains(
            "providers.main.api_key_file: cannot read the secret file /etc/dcvd/digicert.key"
        ),
        "{err}"
    );
}

#[test]
fn secret_files_are_trimmed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    std::fs::write(&key, format!("  {DIGICERT_KEY}\n\n")).unwrap();
    let toml = |file: &Path| {
        with(&[(
            &format!("api_key = \"{DIGICERT_KEY}\""),
            &format!("api_key_file = {:?}", file.display().to_string()),
        )])
    };
    assert_eq!(
        api_key(&load_from_str(&toml(&key), None).unwrap()),
        DIGICERT_KEY
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    let ps = problems(&toml(&empty));
    assert!(
        ps.iter().any(|p| p.key == "providers.main.api_key_file"
            && p.message.contains(&*empty.display().to_string())
            && p.message.contains("empty")),
        "{ps:?}"
    );

    let ps = problems(&toml(&dir.path().join("missing")));
    assert!(
        ps.iter()
            .any(|p| p.key == "providers.main.api_key_file" && p.message.contains("cannot read")),
        "{ps:?}"
    );

    // relative path without $CREDENTIALS_DIRECTORY; relative path with it
    let ps = problems(&toml(Path::new("k")));
    assert!(
        ps.iter().any(|p| p.message.contains("relative path")),
        "{ps:?}"
    );
    let cfg = load_from_str(&toml(Path::new("k")), Some(dir.path())).unwrap();
    assert_eq!(api_key(&cfg), DIGICERT_KEY);

    let both = with(&[(
        "kind = \"digicert\"",
        "kind = \"digicert\"\napi_key_file = \"/x\"",
    )]);
    assert!(
        problems(&both)
            .iter()
            .any(|p| p.key == "providers.main.api_key_file" && p.message.contains("only one"))
    );

    let none = without_inline_key();
    let ps = problems(&none);
    assert!(
        ps.iter().any(
            |p| p.key == "providers.main.api_key" && p.message.contains("LoadCredential=main:")
        ),
        "{ps:?}"
    );
    // a credentials directory without a file for this entry does not help
    assert!(!problems(&none).is_empty());
    let creds = tempfile::tempdir().unwrap();
    assert!(load_from_str(&none, Some(creds.path())).is_err());
}

#[test]
fn tsig_secret_formats_are_understood() {
    let bind_one_line =
        format!("key \"dcvd\" {{ algorithm hmac-sha256; secret \"{TSIG_B64}\"; }};");
    let bind_keygen =
        format!("key \"dcvd\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{TSIG_B64}\";\n}};\n");
    let knot = format!(
        "# hmac-sha256:dcvd:{TSIG_B64}\nkey:\n  - id: dcvd\n    algorithm: hmac-sha256\n    secret: {TSIG_B64}\n"
    );
    for text in [
        TSIG_B64.to_string(),
        format!("{TSIG_B64}\n"),
        bind_one_line,
        bind_keygen,
        knot,
    ] {
        assert_eq!(parse_tsig_secret(&text).as_deref(), Ok(TSIG_B64), "{text}");
    }
    for bad in [
        "not base64 TOPSECRET!",
        "secret \"!!TOPSECRET!!\";",
        "key \"x\" { algorithm hmac-sha256; };",
    ] {
        let err = parse_tsig_secret(bad).unwrap_err();
        assert!(!err.contains("TOPSECRET"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tsig.key");
    std::fs::write(
        &file,
        format!("key \"dcvd\" {{ algorithm hmac-sha512; secret \"{TSIG_B64}\"; }};"),
    )
    .unwrap();
    let toml = with(&[(
        &format!("tsig_secret = \"{TSIG_B64}\""),
        &format!("tsig_secret_file = {:?}", file.display().to_string()),
    )]);
    let ps = problems(&toml);
    assert!(
        ps.iter()
            .any(|p| p.key == "publishers.bind.tsig_secret_file"
                && p.message
                    .contains("`hmac-sha512` but publishers.bind.tsig_algorithm is `hmac-sha256`")),
        "{ps:?}"
    );
    assert!(
        problems(&toml.replacen(
            "tsig_key_name = \"dcvd\"",
            "tsig_key_name = \"dcvd\"\ntsig_algorithm = \"hmac-sha512\"",
            1
        ))
        .is_empty()
    );
    let ps = problems(&with(&[(TSIG_B64, "TOPSECRET-not-base64!")]));
    assert!(
        ps.iter()
            .any(|p| p.key == "publishers.bind.tsig_secret" && p.message.contains("base64")),
        "{ps:?}"
    );
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let cfg = load_from_str(&base(), None).unwrap();
    let debug = format!("{cfg:?} {cfg:#?}");
    for s in [DIGICERT_KEY, SECTIGO_PASS, TSIG_B64] {
        assert!(!debug.contains(s), "{s} leaked in Debug");
    }
    let broken = [
        // TOML syntax error on the secret's own line
        base().replacen(
            &format!("\"{DIGICERT_KEY}\""),
            &format!("\"{DIGICERT_KEY}"),
            1,
        ),
        // wrong type inline
        base().replacen(&format!("\"{SECTIGO_PASS}\""), "7777123499", 1),
        // invalid TSIG secret, many other problems around it
        with(&[
            (TSIG_B64, "TOPSECRET-3-not-base64!"),
            ("concurrency = 8", "concurrency = 0"),
            ("provider = \"main\"", "provider = \"x\""),
        ]),
    ];
    for toml in &broken {
        let err = load_from_str(toml, None).unwrap_err();
        let text = format!("{err}\n{err:?}");
        assert!(!err.is_empty());
        for s in [
            DIGICERT_KEY,
            SECTIGO_PASS,
            TSIG_B64,
            "TOPSECRET",
            "7777123499",
        ] {
            assert!(!text.contains(s), "{s} leaked in:\n{text}");
        }
    }
    let syntax = load_from_str(&broken[0], None).unwrap_err().to_string();
    assert!(syntax.contains("line"), "position kept: {syntax}");
}

/// The keys a schema struct accepts, from the error serde gives for an unknown one.
fn keys_of<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    use figment::error::Kind;
    use figment::value::{Dict, Value};
    let probe = Value::from(Dict::from([("zz_unknown".to_string(), Value::from("x"))]));
    let err = probe.deserialize::<T>().err().expect("unknown key refused");
    err.into_iter()
        .find_map(|e| match e.kind {
            Kind::UnknownField(_, expected) => Some(expected.to_vec()),
            _ => None,
        })
        .expect("an unknown-field error")
}

#[test]
fn example_config_shows_every_key() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/dcvd.example.toml"
    ))
    .unwrap();
    let all = [
        keys_of::<DaemonConfig>(),
        keys_of::<DigicertConfig>(),
        keys_of::<SectigoConfig>(),
        keys_of::<AcmeConfig>(),
        keys_of::<Rfc2136Config>(),
        keys_of::<ExecConfig>(),
        keys_of::<WebrootConfig>(),
        keys_of::<DnsConfig>(),
        keys_of::<HttpCheckConfig>(),
        keys_of::<CertificateConfig>(),
    ];
    assert!(all[0].contains(&"concurrency"), "{:?}", all[0]);
    for key in all.iter().flatten() {
        let shown = example.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} ="))
                || l.contains(&format!(" {key} = "))
                || l.contains(&format!("[{key}."))
                || l.contains(&format!(".{key}]"))
        });
        assert!(shown, "config/dcvd.example.toml does not show `{key}`");
    }
}
