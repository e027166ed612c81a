//! What the built-in backend offers: tools, resources and prompts, in catalogues behind one
//! trait ([`Catalogue`]), so the backend's sessions and method dispatch never name a tool. The
//! [`demo`] catalogue is the default; the conformance suite's fixtures (cargo feature
//! `conformance`, which only the tests turn on) stack on top of it.

pub mod demo;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::message::RpcError;

/// The request a tool is answering, as the tool sees it: where it reports progress, logs, and
/// asks the client something.
pub trait Call: Send + Sync {
    /// Reports progress when the client asked for it (with a progress token).
    fn progress(&self, progress: f64, total: f64, message: Option<String>);

    /// Sends a log message (`notifications/message`) if the session's level admits it.
    fn log(&self, level: &str, data: Value);

    /// Whether the client declared `capability` (`sampling`, `elicitation`, `roots`) when it
    /// initialized the session.
    fn client_can(&self, capability: &str) -> bool;

    /// Sends a request to the client and waits for its result.
    fn ask<'a>(&'a self, method: &'a str, params: Value) -> BoxFuture<'a, Result<Value, RpcError>>;

    /// Ends the HTTP response carrying this call while the call goes on: the client resumes the
    /// stream with `Last-Event-ID` and gets the rest there (SEP-1699 polling).
    fn release_stream(&self);
}

/// A running tool call: its result, or `None` when the catalogue has no such tool.
pub type ToolFuture<'a> = BoxFuture<'a, Option<Result<Value, RpcError>>>;

/// One catalogue of tools, resources and prompts. Lookups answer `None` for a name the
/// catalogue does not hold, so catalogues stack ([`Stack`]); errors are for names it holds.
pub trait Catalogue: Send + Sync + 'static {
    /// Definitions for `tools/list`.
    fn tools(&self) -> Vec<Value>;

    /// Runs tool `name` with `args` (an object) to a `tools/call` result.
    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        args: &'a Value,
        call: &'a dyn Call,
    ) -> ToolFuture<'a>;

    /// Entries for `resources/list`.
    fn resources(&self) -> Vec<Value>;

    /// Entries for `resources/templates/list`.
    fn resource_templates(&self) -> Vec<Value> {
        Vec::new()
    }

    /// A `resources/read` result for `uri`, or `None` when it is not here.
    fn read_resource(&self, uri: &str) -> Option<Value>;

    /// Entries for `prompts/list`.
    fn prompts(&self) -> Vec<Value>;

    /// A `prompts/get` result for prompt `name` with `args`, or `None` without such a prompt.
    fn get_prompt(&self, name: &str, args: &Value) -> Option<Result<Value, RpcError>>;

    /// Completion candidates for `argument` of `reference` (a `ref/prompt` or `ref/resource`),
    /// or `None` when the reference is not here.
    fn completions(&self, reference: &Value, argument: &str) -> Option<&'static [&'static str]>;

    /// What `initialize` tells the client about this server, if anything.
    fn instructions(&self) -> Option<&'static str> {
        None
    }
}

/// Catalogues offered together: lists are concatenated in order, a lookup asks each in turn.
pub struct Stack(Vec<Box<dyn Catalogue>>);

impl Catalogue for Stack {
    fn tools(&self) -> Vec<Value> {
        self.0.iter().flat_map(|c| c.tools()).collect()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        args: &'a Value,
        call: &'a dyn Call,
    ) -> ToolFuture<'a> {
        Box::pin(async move {
            for catalogue in &self.0 {
                if let Some(result) = catalogue.call_tool(name, args, call).await {
                    return Some(result);
                }
            }
            None
        })
    }

    fn resources(&self) -> Vec<Value> {
        self.0.iter().flat_map(|c| c.resources()).collect()
    }

    fn resource_templates(&self) -> Vec<Value> {
        self.0.iter().flat_map(|c| c.resource_templates()).collect()
    }

    fn read_resource(&self, uri: &str) -> Option<Value> {
        self.0.iter().find_map(|c| c.read_resource(uri))
    }

    fn prompts(&self) -> Vec<Value> {
        self.0.iter().flat_map(|c| c.prompts()).collect()
    }

    fn get_prompt(&self, name: &str, args: &Value) -> Option<Result<Value, RpcError>> {
        self.0.iter().find_map(|c| c.get_prompt(name, args))
    }

    fn completions(&self, reference: &Value, argument: &str) -> Option<&'static [&'static str]> {
        self.0
            .iter()
            .find_map(|c| c.completions(reference, argument))
    }

    /// The first catalogue's that has any.
    fn instructions(&self) -> Option<&'static str> {
        self.0.iter().find_map(|c| c.instructions())
    }
}

