//! The McpApp controller: the only place that writes the objects an app owns.
//!
//! Each reconcile reads the app's inputs, builds the owned objects (pure, in `build`), applies
//! those that changed with server-side apply, deletes those the app no longer wants, and writes
//! the status when it differs. Owned objects are read from reflector caches fed by the same
//! watches that trigger reconciles, so a reconcile at rest makes no API request that writes.

mod apply;
mod inputs;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams};
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
use crate::build::{self, BuildError, FIELD_MANAGER};
use crate::metrics::Metrics;
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
    }
}

/// Settings of the controller that do not change while it runs.
#[derive(Clone)]
pub struct Settings {
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    pub apis: ClusterApis,
    pub companion_image: String,
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
    let (budgets, budget_events) = cached::<PodDisruptionBudget>(&client, &ns, owned_config);
    // Every Secret, not only labelled ones: apps reference Secrets their users made.
    let (secrets, secret_events) = cached::<Secret>(&client, &ns, watcher::Config::default());
    let (ingress_classes, class_writer) = reflector::store();
    let class_events = watcher(Api::<IngressClass>::all(client.clone()), Default::default())
        .default_backoff()
        .reflect(class_writer)
        .touched_objects();

    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), settings.reporter.clone()),
        client: client.clone(),
        metrics: settings.metrics,
        apis: settings.apis,
        companion_image: settings.companion_image,
        stores: Stores {
            deployments,
            services,
            ingresses,
            autoscalers,
            budgets,
            ingress_classes,
            secrets,
        },
    });

    let controller = Controller::new(apps, watcher::Config::default());
    let app_store = controller.store();
    let secret_apps = app_store.clone();
    let class_apps = app_store.clone();
    controller
        .owns_stream(deployment_events)
        .owns_stream(service_events)
        .owns_stream(ingress_events)
        .owns_stream(autoscaler_events)
        .owns_stream(budget_events)
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
    let objects = build::owned_objects(&app, &inputs)?;
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
    match (&ctx.apis.http_route, objects.http_route) {
        (Some(api), Some(route)) => {
            apply::apply_dynamic(client, api, route).await?;
        }
        (None, Some(_)) => {
            problem = Some(Problem {
                reason: "GatewayApiNotInstalled",
                message: "spec.gateway needs the Gateway API (HTTPRoute CRD, gateway.networking.k8s.io/v1), \
                          which this cluster does not serve: install the Gateway API CRDs or use spec.ingress"
                    .into(),
            });
        }
        (Some(api), None) => delete_dynamic(client, api, &ns, &name).await?,
        (None, None) => {}
    }
    if let (Some(api), Some(config)) = (&ctx.apis.backend_config, objects.backend_config) {
        apply::apply_dynamic(client, api, config).await?;
    }

    let deployment = live(&s.deployments, &ns, &name);
    let observed = Observed {
        deployment: deployment.as_deref(),
        url: Some(build::external_url(&app).unwrap_or_else(|| build::service_url(&app))),
        problem,
    };
    let new_status = status::compute(&app, &observed, Timestamp::now());
    if app.status.as_ref() != Some(&new_status) {
        write_status(&ctx, &app, &new_status).await?;
    }
    Ok(Action::requeue(RESYNC))
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

async fn delete_dynamic(
    client: &Client,
    resource: &kube::discovery::ApiResource,
    ns: &str,
    name: &str,
) -> kube::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    if let Some(live) = api.get_opt(name).await?
        && live.annotations().contains_key(APPLIED_HASH_ANNOTATION)
    {
        api.delete(name, &Default::default()).await?;
    }
    Ok(())
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
