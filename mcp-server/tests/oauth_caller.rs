//! What a verified caller changes, with tokens of the in-process issuer (`common::issuer`): the
//! tools it sees in `tools/list` (only those its scopes let it call), seen by the official
//! TypeScript and Python clients in built-in mode and through the proxy, in front of a real
//! `mcp-server` and of an upstream that pages its list over JSON and event streams; and who the
//! server behind the proxy is told called (`X-MCP-*` from the token, clients' copies removed, the
//! token itself only with `--oauth-pass-token`), also when a replica forwards the request.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::issuer::{Issuer, SigningKey, now};
use common::{MisbehavingUpstream, Replicas, Reply, Server, proxy_to, reply_messages, run_client};
use mcp_server::transport::routing::session_id::{self, Key};
use serde_json::{Value, json};

/// The resource the servers here protect (the audience of their tokens).
const RESOURCE: &str = "https://tools.example.com/mcp";
const V: &str = "2025-06-18";
/// The session key of the replicas here.
const KEY: [u8; 32] = [11; 32];
const FORWARDED: &str = r#"mcp_server_session_routing_total{outcome="forwarded"}"#;
/// Copies of the identity headers a client sends, hoping to be someone else.
const SPOOFED: [(&str, &str); 3] = [
    ("X-MCP-Subject", "admin"),
    ("x-mcp-scopes", "admin records:write"),
    ("X-Mcp-Client-Id", "trusted-client"),
];

/// The issuer and its one key.
struct Authority {
    issuer: Issuer,
    key: SigningKey,
}

impl Authority {
    fn start() -> Self {
        let issuer = Issuer::start();
        let key = SigningKey::new("k1");
        issuer.publish(&[&key]);
        Self { issuer, key }
    }

    /// A token for `sub` with `scope` (space-separated), plus `extra` claims.
    fn token(&self, sub: &str, scope: &str, extra: Value) -> String {
        let mut claims = json!({"iss": self.issuer.url, "aud": RESOURCE, "sub": sub,
            "scope": scope, "iat": now(), "exp": now() + 600});
        for (k, v) in extra.as_object().expect("claims") {
            claims[k] = v.clone();
        }
        self.key.sign(&claims)
    }

    /// The flags that make a server take this issuer's tokens (scope `mcp` required), each of
    /// `tool_scopes` (`TOOL=SCOPE`) guarding a tool.
    fn flags(&self, tool_scopes: &[&str]) -> Vec<String> {
        let mut flags: Vec<String> = [
            "--oauth-issuer",
            &self.issuer.url,
            "--oauth-resource",
            RESOURCE,
            "--oauth-required-scopes",
            "mcp",
        ]
        .map(str::to_owned)
        .to_vec();
        for tool in tool_scopes {
            flags.extend(["--oauth-tool-scope".to_owned(), (*tool).to_owned()]);
        }
        flags
    }
}

fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// A POST to `/mcp` with `token`, in `session` when given, plus `extra` headers.
fn post(
    server: &Server,
    token: &str,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(session) = session {
        headers.extend([("Mcp-Session-Id", session), ("MCP-Protocol-Version", V)]);
    }
    headers.extend_from_slice(extra);
    server.post_mcp(&headers, body)
}

/// Starts a session with `token`; its id.
fn initialize(server: &Server, token: &str) -> String {
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{V}","capabilities":{{}},"clientInfo":{{"name":"raw","version":"1"}}}}}}"#
    );
    let reply = post(server, token, None, &[], &init);
    assert_eq!(reply.status, 200, "initialize: {}", reply.body);
    let session = reply
        .header("mcp-session-id")
        .expect("a session")
        .to_owned();
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post(server, token, Some(&session), &[], note).status, 202);
    session
}

/// The answer to request `id` in a reply, JSON or event stream.
fn answer(reply: &Reply, id: u64) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply_messages(reply)
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no answer to {id}: {}", reply.body))
}

fn tools_list(id: u64, cursor: Option<&str>) -> String {
    let params = cursor.map_or(json!({}), |c| json!({"cursor": c}));
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}).to_string()
}

