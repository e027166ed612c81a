//! Property tests: no input makes the message parser or the HTTP layer panic, and every refusal
//! is a well-formed answer (the right status family, a JSON-RPC error body when it is JSON).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use mcp_server::backend::Backend;
use mcp_server::backend::builtin::Builtin;
use mcp_server::config::ResponseMode;
use mcp_server::message::jsonrpc::{INVALID_REQUEST, PARSE_ERROR};
use mcp_server::message::parse_body;
use mcp_server::metrics::Metrics;
use mcp_server::transport::guard::{AllowList, OriginPolicy};
use mcp_server::transport::history::HistoryLimits;
use mcp_server::transport::sessions::Sessions;
use mcp_server::transport::{AppState, Lifecycle, Settings, router};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON-RPC-shaped messages with plausible and implausible parts.
fn rpc_like() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        Just("initialize".to_owned()),
        Just("ping".to_owned()),
        Just("tools/list".to_owned()),
        Just("tools/call".to_owned()),
        Just("server/discover".to_owned()),
        Just("resources/read".to_owned()),
        Just("prompts/get".to_owned()),
        "[a-z/]{0,16}",
    ];
    let id = prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z0-9]{0,6}".prop_map(Value::String),
        arbitrary_json()
    ];
    let tool = prop_oneof![Just("echo"), Just("add"), Just("time"), Just("nope")];
    (
        prop::option::of(method),
        prop::option::of(id),
        prop::option::of(arbitrary_json()),
        tool,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(method, id, args, tool, stateless_meta, good_version)| {
            let mut m = serde_json::Map::new();
            m.insert(
                "jsonrpc".into(),
                json!(if good_version { "2.0" } else { "1.0" }),
            );
            if let Some(method) = method {
                m.insert("method".into(), json!(method));
            }
            if let Some(id) = id {
                m.insert("id".into(), id);
            }
            let mut params =
                json!({ "name": tool, "arguments": args, "protocolVersion": "2025-06-18" });
            if stateless_meta {
                params["_meta"] = json!({
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                });
            }
            m.insert("params".into(), params);
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_accepts_or_rejects_any_bytes_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = parse_body(&bytes) {
            prop_assert!(e.code == PARSE_ERROR || e.code == INVALID_REQUEST);
        }
    }

    #[test]
    fn any_json_value_is_a_message_or_an_invalid_request(value in prop_oneof![arbitrary_json(), rpc_like()]) {
        match parse_body(value.to_string().as_bytes()) {
            Ok(payload) => prop_assert!(!payload.messages().is_empty()),
            Err(e) => prop_assert_eq!(e.code, INVALID_REQUEST),
        }
    }
}

fn app() -> axum::Router {
    let metrics = Arc::new(Metrics::new());
    let state = AppState {
        backend: Backend::Builtin(Arc::new(Builtin::new())),
        sessions: Sessions::new(
            64,
            Duration::from_secs(60),
            HistoryLimits::events(16),
            Arc::clone(&metrics),
        ),
        metrics,
        settings: Arc::new(Settings {
            keep_alive: Duration::from_secs(15),
            response_mode: ResponseMode::Auto,
            max_body_bytes: 4096,
            body_read_timeout: Duration::from_secs(5),
        }),
        lifecycle: Arc::new(Lifecycle::default()),
    };
    let origins = OriginPolicy {
        origins: AllowList::loopback(),
        hosts: AllowList::Any,
    };
    router(state, origins, Default::default(), None)
}

