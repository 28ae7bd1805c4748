"""asyncio for consumers and producers: waits happen in one helper thread per consumer or
producer (with the GIL released, in the consumer's or producer's own wait strategy), and the
event loop is woken through ``call_soon_threadsafe`` when the wait ends. The loop never polls:
while nothing is published it sleeps, and so does the helper thread (with the blocking
strategy, on a futex).

Events already published are handed out without leaving the loop's thread; only a wait goes
to the helper. A consumer or producer that never has to wait still gives the loop's other
tasks a turn every 2 ms (``Turns``). Cancelling a task that awaits halts the helper's wait at once (the barrier's
alert, as ``close()`` does) and releases nothing the task has not been handed: the batch in
hand when a loop is cancelled or left early comes again (at-least-once, as for the
synchronous loops)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, AsyncGenerator, Callable, Optional, TypeVar

import numpy as np

from .errors import error_for_wait_status

if TYPE_CHECKING:
    from ._ring import Consumer, Producer

T = TypeVar("T")

# How long a producer's helper waits for room before it looks whether the await was
# cancelled: a cancelled apublish gives up within this (it claims nothing after the cancel).
_PRODUCER_SLICE_S = 0.02

# A stream that never has to wait (a consumer behind its producer, a producer with room) would
# keep the loop to itself, as a ready asyncio.Queue does: after this long without a suspension
# it gives the loop's other tasks a turn (asyncio.sleep(0), ~10 us: under 1% of the slice).
_FAIR_SLICE_S = 0.002


class Turns:
    """When a consumer or producer last let the event loop run other tasks."""

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since = time.monotonic()

    async def give(self) -> None:
        """A turn for the loop's other tasks, if this one has kept it a slice long."""
        if time.monotonic() - self.since > _FAIR_SLICE_S:
            await asyncio.sleep(0)
            self.since = time.monotonic()

    def waited(self) -> None:
        """The loop ran other tasks meanwhile (an await that suspended)."""
        self.since = time.monotonic()


# Set at interpreter exit (before it joins its threads): helpers' waits end, their threads too.
_EXITING = threading.Event()
_HELPERS: "weakref.WeakSet[_Helper]" = weakref.WeakSet()


def _stop_helpers_at_exit() -> None:
    _EXITING.set()
    for helper in list(_HELPERS):
        helper.stop_waits()


if hasattr(threading, "_register_atexit"):  # as concurrent.futures does: before the joins
    threading._register_atexit(_stop_helpers_at_exit)


class _Helper:
    """One worker thread, made on first use, for the blocking waits of one consumer or
    producer. It holds nothing of its owner between jobs (a dropped consumer is freed and
    leaves the ring), ends when its owner is collected or closed, and at interpreter exit its
    wait is ended (`halt`: the consumer's) so a loop stopped without cancelling a waiting
    task does not keep the interpreter from exiting."""

    def __init__(self, name: str, halt: Optional[Callable[[], None]] = None):
        self._name = name
        self._halt = halt
        self._queue: Optional[queue.SimpleQueue] = None
        self._thread: Optional[threading.Thread] = None
        _HELPERS.add(self)

    def submit(self, fn: Callable[..., T], *args: Any) -> "concurrent.futures.Future[T]":
        if _EXITING.is_set():
            raise RuntimeError("the interpreter is exiting")
        if self._thread is None:
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            self._queue = jobs
            self._thread = threading.Thread(target=_work, args=(jobs,),
                                            name=f"xdisruptor-{self._name}")
            self._thread.start()
            weakref.finalize(self, jobs.put, None)  # collected: the thread ends
        assert self._queue is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((future, fn, args))
        return future

    def stop_waits(self) -> None:
        if self._queue is not None:
            if self._halt is not None:
                try:
                    self._halt()
                except Exception:  # noqa: BLE001 - closed meanwhile: nothing waits
                    pass
            self._queue.put(None)

    def shutdown(self) -> None:
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            if self._thread is not threading.current_thread():
                self._thread.join()
            self._thread = self._queue = None


def _work(jobs: queue.SimpleQueue) -> None:
    """A helper's thread: runs jobs until None. Keeps no reference to a finished job (its
    function holds the consumer or producer)."""
    while True:
        job = jobs.get()
        if job is None:
            return
        future, fn, args = job
        del job
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - the awaiting task gets it
                future.set_exception(exc)
        del future, fn, args


