#!/usr/bin/env bash
# The operator at scale, against the raw Kubernetes floor, in one environment and one run
# (method and results in BENCHMARKS.md):
#   1. floor: N plain Deployments with the pod template the operator renders for an app (less
#      its readiness gate), created at once: time until every one is Available;
#   2. operator: N McpApps created at once: time until every one is Ready; the operator's API
#      requests per app (audit log), then at rest: handshakes per second in 1 s buckets and
#      their duration (its /metrics), its writes over a quiet minute, its peak RSS and CPU time;
#   3. failover: two operators with leader election, the leader killed with SIGKILL: time until
#      the standby leads and probes, whether any pod's handshake condition turns False or any
#      app turns Degraded, the new leader's writes in its first minute, and how long a new app
#      applied at the kill takes to be Ready.
# SECRETS unrelated Secrets of 100 KiB sit in the apps' namespace throughout.
#
# Environment: N (1000), SECRETS (5000), KCM_QPS (200: kube-controller-manager's --kube-api-qps,
# the same for the floor and the operator), PERIOD (10: the apps' probe.periodSeconds, as in the
# 100-app test; the CRD's default is 30), QUIET_SECONDS (60), SETTLE_SECONDS (30), WORK (a new
# directory under /var/tmp; kept, with every log). Run as root from the repository, after
# tests/controlplane/build.sh; builds the release binaries first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

apps=${N:-1000}
secrets=${SECRETS:-5000}
kcm_qps=${KCM_QPS:-200}
quiet=${QUIET_SECONDS:-60}
period=${PERIOD:-10}
settle=${SETTLE_SECONDS:-30}
work=${WORK:-$(mktemp -d /var/tmp/mcp-scale.XXXXXX)}
mkdir -p "$work"
kc=$work/kubeconfig
image=ghcr.io/mcp-operator/mcp-server
scale=(python3 bench/scale.py)

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Every pod's network namespace and the environment's hold neighbour (ARP) entries in one kernel
# table for the whole machine; past gc_thresh3 (1,024 by default) new entries fail ("neighbor
# table overflow"), probes to pods time out and kubelet restarts them. Raised for the machine
# (a sysctl of the initial namespace), never lowered.
neigh=/proc/sys/net/ipv4/neigh/default
want=$((16 * apps + 4096))
if (($(cat "$neigh/gc_thresh3") < want)); then
  say "raising the neighbour table's limits to $((want / 4))/$((want / 2))/$want (were $(cat "$neigh/gc_thresh1")/$(cat "$neigh/gc_thresh2")/$(cat "$neigh/gc_thresh3"))"
  echo $((want / 4)) >"$neigh/gc_thresh1"
  echo $((want / 2)) >"$neigh/gc_thresh2"
  echo "$want" >"$neigh/gc_thresh3"
fi

say "building release binaries"
cargo build --release -q -p mcp-testenv -p mcp-operator -p mcp-server \
  --bin testenv --bin mcp-operator --bin mcp-server
bin=${CARGO_TARGET_DIR:-target}/release
# shellcheck source=tests/versions.env
source tests/versions.env
kubectl_cmd=("$HOME/.cache/mcp-operator/kubernetes-v$KUBERNETES_VERSION/kubectl" --kubeconfig "$kc")
export KUBECTL="${kubectl_cmd[*]}" # for scale.py (the paths have no spaces)
kubectl() { "${kubectl_cmd[@]}" "$@"; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cores: $(nproc); memory: $(free -g | awk '/^Mem/ {print $2}') GiB; kernel $(uname -r)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- operator || echo ' (operator modified)')"
  echo "N=$apps SECRETS=$secrets KCM_QPS=$kcm_qps PERIOD=$period release build"
} | tee "$work/machine.txt" >&2

pids=()
cleanup() { # operators first, the environment (the first PID) last
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  say "files in $work"
}
trap cleanup EXIT