/// `--conformance-fixtures` was given to a binary built without them.
#[derive(Debug, thiserror::Error)]
#[error(
    "--conformance-fixtures needs an mcp-server built with the `conformance` cargo feature \
     (cargo build -p mcp-server --features conformance); this binary has no fixtures"
)]
pub struct FixturesNotBuilt;

/// The catalogue of the built-in mode: the demo tools, with the conformance suite's fixtures on
/// top when `conformance_fixtures` asks for them.
pub fn builtin(conformance_fixtures: bool) -> Result<Arc<dyn Catalogue>, FixturesNotBuilt> {
    let mut stack: Vec<Box<dyn Catalogue>> = vec![Box::new(demo::Demo)];
    if conformance_fixtures {
        stack.push(fixtures()?);
    }
    Ok(Arc::new(Stack(stack)))
}

#[cfg(feature = "conformance")]
fn fixtures() -> Result<Box<dyn Catalogue>, FixturesNotBuilt> {
    Ok(Box::new(conformance::Conformance))
}

#[cfg(not(feature = "conformance"))]
fn fixtures() -> Result<Box<dyn Catalogue>, FixturesNotBuilt> {
    Err(FixturesNotBuilt)
}

/// A text content item of a tool or prompt result.
pub fn text(text: impl Into<String>) -> Value {
    json!({ "type": "text", "text": text.into() })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A [`Call`] that records what a tool reports, for testing catalogues on their own.

    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use serde_json::Value;

    use super::Call;
    use crate::message::RpcError;
    use crate::message::jsonrpc::INTERNAL_ERROR;

    /// Progress reports `(progress, total)` in the order they were made; asks are refused.
    #[derive(Default)]
    pub struct Recorder {
        pub progress: Mutex<Vec<(f64, f64)>>,
    }

    impl Call for Recorder {
        fn progress(&self, progress: f64, total: f64, _message: Option<String>) {
            self.progress.lock().unwrap().push((progress, total));
        }

        fn log(&self, _level: &str, _data: Value) {}

        fn client_can(&self, _capability: &str) -> bool {
            false
        }

        fn ask<'a>(
            &'a self,
            method: &'a str,
            _params: Value,
        ) -> BoxFuture<'a, Result<Value, RpcError>> {
            Box::pin(async move {
                Err(RpcError::new(
                    INTERNAL_ERROR,
                    format!("no client for {method}"),
                ))
            })
        }

        fn release_stream(&self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalogue_is_the_demo_alone() {
        let catalogue = builtin(false).unwrap();
        let tools = catalogue.tools();
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, ["echo", "add", "time", "whoami", "sleep"]);
        assert_eq!(catalogue.resource_templates(), Vec::<Value>::new());
    }

    #[cfg(feature = "conformance")]
    #[tokio::test]
    async fn fixtures_stack_on_top_of_the_demo() {
        let catalogue = builtin(true).unwrap();
        let tools = catalogue.tools();
        assert_eq!(tools[0]["name"], "echo", "demo tools are listed first");
        assert!(tools.iter().any(|t| t["name"] == "test_simple_text"));
        let call = testing::Recorder::default();
        for name in ["echo", "test_simple_text"] {
            let args = json!({"message": "hi"});
            assert!(
                catalogue.call_tool(name, &args, &call).await.is_some(),
                "{name}"
            );
        }
        assert!(
            catalogue
                .call_tool("nope", &json!({}), &call)
                .await
                .is_none()
        );
        assert!(catalogue.read_resource("test://static-text").is_some());
        assert!(catalogue.read_resource("mcp-server://about").is_some());
        assert_eq!(
            catalogue.instructions(),
            demo::Demo.instructions(),
            "the fixtures add no instructions"
        );
    }
}
