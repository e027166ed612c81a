//! The operator's command line: every flag has an environment variable of the same meaning, so
//! the Helm chart can set either.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "mcp-operator",
    version,
    about = "Runs Model Context Protocol servers on Kubernetes: one McpApp becomes a Deployment, \
             Service, Ingress or HTTPRoute, HPA and PodDisruptionBudget, and every new version must \
             answer a real MCP handshake before it takes traffic."
)]
pub struct Args {
    /// Namespaces to watch, comma-separated; empty watches all namespaces.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub watch_namespaces: Vec<String>,

    /// Address of the metrics and health endpoints (/metrics, /healthz, /readyz).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Elect a leader through a Lease, so that several replicas can run and only one acts.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,

    /// Name of the Lease used for leader election.
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE",
        default_value = "mcp-operator-leader"
    )]
    pub lease_name: String,

    /// The operator's own namespace (POD_NAMESPACE, set by the chart). An app's NetworkPolicy
    /// that lists peers admits it, so the operator's handshakes get through.
    #[arg(long = "operator-namespace", env = "POD_NAMESPACE")]
    pub own_namespace: Option<String>,

    /// Namespace of the Lease; defaults to the operator's own namespace (POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// This replica's identity in the Lease; defaults to the pod name (POD_NAME) or a random id.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Seconds a leader's Lease stays valid without renewal.
    #[arg(long, env = "LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_seconds: u64,

    /// MCP handshakes in flight at most, over all apps.
    #[arg(long, env = "PROBE_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub probe_concurrency: u64,

    /// Sends the external probe's connections for HOST to IP, like curl's --resolve, for
    /// split-horizon DNS (the operator cannot resolve an app's public name the way its clients
    /// do). HOST=IP[:PORT]; without a port, the URL's. Repeatable, or comma-separated.
    #[arg(long = "external-probe-resolve", env = "EXTERNAL_PROBE_RESOLVE",
          value_delimiter = ',', value_parser = crate::external::connect::parse_override)]
    pub external_probe_resolve: Vec<(String, SocketAddr)>,

    /// External handshakes (spec.probe.external) in flight at most, over all apps.
    #[arg(long, env = "EXTERNAL_PROBE_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub external_probe_concurrency: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info,kube=warn")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Args {
    /// The namespaces to watch, or None for all of them.
    pub fn namespaces(&self) -> Option<Vec<String>> {
        let list: Vec<String> = self
            .watch_namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        (!list.is_empty()).then_some(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_namespace_list_means_all_namespaces() {
        let args = Args::parse_from(["mcp-operator"]);
        assert_eq!(args.namespaces(), None);
        let args = Args::parse_from(["mcp-operator", "--watch-namespaces", "a, b,"]);
        assert_eq!(args.namespaces(), Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn resolve_overrides_repeat_or_come_comma_separated() {
        let args = Args::parse_from([
            "mcp-operator",
            "--external-probe-resolve",
            "a.example.test=10.96.0.80:443,b.example.test=10.0.0.1",
            "--external-probe-resolve",
            "c.example.test=10.0.0.2:8443",
        ]);
        let hosts: Vec<&str> = args
            .external_probe_resolve
            .iter()
            .map(|(h, _)| h.as_str())
            .collect();
        assert_eq!(
            hosts,
            ["a.example.test", "b.example.test", "c.example.test"]
        );
        let err =
            Args::try_parse_from(["mcp-operator", "--external-probe-resolve", "a=b"]).unwrap_err();
        assert!(err.to_string().contains("external-probe-resolve"), "{err}");
    }

    #[test]
    fn lease_duration_out_of_range_is_rejected() {
        let err = Args::try_parse_from(["mcp-operator", "--lease-seconds", "1"]).unwrap_err();
        assert!(err.to_string().contains("lease-seconds"));
    }
}
