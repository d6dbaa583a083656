//! dcvd orders DV certificates from DigiCert CertCentral, Sectigo and ACME CAs and takes
//! Domain Control Validation from order to installed certificate without a person.
//!
//! # Layout (each module imports only from those above it; `tests/layering.rs` checks)
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
//! - [`lifecycle`]: an order's life: renewal, creation, the decision table, the steps.
//! - [`app`]: the daemon: scheduler loop, HTTP API and metrics endpoint, systemd, reload.
//! - [`cli`]: the `dcvd` commands, including `dcvd demo`.
//! - [`sim`]: CA and DNS simulators for the demo, tests and benches (uses no CA client).
//!
//! # Where to look
//! - When is a certificate renewed? `lifecycle/engine.rs` `need_for` (changed names,
//!   renewal window, ARI), run by `ensure_orders` on `renewal_check`.
//! - Where does an order's state change? Decided in `lifecycle/decide.rs` (`decide`), applied
//!   by the steps in `lifecycle/reconcile/` (`apply.rs` folds CA answers), written once per
//!   step by `store/orders.rs` `save`.
//! - What is the retry policy? `lifecycle/reconcile/mod.rs` `error_policy` (capped,
//!   jittered backoff by `ErrorKind`); check polling backs off in `reconcile/steps/dcv.rs`;
//!   the CA rate limits are `ca/limit.rs`, taken per request and paused in `ca/transport.rs`.
//! - Who removes published tokens? The cleanup journal: written before a token is published
//!   (`store/journal.rs`), made due when the order ends, worked by `lifecycle/engine.rs`
//!   `cleanup_due`.
//! - What are `Services` (`lifecycle/services.rs` `Runtime`)? The config with the providers,
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
