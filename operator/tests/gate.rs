//! The rollout gate end to end, on a real control plane with real MCP server processes as pods:
//! no pod takes traffic before it answered a handshake, a failing revision is rolled back while
//! clients keep being served, and a pod that stops speaking MCP leaves the endpoints.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use mcp_operator::api::HANDSHAKE_CONDITION;
use mcp_testenv::TestEnv;
use mcp_testenv::mcp::Endpoint;
use mcp_testenv::wait::until;
use serde_json::json;
use support::{
    BROKEN, Cluster, HANGING, SCRIPTED, app_when, condition, is, pods_of, ready_endpoints,
    replace_server, rolled_back_from, set_image, stable_revision,
};

/// An image that only provides `node`, for the official TypeScript SDK's stdio server.
const NODE: &str = "example.com/node";
/// An image whose process exits at once: its pods crash-loop and never reach a handshake.
const CRASHING: &str = "example.com/crashing";
const READY_TIMEOUT: Duration = Duration::from_secs(90);

async fn start() -> Cluster {
    Cluster::start_with(|env| {
        support::with_hanging_server(support::with_scripted_servers(env))
            .image(NODE, ["node"])
            .image(CRASHING, ["false"])
    })
    .await
}

/// One `echo` call to the companion server at `addr` (a stateless 2026-07-28 request).
async fn echo(env: &TestEnv, addr: SocketAddr, message: &str) -> Result<(), String> {
    let endpoint = Endpoint::new(env.connector(addr), addr.to_string(), "/mcp");
    match endpoint
        .call_tool_stateless("echo", json!({"message": message}))
        .await
    {
        Ok(text) if text == message => Ok(()),
        Ok(text) => Err(format!("{addr}: echo answered {text:?}")),
        Err(e) => Err(format!("{addr}: {e}")),
    }
}

