//! JSON-RPC 2.0 as MCP uses it: error codes (the standard ones and MCP's), request ids, the error
//! object, building messages, reading incoming ones while keeping their original text
//! ([`message`]), and finding the answer to a client's request ([`answer`]).

pub mod answer;
pub mod message;

use std::fmt;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use answer::{Incoming, Outcome, answer_in_body, classify};
pub use message::{Kind, Message, Payload, parse_body};

/// The `jsonrpc` member every message carries.
pub const VERSION: &str = "2.0";

/// The body is not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Valid JSON that is not a valid JSON-RPC message.
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP: the requested resource does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// MCP 2026-07-28: HTTP headers disagree with the request body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the request's protocol version is not one the server speaks; the error's
/// `data.supported` lists the ones it does.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A request id exactly as it appeared on the wire (`7`, `"abc"`), usable as a map key.
///
/// Ids are compared by their canonical JSON text, so `"7"` and `7` stay distinct as JSON-RPC
/// requires.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    fn from_raw(raw: &RawValue) -> Option<Self> {
        // MCP forbids null ids; JSON-RPC allows only strings and numbers.
        Self::from_value(&serde_json::from_str(raw.get()).ok()?)
    }

    /// An id given as a value (inside params, as `notifications/cancelled`'s `requestId`).
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(_) | Value::Number(_) => Some(Self(Arc::from(value.to_string()))),
            _ => None,
        }
    }

    /// The id as a JSON value, for building messages.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The id's JSON text (`7` or `"abc"`), for progress-token style keys.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl From<u64> for RequestId {
    fn from(id: u64) -> Self {
        Self(Arc::from(id.to_string()))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JSON-RPC error object together with the id of the message that caused it (if known).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
    pub id: Option<RequestId>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
            id: None,
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    pub fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.id = id;
        self
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Reads an error object (`{"code": ..., "message": ..., "data": ...}`); `Err` says what is
    /// wrong with it.
    pub fn from_object(error: &Value) -> Result<Self, String> {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error.get("message").and_then(Value::as_str);
        match (code, message) {
            (Some(code), Some(message)) => Ok(Self {
                code,
                message: message.to_owned(),
                data: error.get("data").cloned(),
                id: None,
            }),
            _ => Err("the error object needs an integer code and a string message".into()),
        }
    }

    /// The error response object for this error (id `null` when the id is unknown).
    pub fn to_response(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({
            "jsonrpc": VERSION,
            "id": self.id.as_ref().map_or(Value::Null, RequestId::to_value),
            "error": error,
        })
    }

    pub fn to_message(&self) -> Message {
        Message::from_value(&self.to_response())
    }
}

/// A request: a method to call, answered by a response with the same `id`.
pub fn request(id: &RequestId, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": VERSION, "id": id.to_value(), "method": method, "params": params })
}

/// A notification: a method call nobody answers. `params` is left out when `None`.
pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut message = json!({ "jsonrpc": VERSION, "method": method });
    if let Some(params) = params {
        message["params"] = params;
    }
    message
}

/// The successful response to request `id`.
pub fn response(id: &RequestId, result: Value) -> Value {
    json!({ "jsonrpc": VERSION, "id": id.to_value(), "result": result })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_messages_are_json_rpc_2() {
        let id = RequestId::from(3);
        assert_eq!(
            request(&id, "tools/list", json!({})),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}})
        );
        assert_eq!(
            notification("notifications/initialized", None),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        );
        assert_eq!(
            notification("notifications/progress", Some(json!({"progress": 1}))),
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
        );
        assert_eq!(
            response(&id, json!({})),
            json!({"jsonrpc": "2.0", "id": 3, "result": {}})
        );
    }

    #[test]
    fn built_messages_read_back_as_what_they_are() {
        let id = RequestId::from_value(&json!("a")).unwrap();
        let read = |v: Value| Message::parse(&v.to_string()).unwrap().kind().clone();
        assert_eq!(
            read(request(&id, "ping", json!({}))),
            Kind::Request {
                id: id.clone(),
                method: "ping".into()
            }
        );
        assert_eq!(
            read(notification("n", None)),
            Kind::Notification { method: "n".into() }
        );
        assert_eq!(
            read(response(&id, json!(1))),
            Kind::Response { id: id.clone() }
        );
        let error = RpcError::new(INTERNAL_ERROR, "x").with_id(Some(id.clone()));
        assert_eq!(read(error.to_response()), Kind::Response { id });
    }

    #[test]
    fn error_objects_round_trip_with_their_data() {
        let error = RpcError::new(UNSUPPORTED_PROTOCOL_VERSION, "unsupported")
            .with_data(json!({"supported": ["2026-07-28"]}));
        let response = error.to_response();
        assert_eq!(response["id"], Value::Null);
        assert_eq!(RpcError::from_object(&response["error"]), Ok(error));
        assert!(RpcError::from_object(&json!({"code": "x", "message": "m"})).is_err());
        assert!(RpcError::from_object(&json!({"code": 1})).is_err());
    }

    #[test]
    fn numeric_ids_are_their_json_text() {
        let id = RequestId::from(7);
        assert_eq!(id.as_json(), "7");
        assert_eq!(Some(id), RequestId::from_value(&json!(7)));
        assert_ne!(
            RequestId::from_value(&json!("7")),
            RequestId::from_value(&json!(7))
        );
    }
}
