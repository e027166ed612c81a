//! `mcp-operator`: the McpApp controller. The reconciler arrives with its own issue; until then
//! the binary only reports its version so the workspace, images and CI can be wired end to end.

fn main() {
    println!("mcp-operator {}", env!("CARGO_PKG_VERSION"));
}
