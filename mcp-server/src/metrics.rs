//! Prometheus metrics: HTTP requests by method, route and status, a latency histogram, JSON-RPC
//! requests by MCP method, active sessions and streams, and bridged child restarts.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
}

/// MCP methods reported by name; anything else (a bridged server's vendor methods) is counted as
/// `other` so a client cannot grow the label set without bound.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
];

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_latency: Family<RouteLabels, Histogram>,
    pub rpc_requests: Family<RpcLabels, Counter>,
    pub sessions: Gauge,
    pub streams: Gauge,
    pub child_restarts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp_server");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        let http_latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 100 µs .. ~100 s: quick JSON answers through long SSE streams.
            Histogram::new(exponential_buckets(0.0001, 4.0, 11))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time until the response head was sent",
            http_latency.clone(),
        );
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "JSON-RPC requests received from clients, by MCP method",
            rpc_requests.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions_active", "Open MCP sessions", sessions.clone());
        let streams = Gauge::default();
        registry.register("streams_active", "Open SSE streams", streams.clone());
        let child_restarts = Counter::default();
        registry.register(
            "child_restarts",
            "Bridged child processes restarted after exiting",
            child_restarts.clone(),
        );
        Self {
            registry,
            http_requests,
            http_latency,
            rpc_requests,
            sessions,
            streams,
            child_restarts,
        }
    }

    pub fn count_rpc(&self, method: &str) {
        let method = if KNOWN_METHODS.contains(&method) {
            method
        } else {
            "other"
        };
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method: method.to_owned(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }

    /// Counts an open SSE stream until the returned guard is dropped.
    pub fn open_stream(self: &Arc<Self>) -> GaugeGuard {
        self.streams.inc();
        GaugeGuard(self.streams.clone())
    }
}

/// Decrements a gauge when dropped.
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_rpc_methods_share_one_label() {
        let m = Metrics::new();
        m.count_rpc("tools/call");
        m.count_rpc("vendor/a");
        m.count_rpc("vendor/b");
        let text = m.render();
        assert!(
            text.contains(r#"mcp_server_rpc_requests_total{method="tools/call"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_server_rpc_requests_total{method="other"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn stream_gauge_follows_guards() {
        let m = Arc::new(Metrics::new());
        let a = m.open_stream();
        let b = m.open_stream();
        assert_eq!(m.streams.get(), 2);
        drop(a);
        drop(b);
        assert_eq!(m.streams.get(), 0);
    }
}
