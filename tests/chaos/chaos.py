#!/usr/bin/env python3
"""Chaos test: a producer and 4 consumers (C++ and Python, hold and evict policies) while this
driver SIGKILLs random consumers at random moments and restarts them under the same names, and
kills and restarts the producer too, alternating its language (C++ and Python). Then it
checks, from each consumer's durable log:

  * every hold consumer processed every event exactly once, in order, across its restarts;
  * every evict consumer processed gap-free runs, and each gap is the count it was told it
    missed when it rejoined (counted from its last release: events it handled but had not
    released before a kill are counted there too, at most a batch);
  * no event a consumer processed was torn or overwritten (each checks every event's content);
  * no process hung (every wait has a deadline).

    python tests/chaos/chaos.py --peer build/ci/tests/xdisruptor_test_peer --mode short
    python tests/chaos/chaos.py --peer ... --mode soak --seconds 600     # the long run

The processes are the test peers, tests/peer/peer.cc and its Python twin peer.py (same flags):
a consumer logs "E first last" per batch before releasing it, "G told joined" when it rejoined
after an eviction, and skips on restart what its log has.
"""

import argparse
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

PEER_DTYPE = np.dtype([("sequence", "<i8"), ("value", "<i8"), ("price", "<f8"),
                       ("mark", "<u8"), ("text", "S32")])


PEER_PY = pathlib.Path(__file__).resolve().parents[1] / "peer" / "peer.py"


