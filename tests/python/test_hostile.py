"""Careless and hostile use from Python: each test is the regression test of a failure that
once hung, crashed the interpreter or lost data (waits in slices, a closed or shared producer
or consumer, fork(), files planted under a ring's name, a ring too large, stray gating bits,
permissions, bad numbers) and of the slow-consumer limit."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import numpy as np
import pytest

import xdisruptor

DT = np.dtype([("seq", "<i8"), ("value", "<f8")])
GATING_MASK_OFFSET = 4096 + 256  # layout.h: ProducerState::gating_mask


def batch(first, count):
    out = np.zeros(count, dtype=DT)
    out["seq"] = np.arange(first, first + count)
    return out


def register_and_wait(ring_name, name, conn, **options):
    """A consumer process: registers, says so, then does nothing until killed."""
    ring = xdisruptor.Ring.attach(ring_name)
    consumer = ring.consumer(name, **options)  # noqa: F841 - registered until killed
    conn.send("ready")
    time.sleep(3600)


def run_python(code, timeout=60):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


def test_should_evict_a_dead_consumer_when_a_python_producer_waits(ring_name, fork_ctx):
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT)
    parent, child = fork_ctx.Pipe()
    victim = fork_ctx.Process(target=register_and_wait,
                              args=(ring_name, "victim", child), kwargs={"stall_policy": "evict"})
    victim.start()
    assert parent.recv() == "ready"
    victim.kill()
    victim.join()
    with ring.producer() as producer:
        # Three laps: the Python binding waits in 50 ms slices; the eviction check (100 ms)
        # must still come round (pytest-timeout ends this test if it never does).
        producer.publish_batch(batch(0, 48))
    (entry,) = ring.stats()["consumers"]
    assert entry["state"] == "evicted" and entry["evictions"] == 1
    ring.close()


@pytest.mark.parametrize("timeout", [0.049, 0.12, 0.3])
def test_should_call_on_timeout_when_the_strategy_timeout_is_longer_than_a_slice(ring_name,
                                                                                 timeout):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT) as ring:
        consumer = ring.consumer("c", wait="timeout-blocking", timeout=timeout)
        fired = []

        def on_timeout(sequence):
            fired.append(time.monotonic())
            if len(fired) == 2:
                consumer.halt()

        start = time.monotonic()
        assert list(consumer.batches(on_timeout=on_timeout)) == []
        assert len(fired) == 2
        assert fired[0] - start >= timeout * 0.9  # not before the strategy's timeout
        consumer.close()


def test_should_raise_not_crash_when_a_closed_producer_is_used():
    done = run_python("""
        import numpy as np, xdisruptor, uuid
        name = "xdpy-closed-" + uuid.uuid4().hex[:8]
        ring = xdisruptor.Ring.create(name, capacity=16, dtype=[("seq", "<i8")])
        try:
            producer = ring.producer()
            producer.close()
            for call in (lambda: producer.publish((1,)),
                         lambda: producer.publish_batch(np.zeros(3, dtype=ring.dtype)),
                         lambda: producer.claim(2).__enter__(),
                         lambda: producer.cursor):
                try:
                    call()
                    print("no error")
                except xdisruptor.StateError as e:
                    print("StateError:", e)
        finally:
            ring.close()
            xdisruptor.Ring.remove(name, force=True)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("StateError: the producer is closed") == 4, done.stdout


def read_slowly(consumer, got):
    """Reads to the end of the stream one record at a time, ~0.2 ms apart (the ring stays
    full)."""
    for b in consumer.batches(max_size=1):
        got.extend(tuple(r) for r in b.tolist())
        time.sleep(0.0002)


