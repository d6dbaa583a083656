//! Command line of the Sectigo simulator (`dcvd-sim sectigo`), parsed with clap.

use std::net::SocketAddr;
use std::time::Duration;

use super::{SectigoSimOptions, SimError, start};
use crate::sim::Faults;

/// Command-line options for a `dcvd-sim sectigo` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct SectigoSimArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[arg(long, default_value = "dcvd")]
    pub login_name: String,
    #[arg(
        long,
        env = "DCVD_SIM_SECTIGO_PASSWORD",
        default_value = "sim-password",
        hide_env_values = true
    )]
    pub login_password: String,
    /// Authoritative nameserver for CNAME checks, e.g. 127.0.0.1:5353.
    #[arg(long)]
    pub nameserver: Option<SocketAddr>,
    /// `host=ip:port` where HTTP DCV files for `host` are fetched (repeatable).
    #[arg(long = "http-address", value_parser = parse_host_addr)]
    pub http_addresses: Vec<(String, SocketAddr)>,
    /// Background re-check interval for pending orders (0s = off).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub check_interval: Duration,
    /// Call limit before -42, as `N/window`, e.g. `100/1m`.
    #[arg(long, value_parser = parse_rate)]
    pub rate_limit: Option<(u32, Duration)>,
    /// How long `!AutoApplySSL` takes to create the order (it is created even if the
    /// client gave up meanwhile).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub create_delay: Duration,
    /// Fault injection as JSON (`sim::Faults`), e.g. '{"malformed_rate":0.1,"latency":"200ms"}'.
    #[arg(long, value_parser = parse_faults)]
    pub faults: Option<Faults>,
}

fn parse_host_addr(s: &str) -> Result<(String, SocketAddr), String> {
    let (h, a) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write host=ip:port"))?;
    Ok((
        h.to_ascii_lowercase(),
        a.parse().map_err(|e| format!("`{a}`: {e}"))?,
    ))
}
/// `N/window`, e.g. `100/1m`.
fn parse_rate(s: &str) -> Result<(u32, Duration), String> {
    let (n, w) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: write N/window, e.g. 100/1m"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: {n:?} is not a whole number of calls"))?;
    let window = humantime::parse_duration(w.trim()).map_err(|e| format!("`{s}`: {e}"))?;
    if n == 0 || window.is_zero() {
        return Err(format!("`{s}`: calls and window must be above zero"));
    }
    Ok((n, window))
}
fn parse_faults(s: &str) -> Result<Faults, String> {
    serde_json::from_str(s).map_err(|e| format!("faults JSON: {e}"))
}

/// Start from command-line options, print the base URL, run until Ctrl-C.
pub async fn run_from_args(args: SectigoSimArgs) -> Result<(), SimError> {
    let sim = start(SectigoSimOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
        login_name: args.login_name,
        login_password: args.login_password,
        nameserver: args.nameserver,
        http_addresses: args.http_addresses.into_iter().collect(),
        check_interval: args.check_interval,
        rate_limit: args.rate_limit,
        faults: args.faults.unwrap_or_default(),
        collect_latency: Duration::ZERO,
        clock: crate::clock::system(),
        create_delay: args.create_delay,
    })
    .await?;
    println!("Sectigo simulator listening; base_url = {}", sim.base_url());
    tokio::signal::ctrl_c().await.map_err(|e| SimError::Setup {
        sim: "Sectigo",
        what: "waiting for Ctrl-C",
        detail: e.to_string(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: SectigoSimArgs,
    }

    #[test]
    fn parses_flags() {
        let c = Cmd::try_parse_from([
            "dcvd-sim",
            "--http-address",
            "WWW.example.test=127.0.0.1:8080",
            "--rate-limit",
            "10/1m",
            "--check-interval",
            "0s",
            "--create-delay",
            "2s",
            "--faults",
            r#"{"malformed_rate":0.5}"#,
        ])
        .unwrap();
        assert_eq!(c.args.http_addresses[0].0, "www.example.test");
        assert_eq!(c.args.rate_limit, Some((10, Duration::from_secs(60))));
        assert!(c.args.check_interval.is_zero());
        assert_eq!(c.args.create_delay, Duration::from_secs(2));
        assert_eq!(c.args.faults.unwrap().malformed_rate, 0.5);
        assert!(Cmd::try_parse_from(["dcvd-sim", "--http-address", "nohost"]).is_err());
    }
}
