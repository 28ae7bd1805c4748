"""Several Python producer processes into one multi-producer ring."""

import numpy as np
import pytest

import xdisruptor

TAGGED = np.dtype([("producer", "<i8"), ("count", "<i8"), ("payload", "<f8")])


def test_should_deliver_each_producers_events_once_and_in_order(ring_name, fork_ctx):
    producers, per_producer = 3, 50_000
    # Large enough for everything: the producers finish before the consumer reads.
    ring = xdisruptor.Ring.create(ring_name, capacity=1 << 18, dtype=TAGGED, producers="multi")
    assert ring.multi_producer
    consumer = ring.consumer("reader", wait="blocking")
    go = fork_ctx.Event()

    def produce(pid):
        with xdisruptor.Ring.attach(ring_name) as r, r.producer(wait="blocking") as p:
            go.wait(30)
            for first in range(0, per_producer, 500):
                batch = np.zeros(500, dtype=TAGGED)
                batch["producer"] = pid
                batch["count"] = np.arange(first, first + 500)
                batch["payload"] = batch["count"] * 0.5
                p.publish_batch(batch)
            p.close(end_stream=False)  # the test ends the stream once all are done

    procs = [fork_ctx.Process(target=produce, args=(i,)) for i in range(producers)]
    for p in procs:
        p.start()
    go.set()
    seen = [0] * producers
    bad = 0
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ring.producer() as closer:  # every producer is done: any of them may end the stream
        closer.close()
    for batch in consumer.batches():
        for pid, count in zip(batch["producer"].tolist(), batch["count"].tolist()):
            bad += count != seen[pid]
            seen[pid] = count + 1
    assert (seen, bad) == ([per_producer] * producers, 0)
    consumer.close()
    ring.close()


def test_should_refuse_a_second_producer_of_a_single_producer_ring(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=TAGGED) as ring:
        assert not ring.multi_producer
        with ring.producer():
            with pytest.raises(xdisruptor.StateError):
                ring.producer()
