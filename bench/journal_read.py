"""Catch-up read speed from Python: 10 million journaled 64-byte events read by batches, each
figure against a baseline measured in the same run (runs alternate; medians, min, max).

  journal   xdisruptor.Journal(DIR).batches(max_size=B), summing the `seq` column of each
            batch (the least an analyst does; it touches every event's first word)
  catch-up  ring.consumer("late", start_at=0, journal=DIR).batches(max_size=B): the consumer
            reads the journal (while the recorder holds the ring), the same sum, until it has
            all events
  baseline  the same sum over numpy.memmap views of the segment files' event bytes, in the
            same batch sizes: the speed of reading those bytes with no library in between

The journal is recorded once per run of the script (by a JournalRecorder in a thread, from a
Python producer) into --dir (default /dev/shm). Prints a table; --json writes the figures.

  .venv/bin/python bench/journal_read.py --events 10000000 --runs 5
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np

import xdisruptor

DTYPE = np.dtype([("seq", "<i8")] + [(f"w{i}", "<i8") for i in range(1, 8)])
HEADER = 4096  # journal segment header bytes (docs/journal.md)


def record(directory: str, events: int, ring_name: str) -> xdisruptor.Ring:
    ring = xdisruptor.Ring.create(ring_name, capacity=1 << 16, dtype=DTYPE)
    recorder = xdisruptor.JournalRecorder(ring, directory, name="journal")
    thread = threading.Thread(target=recorder.run)
    thread.start()
    chunk = np.zeros(1 << 14, DTYPE)
    producer = ring.producer()
    for start in range(0, events, len(chunk)):
        n = min(len(chunk), events - start)
        chunk["seq"][:n] = np.arange(start, start + n)
        producer.publish_batch(chunk[:n])
    deadline = time.monotonic() + 120
    while recorder.last < events - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    # The stream stays open and the recorder registered: its gating entry protects the ring
    # while a consumer catches up.
    ring._bench_recorder = (recorder, thread, producer)
    return ring


def read_journal(directory: str, batch: int) -> tuple[float, int]:
    j = xdisruptor.Journal(directory)
    t0 = time.perf_counter()
    total = 0
    for b in j.batches(max_size=batch):
        total += int(b["seq"].sum())
    return time.perf_counter() - t0, total


def read_catch_up(ring: xdisruptor.Ring, directory: str, events: int, batch: int,
                  run: int) -> tuple[float, int]:
    consumer = ring.consumer(f"late{run}", start_at=0, journal=directory)
    t0 = time.perf_counter()
    total = got = 0
    for b in consumer.batches(max_size=batch):
        total += int(b["seq"].sum())
        got += len(b)
        if got >= events:
            break
    elapsed = time.perf_counter() - t0
    consumer.close()
    return elapsed, total


def read_baseline(directory: str, batch: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    total = 0
    for path in sorted(glob.glob(os.path.join(directory, "*.xdj"))):
        events = (os.path.getsize(path) - HEADER) // DTYPE.itemsize
        m = np.memmap(path, dtype=DTYPE, mode="r", offset=HEADER, shape=(events,))
        for s in range(0, events, batch):
            total += int(m["seq"][s:s + batch].sum())
        del m
    return time.perf_counter() - t0, total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="xdjread-", dir=args.dir)
    directory = os.path.join(work, "j")
    ring_name = f"xdjread-{os.getpid()}"
    expected = args.events * (args.events - 1) // 2
    try:
        ring = record(directory, args.events, ring_name)
        rates = {"baseline": [], "journal": [], "catch-up": []}
        for run in range(args.runs):
            for what in ("baseline", "journal", "catch-up"):
                if what == "baseline":
                    elapsed, total = read_baseline(directory, args.batch)
                elif what == "journal":
                    elapsed, total = read_journal(directory, args.batch)
                else:
                    elapsed, total = read_catch_up(ring, directory, args.events, args.batch, run)
                if total != expected:
                    raise SystemExit(f"{what}: read the wrong events (sum {total} != {expected})")
                rates[what].append(args.events / elapsed)
            print(f"run {run}: " + "  ".join(f"{k} {v[-1] / 1e6:.0f}M/s" for k, v in rates.items()),
                  flush=True)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"Python catch-up read, {args.events} events of 64 bytes in {args.dir}, batches of "
              f"{args.batch}, {os.cpu_count()} cores, {args.runs} runs:")
        for k, v in rates.items():
            print(f"  {k:9s} median {med[k] / 1e6:7.1f}M/s (min {min(v) / 1e6:.1f}, max "
                  f"{max(v) / 1e6:.1f})  ratio to baseline {med[k] / med['baseline']:.2f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"events": args.events, "batch": args.batch, "dir": args.dir,
                           "runs": args.runs,
                           "rates": {k: {"median": med[k], "min": min(v), "max": max(v)}
                                     for k, v in rates.items()}}, f, indent=1)
        recorder, thread, producer = ring._bench_recorder
        producer.close()
        thread.join()
        recorder.close()
        ring.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            xdisruptor.Ring.remove(ring_name)
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
