//! Reading JSON-RPC messages as a client waiting for the answer to its request: picking that
//! answer out of whatever a server sends back (a single message, a batch, or one SSE event at a
//! time), skipping server requests, notifications and answers to other requests.

use serde_json::Value;

use super::{RequestId, RpcError, VERSION};

/// The outcome of one request.
pub type Outcome = Result<Value, RpcError>;

/// What one incoming message is, from the point of view of a client waiting for `id`.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// The response to our request.
    Answer(Outcome),
    /// An error response without an id: the server could not even read our request.
    Unattributed(RpcError),
    /// Anything else (server requests, notifications, responses to other ids): not ours to
    /// answer during a handshake.
    Other,
}

/// Classifies one parsed message. `Err` says why it is not JSON-RPC 2.0.
pub fn classify(message: &Value, id: &RequestId) -> Result<Incoming, String> {
    let Some(object) = message.as_object() else {
        return Err(format!("expected a JSON object, got {}", kind_of(message)));
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some(VERSION) {
        return Err(r#"the message lacks "jsonrpc": "2.0""#.into());
    }
    if object.contains_key("method") {
        return Ok(Incoming::Other);
    }
    let ours = object.get("id").and_then(RequestId::from_value).as_ref() == Some(id);
    let outcome = match (object.get("result"), object.get("error")) {
        (Some(result), None) => Ok(result.clone()),
        (None, Some(error)) => Err(RpcError::from_object(error)?),
        _ => return Err("a response must carry exactly one of result and error".into()),
    };
    Ok(match (ours, outcome) {
        (true, outcome) => Incoming::Answer(outcome),
        (false, Err(e)) if object.get("id").is_none_or(Value::is_null) => Incoming::Unattributed(e),
        (false, _) => Incoming::Other,
    })
}

/// Finds the answer to `id` in a complete JSON body (one message or a batch).
/// `Ok(None)`: the body is JSON-RPC but holds no answer to `id`.
pub fn answer_in_body(body: &[u8], id: &RequestId) -> Result<Option<Outcome>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
    let messages = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut unattributed = None;
    for message in &messages {
        match classify(message, id)? {
            Incoming::Answer(outcome) => return Ok(Some(outcome)),
            Incoming::Unattributed(e) => unattributed = Some(e),
            Incoming::Other => {}
        }
    }
    Ok(unattributed.map(Err))
}

/// A short name for a JSON value's type, for error messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer_in_body(body: &[u8], id: u64) -> Result<Option<Outcome>, String> {
        super::answer_in_body(body, &RequestId::from(id))
    }

    #[test]
    fn a_result_for_our_id_is_the_answer() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
        assert_eq!(answer_in_body(body, 1), Ok(Some(Ok(json!({"tools": []})))));
    }

    #[test]
    fn an_error_object_is_parsed_with_its_data() {
        let body = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"unsupported","data":{"supported":["2025-11-25"]}}}"#;
        let got = answer_in_body(body, 1).unwrap().unwrap().unwrap_err();
        assert_eq!(got.code, -32022);
        assert_eq!(got.message, "unsupported");
        assert_eq!(got.data, Some(json!({"supported": ["2025-11-25"]})));
    }

    #[test]
    fn an_error_with_a_null_id_is_attributed_to_the_request() {
        let body =
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#;
        let got = answer_in_body(body, 5).unwrap().unwrap().unwrap_err();
        assert_eq!(got.code, -32700);
    }

    #[test]
    fn batches_are_searched_and_other_messages_skipped() {
        let body = br#"[{"jsonrpc":"2.0","method":"notifications/message","params":{}},
                        {"jsonrpc":"2.0","id":9,"result":{}},
                        {"jsonrpc":"2.0","id":2,"result":{"ok":true}}]"#;
        assert_eq!(answer_in_body(body, 2), Ok(Some(Ok(json!({"ok": true})))));
        assert_eq!(answer_in_body(body, 4), Ok(None));
    }

    #[test]
    fn what_is_not_json_rpc_2_says_why() {
        let not = |body: &[u8]| answer_in_body(body, 1).unwrap_err();
        assert!(not(b"<!doctype html>").contains("invalid JSON"));
        assert!(not(br#"{"id":1,"result":{}}"#).contains("jsonrpc"));
        assert!(not(br#"{"jsonrpc":"1.0","id":1,"result":{}}"#).contains("jsonrpc"));
        assert!(not(br#"{"jsonrpc":"2.0","id":1}"#).contains("exactly one"));
        assert!(not(br#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#).contains("code"));
        assert!(not(b"42").contains("a number"));
    }
}
