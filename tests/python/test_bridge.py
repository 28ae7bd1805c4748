"""The JetStream bridge with a real server: `nats-server -js` (Debian's package) started here on a
free loopback port with a temporary store. Two rings stand for two hosts: a C++ producer feeds
the source ring, `xdisruptor bridge out` carries it into a stream, `xdisruptor bridge in` into the
far ring, where C++ and Python consumers check every event exactly once and in order, across
SIGKILLs of either bridge and of the server, and with garbage on the subject."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import xdisruptor
from conftest import PEER_DTYPE, REPO, check_peer_events, finish, peer_events, start_peer

PEER_PY = REPO / "tests" / "peer" / "peer.py"

pytestmark = pytest.mark.timeout(300)

NATS_SERVER = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
needs_nats = pytest.mark.skipif(NATS_SERVER is None,
                                reason="Debian's nats-server is not installed (.ci/install)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """`nats-server -js` on a free loopback port, its store in `directory` (kept across
    restarts: kill() then start() is a crash and a restart on the same store)."""

    def __init__(self, directory, *extra):
        self.port = free_port()
        self.directory = directory
        self.extra = list(extra)
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self):
        self.log = open(self.directory / "nats.log", "a")
        self.proc = subprocess.Popen([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.directory / "store"), *self.extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start: " +
                             (self.directory / "nats.log").read_text()[-2000:])

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
            self.log.close()

    def publish_raw(self, subject, payload, headers=None):
        """Publishes one message with the NATS text protocol (HPUB with headers), as any
        client on the network could: for garbage the bridge must survive."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.recv(4096)  # INFO
            s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n')
            if headers is None:
                s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
            else:
                head = b"NATS/1.0\r\n" + b"".join(
                    b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items()) + b"\r\n"
                s.sendall(b"HPUB %s %d %d\r\n%s%s\r\n" % (
                    subject.encode(), len(head), len(head) + len(payload), head, payload))
            s.sendall(b"PING\r\n")
            buf = b""
            while b"PONG" not in buf:
                buf += s.recv(4096)


@pytest.fixture
def nats(tmp_path):
    servers = []

    def start(*extra):
        servers.append(NatsServer(tmp_path, *extra))
        return servers[-1]
    yield start
    for s in servers:
        s.stop()