say "starting the environment"
users=()
for user in mcp-operator mcp-operator-a mcp-operator-b; do
  users+=(--user "$user=$work/$user.kubeconfig" --audit-reads-of "$user")
done
"$bin/testenv" up --kubeconfig "$kc" --dir "$work/env" --no-ingress \
  --image-map "$image=$bin/mcp-server" \
  --image-file "$image=/usr/local/bin/mcp-server=$bin/mcp-server" \
  --controller-manager-qps "$kcm_qps" "${users[@]}" >"$work/up.log" 2>&1 &
pids+=($!)
until grep -q '^ready' "$work/up.log"; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/up.log" >&2; exit 1; }
  sleep 0.5
done
audit=$work/env/logs/audit.log
kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/mcpapps.mcp-operator.dev >/dev/null
kubectl create namespace bench >/dev/null
kubectl create namespace floor >/dev/null

# Starts an operator process inside the environment (its handshakes reach pod IPs), as USER,
# with its metrics at 127.0.0.1:PORT there; sets `started` to its PID (testenv exec execs, so
# the PID is the operator's).
operator() {
  local user=$1 port=$2
  shift 2
  "$bin/testenv" exec --kubeconfig "$work/$user.kubeconfig" -- "$bin/mcp-operator" \
    --metrics-addr "127.0.0.1:$port" "$@" >>"$work/$user.log" 2>&1 &
  started=$!
  pids+=("$started")
}
metrics() { "$bin/testenv" exec --kubeconfig "$kc" -- curl -sf "http://127.0.0.1:$1/metrics"; }
stop() { kill -"${2:-TERM}" "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

say "creating $secrets Secrets of 100 KiB in namespace bench"
t=$(now)
"${scale[@]}" secrets "$kc" bench "$secrets" 100
say "  created in $(elapsed "$t" "$(now)") s"

say "floor: the pod template the operator renders for one app"
operator mcp-operator 18090 --watch-namespaces floor
op=$started
"${scale[@]}" apps floor template 1 --period "$period" | jq '.items[0].metadata.name = "template"' |
  kubectl create -f - >/dev/null
kubectl wait --for=create deployment/template -n floor --timeout=120s >/dev/null
kubectl get deployment template -n floor -o json >"$work/template.json"
stop "$op"
kubectl delete deployment template -n floor >/dev/null

say "floor: $apps Deployments created at once"
"${scale[@]}" floor floor "$apps" <"$work/template.json" >"$work/floor.json"
t=$(now)
"${scale[@]}" ready deployments floor "$apps" "$t" >"$work/floor-ready.json" &
watcher=$!
kubectl create -f "$work/floor.json" >/dev/null
wait "$watcher"
say "  $(cat "$work/floor-ready.json")"
kubectl delete deployments --all -n floor --wait=false >/dev/null
until [[ $(kubectl get pods -n floor --no-headers 2>/dev/null | wc -l) == 0 ]]; do sleep 2; done
say "  floor pods gone"

say "operator: $apps McpApps created at once"
"${scale[@]}" apps bench app "$apps" --period "$period" >"$work/apps.json"
op_start=$(now)
operator mcp-operator 18080 --watch-namespaces bench
op=$started
sleep 2
rss_idle=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$op/status")
say "  operator RSS before the apps: $rss_idle MiB"
t=$(now)
"${scale[@]}" ready mcpapps bench "$apps" "$t" >"$work/operator-ready.json" &
watcher=$!
kubectl create -f "$work/apps.json" >/dev/null
wait "$watcher"
ready_at=$(now)
say "  $(cat "$work/operator-ready.json")"
"${scale[@]}" audit "$audit" mcp-operator "$op_start" "$ready_at" >"$work/operator-requests.json"
say "  requests until all Ready: $(cat "$work/operator-requests.json")"

say "at rest: settling $settle s, then $quiet s of handshakes and writes"
sleep "$settle"
q0=$(now)
"$bin/testenv" exec --kubeconfig "$kc" -- "${scale[@]}" sample http://127.0.0.1:18080/metrics \
  "$quiet" >"$work/steady-probes.json"
q1=$(now)
"${scale[@]}" audit "$audit" mcp-operator "$q0" "$q1" >"$work/quiet-requests.json"
read -r utime stime < <(awk '{print $14, $15}' "/proc/$op/stat")
tck=$(getconf CLK_TCK)
awk -v u="$utime" -v s="$stime" -v t="$tck" -v since="$op_start" -v now="$(now)" \
  '/^VmHWM/ {hwm=$2} /^VmRSS/ {rss=$2} /^RssAnon/ {anon=$2} /^RssFile/ {file=$2} END {
    printf "{\"peak_rss_mib\": %.1f, \"rss_mib\": %.1f, \"rss_anon_mib\": %.1f, \"rss_file_mib\": %.1f, \"cpu_s\": %.1f, \"wall_s\": %.0f}\n",
      hwm/1024, rss/1024, anon/1024, file/1024, (u+s)/t, now-since }' "/proc/$op/status" >"$work/operator-resources.json"