@pytest.mark.parametrize("how", ["publish", "publish_batch", "publish_many"])
def test_should_hand_each_sequence_out_once_when_threads_share_a_producer(ring_name, how):
    per_thread, threads = 300, 3
    with xdisruptor.Ring.create(ring_name, capacity=8, dtype=DT) as ring:
        consumer = ring.consumer("slow")
        producer = ring.producer()
        got = []
        reader = threading.Thread(target=read_slowly, args=(consumer, got))
        reader.start()
        errors = []

        def publish(tid):
            try:
                for i in range(per_thread):
                    record = (tid * 1000 + i, float(tid))
                    if how == "publish":
                        producer.publish(record)
                    elif how == "publish_batch":
                        producer.publish_batch(np.array([record], DT))
                    else:
                        producer.publish_many([record])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        writers = [threading.Thread(target=publish, args=(t,)) for t in range(threads)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(60)
        producer.close()  # the reader ends with the stream, whatever it got
        reader.join(60)
        assert not errors, errors
        assert not reader.is_alive(), f"read {len(got)} of {per_thread * threads}"
        # Every record once: two threads claiming one sequence would lose one of theirs.
        assert sorted(got) == sorted((t * 1000 + i, float(t))
                                     for t in range(threads) for i in range(per_thread))
        for t in range(threads):  # each thread's records in its order
            mine = [seq for seq, tid in got if tid == t]
            assert mine == sorted(mine)
        consumer.close()


@pytest.mark.parametrize("use", ["remaining_capacity", "publish", "close", "close-keep"])
def test_should_refuse_a_signal_handler_that_uses_the_producer_its_thread_waits_in(ring_name,
                                                                                  use):
    """A handler runs between the slices of a publish waiting for room, while that publish
    holds the producer: using the producer there would wait on itself for ever. (Reading the
    cursor needs no use and works.)"""
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT) as ring:
        consumer = ring.consumer("never-reads")
        producer = ring.producer()
        producer.publish_batch(batch(0, 16))  # full
        seen = []

        def handler(signum, frame):
            seen.append(producer.cursor)
            if use == "remaining_capacity":
                producer.remaining_capacity  # noqa: B018 - the use that must not hang
            elif use == "publish":
                producer.publish(batch(99, 1).tolist()[0])
            else:
                producer.close(end_stream=use == "close")

        old = signal.signal(signal.SIGALRM, handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            with pytest.raises(xdisruptor.StateError, match="already inside a call"):
                producer.publish(batch(16, 1).tolist()[0])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert seen == [15]
        assert producer.cursor == 15  # nothing claimed, the stream not ended: still usable
        assert not ring.stream_closed
        producer.close()
        assert ring.stream_closed
        consumer.close()


@pytest.mark.parametrize("end_stream", [False, True])
@pytest.mark.parametrize("how", ["publish_batch", "publish"])
def test_should_tell_a_waiting_publish_when_another_thread_closes_the_producer(ring_name, how,
                                                                                end_stream):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT) as ring:
        consumer = ring.consumer("never-reads")  # holds the producer once the ring is full
        producer = ring.producer()
        outcome = []

        def publish():
            try:
                if how == "publish_batch":
                    producer.publish_batch(batch(0, 64))
                else:  # one record at a time: the 17th waits for room
                    for record in batch(0, 64).tolist():
                        producer.publish(record)
                outcome.append("published")
            except xdisruptor.StateError as e:
                outcome.append(str(e))

        thread = threading.Thread(target=publish)
        thread.start()
        while ring.cursor < 15:  # (the producer is one thread's: ask the ring)
            time.sleep(0.01)
        time.sleep(0.1)  # the publish waits for room now
        producer.close(end_stream=end_stream)
        thread.join(10)
        assert not thread.is_alive()
        # Ending the stream stops the waiting publish first: nothing may land after the end.
        expected = "ended the stream" if end_stream else "closed by another thread"
        assert outcome and expected in outcome[0], outcome
        assert ring.cursor == 15
        if end_stream:  # the consumer gets the 16 events, then the end
            assert [int(s) for b in consumer.batches() for s in b["seq"]] == list(range(16))
        consumer.close()


