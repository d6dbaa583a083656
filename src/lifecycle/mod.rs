//! An order's life: renewal decisions, order creation, the pure decision table, the steps
//! that perform one outside action each, retry rules and the cleanup of published tokens.

pub mod cleanup;
pub mod create;
pub mod decide;
pub mod engine;
pub mod operator;
pub mod renew;
pub mod retry;
pub mod services;
pub mod step;
