//! `Runtime`: the validated config together with the providers, publishers and checker
//! built from it. Replaced as a whole on SIGHUP; each step uses one snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{CertificateConfig, Config};
use crate::dnscheck::PropagationCheck;
use crate::provider::{MethodScope, Provider};
use crate::publish::Publisher;
use crate::state::Policy;

pub struct Runtime {
    pub config: Config,
    pub providers: HashMap<String, Arc<dyn Provider>>,
    pub publishers: HashMap<String, Arc<dyn Publisher>>,
    pub checker: Arc<dyn PropagationCheck>,
}

impl Runtime {
    pub fn certificate(&self, name: &str) -> Option<&CertificateConfig> {
        self.config.certificates.iter().find(|c| c.name == name)
    }

    /// The DCV policy for an order of certificate `cert` at `provider`.
    pub fn policy(&self, cert: &CertificateConfig, provider: &dyn Provider) -> Policy {
        Policy {
            dcv: cert.dcv.clone(),
            method_timeout: cert.method_timeout,
            scope: provider.method_scope(),
            status_interval: provider.poll_interval(),
            max_resends: cert.max_resends,
            wildcard_names: std::iter::once(&cert.common_name)
                .chain(cert.dns_names.iter())
                .filter_map(|n| crate::model::DomainName::parse(n).ok())
                .filter(|n| n.is_wildcard())
                .map(|n| n.to_string())
                .collect(),
        }
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