def test_should_allow_one_loop_per_consumer(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=DT) as ring:
        consumer = ring.consumer("c")
        with ring.producer() as producer:
            producer.publish_batch(batch(0, 10))
            first = iter(consumer.batches())
            next(first)
            with pytest.raises(xdisruptor.StateError, match="already read by another loop"):
                next(iter(consumer))
            errors = []

            def other_thread():
                try:
                    next(iter(consumer.batches()))
                except xdisruptor.StateError as e:
                    errors.append(str(e))

            t = threading.Thread(target=other_thread)
            t.start()
            t.join(10)
            assert errors and "in another thread" in errors[0]
            first.close()  # the first loop ends: a new one may start
            assert next(iter(consumer.batches()))["seq"][0] == 0  # its batch comes again
        consumer.close()


def test_should_hand_no_event_to_a_loop_after_another_thread_closes_the_consumer(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=DT) as ring:
        consumer = ring.consumer("c", wait="blocking")
        seen = []
        loop = threading.Thread(target=lambda: seen.extend(e[0] for e in consumer))
        loop.start()
        time.sleep(0.2)  # the loop waits for an event
        consumer.close()
        with ring.producer() as producer:
            producer.publish_batch(batch(0, 10))
        loop.join(10)
        assert not loop.is_alive() and seen == []
        assert ring.consumers() == []  # it left once its loop ended


def test_should_refuse_a_forked_child_the_parents_producer_and_consumer(ring_name, fork_ctx):
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=DT)
    consumer = ring.consumer("reader")
    producer = ring.producer()
    producer.publish_batch(batch(0, 10))
    parent, child = fork_ctx.Pipe()

    def in_child(conn):
        results = []
        for call in (lambda: producer.publish((99, 0.0)),
                     lambda: producer.publish_batch(batch(99, 3)),
                     lambda: producer.publish_batch([(99, 0.0), (100, 0.0)]),
                     lambda: next(iter(consumer)), lambda: producer.close()):
            try:
                call()
                results.append("no error")
            except xdisruptor.StateError as e:
                results.append(str(e))
        conn.send(results)

    p = fork_ctx.Process(target=in_child, args=(child,))
    p.start()
    results = parent.recv()
    p.join(10)
    assert all("before fork()" in r for r in results), results
    producer.publish((10, 1.0))
    producer.close()
    got = [e[0] for e in consumer]
    assert got == list(range(11))  # the parent's events, none of the child's
    consumer.close()
    ring.close()


@pytest.fixture
def fifo(ring_name):
    path = f"/dev/shm/{ring_name}"
    os.mkfifo(path)
    yield ring_name
    if os.path.lexists(path):
        os.unlink(path)


def test_should_never_open_a_fifo_planted_under_a_rings_name(fifo, tool):
    assert not xdisruptor.Ring.exists(fifo)
    with pytest.raises(xdisruptor.StateError, match="a FIFO"):
        xdisruptor.Ring.attach(fifo)
    with pytest.raises(xdisruptor.StateError, match="a FIFO"):
        xdisruptor.Ring.remove(fifo)
    ls = subprocess.run([tool, "ls", "--json"], capture_output=True, text=True, timeout=30)
    assert ls.returncode == 0 and fifo not in ls.stdout
    rm = subprocess.run([tool, "rm", fifo], capture_output=True, text=True, timeout=30)
    assert rm.returncode == 1 and "a FIFO" in rm.stderr
    rm = subprocess.run([tool, "rm", fifo, "--force"], capture_output=True, text=True, timeout=30)
    assert rm.returncode == 0 and not os.path.lexists(f"/dev/shm/{fifo}")


def test_should_remove_only_rings_and_say_who_still_maps_one(ring_name, tool, fork_ctx):
    path = f"/dev/shm/{ring_name}"
    with open(path, "w") as f:
        f.write("not a ring")
    rm = subprocess.run([tool, "rm", ring_name], capture_output=True, text=True, timeout=30)
    assert rm.returncode == 1 and "not an xdisruptor ring" in rm.stderr
    xdisruptor.Ring.remove(ring_name, force=True)

    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT)
    parent, child = fork_ctx.Pipe()
    holder = fork_ctx.Process(target=register_and_wait, args=(ring_name, "holder", child))
    holder.start()
    assert parent.recv() == "ready"
    ring.close()  # this process no longer maps it; the holder does
    rm = subprocess.run([tool, "rm", ring_name], capture_output=True, text=True, timeout=30)
    assert rm.returncode == 1 and str(holder.pid) in rm.stderr, rm.stderr
    with pytest.raises(xdisruptor.StateError, match=str(holder.pid)):
        xdisruptor.Ring.remove(ring_name)
    rm = subprocess.run([tool, "rm", ring_name, "--force"], capture_output=True, text=True,
                        timeout=30)
    assert rm.returncode == 0
    holder.kill()
    holder.join()


