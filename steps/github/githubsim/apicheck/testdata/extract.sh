#!/bin/sh
# extract.sh writes api.github.com.subset.json: the operations of GitHub's published
# OpenAPI description (npm @octokit/openapi, generated/api.github.com.json, OpenAPI 3.0)
# that runbook uses, with every component they reference. The package is installed into a
# temporary directory; nothing of it stays here.
#
#	./extract.sh            # the version pinned below
#	./extract.sh 23.0.2     # another version
set -eu
version=${1:-23.0.2}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm install --silent --no-audit --no-fund --no-save "@octokit/openapi@$version" >/dev/null)
node "$here/subset.mjs" "$tmp/node_modules/@octokit/openapi/generated/api.github.com.json" "$version" \
	>"$here/api.github.com.subset.json.tmp"
mv "$here/api.github.com.subset.json.tmp" "$here/api.github.com.subset.json"
