#!/usr/bin/env bash
# Draws the PNG plots of a results.json of scripts/bench with gnuplot:
#   write_throughput.png  writes/s (batch 1) and items/s (batched) vs concurrency
#   latency.png           write latency p50/p99 (batch 1) vs concurrency, and
#                         watch latency percentiles per server
#   fanout.png            server KiB per idle stream and time until the last
#                         stream has a write, vs streams (100 connections)
#   scale.png             the cost curves of --scale: server memory, CPU and
#                         time against idle streams, tenants and catch-up history
#
#   bench/tools/plots.sh results.json OUT-DIR
set -euo pipefail
json=$1
out=$2
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
# Derived columns of the cost curves: statements and server CPU per write,
# RSS growth in MiB.
jq '.runs |= map(. + (if .pg_statements_per_s != null and (.writes_per_s // 0) > 0
    then {statements_per_write: (.pg_statements_per_s / .writes_per_s)} else {} end)
  + (if .scenario == "multi-tenant" and .server_cpu_s != null and (.writes // 0) > 0
    then {cpu_ms_per_write: (.server_cpu_s * 1000 / .writes)} else {} end)
  + (if .server_rss_growth_kib != null then {rss_growth_mib: (.server_rss_growth_kib / 1024)} else {} end))' \
  "$json" >"$data/results.json"
json=$data/results.json

# series FILE-PREFIX JQ-SELECT JQ-KEY JQ-COLUMNS [STYLE]: one TSV per value
# of KEY over the completed runs, rows sorted by the first column; prints the
# gnuplot plot clauses.
series() {
  local prefix=$1 select=".ok == 1 and ($2)" key=$3 cols=$4 style=${5:-linespoints}
  jq -r ".runs | map(select($select)) | map($key) | unique | .[]" "$json" | while read -r k; do
    local f="$data/$prefix-${k//[^A-Za-z0-9_.-]/_}.tsv"
    jq -r --arg k "$k" ".runs | map(select($select) | select(($key) == \$k)) | sort_by(.[\"${cols%% *}\"])[]
      | [$(sed 's/\([a-z0-9_]*\)/.\1/g; s/ /, /g' <<<"$cols")] | @tsv" "$json" >"$f"
    printf "'%s' using 1:2 with %s title '%s', " "$f" "$style" "$k"
  done
}

tx=$(series tx '.scenario == "write" and .batch == 1' '.name' 'concurrency writes_per_s')
items=$(series items '.scenario == "write" and .batch > 1' '"\(.name) batch \(.batch)"' 'concurrency items_per_s')
p50=$(series p50 '.scenario == "write" and .batch == 1' '"\(.name) p50"' 'concurrency latency_p50_ms')
p99=$(series p99 '.scenario == "write" and .batch == 1' '"\(.name) p99"' 'concurrency latency_p99_ms' 'linespoints dashtype 2')
mem=$(series mem '.scenario == "fan-out" and .connections == 100' '.name' 'streams server_kib_per_stream')
last=$(series last '.scenario == "fan-out" and .connections == 100' '.name' 'streams last_from_write_p50_ms')
# The cost curves (--scale): runs tagged with their sweep.
s_mem=$(series s_mem '.sweep == "streams"' '.name' 'streams server_kib_per_stream')
s_last=$(series s_last '.sweep == "streams"' '.name' 'streams last_from_write_p50_ms')
s_cpu=$(series s_cpu '.sweep == "streams"' '.name' 'streams server_cpu_us_per_msg')
t_cpu=$(series t_cpu '.sweep == "tenants"' '"server CPU ms per write"' 'tenants cpu_ms_per_write')
h_rate=$(series h_rate '.sweep == "history"' '.name' 'history changes_per_s')
t_mem=$(series t_mem '.sweep == "tenants"' '"KiB per watched tenant"' 'tenants server_kib_per_watched_tenant')
t_p99=$(series t_p99 '.sweep == "tenants"' '"watch p99 ms"' 'tenants watch_latency_p99_ms')
t_spw=$(series t_spw '.sweep == "tenants" and .writes_per_s > 0 and .pg_statements_per_s != null' \
  '"PG statements per write"' 'tenants statements_per_write')
h_s=$(series h_s '.sweep == "history"' '"\(.name) s"' 'history catch_up_s')
h_mem=$(series h_mem '.sweep == "history"' '"\(.name) RSS growth MiB"' 'history rss_growth_mib' \
  'linespoints dashtype 2')
