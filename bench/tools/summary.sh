#!/usr/bin/env bash
# Writes summary.md (to stdout) from a results.json of scripts/bench: the
# targets of issue 7 as met/missed, then one table per scenario with every
# server side by side and its ratio to the floor measured in the same run.
# bench/README.md explains each column.
#
#   bench/tools/summary.sh results.json > summary.md
set -euo pipefail
exec jq -r -f /dev/stdin "$1" <<'JQ'
def r2: if . == null then null else (. * 100 | round / 100) end;
def show: if . == null then "–" elif type == "number" then (. * 100 | round / 100 | tostring) else tostring end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else ($a / $b) end;
# Three significant digits below 1 (a ratio of 0.0003 is not 0), two decimals above.
def sig3: if . == null or . == 0 then . elif (. | fabs) >= 1 then r2
  else (pow(10; 2 - (. | fabs | log10 | floor))) as $m | (. * $m | round) / $m end;
def best(f): map(f) | max;
def verdict($ok): if $ok == null then "not run" elif $ok then "**met**" else "**missed**" end;
def row: "| " + (map(show) | join(" | ")) + " |";
# µs of server CPU per Data.Write: CPU % of one core × 10,000 / writes/s.
def cpu_us_per_write: if .server_cpu_pct == null or (.writes_per_s // 0) == 0 then null else .server_cpu_pct * 10000 / .writes_per_s | round end;
# A watch latency of a run in which no watcher received anything is no figure.
def wl(f): if (.watch_latency_count // 1) == 0 then null else f end;

# Figures come from completed runs only; the others are listed at the end.
# The cost curves' runs (--scale, tagged "sweep") have a section of their own.
(.runs | map(select(.ok == 1 and .sweep == null))) as $runs
| (.runs | map(select(.ok == 1 and .sweep != null))) as $sweeps
| .runs as $all_runs
| ($runs | map(select(.scenario == "write"))) as $w
| ($w | map(select(.name | startswith("pg-floor")))) as $floor
| ($w | map(select(.name == "tuplecast-postgres"))) as $pgw
| ($w | map(select(.name == "tuplecast-sqlite"))) as $sqw
# The targets' floor has tuplecast's connection count (issue 7: "same
# connection count"); the floor's best shape on any count is shown beside it.
| ($floor | map(select(.name == "pg-floor" and .batch == 1)) | best(.writes_per_s)) as $f1
| ($floor | map(select(.batch == 1)) | best(.writes_per_s)) as $f1any
| ($floor | map(select(.name == "pg-floor" and .batch > 1)) | best(.items_per_s)) as $fb
| ($pgw | map(select(.batch == 1)) | best(.writes_per_s)) as $p1
| ($pgw | map(select(.batch > 1)) | best(.items_per_s)) as $pb
| ($sqw | map(select(.batch > 1)) | best(.items_per_s)) as $sb
| ($runs | map(select(.scenario == "watch-latency" and .name == "tuplecast-postgres")) | max_by(.watchers)) as $wl
| ($runs | map(select(.scenario == "fan-out" and .streams == 10000 and .connections == 100))) as $fo
| ($fo | map(select(.name == "grpc-floor")) | first) as $gf
| ($fo | map(select(.name == "tuplecast-sqlite")) | first) as $fs
| ($runs | map(select(.scenario == "catch-up" and (.name | startswith("tuplecast"))))) as $cu
| "# tuplecast-bench, \(.stamp)",
  "",
  "`\(.command)` on \(.machine.nproc) cores, \(.machine.memory), Linux \(.machine.kernel) (machine.md has the versions).",
  "Load generator, servers, PostgreSQL and floors share the same cores: compare ratios measured in this run; absolute figures move from run to run.",
  (if .quiet_at_start == false then "", "**The machine was not quiet at the start** (other processes used ≥ 15 % of it for 90 s): every figure carries outside load; see machine CPU % against server + client CPU %." else empty end),
  (if .postgres_ran then empty else "", "**tuplecast on PostgreSQL did not run** (its backend did not build or start): Postgres targets are not run." end),
  (if ($runs | length) == 0 then empty else
  "",
  "## Targets (issue 7)",
  "",
  "| target | measured | floor / bound | ratio | result |",
  "|---|---|---|---|---|",
  (["single-item Data.Write on Postgres, best concurrency: ≥ 50 % of the libpq floor with the same connections (tx/s)", $p1, $f1, (ratio($p1; $f1) | r2),
    verdict(if $p1 == null or $f1 == null then null else $p1 >= 0.5 * $f1 end)] | row),
  (["(issue 20) the same: ≥ 0.7 × the libpq floor's best single-item run on any connection count (tx/s)", $p1, $f1any,
    (ratio($p1; $f1any) | r2), verdict(if $p1 == null or $f1any == null then null else $p1 >= 0.7 * $f1any end)] | row),
  (($pgw | map(select(.batch == 1 and .writes_per_s == $p1)) | first) as $p1r
  | if $p1r == null then empty else ["(for reference) server CPU per single-item write at that concurrency (\($p1r.concurrency)), µs",
    ($p1r | cpu_us_per_write), "–", "–", "–"] | row end),
  (["batched writes on Postgres, best: ≥ 50 % of the floor's items/s", $pb, $fb, (ratio($pb; $fb) | r2),
    verdict(if $pb == null or $fb == null then null else $pb >= 0.5 * $fb end)] | row),
  (["batched writes on SQLite: ≥ 100,000 items/s", $sb, 100000, (ratio($sb; 100000) | r2),
    verdict(if $sb == null then null else $sb >= 100000 end)] | row),
  (["watch p99 (acknowledged → received) on Postgres, \($wl.watchers // "–") watchers at \($wl.writes_per_s // "–") writes/s: < 10 ms (ms)",
    $wl.watch_latency_p99_ms, 10, (ratio($wl.watch_latency_p99_ms; 10) | r2),
    verdict(if $wl == null then null else ($wl.watch_latency_p99_ms < 10 and $wl.missing == 0 and $wl.duplicate == 0 and $wl.out_of_order == 0) end)] | row),
  (["server memory per idle stream, 10,000 streams over 100 connections: ≤ 1.3 × gRPC floor (KiB)", $fs.server_kib_per_stream,
    $gf.server_kib_per_stream, (ratio($fs.server_kib_per_stream; $gf.server_kib_per_stream) | r2),
    verdict(if $fs == null or $gf == null then null else $fs.server_kib_per_stream <= 1.3 * $gf.server_kib_per_stream end)] | row),
  (["last of 10,000 watchers served (median round, from the write's start): ≤ 1.3 × gRPC floor (ms)", $fs.last_from_write_p50_ms,
    $gf.last_from_write_p50_ms, (ratio($fs.last_from_write_p50_ms; $gf.last_from_write_p50_ms) | r2),
    verdict(if $fs == null or $gf == null then null else $fs.last_from_write_p50_ms <= 1.3 * $gf.last_from_write_p50_ms end)] | row),
  ((["tuplecast-postgres", "tuplecast-sqlite"] + ($cu | map(.name)) | unique)[] as $n
   | ($cu | map(select(.name == $n)) | max_by(.history)) as $c
   | ["catch-up on \($n), \($c.history // "–") transactions back: ≥ 100,000 changes/s", $c.changes_per_s, 100000,
      (ratio($c.changes_per_s; 100000) | r2), verdict(if $c == null then null else $c.changes_per_s >= 100000 end)] | row),
  "",
  "Fan-out targets compare tuplecast on SQLite (the backend does not touch idle streams); the fan-out table also has tuplecast on PostgreSQL where it ran.",
  # tuplecast ÷ each peer (a server that is neither tuplecast nor a floor),
  # from every run the peer made, completed or not.
  ($all_runs | map(.name) | unique
   | map(select((startswith("tuplecast") or startswith("pg-floor") or startswith("grpc-floor")) | not))[] as $p
   | ($all_runs | map(select(.sweep == null))) as $ar
   | def mine(cond): ($ar | map(select(.name == "tuplecast-postgres" and .ok == 1 and cond)) | first)
       // ($ar | map(select(.name == "tuplecast-sqlite" and .ok == 1 and cond)) | first);
     def state: if .ok == 1 and .watch_latency_count == 0 and (.missing // 0) > 0
         then "**did not survive**: no watcher received any write (\(.missing) (watcher, write) pairs missing)"
       elif .ok == 1 then (if ((.missing // 0) + (.duplicate // 0) + (.out_of_order // 0)) > 0
         then "completed, **\(.missing) missing, \(.duplicate) duplicate, \(.out_of_order) out of order**" else "ok" end) else "**did not survive**: " + ((.first_error // .write_first_error // .history_first_error
         // (if .scenario == "fan-out" then "\(.delivered // 0) of \(.streams * .rounds) messages delivered (\(.streams) streams × \(.rounds) rounds)"
             elif .scenario == "catch-up" then "\(.transactions // 0) of \(.history_writes // .history) transactions received"
             else "not within the bench's bounds" end)) | tostring | .[0:100] | gsub("\\|"; "/")) end;
     def div($a; $b; $both): if $both then ratio($a; $b) | sig3 | if . != null and . < 0.01 then tostring else . end else null end;
  "",
  "## tuplecast ÷ \($p)",
  "",
  "The same scenarios in the same run, \($p) on a PostgreSQL cluster of its own with the same settings as tuplecast's. Each ratio is tuplecast's figure over \($p)'s (tuplecast on PostgreSQL; on SQLite where only that ran, as the server column says): above 1 tuplecast does more (writes, items, changes a second), below 1 it needs less (milliseconds, KiB). Ratios only where both runs completed; a run that did not is shown with its error, and its figures are what it reached before it stopped.",
  "",
  "### writes",
  "",
  "| batch | concurrency | server | tx/s | \($p) tx/s | ÷ | items/s | \($p) items/s | ÷ | p99 ms | \($p) p99 ms | \($p) errors | \($p) server CPU % | \($p) |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($ar | map(select(.name == $p and .scenario == "write")) | sort_by(.batch, .concurrency)[] | . as $q
   | mine(.scenario == "write" and .batch == $q.batch and .concurrency == $q.concurrency) as $t
   | ($t != null and $q.ok == 1) as $both
   | [.batch, .concurrency, $t.name, $t.writes_per_s, .writes_per_s, div($t.writes_per_s; .writes_per_s; $both),
      $t.items_per_s, .items_per_s, div($t.items_per_s; .items_per_s; $both), $t.latency_p99_ms, .latency_p99_ms,
      .errors, .server_cpu_pct, state] | row),
  "",
  "### watch-latency (acknowledged → received)",
  "",
  "| watchers | writes/s asked | server | p50 ms | \($p) p50 ms | ÷ | p99 ms | \($p) p99 ms | ÷ | missing | \($p) missing | \($p) duplicate | \($p) out of order | \($p) writes acknowledged | \($p) write errors | \($p) |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($ar | map(select(.name == $p and .scenario == "watch-latency")) | sort_by(.watchers)[] | . as $q
   | mine(.scenario == "watch-latency" and .watchers == $q.watchers and .rate_per_s == $q.rate_per_s) as $t
   | ($t != null and $q.ok == 1) as $both
   | [.watchers, .rate_per_s, $t.name, $t.watch_latency_p50_ms, wl(.watch_latency_p50_ms), div($t.watch_latency_p50_ms; wl(.watch_latency_p50_ms); $both),
      $t.watch_latency_p99_ms, wl(.watch_latency_p99_ms), div($t.watch_latency_p99_ms; wl(.watch_latency_p99_ms); $both),
      $t.missing, .missing, .duplicate, .out_of_order, .writes, .write_errors, state] | row),
  "",
  "### catch-up (one Watch resuming N transactions back)",
  "",
  "| history | server | changes/s | \($p) changes/s | ÷ | seconds | \($p) seconds | \($p) changes received | \($p) |",
  "|---|---|---|---|---|---|---|---|---|",
  ($ar | map(select(.name == $p and .scenario == "catch-up")) | sort_by(.history)[] | . as $q
   | mine(.scenario == "catch-up" and .history == $q.history) as $t
   | ($t != null and $q.ok == 1) as $both
   | [.history, $t.name, $t.changes_per_s, .changes_per_s, div($t.changes_per_s; .changes_per_s; $both),
      $t.catch_up_s, .catch_up_s, .changes, state] | row),
  "",
  "### fan-out (idle streams, each server fresh; one write at a time to all of them)",
  "",
  "| streams | connections | server | KiB/stream | \($p) KiB/stream | ÷ | last after write p50 ms | \($p) p50 ms | ÷ | \($p) delivered | \($p) |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ($ar | map(select(.name == $p and .scenario == "fan-out")) | sort_by(.connections, .streams)[] | . as $q
   | mine(.scenario == "fan-out" and .streams == $q.streams and .connections == $q.connections) as $t
   | ($t != null and $q.ok == 1) as $both
   | [.streams, .connections, $t.name, $t.server_kib_per_stream, .server_kib_per_stream,
      div($t.server_kib_per_stream; .server_kib_per_stream; $both), $t.last_from_write_p50_ms,
      (if (.last_from_write_count // 0) == 0 then null else .last_from_write_p50_ms end),
      div($t.last_from_write_p50_ms; .last_from_write_p50_ms; $both), .delivered, state] | row)),
  "",
  "## write",
  "",
  "Ratio: items/s over the libpq floor's at the same batch and outstanding transactions (up to 16 connections, as tuplecast's write pool). The floor is PostgreSQL: the ratio of tuplecast-sqlite to it is for orientation only.",
  "",
  "| batch | concurrency | server | writes/s | items/s | × pg floor | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU % | server CPU µs/write | client CPU % | machine CPU % |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($w | sort_by(.batch, .concurrency, .name)[] | . as $r
   | ($floor | map(select(.name == "pg-floor" and .batch == $r.batch and .concurrency == $r.concurrency)) | first) as $f
   | [.batch, .concurrency, (if .name == "pg-floor" then "pg-floor (\(.connections) × \(.depth))" elif (.name | startswith("pg-floor")) then "\(.name) (\(.connections) × \(.depth))" else .name end),
      .writes_per_s, .items_per_s,
      (if (.name | startswith("pg-floor")) then null else ratio(.items_per_s; $f.items_per_s) | r2 end),
      .latency_p50_ms, .latency_p90_ms, .latency_p99_ms, .latency_max_ms, .errors, .server_cpu_pct, cpu_us_per_write, .client_cpu_pct, .machine_cpu_pct] | row),
  "",
  "## watch-latency (acknowledged → received)",
  "",
  "The write columns are the writes' own latency (issued → acknowledged) in the same run: when they queue, the machine is saturated.",
  "",
  "| server | watchers | writes/s | p50 ms | p90 ms | p99 ms | max ms | missing | duplicate | out of order | received before ack | write p50 ms | write p99 ms | server CPU % | client CPU % | machine CPU % |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($runs | map(select(.scenario == "watch-latency"))[]
   | [.name, .watchers, .writes_per_s, wl(.watch_latency_p50_ms), wl(.watch_latency_p90_ms), wl(.watch_latency_p99_ms), wl(.watch_latency_max_ms),
      .missing, .duplicate, .out_of_order, .received_before_ack, .write_latency_p50_ms, .write_latency_p99_ms,
      .server_cpu_pct, .client_cpu_pct, .machine_cpu_pct] | row),
  "",
  "## fan-out (idle streams; one write at a time to all of them)",
  "",
  "Ratios are to the gRPC floor with the same streams and connections, each on a fresh server.",
  "",
  "| streams | connections | server | KiB/stream | × floor | open all ms | last after write p50 ms | max ms | × floor (p50) | server CPU µs/message | delivered |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ($runs | map(select(.scenario == "fan-out")) | sort_by(.connections, .streams, .name) | . as $all | .[] | . as $r
   | ($all | map(select(.name == "grpc-floor" and .streams == $r.streams and .connections == $r.connections)) | first) as $g
   | [.streams, .connections, .name, .server_kib_per_stream,
      (if .name == "grpc-floor" then null else ratio(.server_kib_per_stream; $g.server_kib_per_stream) | r2 end),
      .open_all_ms, .last_from_write_p50_ms, .last_from_write_max_ms,
      (if .name == "grpc-floor" then null else ratio(.last_from_write_p50_ms; $g.last_from_write_p50_ms) | r2 end),
      .server_cpu_us_per_msg, .delivered] | row),
  "",
  "## catch-up",
  "",
  "| server | history | history writes/s | transactions | changes | seconds | transactions/s | changes/s |",
  "|---|---|---|---|---|---|---|---|",
  ($runs | map(select(.scenario == "catch-up"))[]
   | [.name, .history, .history_writes_per_s, .transactions, .changes, .catch_up_s, .transactions_per_s, .changes_per_s] | row)
   end),
  ($sweeps as $sw
   | if ($sw | length) == 0 then empty else
  ($sw | map(select(.sweep == "streams"))) as $ss
  # At the largest count, each figure is the median of that server's runs
  # there (a run is 3 rounds; the fan-out time of one run moves by ±20 %).
  | def med(f): (map(f) | sort) as $v | if ($v | length) == 0 then null else $v[(($v | length) - 1) / 2 | floor] end;
    def at_max($rows): ($rows | max_by(.streams)) as $m
      | if $m == null then null else ($rows | map(select(.streams == $m.streams))) as $at
        | $m + {server_kib_per_stream: ($at | med(.server_kib_per_stream)),
                last_from_write_p50_ms: ($at | med(.last_from_write_p50_ms)), runs_at_max: ($at | length)} end;
  at_max($ss | map(select(.name != "grpc-floor"))) as $big
  | at_max($ss | map(select(.name == "grpc-floor" and .streams == $big.streams))) as $bigf
  | ($sw | map(select(.sweep == "tenants")) | sort_by(.tenants)) as $ts
  | ($ts | last) as $tl
  | ($ts | first) as $t0
  | def per_write: if .pg_statements_per_s == null or (.writes_per_s // 0) == 0 then null else .pg_statements_per_s / .writes_per_s end;
  "",
  "## Targets (issue 20: cost curves, `--scale`)",
  "",
  "| target | measured | floor / bound | ratio | result |",
  "|---|---|---|---|---|",
  (["server memory per idle stream, \($big.streams // "–") streams over \($big.connections // "–") connections (median of the runs there): ≤ 1.2 × gRPC floor (KiB)",
    $big.server_kib_per_stream, $bigf.server_kib_per_stream, (ratio($big.server_kib_per_stream; $bigf.server_kib_per_stream) | r2),
    verdict(if $big == null or $bigf == null then null else $big.server_kib_per_stream <= 1.2 * $bigf.server_kib_per_stream end)] | row),
  (["last of \($big.streams // "–") idle streams served (median round, from the write's start; median of \($big.runs_at_max // "–") runs against the floor's \($bigf.runs_at_max // "–")): ≤ 1.2 × gRPC floor (ms)",
    $big.last_from_write_p50_ms, $bigf.last_from_write_p50_ms, (ratio($big.last_from_write_p50_ms; $bigf.last_from_write_p50_ms) | r2),
    verdict(if $big == null or $bigf == null then null else $big.last_from_write_p50_ms <= 1.2 * $bigf.last_from_write_p50_ms end)] | row),
  (["watch p99 with \($tl.tenants // "–") tenants watched, writes spread over them at \($tl.writes_per_s // "–")/s: < 10 ms (ms)",
    $tl.watch_latency_p99_ms, 10, (ratio($tl.watch_latency_p99_ms; 10) | r2),
    verdict(if $tl == null then null else ($tl.watch_latency_p99_ms < 10 and $tl.missing == 0 and $tl.duplicate == 0) end)] | row),
  (["PostgreSQL statements per write at \($tl.tenants // "–") tenants: ≤ 1.25 × at \($t0.tenants // "–") (proportional to writes, not tenants)",
    ($tl | per_write | r2), ($t0 | per_write | r2), (ratio($tl | per_write; $t0 | per_write) | r2),
    verdict(if ($tl | per_write) == null or ($t0 | per_write) == null or $tl == $t0 then null else ($tl | per_write) <= 1.25 * ($t0 | per_write) end)] | row),
  "",
  "## Cost curves (`--scale`)",
  "",
  "Each point ran on a fresh server. Plotted in scale.png.",
  "",
  "### idle streams (fan-out)",
  "",
  "| streams | connections | server | KiB/stream | × floor | open all ms | last after write p50 ms | × floor (p50) | server CPU µs/message | × floor | delivered | client KiB/stream | machine CPU % |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($ss | sort_by(.streams, .name) | . as $all | .[] | . as $r
   | ($all | map(select(.name == "grpc-floor" and .streams == $r.streams)) | first) as $g
   | def vs(f): if .name == "grpc-floor" then null else ratio(f; $g | f) | r2 end;
     [.streams, .connections, .name, .server_kib_per_stream, vs(.server_kib_per_stream),
      .open_all_ms, .last_from_write_p50_ms, vs(.last_from_write_p50_ms),
      .server_cpu_us_per_msg, vs(.server_cpu_us_per_msg), .delivered, .client_kib_per_stream, .machine_cpu_pct] | row),
  "",
  "### tenants (multi-tenant on PostgreSQL: a watcher per tenant, writes spread over them)",
  "",
  "KiB/watched tenant: server RSS per tenant feed and the one stream on it, after the watchers opened (before any write). Statements: \($ts[0].pg_source // "pg_stat_statements") over the timed load.",
  "",
  "Server CPU ms/write: the server's CPU over the timed load (writes, their deliveries, the feeds' reads and the safety poll) divided by the writes.",
  "",
  "| tenants | writes/s | watch p50 ms | watch p99 ms | missing | KiB/watched tenant | server CPU ms/write | PG statements/s | statements/write | PG exec ms/s | PG transactions/s | write p99 ms | server CPU % | machine CPU % |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($ts[] | [.tenants, .writes_per_s, .watch_latency_p50_ms, .watch_latency_p99_ms, .missing, .server_kib_per_watched_tenant,
      (if (.writes // 0) > 0 and .server_cpu_s != null then .server_cpu_s * 1000 / .writes | r2 else null end),
      .pg_statements_per_s, (per_write | r2), .pg_exec_ms_per_s, .pg_xacts_per_s, .write_latency_p99_ms, .server_cpu_pct, .machine_cpu_pct] | row),
  "",
  "The most called statements (calls/s, mean time, statement):",
  "",
  ($ts[] | "* \(.tenants) tenants: \(.pg_top // "–")"),
  "",
  "### catch-up history",
  "",
  "| server | history | catch-up s | transactions/s | changes/s | server RSS growth KiB | server CPU % |",
  "|---|---|---|---|---|---|---|",
  ($sw | map(select(.sweep == "history")) | sort_by(.name, .history)[]
   | [.name, .history, .catch_up_s, .transactions_per_s, .changes_per_s, .server_rss_growth_kib, .server_cpu_pct] | row)
   end),
  "",
  "## bootstrap (Watch with initial_state from the head)",
  "",
  "Seconds: from opening the stream to the message that ends the initial state (the first with a snap token). Started: when the run began; rows started apart from the rest of this file were added to it from a run of the scenario alone.",
  "",
  "| server | tuples | started | fill s | first message ms | seconds | messages | changes | changes/s | server CPU % | client CPU % | machine CPU % |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($runs | map(select(.scenario == "bootstrap")) | sort_by(.tuples, .name)[]
   | [.name, .tuples, .started_at, .fill_s, .first_message_ms, .initial_state_s, .initial_messages, .initial_changes, .changes_per_s,
      .server_cpu_pct, .client_cpu_pct, .machine_cpu_pct] | row),
  "",
  (($all_runs | map(select(.ok != 1))) as $bad
   | if ($bad | length) == 0 then "Every run completed (ok = 1)."
     else "**Runs that did not complete** (ok = 0; their figures are left out above):", "",
       ($bad | group_by([.scenario, .name, (.first_error // .write_first_error // .history_first_error // "see results.json")])[]
        | "* \(length) × \(.[0].scenario) on \(.[0].name): \(.[0].first_error // .[0].write_first_error // .[0].history_first_error // "see results.json")")
     end)
JQ
