#!/usr/bin/env python3
"""User-space 802.1Q switch for the lbd lab's VLAN tests.

The lab kernel has neither VLAN devices (no 8021q) nor a VLAN-filtering
bridge, so a trunk cannot be built from kernel parts. This program is the
switch instead, inside one network namespace:

  * one trunk interface (--trunk IFACE), to the director's port, carrying
    tagged frames;
  * access interfaces (--access IFACE=VID, one VLAN each; VID 0 for the
    trunk's untagged native VLAN, which may have several interfaces).

A frame from an access interface of VLAN V goes out of the trunk tagged
with V (untagged for V = 0) and, for the native VLAN, to its other access
interfaces too (they share a segment). A frame from the trunk with tag V
goes out of VLAN V's access interfaces, untagged; an untagged one to the
native VLAN's. Nothing is learned: every frame goes to every port of its
VLAN (the hosts drop what is not for them). Frames with an unknown tag are
counted and dropped.

The kernel hands received VLAN tags to packet sockets out of band
(PACKET_AUXDATA), never inline; they are read from there. Frames this
program sends itself (outgoing) are skipped, so nothing loops.

The count file (--count-file, JSON, rewritten every --interval seconds
and on exit) counts frames by direction and VLAN:
  {"to_trunk": {"10": N, ...}, "from_trunk": {"10": N, ...}, "unknown_tag": N}
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
AUXDATA = struct.Struct("IIIHHHH")


def tag(frame, vid):
    """`frame` with an 802.1Q tag `vid` after the MAC addresses."""
    return frame[:12] + struct.pack("!HH", 0x8100, vid & 0x0FFF) + frame[12:]


def open_port(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((name, 0))
    s.setblocking(False)
    return s


def received(sock):
    """(frame, vid or None) of one received frame; None for frames we sent."""
    data, anc, _flags, addr = sock.recvmsg(65536, socket.CMSG_SPACE(AUXDATA.size))
    if addr[2] == PACKET_OUTGOING:
        return None
    vid = None
    for level, kind, body in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(body) >= AUXDATA.size:
            status, _len, _snap, _mac, _net, tci, _tpid = AUXDATA.unpack(body[: AUXDATA.size])
            if status & TP_STATUS_VLAN_VALID:
                vid = tci & 0x0FFF
    if vid is None and len(data) >= 18 and data[12:14] == b"\x81\x00":
        # Left inline (no offload on the way): read it from the frame.
        vid = struct.unpack("!H", data[14:16])[0] & 0x0FFF
        data = data[:12] + data[16:]
    return data, (vid or 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trunk", required=True, help="the tagged interface")
    ap.add_argument("--access", action="append", default=[], metavar="IFACE=VID",
                    help="an access interface and its VLAN (0: native, untagged)")
    ap.add_argument("--pid-file", help="write our pid here once ready")
    ap.add_argument("--count-file", help="JSON counts, rewritten periodically and on exit")
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--max-seconds", type=float, default=3600)
    args = ap.parse_args()
    if not 0 < args.max_seconds <= 86400:
        ap.error("--max-seconds must be in (0, 86400]")
    access = []
    for a in args.access:
        name, _, vid = a.partition("=")
        if not name or not vid.isdigit() or int(vid) > 4094:
            ap.error(f"--access {a}: write IFACE=VID with VID 0 to 4094")
        access.append((name, int(vid)))

    trunk = open_port(args.trunk)
    ports = [(open_port(name), vid) for name, vid in access]
    counts = {"to_trunk": {}, "from_trunk": {}, "unknown_tag": 0}

    def write_counts():
        if args.count_file:
            tmp = args.count_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(counts, f, sort_keys=True)
            os.replace(tmp, args.count_file)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")

    def bump(direction, vid):
        d = counts[direction]
        d[str(vid)] = d.get(str(vid), 0) + 1

    socks = [trunk] + [s for s, _ in ports]
    end = time.monotonic() + args.max_seconds
    next_write = 0.0
    while not stop and time.monotonic() < end:
        now = time.monotonic()
        if now >= next_write:
            write_counts()
            next_write = now + args.interval
        try:
            ready, _, _ = select.select(socks, [], [], args.interval)
        except InterruptedError:
            continue
        for s in ready:
            try:
                got = received(s)
            except (BlockingIOError, InterruptedError):
                continue
            if got is None:
                continue
            frame, vid = got
            if s is trunk:
                outs = [p for p, v in ports if v == vid]
                if not outs:
                    counts["unknown_tag"] += 1
                for p in outs:
                    p.send(frame)
                if outs:
                    bump("from_trunk", vid)
                continue
            vid = next(v for p, v in ports if p is s)
            trunk.send(tag(frame, vid) if vid else frame)
            bump("to_trunk", vid)
            if vid == 0:
                for p, v in ports:
                    if v == 0 and p is not s:
                        p.send(frame)
    write_counts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
