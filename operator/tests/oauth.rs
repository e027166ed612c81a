//! OAuth 2.1 for an McpApp on the real control plane, with a real authorization server (Ory
//! Hydra, started inside the environment where pods and the operator reach it): the operator
//! renders `auth.oauth` as the companion's settings, its handshake gets a token with the
//! client-credentials grant from the client in a Secret, and the status says that auth is on.
//! The official TypeScript SDK client, knowing only `status.url` and its own client, finds
//! Hydra from the 401 and calls tools through the Service; a token without a tool's scope is
//! refused that tool and does not see it in `tools/list`. A wrong client secret fails the
//! handshakes with the authorization server's answer, and the app recovers when the Secret is
//! fixed. Specs the companion cannot enforce are refused by the API server.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use mcp_testenv::hydra::{Client, Hydra, Settings};
use mcp_testenv::wait::until;
use serde_json::{Value, json};
use support::{Cluster, READY_TIMEOUT, Side, TIMEOUT, app_when, cluster_ip, is};

const APP: &str = "guarded";
/// The in-cluster URL of the app: its `status.url`, the resource tokens are asked for.
const RESOURCE: &str = "http://guarded.default.svc/mcp";
/// Hydra on the node's address, which pods and the operator reach.
const HYDRA_PUBLIC: &str = "10.244.0.1:4444";
const HYDRA_ADMIN: &str = "10.244.0.1:4445";
const ISSUER: &str = "http://10.244.0.1:4444/";
const PROBE_SECRET: &str = "guarded-probe-client";
/// Every request needs `mcp`; the `add` tool needs `math.add` besides.
const MCP: &str = "mcp";
const ADD: &str = "math.add";

