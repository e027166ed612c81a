"""A stdio MCP server that misbehaves on request, for the bridge's robustness tests. Standard
library only. Tools (by name in `tools/call`):

  echo        answers normally
  big_first   answers with one 5 MiB line, its id before the result
  big_last    the same, with the id after the result
  bad_utf8    answers with a line that is not UTF-8
  silent      never answers

Flags: --ping-first sends a ping request and a log message before answering `initialize`;
--fork starts a grandchild (`sleep 300`) that outlives nothing it should.
"""

import json
import subprocess
import sys

out = sys.stdout.buffer
BIG = "x" * (5 * 1024 * 1024)


def send(obj):
    out.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    out.flush()


if "--fork" in sys.argv:
    subprocess.Popen(["sleep", "300"])

for raw in sys.stdin.buffer:
    line = raw.strip()
    if not line:
        continue
    message = json.loads(line)
    if "id" not in message or "method" not in message:
        continue
    rid, method = message["id"], message["method"]
    if method == "initialize":
        if "--ping-first" in sys.argv:
            send({"jsonrpc": "2.0", "id": "srv-ping", "method": "ping"})
            send({"jsonrpc": "2.0", "method": "notifications/message",
                  "params": {"level": "info", "data": "starting"}})
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "misbehaving", "version": "1"},
        }})
        continue
    if method != "tools/call":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
        continue
    tool = message["params"]["name"]
    text = {"type": "text", "text": BIG}
    if tool == "big_first":
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [text]}})
    elif tool == "big_last":
        send({"result": {"content": [text]}, "jsonrpc": "2.0", "id": rid})
    elif tool == "bad_utf8":
        out.write(b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode()
                  + b',"result":{"content":[{"type":"text","text":"\xff\xfe"}]}}\n')
        out.flush()
    elif tool == "silent":
        pass
    else:
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "content": [{"type": "text", "text": message["params"]["arguments"]["message"]}]}})
