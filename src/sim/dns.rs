//! In-process authoritative DNS server (hickory-server, SQLite zones, TSIG-signed RFC 2136
//! updates) on 127.0.0.1, UDP and TCP on one port; can be told to SERVFAIL, drop or lag.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
pub use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{LowerName, Name, TSigner};
use hickory_resolver::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::Server;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::sqlite::{Journal, SqliteConfig, SqliteZoneHandler, TsigKeyConfig};
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use rand::RngExt;

use crate::dcv::dns::query::fqdn;
use crate::dcv::dns::update::{Transport, UpdateOp, cname_record, send_update, signer, txt_record};

/// One zone the simulator serves.
#[derive(Debug, Clone)]
pub struct ZoneSpec {
    /// e.g. `example.test`.
    pub origin: String,
    /// NS names (absolute or relative to the origin).
    pub ns: Vec<String>,
    /// A records: owner (relative or absolute) → address.
    pub a: Vec<(String, Ipv4Addr)>,
    /// Extra zone-file lines, e.g. `_dnsauth.www 60 IN CNAME tok.delegated.test.`.
    pub records: Vec<String>,
}

impl ZoneSpec {
    /// A zone with `ns1.<origin>` as its only NS, at 127.0.0.1.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.trim_end_matches('.').to_string(),
            ns: vec![format!("ns1.{}.", origin.trim_end_matches('.'))],
            a: vec![("ns1".into(), Ipv4Addr::LOCALHOST)],
            records: Vec::new(),
        }
    }

    pub fn with_record(mut self, line: &str) -> Self {
        self.records.push(line.to_string());
        self
    }

    fn zone_file(&self) -> String {
        let o = &self.origin;
        let mut z = format!(
            "$ORIGIN {o}.\n$TTL 60\n@ IN SOA {ns} hostmaster.{o}. 1 3600 600 86400 60\n",
            ns = self
                .ns
                .first()
                .cloned()
                .unwrap_or_else(|| format!("ns1.{o}."))
        );
        for ns in &self.ns {
            z.push_str(&format!("@ IN NS {ns}\n"));
        }
        for (owner, ip) in &self.a {
            z.push_str(&format!("{owner} IN A {ip}\n"));
        }
        for line in &self.records {
            z.push_str(line);
            z.push('\n');
        }
        z
    }
}

/// How the simulator answers queries (updates are always handled normally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimMode {
    Normal,
    /// Every query gets SERVFAIL.
    Servfail,
    /// Queries get no answer at all (the client times out).
    Drop,
    /// Answers come after this delay.
    Delay(Duration),
}

struct SimHandler {
    catalog: Catalog,
    mode: Arc<Mutex<SimMode>>,
}