"${scale[@]}" audit "$audit" mcp-operator "$op_start" "$q1" >"$work/operator-requests-total.json"
# One app's objects as the API server serves them, to size the operator's caches by.
kubectl get mcpapp/app-0000 -n bench -o json >"$work/app-0000.json"
kubectl get deployments,services,secrets,controllerrevisions,pods -n bench \
  -l app.kubernetes.io/instance=app-0000 -o json >"$work/app-0000-owned.json"
say "  probes: $(jq -c 'del(.per_second)' "$work/steady-probes.json")"
say "  quiet minute: $(cat "$work/quiet-requests.json")"
say "  resources: $(cat "$work/operator-resources.json")"
stop "$op"

say "failover: two operators with leader election"
lease=(--leader-election --lease-namespace bench --watch-namespaces bench)
operator mcp-operator-a 18081 "${lease[@]}" --identity a
a=$started
until metrics 18081 2>/dev/null | grep -q '^mcp_operator_leader 1'; do sleep 0.5; done
operator mcp-operator-b 18082 "${lease[@]}" --identity b
sleep "$settle"
"${scale[@]}" flaps bench $((quiet + 120)) >"$work/failover-flaps.json" &
flaps=$!
sleep 5
"$bin/testenv" exec --kubeconfig "$kc" -- "${scale[@]}" resume http://127.0.0.1:18082/metrics \
  "$quiet" >"$work/failover-resume.json" &
resume=$!
sleep 1
kill_at=$(now)
kill -KILL "$a"
"${scale[@]}" apps bench late 1 --period "$period" | kubectl create -f - >/dev/null
"${scale[@]}" ready mcpapps bench "$((apps + 1))" "$kill_at" --timeout 300 >"$work/failover-late.json"
wait "$resume"
leader_at=$(jq .leader_at "$work/failover-resume.json")
"${scale[@]}" audit "$audit" mcp-operator-b "$kill_at" "$(awk -v t="$leader_at" 'BEGIN { printf "%.3f", t + 60 }')" \
  >"$work/failover-writes.json"
wait "$flaps"
jq --argjson kill "$kill_at" '{leader_after_kill_s: (.leader_at - $kill),
  first_probe_after_kill_s: (.first_probe_at - $kill), probes_per_s_first_minute: .per_second,
  max: .max, mean: .mean}' "$work/failover-resume.json" >"$work/failover.json"
say "  resume: $(jq -c 'del(.probes_per_s_first_minute)' "$work/failover.json")"
say "  new app after the kill: $(cat "$work/failover-late.json")"
say "  new leader's requests, from the kill to a minute after it led: $(cat "$work/failover-writes.json")"
say "  flaps: $(cat "$work/failover-flaps.json")"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/machine.txt" >&2

"${scale[@]}" report "$work"
