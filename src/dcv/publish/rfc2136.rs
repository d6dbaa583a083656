//! `rfc2136` publisher: adds and deletes exactly our TXT/CNAME record with TSIG-signed
//! DNS UPDATE at one primary server (BIND, Knot, PowerDNS, Windows DNS, hickory).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType, TSigner};
use secrecy::ExposeSecret;

use super::{PublishError, Publisher};
use crate::config::Rfc2136Config;
use crate::dcv::dns::query::{display_name, fqdn, query};
use crate::dcv::dns::update::{
    Transport, UpdateFailure, UpdateOp, cname_record, parse_algorithm, send_update, signer,
    txt_record,
};
use crate::model::ErrorKind;
use crate::model::{Challenge, ChallengeKind};

pub struct Rfc2136Publisher {
    name: String,
    /// As configured (`host:port`); resolved at each use when it is not an IP.
    server: String,
    zone: Option<Name>,
    signer: TSigner,
    transport: Transport,
    ttl: u32,
    timeout: Duration,
    /// Record name → zone found by SOA walk.
    zones: Mutex<HashMap<Name, Name>>,
}

impl std::fmt::Debug for Rfc2136Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136Publisher")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Rfc2136Publisher {
    /// Validates the config and decodes the base64 TSIG secret.
    pub fn new(name: &str, cfg: &Rfc2136Config) -> Result<Self, String> {
        let key = format!("publishers.{name}");
        let secret = cfg.tsig_secret.as_ref().ok_or_else(|| {
            format!("{key}: no TSIG secret (set tsig_secret_file to the base64 secret from the key file)")
        })?;
        let raw = decode_secret(secret.expose_secret()).ok_or_else(|| {
            format!(
                "{key}: the TSIG secret is not valid base64 (nor a BIND/Knot key file holding one)"
            )
        })?;
        if raw.is_empty() {
            return Err(format!("{key}: the TSIG secret is empty"));
        }
        let alg = parse_algorithm(&cfg.tsig_algorithm)
            .map_err(|e| format!("{key}.tsig_algorithm: {e}"))?;
        let signer = signer(&cfg.tsig_key_name, alg, raw).map_err(|e| format!("{key}: {e}"))?;
        let transport =
            Transport::parse(&cfg.transport).map_err(|e| format!("{key}.transport: {e}"))?;
        let zone = match &cfg.zone {
            Some(z) => Some(fqdn(z).map_err(|e| format!("{key}.zone: {e}"))?),
            None => None,
        };
        if cfg.server.trim().is_empty() {
            return Err(format!(
                "{key}.server is empty; set it to host:port of the primary"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            server: cfg.server.trim().to_string(),
            zone,
            signer,
            transport,
            ttl: cfg.ttl,
            timeout: cfg.timeout,
            zones: Mutex::new(HashMap::new()),
        })
    }

    fn error(
        &self,
        action: &'static str,
        what: String,
        detail: String,
        kind: ErrorKind,
    ) -> PublishError {
        PublishError {
            publisher: self.name.clone(),
            action,
            what,
            detail,
            kind,
        }
    }

    async fn server_addr(&self) -> Result<SocketAddr, String> {
        if let Ok(a) = self.server.parse::<SocketAddr>() {
            return Ok(a);
        }
        let with_port = if self.server.contains(':') {
            self.server.clone()
        } else {
            format!("{}:53", self.server)
        };
        tokio::net::lookup_host(with_port.as_str())
            .await
            .map_err(|e| format!("cannot resolve server `{}`: {e}", self.server))?
            .next()
            .ok_or_else(|| format!("server `{}` has no address", self.server))
    }

    /// The zone holding `name`: configured, cached, or by asking the server for SOAs
    /// from `name` upwards.
    async fn zone_for(&self, addr: SocketAddr, name: &Name) -> Result<Name, String> {
        if let Some(z) = &self.zone {
            return Ok(z.clone());
        }
        if let Some(z) = self.zones.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(z);
        }
        let mut candidate = name.clone();
        let mut last = String::new();
        while !candidate.is_root() {
            match query(addr, &candidate, RecordType::SOA, false, self.timeout).await {
                Ok(rep) => {
                    let own = rep
                        .answers
                        .iter()
                        .any(|r| r.name == candidate && matches!(r.data, RData::SOA(_)));
                    if own {
                        if let Ok(mut m) = self.zones.lock() {
                            m.insert(name.clone(), candidate.clone());
                        }
                        return Ok(candidate);
                    }
                }
                Err(e) => last = format!(" (last error: {e})"),
            }
            candidate = candidate.base_name();
        }
        Err(format!(
            "server {} is not authoritative for any zone containing {}{last}; set `zone` in [publishers.{}]",
            self.server,
            display_name(name),
            self.name
        ))
    }

    async fn run(
        &self,
        action: &'static str,
        op: UpdateOp,
        c: &Challenge,
    ) -> Result<(), PublishError> {
        let rtype = match c.kind {
            ChallengeKind::DnsTxt => "TXT",
            ChallengeKind::DnsCname => "CNAME",
            other => {
                return Err(self.error(
                    action,
                    c.location(),
                    format!("rfc2136 publishes DNS records only, not {other}"),
                    ErrorKind::Permanent,
                ));
            }
        };
        let mut what = format!("{rtype} {} at server {}", c.name, self.server);
        let owner =
            fqdn(&c.name).map_err(|e| self.error(action, what.clone(), e, ErrorKind::Permanent))?;
        let addr = self
            .server_addr()
            .await
            .map_err(|e| self.error(action, what.clone(), e, ErrorKind::Transient))?;
        let zone = self
            .zone_for(addr, &owner)
            .await
            .map_err(|e| self.error(action, what.clone(), e, ErrorKind::Permanent))?;
        what = format!("{what} zone {}", display_name(&zone));
        let record = match c.kind {
            ChallengeKind::DnsCname => {
                let target = fqdn(&c.value)
                    .map_err(|e| self.error(action, what.clone(), e, ErrorKind::Permanent))?;
                cname_record(&owner, self.ttl, &target)
            }
            _ => txt_record(&owner, self.ttl, &c.value),
        };
        let result = send_update(
            addr,
            self.transport,
            self.signer.clone(),
            &zone,
            op,
            record,
            self.timeout,
        )
        .await;
        let (detail, kind) = match result {
            Ok(ResponseCode::NoError) => {
                tracing::info!(publisher = %self.name, action, record = %what, "DNS update accepted");
                return Ok(());
            }
            Ok(code @ (ResponseCode::Refused | ResponseCode::NotAuth)) => (
                format!(
                    "the server answered {code}: the TSIG key is unknown there or its update policy \
                     does not allow {rtype} at this name; fix the key or the policy (retrying will not help)"
                ),
                ErrorKind::Permanent,
            ),
            Ok(ResponseCode::ServFail) => (
                "the server answered SERVFAIL; will retry".to_string(),
                ErrorKind::Transient,
            ),
            Ok(code) => (format!("the server answered {code}"), ErrorKind::Permanent),
            Err(UpdateFailure::Timeout) => (
                format!("no answer within {:?}; will retry", self.timeout),
                ErrorKind::Transient,
            ),
            Err(UpdateFailure::Network(e)) => (format!("{e}; will retry"), ErrorKind::Transient),
            Err(UpdateFailure::Rejected(e)) => (rejected_detail(&e), ErrorKind::Permanent),
        };
        Err(self.error(action, what, detail, kind))
    }
}

