// Keeps many sessions of the official TypeScript SDK client calling one URL for a while, as an
// application would while the pods behind it change (scale-down, rolling update). A session
// that gets 404 (its pod is gone, as the MCP spec says) starts a new one, as the spec tells
// clients to; every other error is a failure. Prints one JSON object: for each session in turn
// the pod that held it (from the built-in `whoami` tool), when it started and ended (ms since
// the epoch), its calls, and how it ended; and the failures.
//
// Usage: node ts_churn.cjs <url> <sessions> <seconds> <pause-ms>
// Names under `.localhost` resolve to 127.0.0.1 (localhost_names.cjs). Needs NODE_PATH pointing
// at the node_modules that setup.sh installed.
'use strict';

require('./localhost_names.cjs');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

const [url, sessionsArg, secondsArg, pauseArg] = process.argv.slice(2);
const sessions = Number(sessionsArg);
const until = Date.now() + Number(secondsArg) * 1000;
const pause = Number(pauseArg);

const text = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const describe = (e) => `${e && e.message}${e && e.cause ? ` (${e.cause.message || e.cause})` : ''}`;
// The SDK reports an HTTP status in its error message ("... (HTTP 404) ..." or "... 404 ...").
const isNotFound = (e) => e && (e.code === 404 || /\b404\b/.test(String(e.message)));

async function open() {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'ts-churn', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  const pod = text(await client.callTool({ name: 'whoami', arguments: {} }));
  return { client, transport, pod };
}

async function runSession(index, out) {
  while (Date.now() < until) {
    const run = { session: index, started: Date.now(), calls: 0 };
    let held;
    try {
      held = await open();
    } catch (e) {
      out.failures.push({ session: index, at: Date.now(), during: 'initialize', error: describe(e) });
      await sleep(pause);
      continue;
    }
    run.pod = held.pod;
    out.runs.push(run);
    while (Date.now() < until) {
      const message = `${index}/${run.started}/${run.calls}`;
      try {
        const answer = text(await held.client.callTool({ name: 'echo', arguments: { message } }));
        if (answer !== message) throw new Error(`answered ${answer}`);
        run.calls += 1;
      } catch (e) {
        run.ended = Date.now();
        if (isNotFound(e)) {
          run.end = 'not-found';
        } else {
          run.end = 'failed';
          out.failures.push({ session: index, pod: run.pod, at: run.ended, error: describe(e) });
        }
        break;
      }
      await sleep(pause);
    }
    if (!run.end) {
      run.ended = Date.now();
      run.end = 'done';
      await held.transport.terminateSession().catch(() => {});
    }
    await held.client.close().catch(() => {});
  }
}

async function main() {
  const out = { runs: [], failures: [] };
  await Promise.all(Array.from({ length: sessions }, (_, i) => runSession(i, out)));
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
