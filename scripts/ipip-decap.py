#!/usr/bin/env python3
"""User-space IPIP decapsulator for a lab real server (tunnel mode).

The lab kernel has no `ipip` module, so a real server cannot decapsulate
IP-in-IP itself. This program does it in user space, inside the real
server's network namespace:

  * a raw socket receives every IPv4 packet of IP protocol 4 addressed to
    this host (outer header included);
  * a TUN device (default `ipip0`, IFF_TUN | IFF_NO_PI) is created and
    brought up;
  * each outer packet's payload, the client's untouched IP packet, is
    written to the TUN device, so the kernel receives it as if it had
    arrived on `ipip0`: it is for the VIP (on `lo`), so it is delivered
    locally, and the server answers from the VIP directly to the client;
  * rp_filter is set to 0 for `all` and the TUN device: the client's
    address is routed through eth0, not ipip0, and a strict reverse-path
    filter would drop the inner packets.

With --ipv6, IPv6-in-IPv6 too (the lab kernel has no ip6_tunnel module
either): a raw IPv6 socket for next header 41 receives the payload after
the outer IPv6 header (the kernel strips it; IPV6_PKTINFO gives its
destination), the client's IPv6 packet, which goes into the same TUN
device. Handing next header 41 to a raw socket also keeps the kernel from
answering it with a "parameter problem".

Only packets whose outer and inner addresses are all inside 198.18.0.0/15
(IPv4) or 2001:db8::/32 (IPv6), the lab's ranges, are decapsulated;
anything else is counted and ignored.

The count file (--count-file) is JSON, rewritten atomically every
--interval seconds and on exit (SIGTERM, SIGINT, --max-seconds):
  {"packets": N, "bytes": B, "ignored": I,
   "outer": {"198.18.0.2>198.18.0.11": N, ...}}
where "outer" counts decapsulated packets by outer source>destination.

A real Linux server would instead use the kernel's decapsulation:
  modprobe ipip; ip link set tunl0 up   (plus rp_filter=0 on tunl0 and all)
  modprobe ip6_tunnel; ip link set ip6tnl0 up  (IPv6-in-IPv6)
"""

import argparse
import fcntl
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
LAB_NET = ipaddress.ip_network("198.18.0.0/15")
LAB_NET6 = ipaddress.ip_network("2001:db8::/32")
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
# struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
PKTINFO6 = struct.Struct("=16si")


def in_lab(raw4):
    return ipaddress.IPv4Address(raw4) in LAB_NET


def in_lab6(raw16):
    return ipaddress.IPv6Address(raw16) in LAB_NET6


def decapsulate6(inner, outer_src, outer_dst):
    """The inner IPv6 packet of an IPv6-in-IPv6 packet whose outer header
    the kernel has removed, or None when it is not a well-formed IPv6 packet
    with every address inside the lab range."""
    if len(inner) < 40 or inner[0] >> 4 != 6:
        return None
    total = 40 + struct.unpack("!H", inner[4:6])[0]
    if total > len(inner):
        return None
    if not all(in_lab6(a) for a in (outer_src, outer_dst, inner[8:24], inner[24:40])):
        return None
    return inner[:total]


