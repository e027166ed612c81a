//! What changed between two contracts, and whether it breaks the clients of the old one.
//!
//! Arguments (input schemas) break when the new schema refuses calls the old one took: a removed
//! tool or argument, a new required argument, a narrowed type, enum or bound, a constraint that
//! cannot be compared field by field. Results (output schemas) break when clients may get what the
//! old schema ruled out: a removed or no longer guaranteed field, a widened type or enum, no
//! output schema at all. A tool that stops being read-only, or becomes destructive, breaks the
//! clients that approve calls by those hints. Everything else (new tools, new optional
//! arguments, new output fields, wider inputs, descriptions) is compatible.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Contract, Tool, canonical};
use crate::text::clip;

/// Changes recorded per diff at most; beyond that they are only counted.
const MAX_CHANGES: usize = 200;
/// Schemas nested deeper than this are compared as a whole.
const MAX_DEPTH: usize = 16;

/// One change to one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub tool: String,
    pub what: String,
}

/// Changes from an old contract to a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Changes that break clients of the old contract.
    pub breaking: Vec<Change>,
    /// Breaking changes to tools the user accepted (`rollout.acceptToolChanges`).
    pub accepted: Vec<Change>,
    /// Changes no client of the old contract notices.
    pub compatible: Vec<Change>,
    /// Changes left out of the lists above (more than [`MAX_CHANGES`]).
    pub more: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.breaking.is_empty() && self.accepted.is_empty() && self.compatible.is_empty()
    }

    /// Moves the breaking changes of the `accepted` tools to [`Diff::accepted`].
    pub fn accepting(mut self, accepted: &[String]) -> Self {
        let (taken, kept) = std::mem::take(&mut self.breaking)
            .into_iter()
            .partition(|c| accepted.contains(&c.tool));
        self.breaking = kept;
        self.accepted = taken;
        self
    }

    fn push(&mut self, breaking: bool, tool: &str, what: String) {
        if self.breaking.len() + self.compatible.len() >= MAX_CHANGES {
            self.more += 1;
            return;
        }
        let change = Change {
            tool: tool.to_owned(),
            what,
        };
        match breaking {
            true => self.breaking.push(change),
            false => self.compatible.push(change),
        }
    }
}

/// `changes` in words, at most `bytes` long: `tool "a": removed; tool "b": ...`.
pub fn describe(changes: &[Change], bytes: usize) -> String {
    let mut text = String::new();
    for (i, change) in changes.iter().enumerate() {
        let item = format!("tool {:?}: {}", clip(&change.tool, 128), change.what);
        let separator = if i == 0 { "" } else { "; " };
        let rest = changes.len() - i;
        // Leave room to say how many did not fit.
        if text.len() + separator.len() + item.len() + 24 > bytes && rest > 1 {
            text.push_str(&format!("{separator}and {rest} more"));
            return text;
        }
        text.push_str(separator);
        text.push_str(&item);
    }
    clip(&text, bytes)
}

/// The note of the Event recorded when revision `passed` became stable with `changes` to the
/// tools before it, at most `bytes` long, and whether it is a warning (something broke the
/// contract, accepted or not); None when the tools did not change.
pub fn summary(passed: &str, changes: &Diff, bytes: usize) -> Option<(bool, String)> {
    if changes.is_empty() {
        return None;
    }
    let groups = [
        ("breaking (toolContract is Warn)", &changes.breaking),
        ("breaking, accepted", &changes.accepted),
        ("compatible", &changes.compatible),
    ];
    let mut note = format!("revision {passed} changed the tools:");
    let mut first = true;
    for (title, list) in groups.into_iter().filter(|(_, l)| !l.is_empty()) {
        let head = format!("{} {title}: ", if first { "" } else { ";" });
        first = false;
        let room = bytes.saturating_sub(note.len() + head.len());
        if room < 32 {
            break;
        }
        note.push_str(&head);
        note.push_str(&describe(list, room));
    }
    let warning = !changes.breaking.is_empty() || !changes.accepted.is_empty();
    Some((warning, clip(&note, bytes)))
}