def bridge(tool, side, ring, server, stream, *extra):
    """Starts `xdisruptor bridge out|in RING` and waits for its first line (set up)."""
    proc = subprocess.Popen([tool, "bridge", side, ring, "--nats", server.url, "--stream", stream,
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert line.startswith(f"bridge {side}:"), line + proc.stderr.read()
    proc.first_line = line
    return proc


def check_far(ring_name, consumer, events, done):
    """A Python consumer of the far ring: every event exactly once, in order, to the end."""
    ring = xdisruptor.Ring.attach(ring_name)
    seen = 0
    with ring.consumer(consumer) as c:
        for batch in c.batches():
            if not check_peer_events(batch, seen):
                return
            seen += len(batch)
    if seen == events:
        done.set()


def rings(ring_name, capacity=65536):
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=capacity, dtype=PEER_DTYPE)
    far = xdisruptor.Ring.create(ring_name + "-far", capacity=capacity, dtype=PEER_DTYPE)
    return src, far


@pytest.fixture
def reap():
    """reap(proc): a process the test started, killed at the end if still running, so a
    failing test leaves nothing behind (an idle bridge waits for its server for ever)."""
    procs = []
    yield procs.append
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def cleanup_rings(ring_name):
    yield
    for suffix in ("-src", "-far"):
        if xdisruptor.Ring.exists(ring_name + suffix):
            xdisruptor.Ring.remove(ring_name + suffix, force=True)


def start_far_consumers(peer, fork_ctx, ring_name, events, started=None):
    """The C++ and Python consumers of the far ring, each added to `started` (if given) as soon
    as it runs."""
    started = [] if started is None else started
    cpp = start_peer(peer, "consume", f"--ring={ring_name}-far", "--name=cpp",
                     f"--events={events}", "--wait=blocking")
    started.append(cpp)
    done = fork_ctx.Event()
    py = fork_ctx.Process(target=check_far, args=(ring_name + "-far", "py", events, done))
    py.start()
    started.append(py)
    far = xdisruptor.Ring.attach(ring_name + "-far")
    deadline = time.monotonic() + 30
    while len(far.consumers()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return cpp, py, done


def finish_far_consumers(cpp, py, done):
    rc, out, err = finish(cpp, timeout=240)
    assert rc == 0, err  # the C++ peer saw exactly N intact events in order, then the end
    py.join(240)
    assert done.is_set(), "the Python consumer did not see every event exactly once"


def carry_and_check(peer, fork_ctx, ring_name, events, out, inn):
    """C++ and Python consumers on the far ring, then the C++ producer's `events` into the
    source ring: both consumers see every event exactly once in order; both bridges end."""
    cpp, py, done = start_far_consumers(peer, fork_ctx, ring_name, events)
    producer = subprocess.run([peer, "produce", f"--ring={ring_name}-src", f"--events={events}",
                               "--consumers=1"], capture_output=True, text=True, timeout=240)
    assert producer.returncode == 0, producer.stderr
    finish_far_consumers(cpp, py, done)
    assert out.wait(60) == 0 and inn.wait(60) == 0


@needs_nats
def test_a_million_events_cross_exactly_once_in_order(nats, tool, peer, fork_ctx, ring_name,
                                                       cleanup_rings):
    events = 1_000_000
    server = nats()
    src, far = rings(ring_name)
    out = bridge(tool, "out", ring_name + "-src", server, "S")
    inn = bridge(tool, "in", ring_name + "-far", server, "S")
    carry_and_check(peer, fork_ctx, ring_name, events, out, inn)
    summary = inn.stderr.read()
    assert f"bridge in: {events} events" in summary and "0 bad messages" in summary, summary


def mid_stream(peer, fork_ctx, ring_name, far, events, lang="cpp"):
    """Far consumers (C++ and Python), then the C++ (or Python) producer's `events` into the
    source ring at 200,000/s; returns once the far ring holds a third of them: (cpp, py, done,
    producer)."""
    cpp, py, done = start_far_consumers(peer, fork_ctx, ring_name, events)
    head = [peer] if lang == "cpp" else [sys.executable, str(PEER_PY)]
    producer = subprocess.Popen([*head, "produce", f"--ring={ring_name}-src", f"--events={events}",
                                 "--consumers=1", "--rate=200000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while far.cursor < events // 3:
        assert time.monotonic() < deadline, "the stream did not get going"
        time.sleep(0.01)
    return cpp, py, done, producer


def finish_mid_stream(producer, cpp, py, done, out, inn):
    """The end of a mid_stream run: the producer done, both far consumers saw every event
    once in order, both bridges ended cleanly."""
    assert producer.wait(240) == 0, producer.stderr.read()
    finish_far_consumers(cpp, py, done)
    assert out.wait(120) == 0, out.stderr.read()
    assert inn.wait(120) == 0, inn.stderr.read()


@needs_nats
@pytest.mark.parametrize("victim", ["out", "in", "server"])
def test_nothing_lost_nothing_duplicated_when_a_side_is_killed(nats, tool, peer, fork_ctx,
                                                                ring_name, cleanup_rings, victim):
    events = 300_000
    server = nats()
    src, far = rings(ring_name, capacity=4096)
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--max-batch=256")  # as the issue
    inn = bridge(tool, "in", ring_name + "-far", server, "S")                      # spells it
    cpp, py, done, producer = mid_stream(peer, fork_ctx, ring_name, far, events)
    if victim == "out":
        out.send_signal(signal.SIGKILL)
        out.wait()
        out = bridge(tool, "out", ring_name + "-src", server, "S", "--max_batch=256")
    elif victim == "in":
        inn.send_signal(signal.SIGKILL)
        inn.wait()
        inn = bridge(tool, "in", ring_name + "-far", server, "S")
    else:
        server.kill()
        time.sleep(0.5)
        server.start()  # same port, same store
    finish_mid_stream(producer, cpp, py, done, out, inn)


@needs_nats
@pytest.mark.parametrize("lang", ["cpp", "py"], ids=["cpp-producer", "py-producer"])
def test_a_stopped_out_side_frees_the_ring_and_goes_on_where_the_stream_ends(
        nats, tool, peer, fork_ctx, ring_name, cleanup_rings, reap, lang):
    """SIGTERM: the out side waits for its acks, frees its entry (a stopped bridge does not hold
    the producer) and exits 0; started again while the ring still holds what it missed, it goes
    on where the stream ends, from the ring's history: every event once, in order."""
    events = 300_000
    server = nats()
    src, far = rings(ring_name, capacity=262144)  # 1.3 s of the producer's 200,000/s
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--max_batch=256")
    reap(out)
    inn = bridge(tool, "in", ring_name + "-far", server, "S")
    reap(inn)
    cpp, py, done, producer = mid_stream(peer, fork_ctx, ring_name, far, events, lang)
    out.send_signal(signal.SIGTERM)
    assert out.wait(30) == 0, out.stderr.read()
    said = out.stderr.read()
    assert "stays registered" not in said, said
    assert not [c for c in src.consumers() if c["name"] == "bridge"], "the entry was not freed"
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--max_batch=256")
    reap(out)
    assert "(where the stream ends)" in out.first_line, out.first_line
    finish_mid_stream(producer, cpp, py, done, out, inn)


@needs_nats
def test_an_out_side_away_longer_than_the_ring_holds_refuses_to_leave_a_gap(
        nats, tool, peer, ring_name, cleanup_rings, reap):
    """Stopped while the producer went on for more than a lap of the ring, the out side cannot
    go on where the stream ends: it says so and exits 1 rather than send from the cursor (the
    in side would stop at the gap); it leaves no entry behind."""
    server = nats()
    src, far = rings(ring_name, capacity=4096)
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--max_batch=256")
    reap(out)
    producer = subprocess.Popen([peer, "produce", f"--ring={ring_name}-src", "--events=100000",
                                 "--consumers=1", "--rate=100000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reap(producer)
    deadline = time.monotonic() + 60
    while not any(c["name"] == "bridge" and c["sequence"] >= 5000 for c in src.consumers()):
        assert time.monotonic() < deadline and out.poll() is None, "the bridge did not get going"
        time.sleep(0.01)
    out.send_signal(signal.SIGTERM)
    assert out.wait(30) == 0, out.stderr.read()
    assert producer.wait(120) == 0, producer.stderr.read()  # free to run ahead, and it did
    again = subprocess.run([tool, "bridge", "out", ring_name + "-src", "--nats", server.url,
                            "--stream", "S"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1, again.stderr
    assert "no longer holds it" in again.stderr and "cannot go on without a gap" in again.stderr, \
        again.stderr
    assert not [c for c in src.consumers() if c["name"] == "bridge"]
    # Another ring's out side on the same subject cannot tell where its own stream ended.
    other = far  # a second ring
    shared = subprocess.run([tool, "bridge", "out", ring_name + "-far", "--nats", server.url,
                             "--stream", "S", "--subject", f"xdisruptor.{ring_name}-src"],
                            capture_output=True, text=True, timeout=60)
    assert shared.returncode == 1 and "one ring per subject" in shared.stderr, shared.stderr
    assert other.consumers() == []


@needs_nats
def test_a_bridge_that_gives_up_keeps_its_place_in_the_ring(nats, tool, peer, fork_ctx,
                                                           ring_name, cleanup_rings):
    """JetStream gone for longer than --give_up_s: the out side exits 1 saying so and its
    consumer stays registered, so the ring holds what was not stored (the producer waits);
    restarted once the server is back, it resumes there: every event once, in order."""
    events = 200_000
    server = nats()
    src, far = rings(ring_name, capacity=4096)
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--max_batch=256", "--give_up_s=2")
    inn = bridge(tool, "in", ring_name + "-far", server, "S", "--give_up_s=2")
    cpp, py, done, producer = mid_stream(peer, fork_ctx, ring_name, far, events)
    server.kill()  # and it stays down past --give_up_s
    assert out.wait(60) == 1
    said = out.stderr.read()
    assert "nothing acknowledged for 2s" in said and "stays registered" in said, said
    entry = [c for c in src.consumers() if c["name"] == "bridge"]
    assert entry and entry[0]["gating"] and not entry[0]["alive"], entry
    held = src.cursor
    assert held <= entry[0]["sequence"] + 4096 and held < events - 1
    time.sleep(0.5)
    assert src.cursor == held and producer.poll() is None, "the ring did not hold"
    server.start()  # same port, same store
    if inn.poll() is not None:  # the in side may have given up too (no fetch answered)
        assert inn.returncode == 1, inn.stderr.read()
        inn = bridge(tool, "in", ring_name + "-far", server, "S")
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--max_batch=256")
    finish_mid_stream(producer, cpp, py, done, out, inn)


@needs_nats
def test_the_schema_travels_with_the_stream_and_bad_input_is_counted(
        nats, tool, peer, fork_ctx, ring_name, cleanup_rings):
    server = nats()
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=1024, dtype=PEER_DTYPE)
    out = bridge(tool, "out", ring_name + "-src", server, "S")
    subject = f"xdisruptor.{ring_name}-src"
    # Garbage on the subject before, between and after real batches: a message with no
    # headers, one truncated, one from another epoch of the ring.
    server.publish_raw(subject, b"not a batch")
    # A batch whose events are not the size its schema says (it would overrun the far slots).
    server.publish_raw(subject, b"y" * 8, {
        "Xd-Ring": "r", "Xd-Epoch": str(src.stats()["created_at_unix_ns"]), "Xd-First": "0",
        "Xd-Count": "1", "Xd-Event-Size": "8", "Xd-Schema": src.stats()["schema"]})
    with src.producer() as p:
        p.publish_batch(np.zeros(0, dtype=PEER_DTYPE))
        for i in range(1000):
            p.publish((i, 3 * i + 1, i * 0.5, 0, f"event {i}".encode()))
        time.sleep(0.5)
        epoch = str(src.stats()["created_at_unix_ns"])
        server.publish_raw(subject, b"x" * 10, {"Xd-Ring": "r", "Xd-Epoch": epoch, "Xd-First": "1000",
                                                "Xd-Count": "2", "Xd-Event-Size": str(PEER_DTYPE.itemsize)})
        server.publish_raw(subject, b"x" * PEER_DTYPE.itemsize, {
            "Xd-Ring": "r", "Xd-Epoch": "12345", "Xd-First": "1000", "Xd-Count": "1",
            "Xd-Event-Size": str(PEER_DTYPE.itemsize)})
        for i in range(1000, 2000):
            p.publish((i, 3 * i + 1, i * 0.5, 0, f"event {i}".encode()))
        p.close()
    assert out.wait(60) == 0
    # The far ring does not exist: --create makes it with the schema the stream carries.
    inn = subprocess.Popen([tool, "bridge", "in", ring_name + "-far", "--create", "--nats",
                            server.url, "--stream", "S"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not xdisruptor.Ring.exists(ring_name + "-far"):
        assert time.monotonic() < deadline and inn.poll() is None, inn.stderr.read()
        time.sleep(0.01)
    far = xdisruptor.Ring.attach(ring_name + "-far")
    assert far.dtype == PEER_DTYPE
    assert inn.wait(60) == 0
    err = inn.stderr.read()
    assert "2000 events" in err and "4 bad messages" in err, err
    with far.consumer("late", start_at=0) as c:
        got = np.concatenate(list(c.batches()))
    assert len(got) == 2000 and check_peer_events(got, 0)


def bridged_source(tool, ring_name, server, reap):
    """A source ring NAME-src of 4096 slots carried by both sides into NAME-far (made by the in
    side) through stream S: (the source ring, out, in), both sides reaped at the end."""
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=4096, dtype=PEER_DTYPE)
    out = bridge(tool, "out", ring_name + "-src", server, "S")
    reap(out)
    inn = bridge(tool, "in", ring_name + "-far", server, "S", "--create")
    reap(inn)
    return src, out, inn


def publish_and_close(ring, events):
    with ring.producer() as p:
        p.publish_batch(events)
        p.close()


@needs_nats
def test_large_events_go_in_messages_that_fit_the_servers_max_payload(nats, tool, ring_name,
                                                                     cleanup_rings, reap):
    """2 KiB events and the default --max_batch of 1024 would make 2 MiB messages, twice the
    server's default max_payload: the out side puts fewer in each, and every event crosses."""
    big = np.dtype([("sequence", "<i8"), ("blob", "S2040")])
    server = nats()
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=8192, dtype=big)
    out = bridge(tool, "out", ring_name + "-src", server, "S", "--give_up_s=5")
    reap(out)
    events = np.zeros(5000, dtype=big)
    events["sequence"] = np.arange(5000)
    events["blob"] = [b"%d" % i * 100 for i in range(5000)]
    publish_and_close(src, events)
    assert out.wait(60) == 0, out.stderr.read()
    inn = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--create", "--nats",
                          server.url, "--stream", "S"], capture_output=True, text=True, timeout=60)
    assert inn.returncode == 0 and "5000 events" in inn.stderr, inn.stderr
    with xdisruptor.Ring.attach(ring_name + "-far").consumer("late", start_at=0) as c:
        got = np.concatenate(list(c.batches()))
    assert np.array_equal(got, events)


@needs_nats
def test_a_setting_the_far_ring_cannot_take_stops_the_in_side_and_consumes_nothing(
        nats, tool, ring_name, cleanup_rings, reap):
    """A far ring that cannot be made as asked (a capacity that is not a power of two) is a
    setting to fix, not a bad message: the in side exits 1 saying why and acknowledges
    nothing, so started again with a good setting it carries every event."""
    server = nats()
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=1024, dtype=PEER_DTYPE)
    out = bridge(tool, "out", ring_name + "-src", server, "S")
    reap(out)
    publish_and_close(src, peer_events(0, 2000))
    assert out.wait(60) == 0, out.stderr.read()
    bad = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--create", "--capacity=1000",
                          "--nats", server.url, "--stream", "S"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1, bad.stderr
    assert "capacity 1000 is not a power of two" in bad.stderr and "0 bad messages" in bad.stderr, \
        bad.stderr
    assert not xdisruptor.Ring.exists(ring_name + "-far")
    good = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--create", "--nats",
                           server.url, "--stream", "S"], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and "2000 events" in good.stderr, good.stderr
    with xdisruptor.Ring.attach(ring_name + "-far").consumer("late", start_at=0) as c:
        got = np.concatenate(list(c.batches()))
    assert len(got) == 2000 and check_peer_events(got, 0)


@needs_nats
def test_a_far_ring_joining_the_stream_midway_goes_on_there_and_refuses_consumers_at_its_start(
        nats, tool, ring_name, cleanup_rings, reap):
    """bridge out started on a source ring that holds 3000 events already: the stream goes on
    at 3000. A far ring with a consumer registered before its first batch is refused (the
    consumer would take 3000 slots never written for events; 3000 being over the capacity,
    the in side also waited for ever), consuming nothing; a far ring the in side makes goes
    on at 3000, each event once, and consumers joining it start there."""
    server = nats()
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=1024, dtype=PEER_DTYPE)
    with src.producer() as p:
        for first in range(0, 3000, 500):
            p.publish_batch(peer_events(first, 500))
        out = bridge(tool, "out", ring_name + "-src", server, "S")
        reap(out)
        p.publish_batch(peer_events(3000, 2000))
        p.close()
    assert out.wait(60) == 0, out.stderr.read()
    far = xdisruptor.Ring.create(ring_name + "-far", capacity=1024, dtype=PEER_DTYPE)
    early = far.consumer("early")
    bad = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--nats", server.url,
                          "--stream", "S"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1, bad.stderr
    assert "goes on at sequence 3000" in bad.stderr and \
        "has consumers waiting at its start: early" in bad.stderr, bad.stderr
    assert far.cursor == -1
    early.close()
    far.close()
    xdisruptor.Ring.remove(ring_name + "-far")
    good = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--create",
                           "--capacity=4096", "--nats", server.url, "--stream", "S"],
                          capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and "2000 events" in good.stderr, good.stderr
    far = xdisruptor.Ring.attach(ring_name + "-far")
    assert far.cursor == 4999
    with far.consumer("late", start_at=3000) as c:
        got = np.concatenate(list(c.batches()))
    assert len(got) == 2000 and check_peer_events(got, 3000)


@needs_nats
def test_an_evicted_out_side_started_again_goes_on_where_the_stream_ends(
        nats, tool, ring_name, cleanup_rings, reap):
    """An out side evicted from its ring (an operator, or stall_policy evict) stops; started
    again while the ring still holds where the stream ends, it goes on from there: the far
    side gets every event once."""
    server = nats()
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=1024, dtype=PEER_DTYPE)
    out = bridge(tool, "out", ring_name + "-src", server, "S")
    reap(out)
    with src.producer() as p:
        p.publish_batch(peer_events(0, 100))
        deadline = time.monotonic() + 30
        while next(c for c in src.consumers() if c["name"] == "bridge")["sequence"] < 99:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        xdisruptor.Ring.evict(ring_name + "-src", "bridge")
        assert out.wait(30) == 1
        assert "evicted" in out.stderr.read()
        again = bridge(tool, "out", ring_name + "-src", server, "S")
        reap(again)
        assert "from 100" in again.first_line, again.first_line
        p.publish_batch(peer_events(100, 50))
        p.close()
    assert again.wait(60) == 0, again.stderr.read()
    inn = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--create", "--nats",
                          server.url, "--stream", "S"], capture_output=True, text=True,
                         timeout=30)
    assert inn.returncode == 0 and "150 events" in inn.stderr, inn.stderr
    with xdisruptor.Ring.attach(ring_name + "-far").consumer("late", start_at=0) as c:
        got = np.concatenate(list(c.batches()))
    assert len(got) == 150 and check_peer_events(got, 0)


