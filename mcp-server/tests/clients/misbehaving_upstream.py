"""A Streamable HTTP MCP server that misbehaves on request, for the proxy's robustness tests.
Standard library only. Prints `listening on PORT` once it accepts connections.

It answers `initialize` (with a session id), accepts notifications, refuses GET streams (405)
and ends sessions on DELETE. Tools (by name in `tools/call`):

  echo        answers normally, as JSON
  headers     answers with the request headers it received (lower-cased names)
  hang        opens an event stream and never writes to it
  hang_head   never even sends the response head
  big_event   an event stream with one endless event (data without end)
  big_json    a JSON answer far larger than any proxy should hold
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSION = "upstream-session-1"
CHUNK = b"x" * 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(405, extra=[("Allow", "POST, DELETE")])

    def do_DELETE(self):
        self.reply(204)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        message = json.loads(self.rfile.read(length))
        if "id" not in message:
            self.reply(202)
            return
        answer = lambda result: json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        if message["method"] == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "misbehaving-upstream", "version": "1"},
            }
            self.reply(200, answer(result), extra=[("Mcp-Session-Id", SESSION)])
            return
        if self.headers.get("Mcp-Session-Id") != SESSION:
            self.reply(404)
            return
        tool = message.get("params", {}).get("name")
        if tool == "headers":
            seen = {k.lower(): v for k, v in self.headers.items()}
            self.reply(200, answer({"content": [{"type": "text", "text": json.dumps(seen)}]}))
        elif tool == "hang_head":
            time.sleep(3600)
        elif tool == "hang":
            self.reply(200, content_type="text/event-stream")
            self.wfile.flush()
            time.sleep(3600)
        elif tool in ("big_event", "big_json"):
            kind = "text/event-stream" if tool == "big_event" else "application/json"
            head = b"data: " if tool == "big_event" else b'{"jsonrpc":"2.0","id":1,"result":"'
            self.reply(200, head, content_type=kind)
            try:
                while True:
                    self.wfile.write(CHUNK)
            except OSError:
                pass  # the proxy hung up, as it should
        else:
            self.reply(200, answer({"content": [{"type": "text", "text": "echo"}]}))


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
