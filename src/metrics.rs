//! Prometheus metrics (prometheus-client, explicit registry so tests can read them).
//! Counters are bumped where things happen; gauges that mirror the database (orders by
//! state, certificate expiry, overdue work) are refreshed on each scrape.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub provider: String,
    pub endpoint: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub provider: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrderLabels {
    pub provider: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DnsLabels {
    pub result: String,
    pub nameserver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwitchLabels {
    pub provider: String,
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    pub certificate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

type SecondsHistogram = Family<EndpointLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Mutex<Registry>,
    pub orders: Family<OrderLabels, Gauge>,
    pub provider_requests: Family<RequestLabels, Counter>,
    pub provider_request_seconds: SecondsHistogram,
    pub rate_limit_waits: Family<ProviderLabels, Counter>,
    pub rate_limit_wait_seconds: Family<ProviderLabels, Counter<f64, AtomicU64>>,
    pub dns_checks: Family<DnsLabels, Counter>,
    pub method_switches: Family<SwitchLabels, Counter>,
    pub emails_resent: Family<ProviderLabels, Counter>,
    pub certificates_issued: Family<ProviderLabels, Counter>,
    pub certificate_expiry: Family<CertLabels, Gauge>,
    pub reconcile_errors: Family<KindLabels, Counter>,
    pub scheduler_overdue: Gauge,
    pub awaiting_operator: Family<ProviderLabels, Gauge>,
    pub duplicate_orders: Family<ProviderLabels, Counter>,
    pub damaged_rows: Family<TableLabels, Gauge>,
    pub build_info: Family<BuildLabels, Gauge>,
}

/// prometheus-client writes OpenMetrics, where a counter family `x` has samples
/// `x_total` and the text ends with `# EOF`. The Prometheus text format names the family
/// after its samples (`x_total`) and has no EOF marker.
fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            orders: Family::default(),
            provider_requests: Family::default(),
            provider_request_seconds: Family::new_with_constructor(
                request_histogram as fn() -> Histogram,
            ),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            dns_checks: Family::default(),
            method_switches: Family::default(),
            emails_resent: Family::default(),
            certificates_issued: Family::default(),
            certificate_expiry: Family::default(),
            reconcile_errors: Family::default(),
            scheduler_overdue: Gauge::default(),
            awaiting_operator: Family::default(),
            duplicate_orders: Family::default(),
            damaged_rows: Family::default(),
            build_info: Family::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|e| e.into_inner());
            let r = r.sub_registry_with_prefix("dcvd");
            r.register("orders", "Orders by provider and state", m.orders.clone());
            r.register(
                "provider_requests",
                "CA API calls by provider, operation and outcome (ok, or the HTTP status / error kind)",
                m.provider_requests.clone(),
            );
            r.register(
                "provider_request_duration_seconds",
                "Latency of CA API calls",
                m.provider_request_seconds.clone(),
            );
            r.register(
                "rate_limit_waits",
                "CA calls that waited for the client-side rate limiter",
                m.rate_limit_waits.clone(),
            );
            r.register(
                "rate_limit_wait_seconds",
                "Time spent waiting for the client-side rate limiter",
                m.rate_limit_wait_seconds.clone(),
            );
            r.register(
                "dns_checks",
                "Per-server results of propagation checks",
                m.dns_checks.clone(),
            );
            r.register(
                "method_switches",
                "DCV method fallbacks",
                m.method_switches.clone(),
            );
            r.register(
                "emails_resent",
                "Approval email resends",
                m.emails_resent.clone(),
            );
            r.register(
                "certificates_issued",
                "Certificates downloaded and installed",
                m.certificates_issued.clone(),
            );
            r.register(
                "certificate_expiry_timestamp_seconds",
                "notAfter of the installed certificate, Unix time",
                m.certificate_expiry.clone(),
            );
            r.register(
                "reconcile_errors",
                "Failed reconcile steps by error kind",
                m.reconcile_errors.clone(),
            );
            r.register(
                "scheduler_overdue_orders",
                "Live orders whose next step is due but not yet running",
                m.scheduler_overdue.clone(),
            );
            r.register(
                "orders_awaiting_operator",
                "Orders in submit_unknown: dcvd cannot tell whether the CA has them and waits for \
                 `dcvd orders adopt` or `dcvd orders resubmit`",
                m.awaiting_operator.clone(),
            );
            r.register(
                "duplicate_orders",
                "CA orders found beside an adopted one (the same request placed twice) and canceled \
                 or attempted to cancel",
                m.duplicate_orders.clone(),
            );
            r.register(
                "damaged_rows",
                "Database rows dcvd cannot read and holds aside (orders, certificates, cleanup \
                 journal entries); each is listed by `dcvd status`",
                m.damaged_rows.clone(),
            );
            r.register("build_info", "dcvd version", m.build_info.clone());
        }
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        m
    }

    /// Prometheus text format (version 0.0.4), as `promtool check metrics` expects.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        openmetrics_to_prometheus(&out)
    }

    pub fn provider_call(&self, provider: &str, endpoint: &str, status: &str, seconds: f64) {
        self.provider_requests
            .get_or_create(&RequestLabels {
                provider: provider.into(),
                endpoint: endpoint.into(),
                status: status.into(),
            })
            .inc();
        self.provider_request_seconds
            .get_or_create(&EndpointLabels {
                provider: provider.into(),
                endpoint: endpoint.into(),
            })
            .observe(seconds);
    }

    pub fn rate_limit_wait(&self, provider: &str, waited: std::time::Duration) {
        let l = ProviderLabels {
            provider: provider.into(),
        };
        self.rate_limit_waits.get_or_create(&l).inc();
        self.rate_limit_wait_seconds
            .get_or_create(&l)
            .inc_by(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_after_their_samples_and_no_eof_marker() {
        let m = Metrics::new();
        m.certificates_issued
            .get_or_create(&ProviderLabels {
                provider: "main".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("# HELP dcvd_certificates_issued_total "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE dcvd_certificates_issued_total counter"),
            "{text}"
        );
        assert!(
            text.contains("dcvd_certificates_issued_total{provider=\"main\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE dcvd_scheduler_overdue_orders gauge"));
        assert!(!text.contains("# EOF"));
    }
}