@needs_nats
def test_an_in_side_started_again_after_the_last_batch_closes_the_far_ring_at_the_marker(
        nats, tool, ring_name, cleanup_rings, reap):
    """Killed after it acknowledged the last batch and before the close marker came, the in
    side started again gets the marker first, with no batch before it: it closes the far ring
    it was carrying (its consumers end) and exits 0."""
    server = nats()
    src, out, inn = bridged_source(tool, ring_name, server, reap)
    p = src.producer()
    p.publish_batch(peer_events(0, 1000))
    deadline = time.monotonic() + 60
    while not (xdisruptor.Ring.exists(ring_name + "-far")
               and xdisruptor.Ring.attach(ring_name + "-far").cursor == 999):
        assert time.monotonic() < deadline and inn.poll() is None, "the batches did not cross"
        time.sleep(0.01)
    time.sleep(0.5)  # its acknowledgement of the last batch is out
    inn.send_signal(signal.SIGKILL)
    inn.wait()
    p.close()  # the end of the stream: the out side sends the close marker and ends
    assert out.wait(60) == 0, out.stderr.read()
    again = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--nats", server.url,
                            "--stream", "S"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    far = xdisruptor.Ring.attach(ring_name + "-far")
    assert far.stats()["closed"] and far.cursor == 999
    with far.consumer("late", start_at=0) as c:
        got = np.concatenate(list(c.batches()))  # ends: the ring is closed
    assert len(got) == 1000 and check_peer_events(got, 0)


