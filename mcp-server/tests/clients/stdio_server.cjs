// A stdio MCP server built with the official TypeScript SDK, for bridge-mode tests. Its tools
// exercise what a bridge must carry: server-to-client requests (elicitation, sampling), progress
// notifications, and a crash.
//
// Needs NODE_PATH pointing at the node_modules that setup.sh installed.
'use strict';

const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js');
const { z } = require('zod');

const server = new McpServer({ name: 'bridged-ts-server', version: '1.0.0' });
const text = (t) => ({ content: [{ type: 'text', text: t }] });

server.registerTool(
  'echo',
  { description: 'Returns the message', inputSchema: { message: z.string() } },
  async ({ message }) => text(message),
);

server.registerTool('ask_color', { description: 'Asks the user for a colour' }, async () => {
  const answer = await server.server.elicitInput({
    message: 'Favourite colour?',
    requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
  });
  return text(`${answer.action}: ${answer.content && answer.content.color}`);
});

server.registerTool(
  'summarize',
  { description: 'Asks the client model for a summary', inputSchema: { topic: z.string() } },
  async ({ topic }) => {
    const reply = await server.server.createMessage({
      messages: [{ role: 'user', content: { type: 'text', text: `summarize ${topic}` } }],
      maxTokens: 50,
    });
    return text(reply.content.text);
  },
);

server.registerTool(
  'countdown',
  { description: 'Counts down with progress notifications', inputSchema: { steps: z.number() } },
  async ({ steps }, extra) => {
    const token = extra._meta && extra._meta.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: i, total: steps },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return text('liftoff');
  },
);

server.registerTool('crash', { description: 'Exits the process mid-call' }, async () => {
  process.exit(7);
});

server.connect(new StdioServerTransport()).catch((e) => {
  console.error(e);
  process.exit(1);
});
