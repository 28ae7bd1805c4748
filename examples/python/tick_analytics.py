#!/usr/bin/env python3
"""Numpy analytics over a structured tick stream, one zero-copy batch at a time.

    build/release/examples/xdisruptor_example_producer --ring=ticks --events=5000000 \\
        --wait_for_consumers=1 &
    python examples/python/tick_analytics.py --ring ticks

For every batch of ticks (a read-only numpy view of the ring's slots, no copy) it updates the
volume-weighted average price (VWAP) and traded volume per symbol, and the volatility of
tick-to-tick price changes; the batch is released to the producer when the next is asked for.
"""

import argparse
import sys
import time

import numpy as np

import xdisruptor
from message_consumer import attach


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ring", default="ticks")
    parser.add_argument("--name", default="analytics")
    parser.add_argument("--after", action="append", default=[],
                        help="a stage to run after (repeatable)")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()

    ring = attach(args.ring, args.timeout)
    deadline = time.monotonic() + args.timeout
    while True:  # the stages named in --after may still be starting
        try:
            consumer = ring.consumer(args.name, wait="blocking", after=args.after)
            break
        except xdisruptor.ConsumerNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    with ring, consumer:
        notional: dict[bytes, float] = {}
        volume: dict[bytes, int] = {}
        moves = []
        last_price = None
        events = batches = 0
        start = time.monotonic()
        for batch in consumer.batches():
            symbols, inverse = np.unique(batch["symbol"], return_inverse=True)
            px_qty = np.bincount(inverse, weights=batch["price"] * batch["quantity"])
            qty = np.bincount(inverse, weights=batch["quantity"])
            for symbol, n, q in zip(symbols.tolist(), px_qty, qty):
                notional[symbol] = notional.get(symbol, 0.0) + n
                volume[symbol] = volume.get(symbol, 0) + int(q)
            prices = batch["price"]
            if last_price is not None:
                moves.append(prices[0] - last_price)
            moves.append(np.diff(prices))
            last_price = prices[-1]
            events += len(batch)
            batches += 1
        elapsed = time.monotonic() - start
        changes = np.concatenate([np.atleast_1d(m) for m in moves]) if moves else np.zeros(1)
        print(f"{args.name}: {events:,} ticks in {batches:,} batches, {elapsed:.2f} s "
              f"({events / max(elapsed, 1e-9) / 1e6:.1f} M ticks/s)")
        print(f"{'symbol':<8} {'VWAP':>10} {'volume':>14}")
        for symbol in sorted(notional):
            print(f"{symbol.decode():<8} {notional[symbol] / volume[symbol]:>10.4f} "
                  f"{volume[symbol]:>14,}")
        print(f"volatility of tick-to-tick price changes: {changes.std():.5f}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
