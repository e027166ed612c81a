//! The product's promises about live traffic, checked through the real data path: clients reach
//! apps at `http://NAME.localhost:PORT/mcp` through the ingress controller (Traefik, configured
//! only by what the operator writes), which balances over the EndpointSlices the rollout gate
//! fills. Stickiness, long SSE streams, rollbacks and drains are measured there, not at pod IPs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use mcp_testenv::mcp::EventStream;
use mcp_testenv::wait::until;
use serde_json::json;
use support::{
    Cluster, READY_TIMEOUT, app_when, condition, exposed_app, pods_of, rolled_back_from, set_image,
    stable_revision,
};

async fn start() -> Cluster {
    Cluster::start_with(|env| support::with_scripted_servers(env).ingress(0)).await
}

#[tokio::test]
async fn a_client_that_keeps_cookies_stays_on_one_pod_through_the_ingress() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18201, &[]).await;
    let endpoint = exposed_app(
        &cluster,
        "sticky",
        json!({"replicas": 3, "session": {"affinity": "Cookie"}}),
    )
    .await;

    let mut session = endpoint.initialize(true).await.expect("initialize");
    let cookie = session
        .cookie
        .clone()
        .expect("Traefik sets its sticky cookie");
    let mut pods: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let pod = endpoint
            .call_tool(&mut session, "whoami", json!({}))
            .await
            .expect("every call of the session reaches its pod");
        *pods.entry(pod).or_default() += 1;
    }
    println!("with the sticky cookie ({cookie}), 30 calls on new connections: {pods:?}");
    assert_eq!(pods.len(), 1, "one pod for the whole session: {pods:?}");

    // The same app for a client without cookies: Traefik balances every request.
    let mut spread: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let pod = endpoint
            .call_tool_stateless("whoami", json!({}))
            .await
            .expect("a stateless call");
        *spread.entry(pod).or_default() += 1;
    }
    println!("without cookies, 30 stateless calls: {spread:?}");
    assert_eq!(spread.len(), 3, "spread over the three pods: {spread:?}");
}

#[tokio::test]
async fn an_app_attached_to_the_gateway_answers_through_its_httproute() {
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18205, &[]).await;
    let gateway = mcp_testenv::ingress::GATEWAY;
    let endpoint = exposed_app(
        &cluster,
        "routed",
        json!({"replicas": 2, "gateway": {
            "parentRefs": [{"name": gateway, "namespace": "traefik"}],
            "hostnames": ["routed.localhost"],
        }}),
    )
    .await;
    // Both replicas already answered through the route (exposed_app waits for that).
    let answer = endpoint
        .call_tool_stateless("echo", json!({"message": "through the Gateway"}))
        .await
        .expect("a stateless call through the HTTPRoute");
    assert_eq!(answer, "through the Gateway");
}

