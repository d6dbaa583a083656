//! `Services`: the validated config together with the providers, publishers and checker
//! built from it. Replaced as a whole on SIGHUP; each step uses one snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ca::{MethodScope, Provider};
use crate::config::{CertificateConfig, Config};
use crate::dcv::check::PropagationCheck;
use crate::dcv::publish::Publisher;

pub struct Services {
    pub config: Config,
    pub providers: HashMap<String, Arc<dyn Provider>>,
    pub publishers: HashMap<String, Arc<dyn Publisher>>,
    pub checker: Arc<dyn PropagationCheck>,
    /// The rate limiters by provider name: handed on to the `Services` a reload builds
    /// (`build_reusing`), so every window keeps counting across SIGHUP.
    pub limiters: Arc<crate::ca::limit::Limiters>,
    /// Certificate name → index in `config.certificates` (every step looks one up).
    by_name: HashMap<String, usize>,
}

impl Services {
    pub fn new(
        config: Config,
        providers: HashMap<String, Arc<dyn Provider>>,
        publishers: HashMap<String, Arc<dyn Publisher>>,
        checker: Arc<dyn PropagationCheck>,
    ) -> Self {
        let by_name = config
            .certificates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Self {
            config,
            providers,
            publishers,
            checker,
            limiters: Arc::new(crate::ca::limit::Limiters::new()),
            by_name,
        }
    }

    pub fn certificate(&self, name: &str) -> Option<&CertificateConfig> {
        self.by_name
            .get(name)
            .and_then(|&i| self.config.certificates.get(i))
    }

    /// The publisher for a token of this method: `http_publisher` for HTTP methods when set.
    pub fn publisher_for(
        &self,
        cert: &CertificateConfig,
        http: bool,
    ) -> Option<Arc<dyn Publisher>> {
        let name = if http {
            cert.http_publisher.as_ref().or(cert.publisher.as_ref())
        } else {
            cert.publisher.as_ref()
        }?;
        self.publishers.get(name).cloned()
    }

    pub fn scope_of(&self, provider: &str) -> MethodScope {
        self.providers
            .get(provider)
            .map(|p| p.method_scope())
            .unwrap_or(MethodScope::PerName)
    }
}

/// Build providers (each taking permits from its rate limiter), publishers and the checker from a
/// validated config. `store` is where ACME providers keep their account.
pub async fn build(
    config: &Config,
    metrics: Arc<crate::metrics::Metrics>,
    store: &crate::store::Store,
    clock: crate::clock::SharedClock,
) -> Result<Services, String> {
    let limiters = Arc::new(crate::ca::limit::Limiters::new());
    build_reusing(config, metrics, store, clock, limiters).await
}

/// As `build`, taking each provider's rate limiter from `limiters` (a reload passes the
/// running `Services`): the limiter of a provider of the same name is kept, with the new
/// `rate_limits` in force if they changed, so requests sent before the reload and by
/// steps still running on the old `Services` count against the same windows.
pub async fn build_reusing(
    config: &Config,
    metrics: Arc<crate::metrics::Metrics>,
    store: &crate::store::Store,
    clock: crate::clock::SharedClock,
    limiters: Arc<crate::ca::limit::Limiters>,
) -> Result<Services, String> {
    use crate::ca::limit::Limiter;
    use crate::config::ProviderConfig;
    // Build everything first: a provider that fails to build rejects the reload, and
    // then no limiter may have been changed.
    let mut pending: Vec<(&String, &ProviderConfig, Pending)> = Vec::new();
    for (name, pc) in &config.providers {
        let made: Result<Pending, String> = match pc {
            ProviderConfig::Digicert(c) => crate::ca::digicert::DigicertProvider::new(name, c)
                .map(|p| Pending::Digicert(p.with_clock(clock.clone()))),
            ProviderConfig::Sectigo(c) => crate::ca::sectigo::SectigoProvider::new(name, c)
                .map(|p| Pending::Sectigo(p.with_clock(clock.clone()))),
            ProviderConfig::Acme(c) => {
                crate::ca::acme::AcmeProvider::new(name, c, &config.dns, Arc::new(store.clone()))
                    .map(|p| Pending::Acme(p.with_clock(clock.clone())))
            }
        };
        pending.push((
            name,
            pc,
            made.map_err(|e| format!("providers.{name}: {e}"))?,
        ));
    }
    let mut publishers: HashMap<String, Arc<dyn Publisher>> = HashMap::new();
    for (name, pc) in &config.publishers {
        publishers.insert(
            name.clone(),
            crate::dcv::publish::build(name, pc).map_err(|e| format!("publishers.{name}: {e}"))?,
        );
    }
    let checker = crate::dcv::check::build(&config.dns, &config.http_check)
        .map_err(|e| format!("dns: {e}"))?;
    // Every provider's transport takes a permit per HTTP request from its limiter and
    // pauses it when the CA says "rate limited": one limiter per provider, no wrapper.
    let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    for (name, pc, p) in pending {
        let m = metrics.clone();
        let limiter = limiters.get(name, crate::config::rate_limits(pc), |limits| {
            Limiter::new(limits).on_wait(name, move |p, waited| m.rate_limit_wait(p, waited))
        });
        let provider: Arc<dyn Provider> = match p {
            Pending::Digicert(p) => Arc::new(p.with_limiter(limiter)),
            Pending::Sectigo(p) => Arc::new(p.with_limiter(limiter)),
            Pending::Acme(p) => Arc::new(p.with_limiter(limiter)),
        };
        providers.insert(name.clone(), provider);
    }
    let names: Vec<&str> = config.providers.keys().map(String::as_str).collect();
    limiters.retain(&names);
    let mut rt = Services::new(config.clone(), providers, publishers, checker);
    rt.limiters = limiters;
    Ok(rt)
}

/// A provider built but not yet given its limiter.
enum Pending {
    Digicert(crate::ca::digicert::DigicertProvider),
    Sectigo(crate::ca::sectigo::SectigoProvider),
    Acme(crate::ca::acme::AcmeProvider),
}
