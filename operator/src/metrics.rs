//! The operator's Prometheus metrics. A [`ReconcileTimer`] times one reconcile and counts its
//! outcome when dropped, so every exit path of a reconcile is measured.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// `success` or `failure`.
    pub result: &'static str,
    /// `HandshakeSucceeded`, or the failure's reason (`Timeout`, `ToolsMissing`, ...).
    pub reason: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Counter,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub leader: Gauge,
    pub probe_duration: Histogram,
    pub probes: Family<ProbeLabels, Counter>,
    pub apps: Gauge,
    pub apps_ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mcp_operator");
        let reconciles = Counter::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let leader = Gauge::default();
        let probe_duration = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let probes = Family::<ProbeLabels, Counter>::default();
        let apps = Gauge::default();
        let apps_ready = Gauge::default();
        registry.register("reconciles", "McpApp reconciles", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "McpApp reconciles that failed, by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one McpApp reconcile took",
            reconcile_duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease (always 1 without leader election)",
            leader.clone(),
        );
        registry.register(
            "probe_duration_seconds",
            "Time one MCP handshake with a pod took, successful or not",
            probe_duration.clone(),
        );
        registry.register(
            "probes",
            "MCP handshakes with pods, by result and reason",
            probes.clone(),
        );
        registry.register("apps", "McpApps the operator watches", apps.clone());
        registry.register(
            "apps_ready",
            "McpApps whose Ready condition is True",
            apps_ready.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            leader,
            probe_duration,
            probes,
            apps,
            apps_ready,
        }
    }
}

impl Metrics {
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.reconcile_duration.clone(),
        }
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one handshake and its duration.
    pub fn probed(&self, result: Result<(), &'static str>, seconds: f64) {
        self.probe_duration.observe(seconds);
        let labels = match result {
            Ok(()) => ProbeLabels {
                result: "success",
                reason: crate::api::conditions::reasons::HANDSHAKE_SUCCEEDED,
            },
            Err(reason) => ProbeLabels {
                result: "failure",
                reason,
            },
        };
        self.probes.get_or_create(&labels).inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Observes the reconcile's duration when dropped.
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_and_errors_are_exported() {
        let metrics = Metrics::default();
        drop(metrics.reconcile_started());
        metrics.reconcile_failed("Kube");
        let text = metrics.encode();
        assert!(text.contains("mcp_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains("mcp_operator_reconcile_errors_total{reason=\"Kube\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mcp_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn probes_are_counted_by_result_and_reason() {
        let metrics = Metrics::default();
        metrics.probed(Ok(()), 0.002);
        metrics.probed(Err("Timeout"), 5.0);
        metrics.probed(Err("Timeout"), 5.0);
        let text = metrics.encode();
        assert!(
            text.contains(
                "mcp_operator_probes_total{result=\"success\",reason=\"HandshakeSucceeded\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("mcp_operator_probes_total{result=\"failure\",reason=\"Timeout\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("mcp_operator_probe_duration_seconds_count 3"),
            "{text}"
        );
    }
}
