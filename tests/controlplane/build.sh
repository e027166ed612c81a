#!/usr/bin/env bash
# Builds the test control plane from Go modules: etcd, kube-apiserver, kube-controller-manager,
# kubectl and helm. Output goes to $MCP_OPERATOR_CACHE (default ~/.cache/mcp-operator), one folder
# per component and version; a component whose folder is complete is not built again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../versions.env
source "$here/../versions.env"
cache=${MCP_OPERATOR_CACHE:-$HOME/.cache/mcp-operator}
export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

# Runs "go get" for the given packages in a throwaway wrapper module and builds each of them.
# Usage: build_in_wrapper OUT_DIR LDFLAGS GO_MOD_EXTRA PKG...
build_in_wrapper() {
  local out=$1 ldflags=$2 extra=$3; shift 3
  local work; work=$(mktemp -d)
  printf 'module mcp-operator.dev/controlplane-build\n\ngo 1.26\n%s\n' "$extra" >"$work/go.mod"
  (cd "$work" && go get "$@" 2>"$work/go-get.log") || { cat "$work/go-get.log" >&2; return 1; }
  mkdir -p "$out.partial"
  local pkg
  for pkg in "$@"; do
    pkg=${pkg%@*}
    log "go build ${pkg}"
    (cd "$work" && go build -ldflags "$ldflags" -o "$out.partial/$(basename "$pkg")" "$pkg")
  done
  rm -rf "$work"
}

# Moves a finished build into place atomically, so an interrupted build is never taken as done.
finish() { rm -rf "$1"; mv "$1.partial" "$1"; }

build_kubernetes() {
  local v=$KUBERNETES_VERSION out=$cache/kubernetes-v$KUBERNETES_VERSION
  [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/kubectl" ] &&
    [ -x "$out/kube-proxy" ] && return
  log "building Kubernetes v$v (kube-apiserver, kube-controller-manager, kube-proxy, kubectl)"
  # k8s.io/kubernetes points its staging modules (k8s.io/api, k8s.io/client-go, ...) at ./staging:
  # a module that depends on it must replace each of them with the published v0.Y.Z release.
  local gomod staging replaces
  gomod=$(go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=${v#1.}
  replaces=$(grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
    awk -v z="v0.$staging" '{ printf "replace %s => %s %s\n", $1, $1, z }')
  local pkgv=k8s.io/component-base/version cgv=k8s.io/client-go/pkg/version flags="-s -w"
  local minor=${v#1.}; minor=${minor%%.*}
  for p in $pkgv $cgv; do
    flags+=" -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    flags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  build_in_wrapper "$out" "$flags" "$replaces" \
    "k8s.io/kubernetes/cmd/kube-apiserver@v$v" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$v" \
    "k8s.io/kubernetes/cmd/kube-proxy@v$v" \
    "k8s.io/kubernetes/cmd/kubectl@v$v"
  finish "$out"
}

build_etcd() {
  local out=$cache/etcd-v$ETCD_VERSION
  [ -x "$out/etcd" ] && return
  log "building etcd v$ETCD_VERSION"
  # The root package of go.etcd.io/etcd/server/v3 is etcd's main.
  build_in_wrapper "$out" "-s -w" "" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  mv "$out.partial/v3" "$out.partial/etcd"
  finish "$out"
}

build_helm() {
  local out=$cache/helm-v$HELM_VERSION
  [ -x "$out/helm" ] && return
  log "building helm v$HELM_VERSION"
  build_in_wrapper "$out" "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  finish "$out"
}

# The Gateway API CRDs are YAML files inside the module: nothing to build, only to copy.
fetch_gateway_api() {
  local out=$cache/gateway-api-v$GATEWAY_API_VERSION dir
  [ -d "$out/standard" ] && [ -d "$out/experimental" ] && return
  log "fetching Gateway API v$GATEWAY_API_VERSION CRDs"
  dir=$(go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  cp -r "$dir/config/crd/standard" "$dir/config/crd/experimental" "$out.partial/"
  chmod -R u+w "$out.partial"
  finish "$out"
}

# The ServiceMonitor CRD, likewise a file of its module.
fetch_service_monitor_crd() {
  local out=$cache/prometheus-operator-v$PROMETHEUS_OPERATOR_VERSION dir
  [ -f "$out/servicemonitors.yaml" ] && return
  log "fetching the prometheus-operator v$PROMETHEUS_OPERATOR_VERSION ServiceMonitor CRD"
  dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    "$out.partial/servicemonitors.yaml"
  chmod -R u+w "$out.partial"
  finish "$out"
}

start=$(date +%s)
build_etcd
build_kubernetes
build_helm
fetch_gateway_api
fetch_service_monitor_crd
log "control plane ready in $cache ($(( $(date +%s) - start )) s)"
