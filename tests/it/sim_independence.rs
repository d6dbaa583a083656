//! The simulators are written from the CA documents, never from the clients: nothing under
//! `src/sim` may use the CA clients' code or types (`crate::ca`), or the client's CSR
//! hash computation (`crate::pki`). A simulator that shares a client's types agrees with
//! every misreading of the API, and no test could see it.

use std::path::Path;

const FORBIDDEN: &[&str] = &["crate::ca", "dcvd::ca", "crate::pki", "dcvd::pki"];

fn uses(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            uses(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            // Code only: what the comments say about the rule is not a use.
            let text: String = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            for f in FORBIDDEN {
                if text.contains(f) {
                    out.push(format!("{}: uses {f}", p.display()));
                }
            }
            // Grouped imports: `use crate::{model::X, provider::…};`.
            for stmt in text.split("use ").skip(1) {
                let stmt = stmt.split(';').next().unwrap_or("");
                let words: Vec<&str> = stmt
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .collect();
                if words.first() == Some(&"crate")
                    && words.iter().any(|w| *w == "provider" || *w == "csr")
                    && !FORBIDDEN.iter().any(|f| stmt.contains(f))
                {
                    out.push(format!("{}: uses {}", p.display(), stmt.trim()));
                }
            }
        }
    }
}

#[test]
fn the_simulators_share_no_code_with_the_ca_clients() {
    let mut found = Vec::new();
    uses(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim"),
        &mut found,
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_scan_sees_a_use_of_the_client() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.rs"),
        "use crate::{\n    model::X,\n    provider::digicert::wire::Order,\n};\n",
    )
    .unwrap();
    let mut found = Vec::new();
    uses(dir.path(), &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
}
