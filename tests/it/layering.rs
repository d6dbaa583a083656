//! The import graph of the library points one way: each top-level module of `src` uses
//! only modules of a lower layer (the map in `src/lib.rs`), and only the CLI (`dcvd demo`)
//! uses the simulators. Test code (`#[cfg(test)] mod tests`, `tests*.rs`) is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers, lowest first. A module may use modules of lower layers only (not its own).
const LAYERS: &[&[&str]] = &[
    &["model", "clock", "metrics", "net"],
    &["config"],
    &["pki"],
    &["dcv"],
    &["ca"],
    &["store"],
    &["lifecycle"],
    &["app"],
    &["cli"],
];

/// The simulators stand apart: written from the CA documents, they use only the shared
/// vocabulary, the clock and the DNS wire code (see `tests/sim_independence.rs`).
const SIM_MAY_USE: &[&str] = &["model", "clock", "dcv::dns"];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The production text of a file: comments and the inline test module removed.
fn production_text(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod ").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::a::b` paths used in `text`, as (first segment, first two segments).
fn crate_paths(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let path: Vec<&str> = after[..end].split("::").filter(|s| !s.is_empty()).collect();
        if let Some(first) = path.first() {
            let two = path.iter().take(2).copied().collect::<Vec<_>>().join("::");
            out.push((first.to_string(), two));
        }
        rest = &after[end..];
    }
    out
}

/// Every violation in the tree at `src`: `file: module uses target`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    collect(src, &mut files);
    let mut bad = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if rel.starts_with("bin/") || rel == "main.rs" || rel == "lib.rs" {
            continue;
        }
        if name.starts_with("tests") || rel.contains("/tests/") {
            continue;
        }
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = production_text(&std::fs::read_to_string(&f).unwrap());
        for (target, two) in crate_paths(&text) {
            if target == module {
                continue;
            }
            edges
                .entry(module.clone())
                .or_default()
                .insert(target.clone());
            let ok = if module == "sim" {
                SIM_MAY_USE.contains(&target.as_str()) || SIM_MAY_USE.contains(&two.as_str())
            } else if target == "sim" {
                module == "cli"
            } else {
                match (layer(&module), layer(&target)) {
                    (Some(m), Some(t)) => t < m,
                    _ => false,
                }
            };
            if !ok {
                bad.push(format!("{rel}: `{module}` uses `crate::{two}`"));
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layering of src/lib.rs (model, clock, metrics, net ← config ← pki ← \
         dcv ← ca ← store ← lifecycle ← app ← cli; sim uses only model, clock, dcv::dns):\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            let m = m.trim_end_matches(';');
            assert!(
                m == "sim" || layer(m).is_some(),
                "src/lib.rs declares `{m}`, which tests/layering.rs places in no layer"
            );
        }
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // The check must be able to fail: a store that uses the lifecycle, and a CA client
    // that uses the simulators, are both reported; a comment naming them is not.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::create_dir_all(src.join("ca")).unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "use crate::model::Order;\nuse crate::lifecycle::decide;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("ca/mod.rs"),
        "// crate::app is only named here\nuse crate::sim::dns::DnsSim;\n",
    )
    .unwrap();
    let bad = violations(src);
    assert_eq!(
        bad,
        vec![
            "ca/mod.rs: `ca` uses `crate::sim::dns`".to_string(),
            "store/mod.rs: `store` uses `crate::lifecycle::decide`".to_string(),
        ]
    );
}
