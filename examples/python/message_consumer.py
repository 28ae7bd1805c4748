#!/usr/bin/env python3
"""Reads the 64-byte text messages a C++ producer publishes, checks for gaps, prints messages/s.

    build/release/examples/xdisruptor_example_producer --event=message --ring=messages \\
        --events=10000000 --wait_for_consumers=1 &
    python examples/python/message_consumer.py --ring messages --name reader

The consumer learns the event layout (sequence, timestamp_ns, text) from the ring itself.
"""

import argparse
import sys
import time

import xdisruptor


def attach(name: str, timeout: float) -> xdisruptor.Ring:
    """Attaches to `name`, waiting up to `timeout` seconds for the producer to create it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return xdisruptor.Ring.attach(name)
        except xdisruptor.RingNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ring", default="messages")
    parser.add_argument("--name", default="reader")
    parser.add_argument("--wait", default="blocking", choices=xdisruptor.WAIT_STRATEGIES)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the ring")
    args = parser.parse_args()

    with attach(args.ring, args.timeout) as ring, ring.consumer(args.name, wait=args.wait) as c:
        print(f"{args.name}: reading {ring.name} ({ring.dtype}) from sequence {c.join_sequence + 1}")
        expected = None
        count = gaps = 0
        start = last_report = time.monotonic()
        for sequence, timestamp_ns, text in c:
            if expected is not None and sequence != expected:
                gaps += 1
            expected = sequence + 1
            count += 1
            if count & 0xFFFF == 0:
                now = time.monotonic()
                if now - last_report >= 1.0:
                    print(f"{args.name}: {count:>12,} messages, {count / (now - start) / 1e6:.2f} M/s, "
                          f"last {text.decode()!r}")
                    last_report = now
        elapsed = time.monotonic() - start
        print(f"{args.name}: {count:,} messages in {elapsed:.2f} s "
              f"({count / max(elapsed, 1e-9) / 1e6:.2f} M/s), {gaps} gaps")
        return 0 if gaps == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
