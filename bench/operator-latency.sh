#!/usr/bin/env bash
# Operator reconcile latency: starts the test environment, installs the CRD, runs the operator,
# applies APPS McpApps one after another and prints, for each, the time from `kubectl apply` to
# the Deployment existing and to the status being written; then the operator's own reconcile
# duration histogram. Run as root from the repository (after tests/controlplane/build.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
apps=${APPS:-10}
work=$(mktemp -d)
kc=$work/kubeconfig
cargo build -q -p mcp-testenv -p mcp-operator --release
bin=${CARGO_TARGET_DIR:-target}/release
source tests/versions.env
kubectl="$HOME/.cache/mcp-operator/kubernetes-v$KUBERNETES_VERSION/kubectl --kubeconfig $kc"

"$bin/testenv" up --kubeconfig "$kc" --dir "$work/env" >"$work/up.log" 2>&1 &
up=$!
trap 'kill -TERM $up 2>/dev/null; wait $up 2>/dev/null; rm -rf "$work"' EXIT
until grep -q '^ready' "$work/up.log"; do sleep 0.2; done
$kubectl apply -f crds/ >/dev/null
$kubectl wait --for=condition=Established crd/mcpapps.mcp-operator.dev >/dev/null
"$bin/testenv" exec --kubeconfig "$kc" -- "$bin/mcp-operator" --metrics-addr 127.0.0.1:18080 \
  >"$work/operator.log" 2>&1 &
operator=$!
trap 'kill -TERM $operator $up 2>/dev/null; wait $operator $up 2>/dev/null; rm -rf "$work"' EXIT
sleep 2

KUBECTL="$kubectl" python3 - "$apps" <<'PY'
import json, os, shlex, statistics, subprocess, sys, time
kubectl = shlex.split(os.environ["KUBECTL"])
deploy, status = [], []
for i in range(int(sys.argv[1])):
    name = f"latency-{i}"
    manifest = f"apiVersion: mcp-operator.dev/v1alpha1\nkind: McpApp\nmetadata:\n  name: {name}\nspec: {{}}\n"
    start = time.monotonic()
    subprocess.run(kubectl + ["apply", "-f", "-"], input=manifest, text=True, check=True, capture_output=True)
    seen_deploy = None
    while True:
        now = time.monotonic()
        if seen_deploy is None and subprocess.run(kubectl + ["get", "deployment", name], capture_output=True).returncode == 0:
            seen_deploy = now
        out = subprocess.run(kubectl + ["get", "mcpapp", name, "-o", "json"], capture_output=True, text=True).stdout
        if out and json.loads(out).get("status", {}).get("observedGeneration"):
            deploy.append((seen_deploy or now) - start)
            status.append(now - start)
            break
print(f"apps: {len(status)} (polling with kubectl, so figures include its ~30-60 ms per call)")
print(f"apply -> Deployment exists: median {statistics.median(deploy)*1000:.0f} ms, max {max(deploy)*1000:.0f} ms")
print(f"apply -> status written:    median {statistics.median(status)*1000:.0f} ms, max {max(status)*1000:.0f} ms")
PY
"$bin/testenv" exec --kubeconfig "$kc" -- curl -s 127.0.0.1:18080/metrics |
  awk '/reconcile_duration_seconds_(sum|count)/ { v[$1]=$2 } END {
    printf "operator reconciles: %d, mean duration %.1f ms\n", v["mcp_operator_reconcile_duration_seconds_count"],
      1000 * v["mcp_operator_reconcile_duration_seconds_sum"] / v["mcp_operator_reconcile_duration_seconds_count"] }'
