//! Private keys and CSRs for certificates; CSR hashes for Sectigo DCV.

pub mod hash;
pub mod key;

pub use key::{CsrError, KeyAndCsr, LeafInfo, csr_from_key, generate, verify_leaf};
