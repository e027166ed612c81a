#!/usr/bin/env python3
"""Measurements for bench/scale.sh: manifests to create, watches that time readiness and count
condition flaps, a sampler of the operator's /metrics, and audit-log counts.

Every time is wall-clock seconds since the epoch, so that the watches, the sampler and the API
server's audit log (requestReceivedTimestamp) share one clock. kubectl is taken from $KUBECTL
(a command line). Only the standard library is used.
"""

import argparse
import base64
import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
import urllib.request

HANDSHAKE = "mcp-operator.dev/mcp-handshake"
INSTANCE = "app.kubernetes.io/instance"


def kubectl(*args):
    return shlex.split(os.environ["KUBECTL"]) + list(args)


def emit_list(items):
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


# ---------------------------------------------------------------------------------------------
# Manifests


def cmd_secrets(a):
    """Creates `count` Secrets no app references (as Helm keeps its releases), `kib` KiB of data
    each, 16 requests at a time (one kubectl would send them one by one: minutes for 5,000)."""
    import http.client
    import ssl
    import threading
    from concurrent.futures import ThreadPoolExecutor
    with open(a.kubeconfig) as f:
        config = json.load(f)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
    tls.load_cert_chain(user["client-certificate"], user["client-key"])
    host = cluster["server"].removeprefix("https://")
    payload = base64.b64encode(b"x" * (a.kib * 1024)).decode()
    local = threading.local()

    def create(i):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPSConnection(host, context=tls, timeout=60)
        body = json.dumps({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.foreign-{i:05d}.v1",
                         "labels": {"owner": "helm"}},
            "data": {"release": payload},
        })
        local.conn.request("POST", f"/api/v1/namespaces/{a.namespace}/secrets", body,
                           {"Content-Type": "application/json"})
        response = local.conn.getresponse()
        answer = response.read()
        if response.status != 201:
            raise SystemExit(f"creating Secret {i}: HTTP {response.status}: {answer[:300]!r}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(a.count)))


def cmd_apps(a):
    """`count` McpApps with the defaults (the built-in server) but a handshake every `period`
    seconds."""
    emit_list([{
        "apiVersion": "mcp-operator.dev/v1alpha1", "kind": "McpApp",
        "metadata": {"name": f"{a.prefix}-{i:04d}", "namespace": a.namespace},
        "spec": {"probe": {"periodSeconds": a.period}, "rollout": {"drainSeconds": 0}},
    } for i in range(a.count)])


def cmd_floor(a):
    """`count` plain Deployments with the pod template the operator rendered for one app (read
    from stdin), less what only the operator uses: the readiness gate and its own metadata."""
    template = json.load(sys.stdin)
    pod = template["spec"]["template"]
    pod["spec"].pop("readinessGates", None)
    pod["metadata"] = {}
    strategy = template["spec"].get("strategy")
    items = []
    for i in range(a.count):
        name = f"floor-{i:04d}"
        labels = {"app": name}
        spec = {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {**pod, "metadata": {"labels": labels}},
        }
        if strategy:
            spec["strategy"] = strategy
        items.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": a.namespace, "labels": labels},
            "spec": spec,
        })
    emit_list(items)


# ---------------------------------------------------------------------------------------------
# Watches


