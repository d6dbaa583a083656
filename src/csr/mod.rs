//! Private keys and CSRs for certificates; CSR hashes for Sectigo DCV.
pub mod hash;
