//! Private keys and CSRs for certificates; strict PEM bundles
//! and the check of an issued leaf against our key, our names and its chain.

pub mod adopt;
pub mod install;
pub mod key;
pub mod pem;

pub use key::{CsrError, KeyAndCsr, LeafInfo, csr_from_key, generate, verify_leaf};
pub use pem::{PemError, parse_certificates, split_certificates};
