"""Worker groups across real processes: C++ (the test peer's `work` mode, the C++ processor)
and Python members (Consumer.batches) share one stream, each event handled by one live member;
members SIGKILLed at random and restarted: every event handled at least once, duplicates only
inside the runs of killed members; a stage after the group sees every event once a member
handled it; `xdisruptor stat` shows the group; errors for bad input."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import xdisruptor
from conftest import PEER_DTYPE, finish, peer_events, start_peer

pytestmark = pytest.mark.timeout(300)


def python_member(ring_name, name, group, log, claim=64, ready=None, busy_us=0,
                  leave_after=0):
    """A Python member: marks each event (for the stage after the group), appends the
    sequences of each batch to `log` before asking for the next (which releases it); with
    `leave_after`, it leaves the group (close) after that many batches."""
    ring = xdisruptor.Ring.attach(ring_name)
    with ring.consumer(name, group=group, claim=claim, writable=True) as c, open(log, "ab") as f:
        if ready is not None:
            ready.set()
        for n, batch in enumerate(c.batches()):
            if leave_after and n == leave_after:
                c.close()  # the batch in hand was released with this one asked for
                break
            seq = batch["sequence"]
            if not np.array_equal(seq, np.arange(c.batch_first, c.batch_first + len(batch))):
                os._exit(3)
            if busy_us:
                until = time.perf_counter() + busy_us * 1e-6 * len(batch)
                while time.perf_counter() < until:
                    pass
            batch["mark"] = seq.astype(np.uint64) * 7
            f.write(seq.tobytes())
            f.flush()
    os._exit(0)


def read_logs(paths):
    return np.concatenate([np.fromfile(p, dtype=np.int64) for p in paths if os.path.exists(p)]
                          or [np.zeros(0, np.int64)])


def start_cpp_member(peer, ring_name, name, group, log, *extra):
    return start_peer(peer, "work", f"--ring={ring_name}", f"--name={name}", f"--group={group}",
                      f"--log={log}", "--wait=blocking", *extra)


def start_py_member(fork_ctx, ring_name, name, group, log, **kw):
    ready = fork_ctx.Event()
    p = fork_ctx.Process(target=python_member, args=(ring_name, name, group, log),
                         kwargs=dict(kw, ready=ready))
    p.start()
    assert ready.wait(30), f"Python member {name} did not register"
    return p


def test_four_members_cpp_and_python_handle_every_event_exactly_once(
        ring_name, peer, fork_ctx, tmp_path):
    events = 2_000_000
    xdisruptor.Ring.create(ring_name, capacity=65536, dtype=PEER_DTYPE)
    logs = [tmp_path / f"m{i}.log" for i in range(4)]
    cpp = [start_cpp_member(peer, ring_name, f"cpp{i}", "G", logs[i]) for i in range(2)]
    py = [start_py_member(fork_ctx, ring_name, f"py{i}", "G", logs[2 + i]) for i in range(2)]
    after = start_peer(peer, "consume", f"--ring={ring_name}", "--name=after", "--after=G",
                       "--expect_mark", f"--events={events}", "--wait=blocking")
    producer = subprocess.run([peer, "produce", f"--ring={ring_name}", f"--events={events}",
                               "--batch=256"], capture_output=True, text=True, timeout=240)
    assert producer.returncode == 0, producer.stderr
    rc, out, err = finish(after, timeout=240)
    assert rc == 0, out + err  # every event, in order, marked by the member that had it
    for p in cpp:
        rc, out, err = finish(p, timeout=60)
        assert rc == 0 and ", 0 bad, 0 taken over" in out, out + err
    for p in py:
        p.join(60)
        assert p.exitcode == 0
    handled = read_logs(logs)
    assert len(handled) == events
    assert np.array_equal(np.sort(handled), np.arange(events))
    counts = [len(np.fromfile(l, dtype=np.int64)) for l in logs]
    assert all(c > 0 for c in counts), counts  # every member took part


def test_members_killed_at_random_and_restarted_lose_nothing(ring_name, peer, fork_ctx,
                                                             tmp_path):
    """SIGKILL a random member every ~0.2 s and start it again by name (C++ and Python): every
    event is handled at least once; each duplicate is inside a killed incarnation's log, and
    there are at most `claim` per kill (its run taken over or resumed)."""
    events, claim = 300_000, 64
    xdisruptor.Ring.create(ring_name, capacity=8192, dtype=PEER_DTYPE)
    rng = random.Random(1234)
    incarnation = {}
    killed_logs = []
    procs = {}

    def start(name):
        n = incarnation[name] = incarnation.get(name, -1) + 1
        log = tmp_path / f"{name}.{n}.log"
        if name.startswith("cpp"):
            # Busy members (10 us per event): a kill lands in the middle of a run.
            procs[name] = (start_cpp_member(peer, ring_name, name, "G", log, f"--claim={claim}",
                                            "--busy_us=10"), log)
        else:
            procs[name] = (start_py_member(fork_ctx, ring_name, name, "G", log, claim=claim,
                                           busy_us=10), log)

    names = ["cpp0", "cpp1", "py0", "py1"]
    for name in names:
        start(name)
    after = start_peer(peer, "consume", f"--ring={ring_name}", "--name=after", "--after=G",
                       "--expect_mark", f"--events={events}", "--wait=blocking")
    producer = subprocess.Popen([peer, "produce", f"--ring={ring_name}", f"--events={events}",
                                 "--batch=64", "--rate=100000"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    ring = xdisruptor.Ring.attach(ring_name)
    kills = interrupted = 0
    while producer.poll() is None and kills < 12:
        time.sleep(0.2)
        # Prefer a member in the middle of a run (the case that matters), else any.
        victim = rng.choice(names)
        until = time.monotonic() + 0.1
        while time.monotonic() < until:
            busy = [c["name"] for c in ring.consumers()
                    if c["name"] in names and c["sequence"] < c["claim_hi"]]
            if busy:
                victim = rng.choice(busy)
                break
            time.sleep(0.002)
        proc, log = procs[victim]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait() if hasattr(proc, "wait") else proc.join()
        entry = next((c for c in ring.consumers() if c["name"] == victim), None)
        if entry is not None and entry["sequence"] < entry["claim_hi"]:
            interrupted += 1  # killed in the middle of a run
        killed_logs.append(log)
        kills += 1
        # Back at once (it resumes its own run) or after the others looked (every 0.1 s:
        # one of them took the run over and it joins afresh).
        time.sleep(0.02 if kills % 2 else 0.3)
        start(victim)
    assert producer.wait(240) == 0, producer.stderr.read()
    rc, out, err = finish(after, timeout=240)
    assert rc == 0, out + err  # the stage after the group saw every event, handled
    takeovers = 0
    for name in names:
        proc, log = procs[name]
        if name.startswith("cpp"):
            rc, out, err = finish(proc, timeout=60)
            assert rc == 0, out + err
            takeovers += int(out.split(" taken over")[0].rsplit(", ", 1)[1])
        else:
            proc.join(60)
            assert proc.exitcode == 0
    all_logs = list(tmp_path.glob("*.log"))
    handled = read_logs(all_logs)
    unique, counts = np.unique(handled, return_counts=True)
    assert np.array_equal(unique, np.arange(events)), "an event was never handled"
    duplicates = unique[counts > 1]
    from_killed = set(read_logs(killed_logs).tolist())
    assert all(int(d) in from_killed for d in duplicates), "a duplicate outside a killed run"
    extra = int((counts - 1).sum())
    assert extra <= kills * claim, (extra, kills)
    print(f"{kills} kills ({interrupted} in the middle of a run), {extra} events handled "
          f"twice, {takeovers} runs taken over by the last C++ incarnations")
    assert kills >= 5 and interrupted > 0, (kills, interrupted)


def score(event, sequence, end_of_batch):  # a DSL/launcher handler (module-level: picklable)
    pass


class Marker:
    """Marks each event (for a stage after the group) and records its sequences."""

    def __init__(self, log=""):
        self.log = log

    def on_batch(self, events, first):
        events["mark"] = events["sequence"].astype(np.uint64) * 7
        with open(self.log, "ab") as f:
            f.write(events["sequence"].tobytes())


def test_the_python_dsl_runs_a_pool_of_processes_and_a_stage_after_it(ring_name, peer,
                                                                       tmp_path):
    from xdisruptor.pipeline import Pipeline, Stage
    events = 100_000
    ring = xdisruptor.Ring.create(ring_name, capacity=4096, dtype=PEER_DTYPE)
    log = str(tmp_path / "pool.log")
    seen = []

    def after(batch, first):
        seen.append((first, len(batch), bool(np.all(batch["mark"] ==
                                                     batch["sequence"].astype(np.uint64) * 7))))
    p = Pipeline(ring)
    p.handle_events_with(Stage("pool", Marker(log), workers=3, mode="process", writable=True,
                               claim=32)) \
     .then(Stage("after", type("A", (), {"on_batch": staticmethod(after)})()))
    p.start()
    members = [c for c in ring.consumers() if c["name"].startswith("pool")]
    assert sorted(c["name"] for c in members) == ["pool", "pool.0", "pool.1", "pool.2"]
    producer = subprocess.run([peer, "produce", f"--ring={ring_name}", f"--events={events}"],
                              capture_output=True, text=True, timeout=120)
    assert producer.returncode == 0, producer.stderr
    results = p.join()
    assert [r.status for r in results] == ["closed"] * 4, results
    handled = np.fromfile(log, dtype=np.int64)
    assert np.array_equal(np.sort(handled), np.arange(events))
    assert sum(n for _, n, _ in seen) == events and all(ok for _, _, ok in seen)
    assert [f for f, _, _ in seen] == sorted(f for f, _, _ in seen)


def test_the_launcher_starts_a_worker_group_of_processes(ring_name, examples_bin, tool,
                                                          tmp_path):
    """`workers = 3` for a C++ stage and `workers = 2` for a Python one: the launcher starts
    each member; a C++ sink after the Python group checks every tick once, in order."""
    from conftest import TICK_SCHEMA
    here = os.path.dirname(os.path.abspath(__file__))
    path = tmp_path / "pool.toml"
    path.write_text(f'''
[ring]
name = "{ring_name}"
capacity = 4096
dtype = "{TICK_SCHEMA}"

[producer]
command = ["{examples_bin}/xdisruptor_demo_feed", "--events=60000", "--seconds=0", "--rate=0"]

[[stage]]
name = "enrichers"
command = ["{examples_bin}/xdisruptor_demo_stage", "--role=enricher"]
workers = 3
claim = 128

[[stage]]
name = "checkers"
handler = "pipeline_handlers:count"
python_path = ["{here}"]
after = ["enrichers"]
workers = 2

[[stage]]
name = "sink"
command = ["{examples_bin}/xdisruptor_demo_stage", "--role=sink"]
after = ["checkers"]
''')
    done = subprocess.run([sys.executable, "-m", "xdisruptor.pipeline", "run", str(path),
                           "--view=lines"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    for member in ("enrichers.0", "enrichers.1", "enrichers.2", "checkers.0", "checkers.1"):
        assert f"started stage {member} (" in done.stdout, done.stdout
    assert "worker enrichers.2 of group enrichers" in done.stdout
    # Every tick enriched by one of three C++ members, then seen by the C++ sink in order.
    assert "sink: 60000 ticks, sequences 0..59999 contiguous" in done.stdout, done.stdout
    enriched = sum(int(line.split("enricher: ")[1].split()[0])
                   for line in done.stdout.splitlines() if "enricher: " in line)
    assert enriched == 60000, done.stdout


def test_a_group_whose_members_all_died_is_evicted_as_a_whole(ring_name, peer, fork_ctx,
                                                              tmp_path, tool):
    ring = xdisruptor.Ring.create(ring_name, capacity=256, dtype=PEER_DTYPE)
    members = [start_peer(peer, "work", f"--ring={ring_name}", f"--name=w{i}", "--group=G",
                          f"--log={tmp_path / f'w{i}.log'}", "--policy=evict",
                          "--busy_us=100000") for i in range(2)]
    stat = json.loads(subprocess.run([tool, "stat", ring_name, "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    group = next(c for c in stat["consumers"] if c["name"] == "G")
    assert group["role"] == "group" and group["members"] == ["w0", "w1"] and group["alive"]
    assert group["stall_policy"] == "evict"
    text = subprocess.run([tool, "stat", ring_name], capture_output=True, text=True,
                          check=True).stdout
    assert "group of 2: w0,w1" in text and "member of G" in text, text
    for m in members:
        m.send_signal(signal.SIGKILL)
        m.wait()
    # The producer fills the ring; the group is dead and evicts: the producer goes on.
    producer = subprocess.run([peer, "produce", f"--ring={ring_name}", "--events=2000"],
                              capture_output=True, text=True, timeout=60)
    assert producer.returncode == 0, producer.stderr
    states = {c["name"]: c["state"] for c in ring.stats()["consumers"]}
    assert states == {"G": "evicted", "w0": "evicted", "w1": "evicted"}, states


def test_python_members_refuse_bad_input_clearly(ring_name):
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=PEER_DTYPE)
    with ring.consumer("plain"):
        with pytest.raises(xdisruptor.errors.AlreadyExistsError, match="not a worker group"):
            ring.consumer("m", group="plain")
        # A first member refused (its name taken) leaves no memberless group behind.
        with pytest.raises(xdisruptor.errors.AlreadyExistsError):
            ring.consumer("plain", group="G0")
        assert [c["name"] for c in ring.consumers()] == ["plain"]
    with pytest.raises(xdisruptor.errors.InvalidArgumentError, match="name of its own"):
        ring.consumer("G", group="G")
    with pytest.raises(xdisruptor.errors.InvalidArgumentError, match="claim"):
        ring.consumer("m", group="G", claim=1000)
    with ring.consumer("m", group="G") as m:
        assert m.group == "G" and m.takeovers == 0
        with pytest.raises(xdisruptor.errors.InvalidArgumentError, match="worker-group member"):
            m.abatches()
    from xdisruptor.pipeline import Stage
    with pytest.raises(xdisruptor.errors.InvalidArgumentError, match="workers"):
        Stage("s", score, workers=0)


@pytest.mark.parametrize("events", [400, 48])
def test_a_run_of_a_member_killed_midway_is_taken_over_by_another(ring_name, peer, tool,
                                                                  tmp_path, events):
    """Two slow C++ members (2 ms per event, runs of 16): one is SIGKILLed in the middle of a
    run and not restarted; the other takes its run over (within ~0.1 s, or, with 48 events,
    when it reaches the end of the stream first): every event handled, the duplicates all
    from the dead member's run, at most 16."""
    claim = 16
    ring = xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start_cpp_member(peer, ring_name, "a", "G", logs[0], f"--claim={claim}", "--busy_us=2000")
    b = start_cpp_member(peer, ring_name, "b", "G", logs[1], f"--claim={claim}", "--busy_us=2000")
    producer = subprocess.run([peer, "produce", f"--ring={ring_name}", f"--events={events}"],
                              capture_output=True, text=True, timeout=60)
    assert producer.returncode == 0, producer.stderr
    deadline = time.monotonic() + 30
    while True:  # a's run in hand, partly done
        e = next(c for c in ring.consumers() if c["name"] == "a")
        if e["claim_hi"] > e["sequence"] + 4:
            break
        assert time.monotonic() < deadline, e
        time.sleep(0.001)
    a.send_signal(signal.SIGKILL)
    a.wait()
    rc, out, err = finish(b, timeout=120)
    assert rc == 0 and ", 1 taken over, end closed" in out, out + err
    handled = read_logs(logs)
    unique, counts = np.unique(handled, return_counts=True)
    assert np.array_equal(unique, np.arange(events))
    assert int((counts - 1).sum()) <= claim
    assert set(unique[counts > 1].tolist()) <= set(np.fromfile(logs[0], np.int64).tolist())
    stats = ring.stats()
    assert all(c["name"] != "a" for c in stats["consumers"])  # dropped from the group


