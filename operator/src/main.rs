//! `mcp-operator`: serves metrics and health, checks that the McpApp CRD is installed, optionally
//! waits to be elected leader, then runs the McpApp controller over the watched namespaces until
//! SIGTERM (or lost leadership).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use kube::runtime::events::Reporter;
use kube::{Api, Client, Resource};
use tokio_util::sync::CancellationToken;

use mcp_operator::api::{DEFAULT_COMPANION_IMAGE, McpApp};
use mcp_operator::config::Args;
use mcp_operator::external::Connect;
use mcp_operator::metrics::Metrics;
use mcp_operator::reconcile::{self, ClusterApis, Settings};
use mcp_operator::serve::{self, Health};
use mcp_operator::{leader, telemetry};

/// jemalloc rather than the system allocator: caches of thousands of objects are freed and
/// rebuilt on every relist, and glibc's per-thread arenas keep those pages resident.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(args.log_format, &args.log_level);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (no in-cluster config or kubeconfig)")?;
    ensure_crd_installed(&client).await?;

    let metrics = Arc::new(Metrics::default());
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    let ready = Arc::new(AtomicBool::new(false));
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let server = tokio::spawn(serve::serve(args.metrics_addr, health, stop.clone()));

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("mcp-operator-{}", std::process::id()));
    let mut leadership = None;
    if args.leader_election {
        let mut l = leader::compete(
            client.clone(),
            &args.lease_namespace,
            &args.lease_name,
            &identity,
            args.lease_seconds,
        );
        ready.store(true, Ordering::Relaxed);
        tracing::info!(%identity, lease = %args.lease_name, "waiting to be elected leader");
        tokio::select! {
            _ = l.acquired() => {}
            _ = stop.cancelled() => return Ok(()),
        }
        tracing::info!(%identity, "elected leader");
        leadership = Some(l);
    }
    ready.store(true, Ordering::Relaxed);
    metrics.leader.set(1);

    let settings = Settings {
        metrics: metrics.clone(),
        reporter: Reporter {
            controller: "mcp-operator".into(),
            instance: Some(identity),
        },
        apis: ClusterApis::discover(&client).await,
        companion_image: DEFAULT_COMPANION_IMAGE.into(),
        operator_namespace: args.own_namespace.clone(),
        probe_concurrency: usize::try_from(args.probe_concurrency).unwrap_or(32),
        external_connect: Connect::new(args.external_probe_resolve.clone()),
        external_concurrency: usize::try_from(args.external_probe_concurrency).unwrap_or(8),
    };
    let namespaces: Vec<Option<String>> = match args.namespaces() {
        Some(list) => list.into_iter().map(Some).collect(),
        None => vec![None],
    };
    tracing::info!(namespaces = ?namespaces, "starting the McpApp controller");
    let controllers = futures::future::join_all(
        namespaces
            .into_iter()
            .map(|ns| reconcile::run(client.clone(), ns, settings.clone(), stop.clone())),
    );

    let mut lost = false;
    match leadership.as_mut() {
        // Losing the Lease drops the controllers at once (reconciles in flight included) and
        // cancels the gate's pending condition writes: nothing acts past the leader's term.
        Some(l) => tokio::select! {
            _ = controllers => {}
            _ = l.lost() => {
                lost = true;
                stop.cancel();
            }
        },
        None => controllers.await.into_iter().collect(),
    }
    metrics.leader.set(0);
    if let Some(l) = leadership {
        l.release().await;
    }
    stop.cancel();
    let _ = server.await;
    if lost {
        anyhow::bail!("lost the leader Lease; exiting so that this replica restarts as a standby");
    }
    Ok(())
}

/// Fails with a message that says what to do when the McpApp CRD is not installed. Reads the
/// CRD itself, which needs no permission beyond the watched namespaces' McpApps.
async fn ensure_crd_installed(client: &Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = format!("{}.{}", McpApp::plural(&()), McpApp::group(&()));
    match crds
        .get_opt(&name)
        .await
        .context("reading the McpApp CRD")?
    {
        Some(_) => Ok(()),
        None => anyhow::bail!(
            "the McpApp CRD ({name}) is not installed: apply crds/ or install the Helm chart first"
        ),
    }
}

async fn stop_on_signal(stop: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    stop.cancel();
}
