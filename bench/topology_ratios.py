#!/usr/bin/env python3
"""Issue 19's topology comparison, measured alone: xdisruptor multicast 1P-3C against the hand
ring (its producer publishing 64 events at a time as ours does), and pipeline and diamond
against multicast, all yielding, the order rotating each round; prints each median and the
median of per-round ratios.

    python3 bench/topology_ratios.py --rounds 7 --events 20000000

The hand ring runs twice: as written (each consumer releases once per batch it finds, however
long) and with --hand_cap (releasing every half ring, or every --max_batch, as xdisruptor's
consumers do by default). Extra arguments after `--` go to every xdisruptor run and to the
capped hand ring (e.g. `-- --max_batch=65536` for uncapped consumers).

With --placements it also runs multicast, pipeline and diamond with the four processes pinned
two to a CPU (`xdisruptor_bench_peers --pin`), once for each consumer the producer shares its
CPU with: left to itself the kernel places them at the start and hardly ever moves them, and
which stages share a core decides much of a pipeline's rate.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

RUNS = {
    "xdisruptor multicast": ["--impl=xdisruptor", "--topology=multicast"],
    "hand multicast": ["--impl=hand", "--topology=multicast"],
    "hand multicast capped": ["--impl=hand", "--topology=multicast", "--hand_cap"],
    "xdisruptor pipeline": ["--impl=xdisruptor", "--topology=pipeline"],
    "xdisruptor diamond": ["--impl=xdisruptor", "--topology=diamond"],
}
# The producer shares CPU 0 with c0, c1 or c2 (digits: c0 c1 c2 producer).
PLACEMENTS = {"P+c0": "0110", "P+c1": "1010", "P+c2": "1100"}
RATIOS = [("xdisruptor multicast", "hand multicast"),
          ("xdisruptor multicast", "hand multicast capped"),
          ("xdisruptor pipeline", "xdisruptor multicast"),
          ("xdisruptor diamond", "xdisruptor multicast")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=pathlib.Path, default=pathlib.Path("build/release"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--placements", action="store_true",
                        help="also run each 1P-3C topology pinned, for each pairing")
    parser.add_argument("extra", nargs="*", help="more flags for the xdisruptor runs")
    args = parser.parse_args()
    peers = args.build / "bench/xdisruptor_bench_peers"
    runs = dict(RUNS)
    ratios = list(RATIOS)
    if args.placements:
        for where, pin in PLACEMENTS.items():
            for topology in ("multicast", "pipeline", "diamond"):
                runs[f"{topology} {where}"] = ["--impl=xdisruptor", f"--topology={topology}",
                                               f"--pin={pin}"]
            ratios += [(f"pipeline {where}", f"multicast {where}"),
                       (f"diamond {where}", f"multicast {where}"),
                       (f"pipeline {where}", "xdisruptor multicast"),
                       (f"diamond {where}", "xdisruptor multicast")]
    names = list(runs)
    rates = {n: [] for n in names}
    for r in range(args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            extra = args.extra if name != "hand multicast" else []
            p = subprocess.run([str(peers), *runs[name], "--wait=yielding",
                                f"--events={args.events}", f"--batch={args.batch}", *extra],
                               capture_output=True, text=True, timeout=600)
            lines = p.stdout.strip().splitlines()
            out = json.loads(lines[-1]) if p.returncode == 0 and lines else {}
            if not out.get("ok"):
                sys.exit(f"{name}: failed ({p.returncode}): {p.stdout}{p.stderr}")
            rates[name].append(out["events_per_s"] / 1e6)
    for name, v in rates.items():
        print(f"{name:24s} median {statistics.median(v):6.1f} M/s  "
              f"({min(v):.1f}..{max(v):.1f})")
    for a, b in ratios:
        r = [x / y for x, y in zip(rates[a], rates[b])]
        print(f"{a} / {b}: {statistics.median(r):.3f} ({min(r):.2f}..{max(r):.2f}), "
              f"median of {len(r)} per-round ratios")


if __name__ == "__main__":
    main()
