//! An authorization server inside the test process, as far as a resource server sees one: RFC
//! 8414 metadata and a JWKS of EC P-256 keys made here, which it signs tokens with.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// One signing key: its private half for signing, its public half as a JWK.
pub struct SigningKey {
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
    pub jwk: Value,
}

impl SigningKey {
    pub fn new(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key_raw();
        assert_eq!((point.len(), point[0]), (65, 4));
        SigningKey {
            kid: kid.to_owned(),
            private_pem: pair.serialize_pem(),
            public_pem: pair.public_key_pem(),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            }),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_ec_pem(self.private_pem.as_bytes()).expect("PKCS#8 EC key");
        jsonwebtoken::encode(&header, claims, &key).expect("signed")
    }
}

/// An authorization server as far as a resource server sees it: metadata and keys.
pub struct Issuer {
    pub url: String,
    pub jwks: Arc<Mutex<Vec<Value>>>,
    pub jwks_reads: Arc<Mutex<usize>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Served {
    url: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    reads: Arc<Mutex<usize>>,
}

impl Issuer {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let served = Served {
            url: format!("http://{addr}"),
            jwks: Arc::default(),
            reads: Arc::default(),
        };
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(|State(s): State<Served>| async move {
                    Json(
                        json!({"issuer": s.url, "jwks_uri": format!("{}/jwks", s.url),
                        "token_endpoint": format!("{}/token", s.url)}),
                    )
                }),
            )
            .route(
                "/jwks",
                get(|State(s): State<Served>| async move {
                    *s.reads.lock().unwrap() += 1;
                    Json(json!({"keys": s.jwks.lock().unwrap().clone()}))
                }),
            )
            .with_state(served.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Issuer {
            url: served.url,
            jwks: served.jwks,
            jwks_reads: served.reads,
            _runtime: runtime,
        }
    }

    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
