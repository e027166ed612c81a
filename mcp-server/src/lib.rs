//! `mcp-server`: an MCP endpoint with built-in demo tools, a bridge serving any stdio MCP server
//! over Streamable HTTP and the legacy HTTP+SSE transport, or a proxy in front of an MCP server
//! that already speaks HTTP.
//!
//! Layers, from the wire inwards: [`transport`] (HTTP routing, sessions, SSE), [`message`]
//! (JSON-RPC framing and protocol revisions, no I/O) and [`backend`] (built-in tools, stdio
//! bridge, HTTP proxy). [`oauth`] checks access tokens at the MCP routes. [`server`] wires them
//! together from the [`config`].

pub mod backend;
pub mod config;
pub mod install;
pub mod message;
pub mod metrics;
pub mod oauth;
pub mod server;
pub mod telemetry;
pub mod transport;
