#!/usr/bin/env bash
# The hostile-client suite (results in BENCHMARKS.md): builds the release binary and the suite
# (mcp-server/examples/hostile.rs), runs every case against mcp-server with its defaults, then
# the bridge cases against `mcp-server bridge` with a child that forks. Prints Markdown.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p mcp-server --bin mcp-server --example hostile
server="$target/release/mcp-server"
hostile="$target/release/examples/hostile"

# Thousands of connections: each is a file descriptor on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

"$server" --listen 127.0.0.1:18090 --log error >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
sleep 0.5
"$hostile" builtin 127.0.0.1:18090 "$pid"
kill "$pid"
wait "$pid" 2>/dev/null || true

# The bridged command is a shell that starts a grandchild before the server (as `npx` does).
child="mcp-server/tests/clients/misbehaving_server.py"
"$server" --listen 127.0.0.1:18091 --log error bridge -- \
    sh -c "exec python3 $child --fork" >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fs http://127.0.0.1:18091/readyz >/dev/null && break
    sleep 0.1
done
"$hostile" bridge 127.0.0.1:18091 "$pid" "${BRIDGE_SESSIONS:-50}"
