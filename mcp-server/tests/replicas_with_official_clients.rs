//! Three replicas behind a round-robin "balancer" inside the official TypeScript and Python
//! clients: every HTTP request goes to the next replica, so most land on one that does not own
//! the session and are forwarded. No session may ever be reported as not found.

mod common;

use common::{Replicas, run_client};
use serde_json::Value;

const KEY: [u8; 32] = [42; 32];
const FORWARDED: &str = r#"mcp_server_session_routing_total{outcome="forwarded"}"#;

fn assert_every_call_answered(out: &Value, sessions: u64, calls: u64) {
    assert_eq!(out["failures"], serde_json::json!([]), "{out}");
    assert_eq!(out["answered"], sessions * calls, "{out}");
    assert_eq!(out["slept"], sessions, "{out}");
    let progress = out["progress"].as_array().expect("progress per session");
    assert!(
        progress.iter().all(|n| n.as_u64().unwrap_or(0) >= 2),
        "every sleep reports progress through whichever replica relays it: {out}"
    );
    assert_eq!(out["replicasUsed"], 3, "{out}");
}

fn forwards(replicas: &Replicas) -> f64 {
    replicas.servers.iter().map(|s| s.metric(FORWARDED)).sum()
}

/// Runs `client` (runtime and script arguments before the replica URLs) with `sessions` x
/// `calls` against three fresh replicas, and checks that most requests were forwarded.
fn spread_over_three_replicas(test: &str, client: &[&str], path: &str, sessions: u64, calls: u64) {
    let replicas = Replicas::start(test, 3, KEY, &[]);
    let (runtime, script) = client.split_first().expect("a runtime");
    let urls = replicas.urls(path);
    let (sessions_arg, calls_arg) = (sessions.to_string(), calls.to_string());
    let mut args = script.to_vec();
    args.extend([urls.as_str(), &sessions_arg, &calls_arg]);
    let out = run_client(runtime, &args);
    assert_every_call_answered(&out, sessions, calls);
    let forwarded = forwards(&replicas);
    assert!(
        forwarded >= (sessions * calls / 2) as f64,
        "only {forwarded} forwards"
    );
}

#[test]
fn typescript_sessions_spread_over_replicas_are_all_served() {
    spread_over_three_replicas(
        "replicas-ts",
        &["node", "ts_replicas.cjs", "streamable"],
        "/mcp",
        12,
        8,
    );
}

#[test]
fn typescript_legacy_sse_posts_reach_the_replica_holding_the_stream() {
    spread_over_three_replicas(
        "replicas-ts-sse",
        &["node", "ts_replicas.cjs", "sse"],
        "/sse",
        6,
        5,
    );
}

#[test]
fn python_sessions_spread_over_replicas_are_all_served() {
    spread_over_three_replicas("replicas-py", &["python", "py_replicas.py"], "/mcp", 10, 8);
}
