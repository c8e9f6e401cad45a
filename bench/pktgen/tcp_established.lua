-- bench/pktgen/tcp_established.lua: 64-byte TCP packets on established lbd
-- flows, for Pktgen-DPDK 23.10: the established-flow (connection-table
-- lookup) test.
--
-- What it measures: how many packets per second lbd forwards (direct
-- routing) when every packet belongs to a connection it already tracks,
-- spread at random over FLOWS connections: the counterpart with I/O of
-- `bench pipeline --workload established --flows 1000000` (bench/RESULTS.md).
-- Pktgen's port TX_PORT is cabled to lbd's client-facing port; lbd forwards
-- to the real server, whose address belongs to pktgen's port RX_PORT, so
-- pktgen counts on RX_PORT what lbd forwarded.
--
-- The flows come from the pcap file tcp_syn.lua uses, loaded at start-up:
--   bench/pktgen/make-flows-pcap.py --dst-mac <lbd client0 MAC> /tmp/lbdpg/flows.pcap
--   script -qc "pktgen ... -- -P -m 1.[0-1] -s 0:/tmp/lbdpg/flows.pcap \
--       -f bench/pktgen/tcp_established.lua" /dev/null
-- (README: the memif rig, cores, memory). It holds one SYN for each of FLOWS
-- flows (default 256 addresses x 4096 ports = 1,048,576) in a random order,
-- then one ACK per flow in another random order. In PCAP mode pktgen sends
-- the file's packets in order, round after round, from buffers built once
-- at start-up.
--
-- The approach. Pktgen does not speak TCP, and it need not: lbd is a
-- director, not an endpoint. For direct routing it tracks a connection from
-- the client's side only (IPVS's "input-only" state table): a SYN of an
-- unknown flow creates the entry (SYN_RECV) and schedules a real server; a
-- later ACK of that flow moves it to ESTABLISHED; a SYN of a known flow is
-- a lookup like an ACK; an ACK of a flow it never saw a SYN for is dropped
-- (drop_tcp_no_conn), as IPVS does. So the script runs two phases:
--   1. SYN phase: the FLOWS SYNs, once, at SYN_RATE_PERCENT. Afterwards lbd
--      holds FLOWS connections (lbd_connections_created_total has grown by
--      exactly FLOWS; lbctl list: InActConn);
--   2. lookup phase: sending resumes where phase 1 stopped (the ACKs) and
--      loops over the whole file (ACKs, then the SYNs again, ...) at
--      RATE_PERCENT for WARMUP_SECONDS + SECONDS: every packet is a lookup
--      of one of the FLOWS connections, in a random order, and no new
--      connection is created (drop_tcp_no_conn stays 0; ActiveConn climbs
--      to FLOWS with the first round of ACKs).
-- lbd's table needs room for FLOWS (conn_table.capacity, split between the
-- workers), and the SYN phase plus the pause before the ACKs must stay
-- under timeouts.tcp_syn_recv (60 s in lbd-memif.ron). Start on a freshly
-- started lbd (or 60 s after an earlier run), or the SYNs are lookups too
-- and the created count is smaller.
--
-- Bounded: the SYN phase stops after SYN_PHASE_MAX_SECONDS at most; the
-- lookup phase after WARMUP_SECONDS + SECONDS.
--
-- What to read off at the end (printed, and appended to RESULT_FILE):
--   * tx Mpps on TX_PORT: the lookup rate offered;
--   * rx Mpps on RX_PORT: what lbd forwarded;
--   * on lbd's side over the lookup phase (README): lbd_packets_total
--     {outcome="forwarded_dr"}, drops by reason (tcp_no_conn must be 0).

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

-- The pcap file given to pktgen with -s (the script reads its size to know
-- FLOWS).
local PCAP = param("PCAP", "/tmp/lbdpg/flows.pcap")

