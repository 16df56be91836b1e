#!/usr/bin/env bash
# CI: run every fuzz target briefly. `go test -fuzz` takes one package and one target at
# a time, so the targets are listed here; each first replays its committed seed corpus
# (testdata/fuzz/<Target>/) as a plain test, then fuzzes for FUZZTIME (default 5s).
# A failure leaves the failing input in the package's testdata/fuzz/<Target>/ directory:
# commit it with the fix, so it stays a seed.
#
#   .ci/fuzz.sh                 # all targets, 5s each
#   FUZZTIME=30s .ci/fuzz.sh    # longer
#   .ci/fuzz.sh FuzzParse       # targets whose name matches
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
fuzztime="${FUZZTIME:-5s}"
only="${1:-}"

targets=(
  "./engine FuzzParse"
  "./engine FuzzTemplate"
  "./engine FuzzJournal"
  "./engine FuzzReportDecode"
  "./steps/jenkins FuzzJenkinsProgressive"
  "./steps/github FuzzChecklistEdit"
  "./steps/github FuzzEditChangelog"
  "./steps/github FuzzReleaseUnrelease"
  "./steps/zenodo FuzzParseError"
  "./steps/notify FuzzChatError"
  "./steps/shell FuzzQuote"
  "./steps/shell FuzzTail"
  "./steps/sleep FuzzRemaining"
  "./steps/manual FuzzNormalize"
  "./steps/httpcheck FuzzExcerpt"
  "./steps/httpcheck FuzzResolveURL"
)

# A target added to a test file but not listed above would never be fuzzed in CI.
listed=" $(printf '%s\n' "${targets[@]}" | awk '{print $2}' | tr '\n' ' ') "
for f in $(git ls-files '*_test.go'); do
  for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
    case "$listed" in *" $name "*) ;; *) echo "fuzz target $name in $f is not listed in .ci/fuzz.sh"; exit 1;; esac
  done
done

fail=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  if [ -n "$only" ] && [[ "$name" != *"$only"* ]]; then continue; fi
  echo "== $name ($pkg, $fuzztime)"
  out=$(mktemp)
  if go test "$pkg" -run "^$name\$" -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s >"$out" 2>&1; then
    grep -E '^fuzz: elapsed' "$out" | tail -1
  elif ! grep -q 'Failing input written to' "$out" && grep -q '^    context deadline exceeded$' "$out" &&
    go test "$pkg" -run "^$name\$" >/dev/null 2>&1; then
    # Go 1.26's fuzzing coordinator can fail a run at the -fuzztime deadline with a bare
    # "context deadline exceeded" while a worker is mid-call (golang/go#75804, fixed in
    # Go 1.27): no input failed, and the corpus replays clean, so it is not a finding.
    grep -E '^fuzz: elapsed' "$out" | tail -1
    echo "   (ended by the fuzzing coordinator's deadline race, golang/go#75804; no failing input, corpus replays clean)"
  else
    cat "$out"
    fail=1
  fi
  rm -f "$out"
done
exit $fail
