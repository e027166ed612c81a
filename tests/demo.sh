#!/usr/bin/env bash
# The main job in one command, on a local control plane (no cluster needed): start Kubernetes
# whose pods run as local processes (with kube-proxy, cluster DNS and Traefik as the ingress
# controller), install the McpApp CRD, run the operator, apply the minimal sample, wait until it is
# Ready (its pod answered the operator's MCP handshake), expose it through the ingress at
# http://hello-mcp.localhost:PORT/mcp, call the `echo` tool there from this shell, show
# `kubectl get mcpapps`, and keep everything up for any MCP client until Ctrl-C.
#
#   bash tests/demo.sh            # stays up until Ctrl-C
#   bash tests/demo.sh --exit     # stops after the echo call (CI runs it this way)
#
# DEMO_INGRESS_PORT chooses the loopback port of the ingress (default: a free one).
#
# Must run as root (the environment creates network namespaces). The first run builds the control
# plane from its Go modules (cached under ~/.cache/mcp-operator) and the workspace's binaries.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=versions.env
source tests/versions.env

stay_up=true
case "${1:-}" in
  --exit) stay_up=false ;;
  "") ;;
  *) echo "usage: bash tests/demo.sh [--exit]" >&2; exit 2 ;;
esac
# shellcheck source=prerequisites.sh
source tests/prerequisites.sh
prerequisites demo

kubeconfig=${DEMO_KUBECONFIG:-/tmp/mcp-demo.kubeconfig}
work=$(mktemp -d /tmp/mcp-demo.XXXXXX)
app=hello-mcp
total=9
n=0
step() { n=$((n + 1)); printf '[%d/%d] %s\n' "$n" "$total" "$*" >&2; }
fail() { printf 'demo failed: %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
  local status=$? pid
  # The operator first (it runs outside the environment's process tree), then the environment.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$kubeconfig"
  case $status in
    0 | 130) rm -rf "$work" ;;
    *) printf 'logs kept in %s\n' "$work" >&2 ;;
  esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "building the control plane (etcd, kube-apiserver, kube-controller-manager, kube-proxy, kubectl, CoreDNS, Traefik; cached)"
bash tests/controlplane/build.sh environment
kubectl="${MCP_OPERATOR_CACHE:-$HOME/.cache/mcp-operator}/kubernetes-v$KUBERNETES_VERSION/kubectl"
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

step "building mcp-operator, mcp-server and testenv"
cargo build --locked -q -p mcp-operator -p mcp-server -p mcp-testenv --bins
bin=${CARGO_TARGET_DIR:-$repo/target}/debug
companion=ghcr.io/mcp-operator/mcp-server

step "starting the control plane (files and logs in $work)"
# The companion image runs the workspace's mcp-server and contains it at its real path, so stdio
# apps (whose init container copies the binary) work too.
"$bin/testenv" up --kubeconfig "$kubeconfig" --dir "$work/env" \
  --ingress-port "${DEMO_INGRESS_PORT:-0}" \
  --image-map "$companion=$bin/mcp-server" \
  --image-file "$companion=/usr/local/bin/mcp-server=$bin/mcp-server" \
  >"$work/testenv.out" 2>"$work/testenv.err" &
pids+=($!)
until grep -qx ready "$work/testenv.out" 2>/dev/null; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/testenv.err" >&2; fail "the control plane did not start"; }
  sleep 0.2
done
ingress_port=$(sed -n 's|^ingress http://127.0.0.1:||p' "$work/testenv.out")
[ -n "$ingress_port" ] || fail "the environment reported no ingress port"

step "installing the McpApp CRD (crds/)"
k apply --server-side -f crds/ >/dev/null
k wait --for=condition=Established crd/mcpapps.mcp-operator.dev --timeout=60s >/dev/null

step "starting the operator (log: $work/operator.log)"
# Inside the environment's network, where pod IPs (and so the handshake probes) are reachable.
"$bin/testenv" exec --kubeconfig "$kubeconfig" -- \
  "$bin/mcp-operator" --metrics-addr 127.0.0.1:9090 >"$work/operator.log" 2>&1 &
pids+=($!)

step "applying config/samples/minimal.yaml"
k apply -f config/samples/minimal.yaml >/dev/null

step "waiting for the handshake: kubectl wait --for=condition=Ready mcpapp/$app"
k wait --for=condition=Ready "mcpapp/$app" --timeout=180s >/dev/null ||
  { k get mcpapp "$app" -o yaml >&2; fail "$app did not become Ready"; }

step "exposing $app through the ingress controller (Traefik): spec.ingress.host $app.localhost"
k patch mcpapp "$app" --type merge -p "{\"spec\":{\"ingress\":{\"host\":\"$app.localhost\"}}}" >/dev/null
url="http://$app.localhost:$ingress_port/mcp"

step "calling the echo tool at $url from this shell"
# The ingress controller picks the new Ingress up from its watch within a few seconds.
for attempt in $(seq 1 60); do
  text=$(bash tests/mcp-echo.sh "$url" 2>"$work/echo.err") && break
  [ "$attempt" -lt 60 ] || { cat "$work/echo.err" >&2; fail "no answer at $url"; }
  sleep 0.5
done
[ "$text" = "hello from mcp-operator" ] || fail "unexpected echo reply: $text"
printf '\necho answered: %s\n\n' "$text"

k get mcpapps
echo

if ! $stay_up; then
  exit 0
fi
cat <<EOF
The environment stays up until Ctrl-C. Connect any MCP client (the MCP Inspector, an editor's
MCP settings, curl) to:

  $url

In another shell:
  export KUBECONFIG=$kubeconfig
  $kubectl get mcpapps -w                                  # watch the app
  $kubectl logs -f -l app.kubernetes.io/instance=$app       # its pods' logs
  $kubectl describe mcpapp $app
  bash tests/mcp-echo.sh $url "any message"
Cluster names resolve inside the environment:
  $bin/testenv exec --kubeconfig $kubeconfig -- bash tests/mcp-echo.sh http://$app.default.svc/mcp
Logs (removed at Ctrl-C): $work (operator.log, env/logs/).
EOF
wait "${pids[0]}"