def set_sysctl(path, value):
    with open(path, "w") as f:
        f.write(value)


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def link_up(name):
    """Bring the interface up (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH", name.encode(), 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, ifr)[:18])[1]
        ifr = struct.pack("16sH", name.encode(), flags | iff_up)
        fcntl.ioctl(s, siocsifflags, ifr)
    finally:
        s.close()


class Counts:
    def __init__(self, path):
        self.path = path
        self.packets = 0
        self.bytes = 0
        self.ignored = 0
        self.outer = {}

    def write(self):
        if not self.path:
            return
        data = {
            "packets": self.packets,
            "bytes": self.bytes,
            "ignored": self.ignored,
            "outer": self.outer,
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)


def decapsulate(pkt):
    """The inner IP packet of an IPIP packet, (outer src, outer dst), or
    None when it is not a well-formed IPIP packet inside the lab range."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    total = struct.unpack("!H", pkt[2:4])[0]
    if ihl < 20 or total < ihl or total > len(pkt) or pkt[9] != IPPROTO_IPIP:
        return None
    src, dst = pkt[12:16], pkt[16:20]
    inner = pkt[ihl:total]
    if len(inner) < 20 or inner[0] >> 4 != 4:
        return None
    inner_total = struct.unpack("!H", inner[2:4])[0]
    if inner_total < 20 or inner_total > len(inner):
        return None
    if not all(in_lab(a) for a in (src, dst, inner[12:16], inner[16:20])):
        return None
    return inner[:inner_total], (socket.inet_ntoa(src), socket.inet_ntoa(dst))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tun", default="ipip0", help="TUN device name (default ipip0)")
    ap.add_argument("--ipv6", action="store_true",
                    help="also decapsulate IPv6-in-IPv6 (next header 41)")
    ap.add_argument("--pid-file", help="write our pid here once ready")
    ap.add_argument("--count-file", help="JSON counts, rewritten periodically and on exit")
    ap.add_argument("--interval", type=float, default=0.2,
                    help="seconds between count-file writes (default 0.2)")
    ap.add_argument("--max-seconds", type=float, default=3600,
                    help="exit after this long (default 3600)")
    args = ap.parse_args()
    if not 0 < args.max_seconds <= 86400:
        ap.error("--max-seconds must be in (0, 86400]")
    if not 0.01 <= args.interval <= 60:
        ap.error("--interval must be in [0.01, 60]")
    if len(args.tun.encode()) > 15:
        ap.error("--tun: interface names have at most 15 bytes")

    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    raw6 = None
    if args.ipv6:
        raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6)
        raw6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    tun = open_tun(args.tun)
    link_up(args.tun)
    set_sysctl("/proc/sys/net/ipv4/conf/all/rp_filter", "0")
    set_sysctl("/proc/sys/net/ipv4/conf/%s/rp_filter" % args.tun, "0")

    counts = Counts(args.count_file)
    counts.write()
    stopping = []

    def stop(_signum, _frame):
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.pid_file:
        tmp = args.pid_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pid_file)

    deadline = time.monotonic() + args.max_seconds
    next_write = time.monotonic() + args.interval
    dirty = False
    try:
        while not stopping:
            now = time.monotonic()
            if now >= deadline:
                break
            timeout = max(0.0, min(next_write, deadline) - now)
            try:
                ready, _, _ = select.select([raw] + ([raw6] if raw6 else []), [], [], timeout)
            except InterruptedError:
                continue
            if raw6 is not None and raw6 in ready:
                inner, anc, _flags, peer = raw6.recvmsg(65535, socket.CMSG_SPACE(PKTINFO6.size))
                outer_dst = None
                for level, kind, cdata in anc:
                    if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO \
                            and len(cdata) >= PKTINFO6.size:
                        outer_dst = PKTINFO6.unpack_from(cdata)[0]
                outer_src = socket.inet_pton(socket.AF_INET6, peer[0].split("%")[0])
                got = None
                if outer_dst is not None:
                    got = decapsulate6(inner, outer_src, outer_dst)
                if got is None:
                    counts.ignored += 1
                else:
                    os.write(tun, got)
                    counts.packets += 1
                    counts.bytes += len(got)
                    pair = "%s>%s" % (socket.inet_ntop(socket.AF_INET6, outer_src),
                                      socket.inet_ntop(socket.AF_INET6, outer_dst))
                    counts.outer[pair] = counts.outer.get(pair, 0) + 1
                dirty = True
            if raw in ready:
                pkt = raw.recv(65535)
                got = decapsulate(pkt)
                if got is None:
                    counts.ignored += 1
                else:
                    inner, (src, dst) = got
                    os.write(tun, inner)
                    counts.packets += 1
                    counts.bytes += len(inner)
                    pair = "%s>%s" % (src, dst)
                    counts.outer[pair] = counts.outer.get(pair, 0) + 1
                dirty = True
            if time.monotonic() >= next_write:
                if dirty:
                    counts.write()
                    dirty = False
                next_write = time.monotonic() + args.interval
    finally:
        counts.write()
        os.close(tun)
        raw.close()
        if raw6 is not None:
            raw6.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
