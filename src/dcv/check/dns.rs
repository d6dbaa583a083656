//! The DNS propagation check: ask every authoritative server (RD=0) and/or the configured
//! resolvers for the token, following CNAMEs, and say per server what it answered.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use super::zone::{AuthServer, ZoneFinder};
use super::{CheckReport, DnsError, ServerOutcome, ServerResult};
use crate::config::CheckMode;
use crate::dcv::dns::query::{
    QueryFailure, Reply, cname_target, display_name, fqdn, query, txt_values,
};
use crate::model::ErrorKind;
use crate::model::{Challenge, ChallengeKind};

/// Most CNAME hops followed from the token name.
const MAX_HOPS: usize = 8;

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A TXT record whose strings, joined, equal this.
    Txt(String),
    /// A CNAME at the name pointing here (compared case-insensitively, no trailing dot).
    Cname(String),
}

impl Expect {
    pub fn from_challenge(c: &Challenge) -> Option<Self> {
        match c.kind {
            ChallengeKind::DnsTxt => Some(Expect::Txt(c.value.clone())),
            ChallengeKind::DnsCname => Some(Expect::Cname(normalise(&c.value))),
            _ => None,
        }
    }
    fn rtype(&self) -> RecordType {
        match self {
            Expect::Txt(_) => RecordType::TXT,
            Expect::Cname(_) => RecordType::CNAME,
        }
    }
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The DNS side of the propagation check.
pub struct DnsCheck {
    finder: ZoneFinder,
    mode: CheckMode,
    timeout: Duration,
}

impl DnsCheck {
    pub fn new(finder: ZoneFinder, mode: CheckMode, query_timeout: Duration) -> Self {
        Self {
            finder,
            mode,
            timeout: query_timeout,
        }
    }

    /// One round for `name` and `expect`, in the configured mode.
    pub async fn check_name(&self, name: &str, expect: &Expect) -> Result<CheckReport, DnsError> {
        let start = fqdn(name).map_err(|detail| DnsError {
            what: name.to_string(),
            detail,
            kind: ErrorKind::Permanent,
        })?;
        match self.mode {
            CheckMode::Authoritative => self.authoritative(&start, expect).await,
            CheckMode::Recursive => Ok(self.recursive(&start, expect).await),
            CheckMode::Both => {
                let auth = self.authoritative(&start, expect).await?;
                let rec = self.recursive(&start, expect).await;
                let mut servers = auth.servers;
                servers.extend(rec.servers);
                Ok(CheckReport {
                    present: auth.present && rec.present,
                    final_name: auth.final_name,
                    servers,
                })
            }
        }
    }

    /// Where a TXT token at `name` must be written when `name` is a CNAME into another
    /// zone (delegated `_dnsauth` / `_acme-challenge` names): the end of the CNAME chain
    /// all authoritative servers agree on, or `None` when `name` is not a CNAME. In
    /// `recursive` mode the authoritative servers may be unreachable: `None`.
    pub async fn delegated_to(&self, name: &str) -> Result<Option<String>, DnsError> {
        if self.mode == CheckMode::Recursive {
            return Ok(None);
        }
        let start = fqdn(name).map_err(|detail| DnsError {
            what: name.to_string(),
            detail,
            kind: ErrorKind::Permanent,
        })?;
        // The expected value does not matter: only where the chase ends does.
        let report = self
            .authoritative(&start, &Expect::Txt(String::new()))
            .await?;
        let end = normalise(&report.final_name);
        Ok((end != normalise(name)).then_some(end))
    }

    /// Ask every authoritative server of the zone; follow a CNAME all servers agree on.
    async fn authoritative(&self, start: &Name, expect: &Expect) -> Result<CheckReport, DnsError> {
        let mut current = start.clone();
        let mut seen = vec![current.clone()];
        loop {
            let zs = self.finder.servers_for(&current).await?;
            let replies = self
                .ask_all(&zs.servers, &current, expect.rtype(), false)
                .await;
            let cname = match expect {
                Expect::Txt(_) => agreed_cname(&replies, &current),
                Expect::Cname(_) => None,
            };
            if let Some(target) = cname {
                if seen.contains(&target) || seen.len() > MAX_HOPS {
                    return Err(DnsError {
                        what: display_name(start),
                        detail: format!(
                            "CNAME chain loops or is longer than {MAX_HOPS} hops (at {})",
                            display_name(&target)
                        ),
                        kind: ErrorKind::Permanent,
                    });
                }
                seen.push(target.clone());
                current = target;
                continue;
            }
            let servers = replies
                .into_iter()
                .map(|(label, r)| ServerResult {
                    server: label,
                    outcome: classify(r, &current, expect, true),
                })
                .collect();
            return Ok(report(display_name(&current), servers));
        }
    }