@needs_nats
def test_a_new_life_of_the_source_ring_is_refused_by_a_far_ring_holding_the_one_before(
        nats, tool, ring_name, cleanup_rings, reap):
    """The source ring made again (a new epoch) while the far ring holds its earlier life: the
    running in side, and one started again on that far ring, exit 1 naming both lives rather
    than take the new events for duplicates of the old; the new life goes into a new far
    ring, whole."""
    server = nats()
    src, out, inn = bridged_source(tool, ring_name, server, reap)
    p = src.producer()  # the first life: 1000 events, its stream never ended (a crash)
    p.publish_batch(peer_events(0, 1000))
    p.close(end_stream=False)
    deadline = time.monotonic() + 60
    while not (xdisruptor.Ring.exists(ring_name + "-far")
               and xdisruptor.Ring.attach(ring_name + "-far").cursor == 999):
        assert time.monotonic() < deadline and inn.poll() is None, "the first life did not cross"
        time.sleep(0.01)
    first_epoch = src.stats()["created_at_unix_ns"]
    assert xdisruptor.Ring.attach(ring_name + "-far").stats()["origin_epoch"] == first_epoch
    shown = subprocess.run([tool, "stat", ring_name + "-far"], capture_output=True, text=True)
    assert "carries, through a bridge, the stream of a ring created at" in shown.stdout and \
        f"(epoch {first_epoch})" in shown.stdout, shown.stdout
    out.send_signal(signal.SIGTERM)
    assert out.wait(30) == 0, out.stderr.read()
    src.close()
    xdisruptor.Ring.remove(ring_name + "-src", force=True)
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=4096, dtype=PEER_DTYPE)
    out = bridge(tool, "out", ring_name + "-src", server, "S")
    reap(out)
    second = peer_events(0, 1000)
    second["mark"] = 2
    publish_and_close(src, second)
    assert out.wait(60) == 0, out.stderr.read()
    assert inn.wait(60) == 1
    said = inn.stderr.read()
    assert "now carries a new life of ring" in said and "holds the one before" in said, said
    again = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--nats", server.url,
                            "--stream", "S"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "now carries a new life of ring" in again.stderr, again.stderr
    assert xdisruptor.Ring.attach(ring_name + "-far").cursor == 999  # nothing taken
    xdisruptor.Ring.remove(ring_name + "-far", force=True)
    fresh = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--create", "--nats",
                            server.url, "--stream", "S"], capture_output=True, text=True, timeout=60)
    assert fresh.returncode == 0 and "1000 events" in fresh.stderr, fresh.stderr
    with xdisruptor.Ring.attach(ring_name + "-far").consumer("late", start_at=0) as c:
        got = np.concatenate(list(c.batches()))
    assert len(got) == 1000 and check_peer_events(got, 0) and (got["mark"] == 2).all()


