//! The Helm chart and the plain manifests rendered from it: strict lint, what they render for the
//! values users set (RBAC rules exactly, security context, probes, environment), what the values
//! schema rejects, and real installs on the test control plane, where the operator runs in-cluster
//! with nothing but the chart's ServiceAccount and RBAC.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mcp_operator::api::McpApp;
use mcp_testenv::wait::until;
use mcp_testenv::{audit, binaries, manifests};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{Cluster, OPERATOR_IMAGE, TIMEOUT, apply_sample, from, ready_app, repo};

const RELEASE: &str = "mcp-operator";
const NAMESPACE: &str = "mcp-operator-system";
/// The user the API server sees for the chart's ServiceAccount.
const OPERATOR_SERVICE_ACCOUNT: &str = "system:serviceaccount:mcp-operator-system:mcp-operator";

fn chart() -> PathBuf {
    repo().join("charts/mcp-operator")
}

fn helm_binary() -> PathBuf {
    binaries::helm().expect("helm is built (tests/controlplane/build.sh)")
}

/// Runs helm; its stdout when it succeeded, else its stderr as the error.
fn helm(args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new(helm_binary())
        .args(args)
        .output()
        .expect("helm runs");
    result(output)
}

fn result(output: Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stderr}{stdout}"))
    }
}

/// The documents of a multi-document YAML text, empty ones skipped.
fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `helm template` of the chart as release `mcp-operator` in `mcp-operator-system`.
fn render(extra: &[&str]) -> Vec<Value> {
    let chart = chart().display().to_string();
    let mut args = vec!["template", RELEASE, chart.as_str(), "-n", NAMESPACE];
    args.extend_from_slice(extra);
    let text = helm(&args).unwrap_or_else(|e| panic!("helm template {extra:?} fails:\n{e}"));
    documents(&text)
}

/// `kind namespace/name` of every document.
fn inventory(docs: &[Value]) -> Vec<String> {
    let mut all: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    all.sort();
    all
}

fn object<'a>(docs: &'a [Value], kind: &str, namespace: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"].as_str().unwrap_or("") == namespace
        })
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} among {:#?}", inventory(docs)))
}

/// The operator container's environment: name → value, or the `valueFrom` field path.
fn container_env(deployment: &Value) -> BTreeMap<String, String> {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_array()
        .expect("env is a list")
        .iter()
        .map(|var| {
            let value = match &var["value"] {
                Value::String(s) => s.clone(),
                _ => format!(
                    "fieldRef:{}",
                    var["valueFrom"]["fieldRef"]["fieldPath"]
                        .as_str()
                        .expect("value or fieldRef")
                ),
            };
            (var["name"].as_str().expect("name").to_owned(), value)
        })
        .collect()
}

fn env_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const OWNED: [&str; 6] = ["get", "list", "watch", "create", "patch", "delete"];

/// What the operator may do in a namespace whose McpApps it manages: nothing else.
fn namespaced_rules() -> Vec<Value> {
    vec![
        json!({"apiGroups": ["mcp-operator.dev"], "resources": ["mcpapps"], "verbs": ["get", "list", "watch", "patch"]}),
        json!({"apiGroups": ["mcp-operator.dev"], "resources": ["mcpapps/status"], "verbs": ["patch"]}),
        json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": OWNED}),
        json!({"apiGroups": [""], "resources": ["services"], "verbs": OWNED}),
        json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": OWNED}),
        json!({"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": OWNED}),
        json!({"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": OWNED}),
        json!({"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": OWNED}),
        json!({"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": OWNED}),
        json!({"apiGroups": ["cloud.google.com"], "resources": ["backendconfigs"], "verbs": OWNED}),
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "update"]}),
        json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]}),
        json!({"apiGroups": ["apps"], "resources": ["controllerrevisions"], "verbs": OWNED}),
        json!({"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}),
    ]
}

