"""Observability from every surface: the tool's /metrics and Python's xdisruptor.metrics scraped
by a real Prometheus server (Debian's `prometheus`, started here on a free loopback port) and
read back through its query API; promtool's checks of both expositions and of the example
alert rules; per-hop latency histograms with C++ and Python producers and consumers; flight
records written by C++ and Python producers, the tool and Ring.evict; `xdisruptor top` in a
real terminal (tmux); the launcher's [metrics] table."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

import xdisruptor
import xdisruptor.metrics
from conftest import PEER_DTYPE, REPO, start_peer, finish, read_line

pytestmark = pytest.mark.timeout(180)

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
TMUX = shutil.which("tmux")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="Debian's prometheus package is not installed (.ci/install installs it)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_until(predicate, timeout=30.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Prometheus:
    """A real Prometheus server scraping `targets` ({job: "host:port"}) every second."""

    def __init__(self, directory, targets):
        self.port = free_port()
        config = directory / "prometheus.yml"
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            for job, target in targets.items())
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          f"scrape_configs:\n{jobs}")
        self.log = open(directory / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

        def ready():
            try:
                return "Ready" in http_get(self.url + "/-/ready", 1)
            except OSError:
                return self.proc.poll() is not None and pytest.fail(
                    "prometheus exited: " + (directory / "prometheus.log").read_text())
        wait_until(ready, 30, "prometheus to start")

    def query(self, expr):
        """The instant vector of `expr`: [(labels, float)]."""
        body = json.loads(http_get(self.url + "/api/v1/query?" +
                                   urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def value(self, expr):
        result = self.query(expr)
        return result[0][1] if len(result) == 1 else None

    def wait_value(self, expr, wanted, timeout=30):
        return wait_until(lambda: self.value(expr) == wanted, timeout,
                          f"{expr} == {wanted} (last: {self.query(expr)})")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path):
    servers = []

    def start(targets):
        servers.append(Prometheus(tmp_path, targets))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def serve_tool_metrics(tool, *rings):
    """`xdisruptor metrics RING... --listen 127.0.0.1:0`: the process and its port."""
    proc = subprocess.Popen([tool, "metrics", *rings, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = read_line(proc)
    assert line.startswith("serving http://127.0.0.1:"), line + proc.stderr.read()
    return proc, int(line.rsplit(":", 1)[1].split("/")[0])


def consume_and_linger(name, consumer, pause, done, leave, wait="blocking"):
    """A Python consumer process: reads the stream to its end (sleeping `pause` per batch),
    says so, and stays registered until told to leave (so the metrics still show it)."""
    ring = xdisruptor.Ring.attach(name)
    c = ring.consumer(consumer, wait=wait)
    for _ in c.batches():
        if pause:
            time.sleep(pause)
    done.set()
    leave.wait(120)
    c.close()


def start_consumers(fork_ctx, name, specs):
    """Starts the consumers of `specs` ({name: pause}); returns (processes, dones, leave)."""
    leave = fork_ctx.Event()
    procs, dones = [], []
    for consumer, pause in specs.items():
        done = fork_ctx.Event()
        p = fork_ctx.Process(target=consume_and_linger,
                             args=(name, consumer, pause, done, leave))
        p.start()
        procs.append(p)
        dones.append(done)
    ring = xdisruptor.Ring.attach(name)
    wait_until(lambda: len(ring.consumers()) >= len(specs), 30, "the consumers to register")
    return procs, dones, leave


def stop_consumers(procs, dones, leave):
    for d in dones:
        assert d.wait(120), "a consumer did not reach the end of the stream"
    leave.set()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0


@needs_prometheus
def test_prometheus_scrapes_the_tool_and_python_with_per_stage_latency(
        ring_name, prometheus, tool, peer, fork_ctx):
    events = 20000
    ring = xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE,
                                  latency_sample_every=16)
    exporter, port = serve_tool_metrics(tool, ring_name)
    server = xdisruptor.metrics.serve(0)  # this process has the ring open: exported
    try:
        prom = prometheus({"tool": f"127.0.0.1:{port}", "python": f"127.0.0.1:{server.port}"})
        procs, dones, leave = start_consumers(fork_ctx, ring_name, {"slow": 0.001, "fast": 0})
        producer = subprocess.run([peer, "produce", f"--ring={ring_name}", f"--events={events}",
                                   "--consumers=2"], capture_output=True, text=True, timeout=120)
        assert producer.returncode == 0, producer.stderr
        for d in dones:
            assert d.wait(120)
        try:
            for job in ("tool", "python"):
                sel = f'job="{job}",ring="{ring_name}"'
                prom.wait_value(f'xdisruptor_ring_published_events_total{{{sel}}}', events)
                for consumer in ("slow", "fast"):
                    prom.wait_value(
                        f'xdisruptor_consumer_events_total{{{sel},consumer="{consumer}"}}', events)
                    prom.wait_value(f'xdisruptor_consumer_latency_seconds_count'
                                    f'{{{sel},consumer="{consumer}"}}', events // 16)
                    assert prom.value(f'xdisruptor_consumer_lag_events'
                                      f'{{{sel},consumer="{consumer}"}}') == 0
                assert prom.value(f'xdisruptor_ring_readable{{{sel}}}') == 1
                # The stage that sleeps 1 ms per batch shows it; the other does not.
                p50 = {c: prom.value(f'histogram_quantile(0.5, xdisruptor_consumer_latency_seconds_'
                                     f'bucket{{{sel},consumer="{c}"}})') for c in ("slow", "fast")}
                assert p50["slow"] >= 0.001, p50
                assert p50["fast"] < p50["slow"], p50
                labels = prom.query(f'xdisruptor_consumer_alive{{{sel},consumer="slow"}}')[0][0]
                assert (labels["wait"], labels["stall"]) == ("blocking", "hold")
        finally:
            stop_consumers(procs, dones, leave)
    finally:
        server.close()
        exporter.send_signal(signal.SIGTERM)
        assert exporter.wait(10) == 0
        ring.close()


@needs_prometheus
def test_promtool_accepts_both_expositions_and_the_example_alert_rules(ring_name, tool, tmp_path):
    ring = xdisruptor.Ring.create(ring_name, capacity=64, dtype=PEER_DTYPE)
    with ring.consumer("c"), ring.producer() as p:
        p.publish_batch(np.zeros(10, dtype=PEER_DTYPE))
        printed = subprocess.run([tool, "metrics", ring_name, "--print"], capture_output=True,
                                 text=True, check=True).stdout
        with xdisruptor.metrics.serve(0, [ring_name]) as server:
            served = http_get(f"http://127.0.0.1:{server.port}/metrics")
    for text in (printed, served):
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f'xdisruptor_consumer_lag_events{{' in text and 'consumer="c"' in text
        # The ring's life, to tell a new ring under its name from a counter reset.
        created = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("xdisruptor_ring_created_timestamp_seconds{")]
        assert created == [pytest.approx(ring.stats()["created_at_unix_ns"] / 1e9, abs=1e-3)]
    # Same families, same series (label order aside) from C++ and Python.
    def series(text):
        return {line.split(" ")[0].split("{")[0] for line in text.splitlines()
                if line.startswith("xdisruptor_")}
    assert series(printed) == series(served)
    rules = REPO / "examples/prometheus/alerts.yml"
    check = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # The rules fire on the series they are written for (promtool's rule unit tests).
    test = subprocess.run([PROMTOOL, "test", "rules", str(REPO / "tests/prometheus/alerts_test.yml")],
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr


def test_a_named_ring_that_is_missing_is_reported_unreadable(tool):
    out = subprocess.run([tool, "metrics", "no-such-ring-here", "--print"], capture_output=True,
                         text=True, check=True).stdout
    assert 'xdisruptor_ring_readable{ring="no-such-ring-here"} 0' in out
    assert 'xdisruptor_ring_capacity{' not in out
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        bad = subprocess.run([tool, "metrics", "--listen", address], capture_output=True,
                             text=True, timeout=30)
    assert bad.returncode == 1 and f"cannot listen on {address}" in bad.stderr, bad.stderr
    usage = subprocess.run([tool, "metrics"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "--listen" in usage.stderr
    with pytest.raises(xdisruptor.InvalidArgumentError):
        xdisruptor.metrics.serve(70000)


def test_a_port_alone_listens_everywhere_and_says_where(tool):
    """`--listen PORT` (no host): it says http://0.0.0.0:PORT (it said http://PORT:PORT)."""
    proc = subprocess.Popen([tool, "metrics", "--listen", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving http://0.0.0.0:") and line.endswith("/metrics\n"), \
            line + proc.stderr.read()
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(10)


def python_producer(name, events, pause=0.0, close_when=None):
    """Publishes PeerEvents (as the C++ peer does), then closes the stream (once `close_when`
    is set, if given)."""
    ring = xdisruptor.Ring.attach(name)
    with ring.producer() as p:
        for i in range(events):
            p.publish((i, 3 * i + 1, i * 0.5, 0, f"event {i}".encode()))
            if pause:
                time.sleep(pause)
        if close_when is not None:
            close_when.wait(120)
        p.close()


def test_latency_from_a_python_producer_to_cpp_and_python_consumers(ring_name, peer, fork_ctx):
    events = 4096
    ring = xdisruptor.Ring.create(ring_name, capacity=256, dtype=PEER_DTYPE,
                                  latency_sample_every=32)
    cpp = start_peer(peer, "consume", f"--ring={ring_name}", "--name=cpp",
                     f"--events={events}", "--wait=blocking")
    procs, dones, leave = start_consumers(fork_ctx, ring_name, {"py_slow": 0.001})
    close = fork_ctx.Event()
    producer = fork_ctx.Process(target=python_producer, args=(ring_name, events, 0.0, close))
    producer.start()
    # The C++ consumer leaves at the end of the stream: read its entry before.
    stats = wait_until(lambda: (lambda s: s if all(c["events"] == events for c in s["consumers"])
                                else None)(ring.stats()), 60, "both consumers to finish")
    by_name = {c["name"]: c for c in stats["consumers"]}
    assert stats["latency_sample_every"] == 32
    for name in ("cpp", "py_slow"):
        assert by_name[name]["latency"]["samples"] == events // 32, by_name[name]
    assert by_name["py_slow"]["latency"]["p50_s"] >= 0.001
    assert by_name["py_slow"]["latency"]["max_s"] >= by_name["py_slow"]["latency"]["p99_s"]
    assert by_name["cpp"]["latency"]["p50_s"] < by_name["py_slow"]["latency"]["p50_s"]
    buckets = by_name["cpp"]["latency"]["buckets"]
    assert sum(n for _, n in buckets) <= events // 32 and buckets[0][0] == 2.56e-07
    close.set()
    producer.join(60)
    assert producer.exitcode == 0
    assert finish(cpp)[0] == 0
    stop_consumers(procs, dones, leave)
    off = xdisruptor.Ring.create(ring_name + "-off", capacity=64, dtype=PEER_DTYPE,
                                 latency_sample_every=0)
    try:
        with off.consumer("c") as c, off.producer() as p:
            p.publish_batch(np.zeros(64, dtype=PEER_DTYPE))
            next(iter(c.batches()))
            assert off.stats()["consumers"][0]["latency"]["samples"] == 0
    finally:
        off.close()
        xdisruptor.Ring.remove(ring_name + "-off", force=True)
    with pytest.raises(xdisruptor.InvalidArgumentError, match="latency_sample_every"):
        xdisruptor.Ring.create(ring_name + "-bad", capacity=64, dtype=PEER_DTYPE,
                               latency_sample_every=100)


@pytest.mark.parametrize("language", ["python", "cpp"])
def test_flight_record_when_a_producer_waits_on_the_full_ring(ring_name, peer, fork_ctx, tmp_path,
                                                              language):
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=PEER_DTYPE, flight_wait=0.2,
                                  flight_dir=str(tmp_path), flight_events=8)
    stuck = ring.consumer("stuck")  # registered here, never reads: the ring fills up
    if language == "python":
        blocked = fork_ctx.Process(target=python_producer, args=(ring_name, 20))
        blocked.start()
    else:
        blocked = subprocess.Popen([peer, "produce", f"--ring={ring_name}", "--events=20",
                                    "--batch=1"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    try:
        stats = wait_until(lambda: (lambda s: s if s["flight_records"] else None)(ring.stats()),
                           20, f"a flight record from the {language} producer")
    finally:
        blocked.kill()
    path = stats["latest_flight_record"]
    assert os.path.dirname(path) == str(tmp_path) and path.endswith(".producer-blocked.json")
    record = json.loads(pathlib.Path(path).read_text())
    assert record["reason"] == "producer-blocked" and record["stuck_sequence"] == 0
    assert record["writer_pid"] == blocked.pid
    assert [c["name"] for c in record["stats"]["consumers"]] == ["stuck"]
    assert record["stats"]["consumers"][0]["wait"] == "blocking"  # its wait strategy
    assert stats["full_waits"] >= 1 and stats["full_wait_s"] > 0
    # The 8 events from the stuck sequence on, decoded with the ring's schema.
    assert [e["sequence"] for e in record["events"]] == list(range(8))
    for e in record["events"]:
        s = e["sequence"]
        assert e["event"]["text"] == f"event {s}" and e["event"]["value"] == 3 * s + 1
    stuck.close()


def test_flight_record_on_eviction_by_the_tool_by_python_and_by_a_stall_policy(
        ring_name, tool, tmp_path):
    ring = xdisruptor.Ring.create(ring_name, capacity=16, dtype=PEER_DTYPE,
                                  flight_dir=str(tmp_path))
    victim = ring.consumer("victim")
    with ring.producer() as p:
        p.publish((7, 22, 3.5, 0, b"event 7"))
    done = subprocess.run([tool, "evict", ring_name, "victim"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    stat = subprocess.run([tool, "stat", ring_name], capture_output=True, text=True).stdout
    first = ring.stats()["latest_flight_record"]
    assert f"flight records 1, latest {first}" in stat
    record = json.loads(pathlib.Path(first).read_text())
    assert record["reason"] == "eviction" and "victim evicted by an operator" in record["detail"]
    assert record["events"][0]["event"] == {"sequence": 7, "value": 22, "price": 3.5, "mark": 0,
                                            "text": "event 7"}
    victim.close()
    other = ring.consumer("other")
    xdisruptor.Ring.evict(ring_name, "other")
    assert ring.stats()["flight_records"] == 2
    assert "other evicted by an operator" in pathlib.Path(
        ring.stats()["latest_flight_record"]).read_text()
    other.close()
    # A stall policy's eviction, by a Python producer.
    laggard = ring.consumer("laggard", stall_policy="evict", max_lag=4, max_lag_s=0.1)
    with ring.producer() as p:
        for i in range(40):
            p.publish((i, 0, 0.0, 0, b""))
    stats = ring.stats()
    assert stats["flight_records"] == 3
    record = json.loads(pathlib.Path(stats["latest_flight_record"]).read_text())
    assert "laggard" in record["detail"] and "slow-consumer limit" in record["detail"]
    laggard.close()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_top_in_a_real_terminal_shows_the_ring_and_updates(ring_name, tool, fork_ctx):
    ring = xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE,
                                  latency_sample_every=16)
    procs, dones, leave = start_consumers(fork_ctx, ring_name, {"analytics": 0.001,
                                                                  "archiver": 0})
    session = f"xdtop-{os.getpid()}"
    subprocess.run([TMUX, "new-session", "-d", "-s", session, "-x", "200", "-y", "40",
                    f"{tool} top {ring_name} --interval_ms=200"], check=True,
                   env=dict(os.environ, LANG="C.UTF-8"))
    try:
        def screen():
            return subprocess.run([TMUX, "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout
        first = wait_until(lambda: (lambda s: s if "analytics" in s else None)(screen()), 20,
                           "top to draw")
        assert f"xdisruptor top {ring_name}" in first and f"ring {ring_name}:" in first
        assert "archiver" in first and "lag history" in first and "p99" in first
        producer = fork_ctx.Process(target=python_producer, args=(ring_name, 3000, 0.0005))
        producer.start()
        later = wait_until(lambda: (lambda s: s if "cursor 2999" in s else None)(screen()), 60,
                           "top to show the whole stream")
        assert later != first
        rows = [line for line in later.splitlines() if line.startswith(("analytics", "archiver"))]
        assert len(rows) == 2 and all("ms" in r or "us" in r for r in rows), rows  # latency
        producer.join(30)
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session])
        stop_consumers(procs, dones, leave)


def test_launcher_serves_metrics_and_passes_the_observability_settings(tmp_path, examples_bin):
    port = free_port()
    check = tmp_path / "check.py"
    check.write_text(textwrap.dedent(f"""
        import sys, urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:{port}/metrics").read().decode()
        assert "xdisruptor_ring_latency_sample_every{{ring=" in text, text
        line = [l for l in text.splitlines()
                if l.startswith("xdisruptor_ring_published_events_total")][0]
        assert float(line.split()[-1]) == float(sys.argv[1]), line
        assert 'latency_sample_every{{ring="' in text and '"}} 64.0' in text
        """))
    config = tmp_path / "metrics.toml"
    config.write_text(textwrap.dedent(f"""
        [ring]
        capacity = 1024
        dtype = [["sequence", "<i8"], ["value", "<i8"]]
        latency_sample_every = 64
        flight_wait = 0.5
        flight_dir = "{{root}}/flight"
        flight_events = 4

        [metrics]
        listen = "127.0.0.1:{port}"

        [producer]
        command = ["{{python}}", "-c", "import os, xdisruptor; r = xdisruptor.Ring.attach(os.environ['XDISRUPTOR_RING']); p = r.producer(); [p.publish((i, i)) for i in range(5000)]; p.close()"]

        [[stage]]
        name = "reader"
        handler = "pipeline_handlers:count"
        python_path = ["{REPO / 'tests/python'}"]

        [[check]]
        command = ["{{python}}", "{check}", "{{published}}"]
        """))
    run = subprocess.run([sys.executable, "-m", "xdisruptor.pipeline", "run", str(config),
                          "--view=lines"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"metrics at http://127.0.0.1:{port}/metrics" in run.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("latency_sample_every = 64",
                                              "latency_sample_every = 65")
                   .replace(f'listen = "127.0.0.1:{port}"', 'listen = "nowhere"'))
    run = subprocess.run([sys.executable, "-m", "xdisruptor.pipeline", "validate", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "latency_sample_every is 0 (off) or a power of two, not 65" in run.stderr + run.stdout
    assert "[metrics]: listen is \"HOST:PORT\"" in run.stderr + run.stdout
