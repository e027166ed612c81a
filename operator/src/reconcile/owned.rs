//! The objects apps own, kind by kind ([`OwnedKind::ALL`]): one labelled watch and one cache per
//! kind the cluster serves, and one way to converge every kind: applied when wanted, deleted when
//! not, put back when edited by hand, a [`Problem`] when the app needs a kind whose API the
//! cluster does not serve.
//!
//! Every kind is handled as a [`DynamicObject`] with its [`ApiResource`], so a new kind needs no
//! code here; the caches keep them [`Compact`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::apply::{self, Applied};
use super::compact::Compact;
use super::drift;
use super::inputs::ClusterApis;
use crate::build::{OwnedKind, OwnedObjects};
use crate::status::Problem;

/// A kind's events, for the controller to map back to the owning app.
pub type OwnedEvents = BoxStream<'static, Result<Compact, watcher::Error>>;

/// Caches of every owned kind the cluster serves.
#[derive(Clone)]
pub struct OwnedCaches {
    caches: HashMap<OwnedKind, Cache>,
    settled: Settled,
}

#[derive(Clone)]
struct Cache {
    resource: ApiResource,
    store: Store<Compact>,
}

impl OwnedCaches {
    /// Starts watching the kinds the cluster serves, in `ns` (None: all namespaces), narrowed
    /// by `config`. The streams drive the caches: the controller must poll them.
    pub fn watch(
        client: &Client,
        ns: Option<&str>,
        apis: &ClusterApis,
        config: &watcher::Config,
    ) -> (Self, Vec<(ApiResource, OwnedEvents)>) {
        let mut caches = HashMap::new();
        let mut events = Vec::new();
        for kind in OwnedKind::ALL.into_iter().filter(|k| apis.serves(*k)) {
            let resource = kind.api_resource();
            let api: Api<Compact> = match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let writer = reflector::store::Writer::new(resource.clone());
            let store = writer.as_reader();
            let stream = watcher(api, config.clone())
                .default_backoff()
                .modify(super::watches::lean)
                .reflect(writer)
                .touched_objects()
                .boxed();
            events.push((resource.clone(), stream));
            caches.insert(kind, Cache { resource, store });
        }
        (
            OwnedCaches {
                caches,
                settled: Settled::default(),
            },
            events,
        )
    }

    /// Whether every cache has listed its objects once.
    pub fn ready(&self) -> bool {
        self.caches
            .values()
            .all(|c| super::watches::listed(&c.store))
    }

    /// The cached object of `kind` named `ns/name`.
    pub fn live(&self, kind: OwnedKind, ns: &str, name: &str) -> Option<DynamicObject> {
        let cache = self.caches.get(&kind)?;
        let live = cache
            .store
            .get(&ObjectRef::new_with(name, cache.resource.clone()).within(ns))?;
        Some(live.expand())
    }

    /// The app's live Deployment, typed.
    pub fn deployment(&self, ns: &str, name: &str) -> Option<Deployment> {
        self.live(OwnedKind::Deployment, ns, name)?.try_parse().ok()
    }

    /// Brings every owned kind of the app `ns/name` to `objects`: what is wanted is applied,
    /// what is not is deleted. Returns the problem of a wanted kind the cluster does not serve.
    pub async fn converge(
        &self,
        client: &Client,
        ns: &str,
        name: &str,
        objects: &OwnedObjects,
    ) -> kube::Result<Option<Problem>> {
        let mut problem = None;
        for kind in OwnedKind::ALL {
            let desired = objects.get(kind);
            let Some(cache) = self.caches.get(&kind) else {
                if desired.is_some() {
                    problem = problem.or_else(|| not_installed(kind));
                }
                continue;
            };
            let live = self.live(kind, ns, name);
            match desired {
                Some(desired) => {
                    let hand_over =
                        kind == OwnedKind::Deployment && objects.deployment.spec.replicas.is_none();
                    self.apply(client, &cache.resource, live.as_ref(), desired, hand_over)
                        .await?;
                }
                None => {
                    apply::delete(client, &cache.resource, live.as_ref()).await?;
                }
            }
        }
        Ok(problem)
    }
}

impl OwnedCaches {
    /// Applies `desired` unless `live` was applied from it and still holds it: an object edited
    /// by hand is put back, an unchanged one costs no request. With `hand_over_replicas` (a
    /// Deployment applied without a replica count), a write first makes sure the live count is
    /// kept.
    async fn apply(
        &self,
        client: &Client,
        resource: &ApiResource,
        live: Option<&DynamicObject>,
        desired: DynamicObject,
        hand_over_replicas: bool,
    ) -> kube::Result<Applied> {
        let hash = apply::desired_hash(&desired);
        let mut wanted = serde_json::to_value(&desired).unwrap_or_default();
        // Listed objects come without apiVersion and kind; the API says those by the request.
        if let Some(fields) = wanted.as_object_mut() {
            fields.remove("apiVersion");
            fields.remove("kind");
        }
        if let Some(live) = live
            && apply::carries(live, &hash)
        {
            if self.settled.holds(live, &hash) {
                return Ok(Applied::Unchanged);
            }
            match drift::drifted(&wanted, &serde_json::to_value(live).unwrap_or_default()) {
                None => return Ok(Applied::Unchanged),
                Some(field) => tracing::info!(
                    kind = %resource.kind,
                    name = %live.name_any(),
                    %field,
                    "putting back an owned object changed by someone else"
                ),
            }
        }
        if hand_over_replicas && let Some(live) = live {
            let ns = live.namespace().unwrap_or_default();
            apply::hand_over_replicas(client, &ns, &live.name_any()).await?;
        }
        let after = apply::apply(client, resource, desired, hash.clone()).await?;
        if let Some(field) =
            drift::drifted(&wanted, &serde_json::to_value(&after).unwrap_or_default())
        {
            // Something rewrites a field as soon as it is applied (a mutating webhook, a
            // normalisation): accept it for this desired state rather than write in a loop.
            tracing::warn!(
                kind = %resource.kind,
                name = %after.name_any(),
                %field,
                "the API server keeps this field different from what the operator applies; \
                 not correcting it again until the desired state changes"
            );
            self.settled.accept(&after, hash);
        }
        Ok(Applied::Written)
    }
}

/// Objects whose live state differs from their desired state for good (see
/// [`OwnedCaches::apply`]): by UID, the desired hash that was accepted. One entry per object.
#[derive(Clone, Default)]
struct Settled(Arc<Mutex<HashMap<String, String>>>);

impl Settled {
    fn holds(&self, live: &DynamicObject, hash: &str) -> bool {
        let uid = live.uid().unwrap_or_default();
        self.0
            .lock()
            .expect("not poisoned")
            .get(&uid)
            .map(String::as_str)
            == Some(hash)
    }

    fn accept(&self, live: &DynamicObject, hash: String) {
        if let Some(uid) = live.uid() {
            self.0.lock().expect("not poisoned").insert(uid, hash);
        }
    }
}

fn not_installed(kind: OwnedKind) -> Option<Problem> {
    let (reason, message) = kind.when_not_installed()?;
    Some(Problem {
        reason,
        message: message.to_owned(),
    })
}

impl ClusterApis {
    /// Whether the cluster serves `kind`'s API.
    pub fn serves(&self, kind: OwnedKind) -> bool {
        match kind {
            OwnedKind::HttpRoute => self.http_route.is_some(),
            OwnedKind::BackendConfig => self.backend_config.is_some(),
            _ => true,
        }
    }
}
