-- lbd_pktgen.lua: helpers shared by the lbd Pktgen-DPDK scripts in this
-- directory (parameters from the environment, the pktgen version, sending
-- mode, ARP, port counters, timing). Loaded by each script with dofile;
-- returns a table.

local M = {}

local getenv = (os and os.getenv) or function() return nil end

-- A parameter: the default below, or LBDPG_<name> from the environment.
local function param(name, default)
    local v = getenv("LBDPG_" .. name)
    if v == nil or v == "" then
        return default
    end
    if type(default) == "number" then
        return assert(tonumber(v), "LBDPG_" .. name .. " is not a number: " .. v)
    elseif type(default) == "boolean" then
        return v == "1" or v == "true" or v == "yes"
    end
    return v
end


local function log(fmt, ...)
    io.write(string.format(fmt, ...), "\n")
    io.flush()
end

-- A port's cumulative NIC counters. pktgen.portStats changed shape: from
-- 26.02 it takes one argument and nests the counters under `curr`; before,
-- it takes (portlist, "port") and returns them flat. Pktgen copies them from
-- the NIC once a second from a timer of its command-line loop. Pktgen
-- 23.10.2 as released runs that loop's timers only between commands, not
-- while a -f script runs, so a script reads zeros throughout;
-- scripts/pktgen-build builds it with the timers on (they then also run
-- inside pktgen.delay). (Pktgen also needs a terminal, or it exits at
-- start-up: `script -qc`, README.)
-- check_counters_move below stops with this message. A difference of two
-- readings is exact to about one second of traffic.
local function counters(port)
    local pl = tostring(port)
    local ok, t = pcall(pktgen.portStats, pl)
    if not ok or type(t) ~= "table" or type(t[port]) ~= "table" then
        ok, t = pcall(pktgen.portStats, pl, "port")
    end
    if not ok or type(t) ~= "table" or type(t[port]) ~= "table" then
        error("cannot read pktgen.portStats for port " .. pl .. ": " .. tostring(t))
    end
    local s = t[port]
    if type(s.curr) == "table" then
        s = s.curr
    end
    return {
        ipackets = s.ipackets or 0,
        opackets = s.opackets or 0,
        imissed = s.imissed or 0,
        ierrors = s.ierrors or 0,
        oerrors = s.oerrors or 0,
        rx_nombuf = s.rx_nombuf or 0,
    }
end

local function diff(a, b)
    local d = {}
    for k, v in pairs(b) do
        d[k] = v - (a[k] or 0)
    end
    return d
end

-- Wait `seconds`, one second at a time, printing progress.
local function wait(seconds, what)
    for i = 1, seconds do
        pktgen.delay(1000)
        if i % 5 == 0 or i == seconds then
            log("  %s: %d/%d s", what, i, seconds)
        end
    end
end

local function mpps(packets, seconds)
    return packets / seconds / 1e6
end

-- The pktgen version (pktgen.info.Pktgen_Version). The scripts were run on
-- 23.10.2 built against DPDK 22.11 (README); other versions get a warning,
-- since pktgen's modes and Lua calls change between releases.
local function check_version()
    local v = (pktgen.info and pktgen.info.Pktgen_Version) or "unknown"
    if not string.match(v, "23%.10%.%d") then
        log("warning: pktgen %s: these scripts were checked on pktgen 23.10.2 only "
            .. "(bench/pktgen/README.md)", v)
    end
    return v
end

-- ARP packets a port has received so far (pktgen's own receive-path count,
-- live, unlike the NIC counters). nil if pktgen.pktStats is unavailable.
local function arp_received(port)
    local ok, t = pcall(pktgen.pktStats, tostring(port))
    if ok and type(t) == "table" and type(t[port]) == "table" then
        return t[port].arp_pkts
    end
    return nil
end

-- Make `port` answer lbd's ARP requests for the real server `rs_ip`
-- ("a.b.c.d/len") and wait until lbd has asked. Pktgen answers ARP
-- requests when processing is on, and sends each answer at once. Its
-- gratuitous ARP (send_arp "g") is no substitute, and is not sent: pktgen
-- 23.10 only queues it, and it leaves when a sending port stops, i.e.
-- after the run (counted in the run's packets). lbd asks
-- every second while a real server is unresolved, so within about a second
-- of the link coming up the answer is in. If lbd already knew the MAC (a
-- fixed memif mac=, as in a previous run), it does not ask until its next
-- refresh (neighbours.refresh s) and the wait times out, which is fine.
--
-- `set_address`: give the port rs_ip as its own address. Needed when the
-- port is only the real server; not when it also sends the clients'
-- packets (one-port rig), whose single-packet template holds the client
-- address: pktgen 23.10 answers a request for any address that is not one
-- of its sequence packets' (pktgen_find_matching_ipsrc falls back to the
-- single packet), which is how one port plays clients and real server.
-- Returns whether a request was seen.
local function serve_real_server(port, rs_ip, wait_seconds, set_address)
    local p = tostring(port)
    if set_address then
        pktgen.set_ipaddr(p, "src", rs_ip)
    end
    pktgen.process(p, "on")
    local before = arp_received(port)
    if before == nil then
        log("note: cannot read port %s's ARP count: waiting %d s for lbd to resolve %s",
            p, wait_seconds, rs_ip)
        pktgen.delay(wait_seconds * 1000)
        return false
    end
    for _ = 1, wait_seconds * 10 do
        pktgen.delay(100)
        if arp_received(port) > before then
            -- The answer leaves at once; give lbd's control loop a moment.
            pktgen.delay(500)
            log("real server %s: lbd asked for it (ARP) and port %s answered", rs_ip, p)
            return true
        end
    end
    log("note: lbd did not ask for %s within %d s: it already knows port %s's MAC, or "
        .. "the link is down. If lbd counts neigh_unresolved drops, check the link "
        .. "(lbctl status) and RS_IP", rs_ip, wait_seconds, p)
    return false
end

-- Stop with a clear message when pktgen's port counters do not move while
-- it sends (see counters above).
local function check_counters_move(port, before, after)
    if after.opackets == before.opackets and after.ipackets == before.ipackets then
        error("pktgen's counters of port " .. tostring(port) .. " did not move while "
            .. "sending: pktgen 23.10 updates them only from its command-line timers, "
            .. "which run during a script only in a build by scripts/pktgen-build")
    end
end

-- Put a port in exactly one sending mode. Pktgen 23.10 has exclusive modes
-- (single, range, sequence, random bits, PCAP, rate): turning one on turns
-- the others off, silently, so a script must choose one and set it last.
local function only_mode(port, mode)
    local p = tostring(port)
    pktgen.set_range(p, "off")
    pktgen.pcap(p, "off")
    if mode == "pcap" then
        pktgen.pcap(p, "on")
    elseif mode == "range" then
        pktgen.set_range(p, "on")
    end
end

-- Packets in a pcap file of equal-sized records (make-flows-pcap.py writes
-- 60-byte frames), from its size; nil if it cannot be read.
local function pcap_packets(path, frame_len)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local size = f:seek("end")
    f:close()
    local rec = 16 + frame_len
    if size < 24 or (size - 24) % rec ~= 0 then
        return nil
    end
    return (size - 24) // rec
end

M.param = param
M.log = log
M.counters = counters
M.diff = diff
M.wait = wait
M.mpps = mpps
M.check_version = check_version
M.arp_received = arp_received
M.serve_real_server = serve_real_server
M.check_counters_move = check_counters_move
M.only_mode = only_mode
M.pcap_packets = pcap_packets

return M
