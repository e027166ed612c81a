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

#[test]
fn typescript_sessions_spread_over_replicas_are_all_served() {
    let replicas = Replicas::start("replicas-ts", 3, KEY, &[]);
    let out = run_client(
        "node",
        &[
            "ts_replicas.cjs",
            "streamable",
            &replicas.urls("/mcp"),
            "12",
            "8",
        ],
    );
    assert_every_call_answered(&out, 12, 8);
    assert!(
        forwards(&replicas) >= 12.0 * 8.0 / 2.0,
        "{}",
        forwards(&replicas)
    );
}

#[test]
fn typescript_legacy_sse_posts_reach_the_replica_holding_the_stream() {
    let replicas = Replicas::start("replicas-ts-sse", 3, KEY, &[]);
    let out = run_client(
        "node",
        &["ts_replicas.cjs", "sse", &replicas.urls("/sse"), "6", "5"],
    );
    assert_every_call_answered(&out, 6, 5);
    assert!(
        forwards(&replicas) >= 6.0 * 5.0 / 2.0,
        "{}",
        forwards(&replicas)
    );
}

#[test]
fn python_sessions_spread_over_replicas_are_all_served() {
    let replicas = Replicas::start("replicas-py", 3, KEY, &[]);
    let out = run_client(
        "python",
        &["py_replicas.py", &replicas.urls("/mcp"), "10", "8"],
    );
    assert_every_call_answered(&out, 10, 8);
    assert!(
        forwards(&replicas) >= 10.0 * 8.0 / 2.0,
        "{}",
        forwards(&replicas)
    );
}
