"""asyncio: consumers awaiting batches and events and producers awaiting room, with the event
loop serving other tasks meanwhile, C++ and Python producers in other processes, no polling
while idle, cancellation that releases nothing unhandled, and catch-up from a journal."""

import asyncio
import contextlib
import gc
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import xdisruptor
from conftest import PEER_DTYPE, REPO, check_peer_events

PEER_PY = REPO / "tests" / "peer" / "peer.py"


def producer_cmd(peer, lang, ring, *args):
    head = [peer] if lang == "cpp" else [sys.executable, str(PEER_PY)]
    return head + ["produce", f"--ring={ring}", *args]


@pytest.fixture
def peer_ring(ring_name):
    ring = xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE)
    yield ring
    ring.close()


class Ticker:
    """A task that counts 1 ms sleeps: it only gets to run if the loop is not blocked."""

    def __init__(self, progress=None):
        self.ticks = 0
        self.longest = 0.0
        self.progress = progress  # a callable: where the stream was at each tick
        self.seen = set()

    async def run(self):
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now
            self.ticks += 1
            if self.progress is not None:
                self.seen.add(self.progress())


@pytest.mark.asyncio
@pytest.mark.parametrize("producer", ["cpp", "py"])
async def test_should_hand_out_every_event_while_the_loop_serves_other_tasks(
        peer_ring, ring_name, peer, producer):
    n = 200_000
    consumer = peer_ring.consumer("async")
    got = 0
    ticker = Ticker(lambda: got)
    tick_task = asyncio.create_task(ticker.run())
    proc = subprocess.Popen(producer_cmd(peer, producer, ring_name, f"--events={n}",
                                         "--batch=64", "--rate=400000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    async with contextlib.aclosing(consumer.abatches()) as batches:
        async for batch in batches:
            assert check_peer_events(batch, got)
            got += len(batch)
    tick_task.cancel()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert got == n
    assert consumer.sequence == n - 1
    # The stream took ~0.5 s: the loop ran the ticker all along, at many points of the stream
    # (not a rate, which a loaded machine would miss: where the stream stood at each tick).
    midway = {g for g in ticker.seen if 0 < g < n}
    assert len(midway) >= 5, sorted(midway)
    consumer.close()


@pytest.mark.asyncio
async def test_should_share_the_loop_when_events_never_have_to_be_waited_for(ring_name):
    """A consumer behind its producer finds every batch ready, and a producer with room never
    waits: neither ever has to suspend, yet each gives the loop's other tasks a turn every few
    milliseconds (without that, a long catch-up or burst starved them: no tick mid-stream)."""
    dtype = np.dtype([("seq", "<i8")])
    n = 60_000
    with xdisruptor.Ring.create(ring_name, capacity=65536, dtype=dtype) as ring:
        consumer = ring.consumer("behind")
        producer = ring.producer()
        sent = 0
        ticker = Ticker(lambda: sent)
        tick_task = asyncio.create_task(ticker.run())
        for i in range(n):  # the ring has room for all: apublish never waits
            await producer.apublish((i,))
            sent += 1
        producer.close()
        assert len({g for g in ticker.seen if 0 < g < n}) >= 3, sorted(ticker.seen)
        got = 0
        ticker.progress, ticker.seen = (lambda: got), set()
        async with contextlib.aclosing(consumer.abatches(max_size=1)) as batches:
            async for batch in batches:  # everything is published already: always ready
                assert batch["seq"][0] == got
                got += len(batch)
        tick_task.cancel()
        assert got == n
        assert len({g for g in ticker.seen if 0 < g < n}) >= 3, sorted(ticker.seen)
        consumer.close()


@pytest.mark.asyncio
async def test_should_iterate_events_as_tuples(peer_ring, ring_name, peer):
    consumer = peer_ring.consumer("tuples")
    proc = subprocess.Popen(producer_cmd(peer, "cpp", ring_name, "--events=5000", "--batch=16"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    async for event in consumer:
        seen.append(event)
    assert proc.wait(timeout=60) == 0
    assert [e[0] for e in seen] == list(range(5000))
    assert seen[7][1] == 7 * 3 + 1 and seen[7][4] == b"event 7"
    consumer.close()


@pytest.mark.asyncio
async def test_should_sleep_while_idle_and_wake_the_loop_soon_after_a_publish(ring_name):
    dtype = np.dtype([("seq", "<i8"), ("t", "<f8")])
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=dtype)
    consumer = ring.consumer("idle")
    producer = ring.producer()
    latencies = []
    received = asyncio.Event()

    async def consume():
        async for batch in consumer.abatches():
            for t in batch["t"]:
                latencies.append(time.perf_counter() - t)
            received.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    # Idle: nothing published for a second; the process must not spin (no polling).
    cpu0 = time.process_time()
    await asyncio.sleep(1.0)
    idle_cpu = time.process_time() - cpu0
    # One publish at a time from another thread; the loop must wake for each.
    for i in range(30):
        received.clear()
        threading.Thread(target=lambda i=i: producer.publish((i, time.perf_counter()))).start()
        await asyncio.wait_for(received.wait(), timeout=10)
        await asyncio.sleep(0.01)
    producer.close()
    await asyncio.wait_for(task, timeout=10)
    consumer.close()
    ring.close()
    p50 = statistics.median(latencies) * 1e6
    p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1e6
    print(f"wake latency publish -> loop: p50 {p50:.0f} us, p99 {p99:.0f} us; idle CPU "
          f"{idle_cpu * 1000:.1f} ms per s")
    assert len(latencies) == 30
    assert idle_cpu < 0.1, f"the idle wait used {idle_cpu:.3f} s of CPU in 1 s: it polls"
    # Far above the measured ~0.1 ms; a wait that only noticed on a timer would miss it.
    assert p50 < 0.02 * 1e6


@pytest.mark.asyncio
async def test_should_release_nothing_unhandled_when_cancelled(ring_name):
    dtype = np.dtype([("seq", "<i8")])
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=dtype)
    consumer = ring.consumer("c")
    producer = ring.producer()
    producer.publish_batch(np.arange(10).astype(dtype))
    in_hand = asyncio.Event()

    async def handle_slowly():
        async for batch in consumer.abatches(max_size=5):
            in_hand.set()
            await asyncio.sleep(3600)  # cancelled while handling 0..4

    task = asyncio.create_task(handle_slowly())
    await in_hand.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The abandoned generator is closed by the loop soon after (contextlib.aclosing closes
    # it at once; the second half uses that).
    await asyncio.sleep(0.05)
    assert consumer.sequence == -1  # 0..4 was in hand, not handled: not released

    # Cancelled while waiting for more: everything handled is released, nothing else.
    handled = []
    waiting = asyncio.Event()

    async def handle_all():
        async with contextlib.aclosing(consumer.abatches(max_size=5)) as batches:
            async for batch in batches:
                handled.extend(batch["seq"].tolist())
                if len(handled) == 10:
                    waiting.set()

    task = asyncio.create_task(handle_all())
    await asyncio.wait_for(waiting.wait(), timeout=10)
    await asyncio.sleep(0.05)  # now it waits in the helper thread for sequence 10
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handled == list(range(10))
    assert consumer.sequence == 9
    # The consumer goes on afterwards (its wait was halted and the halt cleared).
    producer.publish((10,))
    producer.close()
    rest = [b["seq"].tolist() async for b in consumer.abatches()]
    assert sum(rest, []) == [10]
    consumer.close()
    ring.close()


@pytest.mark.asyncio
async def test_should_await_room_on_a_full_ring_and_publish_nothing_when_cancelled(ring_name):
    dtype = np.dtype([("seq", "<i8")])
    ring = xdisruptor.Ring.create(ring_name, capacity=8, dtype=dtype)
    consumer = ring.consumer("slow")
    producer = ring.producer()
    for i in range(8):
        assert await producer.apublish((i,)) == i  # room: no wait
    ticker = Ticker()
    tick_task = asyncio.create_task(ticker.run())
    # Full: the ninth awaits; the loop goes on serving the ticker.
    blocked = asyncio.create_task(producer.apublish((8,)))
    await asyncio.sleep(0.2)
    assert not blocked.done() and ticker.ticks > 20
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert producer.cursor == 7  # nothing claimed or published
    # Now one that waits until the consumer makes room.
    waiting = asyncio.create_task(producer.apublish_batch(np.array([(8,), (9,)], dtype)))
    await asyncio.sleep(0.05)
    assert not waiting.done()

    def read_some():
        got = []
        for batch in consumer.batches(max_size=4):
            got.extend(batch["seq"].tolist())
            if len(got) >= 10:
                break
        return got

    reader = asyncio.get_running_loop().run_in_executor(None, read_some)
    assert await asyncio.wait_for(waiting, timeout=10) == 9
    assert await asyncio.wait_for(reader, timeout=10) == list(range(10))
    tick_task.cancel()
    producer.close()
    consumer.close()
    ring.close()


@pytest.mark.asyncio
async def test_should_hand_each_sequence_out_once_when_tasks_share_a_producer_on_a_full_ring(
        ring_name):
    dtype = np.dtype([("task", "<i8"), ("i", "<i8")])
    per_task, tasks = 150, 4
    ring = xdisruptor.Ring.create(ring_name, capacity=8, dtype=dtype)
    consumer = ring.consumer("slow")
    producer = ring.producer()

    def read_slowly():  # to the end of the stream, a record at a time: the ring stays full
        got = []
        for b in consumer.batches(max_size=1):
            got.extend(tuple(r) for r in b.tolist())
            time.sleep(0.0002)
        return got

    reader = asyncio.get_running_loop().run_in_executor(None, read_slowly)

    async def feed(task):
        for i in range(per_task):
            if i % 3 == 2:  # a plain publish among the awaited ones, from the loop's thread
                producer.publish((task, i))
            elif i % 3 == 1:
                await producer.apublish_batch(np.array([(task, i)], dtype))
            else:
                await producer.apublish((task, i))

    await asyncio.wait_for(asyncio.gather(*(feed(t) for t in range(tasks))), timeout=60)
    producer.close()  # the reader ends with the stream, whatever it got
    got = await asyncio.wait_for(reader, timeout=60)
    # Each record once: a task claiming in the loop's thread while another's wait claimed the
    # same sequence in the helper would lose one of them.
    assert sorted(got) == [(t, i) for t in range(tasks) for i in range(per_task)]
    for t in range(tasks):  # each task's records in its order
        assert [i for task, i in got if task == t] == list(range(per_task))
    consumer.close()
    ring.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["abatches", "events"])
async def test_should_end_the_consumers_loop_at_once_when_aclosing_closes_it(ring_name, how):
    dtype = np.dtype([("seq", "<i8")])
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=dtype) as ring:
        consumer = ring.consumer("c")
        with ring.producer() as producer:
            producer.publish_batch(np.arange(10).view(dtype))
        loop = consumer.abatches(max_size=4) if how == "abatches" else consumer.__aiter__()
        async with contextlib.aclosing(loop) as it:
            async for _ in it:
                break
        # Closed at once: a new loop may start, and the batch in hand comes again.
        assert [int(e[0]) async for e in consumer] == list(range(10))
        consumer.close()


@pytest.mark.asyncio
async def test_should_refuse_a_batch_size_below_one_before_the_first_batch(ring_name):
    dtype = np.dtype([("seq", "<i8")])
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=dtype) as ring:
        consumer = ring.consumer("c")
        for bad in (-1, 2 ** 63):
            with pytest.raises(xdisruptor.InvalidArgumentError, match="max_size"):
                consumer.abatches(max_size=bad)
        consumer.close()


