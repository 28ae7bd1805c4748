"""Consumer.values / avalues: one event at a time, only the fields named, from C++ and Python
producers; the compiled reader and numpy's path (sub-array fields) agree, and iteration
copies sub-array fields out of the slots."""

import asyncio
import subprocess
import sys
import threading

import numpy as np
import pytest

import xdisruptor
from xdisruptor.errors import InvalidArgumentError

from conftest import PEER_DTYPE, REPO, peer_events

PEER_PY = REPO / "tests" / "peer" / "peer.py"

LEVELS = np.dtype([("seq", "<i8"), ("levels", "<f8", (3,)), ("quote", "<f4", (2,)),
                   ("venue", "S4")])


def level_events(first, count):
    out = np.zeros(count, dtype=LEVELS)
    out["seq"] = np.arange(first, first + count)
    out["levels"] = out["seq"][:, None] * np.array([1.0, 2.0, 3.0])
    out["quote"] = out["seq"][:, None] * 0.5 + np.array([0.0, 1.0])
    out["venue"] = b"XLON"
    return out


def produce(peer, lang, ring, *args):
    head = [peer] if lang == "cpp" else [sys.executable, str(PEER_PY)]
    return subprocess.Popen(head + ["produce", f"--ring={ring}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("lang", ["cpp", "py"])
def test_should_read_only_the_named_fields_from_a_producer_in_either_language(ring_name, peer,
                                                                              lang):
    n = 20_000
    with xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE) as ring:
        pairs = ring.consumer("pairs", wait="yielding")
        bare = ring.consumer("bare", wait="yielding")
        whole = ring.consumer("whole", wait="yielding")
        got = {}
        readers = [threading.Thread(target=lambda k=k, it=it: got.__setitem__(k, list(it)))
                   for k, it in (("pairs", pairs.values("text", "sequence")),  # as named
                                 ("bare", bare.values("price")), ("whole", iter(whole)))]
        for t in readers:
            t.start()
        proc = produce(peer, lang, ring_name, f"--events={n}", "--batch=16")
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        for t in readers:
            t.join(60)
        got_pairs, got_bare, got_whole = got["pairs"], got["bare"], got["whole"]
        want = peer_events(0, n)
        assert got_pairs == list(zip(want["text"].tolist(), want["sequence"].tolist()))
        assert got_bare == want["price"].tolist()
        assert [(s, t) for s, _, _, _, t in got_whole] == [(s, t) for t, s in got_pairs]
        for c in (pairs, bare, whole):
            c.close()


def test_should_give_the_same_values_through_numpy_for_sub_array_fields(ring_name):
    n = 3000
    with xdisruptor.Ring.create(ring_name, capacity=256, dtype=LEVELS) as ring:
        readers = {names: ring.consumer(f"r{i}", wait="yielding") for i, names in enumerate(
            [("levels",), ("quote", "seq"), ("venue", "seq"), ("seq",), None])}
        want = level_events(0, n)
        results = {}

        def read(names, consumer):
            results[names] = list(consumer.values(*names) if names else consumer)

        threads = [threading.Thread(target=read, args=item) for item in readers.items()]
        for t in threads:
            t.start()
        with ring.producer() as producer:
            for lo in range(0, n, 100):
                producer.publish_batch(want[lo:lo + 100])
        for t in threads:
            t.join(60)
        assert results[("levels",)] == want["levels"].tolist()
        assert results[("quote", "seq")] == list(zip(want["quote"].tolist(), range(n)))
        assert results[("quote", "seq")][5] == ([2.5, 3.5], 5)
        # Iteration: copies of the sub-arrays (numpy's tolist() of records gives views of the
        # slots, which the producer overwrote many laps ago).
        assert results[None] == list(zip(range(n), want["levels"].tolist(),
                                         want["quote"].tolist(), [b"XLON"] * n))
        assert results[("venue", "seq")] == list(zip([b"XLON"] * n, range(n)))
        assert results[("seq",)] == list(range(n))
        for c in readers.values():
            c.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("lang", ["cpp", "py"])
async def test_should_await_the_named_fields(ring_name, peer, lang):
    n = 5000
    ring = xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE)
    consumer = ring.consumer("avalues")
    proc = produce(peer, lang, ring_name, f"--events={n}", "--batch=16")
    seen = [v async for v in consumer.avalues("sequence", "value")]
    assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 60) == 0
    assert seen == [(i, i * 3 + 1) for i in range(n)]
    consumer.close()
    ring.close()


def test_should_refuse_no_unknown_or_repeated_fields(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=PEER_DTYPE) as ring:
        consumer = ring.consumer("c")
        with pytest.raises(InvalidArgumentError, match="name one field or more"):
            consumer.values()
        with pytest.raises(InvalidArgumentError, match="'nope' is not a field.*sequence, value"):
            consumer.values("sequence", "nope")
        with pytest.raises(InvalidArgumentError, match="named twice"):
            consumer.values("price", "price")
        with pytest.raises(InvalidArgumentError, match="is not a field"):
            consumer.avalues(3)
        member = ring.consumer("m", group="workers")
        with pytest.raises(InvalidArgumentError, match="not for a worker-group member"):
            member.avalues("sequence")
        member.close()
        # Refused before it reads: the events are still there for the next loop.
        with ring.producer() as producer:
            producer.publish_batch(peer_events(0, 3))
        assert list(consumer.values("sequence")) == [0, 1, 2]
        consumer.close()
