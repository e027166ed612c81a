//! What checking an OAuth access token costs per request, with the issuer's keys already cached
//! (BENCHMARKS.md). An issuer in this process serves RFC 8414 metadata and a JWKS with an EC
//! P-256 key (made at start) and an RSA 2048 key (a fixed test key kept next to this file, since
//! nothing here generates RSA keys); the companion's own checker then verifies tokens signed with
//! each (every one new, so each is verified), checks one token again and again (recalled from its
//! memo of passed tokens), and refuses forged ones, in a loop. Prints one JSON line per case:
//! checks per second and microseconds per check.
//!
//! `cargo run --release -p mcp-server --example oauth_cost [ITERATIONS]`

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_server::oauth::Settings;
use mcp_server::oauth::gate::OAuth;
use serde_json::{Value, json};

const RSA_PEM: &str = include_str!("data/rsa-test-key.pem");
const RSA_MODULUS: &str = include_str!("data/rsa-test-key.n");

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);

    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let point = ec.public_key_raw();
    let keys = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "ec",
         "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])},
        {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "rsa",
         "n": RSA_MODULUS.trim(), "e": "AQAB"},
    ]});

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let metadata = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let app = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route("/jwks", get(move || async move { Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let resource = "https://mcp.example.com/mcp";
    let oauth = OAuth::new(Settings {
        issuer: issuer.clone(),
        resource: resource.parse()?,
        audiences: Vec::new(),
        required_scopes: BTreeSet::from(["mcp".to_owned()]),
        jwks_url: None,
        clock_skew: Duration::from_secs(60),
        refetch_floor: Duration::from_secs(30),
        tool_scopes: BTreeMap::new(),
        ca_file: None,
        pass_token: false,
    })?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // Each token different (its `jti`), so that none is recalled from the memo of passed tokens.
    let claims = |jti: u32| {
        json!({"iss": issuer, "aud": resource, "sub": "bench", "scope": "mcp",
            "iat": now, "exp": now + 3600, "jti": jti.to_string()})
    };
    let sign = |alg: Algorithm, kid: &str, key: &EncodingKey, jti: u32| -> Result<String, Error> {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&header, &claims(jti), key)?)
    };
    let ec_key = EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes())?;
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes())?;
    // Signing RSA in pure Rust is slow: fewer distinct tokens than checks of a repeated one.
    let distinct = iterations.min(2_000);
    let es256: Vec<String> = (0..distinct)
        .map(|i| sign(Algorithm::ES256, "ec", &ec_key, i))
        .collect::<Result<_, _>>()?;
    let rs256: Vec<String> = (0..distinct)
        .map(|i| sign(Algorithm::RS256, "rsa", &rsa_key, i))
        .collect::<Result<_, _>>()?;
    let mut forged = sign(Algorithm::RS256, "rsa", &rsa_key, u32::MAX)?;
    // A character inside the signature changed (the last one carries padding bits, and a change
    // there can make the base64 itself invalid): a signature that decodes but does not verify.
    let at = forged.len() - 10;
    let swap = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, swap);
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims(0).to_string())
    );

    // The first check fetches the keys; every later one uses them.
    let warm = sign(Algorithm::ES256, "ec", &ec_key, u32::MAX - 1)?;
    oauth.check(&warm).await.map_err(|r| format!("{r:?}"))?;
    let repeated = |token: &String| vec![token.clone(); iterations as usize];
    let cases: [(&str, Vec<String>, bool); 6] = [
        ("ES256, each token new: verified", es256.clone(), true),
        (
            "ES256, the same token again: recalled",
            repeated(&es256[0]),
            true,
        ),
        ("RS256, each token new: verified", rs256.clone(), true),
        (
            "RS256, the same token again: recalled",
            repeated(&rs256[0]),
            true,
        ),
        ("RS256, bad signature, refused", repeated(&forged), false),
        ("alg none, refused", repeated(&unsigned), false),
    ];
    for (case, tokens, accepted) in cases {
        let started = Instant::now();
        for token in &tokens {
            let result = oauth.check(std::hint::black_box(token)).await;
            assert_eq!(result.is_ok(), accepted, "{case}: {result:?}");
        }
        let elapsed = started.elapsed();
        let checks = tokens.len() as f64;
        let summary: Value = json!({
            "case": case,
            "checks": tokens.len(),
            "checks_per_second": (checks / elapsed.as_secs_f64()).round(),
            "microseconds_per_check": elapsed.as_secs_f64() * 1e6 / checks,
        });
        println!("{summary}");
    }
    Ok(())
}
