"""C++ and Python processes over one ring, every event checked on the receiving side."""

import numpy as np
import pytest

import xdisruptor
from conftest import PEER_DTYPE, check_peer_events, finish, peer_events, start_peer


def consume_in_processes(fork_ctx, producer, results, consume, args_list):
    """Runs consume(*args) in a forked process per entry of args_list while the C++ `producer`
    runs; checks every process and the producer ended well; returns the results sorted."""
    procs = [fork_ctx.Process(target=consume, args=args) for args in args_list]
    for p in procs:
        p.start()
    code, out, err = finish(producer)
    assert code == 0, err
    outcome = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return outcome


def test_should_give_python_the_cpp_dtype_when_cpp_made_the_ring(ring_name, peer, fork_ctx):
    events = 300_000
    producer = start_peer(peer, "produce", f"--ring={ring_name}", "--create",
                          "--capacity=4096", f"--events={events}", "--consumers=2",
                          "--wait=yielding")
    results = fork_ctx.Queue()

    def consume(name, by_batches):
        with xdisruptor.Ring.attach(ring_name) as ring:
            assert ring.dtype == PEER_DTYPE  # learnt from the ring, not told
            with ring.consumer(name, wait="yielding") as c:
                expected, bad = 0, 0
                if by_batches:
                    for batch in c.batches():
                        bad += not check_peer_events(batch, expected)
                        expected += len(batch)
                else:
                    for seq, value, price, mark, text in c:
                        bad += (seq != expected or value != seq * 3 + 1 or price != seq * 0.5
                                or text != b"event %d" % seq)
                        expected += 1
                results.put((name, expected, bad))

    outcome = consume_in_processes(fork_ctx, producer, results, consume,
                                   [(n, n == "batches") for n in ("events", "batches")])
    assert outcome == [("batches", events, 0), ("events", events, 0)]


def test_should_deliver_every_event_to_cpp_when_python_produces(ring_name, peer):
    events = 300_000
    with xdisruptor.Ring.create(ring_name, capacity=4096, dtype=PEER_DTYPE) as ring:
        consumer = start_peer(peer, "consume", f"--ring={ring_name}", "--name=cpp",
                              f"--events={events}", "--wait=blocking")
        with ring.producer(wait="blocking") as producer:
            for first in range(0, events - 1000, 10_000):
                producer.publish_batch(peer_events(first, min(10_000, events - 1000 - first)))
            for rec in peer_events(events - 1000, 1000):  # the last ones one at a time
                producer.publish(rec)
        code, out, err = finish(consumer)
        assert code == 0, out + err
        assert f"consumed {events} events, 0 bad" in out


def test_should_show_a_python_stage_the_changes_of_a_cpp_stage_before_it(ring_name, peer):
    events = 100_000
    with xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE) as ring:
        marker = start_peer(peer, "consume", f"--ring={ring_name}", "--name=marker", "--mark",
                            f"--events={events}", "--wait=yielding")
        checker = ring.consumer("checker", after=["marker"], wait="yielding")
        with ring.producer() as producer:
            producer.publish_batch(peer_events(0, 500))  # some before the stage runs
            import threading

            def rest():
                for first in range(500, events, 5000):
                    producer.publish_batch(peer_events(first, min(5000, events - first)))
                producer.close()

            t = threading.Thread(target=rest)
            t.start()
            seen, unmarked = 0, 0
            for batch in checker.batches():
                seq = batch["sequence"]
                unmarked += int(np.count_nonzero(batch["mark"] != seq.astype(np.uint64) * 7))
                assert check_peer_events(batch, seen)
                seen += len(batch)
            t.join()
        checker.close()
        code, out, err = finish(marker)
        assert code == 0, out + err
        assert (seen, unmarked) == (events, 0)


def test_should_refuse_a_cpp_consumer_whose_event_type_differs(ring_name, peer):
    other = np.dtype([("sequence", "<i8"), ("x", "<f8")])
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=other):
        import subprocess
        proc = subprocess.run([peer, "consume", f"--ring={ring_name}", "--name=wrong"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2
        assert "schema" in proc.stderr or "bytes" in proc.stderr


def test_should_deliver_everything_to_blocking_python_consumers_that_spin_or_sleep_at_once(
        ring_name, peer, fork_ctx):
    # The blocking wait spins before its futex (adaptively); with phase_spin=0 it sleeps at
    # once. Both take a C++ producer's stream whole, in order, from other processes.
    events = 300_000
    producer = start_peer(peer, "produce", f"--ring={ring_name}", "--create",
                          "--capacity=1024", f"--events={events}", "--consumers=2",
                          "--wait=blocking")
    results = fork_ctx.Queue()

    def consume(name, params):
        with xdisruptor.Ring.attach(ring_name) as ring:
            with ring.consumer(name, wait="blocking", **params) as c:
                expected, bad = 0, 0
                for batch in c.batches():
                    bad += not check_peer_events(batch, expected)
                    expected += len(batch)
                entry = next(e for e in ring.stats()["consumers"] if e["name"] == name)
                results.put((name, expected, bad, entry["phase_spin"]))

    outcome = consume_in_processes(fork_ctx, producer, results, consume,
                                   [("spins", {}), ("sleeps", {"phase_spin": 0})])
    assert outcome == [("sleeps", events, 0, 0.0), ("spins", events, 0, 1e-05)]
