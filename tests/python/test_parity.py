"""Disruptor parity from Python: the scenarios of the LMAX Disruptor's test suite that have a
Python form (SequencerTest, RingBufferTest, SequenceBarrierTest, BatchEventProcessorTest,
LifecycleAwareTest, MaxBatchSizeEventProcessorTest, RewindBatchEventProcessorTest,
BatchingTest, dsl/DisruptorTest), with the reference's expected values, plus joins with
history and observers across processes with producers and consumers in both languages.
docs/disruptor-parity.md maps each scenario to its test."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import xdisruptor
from xdisruptor import AlwaysRewind, RewindUpTo
from xdisruptor.errors import (InvalidArgumentError, LappedError, MissedEventsError,
                               RewindableError, StateError)
from xdisruptor.pipeline import Pipeline, Stage
from conftest import PEER_DTYPE, REPO, read_line

STUB = np.dtype([("value", "<i8"), ("text", "S40")])
PRODUCERS = ["single", "multi"]
PEER_PY = REPO / "tests" / "peer" / "peer.py"


def make(name, capacity=16, producers="single", dtype=STUB):
    return xdisruptor.Ring.create(name, capacity=capacity, dtype=dtype, producers=producers)


def nothing(event, sequence):
    pass


# ------------------------------------------------------------------ SequencerTest [S+M]

@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_start_with_initial_value_and_batch_claim(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.producer() as p:
        assert p.publish_event(nothing) == 0
        assert p.publish_events(nothing, count=4) == 4  # the batch 1..4: its highest


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_indicate_has_available_capacity(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.consumer("gating"), \
            ring.producer() as p:
        assert p.has_available_capacity(1) and p.has_available_capacity(16)
        assert not p.has_available_capacity(17)
        p.publish_event(nothing)
        assert p.has_available_capacity(15)
        assert not p.has_available_capacity(16)
        with pytest.raises(InvalidArgumentError):
            p.has_available_capacity(0)


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_indicate_no_available_capacity(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.consumer("gating"), \
            ring.producer() as p:
        p.publish_events(nothing, count=16)
        assert not p.has_available_capacity(1)


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_hold_up_publisher_when_buffer_is_full(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.consumer("gating") as gating:
        waiting, done = threading.Event(), threading.Event()

        def publisher():
            with ring.producer() as p:
                p.publish_events(nothing, count=16)
                assert ring.highest_published(0, ring.cursor) == 15
                waiting.set()
                p.publish_event(nothing)  # blocks: full, and the gating consumer is at -1
                done.set()

        t = threading.Thread(target=publisher)
        t.start()
        assert waiting.wait(10)
        time.sleep(0.05)
        assert not done.is_set()
        assert ring.highest_published(15, ring.cursor) == 15
        batches = gating.batches(1)
        assert next(batches)["value"].shape == (1,)  # event 0 handed out
        next(batches)                                 # ... and released: 0 is free again
        assert done.wait(10)
        t.join()
        assert ring.highest_published(15, ring.cursor) == 16


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_try_next_until_full(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.consumer("gating"), \
            ring.producer() as p:
        for _ in range(16):
            assert p.try_publish_event(nothing)
        assert not p.try_publish_event(nothing)
        assert not p.try_publish_events(nothing, count=1)


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_calculate_remaining_capacity(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.consumer("gating"), \
            ring.producer() as p:
        assert p.remaining_capacity == 16
        for i in range(1, 16):
            p.publish_event(nothing)
            assert p.remaining_capacity == 16 - i


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_not_be_available_until_published(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.producer() as p:
        with p.claim(6):
            assert not any(ring.is_available(i) for i in range(6))
        assert all(ring.is_available(i) for i in range(6))
        assert not ring.is_available(6)


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_claim_specific_sequence(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.producer() as p:
        p.claim_sequence(14)
        assert p.publish_event(nothing) == 15


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_not_allow_bulk_claims_of_zero_or_less(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.producer() as p:
        for n in (0, -1):
            with pytest.raises(InvalidArgumentError):
                with p.claim(n):
                    pass
        assert ring.cursor == -1


@pytest.mark.parametrize("producers", PRODUCERS)
def test_sequences_become_unavailable_after_wrapping(ring_name, producers):
    with make(ring_name, producers=producers) as ring, ring.producer() as p:
        p.publish_event(nothing)
        assert ring.is_available(0)
        for _ in range(16):
            p.publish_event(nothing)
        assert not ring.is_available(0)


# ------------------------------------------------------------------------ RingBufferTest

def joined(event, sequence, *args):
    event["text"] = ("".join(args) + f"-{sequence}").encode()


def seq_only(event, sequence):
    event["text"] = str(sequence).encode()


def texts(ring, n=4):
    return [ring._raw.view(i, 1, STUB, False)["text"][0].decode() for i in range(n)]


def test_should_publish_event_with_zero_to_four_arguments(ring_name):
    cases = [((), ["0", "1"]), (("Foo",), ["Foo-0", "Foo-1"]),
             (("Foo", "Bar"), ["FooBar-0", "FooBar-1"]),
             (("Foo", "Bar", "Baz"), ["FooBarBaz-0", "FooBarBaz-1"]),
             (("Foo", "Bar", "Baz", "Bam"), ["FooBarBazBam-0", "FooBarBazBam-1"])]
    for i, (args, expected) in enumerate(cases):
        with make(f"{ring_name}-{i}", capacity=4) as ring, ring.producer() as p:
            translator = seq_only if not args else joined
            assert p.publish_event(translator, *args) == 0
            assert p.try_publish_event(translator, *args)
            assert texts(ring, 2) == expected
        xdisruptor.Ring.remove(f"{ring_name}-{i}")


def test_should_publish_events_in_batches(ring_name):
    with make(ring_name, capacity=4) as ring, ring.producer() as p:
        p.publish_events([seq_only, seq_only])
        assert p.try_publish_events([seq_only, seq_only])
        assert texts(ring) == ["0", "1", "2", "3"]
        p.publish_events(joined, ["Foo", "Foo"])
        assert p.try_publish_events(joined, ["Foo", "Foo"])
        assert texts(ring) == ["Foo-4", "Foo-5", "Foo-6", "Foo-7"]
        p.publish_events(joined, ["Foo"] * 2, ["Bar"] * 2, ["Baz"] * 2, ["Bam"] * 2)
        assert p.try_publish_events(joined, ["Foo"] * 2, ["Bar"] * 2, ["Baz"] * 2, ["Bam"] * 2)
        assert texts(ring) == [f"FooBarBazBam-{i}" for i in range(8, 12)]


def test_should_publish_events_with_batch_size_of_one_and_within_batch(ring_name):
    with make(ring_name, capacity=4) as ring, ring.producer() as p:
        p.publish_events(joined, ["Foo0", "Foo1"], ["Bar0", "Bar1"], start=0, count=1)
        assert p.try_publish_events(joined, ["Foo2", "Foo3"], ["Bar2", "Bar3"], start=0, count=1)
        assert texts(ring, 2) == ["Foo0Bar0-0", "Foo2Bar2-1"]
        assert texts(ring)[2:] == ["", ""]
    xdisruptor.Ring.remove(ring_name)
    with make(ring_name, capacity=4) as ring, ring.producer() as p:
        p.publish_events(joined, ["Foo0", "Foo1", "Foo2"], ["Bar0", "Bar1", "Bar2"],
                         ["Baz0", "Baz1", "Baz2"], start=1, count=2)
        assert p.try_publish_events(joined, ["Foo3", "Foo4", "Foo5"], ["Bar3", "Bar4", "Bar5"],
                                    ["Baz3", "Baz4", "Baz5"], start=1, count=2)
        assert texts(ring) == ["Foo1Bar1Baz1-0", "Foo2Bar2Baz2-1", "Foo4Bar4Baz4-2",
                               "Foo5Bar5Baz5-3"]
        p.publish_events([seq_only] * 3, start=1, count=2)
        assert texts(ring)[:2] == ["4", "5"]


# The validation table: every arity, publish and try; nothing published.
@pytest.mark.parametrize("start,count,length", [(1, 0, 4), (1, 3, 3), (1, 3, 2), (1, -1, 4),
                                                (-1, 2, 4), (0, 5, 5)])
@pytest.mark.parametrize("try_", [False, True])
def test_should_not_publish_events_for_an_invalid_batch(ring_name, start, count, length, try_):
    with make(ring_name, capacity=4) as ring, ring.producer() as p:
        publish = p.try_publish_events if try_ else p.publish_events
        with pytest.raises(InvalidArgumentError):
            publish([seq_only] * length, start=start, count=count)
        for arity in range(1, 5):
            with pytest.raises(InvalidArgumentError):
                publish(joined, *(["Foo"] * length for _ in range(arity)), start=start,
                        count=count)
        assert ring.cursor == -1
        assert texts(ring) == ["", "", "", ""]


def test_should_prevent_wrapping(ring_name):
    with make(ring_name, capacity=4, producers="multi") as ring, ring.consumer("gating"), \
            ring.producer() as p:
        for i in range(4):
            p.publish_event(joined, str(i))
        assert not p.try_publish_event(joined, "3")


def test_should_add_and_remove_sequences(ring_name):
    with make(ring_name) as ring:
        three, seven = ring.consumer("three"), ring.consumer("seven")
        with ring.producer() as p:
            p.publish_events(nothing, count=10)
        three._raw.release(3, 4)
        seven._raw.release(7, 8)
        assert ring.minimum_gating_sequence == 3
        three.close()
        assert ring.minimum_gating_sequence == 7
        seven.close()


# ------------------------------------------------------------------- SequenceBarrierTest

def test_should_wait_for_upstreams_and_be_interrupted_by_halt(ring_name):
    with make(ring_name, capacity=64, producers="multi") as ring, ring.producer() as p:
        ups = [ring.consumer(f"u{i}") for i in range(3)]
        reader = ring.consumer("reader", after=["u0", "u1", "u2"], wait="busy-spin")
        p.publish_events(nothing, count=10)
        for u in ups:
            u._raw.release(8, 9)
        got = []
        t = threading.Thread(target=lambda: got.extend(reader.batches()))
        t.start()
        deadline = time.monotonic() + 5
        while len(got) < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert [int(b["value"].shape[0]) for b in got] == [9]  # 0..8: the upstreams' minimum
        reader.halt()  # the reference's alert: the waiting loop ends
        t.join(5)
        assert not t.is_alive()
        for c in ups + [reader]:
            c.close()


# ------------------------------------------------------------- BatchEventProcessorTest

class Recorder:
    def __init__(self, consumer, stop_after):
        self.consumer, self.stop_after = consumer, stop_after
        self.events, self.sizes, self.depths, self.starts, self.shutdowns = [], [], [], 0, 0

    def on_start(self):
        self.starts += 1

    def on_shutdown(self):
        self.shutdowns += 1

    def on_batch_start(self, size, depth):
        self.sizes.append(size)
        self.depths.append(depth)

    def on_event(self, event, sequence, end_of_batch):
        self.events.append(sequence)
        if len(self.events) == self.stop_after:
            self.consumer.halt()


def test_should_call_methods_in_lifecycle_order_for_batch(ring_name):
    with make(ring_name, producers="multi") as ring, ring.consumer("c") as c, \
            ring.producer() as p:
        p.publish_events(nothing, count=3)
        h = Recorder(c, 3)
        assert c.run(h) == "halted"
        assert (h.starts, h.events, h.shutdowns) == (1, [0, 1, 2], 1)


def test_should_call_exception_handler_on_uncaught_exception(ring_name):
    with make(ring_name, producers="multi") as ring, ring.consumer("c") as c, \
            ring.producer() as p:
        seen = []

        def handler(event, sequence, end_of_batch):
            c.halt()
            raise ValueError("npe")

        def on_error(error, sequence, event):
            seen.append((str(error), sequence))
            return "skip"

        p.publish_event(nothing)
        assert c.run(handler, exception_handler=on_error) == "halted"
        assert seen == [("npe", 0)]
        assert c.sequence == 0  # skipped


def test_report_accurate_batch_sizes_at_batch_start_time(ring_name):
    with make(ring_name, producers="multi") as ring, ring.consumer("c") as c, \
            ring.producer() as p:
        class Loopback(Recorder):
            def on_event(self, event, sequence, end_of_batch):
                if not end_of_batch:
                    p.publish_event(nothing)
                super().on_event(event, sequence, end_of_batch)

        p.publish_events(nothing, count=3)
        h = Loopback(c, 6)
        c.run(h)
        assert h.sizes == [3, 2, 1]


def test_should_always_halt(ring_name):
    with make(ring_name) as ring, ring.consumer("c") as c:
        h = Recorder(c, 0)
        c.halt()  # halted before it runs: still one start, one shutdown
        assert c.run(h) == "halted"
        assert (h.starts, h.shutdowns) == (1, 1)
        for _ in range(100):
            h = Recorder(c, 0)
            t = threading.Thread(target=c.run, args=(h,))
            t.start()
            c.halt()
            t.join(5)
            assert not t.is_alive()
            assert (h.starts, h.shutdowns) == (1, 1)


def test_should_limit_the_batch_to_max_batch_size_and_announce_size_and_depth(ring_name):
    with make(ring_name) as ring, ring.consumer("c") as c, ring.producer() as p:
        with p.claim(5):
            pass  # 0..4 visible at once
        h = Recorder(c, 5)
        c.run(h, max_batch=3)
        assert h.sizes == [3, 2]
        assert h.depths == [5, 2]
        assert h.events == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("max_batch", [None, 16, 1000])
def test_should_cap_at_half_the_ring_by_default_and_not_at_all_when_asked_for_a_whole_ring(
        ring_name, max_batch):
    # the C++ processor's default (DefaultMaxBatch), through the compiled module
    assert [xdisruptor._xdisruptor.default_max_batch(c) for c in (1, 16, 8192, 1 << 20)] == [
        1, 8, 4096, 1 << 19]
    with make(ring_name) as ring, ring.consumer("c") as c, ring.producer() as p:
        with p.claim(16):
            pass  # a whole ring visible at once
        h = Recorder(c, 16)
        c.run(h, max_batch=max_batch)
        assert (h.sizes, h.depths) == (([8, 8], [16, 8]) if max_batch is None else ([16], [16]))
        assert h.events == list(range(16))


def test_should_hand_batches_of_at_most_half_the_ring_by_default(ring_name):
    with make(ring_name) as ring, ring.consumer("c") as c, ring.producer() as p:
        with p.claim(16):
            pass  # a whole ring visible at once
        p.close()
        assert [len(b) for b in c.batches()] == [8, 8]


# --------------------------------------------------------- RewindBatchEventProcessorTest

def events(*ranges):
    return [i for a, b in ranges for i in range(a, b + 1)]


class Rewinding:
    def __init__(self, consumer, rules, exit_value, non_rewindable=-1):
        self.consumer, self.rules = consumer, [list(r) + [0] for r in rules]
        self.exit_value, self.non_rewindable, self.values = exit_value, non_rewindable, []

    def on_event(self, event, sequence, end_of_batch):
        if sequence == self.non_rewindable:
            raise RuntimeError("not rewindable")
        for rule in self.rules:
            if rule[0] == sequence and rule[2] < rule[1]:
                rule[2] += 1
                raise RewindableError("rewind")
        self.values.append(int(event["value"]))
        if sequence == self.exit_value:
            self.consumer.halt()


def run_rewind(ring_name, entries, rules, exit_value, strategy=None, non_rewindable=-1,
               exception_handler=None):
    with make(ring_name, capacity=2048, producers="multi") as ring, \
            ring.consumer("rewinder") as c, ring.producer() as p:
        p.publish_events(lambda e, s: e.__setitem__("value", s), count=entries)
        h = Rewinding(c, rules, exit_value, non_rewindable)
        assert c.run(h, rewind_strategy=strategy or AlwaysRewind(),
                     exception_handler=exception_handler) == "halted"
        return h.values


REWIND_CASES = {
    "first-event-of-batch-of-one": (1, [(0, 1)], 0, events((0, 0))),
    "first-event-of-batch": (10, [(0, 1)], 9, events((0, 9))),
    "event-in-middle-of-batch": (10, [(8, 1)], 9, events((0, 7), (0, 9))),
    "last-event-of-batch": (10, [(9, 1)], 9, events((0, 8), (0, 9))),
    "batch-complete-on-last-event": (10, [(4, 1)], 9, events((0, 3), (0, 9))),
    "multiple-times": (10, [(8, 3)], 9, events((0, 7), (0, 7), (0, 7), (0, 9))),
    "multiple-times-on-last-event": (10, [(9, 3)], 9, events((0, 8), (0, 8), (0, 8), (0, 9))),
    "multiple-times-in-same-batch": (10, [(5, 3), (7, 3)], 9,
                                     events((0, 4), (0, 4), (0, 4), (0, 6), (0, 6), (0, 6),
                                            (0, 9))),
    "multiple-times-on-batch-of-one": (1, [(0, 3)], 0, events((0, 0))),
    "no-rewinds": (30, [], 29, events((0, 29))),
    "only-rewind-batch": (30, [(15, 3)], 29, events((0, 14), (0, 14), (0, 14), (0, 29))),
}


@pytest.mark.parametrize("case", REWIND_CASES, ids=list(REWIND_CASES))
def test_should_rewind_exactly_as_the_reference(ring_name, case):
    entries, rules, exit_value, expected = REWIND_CASES[case]
    assert run_rewind(ring_name, entries, rules, exit_value) == expected


def test_should_fall_over_when_non_rewindable_exception_is_thrown(ring_name):
    seen = []
    values = run_rewind(ring_name, 10, [], 9, non_rewindable=8,
                        exception_handler=lambda e, s, ev: seen.append(str(e)) or "skip")
    assert seen == ["not rewindable"]
    assert values == events((0, 7), (9, 9))


def test_should_invoke_the_rewind_strategy_only_on_rewinds(ring_name):
    calls = []

    def counting(error, attempts):
        calls.append(attempts)
        return True

    assert run_rewind(ring_name, 30, [(15, 3)], 29, counting) == \
        events((0, 14), (0, 14), (0, 14), (0, 29))
    assert calls == [1, 2, 3]
    calls.clear()
    xdisruptor.Ring.remove(ring_name)
    assert run_rewind(ring_name, 30, [(-1, -1)], 29, counting) == events((0, 29))
    assert calls == []


def test_should_cope_with_a_pausing_rewind_strategy(ring_name):
    assert run_rewind(ring_name, 30, [(15, 3)], 29, RewindUpTo(10 ** 6, pause=1e-6)) == \
        events((0, 14), (0, 14), (0, 14), (0, 29))


def test_should_give_up_when_using_the_give_up_rewind_strategy(ring_name):
    skipped = []
    values = run_rewind(ring_name, 30, [(15, 99), (25, 99)], 29, RewindUpTo(2),
                        exception_handler=lambda e, s, ev: skipped.append(s) or "skip")
    assert values == events((0, 14), (0, 14), (0, 14), (16, 24), (16, 24), (16, 24), (26, 29))
    assert skipped == [15, 25]


# ---------------------------------------------------------------------------- BatchingTest

class Parallel:
    def __init__(self, ordinal):
        self.ordinal, self.count, self.temp, self.batch, self.published = ordinal, 0, 0, 0, -1
        self.processed = -1

    def on_event(self, event, sequence, end_of_batch):
        if sequence & 1 == self.ordinal:
            self.count += 1
            self.temp = int(event["value"])
        self.batch += 1
        if end_of_batch or self.batch >= 10:
            self.published, self.batch = self.temp, 0
        self.processed = sequence


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_batch(ring_name, producers):
    with make(ring_name, capacity=2048, producers=producers) as ring:
        h1, h2 = Parallel(0), Parallel(1)
        pipeline = Pipeline(ring)
        pipeline.handle_events_with(Stage("h1", h1, wait="sleeping"),
                                    Stage("h2", h2, wait="sleeping"))
        pipeline.start()
        with ring.producer() as p:
            for i in range(0, 10000, 100):
                p.publish_events(lambda e, s: e.__setitem__("value", s), count=100)
        results = pipeline.join(timeout=60)
        assert [r.status for r in results] == ["closed", "closed"]
        assert (h1.published, h1.count) == (9998, 5000)
        assert (h2.published, h2.count) == (9999, 5000)


# ----------------------------------------------------------------------- dsl/DisruptorTest

class Counter:
    def __init__(self):
        self.events = 0

    def on_event(self, event, sequence, end_of_batch):
        self.events += 1


def test_should_process_messages_published_before_start_is_called(ring_name):
    with make(ring_name, capacity=4) as ring:
        counter = Counter()
        pipeline = Pipeline(ring)
        pipeline.handle_events_with(Stage("counter", counter))
        with ring.producer() as p:
            p.publish_event(nothing)  # before start: the stage gates from when it was added
            pipeline.start()
            p.publish_event(nothing)
        pipeline.join(timeout=10)
        assert counter.events == 2


def test_should_set_sequence_for_handlers_added_after_publish(ring_name):
    with make(ring_name, capacity=4) as ring:
        with ring.producer() as p:
            p.publish_events(nothing, count=4)
            p.publish_events(nothing, count=2)  # nobody gates yet: the ring laps
            pipeline = Pipeline(ring)
            pipeline.handle_events_with(Stage("h1", Counter()), Stage("h2", Counter()),
                                        Stage("h3", Counter()))
            assert sorted((c["name"], c["sequence"]) for c in ring.consumers()) == \
                [("h1", 5), ("h2", 5), ("h3", 5)]
            pipeline.start()
        pipeline.join(timeout=10)


def test_should_wait_for_stages_in_order_and_apply_default_and_own_exception_handlers(ring_name):
    with make(ring_name, capacity=4) as ring:
        order = []
        seen_default, seen_own = [], []

        def first(event, sequence, end_of_batch):
            order.append(("first", sequence))

        def second(event, sequence, end_of_batch):
            order.append(("second", sequence))
            raise ValueError("boom")

        def own(event, sequence, end_of_batch):
            raise KeyError("own")

        default = lambda e, s, ev: seen_default.append(str(e)) or "skip"  # noqa: E731
        pipeline = Pipeline(ring, exception_handler=default)
        pipeline.handle_events_with(Stage("first", first)).then(Stage("second", second))
        pipeline.after("first").handle_events_with(
            Stage("own", own, exception_handler=lambda e, s, ev: seen_own.append(s) or "skip"))
        pipeline.start()
        with ring.producer() as p:
            p.publish_events(nothing, count=2)
        pipeline.join(timeout=10)
        firsts = [s for who, s in order if who == "first"]
        seconds = [s for who, s in order if who == "second"]
        assert firsts == [0, 1] and seconds == [0, 1]
        # the second stage never saw an event before the first had
        assert order.index(("first", 0)) < order.index(("second", 0))
        assert seen_default == ["boom", "boom"]
        assert seen_own == [0, 1]


def test_should_refuse_an_unknown_dependency_and_starting_twice(ring_name):
    with make(ring_name, capacity=4) as ring:
        pipeline = Pipeline(ring, register_timeout=0.05)
        pipeline.after("nobody").handle_events_with(Stage("c", Counter()))
        with pytest.raises(xdisruptor.Error, match="nobody"):
            pipeline.start()
        ok = Pipeline(ring)
        ok.handle_events_with(Stage("d", Counter()))
        ok.start()
        with pytest.raises(xdisruptor.Error):
            ok.start()
        ok.halt()
        ok.join(timeout=10)


def test_should_support_custom_processors_as_dependencies_and_dependents(ring_name):
    with make(ring_name, capacity=4) as ring:
        seen = []

        def custom(consumer):
            for batch in consumer.batches():
                seen.extend(int(v) for v in batch["value"])
            return "closed"

        after_custom = Counter()
        pipeline = Pipeline(ring)
        pipeline.handle_events_with(Stage("custom", processor=custom)).then(
            Stage("after", after_custom))
        pipeline.start()
        with ring.producer() as p:
            for i in range(10):
                p.publish_event(lambda e, s: e.__setitem__("value", s))
        results = pipeline.join(timeout=10)
        assert [r.status for r in results] == ["closed", "closed"]
        assert seen == list(range(10)) and after_custom.events == 10
        with pytest.raises(InvalidArgumentError):
            Stage("both", Counter(), processor=custom)
        with pytest.raises(InvalidArgumentError):
            Stage("neither")


def test_should_report_progress_by_updating_sequence_via_callback(ring_name):
    with make(ring_name) as ring, ring.consumer("reporting") as c, ring.producer() as p:
        mid_batch = []

        class Reporting:
            def set_sequence_callback(self, release):
                self.release = release

            def on_event(self, event, sequence, end_of_batch):
                self.release(sequence)
                if not end_of_batch:
                    mid_batch.append(ring.minimum_gating_sequence)
                else:
                    c.halt()

        p.publish_events(nothing, count=2)
        c.run(Reporting())
        assert mid_batch == [0]  # released in the middle of the batch
        assert c.sequence == 1


def test_should_neither_count_twice_nor_go_back_when_a_handler_that_released_early_stops(
        ring_name):
    with make(ring_name) as ring, ring.consumer("early") as c, ring.producer() as p:

        class ReleasesThenFails:
            def set_sequence_callback(self, release):
                self.release = release

            def on_event(self, event, sequence, end_of_batch):
                if sequence == 3:
                    self.release(5)  # reports progress past the event it fails on next
                    raise ValueError("bad event")

        p.publish_events(nothing, count=8)
        with pytest.raises(xdisruptor.HandlerError):
            c.run(ReleasesThenFails(), error_policy="stop")
        assert c.sequence == 5  # not moved back to 2
        assert c.events == 6  # 0..5 once (the stop released 0..2 again: 9)


# ------------------------------------------------------ joins with history and observers

def test_should_join_at_a_protected_older_sequence_and_refuse_an_unprotected_one(ring_name):
    with make(ring_name, capacity=8) as ring, ring.consumer("anchor") as anchor, \
            ring.producer() as p:
        p.publish_events(lambda e, s: e.__setitem__("value", s), count=6)
        with ring.consumer("late", start_at=2) as late:
            assert late.join_sequence == 1
            batch = next(late.batches())
            assert list(batch["value"]) == [2, 3, 4, 5]
        with pytest.raises(InvalidArgumentError):
            ring.consumer("future", start_at=7)
        with pytest.raises(InvalidArgumentError):
            ring.consumer("negative", start_at=-1)
        anchor._raw.release(5, 6)
        nxt = ring.consumer("next", start_at=6)
        p.publish_events(nothing, count=8)
        with pytest.raises(MissedEventsError, match="start at 6 or later"):
            ring.consumer("old", start_at=3)
        assert "old" not in [c["name"] for c in ring.consumers()]
        ring.consumer("old", start_at=6).close()
        nxt.close()


@pytest.mark.parametrize("producers", PRODUCERS)
def test_should_tell_an_observer_exactly_when_it_is_lapped(ring_name, producers):
    with make(ring_name, capacity=8, producers=producers) as ring:
        obs = ring.consumer("observer", gating=False)
        assert obs.observer
        with ring.producer() as p:
            p.publish_events(nothing, count=8)  # a whole lap: nothing overwritten yet
            batches = obs.batches(3)
            assert len(next(batches)) == 3  # 0..2 handed out
            assert len(next(batches)) == 3  # 0..2 released, 3..5 handed out
            p.publish_events(nothing, count=3)  # 8..10 overwrite 0..2 only
            assert len(next(batches)) == 2  # 3..5 were intact: released; 6..7 handed out
            p.publish_events(nothing, count=1)  # 11 overwrites 3 (released: fine)
            p.publish_events(nothing, count=3)  # 12..14 overwrite 4..6: 6 was handed out
            with pytest.raises(LappedError, match="from 6 on"):
                next(batches)
        assert obs.sequence == 5  # the lapped batch was not released
        obs.close()


# Across processes: a C++ or Python producer runs flat out while consumers of either
# language join with history at the slowest gating sequence, and observers are lapped.

def peer_cmd(peer, lang, mode, ring, *args):
    head = [peer] if lang == "cpp" else [sys.executable, str(PEER_PY)]
    return head + [mode, f"--ring={ring}", *args]


def start(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = read_line(proc).strip()
    return proc, line


LANG_PAIRS = [("cpp", "py"), ("py", "cpp"), ("cpp", "cpp"), ("py", "py")]


@pytest.mark.parametrize("producer_lang,joiner_lang", LANG_PAIRS,
                         ids=[f"{p}-producer-{j}-joiners" for p, j in LANG_PAIRS])
def test_should_join_with_history_across_processes_while_the_producer_runs(
        ring_name, peer, producer_lang, joiner_lang):
    n = 400_000
    with xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE):
        anchor, line = start(peer_cmd(peer, "cpp", "consume", ring_name, "--name=anchor",
                                      f"--events={n}", "--wait=yielding"))
        assert line == "ready"
        # (a rate, so that joiners of either language start while it runs)
        producer, line = start(peer_cmd(peer, producer_lang, "produce", ring_name,
                                        f"--until={n}", "--batch=64", "--rate=100000",
                                        "--wait=yielding"))
        assert line == "ready"
        joined = refused = 0
        attempt = 0
        while producer.poll() is None and joined < 4 and attempt < 40:
            back = (attempt % 3) * 16  # 0 (usually protected), 16, 32 (racing the producer)
            attempt += 1
            joiner, line = start(peer_cmd(peer, joiner_lang, "consume", ring_name,
                                          f"--name=joiner{attempt}", f"--events={n}",
                                          f"--start_back={back}", "--wait=yielding"))
            if line == "ready":
                out, err = joiner.communicate(timeout=120)
                assert joiner.returncode == 0, (back, out, err)
                joined += 1
            else:
                joiner.communicate(timeout=30)
                assert joiner.returncode == 2, line
                refused += 1
        assert producer.wait(timeout=120) == 0
        out, err = anchor.communicate(timeout=120)
        assert anchor.returncode == 0, (out, err)
        assert joined > 0, f"no join succeeded ({refused} refused)"


@pytest.mark.parametrize("producer_lang,observer_lang", LANG_PAIRS,
                         ids=[f"{p}-producer-{o}-observer" for p, o in LANG_PAIRS])
def test_should_tell_observers_across_processes_when_they_are_lapped(
        ring_name, peer, producer_lang, observer_lang):
    n = 400_000
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=PEER_DTYPE):
        observer, line = start(peer_cmd(peer, observer_lang, "consume", ring_name,
                                        "--name=observer", f"--events={n}", "--observer",
                                        "--wait=yielding"))
        assert line == "ready"
        producer, line = start(peer_cmd(peer, producer_lang, "produce", ring_name,
                                        f"--until={n}", "--batch=16", "--wait=yielding"))
        assert line == "ready"
        assert producer.wait(timeout=120) == 0
        out, err = observer.communicate(timeout=120)
        # 0: it kept up and read all intact; 6: lapped, and every damaged event it read was
        # in the batch it was told about. 1 would be damage it was not told about.
        assert observer.returncode in (0, 6), (out, err)


def test_should_show_observers_and_joins_with_history_in_the_tool(ring_name, tool):
    import json
    with make(ring_name, capacity=8) as ring, ring.consumer("anchor"), ring.producer() as p:
        p.publish_events(nothing, count=5)
        with ring.consumer("late", start_at=2), ring.consumer("watcher", gating=False):
            stat = json.loads(subprocess.run([tool, "stat", ring_name, "--json"],
                                             capture_output=True, text=True, check=True).stdout)
            by_name = {c["name"]: c for c in stat["consumers"]}
            assert by_name["watcher"]["observer"] and not by_name["watcher"]["gating"]
            assert by_name["late"]["gating"] and not by_name["late"]["observer"]
            assert by_name["late"]["join_sequence"] == 1
            assert by_name["anchor"]["join_sequence"] == -1
            text = subprocess.run([tool, "stat", ring_name], capture_output=True, text=True,
                                  check=True).stdout
            assert "active+OBS" in text
            assert [c["observer"] for c in ring.consumers() if c["name"] == "watcher"] == [True]
