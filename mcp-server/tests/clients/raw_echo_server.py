"""A minimal stdio peer for bridge tests: answers every request with the exact line it received,
so a test can check that the bridge delivered the client's bytes unchanged. Standard library only.
"""

import json
import sys

for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        continue
    message = json.loads(line)
    if "id" in message and "method" in message:
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": {"received": line}}
        if message["method"] == "initialize":
            reply["result"].update(
                protocolVersion=message["params"]["protocolVersion"],
                capabilities={},
                serverInfo={"name": "raw-echo", "version": "1"},
            )
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