@needs_nats
def test_clear_errors_for_an_unreachable_server_a_missing_stream_a_schema_mismatch_and_a_refused_credential(
        nats, tool, ring_name, cleanup_rings, tmp_path):
    src = xdisruptor.Ring.create(ring_name + "-src", capacity=64, dtype=PEER_DTYPE)

    def run(*args):
        return subprocess.run([tool, "bridge", *args], capture_output=True, text=True,
                              timeout=60)
    dead = run("out", ring_name + "-src", "--nats", f"nats://127.0.0.1:{free_port()}", "--stream", "S")
    assert dead.returncode == 1 and "cannot connect to nats://127.0.0.1:" in dead.stderr, dead.stderr
    server = nats("--user", "xd", "--pass", "secret")
    refused = run("out", ring_name + "-src", "--nats", server.url, "--stream", "S", "--user", "xd",
                  "--password", "wrong")
    assert refused.returncode == 1 and "uthoriz" in refused.stderr, refused.stderr
    missing = run("in", ring_name + "-far", "--nats", server.url, "--stream", "Nope", "--user", "xd",
                  "--password", "secret")
    assert missing.returncode == 1 and "no stream 'Nope'" in missing.stderr, missing.stderr
    # A far ring of another dtype is refused, naming both schemas.
    other = np.dtype([("a", "<i8")])
    xdisruptor.Ring.create(ring_name + "-far", capacity=64, dtype=other)
    out = subprocess.Popen([tool, "bridge", "out", ring_name + "-src", "--nats", server.url, "--stream",
                            "S", "--user", "xd", "--password", "secret"], stderr=subprocess.PIPE,
                           text=True)
    out.stderr.readline()
    with src.producer() as p:
        p.publish((1, 2, 3.0, 0, b"x"))
        p.close()
    assert out.wait(60) == 0
    mismatch = run("in", ring_name + "-far", "--nats", server.url, "--stream", "S", "--user", "xd",
                   "--password", "secret")
    assert mismatch.returncode == 1 and "carries schema" in mismatch.stderr, mismatch.stderr


class NatsCluster:
    """Three `nats-server`s on loopback forming one JetStream cluster (each its own store under
    `directory`), ready once every member sees a meta leader and the routes have settled."""

    def __init__(self, directory, size=3):
        self.directory = directory
        self.ports = [free_port() for _ in range(size)]
        routes = [free_port() for _ in range(size)]
        self.http = [free_port() for _ in range(size)]
        self.procs = []
        self.logs = []
        for i in range(size):
            conf = directory / f"n{i}.conf"
            others = ", ".join(f"nats-route://127.0.0.1:{r}" for j, r in enumerate(routes) if j != i)
            conf.write_text(
                f'server_name: n{i}\nlisten: 127.0.0.1:{self.ports[i]}\n'
                f'http: 127.0.0.1:{self.http[i]}\n'
                f'jetstream {{ store_dir: "{directory / f"n{i}"}" }}\n'
                f'cluster {{ name: xd, listen: 127.0.0.1:{routes[i]}, routes: [{others}] }}\n')
            self.logs.append(open(directory / f"n{i}.log", "w"))
            self.procs.append(subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=self.logs[i],
                                               stderr=subprocess.STDOUT))
        started = time.monotonic()
        deadline = started + 60
        while not all(self.jsz(i).get("meta_cluster", {}).get("leader") for i in range(size)):
            assert time.monotonic() < deadline, "the cluster did not elect a meta leader: " + \
                (directory / "n0.log").read_text()[-2000:]
            time.sleep(0.2)
        # A member that found another not listening yet tries its route again a second later,
        # and the pair closes one of the two routes ("Duplicate Route"). Once in CI (nats-server
        # 2.9.10) a stream made 0.6 s before such a closing never acknowledged a publish in 60 s
        # (the bridge gave up): wait for those retries and a full mesh before using the cluster.
        while time.monotonic() < started + 2.5 or not all(
                self.routed_to(i) == size - 1 for i in range(size)):
            assert time.monotonic() < deadline, "the cluster's routes did not form: " + \
                (directory / "n0.log").read_text()[-2000:]
            time.sleep(0.2)

    @property
    def urls(self):
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    def monitor(self, i, endpoint):
        """Member i's monitoring endpoint (e.g. "jsz?streams=true") as JSON ({} if it fails)."""
        import json
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http[i]}/{endpoint}",
                                        timeout=2) as r:
                return json.load(r)
        except OSError:
            return {}

    def routed_to(self, i):
        """How many other members member i has a route to (2.10 and later pool several routes
        per pair: they are counted once)."""
        return len({r.get("remote_id") for r in self.monitor(i, "routez").get("routes") or []})

    def jsz(self, i, query=""):
        return self.monitor(i, "jsz" + query)

    def stream_leader(self, stream):
        """The index of the member leading `stream` (None while there is none)."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                continue
            for account in self.jsz(i, "?streams=true").get("account_details", []):
                for s in account.get("stream_detail", []):
                    leader = s.get("cluster", {}).get("leader")
                    if s.get("name") == stream and leader:
                        return int(leader[1:])
        return None

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(20)
        for log in self.logs:
            log.close()


def bridge_logs(out, inn):
    """Both bridges' exit codes and what they wrote to stderr after their first line (each
    stopped first if still running)."""
    said = []
    for name, p in (("out", out), ("in", inn)):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        said.append(f"bridge {name} (exit {p.returncode}): {p.stderr.read()}")
    return "\n".join(said)


@needs_nats
def test_a_replicated_stream_loses_nothing_when_its_leader_is_killed(
        tmp_path, tool, peer, fork_ctx, ring_name, cleanup_rings):
    events = 300_000
    cluster = NatsCluster(tmp_path)
    started = []  # killed at the end if still running (a failed assert must not leave them)
    try:
        src, far = rings(ring_name, capacity=4096)
        out = subprocess.Popen([tool, "bridge", "out", ring_name + "-src", "--nats", cluster.urls,
                                "--stream", "S", "--replicas", "3", "--max_batch=256"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(out)
        line = out.stderr.readline()
        assert line.startswith("bridge out:"), line + out.stderr.read()
        inn = subprocess.Popen([tool, "bridge", "in", ring_name + "-far", "--nats", cluster.urls,
                                "--stream", "S"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        started.append(inn)
        line = inn.stderr.readline()
        assert line.startswith("bridge in:"), line + inn.stderr.read()
        cpp, py, done = start_far_consumers(peer, fork_ctx, ring_name, events, started)
        producer = subprocess.Popen([peer, "produce", f"--ring={ring_name}-src",
                                     f"--events={events}", "--consumers=1", "--rate=100000"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(producer)
        deadline = time.monotonic() + 60
        while far.cursor < events // 3:
            if time.monotonic() > deadline or out.poll() is not None or inn.poll() is not None:
                raise AssertionError(f"the stream did not get going: source ring at {src.cursor}, "
                                     f"far ring at {far.cursor}\n" + bridge_logs(out, inn))
            time.sleep(0.01)
        leader = cluster.stream_leader("S")
        assert leader is not None, "no member leads the stream"
        cluster.kill(leader)  # mid-stream, the member holding the stream's leadership
        killed_at = far.cursor
        assert producer.wait(240) == 0, producer.stderr.read()
        deadline = time.monotonic() + 120
        while far.cursor < events - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        if far.cursor < events - 1:  # say what each side saw
            raise AssertionError(f"the far ring stopped at {far.cursor}:\n" + bridge_logs(out, inn))
        finish_far_consumers(cpp, py, done)
        assert out.wait(120) == 0, out.stderr.read()
        assert inn.wait(120) == 0, inn.stderr.read()
        print(f"out: {out.stderr.read()}\nin: {inn.stderr.read()}")  # shown with -rP
        assert killed_at < events - 1, "the stream ended before the kill"
        new_leader = cluster.stream_leader("S")
        assert new_leader is not None and new_leader != leader
    finally:
        for p in started:
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            elif p.is_alive():
                p.kill()
                p.join()
        cluster.stop()


def make_namespaces(tag):
    """Two network namespaces joined by a veth pair: (run-in-A prefix, run-in-B prefix, B's
    address, cleanup), or a reason they cannot be made here."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    a, b = f"xdA{tag}", f"xdB{tag}"
    net = f"10.{200 + tag % 50}.{tag % 250}"
    steps = [[ip, "netns", "add", a], [ip, "netns", "add", b],
             [ip, "link", "add", f"xv{tag}a", "type", "veth", "peer", "name", f"xv{tag}b"],
             [ip, "link", "set", f"xv{tag}a", "netns", a], [ip, "link", "set", f"xv{tag}b", "netns", b],
             [ip, "-n", a, "addr", "add", f"{net}.1/24", "dev", f"xv{tag}a"],
             [ip, "-n", b, "addr", "add", f"{net}.2/24", "dev", f"xv{tag}b"],
             [ip, "-n", a, "link", "set", f"xv{tag}a", "up"], [ip, "-n", b, "link", "set", f"xv{tag}b", "up"],
             [ip, "-n", a, "link", "set", "lo", "up"], [ip, "-n", b, "link", "set", "lo", "up"]]

    def cleanup():
        for ns in (a, b):
            subprocess.run([ip, "netns", "del", ns], capture_output=True)
    if not os.path.exists(ip):
        return None, "the `ip` command (iproute2) is missing"
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            cleanup()
            return None, f"`{' '.join(step)}` failed: {done.stderr.strip()} (needs CAP_NET_ADMIN)"
    return ([ip, "netns", "exec", a], [ip, "netns", "exec", b], f"{net}.2", cleanup), None


