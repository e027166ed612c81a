"""Drives mcp-server with the official Python `mcp` client and prints what it observed as one JSON
object on stdout; the Rust tests assert on it.

Usage: python py_client.py <streamable|sse> <url> <builtin|stateless|bridge|tools|stateless-tools> [bearer-token]

`tools` (after `initialize`) and `stateless-tools` (after `server/discover`) list every page of
tools/list, following nextCursor, and print the names in the order received and the number of
pages.
"""

import asyncio
import json
import sys
from contextlib import asynccontextmanager

from mcp import ClientSession, MCPError, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@asynccontextmanager
async def connect(kind, url, token, **callbacks):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    if kind == "streamable":
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write, **callbacks) as session:
                    yield session
    elif kind == "sse":
        async with sse_client(url, headers=headers) as (read, write):
            async with ClientSession(read, write, **callbacks) as session:
                yield session
    else:
        raise SystemExit(f"unknown transport {kind}")


def text(result):
    return "".join(c.text for c in result.content if c.type == "text")


async def error_of(awaitable):
    try:
        await awaitable
    except MCPError as e:
        return {"code": e.code, "message": e.error.message}
    return None


async def exercise_builtin(session, out, progress):
    out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
    out["echo"] = text(await session.call_tool("echo", {"message": "hello from python"}))
    out["add"] = text(await session.call_tool("add", {"a": 1.5, "b": 2.25}))
    out["time"] = text(await session.call_tool("time", {}))

    async def on_progress(value, total, message):
        progress.append(value)

    out["sleep"] = text(await session.call_tool("sleep", {"seconds": 1}, progress_callback=on_progress))
    out["progress"] = progress
    resources = (await session.list_resources()).resources
    out["resources"] = [str(r.uri) for r in resources]
    out["resourceText"] = (await session.read_resource(str(resources[0].uri))).contents[0].text
    out["prompts"] = [p.name for p in (await session.list_prompts()).prompts]
    prompt = await session.get_prompt("greet", {"name": "Grace"})
    out["promptText"] = prompt.messages[0].content.text
    out["unknownToolError"] = await error_of(session.call_tool("no-such-tool", {}))
    out["badArgumentError"] = await error_of(session.call_tool("echo", {"message": 7}))


async def exercise_bridge(session, out, progress):
    out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
    out["echo"] = text(await session.call_tool("echo", {"message": "python through the bridge"}))
    out["elicited"] = text(await session.call_tool("ask_color", {}))
    out["sampled"] = text(await session.call_tool("summarize", {"topic": "rivers"}))

    async def on_progress(value, total, message):
        progress.append(value)

    out["countdown"] = text(await session.call_tool("countdown", {"steps": 3}, progress_callback=on_progress))
    out["progress"] = progress
    out["crashError"] = await error_of(session.call_tool("crash", {}))
    out["afterCrash"] = text(await session.call_tool("echo", {"message": "still here"}))


async def list_all_tools(out, session):
    out["tools"], out["pages"], cursor = [], 0, None
    while out["pages"] < 20:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        out["tools"] += [t.name for t in page.tools]
        out["pages"] += 1
        cursor = page.next_cursor
        if not cursor:
            break


async def elicit(context, params):
    return types.ElicitResult(action="accept", content={"color": f"amber (asked: {params.message})"})


async def sample(context, params):
    asked = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant", model="test-model", content=types.TextContent(type="text", text=f"sampled: {asked}")
    )


async def main():
    kind, url, scenario = sys.argv[1:4]
    token = sys.argv[4] if len(sys.argv) > 4 else None
    out, progress = {}, []
    async with connect(kind, url, token, elicitation_callback=elicit, sampling_callback=sample) as session:
        if scenario in ("stateless", "stateless-tools"):
            discovered = await session.discover()
            out["supportedVersions"] = discovered.supported_versions
            out["protocolVersion"] = "2026-07-28"
            if scenario == "stateless":
                await exercise_builtin(session, out, progress)
            else:
                await list_all_tools(out, session)
        else:
            init = await session.initialize()
            out["protocolVersion"] = init.protocol_version
            out["serverInfo"] = {"name": init.server_info.name, "version": init.server_info.version}
            if scenario == "builtin":
                await exercise_builtin(session, out, progress)
            elif scenario == "bridge":
                await exercise_bridge(session, out, progress)
            elif scenario == "tools":
                await list_all_tools(out, session)
            else:
                raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
