//! Who called, told to the server behind the proxy: `X-MCP-Subject`, `X-MCP-Scopes` and
//! `X-MCP-Client-Id`, made from the verified token and nothing else. Clients' own copies of these
//! headers are removed from every request as it arrives ([`drop_client_copies`]), with or without
//! OAuth, so no client and no peer replica can speak for someone else.
//!
//! Values are percent-encoded UTF-8: every byte outside visible ASCII, and `%` itself, becomes
//! `%XX`, so a subject with control characters, spaces or non-ASCII letters arrives whole and
//! unambiguous (decode with any URL-decoding function) and can never end a header line.

use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::Caller;

pub const SUBJECT: HeaderName = HeaderName::from_static("x-mcp-subject");
pub const SCOPES: HeaderName = HeaderName::from_static("x-mcp-scopes");
pub const CLIENT_ID: HeaderName = HeaderName::from_static("x-mcp-client-id");
/// Every header this module owns.
pub const ALL: [HeaderName; 3] = [SUBJECT, SCOPES, CLIENT_ID];

/// Bytes of `X-MCP-Scopes` at most: the scopes that fit, whole, in sorted order. The token's own
/// bounds (64 scopes of 128 characters) could make a header larger than servers accept.
pub const MAX_SCOPES_BYTES: usize = 4096;

/// The headers one request carries to the server behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Identity {
    /// The identity of `caller`; with `token` (`--oauth-pass-token`), its `Authorization` too.
    pub fn of(caller: &Caller, token: Option<HeaderValue>) -> Self {
        let mut headers = vec![(SUBJECT, encoded(&caller.subject))];
        let mut scopes = String::new();
        for scope in caller.scopes.iter().map(|s| percent_encode(s)) {
            let extra = scope.len() + usize::from(!scopes.is_empty());
            if scopes.len() + extra > MAX_SCOPES_BYTES {
                break;
            }
            if !scopes.is_empty() {
                scopes.push(' ');
            }
            scopes.push_str(&scope);
        }
        // Already encoded scope by scope: only the separating spaces are left to keep.
        headers.push((SCOPES, header_value(scopes)));
        if let Some(client) = &caller.client_id {
            headers.push((CLIENT_ID, encoded(client)));
        }
        if let Some(token) = token {
            headers.push((AUTHORIZATION, token));
        }
        Identity { headers }
    }

    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// `builder` with these headers.
    pub fn apply(
        &self,
        mut builder: hyper::http::request::Builder,
    ) -> hyper::http::request::Builder {
        for (name, value) in &self.headers {
            builder = builder.header(name, value.clone());
        }
        builder
    }
}

/// Removes the client's copies of the identity headers before anything reads the request.
pub async fn drop_client_copies(mut request: Request, next: Next) -> Response {
    for name in ALL {
        request.headers_mut().remove(name);
    }
    next.run(request).await
}

/// `text` percent-encoded as a header value.
fn encoded(text: &str) -> HeaderValue {
    header_value(percent_encode(text))
}

/// Visible ASCII and spaces are always a valid header value; the fallback is never taken.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Visible ASCII except `%` stays; every other byte of the UTF-8 text becomes `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn caller(subject: &str, scopes: &[&str], client: Option<&str>) -> Caller {
        Caller {
            subject: subject.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            client_id: client.map(str::to_owned),
        }
    }

    fn value<'a>(identity: &'a Identity, name: &HeaderName) -> Option<&'a str> {
        identity
            .headers()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    /// What an upstream gets back with a URL-decoding function.
    fn decoded(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_headers_say_who_called_and_the_token_only_when_asked() {
        let who = caller("user-1", &["mcp", "records:read"], Some("cli"));
        let identity = Identity::of(&who, None);
        assert_eq!(value(&identity, &SUBJECT), Some("user-1"));
        assert_eq!(value(&identity, &SCOPES), Some("mcp records:read"));
        assert_eq!(value(&identity, &CLIENT_ID), Some("cli"));
        assert_eq!(value(&identity, &AUTHORIZATION), None);
        let token = HeaderValue::from_static("Bearer abc");
        let passed = Identity::of(&caller("u", &[], None), Some(token));
        assert_eq!(value(&passed, &AUTHORIZATION), Some("Bearer abc"));
        assert_eq!(value(&passed, &CLIENT_ID), None, "no client id, no header");
        assert_eq!(value(&passed, &SCOPES), Some(""));
    }

    #[test]
    fn hostile_subjects_are_encoded_not_cut_or_mangled() {
        let subject = "admin\r\nX-MCP-Subject: root\u{0}%41 José";
        let identity = Identity::of(&caller(subject, &[], None), None);
        let sent = value(&identity, &SUBJECT).unwrap();
        assert_eq!(sent, "admin%0D%0AX-MCP-Subject:%20root%00%2541%20Jos%C3%A9");
        assert_eq!(decoded(sent), subject);
    }

    #[test]
    fn scopes_are_bounded_whole() {
        let many: Vec<String> = (0..64)
            .map(|i| format!("{i:02}{}", "s".repeat(126)))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let identity = Identity::of(&caller("u", &refs, None), None);
        let sent = value(&identity, &SCOPES).unwrap();
        assert!(sent.len() <= MAX_SCOPES_BYTES, "{}", sent.len());
        let kept: Vec<&str> = sent.split(' ').collect();
        assert_eq!(kept.len(), MAX_SCOPES_BYTES / 129, "as many as fit");
        assert!(kept.iter().all(|s| s.len() == 128), "none cut");
        assert_eq!(kept[0], many[0], "in sorted order");
    }

    proptest! {
        #[test]
        fn any_caller_makes_valid_bounded_headers_that_decode_to_it(
            subject in "\\PC{0,64}|[\\x00-\\x7f]{0,64}",
            scopes in prop::collection::btree_set("[!-~]{1,20}|\\PC{1,8}", 0..8),
            client in proptest::option::of(".{0,32}"),
        ) {
            let who = Caller { subject: subject.clone(), scopes: scopes.clone(), client_id: client.clone() };
            let identity = Identity::of(&who, None);
            // Visible ASCII, and in the scopes the single spaces between them.
            for (name, v) in identity.headers() {
                let space = *name == SCOPES;
                prop_assert!(v.as_bytes().iter().all(|b| b.is_ascii_graphic() || (space && *b == b' ')));
            }
            prop_assert!(!value(&identity, &SCOPES).unwrap().contains("  "));
            prop_assert_eq!(decoded(value(&identity, &SUBJECT).unwrap()), subject);
            let sent: BTreeSet<String> = value(&identity, &SCOPES)
                .unwrap()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(decoded)
                .collect();
            prop_assert_eq!(sent, scopes);
            prop_assert_eq!(value(&identity, &CLIENT_ID).map(decoded), client);
        }
    }
}