/// The pod's handshake condition as (status, reason, message).
async fn handshake_condition(pods: &Api<Pod>, name: &str) -> Option<(String, String, String)> {
    let pod = pods.get(name).await.ok()?;
    let c = pod
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == HANDSHAKE_CONDITION)?;
    Some((
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}

/// `kubectl wait --for=condition=Ready`, the way users and CI wait for an app.
fn kubectl_wait_ready(cluster: &Cluster, name: &str) -> std::process::Output {
    let kubectl = mcp_testenv::binaries::Binaries::locate()
        .expect("kubectl built")
        .kubectl;
    std::process::Command::new(kubectl)
        .env("KUBECONFIG", cluster.env.kubeconfig())
        .args(["wait", "--for=condition=Ready", "--timeout=90s"])
        .arg(format!("mcpapp/{name}"))
        .output()
        .expect("kubectl runs")
}

#[tokio::test]
async fn a_good_app_becomes_ready_through_its_handshake_and_reports_the_server() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18101, &[]).await;
    let started = Instant::now();
    cluster
        .apply_app(json!({"metadata": {"name": "good"}, "spec": {}}))
        .await
        .expect("app applies");

    let out = kubectl_wait_ready(&cluster, "good");
    assert!(
        out.status.success(),
        "kubectl wait: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("time to Ready for one app: {:?}", started.elapsed());
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));

    let app = app_when(&cluster, "good", "server info", READY_TIMEOUT, |a| {
        a.status
            .as_ref()
            .is_some_and(|s| s.server.is_some() && s.stable_revision.is_some())
    })
    .await;
    let status = app.status.unwrap();
    let server = status.server.unwrap();
    assert_eq!(server.name, "mcp-server");
    // `auto` speaks the stateless revision first; the companion server answers it.
    assert_eq!(server.protocol_version, "2026-07-28");
    assert_eq!(server.tools, 5, "echo, add, time, whoami and sleep");
    let probe = status.last_probe.unwrap();
    assert_eq!(probe.result, mcp_operator::api::ProbeResult::Succeeded);

    // The pod carries the condition with what the server said, and is a ready endpoint.
    let pod = pods_of(&cluster, "good").await.remove(0);
    let pods: Api<Pod> = Api::default_namespaced(cluster.client.clone());
    let (pod_status, reason, message) = handshake_condition(&pods, &pod.name_any()).await.unwrap();
    assert_eq!(
        (pod_status.as_str(), reason.as_str()),
        ("True", "HandshakeSucceeded")
    );
    assert!(message.contains("mcp-server"), "{message}");
    let endpoints = ready_endpoints(&cluster, "good").await;
    assert_eq!(endpoints.len(), 1);
    echo(&cluster.env, endpoints[0], "hello")
        .await
        .expect("echo through the endpoint");

    // The good revision is kept for rollbacks.
    let revisions: Api<ControllerRevision> = Api::default_namespaced(cluster.client.clone());
    let kept = revisions
        .get(status.stable_revision.as_deref().unwrap())
        .await
        .expect("stable revision kept");
    assert_eq!(kept.owner_references()[0].name, "good");

    // Handshake metrics are exported; the apps gauge follows the Ready conditions within a
    // tick of the gate's schedule.
    let metrics = until(
        "mcp_operator_apps_ready 1",
        Duration::from_secs(10),
        || async {
            let (_, metrics) = cluster
                .env
                .http_get("127.0.0.1:18101".parse().unwrap(), "/metrics")
                .await
                .map_err(|e| e.to_string())?;
            if metrics.contains("mcp_operator_apps_ready 1") {
                Ok(metrics)
            } else {
                Err(metrics)
            }
        },
    )
    .await;
    assert!(
        metrics.contains(
            "mcp_operator_probes_total{result=\"success\",reason=\"HandshakeSucceeded\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_broken_update_is_rolled_back_while_clients_see_no_failure_and_a_fix_rolls_out() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18102, &[]).await;
    cluster
        .apply_app(json!({"metadata": {"name": "svc"}, "spec": {
            "replicas": 2,
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
            "rollout": {"drainSeconds": 0},
            // The probe meets the broken server's own answers, not a front door's.
            "session": {"frontDoor": false},
        }}))
        .await
        .expect("app applies");
    let stable = stable_revision(&cluster, "svc").await;

    // A client calls echo in a loop against whatever the EndpointSlice says is ready.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client_loop = {
        let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
        let cluster = &cluster;
        async move {
            while !stop.load(Ordering::Relaxed) {
                for addr in ready_endpoints(cluster, "svc").await {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = echo(&cluster.env, addr, &format!("call-{n}")).await {
                        failures.lock().unwrap().push(e);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let scenario = async {
        let updated = Instant::now();
        set_image(&cluster, "svc", BROKEN).await;
        let aborted = app_when(&cluster, "svc", "the rollout aborted", READY_TIMEOUT, |a| {
            is(a, "Degraded", "True")
                && condition(a, "Degraded").is_some_and(|c| c.reason == "RolloutAborted")
        })
        .await;
        println!("broken update → RolloutAborted: {:?}", updated.elapsed());
        let degraded = condition(&aborted, "Degraded").unwrap();
        assert!(
            degraded.message.contains("HTTP 404"),
            "the probe's own error: {}",
            degraded.message
        );
        assert!(
            degraded
                .message
                .contains(&format!("rolled back to {stable}")),
            "{}",
            degraded.message
        );
        let status = aborted.status.clone().unwrap();
        assert!(status.failed_revision.is_some());
        assert_ne!(status.failed_revision, status.stable_revision);

        // The Deployment is back on the good template and the broken pod is gone.
        rolled_back_from(&cluster, "svc", BROKEN).await;
        let rollback = updated.elapsed();
        println!("broken update → rolled back, broken pods gone: {rollback:?}");
        // Let the client run on the rolled-back app a little longer.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        aborted
    };
    let (aborted, ()) = tokio::join!(scenario, client_loop);

    let calls = calls.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap().clone();
    println!(
        "echo calls during the broken rollout: {calls}, failed: {}",
        failures.len()
    );
    assert!(calls > 50, "the client ran: {calls} calls");
    assert!(failures.is_empty(), "no client call may fail: {failures:?}");
    assert!(
        is(&aborted, "Ready", "True"),
        "the old pods keep the app ready"
    );

    // The abort is a Warning Event on the app.
    assert_eq!(
        support::event(&cluster, "svc", "RolloutAborted", "").await,
        "Warning"
    );

    // The same spec is not retried: after a while the app still runs the good revision.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = cluster.apps().get("svc").await.unwrap();
    assert_eq!(
        held.status.as_ref().unwrap().stable_revision.as_deref(),
        Some(stable.as_str())
    );
    assert!(
        pods_of(&cluster, "svc")
            .await
            .iter()
            .all(|p| { p.spec.as_ref().unwrap().containers[0].image.as_deref() != Some(BROKEN) })
    );

    // A fixed image rolls out normally and clears Degraded.
    replace_server(&cluster, "svc", SCRIPTED).await;
    let fixed = app_when(&cluster, "svc", "the fix to roll out", READY_TIMEOUT, |a| {
        is(a, "Ready", "True")
            && is(a, "Degraded", "False")
            && a.status.as_ref().is_some_and(|s| {
                s.stable_revision.as_deref() != Some(stable.as_str()) && s.failed_revision.is_none()
            })
    })
    .await;
    assert_eq!(fixed.status.unwrap().server.unwrap().name, "scripted");
}

#[tokio::test]
async fn a_revision_that_never_reaches_a_handshake_is_aborted_at_its_progress_deadline() {
    const DEADLINE: u64 = 30;
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18107, &[]).await;
    cluster
        .apply_app(json!({"metadata": {"name": "stuck"}, "spec": {
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1},
            "rollout": {"progressDeadlineSeconds": DEADLINE, "drainSeconds": 0},
        }}))
        .await
        .expect("app applies");
    let stable = stable_revision(&cluster, "stuck").await;

    // Its pods crash before they serve anything, so no handshake ever fails: only the
    // Deployment's progress deadline can tell that the revision will not come up.
    let updated = Instant::now();
    set_image(&cluster, "stuck", CRASHING).await;
    let aborted = app_when(
        &cluster,
        "stuck",
        "the rollout aborted at its deadline",
        Duration::from_secs(DEADLINE + 60),
        |a| condition(a, "Degraded").is_some_and(|c| c.reason == "RolloutAborted"),
    )
    .await;
    let took = updated.elapsed();
    println!("crashing update → RolloutAborted at the progress deadline: {took:?}");
    assert!(
        took >= Duration::from_secs(DEADLINE),
        "aborted before the deadline: {took:?}"
    );
    let message = condition(&aborted, "Degraded").unwrap().message;
    assert!(
        message.contains("progressDeadlineSeconds")
            && message.contains(&format!("rolled back to {stable}")),
        "{message}"
    );
    assert!(is(&aborted, "Ready", "True"), "the old pod kept serving");
    rolled_back_from(&cluster, "stuck", CRASHING).await;
}

#[tokio::test]
async fn a_pod_that_stops_speaking_mcp_leaves_the_endpoints_and_comes_back() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18103, &[]).await;
    let (period, threshold) = (2u64, 2u64);
    cluster
        .apply_app(json!({"metadata": {"name": "flaky"}, "spec": {
            "image": SCRIPTED,
            "probe": {"periodSeconds": period, "timeoutSeconds": 1, "failureThreshold": threshold},
            // The test tells the server itself, at its endpoint, to stop speaking MCP.
            "session": {"frontDoor": false},
        }}))
        .await
        .expect("app applies");
    app_when(&cluster, "flaky", "Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "True")
    })
    .await;
    let addr = until("a ready endpoint", READY_TIMEOUT, || async {
        ready_endpoints(&cluster, "flaky")
            .await
            .first()
            .copied()
            .ok_or("none")
    })
    .await;

    let (status, _) = cluster.env.http_get(addr, "/break").await.unwrap();
    assert_eq!(status, 200);
    let broke = Instant::now();
    let bound = Duration::from_secs(period * threshold + period);
    until("the pod to leave the endpoints", bound * 3, || async {
        match ready_endpoints(&cluster, "flaky").await.is_empty() {
            true => Ok(()),
            false => Err("still ready"),
        }
    })
    .await;
    let left = broke.elapsed();
    println!("stopped speaking MCP → out of the endpoints: {left:?} (bound {bound:?})");
    assert!(left <= bound, "left after {left:?}, more than {bound:?}");
    let pods: Api<Pod> = Api::default_namespaced(cluster.client.clone());
    let pod = pods_of(&cluster, "flaky").await.remove(0).name_any();
    let (status, reason, message) = handshake_condition(&pods, &pod).await.unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "HttpStatus"));
    assert!(message.contains("503"), "{message}");
    let app = app_when(&cluster, "flaky", "not Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "False")
    })
    .await;
    assert!(condition(&app, "Ready").unwrap().message.contains("503"));

    let (status, _) = cluster.env.http_get(addr, "/heal").await.unwrap();
    assert_eq!(status, 200);
    let healed = Instant::now();
    until("the pod to come back", bound * 3, || async {
        match ready_endpoints(&cluster, "flaky").await.is_empty() {
            false => Ok(()),
            true => Err("not ready"),
        }
    })
    .await;
    let back = healed.elapsed();
    println!("speaks MCP again → back in the endpoints: {back:?}");
    assert!(
        back <= Duration::from_secs(period) * 2,
        "back after {back:?}"
    );
    // Steady state without a change: the app is Ready and not Degraded (the pod was out of the
    // Service, but the revision was never aborted: it passed before).
    let app = app_when(&cluster, "flaky", "Ready again", READY_TIMEOUT, |a| {
        is(a, "Ready", "True")
    })
    .await;
    assert!(is(&app, "Degraded", "False"));
}

