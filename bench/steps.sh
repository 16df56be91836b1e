#!/usr/bin/env bash
# A run's per-step cost as whole processes (issue 16), next to go-task on equivalent
# Taskfiles in the same hyperfine invocations, with the state directory on disk.
#
#   bench/steps.sh                    N = 10, 100, 1000, 10000; 5 runs each (median)
#   SIZES=10,1000 RUNS=3 bench/steps.sh
#   SKIP_GO=1 bench/steps.sh          without the in-memory Go benchmarks at the end
#   REF_HTTP_MAX=10000 bench/steps.sh go-task's curl workload up to 10,000 steps too
#                                     (default 1000: at ~10 ms a curl, 10,000 take minutes a run)
#
# Workloads (bench/workloads): noop (`sleep` 0s), skip (every second step skipped by
# `when: false`), http (`http.check` GET of a local server; go-task runs curl), and
# `plan --offline` of noop (go-task: --dry). Prints per workload the median wall time at
# each N, the cost per step (slope from N=10 to N=1000, and from 1000 to 10000: flat when
# equal), start-up (N=10 minus 10 steps) and peak RSS at N=1000 (/usr/bin/time).
# Needs hyperfine and python3; go-task is installed into $OUT/tools when not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
SIZES=${SIZES:-10,100,1000,10000}
RUNS=${RUNS:-5}
REF_HTTP_MAX=${REF_HTTP_MAX:-1000}
mkdir -p "$OUT/tools"
OUT=$(cd "$OUT" && pwd)
command -v hyperfine >/dev/null || { echo "bench/steps.sh: hyperfine is missing: apt-get install -y hyperfine" >&2; exit 2; }
TASK=${TASK:-$(command -v task || true)}
if [ -z "$TASK" ]; then
	TASK=$OUT/tools/task
	[ -x "$TASK" ] || GOBIN=$OUT/tools go install github.com/go-task/task/v3/cmd/task@v3.54.0
fi

echo "== build"
go build -o "$OUT/runbook" ./cmd/runbook
go build -o "$OUT/workloads" ./bench/workloads
RB=$OUT/runbook
STATE=$OUT/steps-state # on disk, like a real state directory (not tmpfs)
WL=$OUT/workloads.d
RES=$OUT/steps
rm -rf "$WL" "$RES"
mkdir -p "$RES"

"$OUT/workloads" -serve 127.0.0.1:0 >"$OUT/server.url" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$OUT/server.url" ] && break; sleep 0.1; done
URL=$(cat "$OUT/server.url")
"$OUT/workloads" -dir "$WL" -n "$SIZES" -url "$URL"
# Every playbook must run (and go-task's Taskfile too) before it is timed.
"$RB" --state-dir "$STATE" --quiet run "$WL/http-10.yaml" >/dev/null
"$TASK" -d "$WL/http-10" --silent

echo "== whole process (hyperfine, $RUNS runs, state in $STATE)"
for n in ${SIZES//,/ }; do
	for w in noop skip http; do
		ref=(-n "go-task $w $n" "$TASK -d $WL/$w-$n --silent")
		if [ "$w" = http ] && [ "$n" -gt "$REF_HTTP_MAX" ]; then ref=(); fi
		hyperfine -N --warmup 1 --runs "$RUNS" --prepare "rm -rf $STATE" --export-json "$RES/$w-$n.json" \
			-n "runbook $w $n" "$RB --state-dir $STATE --quiet run $WL/$w-$n.yaml" "${ref[@]}" >"$RES/$w-$n.txt"
	done
	hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RES/plan-$n.json" \
		-n "runbook plan $n" "$RB --state-dir $STATE plan $WL/noop-$n.yaml --offline" \
		-n "go-task plan $n" "$TASK -d $WL/noop-$n --dry --silent" >"$RES/plan-$n.txt"
done

echo "== peak RSS at N=1000 (/usr/bin/time, median of 3)"
for w in noop skip http; do
	[ -e "$WL/$w-1000.yaml" ] || continue
	for i in 1 2 3; do
		rm -rf "$STATE"
		/usr/bin/time -f "runbook $w %M" -a -o "$RES/rss.txt" "$RB" --state-dir "$STATE" --quiet run "$WL/$w-1000.yaml" >/dev/null
		/usr/bin/time -f "go-task $w %M" -a -o "$RES/rss.txt" "$TASK" -d "$WL/$w-1000" --silent >/dev/null
	done
done

python3 - "$RES" "$SIZES" <<'PY' | tee "$OUT/steps.md"
import json, os, statistics, sys
res, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
med = {}  # (tool, workload) -> {n: median seconds}
for w in ["noop", "skip", "http", "plan"]:
    for n in sizes:
        p = os.path.join(res, f"{w}-{n}.json")
        if not os.path.exists(p):
            continue
        for r in json.load(open(p))["results"]:
            tool = r["command"].split()[0]
            med.setdefault((tool, w), {})[n] = statistics.median(r["times"])
rss = {}
if os.path.exists(os.path.join(res, "rss.txt")):
    for line in open(os.path.join(res, "rss.txt")):
        f = line.split()
        if len(f) == 3 and f[2].isdigit():
            rss.setdefault((f[0], f[1]), []).append(int(f[2]) / 1024)
def slope(m, a, b):
    return (m[b] - m[a]) / (b - a) if a in m and b in m else None
ms = lambda x: "—" if x is None else f"{x*1e3:.3f} ms"
print(f"| workload | tool | " + " | ".join(f"N={n}" for n in sizes) + " | per step 10→1000 | per step 1000→10000 | start-up | peak RSS N=1000 |")
print("|---|---|" + "---:|" * (len(sizes) + 4))
for w in ["noop", "skip", "http", "plan"]:
    for tool in ["runbook", "go-task"]:
        m = med.get((tool, w))
        if not m:
            continue
        s = slope(m, 10, 1000)
        start = m[10] - 10 * s if s is not None and 10 in m else None
        r = rss.get((tool, w))
        print(f"| {w} | {tool} | " + " | ".join(ms(m.get(n)) for n in sizes) +
              f" | {ms(s)} | {ms(slope(m, 1000, 10000))} | {ms(start)} | " +
              (f"{statistics.median(r):.1f} MiB" if r else "—") + " |")
PY

[ "${SKIP_GO:-}" = 1 ] && exit 0
echo "== engine in memory (go test -bench)"
go test -run '^$' -bench 'BenchmarkEngine$|BenchmarkWorkload' -benchmem ./engine/ | tee "$OUT/steps-go.txt"