def watch_objects(args):
    """Objects from `kubectl get --watch -o json` (the initial list, then every change). kubectl
    indents each object and closes it with a `}` alone on a line, so objects are cut there: a
    parse per object, not one per line."""
    proc = subprocess.Popen(kubectl(*args, "--watch", "-o", "json"), stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.rstrip("\n") == "}":
                obj = json.loads("".join(lines))
                lines = []
                # The initial list comes as one List.
                if obj.get("kind", "").endswith("List"):
                    yield from obj.get("items") or []
                else:
                    yield obj
    finally:
        proc.kill()
        proc.wait()


def condition(obj, type_):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status")
    return None


def is_ready(kind, obj):
    if kind == "deployments":
        s, want = obj.get("status") or {}, (obj.get("spec") or {}).get("replicas", 1)
        return (s.get("observedGeneration", 0) >= obj["metadata"].get("generation", 1)
                and s.get("updatedReplicas", 0) >= want and s.get("availableReplicas", 0) >= want
                and s.get("replicas", 0) == want)
    return condition(obj, "Ready") == "True"


def cmd_ready(a):
    """Waits until `count` objects of `kind` in `namespace` are ready (McpApps: Ready=True;
    Deployments: every replica updated and available); prints JSON: when each first was."""
    first = {}
    deadline = time.time() + a.timeout
    last_report = 0.0
    for obj in watch_objects(["get", a.kind, "-n", a.namespace]):
        name = obj["metadata"]["name"]
        if name not in first and is_ready(a.kind, obj):
            first[name] = time.time()
        now = time.time()
        if now - last_report > 30:
            print(f"  {len(first)} of {a.count} {a.kind} ready after {now - a.start:.0f} s",
                  file=sys.stderr)
            last_report = now
        if len(first) >= a.count or now > deadline:
            break
    times = sorted(t - a.start for t in first.values())
    json.dump({"ready": len(times), "count": a.count,
               "all_s": times[-1] if len(times) >= a.count else None,
               "p50_s": times[len(times) // 2] if times else None,
               "first_s": times[0] if times else None}, sys.stdout)
    print()


def cmd_flaps(a):
    """For `seconds`, counts transitions to False of the pods' handshake condition and McpApps
    that turn Degraded or name a failed revision; prints JSON."""
    import threading
    result = {"pod_handshake_to_false": 0, "pods_false": [], "apps_degraded": [],
              "apps_failed_revision": [], "app_ready_to_false": 0}
    lock = threading.Lock()
    end = time.time() + a.seconds

    def pods():
        last = {}
        for obj in watch_objects(["get", "pods", "-n", a.namespace]):
            if time.time() > end:
                return
            name, status = obj["metadata"]["name"], condition(obj, HANDSHAKE)
            if last.get(name) == "True" and status == "False":
                with lock:
                    result["pod_handshake_to_false"] += 1
                    result["pods_false"].append(name)
            if status is not None:
                last[name] = status

    def apps():
        last = {}
        for obj in watch_objects(["get", "mcpapps", "-n", a.namespace]):
            if time.time() > end:
                return
            name = obj["metadata"]["name"]
            with lock:
                if condition(obj, "Degraded") == "True" and name not in result["apps_degraded"]:
                    result["apps_degraded"].append(name)
                if ((obj.get("status") or {}).get("failedRevision")
                        and name not in result["apps_failed_revision"]):
                    result["apps_failed_revision"].append(name)
                ready = condition(obj, "Ready")
                if last.get(name) == "True" and ready == "False":
                    result["app_ready_to_false"] += 1
                last[name] = ready

    threads = [threading.Thread(target=f, daemon=True) for f in (pods, apps)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, end - time.time()))
    with lock:
        result["pods_false"] = result["pods_false"][:20]
        json.dump(result, sys.stdout)
    print()
    sys.stdout.flush()
    os._exit(0)  # the watches' kubectl children die with their pipes


# ---------------------------------------------------------------------------------------------
# The operator's metrics (run inside the environment: `testenv exec`)


SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|\+Inf)")


