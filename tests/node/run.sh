#!/bin/sh
# Runs Permify's official Node client (@permify/permify-node) against build/tuplecast.
# Env: TUPLECAST_BIN (default ../../build/tuplecast relative to this directory).
set -eu
cd "$(dirname "$0")"

# (Re)install the pinned client when node_modules is missing or older than package-lock.json.
# npm writes node_modules/.package-lock.json on every install, so it serves as the stamp.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

exec node --test --test-reporter=spec permify-client.test.js tls.test.js
