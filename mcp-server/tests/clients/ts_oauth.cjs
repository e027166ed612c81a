// The official TypeScript SDK client against an OAuth-protected mcp-server, knowing only the
// server's URL and a client id and secret: the SDK finds the authorization server from the 401
// (WWW-Authenticate resource_metadata, then the RFC 9728 metadata, then the authorization server's
// own metadata), gets a token with the client-credentials grant, and then lists and calls tools.
// Prints one JSON object: every HTTP request the SDK made (with its answer's status), the token
// request's parameter names, the token's header and claims, and what the tools answered.
//
// Usage: node ts_oauth.cjs <url> <client-id> <client-secret> <scope>
// Needs NODE_PATH pointing at the node_modules that setup.sh installed.
'use strict';

const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ClientCredentialsProvider } = require('@modelcontextprotocol/sdk/client/auth-extensions.js');

const [url, clientId, clientSecret, scope] = process.argv.slice(2);

// Hydra puts a requested audience into the token's `aud` only from its own `audience` parameter
// (it ignores RFC 8707's `resource`, which the SDK sends as well), and a client-credentials token
// carries no audience otherwise. The SDK's hook for the token request's parameters,
// prepareTokenRequest, adds it: the server's URL, the resource this client is calling.
class AudienceProvider extends ClientCredentialsProvider {
  constructor(options, audience) {
    super(options);
    this.audience = audience;
  }

  prepareTokenRequest(requested) {
    const params = super.prepareTokenRequest(requested);
    params.set('audience', this.audience);
    return params;
  }
}

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());
const text = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('');

async function main() {
  const out = { requests: [] };
  // Every request the SDK makes, with where it went and what came back.
  const recording = async (target, init) => {
    const response = await fetch(target, init);
    const method = (init && init.method) || 'GET';
    out.requests.push(`${method} ${target} ${response.status}`);
    if (init && init.body instanceof URLSearchParams) {
      out.tokenParams = [...init.body.keys()].sort();
    }
    return response;
  };
  // The SDK's client-credentials flow asks for the provider's configured scope (not the one the
  // challenge names), so the scope is given here as any machine client is configured with it.
  const provider = new AudienceProvider({ clientId, clientSecret, scope }, url);
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recording });
  const client = new Client({ name: 'ts-oauth-test', version: '1.0.0' });
  await client.connect(transport);

  const token = provider.tokens().access_token.split('.');
  out.tokenHeader = decode(token[0]);
  out.tokenClaims = decode(token[1]);
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  out.echo = text(await client.callTool({ name: 'echo', arguments: { message: 'hello through hydra' } }));
  out.add = text(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
  await client.close();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
