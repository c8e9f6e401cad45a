#!/usr/bin/env bash
# bench/pktgen/memif-rig.sh: one run of a Pktgen-DPDK script against lbd
# over memif, on one machine (bench/pktgen/README.md, "The memif rig").
#
# Starts lbd with lbd-memif.ron (a fresh lbd per run: the scripts' created
# counts assume one), waits for "lbd: ready", saves /metrics, runs pktgen
# (memif client, one port, one queue, PCAP mode, under `script` for the
# terminal pktgen 23.10 needs) with the script, saves /metrics again, stops
# lbd (SIGTERM) and prints what changed (metrics-delta.sh) and lbd's exit
# report. Everything lands in OUT_DIR.
#
# With DUT=testpmd, dpdk-testpmd in macswap mode replaces lbd (the same
# memif server, lcores and MAC; it swaps the MAC addresses and sends every
# frame back): the baseline, what pktgen itself sends and counts in this rig.
# Its ARP wait then times out (testpmd asks nothing), which is expected.
#
# Usage: bench/pktgen/memif-rig.sh SCRIPT.lua PCAP [OUT_DIR]
#   e.g. bench/pktgen/memif-rig.sh bench/pktgen/udp64.lua /tmp/lbdpg/udp.pcap
# Environment: PKTGEN (default /tmp/pktgen-23.10.2/build/app/pktgen, as
# scripts/pktgen-build leaves it), LBD (default target/release/lbd), DUT
# (lbd or testpmd), LBDPG_* (the scripts' parameters; LBDPG_PCAP is set from
# PCAP and LBDPG_QUIT_WHEN_DONE to 1 here). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 SCRIPT.lua PCAP [OUT_DIR]" >&2
    exit 64
fi
lua=$(realpath "$1")
pcap=$(realpath "$2")
out=${3:-/tmp/lbdpg/run-$(date -u +%Y%m%dT%H%M%SZ)}
pktgen=${PKTGEN:-/tmp/pktgen-23.10.2/build/app/pktgen}
lbd=${LBD:-$here/../../target/release/lbd}
# Paths fixed by lbd-memif.ron.
dir=/tmp/lbdpg
sock=$dir/lbd.memif
metrics=http://127.0.0.1:9300/metrics

dut=${DUT:-lbd}
for f in "$pktgen" "$lbd"; do
    [[ -x $f ]] || { echo "memif-rig: $f not found (PKTGEN, LBD)" >&2; exit 1; }
done
mkdir -p "$dir" "$out"
# A memif server cannot listen on the socket file of a crashed run.
rm -f "$sock"

if [[ $dut == testpmd ]]; then
    # As lbd-memif.ron: main lcore on CPU 0, the forwarding lcore on CPU 1.
    # testpmd stops (printing its statistics) on a newline on stdin: a FIFO
    # held open here.
    fifo=$out/testpmd.in
    rm -f "$fifo"
    mkfifo "$fifo"
    exec 3<>"$fifo"
    stdbuf -oL dpdk-testpmd --lcores '0@0,1@1' --no-huge -m 1024 --no-pci --file-prefix lbdpg-testpmd \
        "--vdev=net_memif0,role=server,id=0,socket=$sock,socket-abstract=no,mac=02:00:c6:12:00:02" \
        -- --forward-mode=macswap --nb-cores=1 --rxd=1024 --txd=1024 --burst=32 \
        --total-num-mbufs=16384 --auto-start --stats-period 0 \
        <"$fifo" >"$out/testpmd.log" 2>&1 &
    dut_pid=$!
    ready='Press enter to exit'
else
    "$lbd" --config "$here/lbd-memif.ron" >"$out/lbd.log" 2>&1 &
    dut_pid=$!
    ready='^lbd: ready'
fi
dut_log=$out/$dut.log
stop_dut() {
    if kill -0 "$dut_pid" 2>/dev/null; then
        if [[ $dut == testpmd ]]; then
            echo >&3
        else
            kill -TERM "$dut_pid"
        fi
        wait "$dut_pid" || true
    fi
}
trap stop_dut EXIT
for _ in $(seq 1 300); do
    grep -q "$ready" "$dut_log" && break
    kill -0 "$dut_pid" 2>/dev/null || { cat "$dut_log" >&2; exit 1; }
    sleep 0.1
done
grep -q "$ready" "$dut_log" || { echo "memif-rig: $dut not ready in 30 s" >&2; exit 1; }
if [[ $dut == lbd ]]; then
    curl -sf "$metrics" >"$out/before.prom"
fi

# Pktgen: main lcore and its one worker lcore (RX and TX of port 0) on
# CPU 0, lbd's worker alone on CPU 1 (lbd-memif.ron). 3 GiB of EAL memory:
# the PCAP buffers (about 320 bytes per packet) plus pktgen's own pools.
start=$(date +%s)
LBDPG_PCAP=$pcap LBDPG_QUIT_WHEN_DONE=1 timeout 600 script -qec "$(printf '%q ' \
    "$pktgen" --lcores '0@0,1@0' --no-huge -m 3072 --no-pci --file-prefix lbdpg-pktgen \
    "--vdev=net_memif0,role=client,id=0,socket=$sock,socket-abstract=no,mac=02:00:00:00:01:00" \
    -- -P --rxd=1024 --txd=1024 -m 1.0 -s "0:$pcap" -f "$lua")" /dev/null >"$out/pktgen.out" 2>&1 \
    || echo "memif-rig: pktgen exited with $?" >&2
seconds=$(($(date +%s) - start))
if [[ $dut == lbd ]]; then
    curl -sf "$metrics" >"$out/after.prom"
fi
stop_dut
trap - EXIT

# The script's own lines, without pktgen's screen.
# (pktgen's screen refresh can share a line with a message: -o.)
sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1b[78]//g' "$out/pktgen.out" | tr -s '\r\n' '\n' \
    | grep -a -o -E '(udp64|tcp_syn|tcp_established) \(pktgen.*|(udp64|tcp_syn|tcp_established) results.*|phase [12].*|real server [^ ]+: lbd asked.*|(note|warning): .*|^  [A-Za-z(].*|[^ ]*\.lua:[0-9]+:.*|PANIC.*' \
    | grep -v 'Copyright\|magic:\|Process:\|Create:\|Src MAC\|RX/TX processing' >"$out/script.txt" || true
cat "$out/script.txt"
if [[ $dut == lbd ]]; then
    echo "== lbd over the run ($seconds s, pktgen's whole life)"
    "$here/metrics-delta.sh" "$out/before.prom" "$out/after.prom" "$seconds" \
        | grep -E 'created|expired|forwarded|drops|rx_frames|tx_failed|missed|busy' || true
    echo "== lbd's exit report"
    grep -E '^counter (conn_created|conn_expired|rx_frames|tx_failed|forwarded_dr|drop_total) |^service|^  ->' \
        "$out/lbd.log" || true
else
    echo "== testpmd's forward statistics"
    grep -A6 'Forward statistics for port 0' "$out/testpmd.log" || true
fi
echo "(all files in $out)"