async fn start_hydra(cluster: &Cluster) -> Hydra {
    let settings = Settings::new(
        HYDRA_PUBLIC.parse().unwrap(),
        HYDRA_ADMIN.parse().unwrap(),
        ISSUER,
    );
    Hydra::start_in(&cluster.env, "hydra", settings)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn probe_secret(cluster: &Cluster, client: &Client, secret: &str) {
    let secrets: Api<Secret> = Api::default_namespaced(cluster.client.clone());
    let body: Secret = support::from(json!({
        "metadata": {"name": PROBE_SECRET},
        "stringData": {"client-id": client.id, "client-secret": secret},
    }));
    secrets
        .patch(
            PROBE_SECRET,
            &PatchParams::apply("oauth-test").force(),
            &Patch::Apply(body),
        )
        .await
        .expect("probe client Secret applied");
}

fn spec() -> Value {
    json!({
        "auth": {"oauth": {
            "issuer": ISSUER,
            "requiredScopes": [MCP],
            "toolScopes": [{"tool": "add", "scopes": [ADD]}],
        }},
        "probe": {
            "periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 2,
            "clientCredentials": {
                "secretName": PROBE_SECRET,
                "scopes": [MCP, ADD],
                // Hydra takes the audience from its own parameter, not RFC 8707's resource.
                "audience": RESOURCE,
            },
        },
        "rollout": {"drainSeconds": 0},
    })
}

/// One JSON-RPC POST to the app's Service with `token`, in `session` if given.
async fn post(
    cluster: &Cluster,
    service: SocketAddr,
    token: &str,
    session: Option<&str>,
    body: &Value,
) -> mcp_testenv::http::Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    if let Some(id) = session {
        headers.extend([
            ("mcp-session-id", id),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
    }
    let stream = cluster
        .env
        .connect(service)
        .await
        .expect("the Service answers");
    mcp_testenv::http::request(
        stream,
        "guarded.default.svc",
        "POST",
        "/mcp",
        &headers,
        &body.to_string(),
    )
    .await
    .expect("an answer")
}

/// The tool names of a `tools/list` answer, sent as JSON or as one event of a stream.
fn tool_names(body: &str) -> Vec<String> {
    let json = body
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(body);
    let answer: Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {body}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_app_behind_a_real_authorization_server_admits_tokens_and_its_handshake_gets_one() {
    let cluster = Cluster::start().await;
    let hydra = start_hydra(&cluster).await;
    let probe_client = hydra
        .create_client(&[RESOURCE], &[MCP, ADD])
        .await
        .expect("probe client");
    let user = hydra
        .create_client(&[RESOURCE], &[MCP, ADD])
        .await
        .expect("user client");
    let reader = hydra
        .create_client(&[RESOURCE], &[MCP])
        .await
        .expect("reader client");
    probe_secret(&cluster, &probe_client, &probe_client.secret).await;
    let _operator = cluster.start_operator("operator", 18480, &[]).await;

    // Specs the companion could not enforce are refused with a message that says why.
    let unenforced = cluster
        .apply_app(json!({"metadata": {"name": "unguarded"}, "spec": {
            "image": "example.com/own:1", "session": {"frontDoor": false},
            "auth": {"oauth": {"issuer": ISSUER}},
            "probe": {"clientCredentials": {"secretName": PROBE_SECRET}},
        }}))
        .await
        .expect_err("an own image without the front door cannot be guarded");
    assert!(
        unenforced
            .to_string()
            .contains("auth.oauth is enforced by the companion"),
        "{unenforced}"
    );
    let no_client = cluster
        .apply_app(json!({"metadata": {"name": "unguarded"}, "spec": {
            "auth": {"oauth": {"issuer": ISSUER}},
        }}))
        .await
        .expect_err("a handshake without a token cannot pass");
    assert!(
        no_client
            .to_string()
            .contains("auth.oauth needs probe.clientCredentials"),
        "{no_client}"
    );
    let bad_tool = cluster
        .apply_app(json!({"metadata": {"name": "unguarded"}, "spec": {
            "auth": {"oauth": {"issuer": ISSUER, "toolScopes": [{"tool": "a=b", "scopes": ["x"]}]}},
            "probe": {"clientCredentials": {"secretName": PROBE_SECRET}},
        }}))
        .await
        .expect_err("a tool name with the companion's separator");
    assert!(bad_tool.to_string().contains("toolScopes"), "{bad_tool}");

    // The handshake authenticates with the probe client's token, and the status says so.
    cluster
        .apply_app(json!({"metadata": {"name": APP}, "spec": spec()}))
        .await
        .expect("app applies");
    let app = app_when(&cluster, APP, "Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "True")
    })
    .await;
    let status = app.status.expect("status");
    let auth = status.auth.expect("status.auth");
    assert_eq!(auth.mode, "OAuth");
    assert_eq!(auth.issuer.as_deref(), Some(ISSUER));
    assert_eq!(auth.resource.as_deref(), Some(RESOURCE));
    assert_eq!(auth.handshake.as_deref(), Some("ClientCredentials"));
    assert_eq!(status.url.as_deref(), Some(RESOURCE));
    let tools = status.server.expect("server info").tool_names;
    assert!(
        tools.contains(&"add".to_owned()),
        "the probe may call add: {tools:?}"
    );

    // The official TypeScript client: only the URL and its client; discovery from the 401.
    // The Service carries traffic once kube-proxy has the endpoint: a request without a token
    // is then refused by the app itself.
    let service = cluster_ip(&cluster, APP).await;
    until("the Service answers", TIMEOUT, || async {
        match cluster.env.connect(service).await {
            Ok(stream) => {
                let r = mcp_testenv::http::request(stream, "guarded", "POST", "/mcp", &[], "{}")
                    .await
                    .map_err(|e| e.to_string())?;
                (r.status == 401)
                    .then_some(())
                    .ok_or(format!("HTTP {}", r.status))
            }
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let args = [
        support::official_client_script("ts_oauth.cjs")
            .display()
            .to_string(),
        RESOURCE.into(),
        user.id.clone(),
        user.secret.clone(),
        format!("{MCP} {ADD}"),
    ];
    let out = support::run_official_client(
        &cluster,
        Side::Cluster,
        "node",
        &args,
        Duration::from_secs(60),
    )
    .await;
    let requests: Vec<&str> = out["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        requests
            .first()
            .is_some_and(|r| r.starts_with("POST") && r.ends_with(" 401")),
        "the first request is refused: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/.well-known/oauth-protected-resource")),
        "the client read the resource metadata: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST http://10.244.0.1:4444/oauth2/token 200")),
        "the client got its token from Hydra: {requests:?}"
    );
    let iss = out["tokenClaims"]["iss"].as_str().unwrap_or_default();
    assert_eq!(iss.trim_end_matches('/'), ISSUER.trim_end_matches('/'));
    assert_eq!(out["echo"], "hello through hydra");
    assert_eq!(out["add"], "42");

    // A token without `math.add` is refused that tool, with the scope it needs.
    let token = hydra
        .token(&reader, &[MCP], &[RESOURCE])
        .await
        .expect("reader token");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "oauth-test", "version": "1"}}});
    let opened = post(&cluster, service, &token, None, &init).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let session = opened
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    // Its tools/list leaves `add` out; the probe's (both scopes) listed it.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let listed = post(&cluster, service, &token, Some(&session), &list).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let names = tool_names(&listed.body);
    assert!(
        names.contains(&"echo".to_owned()) && !names.contains(&"add".to_owned()),
        "{names:?}"
    );
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let refused = post(&cluster, service, &token, Some(&session), &call).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let challenge = refused
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains(ADD),
        "{challenge}"
    );
    let without_token = post(&cluster, service, "", None, &init).await;
    assert_eq!(without_token.status, 401);

    // A wrong client secret: the handshakes fail with Hydra's answer, the app is not Ready.
    probe_secret(&cluster, &probe_client, "not-the-secret").await;
    let failing = app_when(&cluster, APP, "not Ready", READY_TIMEOUT, |a| {
        is(a, "Ready", "False")
    })
    .await;
    let message = support::condition(&failing, "Ready")
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.contains("probe.clientCredentials") && message.contains("invalid_client"),
        "{message}"
    );
    // Fixed, it recovers without anything else done.
    probe_secret(&cluster, &probe_client, &probe_client.secret).await;
    app_when(&cluster, APP, "Ready again", READY_TIMEOUT, |a| {
        is(a, "Ready", "True")
    })
    .await;

    // Deleting the Secret is a failure that names it.
    let secrets: Api<Secret> = Api::default_namespaced(cluster.client.clone());
    secrets
        .delete(PROBE_SECRET, &Default::default())
        .await
        .expect("Secret deleted");
    let missing = app_when(
        &cluster,
        APP,
        "not Ready without the client",
        READY_TIMEOUT,
        |a| is(a, "Ready", "False"),
    )
    .await;
    let message = support::condition(&missing, "Ready")
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(message.contains(PROBE_SECRET), "{message}");
}
