#!/usr/bin/env bash
# Benchmarks of runbook (issue 2, "Performance"); figures in bench/README.md.
#
#   bench/run.sh            whole-process timings (hyperfine) and the Go benchmarks
#   SKIP_GO=1 bench/run.sh  whole-process timings only
#   COUNT=10 bench/run.sh   more runs of each Go benchmark (default 6), for benchstat
#
# Needs hyperfine (apt-get install -y hyperfine); benchstat is used when on PATH
# (go install golang.org/x/perf/cmd/benchstat@latest). Results go to $OUT (default
# bench/out, not checked in).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
COUNT=${COUNT:-6}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { echo "bench/run.sh: hyperfine is missing: apt-get install -y hyperfine" >&2; exit 2; }

echo "== build"
go build -o "$OUT/runbook" ./cmd/runbook
go run ./bench/genplaybook -steps 1000 -o "$OUT/steps1000.yaml"
go run ./bench/genplaybook -steps 10000 -o "$OUT/steps10000.yaml"
go run ./bench/genplaybook -bomb 9 -o "$OUT/bomb.yaml"
RB=$OUT/runbook
"$RB" validate "$OUT/steps1000.yaml" "$OUT/steps10000.yaml"
# The bomb must be refused (exit 2) with the alias-bomb message.
set +e
"$RB" validate "$OUT/bomb.yaml" 2>"$OUT/bomb.err"; rc=$?
set -e
grep -q "alias bomb" "$OUT/bomb.err" && [ "$rc" = 2 ] || { echo "the alias bomb was not refused (exit $rc): $(cat "$OUT/bomb.err")" >&2; exit 1; }

echo "== whole process (hyperfine)"
# plan --offline asks no service; it runs in a scratch state dir so it touches nothing.
export RUNBOOK_STATE_DIR="$OUT/state"
hyperfine -N --warmup 5 --runs 50 --export-markdown "$OUT/hyperfine-cli.md" --export-json "$OUT/hyperfine-cli.json" \
  -n 'version (process start floor)' "$RB version" \
  -n 'plan local-release --offline' "$RB plan examples/local-release.yaml --offline --set version=1.2.3" \
  -n 'validate local-release' "$RB validate examples/local-release.yaml" \
  -n 'validate 1,000 steps' "$RB validate $OUT/steps1000.yaml"
hyperfine -N --warmup 2 --runs 10 --export-markdown "$OUT/hyperfine-large.md" \
  -n 'validate 10,000 steps' "$RB validate $OUT/steps10000.yaml"
hyperfine -N -i --warmup 3 --runs 30 --export-markdown "$OUT/hyperfine-bomb.md" \
  -n 'validate alias bomb (refused)' "$RB validate $OUT/bomb.yaml"

[ "${SKIP_GO:-}" = 1 ] && exit 0
echo "== Go benchmarks (-count $COUNT)"
go test -run '^$' -bench 'BenchmarkEngine$|BenchmarkValidate' -count "$COUNT" ./engine/ | tee "$OUT/go-mem.txt"
go test -run '^$' -bench 'BenchmarkEngineFileStore' -count "$COUNT" ./engine/ | tee "$OUT/go-file.txt"
if command -v benchstat >/dev/null; then
  benchstat "$OUT/go-mem.txt" "$OUT/go-file.txt" | tee "$OUT/benchstat.txt"
fi