def scrape(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        text = r.read().decode()
    probes, buckets, leader = 0.0, {}, None
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        if name == "mcp_operator_probes_total":
            probes += value
        elif name == "mcp_operator_probe_duration_seconds_bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            buckets[float(le)] = value
        elif name == "mcp_operator_leader":
            leader = value
    return probes, buckets, leader


def quantile(buckets_before, buckets_after, q):
    """The upper bound of the histogram bucket holding quantile q of the observations made
    between two scrapes."""
    bounds = sorted(buckets_after)
    delta = [buckets_after[b] - buckets_before.get(b, 0.0) for b in bounds]
    total = delta[-1] if delta else 0
    if total <= 0:
        return None
    for b, n in zip(bounds, delta):
        if n >= q * total:
            return b
    return bounds[-1]


def cmd_sample(a):
    """Scrapes /metrics every second for `seconds`; prints JSON: handshakes per 1 s bucket, their
    min/max/mean/stddev, and the p50/p99 bucket of their duration over the window."""
    start = time.monotonic()
    first = scrape(a.url)
    previous, per_second = first, []
    for i in range(1, a.seconds + 1):
        time.sleep(max(0.0, start + i - time.monotonic()))
        now = scrape(a.url)
        per_second.append(now[0] - previous[0])
        previous = now
    json.dump({
        "seconds": a.seconds, "probes": previous[0] - first[0], "per_second": per_second,
        "min": min(per_second), "max": max(per_second), "mean": statistics.mean(per_second),
        "stddev": statistics.pstdev(per_second),
        "p50_le_s": quantile(first[1], previous[1], 0.50),
        "p99_le_s": quantile(first[1], previous[1], 0.99),
    }, sys.stdout)
    print()


def cmd_resume(a):
    """Polls a standby's /metrics every 100 ms until it is leader and has sent a handshake
    (or `timeout`); prints JSON: the wall-clock time of each, and probes per second over the
    `seconds` after its first handshake."""
    leader_at = probe_at = None
    deadline = time.time() + a.timeout
    while time.time() < deadline and (leader_at is None or probe_at is None):
        try:
            probes, _, leader = scrape(a.url)
        except OSError:
            probes, leader = 0, None
        now = time.time()
        if leader_at is None and leader == 1:
            leader_at = now
        if probe_at is None and probes > 0:
            probe_at = now
        time.sleep(0.1)
    per_second = []
    if probe_at is not None:
        previous = scrape(a.url)[0]
        start = time.monotonic()
        for i in range(1, a.seconds + 1):
            time.sleep(max(0.0, start + i - time.monotonic()))
            now = scrape(a.url)[0]
            per_second.append(now - previous)
            previous = now
    json.dump({"leader_at": leader_at, "first_probe_at": probe_at, "per_second": per_second,
               "max": max(per_second) if per_second else None,
               "mean": statistics.mean(per_second) if per_second else None}, sys.stdout)
    print()


# ---------------------------------------------------------------------------------------------
# The audit log


WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def audit_lines(path):
    """The lines of the audit log and of the files the API server rotated it into (at 100 MB)."""
    import glob
    stem, ext = os.path.splitext(path)
    for name in sorted(glob.glob(f"{glob.escape(stem)}-*{ext}")) + [path]:
        with open(name) as f:
            yield from f


def audit_events(path, user, since, until):
    seen = set()
    for line in audit_lines(path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("user", {}).get("username") != user or e.get("auditID") in seen:
            continue
        t = datetime.datetime.fromisoformat(
            e["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if since <= t < until:
            seen.add(e.get("auditID"))
            e["_t"] = t
            yield e


def leaves(value, path="status"):
    """A status body's leaf fields by path, condition lists by their types
    (`status.conditions[Ready].status`)."""
    if isinstance(value, dict):
        for key, v in value.items():
            yield from leaves(v, f"{path}.{key}")
    elif isinstance(value, list) and all(isinstance(v, dict) and "type" in v for v in value):
        for v in value:
            yield from leaves({k: x for k, x in v.items() if k != "type"}, f"{path}[{v['type']}]")
    else:
        yield path, json.dumps(value, sort_keys=True)


def cmd_audit(a):
    """Requests of `user` received in [since, until): total, writes, the commonest kinds, and
    which fields its McpApp status writes changed from that app's previous status write (the
    audit policy records their bodies)."""
    total, writes, kinds, changed, last = 0, 0, {}, {}, {}
    for e in audit_events(a.log, a.user, 0, a.until):
        ref = e.get("objectRef") or {}
        status = (e.get("requestObject") or {}).get("status")
        fields = None
        if ref.get("resource") == "mcpapps" and isinstance(status, dict):
            fields = dict(leaves(status))
            key = (ref.get("namespace"), ref.get("name"))
            before, last[key] = last.get(key), fields
        if e["_t"] < a.since:
            continue
        total += 1
        kind = f"{e['verb']} {ref.get('resource', '')}" + (
            f"/{ref['subresource']}" if ref.get("subresource") else "")
        kinds[kind] = kinds.get(kind, 0) + 1
        writes += e["verb"] in WRITES
        if fields is not None and before is not None:
            for field in set(fields) | set(before):
                if fields.get(field) != before.get(field):
                    changed[field] = changed.get(field, 0) + 1
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:a.top]
    result = {"requests": total, "writes": writes, "by_kind": dict(top)}
    if changed:
        result["status_changes"] = dict(sorted(changed.items(), key=lambda kv: -kv[1])[:a.top])
    json.dump(result, sys.stdout)
    print()


# ---------------------------------------------------------------------------------------------
# The summary


def cmd_report(a):
    """A Markdown summary of the JSON files scale.sh wrote to `work`."""
    def load(name):
        try:
            with open(os.path.join(a.work, name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}
    floor, op = load("floor-ready.json"), load("operator-ready.json")
    req, total = load("operator-requests.json"), load("operator-requests-total.json")
    steady, quiet = load("steady-probes.json"), load("quiet-requests.json")
    res, fail = load("operator-resources.json"), load("failover.json")
    late, writes, flaps = load("failover-late.json"), load("failover-writes.json"), \
        load("failover-flaps.json")
    n = op.get("count") or 1

    def num(v, fmt="{:.1f}"):
        return "n/a" if v is None else fmt.format(v)
    ratio = (op["all_s"] / floor["all_s"]
             if op.get("all_s") and floor.get("all_s") else None)
    with open(os.path.join(a.work, "machine.txt")) as f:
        print("".join("    " + line for line in f))
    rows = [
        ("floor: all Deployments Available (s)", num(floor.get("all_s")),
         f"median {num(floor.get('p50_s'))}"),
        ("operator: all McpApps Ready (s)", num(op.get("all_s")),
         f"median {num(op.get('p50_s'))}; {num(ratio, '{:.2f}')}x the floor (target 2x)"),
        ("operator API requests per app until all Ready", num(req.get("requests", 0) / n, "{:.2f}"),
         f"{req.get('requests')} requests, {req.get('writes')} writes: {req.get('by_kind')}"),
        ("operator API requests per app, start to end of the quiet minute",
         num(total.get("requests", 0) / n, "{:.2f}"),
         f"{total.get('requests')} requests, {total.get('writes')} writes"),
        ("operator peak RSS (MiB)", num(res.get("peak_rss_mib")),
         f"now {num(res.get('rss_mib'))}; target < 64"),
        ("operator CPU (s)", num(res.get("cpu_s")), f"over {num(res.get('wall_s'), '{:.0f}')} s"),
        ("handshakes/s at rest, 1 s buckets", num(steady.get("mean")),
         f"min {num(steady.get('min'), '{:.0f}')}, max {num(steady.get('max'), '{:.0f}')}, "
         f"stddev {num(steady.get('stddev'))} over {steady.get('seconds')} s"),
        ("handshake duration at rest, p50 / p99 (histogram bucket)",
         f"<= {num(steady.get('p50_le_s'), '{:g}')} s / <= {num(steady.get('p99_le_s'), '{:g}')} s",
         ""),
        ("operator writes in the quiet minute", str(quiet.get("writes")),
         f"{quiet.get('requests')} requests in all; target 0 writes"),
        ("failover: kill -> standby leads (s)", num(fail.get("leader_after_kill_s")), ""),
        ("failover: kill -> its first handshake (s)", num(fail.get("first_probe_after_kill_s")),
         f"then handshakes/s max {num(fail.get('max'), '{:.0f}')}, "
         f"mean {num(fail.get('mean'))} over its first minute"),
        ("failover: kill -> an app applied at the kill is Ready (s)", num(late.get("all_s")), ""),
        ("failover: new leader's requests, kill to a minute after it led",
         f"{writes.get('writes')} writes", f"{writes.get('requests')} requests: "
         f"{writes.get('by_kind')}"),
        ("failover: pod handshake conditions True -> False", str(flaps.get("pod_handshake_to_false")),
         f"apps Ready True -> False: {flaps.get('app_ready_to_false')}; Degraded: "
         f"{len(flaps.get('apps_degraded', []))}; failedRevision: "
         f"{len(flaps.get('apps_failed_revision', []))}"),
    ]
    print("| measure | value | notes |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(required=True)
    s = sub.add_parser("secrets")
    s.add_argument("kubeconfig"), s.add_argument("namespace")
    s.add_argument("count", type=int), s.add_argument("kib", type=int)
    s.set_defaults(f=cmd_secrets)
    s = sub.add_parser("apps")
    s.add_argument("namespace"), s.add_argument("prefix"), s.add_argument("count", type=int)
    s.add_argument("--period", type=int, default=10)
    s.set_defaults(f=cmd_apps)
    s = sub.add_parser("floor")
    s.add_argument("namespace"), s.add_argument("count", type=int)
    s.set_defaults(f=cmd_floor)
    s = sub.add_parser("ready")
    s.add_argument("kind", choices=["deployments", "mcpapps"])
    s.add_argument("namespace"), s.add_argument("count", type=int)
    s.add_argument("start", type=float), s.add_argument("--timeout", type=float, default=3600)
    s.set_defaults(f=cmd_ready)
    s = sub.add_parser("flaps")
    s.add_argument("namespace"), s.add_argument("seconds", type=float)
    s.set_defaults(f=cmd_flaps)
    s = sub.add_parser("sample")
    s.add_argument("url"), s.add_argument("seconds", type=int)
    s.set_defaults(f=cmd_sample)
    s = sub.add_parser("resume")
    s.add_argument("url"), s.add_argument("seconds", type=int)
    s.add_argument("--timeout", type=float, default=300)
    s.set_defaults(f=cmd_resume)
    s = sub.add_parser("audit")
    s.add_argument("log"), s.add_argument("user")
    s.add_argument("since", type=float), s.add_argument("until", type=float)
    s.add_argument("--top", type=int, default=8)
    s.set_defaults(f=cmd_audit)
    s = sub.add_parser("report")
    s.add_argument("work")
    s.set_defaults(f=cmd_report)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