def test_a_group_whose_members_all_died_holds_the_ring_until_one_comes_back(ring_name, peer,
                                                                            fork_ctx, tmp_path):
    """Hold: both members die; the producer waits (the group gates); one comes back by its
    name (as a Python process), resumes its run, takes the other's over, and the stream
    completes, every event handled."""
    events = 3000
    ring = xdisruptor.Ring.create(ring_name, capacity=256, dtype=PEER_DTYPE)
    logs = [tmp_path / f"m{i}.log" for i in range(3)]
    members = [start_cpp_member(peer, ring_name, f"m{i}", "G", logs[i], "--busy_us=500")
               for i in range(2)]
    producer = subprocess.Popen([peer, "produce", f"--ring={ring_name}", f"--events={events}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while ring.cursor < 500:
        time.sleep(0.005)
    for m in members:
        m.send_signal(signal.SIGKILL)
        m.wait()
    time.sleep(0.5)
    held = ring.cursor
    assert producer.poll() is None and held < events - 1, "the producer did not wait"
    assert next(c for c in ring.stats()["consumers"] if c["name"] == "G")["gating"]
    # m0 comes back by its name, in Python this time: it resumes its own run, then takes m1's.
    late = start_py_member(fork_ctx, ring_name, "m0", "G", logs[2], claim=64)
    assert producer.wait(60) == 0, producer.stderr.read()
    late.join(60)
    assert late.exitcode == 0
    handled = read_logs(logs)
    assert np.array_equal(np.unique(handled), np.arange(events))


def test_a_python_producer_feeds_a_group_of_cpp_and_python_members(ring_name, peer, fork_ctx,
                                                                   tmp_path):
    events = 30_000
    ring = xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE)
    logs = [tmp_path / f"m{i}.log" for i in range(3)]
    cpp = [start_cpp_member(peer, ring_name, f"cpp{i}", "G", logs[i], "--claim=16")
           for i in range(2)]
    py = start_py_member(fork_ctx, ring_name, "py", "G", logs[2], claim=16)
    after = start_peer(peer, "consume", f"--ring={ring_name}", "--name=after", "--after=G",
                       "--expect_mark", f"--events={events}", "--wait=blocking")
    with ring.producer() as p:
        for i in range(0, events, 100):
            p.publish_batch(peer_events(i, 100))
        p.close()
    rc, out, err = finish(after, timeout=120)
    assert rc == 0, out + err
    for c in cpp:
        rc, out, err = finish(c, timeout=60)
        assert rc == 0, out + err
    py.join(60)
    assert py.exitcode == 0
    assert np.array_equal(np.sort(read_logs(logs)), np.arange(events))


def test_members_join_and_leave_while_the_stream_runs(ring_name, peer, fork_ctx, tmp_path):
    """A Python member leaves (close) after 20 batches, another joins midway: every event
    handled exactly once, by whoever was a member when it was claimed."""
    events = 200_000
    ring = xdisruptor.Ring.create(ring_name, capacity=4096, dtype=PEER_DTYPE)
    logs = [tmp_path / f"m{i}.log" for i in range(3)]
    stay = start_cpp_member(peer, ring_name, "stay", "G", logs[0], "--claim=32", "--busy_us=2")
    leaver = start_py_member(fork_ctx, ring_name, "leaver", "G", logs[1], claim=32,
                             leave_after=20, busy_us=2)
    producer = subprocess.Popen([peer, "produce", f"--ring={ring_name}", f"--events={events}",
                                 "--rate=100000"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    while ring.cursor < events // 3:
        time.sleep(0.01)
    joiner = start_py_member(fork_ctx, ring_name, "joiner", "G", logs[2], claim=32, busy_us=2)
    assert producer.wait(120) == 0, producer.stderr.read()
    rc, out, err = finish(stay, timeout=120)
    assert rc == 0, out + err
    for p in (leaver, joiner):
        p.join(60)
        assert p.exitcode == 0
    handled = read_logs(logs)
    assert len(handled) == events and np.array_equal(np.sort(handled), np.arange(events))
    counts = [len(np.fromfile(l, dtype=np.int64)) for l in logs]
    assert all(c > 0 for c in counts), counts
