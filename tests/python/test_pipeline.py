"""Error policies of Consumer.run, and the Python pipeline DSL with thread and process stages
joined by a C++ stage program."""

import multiprocessing
import os
import subprocess
import threading
import time

import numpy as np
import pytest

import xdisruptor
from xdisruptor.pipeline import Pipeline, Stage
from conftest import TICK_SCHEMA

SIMPLE = np.dtype([("sequence", "<i8"), ("value", "<f8")])


def publish(ring, n, first=0):
    with ring.producer(wait="yielding") as producer:
        data = np.zeros(n, dtype=ring.dtype)
        data["sequence"] = np.arange(first, first + n)
        for lo in range(0, n, 100):
            producer.publish_batch(data[lo:lo + 100])


class Flaky:
    def __init__(self, at=(), transient=0, rewindable=False):
        self.rewindable = rewindable
        self.at = set(at)
        self.left = {a: transient for a in at}
        self.transient = transient
        self.seen = []
        self.batches = []
        self.errors = []

    def on_batch_start(self, size, depth):
        self.batches.append((size, depth))

    def on_event(self, event, sequence, end_of_batch):
        assert event["sequence"] == sequence
        if sequence in self.at:
            if self.transient == 0 or self.left[sequence] > 0:
                self.left[sequence] -= 1
                if self.rewindable:
                    raise xdisruptor.RewindableError(f"not yet {sequence}")
                raise ValueError(f"bad {sequence}")
        self.seen.append(sequence)


def run_stage(ring_name, handler, n=2000, **run_args):
    ring = xdisruptor.Ring.create(ring_name, capacity=4096, dtype=SIMPLE)  # closed by GC
    consumer = ring.consumer("stage", wait="yielding")
    publish(ring, n)  # the ring holds them all; the stream is closed
    try:
        return consumer.run(handler, **run_args), consumer, None
    except xdisruptor.HandlerError as e:
        return "failed", consumer, e


def test_should_release_what_came_before_and_raise_when_policy_is_stop(ring_name):
    flaky = Flaky(at=[777])
    status, consumer, error = run_stage(ring_name, flaky, error_policy="stop")
    assert status == "failed"
    assert (error.sequence, error.attempts, error.stage) == (777, 1, "stage")
    assert "ValueError: bad 777" in error.traceback
    assert isinstance(error.__cause__, ValueError)
    assert consumer.sequence == 776 and consumer.handler_errors == 1
    # Run again (as a restarted stage would): it starts at the failing event.
    rest = Flaky()
    assert consumer.run(rest) == "closed"
    assert rest.seen[0] == 777 and rest.seen[-1] == 1999


def test_should_go_on_past_failures_when_policy_is_skip(ring_name, capsys):
    flaky = Flaky(at=[5, 1500])
    status, consumer, _ = run_stage(ring_name, flaky, error_policy="skip")
    assert status == "closed"
    assert flaky.seen == [s for s in range(2000) if s not in (5, 1500)]
    assert consumer.handler_errors == 2 and consumer.sequence == 1999
    err = capsys.readouterr().err
    assert "handler failed on event 5 (skipped)" in err and "ValueError: bad 1500" in err


def test_should_rerun_the_batch_when_policy_is_retry(ring_name):
    flaky = Flaky(at=[1000], transient=2, rewindable=True)
    status, consumer, _ = run_stage(ring_name, flaky, error_policy="retry", max_retries=3,
                                    retry_pause=0.001, max_batch=64)
    assert status == "closed"
    assert consumer.handler_errors == 2
    assert sorted(set(flaky.seen)) == list(range(2000))
    # The batch holding 1000 (960..1023 with batches of 64) ran three times, up to 999 twice.
    assert flaky.seen.count(960) == 3 and flaky.seen.count(1000) == 1
    assert flaky.seen.count(1023) == 1


def test_should_stop_when_retries_run_out(ring_name):
    flaky = Flaky(at=[42], rewindable=True)
    status, consumer, error = run_stage(ring_name, flaky, error_policy="retry", max_retries=2,
                                        retry_pause=0)
    assert status == "failed" and error.attempts == 3 and error.sequence == 42
    assert consumer.handler_errors == 3 and consumer.sequence == 41


