//! mcp-testenv
