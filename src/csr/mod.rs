//! Private keys and CSRs for certificates; CSR hashes for Sectigo DCV.

// `pub mod hash;` (Sectigo CSR hashes) is written by another helper; the lead adds it here.
pub mod key;

pub use key::{CsrError, KeyAndCsr, LeafInfo, csr_from_key, generate, verify_leaf};
