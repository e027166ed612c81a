#!/usr/bin/env bash
# The mcp-server benchmark (results and method in BENCHMARKS.md). In one run, with the same load
# generator (mcp-server/examples/loadgen.rs) and concurrency:
#   1. mcp-server built-in mode vs the official TypeScript SDK Streamable HTTP server, both
#      serving an `echo` tool;
#   2. mcp-server bridge mode vs supergateway, both wrapping the same stdio server (built with
#      the TypeScript SDK);
#   3. mcp-server's RSS with IDLE_STREAMS idle SSE streams open.
# Prints a Markdown table. Everything listens on 127.0.0.1 only.
#
# Environment: SESSIONS (64), BENCH_SECONDS (10), IDLE_STREAMS (10000); BENCH_IDLE_ONLY=1 runs
# part 3 alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sessions="${SESSIONS:-64}"
seconds="${BENCH_SECONDS:-10}"
idle_streams="${IDLE_STREAMS:-10000}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet -p mcp-server --bin mcp-server --example loadgen
server="$target/release/mcp-server"
loadgen="$target/release/examples/loadgen"

# Reference servers, installed like the test clients: a cache keyed by the lockfile.
hash="$(cat bench/package.json bench/package-lock.json | sha256sum | cut -c1-16)"
bench_modules="${MCP_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-operator}/bench-$hash"
if [[ ! -f "$bench_modules/.complete" ]]; then
    rm -rf "$bench_modules" && mkdir -p "$bench_modules"
    cp bench/package.json bench/package-lock.json "$bench_modules/"
    (cd "$bench_modules" && npm ci --no-audit --no-fund --loglevel=error >&2)
    touch "$bench_modules/.complete"
fi
export NODE_PATH="$bench_modules/node_modules"
stdio_server="mcp-server/tests/clients/stdio_server.cjs"

# Each stream and session is a file descriptor on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tree_rss_mib() { # RSS of a process and all its descendants
    local pids=("$1") total=0 i=0
    while (( i < ${#pids[@]} )); do
        mapfile -t -O "${#pids[@]}" pids < <(ps -o pid= --ppid "${pids[$i]}" | tr -d ' ')
        i=$((i + 1))
    done
    for pid in "${pids[@]}"; do
        total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo $((total / 1024))
}

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}

measure() { # name port url command...
    local name="$1" port="$2" url="$3"
    shift 3
    "$@" >/dev/null 2>&1 &
    local pid=$!
    wait_port "$port"
    local result rss
    # A failed run is reported in the table; the server and its children are stopped either way.
    result="$("$loadgen" echo "$url" "$sessions" "$seconds")" || result='"rps":failed,"p50_ms":-,"p99_ms":-'
    rss="$(tree_rss_mib "$pid")"
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local rps p50 p99
    rps="$(sed -E 's/.*"rps":([0-9.]+|failed).*/\1/' <<<"$result")"
    p50="$(sed -E 's/.*"p50_ms":([0-9.]+|-).*/\1/' <<<"$result")"
    p99="$(sed -E 's/.*"p99_ms":([0-9.]+|-).*/\1/' <<<"$result")"
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$rss"
}

if [[ "${BENCH_IDLE_ONLY:-}" != 1 ]]; then
echo "| server | requests/s | p50 ms | p99 ms | RSS after load (MiB, with children) |"
echo "|---|---|---|---|---|"
measure "mcp-server (built-in echo)" 18081 "http://127.0.0.1:18081/mcp" \
    "$server" --listen 127.0.0.1:18081 --log error
measure "TypeScript SDK Streamable HTTP server (echo)" 18082 "http://127.0.0.1:18082/mcp" \
    node bench/ts_echo_server.cjs 18082
measure "mcp-server bridge -- node stdio_server.cjs" 18083 "http://127.0.0.1:18083/mcp" \
    "$server" --listen 127.0.0.1:18083 --log error bridge -- node "$stdio_server"
measure "supergateway --stateful (same stdio server)" 18084 "http://127.0.0.1:18084/mcp" \
    node "$NODE_PATH/supergateway/dist/index.js" --stdio "node $stdio_server" \
    --outputTransport streamableHttp --stateful --port 18084 --logLevel none
fi

# Idle streams: legacy SSE streams, each a session with its stream.
"$server" --listen 127.0.0.1:18085 --log error --max-sessions $((idle_streams + 10)) >/dev/null 2>&1 &
pid=$!
wait_port 18085
before="$(tree_rss_mib "$pid")"
opened="$(mktemp)"
"$loadgen" idle "http://127.0.0.1:18085/sse" "$idle_streams" 5 >"$opened" &
holder=$!
# Measure once every stream is open (the load generator says so).
until grep -q open_streams "$opened"; do sleep 0.2; done
during="$(tree_rss_mib "$pid")"
rm -f "$opened"
wait "$holder" || true
kill "$pid"; wait "$pid" 2>/dev/null || true
echo
echo "idle SSE streams: $idle_streams; mcp-server RSS ${before} MiB idle, ${during} MiB with the streams open" \
    "($(( (during - before) * 1024 * 1024 / idle_streams )) bytes per stream)"
