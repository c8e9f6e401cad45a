#!/usr/bin/env python3
"""Tiny UDP echo server for the lbd lab real servers.

Each datagram is answered with "<name>:" followed by the datagram itself,
sent back to the sender's address and port.  The answer leaves from the
address the datagram was sent to (IP_PKTINFO), so a DR real server holding
the VIP on lo answers from the VIP, as a TCP server would; a NAT real
server answers from its own address. With --bind :: the socket is IPv6
only (IPV6_PKTINFO likewise), beside an IPv4 server on the same port.

Bounded: the server exits after --max-seconds (default one day), on SIGTERM
or SIGINT.  With --log-file, one line per datagram is appended:
    <peer address> <peer port> <local address> <length>
so tests can check which client address the server saw.
"""

import argparse
import os
import select
import signal
import socket
import struct
import sys
import time

# Linux <netinet/in.h>; Python's socket module does not export it everywhere.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
# struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr; }
PKTINFO = struct.Struct("=i4s4s")
# struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
PKTINFO6 = struct.Struct("=16si")
MAX_DATAGRAM = 65535
# At most this many datagrams handled per wakeup, so a flood cannot keep the
# loop from checking its deadline.
BATCH = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="prefix of every answer (then ':')")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--pid-file", help="write our pid here once the socket is bound")
    ap.add_argument("--log-file", help="append one line per datagram (peer address)")
    ap.add_argument("--max-seconds", type=float, default=86400.0,
                    help="exit after this long (default 86400)")
    args = ap.parse_args()
    if not 0 < args.max_seconds <= 30 * 86400:
        ap.error("--max-seconds must be in (0, 2592000]")

    prefix = (args.name + ":").encode()
    v6 = ":" in args.bind
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.bind((args.bind, args.port))
    sock.setblocking(False)

    log = open(args.log_file, "a", buffering=1) if args.log_file else None

    if args.pid_file:
        tmp = args.pid_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pid_file)

    stopping = []

    def stop(_signum, _frame):
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    deadline = time.monotonic() + args.max_seconds
    while not stopping:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([sock], [], [], min(left, 1.0))
        except InterruptedError:
            continue
        if not ready:
            continue
        for _ in range(BATCH):
            try:
                data, anc, _flags, peer = sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(PKTINFO6.size))
            except BlockingIOError:
                break
            local = None
            for level, kind, cdata in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO \
                        and len(cdata) >= PKTINFO.size:
                    _ifindex, _spec_dst, addr = PKTINFO.unpack_from(cdata)
                    local = addr
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO \
                        and len(cdata) >= PKTINFO6.size:
                    local, _ifindex = PKTINFO6.unpack_from(cdata)
            answer = prefix + data
            try:
                if local is not None and v6:
                    info = PKTINFO6.pack(local, 0)
                    sock.sendmsg([answer], [(socket.IPPROTO_IPV6, IPV6_PKTINFO, info)], 0, peer)
                elif local is not None:
                    # Answer from the address the datagram was sent to.
                    info = PKTINFO.pack(0, local, b"\0\0\0\0")
                    sock.sendmsg([answer], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, peer)
                else:
                    sock.sendto(answer, peer)
            except OSError as e:
                print("lab-udp-echo: send to %s:%d failed: %s" % (peer[0], peer[1], e),
                      file=sys.stderr)
            if log is not None:
                if local is None:
                    local_s = "-"
                else:
                    local_s = socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, local)
                log.write("%s %d %s %d\n" % (peer[0], peer[1], local_s, len(data)))
    sock.close()
    if log is not None:
        log.close()


if __name__ == "__main__":
    main()