/// Reads `stream` until `deadline`: (keep-alive comments, everything else that arrived), or an
/// error if the stream ended or broke before.
async fn idle_until(
    stream: &mut EventStream,
    deadline: Instant,
) -> Result<(usize, String), String> {
    let (mut keep_alives, mut events) = (0, String::new());
    loop {
        let chunk = match tokio::time::timeout_at(deadline.into(), stream.next()).await {
            Err(_) => return Ok((keep_alives, events)),
            Ok(None) => return Err(format!("ended early after {keep_alives} keep-alives")),
            Ok(Some(Err(e))) => return Err(format!("broke after {keep_alives} keep-alives: {e}")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        for line in chunk.lines() {
            if line.starts_with(':') {
                keep_alives += 1;
            } else if !line.is_empty() {
                events += line;
                events.push('\n');
            }
        }
    }
}

/// Reads `stream` until a chunk contains `needle` (within `timeout`).
async fn until_event(
    stream: &mut EventStream,
    needle: &str,
    timeout: Duration,
) -> Result<String, String> {
    let mut seen = String::new();
    tokio::time::timeout(timeout, async {
        while let Some(chunk) = stream.next().await {
            seen += &chunk?;
            if seen.contains(needle) {
                return Ok(seen.clone());
            }
        }
        Err(format!("the stream ended without {needle:?}: {seen:?}"))
    })
    .await
    .map_err(|_| format!("no {needle:?} within {timeout:?}"))?
}

#[tokio::test]
async fn sse_streams_idle_for_three_minutes_through_the_ingress_keep_flowing() {
    const IDLE: Duration = Duration::from_secs(185);
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18202, &[]).await;
    let endpoint = exposed_app(&cluster, "streams", json!({"replicas": 1})).await;

    let started = Instant::now();
    let deadline = started + IDLE;
    // Streamable HTTP: a session's GET stream, with nothing to send for three minutes.
    let get_stream = async {
        let session = endpoint.initialize(false).await?;
        let mut stream = endpoint.open_stream(&session).await?;
        let (keep_alives, events) = idle_until(&mut stream, deadline).await?;
        assert_eq!(events, "", "no event on an idle stream");
        // The session's end closes its stream cleanly.
        assert_eq!(endpoint.close(&session).await?, 204);
        let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
        Ok::<_, String>(keep_alives)
    };
    // Streamable HTTP: a call that answers after three minutes, on its own SSE response.
    let post_stream = async {
        let mut session = endpoint.initialize(false).await?;
        let answer = endpoint
            .call_tool(&mut session, "sleep", json!({"seconds": IDLE.as_secs()}))
            .await?;
        Ok::<_, String>(answer)
    };
    // Legacy HTTP+SSE: three idle minutes, then a call whose answer travels on the stream.
    let legacy_stream = async {
        let (mut stream, messages) = endpoint.open_legacy("/sse").await?;
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "traffic-test", "version": "0"}}});
        assert_eq!(endpoint.post_legacy(&messages, &initialize).await?, 202);
        until_event(&mut stream, "\"id\":1", Duration::from_secs(10)).await?;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(endpoint.post_legacy(&messages, &initialized).await?, 202);
        let (keep_alives, events) = idle_until(&mut stream, deadline).await?;
        assert_eq!(events, "", "no event on an idle stream");
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "still here"}}});
        assert_eq!(endpoint.post_legacy(&messages, &call).await?, 202);
        let event = until_event(&mut stream, "still here", Duration::from_secs(10)).await?;
        Ok::<_, String>((keep_alives, event))
    };
    let (get, post, legacy) = tokio::join!(get_stream, post_stream, legacy_stream);

    let get = get.expect("the GET stream stays open");
    println!("GET stream: {get} keep-alives in {IDLE:?}, then closed cleanly by DELETE");
    let post = post.expect("the long call's stream stays open");
    println!(
        "POST stream: answered {post:?} after {:?}",
        started.elapsed()
    );
    assert_eq!(post, format!("slept {} seconds", IDLE.as_secs()));
    let (legacy_keep_alives, event) = legacy.expect("the legacy stream stays open");
    println!("legacy /sse stream: {legacy_keep_alives} keep-alives, then the call's answer");
    assert!(event.contains("\"id\":2"), "{event}");
    // One keep-alive every 15 s by default: 12 in three minutes.
    for (stream, n) in [("GET", get), ("legacy", legacy_keep_alives)] {
        assert!(n >= 10, "{stream} stream: only {n} keep-alives in {IDLE:?}");
    }
}

