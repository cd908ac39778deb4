#!/bin/sh
# Runs Permify's official Node client (@permify/permify-node) against build/tuplecast.
# Usage: run.sh [test file...]
# Env: TUPLECAST_BIN (default ../../build/tuplecast relative to this directory).
set -eu
cd "$(dirname "$0")"

# (Re)install the pinned client when node_modules is missing or older than package-lock.json.
# npm writes node_modules/.package-lock.json on every install, so it serves as the stamp.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Arguments: the test files to run (default: permify-client.test.js authn.test.js tls.test.js).
[ $# -gt 0 ] || set -- permify-client.test.js authn.test.js tls.test.js
exec node --test --test-reporter=spec "$@"
