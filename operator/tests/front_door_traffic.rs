//! The front door at full size on the real data plane, with the official clients: three
//! replicas without stickiness carry 60 sessions of 20 calls through the ClusterIP (kube-proxy)
//! and through the ingress (Traefik) without one lost session; and while pods go, in a
//! scale-down and in a rolling update under load, a session keeps working as long as its pod
//! runs (through its drain), then gets 404 and the client's new session works on a pod that stays.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use mcp_testenv::mcp::Session;
use serde::Deserialize;
use serde_json::{Value, json};
use support::{
    Cluster, READY_TIMEOUT, Side, answering_cluster_ip, app_when, exposed_app, is, pods_of,
    run_official_client,
};

const SESSIONS: u64 = 60;
const CALLS: u64 = 20;
/// Far longer than any client run takes: a hang fails the test instead of stalling it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a companion serves its own sessions after SIGTERM (`--drain-seconds`' default).
const COMPANION_DRAIN: Duration = Duration::from_secs(10);
/// What the data plane may take to see a pod leave: EndpointSlices, then kube-proxy or Traefik.
const DATA_PLANE_DELAY: Duration = Duration::from_secs(3);

async fn start() -> Cluster {
    Cluster::start_with(|env| env.ingress(0)).await
}

/// Three built-in replicas named `name` without stickiness, with `drain` seconds of drain,
/// answering through the ingress and the ClusterIP. Returns both URLs.
async fn three_replicas(cluster: &Cluster, name: &str, drain: Duration) -> (String, String) {
    exposed_app(
        cluster,
        name,
        json!({"replicas": 3, "session": {"affinity": "None"},
               "rollout": {"drainSeconds": drain.as_secs()}}),
    )
    .await;
    let port = cluster.env.ingress_port().expect("an ingress");
    let service = answering_cluster_ip(cluster, name).await;
    (
        format!("http://{service}/mcp"),
        format!("http://{name}.localhost:{port}/mcp"),
    )
}

fn script(name: &str) -> String {
    support::official_client_script(name).display().to_string()
}

/// The app's replicas' `session_routing_total` count of `outcome`, summed.
async fn routed(cluster: &Cluster, app: &str, outcome: &str) -> u64 {
    let series = format!("mcp_server_session_routing_total{{outcome=\"{outcome}\"}} ");
    let mut total = 0;
    for pod in pods_of(cluster, app).await {
        let Some(ip) = pod.status.and_then(|s| s.pod_ip) else {
            continue;
        };
        let address = SocketAddr::new(ip.parse().expect("a pod IP"), 8080);
        let (status, metrics) = cluster
            .env
            .http_get(address, "/metrics")
            .await
            .expect("the pod answers /metrics");
        assert_eq!(status, 200, "{metrics}");
        total += metrics
            .lines()
            .filter_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    total
}

/// Ids that fail verification, sent through the ingress, are answered 404 where they land and
/// never forwarded: a real id whose owner part was swapped for another pod's, and a made-up one.
async fn forged_ids_are_refused(cluster: &Cluster, app: &str) {
    let endpoint = support::through_ingress(cluster, app);
    let (rejected, failed) = (
        routed(cluster, app, "rejected_id").await,
        routed(cluster, app, "connect_failed").await,
    );
    let mut owners: BTreeMap<String, Session> = BTreeMap::new();
    for _ in 0..30 {
        let mut session = endpoint.initialize(false).await.expect("initialize");
        let owner = endpoint
            .call_tool(&mut session, "whoami", json!({}))
            .await
            .expect("whoami");
        owners.insert(owner, session);
        if owners.len() == 2 {
            break;
        }
    }
    let sessions: Vec<&Session> = owners.values().collect();
    assert_eq!(sessions.len(), 2, "sessions on two pods");
    let parts = |s: &Session| -> Vec<String> {
        let id = s.id.as_deref().expect("a session id");
        id.split('.').map(String::from).collect()
    };
    let (mine, other) = (parts(sessions[0]), parts(sessions[1]));
    let swapped = format!("m1.{}.{}.{}", other[1], mine[2], mine[3]);
    let made_up = format!("m1.CgAAAR-Q.{}.{}", "0".repeat(32), "A".repeat(43));
    for forged in [swapped, made_up] {
        let mut session = sessions[0].clone();
        session.id = Some(forged.clone());
        let answer = endpoint
            .call_tool(&mut session, "echo", json!({"message": "x"}))
            .await;
        assert!(
            answer.as_ref().is_err_and(|e| e.contains("404")),
            "{forged}: {answer:?}"
        );
    }
    assert_eq!(routed(cluster, app, "rejected_id").await, rejected + 2);
    assert_eq!(routed(cluster, app, "connect_failed").await, failed);
}

#[tokio::test]
async fn sixty_sessions_over_three_replicas_without_stickiness_never_lose_their_session() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18141, &[]).await;
    let (cluster_ip, ingress) = three_replicas(&cluster, "spread", Duration::ZERO).await;
    forged_ids_are_refused(&cluster, "spread").await;
    let before = routed(&cluster, "spread", "forwarded").await;

    let (sessions, calls) = (SESSIONS.to_string(), CALLS.to_string());
    for url in [&cluster_ip, &ingress] {
        let runs = [
            (
                "TypeScript",
                "node".to_string(),
                vec![script("ts_replicas.cjs"), "streamable".into()],
            ),
            (
                "Python",
                support::official_python().display().to_string(),
                vec![script("py_replicas.py")],
            ),
        ];
        for (client, program, mut args) in runs {
            args.extend([url.clone(), sessions.clone(), calls.clone()]);
            let out =
                run_official_client(&cluster, Side::of(url), &program, &args, CLIENT_TIMEOUT).await;
            println!("{client} client through {url}: {out}");
            assert_eq!(out["failures"], json!([]), "{client} through {url}: {out}");
            assert_eq!(out["answered"], SESSIONS * CALLS, "{client} through {url}");
            assert_eq!(out["slept"], SESSIONS, "{client} through {url}");
        }
    }

    // Many requests did not land on their session's pod: the replicas forwarded them (through
    // the ingress about two in three; through the ClusterIP fewer, as a client's connection keeps
    // its pod).
    let forwarded = routed(&cluster, "spread", "forwarded").await - before;
    println!("requests forwarded to the pod owning their session: {forwarded}");
    assert!(
        forwarded > SESSIONS * CALLS,
        "requests were forwarded: {forwarded}"
    );
}

