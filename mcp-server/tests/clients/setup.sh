#!/usr/bin/env bash
# Installs the official MCP clients the mcp-server tests drive (TypeScript SDK, conformance suite,
# Python `mcp` package) into a cache outside the repository, keyed by the lockfiles' hashes, so a
# warm run does nothing. Prints the cache directory on its last line.
#
# With --check, installs nothing: prints the cache directory if it is complete, else fails.
#
# Environment:
#   MCP_CLIENTS_CACHE   parent directory of the cache (default: $XDG_CACHE_HOME or ~/.cache,
#                       then mcp-operator/)
#   PYTHON              Python interpreter used to create the venv (default: python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
base="${MCP_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-operator}"
hash="$(cat "$here/package.json" "$here/package-lock.json" "$here/requirements.txt" | sha256sum | cut -c1-16)"
dir="$base/clients-$hash"

if [[ -f "$dir/.complete" ]]; then
    echo "$dir"
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    echo "MCP test clients are not installed in $dir; run mcp-server/tests/clients/setup.sh" >&2
    exit 1
fi

# A half-finished install from an interrupted run is rebuilt from scratch.
rm -rf "$dir"
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)

"${PYTHON:-python3}" -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --requirement "$here/requirements.txt" >&2
"$dir/venv/bin/python" -c 'import mcp.client.streamable_http, mcp.client.sse' >&2

touch "$dir/.complete"
echo "$dir"
