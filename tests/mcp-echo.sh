#!/usr/bin/env bash
# Calls the `echo` tool of the MCP server at URL over Streamable HTTP, as a client would by hand:
# initialize, the initialized notification, tools/call, then DELETE of the session. Prints the
# text the tool returned; fails on any HTTP error or an answer without it.
#
#   bash tests/mcp-echo.sh URL [MESSAGE]
#
# Used by tests/demo.sh (inside the local environment's network) and the kind quickstart (through
# a port forward). Needs curl.
set -euo pipefail
url=${1:?usage: mcp-echo.sh URL [MESSAGE]}
message=${2:-hello from mcp-operator}
revision=2025-11-25

post() {
  curl -sS --fail-with-body --max-time 10 -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' "$@" "$url"
}

initialize='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'$revision'",
  "capabilities":{},"clientInfo":{"name":"mcp-echo.sh","version":"1"}}}'
session=$(post -D - -o /dev/null -d "$initialize" | tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')
[ -n "$session" ] || { echo "no Mcp-Session-Id from $url" >&2; exit 1; }
headers=(-H "Mcp-Session-Id: $session" -H "MCP-Protocol-Version: $revision")
post "${headers[@]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'

# The message goes into JSON: escape backslashes and quotes.
escaped=$(printf '%s' "$message" | sed 's/\\/\\\\/g; s/"/\\"/g')
call='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"'$escaped'"}}}'
reply=$(post "${headers[@]}" -d "$call")
curl -sS --max-time 10 -X DELETE "${headers[@]}" "$url" >/dev/null || true

# The reply is JSON or one SSE event: either way, the first text content item.
text=$(printf '%s\n' "$reply" | sed -n 's/.*"text":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | head -n 1)
[ -n "$text" ] || { echo "no text in the echo reply: $reply" >&2; exit 1; }
printf '%s\n' "$text"
