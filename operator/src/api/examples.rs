//! Specs shared by the tests of the API and of the builders.

use super::{McpAppSpec, Transport};

/// A published stdio server run under the bridge.
pub(crate) fn stdio_spec() -> McpAppSpec {
    McpAppSpec {
        image: Some("node:22-alpine".into()),
        transport: Transport::Stdio,
        command: vec![
            "npx".into(),
            "-y".into(),
            "@modelcontextprotocol/server-everything".into(),
        ],
        ..McpAppSpec::default()
    }
}
