//! dcvd: orders DV certificates from DigiCert CertCentral and Sectigo and drives Domain
//! Control Validation to an installed certificate without a person.
//!
//! Modules, one job each:
//! - [`model`]: domain newtypes (DomainName, DcvMethod, states, Challenge).
//! - [`config`]: load and validate `dcvd.toml`, resolve secrets.
//! - [`csr`]: private keys, CSRs, CSR hashes (Sectigo), checking an issued leaf.
//! - [`provider`]: the CA-neutral Provider trait, errors, rate limiting; `digicert`, `sectigo`.
//! - [`publish`]: the Publisher trait and token publishers (rfc2136, exec, webroot, manual).
//! - [`dnscheck`]: the PropagationCheck trait: authoritative DNS and HTTP self-checks.
//! - [`sim`]: CA simulators and an in-process DNS server for tests, benchmarks and the demo.
pub mod cli;
pub mod clock;
pub mod config;
pub mod csr;
pub mod daemon;
pub mod demo;
pub mod dnscheck;
pub mod engine;
pub mod http;
pub mod install;
pub mod metrics;
pub mod model;
pub mod provider;
pub mod publish;
pub mod reconcile;
pub mod runtime;
pub mod scheduler;
pub mod sim;
pub mod state;
pub mod store;
pub mod telemetry;