def test_should_refuse_a_ring_too_large_for_shared_memory_and_leave_nothing(ring_name):
    free = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    capacity = 1
    while capacity * 1024 <= free and capacity < 1 << 30:
        capacity *= 2
    for producers in ("single", "multi"):
        with pytest.raises(xdisruptor.TableFullError, match="free"):
            xdisruptor.Ring.create(ring_name, capacity=capacity, slot_size=1024, dtype=DT,
                                   producers=producers)
        assert not xdisruptor.Ring.exists(ring_name)


def test_should_clear_a_stray_gating_bit_that_would_block_the_producer(ring_name, tool):
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT)
    mask = np.memmap(f"/dev/shm/{ring_name}", dtype="<u8", mode="r+",
                     offset=GATING_MASK_OFFSET, shape=(1,))
    with ring.producer() as producer:  # (attaching would clear a stray bit at once)
        mask[0] |= 1 << 9  # entry 9 is free: garbage a hostile writer left
        stat = json.loads(subprocess.run([tool, "stat", ring_name, "--json"],
                                         capture_output=True, text=True, timeout=30,
                                         check=True).stdout)
        (entry,) = stat["consumers"]
        assert (entry["index"], entry["state"], entry["gating"]) == (9, "free", True)
        producer.publish_batch(batch(0, 64))  # blocked until the bit is cleared
    assert int(mask[0]) == 0
    del mask
    ring.close()


def test_should_give_clear_errors_for_bad_numbers_and_leave_no_orphan(ring_name):
    with pytest.raises(xdisruptor.DTypeError):
        xdisruptor.Ring.create(ring_name, capacity=8, dtype=np.dtype([]))
    assert not xdisruptor.Ring.exists(ring_name)
    for kwargs, name in (({"capacity": -1}, "capacity"), ({"capacity": 2 ** 70}, "capacity"),
                         ({"capacity": "big"}, "capacity"), ({"mode": -5}, "mode"),
                         ({"slot_size": 3}, "slot_size")):
        with pytest.raises(xdisruptor.InvalidArgumentError, match=name):
            xdisruptor.Ring.create(ring_name, dtype=DT, **{"capacity": 16, **kwargs})
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT) as ring:
        with pytest.raises(xdisruptor.InvalidArgumentError, match="max_batch"):
            ring.consumer("c", max_batch=-3)
        with pytest.raises(xdisruptor.InvalidArgumentError, match="max_lag"):
            ring.consumer("c", stall_policy="evict", max_lag=-1)
        with ring.producer() as producer:
            with pytest.raises(xdisruptor.InvalidArgumentError, match="n must be"):
                producer.claim(10 ** 20).__enter__()


def test_should_list_a_corrupt_ring_with_its_reason(ring_name, tool):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT):
        pass
    with open(f"/dev/shm/{ring_name}", "r+b") as f:
        f.seek(48)  # the schema hash: the header no longer checks out
        f.write(b"\xff" * 8)
    listed = json.loads(subprocess.run([tool, "ls", "--json"], capture_output=True, text=True,
                                       timeout=30, check=True).stdout)
    (entry,) = [r for r in listed if r["name"] == ring_name]
    assert "corrupt" in entry["error"]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


