//! A real control plane with the McpApp CRD (and the Gateway API CRDs) installed, where the
//! companion image runs the workspace's `mcp-server` and the operator runs as a process inside
//! the environment under its own user name.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use mcp_operator::api::McpApp;
use mcp_operator::api::conditions::READY;
use mcp_testenv::mcp::Endpoint;
use mcp_testenv::process::Supervised;
use mcp_testenv::wait::until;
use mcp_testenv::{TestEnv, TestEnvBuilder, audit, binaries, manifests, workspace_binary};
use serde_json::json;

/// The operator's user name in the audit log.
pub const OPERATOR_USER: &str = "mcp-operator";
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// A pod's first handshake waits for its containers to be ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Cluster {
    pub env: TestEnv,
    pub client: Client,
    operator_kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(|env| env).await
    }

    /// Like [`Cluster::start`], with more images (or other settings) added to the environment.
    pub async fn start_with(more: impl FnOnce(TestEnvBuilder) -> TestEnvBuilder) -> Self {
        Self::start_on(more(companion_environment()), true).await
    }

    /// A control plane to install the operator on the way users do (Helm chart, plain
    /// manifests): the operator image runs the workspace's `mcp-operator`, in-cluster with its
    /// ServiceAccount's token, and the companion image the workspace's `mcp-server`. The Gateway
    /// API CRDs are installed; the McpApp CRD is not, since the install brings it.
    pub async fn start_for_install() -> Self {
        let env =
            companion_environment().image(OPERATOR_IMAGE, [env!("CARGO_BIN_EXE_mcp-operator")]);
        Self::start_on(env, false).await
    }

    /// Starts the environment and installs the Gateway API CRDs, and the McpApp CRD if asked.
    async fn start_on(env: TestEnvBuilder, mcp_app_crd: bool) -> Self {
        let env = env.start().await.expect("test environment starts");
        let client = env.client();
        if mcp_app_crd {
            manifests::apply_dir(&client, &repo().join("crds"), "default")
                .await
                .expect("McpApp CRD installs");
        }
        let gateway = binaries::gateway_api_crds("experimental").expect("Gateway API CRDs fetched");
        manifests::apply_dir(&client, &gateway, "default")
            .await
            .expect("Gateway API CRDs install");
        let operator_kubeconfig = env
            .kubeconfig_for(OPERATOR_USER, &["system:masters"])
            .expect("operator kubeconfig");
        Cluster {
            env,
            client,
            operator_kubeconfig,
        }
    }

    /// Starts an operator process; `metrics_port` must differ between processes of one test.
    pub async fn start_operator(
        &self,
        name: &str,
        metrics_port: u16,
        extra: &[&str],
    ) -> Supervised {
        self.start_operator_as(name, metrics_port, &self.operator_kubeconfig, extra)
            .await
    }

    /// A kubeconfig for the operator user `user` (its own name in the audit log), reaching the
    /// API server through `port` on the environment's loopback (a proxy) when given.
    pub fn operator_kubeconfig(&self, user: &str, port: Option<u16>) -> PathBuf {
        let path = self
            .env
            .kubeconfig_for(user, &["system:masters"])
            .expect("operator kubeconfig");
        let Some(port) = port else {
            return path;
        };
        let direct = format!("https://127.0.0.1:{}", self.env.api_port());
        let text = std::fs::read_to_string(&path).expect("kubeconfig readable");
        assert!(text.contains(&direct), "the kubeconfig names {direct}");
        let proxied = path.with_extension(format!("via-{port}"));
        std::fs::write(
            &proxied,
            text.replace(&direct, &format!("https://127.0.0.1:{port}")),
        )
        .expect("kubeconfig written");
        proxied
    }

    /// Like [`Cluster::start_operator`], with the given kubeconfig.
    pub async fn start_operator_as(
        &self,
        name: &str,
        metrics_port: u16,
        kubeconfig: &Path,
        extra: &[&str],
    ) -> Supervised {
        // Another build of the operator can be measured in the same scenario (benchmarks).
        let binary = std::env::var("MCP_OPERATOR_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mcp-operator").to_owned());
        let addr = format!("127.0.0.1:{metrics_port}");
        let mut args = vec!["--metrics-addr", addr.as_str()];
        args.extend_from_slice(extra);
        let kubeconfig = kubeconfig.display().to_string();
        self.env
            .spawn(
                name,
                &binary,
                &args,
                &[
                    ("KUBECONFIG", kubeconfig.as_str()),
                    ("RUST_LOG", "info,mcp_operator=debug"),
                ],
            )
            .await
            .expect("operator starts")
    }

    pub fn apps(&self) -> Api<McpApp> {
        Api::default_namespaced(self.client.clone())
    }

    /// Server-side applies an McpApp given as JSON (as a user would with kubectl).
    pub async fn apply_app(&self, app: serde_json::Value) -> kube::Result<McpApp> {
        let name = app["metadata"]["name"].as_str().expect("name").to_owned();
        let mut app = app;
        app["apiVersion"] = "mcp-operator.dev/v1alpha1".into();
        app["kind"] = "McpApp".into();
        self.apps()
            .patch(
                &name,
                &PatchParams::apply("test-user").force(),
                &Patch::Apply(&app),
            )
            .await
    }
}

