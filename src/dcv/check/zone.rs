//! Which servers are authoritative for a name: SOA walk, NS set and addresses via the
//! configured resolvers, or a pinned list from `dns.nameserver_overrides`; cached briefly.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use super::DnsError;
use crate::dcv::dns::query::{Reply, display_name, fqdn, query};
use crate::model::ErrorKind;

/// Longest time a discovered zone and its servers are reused.
const MAX_CACHE: Duration = Duration::from_secs(300);

/// One server to ask. `addr` is `None` when the NS name has no address (reported, not skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServer {
    pub label: String,
    pub addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneServers {
    pub zone: Name,
    pub servers: Vec<AuthServer>,
}

/// Finds the zone of a name and its authoritative servers.
pub struct ZoneFinder {
    resolvers: Vec<SocketAddr>,
    /// Longest zone first, so the most specific override wins.
    overrides: Vec<(Name, Vec<SocketAddr>)>,
    timeout: Duration,
    cache: Mutex<HashMap<Name, (Instant, ZoneServers)>>,
}

/// Parses `ip:port` (or a bare IP, port 53).
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{s}` is not an `ip:port` address"))
}

/// Resolvers from `/etc/resolv.conf` (port 53 unless it says otherwise).
pub fn system_resolvers() -> Vec<SocketAddr> {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok((cfg, _)) => cfg
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map(|c| c.port).unwrap_or(53);
                SocketAddr::new(ns.ip, port)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the system resolver configuration; set dns.resolvers");
            Vec::new()
        }
    }
}

impl ZoneFinder {
    pub fn new(
        resolvers: Vec<SocketAddr>,
        overrides: Vec<(Name, Vec<SocketAddr>)>,
        timeout: Duration,
    ) -> Self {
        let mut overrides = overrides;
        overrides.sort_by_key(|(zone, _)| std::cmp::Reverse(zone.num_labels()));
        Self {
            resolvers,
            overrides,
            timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn resolvers(&self) -> &[SocketAddr] {
        &self.resolvers
    }

    /// The pinned servers for `name`, when an override covers it.
    pub fn override_for(&self, name: &Name) -> Option<ZoneServers> {
        self.overrides
            .iter()
            .find(|(zone, _)| zone.zone_of(name))
            .map(|(zone, addrs)| ZoneServers {
                zone: zone.clone(),
                servers: addrs
                    .iter()
                    .map(|a| AuthServer {
                        label: a.to_string(),
                        addr: Some(*a),
                    })
                    .collect(),
            })
    }

    /// Zone and authoritative servers for `name`.
    pub async fn servers_for(&self, name: &Name) -> Result<ZoneServers, DnsError> {
        if let Some(o) = self.override_for(name) {
            return Ok(o);
        }
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        let (zone, soa_ttl) = self.find_zone(name).await?;
        let (servers, ns_ttl) = self.nameservers(&zone).await?;
        let found = ZoneServers { zone, servers };
        let ttl = Duration::from_secs(u64::from(soa_ttl.min(ns_ttl))).min(MAX_CACHE);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name.clone(), (Instant::now() + ttl, found.clone()));
        }
        Ok(found)
    }

    fn cached(&self, name: &Name) -> Option<ZoneServers> {
        let c = self.cache.lock().ok()?;
        c.get(name)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, z)| z.clone())
    }

    fn err(&self, what: &Name, detail: String) -> DnsError {
        DnsError {
            what: display_name(what),
            detail,
            kind: ErrorKind::Transient,
        }
    }

    /// Asks the resolvers in order; the first NOERROR/NXDOMAIN answer wins.
    async fn ask(&self, name: &Name, rtype: RecordType) -> Result<Reply, DnsError> {
        if self.resolvers.is_empty() {
            return Err(self.err(
                name,
                "no resolvers: dns.resolvers is empty and /etc/resolv.conf has none; \
                 set dns.resolvers or dns.nameserver_overrides for this zone"
                    .into(),
            ));
        }
        let mut problems = Vec::new();
        for r in &self.resolvers {
            match query(*r, name, rtype, true, self.timeout).await {
                Ok(rep) if matches!(rep.rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {
                    return Ok(rep);
                }
                Ok(rep) => problems.push(format!("{r}: {}", rep.rcode)),
                Err(e) => problems.push(format!("{r}: {e}")),
            }
        }
        Err(self.err(
            name,
            format!(
                "{rtype} lookup failed at every resolver ({}); will retry next round",
                problems.join(", ")
            ),
        ))
    }

    /// SOA walk: the closest enclosing name that has an SOA record of its own.
    async fn find_zone(&self, name: &Name) -> Result<(Name, u32), DnsError> {
        let mut candidate = name.clone();
        while !candidate.is_root() {
            let rep = self.ask(&candidate, RecordType::SOA).await?;
            let soa = rep
                .answers
                .iter()
                .find(|r| r.name == candidate && matches!(r.data, RData::SOA(_)));
            if let Some(r) = soa {
                return Ok((candidate, r.ttl));
            }
            candidate = candidate.base_name();
        }
        Err(self.err(
            name,
            "no SOA record found at or above this name (is the zone delegated?)".into(),
        ))
    }

    /// The zone's NS names with their A/AAAA addresses (port 53).
    async fn nameservers(&self, zone: &Name) -> Result<(Vec<AuthServer>, u32), DnsError> {
        let rep = self.ask(zone, RecordType::NS).await?;
        let mut ttl = u32::MAX;
        let mut names = Vec::new();
        for r in rep.answers.iter().filter(|r| r.name == *zone) {
            if let RData::NS(ns) = &r.data {
                ttl = ttl.min(r.ttl);
                names.push(ns.0.clone());
            }
        }
        if names.is_empty() {
            return Err(self.err(zone, "the zone has no NS records".into()));
        }
        names.sort();
        let mut servers = Vec::new();
        for ns in names {
            let mut addrs = Vec::new();
            for rtype in [RecordType::A, RecordType::AAAA] {
                // A resolver failure for one NS leaves it without addresses; it is reported.
                if let Ok(rep) = self.ask(&ns, rtype).await {
                    for r in rep.answers.iter() {
                        match &r.data {
                            RData::A(a) => addrs.push(SocketAddr::new(IpAddr::V4(a.0), 53)),
                            RData::AAAA(a) => addrs.push(SocketAddr::new(IpAddr::V6(a.0), 53)),
                            _ => {}
                        }
                    }
                }
            }
            let label = display_name(&ns);
            if addrs.is_empty() {
                servers.push(AuthServer {
                    label: label.clone(),
                    addr: None,
                });
            }
            for a in addrs {
                servers.push(AuthServer {
                    label: format!("{label} ({a})"),
                    addr: Some(a),
                });
            }
        }
        Ok((servers, ttl))
    }
}

/// Parses `dns.nameserver_overrides` into names and addresses.
pub fn parse_overrides(
    raw: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<(Name, Vec<SocketAddr>)>, String> {
    let mut out = Vec::new();
    for (zone, servers) in raw {
        let name = fqdn(zone).map_err(|e| format!("dns.nameserver_overrides: {e}"))?;
        let addrs = servers
            .iter()
            .map(|s| parse_server(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("dns.nameserver_overrides.\"{zone}\": {e}"))?;
        if addrs.is_empty() {
            return Err(format!(
                "dns.nameserver_overrides.\"{zone}\" is empty; list at least one ip:port"
            ));
        }
        out.push((name, addrs));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_bad_ones_name_the_key() {
        let mut raw = std::collections::BTreeMap::new();
        raw.insert(
            "example.test.".to_string(),
            vec!["127.0.0.1:5300".to_string(), "::1".to_string()],
        );
        let o = parse_overrides(&raw).unwrap();
        assert_eq!(o[0].0.to_ascii(), "example.test.");
        assert_eq!(o[0].1[1], "[::1]:53".parse::<SocketAddr>().unwrap());
        raw.insert("bad.test".to_string(), vec!["ns1.bad.test:53".to_string()]);
        let err = parse_overrides(&raw).unwrap_err();
        assert!(
            err.contains("dns.nameserver_overrides.\"bad.test\""),
            "{err}"
        );
    }

    #[test]
    fn most_specific_override_wins() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let f = ZoneFinder::new(
            vec![],
            vec![
                (fqdn("test").unwrap(), vec![a]),
                (fqdn("sub.example.test").unwrap(), vec![b]),
            ],
            Duration::from_secs(1),
        );
        let z = f
            .override_for(&fqdn("_x.www.sub.example.test").unwrap())
            .unwrap();
        assert_eq!(z.servers[0].addr, Some(b));
        let z = f.override_for(&fqdn("other.test").unwrap()).unwrap();
        assert_eq!(z.servers[0].label, "127.0.0.1:1");
        assert!(f.override_for(&fqdn("example.org").unwrap()).is_none());
    }
}