/// What stays cluster-scoped whatever the watched namespaces.
fn cluster_rules() -> Vec<Value> {
    vec![
        json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"], "verbs": ["get", "list", "watch"]}),
        json!({
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get"],
            "resourceNames": [
                "mcpapps.mcp-operator.dev",
                "httproutes.gateway.networking.k8s.io",
                "backendconfigs.cloud.google.com",
            ],
        }),
    ]
}

fn rules(role: &Value) -> Vec<Value> {
    role["rules"].as_array().expect("rules").clone()
}

#[test]
fn chart_app_version_is_the_workspace_version() {
    let text = std::fs::read_to_string(chart().join("Chart.yaml")).expect("Chart.yaml");
    let chart: Value = serde_norway::from_str(&text).expect("Chart.yaml parses");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "charts/mcp-operator/Chart.yaml appVersion must be the workspace version in Cargo.toml"
    );
}

#[test]
fn chart_crd_is_the_generated_one() {
    let file = mcp_operator::api::CRD_FILE;
    let generated = repo().join(file);
    let copy = chart().join(file);
    let generated = std::fs::read_to_string(&generated).expect("crds/ has the CRD");
    let copy = std::fs::read_to_string(&copy).expect("the chart has the CRD");
    assert!(
        copy == generated,
        "charts/mcp-operator/{file} differs from {file}; copy it:\n  cp {file} charts/mcp-operator/crds/"
    );
}

#[test]
fn chart_passes_strict_lint_with_every_option() {
    let chart = chart().display().to_string();
    for extra in [
        &[][..],
        &["--set", "watchNamespaces={team-a,team-b}"],
        &["--set", "replicaCount=2"],
        &["--set", "metrics.serviceMonitor.enabled=true"],
        &["--set", "metrics.prometheusRule.enabled=true"],
        &[
            "--set",
            "rbac.create=false,serviceAccount.create=false,serviceAccount.name=ops",
        ],
    ] {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        args.extend_from_slice(extra);
        let out = helm(&args).unwrap_or_else(|e| panic!("helm lint --strict {extra:?}:\n{e}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn default_render_is_one_restricted_operator_with_cluster_wide_rbac() {
    let docs = render(&[]);
    assert_eq!(
        inventory(&docs),
        [
            "ClusterRole /mcp-operator",
            "ClusterRoleBinding /mcp-operator",
            "Deployment mcp-operator-system/mcp-operator",
            "Service mcp-operator-system/mcp-operator-metrics",
            "ServiceAccount mcp-operator-system/mcp-operator",
        ]
    );

    let role = object(&docs, "ClusterRole", "", "mcp-operator");
    let mut expected = namespaced_rules();
    expected.extend(cluster_rules());
    assert_eq!(rules(role), expected);
    let binding = object(&docs, "ClusterRoleBinding", "", "mcp-operator");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "mcp-operator", "namespace": NAMESPACE}])
    );
    assert_eq!(binding["roleRef"]["name"], "mcp-operator");

    let deployment = object(&docs, "Deployment", NAMESPACE, "mcp-operator");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "Recreate"}),
        "without leader election two operators must never overlap"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "mcp-operator");
    assert_eq!(
        pod["securityContext"],
        json!({
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!("{OPERATOR_IMAGE}:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        container["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        })
    );
    assert_eq!(
        container["ports"],
        json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
    );
    assert_eq!(
        container_env(deployment),
        env_of(&[
            ("METRICS_ADDR", "0.0.0.0:8080"),
            ("LEADER_ELECTION", "false"),
            ("PROBE_CONCURRENCY", "32"),
            ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
            ("POD_NAME", "fieldRef:metadata.name"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "info,kube=warn"),
        ])
    );

    let service = object(&docs, "Service", NAMESPACE, "mcp-operator-metrics");
    assert_eq!(
        service["spec"]["selector"], spec["selector"]["matchLabels"],
        "the metrics Service selects the operator's pods"
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
}

#[test]
fn watch_namespaces_get_a_role_each_and_only_cluster_reads_stay_cluster_wide() {
    let docs = render(&["--set", "watchNamespaces={team-a,team-b}"]);
    for ns in ["team-a", "team-b"] {
        let role = object(&docs, "Role", ns, "mcp-operator");
        assert_eq!(rules(role), namespaced_rules(), "Role in {ns}");
        let binding = object(&docs, "RoleBinding", ns, "mcp-operator");
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mcp-operator"})
        );
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "mcp-operator", "namespace": NAMESPACE}])
        );
    }
    let cluster_role = object(&docs, "ClusterRole", "", "mcp-operator");
    assert_eq!(rules(cluster_role), cluster_rules());
    let deployment = object(&docs, "Deployment", NAMESPACE, "mcp-operator");
    assert_eq!(
        container_env(deployment)["WATCH_NAMESPACES"],
        "team-a,team-b"
    );
    assert_eq!(
        docs.iter().filter(|d| d["kind"] == "Role").count(),
        2,
        "no Role outside the watched namespaces: {:#?}",
        inventory(&docs)
    );
}

