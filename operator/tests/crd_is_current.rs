//! Fails when `crds/` is stale: the committed CRD must be exactly what the types generate.

use std::path::Path;

#[test]
fn committed_crd_matches_the_generated_one() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the operator crate sits in the workspace root");
    let path = workspace.join(mcp_operator::api::CRD_FILE);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let generated = mcp_operator::api::crd_yaml().expect("the CRD serializes to YAML");
    assert!(
        committed == generated,
        "{} is stale; regenerate it with\n  cargo run -p mcp-operator --bin crdgen > {}",
        path.display(),
        mcp_operator::api::CRD_FILE
    );
}