/// The raw key from a base64 secret, or from a BIND (`secret "…";`) or Knot
/// (`secret: …`) key file's text.
pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    let engine = base64::engine::general_purpose::STANDARD;
    let text = text.trim();
    if let Ok(raw) = engine.decode(text) {
        return Some(raw);
    }
    let after = &text[text.find("secret")? + "secret".len()..];
    let value = after
        .trim_start_matches([' ', '\t', ':'])
        .trim_start_matches('"')
        .split(['"', ';', '\n', ' '])
        .next()?;
    engine.decode(value.trim()).ok()
}

/// hickory reports a response without a valid TSIG MAC (what servers send back for an
/// unknown key or bad signature) as a protocol error about "truncated HMACs"; say what it means.
fn rejected_detail(e: &str) -> String {
    let cause = if e.contains("HMAC") || e.contains("TSIG") || e.contains("tsig") {
        "the server did not accept our TSIG signature".to_string()
    } else {
        format!("the exchange failed ({e})")
    };
    format!(
        "{cause}: check that tsig_key_name, the secret and tsig_algorithm match the key \
         configured on the server (retrying will not help)"
    )
}

#[async_trait]
impl Publisher for Rfc2136Publisher {
    fn name(&self) -> &str {
        &self.name
    }

    fn can_publish(&self, challenge: &Challenge) -> bool {
        challenge.is_dns()
    }

    async fn present(&self, challenge: &Challenge) -> Result<(), PublishError> {
        self.run("present", UpdateOp::Add, challenge).await
    }

    async fn cleanup(&self, challenge: &Challenge) -> Result<(), PublishError> {
        self.run("cleanup", UpdateOp::Delete, challenge).await
    }
}

#[cfg(test)]
mod tests {
    use super::decode_secret;

    #[test]
    fn secrets_are_read_from_base64_or_key_files() {
        let want = b"0123456789abcdef".to_vec();
        let b64 = "MDEyMzQ1Njc4OWFiY2RlZg==";
        assert_eq!(decode_secret(b64), Some(want.clone()));
        let bind = format!("key \"dcvd\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{b64}\";\n}};\n");
        assert_eq!(decode_secret(&bind), Some(want.clone()));
        let knot = format!("key:\n  - id: dcvd\n    algorithm: hmac-sha256\n    secret: {b64}\n");
        assert_eq!(decode_secret(&knot), Some(want));
        assert_eq!(decode_secret("not base64 at all"), None);
    }
}
