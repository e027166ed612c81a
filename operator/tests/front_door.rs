//! The companion as every pod's front door, on the real control plane: sessions spread over
//! three replicas by kube-proxy (no stickiness) are all served, because the replicas forward
//! each request to the pod that owns its session; without the front door the same traffic meets
//! "session not found". The per-app key Secret is created once, mounted, kept across re-applies
//! and removed with the app.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use mcp_testenv::mcp::Endpoint;
use mcp_testenv::wait::until;
use mcp_testenv::workspace_binary;
use serde_json::{Value, json};
use support::{Cluster, READY_TIMEOUT, TIMEOUT, answering_cluster_ip, app_when, is, pods_of};

const APP: &str = "routed";
const REPLICAS: i32 = 3;
const SESSIONS: u64 = 12;
const CALLS: u64 = 8;
/// Far longer than the sessions take (each sleeps 1 s): a hang fails the test.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// Three built-in replicas without stickiness, Ready.
async fn three_replicas(cluster: &Cluster, front_door: bool) {
    cluster
        .apply_app(json!({"metadata": {"name": APP}, "spec": {
            "replicas": REPLICAS,
            "session": {"affinity": "None", "frontDoor": front_door},
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
            "rollout": {"drainSeconds": 0},
        }}))
        .await
        .expect("app applies");
}

/// Waits until every pod of the app runs with the front door `on` or not, and is Ready.
async fn settled(cluster: &Cluster, on: bool) {
    app_when(cluster, APP, "every replica Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "True") && a.status.as_ref().and_then(|s| s.ready_replicas) == Some(REPLICAS)
    })
    .await;
    until(
        "only pods of the wanted revision",
        READY_TIMEOUT,
        || async {
            let pods = pods_of(cluster, APP).await;
            let mounting = pods.iter().filter(|p| mounts_keys(p) == on).count();
            if pods.len() == REPLICAS as usize && mounting == pods.len() {
                Ok(())
            } else {
                Err(format!("{mounting} of {} pods as wanted", pods.len()))
            }
        },
    )
    .await;
}

fn mounts_keys(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    let secret = format!("{APP}-session-keys");
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(&secret))
}

/// The official TypeScript client, inside the environment's network: `SESSIONS` sessions of
/// `CALLS` calls each, every request through the Service's ClusterIP.
async fn typescript_sessions(cluster: &Cluster, service: SocketAddr) -> Value {
    let args = [
        support::official_client_script("ts_replicas.cjs")
            .display()
            .to_string(),
        "streamable".into(),
        format!("http://{service}/mcp"),
        SESSIONS.to_string(),
        CALLS.to_string(),
    ];
    support::run_official_client(
        cluster,
        support::Side::Cluster,
        "node",
        &args,
        CLIENT_TIMEOUT,
    )
    .await
}

