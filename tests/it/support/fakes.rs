//! In-memory fakes of the Provider, Publisher and PropagationCheck traits for engine
//! tests. They share a `World`: what the publisher put in place is what the checker
//! sees and what the fake CA validates against. The CA issues real certificates.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dcvd::ca::*;
use dcvd::dcv::check::{CheckReport, DnsError, PropagationCheck, ServerOutcome, ServerResult};
use dcvd::dcv::publish::{PublishError, Publisher};
use dcvd::model::{Challenge, ChallengeKind, DcvMethod, DomainName, ProviderKind};
use dcvd::sim::ca::SimCa;

/// Tokens in place, as (kind, name, value).
#[derive(Default)]
pub struct World {
    pub published: Mutex<HashSet<(ChallengeKind, String, String)>>,
    /// Kinds the checker never sees (simulates a broken method).
    pub invisible: Mutex<HashSet<ChallengeKind>>,
    /// Checks of a token to answer "not yet" before it shows (propagation lag).
    pub lag_checks: Mutex<u32>,
    pub checks: Mutex<HashMap<String, u32>>,
}

impl World {
    pub fn has(&self, c: &Challenge) -> bool {
        !self.invisible.lock().unwrap().contains(&c.kind)
            && self
                .published
                .lock()
                .unwrap()
                .contains(&(c.kind, c.name.clone(), c.value.clone()))
    }
    pub fn count(&self) -> usize {
        self.published.lock().unwrap().len()
    }
}

pub struct FakePublisher {
    pub name: String,
    pub world: Arc<World>,
    /// Errors to return from the next `present` calls.
    pub fail_present: Mutex<VecDeque<PublishError>>,
    pub fail_cleanup: Mutex<u32>,
    pub http: bool,
}

impl FakePublisher {
    pub fn new(name: &str, world: Arc<World>, http: bool) -> Self {
        Self {
            name: name.into(),
            world,
            fail_present: Mutex::default(),
            fail_cleanup: Mutex::default(),
            http,
        }
    }
}

#[async_trait]
impl Publisher for FakePublisher {
    fn name(&self) -> &str {
        &self.name
    }
    fn can_publish(&self, c: &Challenge) -> bool {
        c.is_dns() != self.http
    }
    async fn present(&self, c: &Challenge) -> Result<(), PublishError> {
        if let Some(e) = self.fail_present.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.world
            .published
            .lock()
            .unwrap()
            .insert((c.kind, c.name.clone(), c.value.clone()));
        Ok(())
    }
    async fn cleanup(&self, c: &Challenge) -> Result<(), PublishError> {
        {
            let mut f = self.fail_cleanup.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(PublishError {
                    publisher: self.name.clone(),
                    action: "cleanup",
                    what: c.location(),
                    detail: "server timed out".into(),
                    kind: ErrorKind::Transient,
                });
            }
        }
        self.world
            .published
            .lock()
            .unwrap()
            .remove(&(c.kind, c.name.clone(), c.value.clone()));
        Ok(())
    }
}

pub struct FakeChecker {
    pub world: Arc<World>,
}

