"""Fixtures for the Python tests: unique ring names, the C++ test peer, child processes."""

import multiprocessing
import os
import pathlib
import signal
import subprocess
import uuid

import numpy as np
import pytest

import xdisruptor


# Tests press Ctrl-C (SIGINT) on the processes they start, as a terminal would. A suite started
# in the background by a non-interactive shell (`nohup ... &`, some CI runners) inherits SIGINT
# ignored, and an ignored signal stays ignored across exec: every child would then ignore the
# Ctrl-C. Catching it here (a handler is reset to the default at exec) gives children the
# disposition a terminal gives them.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = pathlib.Path(__file__).resolve().parents[2]

# The event the C++ test peer (tests/peer/peer_event.h) exchanges.
PEER_DTYPE = np.dtype([("sequence", "<i8"), ("value", "<i8"), ("price", "<f8"),
                       ("mark", "<u8"), ("text", "S32")])


def peer_events(first, count):
    """The PeerEvents for sequences first .. first+count-1, as the C++ peer makes them."""
    seq = np.arange(first, first + count, dtype=np.int64)
    out = np.zeros(count, dtype=PEER_DTYPE)
    out["sequence"] = seq
    out["value"] = seq * 3 + 1
    out["price"] = seq * 0.5
    out["text"] = np.char.encode(np.char.add("event ", seq.astype(str)), "ascii")
    return out


def check_peer_events(batch, first):
    """True when `batch` holds exactly the PeerEvents from `first` on."""
    expected = peer_events(first, len(batch))
    return all(np.array_equal(batch[f], expected[f])
               for f in ("sequence", "value", "price", "text"))


@pytest.fixture
def ring_name():
    name = f"xdpy-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    if xdisruptor.Ring.exists(name):
        xdisruptor.Ring.remove(name, force=True)  # children of a failed test may still map it


@pytest.fixture(scope="session")
def peer():
    """Path of the C++ test peer program (built with the C++ tests)."""
    candidates = [os.environ.get("XDISRUPTOR_TEST_PEER", ""),
                  REPO / "build/ci/tests/xdisruptor_test_peer",
                  REPO / "build/tests/xdisruptor_test_peer"]
    for c in candidates:
        if c and pathlib.Path(c).is_file():
            return str(c)
    pytest.fail("the C++ test peer is not built: run `bash .ci/build ci` (or set "
                "XDISRUPTOR_TEST_PEER)")


def read_line(proc):
    """The next line of `proc`'s stdout (with its newline; "" at the end), read from the pipe a
    byte at a time. `proc.stdout.readline()` may take the lines after it into its buffer too,
    and `communicate()` reads the pipe itself: a process that printed its last line before the
    test read the first would lose the last (seen: a worker's summary missing in CI)."""
    fd, line = proc.stdout.fileno(), bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode()


def start_peer(peer_path, *args):
    """Starts the C++ peer and waits for its 'ready' line."""
    proc = subprocess.Popen([peer_path, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = read_line(proc)
    if line.strip() != "ready":
        proc.wait(timeout=10)
        raise AssertionError(f"peer did not start: {line!r} {proc.stderr.read()}")
    return proc


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="session")
def tool():
    """Path of the xdisruptor command-line tool."""
    candidates = [os.environ.get("XDISRUPTOR_TOOL", ""), REPO / "build/ci/tools/xdisruptor",
                  REPO / "build/release/tools/xdisruptor"]
    for c in candidates:
        if c and pathlib.Path(c).is_file():
            return str(c)
    pytest.fail("the xdisruptor tool is not built: run `bash .ci/build ci` (or set "
                "XDISRUPTOR_TOOL)")


@pytest.fixture
def fork_ctx():
    return multiprocessing.get_context("fork")


# The pipeline demo's event (examples/pipeline/market_tick.h).
TICK_SCHEMA = ("<i8:sequence,<i8:timestamp_ns,<i4:symbol_id,<i4:size,<f8:bid,<f8:ask,<f8:mid,"
               "<f8:spread,S8:symbol")


@pytest.fixture(scope="session")
def examples_bin():
    """Directory of the C++ example programs (the demo feed and stages)."""
    candidates = [os.environ.get("XDISRUPTOR_EXAMPLES", ""), REPO / "build/ci/examples",
                  REPO / "build/release/examples"]
    for c in candidates:
        if c and (pathlib.Path(c) / "xdisruptor_demo_stage").is_file():
            return str(c)
    pytest.fail("the demo programs are not built: run `bash .ci/build ci` (or set "
                "XDISRUPTOR_EXAMPLES)")
