//! The operator in a messy cluster: killed in the middle of a rollback, and the API server
//! restarted during a rollout. In both, the app ends where it should, and the pods that serve
//! never leave the endpoints.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use mcp_testenv::process::Signal;
use mcp_testenv::wait::until;
use serde_json::json;
use support::{
    BROKEN, Cluster, READY_TIMEOUT, SCRIPTED, app_when, condition, is, ready_endpoints,
    replace_server, set_image, stable_revision,
};

async fn start() -> Cluster {
    Cluster::start_with(support::with_scripted_servers).await
}

/// An app of two pods that fails a revision after two failed handshakes a second apart.
async fn apply_app(cluster: &Cluster, name: &str) {
    cluster
        .apply_app(json!({"metadata": {"name": name}, "spec": {
            "replicas": 2,
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
            "rollout": {"drainSeconds": 0},
        }}))
        .await
        .expect("app applies");
}

/// Samples the app's ready endpoints until stopped; returns the fewest seen, and every change of
/// the count with the time it was seen (printed when the test fails).
async fn watch_endpoints(
    cluster: &Cluster,
    app: &str,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<(Duration, usize)>) {
    let started = Instant::now();
    let mut fewest = usize::MAX;
    let mut changes: Vec<(Duration, usize)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = ready_endpoints(cluster, app).await.len();
        if changes.last().is_none_or(|&(_, last)| last != now) {
            changes.push((started.elapsed(), now));
        }
        fewest = fewest.min(now);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (fewest, changes)
}

/// The image the app's Deployment asks for.
async fn deployed_image(cluster: &Cluster, name: &str) -> Option<String> {
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    let d = deployments.get_opt(name).await.ok().flatten()?;
    d.spec.template.spec?.containers.first()?.image.clone()
}

#[tokio::test]
async fn an_operator_killed_in_the_middle_of_a_rollback_finishes_it_after_a_restart() {
    let cluster = start().await;
    let operator = cluster.start_operator("operator", 18401, &[]).await;
    apply_app(&cluster, "svc").await;
    let stable = stable_revision(&cluster, "svc").await;
    let good_image = deployed_image(&cluster, "svc").await.expect("deployed");
    // Ready is read from the pods; the EndpointSlice follows a moment later. Sampling starts
    // once both good pods are published, so a drop seen later is the operator's doing.
    until("both pods in the endpoints", READY_TIMEOUT, || async {
        match ready_endpoints(&cluster, "svc").await.len() {
            2 => Ok(()),
            n => Err(n),
        }
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let watching = watch_endpoints(&cluster, "svc", stop.clone());
    let scenario = async {
        set_image(&cluster, "svc", BROKEN).await;
        // The moment the rollback reaches the Deployment, the operator dies without a word.
        until("the rollback to be applied", READY_TIMEOUT, || async {
            match deployed_image(&cluster, "svc").await {
                Some(image) if image == good_image => Ok(()),
                other => Err(other),
            }
        })
        .await;
        operator.signal(Signal::SIGKILL);
        let status = cluster.apps().get("svc").await.unwrap().status;
        println!(
            "killed with the status at: failed {:?}",
            status.and_then(|s| s.failed_revision)
        );
        let _restarted = cluster
            .start_operator("operator-restarted", 18402, &[])
            .await;
        let settled = app_when(
            &cluster,
            "svc",
            "rolled back and ready after the restart",
            READY_TIMEOUT,
            |a| {
                is(a, "Ready", "True")
                    && condition(a, "Degraded").is_some_and(|c| c.reason == "RolloutAborted")
                    && a.status
                        .as_ref()
                        .is_some_and(|s| s.failed_revision.is_some())
            },
        )
        .await;
        // It stays rolled back: the broken revision is not tried again.
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.store(true, Ordering::Relaxed);
        settled
    };
    let (settled, (fewest, changes)) = tokio::join!(scenario, watching);
    let status = settled.status.unwrap();
    assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
    assert_ne!(status.failed_revision, status.stable_revision);
    assert_eq!(
        deployed_image(&cluster, "svc").await.as_deref(),
        Some(good_image.as_str())
    );
    println!("fewest ready endpoints during the kill and restart: {fewest}");
    assert_eq!(
        fewest, 2,
        "the good pods never left the endpoints; ready endpoints over time: {changes:?}"
    );
}

#[tokio::test]
async fn an_api_server_restart_during_a_rollout_neither_aborts_nor_stalls_it() {
    let mut cluster = start().await;
    let operator = cluster.start_operator("operator", 18403, &[]).await;
    apply_app(&cluster, "svc").await;
    let old = stable_revision(&cluster, "svc").await;

    replace_server(&cluster, "svc", SCRIPTED).await;
    until(
        "the new revision's pods to be created",
        READY_TIMEOUT,
        || async {
            match deployed_image(&cluster, "svc").await {
                Some(image) if image == SCRIPTED => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    cluster
        .env
        .restart_apiserver(Duration::from_secs(3))
        .await
        .expect("the API server comes back");
    let back = Instant::now();
    // A leader that could not renew its Lease in time steps down and exits, as designed; in a
    // cluster its pod restarts: here a new process takes its place.
    let _replacement = match operator.exit_status() {
        Some(status) => {
            println!("the operator stepped down during the restart ({status})");
            Some(cluster.start_operator("operator-after", 18404, &[]).await)
        }
        None => None,
    };
    let done = app_when(
        &cluster,
        "svc",
        "the new revision ready and stable",
        // About 25 s here. Before the controller's trigger backoff was shortened, the errors of
        // every watch after the restart paused all triggers and this took almost two minutes.
        Duration::from_secs(75),
        |a| {
            is(a, "Ready", "True")
                && is(a, "Progressing", "False")
                && a.status
                    .as_ref()
                    .is_some_and(|s| s.stable_revision.as_deref() != Some(old.as_str()))
        },
    )
    .await;
    println!(
        "the rollout finished {:?} after the API server came back",
        back.elapsed()
    );
    assert!(
        is(&done, "Degraded", "False"),
        "{:?}",
        condition(&done, "Degraded")
    );
    let status = done.status.unwrap();
    assert_eq!(status.failed_revision, None, "nothing was aborted");
}
