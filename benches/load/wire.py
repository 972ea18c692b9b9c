#!/usr/bin/env python3
"""Where a load bench request's time goes, read from the wire.

The load bench (`cargo bench --no-default-features --bench load`) prints each
generator's latency as that generator measured it, so two generators that disagree
cannot say whose client is slow. A capture of the loopback interface during the same
run can: for every connection to the bench's server it gives the client's SYN, its
first request byte and the server's first response byte, none of them stamped by
either generator.

    tcpdump -i lo -s 96 -B 65536 --time-stamp-precision=nano -w run.pcap 'tcp' &
    GRACETRACE_LOAD_BENCH_RATES=5000 target/release/deps/load-HASH --bench > bench.out
    kill %1
    tcpdump -r run.pcap -nn -tt --time-stamp-precision=nano > run.txt
    python3 benches/load/wire.py run.txt bench.out

Run one rate at a time: the connections are split among the generators by the counts
the bench printed, in the order it runs them (the probe on its own schedule, the probe
on oha's, then oha; its warm-up comes first and is left out). Prints, per generator, the
median and p99 of SYN to response (what the connection and the server took), SYN to
request (the client connecting and writing), and request to response (the server).
"""

import collections
import re
import sys

PACKET = re.compile(
    r"^(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): "
    r"Flags \[([^\]]*)\].*length (\d+)"
)
ROW = re.compile(r"^\s*[\d.]+\s+(probe poisson|probe 1ms-ticks|oha)\s+(\d+)\s+(\d+)", re.M)


def connections(capture):
    """Every connection to the busiest server port, in SYN order: its three instants."""
    packets = []
    for line in capture:
        m = PACKET.match(line)
        if m:
            packets.append((float(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])))
    syns = collections.Counter(dst for _, _, dst, flags, _ in packets if flags == "S")
    if not syns:
        sys.exit("wire.py: no SYN in the capture")
    server = syns.most_common(1)[0][0]
    # A client port is reused within a run (tens of thousands of connections), so a SYN
    # opens a new connection on its port.
    open_on, every = {}, []
    for at, src, dst, flags, length in packets:
        if dst == server and flags == "S":
            open_on[src] = {"syn": at}
            every.append(open_on[src])
        elif dst == server and length > 0 and src in open_on:
            open_on[src].setdefault("request", at)
        elif src == server and length > 0 and dst in open_on:
            open_on[dst].setdefault("response", at)
    return every


def percentile(values, p):
    """The value at floor(p * n), the bench's and oha's definition."""
    values = sorted(values)
    return values[min(int(p * len(values)), len(values) - 1)]


def between(done, first, then):
    """Milliseconds from `first` to `then` of each connection."""
    return [(c[then] - c[first]) * 1e3 for c in done]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: wire.py CAPTURE.txt BENCH.out")
    with open(sys.argv[1]) as f:
        every = connections(f)
    with open(sys.argv[2]) as f:
        runs = [(name, int(ok) + int(failed)) for name, ok, failed in ROW.findall(f.read())]
    end = len(every)
    parts = []
    for name, count in reversed(runs):
        parts.append((name, every[end - count : end]))
        end -= count
    print("generator         conns  syn->response p50/p99  syn->request p50  server p50/p99 (ms)")
    for name, part in reversed(parts):
        done = [c for c in part if "request" in c and "response" in c]
        whole = between(done, "syn", "response")
        client = between(done, "syn", "request")
        server = between(done, "request", "response")
        print(
            f"{name:16s} {len(done):6d}  {percentile(whole, .5):.3f} / {percentile(whole, .99):.3f}"
            f"          {percentile(client, .5):.3f}            "
            f"{percentile(server, .5):.3f} / {percentile(server, .99):.3f}"
        )


if __name__ == "__main__":
    main()
