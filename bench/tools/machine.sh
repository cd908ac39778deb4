#!/usr/bin/env bash
# Writes machine.md (to stdout): the exact command, the machine and the
# versions behind a scripts/bench run.
#
#   bench/tools/machine.sh COMMAND BUILD-DIR [PERMIFY-VERSION]
set -uo pipefail
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
v() { "$@" 2>/dev/null | head -n1; }
cat <<MD
# How these results were produced

* Command: \`$1\` (from the repository root), at $(date -u +%Y-%m-%dT%H:%MZ)
* Commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$(dirname "$0")" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')
* Build: Release (\`$(grep -m1 CMAKE_C_FLAGS_RELEASE: "$2/CMakeCache.txt" | cut -d= -f2)\`), $2

## Machine

* nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
* memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
* kernel: $(uname -sr); OS: $(. /etc/os-release && echo "$PRETTY_NAME")
* disk sync speed now (\`pg_test_fsync -s 1\`, fdatasync of one 8 kB write; it drifts by 2–4× over hours on this VM, which moves every PostgreSQL figure): $(cd "${TMPDIR:-/tmp}" && timeout 40 "$pg_bin/pg_test_fsync" -s 1 -f "${TMPDIR:-/tmp}/tc-fsync.$$" 2>/dev/null | grep -m1 -E '^[[:space:]]+fdatasync' | sed 's/^ *fdatasync *//; s/  */ /g'; rm -f "${TMPDIR:-/tmp}/tc-fsync.$$")
* descriptors: soft $(ulimit -Sn), hard $(ulimit -Hn) (scripts/bench and tuplecast-bench raise soft to hard)

## Versions

* PostgreSQL: $(v "$pg_bin/postgres" --version); libpq $(v pkg-config --modversion libpq)
* gRPC core: $(v pkg-config --modversion grpc) (libgrpc-dev $(v dpkg-query -W -f='${Version}' libgrpc-dev))
* gcc: $(v gcc --version)
* SQLite $(v pkg-config --modversion sqlite3), libuv $(v pkg-config --modversion libuv), protobuf-c $(v pkg-config --modversion libprotobuf-c)
* gnuplot: $(v gnuplot --version)
MD
[[ -z ${3:-} ]] || echo "* Permify (the peer, built from its source outside this repository): $3"

