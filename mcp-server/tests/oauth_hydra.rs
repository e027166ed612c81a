//! The OAuth resource server behind a real authorization server, Ory Hydra (built by
//! `tests/controlplane/build.sh`): the official TypeScript SDK client, given only the server's
//! URL and a client id and secret, finds Hydra from the 401, gets a token with the
//! client-credentials grant and calls tools. Then what must be refused, each with its status and
//! challenge: Hydra's own tokens that expired, name another audience, come from a second Hydra, or
//! lack a tool's scope, and forgeries made from Hydra's tokens and keys. Last, Hydra rotates its
//! signing key and the running server accepts the new key's tokens and still the old key's.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::issuer::{SigningKey, now};
use common::oauth::{
    INITIALIZE, assert_insufficient_scope, assert_refused, hs256, jwt_parts, rsa_public_pem,
    unsigned,
};
use common::{Reply, Server, free_address, run_client};
use mcp_testenv::hydra::{Client, Hydra, Settings};
use serde_json::{Value, json};

/// The scope every request needs, and the one the `add` tool needs besides.
const MCP: &str = "mcp";
const ADD: &str = "math.add";

/// Hydras for one test, on a runtime of their own (the test itself is synchronous).
struct Hydras {
    runtime: tokio::runtime::Runtime,
    binary: PathBuf,
    logs: PathBuf,
}

impl Hydras {
    fn new(test: &str) -> Self {
        let binary = mcp_testenv::binaries::hydra().unwrap_or_else(|e| panic!("{e}"));
        let logs = std::env::temp_dir().join(format!("mcp-server-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&logs).expect("log dir");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        Hydras {
            runtime,
            binary,
            logs,
        }
    }

    /// A Hydra on free loopback ports, with the issuer `http://127.0.0.1:PORT/`.
    fn start(&self, name: &str) -> Hydra {
        let address = || free_address().parse().expect("an address");
        let settings = Settings::local(address(), address());
        let log = self.logs.join(format!("{name}.log"));
        self.block_on(Hydra::start(&self.binary, settings, &log))
    }

    /// Runs a Hydra call, failing the test with its error.
    fn block_on<T>(&self, call: impl Future<Output = Result<T, mcp_testenv::Error>>) -> T {
        self.runtime
            .block_on(call)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// `POST /mcp` with `token`, in `session` if given.
fn call(server: &Server, token: &str, session: Option<&str>, body: &str) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(id) = session {
        headers.extend([
            ("mcp-session-id", id),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
    }
    server.post_mcp(&headers, body)
}

/// A session opened with `token`: its id.
fn open_session(server: &Server, token: &str) -> String {
    let reply = call(server, token, None, INITIALIZE);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply
        .header("mcp-session-id")
        .expect("a session")
        .to_owned();
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(call(server, token, Some(&id), note).status, 202);
    id
}

fn tool_call(name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}})
    .to_string()
}

/// The JWK of `jwks` with id `kid`.
fn key_named<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .unwrap_or_else(|| panic!("Hydra publishes no key {kid}: {jwks}"))
}

fn kid(token: &str) -> String {
    jwt_parts(token).0["kid"]
        .as_str()
        .expect("Hydra names its key")
        .to_owned()
}

