//! Test helpers: a tiny authoritative DNS server with a mutable record set
//! (hickory-server InMemoryZoneHandler on 127.0.0.1:0) and a tiny HTTP file server.


use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::rdata::{CNAME, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    _server: Server<Catalog>,
}

impl TestDns {
    pub async fn start(origin: &str) -> TestDns {
        let origin = Name::from_str(&format!("{origin}.")).unwrap();
        let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
            None,
        );
        let soa = SOA::new(
            Name::from_str("ns.invalid.").unwrap(),
            Name::from_str("hostmaster.invalid.").unwrap(),
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
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        TestDns {
            addr,
            zone,
            _server: server,
        }
    }

    pub async fn set_cname(&self, owner: &str, target: &str) {
        let rec = Record::from_rdata(
            Name::from_str(&format!("{owner}.")).unwrap(),
            60,
            RData::CNAME(CNAME(Name::from_str(&format!("{target}.")).unwrap())),
        );
        assert!(self.zone.upsert(rec, 2).await);
    }

    pub async fn remove(&self, owner: &str, rtype: RecordType) {
        let key = RrKey::new(
            LowerName::from(Name::from_str(&format!("{owner}.")).unwrap()),
            rtype,
        );
        self.zone.records_mut().await.remove(&key);
    }
}

/// Serves `(host, path) → body`, picking the host from the Host header.
pub struct TestHttp {
    pub addr: SocketAddr,
    files: Arc<Mutex<HashMap<(String, String), String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestHttp {
    pub async fn start() -> TestHttp {
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode, Uri};
        type Files = Arc<Mutex<HashMap<(String, String), String>>>;
        async fn serve(
            State(f): State<Files>,
            headers: HeaderMap,
            uri: Uri,
        ) -> (StatusCode, String) {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            match f.lock().unwrap().get(&(host, uri.path().to_string())) {
                Some(b) => (StatusCode::OK, b.clone()),
                None => (StatusCode::NOT_FOUND, String::new()),
            }
        }
        let files: Files = Arc::default();
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestHttp { addr, files, task }
    }

    pub fn put(&self, host: &str, path: &str, body: &str) {
        self.files
            .lock()
            .unwrap()
            .insert((host.to_string(), path.to_string()), body.to_string());
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