#[tokio::test]
async fn a_broken_version_is_rolled_back_while_clients_calling_through_the_ingress_see_no_failure()
{
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18203, &[]).await;
    let endpoint = exposed_app(&cluster, "svc", json!({"replicas": 2})).await;
    let stable = stable_revision(&cluster, "svc").await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client_loop = {
        let (stop, endpoint) = (stop.clone(), endpoint.clone());
        async move {
            let (mut calls, mut failures) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                calls += 1;
                let message = format!("call-{calls}");
                match endpoint
                    .call_tool_stateless("echo", json!({"message": message}))
                    .await
                {
                    Ok(text) if text == message => {}
                    other => failures.push(format!("{message}: {other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (calls, failures)
        }
    };
    let scenario = async {
        let updated = Instant::now();
        set_image(&cluster, "svc", support::BROKEN).await;
        let aborted = app_when(&cluster, "svc", "the rollout aborted", READY_TIMEOUT, |a| {
            condition(a, "Degraded").is_some_and(|c| c.reason == "RolloutAborted")
        })
        .await;
        println!("broken update → RolloutAborted: {:?}", updated.elapsed());
        rolled_back_from(&cluster, "svc", support::BROKEN).await;
        println!("broken update → rolled back: {:?}", updated.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        aborted
    };
    let (aborted, (calls, failures)) = tokio::join!(scenario, client_loop);

    println!(
        "echo calls through the ingress during the broken rollout: {calls}, failed: {}",
        failures.len()
    );
    assert!(calls > 50, "the client ran: {calls} calls");
    assert!(failures.is_empty(), "no call may fail: {failures:?}");
    let degraded = condition(&aborted, "Degraded").unwrap();
    assert!(
        degraded
            .message
            .contains(&format!("rolled back to {stable}")),
        "{}",
        degraded.message
    );
}

#[tokio::test]
async fn scale_down_drains_streams_of_removed_pods_and_sends_them_no_new_requests() {
    const DRAIN: Duration = Duration::from_secs(8);
    let cluster = start().await;
    let _operator = cluster.start_operator("operator", 18204, &[]).await;
    let endpoint = exposed_app(
        &cluster,
        "drain",
        json!({"replicas": 3, "session": {"affinity": "Cookie"},
               "rollout": {"drainSeconds": DRAIN.as_secs()}}),
    )
    .await;

    // One session (pinned by its cookie) on each pod, each with its GET stream open.
    let mut streams: BTreeMap<String, EventStream> = BTreeMap::new();
    for _ in 0..30 {
        let mut session = endpoint.initialize(true).await.expect("initialize");
        let pod = endpoint
            .call_tool(&mut session, "whoami", json!({}))
            .await
            .expect("whoami");
        if let std::collections::btree_map::Entry::Vacant(slot) = streams.entry(pod) {
            slot.insert(endpoint.open_stream(&session).await.expect("GET stream"));
        }
        if streams.len() == 3 {
            break;
        }
    }
    assert_eq!(streams.len(), 3, "a session on every pod");

    // Scale to one while a client without cookies keeps calling.
    let answered: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client_loop = {
        let (answered, stop, endpoint) = (answered.clone(), stop.clone(), endpoint.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(pod) = endpoint.call_tool_stateless("whoami", json!({})).await {
                    answered.lock().unwrap().push((Instant::now(), pod));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    cluster
        .apps()
        .patch(
            "drain",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scaled");
    let removed: BTreeSet<String> = until("two pods terminating", READY_TIMEOUT, || async {
        let terminating: BTreeSet<String> = pods_of(&cluster, "drain")
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
            .map(|p| p.name_any())
            .collect();
        if terminating.len() == 2 {
            Ok(terminating)
        } else {
            Err(terminating)
        }
    })
    .await;
    let left_endpoints = Instant::now();

    // The removed pods' streams stay open through the drain, then end cleanly; the surviving
    // pod's stream goes on.
    let mut ends = Vec::new();
    for (pod, stream) in streams.iter_mut().filter(|(pod, _)| removed.contains(*pod)) {
        let end = loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("{pod}'s stream broke instead of ending: {e}"),
                None => break left_endpoints.elapsed(),
            }
        };
        println!("stream on removed pod {pod}: ended cleanly {end:?} after it left the endpoints");
        ends.push(end);
    }
    for end in &ends {
        assert!(
            *end >= DRAIN - Duration::from_secs(1),
            "a removed pod's stream stays open through the {DRAIN:?} drain: {end:?}"
        );
        assert!(*end < DRAIN + Duration::from_secs(15), "then ends: {end:?}");
    }
    let (survivor, stream) = streams
        .iter_mut()
        .find(|(pod, _)| !removed.contains(*pod))
        .expect("one pod stays");
    let more = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
    assert!(
        !matches!(more, Ok(None | Some(Err(_)))),
        "the surviving pod {survivor}'s stream stays open: {more:?}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    client_loop.await.unwrap();

    // No request reached a removed pod once the ingress had seen it leave the endpoints.
    let answered = answered.lock().unwrap().clone();
    let last_on_removed = answered
        .iter()
        .filter(|(_, pod)| removed.contains(pod))
        .map(|(at, _)| at.saturating_duration_since(left_endpoints))
        .max();
    let after = answered
        .iter()
        .filter(|(at, _)| *at > left_endpoints)
        .count();
    println!(
        "{after} calls after the scale-down; the last one answered by a removed pod came \
         {last_on_removed:?} after it left the endpoints (the ingress's update delay)"
    );
    assert!(after > 20, "the client kept calling: {after}");
    assert!(
        last_on_removed.is_none_or(|t| t < DRAIN / 2),
        "removed pods get no new requests once the ingress caught up: {last_on_removed:?}"
    );
}
