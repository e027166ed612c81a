//! The app's PodDisruptionBudget: voluntary evictions take one pod at a time.

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::{
    BuildError,
    meta::{owned_meta, selector_labels},
};
use crate::api::McpApp;

/// Whether the app may ever run more than one pod: only then is a budget useful (with one pod
/// it would block every node drain).
pub fn can_run_more_than_one_pod(app: &McpApp) -> bool {
    match &app.spec.autoscaling {
        Some(autoscaling) => autoscaling.max_replicas > 1,
        None => app.spec.fixed_replicas() > 1,
    }
}

/// A budget allowing one unavailable pod, `None` for single-pod apps. Unhealthy pods may always
/// be evicted, so a pod stuck failing its handshake never blocks a drain.
pub fn pod_disruption_budget(app: &McpApp) -> Result<Option<PodDisruptionBudget>, BuildError> {
    if !can_run_more_than_one_pod(app) {
        return Ok(None);
    }
    Ok(Some(PodDisruptionBudget {
        metadata: owned_meta(app, Default::default())?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(app)),
                match_expressions: None,
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            min_available: None,
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AutoscalingSpec, McpAppSpec};
    use crate::build::fixtures::app;

    #[test]
    fn several_fixed_replicas_get_a_budget_of_one_unavailable_pod() {
        let pdb = pod_disruption_budget(&app(McpAppSpec {
            replicas: Some(3),
            ..McpAppSpec::default()
        }))
        .unwrap()
        .expect("three replicas get a budget");
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        assert_eq!(
            spec.unhealthy_pod_eviction_policy.as_deref(),
            Some("AlwaysAllow")
        );
        let selector = spec.selector.unwrap().match_labels.unwrap();
        assert_eq!(selector["app.kubernetes.io/instance"], "weather");
    }

    #[test]
    fn autoscaling_that_can_grow_past_one_pod_gets_a_budget() {
        let app = app(McpAppSpec {
            autoscaling: Some(AutoscalingSpec::between(1, 4)),
            ..McpAppSpec::default()
        });
        assert!(pod_disruption_budget(&app).unwrap().is_some());
    }

    #[test]
    fn single_pod_apps_get_no_budget() {
        for spec in [
            McpAppSpec::default(),
            McpAppSpec {
                replicas: Some(1),
                ..McpAppSpec::default()
            },
            McpAppSpec {
                replicas: Some(0),
                ..McpAppSpec::default()
            },
            McpAppSpec {
                autoscaling: Some(AutoscalingSpec::between(1, 1)),
                ..McpAppSpec::default()
            },
        ] {
            assert_eq!(pod_disruption_budget(&app(spec)).unwrap(), None);
        }
    }
}
