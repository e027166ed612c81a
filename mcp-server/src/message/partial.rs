//! The id of a JSON-RPC message that cannot be read whole (longer than the line limit, or not
//! UTF-8), from the first and last bytes kept of it, so the request it answers can be failed
//! instead of waiting forever. Only a top-level `id` counts: an `id` inside `params` or
//! `result` belongs to something else.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::RequestId;

/// The top-level id in `head` (the first bytes of a message) or, failing that, in `tail` (its
/// last bytes): writers put the id first (`{"jsonrpc":"2.0","id":1,"result":...}`) or last
/// (`{"result":...,"jsonrpc":"2.0","id":1}`).
pub fn id_of_truncated(head: &[u8], tail: &[u8]) -> Option<RequestId> {
    id_in_head(head).or_else(|| id_in_tail(&String::from_utf8_lossy(tail)))
}

/// Reads the object's members in order until `id`, ignoring each other member's value; the
/// message may end anywhere after that.
fn id_in_head(head: &[u8]) -> Option<RequestId> {
    let head = String::from_utf8_lossy(head);
    let mut found = None;
    let mut reader = serde_json::Deserializer::from_str(&head);
    // Ends in an error at the cut; what was found before it stands.
    let _ = reader.deserialize_map(FindId(&mut found));
    RequestId::from_value(&found?)
}

struct FindId<'a>(&'a mut Option<Value>);

impl<'de> Visitor<'de> for FindId<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "id" {
                *self.0 = Some(map.next_value()?);
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// The last `"id":` key whose value is followed only by more top-level members and the closing
/// brace. (A raw `"id"` cannot occur inside a JSON string, where quotes are escaped.)
fn id_in_tail(tail: &str) -> Option<RequestId> {
    tail.rmatch_indices("\"id\"").find_map(|(at, key)| {
        let after_key = tail[at + key.len()..].trim_start().strip_prefix(':')?;
        let mut values = serde_json::Deserializer::from_str(after_key).into_iter::<Value>();
        let value = values.next()?.ok()?;
        let rest = after_key[values.byte_offset()..].trim();
        let closes_the_message = rest == "}"
            || rest.strip_prefix(',').is_some_and(|members| {
                serde_json::from_str::<serde_json::Map<String, Value>>(&format!("{{{members}"))
                    .is_ok()
            });
        closes_the_message
            .then(|| RequestId::from_value(&value))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let cut = bytes.len().min(40);
        let head = &bytes[..cut];
        let tail = &bytes[bytes.len().saturating_sub(40)..];
        id_of_truncated(head, tail).map(|i| i.as_json().to_owned())
    }

    fn big(inner: &str) -> String {
        format!(r#"{{"content":"{}","inner":{inner}}}"#, "x".repeat(500))
    }

    #[test]
    fn an_id_written_first_is_found_in_the_head() {
        let text = format!(r#"{{"jsonrpc":"2.0","id":"a-7","result":{}}}"#, big("1"));
        assert_eq!(id(&text).as_deref(), Some(r#""a-7""#));
    }

    #[test]
    fn an_id_written_last_is_found_in_the_tail() {
        let text = format!(r#"{{"result":{},"jsonrpc":"2.0","id":42}}"#, big("1"));
        assert_eq!(id(&text).as_deref(), Some("42"));
    }

    #[test]
    fn ids_nested_in_params_or_results_do_not_count() {
        let text = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{}}}"#,
            big(r#"{"id":5}"#)
        );
        assert_eq!(id(&text), None);
        assert_eq!(id(&format!(r#"{{"result":{}}}"#, big(r#"{"id":5}"#))), None);
    }

    #[test]
    fn garbage_has_no_id() {
        for text in ["", "not json", "[1,2,3]", r#"{"id":null}"#, r#"{"id""#] {
            assert_eq!(id(text), None, "{text}");
        }
        let deep = format!("{}{}", "{\"a\":".repeat(10_000), "1");
        assert_eq!(id_of_truncated(deep.as_bytes(), deep.as_bytes()), None);
    }
}
