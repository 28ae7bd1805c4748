"""One vocabulary across C++ and Python: the names come from the C++ tables, the keywords are
the C++ names (old spellings warn), wait parameters go through the one C++ parser, and the
error policy is decided by the C++ rule."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import xdisruptor
from xdisruptor import _xdisruptor as core
from xdisruptor.pipeline import Stage
from xdisruptor.pipeline._config import load

SIMPLE = np.dtype([("sequence", "<i8"), ("value", "<f8")])


def test_should_mirror_the_cpp_status_table_when_wait_status_is_exported():
    # The C++ table's order is the enum's value order (static_assert in wait_status.h).
    assert [s.value for s in xdisruptor.WaitStatus] == list(core.WAIT_STATUSES)
    assert xdisruptor.WaitStatus.CLOSED == "closed"
    assert xdisruptor.WaitStatus("upstream-gone") is xdisruptor.WaitStatus.UPSTREAM_GONE
    assert str(xdisruptor.WaitStatus.PRODUCER_GONE) == "producer-gone"
    assert {"ok", "halted", "closed", "timeout", "evicted"} <= set(core.WAIT_STATUSES)


def test_should_take_the_names_from_the_cpp_tables():
    assert xdisruptor.WAIT_STRATEGIES == ("busy-spin", "yielding", "sleeping", "blocking",
                                          "timeout-blocking", "phased-backoff")
    assert xdisruptor.STALL_POLICIES == ("hold", "evict")
    assert xdisruptor.ERROR_POLICIES == ("stop", "skip", "retry")
    assert xdisruptor.WAIT_PARAMS["sleep_ceiling"] == "seconds"
    assert xdisruptor.WAIT_PARAMS["spin_tries"] == "count"


def test_should_return_a_wait_status_when_a_stage_ends(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        consumer = ring.consumer("stage")
        with ring.producer() as producer:
            producer.publish((1, 2.0))
        status = consumer.run(lambda *a: None)
        assert status is xdisruptor.WaitStatus.CLOSED and status == "closed"
        consumer.close()


@pytest.mark.parametrize("policy,rewindable,attempts,max_retries,expected", [
    ("stop", True, 1, 3, "stop"), ("skip", False, 5, 0, "skip"), ("retry", True, 1, 3, "rewind"),
    ("retry", True, 3, 3, "rewind"), ("retry", True, 4, 3, "stop"), ("retry", True, 1, 0, "stop"),
    ("retry", False, 1, 3, "stop")])
def test_should_decide_handler_failures_by_the_cpp_rule(policy, rewindable, attempts,
                                                        max_retries, expected):
    assert core.error_action(policy, rewindable, attempts, max_retries) == expected


def test_should_record_wait_parameters_in_seconds_and_counts(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        consumer = ring.consumer("c", wait="phased-backoff", phase_spin=0.00002,
                                 phase_yield=0.0003, spin_tries=9, fallback="sleeping",
                                 sleep_ceiling=0.0002)
        (entry,) = ring.stats()["consumers"]
        assert (entry["wait"], entry["phase_spin"], entry["phase_yield"], entry["spin_tries"],
                entry["fallback"], entry["sleep_ceiling"]) == (
                    "phased-backoff", 0.00002, 0.0003, 9, "sleeping", 0.0002)
        consumer.close()


@pytest.mark.parametrize("params,message", [
    ({"spin_tries": -1}, "whole number"), ({"spin_tries": 2.5}, "whole number"),
    ({"spin_tries": 2 ** 40}, "whole number"), ({"timeout": 1e300}, "seconds"),
    ({"timeout": float("nan")}, "seconds"), ({"timeout": "soon"}, "expected a number"),
    ({"colour": 1}, "unknown wait parameter 'colour'"), ({"fallback": 3}, "strategy name"),
    ({"spin_tries": [1]}, "expected a number")])
def test_should_refuse_bad_wait_parameters_with_a_clear_error(ring_name, params, message):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        with pytest.raises(xdisruptor.InvalidArgumentError, match=message):
            ring.consumer("c", wait="sleeping", **params)
        with pytest.raises(xdisruptor.InvalidArgumentError, match=message):
            ring.producer(wait="sleeping", **params)


def test_should_accept_the_old_keywords_with_a_warning(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SIMPLE) as ring:
        with pytest.warns(DeprecationWarning, match="'policy' is deprecated; use "
                                                     "'stall_policy'"):
            consumer = ring.consumer("c", policy="evict")
        assert ring.stats()["consumers"][0]["stall_policy"] == "evict"
        with ring.producer() as producer:
            producer.publish((1, 2.0))
        with pytest.warns(DeprecationWarning, match="'on_error' is deprecated"):
            assert consumer.run(lambda *a: None, on_error="skip", retries=1) == "closed"
        consumer.close()
        with pytest.warns(DeprecationWarning, match="'rejoin' is deprecated"):
            ring.consumer("d", rejoin=True).close()
    with pytest.warns(DeprecationWarning, match="'retries' is deprecated"):
        stage = Stage("s", print, retries=5, policy="evict")
    assert (stage.max_retries, stage.stall_policy) == (5, "evict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Stage("s", print, error_policy="skip", max_retries=2)  # no warning


def test_should_read_old_toml_keys_with_a_warning(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(f"""
[ring]
name = "vocab-old"
dtype = "<i8:sequence"
[producer]
command = ["{sys.executable}", "-c", "pass"]
[[stage]]
name = "a"
command = ["{sys.executable}", "-c", "pass"]
on_error = "retry"
retries = 7
policy = "evict"
""")
    with pytest.warns(DeprecationWarning, match="'on_error' is deprecated; write "
                                                 "'error_policy'"):
        spec = load(str(path), check_handlers=False)
    stage = spec.stage("a")
    assert (stage.error_policy, stage.max_retries, stage.stall_policy) == ("retry", 7, "evict")


def test_should_parse_the_stage_environment_as_cpp_stages_do():
    env = dict(os.environ, XDISRUPTOR_RING="r", XDISRUPTOR_STAGE="s", XDISRUPTOR_AFTER="a, b",
               XDISRUPTOR_WAIT="sleeping", XDISRUPTOR_WAIT_PARAMS="sleep_ceiling=0.001,"
               "spin_tries=4", XDISRUPTOR_STALL_POLICY="evict", XDISRUPTOR_ERROR_POLICY="retry",
               XDISRUPTOR_RETRIES="6", XDISRUPTOR_RETRY_PAUSE="0.25", XDISRUPTOR_MAX_BATCH="9")
    code = ("import json, xdisruptor._xdisruptor as c; "
            "print(json.dumps(c.stage_environment()))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    import json
    got = json.loads(done.stdout)
    assert got["after"] == ["a", "b"] and got["wait"] == "sleeping"
    assert got["wait_params"]["sleep_ceiling"] == 0.001 and got["wait_params"]["spin_tries"] == 4
    assert (got["stall_policy"], got["error_policy"], got["max_retries"], got["retry_pause"],
            got["max_batch"]) == ("evict", "retry", 6, 0.25, 9)
    assert "XDISRUPTOR_RETRIES is deprecated; set XDISRUPTOR_MAX_RETRIES" in done.stderr
    env["XDISRUPTOR_STALL_POLICY"] = "sometimes"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "unknown stall policy 'sometimes'; use hold or evict" \
        in bad.stderr