fn names(result: &Value) -> Vec<&str> {
    result["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("a tools list: {result}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect()
}

/// What an official client listed, over every page.
fn listed(
    runtime: &str,
    script: &str,
    kind: &str,
    url: &str,
    scenario: &str,
    token: &str,
) -> Value {
    run_client(runtime, &[script, kind, url, scenario, token])
}

fn sorted_tools(out: &Value) -> Vec<String> {
    let mut tools: Vec<String> = out["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools: {out}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tools.sort();
    tools
}

#[test]
fn official_clients_see_only_the_builtin_tools_their_token_may_call() {
    let authority = Authority::start();
    let flags = authority.flags(&["add=math.add", "sleep=time.wait"]);
    let server = Server::start(&strs(&flags));
    let narrow = authority.token("ada", "mcp", json!({}));
    let broad = authority.token("ada", "mcp math.add time.wait", json!({}));
    let (mcp, sse) = (server.url("/mcp"), server.url("/sse"));
    let callable = ["echo", "time", "whoami"];
    for (runtime, script, kind, url, scenario) in [
        ("node", "ts_client.cjs", "streamable", &mcp, "tools"),
        ("node", "ts_client.cjs", "sse", &sse, "tools"),
        ("python", "py_client.py", "streamable", &mcp, "tools"),
        ("python", "py_client.py", "sse", &sse, "tools"),
        (
            "python",
            "py_client.py",
            "streamable",
            &mcp,
            "stateless-tools",
        ),
    ] {
        let out = listed(runtime, script, kind, url, scenario, &narrow);
        assert_eq!(
            sorted_tools(&out),
            callable,
            "{script} {kind} {scenario}: {out}"
        );
    }
    let all = ["add", "echo", "sleep", "time", "whoami"];
    let out = listed("node", "ts_client.cjs", "streamable", &mcp, "tools", &broad);
    assert_eq!(sorted_tools(&out), all, "{out}");
    let out = listed(
        "python",
        "py_client.py",
        "streamable",
        &mcp,
        "stateless-tools",
        &broad,
    );
    assert_eq!(sorted_tools(&out), all, "{out}");

    // Over raw HTTP: a batch (2025-03-26 has them) screens its tools/list and nothing else.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let reply = post(&server, &narrow, None, &[], init);
    let session = reply
        .header("mcp-session-id")
        .expect("a session")
        .to_owned();
    let in_session = [("Mcp-Session-Id", session.as_str())];
    let batch = format!(
        r#"[{},{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hi"}}}}}}]"#,
        tools_list(1, None)
    );
    let reply = post(&server, &narrow, None, &in_session, &batch);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = reply.json();
    let of = |id: u64| {
        answers
            .as_array()
            .and_then(|a| a.iter().find(|m| m["id"] == id))
    };
    let mut seen = names(&of(1).expect("the list")["result"]);
    seen.sort_unstable();
    assert_eq!(seen, callable);
    let echoed = of(2).expect("the call");
    assert_eq!(echoed["result"]["content"][0]["text"], "hi");

    // Stateless: the list is this caller's, so no shared cache may keep it.
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let body =
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"_meta": meta}});
    let stateless = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/list"),
    ];
    for (token, expected) in [(&narrow, &callable[..]), (&broad, &all[..])] {
        let result = answer(
            &post(&server, token, None, &stateless, &body.to_string()),
            5,
        );
        let mut seen = names(&result["result"]);
        seen.sort_unstable();
        assert_eq!(seen, expected);
        assert_eq!(result["result"]["cacheScope"], "private", "{result}");
    }
}

#[test]
fn through_the_proxy_clients_see_only_the_upstream_tools_their_token_may_call() {
    let authority = Authority::start();
    let upstream = Server::start(&[]);
    let flags = authority.flags(&["add=math.add", "sleep=time.wait"]);
    let narrow = authority.token("ada", "mcp", json!({}));
    let callable = ["echo", "time", "whoami"];
    let to_streamable = proxy_to(&upstream.url("/mcp"), &strs(&flags));
    let url = to_streamable.url("/mcp");
    for (runtime, script, scenario) in [
        ("node", "ts_client.cjs", "tools"),
        ("python", "py_client.py", "stateless-tools"),
    ] {
        let out = listed(runtime, script, "streamable", &url, scenario, &narrow);
        assert_eq!(sorted_tools(&out), callable, "{script} {scenario}: {out}");
    }
    let to_legacy = proxy_to(&upstream.url("/sse"), &strs(&flags));
    let url = to_legacy.url("/mcp");
    let out = listed(
        "python",
        "py_client.py",
        "streamable",
        &url,
        "tools",
        &narrow,
    );
    assert_eq!(sorted_tools(&out), callable, "{out}");
}

