#!/usr/bin/env python3
"""Send a fixed list of hostile / malformed frames to the lbd director.

Every frame is sent at layer 2 (scapy sendp) on --iface only, addressed to the
director's MAC (--dst-mac).  All IP destinations are the VIP (which must be in
198.18.0.0/15, the lab's range).  Writes {case_name: frames_sent} as JSON.

Example (lab from scripts/lab):
  . /run/lbd-lab/lb/lab.env
  ip netns exec lb-client python3 scripts/inject-malformed.py --iface eth0 \\
      --dst-mac "$LAB_DIR_MAC" --vip "$LAB_VIP" --count-file /tmp/malformed.json

Note: Linux refuses AF_PACKET frames shorter than an Ethernet header (14
bytes), so runt_frame (10 bytes as built, and as written with --pcap) is sent
zero-padded to 14 bytes.  All other frames are sent exactly as built, without
padding to the 60-byte Ethernet minimum.
"""

import argparse
import ipaddress
import json
import os
import random
import re
import shutil
import sys

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
REEXEC_GUARD = "LBD_INJECT_REEXEC"
MIN_AF_PACKET = 14  # the kernel rejects shorter frames on Ethernet devices


def import_scapy():
    """Import scapy; if this interpreter lacks it (e.g. a pyenv python),
    re-run the script with the system python3, which has python3-scapy."""
    try:
        import scapy.all  # noqa: F401
        return
    except ImportError:
        pass
    if not os.environ.get(REEXEC_GUARD):
        for cand in ("/usr/bin/python3", shutil.which("python3")):
            if cand and os.path.realpath(cand) != os.path.realpath(sys.executable) \
                    and os.access(cand, os.X_OK):
                os.environ[REEXEC_GUARD] = "1"
                os.execv(cand, [cand, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("inject-malformed: scapy is not available (apt-get install python3-scapy, "
             "or run scripts/setup)")


# ---------------------------------------------------------------------------
# Cases.  Each builder returns a list of frames (bytes) for one repetition.
# ---------------------------------------------------------------------------

CASES = [
    ("runt_frame", "10-byte frame (sent padded to 14: the af_packet minimum)"),
    ("ethernet_only", "14-byte Ethernet header, ethertype IPv4, nothing after it"),
    ("ipv4_truncated", "IPv4 ethertype, IP header cut after 12 bytes"),
    ("ipv4_bad_version", "version 6 inside an IPv4 ethertype frame (TCP SYN to VIP:80)"),
    ("ipv4_ihl_too_small", "IHL 4 and IHL 0 (less than 5 words)"),
    ("ipv4_total_length_too_big", "IP total length 1400 in a 54-byte frame"),
    ("ipv4_bad_header_checksum", "TCP SYN to VIP:80 with a wrong IP header checksum"),
    ("ipv4_ttl_zero", "TCP SYN to VIP:80 with TTL 0"),
    ("ipv4_fragment_first", "first fragment (MF set, offset 0) of a TCP SYN to VIP:80"),
    ("ipv4_fragment_non_first", "non-first fragment (offset 24 bytes) to VIP, proto TCP"),
    ("tcp_truncated", "IP says TCP but only 10 bytes of L4 follow"),
    ("tcp_data_offset_too_small", "TCP SYN to VIP:80 with data offset 4 and 0"),
    ("udp_length_too_big", "UDP to VIP:80 whose length field exceeds the payload"),
    ("arp_bad_hardware_type", "ARP who-has VIP with hardware type 0x1234"),
    ("arp_truncated", "ARP request cut after 14 bytes of ARP body"),
    ("unknown_ethertype", "ethertype 0x88b5 (local experimental)"),
    ("tcp_syn_rst", "TCP to VIP:80 with SYN and RST set"),
    ("tcp_syn_fin", "TCP to VIP:80 with SYN and FIN set"),
    ("tcp_xmas", "TCP to VIP:80 with every flag set (FIN SYN RST PSH ACK URG)"),
    ("tcp_null", "TCP to VIP:80 with no flag set"),
    ("ipv4_land", "TCP SYN to VIP:80 whose source address is the VIP itself"),
    ("ipv4_bad_options", "TCP SYN to VIP:80 with an IP option of length 0, and one past the header"),
    ("arp_multicast_sender", "ARP who-has VIP whose sender hardware address is multicast"),
    ("random_garbage", "seeded random frames (valid MACs, random ethertype/payload)"),
]
CASE_NAMES = [c[0] for c in CASES]


def ip_checksum(header):
    s = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Builder:
    def __init__(self, dst_mac, src_mac, src_ip, vip, seed, garbage):
        from scapy.all import ARP, IP, TCP, UDP, Ether, Raw  # noqa: N812

        self.Ether, self.IP, self.TCP, self.UDP, self.ARP, self.Raw = Ether, IP, TCP, UDP, ARP, Raw
        self.dst_mac, self.src_mac = dst_mac, src_mac
        self.src_ip, self.vip = src_ip, vip
        self.rng = random.Random(seed)
        # Garbage has a generator of its own, so that its frames do not
        # change when cases are added before it.
        self.garbage_rng = random.Random(seed ^ 0x5EED)
        # Garbage frames that look like IPv4 fragments: with DPDK 22.11's
        # net_af_packet the kernel's fanout defragmentation may hold them,
        # so they may never reach the director.
        self.garbage_fragments = 0
        self.garbage = garbage
        self.sport = 40000

    # helpers ---------------------------------------------------------------
    def eth(self, etype=0x0800):
        return self.Ether(dst=self.dst_mac, src=self.src_mac, type=etype)

    def next_sport(self):
        self.sport = 40000 + (self.sport - 40000 + 1) % 20000
        return self.sport

    def syn(self, **tcp):
        fields = dict(sport=self.next_sport(), dport=80, flags="S", seq=0x1bd0000, window=64240)
        fields.update(tcp)
        return self.TCP(**fields)

    def ip(self, **ipf):
        fields = dict(src=self.src_ip, dst=self.vip, ttl=64, id=self.rng.randrange(1, 65536))
        fields.update(ipf)
        return self.IP(**fields)

    def good_syn_frame(self, **ipf):
        return self.eth() / self.ip(**ipf) / self.syn()

    # cases -----------------------------------------------------------------
    def runt_frame(self):
        return [bytes(self.eth())[:10]]

    def ethernet_only(self):
        return [bytes(self.eth(0x0800))]

    def ipv4_truncated(self):
        return [bytes(self.good_syn_frame())[:14 + 12]]

    def ipv4_bad_version(self):
        return [bytes(self.good_syn_frame(version=6))]

    def ipv4_ihl_too_small(self):
        return [bytes(self.good_syn_frame(ihl=4)), bytes(self.good_syn_frame(ihl=0))]

    def ipv4_total_length_too_big(self):
        return [bytes(self.good_syn_frame(len=1400))]

    def ipv4_bad_header_checksum(self):
        pkt = self.good_syn_frame()
        good = self.IP(bytes(pkt[self.IP])).chksum
        pkt[self.IP].chksum = (good ^ 0x5a5a) or 1
        return [bytes(pkt)]

    def ipv4_ttl_zero(self):
        return [bytes(self.good_syn_frame(ttl=0))]

    def ipv4_fragment_first(self):
        # 20-byte TCP header + 4 data bytes = 24, a multiple of 8 as fragments need.
        pkt = self.eth() / self.ip(flags="MF", frag=0) / self.syn() / self.Raw(b"lbd!")
        return [bytes(pkt)]

    def ipv4_fragment_non_first(self):
        pkt = self.eth() / self.ip(flags=0, frag=3, proto=6) / self.Raw(b"\x00" * 16)
        return [bytes(pkt)]

    def tcp_truncated(self):
        tcp10 = bytes(self.syn())[:10]
        pkt = self.eth() / self.ip(proto=6) / self.Raw(tcp10)
        return [bytes(pkt)]

    def tcp_data_offset_too_small(self):
        out = []
        for off in (4, 0):
            pkt = self.eth() / self.ip() / self.syn(dataofs=off)
            out.append(bytes(pkt))
        return out

    def udp_length_too_big(self):
        pkt = self.eth() / self.ip() / self.UDP(sport=self.next_sport(), dport=80, len=200) \
            / self.Raw(b"lbd-udp!")
        return [bytes(pkt)]

    def arp_request(self, **arpf):
        fields = dict(op=1, hwsrc=self.src_mac, psrc=self.src_ip,
                      hwdst="00:00:00:00:00:00", pdst=self.vip)
        fields.update(arpf)
        return self.eth(0x0806) / self.ARP(**fields)

    def arp_bad_hardware_type(self):
        # Patch the bytes: scapy would also change the address encoding.
        frame = bytearray(bytes(self.arp_request()))
        frame[14:16] = (0x1234).to_bytes(2, "big")
        return [bytes(frame)]

    def arp_truncated(self):
        return [bytes(self.arp_request())[:14 + 14]]

    def unknown_ethertype(self):
        return [bytes(self.eth(0x88B5) / self.Raw(b"lbd-unknown-ethertype".ljust(46, b"\x00")))]

    def tcp_syn_rst(self):
        return [bytes(self.eth() / self.ip() / self.syn(flags="SR"))]

    def tcp_syn_fin(self):
        return [bytes(self.eth() / self.ip() / self.syn(flags="SF"))]

    def tcp_xmas(self):
        return [bytes(self.eth() / self.ip() / self.syn(flags="FSRPAU"))]

    def tcp_null(self):
        return [bytes(self.eth() / self.ip() / self.syn(flags=0))]

    def ipv4_land(self):
        return [bytes(self.good_syn_frame(src=self.vip))]

    def ipv4_bad_options(self):
        out = []
        for opts in (b"\x83\x00\x00\x00", b"\x83\x09\x04\x00"):
            frame = bytearray(bytes(self.good_syn_frame()))
            frame[34:34] = opts  # after the 20-byte IP header
            frame[14] = 0x40 | (20 + len(opts)) // 4
            total = int.from_bytes(frame[16:18], "big") + len(opts)
            frame[16:18] = total.to_bytes(2, "big")
            frame[24:26] = b"\x00\x00"
            frame[24:26] = ip_checksum(bytes(frame[14:14 + 20 + len(opts)])).to_bytes(2, "big")
            out.append(bytes(frame))
        return out

    def arp_multicast_sender(self):
        return [bytes(self.arp_request(hwsrc="01:00:5e:00:00:01"))]

    def random_garbage(self):
        out = []
        rng = self.garbage_rng
        hdr = bytes(self.eth())[:12]  # valid dst/src MACs so the bridge forwards it
        for _ in range(self.garbage):
            etype = rng.choice([0x0800, 0x0800, 0x0806, 0x86DD, 0x8100, None])
            if etype is None:
                etype = rng.randrange(0, 65536)
            n = rng.choice([rng.randrange(0, 64), rng.randrange(0, 1500)])
            payload = bytes(rng.getrandbits(8) for _ in range(n))
            if etype == 0x0800 and n >= 20 and (payload[6] & 0x3F or payload[7]):
                self.garbage_fragments += 1
            out.append(hdr + etype.to_bytes(2, "big") + payload)
        return out


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__,
        epilog="Cases: " + ", ".join(CASE_NAMES),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iface", help="interface to send on (required unless --pcap)")
    ap.add_argument("--dst-mac", help="the director's MAC address (required unless --list)")
    ap.add_argument("--vip", default="198.18.0.100", help="VIP (default 198.18.0.100)")
    ap.add_argument("--src-mac", help="source MAC (default: the interface's MAC)")
    ap.add_argument("--src-ip", default="198.18.0.1", help="source IP (default 198.18.0.1)")
    ap.add_argument("--repeat", type=int, default=3, help="times each case is sent (default 3)")
    ap.add_argument("--garbage", type=int, default=16,
                    help="random_garbage frames per repetition (default 16)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--cases", help="comma-separated subset of cases (default: all)")
    ap.add_argument("--count-file", help="write {case_name: frames_sent} JSON here "
                    "(default: print it on stdout)")
    ap.add_argument("--pcap", help="write the frames to this pcap file instead of sending")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    return ap.parse_args(argv)


MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def lab_ip(value, what):
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        sys.exit(f"inject-malformed: {what}: not an IPv4 address: {value}")
    if addr not in LAB_NET:
        sys.exit(f"inject-malformed: {what} {value} is outside {LAB_NET} (lab addresses only)")
    return str(addr)


def main(argv):
    args = parse_args(argv)
    if args.list:
        for name, desc in CASES:
            print(f"{name:28s} {desc}")
        return 0

    if not args.dst_mac or not MAC_RE.match(args.dst_mac):
        sys.exit("inject-malformed: --dst-mac MAC is required (aa:bb:cc:dd:ee:ff)")
    dst_mac = args.dst_mac.lower()
    if int(dst_mac[:2], 16) & 1:
        sys.exit("inject-malformed: --dst-mac must be a unicast MAC (the director's)")
    vip = lab_ip(args.vip, "--vip")
    src_ip = lab_ip(args.src_ip, "--src-ip")
    if args.repeat < 1 or args.repeat > 1000:
        sys.exit("inject-malformed: --repeat must be 1..1000")
    if args.garbage < 0 or args.garbage > 10000:
        sys.exit("inject-malformed: --garbage must be 0..10000")
    if args.cases:
        selected = [c.strip() for c in args.cases.split(",") if c.strip()]
        unknown = [c for c in selected if c not in CASE_NAMES]
        if unknown:
            sys.exit(f"inject-malformed: unknown case(s): {', '.join(unknown)}; "
                     f"known: {', '.join(CASE_NAMES)}")
    else:
        selected = list(CASE_NAMES)
    if not args.pcap and not args.iface:
        sys.exit("inject-malformed: --iface is required (or --pcap FILE)")

    import_scapy()
    from scapy.all import Raw, conf, get_if_hwaddr, sendp
    from scapy.utils import RawPcapWriter

    conf.verb = 0
    if args.src_mac:
        if not MAC_RE.match(args.src_mac):
            sys.exit("inject-malformed: bad --src-mac")
        src_mac = args.src_mac.lower()
    elif args.iface:
        if not os.path.exists(f"/sys/class/net/{args.iface}"):
            sys.exit(f"inject-malformed: no such interface here: {args.iface}")
        src_mac = get_if_hwaddr(args.iface).lower()
    else:
        src_mac = "02:00:c6:12:00:01"

    builder = Builder(dst_mac, src_mac, src_ip, vip, args.seed, args.garbage)
    counts = {}
    captured = []
    sock = None
    if not args.pcap:
        if not os.path.exists(f"/sys/class/net/{args.iface}"):
            sys.exit(f"inject-malformed: no such interface here: {args.iface}")
        sock = conf.L2socket(iface=args.iface)
    try:
        for name in selected:
            sent = 0
            for _ in range(args.repeat):
                frames = getattr(builder, name)()
                if sock is not None:
                    wire = [f if len(f) >= MIN_AF_PACKET else f.ljust(MIN_AF_PACKET, b"\0")
                            for f in frames]
                    sendp([Raw(f) for f in wire], socket=sock, verbose=False)
                else:
                    captured.extend(frames)
                sent += len(frames)
            counts[name] = sent
        # Not a case: how many random_garbage frames look like fragments.
        counts["random_garbage_fragments"] = builder.garbage_fragments
    finally:
        if sock is not None:
            sock.close()

    if args.pcap:
        writer = RawPcapWriter(args.pcap, linktype=1)  # DLT_EN10MB, bytes as built
        try:
            for frame in captured:
                writer.write(frame)
        finally:
            writer.close()

    text = json.dumps(counts, indent=2) + "\n"
    if args.count_file:
        tmp = args.count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.count_file)
    else:
        sys.stdout.write(text)

    where = f"pcap {args.pcap}" if args.pcap else f"iface {args.iface}"
    out = sys.stderr if not args.count_file else sys.stdout
    print(f"inject-malformed: {sum(counts.values())} frames, {len(counts)} cases, "
          f"{where}, dst {dst_mac}, vip {vip}", file=out)
    for name, n in counts.items():
        print(f"  {name:28s} {n}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
