//! MCP's HTTP headers and the content negotiation rules of the transports.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};

pub use mcp_wire::meta::header::{LAST_EVENT_ID, METHOD, NAME, PROTOCOL_VERSION, SESSION_ID};
pub use mcp_wire::meta::media::{EVENT_STREAM, JSON};

/// A header's value when present and valid visible ASCII.
pub fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the Accept header admits `mime` (exactly, as `type/*`, or as `*/*`). A missing Accept
/// header admits nothing: MCP clients must say what they accept.
pub fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let (kind, _) = mime.split_once('/').unwrap_or((mime, ""));
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| {
            value.split(',').any(|range| {
                let range = range
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                range == mime || range == "*/*" || range.strip_suffix("/*") == Some(kind)
            })
        })
}

/// Whether the body is declared as JSON (parameters such as `charset` are allowed).
pub fn is_json_body(headers: &HeaderMap) -> bool {
    text(headers, CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(JSON))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: axum::http::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn accept_matches_exact_types_wildcards_and_parameters() {
        let h = with(ACCEPT, "application/json;q=0.9, text/event-stream");
        assert!(accepts(&h, JSON) && accepts(&h, EVENT_STREAM));
        assert!(accepts(&with(ACCEPT, "*/*"), EVENT_STREAM));
        assert!(accepts(&with(ACCEPT, "text/*"), EVENT_STREAM));
        assert!(!accepts(&with(ACCEPT, "text/html"), EVENT_STREAM));
        assert!(!accepts(&HeaderMap::new(), JSON));
    }

    #[test]
    fn json_content_type_may_carry_a_charset() {
        assert!(is_json_body(&with(
            CONTENT_TYPE,
            "application/json; charset=utf-8"
        )));
        assert!(is_json_body(&with(CONTENT_TYPE, "Application/JSON")));
        assert!(!is_json_body(&with(CONTENT_TYPE, "text/plain")));
        assert!(!is_json_body(&HeaderMap::new()));
    }
}
