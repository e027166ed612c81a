//! Tokens made in the tests, for the OAuth resource server: signing keys of their own, the
//! forgeries a careless verifier accepts, and the check of a refusal's status and challenge.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use super::Reply;

/// An `initialize` request body.
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"oauth-test","version":"1"}}}"#;

/// The header and the claims of a JWT, unverified.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let part = parts.next().expect("a JWT has three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    (next(), next())
}

/// `claims` with `alg: none` and no signature.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `claims` signed with HS256 keyed with `secret` (a public key, for the classic forgery),
/// naming `kid`.
pub fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_secret(secret).expect("an HMAC key");
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}

/// The PEM (SubjectPublicKeyInfo) of the RSA public key of a JWK: the text a forger keys HS256
/// with.
pub fn rsa_public_pem(jwk: &Value) -> String {
    let number = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().expect("an RSA JWK"))
            .expect("base64url")
    };
    // DER: a length, then an INTEGER (positive: a leading zero byte when the top bit is set).
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
        match len {
            0..=127 => out.push(len as u8),
            128..=255 => out.extend([0x81, len as u8]),
            _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(body);
        out
    }
    let integer = |bytes: Vec<u8>| {
        let mut body = if bytes[0] & 0x80 != 0 {
            vec![0]
        } else {
            vec![]
        };
        body.extend(bytes);
        der(0x02, &body)
    };
    let key = der(0x30, &[integer(number("n")), integer(number("e"))].concat());
    // rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
    let algorithm = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let bits = der(0x03, &[vec![0], key].concat());
    let spki = der(0x30, &[algorithm, bits].concat());
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// A 401 `invalid_token` whose challenge points at `metadata_url` and whose body says `why`.
pub fn assert_refused(reply: &Reply, case: &str, metadata_url: &str, why: &str) {
    assert_eq!(reply.status, 401, "{case}: {}", reply.body);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"invalid_token\"")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{case}: {challenge}"
    );
    assert!(reply.body.contains(why), "{case}: {}", reply.body);
}

/// A 403 `insufficient_scope` whose challenge names `scope`.
pub fn assert_insufficient_scope(reply: &Reply, case: &str, scope: &str) {
    assert_eq!(reply.status, 403, "{case}: {}", reply.body);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains(&format!("scope=\"{scope}\"")),
        "{case}: {challenge}"
    );
}
