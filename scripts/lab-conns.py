#!/usr/bin/env python3
"""Many HTTP clients at once, for the ECMP lab (scripts/lab up --ecmp).

Commands on stdin, one per line; each answer is one JSON line on stdout:

  open N   open N keep-alive connections to VIP:PORT, connection i from
           source address SOURCES[i % len(SOURCES)], and send one GET on
           each: {"answers": [name or null, ...]}
  ask      one GET on every open connection (at once):
           {"answers": [name or null, ...]}  (null: no answer in time or the
           connection failed; a failed connection stays failed)
  new N    N fresh connections (one GET each, then closed), from the
           sources in turn: {"answers": [...]}
  quit

A name is the real server's X-Real-Server header (lab-httpd.py). Requests
wait up to --timeout seconds, so TCP retransmissions across a director
change are part of the answer.
"""

import argparse
import concurrent.futures
import ipaddress
import json
import socket
import sys


def parse_sources(text):
    first, last = text.split("-")
    a, b = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
    return [str(ipaddress.IPv4Address(x)) for x in range(a, b + 1)]


class Conn:
    def __init__(self, vip, port, source, timeout):
        self.sock = socket.create_connection((vip, port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.vip = vip
        self.timeout = timeout

    def get(self):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % self.vip.encode())
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        name, length = None, 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"x-real-server":
                name = v.strip().decode()
            elif k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(self.buf) < length:
            self.fill()
        self.buf = self.buf[length:]
        return name

    def fill(self):
        data = self.sock.recv(4096)
        if not data:
            raise ConnectionError("closed by the server")
        self.buf += data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--sources", required=True, help="FIRST-LAST source addresses")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--parallel", type=int, default=32)
    args = ap.parse_args()
    sources = parse_sources(args.sources)
    conns = []
    next_source = [0]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel)

    def source():
        s = sources[next_source[0] % len(sources)]
        next_source[0] += 1
        return s

    def open_one(src):
        try:
            c = Conn(args.vip, args.port, src, args.timeout)
            return c, c.get()
        except OSError:
            return None, None

    def ask_one(c):
        if c is None:
            return None
        try:
            return c.get()
        except (OSError, ValueError):
            return None

    def fresh(src):
        c, name = open_one(src)
        if c is not None:
            c.sock.close()
        return name

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "open":
            srcs = [source() for _ in range(int(words[1]))]
            opened = list(pool.map(open_one, srcs))
            conns.extend(c for c, _ in opened)
            answers = [name for _, name in opened]
        elif words[0] == "ask":
            answers = list(pool.map(ask_one, conns))
            for i, a in enumerate(answers):
                if a is None and conns[i] is not None:
                    conns[i].sock.close()
                    conns[i] = None
        elif words[0] == "new":
            answers = list(pool.map(fresh, [source() for _ in range(int(words[1]))]))
        elif words[0] == "quit":
            break
        else:
            answers = []
        print(json.dumps({"answers": answers}), flush=True)


if __name__ == "__main__":
    main()
