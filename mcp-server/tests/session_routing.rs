//! Session-owner routing between replicas on loopback: several `mcp-server` processes sharing a
//! session key file, each advertising its own address. A request for a session may reach any
//! replica and is forwarded to the owner; ids that do not verify never cause a connection.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{
    Replicas, Reply, Server, http, open, post_mcp_headers, read_until, sse_events,
    write_session_keys,
};
use mcp_server::transport::routing::session_id::{self, Key};

const V: &str = "2025-11-25";
const KEY: [u8; 32] = [7; 32];
const NEXT_KEY: [u8; 32] = [8; 32];
const FORWARDED: &str = r#"mcp_server_session_routing_total{outcome="forwarded"}"#;
const REJECTED: &str = r#"mcp_server_session_routing_total{outcome="rejected_id"}"#;

fn echo(server: &Server, session: &str, message: &str) -> Reply {
    server.post_mcp(
        &[("Mcp-Session-Id", session), ("MCP-Protocol-Version", V)],
        &format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{message}"}}}}}}"#
        ),
    )
}

fn assert_echoed(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["result"]["content"][0]["text"],
        message,
        "{}",
        reply.body
    );
}

/// The headers of a GET on `session`'s stream, plus `extra`.
fn stream_headers<'a>(session: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", session),
        ("MCP-Protocol-Version", V),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// Waits past the key file's check interval, so a replaced file is seen by the next request.
fn let_keys_reload() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn a_session_is_served_through_every_replica_and_ended_through_any() {
    let replicas = Replicas::start("routing-basic", 3, KEY, &[]);
    let [a, b, c] = &replicas.servers[..] else {
        unreachable!()
    };
    let session = a.initialize(V);
    for (i, replica) in [a, b, c, b, c].into_iter().enumerate() {
        assert_echoed(
            &echo(replica, &session, &format!("call {i}")),
            &format!("call {i}"),
        );
    }
    assert_eq!(a.metric(FORWARDED), 0.0, "the owner serves its own");
    assert_eq!(b.metric(FORWARDED), 2.0);
    assert_eq!(c.metric(FORWARDED), 2.0);
    let ended = c.request(
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", &session), ("MCP-Protocol-Version", V)],
        "",
    );
    assert_eq!(ended.status, 204);
    assert_eq!(echo(b, &session, "after").status, 404);
    assert_eq!(echo(a, &session, "after").status, 404);
    // Requests naming no session are served where they land.
    let fresh = b.initialize(V);
    assert_echoed(&echo(b, &fresh, "local"), "local");
}

#[test]
fn a_stream_answer_is_relayed_as_it_comes_and_resumed_through_another_replica() {
    let replicas = Replicas::start("routing-resume", 3, KEY, &["--response-mode", "sse"]);
    let [a, b, c] = &replicas.servers[..] else {
        unreachable!()
    };
    let session = a.initialize(V);
    let body = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"sleep","arguments":{"seconds":1},"_meta":{"progressToken":"p"}}}"#;
    let headers = post_mcp_headers(&[("Mcp-Session-Id", &session), ("MCP-Protocol-Version", V)]);
    let mut stream = open(&b.addr, "POST", "/mcp", &headers, body);
    // A progress event arrives through B while the call still runs: nothing is buffered.
    let first = read_until(&mut stream, |seen| seen.contains("notifications/progress"));
    assert!(first.contains("notifications/progress"), "{first}");
    assert!(
        !first.contains("slept 1 seconds"),
        "progress came only with the answer: {first}"
    );
    drop(stream);
    let first_id = first
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .next_back()
        .expect("an event id before the break");
    let last_seen = first_id.to_string();
    let headers = stream_headers(&session, &[("Last-Event-ID", &last_seen)]);
    let resumed = http(&c.addr, "GET", "/mcp", &headers, "");
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let events = sse_events(&resumed.body);
    assert!(
        events
            .iter()
            .filter_map(|(id, _)| id.as_deref()?.parse::<u64>().ok())
            .all(|id| id > first_id)
    );
    let last = &events.last().expect("the rest of the stream").1;
    assert_eq!(last["id"], 4);
    assert_eq!(last["result"]["content"][0]["text"], "slept 1 seconds");
}

#[test]
fn the_get_stream_stays_open_through_a_forwarding_replica() {
    let replicas = Replicas::start("routing-get", 2, KEY, &["--keep-alive", "1"]);
    let [a, b] = &replicas.servers[..] else {
        unreachable!()
    };
    let session = a.initialize(V);
    let mut stream = open(&b.addr, "GET", "/mcp", &stream_headers(&session, &[]), "");
    let seen = read_until(&mut stream, |seen| seen.matches("\n:").count() >= 2);
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase().contains("text/event-stream"),
        "{seen}"
    );
    assert!(
        seen.matches("\n:").count() >= 2,
        "keep-alives relayed: {seen:?}"
    );
}

