"""The guarantee matrix: every row of docs/reliability.md, with the producer in C++ and in
Python and the consumers in both (the test peers tests/peer/peer.cc and peer.py run the same
roles with the same flags). Each consumer keeps a durable log of what it processed (see
peer.py), so "nothing lost, nothing twice" is checked from the logs, across kills."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import xdisruptor
from conftest import REPO, read_line

PEER_PY = REPO / "tests" / "peer" / "peer.py"
LANGS = ["cpp", "py"]
MATRIX = [(p, c) for p in LANGS for c in LANGS]
IDS = [f"{p}-producer-{c}-consumer" for p, c in MATRIX]


class Cast:
    """Starts peers of either language on one ring and reads their consumers' logs."""

    def __init__(self, peer, ring, tmp_path):
        self.peer, self.ring, self.dir = peer, ring, pathlib.Path(tmp_path)
        self.procs = []

    def cmd(self, lang, mode, *args):
        head = [self.peer] if lang == "cpp" else [sys.executable, str(PEER_PY)]
        return head + [mode, f"--ring={self.ring}", *args]

    def start(self, lang, mode, *args, expect="ready"):
        proc = subprocess.Popen(self.cmd(lang, mode, *args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        if expect:
            line = read_line(proc).strip()
            if line != expect:
                proc.kill()
                raise AssertionError(f"{lang} {mode} did not start: {line!r} "
                                     f"{proc.stderr.read()}")
        return proc

    def producer(self, lang, *args, **kw):
        return self.start(lang, "produce", "--batch=8", "--wait=blocking", *args, **kw)

    def consumer(self, lang, name, *args):
        return self.start(lang, "chaos-consume", f"--name={name}", f"--log={self.log(name)}",
                          *args)

    def log(self, name):
        return self.dir / f"{name}.log"

    def ranges(self, name):
        """[(first, last)] processed, and [(told, joined)] rejoins, from a consumer's log."""
        runs, gaps = [], []
        if self.log(name).exists():
            for line in open(self.log(name)):
                kind, *rest = line.split()
                if kind == "E":
                    runs.append((int(rest[0]), int(rest[1])))
                elif kind == "G":
                    gaps.append((int(rest[0]), int(rest[1])))
        return runs, gaps

    def exactly_once(self, name, n):
        runs, gaps = self.ranges(name)
        expected = 0
        for first, last in runs:
            assert first == expected, f"{name}: expected {expected}, got {first}..{last}"
            expected = last + 1
        assert expected == n and not gaps, (name, expected, gaps)

    def cursor(self):
        with xdisruptor.Ring.attach(self.ring, read_only=True) as ring:
            return ring.cursor

    def stats(self):
        with xdisruptor.Ring.attach(self.ring, read_only=True) as ring:
            return ring.stats()

    def wait_until(self, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, "timed out waiting"
            time.sleep(0.01)

    def finish(self, proc, timeout=120):
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err

    def kill(self, proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def cast(peer, ring_name, tmp_path):
    c = Cast(peer, ring_name, tmp_path)
    yield c
    c.stop_all()


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_resume_a_killed_hold_consumer_with_nothing_lost(cast, producer, consumer):
    n = 20_000
    cast.producer(producer, "--create", "--capacity=256", f"--until={n}", "--rate=20000",
                  "--consumers=1", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    cons = cast.consumer(consumer, "held")
    cast.wait_until(lambda: cast.cursor() > 3000)
    cast.kill(cons)  # the producer now waits for it (hold): nothing may be overwritten
    time.sleep(0.3)
    cons = cast.consumer(consumer, "held")
    assert cast.finish(cons)[0] == 0
    cast.exactly_once("held", n)


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_evict_a_killed_evict_consumer_and_tell_it_exactly_what_it_missed(
        cast, producer, consumer):
    n = 6_000
    prod = cast.producer(producer, "--create", "--capacity=64", f"--until={n}",
                         "--rate=10000", "--consumers=1", "--noclose", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    cons = cast.consumer(consumer, "evictable", "--policy=evict")
    cast.wait_until(lambda: cast.cursor() > 500)
    cast.kill(cons)
    assert cast.finish(prod)[0] == 0  # the producer finished without it: evicted
    (entry,) = cast.stats()["consumers"]
    assert entry["state"] == "evicted" and entry["evictions"] == 1
    runs, _ = cast.ranges("evictable")
    left_at = runs[-1][1] if runs else -1
    cons = cast.consumer(consumer, "evictable", "--policy=evict")  # rejoins at the cursor
    cons.kill()
    cons.wait(10)
    runs, gaps = cast.ranges("evictable")
    (told, joined), = gaps
    assert joined == n - 1
    # told counts from its last release; it may have logged up to a batch more before the kill
    assert 0 <= told - (joined - left_at) <= 64


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_tell_a_live_consumer_an_operator_evicted_it(cast, tool, producer, consumer):
    cast.producer(producer, "--create", "--capacity=64", "--until=1000000", "--rate=5000",
                  "--consumers=1", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    cons = cast.consumer(consumer, "watched", "--policy=evict")
    cast.wait_until(lambda: cast.cursor() > 200)
    subprocess.run([tool, "evict", cast.ring, "watched"], check=True, capture_output=True,
                   timeout=30)
    code, _, err = cast.finish(cons)
    assert code == 3 and "evicted while alive" in err


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_drain_a_dead_producer_and_go_on_with_a_new_one(cast, producer, consumer):
    n = 20_000
    other = "py" if producer == "cpp" else "cpp"
    prod = cast.producer(producer, "--create", "--capacity=256", f"--until={n}", "--rate=20000",
                         "--consumers=1", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    cons = cast.consumer(consumer, "reader")
    cast.wait_until(lambda: cast.cursor() > 4000)
    cast.kill(prod)  # no close: the consumer drains, sees the producer gone, waits again
    time.sleep(0.3)
    assert cons.poll() is None
    prod = cast.producer(other, f"--until={n}")  # the other language continues the sequence
    assert cast.finish(prod)[0] == 0
    assert cast.finish(cons)[0] == 0
    cast.exactly_once("reader", n)


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_evict_a_live_consumer_beyond_its_slow_consumer_limit(cast, producer, consumer):
    prod = cast.producer(producer, "--create", "--capacity=64", "--until=3000",
                         "--consumers=1", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    cons = cast.consumer(consumer, "slow", "--policy=evict", "--max_lag=16", "--max_lag_s=0.2",
                         "--slow_ms=50")
    assert cast.finish(prod)[0] == 0  # the producer goes on once the slow one is evicted
    code, _, err = cast.finish(cons)
    assert code == 3 and "evicted while alive" in err
    (entry,) = cast.stats()["consumers"]
    assert entry["state"] == "evicted" and entry["max_lag"] == 16


@pytest.mark.parametrize("producer", LANGS)
def test_should_evict_a_killed_child_its_producer_has_not_reaped(cast, producer):
    # The producer spawned its consumer as a child and never reaps it: once killed, the child
    # is a zombie, which counts as dead (pid + start time, state Z), so it is evicted.
    prod = cast.producer(producer, "--create", "--capacity=64", "--until=5000", "--rate=10000",
                         "--consumers=1", "--spawn=child", f"--log={cast.log('child')}",
                         expect=None)
    line = read_line(prod).split()
    assert line[0] == "child", line
    child = int(line[1])
    cast.wait_until(lambda: cast.cursor() > 300)
    os.kill(child, signal.SIGKILL)
    cast.wait_until(lambda: open(f"/proc/{child}/stat").read().split(") ")[1][0] == "Z")
    assert cast.finish(prod)[0] == 0
    (entry,) = cast.stats()["consumers"]
    assert entry["state"] == "evicted" and entry["pid"] == child


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_tell_a_downstream_stage_its_upstream_is_gone(cast, producer, consumer):
    cast.producer(producer, "--create", "--capacity=64", "--until=100000", "--rate=5000",
                  "--consumers=2", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    up = cast.consumer(consumer, "upstream", "--policy=evict")
    down = cast.consumer(consumer, "downstream", "--after=upstream")
    cast.wait_until(lambda: cast.cursor() > 200)
    cast.kill(up)  # evicted by the producer once the ring fills
    code, _, err = cast.finish(down)
    assert code == 4, err


@pytest.mark.parametrize("producer,consumer", MATRIX, ids=IDS)
def test_should_report_a_multi_producer_that_died_mid_claim(cast, producer, consumer):
    feed = cast.producer(producer, "--create", "--multi", "--capacity=64", "--events=100",
                         "--noclose", expect=None)
    cast.wait_until(lambda: xdisruptor.Ring.exists(cast.ring))
    cons = cast.consumer(consumer, "reader")
    assert cast.finish(feed)[0] == 0
    staller = cast.producer(producer, "--multi", "--stall", expect="ready")
    assert read_line(staller).strip() == "stalled"
    cast.kill(staller)  # its claimed events will never be published
    code, _, err = cast.finish(cons)
    assert code == 5, err


@pytest.mark.parametrize("first,second", MATRIX, ids=[f"{a}-then-{b}" for a, b in MATRIX])
def test_should_refuse_a_second_live_producer(cast, first, second):
    cast.producer(first, "--create", "--capacity=64", "--events=1000000", "--consumers=1",
                  expect="ready")
    code, _, err = cast.finish(cast.producer(second, expect=None), timeout=60)
    assert code == 2 and "already has a live producer" in err


def test_should_resume_where_an_abandoned_consumer_stopped_in_another_process(ring_name):
    """consumer.abandon() leaves the ring as a crash would: the entry keeps holding the
    producer, and the name registered again in another process resumes after the last
    released event, handed again the batch that was handed out but not released."""
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=np.dtype([("v", "<i8")]))
    consumer = ring.consumer("stage")
    producer = ring.producer()
    for i in range(16):
        producer.publish((i,))
    batches = consumer.batches(max_size=6)
    assert list(next(batches)["v"]) == list(range(6))
    assert list(next(batches)["v"]) == list(range(6, 12))  # released 0..5; 6..11 in hand
    batches.close()
    with pytest.raises(xdisruptor.StateError):  # not while a loop reads it
        loop = consumer.batches(max_size=2)
        next(loop)
        consumer.abandon()
    loop.close()
    consumer.abandon()
    assert "closed" in repr(consumer)
    assert producer.remaining_capacity == 6  # still gating: 0..5 released, 6..15 held
    script = (f"import xdisruptor\nr = xdisruptor.Ring.attach({ring_name!r})\n"
              f"c = r.consumer('stage')\nprint(c.resumed, c.sequence)\n"
              f"b = next(c.batches(max_size=16))\nprint(b['v'].tolist())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True 5", str(list(range(6, 16)))]
    ring.close()


def test_should_say_halted_not_closed_when_halted_before_draining_a_closed_stream(ring_name):
    """run() reports how the loop ended: halted with events of a closed stream still unread
    is "halted" (a pipeline stage halted mid-drain by another's failure did not drain)."""
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=np.dtype([("v", "<i8")]))
    consumer = ring.consumer("stage")
    with ring.producer() as producer:
        for i in range(10):
            producer.publish((i,))
        producer.close()
    seen = []

    def halt_at_first(event, sequence, end_of_batch):
        seen.append(sequence)
        consumer.halt()

    assert consumer.run(halt_at_first, max_batch=4) == "halted"
    assert seen == [0, 1, 2, 3]  # the batch in hand, then it stopped
    assert consumer.run(lambda e, s, end: seen.append(s)) == "closed"
    assert seen == list(range(4)) + list(range(4, 10))
    consumer.close()
    ring.close()
