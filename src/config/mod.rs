//! Configuration: figment load (defaults → TOML file → `DCVD_` env), secrets, validation.

pub mod schema;

pub use schema::*;
