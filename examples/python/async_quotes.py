#!/usr/bin/env python3
"""asyncio and Arrow together: one task publishes quotes with ``await producer.apublish_batch``,
another reads them with ``async for batch in consumer.abatches()`` and keeps a mean price per
symbol through pyarrow (``xdisruptor.to_arrow``), while a third task keeps ticking: the event
loop is never blocked by a wait on the ring.

    python examples/python/async_quotes.py --events 200000

Needs pyarrow (``pip install '.[arrow]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

import numpy as np
import pyarrow.compute as pc

import xdisruptor

QUOTE = np.dtype([("seq", "<i8"), ("sym", "<i4"), ("price", "<f8")])


async def publish(producer: xdisruptor.Producer, events: int) -> None:
    rng = np.random.default_rng(1)
    for start in range(0, events, 1000):
        batch = np.zeros(min(1000, events - start), QUOTE)
        batch["seq"] = np.arange(start, start + len(batch))
        batch["sym"] = rng.integers(0, 4, len(batch))
        batch["price"] = rng.normal(100.0, 1.0, len(batch))
        await producer.apublish_batch(batch)  # awaits room when the ring is full
    producer.close()  # end of stream


async def summarise(consumer: xdisruptor.Consumer) -> dict[int, float]:
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    async with contextlib.aclosing(consumer.abatches()) as batches:
        async for batch in batches:
            table = xdisruptor.to_arrow(batch)
            for sym in range(4):
                prices = pc.filter(table.column("price"), pc.equal(table.column("sym"), sym))
                sums[sym] = sums.get(sym, 0.0) + float(pc.sum(prices).as_py() or 0.0)
                counts[sym] = counts.get(sym, 0) + len(prices)
    return {sym: sums[sym] / counts[sym] for sym in sums if counts[sym]}


async def tick(stop: asyncio.Event) -> int:
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.001)
        ticks += 1
    return ticks


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    name = f"async-quotes-{os.getpid()}"
    with xdisruptor.Ring.create(name, capacity=4096, dtype=QUOTE) as ring:
        consumer = ring.consumer("summary")
        producer = ring.producer()
        stop = asyncio.Event()
        ticker = asyncio.create_task(tick(stop))
        means, _ = await asyncio.gather(summarise(consumer), publish(producer, args.events))
        stop.set()
        print(f"mean price per symbol: { {s: round(m, 3) for s, m in sorted(means.items())} }; "
              f"the loop ticked {await ticker} times meanwhile")
        consumer.close()
    xdisruptor.Ring.remove(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