@needs_root
def test_should_let_a_group_monitor_read_but_refuse_writers_and_strangers(ring_name, tool):
    # nogroup (65534) may read (mode 0640 + group); it may not write; nobody else may read.
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT, mode=0o640, group="65534")
    st = os.stat(f"/dev/shm/{ring_name}")
    assert (st.st_mode & 0o777, st.st_gid) == (0o640, 65534)

    def as_user(uid, gid, *args):
        return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                               *args], capture_output=True, text=True, timeout=30)

    stat = as_user(65534, 65534, tool, "stat", ring_name, "--json")
    assert stat.returncode == 0, stat.stderr
    assert json.loads(stat.stdout)["capacity"] == 16
    code = f"""
        import xdisruptor
        ring = xdisruptor.Ring.attach("{ring_name}", read_only=True)
        print(ring.stats()["capacity"])
        try:
            xdisruptor.Ring.attach("{ring_name}")
        except xdisruptor.PermissionDeniedError as e:
            print("denied:", e)
    """
    # The other user may not read this checkout or its virtual environment (a fresh clone in
    # a 0700 temporary directory): give it a readable copy of the packages it imports.
    readable = tempfile.mkdtemp(prefix="xd-monitor-")
    try:
        os.chmod(readable, 0o755)
        site = pathlib.Path(np.__file__).resolve().parents[1]
        # (a .libs directory: the libraries a repaired wheel carries)
        for package in ("xdisruptor", "xdisruptor.libs", "numpy", "numpy.libs"):
            if (site / package).is_dir():
                shutil.copytree(site / package, pathlib.Path(readable) / package)
        monitor = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             os.path.realpath(sys.executable), "-c", textwrap.dedent(code)],
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "PYTHONPATH": readable}, cwd=readable)
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert monitor.stdout.startswith("16\n") and "denied:" in monitor.stdout, monitor.stderr
    stranger = as_user(12345, 12345, tool, "stat", ring_name)
    assert stranger.returncode == 1 and "permission denied" in stranger.stderr
    assert "mode 0640" in stranger.stderr
    ring.close()


@needs_root
def test_should_refuse_to_remove_a_ring_another_users_registered_process_uses(ring_name, tool):
    """`rm` run by a user who cannot read another user's /proc/PID/maps still finds the ring
    in use: the processes registered in it (here a consumer of root's, in a ring nobody owns)
    are asked too. It removed the ring from under them."""
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT, mode=0o666)
    os.chown(f"/dev/shm/{ring_name}", 65534, 65534)  # nobody's ring: nobody may remove it
    consumer = ring.consumer("roots-reader")
    rm = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tool,
                         "rm", ring_name], capture_output=True, text=True, timeout=30)
    assert rm.returncode == 1 and "still mapped by process" in rm.stderr, rm.stderr
    assert str(os.getpid()) in rm.stderr and xdisruptor.Ring.exists(ring_name)
    consumer.close()
    ring.close()
    rm = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tool,
                         "rm", ring_name], capture_output=True, text=True, timeout=30)
    assert rm.returncode == 0, rm.stderr  # nobody left: its owner removes it
    assert not xdisruptor.Ring.exists(ring_name)


@pytest.mark.parametrize("via", ["python", "tool"])
def test_should_evict_a_live_slow_consumer_and_tell_it_what_it_missed(ring_name, tool, via):
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT)
    if via == "python":
        slow = ring.consumer("slow", stall_policy="evict", max_lag=8, max_lag_s=0.05)
    else:
        slow = ring.consumer("slow", stall_policy="evict")
        subprocess.run([tool, "limit", ring_name, "slow", "--max_lag=8", "--max_lag_s=0.05"],
                       check=True, capture_output=True, timeout=30)
    assert ring.stats()["consumers"][0]["max_lag"] == 8
    with ring.producer() as producer:
        producer.publish_batch(batch(0, 4))
        reader = iter(slow.batches())
        assert len(next(reader)) == 4  # it read 4 (released when it asks again), then stalls
        producer.publish_batch(batch(4, 60))  # blocked until the slow one is evicted
        with pytest.raises(xdisruptor.EvictedError):
            next(reader)  # releases 0..3, then finds itself evicted
    slow.close()
    with pytest.raises(xdisruptor.MissedEventsError, match="60 events"):
        ring.consumer("slow", stall_policy="evict")
    back = ring.consumer("slow", stall_policy="evict", rejoin_at_cursor=True)
    assert back.missed == 60 and back.sequence == 63
    back.close()
    ring.close()
