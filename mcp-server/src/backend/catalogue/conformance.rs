//! The reference fixtures that the `@modelcontextprotocol/conformance` server scenarios call
//! (tools `test_*`, resources `test://...`, prompts `test_*`), offered by the built-in backend
//! with `--conformance-fixtures`, so the suite can check this server's handling of every kind of
//! content, logging, progress, sampling, elicitation, templates, subscriptions and completion.
//! Built only with the cargo feature `conformance`, which the tests turn on: release binaries
//! carry no fixtures.
//!
//! Each fixture answers exactly as the scenario's description in the suite asks.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Call, Catalogue, ToolFuture, text};
use crate::message::RpcError;

/// A 1×1 red PNG.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// Eight samples of silence: 8 kHz, mono, 8-bit PCM WAV.
const WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

const TEMPLATE: &str = "test://template/{id}/data";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";
/// Pause between the steps of the logging and progress tools, as the scenarios ask.
const STEP: Duration = Duration::from_millis(50);
/// How long `test_reconnection` works after releasing its connection, so the client reconnects
/// while the call is still running.
const RECONNECTION_WORK: Duration = Duration::from_millis(200);

/// The fixtures, as a catalogue to stack on the demo one.
pub struct Conformance;

impl Catalogue for Conformance {
    fn tools(&self) -> Vec<Value> {
        tools()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        args: &'a Value,
        call: &'a dyn Call,
    ) -> ToolFuture<'a> {
        Box::pin(call_tool(name, args, call))
    }

    fn resources(&self) -> Vec<Value> {
        resources()
    }

    fn resource_templates(&self) -> Vec<Value> {
        resource_templates()
    }

    fn read_resource(&self, uri: &str) -> Option<Value> {
        read_resource(uri)
    }

    fn prompts(&self) -> Vec<Value> {
        prompts()
    }

    fn get_prompt(&self, name: &str, args: &Value) -> Option<Result<Value, RpcError>> {
        get_prompt(name, args)
    }

    fn completions(&self, reference: &Value, argument: &str) -> Option<&'static [&'static str]> {
        completions(reference, argument)
    }
}

fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn string_arguments(names: &[(&str, &str)]) -> Value {
    let properties: serde_json::Map<String, Value> = names
        .iter()
        .map(|(name, description)| {
            (
                (*name).to_owned(),
                json!({ "type": "string", "description": description }),
            )
        })
        .collect();
    let required: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

fn tools() -> Vec<Value> {
    let tool = |name: &str, description: &str, schema: Value| json!({ "name": name, "description": description, "inputSchema": schema });
    vec![
        tool(
            "test_simple_text",
            "Returns a simple text content item.",
            no_arguments(),
        ),
        tool(
            "test_image_content",
            "Returns an image content item (a 1x1 PNG).",
            no_arguments(),
        ),
        tool(
            "test_audio_content",
            "Returns an audio content item (a short WAV).",
            no_arguments(),
        ),
        tool(
            "test_embedded_resource",
            "Returns an embedded text resource.",
            no_arguments(),
        ),
        tool(
            "test_multiple_content_types",
            "Returns text, image and embedded resource content together.",
            no_arguments(),
        ),
        tool(
            "test_tool_with_logging",
            "Sends three log messages while it runs.",
            no_arguments(),
        ),
        tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100 while it runs.",
            no_arguments(),
        ),
        tool(
            "test_error_handling",
            "Always fails, with isError set.",
            no_arguments(),
        ),
        tool(
            "test_sampling",
            "Asks the client's model to answer a prompt (sampling/createMessage).",
            string_arguments(&[("prompt", "The prompt to send to the model")]),
        ),
        tool(
            "test_elicitation",
            "Asks the user for a username and email (elicitation/create).",
            string_arguments(&[("message", "The message to show the user")]),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Asks the user for input with a default value for every primitive type.",
            no_arguments(),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Asks the user to choose from each kind of enum schema.",
            no_arguments(),
        ),
        tool(
            "test_reconnection",
            "Closes its connection mid-call; the client resumes the stream to get the result.",
            no_arguments(),
        ),
        // SEP-1613: JSON Schema 2020-12 keywords must reach the client as written.
        tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } },
                    },
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                },
                "additionalProperties": false,
            }),
        ),
    ]
}

