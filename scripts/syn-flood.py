#!/usr/bin/env python3
"""Send a paced flood of spoofed TCP SYNs at a VIP, for lab tests of lbd's
SYN-flood defence.

Frames go out at layer 2 (an AF_PACKET socket on --iface) to the director's
MAC, from random source addresses inside --spoof (default 198.19.0.0/16, part
of the lab's 198.18.0.0/15, never used by a lab host; for an IPv6 --vip
2001:db8:ff::/48, part of 2001:db8::/32) with random ports. The
flood is bounded twice: it stops after --count frames or --seconds seconds,
whichever comes first.  Prints one JSON line: {"sent": N, "seconds": S}.

Example (lab from scripts/lab):
  . /run/lbd-lab/lb/lab.env
  ip netns exec lb-client scripts/syn-flood.py --iface eth0 \\
      --dst-mac "$LAB_DIR_MAC" --vip "$LAB_VIP" --rate 341 --seconds 20
"""

import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
LAB_NET6 = ipaddress.ip_network("2001:db8::/32")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def syn_frame(dst_mac, src_mac, src, dst, sport, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16),
                     0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def syn_frame6(dst_mac, src_mac, src, dst, sport, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src, dst)
    return dst_mac + src_mac + b"\x86\xdd" + ip + tcp


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst-mac", required=True, help="the director's MAC")
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--spoof",
                    help="network the spoofed sources come from (inside the lab's range; "
                         "default 198.19.0.0/16, or 2001:db8:ff::/48 for an IPv6 --vip)")
    ap.add_argument("--rate", type=float, required=True, help="SYNs per second")
    ap.add_argument("--seconds", type=float, required=True, help="stop after this long")
    ap.add_argument("--count", type=int, default=10_000_000, help="stop after this many")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    vip = ipaddress.ip_address(a.vip)
    v6 = vip.version == 6
    lab = LAB_NET6 if v6 else LAB_NET
    spoof = ipaddress.ip_network(a.spoof or ("2001:db8:ff::/48" if v6 else "198.19.0.0/16"))
    if vip not in lab or spoof.version != vip.version or not spoof.subnet_of(lab):
        sys.exit("syn-flood: --vip and --spoof must lie in 198.18.0.0/15 or 2001:db8::/32 "
                 "(the lab's ranges), both of one family")
    if a.seconds <= 0 or a.seconds > 600 or a.rate <= 0:
        sys.exit("syn-flood: --seconds must be in (0, 600] and --rate positive")
    random.seed(a.seed)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    src_mac = s.getsockname()[4][:6]
    dst_mac = mac_bytes(a.dst_mac)
    dst = vip.packed
    base, size = int(spoof.network_address), spoof.num_addresses
    start = time.monotonic()
    sent = 0
    while sent < a.count:
        elapsed = time.monotonic() - start
        if elapsed >= a.seconds:
            break
        due = min(a.count, int(elapsed * a.rate) + 1)
        while sent < due:
            addr = base + random.randrange(1, size - 1)
            build = syn_frame6 if v6 else syn_frame
            src = addr.to_bytes(16 if v6 else 4, "big")
            s.send(build(dst_mac, src_mac, src, dst, random.randrange(1024, 65536),
                         a.port, random.getrandbits(32)))
            sent += 1
        time.sleep(0.005)
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}), flush=True)


if __name__ == "__main__":
    main()