#[test]
fn every_page_of_a_proxied_list_is_screened_json_and_stream_alike() {
    let authority = Authority::start();
    let upstream = MisbehavingUpstream::start();
    let flags = authority.flags(&["delete_record=records:write", "admin_reset=admin"]);
    let narrow = authority.token("ada", "mcp", json!({}));
    let broad = authority.token("ada", "mcp records:write admin", json!({}));
    // Page 1 (JSON) loses delete_record, page 2 (an event stream) comes back empty with its
    // cursor, page 3 is whole.
    let callable = json!(["echo", "headers", "hang"]);
    let all = json!(["echo", "delete_record", "admin_reset", "headers", "hang"]);
    let to_streamable = proxy_to(&upstream.url("/mcp"), &strs(&flags));
    let url = to_streamable.url("/mcp");
    for (runtime, script, token, expected) in [
        ("node", "ts_client.cjs", &narrow, &callable),
        ("python", "py_client.py", &narrow, &callable),
        ("node", "ts_client.cjs", &broad, &all),
    ] {
        let out = listed(runtime, script, "streamable", &url, "tools", token);
        assert_eq!(
            (&out["tools"], &out["pages"]),
            (expected, &json!(3)),
            "{script}: {out}"
        );
    }
    let mut legacy_flags = flags.clone();
    legacy_flags.extend(["--upstream-transport".to_owned(), "sse".to_owned()]);
    let to_legacy = proxy_to(&upstream.url("/sse"), &strs(&legacy_flags));
    let out = listed(
        "node",
        "ts_client.cjs",
        "streamable",
        &to_legacy.url("/mcp"),
        "tools",
        &narrow,
    );
    assert_eq!(
        (&out["tools"], &out["pages"]),
        (&callable, &json!(3)),
        "{out}"
    );

    // Raw: the empty page keeps its cursor; a malformed answer is withheld from a caller from
    // whom something must be hidden, and passes to one from whom nothing is.
    // A page of the list, asked for with `token` (each in a session of its own).
    let page = |token: &str, id: u64, cursor: &str| {
        let session = initialize(&to_streamable, token);
        let list = tools_list(id, Some(cursor));
        answer(&post(&to_streamable, token, Some(&session), &[], &list), id)
    };
    let empty = page(&narrow, 2, "2");
    assert_eq!(empty["result"], json!({"tools": [], "nextCursor": "3"}));
    let bad = page(&narrow, 3, "bad");
    assert_eq!(bad["error"]["code"], -32603, "{bad}");
    assert_eq!(bad["error"]["data"]["reason"], "invalid-tools-list");
    let bad = page(&broad, 4, "bad");
    assert!(bad["result"]["tools"].is_object(), "{bad}");
}

