//! Applying YAML manifests (CRDs, samples) the way `kubectl apply --server-side` does: each
//! document is resolved through API discovery and server-side applied; CRDs are waited on until
//! the API server serves them.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use crate::Error;

const FIELD_MANAGER: &str = "mcp-testenv";

/// The documents of a multi-document YAML text (empty documents skipped).
pub fn parse(yaml: &str) -> Result<Vec<DynamicObject>, Error> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| {
            let value =
                serde_json::Value::deserialize(doc).map_err(|e| Error::Manifest(e.to_string()))?;
            Ok(value)
        })
        .filter(|v| !matches!(v, Ok(serde_json::Value::Null)))
        .map(|v| {
            v.and_then(|v| serde_json::from_value(v).map_err(|e| Error::Manifest(e.to_string())))
        })
        .collect()
}

/// Applies every document of `yaml`; namespaced objects without a namespace go to `namespace`.
pub async fn apply(
    client: &Client,
    yaml: &str,
    namespace: &str,
) -> Result<Vec<DynamicObject>, Error> {
    let mut applied = Vec::new();
    for obj in parse(yaml)? {
        let gvk = obj
            .types
            .as_ref()
            .ok_or_else(|| Error::Manifest(format!("{} has no apiVersion/kind", obj.name_any())))?
            .try_into()
            .map_err(|e: kube::core::gvk::ParseGroupVersionError| Error::Manifest(e.to_string()))?;
        let (resource, caps) = discovery::pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj.metadata.namespace.as_deref().unwrap_or(namespace),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let result = api.patch(&obj.name_any(), &pp, &Patch::Apply(&obj)).await?;
        if gvk.kind == "CustomResourceDefinition" {
            wait_established(client, &obj.name_any()).await?;
        }
        applied.push(result);
    }
    Ok(applied)
}

/// Applies every `.yaml` file of `dir` (sorted by name), but a `kustomization.yaml`.
pub async fn apply_dir(client: &Client, dir: &Path, namespace: &str) -> Result<(), Error> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| p.file_stem().is_some_and(|s| s != "kustomization"))
        .collect();
    files.sort();
    for file in files {
        let yaml = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        apply(client, &yaml, namespace).await?;
    }
    Ok(())
}

async fn wait_established(client: &Client, name: &str) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crd = crds.get(name).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!("CRD {name} to be established")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the Deployment `namespace/name` has an available replica (an add-on the
/// environment installs, for example).
pub async fn wait_available(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    loop {
        let available = deployments
            .get_opt(name)
            .await?
            .and_then(|d| d.status)
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if available > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "Deployment {namespace}/{name} to become available"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
