//! The API server's audit log (every write request, at Metadata level), read back for tests that
//! count what a client wrote.

use std::path::Path;

use serde::Deserialize;

/// One write request, as the audit log records it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub verb: String,
    pub user: User,
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// When the API server received the request (RFC 3339, microseconds).
    #[serde(default)]
    pub request_received_timestamp: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub username: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ObjectRef {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: Option<u16>,
}

impl AuditEvent {
    /// `verb resource[/subresource] namespace/name`, for assertion messages.
    pub fn describe(&self) -> String {
        let r = self.object_ref.as_ref();
        let field =
            |f: fn(&ObjectRef) -> Option<&String>| r.and_then(f).map(String::as_str).unwrap_or("");
        let sub = field(|r| r.subresource.as_ref());
        format!(
            "{} {}{}{} {}/{}",
            self.verb,
            field(|r| r.resource.as_ref()),
            if sub.is_empty() { "" } else { "/" },
            sub,
            field(|r| r.namespace.as_ref()),
            field(|r| r.name.as_ref()),
        )
    }
}

/// The write requests `user` made, in order, from the audit log at `path`.
pub fn writes_by(path: &Path, user: &str) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
        .filter(|e| e.user.username == user)
        .collect()
}