fn image() -> Value {
    json!({ "type": "image", "data": PNG, "mimeType": "image/png" })
}

fn content(items: Vec<Value>) -> Value {
    json!({ "content": items })
}

/// Calls fixture tool `name`, or `None` when there is no such fixture.
async fn call_tool(name: &str, args: &Value, call: &dyn Call) -> Option<Result<Value, RpcError>> {
    let result = match name {
        "test_simple_text" => Ok(content(vec![text(
            "This is a simple text response for testing.",
        )])),
        "test_image_content" => Ok(content(vec![image()])),
        "test_audio_content" => Ok(content(vec![
            json!({ "type": "audio", "data": WAV, "mimeType": "audio/wav" }),
        ])),
        "test_embedded_resource" => Ok(content(vec![json!({
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        })])),
        "test_multiple_content_types" => Ok(content(vec![
            text("Multiple content types test:"),
            image(),
            json!({
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": r#"{"test":"data","value":123}"#,
                },
            }),
        ])),
        "test_tool_with_logging" => {
            call.log("info", json!("Tool execution started"));
            tokio::time::sleep(STEP).await;
            call.log("info", json!("Tool processing data"));
            tokio::time::sleep(STEP).await;
            call.log("info", json!("Tool execution completed"));
            Ok(content(vec![text(
                "Tool with logging executed successfully",
            )]))
        }
        "test_tool_with_progress" => {
            for step in [0.0, 50.0, 100.0] {
                if step > 0.0 {
                    tokio::time::sleep(STEP).await;
                }
                call.progress(step, 100.0, None);
            }
            Ok(content(vec![text(
                "Tool with progress executed successfully",
            )]))
        }
        "json_schema_2020_12_tool" => {
            Ok(content(vec![text(format!("Received arguments: {args}"))]))
        }
        "test_reconnection" => {
            call.release_stream();
            tokio::time::sleep(RECONNECTION_WORK).await;
            Ok(content(vec![text("Reconnection test completed")]))
        }
        "test_error_handling" => Ok(json!({
            "isError": true,
            "content": [text("This tool intentionally returns an error for testing")],
        })),
        "test_sampling" => sampling(args, call).await,
        "test_elicitation" => {
            let message = args.get("message").and_then(Value::as_str).unwrap_or("");
            let schema = json!({
                "type": "object",
                "properties": {
                    "username": { "type": "string", "description": "User's response" },
                    "email": { "type": "string", "description": "User's email address" },
                },
                "required": ["username", "email"],
            });
            elicit(call, message, schema, "User response").await
        }
        "test_elicitation_sep1034_defaults" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "default": "John Doe" },
                    "age": { "type": "integer", "default": 30 },
                    "score": { "type": "number", "default": 95.5 },
                    "status": {
                        "type": "string",
                        "enum": ["active", "inactive", "pending"],
                        "default": "active",
                    },
                    "verified": { "type": "boolean", "default": true },
                },
            });
            elicit(
                call,
                "Please review and update the form fields with defaults",
                schema,
                "Elicitation completed",
            )
            .await
        }
        "test_elicitation_sep1330_enums" => {
            let titled = |values: [(&str, &str); 3]| {
                values
                    .iter()
                    .map(|(value, title)| json!({ "const": value, "title": title }))
                    .collect::<Vec<_>>()
            };
            let schema = json!({
                "type": "object",
                "properties": {
                    "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                    "titledSingle": {
                        "type": "string",
                        "oneOf": titled([("value1", "First Option"), ("value2", "Second Option"), ("value3", "Third Option")]),
                    },
                    "legacyEnum": {
                        "type": "string",
                        "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"],
                    },
                    "untitledMulti": {
                        "type": "array",
                        "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
                    },
                    "titledMulti": {
                        "type": "array",
                        "items": {
                            "anyOf": titled([("value1", "First Choice"), ("value2", "Second Choice"), ("value3", "Third Choice")]),
                        },
                    },
                },
            });
            elicit(
                call,
                "Please choose from each list",
                schema,
                "Elicitation completed",
            )
            .await
        }
        _ => return None,
    };
    Some(result)
}

