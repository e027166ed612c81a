"""Drives replicas of mcp-server with the official Python `mcp` client over Streamable HTTP as a
round-robin load balancer would: every HTTP request goes to the next replica in turn, whichever
owns the session. Runs many sessions at once and prints what it observed as one JSON object.
Names under `.localhost` are reached at 127.0.0.1, as browsers do (RFC 6761), with the name kept
in the Host header, so a URL can name an app's ingress host on a loopback port.

Usage: python py_replicas.py <url,url,...> <sessions> <calls-per-session>
"""

import asyncio
import itertools
import json
import sys
from urllib.parse import urlsplit

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica, keeping its path and query."""

    def __init__(self, ports, turns, hits):
        self.inner = httpx2.AsyncHTTPTransport()
        self.ports = ports
        self.turns = turns
        self.hits = hits

    async def handle_async_request(self, request):
        port = self.ports[next(self.turns) % len(self.ports)]
        self.hits.add(port)
        host = request.url.host
        address = "127.0.0.1" if host.endswith(".localhost") else host
        request.url = request.url.copy_with(host=address, port=port)
        request.headers["Host"] = f"{host}:{port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


def text(result):
    return "".join(c.text for c in result.content if c.type == "text")


async def run_session(index, url, transport, calls, out):
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(transport=transport, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for call in range(calls):
                    message = f"session {index} call {call}"
                    answer = text(await session.call_tool("echo", {"message": message}))
                    if answer == message:
                        out["answered"] += 1
                    else:
                        out["failures"].append(f"wrong answer {answer}")
                progress = []

                async def on_progress(value, total, message):
                    progress.append(value)

                slept = text(await session.call_tool("sleep", {"seconds": 1}, progress_callback=on_progress))
                if slept == "slept 1 seconds":
                    out["slept"] += 1
                out["progress"].append(len(progress))


async def main():
    urls, sessions, calls = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    ports = [urlsplit(u).port for u in urls]
    turns, hits = itertools.count(), set()
    out = {"answered": 0, "slept": 0, "progress": [], "failures": []}

    async def guarded(index):
        try:
            transport = RoundRobin(ports, turns, hits)
            await run_session(index, urls[index % len(urls)], transport, calls, out)
        except BaseException as e:  # noqa: BLE001 - every failure is reported, not raised
            out["failures"].append(f"session {index}: {e!r}")

    await asyncio.gather(*(guarded(i) for i in range(sessions)))
    out["replicasUsed"] = len(hits)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
