#!/usr/bin/env bash
# Runs every test binary of the workspace, LANES (2) at a time, then the doctests. The operator's
# suites spend most of their time waiting on their own control planes (rollouts, idle streams,
# deadlines), so two of them side by side take about half the wall time of one after the other.
# Each binary runs as `cargo test` runs it (from its package's directory, with its arguments);
# its output is printed whole when it ends. Exits non-zero when any binary failed.
# LANES sets how many binaries run at once; ONLY (a regular expression) runs only the binaries
# whose names it matches, and no doctests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

lanes=${LANES:-2}
logs=$(mktemp -d /tmp/mcp-suites.XXXXXX)
trap 'rm -rf "$logs"' EXIT

# Every test binary: its path, its package's directory and its name, slowest suites first so
# that the lanes finish together (the order matters only for the wall time).
cargo test --workspace --locked --no-run --message-format=json-render-diagnostics |
  python3 -c '
import json, os, sys
slow = ["traffic", "controller", "gate", "contract", "front_door_traffic", "reachable", "chaos",
        "front_door", "samples", "chart", "cluster"]
found = []
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        name = m["target"]["name"]
        rank = slow.index(name) if name in slow else len(slow)
        found.append((rank, name, m["executable"], os.path.dirname(m["manifest_path"])))
for rank, name, exe, dir in sorted(found):
    print(exe, dir, name, sep="\t")
' >"$logs/binaries.tsv"

run_one() { # exe dir name
  local exe=$1 dir=$2 name=$3 log
  log=$(mktemp "$logs/run.XXXXXX")
  local started=$SECONDS status=0
  (cd "$dir" && "$exe") >"$log" 2>&1 || status=$?
  {
    printf '\n---- %s (%s) %s in %d s\n' "$name" "$exe" "$([[ $status == 0 ]] && echo passed || echo FAILED)" \
      $((SECONDS - started))
    cat "$log"
  } | flock "$logs/binaries.tsv" cat
  [[ $status == 0 ]] || echo "$name ($exe)" >>"$logs/failed"
}
export -f run_one
export logs

if [[ -n ${ONLY:-} ]]; then
  awk -F '\t' -v only="$ONLY" '$3 ~ only' "$logs/binaries.tsv" >"$logs/only.tsv"
  mv "$logs/only.tsv" "$logs/binaries.tsv"
fi

started=$SECONDS
# xargs runs `lanes` binaries at a time, taking the next as one ends.
tr '\t' '\n' <"$logs/binaries.tsv" |
  xargs -d '\n' -n 3 -P "$lanes" bash -c 'run_one "$@"' _ || true
printf '\n==== %d test binaries in %d s, %d at a time\n' "$(wc -l <"$logs/binaries.tsv")" \
  $((SECONDS - started)) "$lanes"

[[ -n ${ONLY:-} ]] || cargo test --workspace --locked --doc

if [[ -s $logs/failed ]]; then
  echo "==== failed:" >&2
  cat "$logs/failed" >&2
  exit 1
fi
