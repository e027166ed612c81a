// Drives replicas of mcp-server with the official TypeScript SDK client as a round-robin load
// balancer would: every HTTP request goes to the next replica in turn, whichever owns the
// session. Runs many sessions at once and prints what it observed as one JSON object.
//
// Usage: node ts_replicas.cjs <streamable|sse> <url,url,...> <sessions> <calls-per-session>
// With `sse`, each session's GET /sse stays on one replica and its POSTs are spread.
// Names under `.localhost` resolve to 127.0.0.1 (localhost_names.cjs). Needs NODE_PATH pointing
// at the node_modules that setup.sh installed.
'use strict';

require('./localhost_names.cjs');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { SSEClientTransport } = require('@modelcontextprotocol/sdk/client/sse.js');

const [transportKind, list, sessionsArg, callsArg] = process.argv.slice(2);
const replicas = list.split(',').map((u) => new URL(u));
const sessions = Number(sessionsArg);
const calls = Number(callsArg);

let turn = 0;
const hits = {};

// The balancer: the request's path and query are kept, the replica is the next one.
function spread(url, init) {
  const target = new URL(url instanceof Request ? url.url : url);
  const replica = replicas[turn++ % replicas.length];
  target.host = replica.host;
  hits[replica.host] = (hits[replica.host] || 0) + 1;
  return fetch(target, init);
}

const text = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('');

async function runSession(index, out) {
  const home = replicas[index % replicas.length];
  const transport =
    transportKind === 'streamable'
      ? new StreamableHTTPClientTransport(home, { fetch: spread })
      : new SSEClientTransport(home, { fetch: spread, eventSourceInit: { fetch: (u, init) => fetch(u, init) } });
  const client = new Client({ name: 'ts-replicas', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  for (let call = 0; call < calls; call++) {
    const message = `session ${index} call ${call}`;
    const answer = text(await client.callTool({ name: 'echo', arguments: { message } }));
    if (answer === message) out.answered += 1;
    else out.failures.push(`wrong answer ${answer}`);
  }
  let progress = 0;
  const slept = text(
    await client.callTool({ name: 'sleep', arguments: { seconds: 1 } }, undefined, {
      onprogress: () => {
        progress += 1;
      },
    }),
  );
  if (slept === 'slept 1 seconds') out.slept += 1;
  out.progress.push(progress);
  if (transportKind === 'streamable') await transport.terminateSession();
  await client.close();
}

async function main() {
  const out = { answered: 0, slept: 0, progress: [], failures: [] };
  await Promise.all(
    Array.from({ length: sessions }, (_, i) =>
      runSession(i, out).catch((e) =>
        out.failures.push(`session ${i}: ${e && e.message}${e && e.cause ? ` (${e.cause.message || e.cause})` : ''}`),
      ),
    ),
  );
  out.replicasUsed = Object.keys(hits).length;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
