//! Owned objects as their caches keep them: the metadata typed (what the controller maps events
//! and looks objects up by), everything else as its JSON text. Parsed JSON holds about ten times
//! its text in memory (a map node for every object in it, however small), and the caches hold
//! every owned object of every app while a reconcile reads one app's objects at a time: those
//! are parsed when read ([`Compact::expand`]).

use std::borrow::Cow;

use kube::Resource;
use kube::api::{ApiResource, DynamicObject, ObjectMeta, TypeMeta};
use kube::core::DynamicResourceScope;
use serde::{Deserialize, Deserializer};

/// An object of any kind, kept compact.
#[derive(Clone, Debug)]
pub struct Compact {
    types: Option<TypeMeta>,
    metadata: ObjectMeta,
    /// Every top-level field but `apiVersion`, `kind` and `metadata`: one JSON object's text.
    rest: Box<str>,
}

impl Compact {
    /// The object as it was received.
    pub fn expand(&self) -> DynamicObject {
        DynamicObject {
            types: self.types.clone(),
            metadata: self.metadata.clone(),
            // Written from a parsed value in `from`: it parses again.
            data: serde_json::from_str(&self.rest).unwrap_or_default(),
        }
    }
}

impl From<DynamicObject> for Compact {
    fn from(object: DynamicObject) -> Self {
        Compact {
            types: object.types,
            metadata: object.metadata,
            rest: object.data.to_string().into_boxed_str(),
        }
    }
}

impl<'de> Deserialize<'de> for Compact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DynamicObject::deserialize(deserializer).map(Compact::from)
    }
}

impl Resource for Compact {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::group(dt)
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::version(dt)
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::kind(dt)
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::api_version(dt)
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    const DEPLOYMENT: &str = r#"{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "weather", "namespace": "tools", "uid": "u-1",
                     "annotations": {"mcp-operator.dev/desired-hash": "abc"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "weather"}},
                 "template": {"spec": {"containers": [{"name": "mcp", "image": "img:1"}]}}},
        "status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    }"#;

    #[test]
    fn expands_to_the_object_it_was_read_from() {
        let compact: Compact = serde_json::from_str(DEPLOYMENT).unwrap();
        let direct: DynamicObject = serde_json::from_str(DEPLOYMENT).unwrap();
        assert_eq!(compact.expand().data, direct.data);
        assert_eq!(compact.expand().metadata, direct.metadata);
        assert_eq!(compact.expand().types, direct.types);
        let typed: Deployment = compact.expand().try_parse().unwrap();
        assert_eq!(typed.spec.replicas, Some(2));
        assert_eq!(typed.status.unwrap().ready_replicas, Some(2));
    }

    #[test]
    fn metadata_is_read_without_expanding() {
        let compact: Compact = serde_json::from_str(DEPLOYMENT).unwrap();
        assert_eq!(compact.meta().name.as_deref(), Some("weather"));
        assert!(compact.rest.starts_with('{') && !compact.rest.contains("metadata"));
    }
}
