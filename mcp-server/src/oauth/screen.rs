//! What a caller sees of `tools/list`: the tools it may call. A tool whose `--oauth-tool-scope`
//! scopes the caller's token lacks is left out of the answer, whoever produced it (the built-in
//! catalogue, a bridged child or the upstream behind the proxy); the transport applies the
//! screen to the answer of each `tools/list` request it registered one for.
//!
//! The answer is read without building a tree of it: the `tools` array as raw entries, each
//! entry only as far as its `name`, so a hostile answer (a million tiny entries, deep nesting)
//! costs little more than its own size, which the transport has already bounded. Entries that
//! stay are copied byte for byte; `nextCursor` and every other field pass unchanged, so
//! pagination works as before (a page may come back shorter, or empty with its cursor).
//!
//! An answer that does not have the shape of a `tools/list` result while something must be
//! hidden from the caller is replaced by an error (-32603, `data.reason = "invalid-tools-list"`):
//! what cannot be read cannot be shown to be safe. Error answers pass unchanged.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Caller, Settings};
use crate::message::jsonrpc::INTERNAL_ERROR;
use crate::message::{Message, RpcError};

/// The `data.reason` of a withheld answer.
pub const INVALID: &str = "invalid-tools-list";

/// The tools one caller may not call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolScreen {
    hidden: BTreeSet<String>,
}

/// One JSON object, its fields raw (a repeated key keeps its last value, as JSON parsers do).
type Fields<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// A tool entry as far as the screen reads it. A repeated `name` is an error: which one a
/// client would read is not certain.
#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
}

impl ToolScreen {
    /// The screen for `caller`; `None` when no tool needs scopes (every answer is the same for
    /// everyone and passes untouched).
    pub fn for_caller(settings: &Settings, caller: &Caller) -> Option<Self> {
        if settings.tool_scopes.is_empty() {
            return None;
        }
        let hidden = settings
            .tool_scopes
            .keys()
            .filter(|tool| !settings.missing_for_tool(caller, tool).is_empty())
            .cloned()
            .collect();
        Some(ToolScreen { hidden })
    }

