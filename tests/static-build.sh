#!/usr/bin/env bash
# Builds mcp-server as the Dockerfile does (release, statically linked against musl) and checks
# what the stdio bridge relies on: no program interpreter and no shared libraries, so the binary
# runs inside any image, and `install` copies it the way the operator's init container does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=x86_64-unknown-linux-musl
# jemalloc, the server's allocator, is C: it needs a C compiler for musl.
command -v musl-gcc >/dev/null ||
  { echo "static build: musl-gcc is missing (apt-get install musl-tools)" >&2; exit 1; }
rustup target add "$target" >/dev/null 2>&1 ||
  { echo "static build: cannot install the Rust target $target" >&2; exit 1; }
cargo build --release --locked -q --target "$target" -p mcp-server --bin mcp-server
bin=${CARGO_TARGET_DIR:-target}/$target/release/mcp-server

# A dynamic executable names its loader in a PT_INTERP program header.
if readelf --program-headers "$bin" | grep -q INTERP; then
  echo "static build: $bin asks for a program interpreter" >&2; exit 1
fi
if readelf --dynamic "$bin" | grep -q NEEDED; then
  echo "static build: $bin needs shared libraries:" >&2
  readelf --dynamic "$bin" | grep NEEDED >&2; exit 1
fi

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
"$bin" install "$dest/mcp-server"
"$dest/mcp-server" --version
printf 'static build: %s, %s bytes, no interpreter, no shared libraries\n' "$bin" "$(stat -c %s "$bin")"
