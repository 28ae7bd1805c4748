"""Rings, producers and consumers in one process (threads) and across Python processes."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numpy as np
import pytest

import xdisruptor

from conftest import read_line

TICK = np.dtype([("seq", "<i8"), ("price", "<f8"), ("qty", "<i4"), ("symbol", "S8")])


def ticks(first, count):
    out = np.zeros(count, dtype=TICK)
    out["seq"] = np.arange(first, first + count)
    out["price"] = out["seq"] * 0.25
    out["qty"] = out["seq"] % 1000
    out["symbol"] = b"SYM"
    return out


def test_should_share_the_dtype_when_attaching_by_name(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=TICK) as ring:
        assert ring.slot_size == 32 and ring.capacity == 64
        with xdisruptor.Ring.attach(ring_name) as other:
            assert other.dtype == TICK
            assert other.schema == ring.schema
        with xdisruptor.Ring.attach(ring_name, dtype=TICK):
            pass


def test_should_see_batches_and_iteration_deliver_the_same_events(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=1024, dtype=TICK) as ring:
        iterating = ring.consumer("iter")
        batching = ring.consumer("batch")
        with ring.producer() as producer:
            producer.publish_batch(ticks(0, 700))
            for i in range(700, 1000):
                producer.publish((i, i * 0.25, i % 1000, b"SYM"))
        by_iteration = np.array(list(iterating), dtype=TICK)
        by_batches = np.concatenate([b.copy() for b in batching.batches(max_size=97)])
        assert len(by_iteration) == 1000
        assert np.array_equal(by_iteration, by_batches)
        assert np.array_equal(by_batches, ticks(0, 1000))
        assert [r["seq"] for r in []] == []
        iterating.close()
        batching.close()


def test_should_free_a_producer_and_its_role_when_dropped_without_close(ring_name):
    """The C++ producer holds the Python functions publish and publish_batch fall back to,
    weakly: a producer dropped without close() is freed (a bound method there made a cycle
    the garbage collector could not see), and its role with it."""
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=TICK) as ring:
        producer = ring.producer()
        producer.publish_batch(ticks(0, 4)[::2])  # strided: the general path
        publish_batch = producer.publish_batch
        gone = weakref.ref(producer)
        del producer
        gc.collect()
        assert gone() is None
        with pytest.raises(xdisruptor.StateError, match="is gone"):
            publish_batch(ticks(2, 4)[::2])  # the builtin kept: only the C++ side is left
        del publish_batch
        gc.collect()
        with ring.producer() as again:  # the role is free again
            assert again.publish_batch(ticks(2, 2)) == 3


@pytest.mark.parametrize("dtype, fills", [
    (np.dtype([("seq", "<i8"), ("qty", "<i8"), ("price", "<f8"), ("mark", "<u8")]), True),
    (np.dtype([("seq", "<i8"), ("qty", "<i4")]), False)],
    ids=["records-fill-their-slots", "records-smaller-than-slots"])
def test_should_publish_batches_across_the_rings_end(ring_name, dtype, fills):
    """publish_batch copies records that fill their slots as runs of adjacent slots, split at
    the ring's end; smaller records slot by slot: both land where a reader expects them."""
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=dtype) as ring:
        assert (ring.slot_size == dtype.itemsize) == fills
        consumer = ring.consumer("reader")
        batches = consumer.batches()
        with ring.producer() as producer:
            for first in range(0, 70, 7):  # crosses the end of 16 slots again and again
                records = np.zeros(7, dtype=dtype)
                records["seq"] = np.arange(first, first + 7)
                records["qty"] = records["seq"] * 3
                assert producer.publish_batch(records) == first + 6
                got = []
                while len(got) < 7:
                    got.extend(next(batches).tolist())
                assert [r[0] for r in got] == list(range(first, first + 7))
                assert [r[dtype.names.index("qty")] for r in got] == [
                    s * 3 for s in range(first, first + 7)]
        batches.close()
        consumer.close()


