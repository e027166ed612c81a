//! Prints the McpApp CRD as YAML: `cargo run -p mcp-operator --bin crdgen > crds/mcpapps.mcp-operator.dev.yaml`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", mcp_operator::api::crd_yaml()?);
    Ok(())
}
