-- bench/pktgen/tcp_established.lua: 64-byte TCP ACKs on established lbd
-- flows, for Pktgen-DPDK: the established-flow (connection-table lookup)
-- test.
--
-- What it measures: how many packets per second lbd forwards (direct
-- routing) when every packet belongs to a connection it already tracks,
-- spread at random over FLOWS connections: the hardware counterpart of
-- `bench pipeline --workload established --flows 1000000` (bench/RESULTS.md).
-- Pktgen's port TX_PORT is cabled to lbd's client-facing port; lbd forwards
-- to the real server, whose address belongs to pktgen's port RX_PORT, so
-- pktgen counts on RX_PORT what lbd forwarded. Cabling and lbd
-- configuration: bench/pktgen/README.md.
--
-- Run (as root, on the pktgen machine; see the README for the cores):
--   pktgen -l 0-4 -n 4 -- -P -m "[1:2].0,[3:4].1" -f bench/pktgen/tcp_established.lua
--
-- Every parameter below can also be given in the environment as
-- LBDPG_<NAME>, e.g. LBDPG_FLOW_PORT_BITS=8 LBDPG_SECONDS=60.
--
-- The approach. Pktgen does not speak TCP, and it need not: lbd is a
-- director, not an endpoint. For direct routing it tracks a connection from
-- the client's side only (IPVS's "input-only" state table): a SYN of an
-- unknown flow creates the entry (SYN_RECV) and schedules a real server; a
-- later ACK of that flow moves it to ESTABLISHED and is forwarded to the
-- same server; an ACK of a flow it never saw a SYN for is dropped
-- (drop_tcp_no_conn), as IPVS does. It never sees the server's SYN-ACK (the
-- server answers the client directly). So the script runs two phases over
-- one bounded set of flows:
--   1. SYN phase: SYNs over the flow set, SYN_PASSES times as many SYNs as
--      there are flows, at SYN_RATE_PERCENT, so that every flow gets at
--      least one SYN (below); afterwards lbd holds FLOWS connections;
--   2. ACK phase: ACK segments (flag ACK only) over the same flows at
--      RATE_PERCENT for WARMUP_SECONDS + SECONDS: the measurement. Each ACK
--      is a connection-table hit; the first one of a flow makes it
--      ESTABLISHED (lbd's ActiveConn), the rest refresh its timeout.
--
-- Why random bits, and why SYN_PASSES. Pktgen's range mode builds its
-- packets once, one per buffer of the transmit pool, when sending starts,
-- and only about a thousand of those buffers actually circulate per
-- transmit queue (Pktgen-DPDK issues #301, #322, #349): range mode alone
-- cannot send a million distinct flows, and the two phases would not send
-- the same ones. So the flow set is built from two parts:
--   * the source address: a range of SRC_IP_COUNT consecutive addresses,
--     cycled by range mode. Any run of consecutive packet buffers longer
--     than SRC_IP_COUNT holds every address, so keep SRC_IP_COUNT well below
--     a thousand (default 256): then both phases send every address;
--   * the source port: SPORT_BASE with its low FLOW_PORT_BITS bits drawn at
--     random for every packet as it is sent (pktgen's per-packet "rnd").
-- FLOWS = SRC_IP_COUNT * 2^FLOW_PORT_BITS (default 256 * 4096 = 1,048,576).
-- The SYN phase draws ports at random, so a flow gets on average SYN_PASSES
-- SYNs, and none with probability about e^-SYN_PASSES (20 passes: 2e-9,
-- i.e. no flow of a million missed, in expectation 0.002). The ACK phase
-- draws the same way, so its packets fall uniformly at random over the
-- whole table, like the pipeline benchmark's shuffled trace.
--
-- Check it worked, on lbd's side (README): after the SYN phase the number
-- of connections (sum of lbd_connections, or lbctl list: InActConn) is
-- FLOWS minus any drop_conn_table_full; during the ACK phase
-- drop_tcp_no_conn stays at 0 and ActiveConn climbs to FLOWS. lbd's table
-- needs room: conn_table.capacity at least 2 * FLOWS (it is split between
-- the workers, and RSS does not split flows exactly evenly). And the SYN
-- phase plus the pause before the ACKs must stay under timeouts.tcp_syn_recv
-- (60 s by default), or the entries expire before their first ACK.
--
-- Bounded: the SYN phase stops after SYN_PHASE_MAX_SECONDS at most; the ACK
-- phase after WARMUP_SECONDS + SECONDS.
--
-- What to read off at the end (printed, and appended to RESULT_FILE):
--   * tx Mpps on TX_PORT: the ACK rate offered;
--   * rx Mpps on RX_PORT: the ACKs lbd forwarded;
--   * on the lbd machine over the ACK phase (README): lbd_packets_total
--     {outcome="forwarded_dr"}, drops by reason (tcp_no_conn must be 0),
--     lbd_port_missed_total, busy ratio, burst latency.

---------------------------------------------------------------- parameters

-- Shared helpers (lbd_pktgen.lua, next to this script).
local LIB_DIR = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(LIB_DIR .. "lbd_pktgen.lua")
local param, log, ip_to_int, int_to_ip, cli, set_range_tcp_flags, low_bits_mask, counters, diff, wait, mpps = lib.param, lib.log, lib.ip_to_int, lib.int_to_ip, lib.cli, lib.set_range_tcp_flags, lib.low_bits_mask, lib.counters, lib.diff, lib.wait, lib.mpps

-- Pktgen port numbers: TX_PORT faces lbd's client-facing port; RX_PORT
-- plays the real server.
local TX_PORT = param("TX_PORT", 0)
local RX_PORT = param("RX_PORT", 1)

-- Destination MAC of every packet: it MUST be the MAC of lbd's
-- client-facing port (`lbctl status` lists the ports' MACs). The
-- placeholder makes the script stop until it is set.
local DIRECTOR_MAC = param("DIRECTOR_MAC", "00:00:00:00:00:00")

-- The real server's address, given to RX_PORT so that pktgen answers lbd's
-- ARP requests for it (the real server of lbd's TCP service).
local RS_IP = param("RS_IP", "198.19.0.10/24")

-- The virtual service (a TCP service in lbd's configuration).
local VIP = param("VIP", "198.18.0.100")
local VPORT = param("VPORT", 80)

-- Client source addresses: SRC_IP_COUNT consecutive addresses from
-- SRC_IP_MIN (keep it well under a thousand: see the top of the file).
local SRC_IP_MIN = param("SRC_IP_MIN", "198.18.1.0")
local SRC_IP_COUNT = param("SRC_IP_COUNT", 256)

-- Client source ports: SPORT_BASE (its low FLOW_PORT_BITS bits must be 0)
-- plus FLOW_PORT_BITS random bits (0 to 16; 0: one port per address, so
-- FLOWS = SRC_IP_COUNT).
local SPORT_BASE = param("SPORT_BASE", 32768)
local FLOW_PORT_BITS = param("FLOW_PORT_BITS", 12)

-- SYN phase: SYNs sent = SYN_PASSES * FLOWS, at SYN_RATE_PERCENT of line
-- rate (10 % of 10GbE = 1.49 Mpps: 21 M SYNs in 14 s). Most of the first
-- FLOWS SYNs create connections, so keep the rate near what lbd's
-- new-connection test (tcp_syn.lua) showed it takes without loss: a SYN lost
-- there only costs one of the SYN_PASSES draws, but many lost leave flows
-- without a SYN.
local SYN_PASSES = param("SYN_PASSES", 20)
local SYN_RATE_PERCENT = param("SYN_RATE_PERCENT", 10)
-- Stop the SYN phase after this long even if not all SYNs were sent (keep
-- it under lbd's timeouts.tcp_syn_recv).
local SYN_PHASE_MAX_SECONDS = param("SYN_PHASE_MAX_SECONDS", 50)

-- ACK phase: offered load, percent of line rate (100 on 10GbE with 64-byte
-- frames = 14.88 Mpps).
local RATE_PERCENT = param("RATE_PERCENT", 100)

-- Frame size including the 4-byte FCS, as pktgen counts it.
local PKT_SIZE = param("PKT_SIZE", 64)

-- ACK phase: WARMUP_SECONDS (not measured) plus SECONDS (measured).
local WARMUP_SECONDS = param("WARMUP_SECONDS", 3)
local SECONDS = param("SECONDS", 30)

-- One line per run is appended here ("" for none).
local RESULT_FILE = param("RESULT_FILE", "/tmp/lbd-pktgen-results.txt")

-- Leave pktgen when done (false: stay at its prompt).
local QUIT_WHEN_DONE = param("QUIT_WHEN_DONE", false)

---------------------------------------------------------------- checks

local FLOWS = SRC_IP_COUNT * (1 << FLOW_PORT_BITS)
local SYN_COUNT = SYN_PASSES * FLOWS

assert(DIRECTOR_MAC ~= "00:00:00:00:00:00",
    "set DIRECTOR_MAC (or LBDPG_DIRECTOR_MAC) to the MAC of lbd's client-facing port")
assert(TX_PORT ~= RX_PORT, "TX_PORT and RX_PORT must differ")
assert(SRC_IP_COUNT >= 1, "SRC_IP_COUNT: at least 1")
assert(FLOW_PORT_BITS >= 0 and FLOW_PORT_BITS <= 16, "FLOW_PORT_BITS: 0 to 16")
assert(SPORT_BASE >= 1 and SPORT_BASE + (1 << FLOW_PORT_BITS) - 1 <= 65535,
    "SPORT_BASE + 2^FLOW_PORT_BITS - 1 must be a port number")
assert(SPORT_BASE % (1 << FLOW_PORT_BITS) == 0,
    "the low FLOW_PORT_BITS bits of SPORT_BASE must be 0")
assert(SYN_PASSES >= 1, "SYN_PASSES: at least 1")
assert(SYN_COUNT < 4294967296, "SYN_PASSES * FLOWS must be under 2^32 (pktgen's count)")
assert(SYN_RATE_PERCENT > 0 and SYN_RATE_PERCENT <= 100, "SYN_RATE_PERCENT: (0, 100]")
assert(RATE_PERCENT > 0 and RATE_PERCENT <= 100, "RATE_PERCENT: (0, 100]")
assert(SYN_PHASE_MAX_SECONDS >= 1 and SYN_PHASE_MAX_SECONDS <= 3600, "SYN_PHASE_MAX_SECONDS")
assert(SECONDS >= 1 and SECONDS <= 3600, "SECONDS: 1 to 3600")
assert(WARMUP_SECONDS >= 0 and WARMUP_SECONDS <= 600, "WARMUP_SECONDS: 0 to 600")

local src_min = ip_to_int(SRC_IP_MIN)
local src_max = src_min + SRC_IP_COUNT - 1
assert(src_max < 4294967296, "SRC_IP_MIN + SRC_IP_COUNT overflows")
local SRC_IP_MAX = int_to_ip(src_max)
local SPORT_MAX = SPORT_BASE + (1 << FLOW_PORT_BITS) - 1

if SRC_IP_COUNT > 1024 then
    log("warning: SRC_IP_COUNT %d: pktgen circulates only about a thousand packet buffers "
        .. "per transmit queue, so some addresses may never be sent and their flows never "
        .. "get a SYN (drop_tcp_no_conn in the ACK phase)", SRC_IP_COUNT)
end

local tx, rx = tostring(TX_PORT), tostring(RX_PORT)

---------------------------------------------------------------- set-up

pktgen.stop(tx)
pktgen.stop(rx)

-- The real-server side: RX_PORT takes the real server's address and answers
-- lbd's ARP requests ("process"); a gratuitous ARP teaches lbd its MAC at
-- once. Processing stays on: lbd asks again every neighbours.refresh s.
pktgen.set_ipaddr(rx, "src", RS_IP)
pktgen.process(rx, "on")
pktgen.send_arp(rx, "g")

-- The client side: TCP to one VIP:port from SRC_IP_COUNT addresses; the
-- range's source port is fixed at SPORT_BASE and its low bits randomised
-- per packet.
pktgen.set(tx, "size", PKT_SIZE)
pktgen.range.ip_proto(tx, "tcp")
pktgen.range.dst_mac(tx, "start", DIRECTOR_MAC)
pktgen.range.dst_ip(tx, "start", VIP)
pktgen.range.dst_ip(tx, "min", VIP)
pktgen.range.dst_ip(tx, "max", VIP)
pktgen.range.dst_ip(tx, "inc", "0.0.0.0")
pktgen.range.dst_port(tx, "start", VPORT)
pktgen.range.dst_port(tx, "min", VPORT)
pktgen.range.dst_port(tx, "max", VPORT)
pktgen.range.dst_port(tx, "inc", 0)
pktgen.range.src_ip(tx, "start", SRC_IP_MIN)
pktgen.range.src_ip(tx, "min", SRC_IP_MIN)
pktgen.range.src_ip(tx, "max", SRC_IP_MAX)
pktgen.range.src_ip(tx, "inc", SRC_IP_COUNT > 1 and "0.0.0.1" or "0.0.0.0")
pktgen.range.src_port(tx, "start", SPORT_BASE)
pktgen.range.src_port(tx, "min", SPORT_BASE)
pktgen.range.src_port(tx, "max", SPORT_BASE)
pktgen.range.src_port(tx, "inc", 0)
pktgen.range.pkt_size(tx, "start", PKT_SIZE)
pktgen.range.pkt_size(tx, "min", PKT_SIZE)
pktgen.range.pkt_size(tx, "max", PKT_SIZE)
pktgen.range.pkt_size(tx, "inc", 0)

-- Per-packet random bits: offset 34 is the TCP source port of an untagged
-- IPv4 frame without options. The source address is never randomised here
-- (that would break the IPv4 checksum on NICs without the offload). Random
-- bits switch the port to single-packet mode: range mode comes after.
pktgen.rnd(tx, 0, 34, FLOW_PORT_BITS > 0 and low_bits_mask(FLOW_PORT_BITS) or "off")
pktgen.rnd(tx, 1, 28, "off")
pktgen.set_range(tx, "on")

log("tcp_established: port %s -> MAC %s, %s:%d/tcp, %d flows (%s-%s x ports %d-%d), "
    .. "%d SYNs at %s%%, then ACKs at %s%% for %d+%d s",
    tx, DIRECTOR_MAC, VIP, VPORT, FLOWS, SRC_IP_MIN, SRC_IP_MAX, SPORT_BASE, SPORT_MAX,
    SYN_COUNT, tostring(SYN_RATE_PERCENT), tostring(RATE_PERCENT), WARMUP_SECONDS, SECONDS)

-- Let lbd resolve the real server before traffic starts.
pktgen.delay(2000)

---------------------------------------------------------------- phase 1: SYNs

set_range_tcp_flags(tx, "syn")
pktgen.set(tx, "rate", SYN_RATE_PERCENT)
pktgen.set(tx, "count", SYN_COUNT)

local s0_tx, s0_rx = counters(TX_PORT), counters(RX_PORT)
log("phase 1: %d SYNs over %d flows", SYN_COUNT, FLOWS)
pktgen.start(tx)
local syn_seconds = 0
while syn_seconds < SYN_PHASE_MAX_SECONDS do
    pktgen.delay(1000)
    syn_seconds = syn_seconds + 1
    local sending = pktgen.isSending(tx)
    if sending[TX_PORT] == "n" then
        break
    end
    if syn_seconds % 5 == 0 then
        log("  SYN phase: %d s", syn_seconds)
    end
end
pktgen.stop(tx)
pktgen.delay(2000)
local s1_tx, s1_rx = counters(TX_PORT), counters(RX_PORT)
local syn_tx, syn_rx = diff(s0_tx, s1_tx), diff(s0_rx, s1_rx)
log("phase 1 done in about %d s: %d SYNs sent, %d forwarded by lbd",
    syn_seconds, syn_tx.opackets, syn_rx.ipackets)
if syn_tx.opackets < SYN_COUNT then
    log("warning: only %d of %d SYNs sent within %d s: raise SYN_RATE_PERCENT or "
        .. "SYN_PHASE_MAX_SECONDS, or lower SYN_PASSES (flows may lack their SYN)",
        syn_tx.opackets, SYN_COUNT, SYN_PHASE_MAX_SECONDS)
end
log("  lbd should now hold %d connections (lbctl list: InActConn; sum of lbd_connections)", FLOWS)

---------------------------------------------------------------- phase 2: ACKs

set_range_tcp_flags(tx, "ack")
pktgen.set(tx, "rate", RATE_PERCENT)
pktgen.set(tx, "count", 0) -- 0: until stopped

log("phase 2: ACKs over the same %d flows", FLOWS)
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
log("  ACKs offered   (port %s tx): %8.3f Mpps", tx, tx_mpps)
log("  ACKs forwarded (port %s rx): %8.3f Mpps   <- what lbd forwarded", rx, rx_mpps)
log("  ACK phase: %d sent, %d received (%.4f %%), port %s imissed %d, rx_nombuf %d, ierrors %d",
    a_tx.opackets, a_rx.ipackets, 100 * ratio, rx, a_rx.imissed, a_rx.rx_nombuf, a_rx.ierrors)
if a_rx.imissed > 0 or a_rx.rx_nombuf > 0 then
    log("  note: pktgen's receive port missed packets: its RX side, not lbd, may be the limit")
end
log("  now read lbd's side: drop_tcp_no_conn must be 0; lbctl list --stats; /metrics (README)")

if RESULT_FILE ~= "" then
    local f = io.open(RESULT_FILE, "a")
    if f then
        f:write(string.format(
            "%s tcp_established vip=%s:%d flows=%d src=%s-%s sport=%d-%d syn_sent=%d "
                .. "syn_received=%d size=%d rate=%s%% seconds=%d tx_mpps=%.3f rx_mpps=%.3f "
                .. "sent=%d received=%d rx_imissed=%d\n",
            os.date("!%Y-%m-%dT%H:%M:%SZ"), VIP, VPORT, FLOWS, SRC_IP_MIN, SRC_IP_MAX,
            SPORT_BASE, SPORT_MAX, syn_tx.opackets, syn_rx.ipackets, PKT_SIZE,
            tostring(RATE_PERCENT), SECONDS, tx_mpps, rx_mpps, a_tx.opackets, a_rx.ipackets,
            a_rx.imissed))
        f:close()
        log("  appended to %s", RESULT_FILE)
    else
        log("  could not open %s", RESULT_FILE)
    end
end

if QUIT_WHEN_DONE then
    pktgen.quit()
end
