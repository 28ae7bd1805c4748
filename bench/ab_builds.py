#!/usr/bin/env python3
"""A/B two builds of a benchmark program in one run, alternating, on this noisy machine.

    bench/ab_builds.py --old /tmp/old/build/release/bench/xdisruptor_ring_throughput \\
        --new build/release/bench/xdisruptor_ring_throughput --rounds 7 -- \\
        --events=20000000 --runs=1 --consumers=3 --wait=yielding

Each round runs old then new (the order flips every round), with the same arguments, and
reads the "xdisruptor median" and "hand-written ring median" lines that ring_throughput prints.
It reports, per build, the median of the xdisruptor figures and of xdisruptor/hand (the hand
ring measured in the same process run is the baseline that soaks up the machine's state), and
the median over rounds of new/old. A ratio near 1.00 means no change beyond noise.
"""

import argparse
import re
import statistics
import subprocess
import sys

LINE = re.compile(r"^\s*(hand-written ring|xdisruptor)\s+median ([0-9.]+)M/s", re.M)


def run(binary, args):
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=True,
                         timeout=1800).stdout
    found = dict(LINE.findall(out))
    return float(found["xdisruptor"]), float(found["hand-written ring"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    results = {"old": [], "new": []}
    for r in range(opts.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            xd, hand = run(getattr(opts, which), args)
            results[which].append((xd, hand))
        print(f"round {r}: old {results['old'][-1][0]:.1f} M/s (hand {results['old'][-1][1]:.1f})"
              f"  new {results['new'][-1][0]:.1f} M/s (hand {results['new'][-1][1]:.1f})",
              flush=True)
    for which in ("old", "new"):
        xd = [x for x, _ in results[which]]
        rel = [x / h for x, h in results[which]]
        print(f"{which}: xdisruptor median {statistics.median(xd):.1f} M/s "
              f"(min {min(xd):.1f}, max {max(xd):.1f}); xdisruptor/hand median "
              f"{statistics.median(rel):.2f}")
    per_round = [n[0] / o[0] for o, n in zip(results["old"], results["new"])]
    print(f"new/old per round: {' '.join(f'{x:.2f}' for x in per_round)}; "
          f"median {statistics.median(per_round):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
