//! The message layer: JSON-RPC framing, MCP protocol revisions and the stateless request
//! envelope. Free of any transport or I/O. The wire facts (`jsonrpc`, `version`) come from
//! [`mcp_wire`], which the operator's probe shares; what only a server decides lives here.

pub mod envelope;
pub mod partial;

pub use mcp_wire::jsonrpc;
pub use mcp_wire::revision as version;

pub use jsonrpc::{Kind, Message, Payload, RequestId, RpcError, parse_body};
pub use version::Revision;
