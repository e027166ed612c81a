//! Proxy mode, driven by the official TypeScript and Python clients: through `mcp-server proxy`
//! to another `mcp-server` as a Streamable HTTP upstream and as a legacy HTTP+SSE upstream, in
//! built-in mode and bridging an SDK server (for server-to-client requests); plus readiness and
//! an upstream restarted under a session, over raw HTTP.

mod common;

use std::time::Duration;

use common::{
    Server, assert_bridged_exchange, assert_builtin_exchange, bridge_to_sdk_server, free_address,
    proxy_to, run_client, run_client_pausing, wait_until,
};

#[test]
fn typescript_client_reaches_a_streamable_upstream_through_the_proxy() {
    let upstream = Server::start(&[]);
    let proxy = proxy_to(&upstream.url("/mcp"), &[]);
    let out = run_client(
        "node",
        &["ts_client.cjs", "streamable", &proxy.url("/mcp"), "builtin"],
    );
    assert_builtin_exchange(&out, "hello from typescript", "42");
    assert_eq!(out["serverInfo"]["name"], "mcp-server");
    assert_eq!(out["protocolVersion"], "2025-11-25");
    let metrics = proxy.request("GET", "/metrics", &[], "").body;
    assert!(
        metrics.contains(r#"mcp_server_upstream_requests_total{method="POST"}"#),
        "{metrics}"
    );
}

#[test]
fn python_client_reaches_a_legacy_upstream_through_the_proxy() {
    let upstream = Server::start(&[]);
    // `auto` finds out that /sse is not a Streamable HTTP endpoint.
    let proxy = proxy_to(&upstream.url("/sse"), &[]);
    let out = run_client(
        "python",
        &["py_client.py", "streamable", &proxy.url("/mcp"), "builtin"],
    );
    assert_builtin_exchange(&out, "hello from python", "3.75");
}

#[test]
fn legacy_clients_reach_both_kinds_of_upstream_through_the_proxy() {
    let upstream = Server::start(&[]);
    let to_streamable = proxy_to(&upstream.url("/mcp"), &[]);
    let py = run_client(
        "python",
        &["py_client.py", "sse", &to_streamable.url("/sse"), "builtin"],
    );
    assert_builtin_exchange(&py, "hello from python", "3.75");
    let to_legacy = proxy_to(&upstream.url("/sse"), &["--upstream-transport", "sse"]);
    let ts = run_client(
        "node",
        &["ts_client.cjs", "sse", &to_legacy.url("/sse"), "builtin"],
    );
    assert_builtin_exchange(&ts, "hello from typescript", "42");
}

#[test]
fn server_requests_and_progress_cross_the_proxy_to_a_streamable_upstream() {
    let upstream = bridge_to_sdk_server();
    let proxy = proxy_to(&upstream.url("/mcp"), &[]);
    let out = run_client(
        "node",
        &["ts_client.cjs", "streamable", &proxy.url("/mcp"), "bridge"],
    );
    assert_bridged_exchange(&out, "through the bridge", "teal");
    assert_eq!(out["serverInfo"]["name"], "bridged-ts-server");
}

#[test]
fn server_requests_and_progress_cross_the_proxy_to_a_legacy_upstream() {
    let upstream = bridge_to_sdk_server();
    let proxy = proxy_to(&upstream.url("/sse"), &[]);
    let out = run_client(
        "python",
        &["py_client.py", "streamable", &proxy.url("/mcp"), "bridge"],
    );
    assert_bridged_exchange(&out, "python through the bridge", "amber");
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

#[test]
fn a_restarted_upstream_ends_the_client_session_and_a_new_one_works() {
    let address = free_address();
    let upstream = Server::start(&["--listen", &address]);
    let proxy = proxy_to(&upstream.url("/mcp"), &[]);
    let session = proxy.initialize("2025-11-25");
    let listed = proxy.post_mcp(&[("Mcp-Session-Id", &session)], TOOLS_LIST);
    assert_eq!(listed.status, 200, "{}", listed.body);

    drop(upstream);
    let _restarted = Server::start(&["--listen", &address]);
    // The upstream forgot the session: the proxy's client session ends with it.
    let ended = wait_until(Duration::from_secs(20), || {
        let reply = proxy.post_mcp(&[("Mcp-Session-Id", &session)], TOOLS_LIST);
        reply.status == 404
    });
    assert!(ended, "the client must be told to start over (404)");

    let fresh = proxy.initialize("2025-11-25");
    let listed = proxy.post_mcp(&[("Mcp-Session-Id", &fresh)], TOOLS_LIST);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("\"echo\""), "{}", listed.body);
}

#[test]
fn the_proxy_is_ready_only_once_its_upstream_answers() {
    let address = free_address();
    let proxy = Server::start(&["proxy", "--upstream", &format!("http://{address}/mcp")]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(proxy.request("GET", "/readyz", &[], "").status, 503);
    assert_eq!(proxy.request("GET", "/healthz", &[], "").status, 200);
    let _upstream = Server::start(&["--listen", &address]);
    proxy.wait_ready(Duration::from_secs(20));
    let session = proxy.initialize("2025-06-18");
    let listed = proxy.post_mcp(&[("Mcp-Session-Id", &session)], TOOLS_LIST);
    assert_eq!(listed.status, 200, "{}", listed.body);
}

#[test]
fn python_client_speaks_stateless_2026_07_28_through_the_proxy() {
    let upstream = Server::start(&[]);
    let proxy = proxy_to(&upstream.url("/mcp"), &[]);
    let out = run_client(
        "python",
        &[
            "py_client.py",
            "streamable",
            &proxy.url("/mcp"),
            "stateless",
        ],
    );
    assert_eq!(out["supportedVersions"], serde_json::json!(["2026-07-28"]));
    assert_builtin_exchange(&out, "hello from python", "3.75");
}

/// A server's count of open sessions, from its metrics.
fn sessions_active(server: &Server) -> String {
    let metrics = server.request("GET", "/metrics", &[], "").body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("mcp_server_sessions_active "))
        .unwrap_or_else(|| panic!("no session gauge: {metrics}"))
        .to_owned()
}

#[test]
fn ending_the_client_session_ends_the_upstream_one() {
    let upstream = Server::start(&[]);
    let proxy = proxy_to(&upstream.url("/mcp"), &[]);
    let session = proxy.initialize("2025-11-25");
    assert_eq!(sessions_active(&upstream), "1");
    let deleted = proxy.request("DELETE", "/mcp", &[("Mcp-Session-Id", &session)], "");
    assert_eq!(deleted.status, 204);
    assert!(
        wait_until(Duration::from_secs(10), || sessions_active(&upstream)
            == "0"),
        "the upstream session was left open"
    );
}

#[test]
fn stateless_requests_to_a_legacy_upstream_are_told_which_revisions_the_proxy_speaks() {
    let upstream = Server::start(&[]);
    let proxy = proxy_to(&upstream.url("/sse"), &[]);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let reply = proxy.post_mcp(
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "server/discover"),
        ],
        body,
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], -32022);
}

#[test]
fn typescript_client_is_told_to_start_over_when_the_upstream_restarts() {
    let address = free_address();
    let mut upstream = Some(Server::start(&["--listen", &address]));
    let proxy = proxy_to(&format!("http://{address}/mcp"), &[]);
    let mut restarted = None;
    let out = run_client_pausing(
        "node",
        &["ts_client.cjs", "streamable", &proxy.url("/mcp"), "restart"],
        || {
            drop(upstream.take());
            restarted = Some(Server::start(&["--listen", &address]));
            // The proxy notices on its own (the upstream's stream breaks and cannot resume).
            assert!(
                wait_until(Duration::from_secs(20), || sessions_active(&proxy) == "0"),
                "the proxy kept a session the upstream forgot"
            );
        },
    );
    assert_eq!(out["oldSessionError"]["code"], 404, "{out}");
    assert_eq!(out["toolsBefore"], out["toolsAfter"], "{out}");
    assert!(restarted.is_some());
}
