-- bench/pktgen/tcp_syn.lua: 64-byte TCP SYNs to an lbd VIP, for Pktgen-DPDK:
-- the new-connection rate test.
--
-- What it measures: how many new connections per second lbd accepts,
-- schedules and forwards (direct routing). Every SYN of a flow lbd does not
-- know creates a connection-table entry (state SYN_RECV) after the scheduler
-- picked a real server; that is lbd's most expensive packet. Pktgen's port
-- TX_PORT is cabled to lbd's client-facing port; lbd forwards each SYN to
-- the real server, whose address belongs to pktgen's port RX_PORT, so
-- pktgen counts on RX_PORT what lbd forwarded. Cabling and the matching lbd
-- configuration (a short tcp_syn_recv timeout and a large table, or the
-- table fills and SYNs are dropped as conn_table_full):
-- bench/pktgen/README.md.
--
-- Run (as root, on the pktgen machine; see the README for the cores):
--   pktgen -l 0-4 -n 4 -- -P -m "[1:2].0,[3:4].1" -f bench/pktgen/tcp_syn.lua
--
-- Every parameter below can also be given in the environment as
-- LBDPG_<NAME>, e.g. LBDPG_RATE_PERCENT=20 LBDPG_SECONDS=10.
--
-- How the flows are made. Pktgen's range mode builds its packets once, one
-- per buffer of the transmit pool, when sending starts, and then re-sends
-- whichever buffers come back: only about a thousand distinct packets per
-- transmit queue go on the wire, whatever the ranges say (Pktgen-DPDK
-- issues #301, #322, #349). A SYN that lbd has seen before only refreshes
-- its entry, so range mode alone would measure lookups, not new
-- connections. Hence pktgen's per-packet random bits ("rnd"): the low
-- SPORT_RANDOM_BITS bits of the TCP source port are drawn at random for
-- every packet as it is sent; the source-address range gives the address
-- variety (~1000 addresses per transmit queue). That is ~65 million client
-- (address, port) pairs per transmit queue: almost every SYN is new for the
-- first seconds, then repeats grow (a repeat lands on a SYN_RECV entry and
-- is forwarded as a hit). So keep SECONDS short, and take the connection
-- rate from lbd's counter lbd_connections_created_total (or lbctl list
-- --rate, CPS), not from pktgen's packet rate.
--
-- The TCP flags of range packets cannot be set through pktgen's Lua API:
-- the script feeds pktgen's command line a small command file instead, in
-- both spellings pktgen has used ("range 0 tcp flags syn" from 24.10.x,
-- "range 0 tcp flag set syn" before); the one your pktgen does not know
-- prints a harmless "Range command error". Check the range page: tcp.flags
-- must read "....S." and lbd must count connections, not drop_tcp_no_conn.
--
-- Bounded: pktgen stops after WARMUP_SECONDS + SECONDS.
--
-- What to read off at the end (printed, and appended to RESULT_FILE):
--   * tx Mpps on TX_PORT: the SYN rate offered;
--   * rx Mpps on RX_PORT: the SYNs lbd forwarded;
--   * on the lbd machine, over the same interval (README): new connections
--     per second (lbd_connections_created_total, lbctl list --rate), drops
--     by reason (conn_table_full means the table is too small for the rate
--     times tcp_syn_recv), lbd_port_missed_total (the workers could not keep
--     up), busy ratio and burst latency.

---------------------------------------------------------------- parameters

-- Shared helpers (lbd_pktgen.lua, next to this script).
local LIB_DIR = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(LIB_DIR .. "lbd_pktgen.lua")
local param, log, ip_to_int, cli, set_range_tcp_flags, low_bits_mask, counters, diff, wait, mpps = lib.param, lib.log, lib.ip_to_int, lib.cli, lib.set_range_tcp_flags, lib.low_bits_mask, lib.counters, lib.diff, lib.wait, lib.mpps