/// One session of the churn client (`ts_churn.cjs`), from its start to its end.
#[derive(Debug, Clone, Deserialize)]
struct Run {
    session: u32,
    pod: String,
    started: u64,
    ended: u64,
    calls: u32,
    /// `done` (still working when the client stopped), `not-found` (404) or `failed`.
    end: String,
}

#[derive(Debug, Deserialize)]
struct Churn {
    runs: Vec<Run>,
    failures: Vec<Value>,
}

/// Milliseconds since the epoch, as the client's clock (the same machine's) gives them.
fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Starts the churn client: `sessions` sessions calling `url` for `seconds`, one call every
/// `pause`.
fn churn(
    cluster: &Arc<Cluster>,
    url: &str,
    sessions: u32,
    seconds: u64,
    pause: Duration,
) -> tokio::task::JoinHandle<Churn> {
    let args = vec![
        script("ts_churn.cjs"),
        url.to_string(),
        sessions.to_string(),
        seconds.to_string(),
        pause.as_millis().to_string(),
    ];
    let (cluster, from) = (cluster.clone(), Side::of(url));
    tokio::spawn(async move {
        let out = run_official_client(&cluster, from, "node", &args, CLIENT_TIMEOUT).await;
        serde_json::from_value(out.clone()).unwrap_or_else(|e| panic!("{e}: {out}"))
    })
}