jq -r '.runs | map(select(.ok == 1 and .scenario == "watch-latency"))[]
  | ["\(.name) (\(.watchers))", .watch_latency_p50_ms, .watch_latency_p90_ms, .watch_latency_p99_ms, .watch_latency_max_ms] | @tsv' \
  "$json" >"$data/watch.tsv"

# Watch latencies a thousand times apart (a peer's seconds beside tuplecast's
# milliseconds) get a log scale, where values at or below 0 are not drawn.
watch_scale() {
  awk -F'\t' '{ for (i = 2; i <= 5; i++) { if ($i > 0 && (lo == "" || $i < lo)) lo = $i; if ($i > hi) hi = $i } }
    END { if (lo != "" && hi > 1000 * lo) print "set logscale y; set ylabel \"ms (log; values at or below 0 not drawn)\"" }' \
    "$data/watch.tsv"
}

# An empty panel says "not run"; its own ranges, since gnuplot refuses to
# autoscale (and stops) on a plot without a single point.
not_run="set label 'not run' at graph 0.5, 0.5 center; plot [1:10] [1:10] 1/0 notitle; unset label"
plot() { [[ -n $1 ]] && echo "plot ${1%, }" || echo "$not_run"; }

gnuplot <<GP
set terminal pngcairo size 1400,560 font ",10"
set datafile separator "\t"
set key top left font ",9"
set grid
set logscale x 2

set output '$out/write_throughput.png'
set multiplot layout 1,2
set title 'single-item Data.Write (batch 1)'
set xlabel 'concurrent calls (floor: transactions in flight)'
set ylabel 'writes/s'
$(plot "$tx")
set title 'batched Data.Write'
set ylabel 'items/s'
$(plot "$items")
unset multiplot

set output '$out/latency.png'
set multiplot layout 1,2
set title 'Data.Write latency, batch 1 (solid p50, dashed p99)'
set logscale y
set ylabel 'ms'
$(plot "$p50$p99")
unset logscale
set title 'watch latency, acknowledged → received'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xlabel 'server (watchers)'
set xtics rotate by -20 font ",9"
set ylabel 'ms (negative: received before the acknowledgement)'
$(watch_scale)
$( [[ -s $data/watch.tsv ]] && echo "plot '$data/watch.tsv' using 2:xtic(1) title 'p50', '' using 3 title 'p90', '' using 4 title 'p99', '' using 5 title 'max'" || echo "$not_run")
unset multiplot
set xtics norotate font ""
unset logscale y

set style data linespoints
unset logscale y
set logscale x 10
set output '$out/fanout.png'
set multiplot layout 1,2
set title 'server memory per idle watch stream (100 connections)'
set xlabel 'streams'
set ylabel 'KiB per stream'
set yrange [0:*]
$(plot "$mem")
set title 'time until the last stream has the write (median round)'
set ylabel 'ms'
set logscale y
set yrange [*:*]
$(plot "$last")
unset multiplot

set terminal pngcairo size 1500,1300 font ",10"
set output '$out/scale.png'
set key below font ",9"
set multiplot layout 3,3
unset logscale
set logscale x 10
set yrange [0:*]
set title 'streams: server memory per idle stream'
set xlabel 'idle streams'
set ylabel 'KiB per stream'
$(plot "$s_mem")
set title 'streams: time until the last has the write (median round)'
set ylabel 'ms'
set logscale y
set yrange [*:*]
$(plot "$s_last")
unset logscale y
set yrange [0:*]
set title 'streams: server CPU per delivered message'
set ylabel 'µs'
$(plot "$s_cpu")
set title 'tenants: server memory per watched tenant (feed + its stream)'
set xlabel 'tenants, a watcher on each'
set ylabel 'KiB per tenant'
$(plot "$t_mem")
set title 'tenants: server CPU per write (its deliveries and reads included)'
set ylabel 'ms'
$(plot "$t_cpu")
set title 'tenants: watch latency p99, writes spread over them'
set ylabel 'ms'
$(plot "$t_p99")
set title 'tenants: PostgreSQL statements per write'
set ylabel 'statements'
$(plot "$t_spw")
set title 'history: catch-up seconds (solid), server RSS growth (dashed)'
set xlabel 'transactions behind'
set ylabel 's; MiB'
$(plot "$h_s$h_mem")
set title 'history: catch-up changes per second'
set ylabel 'changes/s'
$(plot "$h_rate")
unset multiplot
GP
