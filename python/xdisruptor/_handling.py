"""What a stage does when its handler fails, in Python: the C++ model (error_policy.h) of an
exception handler and a rewind strategy, and the presets of ``error_policy``.

    the handler raises RewindableError  -> the rewind strategy: run the batch again, or give up
                                           (then as a fatal error)
    it raises anything else              -> the exception handler: "skip" the event, or "stop"
    on_start / on_shutdown raise          -> the exception handler is told; the stage goes on

The presets' decisions are the C++ rule itself (``_core.error_action``, PresetAction).
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Callable, Optional

from . import _xdisruptor as _core
from ._vocabulary import ERROR_POLICIES
from .errors import HandlerError, InvalidArgumentError, RewindableError

__all__ = ["AlwaysRewind", "RewindUpTo", "NeverRewind"]


class AlwaysRewind:
    """A rewind strategy that reruns the batch every time (the Disruptor's
    SimpleBatchRewindStrategy)."""

    def __call__(self, error: BaseException, attempts: int) -> bool:
        return True


class RewindUpTo:
    """A rewind strategy that reruns the batch ``max_rewinds`` times, pausing ``pause``
    seconds before each, then gives up (the Disruptor's EventuallyGiveUpBatchRewindStrategy(n)
    is RewindUpTo(n - 1))."""

    def __init__(self, max_rewinds: int, pause: float = 0.0):
        if int(max_rewinds) < 0 or float(pause) < 0:
            raise InvalidArgumentError("max_rewinds and pause must be >= 0")
        self.max_rewinds, self.pause = int(max_rewinds), float(pause)

    def __call__(self, error: BaseException, attempts: int) -> bool:
        if attempts > self.max_rewinds:
            return False
        if self.pause:
            time.sleep(self.pause)
        return True


class NeverRewind:
    """A rewind strategy that never reruns: a RewindableError is fatal like any other."""

    def __call__(self, error: BaseException, attempts: int) -> bool:
        return False


def _method(obj: Any, name: str, plain_callable: bool = False) -> Optional[Callable]:
    if obj is None:
        return None
    found = getattr(obj, name, None)
    if found is None and plain_callable and callable(obj):
        return obj
    return found


class Handling:
    """One stage's error handling, from its options; called by Consumer.run."""

    def __init__(self, consumer: Any, handler: Any, policy: str, max_retries: int,
                 retry_pause: float, exception_handler: Any = None,
                 rewind_strategy: Optional[Callable[[BaseException, int], bool]] = None):
        if policy not in ERROR_POLICIES:
            raise InvalidArgumentError(
                f"error_policy must be one of {', '.join(ERROR_POLICIES)}; got {policy!r}")
        if int(max_retries) < 0 or float(retry_pause) < 0:
            raise InvalidArgumentError("max_retries and retry_pause must be >= 0")
        if rewind_strategy is not None and not callable(rewind_strategy):
            raise InvalidArgumentError("rewind_strategy must be callable(error, attempts)")
        self._consumer = consumer
        self._policy = policy
        self._max_retries = int(max_retries)
        self._retry_pause = float(retry_pause)
        self._rewind = rewind_strategy
        self._on_event_error = _method(exception_handler, "handle_event_error", True)
        self._on_start_error = _method(exception_handler, "handle_start_error")
        self._on_shutdown_error = _method(exception_handler, "handle_shutdown_error")
        self._tell = getattr(handler, "on_handler_error", None)

    def on_failure(self, exc: BaseException, event: Any, sequence: int, failures: int) -> str:
        """The batch failed at ``sequence`` for the ``failures``th time in a row: returns
        "rewind" (after any pause), "skip" or "stop"."""
        self._consumer._raw.count_handler_error()
        action = None
        if isinstance(exc, RewindableError):
            if self._rewind is not None:
                action = "rewind" if self._rewind(exc, failures) else None
            elif _core.error_action(self._policy, True, failures, self._max_retries) == "rewind":
                time.sleep(self._retry_pause)
                action = "rewind"
        if action is None:  # fatal, or a rewind given up
            if self._on_event_error is not None:
                action = str(self._on_event_error(exc, sequence, event))
                if action not in ("skip", "stop"):
                    raise InvalidArgumentError(
                        f"an exception handler returns 'skip' or 'stop', not {action!r}")
            else:
                action = _core.error_action(self._policy, False, failures, self._max_retries)
        if self._tell is not None:
            self._tell(event, sequence, exc)
        elif self._on_event_error is None or action == "rewind":
            self._report(f"handler failed on event {sequence} ({_core.error_report(action)})")
        return action

    def start_error(self, exc: BaseException) -> None:
        if self._on_start_error is not None:
            self._on_start_error(exc)
        else:
            self._report("on_start failed; the stage runs anyway")

    def shutdown_error(self, exc: BaseException) -> None:
        if self._on_shutdown_error is not None:
            self._on_shutdown_error(exc)
        else:
            self._report("on_shutdown failed")

    def _report(self, what: str) -> None:
        sys.stderr.write(f"xdisruptor: stage '{self._consumer.name}': {what}:\n"
                         f"{traceback.format_exc()}")
        sys.stderr.flush()

    def stop(self, exc: BaseException, first: int, failed: int, attempts: int) -> None:
        """Releases the events before ``failed`` and raises HandlerError."""
        raw = self._consumer._raw
        # What the batch still holds before the failed event (a handler may have released some
        # of it early: those are neither counted twice nor released backwards).
        raw.release_early(failed - 1)
        raw.discard_pending()
        name = self._consumer.name
        raise HandlerError(
            f"stage '{name}': handler failed on event {failed} after {attempts} attempt"
            f"{'s' if attempts > 1 else ''}: {type(exc).__name__}: {exc}",
            stage=name, sequence=failed, attempts=attempts,
            traceback=traceback.format_exc()) from exc
