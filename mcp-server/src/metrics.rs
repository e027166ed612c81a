//! Prometheus metrics: HTTP requests by method, route and status, a latency histogram, JSON-RPC
//! requests by MCP method, active sessions and streams, bridged child restarts, session
//! routing outcomes (forwards to the owning replica, rejected ids), and requests to and failures
//! of a proxied upstream.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label values are `&'static str`: each comes from a fixed list in this crate, never from a
/// request, so no client can grow the number of series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoutingLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamRequestLabels {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamFailureLabels {
    pub reason: &'static str,
}

/// HTTP methods reported by name; any other token a client invents counts as `other`.
const KNOWN_HTTP_METHODS: &[&str] = &[
    "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// The label for an HTTP method: its name when standard, `other` otherwise.
pub fn http_method_label(method: &str) -> &'static str {
    known_or_other(KNOWN_HTTP_METHODS, method)
}

/// The entry of `known` equal to `value`, or `other`.
pub fn known_or_other(known: &[&'static str], value: &str) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or("other")
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
    pub session_routing: Family<RoutingLabels, Counter>,
    pub upstream_requests: Family<UpstreamRequestLabels, Counter>,
    pub upstream_failures: Family<UpstreamFailureLabels, Counter>,
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
        let session_routing = Family::<RoutingLabels, Counter>::default();
        registry.register(
            "session_routing",
            "Requests naming another replica's session or an id that does not verify, by outcome",
            session_routing.clone(),
        );
        let upstream_requests = Family::<UpstreamRequestLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "HTTP requests sent to the proxied upstream server, by method",
            upstream_requests.clone(),
        );
        let upstream_failures = Family::<UpstreamFailureLabels, Counter>::default();
        registry.register(
            "upstream_failures",
            "Failed exchanges with the proxied upstream server, by reason",
            upstream_failures.clone(),
        );
        Self {
            registry,
            http_requests,
            http_latency,
            rpc_requests,
            sessions,
            streams,
            child_restarts,
            session_routing,
            upstream_requests,
            upstream_failures,
        }
    }

    pub fn count_rpc(&self, method: &str) {
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method: known_or_other(KNOWN_METHODS, method),
            })
            .inc();
    }

    /// Counts a routing outcome (a fixed word chosen by the routing layer, never request data).
    pub fn count_session_routing(&self, outcome: &'static str) {
        self.session_routing
            .get_or_create(&RoutingLabels { outcome })
            .inc();
    }

    /// Counts a request to the proxied upstream.
    pub fn count_upstream_request(&self, method: &str) {
        self.upstream_requests
            .get_or_create(&UpstreamRequestLabels {
                method: http_method_label(method),
            })
            .inc();
    }

    /// Counts a failed exchange with the proxied upstream; `reason` is one of a fixed set.
    pub fn count_upstream_failure(&self, reason: &'static str) {
        self.upstream_failures
            .get_or_create(&UpstreamFailureLabels { reason })
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
    fn invented_http_methods_share_one_label() {
        assert_eq!(http_method_label("POST"), "POST");
        assert_eq!(http_method_label("BREW"), "other");
        assert_eq!(
            http_method_label("post"),
            "other",
            "methods are case-sensitive"
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