#[async_trait]
impl PropagationCheck for FakeChecker {
    async fn check(&self, c: &Challenge) -> Result<CheckReport, DnsError> {
        let n = {
            let mut checks = self.world.checks.lock().unwrap();
            let n = checks.entry(c.name.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let lag = *self.world.lag_checks.lock().unwrap();
        let visible = self.world.has(c) && n > lag;
        let outcome = if visible {
            ServerOutcome::Present
        } else {
            ServerOutcome::Nxdomain
        };
        Ok(CheckReport {
            present: visible,
            final_name: c.name.clone(),
            servers: vec![
                ServerResult {
                    server: "ns1.fake (127.0.0.1:53)".into(),
                    outcome: ServerOutcome::Present,
                },
                ServerResult {
                    server: "ns2.fake (127.0.0.2:53)".into(),
                    outcome,
                },
            ]
            .into_iter()
            .map(|mut s| {
                if !self.world.has(c) {
                    s.outcome = ServerOutcome::Nxdomain;
                }
                s
            })
            .collect(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct CaOrder {
    pub id: String,
    pub reference: String,
    pub names: Vec<DomainName>,
    pub csr_der: Vec<u8>,
    pub method: BTreeMap<String, DcvMethod>,
    pub token: String,
    pub valid: HashSet<String>,
    pub issued: bool,
    pub canceled: bool,
    pub renewal_of: Option<String>,
}

/// A CA that validates against the World and issues real certificates.
pub struct FakeCa {
    pub name: String,
    pub world: Arc<World>,
    pub scope: MethodScope,
    pub ca: SimCa,
    pub orders: Mutex<Vec<CaOrder>>,
    /// Operation names of every call, in order.
    pub calls: Mutex<Vec<String>>,
    /// Errors to return from the next calls of an operation.
    pub fail: Mutex<HashMap<&'static str, VecDeque<ProviderError>>>,
    /// When set, `submit` records the order and then never answers (a crash window).
    pub hang_after_submit: Mutex<bool>,
    pub approved: Mutex<HashSet<String>>,
    /// When set, the next check rotates the order's token and reports the old one as expiring.
    pub expire_token_once: Mutex<bool>,
    pub resent: Mutex<Vec<(String, String)>>,
    pub poll: Duration,
    /// ARI: the renewal window `renewal_window` reports (none by default).
    pub ari: Mutex<Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>>,
    /// A slow CA: when set, `submit` fails with a timeout and its order appears this long
    /// after the request (by `clock`), as when order creation outlasts `request_timeout`.
    pub create_after: Mutex<Option<Duration>>,
    /// The same request lands again as further orders, each this long after the first
    /// (a retrying proxy, a late first request).
    pub copies_after: Mutex<Vec<Duration>>,
    /// Orders the CA is still creating: (when they appear, the order).
    pub landing: Mutex<Vec<(chrono::DateTime<chrono::Utc>, CaOrder)>>,
    /// Scripted answers of the next `find_order` calls (e.g. `Unsure`).
    pub lookups: Mutex<VecDeque<Lookup>>,
    /// `in_flight_bound` this CA reports.
    pub bound: Duration,
    pub clock: dcvd::clock::SharedClock,
    /// The next N downloads come cut inside the intermediate, split leniently (R2).
    pub truncate_next_downloads: Mutex<u32>,
    /// Operations whose next call panics (once each): a bug inside a step.
    pub panic_next: Mutex<HashSet<&'static str>>,
}

impl FakeCa {
    /// `clock` is the engine's: the leaves it signs are dated by it.
    pub fn new(
        name: &str,
        world: Arc<World>,
        scope: MethodScope,
        clock: dcvd::clock::SharedClock,
    ) -> Self {
        Self {
            name: name.into(),
            world,
            scope,
            ca: SimCa::new("Fake", clock.clone()).unwrap(),
            orders: Mutex::default(),
            calls: Mutex::default(),
            fail: Mutex::default(),
            hang_after_submit: Mutex::new(false),
            approved: Mutex::default(),
            expire_token_once: Mutex::new(false),
            resent: Mutex::default(),
            poll: Duration::from_secs(30),
            ari: Mutex::default(),
            create_after: Mutex::default(),
            copies_after: Mutex::default(),
            landing: Mutex::default(),
            lookups: Mutex::default(),
            bound: Duration::from_secs(300),
            clock,
            truncate_next_downloads: Mutex::new(0),
            panic_next: Mutex::default(),
        }
    }

    /// Orders whose creation finished by now join the CA's order list.
    fn land(&self) {
        let now = self.clock.now();
        let mut landing = self.landing.lock().unwrap();
        let mut orders = self.orders.lock().unwrap();
        landing.sort_by_key(|(t, _)| *t);
        while landing.first().is_some_and(|(t, _)| *t <= now) {
            orders.push(landing.remove(0).1);
        }
    }

    /// Orders at the CA, also those still being created.
    pub fn total_orders(&self) -> usize {
        self.orders.lock().unwrap().len() + self.landing.lock().unwrap().len()
    }

    pub fn canceled_ids(&self) -> Vec<String> {
        self.orders
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.canceled)
            .map(|o| o.id.clone())
            .collect()
    }

    pub fn fail_next(&self, op: &'static str, e: ProviderError) {
        self.fail
            .lock()
            .unwrap()
            .entry(op)
            .or_default()
            .push_back(e);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn order_count(&self) -> usize {
        self.orders.lock().unwrap().len()
    }

    fn enter(&self, op: &'static str) -> Result<(), ProviderError> {
        self.land();
        self.calls.lock().unwrap().push(op.to_string());
        if self.panic_next.lock().unwrap().remove(op) {
            panic!("FakeCa: scripted panic in {op}");
        }
        if let Some(e) = self
            .fail
            .lock()
            .unwrap()
            .get_mut(op)
            .and_then(|q| q.pop_front())
        {
            return Err(e);
        }
        Ok(())
    }

    fn challenge_for(&self, o: &CaOrder, name: &DomainName) -> Option<Challenge> {
        let base = name.base();
        match o.method.get(name.as_str())? {
            DcvMethod::DnsTxt => Some(Challenge {
                kind: ChallengeKind::DnsTxt,
                name: format!("_dnsauth.{base}"),
                path: None,
                value: o.token.clone(),
            }),
            DcvMethod::DnsCname => Some(Challenge {
                kind: ChallengeKind::DnsCname,
                name: format!("_dnsauth.{base}"),
                path: None,
                value: format!("{}.dcv.fake", o.token),
            }),
            DcvMethod::Http | DcvMethod::Https => Some(Challenge {
                kind: ChallengeKind::Http,
                name: name.to_string(),
                path: Some("/.well-known/pki-validation/fileauth.txt".into()),
                value: o.token.clone(),
            }),
            DcvMethod::Email => None,
        }
    }

    fn submitted(&self, o: &CaOrder) -> Submitted {
        Submitted {
            ca_order_id: o.id.clone(),
            ca_data: serde_json::json!({ "token": o.token }),
            challenges: o
                .names
                .iter()
                .filter_map(|n| Some((n.clone(), self.challenge_for(o, n)?)))
                .collect(),
            issued: false,
        }
    }

    /// Validate each pending name against the world (or approval), issue when all are valid.
    fn validate(&self, o: &mut CaOrder) {
        for n in &o.names {
            let ok = match o.method.get(n.as_str()) {
                Some(DcvMethod::Email) => self.approved.lock().unwrap().contains(n.as_str()),
                _ => self.challenge_for(o, n).is_some_and(|c| self.world.has(&c)),
            };
            if ok {
                o.valid.insert(n.to_string());
            }
        }
        if o.valid.len() == o.names.len() {
            o.issued = true;
        }
    }

    fn status_of(o: &CaOrder) -> CaStatus {
        CaStatus {
            order: if o.canceled {
                CaOrderState::Failed("canceled".into())
            } else if o.issued {
                CaOrderState::Issued
            } else {
                CaOrderState::InProgress
            },
            names: o
                .names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        if o.valid.contains(n.as_str()) {
                            NameDcv::Valid
                        } else {
                            NameDcv::Pending
                        },
                    )
                })
                .collect(),
            ca_data: None,
        }
    }

    fn with_order<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut CaOrder) -> T,
    ) -> Result<T, ProviderError> {
        let mut orders = self.orders.lock().unwrap();
        let o = orders.iter_mut().find(|o| o.id == id).ok_or_else(|| {
            ProviderError::new(&self.name, "order", ErrorKind::Permanent).with_status(404)
        })?;
        Ok(f(o))
    }
}

pub fn transient(provider: &str, op: &str) -> ProviderError {
    ProviderError::new(provider, op, ErrorKind::Transient).with_status(503)
}

pub fn permanent(provider: &str, op: &str, code: &str, msg: &str) -> ProviderError {
    ProviderError::new(provider, op, ErrorKind::Permanent)
        .with_status(400)
        .with_errors(vec![ApiError {
            code: code.into(),
            message: msg.into(),
            item: None,
        }])
        .rejected()
}

#[async_trait]
impl Provider for FakeCa {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Digicert
    }
    fn method_scope(&self) -> MethodScope {
        self.scope
    }
    fn poll_interval(&self) -> Duration {
        self.poll
    }
    fn tokens_need_refresh(&self, ca_data: &serde_json::Value) -> bool {
        ca_data.get("refresh") == Some(&serde_json::Value::Bool(true))
    }
    fn suggests_renewal_windows(&self) -> bool {
        true
    }
    async fn renewal_window(
        &self,
        cert_pem: &str,
    ) -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
        assert!(
            cert_pem.contains("BEGIN CERTIFICATE"),
            "ARI gets the issued leaf"
        );
        self.calls.lock().unwrap().push("renewal_window".into());
        *self.ari.lock().unwrap()
    }
    fn in_flight_bound(&self) -> Duration {
        self.bound
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ProviderError> {
        self.enter("submit")?;
        let o = {
            let mut orders = self.orders.lock().unwrap();
            let mut landing = self.landing.lock().unwrap();
            let o = CaOrder {
                id: format!("{}", 1000 + orders.len() + landing.len()),
                reference: req.reference.clone(),
                names: req.names.clone(),
                csr_der: req.csr_der.clone(),
                method: req
                    .names
                    .iter()
                    .zip(&req.methods)
                    .map(|(n, m)| (n.to_string(), *m))
                    .collect(),
                token: format!("tok{}", rand::random::<u32>()),
                valid: HashSet::new(),
                issued: false,
                canceled: false,
                renewal_of: req.renewal_of.clone(),
            };
            let now = self.clock.now();
            let delay = self.create_after.lock().unwrap().unwrap_or_default();
            let at = |d: Duration| now + chrono::Duration::from_std(d).unwrap();
            if delay.is_zero() {
                orders.push(o.clone());
            } else {
                landing.push((at(delay), o.clone()));
            }
            let first_copy = 1000 + orders.len() + landing.len();
            for (i, d) in self.copies_after.lock().unwrap().iter().enumerate() {
                let mut copy = o.clone();
                copy.id = format!("{}", first_copy + i);
                landing.push((at(delay + *d), copy));
            }
            o
        };
        if *self.hang_after_submit.lock().unwrap() {
            std::future::pending::<()>().await;
        }
        if self.create_after.lock().unwrap().is_some() {
            return Err(ProviderError::transport(
                &self.name,
                "submit",
                "operation timed out (request_timeout)",
            ));
        }
        Ok(self.submitted(&o))
    }
    async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        self.enter("find_order")?;
        if let Some(answer) = self.lookups.lock().unwrap().pop_front() {
            return Ok(answer);
        }
        let orders = self.orders.lock().unwrap();
        let found: Vec<Submitted> = orders
            .iter()
            .filter(|o| o.reference == req.reference && !req.known_ca_orders.contains(&o.id))
            .map(|o| self.submitted(o))
            .collect();
        Ok(match found.is_empty() {
            true => Lookup::NotFound,
            false => Lookup::Found(found),
        })
    }
    async fn order_by_id(
        &self,
        req: &SubmitRequest,
        ca_order_id: &str,
    ) -> Result<Submitted, ProviderError> {
        self.enter("order_by_id")?;
        let orders = self.orders.lock().unwrap();
        let o = orders.iter().find(|o| o.id == ca_order_id).ok_or_else(|| {
            ProviderError::new(&self.name, "order_by_id", ErrorKind::Permanent)
                .with_status(404)
                .with_detail(format!("no CA order {ca_order_id}"))
        })?;
        if o.names != req.names {
            return Err(
                ProviderError::new(&self.name, "order_by_id", ErrorKind::Permanent).with_detail(
                    format!("CA order {ca_order_id} is for other names: {:?}", o.names),
                ),
            );
        }
        Ok(self.submitted(o))
    }
    async fn challenges(
        &self,
        order: OrderRef<'_>,
        names: &[(DomainName, DcvMethod)],
    ) -> Result<Tokens, ProviderError> {
        self.enter("challenges")?;
        self.with_order(order.ca_order_id, |o| Tokens {
            challenges: names
                .iter()
                .filter_map(|(n, _)| Some((n.clone(), self.challenge_for(o, n)?)))
                .collect(),
            ca_data: Some(serde_json::json!({ "token": o.token, "refresh": false })),
        })
    }
    async fn status(&self, order: OrderRef<'_>) -> Result<CaStatus, ProviderError> {
        self.enter("status")?;
        self.with_order(order.ca_order_id, |o| {
            self.validate(o);
            Self::status_of(o)
        })
    }
    async fn change_method(
        &self,
        order: OrderRef<'_>,
        names: &[DomainName],
        method: DcvMethod,
        _emails: &[(DomainName, String)],
    ) -> Result<Tokens, ProviderError> {
        self.enter("change_method")?;
        self.with_order(order.ca_order_id, |o| {
            o.token = format!("tok{}", rand::random::<u32>());
            for n in names {
                o.method.insert(n.to_string(), method);
            }
            Tokens {
                challenges: names
                    .iter()
                    .filter_map(|n| Some((n.clone(), self.challenge_for(o, n)?)))
                    .collect(),
                ca_data: Some(serde_json::json!({ "token": o.token })),
            }
        })
    }
    async fn resend_emails(
        &self,
        _order: OrderRef<'_>,
        emails: &[(DomainName, String)],
        _locale: &str,
    ) -> Result<(), ProviderError> {
        self.enter("resend_emails")?;
        self.resent
            .lock()
            .unwrap()
            .extend(emails.iter().map(|(d, e)| (d.to_string(), e.clone())));
        Ok(())
    }
    async fn trigger_check(
        &self,
        order: OrderRef<'_>,
        _names: &[DomainName],
    ) -> Result<CaStatus, ProviderError> {
        self.enter("trigger_check")?;
        let expire = std::mem::take(&mut *self.expire_token_once.lock().unwrap());
        self.with_order(order.ca_order_id, |o| {
            if expire {
                o.token = format!("tok{}", rand::random::<u32>());
                let mut st = Self::status_of(o);
                st.ca_data = Some(serde_json::json!({ "token": o.token, "refresh": true }));
                return st;
            }
            self.validate(o);
            Self::status_of(o)
        })
    }
    async fn approver_emails(&self, name: &DomainName) -> Result<Vec<String>, ProviderError> {
        self.enter("approver_emails")?;
        Ok(vec![format!("admin@{}", name.base())])
    }
    async fn download(&self, order: OrderRef<'_>) -> Result<IssuedChain, ProviderError> {
        self.enter("download")?;
        let (csr, names, issued) = self.with_order(order.ca_order_id, |o| {
            (o.csr_der.clone(), o.names.clone(), o.issued)
        })?;
        if !issued {
            return Err(
                ProviderError::new(&self.name, "download", ErrorKind::Transient)
                    .with_detail("not issued yet"),
            );
        }
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let (leaf, chain) = self.ca.issue(&csr, &names).map_err(|e| {
            ProviderError::new(&self.name, "download", ErrorKind::Permanent)
                .with_detail(e.to_string())
        })?;
        let mut cut = self.truncate_next_downloads.lock().unwrap();
        if *cut > 0 {
            *cut -= 1;
            // A pem_all body cut halfway into the intermediate, split the lenient way: the
            // complete blocks are kept, the unterminated one is dropped.
            let bundle = format!("{leaf}{}", chain.concat());
            let text = &bundle[..leaf.len() + chain[0].len() / 2];
            const END: &str = "-----END CERTIFICATE-----";
            let mut blocks: Vec<String> = text
                .split_inclusive(END)
                .filter(|b| b.ends_with(END))
                .map(|b| format!("{}\n", b.trim_start()))
                .collect();
            let leaf_pem = blocks.remove(0);
            return Ok(IssuedChain {
                leaf_pem,
                chain_pem: blocks,
            });
        }
        Ok(IssuedChain {
            leaf_pem: leaf,
            chain_pem: chain,
        })
    }
    async fn cancel(&self, order: OrderRef<'_>) -> Result<(), ProviderError> {
        self.enter("cancel")?;
        self.with_order(order.ca_order_id, |o| o.canceled = true)
    }
}
