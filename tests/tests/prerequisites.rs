//! `tests/prerequisites.sh`, which `tests/run.sh` and `tests/demo.sh` source before their first
//! build step: with a tool missing from PATH it stops at once, naming the tool and its Debian
//! package; with everything present it says nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Commands the check itself runs, besides the tools it looks for.
const HELPERS: &[&str] = &["bash", "id", "grep", "sort", "sed", "rustup"];
/// What `prerequisites tests` looks for (tests/prerequisites.sh).
const TOOLS: &[&str] = &[
    "go",
    "cargo",
    "python3",
    "node",
    "npm",
    "ip",
    "unshare",
    "nsenter",
    "curl",
    "nft",
    "conntrack",
    "musl-gcc",
    "readelf",
    "gcc",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    })
}

/// Runs `prerequisites PURPOSE` with a PATH that holds every tool of this machine except
/// `without`, installing nothing.
fn check(purpose: &str, without: &[&str]) -> (Output, Duration) {
    let bin = tempfile::tempdir().unwrap();
    for tool in HELPERS.iter().chain(TOOLS).filter(|t| !without.contains(t)) {
        let found = which(tool).unwrap_or_else(|| {
            panic!("{tool} is not installed: run tests/run.sh, which installs it first")
        });
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    let start = Instant::now();
    let out = Command::new(bin.path().join("bash"))
        .arg("-c")
        .arg(format!(
            "source tests/prerequisites.sh && prerequisites {purpose}"
        ))
        .current_dir(repo())
        .env("PATH", bin.path())
        .env("MCP_PREREQUISITES_NO_INSTALL", "1")
        .output()
        .unwrap();
    (out, start.elapsed())
}

#[test]
fn missing_tools_are_named_with_their_packages_at_once() {
    let (out, took) = check("tests", &["musl-gcc", "nft"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("musl-gcc (musl-tools)"), "{stderr}");
    assert!(stderr.contains("nft (nftables)"), "{stderr}");
    assert!(
        stderr.contains("apt-get install musl-tools nftables"),
        "{stderr}"
    );
    println!("missing tools reported in {took:?}");
}

#[test]
fn the_demo_does_not_need_the_test_suite_tools() {
    let (out, _) = check("demo", &["musl-gcc", "gcc", "node", "npm", "python3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn a_missing_toolchain_is_named_before_anything_is_installed() {
    let (out, _) = check("demo", &["go", "curl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing toolchains: go"), "{stderr}");
    assert!(stderr.contains("curl (curl)"), "{stderr}");
}

#[test]
fn everything_present_passes_silently() {
    let (out, _) = check("tests", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}
