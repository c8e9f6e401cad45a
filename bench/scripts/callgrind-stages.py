#!/usr/bin/env python3
"""Where a `bench pipeline` packet's instructions go, by burst stage.

Usage: callgrind-stages.py CALLGRIND_OUT BINARY PACKETS

CALLGRIND_OUT must come from `valgrind --tool=callgrind --dump-instr=yes
--toggle-collect='lbbench::Prepared::time' ... BINARY pipeline ...`. Every
instruction's self cost is attributed, with `addr2line -a -f -i`, to the
stage it was inlined into (the outermost of `begin_burst`,
`process_in_burst`/`nat_reply_planned`, `housekeeping`; anything else is
the harness or an out-of-line function) and to the innermost `lbcore`
function, then divided by PACKETS (the run's `--packets`; the run's
set-up, about 2 per packet at 100 000 packets, is included).
"""
import collections
import re
import subprocess
import sys


def costs(path, binary):
    """Self cost by instruction address, for the objects named like `binary`."""
    name = binary.split("/")[-1]
    cost = collections.Counter()
    obs, cur, addr, skip = {}, None, 0, False

    def num(tok, prev):
        if tok == "*":
            return prev
        if tok[0] in "+-":
            return prev + int(tok, 0)
        return int(tok, 0)

    for line in open(path):
        # A call's object (`cob=`) may be the first to name an object.
        if line.startswith("cob="):
            m = re.match(r"cob=\((\d+)\)(?: (.*))?", line.strip())
            if m.group(2):
                obs[m.group(1)] = m.group(2)
        elif line.startswith("ob="):
            m = re.match(r"ob=\((\d+)\)(?: (.*))?", line.strip())
            if m.group(2):
                obs[m.group(1)] = m.group(2)
            cur = obs.get(m.group(1))
        elif line.startswith("calls="):
            skip = True  # the next cost line is a call's inclusive cost
        elif line[0] in "0123456789+-*":
            parts = line.split()
            addr = num(parts[0], addr)
            if skip:
                skip = False
            elif len(parts) >= 3 and cur and cur.endswith(name):
                cost[addr] += int(parts[2])
    return cost


def frames(binary, addrs):
    """Inlined frames (innermost first) by address."""
    out = subprocess.run(
        ["addr2line", "-a", "-f", "-i", "-C", "-e", binary] + ["0x%x" % a for a in addrs],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    res, cur, i = {}, None, 0
    while i < len(out):
        if re.fullmatch(r"0x[0-9a-f]+", out[i]):
            cur = int(out[i], 16)
            res[cur] = []
            i += 1
            continue
        res[cur].append(out[i])
        i += 2  # function, then file:line
    return res


def short(fn):
    while re.search(r"<[^<>]*>", fn):
        fn = re.sub(r"<[^<>]*>", "", fn)
    return fn.split("::")[-1]


def main():
    path, binary, packets = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cost = costs(path, binary)
    fr = frames(binary, sorted(cost))
    stage, inner = collections.Counter(), collections.Counter()
    for a, c in cost.items():
        names = fr.get(a, [])
        st = "harness, out-of-line"
        for n in names:
            if "begin_burst" in n:
                st = "stage 1"
                break
            if "process_in_burst" in n or "nat_reply_planned" in n:
                st = "stage 2"
                break
            if "housekeeping" in n:
                st = "housekeeping"
                break
        fn = next((short(n) for n in names if "lbcore" in n), short(names[0]) if names else "?")
        stage[st] += c
        inner[(st, fn)] += c
    print("total %.1f per packet" % (sum(cost.values()) / packets))
    for st, c in stage.most_common():
        print("%8.1f  %s" % (c / packets, st))
    print()
    for (st, fn), c in inner.most_common(50):
        print("%8.1f  %-22s %s" % (c / packets, st, fn))


if __name__ == "__main__":
    main()