#[async_trait::async_trait]
impl RequestHandler for SimHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mode = self.mode.lock().map(|m| *m).unwrap_or(SimMode::Normal);
        let is_query = request.metadata.op_code == hickory_proto::op::OpCode::Query;
        match mode {
            SimMode::Servfail if is_query => {
                let resp = MessageResponseBuilder::new(&request.queries, None)
                    .error_msg(&request.metadata, ResponseCode::ServFail);
                if let Ok(info) = response_handle.send_response(resp).await {
                    return info;
                }
                return dropped(request);
            }
            SimMode::Drop if is_query => return dropped(request),
            SimMode::Delay(d) if is_query => tokio::time::sleep(d).await,
            _ => {}
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

fn dropped(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// Removes the simulator's scratch directory (zone files, journals, key) when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running authoritative server. Dropping it stops the server.
pub struct DnsSim {
    addr: SocketAddr,
    mode: Arc<Mutex<SimMode>>,
    origins: Vec<Name>,
    /// Internal key every zone accepts, used by the record helpers below.
    admin: TSigner,
    _server: Server<SimHandler>,
    _dir: ScratchDir,
}

const ADMIN_KEY: &str = "dcvd-sim-admin.";

impl DnsSim {
    /// Serves `zones` on 127.0.0.1 (UDP and TCP, same port). Updates are accepted when
    /// signed with `tsig` (`(key name, algorithm, raw key bytes)`) or the internal admin key.
    pub async fn start(
        zones: &[ZoneSpec],
        tsig: Option<(&str, TsigAlgorithm, &[u8])>,
    ) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "dcvd-dnssim-{}-{:016x}",
            std::process::id(),
            rand::rng().random::<u64>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let scratch = ScratchDir(dir.clone());
        let write = |file: &str, body: &[u8]| {
            std::fs::write(dir.join(file), body).map_err(|e| format!("writing {file}: {e}"))
        };
        let admin_raw: [u8; 32] = rand::rng().random();
        write("admin.key", &admin_raw)?;
        let mut user = None;
        if let Some((name, alg, raw)) = tsig {
            write("user.key", raw)?;
            user = Some((format!("{}.", name.trim_end_matches('.')), alg));
        }
        let keys = || {
            let mut keys = vec![TsigKeyConfig {
                name: ADMIN_KEY.into(),
                key_file: "admin.key".into(),
                algorithm: TsigAlgorithm::HmacSha256,
                fudge: 300,
            }];
            if let Some((name, alg)) = &user {
                keys.push(TsigKeyConfig {
                    name: name.clone(),
                    key_file: "user.key".into(),
                    algorithm: alg.clone(),
                    fudge: 300,
                });
            }
            keys
        };
        let mut catalog = Catalog::new();
        let mut origins = Vec::new();
        for z in zones {
            let origin = fqdn(&z.origin)?;
            let stem = z.origin.trim_end_matches('.');
            write(&format!("{stem}.zone"), z.zone_file().as_bytes())?;
            let cfg = SqliteConfig {
                zone_path: format!("{stem}.zone").into(),
                journal_path: format!("{stem}.jrnl").into(),
                allow_update: true,
                tsig_keys: keys(),
            };
            let mut handler = SqliteZoneHandler::<TokioRuntimeProvider>::try_from_config(
                origin.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
                false,
                Some(dir.as_path()),
                &cfg,
                None,
            )
            .await
            .map_err(|e| format!("zone {stem}: {e}"))?;
            // The journal lives in the scratch directory, removed on drop: it needs no
            // durability. With SQLite's defaults (rollback journal, synchronous=FULL) each
            // update cost several fsyncs under a lock, which capped the update rate.
            let journal = Journal::from_file(&dir.join(format!("{stem}.jrnl")))
                .map_err(|e| format!("zone {stem}: reopening the journal: {e}"))?;
            journal
                .conn()
                .execute_batch("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")
                .map_err(|e| format!("zone {stem}: journal settings: {e}"))?;
            handler.set_journal(journal).await;
            catalog.upsert(LowerName::from(&origin), vec![Arc::new(handler)]);
            origins.push(origin);
        }
        let mode = Arc::new(Mutex::new(SimMode::Normal));
        let mut server = Server::new(SimHandler {
            catalog,
            mode: mode.clone(),
        });
        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr().map_err(|e| e.to_string())?;
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        let admin = signer(ADMIN_KEY, TsigAlgorithm::HmacSha256, admin_raw.to_vec())?;
        Ok(Self {
            addr,
            mode,
            origins,
            admin,
            _server: server,
            _dir: scratch,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: SimMode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    /// Adds a TXT value at `name` (other values stay).
    pub async fn add_txt(&self, name: &str, value: &str) -> Result<(), String> {
        let owner = fqdn(name)?;
        self.admin_update(UpdateOp::Add, txt_record(&owner, 60, value))
            .await
    }

    /// Removes one TXT value at `name`.
    pub async fn remove_txt(&self, name: &str, value: &str) -> Result<(), String> {
        let owner = fqdn(name)?;
        self.admin_update(UpdateOp::Delete, txt_record(&owner, 60, value))
            .await
    }

    /// Sets a CNAME at `name` pointing to `target`.
    pub async fn add_cname(&self, name: &str, target: &str) -> Result<(), String> {
        let owner = fqdn(name)?;
        let rec = cname_record(&owner, 60, &fqdn(target)?);
        self.admin_update(UpdateOp::Add, rec).await
    }

    async fn admin_update(
        &self,
        op: UpdateOp,
        rec: hickory_proto::rr::Record,
    ) -> Result<(), String> {
        let zone = self
            .origins
            .iter()
            .filter(|o| o.zone_of(&rec.name))
            .max_by_key(|o| o.num_labels())
            .ok_or_else(|| format!("{} is in no zone this simulator serves", rec.name))?
            .clone();
        let code = send_update(
            self.addr,
            Transport::Tcp,
            self.admin.clone(),
            &zone,
            op,
            rec,
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| format!("update at {}: {e:?}", self.addr))?;
        if code == ResponseCode::NoError {
            Ok(())
        } else {
            Err(format!("update at {} answered {code}", self.addr))
        }
    }
}

/// A UDP socket and a TCP listener on the same 127.0.0.1 port (retries when the TCP
/// port is taken).
async fn bind_pair() -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), String> {
    let mut last = String::new();
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding UDP on 127.0.0.1: {e}"))?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("no free UDP+TCP port pair on 127.0.0.1 ({last})"))
}

/// A port on 127.0.0.1 where nothing answers DNS: a bound UDP socket that is never read
/// and a TCP listener that never accepts. Keep it alive for the test's duration.
pub struct SilentServer {
    addr: SocketAddr,
    _udp: tokio::net::UdpSocket,
    _tcp: tokio::net::TcpListener,
}

impl SilentServer {
    pub async fn start() -> Result<Self, String> {
        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr().map_err(|e| e.to_string())?;
        Ok(Self {
            addr,
            _udp: udp,
            _tcp: tcp,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