@needs_nats
def test_across_two_network_namespaces_joined_by_a_veth_pair(tmp_path, tool, peer, fork_ctx,
                                                              ring_name, cleanup_rings):
    made, reason = make_namespaces(os.getpid() % 1000)
    if made is None:
        print(f"skipped: {reason}")
        pytest.skip(f"network namespaces cannot be made here: {reason}")
    in_a, in_b, address, cleanup = made
    events = 200_000
    server = None
    try:
        # The server and the in side on host B, the out side on host A: the stream crosses the veth.
        port = free_port()
        log = open(tmp_path / "nats.log", "w")
        server = subprocess.Popen([*in_b, NATS_SERVER, "-js", "-a", address, "-p", str(port),
                                   "-sd", str(tmp_path / "store")], stdout=log, stderr=log)
        probe = ("import socket,sys,time\n"
                 "for _ in range(200):\n"
                 "    try:\n"
                 f"        socket.create_connection(('{address}', {port}), 0.5).close(); sys.exit(0)\n"
                 "    except OSError: time.sleep(0.05)\n"
                 "sys.exit(1)\n")
        assert subprocess.run([*in_a, sys.executable, "-c", probe]).returncode == 0, \
            "host A cannot reach the server on host B: " + (tmp_path / "nats.log").read_text()
        url = f"nats://{address}:{port}"
        src, far = rings(ring_name)
        out = subprocess.Popen([*in_a, tool, "bridge", "out", ring_name + "-src", "--nats", url,
                                "--stream", "S"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        assert out.stderr.readline().startswith("bridge out:"), out.stderr.read()
        inn = subprocess.Popen([*in_b, tool, "bridge", "in", ring_name + "-far", "--nats", url,
                                "--stream", "S"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        assert inn.stderr.readline().startswith("bridge in:"), inn.stderr.read()
        carry_and_check(peer, fork_ctx, ring_name, events, out, inn)
    finally:
        if server is not None:
            server.terminate()
            server.wait(20)
        cleanup()


@needs_nats
def test_the_pipeline_launcher_starts_either_side(nats, tool, examples_bin, ring_name, tmp_path):
    """Host A's pipeline: feed -> enricher (C++) -> bridge out as a stage after it. Host B's:
    bridge in as the producer, a Python stage checking every enriched tick, a C++ sink after it."""
    import json
    from conftest import TICK_SCHEMA
    server = nats()
    handlers = os.path.join(os.path.dirname(os.path.abspath(__file__)))
    events = 50_000

    def pipeline(name, ring, producer, stages):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'[ring]\nname = "{ring}"\ncapacity = 4096\ndtype = "{TICK_SCHEMA}"\n\n'
                        f'[producer]\ncommand = {json.dumps(producer)}\n\n{stages}')
        return path
    a = pipeline("a", ring_name + "-a", [f"{examples_bin}/xdisruptor_demo_feed",
                                          f"--events={events}", "--seconds=0", "--rate=0"],
                 f'[[stage]]\nname = "enricher"\ncommand = ["{examples_bin}/xdisruptor_demo_stage", '
                 f'"--role=enricher"]\n\n'
                 f'[[stage]]\nname = "to-b"\nafter = ["enricher"]\n'
                 f'command = {json.dumps([tool, "bridge", "out", "{ring}", "--nats", server.url, "--stream", "AB"])}\n\n'
                 # a stage after the bridge sees each tick once JetStream stored it
                 f'[[stage]]\nname = "stored"\nafter = ["to-b"]\n'
                 f'command = ["{examples_bin}/xdisruptor_demo_stage", "--role=sink"]\n')
    b = pipeline("b", ring_name + "-b", [tool, "bridge", "in", "{ring}", "--nats", server.url,
                                          "--stream", "AB"],
                 f'[[stage]]\nname = "check"\nhandler = "pipeline_handlers:CheckEnriched"\n'
                 f'python_path = ["{handlers}"]\noptions = {{ result = "{tmp_path / "check.json"}" }}\n\n'
                 f'[[stage]]\nname = "sink"\nafter = ["check"]\n'
                 f'command = ["{examples_bin}/xdisruptor_demo_stage", "--role=sink"]\n')

    def launch(path):
        return subprocess.Popen([sys.executable, "-m", "xdisruptor.pipeline", "run", str(path),
                                 "--view=lines"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    host_a = launch(a)
    # The out stage creates the stream when it starts, before host A's producer.
    lines = []
    for line in host_a.stdout:
        lines.append(line)
        if line.startswith("started the producer"):
            break
    assert any(l.startswith("started stage to-b") for l in lines), "".join(lines) + host_a.stdout.read()
    host_b = launch(b)
    out_a, _ = host_a.communicate(timeout=180)
    out_b, _ = host_b.communicate(timeout=180)
    out_a = "".join(lines) + out_a
    assert host_a.returncode == 0, out_a
    assert host_b.returncode == 0, out_b
    assert "started stage to-b (" in out_a and "after enricher" in out_a
    assert f"[to-b] stage to-b: stream closed, {events} events, 0 handler errors" in out_a, out_a
    assert re.search(r"to-b +50,000 ", out_a), out_a  # the launcher's summary counts it
    assert f"[stored] sink: {events} ticks, sequences 0..{events - 1} contiguous" in out_a, out_a
    assert json.loads((tmp_path / "check.json").read_text()) == {"first": 0, "events": events}
    assert f"sink: {events} ticks, sequences 0..{events - 1} contiguous" in out_b, out_b
    assert f"summary: {events:,} events published" in out_b, out_b


TMUX = shutil.which("tmux")


@needs_nats
@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/install installs it)")
def test_a_status_line_on_a_terminal_and_the_bridge_in_stat(nats, tool, ring_name, cleanup_rings):
    """Both sides in a real terminal (tmux) draw a live line (events, events/s, pending acks,
    lag); `xdisruptor stat` shows the out side's consumer as any other, from a Python producer."""
    import json
    import threading
    server = nats()
    src, far = rings(ring_name, capacity=1024)
    sessions = {side: f"xdbr-{side}-{os.getpid()}" for side in ("out", "in")}
    for side, ring in (("out", ring_name + "-src"), ("in", ring_name + "-far")):
        if side == "in":  # the stream exists once the out side started
            deadline = time.monotonic() + 20
            while not any(c["name"] == "bridge" for c in src.consumers()):
                assert time.monotonic() < deadline, "bridge out did not register"
                time.sleep(0.05)
        subprocess.run([TMUX, "new-session", "-d", "-s", sessions[side], "-x", "220", "-y", "10",
                        f"{tool} bridge {side} {ring} --nats {server.url} --stream S --max_batch=16"],
                       check=True)
    events = 6000

    def produce():
        with src.producer() as p:
            for i in range(events):
                p.publish((i, 3 * i + 1, i * 0.5, 0, f"event {i}".encode()))
                if i % 10 == 0:
                    time.sleep(0.005)  # about 2,000 events/s for 3 s
            p.close()
    producer = threading.Thread(target=produce)
    try:
        producer.start()

        def line(side):
            screen = subprocess.run([TMUX, "capture-pane", "-p", "-t", sessions[side]],
                                    capture_output=True, text=True).stdout
            m = re.findall(rf"bridge {side}: (\d+) events, (\d+) events/s, \d+ messages, "
                           rf"(\d+) pending acks, lag (\d+)", screen)
            return [tuple(map(int, x)) for x in m]
        seen = {"out": [], "in": []}
        stat = None
        deadline = time.monotonic() + 60
        while producer.is_alive() and time.monotonic() < deadline:
            for side in seen:
                seen[side] += line(side)[-1:]
            if stat is None and src.cursor > 1000:
                stat = json.loads(subprocess.run([tool, "stat", ring_name + "-src", "--json"],
                                                 capture_output=True, text=True, check=True).stdout)
            time.sleep(0.2)
        producer.join()
        for side in seen:  # the line moved while events flowed, with a rate
            counts = [s[0] for s in seen[side]]
            assert len(set(counts)) >= 3 and counts == sorted(counts), (side, seen[side])
            assert any(s[1] > 0 for s in seen[side]), (side, seen[side])
        bridge_entry = [c for c in stat["consumers"] if c["name"] == "bridge"]
        assert bridge_entry and bridge_entry[0]["alive"] and bridge_entry[0]["sequence"] >= 0, stat
        deadline = time.monotonic() + 60
        while far.cursor < events - 1 or not far.stream_closed:
            assert time.monotonic() < deadline, far.cursor
            time.sleep(0.05)
    finally:
        for s in sessions.values():
            subprocess.run([TMUX, "kill-session", "-t", s], capture_output=True)


@needs_nats
def test_fan_out_to_two_hosts_and_a_replay_into_a_new_ring(nats, tool, peer, fork_ctx, ring_name,
                                                          cleanup_rings):
    """One stream, two far rings each with its own durable consumer (--name), both get every
    event; after the end a third durable replays the whole stream into a ring it creates."""
    events = 100_000
    server = nats()
    src, far = rings(ring_name)
    other = xdisruptor.Ring.create(ring_name + "-c", capacity=65536, dtype=PEER_DTYPE)
    try:
        out = bridge(tool, "out", ring_name + "-src", server, "S")
        in_b = bridge(tool, "in", ring_name + "-far", server, "S", "--name", "host-b")
        in_c = bridge(tool, "in", ring_name + "-c", server, "S", "--name", "host-c")
        checks = [start_peer(peer, "consume", f"--ring={r}", "--name=check", f"--events={events}",
                             "--wait=blocking") for r in (ring_name + "-far", ring_name + "-c")]
        producer = subprocess.run([peer, "produce", f"--ring={ring_name}-src",
                                   f"--events={events}", "--consumers=1"],
                                  capture_output=True, text=True, timeout=240)
        assert producer.returncode == 0, producer.stderr
        for c in checks:
            rc, _, err = finish(c, timeout=120)
            assert rc == 0, err  # every event once, in order, on both hosts
        assert out.wait(60) == 0 and in_b.wait(60) == 0 and in_c.wait(60) == 0
        # A replay: a new durable delivers the stream from its start into a new ring.
        replay = subprocess.run([tool, "bridge", "in", ring_name + "-d", "--create", "--name",
                                 "replay", "--nats", server.url, "--stream", "S"],
                                capture_output=True, text=True, timeout=120)
        assert replay.returncode == 0, replay.stderr
        d = xdisruptor.Ring.attach(ring_name + "-d")
        with d.consumer("late", start_at=max(0, events - 65536)) as c:
            got = np.concatenate(list(c.batches()))
        assert len(got) == min(events, 65536) and check_peer_events(got, events - len(got))
    finally:
        for r in (ring_name + "-c", ring_name + "-d"):
            if xdisruptor.Ring.exists(r):
                xdisruptor.Ring.remove(r, force=True)


def make_certificates(directory):
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    ossl = shutil.which("openssl")
    if ossl is None:
        return None

    def run(*args):
        subprocess.run([ossl, *args], check=True, capture_output=True, cwd=directory)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=xdisruptor test CA")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        (directory / f"{who}.ext").write_text(ext + "\n")
        run("req", *key, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{who}.pem", "-days", "2", "-extfile", f"{who}.ext")
    return {k: str(directory / f"{k}") for k in ("ca.pem", "server.pem", "server.key",
                                                  "client.pem", "client.key")}


def carry(tool, ring_name, server, events, *auth):
    """out -> stream -> in with the given credentials; returns the far ring's events."""
    src, far = rings(ring_name, capacity=1024)
    out = bridge(tool, "out", ring_name + "-src", server, "S", *auth)
    with src.producer() as p:
        for i in range(events):
            p.publish((i, 3 * i + 1, i * 0.5, 0, f"event {i}".encode()))
        p.close()
    assert out.wait(60) == 0, out.stderr.read()
    inn = subprocess.run([tool, "bridge", "in", ring_name + "-far", "--nats", server.url,
                          "--stream", "S", *auth], capture_output=True, text=True, timeout=60)
    assert inn.returncode == 0, inn.stderr
    with far.consumer("check", start_at=0) as c:
        return np.concatenate(list(c.batches()))


@needs_nats
def test_a_token_and_mutual_tls_are_passed_to_libnats(nats, tool, ring_name, cleanup_rings,
                                                       tmp_path):
    server = nats("--auth", "s3cret-token")
    refused = subprocess.run([tool, "bridge", "in", "nowhere", "--nats", server.url, "--stream",
                              "S", "--token", "wrong"], capture_output=True, text=True, timeout=60)
    got = carry(tool, ring_name, server, 500, "--token", "s3cret-token")
    assert len(got) == 500 and check_peer_events(got, 0)
    xdisruptor.Ring.remove(ring_name + "-src", force=True)
    xdisruptor.Ring.remove(ring_name + "-far", force=True)
    server.stop()

    certs = make_certificates(tmp_path)
    if certs is None:
        pytest.skip("openssl is not installed")
    server = nats("--tls", "--tlscert", certs["server.pem"], "--tlskey", certs["server.key"],
                  "--tlsverify", "--tlscacert", certs["ca.pem"])
    no_ca = subprocess.run([tool, "bridge", "in", "nowhere", "--nats", server.url, "--stream", "S"],
                           capture_output=True, text=True, timeout=60)
    no_cert = subprocess.run([tool, "bridge", "in", "nowhere", "--nats", server.url, "--stream",
                              "S", "--tls_ca", certs["ca.pem"]], capture_output=True, text=True,
                             timeout=60)
    got = carry(tool, ring_name, server, 500, "--tls_ca", certs["ca.pem"], "--tls_cert",
                certs["client.pem"], "--tls_key", certs["client.key"])
    assert len(got) == 500 and check_peer_events(got, 0)
    # Refused before any ring is looked at: the in side connects first.
    assert refused.returncode == 1 and "uthoriz" in refused.stderr, refused.stderr
    assert no_ca.returncode == 1 and "cannot connect" in no_ca.stderr, no_ca.stderr
    assert no_cert.returncode == 1 and "needs --tls_cert and --tls_key" in no_cert.stderr, \
        no_cert.stderr


def make_credentials(directory):
    """Operator mode for nats-server with a `.creds` file for one user, made from scratch: an
    operator, an account with JetStream, a system account and a user, each an Ed25519 nkey
    (openssl signs) with its JWT. Returns (server config, creds file), or None without openssl."""
    import base64
    import hashlib
    import json
    if shutil.which("openssl") is None:
        return None

    def b32(data):
        return base64.b32encode(data).decode().rstrip("=")

    def crc16(data):  # nkeys' checksum (CRC-16/XMODEM), little-endian on the wire
        crc = 0
        for b in data:
            crc ^= b << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        return crc.to_bytes(2, "little")

    class NKey:
        PREFIX = {"operator": 14 << 3, "account": 0, "user": 20 << 3}

        def __init__(self, kind, name):
            seed = os.urandom(32)
            self.name = name
            self.der = directory / f"{name}.der"  # PKCS#8 of an Ed25519 seed
            self.der.write_bytes(bytes.fromhex("302e020100300506032b657004220420") + seed)
            pub = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", str(self.der),
                                  "-pubout", "-outform", "DER"], capture_output=True,
                                 check=True).stdout[-32:]
            t = self.PREFIX[kind]
            self.public = b32(bytes([t]) + pub + crc16(bytes([t]) + pub))
            raw = bytes([(18 << 3) | (t >> 5), (t & 31) << 3]) + seed
            self.seed = b32(raw + crc16(raw))

        def sign(self, data):
            message = directory / f"{self.name}.msg"  # Ed25519 signs one shot: from a file
            message.write_bytes(data)
            return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(self.der),
                                   "-keyform", "DER", "-rawin", "-in", str(message)],
                                  capture_output=True, check=True).stdout

    def jwt(issuer, subject, nats):
        def enc(raw):
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")
        claims = {"iat": int(time.time()), "iss": issuer.public, "name": subject.name,
                  "sub": subject.public, "nats": dict(nats, version=2)}
        claims["jti"] = b32(hashlib.sha256(json.dumps(claims).encode()).digest())
        head = enc(b'{"typ":"JWT","alg":"ed25519-nkey"}') + "." + enc(json.dumps(claims).encode())
        return head + "." + enc(issuer.sign(head.encode()))
    unlimited = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                 "wildcards": True, "conn": -1, "leaf": -1}
    operator, account = NKey("operator", "operator"), NKey("account", "account")
    system, user = NKey("account", "system"), NKey("user", "user")
    conf = directory / "operator.conf"
    conf.write_text(
        f'operator: "{jwt(operator, operator, {"type": "operator"})}"\n'
        f"system_account: {system.public}\nresolver: MEMORY\nresolver_preload: {{\n"
        f'  {account.public}: "' + jwt(operator, account, {
            "type": "account", "limits": dict(unlimited, mem_storage=-1, disk_storage=-1,
                                              streams=-1, consumer=-1)}) + '"\n'
        f'  {system.public}: "' + jwt(operator, system, {"type": "account",
                                                         "limits": unlimited}) + '"\n}\n')
    creds = directory / "user.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\n" +
        jwt(account, user, {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1,
                            "payload": -1}) +
        "\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n" + user.seed +
        "\n------END USER NKEY SEED------\n")
    return str(conf), str(creds)


@needs_nats
def test_a_creds_file_is_passed_to_libnats(nats, tool, ring_name, cleanup_rings, tmp_path):
    made = make_credentials(tmp_path)
    if made is None:
        pytest.skip("openssl is not installed")
    conf, creds = made
    server = nats("-c", conf)
    refused = subprocess.run([tool, "bridge", "in", "nowhere", "--nats", server.url, "--stream",
                              "S"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "uthoriz" in refused.stderr, refused.stderr
    got = carry(tool, ring_name, server, 500, "--creds", creds)
    assert len(got) == 500 and check_peer_events(got, 0)
