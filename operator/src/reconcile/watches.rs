//! The controller's watches, wired in one place: the McpApps, every owned kind (a table in
//! [`super::owned`]), the kept revisions, the pods the gate probes, and the inputs that change
//! what an app renders (its Secrets, metadata only, and IngressClasses).

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::{Backoff, ClusterApis, Context, OwnedCaches, error_policy, reconcile};
use crate::api::McpApp;
use crate::build::session_keys_secret_name;
use crate::external::{self, External};
use crate::gate::{Book, Gate};
use crate::metrics::Metrics;
use crate::oauth::Credentials;
use crate::probe::Prober;
use crate::secrets::{self, SecretMeta, SecretReads};

/// How long the controller pauses its triggers after an error from one of them: briefly, since
/// every watch backs off on its own. The controller's default (client-go's 0.8 s doubling to
/// 30 s, reset after two quiet minutes) applies to all triggers together, so after an API server
/// restart the errors of a dozen watches paused every trigger, the gate's included, for a minute.
fn trigger_backoff() -> ResetTimerBackoff<ExponentialBackoff> {
    let steps = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(steps.into(), Duration::from_secs(30))
}

/// Owned objects carry this label; watches are narrowed to it.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=mcp-operator";

/// Settings of the controller that do not change while it runs.
#[derive(Clone)]
pub struct Settings {
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    pub apis: ClusterApis,
    pub companion_image: String,
    /// Where the operator runs, when known (admitted by apps' NetworkPolicies).
    pub operator_namespace: Option<String>,
    /// Handshakes in flight at most, over all apps.
    pub probe_concurrency: usize,
    /// How the external probe connects (trust anchors, name overrides).
    pub external_connect: external::Connect,
    /// External handshakes in flight at most, over all apps.
    pub external_concurrency: usize,
}

/// Runs the controller over `namespace` (None: all namespaces) until `stop` is cancelled.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    settings: Settings,
    stop: CancellationToken,
) {
    let ns = namespace;
    let apps: Api<McpApp> = namespaced(&client, &ns);
    let owned_config = watcher::Config::default().labels(MANAGED_BY);
    let (owned, owned_events) =
        OwnedCaches::watch(&client, ns.as_deref(), &settings.apis, &owned_config);
    let (revisions, revision_events) =
        cached::<ControllerRevision>(&client, &ns, owned_config.clone(), lean);
    // The gate reads pods from this cache; the controller learns of pod changes through the
    // Deployment's status and the gate's own requests.
    let (pods, pod_events) = cached::<Pod>(&client, &ns, owned_config, crate::gate::lean_pod);
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
    // Every Secret, not only labelled ones (apps reference Secrets their users made), but only
    // their metadata (an `Api` of `PartialObjectMeta` asks for metadata only), stripped: the data of the few that apps reference is read on demand.
    let (secret_meta, secret_writer) = reflector::store();
    let secret_events = watcher(namespaced::<SecretMeta>(&client, &ns), Default::default())
        .default_backoff()
        .modify(secrets::strip)
        .reflect(secret_writer)
        .touched_objects();
    let secrets = SecretReads::new(client.clone(), secret_meta);
    let (ingress_classes, class_writer) = reflector::store();
    let class_events = watcher(Api::<IngressClass>::all(client.clone()), Default::default())
        .default_backoff()
        .reflect(class_writer)
        .touched_objects();

    let book = Book::default();
    let external_book = external::Book::default();
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), settings.reporter.clone()),
        client: client.clone(),
        metrics: settings.metrics.clone(),
        apis: settings.apis,
        companion_image: settings.companion_image,
        operator_namespace: settings.operator_namespace,
        book: book.clone(),
        external: external_book.clone(),
        owned,
        ingress_classes,
        key_secrets: super::session_keys::KeySecrets::new(secrets.meta().clone()),
        secrets: secrets.clone(),
        revisions: revisions.clone(),
        backoff: Backoff::default(),
    });

    let (app_store, app_writer) = reflector::store();
    let app_events = watcher(apps, watcher::Config::default())
        .modify(lean)
        .reflect(app_writer)
        .applied_objects();
    let mut controller =
        Controller::for_stream(app_events, app_store.clone()).trigger_backoff(trigger_backoff());
    let (gate_requests, mut gate_rx) = tokio::sync::mpsc::unbounded_channel();
    let credentials = Credentials::new(secrets.clone(), settings.external_connect.clone());
    let external = External {
        apps: app_store.clone(),
        secrets: secrets.clone(),
        credentials: credentials.clone(),
        book: external_book,
        metrics: settings.metrics.clone(),
        connect: settings.external_connect,
        concurrency: settings.external_concurrency,
    };
    tokio::spawn(external.run(gate_requests.clone(), stop.clone()));
    let gate = Gate {
        client: client.clone(),
        pods,
        apps: app_store.clone(),
        revisions,
        credentials,
        book,
        metrics: settings.metrics,
        prober: Prober::new(),
        concurrency: settings.probe_concurrency,
    };
    tokio::spawn(gate.run(gate_requests, stop.clone()));
    // An owned object deleted or edited by hand is looked at again at once, not at the resync.
    for (resource, events) in owned_events {
        controller = controller.owns_stream_with(events, resource);
    }
    let secret_apps = app_store.clone();
    let class_apps = app_store;
    controller
        .owns_stream(revision_events)
        .reconcile_on(futures::stream::poll_fn(move |cx| gate_rx.poll_recv(cx)))
        // A Secret change rolls the pods of the apps that asked for it; an app whose session
        // keys were deleted makes them again.
        .watches_stream(secret_events, move |secret: SecretMeta| {
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

/// Drops an object's managedFields before it is cached: nothing read from a cache needs them,
/// and they are often the larger part of an object (kept for each of its writers).
pub(super) fn lean<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// Whether `store` has listed its objects once, without waiting.
pub(super) fn listed<K>(store: &Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// A reflector-backed watch of `K` objects, each cut down by `lean` before it is cached.
fn cached<K>(
    client: &Client,
    ns: &Option<String>,
    config: watcher::Config,
    lean: fn(&mut K),
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
    let (reader, writer) = reflector::store();
    let events = watcher(namespaced(client, ns), config)
        .default_backoff()
        .modify(lean)
        .reflect(writer)
        .touched_objects();
    (reader, events)
}

/// The API of `K` in `ns`, or in every namespace.
fn namespaced<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn apps_using_secret(apps: &Store<McpApp>, secret: &SecretMeta) -> Vec<ObjectRef<McpApp>> {
    let (ns, name) = (secret.namespace(), secret.name_any());
    apps.state()
        .into_iter()
        .filter(|a| a.namespace() == ns)
        .filter(|a| {
            // Its own session keys (deleted by hand: created again at once), or Secrets it asked
            // to be restarted on.
            session_keys_secret_name(a) == name
                || a.spec.secrets.as_ref().is_some_and(|s| {
                    s.restart_on_change && s.secret_names().contains(&name.as_str())
                })
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}
