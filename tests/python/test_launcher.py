"""The pipeline launcher (python3 -m xdisruptor.pipeline) with real C++ and Python stage
processes: chains and diamonds of mixed languages, start-up order, stage death, Ctrl-C,
the error policies as seen from the launcher, and validation."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from conftest import TICK_SCHEMA

HERE = pathlib.Path(__file__).resolve().parent


def write_pipeline(tmp_path, examples_bin, ring_name, stages, *, events=20000, feed_args=(),
                   capacity=1024, extra=""):
    feed = [f"{{bin}}/xdisruptor_demo_feed", f"--events={events}", "--seconds=0",
            "--rate=0", *feed_args]
    text = f"""
[vars]
bin = "{examples_bin}"
tmp = "{tmp_path}"

[ring]
name = "{ring_name}"
capacity = {capacity}
dtype = "{TICK_SCHEMA}"

[producer]
command = {json.dumps(feed)}

{stages}
{extra}
"""
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def py_stage(name, handler, after=(), **keys):
    lines = [f'[[stage]]', f'name = "{name}"', f'handler = "pipeline_handlers:{handler}"',
             f'python_path = ["{HERE}"]', f"after = {json.dumps(list(after))}"]
    lines += [f"{k} = {json.dumps(v) if not isinstance(v, str) or not v.startswith('{') else v}"
              for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def cpp_stage(name, role, after=(), args=(), **keys):
    command = ["{bin}/xdisruptor_demo_stage", f"--role={role}", *args]
    lines = [f'[[stage]]', f'name = "{name}"', f"command = {json.dumps(command)}",
             f"after = {json.dumps(list(after))}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def launch(path, *args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "xdisruptor.pipeline", "run", str(path),
                           "--view=lines", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def validate(path, *args):
    """`python3 -m xdisruptor.pipeline validate PATH ARGS...`, its output captured."""
    return subprocess.run([sys.executable, "-m", "xdisruptor.pipeline", "validate", str(path),
                           *args], capture_output=True, text=True, timeout=60)


def assert_reported(path, err, expected):
    """Each (line, message) of `expected` is a line of `err` starting PATH:LINE: ."""
    for line, message in expected:
        assert any(l.startswith(f"{path}:{line}: ") and message in l for l in err.splitlines()),\
            (line, message, err)


def test_should_check_every_event_at_the_last_stage_when_cpp_and_python_form_a_chain(
        tmp_path, examples_bin, ring_name):
    result = tmp_path / "check.json"
    stages = (cpp_stage("enricher", "enricher", wait="blocking") +
              py_stage("check", "CheckEnriched", after=["enricher"],
                       options=f'{{ result = "{result}" }}') +
              cpp_stage("sink", "sink", after=["check"]))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=50000)
    # What the launcher sets only for some stages does not leak in from its own environment.
    leaked = dict(os.environ, XDISRUPTOR_GROUP="bogus", XDISRUPTOR_CLAIM="3",
                  XDISRUPTOR_JOURNAL=str(tmp_path / "nowhere"), XDISRUPTOR_START_AT="7")
    done = launch(path, env=leaked)
    assert done.returncode == 0, done.stdout + done.stderr
    # Started in dependency order, each registered before the next and before the producer,
    # so every stage saw the first event.
    started = [l.split()[2] for l in done.stdout.splitlines() if l.startswith("started stage")]
    assert started == ["enricher", "check", "sink"]
    assert done.stdout.index("started stage sink") < done.stdout.index("started the producer")
    assert json.loads(result.read_text()) == {"first": 0, "events": 50000}
    assert "sink: 50000 ticks, sequences 0..49999 contiguous" in done.stdout
    assert "summary: 50,000 events published" in done.stdout


def test_should_see_a_python_stages_change_in_cpp_stages_when_they_form_a_diamond(
        tmp_path, examples_bin, ring_name):
    stages = (py_stage("py-enrich", "Enrich", writable=True) +
              cpp_stage("left", "sink", after=["py-enrich"]) +
              py_stage("right", "CheckEnriched", after=["py-enrich"]) +
              cpp_stage("last", "sink", after=["left", "right"]))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=30000)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("left", "right", "last"):
        assert f"stage {stage}: stream closed, 30000 events, 0 handler errors" in done.stdout
    assert done.stdout.count("sink: 30000 ticks, sequences 0..29999 contiguous") == 2


@pytest.mark.parametrize("language", ["cpp", "python"])
def test_should_cap_a_slow_stages_batches_at_half_the_ring_by_default(
        tmp_path, examples_bin, ring_name, language):
    # The only stage, slower than the producer, so the ring (64 slots) is full whenever it
    # comes back for more; it names no max_batch and is handed at most 32 events at once, by
    # the one default of C++ and Python (DefaultMaxBatch). Uncapped, it would take 64.
    result = tmp_path / "largest.json"
    if language == "cpp":
        stage = cpp_stage("slow", "enricher", args=["--slow_us=2000"])
    else:
        stage = py_stage("slow", "Slow", options=f'{{ seconds = 0.002, result = "{result}" }}')
    path = write_pipeline(tmp_path, examples_bin, ring_name, stage, events=3000, capacity=64)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    if language == "cpp":
        assert "enricher: 3000 ticks completed in place in" in done.stdout
        assert "(largest 32)" in done.stdout, done.stdout
    else:
        assert json.loads(result.read_text()) == {"largest": 32}


def test_should_exit_nonzero_naming_the_stage_when_a_stage_dies(
        tmp_path, examples_bin, ring_name):
    stages = (cpp_stage("enricher", "enricher") +
              py_stage("dies", "FailOn", after=["enricher"],
                       options="{ at = 500, die = true }") +
              cpp_stage("sink", "sink", after=["dies"]))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=20000)
    done = launch(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pipeline FAILED: stage 'dies' failed (exit code 3)" in done.stdout


def test_should_show_the_python_traceback_when_a_handler_raises_under_policy_stop(
        tmp_path, examples_bin, ring_name):
    stages = (cpp_stage("enricher", "enricher") +
              py_stage("failing", "FailOn", after=["enricher"], options="{ at = 100 }"))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=5000)
    done = launch(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pipeline FAILED: stage 'failing' failed (exit code 1)" in done.stdout
    assert "Traceback (most recent call last)" in done.stdout
    assert "ValueError: cannot handle tick 100" in done.stdout
    assert "stage failing: failed on event 100 after 1 attempt" in done.stdout


def test_should_count_skipped_events_when_a_cpp_stage_has_policy_skip(
        tmp_path, examples_bin, ring_name):
    stages = (cpp_stage("enricher", "enricher") +
              cpp_stage("picky", "sink", after=["enricher"], args=["--fail_at=50"],
                        error_policy="skip"))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=5000)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    # 4999 handled plus the one skipped were released: the stage went on past it.
    assert "stage picky: stream closed, 5000 events, 1 handler errors" in done.stdout
    assert "handler failed on event 50: asked to fail on event 50 (skipped)" in done.stdout


@pytest.mark.parametrize("language", ["cpp", "python"])
def test_should_rerun_the_batch_when_policy_is_retry_and_the_failure_passes(
        tmp_path, examples_bin, ring_name, language):
    if language == "cpp":
        stage = cpp_stage("flaky", "sink", after=["enricher"],
                          args=["--fail_at=300", "--fail_times=2", "--fail_rewindable"],
                          error_policy="retry", max_retries=3, retry_pause=0.01)
    else:
        stage = py_stage("flaky", "FailOn", after=["enricher"],
                         options="{ at = 300, times = 2, rewindable = true }",
                         error_policy="retry", max_retries=3, retry_pause=0.01)
    path = write_pipeline(tmp_path, examples_bin, ring_name,
                          cpp_stage("enricher", "enricher") + stage, events=5000)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stage flaky: stream closed, 5000 events, 2 handler errors" in done.stdout


@pytest.mark.parametrize("language", ["cpp", "python"])
def test_should_stop_the_stage_when_retries_run_out(tmp_path, examples_bin, ring_name,
                                                    language):
    if language == "cpp":
        stage = cpp_stage("flaky", "sink", after=["enricher"],
                          args=["--fail_at=300", "--fail_rewindable"],
                          error_policy="retry", max_retries=2, retry_pause=0.001)
    else:
        stage = py_stage("flaky", "FailOn", after=["enricher"],
                         options="{ at = 300, rewindable = true }",
                         error_policy="retry", max_retries=2, retry_pause=0.001)
    path = write_pipeline(tmp_path, examples_bin, ring_name,
                          cpp_stage("enricher", "enricher") + stage, events=5000)
    done = launch(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stage flaky: failed on event 300 after 3 attempts" in done.stdout
    assert "pipeline FAILED: stage 'flaky' failed (exit code 1)" in done.stdout


def endless_chain(tmp_path, examples_bin, ring_name):
    """A C++ enricher and a Python check after it, fed for 60 s at 20,000 ticks/s (a run to
    stop): (the check's result file, the pipeline file)."""
    result = tmp_path / "check.json"
    stages = (cpp_stage("enricher", "enricher") +
              py_stage("check", "CheckEnriched", after=["enricher"],
                       options=f'{{ result = "{result}" }}'))
    return result, write_pipeline(tmp_path, examples_bin, ring_name, stages, events=0,
                                  feed_args=["--seconds=60", "--rate=20000"])


def test_should_stop_cleanly_and_drain_when_interrupted(tmp_path, examples_bin, ring_name):
    result, path = endless_chain(tmp_path, examples_bin, ring_name)
    proc = subprocess.Popen([sys.executable, "-m", "xdisruptor.pipeline", "run", str(path),
                             "--view=lines"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while not result.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
        if "started the producer" in (proc.stdout.peek() if hasattr(proc.stdout, "peek")
                                      else ""):
            break
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "pipeline stopped by Ctrl-C" in out
    published = int(out.split("summary: ")[1].split()[0].replace(",", ""))
    assert published > 0
    # The producer closed the stream on the signal; every stage drained all of it.
    assert json.loads(result.read_text()) == {"first": 0, "events": published}
    assert f"stage enricher: stream closed, {published} events" in out


def start_launcher(path):
    """The launcher in the background; returns it once it started the producer, with the pids
    of every child it named."""
    proc = subprocess.Popen([sys.executable, "-m", "xdisruptor.pipeline", "run", str(path),
                             "--view=lines"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    pids, lines = [], []
    for line in proc.stdout:
        lines.append(line)
        if ", pid " in line:
            pids.append(int(line.split(", pid ")[1].split(",")[0].split(")")[0]))
        if line.startswith("started the producer"):
            return proc, pids, lines
    raise AssertionError("the launcher did not start the producer: " + "".join(lines) +
                         proc.stderr.read())


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_should_stop_every_child_and_drain_on_sigterm_and_sighup(tmp_path, examples_bin,
                                                               ring_name, sig):
    """kill, timeout, a service manager or a closed terminal stop the pipeline as Ctrl-C does:
    the stages drain what was published, no child outlives the launcher, exit 128 + signal."""
    result, path = endless_chain(tmp_path, examples_bin, ring_name)
    proc, pids, _ = start_launcher(path)
    assert len(pids) == 3  # two stages and the producer
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out + err
    name = signal.Signals(sig).name
    assert f"interrupted ({name})" in out and \
        f"pipeline stopped by {name}; every stage drained what was published" in out, out
    published = int(out.split("summary: ")[1].split()[0].replace(",", ""))
    assert published > 0 and json.loads(result.read_text()) == {"first": 0, "events": published}
    assert not [p for p in pids if alive(p)], "a child outlived the launcher"


@pytest.mark.parametrize("second", [False, True], ids=["stop_timeout", "second-ctrl-c"])
def test_should_say_which_stages_did_not_drain_and_hurry_on_a_second_ctrl_c(
        tmp_path, examples_bin, ring_name, second):
    """A stage too slow to drain (5 s a batch): stopped after stop_timeout, or at once by a
    second Ctrl-C (not after the 120 s allowed); the summary names it, exit 1."""
    stages = py_stage("slow", "Slow", options="{ seconds = 5.0 }")
    timeout = 120 if second else 1
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=0,
                          feed_args=["--seconds=60", "--rate=20000"],
                          extra=f"[launcher]\nstop_timeout = {timeout}\n")
    proc, pids, _ = start_launcher(path)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    if second:
        time.sleep(1.0)
        assert proc.poll() is None  # draining: 120 s allowed, a batch takes 5 s
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=100)  # well before 120 s: hurried
    assert proc.returncode == 1, out + err
    why = ("a second signal cut the drain short" if second
           else "not within stop_timeout (1 s), or failed")
    assert f"NOT drained ({why}): slow" in out, out
    assert not [p for p in pids if alive(p)]


def test_should_report_a_stage_that_exits_before_it_registers(tmp_path, examples_bin,
                                                              ring_name):
    stages = cpp_stage("broken", "no-such-role")
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=10)
    done = launch(path)
    assert done.returncode == 1
    assert "stage 'broken' exited before it registered (exit code 2)" in done.stdout


def test_should_report_each_problem_with_its_line_when_validating(tmp_path, examples_bin):
    text = f"""[ring]
capacity = 1000
dtype = "<i8:sequence,<q9:oops"

[producer]
command = ["{examples_bin}/no_such_feed"]

[[stage]]
name = "a"
handler = "no_such_module:Handler"
after = ["b"]

[[stage]]
name = "b"
command = ["{examples_bin}/xdisruptor_demo_stage"]
after = ["a", "ghost"]
wait = "sometimes"

[[stage]]
name = "c"
handler = "pipeline_handlers:Missing"
python_path = ["{HERE}"]
error_policy = "ignore"
colour = "blue"
"""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = validate(path)
    assert done.returncode == 2
    err = done.stderr
    expected = [
        (2, "capacity must be a power of two"),
        (3, "bad dtype"),
        (6, "program not found"),
        (10, "stage 'a': handler 'no_such_module:Handler': cannot import 'no_such_module'"),
        (16, "stage 'b': after names unknown stage 'ghost'"),
        (17, "stage 'b': unknown wait 'sometimes'"),
        (23, "stage 'c': error_policy must be one of stop, skip, retry"),
        (24, "stage 'c': unknown key 'colour'"),
        (21, "stage 'c': handler 'pipeline_handlers:Missing': module 'pipeline_handlers' has "
             "no 'Missing'"),
        (8, "stage 'a': the stages run after each other in a cycle: a -> b -> a"),
    ]
    for line, message in expected:
        assert f"{path}:{line}: " in err and message in err, (line, message, err)
        assert any(l.startswith(f"{path}:{line}: ") and message in l for l in err.splitlines()),\
            (line, message, err)


def test_should_report_the_right_lines_after_comments_and_multiline_values_and_bad_types(
        tmp_path, examples_bin):
    """Headers with a comment after them and a dtype list over several lines keep the line
    numbers right; keys the launcher does not know, values of the wrong type and malformed
    placeholders are reported with their line (exit 2), never a traceback."""
    text = f"""[ring]
capacity = 1024
dtype = [
  ["sequence", "<i8"],
  ["price", "<f8"],
]

[producer]  # the feed
command = ["{examples_bin}/xdisruptor_demo_feed", "{{}}"]
env = {{ A = "1" }}

[launcher]
stop_timout = 5
start_timeout = "soon"

[[stage]]  # first
name = "a"
command = ["{examples_bin}/xdisruptor_demo_stage"]
writable = "false"
python_path = "lib"
options = "x"

[[check]]  # after a clean end
command = ["true"]
when = "always"

[[stage]]
name = "g"
command = ["{examples_bin}/xdisruptor_demo_stage"]
workers = 2

[[stage]]
name = "g.1"
command = ["{examples_bin}/xdisruptor_demo_stage"]
after = 5
"""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = validate(path)
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr
    assert "Traceback" not in err, err
    expected = [
        (9, "[producer]: unknown placeholder"),
        (10, "[producer]: unknown key 'env'"),
        (13, "[launcher]: unknown key 'stop_timout'"),
        (14, "[launcher]: start_timeout must be a number of seconds > 0"),
        (19, "stage 'a': writable must be true or false"),
        (20, "stage 'a': python_path must be a list of directories"),
        (21, "stage 'a': options must be a table"),
        (25, "check #1: unknown key 'when'"),
        (32, "stage 'g.1': its name is that of a member of worker group 'g'"),
        (35, "stage 'g.1': after is a list of stage names"),
    ]
    assert_reported(path, err, expected)


def test_should_report_tables_of_the_wrong_kind_and_handlers_that_fail_to_import(tmp_path,
                                                                                 examples_bin):
    """ring = "x", stage = [1] and a handler module with a syntax error are problems reported
    with their line (exit 2), not a traceback."""
    (tmp_path / "broken_handler.py").write_text("def oops(:\n")
    text = f"""vars = 1
ring = "x"
stage = [1]

[producer]
command = ["{examples_bin}/xdisruptor_demo_feed"]
"""
    (tmp_path / "bad.toml").write_text(text)
    good = f"""[ring]
capacity = 64
dtype = "<i8:sequence"

[producer]
command = ["{examples_bin}/xdisruptor_demo_feed"]

[[stage]]
name = "a"
handler = "broken_handler:Handler"
"""
    (tmp_path / "handler.toml").write_text(good)
    for name, expected in (("bad.toml", [(1, "[vars] must be a table"),
                                         (2, "[ring] must be a table"),
                                         (3, "[[stage]] must be tables")]),
                           ("handler.toml", [(10, "stage 'a': handler 'broken_handler:Handler':"
                                                 " cannot import 'broken_handler' "
                                                 "(SyntaxError")])):
        path = tmp_path / name
        done = validate(path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert_reported(path, done.stderr, expected)


def test_should_accept_the_demo_file_when_validating(examples_bin):
    done = subprocess.run([sys.executable, "-m", "xdisruptor.pipeline", "validate",
                           str(HERE.parents[1] / "examples/pipeline/demo.toml"),
                           "--set", f"build={pathlib.Path(examples_bin).parent}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("4 stages in order: enricher, analytics (after enricher), recorder (after "
            "enricher), sink (after analytics, recorder)") in done.stdout


@pytest.mark.parametrize("language", ["cpp", "python"])
def test_should_evict_a_stage_beyond_its_slow_consumer_limit(tmp_path, examples_bin, ring_name,
                                                            language):
    limit = dict(stall_policy="evict", max_lag=64, max_lag_s=0.2)
    if language == "cpp":
        slow = cpp_stage("laggard", "enricher", args=["--slow_us=20000"], **limit)
    else:
        slow = py_stage("laggard", "Slow", options="{ seconds = 0.05 }", **limit)
    path = write_pipeline(tmp_path, examples_bin, ring_name, slow, events=20000)
    done = launch(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stage 'laggard' failed" in done.stdout
    assert "evicted" in (done.stdout + done.stderr).lower()


def test_should_refuse_a_slow_consumer_limit_without_the_evict_policy(tmp_path, examples_bin,
                                                                     ring_name):
    path = write_pipeline(tmp_path, examples_bin, ring_name,
                          cpp_stage("a", "sink", max_lag=10), events=10)
    done = validate(path)
    assert done.returncode == 2 and "needs stall_policy" in done.stderr, done.stderr


def test_should_create_the_ring_with_the_mode_and_group_asked_for(tmp_path, examples_bin,
                                                                  ring_name):
    path = write_pipeline(tmp_path, examples_bin, ring_name, cpp_stage("a", "enricher"),
                          events=100)
    text = path.read_text().replace("[ring]\n", f'[ring]\nmode = "0640"\ngroup = "{os.getgid()}"\n')
    path.write_text(text)
    script = f"""
import os, sys, runpy, xdisruptor
real = xdisruptor.Ring.create
def spy(*a, **k):
    ring = real(*a, **k)
    st = os.stat("/dev/shm/" + a[0])
    print("RING MODE", oct(st.st_mode & 0o777), st.st_gid, flush=True)
    return ring
xdisruptor.Ring.create = spy
sys.argv = ["xdisruptor.pipeline", "run", {str(path)!r}, "--view=lines"]
runpy.run_module("xdisruptor.pipeline", run_name="__main__")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert f"RING MODE 0o640 {os.getgid()}" in done.stdout, done.stdout + done.stderr


def test_should_record_the_stream_into_the_journal_table_and_let_stages_catch_up(
        tmp_path, examples_bin, ring_name):
    import xdisruptor
    result = tmp_path / "check.json"
    # Every stage registers before the producer starts; these two catch up from the journal
    # (here there is nothing to catch up yet: they join the ring at 0, through the journal).
    stages = (cpp_stage("sink", "sink", after=["enricher"], start_at=0, journal=True) +
              py_stage("check", "CheckEnriched", after=["enricher"], start_at=0,
                       journal=str(tmp_path / "j"), options=f'{{ result = "{result}" }}') +
              cpp_stage("enricher", "enricher"))
    extra = f"""
[journal]
directory = "{{tmp}}/j"
name = "recorder"
after = ["enricher"]
fsync = "every:50"
segment_bytes = 640000
"""
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=40000, extra=extra)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    started = [l.split()[2] for l in done.stdout.splitlines() if l.startswith("started stage")]
    assert started.index("recorder") == started.index("enricher") + 1
    assert "journal recorder: recorded 40000 events" in done.stdout + done.stderr
    assert "sink: 40000 ticks, sequences 0..39999 contiguous" in done.stdout
    assert json.loads(result.read_text()) == {"first": 0, "events": 40000}
    journal = xdisruptor.Journal(tmp_path / "j")
    assert (journal.first, journal.last, journal.segments) == (0, 39999, 4)
    journal.verify()
    assert list(journal.read(39990, 40000)["sequence"]) == list(range(39990, 40000))


def test_should_refuse_a_journal_stage_without_a_start_or_a_journal_table(tmp_path,
                                                                          examples_bin,
                                                                          ring_name):
    stages = (cpp_stage("sink", "sink", journal=True) + cpp_stage("b", "sink", journal="x") +
              cpp_stage("c", "sink", after=["b"], journal=True, start_at=0) +
              cpp_stage("d", "sink", journal="y", start_at=5))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages,
                          extra='[journal]\nname = "sink"\nfsync = "often"\nafter = ["zz"]\n')
    done = validate(path)
    assert done.returncode == 2
    for text in ("directory is missing", "fsync is none, batch or every:MS",
                 "say where to start (start_at)", "is also a stage's",
                 "after names unknown stage 'zz'",
                 "stage 'd': start_at must be 0: each run makes the ring anew",
                 "stage 'c': runs after 'b' but the journal records events before they have "
                 "processed them; add them to [journal] after"):
        assert text in done.stderr, done.stderr


@pytest.mark.parametrize("language", ["cpp", "python"])
@pytest.mark.parametrize("how", ["crash", "failure"])
def test_should_restart_a_stage_by_name_and_lose_nothing_when_its_restart_policy_allows(
        tmp_path, examples_bin, ring_name, language, how):
    """The middle stage of a chain crashes (SIGKILL) or fails (its handler raises, policy
    stop) once, at event 5000. restart = on-crash / on-failure: the launcher starts it again
    by name, it resumes where it stopped (the producer and the stages after it wait
    meanwhile), and the last stages see every event once, in order, changed by the first."""
    once, result = tmp_path / "acted", tmp_path / "check.json"
    keys = {"restart": "on-crash" if how == "crash" else "on-failure", "restart_pause": 0.2}
    if language == "cpp":
        flag = "--die_at=5000" if how == "crash" else "--fail_at=5000"
        middle = cpp_stage("middle", "sink", after=["enricher"], args=[flag, f"--once={once}"],
                           **keys)
    else:
        middle = py_stage("middle", "FailOn", after=["enricher"], **keys,
                          options=f'{{ at = 5000, once = "{once}"'
                                  f'{", kill = true" if how == "crash" else ""} }}')
    stages = (cpp_stage("enricher", "enricher") + middle +
              cpp_stage("sink", "sink", after=["middle"]) +
              py_stage("check", "CheckEnriched", after=["middle"],
                       options=f'{{ result = "{result}" }}'))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=30000)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert once.exists()
    why = "killed by SIGKILL" if how == "crash" else "exit code 1"
    assert f"stage middle {why}; starting it again in 0.2 s" in done.stdout, done.stdout
    assert "started stage middle again (pid " in done.stdout
    assert f"restart 1 of 3, restart = {keys['restart']})" in done.stdout
    assert "sink: 30000 ticks, sequences 0..29999 contiguous" in done.stdout
    assert json.loads(result.read_text()) == {"first": 0, "events": 30000}
    summary = done.stdout.split("summary: ")[1]
    assert "exit 0, restarted 1 time" in summary
    if how == "failure":  # what the failed process said stays in the summary
        assert "5000" in summary.split("--- middle: its error output")[1]
    if language == "cpp":  # the restarted process resumed at or before the event it died on
        assert "stage middle: stream closed, " in done.stdout


@pytest.mark.parametrize("restart,restarts", [("on-failure", 2), ("on-crash", 0), ("no", 0)])
def test_should_fail_the_run_once_the_restarts_run_out_or_the_policy_does_not_cover_it(
        tmp_path, examples_bin, ring_name, restart, restarts):
    """A stage that exits with code 3 on event 500 every time: on-failure starts it again
    max_restarts times, then the run fails naming it; on-crash (an exit code is no crash)
    and no fail at once."""
    stages = (cpp_stage("enricher", "enricher") +
              py_stage("dies", "FailOn", after=["enricher"], options="{ at = 500, die = true }",
                       restart=restart, max_restarts=2, restart_pause=0))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=20000)
    done = launch(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("started stage dies again") == restarts
    after = f" after {restarts} restarts" if restarts else ""
    assert f"pipeline FAILED: stage 'dies' failed (exit code 3){after}" in done.stdout


def test_should_restart_the_journal_recorder_and_record_every_event(tmp_path, examples_bin,
                                                                    ring_name):
    """[journal] restart = "on-crash": the recorder SIGKILLed mid-stream (by the test) is
    started again by name and goes on where the journal ends: every event once in it."""
    import xdisruptor
    stages = cpp_stage("enricher", "enricher")
    extra = f"""
[journal]
directory = "{{tmp}}/j"
name = "recorder"
after = ["enricher"]
restart = "on-crash"
restart_pause = 0.1
"""
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, events=0, extra=extra,
                          feed_args=["--seconds=4", "--rate=20000"])
    proc, pids, lines = start_launcher(path)
    recorder = next(int(l.split(", pid ")[1].split(",")[0].split(")")[0]) for l in lines
                    if l.startswith("started stage recorder"))
    time.sleep(1.0)
    os.kill(recorder, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "stage recorder killed by SIGKILL; starting it again in 0.1 s" in out
    published = int(out.split("summary: ")[1].split()[0].replace(",", ""))
    journal = xdisruptor.Journal(tmp_path / "j")
    journal.verify()
    assert (journal.first, journal.last) == (0, published - 1)
    assert list(journal.read(0, published)["sequence"]) == list(range(published))


def running(pid):
    """Alive and not a zombie (whoever adopted an orphan may be slow to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_should_stop_every_child_when_the_launcher_is_killed(tmp_path, examples_bin,
                                                             ring_name):
    """A SIGKILL of the launcher (nothing of it runs) still stops its children: each gets
    SIGTERM as its parent dies, so the producer closes the stream and the stages halt; the
    next run of the file removes the ring they left and runs."""
    result, path = endless_chain(tmp_path, examples_bin, ring_name)
    proc, pids, _ = start_launcher(path)
    assert len(pids) == 3
    time.sleep(1.0)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while [p for p in pids if running(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if running(p)], "a child outlived the launcher"
    path.write_text(path.read_text().replace('"--seconds=60", "--rate=20000"',
                                             '"--seconds=0", "--rate=0"').replace(
        "--events=0", "--events=5000"))
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(result.read_text()) == {"first": 0, "events": 5000}


@pytest.mark.parametrize("stream", ["running", "ended"])
def test_should_restart_a_worker_groups_member_by_its_name(tmp_path, examples_bin, ring_name,
                                                           stream):
    """A member of a worker group (workers = 2) SIGKILLed on event 5000: the other member
    takes its run over; while the stream runs, the launcher starts it again as the same
    member; once the stream ended and the group with it (an 8 s pause here), it has nothing
    left to do and the run does not fail for it. Either way the stage after the group sees
    every event once, in order."""
    once = tmp_path / "acted"
    feed = dict(events=0, feed_args=["--seconds=3", "--rate=20000"]) if stream == "running" \
        else dict(events=20000)
    stages = (cpp_stage("enricher", "enricher") +
              py_stage("group", "FailOn", after=["enricher"], workers=2, claim=64,
                       restart="on-crash", restart_pause=0.1 if stream == "running" else 8,
                       options=f'{{ at = 5000, kill = true, once = "{once}" }}') +
              cpp_stage("sink", "sink", after=["group"]))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages, **feed)
    done = launch(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert once.exists()
    restarted = [l for l in done.stdout.splitlines() if l.startswith("started stage group.")
                 and " again (pid " in l]
    settled = "not started again, its group handled its events and has ended" in done.stdout
    assert (len(restarted), settled) == ((1, False) if stream == "running" else (0, True)), \
        done.stdout
    published = int(done.stdout.split("summary: ")[1].split()[0].replace(",", ""))
    assert f"sink: {published} ticks, sequences 0..{published - 1} contiguous" in done.stdout


def test_should_report_bad_restart_keys_with_their_lines_when_validating(tmp_path, examples_bin,
                                                                         ring_name):
    stages = (cpp_stage("a", "sink", restart="sometimes", max_restarts=-1, restart_pause="soon")
              + cpp_stage("e", "sink", restart="on-crash", stall_policy="evict"))
    path = write_pipeline(tmp_path, examples_bin, ring_name, stages,
                          extra='[journal]\ndirectory = "j"\nrestart = true\n')
    done = validate(path)
    assert done.returncode == 2
    text = path.read_text().splitlines()
    for key, message in (("restart = \"sometimes\"", "stage 'a': restart must be one of no, "
                          "on-crash, on-failure"),
                         ("max_restarts = -1", "stage 'a': max_restarts must be a whole number"),
                         ("restart_pause = \"soon\"", "stage 'a': restart_pause must be a "
                          "number of seconds"),
                         ("restart = true", "[journal]: restart must be one of"),
                         ("restart = \"on-crash\"", "stage 'e': a restart resumes the stage's "
                          "entry, which stall_policy = \"evict\" lets the producer drop")):
        line = next(i + 1 for i, l in enumerate(text) if l.startswith(key))
        assert f"{path}:{line}: {message}" in done.stdout + done.stderr, done.stdout + done.stderr
