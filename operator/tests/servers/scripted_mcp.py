"""A minimal MCP server (Streamable HTTP, JSON responses, initialize era) whose behaviour the
gate tests switch at run time, to play the servers real clusters meet:

  --broken        /healthz answers 200 but /mcp is a 404 page: up, yet not an MCP server.
  --tools a,b     the tools tools/list returns (default: echo).
  $SCRIPTED_TOOLS a JSON list of whole tool descriptions tools/list returns instead (schemas,
                  hints), for the tool contract tests.
  --hang          /healthz answers 200 but /mcp never answers: a server stuck in its handler.
  --redirect URL  /mcp answers 307 to URL: a pod that tries to send the prober elsewhere.
  --huge          /mcp answers 8 MiB of JSON: a pod that tries to fill the prober's memory.
  --drip          /mcp answers one byte every 200 ms, forever: a pod that holds the prober.
  --long-error    initialize fails with a 100 kB JSON-RPC error message: a pod that tries to
                  flood conditions and Events.
Hostile answers carry the marker LEAKED-FROM-POD, which must never show up in a status.
  GET /break      from now on /mcp answers 503, as a server that stopped speaking MCP.
  GET /heal       back to normal.

It listens on 0.0.0.0:$PORT (default 8080).
"""

import json
import os
import sys
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

broken = "--broken" in sys.argv
hang = "--hang" in sys.argv
redirect = sys.argv[sys.argv.index("--redirect") + 1] if "--redirect" in sys.argv else None
huge = "--huge" in sys.argv
drip = "--drip" in sys.argv
long_error = "--long-error" in sys.argv
MARKER = b"LEAKED-FROM-POD"
tools = ["echo"]
if "--tools" in sys.argv:
    tools = [t for t in sys.argv[sys.argv.index("--tools") + 1].split(",") if t]
described = json.loads(os.environ["SCRIPTED_TOOLS"]) if "SCRIPTED_TOOLS" in os.environ else None
failing = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def reply(self, status, body=b"", content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def hostile(self, body):
        """Plays the hostile mode, if any; True when it answered."""
        if redirect:
            self.reply(307, MARKER, "text/plain", headers=[("Location", redirect)])
        elif huge:
            filler = MARKER * ((8 << 20) // len(MARKER))
            self.reply(200, b'{"jsonrpc":"2.0","id":1,"result":{"x":"' + filler + b'"}}')
        elif drip:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif long_error:
            message = (b"x" * 100_000 + MARKER).decode()
            rid = json.loads(body).get("id")
            error = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": message}}
            self.reply(200, json.dumps(error).encode())
        else:
            return False
        return True

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, b"ok", "text/plain")
        elif self.path == "/break":
            failing.set()
            self.reply(200, b"broken", "text/plain")
        elif self.path == "/heal":
            failing.clear()
            self.reply(200, b"healed", "text/plain")
        else:
            self.reply(405 if self.path == "/mcp" else 404, b"", "text/plain")

    def do_DELETE(self):
        self.reply(200 if self.path == "/mcp" else 404, b"", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if hang:
            threading.Event().wait()
        if self.path == "/mcp" and self.hostile(body):
            return
        if broken or self.path != "/mcp":
            self.reply(404, b"<html><body>Not Found</body></html>", "text/html")
            return
        if failing.is_set():
            self.reply(503, b"overloaded", "text/plain")
            return
        message = json.loads(body)
        method, rid = message.get("method"), message.get("id")
        if rid is None:
            self.reply(202)
            return
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "scripted", "version": "0.1.0"},
            }
            headers = [("Mcp-Session-Id", "s-1")]
        elif method == "tools/list":
            listed = described or [{"name": t, "inputSchema": {"type": "object"}} for t in tools]
            result = {"tools": listed}
            headers = []
        else:
            error = {"code": -32601, "message": "method not found: %s" % method}
            self.reply(200, json.dumps({"jsonrpc": "2.0", "id": rid, "error": error}).encode())
            return
        self.reply(200, json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}).encode(), headers=headers)


class Server(ThreadingHTTPServer):
    # HTTPServer.server_bind looks up the host's FQDN, a DNS query that a pod network without a
    # resolver answers only after its timeout (about 10 s): bind without it.
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


Server(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