def test_should_publish_any_array_of_the_dtype_as_its_records(ring_name):
    """publish_batch hands a 1-D contiguous ndarray of the ring's dtype (its own dtype object or
    an equal one) to the ring from C++ as it is; strided views, 2-D and 0-d arrays, subclasses,
    other byte orders, bytes and lists go through numpy first: the ring holds the same records
    either way, and publish_batch returns the last one's sequence."""
    with xdisruptor.Ring.create(ring_name, capacity=1024, dtype=TICK) as ring:
        reader = ring.consumer("reader")
        big = TICK.newbyteorder(">")
        inputs = [ticks(0, 10).astype(ring.dtype),          # the ring's dtype object
                  ticks(10, 10), ticks(20, 10),               # an equal one, twice
                  ticks(30, 20)[::2],                         # strided: every other record
                  ticks(40, 10).reshape(2, 5),                # 2-D
                  ticks(50, 10).astype(big),                  # big-endian, converted
                  ticks(60, 10).tobytes(),                    # bytes
                  ticks(70, 10)[5:],                          # a contiguous slice
                  ticks(80, 3).view(np.recarray),             # a subclass of ndarray
                  ticks(83, 1).reshape(()),                   # 0-d: one record
                  ticks(84, 3).tolist(),                      # a list of record tuples
                  [tuple(ticks(87, 1)[0])]]                   # a list of one
        want = [ticks(0, 10), ticks(10, 10), ticks(20, 10), ticks(30, 20)[::2],
                ticks(40, 10), ticks(50, 10), ticks(60, 10), ticks(70, 10)[5:],
                ticks(80, 3), ticks(83, 1), ticks(84, 3), ticks(87, 1)]
        with ring.producer() as producer:
            last = -1
            for arr, expect in zip(inputs, want):
                last = producer.publish_batch(arr)
                assert last == ring.cursor
            assert producer.publish_batch(ticks(0, 0)) == last  # nothing: the cursor
            assert producer.publish_batch([]) == last
            with pytest.raises(xdisruptor.RecordError, match="from the list"):
                producer.publish_batch([(1, 2.0), "not a record"])
            with pytest.raises(xdisruptor.InvalidArgumentError, match="not contiguous"):
                producer._raw.publish_bytes(ticks(0, 4)[::2], 2, TICK.itemsize)
            assert ring.cursor == last  # refused: nothing claimed
        got = np.concatenate([b.copy() for b in reader.batches()])
        assert np.array_equal(got, np.concatenate(want))
        reader.close()


def test_should_hand_out_read_only_views_unless_asked(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=TICK) as ring:
        reader = ring.consumer("reader")
        writer = ring.consumer("writer", writable=True)
        with ring.producer() as producer:
            producer.publish_batch(ticks(0, 4))
        batch = next(reader.batches())
        assert not batch.flags.writeable
        with pytest.raises(ValueError):
            batch["price"] = 0
        wbatch = next(writer.batches())
        assert wbatch.flags.writeable
        wbatch["qty"] = 7
        assert list(batch["qty"]) == [7, 7, 7, 7]  # the same memory: zero copy
        reader.close()
        writer.close()


def test_should_publish_through_a_claim_even_when_it_wraps(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=8, dtype=TICK) as ring:
        with ring.consumer("c") as consumer:
            producer = ring.producer()
            got = []
            batches = consumer.batches()
            for first in (0, 5, 10):  # the second and third claims wrap around the end
                with producer.claim(5) as view:
                    view[:] = ticks(first, 5)
                while len(got) < first + 5:  # one generator: each batch is released by the next
                    batch = next(batches)
                    assert np.array_equal(batch, ticks(len(got), len(batch)))
                    got.extend(batch["seq"].tolist())
            producer.close()
            assert list(batches) == []
            assert got == list(range(15))


def test_should_run_a_handler_per_event_and_per_batch(ring_name):
    class Summer:
        def __init__(self):
            self.total, self.started, self.stopped = 0, False, False

        def on_start(self):
            self.started = True

        def on_batch(self, events, first):
            assert events["seq"][0] == first
            self.total += int(events["qty"].sum())

        def on_shutdown(self):
            self.stopped = True

    seen = []
    with xdisruptor.Ring.create(ring_name, capacity=256, dtype=TICK) as ring:
        batch_stage = ring.consumer("batch")
        event_stage = ring.consumer("event")
        with ring.producer() as producer:
            producer.publish_batch(ticks(0, 200))
        summer = Summer()
        assert batch_stage.run(summer) == "closed"
        assert summer.started and summer.stopped
        assert summer.total == int(ticks(0, 200)["qty"].sum())
        assert event_stage.run(lambda e, s, end: seen.append((int(e["seq"]), s, end))) == "closed"
        assert [s for _, s, _ in seen] == list(range(200))
        assert all(a == b for a, b, _ in seen)
        assert seen[-1][2]


