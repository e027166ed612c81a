//! Names, labels and owner references shared by every owned object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::{BuildError, FIELD_MANAGER};
use crate::api::McpApp;

pub(super) const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub(super) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// What the pods are, the same for every McpApp; the instance label tells apps apart.
const NAME: &str = "mcp-server";

/// Labels that select an app's pods. They never change, because a Deployment's selector cannot.
pub fn selector_labels(app: &McpApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_owned(), NAME.to_owned()),
        (INSTANCE_LABEL.to_owned(), app.name_any()),
    ])
}

/// Labels on every owned object and pod.
pub fn labels(app: &McpApp) -> BTreeMap<String, String> {
    let mut labels = selector_labels(app);
    labels.insert(MANAGED_BY_LABEL.to_owned(), FIELD_MANAGER.to_owned());
    labels
}

/// Metadata of an owned object: the app's name and namespace, labels, a controller owner
/// reference (so deleting the app deletes it) and the given annotations.
pub(super) fn owned_meta(
    app: &McpApp,
    annotations: BTreeMap<String, String>,
) -> Result<ObjectMeta, BuildError> {
    let namespace = app
        .namespace()
        .ok_or(BuildError::MissingMetadata("namespace"))?;
    let owner = app
        .controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata("uid"))?;
    Ok(ObjectMeta {
        name: Some(app.name_any()),
        namespace: Some(namespace),
        labels: Some(labels(app)),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    })
}

/// `ours` overlaid with `theirs`: the user's value wins for a key both set.
pub(super) fn user_wins(
    ours: BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = ours;
    merged.extend(theirs.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}
