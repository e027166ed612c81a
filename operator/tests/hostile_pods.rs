//! Pods that answer the gate's handshake with hostile intent, on a real control plane: a redirect
//! to an address of the pod's choosing, 8 MiB answers, a body dripped a byte at a time, a 100 kB
//! error message. Each fails its handshake with a reason a person can act on; none makes the
//! operator connect elsewhere, grow, or copy what the pod sent into a status or an Event.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;
use mcp_operator::api::HANDSHAKE_CONDITION;
use mcp_testenv::wait::until;
use serde_json::json;
use support::{
    Cluster, DRIPPING, HUGE, LEAK_MARKER, LONG_ERROR, READY_TIMEOUT, REDIRECTING, pods_of,
};
use tokio::net::TcpListener;

/// The longest text the operator may put in a pod condition, an app condition or an Event.
const MESSAGE_BOUND: usize = 1024;
/// The operator's peak resident memory may not come near what the pods send (8 MiB a probe,
/// two probes a second at most).
const RSS_BOUND_KIB: u64 = 96 * 1024;

/// Counts every connection made to a listener on the host, where the operator runs.
async fn canary() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("canary binds");
    let url = format!("http://{}/stolen", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, hits)
}

/// The pod's handshake condition as (status, reason, message), once it has one.
async fn handshake_of(cluster: &Cluster, app: &str) -> Result<(String, String, String), String> {
    let pod: Pod = pods_of(cluster, app).await.pop().ok_or("no pod yet")?;
    let c = pod
        .status
        .and_then(|s| s.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == HANDSHAKE_CONDITION)
        .ok_or("no handshake condition yet")?;
    Ok((
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}

/// Peak resident set of a process, from the kernel.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        text.len() <= MESSAGE_BOUND,
        "{what} is {} bytes: {text:.200}",
        text.len()
    );
    assert!(!text.contains(LEAK_MARKER), "{what} quotes the pod: {text}");
}

#[tokio::test]
async fn hostile_handshakes_fail_with_clear_reasons_and_steer_flood_or_hold_nothing() {
    let (redirect_to, canary_hits) = canary().await;
    let cluster = Cluster::start_with(|env| support::with_hostile_servers(env, &redirect_to)).await;
    let operator = cluster.start_operator("operator", 18501, &[]).await;
    let cases = [
        ("redirect", REDIRECTING, "Redirected"),
        ("huge", HUGE, "NotJsonRpc"),
        ("drip", DRIPPING, "Timeout"),
        ("long-error", LONG_ERROR, "JsonRpcError"),
    ];
    for (name, image, _) in cases {
        cluster
            .apply_app(json!({"metadata": {"name": name}, "spec": {
                "image": image,
                "replicas": 1,
                "probe": {"periodSeconds": 2, "timeoutSeconds": 2},
                // The gate's own defences are under test: no front door absorbing the server.
                "session": {"frontDoor": false},
            }}))
            .await
            .expect("app applies");
    }

    for (name, _, reason) in cases {
        let (status, got, message) = until(
            &format!("{name}: a failed handshake"),
            READY_TIMEOUT,
            || async { handshake_of(&cluster, name).await },
        )
        .await;
        println!("{name}: {status} {got}: {message}");
        assert_eq!((status.as_str(), got.as_str()), ("False", reason), "{name}");
        assert_clean(&format!("{name}'s pod condition"), &message);
    }
    // Let the probes go on for a while: memory must stay flat while every pod keeps trying.
    tokio::time::sleep(Duration::from_secs(10)).await;

    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    for (name, _, _) in cases {
        let app = cluster.apps().get(name).await.expect("app");
        for c in app.status.map(|s| s.conditions).unwrap_or_default() {
            assert_clean(&format!("{name}'s {} condition", c.type_), &c.message);
        }
    }
    let events: Api<Event> = Api::default_namespaced(cluster.client.clone());
    let events = events.list(&ListParams::default()).await.expect("events");
    for e in events.items {
        let what = format!("Event {}", e.reason.as_deref().unwrap_or_default());
        assert_clean(&what, e.message.as_deref().unwrap_or_default());
    }
    let peak = peak_rss_kib(operator.pid());
    println!("operator peak RSS: {} MiB", peak / 1024);
    assert!(peak > 0, "the operator's memory is readable");
    assert!(
        peak < RSS_BOUND_KIB,
        "operator peak RSS {peak} KiB while pods sent 8 MiB answers"
    );
}
