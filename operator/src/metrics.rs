//! The operator's Prometheus metrics. A [`ReconcileTimer`] times one reconcile and counts its
//! outcome when dropped, so every exit path of a reconcile is measured.
//!
//! Per-app series (`app_*`, `rollouts_aborted_total`) are labelled with the app's namespace and
//! name, which the API server validated as Kubernetes names; they exist while the app does
//! ([`Metrics::forget_app`], called by the external probe's tick for apps that are gone).

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

/// The labels of a per-app series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabels {
    pub namespace: String,
    pub name: String,
}

impl AppLabels {
    pub fn of(app: &crate::api::McpApp) -> Self {
        use kube::ResourceExt;
        AppLabels {
            namespace: app.namespace().unwrap_or_default(),
            name: app.name_any(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AbortLabels {
    pub namespace: String,
    pub name: String,
    /// `true` when the last good revision was applied again.
    pub rolled_back: &'static str,
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
    pub app_ready: Family<AppLabels, Gauge>,
    pub rollouts_aborted: Family<AbortLabels, Counter>,
    pub external_probe_duration: Histogram,
    pub external_probes: Family<ProbeLabels, Counter>,
    pub app_reachable: Family<AppLabels, Gauge>,
    pub app_certificate_expiry_seconds: Family<AppLabels, Gauge>,
    pub app_certificate_expiring: Family<AppLabels, Gauge>,
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
        let app_ready = Family::<AppLabels, Gauge>::default();
        let rollouts_aborted = Family::<AbortLabels, Counter>::default();
        let external_probe_duration =
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let external_probes = Family::<ProbeLabels, Counter>::default();
        let app_reachable = Family::<AppLabels, Gauge>::default();
        let app_certificate_expiry_seconds = Family::<AppLabels, Gauge>::default();
        let app_certificate_expiring = Family::<AppLabels, Gauge>::default();
        registry.register(
            "app_ready",
            "1 while the app's Ready condition is True, else 0; one series per McpApp",
            app_ready.clone(),
        );
        registry.register(
            "rollouts_aborted",
            "Revisions aborted because their pods failed the MCP handshake or their deadline, \
             by app and whether the last good revision was applied again",
            rollouts_aborted.clone(),
        );
        registry.register(
            "external_probe_duration_seconds",
            "Time one MCP handshake through an app's public URL took, successful or not",
            external_probe_duration.clone(),
        );
        registry.register(
            "external_probes",
            "MCP handshakes through apps' public URLs, by result and Reachable reason",
            external_probes.clone(),
        );
        registry.register(
            "app_reachable",
            "1 while the last handshake through the app's public URL succeeded, else 0 \
             (apps with spec.probe.external on)",
            app_reachable.clone(),
        );
        registry.register(
            "app_certificate_expiry_seconds",
            "Seconds from the last external handshake until the app's certificate expires \
             (negative once it has)",
            app_certificate_expiry_seconds.clone(),
        );
        registry.register(
            "app_certificate_expiring",
            "1 while the app's certificate expires within its certificateExpiryWarningDays \
             (or has expired), else 0",
            app_certificate_expiring.clone(),
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
            app_ready,
            rollouts_aborted,
            external_probe_duration,
            external_probes,
            app_reachable,
            app_certificate_expiry_seconds,
            app_certificate_expiring,
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

    /// Sets the Ready series of an app that exists, and makes its abort counters exist at 0:
    /// a counter that appears at 1 has no increase to alert on.
    pub fn app_present(&self, app: &AppLabels, ready: bool) {
        self.app_ready.get_or_create(app).set(i64::from(ready));
        for rolled_back in ["true", "false"] {
            let _ = self.rollouts_aborted.get_or_create(&AbortLabels {
                namespace: app.namespace.clone(),
                name: app.name.clone(),
                rolled_back,
            });
        }
    }

    pub fn app_reachable(&self, app: &AppLabels, reachable: bool) {
        self.app_reachable
            .get_or_create(app)
            .set(i64::from(reachable));
    }

    /// Counts a revision aborted by a reconcile.
    pub fn rollout_aborted(&self, app: &AppLabels, rolled_back: bool) {
        self.rollouts_aborted
            .get_or_create(&AbortLabels {
                namespace: app.namespace.clone(),
                name: app.name.clone(),
                rolled_back: if rolled_back { "true" } else { "false" },
            })
            .inc();
    }

    /// Counts one external handshake (`reason` is the Reachable reason) and sets the app's
    /// series; `certificate` is the seconds until expiry and whether that is soon, when the
    /// server presented one.
    pub fn external_probed(
        &self,
        app: &AppLabels,
        reason: &'static str,
        seconds: f64,
        certificate: Option<(i64, bool)>,
    ) {
        let ok = reason == crate::external::verdict::reasons::HANDSHAKE_SUCCEEDED;
        self.external_probe_duration.observe(seconds);
        self.external_probes
            .get_or_create(&ProbeLabels {
                result: if ok { "success" } else { "failure" },
                reason,
            })
            .inc();
        self.app_reachable(app, ok);
        match certificate {
            Some((left, soon)) => {
                self.app_certificate_expiry_seconds
                    .get_or_create(app)
                    .set(left);
                self.app_certificate_expiring
                    .get_or_create(app)
                    .set(i64::from(soon));
            }
            None => {
                self.app_certificate_expiry_seconds.remove(app);
                self.app_certificate_expiring.remove(app);
            }
        }
    }

    /// Removes the app's external probe series.
    pub fn forget_external(&self, app: &AppLabels) {
        self.app_reachable.remove(app);
        self.app_certificate_expiry_seconds.remove(app);
        self.app_certificate_expiring.remove(app);
    }

    /// Removes every series of an app that is gone.
    pub fn forget_app(&self, app: &AppLabels) {
        self.app_ready.remove(app);
        self.forget_external(app);
        for rolled_back in ["true", "false"] {
            self.rollouts_aborted.remove(&AbortLabels {
                namespace: app.namespace.clone(),
                name: app.name.clone(),
                rolled_back,
            });
        }
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
    fn per_app_series_exist_while_the_app_does() {
        let metrics = Metrics::default();
        let app = AppLabels {
            namespace: "tools".into(),
            name: "demo".into(),
        };
        metrics.app_present(&app, true);
        let before = metrics.encode();
        assert!(
            before.contains("mcp_operator_rollouts_aborted_total{namespace=\"tools\",name=\"demo\",rolled_back=\"true\"} 0"),
            "{before}"
        );
        metrics.rollout_aborted(&app, true);
        metrics.external_probed(&app, "CertificateExpired", 0.1, Some((-60, true)));
        let text = metrics.encode();
        for line in [
            "mcp_operator_app_ready{namespace=\"tools\",name=\"demo\"} 1",
            "mcp_operator_rollouts_aborted_total{namespace=\"tools\",name=\"demo\",rolled_back=\"true\"} 1",
            "mcp_operator_app_reachable{namespace=\"tools\",name=\"demo\"} 0",
            "mcp_operator_app_certificate_expiry_seconds{namespace=\"tools\",name=\"demo\"} -60",
            "mcp_operator_app_certificate_expiring{namespace=\"tools\",name=\"demo\"} 1",
            "mcp_operator_external_probes_total{result=\"failure\",reason=\"CertificateExpired\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        metrics.forget_app(&app);
        let text = metrics.encode();
        assert!(!text.contains("name=\"demo\""), "{text}");
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
