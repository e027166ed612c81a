//! The per-request envelope of the stateless 2026-07-28 revision: every request names its protocol
//! version and client capabilities in `params._meta`, and over HTTP mirrors the version, method
//! and target name in headers. This module decides whether a request may be served.

use serde_json::{Value, json};

use super::jsonrpc::{HEADER_MISMATCH, INVALID_PARAMS, RpcError, UNSUPPORTED_PROTOCOL_VERSION};
use super::version::{Revision, STATELESS_REVISIONS};
use mcp_wire::meta::META;
pub use mcp_wire::meta::{CLIENT_CAPABILITIES_KEY, PROTOCOL_VERSION_KEY, SERVER_INFO_KEY};

/// The HTTP headers that mirror parts of the body (`None` when absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct MirroredHeaders<'a> {
    pub protocol_version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Which body parameter `Mcp-Name` mirrors for a method.
fn named_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Checks a stateless request, in the order the revision prescribes: envelope shape (-32602),
/// header agreement (-32020), then version support (-32022, listing what is supported).
pub fn admit(
    method: &str,
    params: &Value,
    headers: MirroredHeaders<'_>,
    supported: &[Revision],
) -> Result<Revision, RpcError> {
    let meta = params.get(META).and_then(Value::as_object).ok_or_else(|| {
        RpcError::new(
            INVALID_PARAMS,
            format!("params._meta must carry {PROTOCOL_VERSION_KEY} and {CLIENT_CAPABILITIES_KEY}"),
        )
    })?;
    let missing: Vec<&str> = [PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("params._meta is missing {}", missing.join(", ")),
        ));
    }
    let version = &meta[PROTOCOL_VERSION_KEY];
    if headers.protocol_version.is_none() || version.as_str() != headers.protocol_version {
        return Err(RpcError::new(
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match params._meta protocol version",
        ));
    }
    if headers.method != Some(method) {
        return Err(RpcError::new(
            HEADER_MISMATCH,
            "Mcp-Method header does not match the request method",
        ));
    }
    if let Some(key) = named_param(method)
        && let Some(body_name) = params.get(key).and_then(Value::as_str)
        && headers.name.and_then(decode_header_value).as_deref() != Some(body_name)
    {
        return Err(RpcError::new(
            HEADER_MISMATCH,
            format!("Mcp-Name header does not match params.{key}"),
        ));
    }
    let requested = version.as_str().unwrap_or_default();
    Revision::parse(requested)
        .filter(|r| supported.contains(r))
        .ok_or_else(|| unsupported_version(requested, supported))
}

/// Header values that are not plain ASCII travel as `=?base64?<standard base64 of UTF-8>?=`.
/// A malformed encoding decodes to nothing, so it can never match a body value by accident.
pub fn decode_header_value(value: &str) -> Option<String> {
    use base64::Engine as _;
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The inverse of [`decode_header_value`]: visible ASCII as it is, anything else encoded.
pub fn encode_header_value(value: &str) -> String {
    use base64::Engine as _;
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.starts_with("=?base64?");
    if plain {
        return value.to_owned();
    }
    format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

/// The `(MCP-Protocol-Version, Mcp-Name)` header values a stateless request with this body
/// carries (what [`admit`] checks), for passing the request on.
pub fn mirrored_values(method: &str, params: &Value) -> (Option<String>, Option<String>) {
    let version = params
        .get(META)
        .and_then(|m| m.get(PROTOCOL_VERSION_KEY))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let name = named_param(method)
        .and_then(|key| params.get(key))
        .and_then(Value::as_str)
        .map(encode_header_value);
    (version, name)
}

/// The error for a version this server does not serve statelessly; clients read `supported` to
/// pick another.
pub fn unsupported_version(requested: &str, supported: &[Revision]) -> RpcError {
    RpcError::new(UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol version").with_data(json!({
        "supported": supported.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "requested": requested,
    }))
}

/// Whether a body asks for stateless handling (its `_meta` names a protocol version).
pub fn names_a_version(params: &Value) -> bool {
    params
        .get(META)
        .and_then(|m| m.get(PROTOCOL_VERSION_KEY))
        .is_some()
}

/// The revisions this build serves statelessly.
pub fn stateless_revisions() -> &'static [Revision] {
    &STATELESS_REVISIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(version: &str) -> Value {
        json!({ "name": "echo", "_meta": { PROTOCOL_VERSION_KEY: version, CLIENT_CAPABILITIES_KEY: {} } })
    }

    fn headers<'a>(
        version: &'a str,
        method: &'a str,
        name: Option<&'a str>,
    ) -> MirroredHeaders<'a> {
        MirroredHeaders {
            protocol_version: Some(version),
            method: Some(method),
            name,
        }
    }

    #[test]
    fn a_consistent_request_is_admitted() {
        let got = admit(
            "tools/call",
            &params("2026-07-28"),
            headers("2026-07-28", "tools/call", Some("echo")),
            stateless_revisions(),
        );
        assert_eq!(got, Ok(Revision::V2026_07_28));
    }

    #[test]
    fn missing_envelope_is_invalid_params() {
        let e = admit(
            "tools/list",
            &json!({}),
            headers("2026-07-28", "tools/list", None),
            stateless_revisions(),
        )
        .unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
    }

    #[test]
    fn headers_that_disagree_with_the_body_are_a_mismatch() {
        let p = params("2026-07-28");
        let cases = [
            headers("2025-11-25", "tools/call", Some("echo")),
            headers("2026-07-28", "tools/list", Some("echo")),
            headers("2026-07-28", "tools/call", Some("add")),
            headers("2026-07-28", "tools/call", None),
            MirroredHeaders::default(),
        ];
        for h in cases {
            let e = admit("tools/call", &p, h, stateless_revisions()).unwrap_err();
            assert_eq!(e.code, HEADER_MISMATCH, "{h:?}");
        }
    }

    #[test]
    fn base64_encoded_names_match_their_decoded_body_value() {
        let p = json!({ "name": "héllo", "_meta": { PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {} } });
        let ok = admit(
            "tools/call",
            &p,
            headers("2026-07-28", "tools/call", Some("=?base64?aMOpbGxv?=")),
            stateless_revisions(),
        );
        assert!(ok.is_ok());
        assert_eq!(decode_header_value("=?base64?!!?="), None);
    }

    #[test]
    fn mirrored_values_are_admitted_as_the_headers_of_their_body() {
        for name in ["echo", "héllo", " padded ", "=?base64?x?="] {
            let mut p = params("2026-07-28");
            p["name"] = json!(name);
            let (version, mirrored) = mirrored_values("tools/call", &p);
            let admitted = admit(
                "tools/call",
                &p,
                headers(
                    version.as_deref().unwrap_or_default(),
                    "tools/call",
                    mirrored.as_deref(),
                ),
                &[Revision::V2026_07_28],
            );
            assert!(admitted.is_ok(), "{name}: {admitted:?}");
        }
    }

    #[test]
    fn unknown_version_lists_the_supported_ones() {
        let e = admit(
            "tools/list",
            &params("2099-01-01"),
            headers("2099-01-01", "tools/list", None),
            stateless_revisions(),
        )
        .unwrap_err();
        assert_eq!(e.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(e.data.unwrap()["supported"], json!(["2026-07-28"]));
    }
}
