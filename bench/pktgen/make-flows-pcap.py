#!/usr/bin/env python3
"""Write the pcap files the lbd Pktgen-DPDK scripts replay (pktgen -s).

Pktgen 23.10 cannot give a large set of distinct flows with valid IPv4
checksums from its own packet modes (bench/pktgen/README.md, "How the flows
are made"). Its PCAP mode can: it loads every packet of the file into a
buffer of its own at start-up and sends them in file order, round after
round. This script writes such a file, for FLOWS = ADDRS x PORTS flows:
source addresses SRC_IP, SRC_IP + 1, ... (ADDRS of them) x source ports
SPORT, SPORT + 1, ... (PORTS of them), all to VIP:VPORT.

  --proto tcp (tcp_syn.lua, tcp_established.lua): first one SYN per flow in
    a random order (tcp_syn.lua sends exactly these: every one is a new
    connection for lbd), then one ACK per flow in another random order
    (tcp_established.lua sends the SYNs once, then loops over the whole
    file: every later packet is a lookup of an existing connection);
  --proto udp (udp64.lua): one datagram per flow, in a random order.

Frames are 60 bytes (pktgen's "64" with the FCS): Ethernet, IPv4 (valid
header checksum), TCP or UDP (valid checksum), zero padding. Only the
Python standard library is used. Pktgen keeps the whole file in memory,
about 320 bytes per packet: 1,048,576 TCP flows (2 packets each) need about
640 MiB of pktgen's EAL memory (-m, or hugepages), UDP flows half that.

    bench/pktgen/make-flows-pcap.py --proto tcp /tmp/lbdpg/tcp.pcap
    bench/pktgen/make-flows-pcap.py --proto udp --vport 53 /tmp/lbdpg/udp.pcap
"""

import argparse
import ipaddress
import random
import struct
import sys

TCP_SYN = 0x02
TCP_ACK = 0x10
FRAME_LEN = 60  # 14 Ethernet + 20 IPv4 + 20 TCP (or 8 UDP) + padding
PROTO_TCP = 6
PROTO_UDP = 17


def mac_bytes(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"not a MAC address: {text}")
    return bytes(int(p, 16) for p in parts)


def fold(s):
    """Ones' complement sum folded to 16 bits."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def words(data):
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def ipv4_header(src_ip, dst_ip, proto, l4_len):
    # Version/IHL, TOS, total length, ID, DF, TTL 64, protocol.
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + l4_len, 0, 0x4000, 64, proto, 0,
                               src_ip, dst_ip))
    struct.pack_into("!H", ip, 10, 0xFFFF - fold(words(ip)))
    return bytes(ip)


def l4_checksum(src_ip, dst_ip, proto, segment):
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, proto, len(segment))
    return 0xFFFF - fold(words(pseudo) + words(segment))


def tcp_frame(dst_mac, src_mac, src_ip, dst_ip, sport, dport, flags):
    # Ports, seq, ack (set only with ACK), data offset 5, flags, window.
    ack = 1 if flags & TCP_ACK else 0
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1, ack, 5 << 4, flags, 65535, 0, 0))
    struct.pack_into("!H", tcp, 16, l4_checksum(src_ip, dst_ip, PROTO_TCP, tcp))
    out = dst_mac + src_mac + b"\x08\x00" + ipv4_header(src_ip, dst_ip, PROTO_TCP, len(tcp)) + tcp
    return out + bytes(FRAME_LEN - len(out))


def udp_frame(dst_mac, src_mac, src_ip, dst_ip, sport, dport):
    # 18 bytes of zero payload fill the 60-byte frame.
    payload = bytes(FRAME_LEN - 14 - 20 - 8)
    udp = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    struct.pack_into("!H", udp, 6, l4_checksum(src_ip, dst_ip, PROTO_UDP, udp) or 0xFFFF)
    return dst_mac + src_mac + b"\x08\x00" + ipv4_header(src_ip, dst_ip, PROTO_UDP, len(udp)) + bytes(udp)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="pcap file to write")
    p.add_argument("--proto", choices=["tcp", "udp"], default="tcp",
                   help="tcp: SYNs then ACKs (default); udp: one datagram per flow")
    p.add_argument("--dst-mac", type=mac_bytes, default=mac_bytes("02:00:c6:12:00:02"),
                   help="lbd's client-facing port MAC (default 02:00:c6:12:00:02, lbd-memif.ron's)")
    p.add_argument("--src-mac", type=mac_bytes, default=mac_bytes("02:00:00:00:01:00"),
                   help="source MAC (pktgen's port 0; default 02:00:00:00:01:00)")
    p.add_argument("--src-ip", default="198.18.1.0", help="first source address (default 198.18.1.0)")
    p.add_argument("--addrs", type=int, default=256, help="source addresses (default 256)")
    p.add_argument("--sport", type=int, default=32768, help="first source port (default 32768)")
    p.add_argument("--ports", type=int, default=4096, help="source ports per address (default 4096)")
    p.add_argument("--vip", default="198.18.0.100", help="destination address (default 198.18.0.100)")
    p.add_argument("--vport", type=int, help="destination port (default 80 for tcp, 53 for udp)")
    p.add_argument("--seed", type=int, default=1, help="seed of the two shuffles (default 1)")
    a = p.parse_args()

    if a.addrs < 1 or a.ports < 1 or a.sport < 1 or a.sport + a.ports - 1 > 65535:
        p.error("need addrs >= 1, ports >= 1 and sport + ports - 1 <= 65535")
    src0 = int(ipaddress.IPv4Address(a.src_ip))
    vip = int(ipaddress.IPv4Address(a.vip))
    flows = a.addrs * a.ports

    vport = a.vport or (80 if a.proto == "tcp" else 53)
    if not 1 <= vport <= 65535:
        p.error("vport: 1 to 65535")

    def addr(n):
        return (src0 + n // a.ports).to_bytes(4, "big"), a.sport + n % a.ports

    vip_b = vip.to_bytes(4, "big")
    rng = random.Random(a.seed)
    kinds = [TCP_SYN, TCP_ACK] if a.proto == "tcp" else [None]
    with open(a.output, "wb") as f:
        # pcap global header: microsecond timestamps, Ethernet.
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        record = struct.pack("<IIII", 0, 0, FRAME_LEN, FRAME_LEN)
        for flags in kinds:
            order = list(range(flows))
            rng.shuffle(order)
            for n in order:
                src, sport = addr(n)
                if flags is None:
                    fr = udp_frame(a.dst_mac, a.src_mac, src, vip_b, sport, vport)
                else:
                    fr = tcp_frame(a.dst_mac, a.src_mac, src, vip_b, sport, vport, flags)
                f.write(record)
                f.write(fr)
    last = ipaddress.IPv4Address(src0 + a.addrs - 1)
    what = f"{flows} SYNs then {flows} ACKs" if a.proto == "tcp" else f"{flows} datagrams"
    print(f"{a.output}: {flows} {a.proto} flows ({a.src_ip}-{last} x ports {a.sport}-"
          f"{a.sport + a.ports - 1} -> {a.vip}:{vport}), {what}", file=sys.stderr)

if __name__ == "__main__":
    main()