#[tokio::test]
async fn a_missing_required_tool_keeps_the_app_unready_and_names_the_tool() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18104, &[]).await;
    cluster
        .apply_app(json!({"metadata": {"name": "picky"}, "spec": {
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2,
                      "requiredTools": ["echo", "forecast"]},
        }}))
        .await
        .expect("app applies");
    let app = app_when(&cluster, "picky", "HandshakeFailed", READY_TIMEOUT, |a| {
        condition(a, "Ready").is_some_and(|c| c.reason == "HandshakeFailed")
    })
    .await;
    let ready = condition(&app, "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("forecast"), "{}", ready.message);
    assert!(
        !ready.message.contains("echo,"),
        "only the missing tool: {}",
        ready.message
    );
    // With no earlier good revision, the abort is reported in place.
    let app = app_when(&cluster, "picky", "RolloutAborted", READY_TIMEOUT, |a| {
        condition(a, "Degraded").is_some_and(|c| c.reason == "RolloutAborted")
    })
    .await;
    let degraded = condition(&app, "Degraded").unwrap();
    assert!(
        degraded.message.contains("forecast"),
        "{}",
        degraded.message
    );
    assert!(
        degraded.message.contains("nothing to roll back to"),
        "{}",
        degraded.message
    );
    assert!(ready_endpoints(&cluster, "picky").await.is_empty());
}

