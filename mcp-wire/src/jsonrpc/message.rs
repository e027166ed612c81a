//! Reading JSON-RPC messages as a server (or a bridge) receives them: request bodies and stdout
//! lines become classified messages that keep their original bytes.
//!
//! Messages are kept as raw JSON text so that anything this server does not interpret (unknown
//! methods, unknown fields, number formatting) reaches the other side exactly as it was sent.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{INVALID_REQUEST, PARSE_ERROR, RequestId, RpcError, VERSION};

/// What a JSON-RPC message is, as far as routing needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Request { id: RequestId, method: String },
    Notification { method: String },
    Response { id: RequestId },
}

/// One JSON-RPC message: its original text and its classification.
///
/// One pointer wide: messages sit in per-session channels and replay history, so a small, cheaply
/// cloned handle keeps idle sessions light.
#[derive(Clone)]
pub struct Message(Arc<Parsed>);

struct Parsed {
    raw: Box<RawValue>,
    kind: Kind,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.0.kind)
            .finish()
    }
}

/// The fields of a JSON-RPC message this layer looks at; everything else is left in the raw text.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    /// Present-but-null must be told apart from absent, so null is kept as a raw value.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The parameters of a request or notification, borrowed from the message text.
#[derive(Deserialize)]
struct ParamsOnly<'a> {
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// The result or error of a response.
#[derive(Deserialize)]
struct ResultOnly {
    #[serde(default)]
    result: Option<Value>,
}

impl Message {
    /// Classifies one JSON value as a JSON-RPC message.
    pub fn classify(raw: Box<RawValue>) -> Result<Self, RpcError> {
        let envelope: Envelope<'_> = serde_json::from_str(raw.get())
            .map_err(|e| RpcError::new(INVALID_REQUEST, format!("not a JSON-RPC message: {e}")))?;
        let id = match envelope.id {
            None => None,
            Some(id) => Some(RequestId::from_raw(id).ok_or_else(|| {
                RpcError::new(INVALID_REQUEST, "id must be a string or a number")
            })?),
        };
        if envelope.jsonrpc.as_deref() != Some(VERSION) {
            return Err(RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"").with_id(id));
        }
        let kind = match (envelope.method, id) {
            (Some(method), Some(id)) => Kind::Request {
                id,
                method: method.into_owned(),
            },
            (Some(method), None) => Kind::Notification {
                method: method.into_owned(),
            },
            (None, Some(id)) if envelope.result.is_some() != envelope.error.is_some() => {
                Kind::Response { id }
            }
            (None, id) => {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "a message needs a method, or an id with exactly one of result and error",
                )
                .with_id(id));
            }
        };
        Ok(Self(Arc::new(Parsed { raw, kind })))
    }

    /// Parses and classifies one message from text (a stdout line, a test fixture).
    pub fn parse(text: &str) -> Result<Self, RpcError> {
        let raw: Box<RawValue> = serde_json::from_str(text)
            .map_err(|e| RpcError::new(PARSE_ERROR, format!("invalid JSON: {e}")))?;
        Self::classify(raw)
    }

    /// Builds a message from a value its caller produced (always a valid message). Should the
    /// caller have built a malformed one, the other side is told so, rather than a panic: in an
    /// error response when the id is readable, else in an error-level log notification.
    pub fn from_value(value: &Value) -> Self {
        let text = value.to_string();
        Self::parse(&text).unwrap_or_else(|e| match e.id {
            Some(_) => e.to_message(),
            None => Self::notification(
                "notifications/message",
                serde_json::json!({ "level": "error", "data": e.to_string() }),
            ),
        })
    }

    pub fn response(id: &RequestId, result: Value) -> Self {
        Self::from_value(&super::response(id, result))
    }

    pub fn notification(method: &str, params: Value) -> Self {
        Self::from_value(&super::notification(method, Some(params)))
    }

    pub fn kind(&self) -> &Kind {
        &self.0.kind
    }

    pub fn method(&self) -> Option<&str> {
        match &self.0.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            Kind::Response { .. } => None,
        }
    }

    /// The id of a request or response.
    pub fn id(&self) -> Option<&RequestId> {
        match &self.0.kind {
            Kind::Request { id, .. } | Kind::Response { id } => Some(id),
            Kind::Notification { .. } => None,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.0.kind, Kind::Request { .. })
    }

    pub fn is_response(&self) -> bool {
        matches!(self.0.kind, Kind::Response { .. })
    }

    /// The original JSON text.
    pub fn text(&self) -> &str {
        self.0.raw.get()
    }

    /// The params, decoded into a value (`Null` when absent).
    pub fn params(&self) -> Value {
        serde_json::from_str::<ParamsOnly<'_>>(self.0.raw.get())
            .ok()
            .and_then(|p| p.params)
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or(Value::Null)
    }

    /// The `result` of a successful response.
    pub fn result(&self) -> Option<Value> {
        serde_json::from_str::<ResultOnly>(self.0.raw.get())
            .ok()
            .and_then(|r| r.result)
    }
}

/// A request body: one message or a batch.
#[derive(Debug)]
pub enum Payload {
    Single(Message),
    Batch(Vec<Message>),
}

impl Payload {
    pub fn messages(&self) -> &[Message] {
        match self {
            Payload::Single(m) => std::slice::from_ref(m),
            Payload::Batch(ms) => ms,
        }
    }

    pub fn into_messages(self) -> Vec<Message> {
        match self {
            Payload::Single(m) => vec![m],
            Payload::Batch(ms) => ms,
        }
    }

    pub fn is_batch(&self) -> bool {
        matches!(self, Payload::Batch(_))
    }

