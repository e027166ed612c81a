//! The handshake settings a revision's pods are probed with, carried by the pod template as an
//! annotation. They are part of the revision: a probe-only change rolls out like any other
//! change, and the gate probes each pod with the settings of the revision it runs, so a new
//! `requiredTools` entry is asked only of the pods built for it. The tool contract's settings
//! travel the same way (left out at their defaults, so pods made before they existed keep their
//! revision), and a spec that accepts a tool's change is a new revision that is checked anew.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::api::{McpApp, ProbeSpec, ToolContract, Transport};

/// Pod template annotation holding the canonical JSON of [`ProbeSettings`].
pub const PROBE_SETTINGS_ANNOTATION: &str = "mcp-operator.dev/probe";

/// Annotations longer than this are not read: the settings of a valid app are a few hundred
/// bytes (at most 64 required tools of 128 characters).
const MAX_ANNOTATION_BYTES: usize = 16 * 1024;

/// Where and how a pod is probed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSettings {
    pub port: i32,
    pub path: String,
    pub transport: Transport,
    pub probe: ProbeSpec,
    #[serde(default, skip_serializing_if = "ContractSettings::is_default")]
    pub contract: ContractSettings,
}

/// How a revision's tools are held to the stable revision's contract
/// (`rollout.toolContract`, `rollout.acceptToolChanges`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContractSettings {
    #[serde(default)]
    pub mode: ToolContract,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<String>,
}

impl ContractSettings {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl ProbeSettings {
    /// The settings `app`'s spec asks for.
    pub fn of(app: &McpApp) -> Self {
        let spec = &app.spec;
        ProbeSettings {
            port: spec.serving_port(),
            path: spec.serving_path().to_owned(),
            transport: spec.transport,
            // The external probe is not the pods' business: changing it rolls nothing.
            probe: ProbeSpec {
                external: None,
                ..spec.probe.clone()
            },
            contract: ContractSettings {
                mode: spec.rollout.tool_contract,
                accept: spec.rollout.accept_tool_changes.clone(),
            },
        }
    }

    /// The settings `pod` was built with, or `app`'s when the pod carries none it can be read
    /// (pods made before the annotation existed).
    pub fn for_pod(app: &McpApp, pod: &Pod) -> Self {
        match pod.annotations().get(PROBE_SETTINGS_ANNOTATION) {
            Some(text) => Self::parse(text).unwrap_or_else(|| {
                tracing::debug!(pod = %pod.name_any(), "unreadable probe settings annotation: using the app's");
                Self::of(app)
            }),
            None => Self::of(app),
        }
    }

    /// The annotation's value: serialization of a struct is field-ordered, so the same settings
    /// always give the same bytes (and the same revision hash).
    pub fn annotation(&self) -> String {
        serde_json::to_string(self).expect("probe settings serialize")
    }

    fn parse(text: &str) -> Option<Self> {
        if text.len() > MAX_ANNOTATION_BYTES {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// Failed handshakes in a row before the pod is taken out of the Service.
    pub fn failure_threshold(&self) -> u32 {
        self.probe.threshold()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::McpAppSpec;
    use crate::build::fixtures::app;

    fn pod(annotation: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        if let Some(a) = annotation {
            pod.annotations_mut()
                .insert(PROBE_SETTINGS_ANNOTATION.into(), a.into());
        }
        pod
    }

    fn with_tools(tools: &[&str]) -> McpApp {
        let mut spec = McpAppSpec::default();
        spec.probe.required_tools = tools.iter().map(|t| (*t).to_owned()).collect();
        app(spec)
    }

    #[test]
    fn a_pod_is_probed_with_the_settings_it_was_built_with() {
        let old = with_tools(&[]);
        let new = with_tools(&["forecast"]);
        let annotation = ProbeSettings::of(&old).annotation();
        let settings = ProbeSettings::for_pod(&new, &pod(Some(&annotation)));
        assert_eq!(settings, ProbeSettings::of(&old));
        assert!(settings.probe.required_tools.is_empty());
    }

    #[test]
    fn pods_without_readable_settings_are_probed_with_the_apps() {
        let app = with_tools(&["echo"]);
        let own = ProbeSettings::of(&app);
        assert_eq!(ProbeSettings::for_pod(&app, &pod(None)), own);
        assert_eq!(ProbeSettings::for_pod(&app, &pod(Some("{not json"))), own);
        // An oversized annotation is not parsed at all, however valid.
        let mut huge = ProbeSettings::of(&with_tools(&[]));
        huge.path = format!("/{}", "x".repeat(MAX_ANNOTATION_BYTES));
        assert_eq!(
            ProbeSettings::for_pod(&app, &pod(Some(&huge.annotation()))),
            own
        );
    }

    #[test]
    fn an_own_image_behind_the_front_door_is_probed_through_it() {
        let mut spec = crate::api::McpAppSpec {
            image: Some("example/weather:1".into()),
            port: 9000,
            path: "/api/mcp".into(),
            ..crate::api::McpAppSpec::default()
        };
        let through = ProbeSettings::of(&app(spec.clone()));
        assert_eq!((through.port, through.path.as_str()), (8099, "/mcp"));
        spec.session.front_door = false;
        let direct = ProbeSettings::of(&app(spec));
        assert_eq!((direct.port, direct.path.as_str()), (9000, "/api/mcp"));
    }

    #[test]
    fn the_annotation_is_canonical_and_round_trips() {
        let app = with_tools(&["a", "b"]);
        let text = ProbeSettings::of(&app).annotation();
        assert_eq!(text, ProbeSettings::of(&app.clone()).annotation());
        assert_eq!(ProbeSettings::parse(&text), Some(ProbeSettings::of(&app)));
        assert!(text.contains(r#""requiredTools":["a","b"]"#), "{text}");
        assert!(!text.contains("contract"), "defaults are left out: {text}");
    }

    #[test]
    fn accepting_a_tool_change_is_a_new_revision() {
        let mut spec = McpAppSpec::default();
        let before = ProbeSettings::of(&app(spec.clone())).annotation();
        spec.rollout.accept_tool_changes = vec!["search".into()];
        let after = ProbeSettings::of(&app(spec)).annotation();
        assert_ne!(before, after);
        let settings = ProbeSettings::parse(&after).unwrap();
        assert_eq!(settings.contract.accept, ["search"]);
        assert_eq!(settings.contract.mode, ToolContract::Enforce);
    }
}
