//! The message layer: JSON-RPC framing, MCP protocol revisions and the stateless request
//! envelope. Free of any transport or I/O.

pub mod envelope;
pub mod jsonrpc;
pub mod partial;
pub mod version;

pub use jsonrpc::{Kind, Message, Payload, RequestId, RpcError, parse_body};
pub use version::Revision;
