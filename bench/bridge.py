"""The JetStream bridge ring -> ring on loopback, against one JetStream publish per event with the
same client (libnats), in one run: starts Debian's `nats-server -js` on a free loopback port with
a temporary store, then runs build/release/bench/xdisruptor_bridge_bench once per configuration
and round, configurations alternating inside each round so all see the same machine state.

  throughput  64-byte events as fast as the rings allow: the bridge with 1, 64 and 1024 events
              per message (--max_batch), and "hand": one js_PublishAsync per event
  latency     the same events paced at --rate events/s: far-ring read time - publish time, p50
              and p99 of every event of the run, for the bridge (max_batch 1024 with
              max_delay_us 1000 and 100, and max_batch 1) and for hand

Every run checks each event arrived exactly once and in order. Prints medians (min..max) over
--rounds and the ratios to hand's median; --json writes every run.

  .venv/bin/python bench/bridge.py --rounds 5 --json docs/benchmarks/bridge.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(directory: str) -> tuple[subprocess.Popen, str]:
    server = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    log = open(os.path.join(directory, "nats.log"), "w")
    proc = subprocess.Popen([server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                             os.path.join(directory, "store")], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4096).startswith(b"INFO"):
                    return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nats-server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=2_000_000, help="batched throughput runs")
    ap.add_argument("--per_event_events", type=int, default=100_000,
                    help="runs with one event per message (bridge 1, hand)")
    ap.add_argument("--rate", type=int, default=10_000, help="events/s of the latency runs")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of a latency run")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    binary = os.path.join(a.build, "bench", "xdisruptor_bridge_bench")
    paced = int(a.rate * a.seconds)
    configs = {
        "throughput bridge 1/msg": ["--mode=bridge", "--batch=1", f"--events={a.per_event_events}"],
        "throughput bridge 64/msg": ["--mode=bridge", "--batch=64", f"--events={a.events // 2}"],
        "throughput bridge 1024/msg": ["--mode=bridge", "--batch=1024", f"--events={a.events}"],
        "throughput hand 1/publish": ["--mode=hand", f"--events={a.per_event_events}"],
        "latency bridge 1024/msg, 1 ms delay": ["--mode=bridge", "--batch=1024",
                                                f"--events={paced}", f"--rate={a.rate}"],
        "latency bridge 1024/msg, 100 us delay": ["--mode=bridge", "--batch=1024",
                                                  "--max_delay_us=100", f"--events={paced}",
                                                  f"--rate={a.rate}"],
        "latency bridge 1/msg": ["--mode=bridge", "--batch=1", f"--events={paced}",
                                 f"--rate={a.rate}"],
        "latency hand 1/publish": ["--mode=hand", f"--events={paced}", f"--rate={a.rate}"],
    }
    runs: dict[str, list[dict]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory(prefix="xd-bridge-bench-") as tmp:
        server, url = start_server(tmp)
        try:
            for r in range(a.rounds):
                for name, args in configs.items():
                    done = subprocess.run([binary, f"--nats={url}", *args], capture_output=True,
                                          text=True, timeout=600)
                    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
                    if done.returncode != 0 or not line:
                        sys.exit(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
                    result = json.loads(line)
                    assert result["ok"], result
                    runs[name].append(result)
                    print(f"round {r + 1}: {name}: {result['events_per_s']:,.0f} events/s"
                          + (f", p50 {result['p50_us']:.0f} us, p99 {result['p99_us']:.0f} us"
                             if result["rate"] else ""), flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(20)

    def med(name: str, key: str) -> tuple[float, float, float]:
        v = [x[key] for x in runs[name]]
        return statistics.median(v), min(v), max(v)

    hand = med("throughput hand 1/publish", "events_per_s")[0]
    print(f"\nmedians of {a.rounds} runs (min..max); 64-byte events, ring -> JetStream (file "
          "storage) -> ring on loopback")
    print("| configuration | events/s | x hand |")
    print("|---|---|---|")
    for name in configs:
        if name.startswith("throughput"):
            m, lo, hi = med(name, "events_per_s")
            print(f"| {name[11:]} | {m:,.0f} ({lo:,.0f}..{hi:,.0f}) | {m / hand:.1f} |")
    print(f"\n| latency at {a.rate:,} events/s | p50 us | p99 us |")
    print("|---|---|---|")
    for name in configs:
        if name.startswith("latency"):
            p50 = med(name, "p50_us")
            p99 = med(name, "p99_us")
            print(f"| {name[8:]} | {p50[0]:,.0f} ({p50[1]:,.0f}..{p50[2]:,.0f}) | "
                  f"{p99[0]:,.0f} ({p99[1]:,.0f}..{p99[2]:,.0f}) |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "rounds": a.rounds, "runs": runs}, f,
                      indent=1)


if __name__ == "__main__":
    main()
