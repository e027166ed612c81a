//! The app's autoscaling/v2 HorizontalPodAutoscaler.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use kube::ResourceExt;

use super::{BuildError, meta::owned_meta};
use crate::api::{DEFAULT_CPU_UTILIZATION_PERCENTAGE, McpApp};

/// The HPA for `spec.autoscaling`, `None` without it. It scales the app's Deployment, whose
/// `replicas` the operator then leaves alone.
pub fn horizontal_pod_autoscaler(
    app: &McpApp,
) -> Result<Option<HorizontalPodAutoscaler>, BuildError> {
    let Some(autoscaling) = &app.spec.autoscaling else {
        return Ok(None);
    };
    let mut targets: Vec<(&str, i32)> = [
        ("cpu", autoscaling.target_cpu_utilization_percentage),
        ("memory", autoscaling.target_memory_utilization_percentage),
    ]
    .into_iter()
    .filter_map(|(resource, target)| target.map(|t| (resource, t)))
    .collect();
    if targets.is_empty() {
        targets.push(("cpu", DEFAULT_CPU_UTILIZATION_PERCENTAGE));
    }
    Ok(Some(HorizontalPodAutoscaler {
        metadata: owned_meta(app, Default::default())?,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: app.name_any(),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(
                targets
                    .into_iter()
                    .map(|(resource, target)| utilization(resource, target))
                    .collect(),
            ),
            behavior: autoscaling.behavior.clone(),
        },
        status: None,
    }))
}

fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

    use super::*;
    use crate::api::{AutoscalingSpec, McpAppSpec};
    use crate::build::fixtures::{self, app};

    fn targets(hpa: &HorizontalPodAutoscaler) -> Vec<(String, Option<i32>)> {
        hpa.spec
            .metrics
            .iter()
            .flatten()
            .map(|m| {
                let r = m.resource.as_ref().unwrap();
                (r.name.clone(), r.target.average_utilization)
            })
            .collect()
    }

    fn hpa_for(autoscaling: AutoscalingSpec) -> HorizontalPodAutoscaler {
        let app = app(McpAppSpec {
            autoscaling: Some(autoscaling),
            ..McpAppSpec::default()
        });
        horizontal_pod_autoscaler(&app)
            .unwrap()
            .expect("autoscaling gives an HPA")
    }

    #[test]
    fn hpa_scales_the_deployment_between_the_bounds_on_cpu_by_default() {
        let app = app(McpAppSpec {
            autoscaling: Some(AutoscalingSpec::between(2, 6)),
            ..McpAppSpec::default()
        });
        let hpa = horizontal_pod_autoscaler(&app)
            .unwrap()
            .expect("autoscaling gives an HPA");
        let spec = &hpa.spec;
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        assert_eq!(spec.scale_target_ref.name, fixtures::NAME);
        assert_eq!(
            spec.scale_target_ref.api_version.as_deref(),
            Some("apps/v1")
        );
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
        assert_eq!(targets(&hpa), [("cpu".to_owned(), Some(80))]);
    }

    #[test]
    fn explicit_cpu_and_memory_targets_replace_the_default() {
        let autoscaling = AutoscalingSpec {
            target_cpu_utilization_percentage: Some(60),
            target_memory_utilization_percentage: Some(75),
            ..AutoscalingSpec::between(1, 3)
        };
        let hpa = hpa_for(autoscaling);
        assert_eq!(
            targets(&hpa),
            [
                ("cpu".to_owned(), Some(60)),
                ("memory".to_owned(), Some(75))
            ]
        );

        let memory_only = AutoscalingSpec {
            target_memory_utilization_percentage: Some(70),
            ..AutoscalingSpec::between(1, 3)
        };
        let hpa = hpa_for(memory_only);
        assert_eq!(targets(&hpa), [("memory".to_owned(), Some(70))]);
    }

    #[test]
    fn behavior_is_passed_through() {
        let behavior = HorizontalPodAutoscalerBehavior {
            scale_down: Some(HPAScalingRules {
                stabilization_window_seconds: Some(900),
                ..HPAScalingRules::default()
            }),
            scale_up: None,
        };
        let autoscaling = AutoscalingSpec {
            behavior: Some(behavior.clone()),
            ..AutoscalingSpec::between(1, 3)
        };
        let hpa = hpa_for(autoscaling);
        assert_eq!(hpa.spec.behavior, Some(behavior));
    }

    #[test]
    fn fixed_replicas_get_no_hpa() {
        let app = app(McpAppSpec {
            replicas: Some(3),
            ..McpAppSpec::default()
        });
        assert_eq!(horizontal_pod_autoscaler(&app).unwrap(), None);
    }
}
