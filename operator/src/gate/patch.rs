//! Writing a pod's handshake condition. A write is abandoned when the gate stops (leadership
//! lost, shutdown): no condition written by a replica that no longer leads may land late.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::condition::Wanted;
use crate::api::HANDSHAKE_CONDITION;

/// How a condition write ended.
pub enum Written {
    Done,
    /// The pod is gone: nothing to mark.
    Gone,
    /// Abandoned because the gate stopped.
    Stopped,
    Failed(kube::Error),
}

/// Patches `wanted` into the condition of pod `namespace/name`, unless `stop` comes first.
/// `transition` is set when the condition's status changes.
pub async fn write(
    client: Client,
    namespace: &str,
    name: &str,
    wanted: &Wanted,
    transition: Option<Timestamp>,
    stop: &CancellationToken,
) -> Written {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let mut condition = serde_json::json!({
        "type": HANDSHAKE_CONDITION,
        "status": wanted.status(),
        "reason": wanted.reason,
        "message": wanted.message,
    });
    if let Some(t) = transition {
        condition["lastTransitionTime"] = t.to_string().into();
    }
    // A strategic merge patch merges conditions by type: the kubelet's stay untouched.
    let patch = serde_json::json!({"status": {"conditions": [condition]}});
    let (params, patch) = (PatchParams::default(), Patch::Strategic(&patch));
    let request = api.patch_status(name, &params, &patch);
    tokio::select! {
        biased;
        _ = stop.cancelled() => Written::Stopped,
        result = request => match result {
            Ok(_) => Written::Done,
            Err(kube::Error::Api(e)) if e.code == 404 => Written::Gone,
            Err(e) => Written::Failed(e),
        },
    }
}