#[test]
fn two_replicas_elect_a_leader_through_a_lease_only_they_may_write() {
    let docs = render(&["--set", "replicaCount=2"]);
    let deployment = object(&docs, "Deployment", NAMESPACE, "mcp-operator");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    );
    let env = container_env(deployment);
    assert_eq!(env["LEADER_ELECTION"], "true");
    assert_eq!(env["LEADER_ELECTION_LEASE"], "mcp-operator-leader");
    assert_eq!(env["LEADER_ELECTION_LEASE_SECONDS"], "15");
    assert_eq!(env["POD_NAME"], "fieldRef:metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "fieldRef:metadata.namespace");

    let role = object(&docs, "Role", NAMESPACE, "mcp-operator-leader-election");
    assert_eq!(
        rules(role),
        [
            json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}),
            json!({
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "update", "patch"],
                "resourceNames": ["mcp-operator-leader"],
            }),
        ]
    );
    let binding = object(
        &docs,
        "RoleBinding",
        NAMESPACE,
        "mcp-operator-leader-election",
    );
    assert_eq!(binding["roleRef"]["name"], "mcp-operator-leader-election");

    // One replica asked to elect a leader gets the same; one replica by default does not.
    let docs = render(&["--set", "leaderElection.enabled=true"]);
    object(&docs, "Role", NAMESPACE, "mcp-operator-leader-election");
    let docs = render(&[]);
    assert!(!docs.iter().any(|d| d["kind"] == "Role"));
}

#[test]
fn service_monitor_scrapes_the_metrics_service() {
    let docs = render(&[
        "--set",
        "metrics.serviceMonitor.enabled=true,metrics.service.enabled=false",
        "--set",
        "metrics.serviceMonitor.labels.release=prometheus",
    ]);
    let monitor = object(&docs, "ServiceMonitor", NAMESPACE, "mcp-operator");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}])
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"],
        json!({"matchNames": [NAMESPACE]})
    );
    // The monitor needs the Service even when it was switched off.
    let service = object(&docs, "Service", NAMESPACE, "mcp-operator-metrics");
    let labels = service["metadata"]["labels"].as_object().expect("labels");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(labels.get(key), Some(value), "Service label {key}");
    }
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    // Only the metrics Service carries the component label the monitor selects by.
    assert_eq!(
        docs.iter()
            .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics")
            .count(),
        1
    );
}