async fn sampling(args: &Value, call: &dyn Call) -> Result<Value, RpcError> {
    let prompt = args
        .get("prompt")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("argument `prompt` must be a string"))?;
    if !call.client_can("sampling") {
        return Ok(tool_error("the client does not offer sampling"));
    }
    let params = json!({
        "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
        "maxTokens": 100,
    });
    let answer = call.ask("sampling/createMessage", params).await?;
    let reply = answer
        .pointer("/content/text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(content(vec![text(format!("LLM response: {reply}"))]))
}

/// Asks the user through the client; the answer is summarised as `"{label}: action=..., content=..."`.
async fn elicit(
    call: &dyn Call,
    message: &str,
    schema: Value,
    label: &str,
) -> Result<Value, RpcError> {
    if !call.client_can("elicitation") {
        return Ok(tool_error("the client does not offer elicitation"));
    }
    let answer = call
        .ask(
            "elicitation/create",
            json!({ "message": message, "requestedSchema": schema }),
        )
        .await?;
    let action = answer
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let given = answer.get("content").cloned().unwrap_or(json!({}));
    Ok(content(vec![text(format!(
        "{label}: action={action}, content={given}"
    ))]))
}

fn tool_error(message: &str) -> Value {
    json!({ "isError": true, "content": [text(message)] })
}

fn resources() -> Vec<Value> {
    vec![
        json!({
            "uri": "test://static-text",
            "name": "static-text",
            "description": "A static text resource",
            "mimeType": "text/plain",
        }),
        json!({
            "uri": "test://static-binary",
            "name": "static-binary",
            "description": "A static binary resource (a 1x1 PNG)",
            "mimeType": "image/png",
        }),
        json!({
            "uri": "test://watched-resource",
            "name": "watched-resource",
            "description": "A resource to subscribe to",
            "mimeType": "text/plain",
        }),
    ]
}

fn resource_templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": TEMPLATE,
        "name": "template-data",
        "description": "Data for the given id",
        "mimeType": "application/json",
    })]
}

/// The contents of fixture resource `uri`, or `None` when there is no such fixture.
fn read_resource(uri: &str) -> Option<Value> {
    let contents = match uri {
        "test://static-text" => json!({
            "uri": uri,
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        }),
        "test://static-binary" => json!({ "uri": uri, "mimeType": "image/png", "blob": PNG }),
        "test://watched-resource" => json!({
            "uri": uri,
            "mimeType": "text/plain",
            "text": "This resource does not change while the server runs.",
        }),
        _ => {
            let id = template_id(uri)?;
            let data =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            json!({ "uri": uri, "mimeType": "application/json", "text": data.to_string() })
        }
    };
    Some(json!({ "contents": [contents] }))
}

/// The `{id}` of a URI matching the template: one non-empty path segment.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix(TEMPLATE_PREFIX)?
        .strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn prompts() -> Vec<Value> {
    let argument = |name: &str, description: &str| json!({ "name": name, "description": description, "required": true });
    vec![
        json!({
            "name": "test_simple_prompt",
            "description": "A prompt without arguments",
        }),
        json!({
            "name": "test_prompt_with_arguments",
            "description": "A prompt with two required arguments",
            "arguments": [argument("arg1", "First test argument"), argument("arg2", "Second test argument")],
        }),
        json!({
            "name": "test_prompt_with_embedded_resource",
            "description": "A prompt embedding the resource it is given",
            "arguments": [argument("resourceUri", "URI of the resource to embed")],
        }),
        json!({
            "name": "test_prompt_with_image",
            "description": "A prompt with an image",
        }),
    ]
}

