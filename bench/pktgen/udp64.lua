-- bench/pktgen/udp64.lua: 64-byte UDP to an lbd VIP, for Pktgen-DPDK 23.10.
--
-- What it measures: how many packets per second lbd forwards (direct
-- routing) when clients send minimum-size UDP datagrams to a UDP virtual
-- service over a fixed set of client flows. Pktgen's port TX_PORT is
-- cabled to lbd's client-facing port; lbd forwards every datagram to the
-- real server, whose address belongs to pktgen's port RX_PORT, so pktgen
-- counts on RX_PORT exactly what lbd forwarded. Cabling, the memif rig and
-- the matching lbd configuration: bench/pktgen/README.md.
--
-- The flows come from a pcap file that pktgen loads at start-up (-s):
--   bench/pktgen/make-flows-pcap.py --proto udp /tmp/lbdpg/udp.pcap
--   script -qc "pktgen ... -- -P -m 1.0 -s 0:/tmp/lbdpg/udp.pcap \
--       -f bench/pktgen/udp64.lua" /dev/null
-- (README: the pktgen build, the memif rig, cores, memory; pktgen needs a
-- terminal, hence `script`). The file holds one datagram for each of FLOWS
-- distinct flows (default 256 addresses x 4096 ports = 1,048,576), in a
-- random order; in PCAP mode pktgen sends the file's packets in order,
-- round after round, from buffers built once at start-up. The first round
-- creates the FLOWS flows in lbd, every later datagram is a lookup of one
-- of them (as long as a round takes less than lbd's UDP timeout, 300 s by
-- default): lbd_connections_created_total (conn_created in lbd's exit
-- report) goes up by exactly FLOWS over a run on a fresh lbd. The script
-- prints FLOWS: compare.
--
-- Why a pcap: in pktgen 23.10.2 per-packet random bits are a mode
-- exclusive with range mode (enabling one silently turns the other off),
-- and they are applied only to the last burst before sending stops, not to
-- the packets sent meanwhile; range mode builds one packet per transmit
-- buffer when sending starts and repeats those; and randomising the source
-- address would break the IPv4 checksum, which lbd verifies (memif, like
-- many NICs, computes none on transmit).
--
-- Every parameter below can also be given in the environment as
-- LBDPG_<NAME>, e.g. LBDPG_RATE_PERCENT=50 LBDPG_SECONDS=60 (pktgen must see
-- the variable: run it from a root shell, or with `sudo env LBDPG_...=...`).
--
-- Bounded: pktgen stops after WARMUP_SECONDS + SECONDS.
--
-- What to read off at the end (printed, and appended to RESULT_FILE):
--   * tx Mpps on TX_PORT: what pktgen offered (check it against the rate you
--     asked for: if pktgen cannot generate it, give it more TX cores);
--   * rx Mpps on RX_PORT: what lbd forwarded to the real-server side;
--   * forwarded/offered, and RX_PORT's imissed (if non-zero, pktgen's own
--     receive side was the limit, not lbd);
--   * on lbd's side, over the same interval: lbctl list --stats, /metrics
--     (lbd_connections_created_total, lbd_packets_total, lbd_drops_total,
--     lbd_port_missed_total, lbd_worker_polls_total); the README has the
--     exact commands.

---------------------------------------------------------------- parameters

-- Shared helpers (lbd_pktgen.lua, next to this script).
local LIB_DIR = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(LIB_DIR .. "lbd_pktgen.lua")
local param, log, counters, diff, wait, mpps = lib.param, lib.log, lib.counters, lib.diff, lib.wait, lib.mpps

-- Pktgen port numbers: TX_PORT sends the pcap (-s TX_PORT:PCAP) to lbd's
-- client-facing port; RX_PORT plays the real server and counts what lbd
-- forwards. The same port on the memif rig (one link: lbd sends the frames
-- back out of the port they came in on); 1 on NICs with lbd-bench.ron.
local TX_PORT = param("TX_PORT", 0)
local RX_PORT = param("RX_PORT", 0)

