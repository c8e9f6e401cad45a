#!/usr/bin/env bash
# Instructions per packet of `bench pipeline`, by callgrind, for every path
# bench/RESULTS.md reports: established (200 000 minus 100 000 packets over
# 1 000 flows, ÷ 100 000) and new connections (40 000 minus 20 000 SYNs,
# ÷ 20 000), so set-up and warm-up cancel out.
#
# Usage: bench/scripts/callgrind-ir.sh [--scope bench|worker] [BINARY]
#   BINARY  a `bench` built by `cargo build --release -p lb-bench`
#           (default target/release/bench; copy it out of target/ first when
#           comparing two builds).
#   --scope bench   (default) collect inside `lbbench::Prepared::time`: the
#                   timed loop, the bench's own per-burst work included
#                   (restoring rewritten MACs, checking every verdict, the
#                   clock and its histogram). The method of every pass
#                   before the seventh.
#   --scope worker  collect inside the worker's three entry points lbd's
#                   worker loop calls per burst (`Worker::begin_burst`,
#                   `Worker::process_planned`, `Worker::housekeeping`) and
#                   everything they call: lbcore's own instructions.
set -euo pipefail
scope=bench
if [[ ${1:-} == --scope ]]; then
    scope=${2:?--scope bench|worker}
    shift 2
fi
bin=$(realpath "${1:-target/release/bench}")
case $scope in
bench) toggles=(--toggle-collect='lbbench::Prepared::time') ;;
worker) toggles=(--toggle-collect='*Worker>::begin_burst'
    --toggle-collect='*Worker>::process_planned'
    --toggle-collect='*Worker>::housekeeping') ;;
*) echo "--scope bench|worker" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

ir() {
    valgrind --tool=callgrind "${toggles[@]}" --callgrind-out-file="$dir/out" \
        "$bin" pipeline "$@" >/dev/null 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
    awk '/^summary:/ {print $2}' "$dir/out"
}
per() { echo "scale=1; ($1 - $2) / $3" | bc; }
est() { printf '%-44s %8s\n' "established $*" "$(per "$(ir --flows 1000 --packets 200000 "$@")" "$(ir --flows 1000 --packets 100000 "$@")" 100000)"; }
new() { printf '%-44s %8s\n' "new $*" "$(per "$(ir --workload new --flows 40000 "$@")" "$(ir --workload new --flows 20000 "$@")" 20000)"; }

echo "instructions per packet, scope $scope, $bin"
est --forward dr
est --forward tunnel
est --forward nat
est --forward nat-reply
new --real-servers 10
new --real-servers 100
new --real-servers 1000
new --forward nat
est --ipv6 --forward dr
est --ipv6 --forward nat
est --ipv6 --forward nat-reply
new --ipv6