/// When each of the app's pods was first seen terminating, recorded until the task is aborted.
fn watch_terminations(
    cluster: &Arc<Cluster>,
    app: &str,
) -> (
    Arc<Mutex<BTreeMap<String, SystemTime>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen: Arc<Mutex<BTreeMap<String, SystemTime>>> = Arc::default();
    let (cluster, app, record) = (cluster.clone(), app.to_string(), seen.clone());
    let task = tokio::spawn(async move {
        loop {
            for pod in pods_of(&cluster, &app).await {
                if pod.metadata.deletion_timestamp.is_some() {
                    let mut seen = record.lock().unwrap();
                    seen.entry(pod.name_any()).or_insert_with(SystemTime::now);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (seen, task)
}

/// The checks both churn scenarios share, given when each pod that went began terminating:
/// no call failed except by 404; a 404 came only once the session's pod had gone (its drain
/// over); every session lost that way went on in a new session that works to the end; and no
/// new session started on a pod after the data plane saw it go.
fn check_churn(out: &Churn, drain: Duration, terminated: &BTreeMap<String, SystemTime>) {
    assert!(out.failures.is_empty(), "calls failed: {:?}", out.failures);
    let lost: Vec<&Run> = out.runs.iter().filter(|r| r.end == "not-found").collect();
    for run in &lost {
        let Some(&since) = terminated.get(&run.pod) else {
            panic!(
                "a session on {}, a pod that stayed, got 404: {run:?}",
                run.pod
            );
        };
        let kept = Duration::from_millis(run.ended.saturating_sub(epoch_ms(since)));
        assert!(
            kept + Duration::from_secs(1) >= drain,
            "the session on {} worked through the {drain:?} drain: 404 after {kept:?}",
            run.pod
        );
        assert!(
            kept < drain + COMPANION_DRAIN + Duration::from_secs(15),
            "then ended: {kept:?}"
        );
    }
    let mut by_session: BTreeMap<u32, Vec<&Run>> = BTreeMap::new();
    for run in &out.runs {
        by_session.entry(run.session).or_default().push(run);
    }
    for (session, runs) in &by_session {
        let last = runs.last().unwrap();
        assert_eq!(
            last.end, "done",
            "session {session} works at the end: {runs:?}"
        );
        assert!(last.calls > 0, "session {session}: {runs:?}");
    }
    for run in &out.runs {
        if let Some(&since) = terminated.get(&run.pod) {
            assert!(
                run.started < epoch_ms(since + DATA_PLANE_DELAY),
                "a new session started on {}, which was going: {run:?}",
                run.pod
            );
        }
    }
}

fn summary(out: &Churn) -> String {
    let mut ends: BTreeMap<&str, (usize, u32)> = BTreeMap::new();
    for run in &out.runs {
        let entry = ends.entry(run.end.as_str()).or_default();
        entry.0 += 1;
        entry.1 += run.calls;
    }
    format!(
        "{} sessions (ended: sessions, calls) {ends:?}",
        out.runs.len()
    )
}

#[tokio::test]
async fn scale_down_under_load_keeps_sessions_of_removed_pods_until_their_drain_ends() {
    const DRAIN: Duration = Duration::from_secs(8);
    let cluster = Arc::new(start().await);
    let _operator = cluster.start_operator("operator", 18142, &[]).await;
    let (_, ingress) = three_replicas(&cluster, "shrink", DRAIN).await;
    let (terminated, watcher) = watch_terminations(&cluster, "shrink");

    let client = churn(&cluster, &ingress, 30, 50, Duration::from_millis(150));
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster
        .apps()
        .patch(
            "shrink",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scaled");
    let out = client.await.expect("the client ran");
    watcher.abort();
    let terminated = terminated.lock().unwrap().clone();
    println!(
        "through the ingress, 3 → 1 replicas: {}; removed {:?}",
        summary(&out),
        terminated.keys()
    );

    assert_eq!(terminated.len(), 2, "two pods removed: {terminated:?}");
    check_churn(&out, DRAIN, &terminated);
    let removed_sessions = out
        .runs
        .iter()
        .filter(|r| terminated.contains_key(&r.pod))
        .count();
    assert!(
        removed_sessions >= 10,
        "the removed pods held sessions: {removed_sessions}"
    );
    let survivors: BTreeSet<&str> = out
        .runs
        .iter()
        .filter(|r| !terminated.contains_key(&r.pod))
        .map(|r| r.pod.as_str())
        .collect();
    assert_eq!(survivors.len(), 1, "one pod stays: {survivors:?}");
}

#[tokio::test]
async fn a_rolling_update_under_load_fails_no_call_of_a_session_whose_pod_still_runs() {
    const DRAIN: Duration = Duration::from_secs(6);
    let cluster = Arc::new(start().await);
    let _operator = cluster.start_operator("operator", 18143, &[]).await;
    let (cluster_ip, _) = three_replicas(&cluster, "roll", DRAIN).await;
    let old: BTreeSet<String> = pods_of(&cluster, "roll")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    let stable = support::stable_revision(&cluster, "roll").await;
    let (terminated, watcher) = watch_terminations(&cluster, "roll");

    let client = churn(&cluster, &cluster_ip, 30, 75, Duration::from_millis(150));
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster
        .apps()
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"podAnnotations": {"example.com/release": "2"}}})),
        )
        .await
        .expect("updated");
    app_when(
        &cluster,
        "roll",
        "the new revision Ready",
        READY_TIMEOUT,
        |a| {
            is(a, "Ready", "True")
                && is(a, "Progressing", "False")
                && a.status
                    .as_ref()
                    .is_some_and(|s| s.stable_revision.as_deref() != Some(stable.as_str()))
        },
    )
    .await;
    let out = client.await.expect("the client ran");
    watcher.abort();
    let terminated = terminated.lock().unwrap().clone();
    println!(
        "through the ClusterIP, a rolling update of 3 replicas: {}",
        summary(&out)
    );

    assert_eq!(
        terminated.keys().cloned().collect::<BTreeSet<_>>(),
        old,
        "every old pod went, no new one"
    );
    check_churn(&out, DRAIN, &terminated);
    let moved = out.runs.iter().filter(|r| r.end == "not-found").count();
    assert!(moved >= 30, "every session started on an old pod: {moved}");
}