/// The changes from `old` to `new`.
pub fn diff(old: &Contract, new: &Contract) -> Diff {
    let mut diff = Diff::default();
    for (name, before) in &old.tools {
        match new.tools.get(name) {
            None if new.truncated => {}
            None => diff.push(true, name, "removed".into()),
            Some(after) => tool(&mut diff, name, before, after),
        }
    }
    if !old.truncated {
        for name in new.tools.keys().filter(|n| !old.tools.contains_key(*n)) {
            diff.push(false, name, "added".into());
        }
    }
    diff
}

fn tool(diff: &mut Diff, name: &str, before: &Tool, after: &Tool) {
    if before.oversized.is_some() || after.oversized.is_some() {
        if before.oversized != after.oversized {
            diff.push(
                true,
                name,
                format!(
                    "its schemas changed and are larger than {} KiB, too large to compare field \
                     by field",
                    super::TOOL_BYTES / 1024
                ),
            );
        }
        return;
    }
    let any = Value::Object(Map::new());
    let mut input = Walk {
        diff,
        tool: name,
        side: Side::Arguments,
    };
    input.schema(
        "",
        before.input_schema.as_ref().unwrap_or(&any),
        after.input_schema.as_ref().unwrap_or(&any),
        0,
    );
    match (&before.output_schema, &after.output_schema) {
        (Some(_), None) => diff.push(true, name, "no longer declares an output schema".into()),
        (None, Some(_)) => diff.push(false, name, "now declares an output schema".into()),
        (Some(b), Some(a)) => Walk {
            diff,
            tool: name,
            side: Side::Results,
        }
        .schema("", b, a, 0),
        (None, None) => {}
    }
    hints(
        diff,
        name,
        before.annotations.as_ref(),
        after.annotations.as_ref(),
    );
}

/// Changes of the behaviour hints: losing `readOnlyHint` or gaining `destructiveHint` breaks
/// clients that approve calls by them.
fn hints(diff: &mut Diff, name: &str, before: Option<&Value>, after: Option<&Value>) {
    let hint = |a: Option<&Value>, key: &str| a.and_then(|a| a.get(key)).and_then(Value::as_bool);
    for key in [
        "readOnlyHint",
        "destructiveHint",
        "idempotentHint",
        "openWorldHint",
    ] {
        let (b, a) = (hint(before, key), hint(after, key));
        if b == a {
            continue;
        }
        let breaking = match key {
            "readOnlyHint" => b == Some(true),
            // A tool that is not read-only counts as destructive unless it says otherwise.
            "destructiveHint" => b == Some(false) && hint(after, "readOnlyHint") != Some(true),
            _ => false,
        };
        let show = |v: Option<bool>| v.map_or("unset".to_owned(), |v| v.to_string());
        diff.push(breaking, name, format!("{key} {} -> {}", show(b), show(a)));
    }
}

/// Which way a schema is read: arguments clients send, or results clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Arguments,
    Results,
}

/// Keywords that describe a schema without constraining it.
const DESCRIPTIVE: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$schema",
    "$id",
];
/// Keywords compared one by one below; any other keyword that changed is compared as a whole.
const COMPARED: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
];
/// Lower bounds: raising one (or adding one) narrows what a schema takes.
const LOWER_BOUNDS: &[&str] = &[
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];
/// Upper bounds: lowering one (or adding one) narrows what a schema takes.
const UPPER_BOUNDS: &[&str] = &[
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

struct Walk<'a> {
    diff: &'a mut Diff,
    tool: &'a str,
    side: Side,
}

