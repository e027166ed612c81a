#!/usr/bin/env bash
# Builds the test control plane from Go modules: etcd, kube-apiserver, kube-controller-manager,
# kube-proxy, kubectl, helm, CoreDNS and Traefik, and fetches the CRDs the tests install; also Ory
# Hydra, the authorization server of the OAuth tests. Output goes to $MCP_OPERATOR_CACHE (default
# ~/.cache/mcp-operator), one folder per component and version; a component whose folder is
# complete is not built again.
#
# Usage: build.sh [COMPONENT...]   with no argument, every component; else only those named:
#   etcd kubernetes helm gateway-api service-monitor-crd coredns traefik hydra
#   environment   (all that the test environment itself needs: every component but hydra)
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

# The directory of a module version in the module cache, downloading it first if needed.
module_dir() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }

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
  dir=$(module_dir "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION")
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
  dir=$(module_dir "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION")
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    "$out.partial/servicemonitors.yaml"
  chmod -R u+w "$out.partial"
  finish "$out"
}

# CoreDNS's module builds as published; its default plugin set includes "kubernetes".
build_coredns() {
  local out=$cache/coredns-v$COREDNS_VERSION
  [ -x "$out/coredns" ] && return
  log "building CoreDNS v$COREDNS_VERSION"
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  GOBIN=$out.partial go install -ldflags "-s -w" "github.com/coredns/coredns@v$COREDNS_VERSION"
  "$out.partial/coredns" -plugins | grep -x kubernetes >/dev/null ||
    { log "CoreDNS was built without its kubernetes plugin"; return 1; }
  finish "$out"
}

# Traefik's go.mod has replace directives, so "go install ...@version" refuses it: it is built in
# a writable copy of its module directory, with three dependencies the module proxy cannot provide
# replaced by local modules assembled from tests/controlplane/traefik/ (see its README.md).
build_traefik() {
  local v=$TRAEFIK_VERSION out=$cache/traefik-v$TRAEFIK_VERSION
  [ -x "$out/traefik" ] && return
  log "building Traefik v$v"
  # http_auth: the upstream go-http-auth release Traefik's fork of it started from.
  local shims=$here/traefik http_auth=v0.4.0 work src lego
  work=$(mktemp -d)
  src=$work/traefik
  cp -r "$(module_dir "github.com/traefik/traefik/v3@v$v")" "$src"
  chmod -R u+w "$src"
  # (a) The nested module its go.mod already replaces with ./pkg/config/dynamic/ext.
  mkdir -p "$src/pkg/config/dynamic/ext"
  cp "$shims/ext/go.mod" "$shims/ext/ext.go" "$src/pkg/config/dynamic/ext/"
  # (b) The lego version it requires, with a providers/dns package that imports no provider SDK.
  lego=$(awk '$1 == "github.com/go-acme/lego/v5" { print $2; exit }' "$src/go.mod")
  cp -r "$(module_dir "github.com/go-acme/lego/v5@$lego")" "$work/lego"
  chmod -R u+w "$work/lego"
  rm -f "$work/lego/providers/dns/"*.go
  cp "$shims/lego-dns/dns.go" "$work/lego/providers/dns/"
  # (c) Upstream go-http-auth instead of the fork, plus the two functions the fork added.
  cp -r "$(module_dir "github.com/abbot/go-http-auth@$http_auth")" "$work/go-http-auth"
  chmod -R u+w "$work/go-http-auth"
  cp "$shims/go-http-auth/go.mod" "$shims/go-http-auth/traefik.go" "$work/go-http-auth/"
  (cd "$src" && go mod edit -replace "github.com/go-acme/lego/v5=$work/lego" \
    -replace "github.com/abbot/go-http-auth=$work/go-http-auth")
  local p=github.com/traefik/traefik/v3/pkg/version
  local flags="-s -w -X $p.Version=v$v -X $p.BuildDate=1970-01-01T00:00:00Z"
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  log "go build github.com/traefik/traefik/v3/cmd/traefik"
  (cd "$src" && go build -mod=mod -ldflags "$flags" -o "$out.partial/traefik" ./cmd/traefik)
  "$out.partial/traefik" version >/dev/null
  rm -rf "$work"
  finish "$out"
}

# Ory Hydra's go.mod replaces github.com/ory/hydra-client-go/v2 with a nested module the zip
# leaves out, so "go install" refuses it: it is built in a writable copy of its module directory
# without that replace (the published release it requires is used instead). Its SQLite driver
# needs cgo and the build tags below; without them Hydra refuses DSN=memory, which the tests use.
build_hydra() {
  local v=$HYDRA_VERSION out=$cache/hydra-v$HYDRA_VERSION
  [ -x "$out/hydra" ] && return
  log "building Ory Hydra v$v"
  local work src
  work=$(mktemp -d)
  src=$work/hydra
  cp -r "$(module_dir "github.com/ory/hydra/v2@v$v")" "$src"
  chmod -R u+w "$src"
  (cd "$src" && go mod edit -dropreplace github.com/ory/hydra-client-go/v2)
  local p=github.com/ory/hydra/v2/driver/config
  local flags="-s -w -X $p.Version=v$v -X $p.Date=1970-01-01T00:00:00Z"
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  log "go build github.com/ory/hydra/v2 (cgo, SQLite)"
  (cd "$src" && CGO_ENABLED=1 go build -mod=mod -tags sqlite,sqlite_omit_load_extension \
    -ldflags "$flags" -o "$out.partial/hydra" .)
  # SQLite is compiled in: the in-memory database takes Hydra's migrations.
  DSN=memory "$out.partial/hydra" migrate sql up --read-from-env --yes >/dev/null 2>&1 ||
    { log "Hydra was built without SQLite (DSN=memory refused)"; return 1; }
  rm -rf "$work"
  finish "$out"
}

# The components, in build order, and the function that provides each. The environment's own
# components come first; "environment" names them alone (what tests/demo.sh needs).
environment=(etcd kubernetes helm gateway-api service-monitor-crd coredns traefik)
components=("${environment[@]}" hydra)
component_fn() {
  case $1 in
    etcd) echo build_etcd ;;
    kubernetes) echo build_kubernetes ;;
    helm) echo build_helm ;;
    gateway-api) echo fetch_gateway_api ;;
    service-monitor-crd) echo fetch_service_monitor_crd ;;
    coredns) echo build_coredns ;;
    traefik) echo build_traefik ;;
    hydra) echo build_hydra ;;
    *) return 1 ;;
  esac
}

# The braces make bash read all of this before running any of it: editing this file while a long
# build runs cannot derail that build.
{
selected=()
for c in "$@"; do
  if [ "$c" = environment ]; then selected+=("${environment[@]}"); else selected+=("$c"); fi
done
[ $# -gt 0 ] || selected=("${components[@]}")
for c in "${selected[@]}"; do
  component_fn "$c" >/dev/null || { log "unknown component '$c' (known: ${components[*]} environment)"; exit 2; }
done

start=$(date +%s)
for c in "${selected[@]}"; do
  "$(component_fn "$c")"
done
log "${selected[*]} ready in $cache ($(( $(date +%s) - start )) s)"
exit
}
