//! The McpApp controller: the only place that writes the objects an app owns.
//!
//! Each reconcile reads the app's inputs, builds the owned objects (pure, in `build`), decides
//! whether the revision they describe may roll out or must be rolled back (`rollout`), applies
//! those that changed with server-side apply, deletes those the app no longer wants, keeps a
//! revision that passed (`revisions`), and writes the status when it differs. Owned objects are
//! read from reflector caches fed by the same watches that trigger reconciles, so a reconcile
//! at rest makes no API request that writes.
//!
//! The rollout gate ([`crate::gate`]) runs beside the controller on the same caches, and asks
//! for a reconcile when a handshake result changes an app's picture.

mod apply;
mod inputs;
mod revisions;
mod rollout;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use apply::{APPLIED_HASH_ANNOTATION, Applied};
pub use inputs::ClusterApis;

use crate::api::McpApp;
use crate::api::conditions::{DEGRADED, reasons};
use crate::build::{self, BuildError, FIELD_MANAGER};
use crate::gate::{Book, Gate};
use crate::metrics::Metrics;
use crate::probe::Prober;
use crate::status::{self, Observed, Problem};

/// Reconcile every app this often even when nothing changed, to catch what no watch reports.
const RESYNC: Duration = Duration::from_secs(300);
/// Look again this soon when the caches have not synced yet.
const CACHE_SYNC_RETRY: Duration = Duration::from_millis(200);
/// Retry a failed reconcile after this long.
const RETRY: Duration = Duration::from_secs(10);
/// Owned objects carry this label; watches are narrowed to it.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=mcp-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
}

impl Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Build(_) => "Build",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub apis: ClusterApis,
    pub companion_image: String,
    book: Book,
    stores: Stores,
}

/// Caches of the objects apps own, fed by the controller's watches.
#[derive(Clone)]
struct Stores {
    deployments: Store<Deployment>,
    services: Store<Service>,
    ingresses: Store<Ingress>,
    autoscalers: Store<HorizontalPodAutoscaler>,
    budgets: Store<PodDisruptionBudget>,
    ingress_classes: Store<IngressClass>,
    secrets: Store<Secret>,
    revisions: Store<ControllerRevision>,
    /// The optional APIs' owned objects, when the cluster serves them.
    http_routes: Option<DynamicStore>,
    backend_configs: Option<DynamicStore>,
}

/// A cache of owned objects whose type is known only at run time (HTTPRoute, BackendConfig).
#[derive(Clone)]
struct DynamicStore {
    resource: ApiResource,
    store: Store<DynamicObject>,
}

impl DynamicStore {
    fn get(&self, ns: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.store
            .get(&ObjectRef::new_with(name, self.resource.clone()).within(ns))
    }
}

impl Stores {
    /// Whether every cache has listed its objects once. (Waiting for that inside a reconcile
    /// would stall the controller that feeds the caches.)
    fn ready(&self) -> bool {
        use futures::FutureExt;
        let ready =
            |wait: futures::future::BoxFuture<'_, _>| matches!(wait.now_or_never(), Some(Ok(())));
        ready(self.deployments.wait_until_ready().boxed())
            && ready(self.services.wait_until_ready().boxed())
            && ready(self.ingresses.wait_until_ready().boxed())
            && ready(self.autoscalers.wait_until_ready().boxed())
            && ready(self.budgets.wait_until_ready().boxed())
            && ready(self.ingress_classes.wait_until_ready().boxed())
            && ready(self.secrets.wait_until_ready().boxed())
            && ready(self.revisions.wait_until_ready().boxed())
            && [&self.http_routes, &self.backend_configs]
                .into_iter()
                .flatten()
                .all(|d| ready(d.store.wait_until_ready().boxed()))
    }
}

/// Settings of the controller that do not change while it runs.
#[derive(Clone)]
pub struct Settings {
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    pub apis: ClusterApis,
    pub companion_image: String,
    /// Handshakes in flight at most, over all apps.
    pub probe_concurrency: usize,
}

