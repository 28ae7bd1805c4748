"""A Python stage program, configured by its environment as C++ stage programs are
(xdisruptor/pipeline.h: RunStage), read by the same C++ code (StageEnvironmentFromEnv, through
``_core.stage_environment``). The launcher starts it as ``python3 -m xdisruptor.pipeline
stage``; it can also be started by hand with the same variables: XDISRUPTOR_RING,
XDISRUPTOR_STAGE, XDISRUPTOR_AFTER, XDISRUPTOR_WAIT, XDISRUPTOR_WAIT_PARAMS,
XDISRUPTOR_STALL_POLICY, XDISRUPTOR_ERROR_POLICY, XDISRUPTOR_MAX_RETRIES,
XDISRUPTOR_RETRY_PAUSE, XDISRUPTOR_MAX_BATCH, XDISRUPTOR_ATTACH_TIMEOUT, XDISRUPTOR_START_AT,
XDISRUPTOR_JOURNAL (catch up from a journal directory), XDISRUPTOR_GROUP and XDISRUPTOR_CLAIM
(a worker group's member), XDISRUPTOR_KEEP_ON_FAILURE (1: a failure keeps the entry for a
restart, Consumer.abandon), and for Python:
XDISRUPTOR_HANDLER (module:attribute), XDISRUPTOR_OPTIONS (JSON keyword arguments),
XDISRUPTOR_PYTHONPATH (directories, ':'-separated), XDISRUPTOR_WRITABLE (1 to change events).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from .. import _xdisruptor as _core
from .._ring import Ring
from .._vocabulary import WaitStatus, describe
from ..errors import Error, HandlerError, NotFoundError
from ._config import StageSpec, load_handler


def _retry(timeout: float, attempt):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except NotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def main() -> int:
    env = os.environ
    name = env.get("XDISRUPTOR_STAGE", "")
    ring_name = env.get("XDISRUPTOR_RING", "")
    if not name or not ring_name or not env.get("XDISRUPTOR_HANDLER"):
        print("stage: XDISRUPTOR_RING, XDISRUPTOR_STAGE and XDISRUPTOR_HANDLER must be set "
              "(the pipeline launcher sets them: python3 -m xdisruptor.pipeline run FILE)",
              file=sys.stderr)
        return 2
    for path in reversed([p for p in env.get("XDISRUPTOR_PYTHONPATH", "").split(":") if p]):
        sys.path.insert(0, path)
    spec = StageSpec(name=name, line=0, handler=env["XDISRUPTOR_HANDLER"],
                     options=json.loads(env.get("XDISRUPTOR_OPTIONS", "{}") or "{}"))
    try:
        handler = load_handler(spec, os.getcwd())
    except Exception as e:
        print(f"stage {name}: {e}", file=sys.stderr)
        return 1
    try:
        stage = _core.stage_environment()
    except Error as e:
        print(f"stage {name}: {e}", file=sys.stderr)
        return 1
    timeout = stage["attach_timeout"]
    try:
        ring = _retry(timeout, lambda: Ring.attach(ring_name))
        consumer = _retry(timeout, lambda: ring.consumer(
            name, wait=stage["wait"], after=stage["after"],
            writable=env.get("XDISRUPTOR_WRITABLE", "0") == "1",
            stall_policy=stage["stall_policy"], max_lag=stage["max_lag"],
            max_lag_s=stage["max_lag_s"], start_at=stage["start_at"],
            journal=stage["journal"] or None, group=stage["group"] or None,
            claim=stage["claim"], **stage["wait_params"]))
    except (Error, ValueError) as e:
        print(f"stage {name}: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: consumer.halt())
    signal.signal(signal.SIGINT, lambda *_: consumer.halt())
    code = 0
    try:
        status = consumer.run(handler, max_batch=stage["max_batch"] or None,
                              error_policy=stage["error_policy"],
                              max_retries=stage["max_retries"],
                              retry_pause=stage["retry_pause"])
        why = describe(status)
    except HandlerError as e:
        print(f"stage {name}: failed on event {e.sequence} after {e.attempts} attempt"
              f"{'s' if e.attempts > 1 else ''}: {e.__cause__!r}", file=sys.stderr)
        why, code = describe(WaitStatus.HANDLER_FAILED), 1
    except Error as e:
        print(f"stage {name}: stopped: {e}", file=sys.stderr)
        why, code = type(e).__name__, 1
    for sig in (signal.SIGTERM, signal.SIGINT):  # ended: a halt now would find it closed
        signal.signal(sig, signal.SIG_IGN)
    print(f"stage {name}: {why}, {consumer.events} events, {consumer.handler_errors} handler "
          "errors", flush=True)
    if code != 0 and stage["keep_on_failure"]:
        consumer.abandon()  # the launcher restarts it by name: it resumes where it failed
    else:
        consumer.close()
    ring.close()
    return code