impl Walk<'_> {
    /// Compares the schemas of one place (`path`, empty at the top).
    fn schema(&mut self, path: &str, before: &Value, after: &Value, depth: usize) {
        let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
            // `true`, `false` or garbage: only equality can be told.
            if before != after {
                self.push(true, path, "changed its schema".into());
            }
            return;
        };
        if depth >= MAX_DEPTH {
            if canonical(before) != canonical(after) {
                self.push(
                    true,
                    path,
                    "changed below the depth the comparison reads".into(),
                );
            }
            return;
        }
        self.types(path, b, a);
        self.allowed_values(path, b, a);
        if self.side == Side::Arguments {
            self.bounds(path, b, a);
        }
        self.other_keywords(path, b, a);
        self.properties(path, b, a, depth);
        if let (Some(bi), Some(ai)) = (b.get("items"), a.get("items")) {
            self.schema(&format!("{path}[]"), bi, ai, depth + 1);
        } else if b.get("items") != a.get("items") {
            let breaking = match self.side {
                Side::Arguments => a.contains_key("items"),
                Side::Results => b.contains_key("items"),
            };
            self.push(breaking, path, "changed what its items may be".into());
        }
    }

    fn types(&mut self, path: &str, b: &Map<String, Value>, a: &Map<String, Value>) {
        let (before, after) = (types(b), types(a));
        if before == after {
            return;
        }
        // Arguments: every type taken before must still be taken. Results: every type that
        // may come now must have been announced before.
        let (wider, narrower) = match self.side {
            Side::Arguments => (&after, &before),
            Side::Results => (&before, &after),
        };
        let breaking = match (wider, narrower) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(w), Some(n)) => n.iter().any(|t| !takes(w, t)),
        };
        let show = |t: &Option<BTreeSet<String>>| match t {
            None => "any".to_owned(),
            Some(t) => t.iter().cloned().collect::<Vec<_>>().join("|"),
        };
        self.push(
            breaking,
            path,
            format!("type {} -> {}", show(&before), show(&after)),
        );
    }

    fn allowed_values(&mut self, path: &str, b: &Map<String, Value>, a: &Map<String, Value>) {
        let (before, after) = (allowed(b), allowed(a));
        if before == after {
            return;
        }
        match (&before, &after) {
            (None, Some(_)) => {
                self.push(
                    self.side == Side::Arguments,
                    path,
                    "is now limited to listed values".into(),
                );
            }
            (Some(_), None) => {
                self.push(
                    self.side == Side::Results,
                    path,
                    "is no longer limited to listed values".into(),
                );
            }
            (Some(b), Some(a)) => {
                let dropped: Vec<String> = b.iter().filter(|v| !a.contains(v)).map(quote).collect();
                let added: Vec<String> = a.iter().filter(|v| !b.contains(v)).map(quote).collect();
                if !dropped.is_empty() {
                    self.push(
                        self.side == Side::Arguments,
                        path,
                        format!("no longer allows {}", dropped.join(", ")),
                    );
                }
                if !added.is_empty() {
                    self.push(
                        self.side == Side::Results,
                        path,
                        format!("now allows {}", added.join(", ")),
                    );
                }
            }
            (None, None) => {}
        }
    }

    fn bounds(&mut self, path: &str, b: &Map<String, Value>, a: &Map<String, Value>) {
        for (keys, narrows) in [
            (
                LOWER_BOUNDS,
                (|b: f64, a: f64| a > b) as fn(f64, f64) -> bool,
            ),
            (UPPER_BOUNDS, |b: f64, a: f64| a < b),
        ] {
            for key in keys {
                let (before, after) = (b.get(*key), a.get(*key));
                if before == after {
                    continue;
                }
                let breaking = match (before, after) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(b), Some(a)) => match (b.as_f64(), a.as_f64()) {
                        (Some(b), Some(a)) => narrows(b, a),
                        // Not numbers: only equality can be told.
                        _ => true,
                    },
                };
                let show =
                    |v: Option<&Value>| v.map_or("unset".to_owned(), |v| clip(&v.to_string(), 32));
                self.push(
                    breaking,
                    path,
                    format!("{key} {} -> {}", show(before), show(after)),
                );
            }
        }
    }

    /// Keywords not compared one by one (`pattern`, `format`, `anyOf`, `$ref`, ...): any change
    /// breaks, for it cannot be told whether it narrows. Bounds of results are not compared.
    fn other_keywords(&mut self, path: &str, b: &Map<String, Value>, a: &Map<String, Value>) {
        let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for key in keys {
            let k = key.as_str();
            if DESCRIPTIVE.contains(&k)
                || COMPARED.contains(&k)
                || LOWER_BOUNDS.contains(&k)
                || UPPER_BOUNDS.contains(&k)
            {
                continue;
            }
            let (before, after) = (b.get(k), a.get(k));
            if before.map(canonical) != after.map(canonical) {
                self.push(
                    true,
                    path,
                    format!("{:?} changed (not compared field by field)", clip(k, 64)),
                );
            }
        }
    }

    fn properties(
        &mut self,
        path: &str,
        b: &Map<String, Value>,
        a: &Map<String, Value>,
        depth: usize,
    ) {
        let (pb, pa) = (properties(b), properties(a));
        let (rb, ra) = (required(b), required(a));
        let noun = match self.side {
            Side::Arguments => "argument",
            Side::Results => "output field",
        };
        for (name, before) in &pb {
            let place = join(path, name);
            match pa.get(name) {
                None => self.note(true, format!("{noun} {place:?} removed")),
                Some(after) => self.schema(&place, before, after, depth + 1),
            }
        }
        for name in pa.keys().filter(|n| !pb.contains_key(*n)) {
            let place = join(path, name);
            match (self.side, ra.contains(*name)) {
                (Side::Arguments, true) => {
                    self.note(true, format!("new required argument {place:?}"))
                }
                (Side::Arguments, false) => {
                    self.note(false, format!("new optional argument {place:?}"))
                }
                (Side::Results, _) => self.note(false, format!("new output field {place:?}")),
            }
        }
        for name in ra.difference(&rb).filter(|n| pb.contains_key(n.as_str())) {
            let place = join(path, name);
            let breaking = self.side == Side::Arguments;
            self.note(breaking, format!("{noun} {place:?} is now required"));
        }
        for name in rb.difference(&ra).filter(|n| pa.contains_key(n.as_str())) {
            let place = join(path, name);
            let (breaking, what) = match self.side {
                Side::Arguments => (false, format!("argument {place:?} is no longer required")),
                Side::Results => (
                    true,
                    format!("output field {place:?} is no longer always present"),
                ),
            };
            self.note(breaking, what);
        }
        // Required names that no property describes.
        for name in ra
            .difference(&rb)
            .filter(|n| !pb.contains_key(n.as_str()) && !pa.contains_key(n.as_str()))
        {
            let place = join(path, name);
            self.note(
                self.side == Side::Arguments,
                format!("{noun} {place:?} is now required"),
            );
        }
        let closed =
            |s: &Map<String, Value>| s.get("additionalProperties") == Some(&Value::Bool(false));
        if closed(a) && !closed(b) && self.side == Side::Arguments {
            self.push(
                true,
                path,
                "no longer takes properties it does not list".into(),
            );
        }
        if let (Some(x), Some(y)) = (
            b.get("additionalProperties").filter(|v| v.is_object()),
            a.get("additionalProperties").filter(|v| v.is_object()),
        ) {
            self.schema(&format!("{path}{{*}}"), x, y, depth + 1);
        }
    }

    /// Records a change of the schema at `path` (empty: the top of the schema).
    fn push(&mut self, breaking: bool, path: &str, what: String) {
        let what = match (path, self.side) {
            ("", Side::Arguments) => format!("arguments: {what}"),
            ("", Side::Results) => format!("output: {what}"),
            (p, Side::Arguments) => format!("argument {p:?} {what}"),
            (p, Side::Results) => format!("output field {p:?} {what}"),
        };
        self.diff.push(breaking, self.tool, what);
    }

    /// Records a change whose text names its place itself.
    fn note(&mut self, breaking: bool, what: String) {
        self.diff.push(breaking, self.tool, what);
    }
}

