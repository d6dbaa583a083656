//! One TSIG-signed RFC 2136 UPDATE (add or delete one record) over TCP or UDP.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsMultiplexer;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, TSigner};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            other => Err(format!("transport `{other}` is not `tcp` or `udp`")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOp {
    /// Add the record to its RRset (other records at the name stay).
    Add,
    /// Remove exactly this record (by RDATA); absent is not an error.
    Delete,
}

/// Why an update did not get a response code back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateFailure {
    Timeout,
    Network(String),
    /// The exchange failed in a way retrying will not fix: usually the response's TSIG
    /// did not verify (wrong key or algorithm) or the server sent garbage.
    Rejected(String),
}

/// `hmac-sha256` / `hmac-sha384` / `hmac-sha512` (case and a trailing dot ignored).
pub fn parse_algorithm(s: &str) -> Result<TsigAlgorithm, String> {
    match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        other => Err(format!(
            "TSIG algorithm `{other}` is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512"
        )),
    }
}

/// A signer for `key_name` with the raw (already base64-decoded) secret.
pub fn signer(key_name: &str, algorithm: TsigAlgorithm, raw: Vec<u8>) -> Result<TSigner, String> {
    let name = crate::dcv::dns::query::fqdn(key_name)?;
    TSigner::new(raw, algorithm, name, 300).map_err(|e| format!("TSIG key `{key_name}`: {e}"))
}

/// The record for a TXT value (split into 255-byte strings) or a CNAME target.
pub fn txt_record(name: &Name, ttl: u32, value: &str) -> Record {
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let chunks = if chunks.is_empty() {
        vec![String::new()]
    } else {
        chunks
    };
    Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(chunks)))
}

pub fn cname_record(name: &Name, ttl: u32, target: &Name) -> Record {
    Record::from_rdata(name.clone(), ttl, RData::CNAME(CNAME(target.clone())))
}

/// Sends one signed update and returns the server's response code.
pub async fn send_update(
    server: SocketAddr,
    transport: Transport,
    signer: TSigner,
    zone: &Name,
    op: UpdateOp,
    record: Record,
    timeout: Duration,
) -> Result<ResponseCode, UpdateFailure> {
    let provider = TokioRuntimeProvider::default();
    let (client, bg) = match transport {
        Transport::Udp => {
            let stream = UdpClientStream::builder(server, provider)
                .with_timeout(Some(timeout))
                .with_signer(Some(signer))
                .build();
            let (c, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
            (c, tokio::spawn(bg))
        }
        Transport::Tcp => {
            let (fut, handle) = TcpClientStream::new(server, None, Some(timeout), provider);
            let stream = match tokio::time::timeout(timeout, fut).await {
                Err(_) => return Err(UpdateFailure::Timeout),
                Ok(Err(e)) => return Err(UpdateFailure::Network(format!("TCP connect: {e}"))),
                Ok(Ok(s)) => s,
            };
            let mux = DnsMultiplexer::new(stream, handle)
                .with_timeout(timeout)
                .with_signer(signer);
            let (c, bg) = Client::<TokioRuntimeProvider>::from_sender(mux);
            (c, tokio::spawn(bg))
        }
    };
    let mut client = client;
    let fut = async {
        match op {
            UpdateOp::Add => client.append(record, zone.clone(), false).await,
            UpdateOp::Delete => client.delete_by_rdata(record, zone.clone()).await,
        }
    };
    let result = tokio::time::timeout(timeout, fut).await;
    bg.abort();
    match result {
        Err(_) => Err(UpdateFailure::Timeout),
        Ok(Ok(resp)) => Ok(resp.metadata.response_code),
        Ok(Err(e)) => {
            let text = e.to_string();
            if matches!(e, hickory_net::NetError::Timeout) || text.contains("timed out") {
                Err(UpdateFailure::Timeout)
            } else if matches!(e, hickory_net::NetError::Io(_)) {
                Err(UpdateFailure::Network(text))
            } else {
                Err(UpdateFailure::Rejected(text))
            }
        }
    }
}