def test_should_not_retry_a_fatal_error_under_the_retry_policy(ring_name):
    flaky = Flaky(at=[42])  # a ValueError: fatal, never rerun
    status, consumer, error = run_stage(ring_name, flaky, error_policy="retry",
                                        max_retries=1000, retry_pause=0)
    assert status == "failed" and error.attempts == 1 and error.sequence == 42
    assert consumer.handler_errors == 1 and flaky.seen.count(0) == 1


def test_should_cap_batches_and_report_depth_when_max_batch_is_set(ring_name):
    flaky = Flaky()
    status, _, _ = run_stage(ring_name, flaky, max_batch=100)
    assert status == "closed"
    assert sum(size for size, _ in flaky.batches) == 2000
    assert all(1 <= size <= 100 and depth >= size for size, depth in flaky.batches)
    assert flaky.batches[0][1] >= 1000  # everything was there when it started


def test_should_call_on_handler_error_instead_of_printing_when_defined(ring_name, capsys):
    class Quiet(Flaky):
        def on_handler_error(self, event, sequence, exc):
            self.errors.append((sequence, str(exc)))

    quiet = Quiet(at=[3])
    run_stage(ring_name, quiet, error_policy="skip")
    assert quiet.errors == [(3, "bad 3")]
    assert "handler failed" not in capsys.readouterr().err


