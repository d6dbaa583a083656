//! `dcvd-sim`: runs a CA simulator until Ctrl-C (one subcommand per CA).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dcvd::sim::Faults;
use dcvd::sim::digicert::{DigicertSimOptions, start};

#[derive(Parser)]
#[command(
    name = "dcvd-sim",
    version,
    about = "CA API simulators for tests, benchmarks and demos"
)]
struct Cli {
    #[command(subcommand)]
    ca: Ca,
}

#[derive(Subcommand)]
enum Ca {
    /// DigiCert CertCentral Services API v2 (DV orders, DCV).
    Digicert(DigicertArgs),
    /// Sectigo reseller API (AutoApplySSL, AutoUpdateDCV, CollectSSL, CSR-hash DCV).
    Sectigo(dcvd::sim::sectigo::SectigoSimArgs),
}

#[derive(Args)]
struct FaultArgs {
    /// Added to every request, e.g. 200ms.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    latency: Duration,
    /// Share of requests answered 500 (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    server_error_rate: f64,
    /// Share of requests answered 429.
    #[arg(long, default_value_t = 0.0)]
    rate_limit_rate: f64,
    /// Share of requests whose connection is dropped mid-answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Share of requests answered 200 with a body that does not parse.
    #[arg(long, default_value_t = 0.0)]
    malformed_rate: f64,
}

#[derive(Args)]
struct DigicertArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Accepted X-DC-DEVKEY value (repeatable).
    #[arg(long = "api-key", required = true)]
    api_keys: Vec<String>,
    /// Authoritative DNS server to look DNS tokens up at.
    #[arg(long)]
    nameserver: Option<SocketAddr>,
    /// `host=ip:port`: fetch HTTP tokens for host from this address (repeatable).
    #[arg(long = "http-address", value_parser = parse_host_addr)]
    http_addresses: Vec<(String, SocketAddr)>,
    /// Turn the 100/5s + 1000/5m limits off.
    #[arg(long)]
    no_rate_limits: bool,
    /// Multiply the rate-limit windows (e.g. 0.01).
    #[arg(long, default_value_t = 1.0)]
    rate_limit_scale: f64,
    /// Send Retry-After (seconds) with 429 answers.
    #[arg(long)]
    retry_after: Option<u64>,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30days")]
    random_value_lifetime: Duration,
    /// Approve email orders by themselves after this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    auto_approve_email_after: Option<Duration>,
    /// DigiCert's own re-check interval for pending orders; 0s = off.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    recheck_interval: Duration,
    #[arg(long, default_value = "dcvd Simulated DigiCert")]
    ca_name: String,
    #[command(flatten)]
    faults: FaultArgs,
}

fn parse_host_addr(s: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write host=ip:port, e.g. www.example.com=127.0.0.1:8080"))?;
    let addr = addr
        .parse()
        .map_err(|e| format!("`{addr}` in `{s}` is not ip:port ({e})"))?;
    Ok((host.trim().to_ascii_lowercase(), addr))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dcvd::net::install_crypto();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match Cli::parse().ca {
        Ca::Digicert(a) => {
            let opts = DigicertSimOptions {
                listen: a.listen,
                api_keys: a.api_keys,
                nameserver: a.nameserver,
                http_addresses: a.http_addresses.into_iter().collect(),
                faults: Faults {
                    latency: a.faults.latency,
                    server_error_rate: a.faults.server_error_rate,
                    rate_limit_rate: a.faults.rate_limit_rate,
                    drop_rate: a.faults.drop_rate,
                    malformed_rate: a.faults.malformed_rate,
                },
                rate_limits: !a.no_rate_limits,
                rate_limit_scale: a.rate_limit_scale,
                retry_after: a.retry_after,
                random_value_lifetime: a.random_value_lifetime,
                auto_approve_email_after: a.auto_approve_email_after,
                recheck_interval: a.recheck_interval,
                ca_name: a.ca_name,
                clock: dcvd::clock::system(),
                create_delay: std::time::Duration::ZERO,
            };
            let sim = start(opts)
                .await
                .context("starting the DigiCert simulator")?;
            println!("listening on {}", sim.base_url());
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            sim.shutdown();
        }
        Ca::Sectigo(a) => dcvd::sim::sectigo::run_from_args(a)
            .await
            .context("running the Sectigo simulator")?,
    }
    Ok(())
}
