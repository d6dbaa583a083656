//! All integration tests in one binary: the library links once, not once per file.
//! `support` is the shared harness (fakes, test DNS/web servers, builders, the lab's
//! config loader); each other module is one former `tests/<name>.rs`. The interop tests
//! against third-party servers stay separate targets (`tests/interop_*.rs`, run by
//! `.ci/run` with `--ignored`).

mod support;

mod adopt;
mod ca_cancel;
mod certificate_verbs;
mod check_config_limits;
mod claim_panic;
mod cli;
mod clock_discipline;
mod config_split;
mod daemon;
mod damaged_rows;
mod digicert_provider;
mod digicert_recovery;
mod digicert_sim;
mod digicert_wire;
mod dns_check;
mod dns_publishers;
mod dns_rfc2136;
mod e2e;
mod e2e_digicert;
mod e2e_sectigo;
mod e2e_slow_ca;
mod engine;
mod engine_ari;
mod engine_check_errors;
mod engine_download;
mod engine_recovery;
mod layering;
mod rate_limit_requests;
mod restart;
mod sectigo_errors;
mod sectigo_fixtures;
mod sectigo_methods;
mod sectigo_provider;
mod sectigo_recovery;
mod sectigo_wire;
mod sim_harness;
mod sim_independence;
