#!/usr/bin/env bash
# Runs every check and test of the project on this machine, as root (the test environment creates
# network namespaces). Expensive builds are cached under ~/.cache/mcp-operator, so a second run
# only rebuilds what changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*" >&2; }

step "prerequisites (installed from Debian when missing, as root)"
# shellcheck source=prerequisites.sh
source tests/prerequisites.sh
prerequisites tests

step "control plane (etcd, kube-apiserver, kube-controller-manager, kube-proxy, kubectl, helm, CoreDNS, Traefik) and Ory Hydra"
bash tests/controlplane/build.sh

step "official MCP clients for the mcp-server tests"
bash mcp-server/tests/clients/setup.sh >/dev/null

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# mcp-server as released: test builds turn on its `conformance` feature, this build does not.
cargo clippy -p mcp-server --locked -- -D warnings

step "tests (two test binaries at a time: tests/suites.sh)"
bash tests/suites.sh

step "the static (musl) build of mcp-server that the stdio bridge copies into any image"
bash tests/static-build.sh

step "the one-command demo (tests/demo.sh --exit)"
bash tests/demo.sh --exit

step "done"