fn join(path: &str, name: &str) -> String {
    let name = clip(name, 64);
    match path {
        "" => name,
        p => format!("{p}.{name}"),
    }
}

/// The JSON types a schema takes; None for any.
fn types(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// Whether a schema of `types` takes values of type `t` (every integer is a number).
fn takes(types: &BTreeSet<String>, t: &str) -> bool {
    types.contains(t) || (t == "integer" && types.contains("number"))
}

/// The values `enum` or `const` allow; None for any.
fn allowed(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(c) = schema.get("const") {
        return Some(vec![c.clone()]);
    }
    schema.get("enum")?.as_array().cloned()
}

fn quote(value: &Value) -> String {
    clip(&value.to_string(), 64)
}

/// A schema's `properties`, sorted (whatever map type serde_json was built with), so changes
/// are listed in order.
fn properties(schema: &Map<String, Value>) -> BTreeMap<&str, &Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn required(schema: &Map<String, Value>) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contract(tools: &[(&str, Value)]) -> Contract {
        Contract::new(tools.iter().map(|(name, input)| {
            (
                (*name).to_owned(),
                Tool {
                    input_schema: Some(input.clone()),
                    ..Tool::default()
                },
            )
        }))
    }

    fn search(properties: Value, required: &[&str]) -> Contract {
        contract(&[(
            "search",
            json!({"type": "object", "properties": properties, "required": required}),
        )])
    }

    fn breaking(d: &Diff) -> Vec<String> {
        d.breaking.iter().map(|c| c.what.clone()).collect()
    }

    fn compatible(d: &Diff) -> Vec<String> {
        d.compatible.iter().map(|c| c.what.clone()).collect()
    }

    #[test]
    fn identical_contracts_and_description_edits_change_nothing() {
        let a = search(
            json!({"q": {"type": "string", "description": "query"}}),
            &["q"],
        );
        let b = search(
            json!({"q": {"type": "string", "description": "the query"}}),
            &["q"],
        );
        assert!(diff(&a, &a).is_empty());
        assert!(diff(&a, &b).is_empty(), "{:?}", diff(&a, &b));
    }

    #[test]
    fn a_removed_tool_breaks_and_an_added_one_does_not() {
        let a = contract(&[("echo", json!({})), ("add", json!({}))]);
        let b = contract(&[("echo", json!({})), ("time", json!({}))]);
        let d = diff(&a, &b);
        assert_eq!(
            d.breaking,
            [Change {
                tool: "add".into(),
                what: "removed".into()
            }]
        );
        assert_eq!(
            d.compatible,
            [Change {
                tool: "time".into(),
                what: "added".into()
            }]
        );
    }

    #[test]
    fn a_new_required_argument_breaks_a_new_optional_one_does_not() {
        let a = search(json!({"q": {"type": "string"}}), &["q"]);
        let b = search(
            json!({"q": {"type": "string"}, "limit": {"type": "integer"}}),
            &["q", "limit"],
        );
        assert_eq!(breaking(&diff(&a, &b)), ["new required argument \"limit\""]);
        let c = search(
            json!({"q": {"type": "string"}, "limit": {"type": "integer"}}),
            &["q"],
        );
        let d = diff(&a, &c);
        assert!(d.breaking.is_empty());
        assert_eq!(compatible(&d), ["new optional argument \"limit\""]);
        // Making an existing argument required breaks; the reverse does not.
        let e = search(
            json!({"q": {"type": "string"}, "limit": {"type": "integer"}}),
            &["q", "limit"],
        );
        assert_eq!(
            breaking(&diff(&c, &e)),
            ["argument \"limit\" is now required"]
        );
        assert!(diff(&e, &c).breaking.is_empty());
    }

    #[test]
    fn removed_and_retyped_arguments_break() {
        let a = search(
            json!({"q": {"type": "string"}, "n": {"type": "integer"}}),
            &[],
        );
        let b = search(json!({"q": {"type": "integer"}}), &[]);
        assert_eq!(
            breaking(&diff(&a, &b)),
            [
                "argument \"n\" removed",
                "argument \"q\" type string -> integer"
            ]
        );
        // Widening integer to number, or to a union, takes every old call.
        let c = search(
            json!({"q": {"type": ["string", "null"]}, "n": {"type": "number"}}),
            &[],
        );
        let d = diff(&a, &c);
        assert!(d.breaking.is_empty(), "{d:?}");
        assert_eq!(d.compatible.len(), 2);
    }

    #[test]
    fn narrowed_enums_and_bounds_break_widened_ones_do_not() {
        let a = search(
            json!({"mode": {"enum": ["fast", "slow"]}, "n": {"type": "integer", "maximum": 10}}),
            &[],
        );
        let b = search(
            json!({"mode": {"enum": ["fast"]}, "n": {"type": "integer", "maximum": 5}}),
            &[],
        );
        assert_eq!(
            breaking(&diff(&a, &b)),
            [
                "argument \"mode\" no longer allows \"slow\"",
                "argument \"n\" maximum 10 -> 5"
            ]
        );
        let d = diff(&b, &a);
        assert!(d.breaking.is_empty(), "{d:?}");
        // A new bound narrows; a removed one widens.
        let c = search(
            json!({"mode": {"enum": ["fast", "slow"]}, "n": {"type": "integer", "maximum": 10, "minLength": 1}}),
            &[],
        );
        assert_eq!(
            breaking(&diff(&a, &c)),
            ["argument \"n\" minLength unset -> 1"]
        );
        assert!(diff(&c, &a).breaking.is_empty());
    }

    #[test]
    fn nested_objects_and_arrays_are_compared_by_path() {
        let a = search(
            json!({"filter": {"type": "object", "properties": {"since": {"type": "string"}}},
                   "tags": {"type": "array", "items": {"type": "string"}}}),
            &[],
        );
        let b = search(
            json!({"filter": {"type": "object", "properties": {"since": {"type": "integer"}}, "required": ["since"]},
                   "tags": {"type": "array", "items": {"type": "integer"}}}),
            &[],
        );
        assert_eq!(
            breaking(&diff(&a, &b)),
            [
                "argument \"filter.since\" type string -> integer",
                "argument \"filter.since\" is now required",
                "argument \"tags[]\" type string -> integer",
            ]
        );
    }

    #[test]
    fn constraints_it_cannot_compare_break_when_they_change() {
        let a = search(json!({"q": {"type": "string", "pattern": "^[a-z]+$"}}), &[]);
        let b = search(
            json!({"q": {"type": "string", "pattern": "^[a-z0-9]+$"}}),
            &[],
        );
        assert_eq!(
            breaking(&diff(&a, &b)),
            ["argument \"q\" \"pattern\" changed (not compared field by field)"]
        );
        let closed = contract(&[(
            "search",
            json!({"type": "object", "additionalProperties": false}),
        )]);
        let open = contract(&[("search", json!({"type": "object"}))]);
        assert_eq!(
            breaking(&diff(&open, &closed)),
            ["arguments: no longer takes properties it does not list"]
        );
        assert!(diff(&closed, &open).breaking.is_empty());
    }

    fn with_output(output: Option<Value>, annotations: Option<Value>) -> Contract {
        Contract::new([(
            "weather".to_owned(),
            Tool {
                input_schema: Some(json!({"type": "object"})),
                output_schema: output,
                annotations,
                oversized: None,
            },
        )])
    }

    #[test]
    fn results_break_when_fields_go_or_widen() {
        let a = with_output(
            Some(
                json!({"type": "object", "properties": {"temp": {"type": "number"}, "sky": {"enum": ["sun", "rain"]}}, "required": ["temp"]}),
            ),
            None,
        );
        let b = with_output(
            Some(
                json!({"type": "object", "properties": {"temp": {"type": ["number", "string"]}, "sky": {"enum": ["sun", "rain", "snow"]}, "wind": {"type": "number"}}}),
            ),
            None,
        );
        let d = diff(&a, &b);
        assert_eq!(
            breaking(&d),
            [
                "output field \"sky\" now allows \"snow\"",
                "output field \"temp\" type number -> number|string",
                "output field \"temp\" is no longer always present",
            ]
        );
        assert_eq!(compatible(&d), ["new output field \"wind\""]);
        let gone = with_output(
            Some(
                json!({"type": "object", "properties": {"temp": {"type": "number"}}, "required": ["temp"]}),
            ),
            None,
        );
        assert_eq!(breaking(&diff(&a, &gone)), ["output field \"sky\" removed"]);
        assert_eq!(
            breaking(&diff(&a, &with_output(None, None))),
            ["no longer declares an output schema"]
        );
        assert!(diff(&with_output(None, None), &a).breaking.is_empty());
    }

    #[test]
    fn losing_read_only_or_becoming_destructive_breaks() {
        let read_only = with_output(None, Some(json!({"readOnlyHint": true})));
        let writes = with_output(
            None,
            Some(json!({"readOnlyHint": false, "destructiveHint": false})),
        );
        let destroys = with_output(
            None,
            Some(json!({"readOnlyHint": false, "destructiveHint": true})),
        );
        assert_eq!(
            breaking(&diff(&read_only, &writes)),
            ["readOnlyHint true -> false"]
        );
        assert_eq!(
            breaking(&diff(&writes, &destroys)),
            ["destructiveHint false -> true"]
        );
        assert!(diff(&destroys, &read_only).breaking.is_empty());
        let idempotent = with_output(
            None,
            Some(json!({"readOnlyHint": true, "idempotentHint": true})),
        );
        let d = diff(&read_only, &idempotent);
        assert!(d.breaking.is_empty());
        assert_eq!(compatible(&d), ["idempotentHint unset -> true"]);
    }

    #[test]
    fn accepted_tools_do_not_break_and_descriptions_are_bounded() {
        let a = contract(&[("echo", json!({})), ("add", json!({}))]);
        let b = contract(&[]);
        let d = diff(&a, &b).accepting(&["add".to_owned()]);
        assert_eq!(
            d.breaking,
            [Change {
                tool: "echo".into(),
                what: "removed".into()
            }]
        );
        assert_eq!(
            d.accepted,
            [Change {
                tool: "add".into(),
                what: "removed".into()
            }]
        );
        assert_eq!(describe(&d.breaking, 200), "tool \"echo\": removed");

        let many: Vec<Change> = (0..100)
            .map(|i| Change {
                tool: format!("tool-{i}"),
                what: "removed".into(),
            })
            .collect();
        let text = describe(&many, 200);
        assert!(text.len() <= 200, "{text}");
        assert!(text.ends_with("more"), "{text}");
    }

    #[test]
    fn the_rollout_event_lists_each_kind_of_change() {
        let a = contract(&[("echo", json!({})), ("add", json!({}))]);
        let b = contract(&[
            ("echo", json!({"type": "object", "required": ["x"]})),
            ("time", json!({})),
        ]);
        assert_eq!(summary("demo-b", &diff(&a, &a), 1000), None);
        let (warning, note) =
            summary("demo-b", &diff(&a, &b).accepting(&["add".into()]), 1000).unwrap();
        assert!(warning);
        assert!(
            note.starts_with(
                "revision demo-b changed the tools: breaking (toolContract is Warn): tool \"echo\": \
                 arguments: type any -> object; tool \"echo\": argument \"x\" is now required"
            ),
            "{note}"
        );
        assert!(
            note.contains("; breaking, accepted: tool \"add\": removed"),
            "{note}"
        );
        assert!(
            note.ends_with("; compatible: tool \"time\": added"),
            "{note}"
        );
        let (warning, _) = summary("demo-b", &diff(&contract(&[]), &a), 1000).unwrap();
        assert!(!warning, "additions only");
    }

    #[test]
    fn hostile_schemas_are_bounded() {
        // Deep nesting is compared down to a depth, then as a whole.
        let mut deep = json!({"type": "string"});
        let mut deeper = json!({"type": "integer"});
        for _ in 0..40 {
            deep = json!({"type": "object", "properties": {"x": deep}});
            deeper = json!({"type": "object", "properties": {"x": deeper}});
        }
        let d = diff(&contract(&[("t", deep)]), &contract(&[("t", deeper)]));
        assert_eq!(d.breaking.len(), 1);
        assert!(d.breaking[0].what.contains("depth"), "{:?}", d.breaking);
        // Hundreds of changed properties are counted past the first two hundred.
        let props = |t: &str| {
            Value::Object(
                (0..300)
                    .map(|i| (format!("p{i}"), json!({"type": t})))
                    .collect(),
            )
        };
        let d = diff(
            &search(props("string"), &[]),
            &search(props("integer"), &[]),
        );
        assert_eq!(d.breaking.len(), MAX_CHANGES);
        assert_eq!(d.more, 100);
        // A schema that is not an object is compared by equality.
        let d = diff(
            &contract(&[("t", json!(true))]),
            &contract(&[("t", json!(false))]),
        );
        assert_eq!(breaking(&d), ["arguments: changed its schema"]);
    }
}