    /// Ask each configured resolver (RD=1); they follow CNAMEs themselves.
    async fn recursive(&self, start: &Name, expect: &Expect) -> CheckReport {
        let servers: Vec<AuthServer> = self
            .finder
            .resolvers()
            .iter()
            .map(|a| AuthServer {
                label: format!("resolver {a}"),
                addr: Some(*a),
            })
            .collect();
        let replies = self.ask_all(&servers, start, expect.rtype(), true).await;
        let mut final_name = start.clone();
        let results = replies
            .into_iter()
            .map(|(label, r)| {
                let outcome = match &r {
                    Ok(rep) if matches!(expect, Expect::Txt(_)) => {
                        let end = chase(&rep.answers, start);
                        final_name = end.clone();
                        classify(r, &end, expect, false)
                    }
                    _ => classify(r, start, expect, false),
                };
                ServerResult {
                    server: label,
                    outcome,
                }
            })
            .collect();
        report(display_name(&final_name), results)
    }

    async fn ask_all(
        &self,
        servers: &[AuthServer],
        name: &Name,
        rtype: RecordType,
        recursion: bool,
    ) -> Vec<(String, Result<Reply, QueryFailure>)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in servers.iter().enumerate() {
            let (name, timeout, addr) = (name.clone(), self.timeout, s.addr);
            set.spawn(async move {
                let r = match addr {
                    Some(a) => query(a, &name, rtype, recursion, timeout).await,
                    None => Err(QueryFailure::Network(
                        "the NS name has no A/AAAA address".into(),
                    )),
                };
                (i, r)
            });
        }
        let mut out: Vec<(usize, String, Result<Reply, QueryFailure>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                out.push((i, servers[i].label.clone(), r));
            }
        }
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, l, r)| (l, r)).collect()
    }
}

fn report(final_name: String, servers: Vec<ServerResult>) -> CheckReport {
    let present =
        !servers.is_empty() && servers.iter().all(|s| s.outcome == ServerOutcome::Present);
    CheckReport {
        present,
        final_name,
        servers,
    }
}

/// The CNAME target at `name` when every server answered NOERROR with the same one. A
/// server that lags (NXDOMAIN), fails or disagrees stops the walk: the round is then
/// reported at `name`, where that server is named.
fn agreed_cname(replies: &[(String, Result<Reply, QueryFailure>)], name: &Name) -> Option<Name> {
    let mut target: Option<Name> = None;
    for (_, r) in replies {
        let rep = r.as_ref().ok()?;
        if rep.rcode != ResponseCode::NoError {
            return None;
        }
        let t = cname_target(&rep.answers, name)?;
        match &target {
            Some(prev) if *prev != t => return None,
            _ => target = Some(t),
        }
    }
    target
}

/// Where a CNAME chain inside one answer ends.
fn chase(answers: &[hickory_proto::rr::Record], start: &Name) -> Name {
    let mut cur = start.clone();
    for _ in 0..MAX_HOPS {
        match cname_target(answers, &cur) {
            Some(t) if t != cur => cur = t,
            _ => break,
        }
    }
    cur
}

/// What one server's answer means for `expect` at `name`.
fn classify(
    r: Result<Reply, QueryFailure>,
    name: &Name,
    expect: &Expect,
    must_be_authoritative: bool,
) -> ServerOutcome {
    let rep = match r {
        Err(QueryFailure::Timeout) => return ServerOutcome::Timeout,
        Err(QueryFailure::Network(e)) => return ServerOutcome::Error(e),
        Ok(rep) => rep,
    };
    match rep.rcode {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return ServerOutcome::Nxdomain,
        ResponseCode::ServFail => return ServerOutcome::Servfail,
        ResponseCode::Refused => return ServerOutcome::Refused,
        other => return ServerOutcome::Error(format!("response code {other}")),
    }
    let values: Vec<String> = match expect {
        Expect::Txt(_) => {
            let v = txt_values(&rep.answers, name);
            match cname_target(&rep.answers, name) {
                // A CNAME not every server agrees on: show it instead of "no data".
                Some(t) if v.is_empty() => vec![format!("CNAME {}", display_name(&t))],
                _ => v,
            }
        }
        Expect::Cname(_) => cname_target(&rep.answers, name)
            .map(|t| vec![display_name(&t)])
            .unwrap_or_default(),
    };
    if values.is_empty() {
        if must_be_authoritative && !rep.authoritative {
            return ServerOutcome::Error(
                "answer is not authoritative (a referral or a server not serving this zone)".into(),
            );
        }
        return ServerOutcome::NoData;
    }
    let hit = match expect {
        Expect::Txt(v) => values.iter().any(|x| x == v),
        Expect::Cname(v) => values.iter().any(|x| x == v),
    };
    if hit {
        ServerOutcome::Present
    } else {
        ServerOutcome::OtherValue(values)
    }
}

/// Addresses of the resolvers as configured, or the system's.
pub fn resolver_addrs(configured: &[String]) -> Result<Vec<SocketAddr>, String> {
    if configured.is_empty() {
        return Ok(super::zone::system_resolvers());
    }
    configured
        .iter()
        .map(|s| super::zone::parse_server(s).map_err(|e| format!("dns.resolvers: {e}")))
        .collect()
}
