#!/usr/bin/env bash
# bench_multi_tenant: tuplecast-bench's multi-tenant scenario against this
# build's server on PostgreSQL, under tc-pgtmp with pg_stat_statements
# preloaded (TC_PG_URI): every watcher gets exactly its own tenant's writes,
# and the statements of the load are counted by pg_stat_statements.  With
# more tenants than the server's first 64 actor buckets, each tenant gets
# about six writes a second: its actor must be found again, reading the
# tenant row and head schema (one statement, tenant_state) at most once a
# second (core/src/tenant.c), not once a write.
#
#   tc-pgtmp --conf 'shared_preload_libraries = pg_stat_statements' -- \
#       tests/integration/bench_multi_tenant.sh BUILD-DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
server=""
trap '[[ -z $server ]] || kill "$server" 2>/dev/null || true; wait; rm -rf "$tmp"' EXIT

: >"$tmp/server.log" # before the server's own redirection opens it: the port loop reads it at once
"$build/tuplecast" serve --grpc-port 0 --http-port 0 --database-engine postgres \
  --database-uri "$TC_PG_URI" 2>"$tmp/server.log" &
server=$!
deadline=$((SECONDS + 60))
port=""
while [[ -z $port ]]; do
  port=$(sed -n 's/.*grpc listening on port \([0-9]*\).*/\1/p' "$tmp/server.log" | head -n1)
  if [[ -z $port ]] && { ((SECONDS >= deadline)) || ! kill -0 "$server" 2>/dev/null; }; then
    echo "bench_multi_tenant: the server did not start; its log:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
  [[ -n $port ]] || sleep 0.1
done

"$build/tuplecast-bench" --target "127.0.0.1:$port" --server-pid "$server" \
  --scenario multi-tenant --tenant mt --tenants 80 --rate 500 --duration 2 --connections 4 \
  --open-wave 40 --pg-uri "$TC_PG_URI" --json "$tmp/run.jsonl"

# Every write reached its tenant's watcher only, once; PostgreSQL ran at least
# a statement per write (its INSERT) during the load, and the tenant was read
# for fewer than 3 writes in 4 (a lookup that lost actors reads it for every
# write; pg_top lists it as "R/s Mms [SELECT h.version, ..."), by tenant_state
# alone: not tenant_get's "SELECT id, name, (extract...".
jq -e '([.pg_top | capture("(?<r>[0-9.]+)/s [0-9.]+ms \\[SELECT h\\.version, ")]
    | first.r // "0" | tonumber) as $tenant_reads
  | .ok == 1 and .tenants == 80 and .streams_ready == 80 and .streams_ended == 0
  and .writes >= 300 and .write_errors == 0 and $tenant_reads / .writes_per_s < 0.75 and .watch_latency_count == .writes
  and .missing == 0 and .duplicate == 0 and .foreign == 0 and .out_of_order == 0
  and .pg_source == "pg_stat_statements" and .pg_statements >= .writes
  and (.pg_top | test("INSERT INTO"))
  and (.pg_top | test("SELECT id, name, \\(extract") | not)
  and .server_kib_per_watched_tenant != null' "$tmp/run.jsonl" >/dev/null || {
  echo "bench_multi_tenant: unexpected figures:" >&2
  cat "$tmp/run.jsonl" >&2
  exit 1
}
echo "bench_multi_tenant: ok"
