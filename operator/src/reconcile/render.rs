//! One path from an app at a revision to every object it owns, for the spec the user wrote and
//! for a kept good revision alike.

use crate::api::{McpApp, McpAppSpec};
use crate::build::{self, BuildError, BuildInputs, OwnedObjects};

use super::revisions;

/// An app at one revision, rendered into the objects it owns.
#[derive(Clone)]
pub struct Rendered {
    /// The app with the revision's spec.
    pub app: McpApp,
    pub inputs: BuildInputs,
    pub objects: OwnedObjects,
    /// The pod template's hash: the label of the revision's pods.
    pub hash: String,
    /// The revision's name.
    pub revision: String,
}

impl Rendered {
    pub fn new(app: &McpApp, spec: McpAppSpec, inputs: BuildInputs) -> Result<Self, BuildError> {
        let mut app = app.clone();
        app.spec = spec;
        let objects = build::owned_objects(&app, &inputs)?;
        let hash = build::revision(&objects.deployment)
            .unwrap_or_default()
            .to_owned();
        let revision = revisions::name(&app, &hash);
        Ok(Rendered {
            app,
            inputs,
            objects,
            hash,
            revision,
        })
    }

    /// What a rollback to this revision cannot restore, given the inputs as they are `now`:
    /// Secret data is read by the pods at start, whatever checksum the template carries.
    pub fn caveat(&self, now: &BuildInputs) -> &'static str {
        if self.inputs.secrets_checksum.is_some()
            && self.inputs.secrets_checksum != now.secrets_checksum
        {
            "; the Secrets it ran with have changed since, and its pods read them as they are now"
        } else {
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> McpApp {
        build::fixtures::app(McpAppSpec::default())
    }

    #[test]
    fn a_revision_is_named_by_its_pod_template_and_rendered_with_its_own_inputs() {
        let current = Rendered::new(&app(), McpAppSpec::default(), BuildInputs::default()).unwrap();
        assert_eq!(current.revision, format!("weather-{}", current.hash));
        let upgraded = BuildInputs {
            companion_image: "ghcr.io/example/mcp-server:2".into(),
            ..BuildInputs::default()
        };
        let later = Rendered::new(&app(), McpAppSpec::default(), upgraded).unwrap();
        assert_ne!(
            later.hash, current.hash,
            "the companion image is part of the revision"
        );
        let again = Rendered::new(&app(), McpAppSpec::default(), current.inputs.clone()).unwrap();
        assert_eq!(
            again.objects, current.objects,
            "kept inputs render it exactly"
        );
    }

    #[test]
    fn a_rollback_across_a_secret_change_says_what_it_cannot_restore() {
        let ran_with = BuildInputs {
            secrets_checksum: Some("aaaa".into()),
            ..BuildInputs::default()
        };
        let kept = Rendered::new(&app(), McpAppSpec::default(), ran_with.clone()).unwrap();
        assert_eq!(kept.caveat(&ran_with), "");
        let rotated = BuildInputs {
            secrets_checksum: Some("bbbb".into()),
            ..ran_with
        };
        assert!(
            kept.caveat(&rotated)
                .contains("Secrets it ran with have changed")
        );
    }
}