def test_should_release_the_gil_and_stop_when_halted(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=TICK) as ring:
        consumer = ring.consumer("waiter", wait="blocking")
        result = []
        t = threading.Thread(target=lambda: result.append(consumer.run(lambda *a: None)))
        t.start()
        spins = 0
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # runs only if the waiting thread let go of the GIL
            spins += 1
        consumer.halt()
        t.join(5)
        assert not t.is_alive()
        assert result == ["halted"]
        assert spins > 10000
        consumer.close()


def test_should_call_on_timeout_when_timeout_blocking(ring_name):
    class Beat:
        beats = 0

        def on_event(self, *a):
            pass

        def on_timeout(self, sequence):
            Beat.beats += 1
            if Beat.beats == 3:
                consumer.halt()

    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=TICK) as ring:
        consumer = ring.consumer("beat", wait="timeout-blocking", timeout=0.01)
        assert consumer.run(Beat()) == "halted"
        assert Beat.beats == 3
        consumer.close()


def test_should_deliver_every_event_to_every_process_when_python_produces(ring_name, fork_ctx):
    events = 200_000
    ring = xdisruptor.Ring.create(ring_name, capacity=4096, dtype=TICK)
    results = fork_ctx.Queue()

    def consume(name, by_batches):
        with xdisruptor.Ring.attach(ring_name) as r, r.consumer(name, wait="yielding") as c:
            results.put(("ready", name))
            expected, bad = 0, 0
            if by_batches:
                for b in c.batches():
                    bad += not np.array_equal(b, ticks(expected, len(b)))
                    expected += len(b)
            else:
                for seq, price, qty, sym in c:
                    bad += seq != expected or price != seq * 0.25 or qty != seq % 1000
                    expected += 1
            results.put((name, expected, bad))

    procs = [fork_ctx.Process(target=consume, args=(f"p{i}", i % 2 == 1)) for i in range(2)]
    for p in procs:
        p.start()
    for _ in procs:
        assert results.get(timeout=30)[0] == "ready"
    with ring.producer() as producer:
        for first in range(0, events, 5000):
            producer.publish_batch(ticks(first, 5000))
    outcome = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert outcome == [("p0", events, 0), ("p1", events, 0)]
    ring.close()


def test_should_deregister_when_a_consumer_leaves_and_free_the_name_when_it_dies(ring_name,
                                                                               fork_ctx):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=TICK) as ring:
        with ring.consumer("leaver"):
            assert [c["name"] for c in ring.consumers()] == ["leaver"]
        assert ring.consumers() == []

        ready = fork_ctx.Event()

        def hold():
            with xdisruptor.Ring.attach(ring_name) as r:
                held = r.consumer("doomed")  # noqa: F841 - held until the process is killed
                ready.set()
                time.sleep(60)

        p = fork_ctx.Process(target=hold)
        p.start()
        assert ready.wait(30)
        with pytest.raises(xdisruptor.NameTakenError):
            ring.consumer("doomed")
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        with ring.consumer("doomed") as again:  # the dead owner's name is taken over
            assert again.name == "doomed"


def test_should_stop_cleanly_on_ctrl_c_while_waiting(ring_name):
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=TICK)
    script = textwrap.dedent(f"""
        import sys, xdisruptor
        with xdisruptor.Ring.attach({ring_name!r}) as ring:
            consumer = ring.consumer("interruptible", wait="blocking")
            print("waiting", flush=True)
            try:
                for event in consumer:
                    pass
            except KeyboardInterrupt:
                consumer.close()
                print("interrupted", flush=True)
                sys.exit(3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert read_line(proc).strip() == "waiting"
    time.sleep(0.2)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 3 and out.strip() == "interrupted"
    assert time.monotonic() - start < 2.0
    assert ring.consumers() == []
    ring.close()


def test_should_print_the_version_when_run_as_a_module():
    out = subprocess.run([sys.executable, "-m", "xdisruptor", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"xdisruptor {xdisruptor.__version__}"
