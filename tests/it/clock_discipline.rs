//! One clock: nothing reads the wall clock except `src/clock.rs` (the injected `Clock`
//! and its real-time default). A test that reads the time gets it from the clock it
//! drives, so no test depends on today's date.

use std::path::Path;

/// Ways of reading the wall clock, split so this file does not match itself.
const READS: &[(&str, &str)] = &[
    ("Utc::", "now("),
    ("Local::", "now("),
    ("SystemTime::", "now("),
    ("OffsetDateTime::", "now_utc("),
    ("OffsetDateTime::", "now_local("),
];

fn scan(dir: &Path, hits: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            scan(&path, hits);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                for (a, b) in READS {
                    if line.contains(&format!("{a}{b}")) {
                        hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
}

#[test]
fn only_the_clock_module_reads_the_wall_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hits = Vec::new();
    for dir in ["src", "tests", "benches"] {
        scan(&root.join(dir), &mut hits);
    }
    hits.retain(|h| !h.starts_with(&root.join("src/clock.rs").display().to_string()));
    assert!(
        hits.is_empty(),
        "read the time through dcvd::clock (the engine's Clock, or SystemClock where real \
         time is the point), not directly:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_scan_sees_a_direct_read() {
    // The scan must be able to fail: a file with a direct read is reported.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.rs"),
        format!(
            "fn f() {{ let _ = chrono::{}{}); }}\n",
            READS[0].0, READS[0].1
        ),
    )
    .unwrap();
    let mut hits = Vec::new();
    scan(dir.path(), &mut hits);
    assert_eq!(hits.len(), 1, "{hits:?}");
}