/// `sessions` sessions of `calls` calls each with the test client, which opens a new
/// connection for every request, so kube-proxy places each one afresh: the failures.
async fn fresh_connection_sessions(
    cluster: &Cluster,
    service: SocketAddr,
    sessions: usize,
    calls: usize,
) -> Vec<String> {
    let endpoint = Endpoint::new(cluster.env.connector(service), service.to_string(), "/mcp");
    let runs = (0..sessions).map(|i| {
        let endpoint = endpoint.clone();
        async move {
            let mut session = match endpoint.initialize(false).await {
                Ok(session) => session,
                Err(e) => return vec![format!("session {i}: {e}")],
            };
            let mut failures = Vec::new();
            for call in 0..calls {
                let message = format!("{i}/{call}");
                match endpoint
                    .call_tool(&mut session, "echo", json!({"message": message}))
                    .await
                {
                    Ok(answer) if answer == message => {}
                    Ok(other) => failures.push(format!("{message}: answered {other}")),
                    Err(e) => failures.push(format!("{message}: {e}")),
                }
            }
            failures
        }
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn key_secret(cluster: &Cluster) -> Option<Secret> {
    let secrets: Api<Secret> = Api::default_namespaced(cluster.client.clone());
    secrets
        .get_opt(&format!("{APP}-session-keys"))
        .await
        .expect("Secrets readable")
}

#[tokio::test]
async fn sessions_spread_by_kube_proxy_are_all_served_only_with_the_front_door() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18131, &[]).await;
    three_replicas(&cluster, true).await;
    settled(&cluster, true).await;
    let service = answering_cluster_ip(&cluster, APP).await;

    // The key Secret: created by the operator, owned by the app, one 32-byte key.
    let secret = key_secret(&cluster).await.expect("the key Secret exists");
    let owner = &secret.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("McpApp", APP));
    assert_eq!(secret.labels()["app.kubernetes.io/instance"], APP);
    let keys = String::from_utf8(secret.data.as_ref().unwrap()["keys"].0.clone()).unwrap();
    assert_eq!(keys.lines().count(), 1, "{keys}");

    // A forged id is refused before anything is forwarded.
    let forged = format!("m1.CgAAAR-Q.{}.{}", "0".repeat(32), "A".repeat(43));
    let (status, _) = cluster
        .env
        .http_request(
            service,
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("Mcp-Session-Id", &forged),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await
        .expect("the Service answers");
    assert_eq!(status, 404);

    let out = typescript_sessions(&cluster, service).await;
    assert_eq!(out["failures"], json!([]), "{out}");
    let failures = fresh_connection_sessions(&cluster, service, 6, 10).await;
    assert_eq!(failures, Vec::<String>::new());
    assert_eq!(out["answered"], SESSIONS * CALLS, "{out}");
    assert_eq!(out["slept"], SESSIONS, "{out}");

    // A re-apply (and the reconcile a metadata change brings) leaves the key alone.
    cluster
        .apps()
        .patch(
            APP,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("app patched");
    three_replicas(&cluster, true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = key_secret(&cluster).await.expect("the key Secret stays");
    assert_eq!(again.resource_version(), secret.resource_version());
    assert_eq!(again.data, secret.data);

    // The same traffic without the front door meets pods that do not hold the session.
    three_replicas(&cluster, false).await;
    settled(&cluster, false).await;
    // (The official client stalls on a lost session, so the test client counts the losses.)
    let failures = fresh_connection_sessions(&cluster, service, 6, 10).await;
    assert!(
        failures.iter().any(|f| f.contains("404")),
        "without the front door, requests land on pods without their session: {failures:?}"
    );

    // Deleting the app deletes its key Secret (owner reference, garbage collector).
    cluster
        .apps()
        .delete(APP, &DeleteParams::default())
        .await
        .expect("app deleted");
    until("the key Secret is collected", TIMEOUT, || async {
        match key_secret(&cluster).await {
            None => Ok(()),
            Some(s) => Err(s.resource_version()),
        }
    })
    .await;
}

/// An image of the user's that serves Streamable HTTP itself: the companion's built-in tools on
/// the port the app names, as any HTTP MCP server would.
const OWN_IMAGE: &str = "example.com/own-http-mcp";

#[tokio::test]
async fn an_own_http_image_is_served_through_its_front_door_on_every_replica() {
    let server = workspace_binary("mcp-server").expect("mcp-server is built");
    let cluster =
        Cluster::start_with(|env| env.image(OWN_IMAGE, [server.display().to_string()])).await;
    let _operator = cluster.start_operator("operator", 18132, &[]).await;
    let name = "own";
    cluster
        .apply_app(json!({"metadata": {"name": name}, "spec": {
            "image": OWN_IMAGE,
            "port": 9000,
            "env": [{"name": "MCP_LISTEN", "value": "0.0.0.0:9000"}],
            "replicas": REPLICAS,
            "session": {"affinity": "None"},
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
            "rollout": {"drainSeconds": 0},
        }}))
        .await
        .expect("app applies");
    app_when(&cluster, name, "every replica Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "True") && a.status.as_ref().and_then(|s| s.ready_replicas) == Some(REPLICAS)
    })
    .await;
    for pod in pods_of(&cluster, name).await {
        let containers: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
            .collect();
        assert_eq!(containers, ["mcp", "front-door"], "{}", pod.name_any());
    }
    let service = answering_cluster_ip(&cluster, name).await;
    assert_eq!(
        fresh_connection_sessions(&cluster, service, 6, 10).await,
        Vec::<String>::new()
    );
    let out = typescript_sessions(&cluster, service).await;
    assert_eq!(out["failures"], json!([]), "{out}");
    assert_eq!(out["answered"], SESSIONS * CALLS, "{out}");
}