#[test]
fn prometheus_rule_alerts_on_series_the_operator_exports_with_runbooks_that_exist() {
    assert!(
        !render(&[]).iter().any(|d| d["kind"] == "PrometheusRule"),
        "off by default"
    );
    let docs = render(&[
        "--set",
        "metrics.prometheusRule.enabled=true,metrics.prometheusRule.labels.release=prometheus",
        "--set",
        "metrics.prometheusRule.notReadyFor=20m",
    ]);
    let rule = object(&docs, "PrometheusRule", NAMESPACE, "mcp-operator");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let alerts = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules");
    let names: Vec<&str> = alerts.iter().filter_map(|a| a["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "McpAppNotReady",
            "McpAppNotReachable",
            "McpAppCertificateExpiring",
            "McpAppRolloutAborted"
        ]
    );
    assert_eq!(alerts[0]["for"], "20m");

    // Every series an expression names is one the operator exports for an app (families
    // without a series print nothing, so one app's series are made).
    let metrics = mcp_operator::metrics::Metrics::default();
    let app = mcp_operator::metrics::AppLabels {
        namespace: "tools".into(),
        name: "demo".into(),
    };
    metrics.app_present(&app, true);
    metrics.external_probed(&app, "HandshakeSucceeded", 0.1, Some((86_400, true)));
    let exported = metrics.encode();
    let operations = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    for alert in alerts {
        let expr = alert["expr"].as_str().expect("an expression");
        let series: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("mcp_operator_"))
            .collect();
        assert!(!series.is_empty(), "{expr}");
        for name in series {
            let family = name.trim_end_matches("_total");
            assert!(
                exported.contains(&format!("# TYPE {family} ")),
                "{} uses {name}, which the operator does not export",
                alert["alert"]
            );
        }
        // The summary names the app by its labels (templates left for Prometheus).
        let summary = alert["annotations"]["summary"].as_str().unwrap();
        assert!(summary.contains("{{ $labels.name }}"), "{summary}");
        // The runbook's anchor is a heading of docs/operations.md.
        let runbook = alert["annotations"]["runbook_url"].as_str().unwrap();
        let (page, anchor) = runbook.split_once('#').expect("an anchor");
        assert!(page.ends_with("docs/operations.md"), "{runbook}");
        assert!(
            operations
                .lines()
                .any(|l| l.starts_with('#')
                    && l.trim_start_matches('#').trim().to_lowercase() == anchor),
            "no heading for #{anchor} in docs/operations.md"
        );
    }
}

#[test]
fn values_outside_the_schema_are_rejected_with_a_message_naming_the_value() {
    let chart = chart().display().to_string();
    for (set, message) in [
        (
            "replicaCount=-1",
            "at '/replicaCount': minimum: got -1, want 0",
        ),
        (
            "replicaCount=two",
            "at '/replicaCount': got string, want integer",
        ),
        (
            "image.pullPolicy=Sometimes",
            "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        (
            "logFormat=xml",
            "at '/logFormat': value must be one of 'json', 'text'",
        ),
        (
            "leaderElection.leaseSeconds=1",
            "at '/leaderElection/leaseSeconds': minimum: got 1, want 2",
        ),
        (
            "watchNamespaces[0]=Team_A",
            "at '/watchNamespaces/0': 'Team_A' does not match",
        ),
        (
            "metrics.serviceMonitor.interval=soon",
            "at '/metrics/serviceMonitor/interval'",
        ),
        (
            "metrics.port=0",
            "at '/metrics/port': minimum: got 0, want 1",
        ),
        (
            "probeConcurrency=0",
            "at '/probeConcurrency': minimum: got 0, want 1",
        ),
        (
            "serviceAccount.create=false",
            "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false",
        ),
    ] {
        let err = helm(&["template", RELEASE, chart.as_str(), "--set", set])
            .expect_err(&format!("--set {set} must be rejected"));
        assert!(
            err.contains(message),
            "--set {set}: expected {message:?} in:\n{err}"
        );
    }
}

