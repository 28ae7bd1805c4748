#!/usr/bin/env python3
"""C++ producer -> one Python consumer of 64-byte messages: xdisruptor per event (iteration)
and per batch (numpy), against a naive hand-written mmap + ctypes ring, in the same run.

    python bench/python_consumer.py --build build/release --events 10000000 --runs 5

Each run starts a C++ producer process publishing EVENTS messages (sequence, timestamp, text)
and times the Python consumer from the first message to the last. The three consumers:
  naive  : the ring users write by hand (bench/naive_ring_producer.cc): ctypes structure over
           an mmap, per message `while read_index >= write_index`, read the message's sequence
           and check it, `read_index += 1`. 1024 slots.
  events : `for sequence, timestamp_ns, text in consumer:` checking the sequence.
  batches: `for batch in consumer.batches(): total += batch["sequence"].sum()`, then checks
           the total.
Prints medians (min, max) of each and the ratios to naive; --json writes them.
"""

import argparse
import ctypes
import json
import mmap
import os
import pathlib
import statistics
import subprocess
import sys
import time

import xdisruptor
from latency_consumer import parse_wait_spec  # bench/ is this script's folder

SLOTS = 1024


class Message(ctypes.Structure):
    _fields_ = [("sequence", ctypes.c_int64), ("timestamp_ns", ctypes.c_int64),
                ("text", ctypes.c_char * 48)]


class NaiveRing(ctypes.Structure):
    _fields_ = [("write_index", ctypes.c_uint64), ("read_index", ctypes.c_uint64),
                ("ready", ctypes.c_uint64), ("pad", ctypes.c_uint64),
                ("slots", Message * SLOTS)]


def run_naive(build, events):
    path = f"/dev/shm/xdbench-naive-{os.getpid()}"
    with open(path, "wb") as f:
        f.truncate(ctypes.sizeof(NaiveRing))
    try:
        fd = os.open(path, os.O_RDWR)
        mm = mmap.mmap(fd, ctypes.sizeof(NaiveRing))
        os.close(fd)
        rb = NaiveRing.from_buffer(mm)
        producer = subprocess.Popen([str(build / "bench/xdisruptor_naive_ring_producer"), path,
                                     str(events)])
        rb.ready = 1
        while rb.read_index >= rb.write_index:  # timing starts at the first message
            pass
        start = time.perf_counter()
        gaps = 0
        for expected in range(events):
            while rb.read_index >= rb.write_index:
                pass
            m = rb.slots[rb.read_index % SLOTS]
            if m.sequence != expected:
                gaps += 1
            rb.read_index += 1
        elapsed = time.perf_counter() - start
        producer.wait(30)
        del rb, m
        mm.close()
        return elapsed, gaps == 0 and producer.returncode == 0
    finally:
        os.unlink(path)


def start_producer(build, ring, events):
    return subprocess.Popen([str(build / "examples/xdisruptor_example_producer"),
                             "--event=message", f"--ring={ring}", f"--events={events}",
                             "--capacity=65536", "--batch=256", "--wait=yielding",
                             "--wait_for_consumers=1"], stdout=subprocess.DEVNULL)


def attach(ring):
    while True:
        try:
            return xdisruptor.Ring.attach(ring)
        except xdisruptor.RingNotFoundError:
            time.sleep(0.005)


_runs = iter(range(1_000_000))


def run_xdisruptor(build, events, per_batch, wait):
    # A new name each run: the last run's ring may still be there, closed, when this one starts.
    name = f"xdbench-py-{os.getpid()}-{next(_runs)}"
    producer = start_producer(build, name, events)
    ok = True
    wait, params = parse_wait_spec(wait)  # "blocking:phase_spin=0&spin_tries=10"
    with attach(name) as ring, ring.consumer("bench", wait=wait, **params) as consumer:
        if per_batch:
            batches = consumer.batches()
            first = next(batches)  # timing starts at the first message
            start = time.perf_counter()
            total = int(first["sequence"].sum())
            for batch in batches:
                total += int(batch["sequence"].sum())
            elapsed = time.perf_counter() - start
            ok = total == events * (events - 1) // 2
        else:
            it = iter(consumer)
            expected = next(it)[0] + 1
            start = time.perf_counter()
            gaps = 0
            for sequence, timestamp_ns, text in it:
                if sequence != expected:
                    gaps += 1
                expected = sequence + 1
            elapsed = time.perf_counter() - start
            ok = gaps == 0 and expected == events
    producer.wait(30)
    return elapsed, ok and producer.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build/release", type=pathlib.Path)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--wait", default="yielding",
                        help="the Python consumer's wait strategy (the producer yields), with "
                             "parameters as in blocking:phase_spin=0&spin_tries=10; a comma "
                             "list runs each in turn every run, ratios to the first")
    parser.add_argument("--kinds", default="naive,events,batches",
                        help="which of naive, events, batches to run")
    parser.add_argument("--json")
    args = parser.parse_args()
    waits = args.wait.split(",")
    for w in waits:
        if w.partition(":")[0] not in xdisruptor.WAIT_STRATEGIES:
            parser.error(f"--wait: {w!r} is not one of {', '.join(xdisruptor.WAIT_STRATEGIES)}")
    kinds = []
    for k in args.kinds.split(","):
        kinds += [k] if k == "naive" or len(waits) == 1 else [f"{k}/{w}" for w in waits]
    rates = {k: [] for k in kinds}
    for run in range(args.runs):
        for kind in rates:
            if kind == "naive":
                elapsed, ok = run_naive(args.build, args.events)
            else:
                what, _, wait = kind.partition("/")
                elapsed, ok = run_xdisruptor(args.build, args.events, what == "batches",
                                             wait or waits[0])
            if not ok:
                print(f"run {run} {kind}: data check FAILED", file=sys.stderr)
                return 1
            rates[kind].append(args.events / elapsed)
        print(f"run {run}: " + "  ".join(f"{k} {v[-1] / 1e6:.2f}M/s" for k, v in rates.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"C++ producer -> 1 Python consumer ({args.wait}), {args.events:,} 64-byte events, "
          f"{os.cpu_count()} cores, {args.runs} runs (median, min, max in M events/s)")
    for k, v in rates.items():
        print(f"  {k:<8} {med[k] / 1e6:8.2f}  ({min(v) / 1e6:.2f} .. {max(v) / 1e6:.2f})"
              + (f"  ratio to naive {med[k] / med['naive']:.1f}x" if "naive" in med else ""))
    ratios = {}
    if len(waits) > 1:  # per-run ratio of each wait to the first, same kind, then the median
        for k in rates:
            what, _, wait = k.partition("/")
            base = f"{what}/{waits[0]}"
            if wait and wait != waits[0]:
                ratios[k] = statistics.median(a / b for a, b in zip(rates[k], rates[base]))
                print(f"  {k} / {base}: median of per-run ratios {ratios[k]:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"events": args.events, "runs": args.runs, "cores": os.cpu_count(),
             "consumer_wait": args.wait, "ratio_to_first_wait": ratios,
             "median": med, "all": rates,
             "ratio_to_naive": {k: med[k] / med["naive"] for k in med} if "naive" in med
             else {}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