def test_should_refuse_bad_policies(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        consumer = ring.consumer("c")
        with pytest.raises(xdisruptor.InvalidArgumentError, match="error_policy"):
            consumer.run(lambda *a: None, error_policy="ignore")
        with pytest.raises(xdisruptor.InvalidArgumentError):
            consumer.run(lambda *a: None, max_retries=-1)


# -- the DSL -------------------------------------------------------------------------------

class CheckTicks:
    """Fails on any tick without the C++ enricher's change, or out of order."""

    def __init__(self):
        self.next = None

    def on_batch(self, ticks, first):
        if self.next is not None and first != self.next:
            raise AssertionError(f"gap at {first}")
        assert np.array_equal(ticks["sequence"], np.arange(first, first + len(ticks)))
        assert np.array_equal(ticks["mid"], (ticks["bid"] + ticks["ask"]) / 2)
        self.next = first + len(ticks)


def tick_batch(first, n):
    ticks = np.zeros(n, dtype=xdisruptor.schema_to_dtype(TICK_SCHEMA))
    ticks["sequence"] = np.arange(first, first + n)
    ticks["bid"] = 100 + (np.arange(first, first + n) % 7) * 0.01
    ticks["ask"] = ticks["bid"] + 0.02
    return ticks


def test_should_run_thread_and_process_stages_after_a_cpp_stage(ring_name, examples_bin):
    ring = xdisruptor.Ring.create(ring_name, capacity=1024,
                                  dtype=xdisruptor.schema_to_dtype(TICK_SCHEMA))
    env = dict(os.environ, XDISRUPTOR_RING=ring_name, XDISRUPTOR_STAGE="enricher",
               XDISRUPTOR_WAIT="blocking")
    cpp = subprocess.Popen([f"{examples_bin}/xdisruptor_demo_stage", "--role=enricher"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pipeline = Pipeline(ring)
    pipeline.after("enricher") \
        .handle_events_with(Stage("in-process", CheckTicks(), mode="process"),
                            Stage("in-thread", CheckTicks(), mode="thread", wait="sleeping")) \
        .then(Stage("last", CheckTicks(), mode="process"))
    pipeline.start()  # waits for "enricher" to register
    names = {c["name"]: c for c in ring.consumers()}
    assert names["in-process"]["pid"] != os.getpid()
    assert names["in-thread"]["pid"] == os.getpid()
    assert names["last"]["after"] == ["in-process", "in-thread"]
    with ring.producer() as producer:
        for lo in range(0, 100_000, 500):
            producer.publish_batch(tick_batch(lo, 500))
    results = pipeline.join(timeout=60)
    out, err = cpp.communicate(timeout=30)
    assert cpp.returncode == 0, err
    assert [r.name for r in results] == ["in-process", "in-thread", "last"]
    for r in results:
        assert (r.status, r.events, r.error) == ("closed", 100_000, ""), r
    ring.close()


def test_should_halt_the_others_and_report_the_traceback_when_a_stage_fails(ring_name):
    ring = xdisruptor.Ring.create(ring_name, capacity=256, dtype=SIMPLE)
    pipeline = Pipeline(ring)
    pipeline.handle_events_with(Stage("ok", lambda e, s, end: None, wait="yielding")) \
        .then(Stage("bad", Flaky(at=[300]), wait="yielding")) \
        .then(Stage("after-bad", lambda e, s, end: None))
    pipeline.start()
    producer = threading.Thread(target=publish, args=(ring, 250))
    producer.start()
    producer.join()
    results = {r.name: r for r in pipeline.join(timeout=30)}
    assert results["ok"].status == "closed" or results["ok"].status == "halted"
    assert results["bad"].status == "closed"  # 250 < 300: no failure yet
    ring.close()

    ring = xdisruptor.Ring.create(ring_name + "b", capacity=256, dtype=SIMPLE)
    try:
        pipeline = Pipeline(ring)
        pipeline.handle_events_with(Stage("bad", Flaky(at=[30]), wait="yielding")) \
            .then(Stage("after-bad", lambda e, s, end: None, mode="process"))
        pipeline.start()
        with ring.producer(wait="yielding") as producer:
            data = np.zeros(200, dtype=SIMPLE)
            data["sequence"] = np.arange(200)
            producer.publish_batch(data)
            results = {r.name: r for r in pipeline.join(timeout=30)}
        assert results["bad"].status == "failed"
        assert "HandlerError" in results["bad"].error and "event 30" in results["bad"].error
        assert "ValueError: bad 30" in results["bad"].traceback
        assert results["bad"].sequence == 29
        assert results["after-bad"].status == "halted"
        assert results["after-bad"].events <= 30
    finally:
        ring.close()
        xdisruptor.Ring.remove(ring_name + "b")


def test_should_refuse_duplicate_names_and_cycles(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        p = Pipeline(ring)
        with pytest.raises(xdisruptor.InvalidArgumentError, match="two stages are called 'a'"):
            p.handle_events_with(Stage("a", print), Stage("a", print))
        p = Pipeline(ring)
        p.handle_events_with(Stage("c", print))  # registered when added
        p.after("b").handle_events_with(Stage("a", print))
        p.after("a").handle_events_with(Stage("b", print))
        with pytest.raises(xdisruptor.InvalidArgumentError, match="cycle"):
            p.start()
        assert ring.consumers() == []  # refused: "c" left again at once
        with pytest.raises(xdisruptor.InvalidArgumentError, match="mode"):
            Stage("x", print, mode="fiber")
        p = Pipeline(ring, register_timeout=0.05)
        p.after("nobody").handle_events_with(Stage("a", print))
        with pytest.raises(xdisruptor.NotFoundError):
            p.start()
        assert ring.consumers() == []
        # A process stage registered before another fails to start: it leaves at once.
        p = Pipeline(ring, register_timeout=0.05)
        p.handle_events_with(Stage("proc", print, mode="process"))
        p.after("nobody").handle_events_with(Stage("late", print))
        with pytest.raises(xdisruptor.NotFoundError):
            p.start()
        assert ring.consumers() == []  # it deregistered (a killed child would stay listed)
        assert not [c for c in multiprocessing.active_children() if c.is_alive()]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_should_hand_a_stage_registered_later_every_event_its_upstream_sees(ring_name, mode,
                                                                          tmp_path):
    """A thread stage registers when added, a process stage at start(): a stage after a
    stage of this pipeline starts where that one did, so the 30 events published between the
    two registrations (a producer already running) reach both, each once, in order."""
    seen = tmp_path / "seen"  # (a file: a process stage ends with os._exit)

    class Later:
        def on_batch(self, events, first):
            with open(seen, "a") as f:
                f.write("".join(f"{s}\n" for s in events["sequence"].tolist()))

    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        p = Pipeline(ring)
        p.handle_events_with(Stage("first", lambda e, s, end: None))  # registers now
        producer = ring.producer(wait="yielding")
        for i in range(30):
            producer.publish((i, 0.0))
        p.after("first").handle_events_with(Stage("later", Later(), mode=mode))
        p.start()
        for i in range(30, 50):
            producer.publish((i, 0.0))
        producer.close()
        results = {r.name: r for r in p.join()}
        assert results["first"].events == 50 and results["later"].events == 50, results
        assert [int(line) for line in seen.read_text().split()] == list(range(50))
