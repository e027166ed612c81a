// Drives mcp-server with the official TypeScript SDK client and prints what it observed as one
// JSON object on stdout; the Rust tests assert on it.
//
// Usage: node ts_client.cjs <streamable|sse> <url> <builtin|bridge|restart|tools> [bearer-token]
//
// `tools` lists every page of tools/list, following nextCursor, and prints the names in the
// order received and the number of pages.
// `restart` lists tools, prints `ready` and waits for a line on stdin (the test restarts the
// server behind the URL meanwhile), then records how the old session fails and whether a new
// client gets a working session.
// Needs NODE_PATH pointing at the node_modules that setup.sh installed.
'use strict';

const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { SSEClientTransport } = require('@modelcontextprotocol/sdk/client/sse.js');
const { ElicitRequestSchema, CreateMessageRequestSchema } = require('@modelcontextprotocol/sdk/types.js');

const [transportKind, url, scenario, token] = process.argv.slice(2);

function transportFor(kind, endpoint) {
  const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : undefined;
  if (kind === 'streamable') {
    return new StreamableHTTPClientTransport(new URL(endpoint), { requestInit });
  }
  if (kind === 'sse') {
    const eventSourceInit = token
      ? { fetch: (u, init) => fetch(u, { ...init, headers: { ...(init && init.headers), Authorization: `Bearer ${token}` } }) }
      : undefined;
    return new SSEClientTransport(new URL(endpoint), { requestInit, eventSourceInit });
  }
  throw new Error(`unknown transport ${kind}`);
}

const text = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('');

async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { code: e.code, message: String(e.message) };
  }
}

async function builtin(client, out) {
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  out.echo = text(await client.callTool({ name: 'echo', arguments: { message: 'hello from typescript' } }));
  out.add = text(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
  out.time = text(await client.callTool({ name: 'time', arguments: {} }));
  const progress = [];
  out.sleep = text(
    await client.callTool({ name: 'sleep', arguments: { seconds: 1 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    }),
  );
  out.progress = progress;
  out.resources = (await client.listResources()).resources.map((r) => r.uri);
  const read = await client.readResource({ uri: out.resources[0] });
  out.resourceText = read.contents[0].text;
  out.prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
  out.promptText = prompt.messages[0].content.text;
  out.unknownToolError = await errorOf(client.callTool({ name: 'no-such-tool', arguments: {} }));
  out.badArgumentError = await errorOf(client.callTool({ name: 'add', arguments: { a: 'x', b: 1 } }));
  out.ping = await client.ping();
}

async function bridge(client, out) {
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  out.echo = text(await client.callTool({ name: 'echo', arguments: { message: 'through the bridge' } }));
  out.elicited = text(await client.callTool({ name: 'ask_color', arguments: {} }));
  out.sampled = text(await client.callTool({ name: 'summarize', arguments: { topic: 'bridges' } }));
  const progress = [];
  out.countdown = text(
    await client.callTool({ name: 'countdown', arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    }),
  );
  out.progress = progress;
  out.crashError = await errorOf(client.callTool({ name: 'crash', arguments: {} }));
  // The bridge restarts the child with this session's handshake; the session carries on.
  out.afterCrash = text(await client.callTool({ name: 'echo', arguments: { message: 'still here' } }));
}

async function tools(client, out) {
  out.tools = [];
  out.pages = 0;
  let cursor;
  do {
    const page = await client.listTools(cursor === undefined ? undefined : { cursor });
    out.tools.push(...page.tools.map((t) => t.name));
    out.pages += 1;
    cursor = page.nextCursor;
  } while (cursor !== undefined && out.pages < 20);
}

const newClient = () =>
  new Client({ name: 'ts-sdk-test-client', version: '1.0.0' }, { capabilities: { elicitation: {}, sampling: {} } });

async function restart(client, out) {
  out.toolsBefore = (await client.listTools()).tools.map((t) => t.name).sort();
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  out.oldSessionError = await errorOf(client.listTools());
  const fresh = newClient();
  await fresh.connect(transportFor(transportKind, url));
  out.toolsAfter = (await fresh.listTools()).tools.map((t) => t.name).sort();
  await fresh.close();
}

async function main() {
  const client = newClient();
  client.setRequestHandler(ElicitRequestSchema, async (request) => ({
    action: 'accept',
    content: { color: `teal (asked: ${request.params.message})` },
  }));
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
    role: 'assistant',
    model: 'test-model',
    content: { type: 'text', text: `sampled: ${request.params.messages[0].content.text}` },
  }));
  const out = {};
  await client.connect(transportFor(transportKind, url));
  out.serverInfo = client.getServerVersion();
  out.protocolVersion = client.transport && client.transport.protocolVersion;
  if (scenario === 'builtin') await builtin(client, out);
  else if (scenario === 'bridge') await bridge(client, out);
  else if (scenario === 'restart') await restart(client, out);
  else if (scenario === 'tools') await tools(client, out);
  else throw new Error(`unknown scenario ${scenario}`);
  // A session that ended on the server side has nothing left to terminate.
  if (transportKind === 'streamable' && scenario !== 'restart') await client.transport.terminateSession();
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