    #[cfg(test)]
    fn hiding(tools: &[&str]) -> Self {
        ToolScreen {
            hidden: tools.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// The answer to a `tools/list` as this caller may see it.
    pub fn apply(&self, answer: Message) -> Message {
        match self.screened(answer.text()) {
            Ok(None) => answer,
            Ok(Some(text)) => Message::parse(&text).unwrap_or_else(|_| self.withheld(&answer)),
            Err(()) if self.hidden.is_empty() => answer,
            Err(()) => self.withheld(&answer),
        }
    }

    /// The screened text, `None` when the answer may pass as it is; `Err` when it is not a
    /// readable `tools/list` result.
    fn screened(&self, text: &str) -> Result<Option<String>, ()> {
        let mut message: Fields<'_> = serde_json::from_str(text).map_err(|_| ())?;
        let Some(&result) = message.get("result") else {
            // An error answer names no tools.
            return Ok(None);
        };
        let mut result: Fields<'_> = serde_json::from_str(result.get()).map_err(|_| ())?;
        let tools: Vec<&RawValue> =
            serde_json::from_str(result.get("tools").ok_or(())?.get()).map_err(|_| ())?;
        // What it may be cached as: this caller's list, not everyone's (2026-07-28 results).
        let private = (result.get("cacheScope").map(|v| v.get()) == Some(r#""public""#))
            .then(|| RawValue::from_string(r#""private""#.to_owned()))
            .transpose()
            .map_err(|_| ())?;
        if self.hidden.is_empty() && private.is_none() {
            return Ok(None);
        }
        let mut kept = Vec::with_capacity(tools.len());
        for tool in tools {
            if !self.hides(tool)? {
                kept.push(tool);
            }
        }
        // Written anew even when nothing was left out: what is sent is what was read, with no
        // repeated key left over for a parser that reads the first one.
        let tools = serde_json::value::to_raw_value(&kept).map_err(|_| ())?;
        result.insert(Cow::Borrowed("tools"), &*tools);
        if let Some(private) = &private {
            result.insert(Cow::Borrowed("cacheScope"), &**private);
        }
        let result = serde_json::value::to_raw_value(&result).map_err(|_| ())?;
        message.insert(Cow::Borrowed("result"), &*result);
        serde_json::to_string(&message).map(Some).map_err(|_| ())
    }

    /// Whether `tool` is one to leave out: an object whose `name` is a hidden tool's. What is
    /// not an object, or has a name that is not text, names no tool a client could call.
    fn hides(&self, tool: &RawValue) -> Result<bool, ()> {
        if !tool.get().trim_start().starts_with('{') {
            return Ok(false);
        }
        let named: Named<'_> = serde_json::from_str(tool.get()).map_err(|_| ())?;
        let name = named
            .name
            .and_then(|n| serde_json::from_str::<Cow<'_, str>>(n.get()).ok());
        Ok(name.is_some_and(|n| self.hidden.contains(n.as_ref())))
    }

    fn withheld(&self, answer: &Message) -> Message {
        RpcError::new(
            INTERNAL_ERROR,
            "the server's tools/list answer is malformed; it is withheld because some tools \
             must not be shown to this caller",
        )
        .with_id(answer.id().cloned())
        .with_data(serde_json::json!({ "reason": INVALID }))
        .to_message()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn answer(result: Value) -> Message {
        Message::from_value(&json!({"jsonrpc": "2.0", "id": 7, "result": result}))
    }

    fn names(message: &Message) -> Vec<String> {
        let value: Value = serde_json::from_str(message.text()).unwrap();
        value["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    fn reason(message: &Message) -> Option<String> {
        let value: Value = serde_json::from_str(message.text()).unwrap();
        value["error"]["data"]["reason"].as_str().map(str::to_owned)
    }

    pub(crate) fn settings(tool_scopes: &[(&str, &[&str])]) -> Settings {
        Settings {
            issuer: "https://id.example".into(),
            resource: url::Url::parse("https://mcp.example/mcp").unwrap(),
            audiences: vec![],
            required_scopes: BTreeSet::new(),
            jwks_url: None,
            clock_skew: std::time::Duration::from_secs(60),
            refetch_floor: std::time::Duration::from_secs(30),
            tool_scopes: tool_scopes
                .iter()
                .map(|(t, s)| ((*t).to_owned(), s.iter().map(|x| (*x).to_owned()).collect()))
                .collect(),
            ca_file: None,
            pass_token: false,
        }
    }

    #[test]
    fn the_screen_hides_tools_whose_scopes_the_caller_lacks() {
        let settings = settings(&[("delete", &["w"]), ("admin", &["w", "a"])]);
        let caller = |scopes: &[&str]| Caller {
            subject: "u".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            client_id: None,
        };
        assert_eq!(
            ToolScreen::for_caller(&settings, &caller(&["w"])),
            Some(ToolScreen::hiding(&["admin"]))
        );
        assert_eq!(
            ToolScreen::for_caller(&settings, &caller(&[])),
            Some(ToolScreen::hiding(&["admin", "delete"]))
        );
        assert_eq!(
            ToolScreen::for_caller(&settings, &caller(&["w", "a"])),
            Some(ToolScreen::hiding(&[]))
        );
        assert_eq!(
            ToolScreen::for_caller(&self::settings(&[]), &caller(&[])),
            None
        );
    }

    #[test]
    fn hidden_tools_go_and_the_rest_stays_byte_for_byte_with_the_cursor() {
        let text = r#"{"jsonrpc":"2.0","id":"p2","result":{"tools":[{"name":"echo","inputSchema":{"type":"object","x":1.50}},{"name":"delete"},{"name":"add","description":"\u00e9"}],"nextCursor":"c-3","_meta":{"k":[1,2]}}}"#;
        let out = ToolScreen::hiding(&["delete"]).apply(Message::parse(text).unwrap());
        let value: Value = serde_json::from_str(out.text()).unwrap();
        assert_eq!(value["id"], "p2");
        assert_eq!(value["result"]["nextCursor"], "c-3");
        assert_eq!(value["result"]["_meta"], json!({"k": [1, 2]}));
        assert_eq!(names(&out), ["echo", "add"]);
        assert!(
            out.text()
                .contains(r#"{"name":"echo","inputSchema":{"type":"object","x":1.50}}"#)
        );
        assert!(
            out.text().contains(r#""description":"\u00e9""#),
            "entries are copied as sent"
        );
    }

    #[test]
    fn nothing_to_hide_leaves_the_answer_alone() {
        let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}"#;
        let out = ToolScreen::hiding(&[]).apply(Message::parse(text).unwrap());
        assert_eq!(out.text(), text);
        // Even a malformed one: there is nothing it could reveal.
        let odd = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":"lots"}}"#;
        assert_eq!(
            ToolScreen::hiding(&[])
                .apply(Message::parse(odd).unwrap())
                .text(),
            odd
        );
    }

    #[test]
    fn a_shared_cache_scope_becomes_private() {
        let list = json!({"tools": [{"name": "echo"}], "ttlMs": 1000, "cacheScope": "public", "resultType": "complete"});
        for screen in [ToolScreen::hiding(&[]), ToolScreen::hiding(&["x"])] {
            let out: Value =
                serde_json::from_str(screen.apply(answer(list.clone())).text()).unwrap();
            assert_eq!(out["result"]["cacheScope"], "private");
            assert_eq!(out["result"]["ttlMs"], 1000);
        }
    }

    #[test]
    fn repeated_keys_are_read_as_parsers_read_them_and_sent_once() {
        // JavaScript and Python keep the last value of a repeated key; so does the screen, and
        // the answer sent has the key once, so no parser can find the hidden tool.
        let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete"}],"tools":[{"name":"echo"},{"name":"delete"}]}}"#;
        let out = ToolScreen::hiding(&["delete"]).apply(Message::parse(text).unwrap());
        assert_eq!(names(&out), ["echo"]);
        assert_eq!(out.text().matches("\"tools\"").count(), 1);
        assert!(!out.text().contains("delete"));
        let escaped = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"del\u0065te"}]}}"#;
        let out = ToolScreen::hiding(&["delete"]).apply(Message::parse(escaped).unwrap());
        assert!(names(&out).is_empty(), "an escaped name is the same name");
    }

    #[test]
    fn malformed_answers_are_withheld_when_something_must_be_hidden() {
        let screen = ToolScreen::hiding(&["delete"]);
        for result in [
            json!("tools"),
            json!({}),
            json!({"tools": {"0": {"name": "delete"}}}),
        ] {
            let out = screen.apply(answer(result.clone()));
            assert_eq!(reason(&out).as_deref(), Some(INVALID), "{result}");
            assert_eq!(
                out.id(),
                answer(json!({})).id(),
                "the error answers the request"
            );
        }
        // Which of two names a client would read is not certain: withheld.
        let twice =
            r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"delete","name":"echo"}]}}"#;
        let out = screen.apply(Message::parse(twice).unwrap());
        assert_eq!(reason(&out).as_deref(), Some(INVALID));
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{{"name":"e","x":{}1{}}}]}}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        // Within the parser's depth limit: read; a tool's own fields are never looked into.
        assert_eq!(names(&screen.apply(Message::parse(&deep).unwrap())), ["e"]);
        // An entry that is not an object, or whose name is not text, names no tool and stays.
        let odd = screen.apply(answer(
            json!({"tools": [{"name": 5}, 7, ["delete"], {"name": "delete"}]}),
        ));
        assert_eq!(names(&odd), ["?", "?", "?"]);
        // Errors pass as they are.
        let error = RpcError::new(-32601, "nope")
            .with_id(answer(json!({})).id().cloned())
            .to_message();
        assert_eq!(screen.apply(error.clone()).text(), error.text());
    }

    proptest! {
        /// Whatever the answer, the screen never panics, never lets a hidden name through,
        /// and either keeps every other entry in order or withholds the answer.
        #[test]
        fn no_answer_shows_a_hidden_tool(
            entries in prop::collection::vec(
                prop_oneof![
                    "[a-d]{1,2}".prop_map(|n| json!({"name": n})),
                    "[a-d]{1,2}".prop_map(|n| json!({"name": n, "name2": n, "x": {"name": "a"}})),
                    any::<i64>().prop_map(|n| json!({"name": n})),
                    Just(json!(null)),
                    Just(json!([])),
                ],
                0..20,
            ),
            extra in prop::collection::btree_map("[a-z]{1,8}", any::<u8>(), 0..4),
            hidden in prop::collection::btree_set("[a-d]{1,2}", 0..4),
        ) {
            let mut result = json!({"tools": entries});
            for (k, v) in &extra {
                if k != "tools" { result[k] = json!(v); }
            }
            let screen = ToolScreen { hidden: hidden.clone() };
            let out = screen.apply(answer(result.clone()));
            let value: Value = serde_json::from_str(out.text()).unwrap();
            if let Some(tools) = value["result"]["tools"].as_array() {
                let expected: Vec<&Value> = entries_of(&result)
                    .iter()
                    .filter(|t| !t["name"].as_str().is_some_and(|n| hidden.contains(n)))
                    .collect();
                prop_assert_eq!(tools.iter().collect::<Vec<_>>(), expected);
                for (k, v) in &extra {
                    if k != "tools" { prop_assert_eq!(&value["result"][k], &json!(v)); }
                }
            } else {
                prop_assert_eq!(value["error"]["data"]["reason"].as_str(), Some(INVALID));
                prop_assert!(!hidden.is_empty());
            }
        }

        /// Arbitrary text in the result never panics the screen, and what comes out is a
        /// JSON-RPC message.
        #[test]
        fn arbitrary_results_never_panic(raw in "[\\[\\]{}\",:a-z0-9 ]{0,80}") {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":{raw}}}}}"#);
            if let Ok(message) = Message::parse(&text) {
                let out = ToolScreen::hiding(&["a"]).apply(message);
                prop_assert!(out.is_response());
            }
        }
    }

    fn entries_of(result: &Value) -> &Vec<Value> {
        result["tools"].as_array().unwrap()
    }
}