#[test]
fn plain_manifests_are_what_the_chart_renders_now() {
    let script = repo().join("config/render.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg("-")
        .env("HELM", helm_binary())
        .output()
        .expect("bash runs");
    let rendered = result(output).unwrap_or_else(|e| panic!("config/render.sh fails:\n{e}"));
    let committed =
        std::fs::read_to_string(repo().join("config/install.yaml")).expect("config/install.yaml");
    assert!(
        rendered == committed,
        "config/install.yaml is stale; regenerate it with\n  bash config/render.sh"
    );
    let docs = documents(&committed);
    let namespace = object(&docs, "Namespace", "", NAMESPACE);
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    object(
        &docs,
        "CustomResourceDefinition",
        "",
        "mcpapps.mcp-operator.dev",
    );
    object(&docs, "Deployment", NAMESPACE, "mcp-operator");
}

// ----- real installs -----

/// helm against the test control plane, with its own cache and config directories.
async fn helm_on(cluster: &Cluster, args: &[&str]) -> Result<String, String> {
    let home = cluster.env.dir().join("helm");
    let output = tokio::process::Command::new(helm_binary())
        .args(args)
        .arg("--kubeconfig")
        .arg(cluster.env.kubeconfig())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .await
        .expect("helm runs");
    result(output)
}

async fn helm_install(cluster: &Cluster, extra: &[&str]) -> String {
    let chart = chart().display().to_string();
    let mut args = vec![
        "install",
        RELEASE,
        chart.as_str(),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
    ];
    args.extend_from_slice(extra);
    helm_on(cluster, &args)
        .await
        .unwrap_or_else(|e| panic!("helm install fails:\n{e}"))
}

/// The operator's pods once `count` of them are Ready (their /readyz answered the kubelet).
async fn ready_operator_pods(client: &Client, count: usize) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    until(&format!("{count} Ready operator pods"), TIMEOUT, || async {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?;
        let ready: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .collect();
        if ready.len() == count {
            Ok(ready)
        } else {
            Err(format!("{} ready", ready.len()))
        }
    })
    .await
}

fn pod_addr(pod: &Pod, port: u16) -> std::net::SocketAddr {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .expect("a running pod has an IP");
    std::net::SocketAddr::new(ip.parse().expect("pod IP"), port)
}

/// The app's Deployment, once the operator made it: owned by the app, with the app's status
/// written for that generation.
async fn reconciled(client: &Client, namespace: &str, name: &str) -> (McpApp, Deployment) {
    let apps: Api<McpApp> = Api::namespaced(client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = until(
        &format!("Deployment {namespace}/{name}"),
        TIMEOUT,
        || async { deployments.get_opt(name).await.unwrap().ok_or("absent") },
    )
    .await;
    let app = until(
        &format!("status of McpApp {namespace}/{name}"),
        TIMEOUT,
        || async {
            let app = apps.get(name).await.unwrap();
            let status = app.status.as_ref().ok_or("no status")?;
            if status.observed_generation == app.metadata.generation && status.conditions.len() == 3
            {
                Ok(app)
            } else {
                Err("status of an older generation")
            }
        },
    )
    .await;
    let owner = &deployment.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(owner.uid.as_str())),
        ("McpApp", app.metadata.uid.as_deref())
    );
    assert_eq!(owner.controller, Some(true));
    (app, deployment)
}

/// Every write the operator's ServiceAccount made was allowed: its RBAC is enough.
fn assert_no_forbidden_writes(cluster: &Cluster) -> Vec<audit::AuditEvent> {
    let writes = audit::writes_by(&cluster.env.audit_log(), OPERATOR_SERVICE_ACCOUNT);
    let forbidden: Vec<String> = writes
        .iter()
        .filter(|w| w.response_status.as_ref().and_then(|s| s.code) == Some(403))
        .map(audit::AuditEvent::describe)
        .collect();
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC forbids: {forbidden:#?}"
    );
    writes
}

