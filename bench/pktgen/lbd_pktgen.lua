-- lbd_pktgen.lua: helpers shared by the lbd Pktgen-DPDK scripts in this
-- directory (parameters from the environment, pktgen command files, port
-- counters, timing). Loaded by each script with dofile; returns a table.

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

-- "a.b.c.d" -> integer.
local function ip_to_int(s)
    local a, b, c, d = string.match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)")
    assert(a, "not an IPv4 address: " .. tostring(s))
    return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

-- integer -> "a.b.c.d".
local function int_to_ip(n)
    return string.format("%d.%d.%d.%d", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

-- Run pktgen command-line commands (there is no Lua call for them): write
-- them to a temporary command file and load it. A command pktgen does not
-- know is reported on its console and skipped.
local function cli(lines)
    local base = os.tmpname()
    local path = base .. ".pkt"
    local f = assert(io.open(path, "w"))
    for _, l in ipairs(lines) do
        f:write(l, "\n")
    end
    f:close()
    local ok, err = pcall(pktgen.load, path)
    os.remove(path)
    os.remove(base)
    if not ok then
        log("warning: pktgen.load(%s) failed: %s", path, tostring(err))
    end
end

-- Set the TCP flags of a port's range packets to exactly `flag` ("syn",
-- "ack"), in the syntax of pktgen >= 24.10.x and in the older one.
local function set_range_tcp_flags(port, flag)
    cli({
        "range " .. port .. " tcp flags " .. flag,
        "range " .. port .. " tcp flag clr all",
        "range " .. port .. " tcp flag set " .. flag,
    })
end

-- A pktgen "rnd" mask for a 16-bit field: keep the high bits, random low
-- `bits` bits.
local function low_bits_mask(bits)
    return string.rep(".", 16 - bits) .. string.rep("X", bits)
end

-- A port's cumulative NIC counters. pktgen.portStats changed shape: from
-- 26.02 it takes one argument and nests the counters under `curr`; before,
-- it takes (portlist, "port") and returns them flat. Pktgen refreshes them
-- about once a second, so a difference of two readings is exact to about
-- one second of traffic.
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

M.param = param
M.log = log
M.ip_to_int = ip_to_int
M.int_to_ip = int_to_ip
M.cli = cli
M.set_range_tcp_flags = set_range_tcp_flags
M.low_bits_mask = low_bits_mask
M.counters = counters
M.diff = diff
M.wait = wait
M.mpps = mpps

return M
