#!/usr/bin/env bash
# metrics-delta.sh BEFORE AFTER [SECONDS]: what lbd did between two scrapes
# of its /metrics endpoint (bench/pktgen/README.md):
#   curl -s http://127.0.0.1:9300/metrics > before.prom
#   ... run a pktgen script ...
#   curl -s http://127.0.0.1:9300/metrics > after.prom
#   bench/pktgen/metrics-delta.sh before.prom after.prom 30
# Prints every counter that changed with its difference (and per second when
# SECONDS is given), each worker's share of busy polls over the interval
# (lbd_worker_busy_ratio is since start, so useless for one run), and the
# burst-latency quantiles of the interval from lbd_burst_latency_seconds
# (upper bucket bounds, all workers together). Gauges (lbd_connections,
# lbd_real_server_active_connections, ...) are differences too: read their
# values in AFTER.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BEFORE.prom AFTER.prom [SECONDS]" >&2
    exit 64
fi
before=$1 after=$2 secs=${3:-0}
export LC_ALL=C
delta=$(mktemp)
trap 'rm -f "$delta"' EXIT
join <(grep -v '^#' "$before" | sort) <(grep -v '^#' "$after" | sort) > "$delta"

echo "# changed series: difference$( [ "$secs" != 0 ] && echo ", per second over $secs s")"
awk -v s="$secs" '$3 != $2 && $1 !~ /_bucket\{/ {
        if (s > 0) printf "%-84s %16.0f %14.0f/s\n", $1, $3 - $2, ($3 - $2) / s
        else printf "%-84s %16.0f\n", $1, $3 - $2 }' "$delta"

echo "# busy share of polls per worker over the interval"
awk '$1 ~ /^lbd_worker_polls_total\{/ {
        w = $1; sub(/.*worker="/, "", w); sub(/".*/, "", w)
        if ($1 ~ /result="busy"/) b[w] += $3 - $2; else i[w] += $3 - $2 }
     END { for (w in b) if (b[w] + i[w] > 0) printf "worker %s busy %.4f\n", w, b[w] / (b[w] + i[w]) }' \
    "$delta" | sort -n -k2

echo "# burst latency over the interval (all workers; bucket upper bounds)"
awk '$1 ~ /^lbd_burst_latency_seconds_bucket\{/ {
        le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); c[le] += $3 - $2 }
     END { for (l in c) print l, c[l] }' "$delta" | sort -g |
    awk '{ le[NR] = $1; c[NR] = $2 }
         END { if (NR == 0 || c[NR] == 0) { print "no bursts"; exit }
               printf "bursts %d\n", c[NR]
               split("0.5 0.99 0.999", q, " ")
               for (j = 1; j <= 3; j++) for (i = 1; i <= NR; i++)
                   if (c[i] >= q[j] * c[NR]) { printf "p%s <= %s s\n", q[j] * 100, le[i]; break } }'