-- The pcap file given to pktgen with -s TX_PORT:PCAP (the script reads its
-- size to know FLOWS; the destination MAC inside must be lbd's
-- client-facing port's: make-flows-pcap.py --dst-mac).
local PCAP = param("PCAP", "/tmp/lbdpg/udp.pcap")

-- The real server's address: pktgen answers lbd's ARP requests for it on
-- RX_PORT. It must be the real server in lbd's configuration, on the subnet
-- of lbd's port that faces RX_PORT (198.19.0.10/24 on NICs).
local RS_IP = param("RS_IP", "198.18.0.10/24")

-- Offered load, percent of the TX port's line rate. memif reports 100 Gb/s,
-- far more than pktgen makes, and pktgen waits for room on a full memif
-- ring rather than drop: 100 means "as fast as pktgen and lbd go".
local RATE_PERCENT = param("RATE_PERCENT", 100)

-- Sending lasts WARMUP_SECONDS (not measured: lbd creates the flows, caches
-- warm) plus SECONDS (measured).
local WARMUP_SECONDS = param("WARMUP_SECONDS", 3)
local SECONDS = param("SECONDS", 30)

-- How long to wait for lbd to ask for the real server's MAC before sending.
local ARP_WAIT_SECONDS = param("ARP_WAIT_SECONDS", 5)

-- One line per run is appended here ("" for none).
local RESULT_FILE = param("RESULT_FILE", "/tmp/lbd-pktgen-results.txt")

-- Leave pktgen when done (false: stay at its prompt to look at the pages).
local QUIT_WHEN_DONE = param("QUIT_WHEN_DONE", false)

---------------------------------------------------------------- checks

-- make-flows-pcap.py --proto udp writes one 60-byte frame per flow.
local FLOWS = lib.pcap_packets(PCAP, 60)
assert(FLOWS and FLOWS >= 1, "PCAP " .. PCAP .. ": not a file written by make-flows-pcap.py (README)")

assert(SECONDS >= 1 and SECONDS <= 3600, "SECONDS: 1 to 3600")
assert(WARMUP_SECONDS >= 0 and WARMUP_SECONDS <= 600, "WARMUP_SECONDS: 0 to 600")
assert(ARP_WAIT_SECONDS >= 0 and ARP_WAIT_SECONDS <= 60, "ARP_WAIT_SECONDS: 0 to 60")
assert(RATE_PERCENT > 0 and RATE_PERCENT <= 100, "RATE_PERCENT: more than 0, at most 100")

local tx, rx = tostring(TX_PORT), tostring(RX_PORT)
local version = lib.check_version()

---------------------------------------------------------------- set-up

pktgen.stop(tx)
if rx ~= tx then
    pktgen.stop(rx)
end

-- PCAP mode (exclusive in 23.10: no random bits, no range), until stopped.
pktgen.rnd(tx, 0, 34, "off")
pktgen.rnd(tx, 1, 28, "off")
lib.only_mode(tx, "pcap")
pktgen.set(tx, "rate", RATE_PERCENT)
pktgen.set(tx, "count", 0) -- 0: until stopped

log("udp64 (pktgen %s): port %s sends %s: %d flows, round after round, %s%% of line rate, "
    .. "%d+%d s", version, tx, PCAP, FLOWS, tostring(RATE_PERCENT), WARMUP_SECONDS, SECONDS)

-- The real-server side, before any traffic: lbd must know its MAC.
lib.serve_real_server(RX_PORT, RS_IP, ARP_WAIT_SECONDS, TX_PORT ~= RX_PORT)

---------------------------------------------------------------- run

local t0_tx, t0_rx = counters(TX_PORT), counters(RX_PORT)
pktgen.start(tx)
wait(WARMUP_SECONDS, "warm-up")
local m0_tx, m0_rx = counters(TX_PORT), counters(RX_PORT)
wait(SECONDS, "measuring")
local m1_tx, m1_rx = counters(TX_PORT), counters(RX_PORT)
pktgen.stop(tx)
-- Let the last packets arrive and pktgen refresh its counters.
pktgen.delay(2000)
local t1_tx, t1_rx = counters(TX_PORT), counters(RX_PORT)
lib.check_counters_move(TX_PORT, t0_tx, t1_tx)

---------------------------------------------------------------- results

local w_tx, w_rx = diff(m0_tx, m1_tx), diff(m0_rx, m1_rx)
local a_tx, a_rx = diff(t0_tx, t1_tx), diff(t0_rx, t1_rx)
local tx_mpps, rx_mpps = mpps(w_tx.opackets, SECONDS), mpps(w_rx.ipackets, SECONDS)
local ratio = a_tx.opackets > 0 and a_rx.ipackets / a_tx.opackets or 0

log("")
log("udp64 results, %d flows (measured over %d s, after %d s of warm-up):",
    FLOWS, SECONDS, WARMUP_SECONDS)
log("  offered   (port %s tx): %8.3f Mpps", tx, tx_mpps)
log("  forwarded (port %s rx): %8.3f Mpps   <- what lbd forwarded", rx, rx_mpps)
log("  whole run: %d sent, %d received (%.4f %%), port %s imissed %d, rx_nombuf %d, ierrors %d",
    a_tx.opackets, a_rx.ipackets, 100 * ratio, rx, a_rx.imissed, a_rx.rx_nombuf, a_rx.ierrors)
if a_rx.imissed > 0 or a_rx.rx_nombuf > 0 then
    log("  note: pktgen's receive port missed packets: its RX side, not lbd, may be the limit")
end
if a_rx.ipackets == 0 then
    log("  warning: nothing forwarded: is %s loaded on port %s (-s %s:%s), with lbd's MAC?",
        PCAP, tx, tx, PCAP)
end
log("  lbd should have created %d flows in this run (lbd_connections_created_total)", FLOWS)
log("  now read lbd's side: lbctl list --stats, and the /metrics difference (README)")

if RESULT_FILE ~= "" then
    local f = io.open(RESULT_FILE, "a")
    if f then
        f:write(string.format(
            "%s udp64 pktgen=%s pcap=%s flows=%d rate=%s%% seconds=%d tx_mpps=%.3f "
                .. "rx_mpps=%.3f sent=%d received=%d rx_imissed=%d\n",
            os.date("!%Y-%m-%dT%H:%M:%SZ"), version, PCAP, FLOWS, tostring(RATE_PERCENT),
            SECONDS, tx_mpps, rx_mpps, a_tx.opackets, a_rx.ipackets, a_rx.imissed))
        f:close()
        log("  appended to %s", RESULT_FILE)
    else
        log("  could not open %s", RESULT_FILE)
    end
end

if QUIT_WHEN_DONE then
    pktgen.quit()
end