/// The operator's image as the Helm chart and the plain manifests name it.
pub const OPERATOR_IMAGE: &str = "ghcr.io/mcp-operator/operator";

/// An environment whose companion image runs the workspace's `mcp-server` and contains it at its
/// real path (the stdio bridge's init container copies it from there).
fn companion_environment() -> TestEnvBuilder {
    assert_checkout_outside_tmp();
    let server = workspace_binary("mcp-server").expect("mcp-server is built");
    let server_path = server.display().to_string();
    TestEnv::builder()
        .image(COMPANION_IMAGE, [server_path.as_str()])
        .image_file(
            COMPANION_IMAGE,
            mcp_operator::build::COMPANION_BINARY,
            &server,
        )
}

/// A scripted MCP server (see `servers/scripted_mcp.py`) and its broken variant, which answers
/// the handshake with HTTP 404.
pub const SCRIPTED: &str = "example.com/scripted-mcp";
pub const BROKEN: &str = "example.com/scripted-mcp:broken";

/// Adds the images [`SCRIPTED`] and [`BROKEN`] to the environment.
pub fn with_scripted_servers(env: TestEnvBuilder) -> TestEnvBuilder {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/scripted_mcp.py");
    let script = script.display().to_string();
    env.image(SCRIPTED, ["python3", script.as_str()])
        .image(BROKEN, ["python3", script.as_str(), "--broken"])
}

/// The companion image's repository; any tag finds it.
const COMPANION_IMAGE: &str = "ghcr.io/mcp-operator/mcp-server";

/// Test servers run from the checkout as pods, and every McpApp pod has an emptyDir at `/tmp`
/// that hides the machine's: a checkout under `/tmp` is invisible to them.
fn assert_checkout_outside_tmp() {
    let repo = std::fs::canonicalize(repo()).expect("the checkout exists");
    assert!(
        !repo.starts_with("/tmp"),
        "the checkout {} is under /tmp, which the pods' /tmp emptyDir hides from the servers \
         they run from it: clone the repository elsewhere",
        repo.display()
    );
}

/// The workspace root, where `charts/`, `config/` and `crds/` live.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Deserializes a JSON value into a Kubernetes type.
pub fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid object")
}

/// Applies a sample of `config/samples/` in `namespace`, as `kubectl apply --server-side` does.
pub async fn apply_sample(client: &Client, sample: &str, namespace: &str) {
    let yaml = std::fs::read_to_string(repo().join("config/samples").join(sample))
        .expect("sample is readable");
    manifests::apply(client, &yaml, namespace)
        .await
        .unwrap_or_else(|e| panic!("applying {sample}: {e}"));
}

/// The app once its Ready condition is True: its pods passed the MCP handshake.
pub async fn ready_app(client: &Client, namespace: &str, name: &str) -> McpApp {
    let apps: Api<McpApp> = Api::namespaced(client.clone(), namespace);
    until(
        &format!("McpApp {namespace}/{name} to be Ready"),
        READY_TIMEOUT,
        || async {
            let app = apps.get(name).await.unwrap();
            match condition(&app, READY) {
                Some(c) if c.status == "True" => Ok(app),
                other => Err(format!(
                    "{other:?}; last probe {:?}; pods {:?}",
                    app.status.as_ref().and_then(|s| s.last_probe.as_ref()),
                    pod_conditions(client, namespace, name).await
                )),
            }
        },
    )
    .await
}

