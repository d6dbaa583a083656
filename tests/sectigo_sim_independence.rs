//! The Sectigo simulator is written from the documents, not from the client: no file of
//! it uses `crate::provider` or `crate::csr` (so a misreading in the client cannot be
//! shared by the simulator and pass every test).

use std::path::{Path, PathBuf};

fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim");
    let mut out = vec![root.join("sectigo.rs")];
    for e in std::fs::read_dir(root.join("sectigo")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_sectigo_simulator_uses_nothing_of_the_client() {
    let files = sources();
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for banned in ["crate::provider", "crate::csr", "super::super::provider"] {
                assert!(
                    !code.contains(banned),
                    "{}:{}: the simulator uses {banned}: {line}",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}
