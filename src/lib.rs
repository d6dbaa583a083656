//! dcvd (placeholder map, rewritten at the end of the renovation)
pub mod app;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dcv;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod pki;
pub mod sim;
pub mod store;
