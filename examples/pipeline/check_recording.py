"""Checks the demo's recording end to end: every published tick is in the file exactly once,
in order, with the enricher's change on it. Prints "0 lost" or what is wrong; exit 1 if any.

    python3 check_recording.py build/demo/ticks.npy --published=1500000
"""

import argparse
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--published", type=int, required=True,
                        help="how many ticks the producer published")
    args = parser.parse_args()
    ticks = np.load(args.path, mmap_mode="r")
    seq = np.asarray(ticks["sequence"])
    problems = []
    if len(ticks) != args.published:
        problems.append(f"{len(ticks):,} ticks recorded, {args.published:,} published")
    n = min(len(seq), args.published)
    wrong = np.flatnonzero(seq[:n] != np.arange(n))
    if len(wrong):
        problems.append(f"{len(wrong):,} ticks out of place, the first at row {wrong[0]} "
                        f"(sequence {seq[wrong[0]]})")
    bid, ask = np.asarray(ticks["bid"]), np.asarray(ticks["ask"])
    unenriched = np.count_nonzero((ticks["mid"] != (bid + ask) / 2) |
                                  (ticks["spread"] != ask - bid))
    if unenriched:
        problems.append(f"{unenriched:,} ticks without the enricher's mid/spread")
    if problems:
        print("recording check FAILED: " + "; ".join(problems))
        return 1
    print(f"recording check: {len(ticks):,} ticks in {args.path}, sequences 0..{len(ticks) - 1}"
          f" each exactly once and in order, the enricher's mid/spread on every one: 0 lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
