//! What the Model Context Protocol puts on the wire, free of I/O: protocol revisions and what
//! each requires, JSON-RPC 2.0 messages, Server-Sent Events framing, and the header names and
//! `_meta` keys of the HTTP transports.
//!
//! Both sides of this project speak it: the operator's handshake probe (a client) and the
//! companion server. Each owns its own I/O; the facts they must agree on live here, once.

pub mod jsonrpc;
pub mod meta;
pub mod revision;
pub mod sse;

pub use revision::Revision;
