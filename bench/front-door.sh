#!/usr/bin/env bash
# What the session front door costs (results and method in BENCHMARKS.md). In one run, with the
# load generator of bench/run.sh (mcp-server/examples/loadgen.rs), on 127.0.0.1 only:
#   1. direct: calls to `mcp-server` (built-in echo);
#   2. through the front door: `mcp-server proxy` in front of that server, as in a pod whose
#      image serves HTTP itself;
#   3. through a forwarding replica: two built-in replicas sharing a session key; sessions are
#      opened at the first and every call is sent to the second, which forwards it to the owner.
# Prints a Markdown table.
#
# Environment: SESSIONS (64), BENCH_SECONDS (10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sessions="${SESSIONS:-64}"
seconds="${BENCH_SECONDS:-10}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet -p mcp-server --bin mcp-server --example loadgen
server="$target/release/mcp-server"
loadgen="$target/release/examples/loadgen"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_ready() {
    for _ in $(seq 200); do
        curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing ready on $1" >&2
    return 1
}

start() { # port args...
    local port="$1"
    shift
    "$server" --listen "127.0.0.1:$port" --log error "$@" >/dev/null 2>&1 &
    pids+=("$!")
    wait_ready "$port"
}

row() { # name result
    local rps p50 p99
    rps="$(sed -E 's/.*"rps":([0-9.]+).*/\1/' <<<"$2")"
    p50="$(sed -E 's/.*"p50_ms":([0-9.]+).*/\1/' <<<"$2")"
    p99="$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' <<<"$2")"
    printf '| %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99"
}

head -c 32 /dev/urandom | base64 >"$work/keys"

start 18181
start 18182 proxy --upstream http://127.0.0.1:18181/mcp
start 18183 --session-key-file "$work/keys" --advertise-address 127.0.0.1:18183
start 18184 --session-key-file "$work/keys" --advertise-address 127.0.0.1:18184

echo "| path | requests/s | p50 ms | p99 ms |"
echo "|---|---|---|---|"
row "direct (built-in echo)" \
    "$("$loadgen" echo http://127.0.0.1:18181/mcp "$sessions" "$seconds")"
row "through the front door (proxy mode)" \
    "$("$loadgen" echo http://127.0.0.1:18182/mcp "$sessions" "$seconds")"
row "session owner, signed ids (no forwarding)" \
    "$("$loadgen" echo http://127.0.0.1:18183/mcp "$sessions" "$seconds")"
row "through a forwarding replica" \
    "$("$loadgen" echo http://127.0.0.1:18183/mcp "$sessions" "$seconds" http://127.0.0.1:18184/mcp)"