/// `pod: type=status (reason)` of every condition of the app's pods, for failure messages.
pub async fn pod_conditions(client: &Client, namespace: &str, app: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("app.kubernetes.io/instance={app}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    list.items
        .iter()
        .flat_map(|pod| {
            let conditions = pod.status.as_ref().and_then(|s| s.conditions.clone());
            conditions.into_iter().flatten().map(move |c| {
                format!(
                    "{}: {}={} ({})",
                    pod.name_any(),
                    c.type_,
                    c.status,
                    c.message.or(c.reason).unwrap_or_default()
                )
            })
        })
        .collect()
}

/// The app's condition of `type_`.
pub fn condition(app: &McpApp, type_: &str) -> Option<Condition> {
    mcp_operator::status::condition(app.status.as_ref(), type_).cloned()
}

/// Waits until `check` holds for the app, and returns it.
pub async fn app_when(
    cluster: &Cluster,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&McpApp) -> bool,
) -> McpApp {
    let apps = cluster.apps();
    until(what, timeout, || {
        let apps = apps.clone();
        let check = &check;
        async move {
            let app = apps.get(name).await.map_err(|e| e.to_string())?;
            if check(&app) {
                Ok(app)
            } else {
                Err(format!("{:?}", app.status))
            }
        }
    })
    .await
}

pub fn is(app: &McpApp, type_: &str, status: &str) -> bool {
    condition(app, type_).is_some_and(|c| c.status == status)
}

pub async fn pods_of(cluster: &Cluster, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(cluster.client.clone());
    pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={app}")))
        .await
        .expect("pods list")
        .items
}

pub async fn set_image(cluster: &Cluster, name: &str, image: &str) {
    cluster
        .apps()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": image}})),
        )
        .await
        .expect("image changed");
}

/// Replaces the app's server with another one (a different image with different tools, not a new
/// version of the same server), so its tool contract is not held to the old server's.
pub async fn replace_server(cluster: &Cluster, name: &str, image: &str) {
    cluster
        .apps()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": image, "rollout": {"toolContract": "Off"}}})),
        )
        .await
        .expect("server replaced");
}

/// The app's stable revision, once it is Ready and has one.
pub async fn stable_revision(cluster: &Cluster, name: &str) -> String {
    let app = app_when(
        cluster,
        name,
        "Ready with a stable revision",
        READY_TIMEOUT,
        |a| {
            is(a, "Ready", "True")
                && a.status
                    .as_ref()
                    .is_some_and(|s| s.stable_revision.is_some())
        },
    )
    .await;
    app.status.unwrap().stable_revision.unwrap()
}

/// Waits until the app's Deployment no longer asks for `image` and none of its pods runs it.
pub async fn rolled_back_from(cluster: &Cluster, name: &str, image: &str) {
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    let runs = |spec: Option<&k8s_openapi::api::core::v1::PodSpec>| {
        spec.is_some_and(|s| s.containers[0].image.as_deref() == Some(image))
    };
    until(
        &format!("{name} rolled back from {image}"),
        READY_TIMEOUT,
        || async {
            let d = deployments.get(name).await.map_err(|e| e.to_string())?;
            let asked = runs(d.spec.template.spec.as_ref());
            let pods = pods_of(cluster, name).await;
            let running = pods.iter().filter(|p| runs(p.spec.as_ref())).count();
            match (asked, running) {
                (false, 0) => Ok(()),
                other => Err(format!(
                    "(template asks for it, pods running it): {other:?}"
                )),
            }
        },
    )
    .await;
}

/// Waits until the operator has written nothing for 5 s (pods started, statuses reported), and
/// returns how many writes it made until then, for counting what follows.
pub async fn operator_settled(cluster: &Cluster) -> usize {
    let audit_log = cluster.env.audit_log();
    until(
        "the operator to stop writing",
        Duration::from_secs(90),
        || async {
            let before = audit::writes_by(&audit_log, OPERATOR_USER).len();
            tokio::time::sleep(Duration::from_secs(5)).await;
            let after = audit::writes_by(&audit_log, OPERATOR_USER).len();
            if before == after {
                Ok(after)
            } else {
                Err(after - before)
            }
        },
    )
    .await
}

/// The operator's writes after the first `from`, described.
pub fn operator_writes_since(cluster: &Cluster, from: usize) -> Vec<String> {
    audit::writes_by(&cluster.env.audit_log(), OPERATOR_USER)
        .get(from..)
        .unwrap_or_default()
        .iter()
        .map(|e| e.describe())
        .collect()
}

/// A hanging variant of [`SCRIPTED`]: its pods start and pass their liveness checks, but a
/// handshake never gets an answer.
pub const HANGING: &str = "example.com/scripted-mcp:hang";

/// Adds the image [`HANGING`] to the environment.
pub fn with_hanging_server(env: TestEnvBuilder) -> TestEnvBuilder {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/scripted_mcp.py");
    let script = script.display().to_string();
    env.image(HANGING, ["python3", script.as_str(), "--hang"])
}

/// A script of the official MCP SDK clients the mcp-server tests use.
pub fn official_client_script(name: &str) -> PathBuf {
    repo().join("mcp-server/tests/clients").join(name)
}

