"""Worker groups from Python: a handler that burns 20 us of CPU per event, one worker process
against two (a worker group) on this machine, in one run with the configurations alternating.

  1 worker    one plain consumer process (Consumer.batches), the baseline
  group of 1  a worker group of one member (what the group itself costs)
  2 workers   a worker group of two member processes

The C++ test peer publishes --events 64-byte events as fast as the ring allows (it is done
long before the workers); the time is from the producer's start to the last worker's end.
Every event is checked to be handled exactly once. Prints medians (min..max) over --rounds.

  .venv/bin/python bench/worker_groups.py --events 50000 --rounds 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import xdisruptor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPE = np.dtype([("sequence", "<i8"), ("value", "<i8"), ("price", "<f8"), ("mark", "<u8"),
                  ("text", "S32")])  # the test peer's PeerEvent


def worker(ring_name: str, name: str, group: str | None, cost_us: float, out, ready) -> None:
    ring = xdisruptor.Ring.attach(ring_name)
    seen = []
    with ring.consumer(name, group=group, claim=64) as c:
        ready.set()
        cost = cost_us * 1e-6
        clock = time.perf_counter
        for batch in c.batches():
            for _ in range(len(batch)):  # the handler: 20 us of CPU per event
                until = clock() + cost
                while clock() < until:
                    pass
            seen.append(batch["sequence"].copy())
    out.send(np.concatenate(seen) if seen else np.zeros(0, np.int64))
    os._exit(0)


def one_run(peer: str, workers: int, group: bool, events: int, cost_us: float) -> float:
    name = f"xdwg-py-{os.getpid()}"
    if xdisruptor.Ring.exists(name):
        xdisruptor.Ring.remove(name, force=True)
    xdisruptor.Ring.create(name, capacity=1 << 17, dtype=DTYPE)
    ctx = multiprocessing.get_context("fork")
    procs, pipes = [], []
    for i in range(workers):
        ready = ctx.Event()
        here, there = ctx.Pipe()
        p = ctx.Process(target=worker, args=(name, f"w{i}", "G" if group else None, cost_us,
                                             there, ready))
        p.start()
        assert ready.wait(30)
        procs.append(p)
        pipes.append(here)
    t0 = time.perf_counter()
    done = subprocess.run([peer, "produce", f"--ring={name}", f"--events={events}",
                           "--batch=256"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    seen = np.concatenate([p.recv() for p in pipes])
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t0
    xdisruptor.Ring.remove(name, force=True)
    assert np.array_equal(np.sort(seen), np.arange(events)), "an event lost or handled twice"
    return events / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--peer", default=os.path.join(ROOT, "build", "ci", "tests",
                                                   "xdisruptor_test_peer"))
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--cost_us", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    configs = {"1 worker": (1, False), "group of 1": (1, True), "2 workers": (2, True)}
    rates: dict[str, list[float]] = {k: [] for k in configs}
    for r in range(a.rounds):
        for label, (n, group) in configs.items():
            rates[label].append(one_run(a.peer, n, group, a.events, a.cost_us))
            print(f"round {r + 1}: {label}: {rates[label][-1]:,.0f} events/s", flush=True)
    base = statistics.median(rates["1 worker"])
    print(f"\n{a.events:,} events, a Python handler burning {a.cost_us:g} us per event, "
          f"medians of {a.rounds} rounds (min..max), {os.cpu_count()} cores")
    print("| workers | events/s | x 1 worker |")
    print("|---|---|---|")
    for label in configs:
        m = statistics.median(rates[label])
        print(f"| {label} | {m:,.0f} ({min(rates[label]):,.0f}..{max(rates[label]):,.0f}) | "
              f"{m / base:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