-- Pktgen port numbers: TX_PORT faces lbd's client-facing port; RX_PORT
-- plays the real server (cabled to lbd's real-server-facing port, or the
-- same segment as lbd's only port).
local TX_PORT = param("TX_PORT", 0)
local RX_PORT = param("RX_PORT", 1)

-- Destination MAC of every packet: it MUST be the MAC of lbd's
-- client-facing port (`lbctl status` lists the ports' MACs; lbd also logs
-- them at start-up). lbd drops IPv4 frames not addressed to its port
-- (drop reason not_our_mac), and the NIC may not even deliver them. The
-- placeholder makes the script stop until it is set.
local DIRECTOR_MAC = param("DIRECTOR_MAC", "00:00:00:00:00:00")

-- The real server's address, given to RX_PORT so that pktgen answers lbd's
-- ARP requests for it: it must be the real server in lbd's configuration,
-- on the subnet of lbd's real-server-facing port.
local RS_IP = param("RS_IP", "198.19.0.10/24")

-- The virtual service (a TCP service in lbd's configuration).
local VIP = param("VIP", "198.18.0.100")
local VPORT = param("VPORT", 80)

-- Client source addresses, cycled by pktgen's range mode. They must not be
-- 0/8, 127/8, 224/4 and above, nor one of lbd's own addresses (lbd drops
-- those as bad sources). 198.18.0.0/15 is the benchmarking range (RFC 2544).
local SRC_IP_MIN = param("SRC_IP_MIN", "198.18.1.0")
local SRC_IP_MAX = param("SRC_IP_MAX", "198.18.255.255")

-- Client source ports, cycled by the range; with SPORT_RANDOM_BITS > 0 the
-- low bits are then replaced by random ones per packet.
local SPORT_MIN = param("SPORT_MIN", 1024)
local SPORT_MAX = param("SPORT_MAX", 65535)

-- Random low bits of the source port, drawn per packet (0 to 16). 16: every
-- SYN a new connection as far as possible (see the top of the file); 0: pure
-- range mode (a small set of flows, SYNs repeated: not a new-connection
-- test).
local SPORT_RANDOM_BITS = param("SPORT_RANDOM_BITS", 16)

-- Random low bits of the source address, drawn per packet (0 to 16). Only
-- if the NIC computes IPv4 header checksums on transmit (pktgen uses the
-- offload when the NIC has it; from pktgen 25.05 it then leaves the field
-- to the NIC): randomising the address after pktgen built the header
-- otherwise breaks the checksum and lbd drops every packet
-- (drop_ipv4_bad_checksum in its counters: check them). With 16 bits the
-- addresses span the /16 of SRC_IP_MIN, which may include lbd's own
-- address and the VIP (a negligible share, dropped and counted).
local SRC_IP_RANDOM_BITS = param("SRC_IP_RANDOM_BITS", 0)

-- Offered load, percent of the TX port's line rate (100 on 10GbE with 64-byte
-- frames = 14.88 Mpps). 100 finds the most lbd can take; lower rates (e.g.
-- 5, 10, 20 on 10GbE: 0.74, 1.49, 2.98 Mpps) find the rate it forwards
-- without loss.
local RATE_PERCENT = param("RATE_PERCENT", 100)

-- Frame size including the 4-byte FCS, as pktgen counts it.
local PKT_SIZE = param("PKT_SIZE", 64)

-- Sending lasts WARMUP_SECONDS (not measured: lbd's tables fill, caches
-- warm) plus SECONDS (measured).
local WARMUP_SECONDS = param("WARMUP_SECONDS", 3)
local SECONDS = param("SECONDS", 10)

-- One line per run is appended here ("" for none).
local RESULT_FILE = param("RESULT_FILE", "/tmp/lbd-pktgen-results.txt")

-- Leave pktgen when done (false: stay at its prompt to look at the pages).
local QUIT_WHEN_DONE = param("QUIT_WHEN_DONE", false)

---------------------------------------------------------------- checks

assert(DIRECTOR_MAC ~= "00:00:00:00:00:00",
    "set DIRECTOR_MAC (or LBDPG_DIRECTOR_MAC) to the MAC of lbd's client-facing port")
assert(TX_PORT ~= RX_PORT, "TX_PORT and RX_PORT must differ")
assert(SPORT_RANDOM_BITS >= 0 and SPORT_RANDOM_BITS <= 16, "SPORT_RANDOM_BITS: 0 to 16")
assert(SRC_IP_RANDOM_BITS >= 0 and SRC_IP_RANDOM_BITS <= 16, "SRC_IP_RANDOM_BITS: 0 to 16")
assert(ip_to_int(SRC_IP_MIN) <= ip_to_int(SRC_IP_MAX), "SRC_IP_MIN > SRC_IP_MAX")
assert(SPORT_MIN >= 1 and SPORT_MIN <= SPORT_MAX and SPORT_MAX <= 65535, "bad source port range")
assert(SECONDS >= 1 and SECONDS <= 3600, "SECONDS: 1 to 3600")
assert(WARMUP_SECONDS >= 0 and WARMUP_SECONDS <= 600, "WARMUP_SECONDS: 0 to 600")
assert(RATE_PERCENT > 0 and RATE_PERCENT <= 100, "RATE_PERCENT: more than 0, at most 100")

local tx, rx = tostring(TX_PORT), tostring(RX_PORT)

---------------------------------------------------------------- set-up

pktgen.stop(tx)
pktgen.stop(rx)

-- The real-server side: RX_PORT takes the real server's address and answers
-- ARP for it ("process" makes pktgen look at what it receives); a
-- gratuitous ARP teaches lbd its MAC at once (lbd learns real servers' MACs
-- from any ARP they send, and keeps asking every neighbours.refresh
-- seconds, so processing stays on during the run).
pktgen.set_ipaddr(rx, "src", RS_IP)
pktgen.process(rx, "on")
pktgen.send_arp(rx, "g")

