//! General DNS client code shared by the publishers, the checks and the DNS simulator:
//! queries (`query`) and RFC 2136 UPDATE messages (`update`).

pub mod query;
pub mod update;