#[tokio::test]
async fn helm_install_upgrade_and_uninstall_run_the_operator_with_the_charts_rbac() {
    let cluster = Cluster::start_for_install().await;
    let client = cluster.client.clone();
    // prometheus-operator's CRD, so the optional ServiceMonitor is installed for real.
    let monitor_crd = binaries::service_monitor_crd().expect("ServiceMonitor CRD fetched");
    manifests::apply_dir(&client, &monitor_crd, "default")
        .await
        .expect("ServiceMonitor CRD installs");

    let with_monitor = ["--set", "metrics.serviceMonitor.enabled=true"];
    let notes = helm_install(&cluster, &with_monitor).await;
    for next_step in [
        "kubectl wait --for=condition=Ready mcpapp/hello-mcp",
        "kubectl get mcpapps",
    ] {
        assert!(
            notes.contains(next_step),
            "NOTES lack {next_step:?}:\n{notes}"
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.get_opt("mcpapps.mcp-operator.dev")
            .await
            .unwrap()
            .is_some()
    );

    // The API server kept every field of the rendered monitor (a CRD prunes unknown ones).
    let rendered = object(&render(&with_monitor), "ServiceMonitor", NAMESPACE, RELEASE).clone();
    let monitors: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
            "servicemonitors",
        ),
    );
    let live = monitors
        .get(RELEASE)
        .await
        .expect("the ServiceMonitor is installed");
    assert_eq!(live.data["spec"], rendered["spec"]);

    let pods = ready_operator_pods(&client, 1).await;
    let operator = &pods[0];
    assert_eq!(
        operator
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("mcp-operator")
    );
    let (code, body) = cluster
        .env
        .http_get(pod_addr(operator, 8080), "/readyz")
        .await
        .expect("/readyz answers");
    assert_eq!((code, body.as_str()), (200, "ok"));

    apply_sample(&client, "minimal.yaml", "default").await;
    let (app, deployment) = reconciled(&client, "default", "hello-mcp").await;
    let status = app.status.unwrap();
    assert_eq!(
        status.url.as_deref(),
        Some("http://hello-mcp.default.svc/mcp")
    );
    let image = &deployment.spec.template.spec.unwrap().containers[0].image;
    assert_eq!(
        image.as_deref(),
        Some(mcp_operator::api::DEFAULT_COMPANION_IMAGE)
    );
    // The rollout gate, from inside the cluster: the app's pod answered the operator's MCP
    // handshake, its condition was patched (pods/status), and the app is Ready.
    let ready = ready_app(&client, "default", "hello-mcp").await;
    let server = ready
        .status
        .unwrap()
        .server
        .expect("status.server from the handshake");
    assert!(server.tools > 0, "{server:?}");

    // An HTTPRoute needs the Gateway API rules and the CRD read at start.
    apply_sample(&client, "gateway.yaml", "default").await;
    let routes: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &*mcp_operator::build::HTTP_ROUTE_API,
    );
    until("HTTPRoute default/search", TIMEOUT, || async {
        routes.get_opt("search").await.unwrap().ok_or("absent")
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    until("an Event about hello-mcp", TIMEOUT, || async {
        let list = events.list(&ListParams::default()).await.unwrap();
        list.items
            .into_iter()
            .find(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("hello-mcp")
                    && e.reporting_controller.as_deref() == Some("mcp-operator")
            })
            .ok_or("none")
    })
    .await;
    let writes = assert_no_forbidden_writes(&cluster);
    let wrote = |what: &str| writes.iter().any(|w| w.describe().starts_with(what));
    assert!(
        wrote("patch deployments default/hello-mcp")
            && wrote("patch mcpapps/status default/hello-mcp")
            && wrote("patch pods/status default/hello-mcp-")
            && wrote("patch controllerrevisions default/hello-mcp"),
        "the operator writes as its ServiceAccount: {:#?}",
        writes
            .iter()
            .map(audit::AuditEvent::describe)
            .collect::<Vec<_>>()
    );
    let (_, metrics) = cluster
        .env
        .http_get(pod_addr(operator, 8080), "/metrics")
        .await
        .expect("/metrics answers");
    assert!(metrics.contains("mcp_operator_leader 1"), "{metrics}");
    assert!(
        !metrics.contains("mcp_operator_reconcile_errors_total{"),
        "no reconcile failed: {metrics}"
    );

    // Upgrade: a new log level and a second replica, which turns on leader election.
    let chart = chart().display().to_string();
    helm_on(
        &cluster,
        &[
            "upgrade",
            RELEASE,
            chart.as_str(),
            "-n",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "logLevel=debug,replicaCount=2",
            "--wait",
            "--timeout",
            "120s",
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("helm upgrade fails:\n{e}"));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let operator_deployment = deployments.get(RELEASE).await.unwrap();
    let spec = operator_deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let env: BTreeMap<String, Option<String>> = spec.template.spec.unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    assert_eq!(env["RUST_LOG"].as_deref(), Some("debug"));
    assert_eq!(env["LEADER_ELECTION"].as_deref(), Some("true"));
    let pods = ready_operator_pods(&client, 2).await;
    let names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let holder = until(
        "the leader Lease held by an operator pod",
        TIMEOUT,
        || async {
            let lease = leases
                .get_opt("mcp-operator-leader")
                .await
                .unwrap()
                .ok_or("no Lease")?;
            let holder = lease
                .spec
                .and_then(|s| s.holder_identity)
                .ok_or("no holder")?;
            if names.contains(&holder) {
                Ok(holder)
            } else {
                Err("held by a pod that is gone")
            }
        },
    )
    .await;
    // The new leader acts: a new app is reconciled.
    let apps: Api<McpApp> = Api::default_namespaced(client.clone());
    apps.create(
        &PostParams::default(),
        &from(json!({
            "apiVersion": "mcp-operator.dev/v1alpha1",
            "kind": "McpApp",
            "metadata": {"name": "after-upgrade"},
            "spec": {},
        })),
    )
    .await
    .unwrap();
    reconciled(&client, "default", "after-upgrade").await;
    let writes = assert_no_forbidden_writes(&cluster);
    assert!(
        writes.iter().any(|w| w
            .describe()
            .starts_with("create leases mcp-operator-system/")
            || w.describe() == "patch leases mcp-operator-system/mcp-operator-leader"),
        "leader {holder} wrote its Lease"
    );

    // Uninstall: the operator and its RBAC go; the CRD (and so every McpApp) stays.
    helm_on(
        &cluster,
        &[
            "uninstall",
            RELEASE,
            "-n",
            NAMESPACE,
            "--wait",
            "--timeout",
            "120s",
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("helm uninstall fails:\n{e}"));
    until("the operator Deployment to go", TIMEOUT, || async {
        match deployments.get_opt(RELEASE).await.unwrap() {
            None => Ok(()),
            Some(_) => Err("still there"),
        }
    })
    .await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(roles.get_opt(RELEASE).await.unwrap().is_none());
    assert!(
        crds.get_opt("mcpapps.mcp-operator.dev")
            .await
            .unwrap()
            .is_some()
    );
    assert!(apps.get_opt("hello-mcp").await.unwrap().is_some());
}

#[tokio::test]
async fn watch_namespaces_install_manages_those_namespaces_on_namespaced_rbac() {
    let cluster = Cluster::start_for_install().await;
    let client = cluster.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "team-a"}})),
        )
        .await
        .unwrap();

    helm_install(&cluster, &["--set", "watchNamespaces={team-a}"]).await;
    ready_operator_pods(&client, 1).await;
    apply_sample(&client, "minimal.yaml", "default").await;
    apply_sample(&client, "minimal.yaml", "team-a").await;
    reconciled(&client, "team-a", "hello-mcp").await;
    ready_app(&client, "team-a", "hello-mcp").await;
    assert_no_forbidden_writes(&cluster);
    // By now an app in an unwatched namespace would have been reconciled too.
    let apps: Api<McpApp> = Api::namespaced(client.clone(), "default");
    assert!(apps.get("hello-mcp").await.unwrap().status.is_none());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    assert!(deployments.get_opt("hello-mcp").await.unwrap().is_none());
}

#[tokio::test]
async fn plain_manifests_install_a_working_operator() {
    let cluster = Cluster::start_for_install().await;
    let client = cluster.client.clone();
    let kubectl = binaries::Binaries::locate()
        .expect("control plane built")
        .kubectl;
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(cluster.env.kubeconfig())
        .args(["apply", "--server-side", "-f"])
        .arg(repo().join("config/install.yaml"))
        .output()
        .await
        .expect("kubectl runs");
    result(output).unwrap_or_else(|e| panic!("kubectl apply fails:\n{e}"));

    ready_operator_pods(&client, 1).await;
    apply_sample(&client, "minimal.yaml", "default").await;
    reconciled(&client, "default", "hello-mcp").await;
    ready_app(&client, "default", "hello-mcp").await;
    assert_no_forbidden_writes(&cluster);
}
