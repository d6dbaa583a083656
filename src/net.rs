//! Outgoing HTTPS set-up shared by every client in dcvd (the CA clients and the HTTP
//! self-check): the one install of the rustls crypto provider and the base reqwest
//! builder (user agent, request timeout).
//!
//! reqwest is built without a crypto provider of its own (`rustls-no-provider`), so one
//! must be installed process-wide before the first client is built. `client_builder`
//! does that itself, so no caller can forget it; `main` also calls [`install_crypto`]
//! first thing.

use std::sync::Once;
use std::time::Duration;

/// `dcvd/<version>`, sent on every request.
pub const USER_AGENT: &str = concat!("dcvd/", env!("CARGO_PKG_VERSION"));

/// Install ring as the process-wide rustls crypto provider. Idempotent; when something
/// else installed a provider first, that one stays (the same ring provider in dcvd).
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest builder with the crypto provider installed, dcvd's user agent and
/// `timeout` for a whole request.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    install_crypto();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(USER_AGENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_builds_after_the_install() {
        install_crypto();
        install_crypto();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        client_builder(Duration::from_secs(1)).build().unwrap();
    }
}