    /// Ids of the requests, which are the messages that expect an answer.
    pub fn request_ids(&self) -> Vec<RequestId> {
        self.messages()
            .iter()
            .filter(|m| m.is_request())
            .filter_map(|m| m.id().cloned())
            .collect()
    }

    /// Methods of the requests, for counting.
    pub fn request_methods(&self) -> impl Iterator<Item = &str> {
        self.messages()
            .iter()
            .filter(|m| m.is_request())
            .filter_map(Message::method)
    }
}

/// Parses an HTTP request body into messages.
///
/// Malformed JSON is a parse error (-32700); valid JSON that is not a JSON-RPC message, an empty
/// batch, or a batch with any invalid member is an invalid request (-32600). A batch is rejected
/// whole rather than partly executed, so a client never has to reconcile half-applied batches.
pub fn parse_body(body: &[u8]) -> Result<Payload, RpcError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| RpcError::new(PARSE_ERROR, "request body is not UTF-8"))?;
    let raw: Box<RawValue> = serde_json::from_str(text)
        .map_err(|e| RpcError::new(PARSE_ERROR, format!("invalid JSON: {e}")))?;
    if raw.get().starts_with('[') {
        let members: Vec<Box<RawValue>> = serde_json::from_str(raw.get())
            .map_err(|e| RpcError::new(PARSE_ERROR, format!("invalid JSON: {e}")))?;
        if members.is_empty() {
            return Err(RpcError::new(INVALID_REQUEST, "empty batch"));
        }
        let messages = members
            .into_iter()
            .map(|m| Message::classify(without_newlines(m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Payload::Batch(messages))
    } else {
        Ok(Payload::Single(Message::classify(without_newlines(raw))?))
    }
}

/// Removes line breaks, which in valid JSON can only be insignificant whitespace (inside strings
/// they are escaped), so every message fits on one stdio line and one SSE `data:` field.
fn without_newlines(raw: Box<RawValue>) -> Box<RawValue> {
    if !raw.get().contains(['\n', '\r']) {
        return raw;
    }
    let flat: String = raw
        .get()
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r'))
        .collect();
    RawValue::from_string(flat).unwrap_or(raw_null())
}

fn raw_null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is valid JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::INVALID_PARAMS;

    fn err(body: &str) -> RpcError {
        parse_body(body.as_bytes()).expect_err("should be rejected")
    }

    #[test]
    fn request_notification_and_response_are_told_apart() {
        let req = Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert!(matches!(req.kind(), Kind::Request { method, .. } if method == "ping"));
        let note =
            Message::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note.kind(), Kind::Notification { .. }));
        let resp = Message::parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(resp.id().map(RequestId::as_json), Some("\"a\""));
        assert!(resp.is_response());
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        assert_eq!(err("{\"jsonrpc\":").code, PARSE_ERROR);
        assert_eq!(err("").code, PARSE_ERROR);
        assert_eq!(parse_body(&[0xff, 0xfe]).unwrap_err().code, PARSE_ERROR);
    }

    #[test]
    fn valid_json_that_is_not_json_rpc_is_an_invalid_request() {
        assert_eq!(err("42").code, INVALID_REQUEST);
        assert_eq!(err("[]").code, INVALID_REQUEST);
        assert_eq!(err(r#"{"id":1,"method":"x"}"#).code, INVALID_REQUEST);
        assert_eq!(
            err(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1}"#).code, INVALID_REQUEST);
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(
            err(r#"[{"jsonrpc":"2.0","method":"a"}, 1]"#).code,
            INVALID_REQUEST
        );
    }

    #[test]
    fn invalid_request_keeps_the_id_when_it_is_readable() {
        let e = err(r#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#);
        assert_eq!(e.to_response()["id"], "x");
    }

    #[test]
    fn unknown_fields_and_number_formatting_survive_untouched() {
        let text = r#"{"jsonrpc":"2.0","id":1.50,"method":"vendor/x","params":{"big":12345678901234567890},"extra":[1, 2]}"#;
        let m = Message::parse(text).unwrap();
        assert_eq!(m.text(), text);
    }

    #[test]
    fn pretty_printed_messages_are_flattened_without_changing_strings() {
        let body =
            "{\n \"jsonrpc\": \"2.0\",\n \"method\": \"x\", \"params\": {\"s\": \"a\\nb\"}\n}";
        let payload = parse_body(body.as_bytes()).unwrap();
        let text = payload.messages()[0].text();
        assert!(!text.contains('\n'));
        assert_eq!(payload.messages()[0].params()["s"], "a\nb");
    }

    #[test]
    fn string_and_number_ids_with_the_same_digits_are_different() {
        let a = Message::parse(r#"{"jsonrpc":"2.0","id":"7","method":"x"}"#).unwrap();
        let b = Message::parse(r#"{"jsonrpc":"2.0","id":7,"method":"x"}"#).unwrap();
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn a_malformed_built_message_becomes_an_error_the_other_side_sees() {
        let with_id = Message::from_value(&serde_json::json!({"id": 4, "method": "x"}));
        assert_eq!(with_id.id().map(RequestId::as_json), Some("4"));
        assert!(with_id.text().contains("\"error\""));
        let without = Message::from_value(&serde_json::json!({"jsonrpc": "2.0"}));
        assert_eq!(without.method(), Some("notifications/message"));
        assert_eq!(without.params()["level"], "error");
    }

    #[test]
    fn error_responses_carry_code_message_and_data() {
        let e = RpcError::invalid_params("bad")
            .with_data(serde_json::json!({"k": 1}))
            .with_id(
                Message::parse(r#"{"jsonrpc":"2.0","id":3,"method":"x"}"#)
                    .unwrap()
                    .id()
                    .cloned(),
            );
        let v = e.to_response();
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], INVALID_PARAMS);
        assert_eq!(v["error"]["data"]["k"], 1);
    }
}
