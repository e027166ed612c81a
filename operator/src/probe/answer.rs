//! Picks the answer to the probe's request out of what a server sent (one message, a batch, or
//! one SSE event) and reads its result straight into the type the caller expects.
//!
//! Messages are read as borrowed raw slices of the body and only the answer's `result` is
//! deserialized, so a hostile body never becomes a generic JSON tree: unknown fields, other
//! messages and oversized values are skipped without being kept.

use std::fmt;
use std::marker::PhantomData;

use mcp_wire::jsonrpc::{RequestId, RpcError, VERSION};
use serde::Deserialize;
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::text::clip;

/// Longest JSON-RPC error message kept (it ends up in conditions and Events).
pub const ERROR_MESSAGE_BYTES: usize = 200;
/// Largest error `data` parsed (it may list supported protocol versions).
const ERROR_DATA_BYTES: usize = 4096;
/// Longest id compared with ours: our ids are small integers.
const ID_BYTES: usize = 64;

/// The outcome of one request, its result typed.
pub type Outcome<T> = Result<T, RpcError>;

/// What one incoming message is, for a client waiting for one answer.
#[derive(Debug)]
pub enum Incoming<T> {
    /// The response to our request.
    Answer(Outcome<T>),
    /// An error response without an id: the server could not even read our request.
    Unattributed(RpcError),
    /// Server requests, notifications, responses to other ids.
    Other,
}

/// One message as borrowed slices of the body.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireError<'a> {
    code: i64,
    message: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn is_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| r.get() == "null")
}

fn is_ours(raw: Option<&RawValue>, id: &RequestId) -> bool {
    raw.filter(|r| r.get().len() <= ID_BYTES)
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .and_then(|v| RequestId::from_value(&v))
        .as_ref()
        == Some(id)
}

fn read_error(raw: &RawValue) -> Result<RpcError, String> {
    let wire: WireError = serde_json::from_str(raw.get())
        .map_err(|_| "the error object needs an integer code and a string message".to_owned())?;
    let mut error = RpcError::new(wire.code, clip(&wire.message, ERROR_MESSAGE_BYTES));
    if let Some(data) = wire.data.filter(|d| d.get().len() <= ERROR_DATA_BYTES)
        && let Ok(data) = serde_json::from_str(data.get())
    {
        error = error.with_data(data);
    }
    Ok(error)
}

fn classify<T: DeserializeOwned>(message: Envelope, id: &RequestId) -> Result<Incoming<T>, String> {
    if message.jsonrpc.map(RawValue::get) != Some(&format!("\"{VERSION}\"")) {
        return Err(r#"the message lacks "jsonrpc": "2.0""#.into());
    }
    if message.method.is_some() {
        return Ok(Incoming::Other);
    }
    let ours = is_ours(message.id, id);
    match (message.result, message.error) {
        (Some(result), None) if ours => serde_json::from_str(result.get())
            .map(|r| Incoming::Answer(Ok(r)))
            .map_err(|e| format!("the result does not have the expected shape ({})", at(&e))),
        (Some(_), None) => Ok(Incoming::Other),
        (None, Some(error)) => {
            let error = read_error(error)?;
            Ok(if ours {
                Incoming::Answer(Err(error))
            } else if is_null(message.id) {
                Incoming::Unattributed(error)
            } else {
                Incoming::Other
            })
        }
        _ => Err("a response must carry exactly one of result and error".into()),
    }
}

/// Where parsing stopped. serde_json's own messages may quote the input, so only the position
/// and kind of the error are kept.
fn at(e: &serde_json::Error) -> String {
    format!("line {}, column {}", e.line(), e.column())
}

fn invalid_json(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => format!("not a JSON-RPC message or batch ({})", at(e)),
        Category::Eof => "the JSON ends early".into(),
        Category::Syntax | Category::Io => format!("invalid JSON ({})", at(e)),
    }
}

/// Reads one message (an SSE event's data).
pub fn in_message<T: DeserializeOwned>(text: &str, id: &RequestId) -> Result<Incoming<T>, String> {
    if !text.trim_start().starts_with('{') {
        return Err("expected a JSON object".into());
    }
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| invalid_json(&e))?;
    classify(envelope, id)
}

