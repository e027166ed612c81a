//! `mcp-server`: the companion MCP endpoint (placeholder until its own issue lands).

fn main() {
    println!("mcp-server {}", env!("CARGO_PKG_VERSION"));
}