#[tokio::test]
async fn a_new_required_tool_the_running_version_lacks_is_rolled_back_while_stable_pods_serve() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18108, &[]).await;
    let probe = json!({"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2});
    cluster
        .apply_app(json!({"metadata": {"name": "tools"}, "spec": {
            "image": SCRIPTED, "replicas": 2, "probe": probe,
            "rollout": {"drainSeconds": 0},
        }}))
        .await
        .expect("app applies");
    let stable = stable_revision(&cluster, "tools").await;
    let stable_pods: Vec<String> = pods_of(&cluster, "tools")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();

    // Watch the endpoints while the probe-only change rolls out and back.
    let stop = Arc::new(AtomicBool::new(false));
    let fewest = Arc::new(AtomicUsize::new(usize::MAX));
    let watcher = {
        let (stop, fewest) = (stop.clone(), fewest.clone());
        let cluster = &cluster;
        async move {
            while !stop.load(Ordering::Relaxed) {
                let ready = ready_endpoints(cluster, "tools").await.len();
                fewest.fetch_min(ready, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let scenario = async {
        // The scripted server has only `echo`: a change that asks for `forecast` too.
        let mut changed = probe.clone();
        changed["requiredTools"] = json!(["echo", "forecast"]);
        cluster
            .apply_app(json!({"metadata": {"name": "tools"}, "spec": {
                "image": SCRIPTED, "replicas": 2, "probe": changed,
                "rollout": {"drainSeconds": 0},
            }}))
            .await
            .expect("probe change applies");
        let aborted = app_when(
            &cluster,
            "tools",
            "the probe change aborted",
            READY_TIMEOUT,
            |a| condition(a, "Degraded").is_some_and(|c| c.reason == "RolloutAborted"),
        )
        .await;
        // Back on the stable template: only the stable pods run.
        until("only the stable pods", READY_TIMEOUT, || async {
            let names: Vec<String> = pods_of(&cluster, "tools")
                .await
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| p.name_any())
                .collect();
            let mut expected = stable_pods.clone();
            let mut got = names.clone();
            expected.sort();
            got.sort();
            if got == expected { Ok(()) } else { Err(names) }
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        aborted
    };
    let (aborted, ()) = tokio::join!(scenario, watcher);

    assert_eq!(
        fewest.load(Ordering::Relaxed),
        2,
        "the stable pods never left the endpoints"
    );
    let degraded = condition(&aborted, "Degraded").unwrap();
    assert!(
        degraded.message.contains("forecast"),
        "{}",
        degraded.message
    );
    assert!(
        degraded
            .message
            .contains(&format!("rolled back to {stable}")),
        "{}",
        degraded.message
    );
    let app = cluster.apps().get("tools").await.unwrap();
    assert!(is(&app, "Ready", "True"), "{:?}", app.status);
    let status = app.status.unwrap();
    assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
    assert!(
        status.failed_revision.is_some_and(|f| f != stable),
        "the probe change is the failed revision"
    );
    let pods: Api<Pod> = Api::default_namespaced(cluster.client.clone());
    for name in &stable_pods {
        let (status, reason, _) = handshake_condition(&pods, name).await.unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "HandshakeSucceeded"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn hanging_pods_of_one_app_do_not_keep_another_apps_pods_from_their_handshake() {
    const HANGING_PODS: i32 = 16;
    let cluster = start().await;
    // Four permits: before fair probing, sixteen hanging handshakes of 20 s queued every other
    // pod for over a minute.
    let _operator = cluster
        .start_operator("operator", 18109, &["--probe-concurrency", "4"])
        .await;
    cluster
        .apply_app(json!({"metadata": {"name": "stuck"}, "spec": {
            "image": HANGING, "replicas": HANGING_PODS,
            "probe": {"periodSeconds": 20, "timeoutSeconds": 20},
            "rollout": {"drainSeconds": 0},
            // Handshakes must hang in the server itself, not in a front door's readiness.
            "session": {"frontDoor": false},
        }}))
        .await
        .expect("hanging app applies");
    // Every hanging pod is up and waiting for its handshake.
    until("the hanging pods to run", READY_TIMEOUT, || async {
        let running = pods_of(&cluster, "stuck")
            .await
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "ContainersReady" && c.status == "True")
                    })
            })
            .count();
        if running == HANGING_PODS as usize {
            Ok(())
        } else {
            Err(running)
        }
    })
    .await;

    let applied = Instant::now();
    cluster
        .apply_app(json!({"metadata": {"name": "fine"}, "spec": {
            "image": SCRIPTED, "replicas": 2,
            "probe": {"periodSeconds": 5, "timeoutSeconds": 2},
            "rollout": {"drainSeconds": 0},
        }}))
        .await
        .expect("app applies");
    app_when(
        &cluster,
        "fine",
        "the other app Ready",
        Duration::from_secs(40),
        |a| is(a, "Ready", "True"),
    )
    .await;
    println!(
        "an app beside {HANGING_PODS} hanging pods Ready in {:?}",
        applied.elapsed()
    );
    let stuck = cluster.apps().get("stuck").await.unwrap();
    assert!(is(&stuck, "Ready", "False"), "{:?}", stuck.status);
}

/// The official TypeScript SDK's stdio server, from the clients the mcp-server tests install.
fn typescript_stdio_server() -> (String, String) {
    let server = support::official_client_script("stdio_server.cjs");
    (
        server.display().to_string(),
        support::official_node_modules().display().to_string(),
    )
}

#[tokio::test]
async fn a_stdio_server_bridged_by_the_companion_binary_becomes_ready() {
    let (server, node_modules) = typescript_stdio_server();
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18105, &[]).await;
    cluster
        .apply_app(json!({"metadata": {"name": "stdio"}, "spec": {
            "image": NODE,
            "transport": "stdio",
            "command": ["node", server],
            "env": [{"name": "NODE_PATH", "value": node_modules}],
            "probe": {"periodSeconds": 2, "timeoutSeconds": 2},
        }}))
        .await
        .expect("app applies");
    let app = app_when(&cluster, "stdio", "Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "True") && a.status.as_ref().is_some_and(|s| s.server.is_some())
    })
    .await;
    let server = app.status.unwrap().server.unwrap();
    assert_eq!(server.name, "bridged-ts-server");
    assert!(server.tools >= 1);
}

/// The operator's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_hundred_apps_at_once_all_become_ready() {
    const APPS: usize = 100;
    let cluster = start().await;
    let operator = cluster.start_operator("operator", 18106, &[]).await;
    let started = Instant::now();
    for i in 0..APPS {
        cluster
            .apply_app(
                json!({"metadata": {"name": format!("app-{i:03}")}, "spec": {
                    "probe": {"periodSeconds": 10},
                    "rollout": {"drainSeconds": 0},
                }}),
            )
            .await
            .expect("app applies");
    }
    let apps = cluster.apps();
    until("every app Ready", Duration::from_secs(600), || async {
        let list = apps
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let ready = list.items.iter().filter(|a| is(a, "Ready", "True")).count();
        if ready == APPS {
            Ok(())
        } else {
            Err(format!("{ready} of {APPS} Ready"))
        }
    })
    .await;
    let elapsed = started.elapsed();
    let rss = rss_kib(operator.pid());
    println!(
        "{APPS} apps Ready in {elapsed:?}; operator RSS {} MiB",
        rss / 1024
    );
    assert!(rss > 0, "the operator's RSS was read");
}
