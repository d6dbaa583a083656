//! Test helpers: an in-process authoritative DNS server (one zone) whose records
//! tests set at run time, a tiny HTTP token server, and CSR/request builders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use hickory_server::Server;
use hickory_server::proto::rr::rdata::{CNAME, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler>,
    _server: Server<Catalog>,
}

fn fqdn(name: &str) -> Name {
    Name::from_str(&format!("{}.", name.trim_end_matches('.'))).expect("test name")
}

impl TestDns {
    /// An authoritative server for the zone `origin` (e.g. `test`, `example.test`).
    pub async fn start(origin: &str) -> Self {
        let origin_text = origin.trim_end_matches('.').to_string();
        let origin = fqdn(&origin_text);
        let mut zone =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny, None);
        let soa = SOA::new(
            fqdn(&format!("ns.{origin_text}")),
            fqdn(&format!("hostmaster.{origin_text}")),
            1,
            3600,
            600,
            86400,
            60,
        );
        assert!(zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1));
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::from(&origin), vec![zone.clone()]);
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp bind");
        let addr = udp.local_addr().expect("udp addr");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            server.register_listener(tcp, Duration::from_secs(5), 64);
        }
        Self {
            addr,
            zone,
            _server: server,
        }
    }

    async fn replace(&self, name: &str, rtype: RecordType, rdata: RData) {
        let n = fqdn(name);
        self.zone
            .records_mut()
            .await
            .remove(&RrKey::new(LowerName::from(&n), rtype));
        assert!(self.zone.upsert(Record::from_rdata(n, 60, rdata), 2).await);
    }

    pub async fn set_txt(&self, name: &str, value: &str) {
        self.replace(
            name,
            RecordType::TXT,
            RData::TXT(TXT::new(vec![value.to_string()])),
        )
        .await;
    }

    pub async fn set_cname(&self, name: &str, target: &str) {
        self.replace(name, RecordType::CNAME, RData::CNAME(CNAME(fqdn(target))))
            .await;
    }
}

/// Serves `http://<host><path>` bodies from a map (keyed by Host header and path).
pub struct TestWeb {
    pub addr: SocketAddr,
    files: Arc<Mutex<BTreeMap<(String, String), String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestWeb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Files = Arc<Mutex<BTreeMap<(String, String), String>>>;

async fn serve_file(State(files): State<Files>, req: Request) -> (StatusCode, String) {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let key = (host, req.uri().path().to_string());
    match files.lock().unwrap().get(&key) {
        Some(b) => (StatusCode::OK, b.clone()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

impl TestWeb {
    pub async fn start() -> Self {
        let files: Files = Arc::default();
        let app = axum::Router::new()
            .fallback(serve_file)
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, files, task }
    }

    pub fn put(&self, host: &str, path: &str, body: &str) {
        self.files
            .lock()
            .unwrap()
            .insert((host.to_string(), path.to_string()), body.to_string());
    }
}

/// A fresh ECDSA key's CSR (PEM, DER) for `names`.
pub fn csr(names: &[&str]) -> (String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names[0]);
    params.distinguished_name = dn;
    let req = params.serialize_request(&key).unwrap();
    (req.pem().unwrap(), req.der().to_vec())
}
