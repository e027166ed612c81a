#!/usr/bin/env bash
# The kind quickstart: a local cluster with the operator installed by its Helm chart, an McpApp
# that becomes Ready through the MCP handshake, and a tool call through a port forward.
#
#   bash tests/kind/quickstart.sh            # keeps the cluster
#   bash tests/kind/quickstart.sh --delete   # deletes it at the end (CI)
#
# Needs docker, kind, kubectl, helm and curl. Both images are built from this checkout and loaded
# into the cluster, so nothing is pulled from a registry but the base images.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

cluster=${KIND_CLUSTER:-mcp-operator}
namespace=mcp-operator-system
app=hello-mcp
delete=false
[ "${1:-}" = --delete ] && delete=true

for tool in docker kind kubectl helm curl; do
  command -v "$tool" >/dev/null || { echo "quickstart: $tool is not installed" >&2; exit 1; }
done
# The images' tag is the workspace version: the chart's appVersion and the companion image the
# operator runs for McpApps without spec.image.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
operator_image=ghcr.io/mcp-operator/operator:$version
server_image=ghcr.io/mcp-operator/mcp-server:$version

n=0
step() { n=$((n + 1)); printf '[%d/7] %s\n' "$n" "$*" >&2; }

step "kind cluster $cluster"
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi
kubectl config use-context "kind-$cluster" >/dev/null
forward=
cleanup() {
  if [ -n "$forward" ]; then kill "$forward" 2>/dev/null || true; fi
  if $delete; then kind delete cluster --name "$cluster"; fi
}
trap cleanup EXIT

step "building $operator_image and $server_image"
docker build --target operator -t "$operator_image" .
docker build --target mcp-server -t "$server_image" .

step "loading the images into the cluster"
kind load docker-image --name "$cluster" "$operator_image" "$server_image"

step "helm install mcp-operator"
helm upgrade --install mcp-operator charts/mcp-operator \
  --namespace "$namespace" --create-namespace --wait --timeout 180s

step "kubectl apply -f config/samples/minimal.yaml"
kubectl apply -f config/samples/minimal.yaml

step "kubectl wait --for=condition=Ready mcpapp/$app"
if ! kubectl wait --for=condition=Ready "mcpapp/$app" --timeout=300s; then
  kubectl describe "mcpapp/$app" >&2
  kubectl logs -n "$namespace" deploy/mcp-operator --tail=50 >&2
  exit 1
fi
kubectl get mcpapps

step "calling echo through kubectl port-forward svc/$app 18080:80"
kubectl port-forward "svc/$app" 18080:80 >/dev/null &
forward=$!
for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:18080/healthz && break
  sleep 0.2
done
printf 'echo answered: %s\n' "$(bash tests/mcp-echo.sh http://127.0.0.1:18080/mcp)"