-- The real server's address: pktgen answers lbd's ARP requests for it on
-- RX_PORT (the real server of lbd's TCP service; 198.19.0.10/24 on NICs).
local RS_IP = param("RS_IP", "198.18.0.10/24")

-- SYN phase: percent of line rate, and an upper bound on its length (keep
-- it under lbd's timeouts.tcp_syn_recv). Pktgen waits for room on a full
-- memif ring rather than drop, so 100 is safe there: lbd sets the pace.
local SYN_RATE_PERCENT = param("SYN_RATE_PERCENT", 100)
local SYN_PHASE_MAX_SECONDS = param("SYN_PHASE_MAX_SECONDS", 50)

-- Lookup phase: offered load, percent of the TX port's line rate. memif
-- reports 100 Gb/s, far more than pktgen makes, and pktgen waits for room
-- on a full memif ring rather than drop: 100 means "as fast as pktgen and
-- lbd go".
local RATE_PERCENT = param("RATE_PERCENT", 100)

-- Lookup phase: WARMUP_SECONDS (not measured) plus SECONDS (measured).
local WARMUP_SECONDS = param("WARMUP_SECONDS", 3)
local SECONDS = param("SECONDS", 30)

-- How long to wait for lbd to ask for the real server's MAC before sending.
local ARP_WAIT_SECONDS = param("ARP_WAIT_SECONDS", 5)

-- One line per run is appended here ("" for none).
local RESULT_FILE = param("RESULT_FILE", "/tmp/lbd-pktgen-results.txt")

-- Leave pktgen when done (false: stay at its prompt).
local QUIT_WHEN_DONE = param("QUIT_WHEN_DONE", false)

---------------------------------------------------------------- checks

-- make-flows-pcap.py writes 60-byte frames: FLOWS SYNs, then FLOWS ACKs.
local packets = lib.pcap_packets(PCAP, 60)
assert(packets and packets >= 2 and packets % 2 == 0,
    "PCAP " .. PCAP .. ": not a file written by make-flows-pcap.py (README)")
local FLOWS = packets // 2

assert(SYN_RATE_PERCENT > 0 and SYN_RATE_PERCENT <= 100, "SYN_RATE_PERCENT: (0, 100]")
assert(RATE_PERCENT > 0 and RATE_PERCENT <= 100, "RATE_PERCENT: (0, 100]")
assert(SYN_PHASE_MAX_SECONDS >= 1 and SYN_PHASE_MAX_SECONDS <= 3600, "SYN_PHASE_MAX_SECONDS")
assert(SECONDS >= 1 and SECONDS <= 3600, "SECONDS: 1 to 3600")
assert(WARMUP_SECONDS >= 0 and WARMUP_SECONDS <= 600, "WARMUP_SECONDS: 0 to 600")
assert(ARP_WAIT_SECONDS >= 0 and ARP_WAIT_SECONDS <= 60, "ARP_WAIT_SECONDS: 0 to 60")

local tx, rx = tostring(TX_PORT), tostring(RX_PORT)
local version = lib.check_version()

---------------------------------------------------------------- set-up

pktgen.stop(tx)
if rx ~= tx then
    pktgen.stop(rx)
end

-- PCAP mode (exclusive in 23.10: no random bits, no range).
pktgen.rnd(tx, 0, 34, "off")
pktgen.rnd(tx, 1, 28, "off")
lib.only_mode(tx, "pcap")

log("tcp_established (pktgen %s): port %s, %s: %d flows; %d SYNs at %s%%, then lookups "
    .. "at %s%% for %d+%d s", version, tx, PCAP, FLOWS, FLOWS, tostring(SYN_RATE_PERCENT),
    tostring(RATE_PERCENT), WARMUP_SECONDS, SECONDS)

lib.serve_real_server(RX_PORT, RS_IP, ARP_WAIT_SECONDS, TX_PORT ~= RX_PORT)

---------------------------------------------------------------- phase 1: SYNs

pktgen.set(tx, "rate", SYN_RATE_PERCENT)
pktgen.set(tx, "count", FLOWS)

local s0_tx, s0_rx = counters(TX_PORT), counters(RX_PORT)
log("phase 1: %d SYNs, one per flow", FLOWS)
pktgen.start(tx)
local ticks = 0
while ticks < SYN_PHASE_MAX_SECONDS * 100 do
    pktgen.delay(10)
    ticks = ticks + 1
    if pktgen.isSending(tx)[TX_PORT] == "n" then
        break
    end
end
pktgen.stop(tx)
pktgen.delay(2000)
local s1_tx, s1_rx = counters(TX_PORT), counters(RX_PORT)
lib.check_counters_move(TX_PORT, s0_tx, s1_tx)
local syn_tx, syn_rx = diff(s0_tx, s1_tx), diff(s0_rx, s1_rx)
log("phase 1 done in %.2f s: %d SYNs sent, %d forwarded by lbd (%.3f M new connections/s)",
    ticks / 100, syn_tx.opackets, syn_rx.ipackets, syn_rx.ipackets / (ticks / 100) / 1e6)
if syn_tx.opackets < FLOWS then
    log("warning: only %d of %d SYNs sent within %d s: raise SYN_RATE_PERCENT or "
        .. "SYN_PHASE_MAX_SECONDS (flows without their SYN are dropped as tcp_no_conn)",
        syn_tx.opackets, FLOWS, SYN_PHASE_MAX_SECONDS)
end
log("  lbd should now hold %d connections (lbctl list: InActConn; created_total +%d)",
    FLOWS, FLOWS)

---------------------------------------------------------------- phase 2: lookups

pktgen.set(tx, "rate", RATE_PERCENT)
pktgen.set(tx, "count", 0) -- 0: until stopped

log("phase 2: lookups over the same %d flows (ACKs, then SYNs again, ...)", FLOWS)
local t0_tx, t0_rx = counters(TX_PORT), counters(RX_PORT)
pktgen.start(tx)
wait(WARMUP_SECONDS, "warm-up")
local m0_tx, m0_rx = counters(TX_PORT), counters(RX_PORT)
wait(SECONDS, "measuring")
local m1_tx, m1_rx = counters(TX_PORT), counters(RX_PORT)
pktgen.stop(tx)
pktgen.delay(2000)
local t1_tx, t1_rx = counters(TX_PORT), counters(RX_PORT)

---------------------------------------------------------------- results

local w_tx, w_rx = diff(m0_tx, m1_tx), diff(m0_rx, m1_rx)
local a_tx, a_rx = diff(t0_tx, t1_tx), diff(t0_rx, t1_rx)
local tx_mpps, rx_mpps = mpps(w_tx.opackets, SECONDS), mpps(w_rx.ipackets, SECONDS)
local ratio = a_tx.opackets > 0 and a_rx.ipackets / a_tx.opackets or 0

log("")
log("tcp_established results, %d flows (measured over %d s, after %d s of warm-up):",
    FLOWS, SECONDS, WARMUP_SECONDS)
log("  offered   (port %s tx): %8.3f Mpps", tx, tx_mpps)
log("  forwarded (port %s rx): %8.3f Mpps   <- what lbd forwarded", rx, rx_mpps)
log("  lookup phase: %d sent, %d received (%.4f %%), port %s imissed %d, rx_nombuf %d, ierrors %d",
    a_tx.opackets, a_rx.ipackets, 100 * ratio, rx, a_rx.imissed, a_rx.rx_nombuf, a_rx.ierrors)
if a_rx.imissed > 0 or a_rx.rx_nombuf > 0 then
    log("  note: pktgen's receive port missed packets: its RX side, not lbd, may be the limit")
end
log("  now read lbd's side: created_total grew by %d in all, drop_tcp_no_conn 0 (README)", FLOWS)

if RESULT_FILE ~= "" then
    local f = io.open(RESULT_FILE, "a")
    if f then
        f:write(string.format(
            "%s tcp_established pktgen=%s pcap=%s flows=%d syn_sent=%d syn_received=%d "
                .. "syn_seconds=%.2f rate=%s%% seconds=%d tx_mpps=%.3f rx_mpps=%.3f "
                .. "sent=%d received=%d rx_imissed=%d\n",
            os.date("!%Y-%m-%dT%H:%M:%SZ"), version, PCAP, FLOWS, syn_tx.opackets,
            syn_rx.ipackets, ticks / 100, tostring(RATE_PERCENT), SECONDS, tx_mpps, rx_mpps,
            a_tx.opackets, a_rx.ipackets, a_rx.imissed))
        f:close()
        log("  appended to %s", RESULT_FILE)
    else
        log("  could not open %s", RESULT_FILE)
    end
end

if QUIT_WHEN_DONE then
    pktgen.quit()
end
