"""A Streamable HTTP MCP server that misbehaves on request, for the proxy's robustness tests.
Standard library only. Prints `listening on PORT` once it accepts connections.

It answers `initialize` (with a session id), accepts notifications, refuses GET streams on /mcp
(405) and ends sessions on DELETE. Tools (by name in `tools/call`):

  echo        answers normally, as JSON
  headers     answers with the request headers it received (lower-cased names; a header sent
              more than once has its values joined with ", ")
  hang        opens an event stream and never writes to it
  hang_head   never even sends the response head
  big_event   an event stream with one endless event (data without end)
  big_json    a JSON answer far larger than any proxy should hold

`tools/list` is paged: the first page (JSON) lists echo and delete_record, the second (cursor
"2", an event stream with a log message before the answer) admin_reset, the third (cursor "3",
JSON) headers and hang. Cursor "bad" gets a result whose `tools` is not a list.

The legacy HTTP+SSE transport is served too: GET /sse opens the stream, whose `endpoint` event
names /messages?session=N, where messages are POSTed (202) and answered on the stream; it
offers echo, headers and tools/list (all pages as plain events).
"""

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSION = "upstream-session-1"
CHUNK = b"x" * 65536
PAGES = {
    None: (["echo", "delete_record"], "2"),
    "2": (["admin_reset"], "3"),
    "3": (["headers", "hang"], None),
}
STREAMS = {}
STREAMS_LOCK = threading.Lock()


def tool(name):
    return {"name": name, "description": f"the {name} tool", "inputSchema": {"type": "object"}}


def tools_page(cursor):
    if cursor == "bad":
        return {"tools": {"0": tool("delete_record")}}
    names, following = PAGES[cursor]
    page = {"tools": [tool(n) for n in names]}
    if following:
        page["nextCursor"] = following
    return page


def seen_headers(headers):
    seen = {}
    for name, value in headers.items():
        name = name.lower()
        seen[name] = f"{seen[name]}, {value}" if name in seen else value
    return seen


def text_result(text):
    return {"content": [{"type": "text", "text": text}]}


def initialize_result(message):
    return {
        "protocolVersion": message["params"]["protocolVersion"],
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "misbehaving-upstream", "version": "1"},
    }


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
        if self.path != "/sse":
            self.reply(405, extra=[("Allow", "POST, DELETE")])
            return
        events = queue.Queue()
        with STREAMS_LOCK:
            session = str(len(STREAMS) + 1)
            STREAMS[session] = events
        self.reply(200, f"event: endpoint\ndata: /messages?session={session}\n\n".encode(), "text/event-stream")
        self.wfile.flush()
        try:
            while True:
                self.wfile.write(b"event: message\ndata: " + events.get() + b"\n\n")
                self.wfile.flush()
        except OSError:
            pass  # the proxy ended the session

    def do_DELETE(self):
        self.reply(204)

    def read_message(self):
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length))

    def do_POST(self):
        if self.path.startswith("/messages?session="):
            self.legacy_post(self.path.split("=", 1)[1])
            return
        message = self.read_message()
        if "id" not in message:
            self.reply(202)
            return
        answer = lambda result: json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        if message["method"] == "initialize":
            self.reply(200, answer(initialize_result(message)), extra=[("Mcp-Session-Id", SESSION)])
            return
        if self.headers.get("Mcp-Session-Id") != SESSION:
            self.reply(404)
            return
        if message["method"] == "tools/list":
            cursor = (message.get("params") or {}).get("cursor")
            if cursor == "2":
                note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "page 2"}}
                body = b"data: " + json.dumps(note).encode() + b"\n\ndata: " + answer(tools_page(cursor)) + b"\n\n"
                self.reply(200, body, content_type="text/event-stream")
            else:
                self.reply(200, answer(tools_page(cursor)))
            return
        tool_name = message.get("params", {}).get("name")
        if tool_name == "headers":
            self.reply(200, answer(text_result(json.dumps(seen_headers(self.headers)))))
        elif tool_name == "hang_head":
            time.sleep(3600)
        elif tool_name == "hang":
            self.reply(200, content_type="text/event-stream")
            self.wfile.flush()
            time.sleep(3600)
        elif tool_name in ("big_event", "big_json"):
            kind = "text/event-stream" if tool_name == "big_event" else "application/json"
            head = b"data: " if tool_name == "big_event" else b'{"jsonrpc":"2.0","id":1,"result":"'
            self.reply(200, head, content_type=kind)
            try:
                while True:
                    self.wfile.write(CHUNK)
            except OSError:
                pass  # the proxy hung up, as it should
        else:
            self.reply(200, answer(text_result("echo")))

    def legacy_post(self, session):
        with STREAMS_LOCK:
            events = STREAMS.get(session)
        if events is None:
            self.reply(404)
            return
        message = self.read_message()
        self.reply(202)
        if "id" not in message or "method" not in message:
            return
        method = message["method"]
        if method == "initialize":
            result = initialize_result(message)
        elif method == "tools/list":
            result = tools_page((message.get("params") or {}).get("cursor"))
        elif message.get("params", {}).get("name") == "headers":
            result = text_result(json.dumps(seen_headers(self.headers)))
        else:
            result = text_result("echo")
        events.put(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode())


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
