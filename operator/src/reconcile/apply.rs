//! Server-side apply of owned objects, without writes at rest.
//!
//! A server-side apply of an unchanged object changes nothing on the server, but it is still a
//! PATCH request: an operator that re-applies on every reconcile writes all the time. Each object
//! therefore carries the hash of the desired state it was last applied from; when the live object
//! carries the hash of the current desired state, the apply is skipped.

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::build::FIELD_MANAGER;

/// The annotation holding the hash of the desired state an object was last applied from.
pub const APPLIED_HASH_ANNOTATION: &str = "mcp-operator.dev/applied-hash";

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    Written,
}

/// The hash of `object`'s desired state: its JSON, which the builders make deterministic.
pub fn desired_hash<K: Serialize>(object: &K) -> String {
    let json = serde_json::to_vec(object).expect("Kubernetes objects serialize to JSON");
    let digest = Sha256::digest(&json);
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `live` was last applied from the desired state with hash `hash`.
pub fn carries(live: &DynamicObject, hash: &str) -> bool {
    live.annotations()
        .get(APPLIED_HASH_ANNOTATION)
        .map(String::as_str)
        == Some(hash)
}

/// Applies `desired` (of the kind `resource`, with hash `hash`) and returns what the API server
/// made of it.
pub async fn apply(
    client: &Client,
    resource: &ApiResource,
    mut desired: DynamicObject,
    hash: String,
) -> kube::Result<DynamicObject> {
    let ns = desired.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, resource);
    let name = desired.name_any();
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.into(), hash);
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &pp, &Patch::Apply(&desired)).await
}

/// Deletes an object the app no longer wants, if it exists and the operator made it.
pub async fn delete(
    client: &Client,
    resource: &ApiResource,
    live: Option<&DynamicObject>,
) -> kube::Result<Applied> {
    let Some(live) = live.filter(|l| l.annotations().contains_key(APPLIED_HASH_ANNOTATION)) else {
        return Ok(Applied::Unchanged);
    };
    let ns = live.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, resource);
    match api
        .delete(&live.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(Applied::Written),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Applied::Unchanged),
        Err(e) => Err(e),
    }
}

/// The field manager that keeps a Deployment's replica count while the operator lets go of it.
const REPLICAS_HANDOVER_MANAGER: &str = "mcp-operator-replicas-handover";

/// Before an apply without `spec.replicas` (the app switched to autoscaling), makes sure the
/// operator is not the field's only manager: server-side apply removes a field its only manager
/// stops setting, and the Deployment would fall back to one replica before the autoscaler acts.
/// A second manager keeps the current value; the autoscaler takes it from there. Reads the
/// Deployment first: the caches hold no managedFields.
pub async fn hand_over_replicas(client: &Client, ns: &str, name: &str) -> kube::Result<Applied> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), ns);
    let Some(live) = api.get_opt(name).await? else {
        return Ok(Applied::Unchanged);
    };
    let managers = live.metadata.managed_fields.iter().flatten();
    let owners: Vec<&str> = managers
        .filter(|m| {
            m.fields_v1.as_ref().is_some_and(|f| {
                f.0.get("f:spec")
                    .and_then(|s| s.get("f:replicas"))
                    .is_some()
            })
        })
        .filter_map(|m| m.manager.as_deref())
        .collect();
    if owners != [FIELD_MANAGER] {
        return Ok(Applied::Unchanged);
    }
    let patch = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"replicas": live.spec.replicas},
    });
    api.patch(
        &live.name_any(),
        &PatchParams::apply(REPLICAS_HANDOVER_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(Applied::Written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn config_map(value: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "ns"},
            "data": {"k": value},
        }))
        .unwrap()
    }

    #[test]
    fn hash_changes_with_the_desired_state_only() {
        assert_eq!(
            desired_hash(&config_map("a")),
            desired_hash(&config_map("a"))
        );
        assert_ne!(
            desired_hash(&config_map("a")),
            desired_hash(&config_map("b"))
        );
    }

    #[test]
    fn live_object_with_the_current_hash_carries_it() {
        let desired = config_map("a");
        let mut live: DynamicObject =
            serde_json::from_value(serde_json::to_value(&desired).unwrap()).unwrap();
        live.annotations_mut()
            .insert(APPLIED_HASH_ANNOTATION.into(), desired_hash(&desired));
        assert!(carries(&live, &desired_hash(&desired)));
        assert!(!carries(&live, &desired_hash(&config_map("b"))));
    }
}