/// Finds the answer to `id` in a complete JSON body (one message or a batch). `Ok(None)`: the
/// body is JSON-RPC but holds no answer to `id`.
pub fn in_body<T: DeserializeOwned>(
    body: &[u8],
    id: &RequestId,
) -> Result<Option<Outcome<T>>, String> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = (&mut de)
        .deserialize_any(Search::<T> {
            id,
            ty: PhantomData,
        })
        .map_err(|e| invalid_json(&e))?;
    de.end().map_err(|e| invalid_json(&e))?;
    let (answer, unattributed) = found.map_err(|why| why.0)?;
    Ok(answer.or(unattributed.map(Err)))
}

/// Why a message of the body is not JSON-RPC, kept apart from JSON syntax errors.
struct NotRpc(String);

type Found<T> = Result<(Option<Outcome<T>>, Option<RpcError>), NotRpc>;

/// Walks a body message by message, keeping only the answer to `id` (and an unattributed
/// error), so a batch of any length costs no more memory than its largest message.
struct Search<'i, T> {
    id: &'i RequestId,
    ty: PhantomData<T>,
}

impl<T: DeserializeOwned> Search<'_, T> {
    fn take(&self, envelope: Envelope, found: &mut Found<T>) {
        let Ok((answer, unattributed)) = found else {
            return;
        };
        if answer.is_some() {
            return;
        }
        match classify(envelope, self.id) {
            Ok(Incoming::Answer(outcome)) => *answer = Some(outcome),
            Ok(Incoming::Unattributed(e)) => *unattributed = Some(e),
            Ok(Incoming::Other) => {}
            Err(why) => *found = Err(NotRpc(why)),
        }
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Search<'_, T> {
    type Value = Found<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let envelope = Envelope::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        let mut found = Ok((None, None));
        self.take(envelope, &mut found);
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = Ok((None, None));
        while let Some(envelope) = seq.next_element::<Envelope>()? {
            self.take(envelope, &mut found);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Named {
        name: String,
    }

    fn id() -> RequestId {
        RequestId::from(7)
    }

    #[test]
    fn the_answer_is_found_in_a_batch_and_read_into_its_type() {
        let body = br#"[{"jsonrpc":"2.0","method":"notifications/progress","params":{}},
            {"jsonrpc":"2.0","id":6,"result":{"name":"other"}},
            {"jsonrpc":"2.0","id":7,"result":{"name":"ours","extra":[1,2,3]}}]"#;
        let found = in_body::<Named>(body, &id()).unwrap();
        assert_eq!(
            found.unwrap().unwrap(),
            Named {
                name: "ours".into()
            }
        );
        let none = in_body::<Named>(br#"{"jsonrpc":"2.0","id":6,"result":{}}"#, &id()).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn errors_are_typed_and_their_messages_clipped() {
        let message = "m\n".repeat(10_000);
        let body = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "id": null,
            "error": {"code": -32600, "message": message, "data": {"supported": ["2025-11-25"]}}
        }))
        .unwrap();
        let Some(Err(e)) = in_body::<Value>(&body, &id()).unwrap() else {
            panic!("expected the unattributed error");
        };
        assert_eq!(e.code, -32600);
        assert!(e.message.len() <= ERROR_MESSAGE_BYTES && !e.message.contains('\n'));
        assert!(e.data.is_some());
    }

    #[test]
    fn what_is_not_json_rpc_is_described_without_quoting_it() {
        let secret = "internal-secret-page";
        for body in [
            format!("<html>{secret}</html>"),
            format!(r#"{{"id":7,"result":"{secret}"}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":7,"result":"{secret}"}}"#),
            format!(r#"["{secret}"]"#),
        ] {
            let why = match in_body::<Named>(body.as_bytes(), &id()) {
                Err(why) => why,
                Ok(found) => panic!("{body} was read as {found:?}"),
            };
            assert!(!why.contains(secret), "{why}");
        }
        let why = in_message::<Named>(&format!("[{secret}]"), &id()).unwrap_err();
        assert!(!why.contains(secret), "{why}");
    }
}
