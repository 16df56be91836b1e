#!/usr/bin/env bash
# Crash-safety sweep (issue 6): the runbook binary is killed with SIGKILL after every
# journal event and after every answered HTTP write of a sandboxed release, resumed, and
# the world it leaves compared with an uninterrupted run's (cmd/runbook/crash_test.go).
#
#   bench/crash.sh                 all four playbooks, every crash point
#   bench/crash.sh cvs eqb         only these playbooks
#   PARALLEL=4 bench/crash.sh      crash points at once (default: number of CPUs)
#
# One line per playbook (CRASH ...: crash points, killed, differences, resume wall time)
# goes to $OUT/crash.txt (default bench/out, not checked in); the full log beside it.
# Exits non-zero when any crash point left a different world or an incomplete report.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
PLAYBOOKS=$(IFS=,; echo "${*:-cvs,cdc,eqb,elsst}")
rc=0
RUNBOOK_CRASH_SWEEP=all RUNBOOK_CRASH_PLAYBOOKS="$PLAYBOOKS" RUNBOOK_CRASH_PARALLEL="${PARALLEL:-$(nproc)}" \
	go test ./cmd/runbook -run '^TestCrashResume$' -count=1 -v -timeout 3h >"$OUT/crash.log" 2>&1 || rc=$?
grep -h 'CRASH ' "$OUT/crash.log" | sed 's/^ *crash_test.go:[0-9]*: //' | tee "$OUT/crash.txt"
[ "$rc" = 0 ] || echo "bench/crash.sh: differences or failed checks (exit $rc): see $OUT/crash.log" >&2
exit "$rc"