#[derive(Debug, Clone)]
struct Probe {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn probe() -> impl Strategy<Value = Probe> {
    let method = prop_oneof![
        Just("POST"),
        Just("POST"),
        Just("DELETE"),
        Just("PUT"),
        Just("PATCH")
    ];
    let path = prop_oneof![
        Just("/mcp"),
        Just("/messages"),
        Just("/messages?sessionId=x"),
        Just("/nope")
    ];
    let header = prop_oneof![
        (
            Just("content-type"),
            prop_oneof![Just("application/json".to_owned()), "[ -~]{0,20}"]
        ),
        (
            Just("accept"),
            prop_oneof![
                Just("application/json, text/event-stream".to_owned()),
                "[ -~]{0,20}"
            ]
        ),
        (Just("mcp-session-id"), "[ -~]{0,40}"),
        (
            Just("mcp-protocol-version"),
            prop_oneof![
                Just("2026-07-28".to_owned()),
                Just("2025-06-18".to_owned()),
                "[ -~]{0,12}"
            ]
        ),
        (
            Just("mcp-method"),
            prop_oneof![Just("tools/call".to_owned()), "[ -~]{0,12}"]
        ),
        (
            Just("mcp-name"),
            prop_oneof![
                Just("echo".to_owned()),
                "=\\?base64\\?[A-Za-z0-9+/=]{0,8}\\?="
            ]
        ),
        (Just("last-event-id"), "[ -~]{0,8}"),
        (Just("origin"), "[ -~]{0,24}"),
    ];
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        rpc_like().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(rpc_like(), 0..3)
            .prop_map(|v| Value::Array(v).to_string().into_bytes()),
        Just(vec![b'x'; 5000]),
    ];
    (method, path, prop::collection::vec(header, 0..6), body).prop_map(
        |(method, path, headers, body)| Probe {
            method,
            path,
            headers,
            body,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn the_http_layer_answers_any_request_sensibly(p in probe()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (status, content_type, body) = runtime.block_on(async {
            let mut request = Request::builder().method(p.method).uri(p.path);
            for (name, value) in &p.headers {
                request = request.header(*name, value.as_str());
            }
            let request = match request.body(Body::from(p.body.clone())) {
                Ok(r) => r,
                // Header values the HTTP library itself refuses never reach the server.
                Err(_) => return (StatusCode::BAD_REQUEST, String::new(), Vec::new()),
            };
            let response = tokio::time::timeout(Duration::from_secs(5), app().oneshot(request))
                .await
                .expect("answered in time")
                .expect("infallible");
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = tokio::time::timeout(Duration::from_secs(5), to_bytes(response.into_body(), 1 << 20))
                .await
                .expect("body complete in time")
                .unwrap_or_default();
            (status, content_type, body.to_vec())
        });
        prop_assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE, "{status}");
        if status.is_client_error() && content_type.starts_with("application/json") {
            let v: Value = serde_json::from_slice(&body).expect("JSON error body");
            prop_assert_eq!(&v["jsonrpc"], "2.0");
            prop_assert!(v["error"]["code"].is_i64(), "{v}");
        }
    }
}

/// One step a client or the backend takes in a session.
#[derive(Debug, Clone)]
enum Step {
    /// A POST opens a stream for request `id`.
    Open(u8),
    /// The backend sends `bytes` of progress for request `id`, or its answer.
    Progress(u8, u16),
    Answer(u8),
    /// A GET resumes from an event id: one the session issued (by index), or any number.
    ResumeSeen(u16),
    ResumeForged(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..8).prop_map(Step::Open),
        (0u8..8, 0u16..3000).prop_map(|(id, b)| Step::Progress(id, b)),
        (0u8..8).prop_map(Step::Answer),
        any::<u16>().prop_map(Step::ResumeSeen),
        any::<u64>().prop_map(Step::ResumeForged),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever happens, a session's history stays within its budgets, and a resume either is
    /// refused or replays only later events of the stream it names.
    #[test]
    fn replay_history_stays_bounded_and_resumes_never_skip(steps in prop::collection::vec(step(), 1..200)) {
        use mcp_server::backend::Outbound;
        use mcp_server::message::Message;
        use mcp_server::transport::history::HistoryBudget;
        use mcp_server::transport::session::{Session, TransportKind};

        let total = HistoryBudget::new(16 * 1024);
        let session = Session::new(
            "p".into(),
            TransportKind::Streamable,
            tokio_util::sync::CancellationToken::new(),
            HistoryLimits { events: 32, bytes: 8 * 1024, total: Arc::clone(&total) },
        );
        let id_of = |n: u8| Message::parse(&format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"x"}}"#)).unwrap().id().unwrap().clone();
        let mut seen: Vec<u64> = Vec::new();
        let mut receivers = Vec::new();
        for step in steps {
            match step {
                Step::Open(n) => {
                    if let Ok(stream) = session.open_request_stream(&[id_of(n)]) {
                        receivers.push(stream.events);
                    }
                }
                Step::Progress(n, bytes) => session.route(Outbound {
                    message: Message::parse(&format!(
                        r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"p":"{}"}}}}"#,
                        "x".repeat(bytes.into())
                    )).unwrap(),
                    related: Some(id_of(n)),
                }),
                Step::Answer(n) => session.route(Outbound::unrelated(
                    Message::parse(&format!(r#"{{"jsonrpc":"2.0","id":{n},"result":{{}}}}"#)).unwrap(),
                )),
                Step::ResumeSeen(i) if !seen.is_empty() => {
                    let last = seen[usize::from(i) % seen.len()];
                    if let Ok(mut rx) = session.resume_stream(last) {
                        while let Ok(event) = rx.try_recv() {
                            prop_assert!(event.id > last && event.id >> 32 == last >> 32);
                        }
                    }
                }
                Step::ResumeSeen(_) => {}
                Step::ResumeForged(id) => {
                    let _ = session.resume_stream(id);
                }
            }
            for rx in &mut receivers {
                while let Ok(event) = rx.try_recv() {
                    seen.push(event.id);
                }
            }
            prop_assert!(session.history_bytes() <= 8 * 1024);
            prop_assert!(total.used() <= 16 * 1024);
        }
    }
}