/// Runs the controller over `namespace` (None: all namespaces) until `stop` is cancelled.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    settings: Settings,
    stop: CancellationToken,
) {
    let ns = namespace;
    let apps: Api<McpApp> = match &ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let owned_config = watcher::Config::default().labels(MANAGED_BY);
    let (deployments, deployment_events) = cached::<Deployment>(&client, &ns, owned_config.clone());
    let (services, service_events) = cached::<Service>(&client, &ns, owned_config.clone());
    let (ingresses, ingress_events) = cached::<Ingress>(&client, &ns, owned_config.clone());
    let (autoscalers, autoscaler_events) =
        cached::<HorizontalPodAutoscaler>(&client, &ns, owned_config.clone());
    let (budgets, budget_events) =
        cached::<PodDisruptionBudget>(&client, &ns, owned_config.clone());
    let (revisions, revision_events) =
        cached::<ControllerRevision>(&client, &ns, owned_config.clone());
    // The gate reads pods from this cache; the controller learns of pod changes through the
    // Deployment's status and the gate's own requests.
    let (pods, pod_events) = cached::<Pod>(&client, &ns, owned_config.clone());
    tokio::spawn(
        pod_events
            .take_until(stop.clone().cancelled_owned())
            .for_each(|event| {
                if let Err(e) = event {
                    tracing::warn!("watching pods: {e}");
                }
                futures::future::ready(())
            }),
    );
    let http_routes = cached_dynamic(
        &client,
        &ns,
        settings.apis.http_route.as_ref(),
        &owned_config,
    );
    let backend_configs = cached_dynamic(
        &client,
        &ns,
        settings.apis.backend_config.as_ref(),
        &owned_config,
    );
    // Every Secret, not only labelled ones: apps reference Secrets their users made.
    let (secrets, secret_events) = cached::<Secret>(&client, &ns, watcher::Config::default());
    let (ingress_classes, class_writer) = reflector::store();
    let class_events = watcher(Api::<IngressClass>::all(client.clone()), Default::default())
        .default_backoff()
        .reflect(class_writer)
        .touched_objects();

    let book = Book::default();
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), settings.reporter.clone()),
        client: client.clone(),
        metrics: settings.metrics.clone(),
        apis: settings.apis,
        companion_image: settings.companion_image,
        book: book.clone(),
        stores: Stores {
            deployments,
            services,
            ingresses,
            autoscalers,
            budgets,
            ingress_classes,
            secrets: secrets.clone(),
            revisions,
            http_routes: http_routes.as_ref().map(|(cache, _)| cache.clone()),
            backend_configs: backend_configs.as_ref().map(|(cache, _)| cache.clone()),
        },
    });

    let controller = Controller::new(apps, watcher::Config::default());
    let app_store = controller.store();
    let (gate_requests, mut gate_rx) = tokio::sync::mpsc::unbounded_channel();
    let gate = Gate {
        client: client.clone(),
        pods,
        apps: app_store.clone(),
        secrets,
        book,
        metrics: settings.metrics,
        prober: Prober::new(),
        concurrency: settings.probe_concurrency,
    };
    tokio::spawn(gate.run(gate_requests, stop.clone()));
    let secret_apps = app_store.clone();
    let class_apps = app_store.clone();
    let mut controller = controller;
    // A deleted or edited HTTPRoute or BackendConfig is put back at once, not at the resync.
    for (cache, events) in [http_routes, backend_configs].into_iter().flatten() {
        controller = controller.owns_stream_with(events, cache.resource);
    }
    controller
        .owns_stream(deployment_events)
        .owns_stream(service_events)
        .owns_stream(ingress_events)
        .owns_stream(autoscaler_events)
        .owns_stream(budget_events)
        .owns_stream(revision_events)
        .reconcile_on(futures::stream::poll_fn(move |cx| gate_rx.poll_recv(cx)))
        // A Secret change rolls the pods of the apps that asked for it.
        .watches_stream(secret_events, move |secret: Secret| {
            apps_using_secret(&secret_apps, &secret)
        })
        // An IngressClass appearing or changing its controller changes the ingress dialect.
        .watches_stream(class_events, move |_: IngressClass| {
            class_apps
                .state()
                .into_iter()
                .filter(|a| a.spec.ingress.is_some())
                .map(|a| ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
}

/// A reflector-backed watch of `K` objects with the operator's label.
fn cached<K>(
    client: &Client,
    ns: &Option<String>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (reader, writer) = reflector::store();
    let events = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    (reader, events)
}

/// [`cached`] for an optional API (None when the cluster does not serve it).
fn cached_dynamic(
    client: &Client,
    ns: &Option<String>,
    resource: Option<&ApiResource>,
    config: &watcher::Config,
) -> Option<(
    DynamicStore,
    impl futures::Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
)> {
    let resource = resource?;
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let events = watcher(api, config.clone())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    let cache = DynamicStore {
        resource: resource.clone(),
        store,
    };
    Some((cache, events))
}

fn apps_using_secret(apps: &Store<McpApp>, secret: &Secret) -> Vec<ObjectRef<McpApp>> {
    let (ns, name) = (secret.namespace(), secret.name_any());
    apps.state()
        .into_iter()
        .filter(|a| a.namespace() == ns)
        .filter(|a| {
            a.spec
                .secrets
                .as_ref()
                .is_some_and(|s| s.restart_on_change && s.secret_names().contains(&name.as_str()))
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

async fn reconcile(app: Arc<McpApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    if app.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove what the app owned.
        return Ok(Action::await_change());
    }
    let s = &ctx.stores;
    // Before the caches have listed what exists, every owned object would look missing and be
    // re-applied: come back once they have.
    if !s.ready() {
        return Ok(Action::requeue(CACHE_SYNC_RETRY));
    }
    let ns = app.namespace().unwrap_or_default();
    let name = app.name_any();
    let client = &ctx.client;

    let inputs = inputs::read(
        &app,
        &s.ingress_classes,
        &s.secrets,
        &ctx.apis,
        &ctx.companion_image,
    );
    let wanted = build::owned_objects(&app, &inputs)?;
    let wanted_hash = build::revision(&wanted.deployment)
        .unwrap_or_default()
        .to_owned();
    let wanted_revision = revisions::name(&app, &wanted_hash);
    let previous = app.status.clone().unwrap_or_default();
    let record = ctx.book.view(&ObjectRef::from_obj(app.as_ref()));
    let deployment = live(&s.deployments, &ns, &name);
    let live_revision = deployment
        .as_deref()
        .and_then(build::revision)
        .map(|hash| revisions::name(&app, hash));
    let facts = rollout::Facts {
        wanted: &wanted_revision,
        stable: previous.stable_revision.as_deref(),
        failed: previous.failed_revision.as_deref(),
        auto_rollback: app.spec.rollout.auto_rollback,
        live: live_revision.as_deref(),
        deadline_exceeded: deployment
            .as_deref()
            .and_then(status::deadline_exceeded)
            .is_some(),
        threshold: u32::try_from(app.spec.probe.failure_threshold).unwrap_or(3),
    };
    let decision = rollout::decide(facts, &record, &wanted_hash);
    if let Some(why) = &decision.aborted_now {
        tracing::warn!(app = %name, namespace = %ns, "{why}");
    }
    // A rollback builds every object from the kept spec of the good revision.
    let (applied, objects) = match decision
        .roll_back_to
        .as_deref()
        .and_then(|r| revisions::spec(&s.revisions, &app, r))
    {
        Some(spec) => {
            let mut good = app.as_ref().clone();
            good.spec = spec;
            let inputs = inputs::read(
                &good,
                &s.ingress_classes,
                &s.secrets,
                &ctx.apis,
                &ctx.companion_image,
            );
            let objects = build::owned_objects(&good, &inputs)?;
            (good, objects)
        }
        None => (app.as_ref().clone(), wanted),
    };
    let applied_hash = build::revision(&objects.deployment)
        .unwrap_or_default()
        .to_owned();
    let mut problem = None;

    let deployment = live(&s.deployments, &ns, &name);
    if let Some(d) = deployment.as_deref()
        && objects.deployment.spec.replicas.is_none()
    {
        apply::hand_over_replicas(client, d).await?;
    }
    apply::apply(client, deployment.as_deref(), objects.deployment).await?;
    let service = live(&s.services, &ns, &name);
    apply::apply(client, service.as_deref(), objects.service).await?;
    let ingress = live(&s.ingresses, &ns, &name);
    converge(client, ingress.as_deref(), objects.ingress).await?;
    let autoscaler = live(&s.autoscalers, &ns, &name);
    converge(
        client,
        autoscaler.as_deref(),
        objects.horizontal_pod_autoscaler,
    )
    .await?;
    let budget = live(&s.budgets, &ns, &name);
    converge(client, budget.as_deref(), objects.pod_disruption_budget).await?;
    match (&s.http_routes, objects.http_route) {
        (Some(routes), Some(route)) => {
            let live = routes.get(&ns, &name);
            apply::apply_dynamic(client, &routes.resource, live.as_deref(), route).await?;
        }
        (None, Some(_)) => {
            problem = Some(Problem {
                reason: "GatewayApiNotInstalled",
                message: "spec.gateway needs the Gateway API (HTTPRoute CRD, gateway.networking.k8s.io/v1), \
                          which this cluster does not serve: install the Gateway API CRDs or use spec.ingress"
                    .into(),
            });
        }
        (Some(routes), None) => {
            let live = routes.get(&ns, &name);
            apply::delete_dynamic(client, &routes.resource, live.as_deref()).await?;
        }
        (None, None) => {}
    }
    if let (Some(configs), Some(config)) = (&s.backend_configs, objects.backend_config) {
        let live = configs.get(&ns, &name);
        apply::apply_dynamic(client, &configs.resource, live.as_deref(), config).await?;
    }

    // The applied revision passed once its Deployment settled with enough pods through the
    // handshake: keep its spec for later rollbacks.
    let mut stable = previous.stable_revision.clone();
    let mut failed = decision.failed.clone();
    if let Some(d) = deployment.as_deref()
        && build::revision(d) == Some(applied_hash.as_str())
        && status::settled(&applied, d)
    {
        let passed = revisions::name(&app, &applied_hash);
        if stable.as_ref() != Some(&passed) {
            revisions::keep(client, &s.revisions, &applied, &passed, &applied_hash).await?;
            stable = Some(passed.clone());
        }
        if passed == wanted_revision {
            failed = None;
        }
    }
    let aborted = match (&decision.aborted_now, &failed) {
        (Some(why), _) => Some(why.clone()),
        (None, Some(f)) if *f == wanted_revision => Some(held_back(&previous, f)),
        _ => None,
    };

    let deployment = live(&s.deployments, &ns, &name);
    let observed = Observed {
        deployment: deployment.as_deref(),
        url: Some(build::external_url(&app).unwrap_or_else(|| build::service_url(&app))),
        problem,
        aborted,
        handshake_failure: record
            .latest_failure(&applied_hash)
            .map(|(pod, f)| format!("pod {pod}: {}", f.message)),
        stable_revision: stable,
        failed_revision: failed,
        server: record.server.clone(),
        last_probe: record.last_change.clone(),
    };
    let new_status = status::compute(&app, &observed, Timestamp::now());
    if app.status.as_ref() != Some(&new_status) {
        write_status(&ctx, &app, &new_status).await?;
    }
    Ok(Action::requeue(RESYNC))
}

/// The Degraded message of a revision aborted earlier: the one written when it was aborted.
fn held_back(previous: &crate::api::McpAppStatus, failed: &str) -> String {
    status::condition(Some(previous), DEGRADED)
        .filter(|c| c.reason == reasons::ROLLOUT_ABORTED && c.message.contains(failed))
        .map(|c| c.message.clone())
        .unwrap_or_else(|| {
            format!(
                "revision {failed} failed its MCP handshakes earlier. Change the spec to try again."
            )
        })
}

fn error_policy(app: Arc<McpApp>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(app = %app.name_any(), namespace = ?app.namespace(), "reconcile failed: {error}");
    ctx.metrics.reconcile_failed(error.reason());
    Action::requeue(RETRY)
}

/// The cached object `ns/name` of `store`.
fn live<K>(store: &Store<K>, ns: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    store.get(&ObjectRef::new(name).within(ns))
}

/// Applies `desired`, or deletes what exists when nothing is desired.
async fn converge<K>(client: &Client, live: Option<&K>, desired: Option<K>) -> kube::Result<Applied>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    match desired {
        Some(desired) => apply::apply(client, live, desired).await,
        None => apply::delete(client, live).await,
    }
}

/// Writes the status and records an Event for every condition that changed.
async fn write_status(
    ctx: &Context,
    app: &McpApp,
    new: &crate::api::McpAppStatus,
) -> Result<(), Error> {
    let api: Api<McpApp> =
        Api::namespaced(ctx.client.clone(), &app.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": McpApp::api_version(&()),
        "kind": McpApp::kind(&()),
        "status": new,
    });
    api.patch_status(
        &app.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    for condition in &new.conditions {
        let before = status::condition(app.status.as_ref(), &condition.type_);
        if before.is_some_and(|b| b.status == condition.status && b.reason == condition.reason) {
            continue;
        }
        // Degraded=True and Ready turning False are what a person must look at.
        let warning = (condition.type_ == crate::api::conditions::DEGRADED
            && condition.status == "True")
            || (condition.type_ == crate::api::conditions::READY
                && condition.status == "False"
                && before.is_some_and(|b| b.status == "True"));
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: condition.reason.clone(),
            note: Some(format!(
                "{}={}: {}",
                condition.type_, condition.status, condition.message
            )),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
            tracing::warn!("recording event: {e}");
        }
    }
    Ok(())
}
