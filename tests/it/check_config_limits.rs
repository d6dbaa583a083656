//! `dcvd check-config` refuses what the CA would refuse (R17's measured cases) with exit
//! status 2 and one line per problem, naming the key and the value; a config that only
//! uses edge cases the CAs accept exits 0.

use crate::support::dcvd_command;

fn check(toml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcvd.toml");
    std::fs::write(
        &path,
        toml.replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let out = dcvd_command(&path).arg("check-config").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn config(daemon_extra: &str, names: &str, cert_extra: &str) -> String {
    format!(
        r#"
[daemon]
database = "{{dir}}/dcvd.db"
{daemon_extra}
[providers.main]
kind = "digicert"
api_key = "k"
[publishers.m]
kind = "manual"
[[certificates]]
name = "rel"
provider = "main"
product = "ssl_dv_geotrust"
{names}
dcv = ["dns-txt"]
publisher = "m"
output_dir = "{{dir}}/certs/rel"
{cert_extra}
"#
    )
}

#[test]
fn r17_cases_are_refused_by_check_config() {
    let many: Vec<String> = (0..10_000).map(|i| format!("\"n{i}.rel.test\"")).collect();
    let (code, out) = check(&config(
        "shutdown_timeout = \"500000000years\"",
        &format!(
            "common_name = \"_one.rel.test\"\ndns_names = [\"💩.rel.test\", {}]",
            many.join(", ")
        ),
        "validity_days = 100000",
    ));
    assert_eq!(code, 2, "{out}");
    for want in [
        "dcvd.toml: certificate \"rel\": common_name: `_one.rel.test` cannot be in a publicly trusted certificate",
        "dcvd.toml: certificate \"rel\": dns_names[0]: `💩.rel.test` cannot be in a publicly trusted certificate",
        "xn--ls8h",
        "dcvd.toml: certificate \"rel\": validity_days: is 100000",
        "dcvd.toml: certificate \"rel\": dns_names: certificate `rel` has 10002 distinct names",
        "daemon.shutdown_timeout: is over",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn accepted_edge_cases_pass_check_config() {
    let label_63 = "a".repeat(63);
    let (code, out) = check(&config(
        "shutdown_timeout = \"1h\"",
        &format!(
            "common_name = \"bücher.rel.test\"\ndns_names = [\"*.rel.test\", \"{label_63}.rel.test\"]"
        ),
        "validity_days = 47",
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid (1 certificates"), "{out}");
}
