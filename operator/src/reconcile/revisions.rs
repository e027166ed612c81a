//! Good revisions kept as ControllerRevisions owned by the app: each holds the McpApp spec that
//! passed its handshakes and the inputs it was rendered with (companion image, Secrets' checksum,
//! ingress controller), so a rollback renders it again exactly as it ran, whatever the user's
//! spec or the cluster did since. Each also keeps the tool contract its pods listed (in an
//! annotation: [`crate::contract::REVISION_ANNOTATION`]), which later revisions are held to.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{McpApp, McpAppSpec};
use crate::build::{BuildInputs, FIELD_MANAGER, INSTANCE_LABEL, REVISION_LABEL, labels};
use crate::contract::{self, Contract, REVISION_ANNOTATION};

/// Good revisions kept per app: the stable one and a few before it.
const KEPT: usize = 3;

/// The name of `app`'s revision whose pods carry the label `hash`.
pub fn name(app: &McpApp, hash: &str) -> String {
    format!("{}-{hash}", app.name_any())
}

/// A revision as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub spec: McpAppSpec,
    /// None for a revision kept before inputs were kept with it.
    pub inputs: Option<BuildInputs>,
}

/// The revision `name` of `app`, if it exists and can be read.
pub fn kept(store: &Store<ControllerRevision>, app: &McpApp, name: &str) -> Option<Kept> {
    let ns = app.namespace()?;
    let revision = store.get(&ObjectRef::new(name).within(&ns))?;
    let data = &revision.data.0;
    Some(Kept {
        spec: serde_json::from_value(data.get("spec")?.clone()).ok()?,
        inputs: data
            .get("inputs")
            .and_then(|i| serde_json::from_value(i.clone()).ok()),
    })
}

/// The tool contract kept with revision `name` of `app`.
pub fn contract(store: &Store<ControllerRevision>, app: &McpApp, name: &str) -> Option<Contract> {
    let revision = store.get(&ObjectRef::new(name).within(&app.namespace()?))?;
    contract::kept_by(&revision)
}

/// Keeps `contracts[label]` with the kept revision `name` (its pods' label) when it has no
/// contract yet: a revision kept before this process saw its pods' tools gets its contract once
/// it does. Writes nothing when there is nothing new.
pub async fn remember_contract(
    client: &Client,
    store: &Store<ControllerRevision>,
    app: &McpApp,
    name: &str,
    contracts: &BTreeMap<String, std::sync::Arc<Contract>>,
) -> kube::Result<()> {
    let Some(ns) = app.namespace() else {
        return Ok(());
    };
    let Some(revision) = store.get(&ObjectRef::new(name).within(&ns)) else {
        return Ok(());
    };
    if revision.annotations().contains_key(REVISION_ANNOTATION) {
        return Ok(());
    }
    let Some(contract) = revision
        .labels()
        .get(REVISION_LABEL)
        .and_then(|label| contracts.get(label))
    else {
        return Ok(());
    };
    let patch = serde_json::json!({
        "metadata": { "annotations": { REVISION_ANNOTATION: contract.canonical_json() } }
    });
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(app = %app.name_any(), %ns, revision = %name, "kept the tool contract");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps `app`'s spec, rendered with `inputs`, as the good revision `name` (pods labelled
/// `hash`), with the tool contract its pods listed if known, and deletes the oldest revisions
/// beyond the few kept.
pub async fn keep(
    client: &Client,
    store: &Store<ControllerRevision>,
    app: &McpApp,
    inputs: &BuildInputs,
    (name, hash): (&str, &str),
    contract: Option<&Contract>,
) -> kube::Result<()> {
    let ns = app.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let mine: Vec<_> = store
        .state()
        .into_iter()
        .filter(|r| r.namespace().as_deref() == Some(&ns))
        .filter(|r| r.labels().get(INSTANCE_LABEL) == Some(&app.name_any()))
        .collect();
    if !mine.iter().any(|r| r.name_any() == name) {
        let number = mine.iter().filter_map(|r| r.revision).max().unwrap_or(0) + 1;
        let mut revision_labels: BTreeMap<String, String> = labels(app);
        revision_labels.insert(REVISION_LABEL.into(), hash.into());
        let revision = ControllerRevision {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.clone()),
                labels: Some(revision_labels),
                annotations: contract.map(|c| {
                    BTreeMap::from([(REVISION_ANNOTATION.to_owned(), c.canonical_json())])
                }),
                owner_references: app.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            data: RawExtension(serde_json::json!({ "spec": app.spec, "inputs": inputs })),
            revision: Some(number),
        };
        let mut body = serde_json::to_value(&revision).expect("a ControllerRevision serializes");
        body["apiVersion"] = "apps/v1".into();
        body["kind"] = "ControllerRevision".into();
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        tracing::info!(app = %app.name_any(), %ns, revision = %name, "kept good revision");
    }
    let mut older: Vec<_> = mine.into_iter().filter(|r| r.name_any() != name).collect();
    older.sort_by_key(|r| std::cmp::Reverse(r.revision));
    for stale in older.iter().skip(KEPT - 1) {
        match api
            .delete(&stale.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
