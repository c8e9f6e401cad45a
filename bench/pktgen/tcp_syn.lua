-- bench/pktgen/tcp_syn.lua: 64-byte TCP SYNs to an lbd VIP, for
-- Pktgen-DPDK 23.10: the new-connection rate test.
--
-- What it measures: how many new connections per second lbd accepts,
-- schedules and forwards (direct routing). Every SYN of a flow lbd does not
-- know creates a connection-table entry (state SYN_RECV) after the
-- scheduler picked a real server; that is lbd's most expensive packet.
-- Pktgen's port TX_PORT is cabled to lbd's client-facing port; lbd forwards
-- each SYN to the real server, whose address belongs to pktgen's port
-- RX_PORT, so pktgen counts on RX_PORT what lbd forwarded.
--
-- The flows come from a pcap file that pktgen loads at start-up (-s):
--   bench/pktgen/make-flows-pcap.py --dst-mac <lbd client0 MAC> /tmp/lbdpg/flows.pcap
--   script -qc "pktgen ... -- -P -m 1.[0-1] -s 0:/tmp/lbdpg/flows.pcap \
--       -f bench/pktgen/tcp_syn.lua" /dev/null
-- (README: the memif rig, cores, memory). The file holds one SYN for each of
-- FLOWS distinct flows (default 256 addresses x 4096 ports = 1,048,576), in
-- a random order, then one ACK per flow (for tcp_established.lua). This
-- script sends the SYN half exactly once, in PCAP mode: pktgen sends the
-- file's packets in order, from buffers built once at start-up. So every
-- SYN is a new flow, and lbd_connections_created_total (conn_created in
-- lbd's exit report) goes up by exactly FLOWS, provided lbd holds none of
-- these flows yet: run it on a freshly started lbd, or wait
-- timeouts.tcp_syn_recv seconds (60 in lbd-memif.ron) after an earlier run.
--
-- Why not pktgen's range mode or random bits: range mode builds one packet
-- per transmit buffer when sending starts and re-sends the buffers, so it
-- repeats a few thousand flows; 23.10's random bits are a mode of their own
-- (not combinable with ranges), and randomising the source address breaks
-- the IPv4 checksum, which lbd verifies (memif computes none on transmit).
--
-- Rate: pktgen does not drop what memif cannot take (it retries until the
-- ring has room), so at RATE_PERCENT=100 lbd sets the pace and the SYN
-- rate forwarded is lbd's new-connection rate on this rig.
--
-- Bounded: sending stops after MAX_SECONDS even if SYNs remain.
--
-- What to read off at the end (printed, and appended to RESULT_FILE):
--   * SYNs sent and forwarded, and the SYNs sent over the pass: the new
--     connections per second (pktgen sends no faster than lbd takes them
--     over memif);
--   * on lbd's side (README): lbd_connections_created_total must have grown
--     by FLOWS; drops by reason (conn_table_full: the table is too small).

---------------------------------------------------------------- parameters

-- Shared helpers (lbd_pktgen.lua, next to this script).
local LIB_DIR = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(LIB_DIR .. "lbd_pktgen.lua")
local param, log, counters, diff = lib.param, lib.log, lib.counters, lib.diff

-- Pktgen port numbers: TX_PORT sends the pcap (-s TX_PORT:PCAP) to lbd's
-- client-facing port; RX_PORT plays the real server and counts what lbd
-- forwards. The same port on the memif rig (one link: lbd sends the frames
-- back out of the port they came in on); 1 on NICs with lbd-bench.ron.
local TX_PORT = param("TX_PORT", 0)
local RX_PORT = param("RX_PORT", 0)

-- The pcap file given to pktgen with -s (the script reads its size to know
-- FLOWS; the destination MAC inside must be lbd's client-facing port's).
local PCAP = param("PCAP", "/tmp/lbdpg/flows.pcap")

-- The real server's address: pktgen answers lbd's ARP requests for it on
-- RX_PORT (the real server of lbd's TCP service; 198.19.0.10/24 on NICs).
local RS_IP = param("RS_IP", "198.18.0.10/24")

-- Offered load, percent of the TX port's line rate. memif reports 100 Gb/s,
-- far more than pktgen makes, and pktgen waits for room on a full memif
-- ring rather than drop: 100 means "as fast as pktgen and lbd go".
local RATE_PERCENT = param("RATE_PERCENT", 100)

-- Upper bound on the pass.
local MAX_SECONDS = param("MAX_SECONDS", 120)

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

assert(RATE_PERCENT > 0 and RATE_PERCENT <= 100, "RATE_PERCENT: (0, 100]")
assert(MAX_SECONDS >= 1 and MAX_SECONDS <= 3600, "MAX_SECONDS: 1 to 3600")
assert(ARP_WAIT_SECONDS >= 0 and ARP_WAIT_SECONDS <= 60, "ARP_WAIT_SECONDS: 0 to 60")

local tx, rx = tostring(TX_PORT), tostring(RX_PORT)
local version = lib.check_version()

---------------------------------------------------------------- set-up

pktgen.stop(tx)
if rx ~= tx then
    pktgen.stop(rx)
end

-- PCAP mode (exclusive in 23.10: no random bits, no range), FLOWS packets:
-- the SYN half of the file.
pktgen.rnd(tx, 0, 34, "off")
pktgen.rnd(tx, 1, 28, "off")
lib.only_mode(tx, "pcap")
pktgen.set(tx, "rate", RATE_PERCENT)
pktgen.set(tx, "count", FLOWS)

log("tcp_syn (pktgen %s): port %s sends the %d SYNs of %s once (%d new flows), %s%% of line rate",
    version, tx, FLOWS, PCAP, FLOWS, tostring(RATE_PERCENT))

lib.serve_real_server(RX_PORT, RS_IP, ARP_WAIT_SECONDS, TX_PORT ~= RX_PORT)

---------------------------------------------------------------- run

local t0_tx, t0_rx = counters(TX_PORT), counters(RX_PORT)
pktgen.start(tx)
-- Poll every 10 ms until the count is sent: the pass's duration.
local ticks = 0
while ticks < MAX_SECONDS * 100 do
    pktgen.delay(10)
    ticks = ticks + 1
    if pktgen.isSending(tx)[TX_PORT] == "n" then
        break
    end
end
pktgen.stop(tx)
local seconds = ticks / 100
-- Let the last packets arrive and pktgen refresh its counters.
pktgen.delay(2000)
local t1_tx, t1_rx = counters(TX_PORT), counters(RX_PORT)
lib.check_counters_move(TX_PORT, t0_tx, t1_tx)

---------------------------------------------------------------- results

local a_tx, a_rx = diff(t0_tx, t1_tx), diff(t0_rx, t1_rx)
-- Every SYN that reached lbd created a connection; pktgen counts those it
-- sent (memif drops nothing on the way; the count may include its ARP
-- answer, as its counters lag by up to a second), and those lbd forwarded
-- and pktgen's receive ring had room for (lbd_tx_failed_total counts the
-- rest).
local cps = a_tx.opackets / seconds

log("")
log("tcp_syn results, %d new flows in %.2f s (10 ms resolution):", FLOWS, seconds)
log("  SYNs sent      (port %s tx): %d   <- each one a new connection in lbd", tx, a_tx.opackets)
log("  SYNs forwarded (port %s rx): %d", rx, a_rx.ipackets)
log("  new connections per second: %.3f M (sent / pass)", cps / 1e6)
log("  port %s imissed %d, rx_nombuf %d, ierrors %d", rx, a_rx.imissed, a_rx.rx_nombuf, a_rx.ierrors)
if a_tx.opackets < FLOWS then
    log("  warning: only %d of %d SYNs sent within MAX_SECONDS", a_tx.opackets, FLOWS)
end
if a_rx.ipackets == 0 then
    log("  warning: nothing forwarded: is %s loaded on port %s (-s %s:%s), with lbd's MAC?",
        PCAP, tx, tx, PCAP)
end
log("  lbd should have created %d connections in this run (lbd_connections_created_total)", FLOWS)

if RESULT_FILE ~= "" then
    local f = io.open(RESULT_FILE, "a")
    if f then
        f:write(string.format(
            "%s tcp_syn pktgen=%s pcap=%s flows=%d rate=%s%% seconds=%.2f sent=%d "
                .. "received=%d new_conns_per_s=%.0f rx_imissed=%d\n",
            os.date("!%Y-%m-%dT%H:%M:%SZ"), version, PCAP, FLOWS, tostring(RATE_PERCENT),
            seconds, a_tx.opackets, a_rx.ipackets, cps, a_rx.imissed))
        f:close()
        log("  appended to %s", RESULT_FILE)
    else
        log("  could not open %s", RESULT_FILE)
    end
end

if QUIT_WHEN_DONE then
    pktgen.quit()
end