#[test]
fn ids_that_do_not_verify_get_404_without_any_connection() {
    let replicas = Replicas::start("routing-forged", 1, KEY, &[]);
    let replica = &replicas.servers[0];
    let genuine = replica.initialize(V);
    // Where a forged id points: the test watches it for connections.
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let target = trap.local_addr().unwrap();
    let local = "00112233445566778899aabbccddeeff";
    let other_key = session_id::sign(&Key::new(&[9; 32]).unwrap(), target, local);
    let genuine_for_trap = session_id::sign(&Key::new(&KEY).unwrap(), target, local);
    let (signed, tag) = genuine_for_trap.rsplit_once('.').unwrap();
    let bad_tag = format!("{signed}.{}", "A".repeat(tag.len()));
    let mut flipped = genuine.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let oversized = format!("{genuine}{}", "A".repeat(200));
    let forged = [
        other_key.as_str(),
        bad_tag.as_str(),
        flipped.as_str(),
        oversized.as_str(),
        "m1.fooé.bar.baz",
        "0123456789abcdef0123456789abcdef",
    ];
    for id in forged {
        assert_eq!(echo(replica, id, "x").status, 404, "{id}");
    }
    let legacy = replica.request(
        "POST",
        &format!("/messages?sessionId={other_key}"),
        &[("Content-Type", "application/json")],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(legacy.status, 404);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        trap.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "a forged id made the replica connect"
    );
    assert_eq!(replica.metric(REJECTED), forged.len() as f64 + 1.0);
    assert_echoed(&echo(replica, &genuine, "still fine"), "still fine");
}

