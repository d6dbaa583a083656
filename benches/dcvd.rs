//! `cargo bench --bench dcvd [-- NAME...]`: dcvd's benchmarks (issue 7), all on loopback,
//! printed as one table. NAME picks benches: throughput, economy, ratelimit, propagation,
//! idle, dnscheck. `--quick` (or `BENCH_QUICK=1`) runs small sizes; `--n=5000` (or
//! `BENCH_N=5000`) sets N for the throughput run (default: 1,000 and 10,000);
//! `--concurrency=256` sets `daemon.concurrency` for it (default 128). The variables are
//! not named `DCVD_*` because dcvd reads every `DCVD_` variable as a config key.

#[path = "dcvd/cpu.rs"]
mod cpu;
#[path = "dcvd/dnscheck.rs"]
mod dnscheck;
#[path = "dcvd/idle.rs"]
mod idle;
#[path = "dcvd/propagation.rs"]
mod propagation;
#[path = "dcvd/ratelimit.rs"]
mod ratelimit;
#[path = "dcvd/throughput.rs"]
mod throughput;
#[path = "dcvd/world.rs"]
mod world;

use std::time::Instant;

/// One line of the results table.
pub struct Row {
    pub bench: String,
    pub figure: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    pub fn new(bench: &str, figure: &str, value: String, target: &str, met: Option<bool>) -> Row {
        Row {
            bench: bench.into(),
            figure: figure.into(),
            value,
            target: target.into(),
            met,
        }
    }
}

/// `--name=value` from the command line, else `BENCH_NAME` from the environment.
pub fn setting(name: &str) -> Option<String> {
    let flag = format!("--{name}");
    for a in std::env::args().skip(1) {
        if a == flag {
            return Some("1".into());
        }
        if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            return Some(v.to_string());
        }
    }
    std::env::var(format!("BENCH_{}", name.to_ascii_uppercase())).ok()
}

pub fn quick() -> bool {
    setting("quick").is_some_and(|v| !v.is_empty() && v != "0")
}

/// p-th percentile (0..=100) of sorted values.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const ALL: &[&str] = &[
    "throughput",
    "economy",
    "ratelimit",
    "propagation",
    "idle",
    "dnscheck",
];

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var_os("RUST_LOG").is_some() {
        dcvd::app::telemetry::init(dcvd::config::LogFormat::Text);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let picked: Vec<&str> = if args.is_empty() {
        ALL.to_vec()
    } else {
        ALL.iter()
            .copied()
            .filter(|b| args.iter().any(|a| a == b))
            .collect()
    };
    if picked.is_empty() {
        eprintln!("unknown bench {args:?}; pick from {ALL:?}");
        std::process::exit(2);
    }
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut economy_done = false;
    for b in &picked {
        eprintln!("== {b}");
        let r = match *b {
            "throughput" => {
                let (r, econ) = throughput::run(picked.contains(&"economy"));
                economy_done = econ;
                r
            }
            "economy" if economy_done => Ok(Vec::new()),
            "economy" => throughput::economy_only(),
            "ratelimit" => ratelimit::run(),
            "propagation" => propagation::run(),
            "idle" => idle::run(),
            "dnscheck" => dnscheck::run(),
            _ => Ok(Vec::new()),
        };
        match r {
            Ok(mut r) => {
                for row in &r {
                    eprintln!("   {} | {} | {}", row.figure, row.value, row.target);
                }
                rows.append(&mut r)
            }
            Err(e) => rows.push(Row::new(b, "error", e, "", Some(false))),
        }
    }
    println!();
    println!(
        "dcvd benchmarks ({}; {} CPUs; {:.0} s)",
        if quick() { "quick" } else { "full" },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| # | bench | figure | value | target | met |");
    println!("|---|---|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {met} |",
            i + 1,
            r.bench,
            r.figure,
            r.value,
            r.target
        );
    }
}
