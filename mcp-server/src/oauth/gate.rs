//! The OAuth checks as middleware. [`require_token`] sits outside everything else of the MCP
//! routes: a request without a valid token gets 401 (or 403 for missing scopes) with the
//! `WWW-Authenticate` challenge that points the client at the resource metadata, and nothing
//! else of it is read. [`check_tool_calls`] sits inside the body read: a `tools/call` of a tool
//! whose scopes the caller lacks gets 403 naming them (and [`super::screen`] keeps that tool out
//! of the caller's `tools/list`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::keys::Keys;
use super::memo::Memo;
use super::resource::{self, Metadata};
use super::{Caller, Grant, Identity, Refusal, Settings, ToolScreen, Verifier};

/// A CA file larger than this is refused at start-up.
const MAX_CA_FILE_BYTES: usize = 1024 * 1024;
/// Messages of one batch looked at for tool calls, at most (the rest are refused).
const MAX_BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--oauth-ca-file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("the HTTP client for the authorization server: {0}")]
    Client(String),
}

/// What the middleware and the metadata route share.
pub struct OAuth {
    pub settings: Settings,
    verifier: Verifier,
    memo: Memo,
    metadata: Metadata,
    /// The `resource_metadata` parameter of every challenge.
    metadata_url: String,
}

impl OAuth {
    pub fn new(settings: Settings) -> Result<Self, SetupError> {
        let http = client(settings.ca_file.as_deref())?;
        let keys = Keys::new(
            http,
            settings.issuer.clone(),
            settings.jwks_url.clone(),
            settings.refetch_floor,
        );
        Ok(OAuth {
            verifier: Verifier::new(&settings, keys),
            memo: Memo::default(),
            metadata: Metadata::of(&settings),
            metadata_url: resource::metadata_url(&settings.resource).to_string(),
            settings,
        })
    }

    /// Checks one access token: a token that passed recently is recalled, any other verified.
    pub async fn check(&self, token: &str) -> Result<Caller, Refusal> {
        if let Some(caller) = self.memo.recall(token) {
            return Ok(caller);
        }
        let verified = self.verifier.verify(token).await?;
        self.memo
            .remember(token, &verified, self.settings.clock_skew);
        Ok(verified.caller)
    }

    /// What a verified caller's request carries on: its identity for the server behind (with
    /// the client's `Authorization` when `--oauth-pass-token` says so) and its tool screen.
    fn grant(&self, caller: &Caller, headers: &axum::http::HeaderMap) -> Grant {
        let token = self
            .settings
            .pass_token
            .then(|| headers.get(AUTHORIZATION).cloned())
            .flatten();
        Grant {
            identity: Arc::new(Identity::of(caller, token)),
            screen: ToolScreen::for_caller(&self.settings, caller).map(Arc::new),
        }
    }

    /// The paths of the metadata document.
    pub fn metadata_paths(&self) -> Vec<String> {
        resource::paths(&self.settings.resource)
    }

    /// The answer to a refused request.
    fn refuse(&self, refusal: &Refusal) -> Response {
        let meta = format!("resource_metadata=\"{}\"", self.metadata_url);
        let (status, challenge, text) = match refusal {
            Refusal::Missing => {
                let mut challenge = format!("Bearer {meta}");
                if !self.settings.required_scopes.is_empty() {
                    challenge.push_str(&format!(
                        ", scope=\"{}\"",
                        joined(&self.settings.required_scopes)
                    ));
                }
                (
                    StatusCode::UNAUTHORIZED,
                    challenge,
                    "authentication required".to_owned(),
                )
            }
            Refusal::Invalid(why) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\", {meta}",
                    quotable(why)
                ),
                format!("invalid token: {why}"),
            ),
            Refusal::InsufficientScope(missing) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\", {meta}",
                    joined(missing)
                ),
                format!("insufficient scope: needs {}", joined(missing)),
            ),
            // Logged where the fetch failed, once per refetch period: not once per request.
            Refusal::Unavailable(_) => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the authorization server's keys are unavailable\n",
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("30"));
                return response;
            }
        };
        let mut response = (status, format!("{text}\n")).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The resource metadata (RFC 9728), unauthenticated.
pub async fn metadata(State(oauth): State<Arc<OAuth>>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(&oauth.metadata).unwrap_or_default())
}

/// Lets through requests with a valid token, the [`Caller`] and its [`Grant`] attached; refuses
/// the rest.
pub async fn require_token(
    State(oauth): State<Arc<OAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let checked = match crate::transport::auth::bearer_token(request.headers()) {
        None => Err(Refusal::Missing),
        Some(token) => oauth.check(token).await,
    };
    match checked {
        Ok(caller) => {
            let grant = oauth.grant(&caller, request.headers());
            request.extensions_mut().insert(grant);
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => oauth.refuse(&refusal),
    }
}

/// Refuses a `tools/call` (alone or in a batch) of a tool the caller lacks scopes for. The body
/// is already in memory (this runs inside the body read).
pub async fn check_tool_calls(
    State(oauth): State<Arc<OAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if oauth.settings.tool_scopes.is_empty() || request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body\n").into_response();
    };
    let mut missing = BTreeSet::new();
    for tool in called_tools(&bytes) {
        missing.extend(oauth.settings.missing_for_tool(&caller, &tool));
    }
    if !missing.is_empty() {
        return oauth.refuse(&Refusal::InsufficientScope(missing));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The tools a JSON-RPC message or batch calls. A body that is not JSON calls none here (the
/// transport answers it); a batch longer than [`MAX_BATCH`] is looked at up to that length and
/// a tool name that is not a string is no tool.
fn called_tools(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let messages = match &value {
        serde_json::Value::Array(batch) => batch.iter().take(MAX_BATCH).collect(),
        single => vec![single],
    };
    messages
        .into_iter()
        .filter(|m| m.get("method").and_then(|v| v.as_str()) == Some("tools/call"))
        .filter_map(|m| m.pointer("/params/name")?.as_str().map(str::to_owned))
        .collect()
}

fn joined(scopes: &BTreeSet<String>) -> String {
    scopes
        .iter()
        .map(|s| quotable(s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text that may stand inside a quoted-string of a header: printable ASCII without `"` and `\`.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect()
}

/// The HTTPS client for the issuer's metadata and keys: the system's CA certificates and those
/// of `ca_file`, no redirects (a redirect is not followed to an address nobody configured).
fn client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if let Some(path) = ca_file {
        let fail = |why: String| SetupError::CaFile {
            path: path.display().to_string(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        if pem.len() > MAX_CA_FILE_BYTES {
            return Err(fail(format!("larger than {MAX_CA_FILE_BYTES} bytes")));
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| fail(format!("not PEM: {e}")))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(fail("no usable certificate".into()));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_found_in_single_messages_and_batches_only() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch"}}"#;
        assert_eq!(called_tools(one), ["fetch"]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add"}},
            {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":7}}]"#;
        assert_eq!(called_tools(batch), ["add"]);
        assert!(called_tools(b"not json").is_empty());
        assert!(called_tools(br#"{"method":"tools/call"}"#).is_empty());
    }

    #[test]
    fn challenge_text_cannot_break_out_of_its_quotes() {
        assert_eq!(quotable("a\"b\\c\r\nd"), "abcd");
        let scopes: BTreeSet<String> = ["a.read".into(), "b\"x".into()].into();
        assert_eq!(joined(&scopes), "a.read bx");
    }
}
