//! Key and certificate material named in the config, decoded once: the ACME EAB key and
//! the extra roots for an ACME server's HTTPS. Used by validation and by the ACME client.

use std::path::Path;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// The EAB HMAC key as CAs print it: base64url (padded or not), or standard base64. The
/// error never contains the key.
pub fn decode_eab_key(key: &SecretString) -> Result<Vec<u8>, String> {
    let text = key.expose_secret().trim();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    b64.decode(text.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "eab_hmac_key is not base64url (value not shown)".to_string())
}

/// The PEM certificates in `path`, to trust as roots for the ACME server's HTTPS.
pub fn load_roots(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; check that it exists and that the dcvd user may read it",
            path.display()
        )
    })?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )),
        Err(e) => Err(format!(
            "{} is not a PEM certificate bundle: {e}",
            path.display()
        )),
    }
}