#[test]
fn the_typescript_sdk_gets_a_token_from_hydra_and_what_hydra_did_not_grant_is_refused() {
    let hydras = Hydras::new("oauth-hydra");
    let hydra = hydras.start("hydra");
    let listen = free_address();
    let resource = format!("http://{listen}/mcp");
    let server = Server::start_listening(
        &listen,
        &[
            "--oauth-issuer",
            hydra.issuer(),
            "--oauth-resource",
            &resource,
            "--oauth-required-scopes",
            MCP,
            "--oauth-tool-scope",
            &format!("add={ADD}"),
            "--oauth-key-refetch-seconds",
            "1",
            "--oauth-clock-skew-seconds",
            "1",
        ],
    );
    let metadata_url = format!("http://{listen}/.well-known/oauth-protected-resource/mcp");
    let client = |audiences: &[&str], scopes: &[&str]| -> Client {
        hydras.block_on(hydra.create_client(audiences, scopes))
    };
    let token = |hydra: &Hydra, client: &Client, scopes: &[&str], audiences: &[&str]| -> String {
        hydras.block_on(hydra.token(client, scopes, audiences))
    };

    // The SDK client with the server's URL, a client id and secret, and its scope.
    let full = client(&[&resource], &[MCP, ADD]);
    let out = run_client(
        "node",
        &[
            "ts_oauth.cjs",
            &resource,
            &full.id,
            &full.secret,
            &format!("{MCP} {ADD}"),
        ],
    );
    let requests: Vec<&str> = out["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let issuer = hydra.issuer().trim_end_matches('/');
    let expected = [
        format!("POST {resource} 401"),
        format!("GET {metadata_url} 200"),
        format!("GET {issuer}/.well-known/openid-configuration 200"),
        format!("POST {issuer}/oauth2/token 200"),
        format!("POST {resource} 200"),
    ];
    let mut seen = requests.iter();
    for step in &expected {
        assert!(
            seen.any(|r| r == step),
            "the SDK did not {step} in this order: {requests:#?}"
        );
    }
    assert_eq!(
        out["tokenParams"],
        json!(["audience", "grant_type", "resource", "scope"])
    );
    let claims = &out["tokenClaims"];
    assert_eq!(claims["iss"], hydra.issuer());
    assert_eq!(claims["aud"], json!([resource]));
    assert_eq!(claims["client_id"], full.id.as_str());
    assert_eq!(claims["scp"], json!([MCP, ADD]));
    assert_eq!(out["tokenHeader"]["alg"], "RS256");
    assert_eq!(
        out["tools"],
        json!(["add", "echo", "sleep", "time", "whoami"])
    );
    assert_eq!(out["echo"], "hello through hydra");
    assert_eq!(out["add"], "42");

    // A token that expires in 2 s: accepted at once, refused once it expired (skew 1 s).
    let short = client(&[&resource], &[MCP]);
    hydras.block_on(hydra.set_token_lifespan(&short, Duration::from_secs(2)));
    let expiring = token(&hydra, &short, &[MCP], &[&resource]);
    let exp = jwt_parts(&expiring).1["exp"].as_u64().expect("exp");
    assert!(exp <= now() + 2, "Hydra kept the lifespan: exp {exp}");
    assert_eq!(call(&server, &expiring, None, INITIALIZE).status, 200);

    // Valid at Hydra, for this issuer, but not for this server.
    let elsewhere = "https://other.example/mcp";
    let other = client(&[elsewhere], &[MCP]);
    let for_elsewhere = token(&hydra, &other, &[MCP], &[elsewhere]);
    let no_audience = token(&hydra, &full, &[MCP], &[]);
    assert_eq!(jwt_parts(&no_audience).1["aud"], json!([]));

    // A second Hydra, another issuer: its own keys first, then sharing the first one's keys, so
    // that its token's signature verifies and only the issuer gives it away.
    let second = hydras.start("second-hydra");
    let stranger = second_client_token(&hydras, &second, &resource);
    let keys = hydras.block_on(hydra.access_token_keys());
    hydras.block_on(second.set_access_token_keys(&keys));
    let impostor = second_client_token(&hydras, &second, &resource);
    let jwks = hydras.block_on(hydra.jwks());
    key_named(&jwks, &kid(&impostor));
    assert_eq!(jwt_parts(&impostor).1["iss"], second.issuer());

    // Forgeries from a real token: its claims re-signed with a key made here under a made-up
    // kid, and under Hydra's kid; unsigned; HS256 keyed with Hydra's public key (PEM and JWK);
    // a scope added to the payload with Hydra's signature kept.
    let genuine = token(&hydra, &full, &[MCP], &[&resource]);
    let (header, claims) = jwt_parts(&genuine);
    let hydra_kid = header["kid"].as_str().expect("kid").to_owned();
    let made_up = SigningKey::new("made-up-kid").sign(&claims);
    let borrowed_kid = SigningKey::new(&hydra_kid).sign(&claims);
    let public = key_named(&jwks, &hydra_kid);
    let pem = rsa_public_pem(public);
    // The PEM is Hydra's key indeed: Hydra's token verifies with it.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&resource]);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).expect("an RSA PEM");
    jsonwebtoken::decode::<Value>(&genuine, &key, &validation).expect("verifies with the PEM");
    let hs_pem = hs256(pem.as_bytes(), Some(&hydra_kid), &claims);
    let hs_jwk = hs256(public.to_string().as_bytes(), Some(&hydra_kid), &claims);
    let widened = {
        let mut more = claims.clone();
        more["scp"] = json!([MCP, ADD, "admin"]);
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload = base64_url(&more.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };

    // Wait out the expiring token's lifetime and the skew.
    while now() <= exp + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = [
        ("expired", expiring, "expired"),
        ("another audience", for_elsewhere, "another audience"),
        ("no audience requested", no_audience, "another audience"),
        ("a second Hydra's own key", stranger, "not among"),
        (
            "a second Hydra with the first one's key",
            impostor,
            "another issuer",
        ),
        ("made-up kid, key made here", made_up, "not among"),
        (
            "Hydra's kid, key made here",
            borrowed_kid,
            "does not fit its key",
        ),
        (
            "alg none",
            unsigned(&claims),
            "not a JWT signed with a known algorithm",
        ),
        (
            "HS256 keyed with Hydra's PEM",
            hs_pem,
            "HS256 is not accepted",
        ),
        (
            "HS256 keyed with Hydra's JWK",
            hs_jwk,
            "HS256 is not accepted",
        ),
        (
            "scope added to the payload",
            widened,
            "signature does not verify",
        ),
    ];
    for (case, token, why) in refused {
        assert_refused(
            &call(&server, &token, None, INITIALIZE),
            case,
            &metadata_url,
            why,
        );
    }

    // Tokens Hydra issued with fewer scopes: without `mcp` nothing passes; without `math.add`
    // the session works but `add` is refused, naming its scope.
    let add_only = client(&[&resource], &[ADD]);
    let add_only = token(&hydra, &add_only, &[ADD], &[&resource]);
    assert_insufficient_scope(&call(&server, &add_only, None, INITIALIZE), "no mcp", MCP);
    let narrow = client(&[&resource], &[MCP]);
    let narrow = token(&hydra, &narrow, &[MCP], &[&resource]);
    let session = open_session(&server, &narrow);
    let add = tool_call("add", json!({"a": 1, "b": 2}));
    let reply = call(&server, &narrow, Some(&session), &add);
    assert_insufficient_scope(&reply, "add without math.add", ADD);
    let echo = tool_call("echo", json!({"message": "narrow"}));
    assert_eq!(call(&server, &narrow, Some(&session), &echo).status, 200);

    // Hydra rotates its access-token key: the next token names the new key and passes without
    // a restart of the server (after the 1 s refetch floor); a token of the old key still passes
    // while Hydra still publishes that key.
    let before = token(&hydra, &full, &[MCP, ADD], &[&resource]);
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = hydras.block_on(hydra.rotate_access_token_key());
    let after = token(&hydra, &full, &[MCP, ADD], &[&resource]);
    assert_eq!(kid(&after), rotated);
    assert_ne!(kid(&before), rotated);
    let published = hydras.block_on(hydra.jwks());
    key_named(&published, &kid(&before));
    key_named(&published, &rotated);
    let session = open_session(&server, &after);
    let reply = call(&server, &after, Some(&session), &add);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("\"3\""), "{}", reply.body);
    assert_eq!(call(&server, &before, None, INITIALIZE).status, 200);
}

/// A token of a client of `hydra` for `resource` with the `mcp` scope.
fn second_client_token(hydras: &Hydras, hydra: &Hydra, resource: &str) -> String {
    let client = hydras.block_on(hydra.create_client(&[resource], &[MCP]));
    hydras.block_on(hydra.token(&client, &[MCP], &[resource]))
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
