//! The process kubelet: registers one Node, binds unscheduled pods to it (standing in for the
//! scheduler), and runs each pod bound to it as local processes (see `pod`). It runs inside the
//! sandbox, where pod IPs are reachable and processes it starts die with the environment.
//! Container logs are served over HTTPS for `kubectl logs` (see `server` and `logs`).

mod container;
pub mod envvars;
mod logfile;
pub mod logs;
pub mod network;
mod pod;
pub mod probe;
pub mod server;
pub mod status;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Error, ImageMap, sandbox};
use container::MountPoints;
use logs::LogIndex;
use network::IpPool;
use server::{KUBELET_PORT, Server, ServingTls};

/// The name of the one Node.
pub const NODE_NAME: &str = "testenv-node";
/// The Node's address: the bridge inside the environment.
pub const HOST_IP: &str = "10.244.0.1";
/// kubelet's first restart back-off delay.
pub const RESTART_BACKOFF: Duration = Duration::from_secs(10);
const FIELD_MANAGER: &str = "testenv-kubelet";

#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub kubeconfig: PathBuf,
    pub images: ImageMap,
    /// Where pod volumes live.
    pub dir: PathBuf,
    /// Where container logs go, one folder per pod.
    pub log_dir: PathBuf,
    pub restart_backoff: Duration,
    /// The kubelet's HTTPS API (container logs).
    pub tls: ServingTls,
}

/// State shared by the pod workers.
pub struct Ctx {
    client: Client,
    config: KubeletConfig,
    ips: Mutex<IpPool>,
    mount_points: MountPoints,
    veths: AtomicU64,
    logs: Arc<LogIndex>,
}

impl Ctx {
    fn next_veth(&self) -> u64 {
        self.veths.fetch_add(1, Ordering::Relaxed)
    }
}

pub struct Kubelet {
    ctx: Arc<Ctx>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Option<()>>>,
    workers: Arc<Mutex<Workers>>,
}

type Workers = BTreeMap<String, (watch::Sender<Pod>, JoinHandle<()>)>;

impl Kubelet {
    /// Registers the node and starts binding and running pods. Runs on the sandbox thread.
    pub async fn start(config: KubeletConfig) -> Result<Self, Error> {
        let kc = kube::config::Kubeconfig::read_from(&config.kubeconfig)?;
        let client_config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = Client::try_from(client_config)?;
        let addr = SocketAddr::new(sandbox::GATEWAY.into(), KUBELET_PORT);
        let server = Server::bind(addr, &config.tls).await?;
        register_node(&client).await?;
        let logs = Arc::new(LogIndex::default());
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            config,
            ips: Mutex::new(IpPool::default()),
            mount_points: MountPoints::default(),
            veths: AtomicU64::new(0),
            logs: logs.clone(),
        });
        let stop = CancellationToken::new();
        let workers = Arc::new(Mutex::new(Workers::new()));
        let tasks = vec![
            tokio::spawn(stop.clone().run_until_cancelled_owned(bind_pods(client))),
            tokio::spawn(
                stop.clone()
                    .run_until_cancelled_owned(run_pods(ctx.clone(), workers.clone())),
            ),
            tokio::spawn(stop.clone().run_until_cancelled_owned(server.serve(logs))),
        ];
        Ok(Kubelet {
            ctx,
            stop,
            tasks,
            workers,
        })
    }

    /// Stops every pod's processes at once and the kubelet's watches.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let workers = std::mem::take(&mut *self.workers.lock().expect("workers"));
        // Dropping a worker's sender tells it its pod is gone: it kills the pod's processes.
        let handles: Vec<_> = workers.into_values().map(|(_, handle)| handle).collect();
        for handle in handles {
            let _ = handle.await;
        }
        self.ctx.mount_points.remove_all();
    }
}

/// Creates (or updates) the Node and reports it Ready.
async fn register_node(client: &Client) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": std::env::consts::ARCH,
            },
        },
        "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
    }))
    .expect("static node");
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    nodes.patch(NODE_NAME, &pp, &Patch::Apply(&node)).await?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let capacity = serde_json::json!({"cpu": cpus.to_string(), "memory": "16Gi", "pods": "1000"});
    let status = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            // Where the API server sends `kubectl logs` (to the InternalIP).
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "process kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "kubeletVersion": format!("v{}", crate::binaries::version("KUBERNETES_VERSION")),
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "testenv://0.1.0",
                "operatingSystem": "linux",
                "architecture": std::env::consts::ARCH,
                "osImage": "mcp-testenv", "kernelVersion": "", "machineID": "",
                "systemUUID": "", "bootID": "",
            },
        },
    });
    nodes
        .patch_status(NODE_NAME, &pp, &Patch::Apply(&status))
        .await?;
    Ok(())
}

/// Binds every pod without a node to ours (the scheduler's job, for a one-node cluster).
async fn bind_pods(client: Client) {
    let pods: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields("spec.nodeName=");
    let mut events = watcher::watcher(pods, config).boxed();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => pod,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("pod watch (unscheduled): {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let (Some(name), Some(ns)) = (&pod.metadata.name, &pod.metadata.namespace) else {
            continue;
        };
        let binding = Binding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(NODE_NAME.into()),
                ..Default::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let result: Result<serde_json::Value, _> = api
            .create_subresource("binding", name, &PostParams::default(), &binding)
            .await;
        if let Err(e) = result {
            tracing::debug!(pod = %name, "bind: {e}");
        }
    }
}

/// Starts a worker for every pod bound to the node and feeds it the pod's updates.
async fn run_pods(ctx: Arc<Ctx>, workers: Arc<Mutex<Workers>>) {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    let mut events = watcher::watcher(pods, config).boxed();
    let mut relisted: Option<BTreeSet<String>> = None;
    while let Some(event) = events.next().await {
        let mut workers = workers.lock().expect("workers");
        match event {
            Ok(Event::Init) => relisted = Some(BTreeSet::new()),
            Ok(Event::InitApply(pod)) => {
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(pod.metadata.uid.clone().unwrap_or_default());
                }
                deliver(&ctx, &mut workers, pod);
            }
            Ok(Event::InitDone) => {
                // Pods deleted while the watch was down: their workers must stop.
                if let Some(seen) = relisted.take() {
                    workers.retain(|uid, _| seen.contains(uid));
                }
            }
            Ok(Event::Apply(pod)) => deliver(&ctx, &mut workers, pod),
            Ok(Event::Delete(pod)) => {
                workers.remove(pod.metadata.uid.as_deref().unwrap_or_default());
            }
            Err(e) => {
                drop(workers);
                tracing::warn!("pod watch (node): {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn deliver(ctx: &Arc<Ctx>, workers: &mut Workers, pod: Pod) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some((updates, handle)) = workers.get(&uid)
        && !handle.is_finished()
    {
        updates.send_replace(pod);
        return;
    }
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if workers.contains_key(&uid) || terminal {
        // The worker finished (the pod is being removed), or nothing is left to run.
        return;
    }
    let (updates, receiver) = watch::channel(pod);
    let handle = tokio::spawn(pod::run(ctx.clone(), receiver));
    workers.insert(uid, (updates, handle));
}