/// Where `setup.sh` installed the official clients (its cache follows XDG_CACHE_HOME, not
/// ours). Fails the test, saying what to run, when missing.
fn official_clients() -> PathBuf {
    let output = std::process::Command::new("bash")
        .arg(official_client_script("setup.sh"))
        .arg("--check")
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "the MCP clients are installed (mcp-server/tests/clients/setup.sh): {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// The node_modules holding the official TypeScript SDK.
pub fn official_node_modules() -> PathBuf {
    official_clients().join("node_modules")
}

/// The Python interpreter of the venv holding the official Python SDK.
pub fn official_python() -> PathBuf {
    official_clients().join("venv/bin/python")
}

/// The ready endpoints of the app's Service, as the EndpointSlice controller publishes them.
pub async fn ready_endpoints(cluster: &Cluster, app: &str) -> Vec<SocketAddr> {
    let slices: Api<EndpointSlice> = Api::default_namespaced(cluster.client.clone());
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={app}"));
    let Ok(list) = slices.list(&params).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for slice in list.items {
        let port = slice
            .ports
            .as_ref()
            .and_then(|p| p.first())
            .and_then(|p| p.port)
            .unwrap_or(8080);
        for endpoint in slice.endpoints.into_iter().flatten() {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(false);
            if let (true, Some(ip)) = (ready, endpoint.addresses.first()) {
                out.push(SocketAddr::new(ip.parse().expect("an IP"), port as u16));
            }
        }
    }
    out
}

/// The Secret checksum on the pod template of app `name`'s Deployment, once it has one.
pub async fn secrets_checksum(cluster: &Cluster, name: &str) -> String {
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    until(
        "the Secret checksum on the pod template",
        TIMEOUT,
        || async {
            deployments
                .get_opt(name)
                .await
                .unwrap()
                .and_then(|d| d.spec.template.metadata?.annotations)
                .and_then(|mut a| a.remove("mcp-operator.dev/secrets-checksum"))
                .ok_or("no checksum yet")
        },
    )
    .await
}

/// Writes a new `TOKEN` into Secret `secret`, then waits until app `name`'s pod template carries
/// a checksum other than `before`.
pub async fn rotate_and_see_the_roll(cluster: &Cluster, secret: &str, name: &str, before: &str) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::default_namespaced(cluster.client.clone());
    secrets
        .patch(
            secret,
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"TOKEN": format!("not {before}")}})),
        )
        .await
        .unwrap();
    until("a new checksum on the pod template", TIMEOUT, || async {
        match secrets_checksum(cluster, name).await {
            c if c != before => Ok(()),
            c => Err(c),
        }
    })
    .await;
}

/// Creates Secret `secret` with a `TOKEN`, and app `name` that takes it as env and asks to be
/// restarted when it changes.
pub async fn apply_app_restarted_by(cluster: &Cluster, name: &str, secret: &str) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::default_namespaced(cluster.client.clone());
    secrets
        .create(
            &kube::api::PostParams::default(),
            &from(json!({"metadata": {"name": secret}, "stringData": {"TOKEN": "one"}})),
        )
        .await
        .unwrap();
    cluster
        .apply_app(json!({"metadata": {"name": name}, "spec": {
            "secrets": {"envFrom": [{"secretName": secret}], "restartOnChange": true},
        }}))
        .await
        .unwrap();
}

/// Hostile variants of [`SCRIPTED`] (see `servers/scripted_mcp.py`): each answers the handshake
/// in a way meant to steer, flood or hold the prober. Their answers carry [`LEAK_MARKER`].
pub const REDIRECTING: &str = "example.com/scripted-mcp:redirect";
pub const HUGE: &str = "example.com/scripted-mcp:huge";
pub const DRIPPING: &str = "example.com/scripted-mcp:drip";
pub const LONG_ERROR: &str = "example.com/scripted-mcp:long-error";
pub const LEAK_MARKER: &str = "LEAKED-FROM-POD";

/// Adds the hostile images; [`REDIRECTING`] sends the prober to `redirect_to`.
pub fn with_hostile_servers(env: TestEnvBuilder, redirect_to: &str) -> TestEnvBuilder {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/scripted_mcp.py");
    let script = script.display().to_string();
    let script = script.as_str();
    env.image(REDIRECTING, ["python3", script, "--redirect", redirect_to])
        .image(HUGE, ["python3", script, "--huge"])
        .image(DRIPPING, ["python3", script, "--drip"])
        .image(LONG_ERROR, ["python3", script, "--long-error"])
}

