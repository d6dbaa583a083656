//! dcvd orders DV certificates from DigiCert CertCentral, Sectigo and ACME CAs and takes
//! Domain Control Validation from order to installed certificate without a person.
//!
//! # Layout (each module imports only from those above it; `tests/it/layering.rs` checks)
//! - [`model`]: the shared vocabulary: names, DCV methods, order/authorization states,
//!   `Order`/`Authorization` rows, check reports, `ErrorKind`, rate limits.
//! - [`clock`]: the one source of "now" (tests and faketime move it); [`metrics`]: the
//!   Prometheus registry; [`net`]: the one rustls crypto install and base HTTP client.
//! - [`config`]: load `dcvd.toml`, resolve secrets, validate everything before starting.
//! - [`pki`]: private keys, CSRs, strict PEM, checking an issued leaf, installing files.
//! - [`dcv`]: our side of validation: DNS wire code (`dns`), token publishers
//!   (`publish`), propagation self-checks of every authoritative server (`check`).
//! - [`ca`]: the CA-neutral `Provider` trait, errors, the rate limiter; `digicert`,
//!   `sectigo`, `acme` clients.
//! - [`store`]: SQLite: orders, authorizations, events, the cleanup journal, ACME accounts.
//! - [`lifecycle`]: an order's life: renewal, creation, decisions and transitions, steps,
//!   retries, token cleanup (its `mod.rs` answers the questions below, file by file).
//! - [`app`]: the daemon: scheduler loop, HTTP API and metrics endpoint, systemd, reload.
//! - [`cli`]: the `dcvd` commands, including `dcvd demo`.
//! - [`sim`]: CA and DNS simulators for the demo, tests and benches (uses no CA client).
//!
//! # Where to look
//! - When is a certificate renewed? `lifecycle/renew.rs` `need_for` (first order, changed
//!   names, `renew_before`, retry after a failure) and the ACME ARI window, run by
//!   `ensure_orders` at start-up and on `renewal_check`.
//! - Where does an order's state change? `lifecycle/decide.rs`: `decide` picks the next
//!   action, its `Change` transitions are every state write (`first_method` for a new
//!   order); `lifecycle/step.rs` applies them and writes once per step (`store/orders.rs`).
//! - What is the retry policy? `lifecycle/retry.rs`, the only place with retry rules:
//!   `error_policy` (capped, jittered backoff by `ErrorKind`), `after_step_error` (a failed
//!   propagation check is never terminal), check polling, damaged rows, cleanups; the CA
//!   rate limits are `ca/limit.rs`, taken per request and paused in `ca/transport.rs`.
//! - Who removes published tokens? `lifecycle/cleanup.rs` `cleanup_due`, working the
//!   cleanup journal (`store/journal.rs`) that each token enters before it is published.
//! - What is `Services`? `lifecycle/services.rs`: the config with the providers,
//!   publishers and checker built from it; swapped whole on SIGHUP, while the rate limiters
//!   (`ca::limit::Limiters`) live on across reloads.
pub mod app;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dcv;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod net;
pub mod pki;
pub mod sim;
pub mod store;