/// The headers the upstream saw on a `headers` call by `token` in `session`, which also sends
/// `extra` headers.
fn seen_upstream(proxy: &Server, token: &str, session: &str, extra: &[(&str, &str)]) -> Value {
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"headers","arguments":{}}}"#;
    let reply = post(proxy, token, Some(session), extra, call);
    let text = answer(&reply, 9)["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("headers as text: {}", reply.body))
        .to_owned();
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn the_upstream_learns_who_called_from_the_token_and_from_nothing_else() {
    let authority = Authority::start();
    let upstream = MisbehavingUpstream::start();
    let flags = authority.flags(&[]);
    // A subject that would end a header line and forge another, were it written as it is.
    let subject = "ada\u{1}\r\nX-Evil: 1 é%";
    let client = "c".repeat(256);
    let token = authority.token(subject, "mcp records:read", json!({"client_id": client}));
    let expected = |seen: &Value| {
        assert_eq!(
            seen["x-mcp-subject"], "ada%01%0D%0AX-Evil:%201%20%C3%A9%25",
            "{seen}"
        );
        assert_eq!(seen["x-mcp-scopes"], "mcp records:read", "{seen}");
        assert_eq!(seen["x-mcp-client-id"], client.as_str(), "{seen}");
        assert!(seen.get("x-evil").is_none(), "{seen}");
    };
    // Through a proxy to `path` (with `extra` flags): what the upstream saw.
    let through = |path: &str, extra: &[&str]| {
        let mut args = strs(&flags);
        args.extend_from_slice(extra);
        let proxy = proxy_to(&upstream.url(path), &args);
        let session = initialize(&proxy, &token);
        let seen = seen_upstream(&proxy, &token, &session, &SPOOFED);
        expected(&seen);
        (proxy, seen)
    };
    let (streamable, seen) = through("/mcp", &[]);
    assert!(seen.get("authorization").is_none(), "{seen}");
    let (_, seen) = through("/sse", &["--upstream-transport", "sse"]);
    assert!(seen.get("authorization").is_none(), "{seen}");
    // With --oauth-pass-token the token goes up as well.
    let (_, seen) = through("/mcp", &["--oauth-pass-token"]);
    assert_eq!(seen["authorization"], format!("Bearer {token}"));

    // A subject too long to pass whole is refused, not cut (two callers could become one).
    let long = authority.token(&"s".repeat(257), "mcp", json!({}));
    let reply = post(&streamable, &long, None, &[], "{}");
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(reply.body.contains("longer than 256"), "{}", reply.body);

    // Without OAuth nobody is named, and the client's copies go nowhere.
    let open = proxy_to(&upstream.url("/mcp"), &[]);
    let session = open.initialize(V);
    let seen = seen_upstream(&open, "unused", &session, &SPOOFED);
    for name in [
        "x-mcp-subject",
        "x-mcp-scopes",
        "x-mcp-client-id",
        "authorization",
    ] {
        assert!(seen.get(name).is_none(), "{name}: {seen}");
    }
}

#[test]
fn a_replica_forwards_the_token_and_the_owner_checks_and_names_the_caller() {
    let authority = Authority::start();
    let upstream = MisbehavingUpstream::start();
    let mut flags = authority.flags(&["delete_record=records:write"]);
    let upstream_url = upstream.url("/mcp");
    flags.push("--oauth-pass-token".to_owned());
    flags.extend(["proxy", "--upstream", &upstream_url].map(str::to_owned));
    let replicas = Replicas::start("oauth-caller", 2, KEY, &strs(&flags));
    let [owner, other] = &replicas.servers[..] else {
        unreachable!()
    };
    for replica in [owner, other] {
        replica.wait_ready(Duration::from_secs(30));
    }
    let token = authority.token("grace", "mcp", json!({}));
    let session = initialize(owner, &token);

    // Through the other replica: screened, and named after the token, by the owner.
    let page = answer(
        &post(
            other,
            &token,
            Some(&session),
            &SPOOFED,
            &tools_list(1, None),
        ),
        1,
    );
    assert_eq!(
        page["result"],
        json!({"tools": [{"name": "echo", "description": "the echo tool", "inputSchema": {"type": "object"}}], "nextCursor": "2"})
    );
    let seen = seen_upstream(other, &token, &session, &SPOOFED);
    assert_eq!(seen["x-mcp-subject"], "grace", "{seen}");
    assert_eq!(seen["x-mcp-scopes"], "mcp", "{seen}");
    assert_eq!(
        seen["authorization"],
        format!("Bearer {token}"),
        "the token crossed to the owner"
    );
    assert_eq!(other.metric(FORWARDED), 2.0);

    // A request without a token is refused where it lands, before any forwarding.
    let call = tools_list(3, None);
    let bare = other.post_mcp(
        &[("Mcp-Session-Id", &session), ("MCP-Protocol-Version", V)],
        &call,
    );
    assert_eq!(bare.status, 401);
    assert_eq!(other.metric(FORWARDED), 2.0);
}

#[test]
fn a_peer_replica_gets_the_token_but_never_the_clients_identity_headers() {
    let authority = Authority::start();
    let replicas = Replicas::start("oauth-peer", 1, KEY, &strs(&authority.flags(&[])));
    let replica = &replicas.servers[0];
    // A listener posing as the replica that owns a session: what a forward puts on the wire.
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = "00112233445566778899aabbccddeeff";
    let id = session_id::sign(&Key::new(&KEY).unwrap(), peer.local_addr().unwrap(), local);
    let received = std::thread::spawn(move || {
        let (stream, _) = peer.accept().expect("the replica forwards");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            if reader.read_line(&mut head).unwrap_or(0) == 0 {
                break;
            }
        }
        let answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        reader.get_mut().write_all(answer.as_bytes()).unwrap();
        head.to_ascii_lowercase()
    });
    let token = authority.token("ada", "mcp", json!({}));
    let reply = post(replica, &token, Some(&id), &SPOOFED, &tools_list(1, None));
    assert_eq!(reply.status, 404, "{}", reply.body);
    let head = received.join().unwrap();
    let bearer = format!("authorization: bearer {}", token.to_ascii_lowercase());
    assert!(
        head.contains(&bearer),
        "the owner checks the token itself: {head}"
    );
    assert!(head.contains("mcp-session-forwarded: 1"), "{head}");
    assert!(
        !head.contains("x-mcp-"),
        "a client's identity headers crossed to a peer: {head}"
    );
    assert_eq!(replica.metric(FORWARDED), 1.0);
}