/// The app's Service address in the cluster (its ClusterIP, port 80).
pub async fn cluster_ip(cluster: &Cluster, app: &str) -> SocketAddr {
    let services: Api<Service> = Api::default_namespaced(cluster.client.clone());
    let service = services.get(app).await.expect("the app's Service");
    let ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP");
    SocketAddr::new(ip.parse().expect("an IP"), 80)
}

/// The app's ClusterIP, once kube-proxy carries it (a moment after the endpoints are ready).
pub async fn answering_cluster_ip(cluster: &Cluster, app: &str) -> SocketAddr {
    let service = cluster_ip(cluster, app).await;
    let probe = Endpoint::new(cluster.env.connector(service), service.to_string(), "/mcp");
    until("the ClusterIP answers", TIMEOUT, || async {
        probe.call_tool_stateless("whoami", json!({})).await
    })
    .await;
    service
}

/// The app `name` as a client on this machine reaches it: through the ingress controller's
/// loopback port, with Host `NAME.localhost`.
pub fn through_ingress(cluster: &Cluster, name: &str) -> Endpoint {
    let port = cluster
        .env
        .ingress_port()
        .expect("the environment has an ingress");
    Endpoint::from_here(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        format!("{name}.localhost:{port}"),
        "/mcp",
    )
}

/// An app of the companion's built-in tools, exposed at `NAME.localhost` through Traefik: by an
/// Ingress, unless `spec` attaches it to a Gateway.
pub async fn exposed_app(cluster: &Cluster, name: &str, spec: serde_json::Value) -> Endpoint {
    let mut full = json!({
        "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
    });
    if spec.get("gateway").is_none() {
        let class = mcp_testenv::ingress::CLASS;
        full["ingress"] = json!({"className": class, "host": format!("{name}.localhost")});
    }
    if let (Some(full), Some(spec)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(spec.clone());
    }
    cluster
        .apply_app(json!({"metadata": {"name": name}, "spec": full}))
        .await
        .expect("app applies");
    let replicas = full["replicas"].as_i64().unwrap_or(1) as i32;
    app_when(cluster, name, "every replica Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "True") && a.status.as_ref().and_then(|s| s.ready_replicas) == Some(replicas)
    })
    .await;
    let endpoint = through_ingress(cluster, name);
    // Traefik picks the Ingress and each ready endpoint up from its watches, a moment later.
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + READY_TIMEOUT;
    while seen.len() < replicas as usize {
        assert!(
            Instant::now() < deadline,
            "{name}.localhost: only {seen:?} answered through the ingress"
        );
        match endpoint.call_tool_stateless("whoami", json!({})).await {
            Ok(pod) => drop(seen.insert(pod)),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    endpoint
}

/// Where a client runs: inside the environment's network (to reach ClusterIPs) or on this
/// machine (to reach the ingress's loopback port).
#[derive(Clone, Copy, Debug)]
pub enum Side {
    Cluster,
    Machine,
}

impl Side {
    pub fn of(url: &str) -> Self {
        if url.contains(".localhost:") {
            Side::Machine
        } else {
            Side::Cluster
        }
    }
}

/// Runs one of the official clients' scripts (`program` with `args`, NODE_PATH set) and returns
/// the JSON object it prints last.
pub async fn run_official_client(
    cluster: &Cluster,
    from: Side,
    program: &str,
    args: &[String],
    timeout: Duration,
) -> serde_json::Value {
    let mut command = match from {
        Side::Cluster => tokio::process::Command::from(cluster.env.command(program)),
        Side::Machine => tokio::process::Command::new(program),
    };
    command
        .kill_on_drop(true)
        .args(args)
        .env("NODE_PATH", official_node_modules());
    let Ok(output) = tokio::time::timeout(timeout, command.output()).await else {
        panic!(
            "{args:?} did not finish within {timeout:?}\n{}",
            cluster.env.log_tails(30)
        );
    };
    let output = output.expect("the client starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{args:?} failed ({}): {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client printed no JSON ({e}): {stdout}"))
}

/// Waits for an Event of `reason` on the app whose note contains `text`; returns its type.
pub async fn event(cluster: &Cluster, name: &str, reason: &str, text: &str) -> String {
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::default_namespaced(cluster.client.clone());
    until(&format!("a {reason} Event"), READY_TIMEOUT, || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(name)
                    && e.message.as_deref().is_some_and(|m| m.contains(text))
            })
            .map(|e| e.type_.clone().unwrap_or_default())
            .ok_or_else(|| {
                let notes: Vec<_> = list
                    .items
                    .iter()
                    .filter(|e| e.reason.as_deref() == Some(reason))
                    .map(|e| e.message.clone().unwrap_or_default())
                    .collect();
                format!("{notes:?}")
            })
    })
    .await
}