@pytest.mark.asyncio
async def test_should_catch_up_from_a_journal_in_an_async_loop(ring_name, tmp_path):
    dtype = np.dtype([("seq", "<i8"), ("x", "<f8")])
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=dtype)
    recorder = xdisruptor.JournalRecorder(ring, tmp_path / "j")
    rec_thread = threading.Thread(target=recorder.run)
    rec_thread.start()
    producer = ring.producer()
    records = np.zeros(1000, dtype)
    records["seq"] = np.arange(1000)
    producer.publish_batch(records)  # far more than a lap
    late = ring.consumer("late", start_at=0, journal=tmp_path / "j")
    got = []
    from_journal = 0

    async def more():
        await asyncio.sleep(0.05)
        records["seq"] += 1000
        await producer.apublish_batch(records)
        producer.close()

    feeder = asyncio.create_task(more())
    async for batch in late.abatches():
        if late.catching_up:
            from_journal += len(batch)
        got.extend(batch["seq"].tolist())
    await feeder
    rec_thread.join(timeout=30)
    recorder.close()
    assert got == list(range(2000))  # the journal, then the live ring: no gap, no duplicate
    assert from_journal >= 1000 - 64
    late.close()
    ring.close()


@pytest.mark.parametrize("side", ["consumer", "producer"])
def test_should_let_the_interpreter_exit_with_an_async_wait_left_running(ring_name, side):
    """A loop left without cancelling its tasks (run_until_complete of something else, then
    the end of the script) leaves a wait in the helper thread: the process still exits
    (the helper was a ThreadPoolExecutor's thread, joined at exit: it hung for good)."""
    wait = ("async for b in r.consumer('c').abatches(): pass" if side == "consumer" else
            "p = r.producer()\n    while True: await p.apublish((1, 2, 3.0, 4, b'x'))")
    script = f"""
import asyncio, numpy as np, xdisruptor
r = xdisruptor.Ring.create({ring_name!r}, capacity=16, dtype=np.dtype({PEER_DTYPE.descr!r}))
{"h = r.consumer('hold')" if side == "producer" else ""}
async def waiting():
    {wait}
loop = asyncio.new_event_loop()
task = loop.create_task(waiting())
loop.run_until_complete(asyncio.sleep(0.3))
print("leaving", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == "leaving\n", done.stdout + done.stderr
    assert "terminate" not in done.stderr, done.stderr


def test_should_free_a_consumer_dropped_after_an_async_wait(ring_name):
    """The helper thread that waited for a consumer keeps nothing of it afterwards: a consumer
    dropped without close() is freed and leaves the ring (the producer is not held by it)."""
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=PEER_DTYPE)

    async def main():
        consumer = ring.consumer("dropped")
        batches = consumer.abatches()
        waiting = asyncio.ensure_future(batches.__anext__())
        await asyncio.sleep(0.1)  # it waits in the helper
        with ring.producer() as p:
            p.publish((0, 1, 0.5, 0, b"event 0"))
            assert len(await waiting) == 1
        await batches.aclose()

    asyncio.run(main())
    gc.collect()
    deadline = time.monotonic() + 10
    while "dropped" in [c["name"] for c in ring.consumers()]:
        assert time.monotonic() < deadline, ring.consumers()
        time.sleep(0.05)
    ring.close()