class Driver:
    def __init__(self, args, workdir):
        import xdisruptor
        self.xd = xdisruptor
        self.args = args
        self.rng = random.Random(args.seed)
        self.ring = f"xdchaos-{os.getpid()}"
        self.work = pathlib.Path(workdir)
        self.kills = 0
        self.producer_kills = 0
        self.producer_starts = 0
        self.producer_kinds = set()
        self.ring_obj = xdisruptor.Ring.create(self.ring, capacity=args.capacity, dtype=PEER_DTYPE)
        self.consumers = {}  # name -> (kind, policy, process)

    def start_consumer(self, name, kind, policy):
        log = self.work / f"{name}.log"
        if kind == "cpp":
            cmd = [self.args.peer, "chaos-consume", f"--ring={self.ring}", f"--name={name}",
                   f"--policy={policy}", f"--log={log}"]
        else:
            cmd = [sys.executable, str(PEER_PY), "chaos-consume", f"--ring={self.ring}",
                   f"--name={name}", f"--policy={policy}", f"--log={log}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"consumer {name} did not start ({proc.wait(10)})")
        self.consumers[name] = (kind, policy, proc)

    def start_producer(self):
        """The next producer: C++ and Python in turn (--producer both), or one of them."""
        kind = self.args.producer
        if kind == "both":
            kind = "cpp" if self.producer_starts % 2 == 0 else "py"
        self.producer_starts += 1
        self.producer_kinds.add(kind)
        cmd = [self.args.peer] if kind == "cpp" else [sys.executable, str(PEER_PY)]
        return subprocess.Popen(cmd + ["produce", f"--ring={self.ring}",
                                       f"--until={self.args.events}", "--batch=8",
                                       "--wait=blocking", f"--rate={self.args.rate}"],
                                stdout=subprocess.DEVNULL)

    def run(self):
        specs = [("cpp-hold", "cpp", "hold"), ("cpp-evict", "cpp", "evict"),
                 ("py-hold", "py", "hold"), ("py-evict", "py", "evict")]
        for name, kind, policy in specs:
            self.start_consumer(name, kind, policy)
        producer = self.start_producer()
        # When to kill the producer: at 40% and 70% of the stream (short), or every
        # producer_every consumer kills (soak).
        marks = [0.4, 0.7] if self.args.mode == "short" else []
        deadline = time.monotonic() + self.args.seconds
        since_producer_kill = 0
        while producer.poll() is None:
            if time.monotonic() > deadline:
                raise SystemExit("producer did not finish in time: something hung")
            time.sleep(self.rng.uniform(*self.args.pause))
            due = (marks and self.ring_obj.cursor > self.args.events * marks[0]) or (
                self.args.mode == "soak" and since_producer_kill >= self.args.producer_every)
            if due:
                marks = marks[1:]
                since_producer_kill = 0
                producer.send_signal(signal.SIGKILL)
                producer.wait(10)
                self.kills += 1
                self.producer_kills += 1
                time.sleep(self.rng.uniform(0, 0.2))
                producer = self.start_producer()
                continue
            since_producer_kill += 1
            name, kind, policy = self.rng.choice(specs)
            proc = self.consumers[name][2]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                self.kills += 1
            time.sleep(self.rng.uniform(0, self.args.pause[1] * 0.6))
            self.start_consumer(name, kind, policy)
        if producer.returncode != 0:
            raise SystemExit(f"producer failed ({producer.returncode})")
        for name, (kind, policy, proc) in self.consumers.items():
            try:
                code = proc.wait(self.args.drain_timeout)
            except subprocess.TimeoutExpired:
                raise SystemExit(f"consumer {name} hung after the end of the stream")
            if code != 0:
                raise SystemExit(f"consumer {name} failed ({code})")
        return self.verify(specs)

    def verify(self, specs):
        n = self.args.events
        failures = []
        for name, kind, policy in specs:
            expected, gaps, missed_total = 0, 0, 0
            for line in open(self.work / f"{name}.log"):
                kind_, *rest = line.split()
                if kind_ == "E":
                    first, last = int(rest[0]), int(rest[1])
                    if first != expected:
                        failures.append(f"{name}: expected {expected}, log has {first}..{last}")
                    expected = last + 1
                elif kind_ == "G":
                    # The library counts from the last *release*; the consumer may have handled
                    # up to a batch more before it was killed. So: told >= the real gap, by at
                    # most one batch, and the next run starts right after `joined`.
                    told, joined = int(rest[0]), int(rest[1])
                    if policy == "hold":
                        failures.append(f"{name}: a hold consumer was told it missed events")
                    real_gap = joined + 1 - expected
                    if not 0 <= told - real_gap <= self.args.capacity:
                        failures.append(f"{name}: told {told} missed, really {real_gap}")
                    gaps += 1
                    missed_total += real_gap
                    expected = joined + 1
            if expected != n:
                failures.append(f"{name}: accounted for {expected} of {n} events")
            print(f"  {name:<10} {policy:<5} every event accounted for: "
                  f"{expected - missed_total} processed once, {missed_total} missed in {gaps} "
                  f"evictions (each told)")
        return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True)
    parser.add_argument("--mode", choices=["short", "soak"], default="short")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--producer", choices=["cpp", "py", "both"], default="both")
    args = parser.parse_args()
    args.pause = (0.02, 0.25) if args.mode == "short" else (0.1, 1.2)
    args.producer_every = 20  # soak: a producer kill every 20 consumer kills
    args.events = 200_000 if args.mode == "short" else 20_000_000
    args.rate = 40_000 if args.mode == "short" else 20_000
    args.capacity = 512
    args.seconds = args.seconds or (60 if args.mode == "short" else 1800)
    if args.mode == "soak":
        args.events = int(args.rate * args.seconds * 0.8)  # finish inside the time given
    args.drain_timeout = 30
    with tempfile.TemporaryDirectory() as work:
        driver = Driver(args, work)
        try:
            start = time.monotonic()
            failures = driver.run()
            print(f"chaos {args.mode}: {args.events} events, {driver.kills} SIGKILLs "
                  f"({driver.producer_kills} of the producer; producers in "
                  f"{' and '.join(sorted(driver.producer_kinds))}), "
                  f"{time.monotonic() - start:.1f} s")
        finally:
            driver.ring_obj.close()
            driver.xd.Ring.remove(driver.ring, force=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("chaos: all invariants hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
