#!/usr/bin/env bash
# Runs command N of the README's first block, so CI runs exactly what a newcomer reads
# (with --print, only prints it).
set -euo pipefail
cd "$(dirname "$0")/.."
n=$1
cmd=$(awk '/^```sh$/{inblock=1; next} /^```$/{if(inblock) exit} inblock && !/^#/ && NF' README.md | sed -n "${n}p")
if [ -z "$cmd" ]; then echo "README has no command $n in its first sh block" >&2; exit 1; fi
if [ "${2:-}" = --print ]; then echo "$cmd"; exit 0; fi
echo "+ $cmd"
eval "$cmd"
