//! Domain Control Validation on our side: DNS wire code, token publishers, propagation checks.

pub mod check;
pub mod dns;
pub mod publish;
