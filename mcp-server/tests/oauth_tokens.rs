//! The OAuth resource server against tokens a real signer made: an issuer in this process serves
//! RFC 8414 metadata and a JWKS of EC P-256 keys (made here), and signs tokens with them; the
//! real `mcp-server` binary checks them. Every refusal is asserted with its status and challenge,
//! including the forgeries a careless verifier accepts (`alg: none`, HS256 keyed with the public
//! key), and a key rotation is picked up without a restart.

mod common;

use std::time::Duration;

use common::issuer::{Issuer, SigningKey, now};
use common::oauth::{INITIALIZE, assert_insufficient_scope, assert_refused, hs256, unsigned};
use common::{Server, free_address};
use serde_json::{Value, json};

#[test]
fn tokens_are_checked_and_every_refusal_says_why_with_its_challenge() {
    let issuer = Issuer::start();
    let first = SigningKey::new("first");
    issuer.publish(&[&first]);
    let listen = free_address();
    let resource = format!("http://{listen}/mcp");
    let server = Server::start_listening(
        &listen,
        &[
            "--oauth-issuer",
            &issuer.url,
            "--oauth-resource",
            &resource,
            "--oauth-required-scopes",
            "mcp",
            "--oauth-tool-scope",
            "add=math.add",
            "--oauth-key-refetch-seconds",
            "1",
        ],
    );
    let metadata_url = format!("http://{listen}/.well-known/oauth-protected-resource/mcp");
    let claims = |extra: Value| {
        let mut c = json!({"iss": issuer.url, "aud": resource, "sub": "user-1",
            "scope": "mcp math.add", "iat": now(), "exp": now() + 300});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let call = |token: &str, body: &str| {
        let auth = format!("Bearer {token}");
        server.post_mcp(&[("authorization", auth.as_str())], body)
    };

    // No token: 401 pointing at the metadata, which names the issuer.
    let bare = server.post_mcp(&[], INITIALIZE);
    assert_eq!(bare.status, 401);
    let challenge = bare.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\""))
            && challenge.contains("scope=\"mcp\""),
        "{challenge}"
    );
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let metadata = server.request("GET", path, &[], "");
        assert_eq!(metadata.status, 200, "{path}");
        let metadata = metadata.json();
        assert_eq!(metadata["resource"], resource.as_str());
        assert_eq!(metadata["authorization_servers"], json!([issuer.url]));
        assert_eq!(metadata["scopes_supported"], json!(["math.add", "mcp"]));
    }

    // A good token passes.
    let good = first.sign(&claims(json!({})));
    assert_eq!(call(&good, INITIALIZE).status, 200);

    // Each bad token: 401 invalid_token, and the reason.
    let public_as_secret = hs256(first.public_pem.as_bytes(), None, &claims(json!({})));
    let unsigned = unsigned(&claims(json!({})));
    let stranger = SigningKey::new("stranger");
    let mut tampered = good.clone();
    tampered.insert_str(good.rfind('.').unwrap() - 2, "Ab");
    let refused = [
        (
            "expired",
            first.sign(&claims(json!({"exp": now() - 3600}))),
            "expired",
        ),
        (
            "not yet valid",
            first.sign(&claims(json!({"nbf": now() + 3600}))),
            "not valid yet",
        ),
        (
            "wrong audience",
            first.sign(&claims(json!({"aud": "https://other.example/mcp"}))),
            "another audience",
        ),
        (
            "wrong issuer",
            first.sign(&claims(json!({"iss": "https://evil.example"}))),
            "another issuer",
        ),
        (
            "unknown key",
            stranger.sign(&claims(json!({}))),
            "not among",
        ),
        (
            "alg none",
            unsigned,
            "not a JWT signed with a known algorithm",
        ),
        (
            "HS256 keyed with the public key",
            public_as_secret,
            "HS256 is not accepted",
        ),
        ("tampered payload", tampered, "token"),
        (
            "no subject",
            first.sign(
                &json!({"iss": issuer.url, "aud": resource, "exp": now() + 60, "scope": "mcp"}),
            ),
            "required claim",
        ),
        ("garbage", "not-a-token".to_owned(), "not a JWT"),
    ];
    for (case, token, why) in refused {
        assert_refused(&call(&token, INITIALIZE), case, &metadata_url, why);
    }

    // Valid, but without the required scope: 403 naming it.
    let narrow = first.sign(&claims(json!({"scope": "math.add"})));
    assert_insufficient_scope(&call(&narrow, INITIALIZE), "no mcp scope", "mcp");

    // A tool the token has no scope for: 403 naming the tool's scope; other tools pass.
    let no_add = first.sign(&claims(json!({"scope": "mcp"})));
    let session = {
        let reply = call(&no_add, INITIALIZE);
        assert_eq!(reply.status, 200);
        reply.header("mcp-session-id").unwrap().to_owned()
    };
    let in_session = |token: &str, body: &str| {
        let auth = format!("Bearer {token}");
        server.post_mcp(
            &[
                ("authorization", auth.as_str()),
                ("mcp-session-id", session.as_str()),
                ("mcp-protocol-version", "2025-06-18"),
            ],
            body,
        )
    };
    in_session(
        &no_add,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    let add = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#;
    assert_insufficient_scope(
        &in_session(&no_add, add),
        "add without math.add",
        "math.add",
    );
    let echo = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#;
    assert_eq!(in_session(&no_add, echo).status, 200);
    let with_add = first.sign(&claims(json!({})));
    let reply = in_session(&with_add, add);
    assert_eq!(reply.status, 200, "{}", reply.body);

    // The authorization server rotates to a new key: a token it signs passes without a restart.
    let second = SigningKey::new("second");
    issuer.publish(&[&first, &second]);
    std::thread::sleep(Duration::from_millis(1100));
    let before = *issuer.jwks_reads.lock().unwrap();
    assert_eq!(
        call(&second.sign(&claims(json!({}))), INITIALIZE).status,
        200
    );
    assert_eq!(
        *issuer.jwks_reads.lock().unwrap(),
        before + 1,
        "fetched again once"
    );

    // A flood of made-up key ids costs at most one fetch per floor (1 s here), not one per token.
    std::thread::sleep(Duration::from_millis(1100));
    let before = *issuer.jwks_reads.lock().unwrap();
    let started = std::time::Instant::now();
    let forged: Vec<String> = (0..50)
        .map(|i| SigningKey::new(&format!("made-up-{i}")).sign(&claims(json!({}))))
        .collect();
    for token in &forged {
        assert_eq!(call(token, INITIALIZE).status, 401);
    }
    let fetched = *issuer.jwks_reads.lock().unwrap() - before;
    let floors = started.elapsed().as_secs() as usize + 1;
    assert!(
        fetched <= floors,
        "{fetched} fetches for 50 unknown key ids in {floors} floors"
    );
}
