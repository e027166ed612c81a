//! Autoscaling: the McpApp side of an autoscaling/v2 HorizontalPodAutoscaler.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Scales the app's pods between `minReplicas` and `maxReplicas` on CPU and/or memory
/// utilization. Without a target, CPU at 80 % of requests is used.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.minReplicas <= self.maxReplicas")
        .message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas")
        .field_path(".minReplicas")
        .reason(Reason::FieldValueInvalid)
)]
pub struct AutoscalingSpec {
    /// Fewest pods to run.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,

    /// Most pods to run.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,

    /// Average CPU use to aim for, in percent of the pods' CPU requests.
    #[serde(
        rename = "targetCPUUtilizationPercentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization_percentage: Option<i32>,

    /// Average memory use to aim for, in percent of the pods' memory requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory_utilization_percentage: Option<i32>,

    /// Scale-up and scale-down policies, passed to the HorizontalPodAutoscaler unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// The CPU target used when neither target is set, the same as `kubectl autoscale`.
pub const DEFAULT_CPU_UTILIZATION_PERCENTAGE: i32 = 80;

fn default_min_replicas() -> i32 {
    1
}

impl AutoscalingSpec {
    /// An autoscaling spec with the given bounds and no explicit targets.
    pub fn between(min_replicas: i32, max_replicas: i32) -> Self {
        Self {
            min_replicas,
            max_replicas,
            target_cpu_utilization_percentage: None,
            target_memory_utilization_percentage: None,
            behavior: None,
        }
    }
}
