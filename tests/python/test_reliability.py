"""Crashes, restarts and evictions as Python users meet them, and the operator tool."""

import json
import os
import pathlib
import signal
import subprocess

import numpy as np
import pytest

import xdisruptor
from conftest import REPO

DT = np.dtype([("seq", "<i8"), ("value", "<f8")])


def events(first, count):
    out = np.zeros(count, dtype=DT)
    out["seq"] = np.arange(first, first + count)
    out["value"] = out["seq"] * 2.0
    return out


def test_should_resume_after_a_crash_without_losing_an_event(ring_name, fork_ctx):
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=DT)
    producer = ring.producer()
    done = fork_ctx.Event()

    def consume_some():
        with xdisruptor.Ring.attach(ring_name) as r:
            c = r.consumer("durable")

            class UpTo29:
                def on_batch(self, batch, first):
                    if batch["seq"][-1] >= 29:
                        c.halt()  # run() returns after releasing this batch

            c.run(UpTo29(), max_batch=10)
            done.set()
            os.kill(os.getpid(), signal.SIGKILL)  # dies registered, as a crash would

    p = fork_ctx.Process(target=consume_some)
    p.start()
    while not ring.consumers():
        pass
    producer.publish_batch(events(0, 40))
    assert done.wait(30)
    p.join(10)
    # Not as a stage after another: its entry ran after none, and would read events before
    # that stage handled them.
    with ring.consumer("up") as up:
        with pytest.raises(xdisruptor.StateError, match=r"running after \[\], but was asked"):
            ring.consumer("durable", after=["up"])
    again = ring.consumer("durable")
    assert again.resumed and again.sequence == 29
    producer.publish_batch(events(40, 20))
    producer.close()
    seqs = [seq for seq, value in again]
    assert seqs == list(range(30, 60))
    again.close()
    ring.close()


def test_should_refuse_an_evicted_name_unless_it_rejoins(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=DT) as ring:
        victim = ring.consumer("victim", stall_policy="evict")
        with ring.producer() as producer:
            xdisruptor.Ring.evict(ring_name, "victim")
            with pytest.raises(xdisruptor.EvictedError):
                next(iter(victim))  # it learns at its next wait
            producer.publish_batch(events(0, 5))
            victim.close()
            with pytest.raises(xdisruptor.MissedEventsError, match="5 events"):
                ring.consumer("victim")
            back = ring.consumer("victim", rejoin_at_cursor=True)
            assert back.missed == 5
            stats = ring.stats()
            entry = [c for c in stats["consumers"] if c["name"] == "victim"][0]
            assert entry["evictions"] == 1 and entry["stall_policy"] == "hold"
            back.close()


def test_should_redeliver_the_rest_of_a_batch_after_breaking_out(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=DT) as ring:
        consumer = ring.consumer("reader")
        with ring.producer() as producer:
            producer.publish_batch(events(0, 10))
        for seq, value in consumer:
            if seq == 3:
                break
        assert consumer.sequence == -1  # nothing released: 0..9 were one batch
        assert [s for s, v in consumer] == list(range(10))
        consumer.close()


def test_should_raise_producer_gone_when_the_producer_dies(ring_name, fork_ctx):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=DT) as ring:
        consumer = ring.consumer("reader", wait="blocking")

        def produce_and_die():
            with xdisruptor.Ring.attach(ring_name) as r:
                p = r.producer()
                p.publish_batch(events(0, 7))
                os._exit(0)

        p = fork_ctx.Process(target=produce_and_die)
        p.start()
        p.join(10)
        got = []
        with pytest.raises(xdisruptor.ProducerGoneError, match="up to 6"):
            for seq, value in consumer:
                got.append(seq)
        assert got == list(range(7))
        consumer.close()


def test_should_show_tune_evict_and_remove_through_the_tool(ring_name, tool):
    def run(*args, check=True):
        return subprocess.run([tool, *args], capture_output=True, text=True, check=check,
                              timeout=30)

    ring = xdisruptor.Ring.create(ring_name, capacity=32, dtype=DT)
    consumer = ring.consumer("watched", wait="blocking")
    with ring.producer() as producer:
        producer.publish_batch(events(0, 12))
        assert ring_name in run("ls").stdout
        listed = json.loads(run("ls", "--json").stdout)
        assert any(r["name"] == ring_name for r in listed)
        stat = json.loads(run("stat", ring_name, "--json").stdout)
        assert stat["cursor"] == 11 and stat["producer_alive"]
        (entry,) = stat["consumers"]
        assert (entry["name"], entry["lag"], entry["wait"]) == ("watched", 12, "blocking")
        assert "watched" in run("stat", ring_name).stdout
        run("tune", ring_name, "watched", "--wait=sleeping",
            "--wait_params=sleep_ceiling=0.0005,spin_tries=7")
        tuned = ring.stats()["consumers"][0]
        assert (tuned["wait"], tuned["sleep_ceiling"], tuned["spin_tries"]) == (
            "sleeping", 0.0005, 7)
        # The one parser refuses what the flags used to wrap around or overflow.
        for bad in ("spin_tries=-1", "timeout=1e300", "sleep_ceiling=abc", "colour=1"):
            refused = run("tune", ring_name, "watched", "--wait=sleeping",
                          f"--wait_params={bad}", check=False)
            assert refused.returncode == 1 and "wait parameter" in refused.stderr, bad
        run("evict", ring_name, "watched")
        assert ring.stats()["consumers"][0]["state"] == "evicted"
        assert run("evict", ring_name, "nobody", check=False).returncode == 1
        assert run("top", ring_name, "--iterations=1", "--interval_ms=10").returncode == 0
    consumer.close()
    ring.close()
    run("rm", ring_name)
    assert not xdisruptor.Ring.exists(ring_name)
    assert run("stat", ring_name, check=False).returncode == 1
    assert run("frobnicate", check=False).returncode == 2