fn user(content: Value) -> Value {
    json!({ "role": "user", "content": content })
}

/// Fixture prompt `name` with `args`, or `None` when there is no such fixture.
fn get_prompt(name: &str, args: &Value) -> Option<Result<Value, RpcError>> {
    let argument = |key: &str| {
        args.get(key).and_then(Value::as_str).ok_or_else(|| {
            RpcError::invalid_params(format!("prompt `{name}` needs argument `{key}`"))
        })
    };
    let messages = match name {
        "test_simple_prompt" => Ok(vec![user(text("This is a simple prompt for testing."))]),
        "test_prompt_with_arguments" => argument("arg1").and_then(|arg1| {
            let arg2 = argument("arg2")?;
            Ok(vec![user(text(format!(
                "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
            )))])
        }),
        "test_prompt_with_embedded_resource" => argument("resourceUri").map(|uri| {
            vec![
                user(json!({
                    "type": "resource",
                    "resource": {
                        "uri": uri,
                        "mimeType": "text/plain",
                        "text": "Embedded resource content for testing.",
                    },
                })),
                user(text("Please process the embedded resource above.")),
            ]
        }),
        "test_prompt_with_image" => Ok(vec![
            user(image()),
            user(text("Please analyze the image above.")),
        ]),
        _ => return None,
    };
    Some(messages.map(|messages| json!({ "messages": messages })))
}

/// Completion candidates for an argument of a fixture prompt or of the template, or `None` when
/// the reference is not a fixture.
fn completions(reference: &Value, argument: &str) -> Option<&'static [&'static str]> {
    match (
        reference.get("type").and_then(Value::as_str)?,
        reference
            .get("name")
            .or_else(|| reference.get("uri"))
            .and_then(Value::as_str)?,
    ) {
        ("ref/prompt", "test_prompt_with_arguments") => Some(match argument {
            "arg1" => &["paris", "park", "party", "test", "testValue1"],
            "arg2" => &["world", "testValue2"],
            _ => &[],
        }),
        ("ref/prompt", "test_prompt_with_embedded_resource") => Some(&[
            "test://static-text",
            "test://watched-resource",
            "test://example-resource",
        ]),
        ("ref/prompt", "test_simple_prompt" | "test_prompt_with_image") => Some(&[]),
        ("ref/resource", TEMPLATE) => Some(&["1", "2", "3", "123"]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_substitutes_one_path_segment() {
        let read = read_resource("test://template/123/data").unwrap();
        let text = read["contents"][0]["text"].as_str().unwrap();
        let data: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            data,
            json!({ "id": "123", "templateTest": true, "data": "Data for ID: 123" })
        );
        assert!(read_resource("test://template//data").is_none());
        assert!(read_resource("test://template/1/2/data").is_none());
    }

    #[test]
    fn prompt_arguments_are_substituted_and_required() {
        let got = get_prompt(
            "test_prompt_with_arguments",
            &json!({ "arg1": "hello", "arg2": "world" }),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got["messages"][0]["content"]["text"],
            "Prompt with arguments: arg1='hello', arg2='world'"
        );
        assert!(
            get_prompt("test_prompt_with_arguments", &json!({ "arg1": "x" }))
                .unwrap()
                .is_err()
        );
        assert!(get_prompt("nope", &json!({})).is_none());
    }

    #[test]
    fn every_fixture_tool_has_a_description_and_a_schema() {
        for tool in tools() {
            assert!(tool["description"].is_string(), "{tool}");
            assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        }
    }
}