-- The client side: TCP SYNs, one VIP:port, ranges of source addresses and
-- ports.
pktgen.set(tx, "size", PKT_SIZE)
pktgen.range.ip_proto(tx, "tcp")
set_range_tcp_flags(tx, "syn")
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
pktgen.range.src_ip(tx, "inc", "0.0.0.1")
pktgen.range.src_port(tx, "start", SPORT_MIN)
pktgen.range.src_port(tx, "min", SPORT_MIN)
pktgen.range.src_port(tx, "max", SPORT_MAX)
pktgen.range.src_port(tx, "inc", 1)
pktgen.range.pkt_size(tx, "start", PKT_SIZE)
pktgen.range.pkt_size(tx, "min", PKT_SIZE)
pktgen.range.pkt_size(tx, "max", PKT_SIZE)
pktgen.range.pkt_size(tx, "inc", 0)

-- Per-packet random bits, at byte offsets of an untagged IPv4 frame without
-- options: 34 = TCP source port, 28 = low 16 bits of the source address.
-- ("off" clears a field left over from an earlier run.) Enabling random
-- bits switches the port to single-packet mode, so range mode is turned on
-- after them.
pktgen.rnd(tx, 0, 34, SPORT_RANDOM_BITS > 0 and low_bits_mask(SPORT_RANDOM_BITS) or "off")
pktgen.rnd(tx, 1, 28, SRC_IP_RANDOM_BITS > 0 and low_bits_mask(SRC_IP_RANDOM_BITS) or "off")
pktgen.set_range(tx, "on")

pktgen.set(tx, "rate", RATE_PERCENT)
pktgen.set(tx, "count", 0) -- 0: until stopped

log("tcp_syn: port %s -> MAC %s, %s:%d/tcp SYN, sources %s-%s ports %d-%d, "
    .. "%d random port bits, %d random address bits, %s%% of line rate, %d+%d s",
    tx, DIRECTOR_MAC, VIP, VPORT, SRC_IP_MIN, SRC_IP_MAX, SPORT_MIN, SPORT_MAX,
    SPORT_RANDOM_BITS, SRC_IP_RANDOM_BITS, tostring(RATE_PERCENT), WARMUP_SECONDS, SECONDS)

-- Let lbd resolve the real server before traffic starts.
pktgen.delay(2000)

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

---------------------------------------------------------------- results

local w_tx, w_rx = diff(m0_tx, m1_tx), diff(m0_rx, m1_rx)
local a_tx, a_rx = diff(t0_tx, t1_tx), diff(t0_rx, t1_rx)
local tx_mpps, rx_mpps = mpps(w_tx.opackets, SECONDS), mpps(w_rx.ipackets, SECONDS)
local ratio = a_tx.opackets > 0 and a_rx.ipackets / a_tx.opackets or 0

log("")
log("tcp_syn results (measured over %d s, after %d s of warm-up):", SECONDS, WARMUP_SECONDS)
log("  SYNs offered   (port %s tx): %8.3f Mpps", tx, tx_mpps)
log("  SYNs forwarded (port %s rx): %8.3f Mpps   <- what lbd forwarded", rx, rx_mpps)
log("  whole run: %d sent, %d received (%.4f %%), port %s imissed %d, rx_nombuf %d, ierrors %d",
    a_tx.opackets, a_rx.ipackets, 100 * ratio, rx, a_rx.imissed, a_rx.rx_nombuf, a_rx.ierrors)
if a_rx.imissed > 0 or a_rx.rx_nombuf > 0 then
    log("  note: pktgen's receive port missed packets: its RX side, not lbd, may be the limit")
end
log("  now read lbd's side: new connections/s = difference of lbd_connections_created_total")
log("  / %d s; drops by reason; lbctl list --stats (README)", SECONDS)

if RESULT_FILE ~= "" then
    local f = io.open(RESULT_FILE, "a")
    if f then
        f:write(string.format(
            "%s tcp_syn vip=%s:%d src=%s-%s sport=%d-%d rnd_sport_bits=%d rnd_src_bits=%d "
                .. "size=%d rate=%s%% seconds=%d tx_mpps=%.3f rx_mpps=%.3f "
                .. "sent=%d received=%d rx_imissed=%d\n",
            os.date("!%Y-%m-%dT%H:%M:%SZ"), VIP, VPORT, SRC_IP_MIN, SRC_IP_MAX, SPORT_MIN,
            SPORT_MAX, SPORT_RANDOM_BITS, SRC_IP_RANDOM_BITS, PKT_SIZE, tostring(RATE_PERCENT),
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
