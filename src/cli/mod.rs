//! The `dcvd` command line: argument parsing and dispatch. Inspection commands read the
//! database directly, so they work while the daemon is stopped.

/// `println!` for command output: when stdout is a closed pipe (`dcvd orders show x |
/// head`), stop quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if writeln!(out, $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod adopt;
mod certificates;
pub mod demo;
mod inspect;
mod orders;
mod run;
mod status;
mod verbs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::OrderState;

#[derive(Debug, Parser)]
#[command(
    name = "dcvd",
    version,
    about = "DV certificates from DigiCert and Sectigo, DCV included"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "DCVD_CONFIG",
        default_value = "/etc/dcvd/dcvd.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Validate the configuration; exit 0 when valid, 2 when not.
    CheckConfig {
        /// With `include`: list every file read and how many certificates each holds.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Summary: orders by state, what is stuck and why, next renewals, provider health.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Inspect and steer orders.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Every certificate: its names, provider, state, expiry, next renewal, last order and
    /// source (ordered or adopted); also those only in the database (not_configured).
    Certificates {
        #[arg(long)]
        json: bool,
    },
    /// What the first start does for each certificate dcvd has not ordered yet: adopt the
    /// valid certificate already in its output_dir, order a new one, or refuse (and
    /// wait for the operator), and why. Without --dry-run the adoptions and refusals
    /// are recorded (the daemon does the same at its next renewal check). Exit 1 when
    /// any certificate is refused.
    Adopt {
        /// Only show what would happen; open the database read-only.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Order certificates now: those due, or with --force even when not due.
    ///
    /// Orders each NAME that is due (renew_before, or the CA's renewal window), or with
    /// --force even when not due. A certificate with a live order
    /// is left alone (never two orders at once), and so is a paused one. The orders are
    /// written to the database; the running daemon takes them from there. Exit 1 when a
    /// NAME got no order (live order, held, damaged); with --wait, exit 0 once every
    /// placed order is issued and 1 when one failed or was canceled.
    Renew {
        /// Certificate names (as in `dcvd certificates`).
        names: Vec<String>,
        /// Place a new order even when the certificate is not due (each one is a purchase).
        #[arg(long)]
        force: bool,
        /// Renew only those that are due; without NAME, every configured certificate that is.
        #[arg(long)]
        due: bool,
        /// Follow the placed orders until they end, printing each state change.
        #[arg(long)]
        wait: bool,
    },
    /// Pause certificates: no new order and no renewal until `dcvd resume`.
    ///
    /// A live order continues (`dcvd orders cancel NAME` stops it, and pauses too).
    Pause {
        /// Certificate names (as in `dcvd certificates`).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Resume paused certificates: the daemon orders and renews them again when due.
    Resume {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Forget a certificate removed from the configuration (its rows and history).
    ///
    /// Deletes its database row and its orders' history (events, authorizations), after confirmation; its metrics go
    /// with it. Refused while it is configured, has a live order, or has published tokens
    /// still to be removed. Its files in output_dir are not touched.
    Forget {
        name: String,
        /// Confirm without a prompt (required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// DNS tools.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Run the whole pipeline locally against simulators, an in-process DNS server and
    /// SQLite, to issued certificates.
    Demo {
        /// Exit 0 once every certificate is issued (non-zero on any failure).
        #[arg(long)]
        exit_when_done: bool,
        /// Where to keep the database and certificates (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders.
    List {
        /// Only orders in this state (pending, submitting, submit_unknown, validating, awaiting_issuance, issued, failed, canceled).
        #[arg(long)]
        state: Option<OrderState>,
        #[arg(long)]
        json: bool,
    },
    /// One order: per-name DCV, last check per nameserver, event timeline.
    Show {
        /// Order id, or a certificate name (its newest order).
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a live order's next step now; for an ended order, place a new one for its certificate.
    Retry {
        /// Order id, or a certificate name (its live order, else its newest).
        target: String,
    },
    /// Cancel a live order at the CA and here; its tokens are removed. Its certificate is
    /// paused, so no new order follows by itself (`dcvd resume NAME` renews it again).
    Cancel {
        /// Order id, or a certificate name (its live order).
        target: String,
    },
    /// For an order whose submit is in doubt (submit_unknown, or submitting after an
    /// unanswered submit): take CA order CA_ORDER_ID as this order, after the CA confirms
    /// it carries the order's names.
    Adopt {
        /// Order id, or a certificate name (its live order).
        target: String,
        ca_order_id: String,
    },
    /// For an order whose submit is in doubt: allow dcvd to submit it again. If the CA
    /// already has it, this buys a second certificate; `--yes` confirms that.
    Resubmit {
        /// Order id, or a certificate name (its live order).
        target: String,
        /// Confirm that a new order may be placed although the CA may already have one.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// One propagation-check round; prints the per-nameserver table. Exit 0 only when the
    /// value is in place on every server it must be on.
    Check {
        fqdn: String,
        /// TXT or CNAME.
        rtype: String,
        value: String,
        #[arg(long)]
        json: bool,
    },
}

/// Exit code for "the configuration is invalid".
pub const EXIT_CONFIG: u8 = 2;

/// Run an inspection or steering command.
pub async fn run_command(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Status { json } => status::status(&cli.config, *json).await,
        Command::Certificates { json } => certificates::certificates(&cli.config, *json).await,
        Command::Adopt { dry_run, json } => adopt::adopt(&cli.config, *dry_run, *json).await,
        Command::Renew {
            names,
            force,
            due,
            wait,
        } => verbs::renew(&cli.config, names, *force, *due, *wait).await,
        Command::Pause { names } => verbs::pause(&cli.config, names).await,
        Command::Resume { names } => verbs::resume(&cli.config, names).await,
        Command::Forget { name, yes } => verbs::forget(&cli.config, name, *yes).await,
        Command::Orders(OrdersCommand::List { state, json }) => {
            inspect::list(&cli.config, *state, *json).await
        }
        Command::Orders(OrdersCommand::Show { target, json }) => {
            inspect::show(&cli.config, target, *json).await
        }
        Command::Orders(OrdersCommand::Retry { target }) => {
            orders::retry(&cli.config, target).await
        }
        Command::Orders(OrdersCommand::Cancel { target }) => {
            orders::cancel(&cli.config, target).await
        }
        Command::Orders(OrdersCommand::Adopt {
            target,
            ca_order_id,
        }) => orders::adopt(&cli.config, target, ca_order_id).await,
        Command::Orders(OrdersCommand::Resubmit { target, yes }) => {
            orders::resubmit(&cli.config, target, *yes).await
        }
        _ => anyhow::bail!("internal: {:?} is handled by main", cli.command),
    }
}

/// Run the parsed command; errors are printed for the operator and become exit codes.
pub async fn main(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Run => run::daemon(&cli.config).await,
        Command::CheckConfig { verbose } => run::check_config(&cli.config, *verbose),
        Command::Dns(DnsCommand::Check {
            fqdn,
            rtype,
            value,
            json,
        }) => run::dns_check(&cli.config, fqdn, rtype, value, *json).await,
        Command::Demo {
            exit_when_done,
            dir,
        } => crate::cli::demo::run(*exit_when_done, dir.clone()).await,
        _ => run_command(&cli).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
