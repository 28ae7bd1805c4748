#!/usr/bin/env python3
"""The Python consumer of xdisruptor_wait_latency --python=PY (C++ producer -> Python latency).

    latency_consumer.py RING WARMUP SAMPLES WAIT[:key=value&...] FD

Registers consumer "measure" on RING with the wait strategy, iterates event by event
(`for published_ns, sequence, pad in consumer`), records time.monotonic_ns() - published_ns
(CLOCK_MONOTONIC, the producer's clock) for every event after WARMUP, and writes one line to
file descriptor FD: p50 p99 p99.9 max (us), CPU % over the measured span, samples, ok, and the
CPU % it used while waiting for the first event (idle CPU). The same line the C++ consumer
writes.
"""

import os
import sys
import time

import numpy as np

import xdisruptor


def parse_wait_spec(spec: str) -> tuple[str, dict[str, object]]:
    """"blocking:phase_spin=0&spin_tries=10" -> ("blocking", {"phase_spin": 0.0, ...}): the
    wait strategy and its keyword parameters (numbers, except the fallback's name)."""
    wait, _, tuning = spec.partition(":")
    params: dict[str, object] = {}
    for kv in filter(None, tuning.split("&")):
        key, _, value = kv.partition("=")
        params[key] = value if key == "fallback" else float(value)
    return wait, params


def main() -> int:
    name, warmup_s, samples_s, spec, fd_s = sys.argv[1:]
    warmup, samples, fd = int(warmup_s), int(samples_s), int(fd_s)
    wait, params = parse_wait_spec(spec)
    if wait == "timeout-blocking":
        params.setdefault("timeout", 0.01)
    latencies = np.empty(samples, dtype=np.int64)
    now = time.monotonic_ns
    total = warmup + samples
    ok = True
    with xdisruptor.Ring.attach(name) as ring, ring.consumer("measure", wait=wait,
                                                             **params) as consumer:
        idle_cpu, idle_wall = time.process_time(), now()
        idle_percent = 0.0
        expected = 0
        cpu_start = wall_start = 0.0
        for published_ns, sequence, _pad in consumer:
            t = now()
            if sequence >= warmup:
                latencies[sequence - warmup] = t - published_ns
            elif sequence == 0:
                idle_percent = 100 * (time.process_time() - idle_cpu) / ((t - idle_wall) * 1e-9)
            if sequence == warmup:
                cpu_start, wall_start = time.process_time(), t
            ok = ok and sequence == expected
            expected = sequence + 1
        cpu = time.process_time() - cpu_start
        wall = (now() - wall_start) * 1e-9
    ok = ok and expected == total
    latencies.sort()

    def at(q: float) -> float:
        return float(latencies[int(q * (samples - 1))]) / 1e3

    os.write(fd, (f"{at(0.5):.3f} {at(0.99):.3f} {at(0.999):.3f} {at(1.0):.3f} "
                  f"{100 * cpu / wall:.3f} {samples} {int(ok)} {idle_percent:.4f}\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
