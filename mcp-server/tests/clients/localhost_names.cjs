// Resolves names under `.localhost` to 127.0.0.1, as browsers do (RFC 6761), so a client can
// reach an app's ingress host on a loopback port without touching /etc/hosts. Required for its
// effect: Node's fetch looks names up through dns.lookup.
'use strict';

const dns = require('node:dns');

const systemLookup = dns.lookup;
dns.lookup = (host, options, callback) => {
  if (typeof options === 'function') [callback, options] = [options, {}];
  if (!String(host).endsWith('.localhost')) return systemLookup(host, options, callback);
  const loopback = { address: '127.0.0.1', family: 4 };
  return options && options.all ? callback(null, [loopback]) : callback(null, loopback.address, 4);
};
