//! An order's life, from "this certificate needs an order" to its installed files.
//!
//! - When is a certificate renewed? `renew.rs`: `need_for` (first order, changed names,
//!   `renew_before`, retry after a failure) and the CA's window (ACME ARI), run by
//!   `ensure_orders` at start-up and on `renewal_check`; `create.rs` creates the order.
//! - Where does an order's state change? `decide.rs`: `decide` picks the one next action,
//!   and every write of an order's or authorization's state is a `Change` transition
//!   there (and `first_method` for a new order); `step.rs` applies them and commits once.
//! - What is the retry policy? `retry.rs`, the only place with retry and backoff rules
//!   (`error_policy`; a failed propagation check is never terminal).
//! - Who removes published tokens? `cleanup.rs` `cleanup_due`, working the cleanup journal
//!   that each token enters before it is published.
//! - What is `Services`? `services.rs`: the config with the providers, publishers and
//!   checker built from it, swapped whole on SIGHUP (the rate limiters carry over);
//!   `engine.rs` holds it with the store, the claims and step dispatch. `operator.rs` is
//!   what `dcvd orders adopt/resubmit` do.

pub mod adopt;
pub mod cleanup;
pub mod create;
pub mod decide;
pub mod engine;
pub mod inventory;
pub mod operator;
pub mod renew;
pub mod retry;
pub mod services;
pub mod step;
