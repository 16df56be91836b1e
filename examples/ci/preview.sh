#!/bin/sh
# preview.sh BASE OUT.md — validate every playbook changed since the git ref BASE and
# write one Markdown preview of what the change does to each release (plan --base).
# Used by github-actions.yml and Jenkinsfile; RUNBOOK names the binary (default runbook).
# Exit status: 2 if a playbook is invalid, 1 if a step could not be planned, else 0;
# OUT.md is written whenever there is something to show, so CI can post it either way.
set -eu
base=$1 out=$2 rb=${RUNBOOK:-runbook}
: >"$out"
changed=$(git diff --name-only "$base"...HEAD -- playbooks | grep -E '\.ya?ml$' || true)
# A changed fragment can change every playbook that includes it: preview them all.
if printf '%s\n' "$changed" | grep -q '^playbooks/fragments/'; then
  changed=$(ls playbooks/*.yaml)
fi
files=
for f in $changed; do
  case $f in
  playbooks/fragments/* | playbooks/testdata/*) ;;
  *) [ -f "$f" ] && files="$files $f" ;;
  esac
done
[ -n "$files" ] || { echo "no playbook changed since $base"; exit 0; }
# shellcheck disable=SC2086 # word splitting of the file list is intended
$rb validate $files || exit 2
status=0
for f in $files; do
  # Placeholder inputs: a preview needs values for the required inputs, not real ones.
  case $(basename "$f" .yaml) in
  elsst) sets="--set version=2099 --set vocabulary=elsst-99" ;;
  *) sets="--set version=99.0.0" ;;
  esac
  # shellcheck disable=SC2086
  $rb plan "$f" $sets --base "$base" --format markdown --offline >>"$out" || status=1
  printf '\n---\n\n' >>"$out"
done
exit $status