#[test]
fn a_forwarded_request_is_never_forwarded_again() {
    let replicas = Replicas::start("routing-marker", 2, KEY, &[]);
    let [a, b] = &replicas.servers[..] else {
        unreachable!()
    };
    let session = a.initialize(V);
    let marked = |server: &Server| {
        server.post_mcp(
            &[
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", V),
                ("Mcp-Session-Forwarded", "1"),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        )
    };
    // A client setting the marker itself only loses the forwarding.
    assert_eq!(marked(b).status, 404);
    assert_eq!(
        b.metric(r#"mcp_server_session_routing_total{outcome="already_forwarded"}"#),
        1.0
    );
    assert_eq!(marked(a).status, 200);
}

#[test]
fn unauthenticated_requests_are_refused_before_forwarding() {
    let tokens = common::token_file("routing-auth", "secret\n");
    let tokens = tokens.to_string_lossy();
    let replicas = Replicas::start("routing-auth", 2, KEY, &["--auth-token-file", &tokens]);
    let [a, b] = &replicas.servers[..] else {
        unreachable!()
    };
    let auth = [("Authorization", "Bearer secret")];
    let init = a.post_mcp(
        &auth,
        &format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{V}","capabilities":{{}},"clientInfo":{{"name":"raw","version":"1"}}}}}}"#
        ),
    );
    let session = init.header("mcp-session-id").expect("a session").to_owned();
    let ping = |headers: &[(&str, &str)]| {
        let mut all = vec![
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", V),
        ];
        all.extend_from_slice(headers);
        b.post_mcp(&all, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
    };
    assert_eq!(ping(&[]).status, 401);
    assert_eq!(ping(&[("Authorization", "Bearer wrong")]).status, 401);
    assert_eq!(b.metric(FORWARDED), 0.0);
    // The token travels on, and the owner accepts it again.
    assert_eq!(ping(&auth).status, 200);
    assert_eq!(b.metric(FORWARDED), 1.0);
}

#[test]
fn rotated_keys_keep_old_sessions_until_the_old_key_is_removed() {
    let replicas = Replicas::start("routing-rotation", 2, KEY, &[]);
    let [a, b] = &replicas.servers[..] else {
        unreachable!()
    };
    let old = a.initialize(V);
    // Step 1: the new key first, the old one kept below it.
    write_session_keys(&replicas.key_file, &[NEXT_KEY, KEY]);
    let_keys_reload();
    assert_echoed(&echo(b, &old, "old, through b"), "old, through b");
    let new = a.initialize(V);
    let (old_key, new_key) = (Key::new(&KEY).unwrap(), Key::new(&NEXT_KEY).unwrap());
    assert!(session_id::verify([&new_key], new.as_bytes()).is_some());
    assert!(session_id::verify([&old_key], new.as_bytes()).is_none());
    assert_echoed(&echo(b, &new, "new, through b"), "new, through b");
    // Step 2: the old key removed: its ids no longer verify anywhere.
    write_session_keys(&replicas.key_file, &[NEXT_KEY]);
    let_keys_reload();
    assert_eq!(echo(b, &old, "x").status, 404);
    assert_eq!(echo(a, &old, "x").status, 404);
    assert_echoed(&echo(b, &new, "new still"), "new still");
    // A broken key file keeps the last good keys.
    std::fs::write(replicas.key_file.with_extension("next"), "not a key\n").unwrap();
    std::fs::rename(replicas.key_file.with_extension("next"), &replicas.key_file).unwrap();
    let_keys_reload();
    assert_echoed(&echo(b, &new, "after a bad file"), "after a bad file");
}

#[test]
fn sessions_of_a_killed_owner_get_404_quickly_and_a_new_session_works() {
    let mut replicas = Replicas::start("routing-killed", 2, KEY, &[]);
    let session = replicas.servers[0].initialize(V);
    assert_echoed(&echo(&replicas.servers[1], &session, "before"), "before");
    drop(replicas.servers.remove(0));
    let b = &replicas.servers[0];
    let started = Instant::now();
    assert_eq!(echo(b, &session, "after").status, 404);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let get = http(&b.addr, "GET", "/mcp", &stream_headers(&session, &[]), "");
    assert_eq!(get.status, 404);
    assert_eq!(
        b.metric(r#"mcp_server_session_routing_total{outcome="connect_failed"}"#),
        2.0
    );
    let fresh = b.initialize(V);
    assert_echoed(&echo(b, &fresh, "fresh"), "fresh");
}

#[test]
fn a_draining_owner_serves_its_sessions_through_other_replicas_until_the_drain_ends() {
    let key_dir = Replicas::start("routing-drain", 1, KEY, &[]);
    let b = &key_dir.servers[0];
    let mut a = Replicas::replica(&key_dir.key_file, &["--drain-seconds", "3"]);
    let session = a.initialize(V);
    a.terminate();
    let drain_began = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // Not ready, no new sessions, but its sessions still work, on new connections too; every
    // answer asks its client to close the connection, so clients move to other replicas.
    let readyz = a.request("GET", "/readyz", &[], "");
    assert_eq!(readyz.status, 503);
    assert_eq!(readyz.header("connection"), Some("close"));
    let own = echo(&a, &session, "on the owner");
    assert_echoed(&own, "on the owner");
    assert_eq!(own.header("connection"), Some("close"));
    for i in 0..4 {
        assert_echoed(
            &echo(b, &session, &format!("draining {i}")),
            &format!("draining {i}"),
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(drain_began.elapsed() < Duration::from_secs(3));
    let status = a
        .wait_exit(Duration::from_secs(6))
        .expect("exits after the drain");
    assert!(status.success(), "{status}");
    assert!(drain_began.elapsed() >= Duration::from_millis(2900));
    assert_eq!(echo(b, &session, "gone").status, 404);
}

#[test]
fn a_draining_owner_without_sessions_exits_at_once() {
    let replicas = Replicas::start("routing-drain-empty", 1, KEY, &["--drain-seconds", "30"]);
    let mut a = replicas.servers.into_iter().next().unwrap();
    a.terminate();
    assert!(a.wait_exit(Duration::from_secs(3)).is_some());
}

#[test]
fn a_key_file_without_an_advertise_address_refuses_to_start() {
    let dir = std::env::temp_dir().join(format!("mcp-server-routing-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys");
    write_session_keys(&keys, &[KEY]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-server"))
        .args(["--listen", "127.0.0.1:0", "--session-key-file"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--advertise-address"), "{stderr}");
}

#[test]
fn an_owner_that_hangs_up_or_never_accepts_costs_a_bounded_time_and_is_counted() {
    let replicas = Replicas::start("routing-unreachable", 1, KEY, &[]);
    let replica = &replicas.servers[0];
    let key = Key::new(&KEY).unwrap();
    let local = "00112233445566778899aabbccddeeff";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();

    // Accepts, then closes before answering.
    let rude = TcpListener::bind("127.0.0.1:0").unwrap();
    let rude_addr = rude.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in rude.incoming() {
            drop(stream);
        }
    });
    assert_eq!(
        echo(replica, &session_id::sign(&key, rude_addr, local), "x").status,
        404
    );
    assert_eq!(
        replica.metric(r#"mcp_server_session_routing_total{outcome="broken"}"#),
        1.0
    );

    // Never accepts, with its accept queue full: new connection attempts go unanswered.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let deaf = socket.listen(0).unwrap();
    let deaf_addr = deaf.local_addr().unwrap();
    let _queued: Vec<_> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&deaf_addr, Duration::from_millis(300)).ok()
        })
        .collect();
    let started = Instant::now();
    assert_eq!(
        echo(replica, &session_id::sign(&key, deaf_addr, local), "x").status,
        404
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(
        replica.metric(r#"mcp_server_session_routing_total{outcome="connect_timeout"}"#),
        1.0
    );
}

#[test]
fn bridged_sessions_are_routed_too_and_bodies_arrive_byte_for_byte() {
    let script = common::clients_dir().join("raw_echo_server.py");
    let bridge = [
        "bridge",
        "--",
        "python3",
        script.to_str().expect("utf-8 path"),
    ];
    let replicas = Replicas::start("routing-bridge", 2, KEY, &bridge);
    let [a, b] = &replicas.servers[..] else {
        unreachable!()
    };
    a.wait_ready(Duration::from_secs(20));
    let session = a.initialize(V);
    let sent = r#"{"jsonrpc":"2.0","id":"v-1","method":"vendor/frobnicate","params":{"big":123456789012345678901234567890,"float":1.50},"x-extension":[true,null]}"#;
    let reply = b.post_mcp(
        &[("Mcp-Session-Id", &session), ("MCP-Protocol-Version", V)],
        sent,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["result"]["received"], sent);
    assert_eq!(b.metric(FORWARDED), 1.0);
}
