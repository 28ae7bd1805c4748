"""A Python consumer computing a grouped mean (price by symbol) per batch of a live stream,
three ways side by side in one run: numpy (bincount), pyarrow.compute (group_by through
xdisruptor.to_arrow) and pandas (groupby through xdisruptor.to_pandas); and a consumer that only
takes the batches, as the baseline. A Python producer thread publishes prebuilt batches.
Rounds alternate the four; the report gives medians (events/s) and the ratio to the baseline.

  .venv/bin/python bench/python_analytics.py --events 4000000 --rounds 5 --batch 8192
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

import numpy as np
import pyarrow as pa

import xdisruptor

DTYPE = np.dtype([("seq", "<i8"), ("sym", "<i4"), ("qty", "<i4"), ("price", "<f8")])
SYMBOLS = 100


def numpy_mean(batch: np.ndarray) -> np.ndarray:
    sums = np.bincount(batch["sym"], weights=batch["price"], minlength=SYMBOLS)
    counts = np.bincount(batch["sym"], minlength=SYMBOLS)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def arrow_mean(batch: np.ndarray) -> pa.Table:
    table = pa.Table.from_batches([xdisruptor.to_arrow(batch)])
    return table.group_by("sym").aggregate([("price", "mean")])


def pandas_mean(batch: np.ndarray):
    return xdisruptor.to_pandas(batch).groupby("sym")["price"].mean()


def read_only(batch: np.ndarray) -> int:
    return len(batch)


WAYS = {"read only": read_only, "numpy": numpy_mean, "pyarrow.compute": arrow_mean,
        "pandas": pandas_mean}


def run(name: str, work, events: np.ndarray, batch: int) -> float:
    ring_name = f"xdanalytics-{os.getpid()}"
    if xdisruptor.Ring.exists(ring_name):
        xdisruptor.Ring.remove(ring_name, force=True)
    ring = xdisruptor.Ring.create(ring_name, capacity=1 << 16, dtype=DTYPE)
    consumer = ring.consumer("analytics")
    producer = ring.producer()

    def produce():
        for s in range(0, len(events), batch):
            producer.publish_batch(events[s:s + batch])
        producer.close()

    t0 = time.perf_counter()
    thread = threading.Thread(target=produce)
    thread.start()
    seen = 0
    for b in consumer.batches(max_size=batch):
        work(b)
        seen += len(b)
    elapsed = time.perf_counter() - t0
    thread.join()
    consumer.close()
    ring.close()
    xdisruptor.Ring.remove(ring_name)
    if seen != len(events):
        raise SystemExit(f"{name}: saw {seen} of {len(events)} events")
    return len(events) / elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=4_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    events = np.zeros(args.events, DTYPE)
    events["seq"] = np.arange(args.events)
    events["sym"] = rng.integers(0, SYMBOLS, args.events)
    events["qty"] = rng.integers(1, 100, args.events)
    events["price"] = rng.normal(100, 5, args.events)
    # The three ways agree on one batch.
    sample = events[:args.batch]
    want = numpy_mean(sample)
    got_arrow = arrow_mean(sample).sort_by("sym")
    assert np.allclose(want[got_arrow.column("sym").to_numpy()],
                       got_arrow.column("price_mean").to_numpy())
    got_pd = pandas_mean(sample)
    assert np.allclose(want[got_pd.index.to_numpy()], got_pd.to_numpy())
    rates: dict = {k: [] for k in WAYS}
    for r in range(args.rounds):
        for name, work in WAYS.items():
            rates[name].append(run(name, work, events, args.batch))
        print(f"round {r}: " + "  ".join(f"{k} {v[-1] / 1e6:.1f}M/s" for k, v in rates.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"grouped mean of price by symbol ({SYMBOLS} symbols) per batch of {args.batch}, "
          f"{args.events} events, {os.cpu_count()} cores, {args.rounds} rounds:")
    for k, v in rates.items():
        print(f"  {k:16s} median {med[k] / 1e6:6.2f}M events/s (min {min(v) / 1e6:.2f}, max "
              f"{max(v) / 1e6:.2f})  ratio to read only {med[k] / med['read only']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"events": args.events, "batch": args.batch, "rounds": args.rounds,
                       "rates": {k: {"median": med[k], "min": min(v), "max": max(v)}
                                 for k, v in rates.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
