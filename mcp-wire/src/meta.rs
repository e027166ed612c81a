//! Names both sides must spell alike: the HTTP headers of the MCP transports, the media types
//! they negotiate, and the `_meta` keys of the stateless revision's per-request envelope.

/// HTTP header names, lowercase as HTTP/2 sends them (HTTP/1 compares them case-insensitively).
pub mod header {
    /// `Mcp-Session-Id`: the session a request belongs to, set by the server on `initialize`.
    pub const SESSION_ID: &str = "mcp-session-id";
    /// `MCP-Protocol-Version`: the negotiated (or, stateless, the requested) revision.
    pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
    /// `Mcp-Method`: the stateless revision mirrors the JSON-RPC method here.
    pub const METHOD: &str = "mcp-method";
    /// `Mcp-Name`: the stateless revision mirrors the tool or prompt name (or resource URI) here.
    pub const NAME: &str = "mcp-name";
    /// `Last-Event-ID`: the event a client resumes a stream after.
    pub const LAST_EVENT_ID: &str = "last-event-id";
}

/// Media types of the Streamable HTTP transport.
pub mod media {
    pub const JSON: &str = "application/json";
    pub const EVENT_STREAM: &str = "text/event-stream";
    /// What a client's POST must accept: the server answers with either.
    pub const POST_ACCEPT: &str = "application/json, text/event-stream";
}

/// The member of `params` (and of results) that carries protocol metadata.
pub const META: &str = "_meta";
/// The revision a stateless request is made in.
pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// A stateless client's capabilities, in place of what `initialize` would have said.
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
/// A stateless client's name and version.
pub const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
/// Who the server is, in a `server/discover` result's `_meta`.
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_lowercase_tokens() {
        use header::*;
        for name in [SESSION_ID, PROTOCOL_VERSION, METHOD, NAME, LAST_EVENT_ID] {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
        }
    }

    #[test]
    fn the_post_accept_list_names_both_answer_types() {
        let listed: Vec<&str> = media::POST_ACCEPT.split(", ").collect();
        assert_eq!(listed, [media::JSON, media::EVENT_STREAM]);
    }
}