async def _await_wait(consumer: "Consumer", fn: Callable[..., T], *args: Any) -> T:
    """Runs a blocking consumer call in its helper; on cancellation halts it (it returns at
    once), waits for it to let go, clears the halt, and re-raises."""
    raw = consumer._raw
    future = consumer._helper().submit(fn, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        raw.halt()
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - the cancellation is what the caller sees
            pass
        raw.clear_halt()
        raise


async def ranges(consumer: "Consumer", limit: int,
                 on_timeout: Optional[Callable[[int], None]]) -> AsyncGenerator[tuple, None]:
    """The async twin of Consumer._ranges: yields (first, count, journal) per batch."""
    raw = consumer._raw
    turns = Turns()
    raw.begin_loop()
    try:
        while True:
            if raw.catching_up:
                # The journal phase (reads and the join onto the ring) in the helper.
                first, count, status = await _await_wait(consumer, raw.next_range, limit)
                turns.waited()
            else:
                raw.release_pending()
                first = raw.sequence + 1
                if raw.closed or raw.available() >= first:
                    await turns.give()  # a consumer that never waits still shares the loop
                    first, count, status = raw.next_range(limit)  # ready: returns at once
                else:
                    _, waited = await _await_wait(consumer, raw.wait_for, first)
                    turns.waited()
                    if waited == "ok":
                        continue
                    first, count, status = first, 0, waited
            if status == "ok":
                yield first, count, None
            elif status == "journal":
                yield first, count, consumer._journal_batch()
            elif status == "timeout":
                if on_timeout is not None:
                    on_timeout(first - 1)
            else:
                error = error_for_wait_status(status, ring=consumer._ring.name,
                                              consumer=consumer.name, sequence=first)
                if error is not None:
                    raise error
                return  # closed or halted
    except (GeneratorExit, asyncio.CancelledError):
        # Left early or cancelled: the batch in hand was not handled; it is not released.
        raw.discard_pending()
        raise
    finally:
        if not raw.closed:
            raw.release_pending()
            raw.clear_halt()
        raw.end_loop()


async def batches(consumer: "Consumer", max_size: Optional[int],
                  on_timeout: Optional[Callable[[int], None]]) -> AsyncGenerator[np.ndarray, None]:
    limit = int(max_size) if max_size else consumer._max_batch
    capacity = consumer._ring.capacity
    mask = capacity - 1
    whole = consumer._ring_raw.view(0, capacity, consumer._dtype, consumer._writable)
    # Closed with this generator (aclosing, or left early): an `async for` does not close the
    # generator it reads, and the loop would only finalize it some turns later, the consumer's
    # loop still open meanwhile (a second loop on it refused).
    inner = ranges(consumer, limit, on_timeout)
    try:
        async for first, count, journal in inner:
            if journal is not None:
                yield journal
                continue
            start = first & mask
            yield whole[start:start + count]
    finally:
        await inner.aclose()


async def events(consumer: "Consumer", names: Optional[tuple]) -> AsyncGenerator[Any, None]:
    """One event at a time, as synchronous iteration (``names`` None) or ``values(*names)``."""
    lists = consumer._lists(names)
    inner = ranges(consumer, consumer._event_batch, None)  # closed with this one (batches)
    try:
        async for first, count, journal in inner:
            for item in lists(first, count, journal):
                yield item
    finally:
        await inner.aclose()


async def publish_bytes(producer: "Producer", data: Any, count: int) -> int:
    """Publishes `count` packed records: at once if there is room, else waiting for room in the
    producer's helper in slices and claiming back in the loop's thread, so that a cancelled
    task has claimed nothing. Returns the last sequence."""
    raw = producer._raw
    itemsize = producer._dtype.itemsize
    capacity = producer._ring.capacity
    view = memoryview(data).cast("B")
    hi = raw.cursor
    done = 0
    while done < count:
        n = min(count - done, max(1, capacity // 2))
        chunk = view[done * itemsize:(done + n) * itemsize]
        await producer._turns.give()  # a producer that always has room still shares the loop
        # Room now, and no other thread holding the producer: no thread hop. (The helper
        # waiting for another task counts as no room: this task queues behind it.)
        got = raw.publish_bytes_for(chunk, n, itemsize, 0.0)
        while got is None:
            cancelled = [False]

            def wait_for_room(n: int = n) -> bool:
                while not cancelled[0] and not _EXITING.is_set():
                    if raw.wait_for_room(n, _PRODUCER_SLICE_S):
                        return True
                return False

            future = producer._helper().submit(wait_for_room)
            try:
                await asyncio.wrap_future(future)
                producer._turns.waited()
            except asyncio.CancelledError:
                cancelled[0] = True
                try:
                    future.result(timeout=30)
                except Exception:  # noqa: BLE001
                    pass
                raise
            # Another task or thread may have taken the room first: then wait again.
            got = raw.publish_bytes_for(chunk, n, itemsize, 0.0)
        hi = got
        done += n
    return hi
