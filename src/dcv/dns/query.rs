//! One DNS question to one server, answered raw: UDP first, TCP when truncated, no cache.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsHandle, DnsMultiplexer};
use hickory_proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// What a server answered, kept raw so callers can classify it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
}

/// The server did not answer usefully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryFailure {
    Timeout,
    Network(String),
}

impl std::fmt::Display for QueryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryFailure::Timeout => f.write_str("no answer before the timeout"),
            QueryFailure::Network(e) => f.write_str(e),
        }
    }
}

/// `name` as an absolute DNS name (trailing dot added).
pub fn fqdn(name: &str) -> Result<Name, String> {
    let trimmed = name.trim().trim_end_matches('.');
    Name::from_str(&format!("{trimmed}."))
        .map_err(|e| format!("`{name}` is not a valid DNS name: {e}"))
}

/// Canonical text form of a name: lower case, no trailing dot.
pub fn display_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// Ask `server` for `name`/`rtype` once. `recursion` sets the RD bit (false when asking an
/// authoritative server directly). The whole exchange (UDP and a TCP retry) is bounded
/// by `timeout` per transport.
pub async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<Reply, QueryFailure> {
    let udp = query_udp(server, name, rtype, recursion, timeout).await?;
    if !udp.truncated {
        return Ok(udp.reply);
    }
    query_tcp(server, name, rtype, recursion, timeout).await
}

struct UdpReply {
    reply: Reply,
    truncated: bool,
}

fn options(recursion: bool) -> DnsRequestOptions {
    let mut o = DnsRequestOptions::default();
    o.recursion_desired = recursion;
    o.use_edns = true;
    o
}

async fn query_udp(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<UdpReply, QueryFailure> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(bg);
    let result = exchange(&client, name, rtype, recursion, timeout).await;
    task.abort();
    let resp = result?;
    Ok(UdpReply {
        truncated: resp.truncated,
        reply: resp.reply,
    })
}

async fn query_tcp(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<Reply, QueryFailure> {
    let (fut, handle) =
        TcpClientStream::new(server, None, Some(timeout), TokioRuntimeProvider::default());
    let stream = match tokio::time::timeout(timeout, fut).await {
        Err(_) => return Err(QueryFailure::Timeout),
        Ok(Err(e)) => return Err(QueryFailure::Network(format!("TCP connect: {e}"))),
        Ok(Ok(s)) => s,
    };
    let mux = DnsMultiplexer::new(stream, handle).with_timeout(timeout);
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(mux);
    let task = tokio::spawn(bg);
    let result = exchange(&client, name, rtype, recursion, timeout).await;
    task.abort();
    Ok(result?.reply)
}

async fn exchange(
    client: &Client<TokioRuntimeProvider>,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<UdpReply, QueryFailure> {
    let mut responses = client.lookup(Query::query(name.clone(), rtype), options(recursion));
    let first = tokio::time::timeout(timeout, responses.next()).await;
    let resp = match first {
        Err(_) | Ok(None) => return Err(QueryFailure::Timeout),
        Ok(Some(Err(e))) => return Err(classify_error(&e.to_string())),
        Ok(Some(Ok(r))) => r,
    };
    Ok(UdpReply {
        truncated: resp.metadata.truncation,
        reply: Reply {
            rcode: resp.metadata.response_code,
            authoritative: resp.metadata.authoritative,
            answers: resp.answers.clone(),
            authorities: resp.authorities.clone(),
        },
    })
}

fn classify_error(e: &str) -> QueryFailure {
    if e.contains("timed out") || e.contains("timeout") {
        QueryFailure::Timeout
    } else {
        QueryFailure::Network(e.to_string())
    }
}

/// TXT values in `records` (strings of one record joined), for owner `name`.
pub fn txt_values(records: &[Record], name: &Name) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.name == *name)
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

/// CNAME target at owner `name`, if the records hold one.
pub fn cname_target(records: &[Record], name: &Name) -> Option<Name> {
    records
        .iter()
        .filter(|r| r.name == *name)
        .find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        })
}
