"""The words every surface shares, read from the compiled core's name tables (C++ is their one
source: names.h, wait_strategy.h, wait_status.h, error_policy.h), and the rule for renamed
keywords.

Units: Python keywords, the stage environment and the launcher's TOML name a C++ field without
its ``_ns`` suffix and take seconds (``sleep_ceiling=0.0002`` is ``sleep_ceiling_ns = 200000``);
counts are whole numbers.
"""

from __future__ import annotations

import enum
import warnings
from typing import Any

from . import _xdisruptor as _core

#: Wait strategy names, as ``wait=`` takes them.
WAIT_STRATEGIES: tuple = tuple(_core.WAIT_KINDS)
#: Stall policies: what a dead consumer does to the producer ("hold" or "evict").
STALL_POLICIES: tuple = tuple(_core.STALL_POLICIES)
#: Error policies of a stage: what a handler failure does ("stop", "skip", "retry").
ERROR_POLICIES: tuple = tuple(_core.ERROR_POLICIES)
#: Wait parameters by name, with their unit ("count", "seconds", "wait").
WAIT_PARAMS: dict = dict(_core.WAIT_PARAMS)


class _StrEnum(str, enum.Enum):
    """An enum whose members are also their names as strings (``WaitStatus.CLOSED ==
    "closed"``), so code that compared strings keeps working."""

    def __str__(self) -> str:
        return str(self.value)


#: Why a wait (or a stage's run) ended: the C++ WaitStatus, member for member.
# (Enum's functional API, which mypy does not follow for a str mixin)
_MEMBERS = [(name.upper().replace("-", "_"), name) for name in _core.WAIT_STATUSES]
WaitStatus = _StrEnum("WaitStatus", _MEMBERS)  # type: ignore[call-overload]
WaitStatus.__module__ = "xdisruptor"
WaitStatus.__doc__ = ("Why a wait ended, as the C++ WaitStatus says it: OK, HALTED, CLOSED, "
                      "TIMEOUT, UPSTREAM_GONE, CHECKPOINT, PRODUCER_STALLED, PRODUCER_GONE, "
                      "EVICTED, HANDLER_FAILED, LAPPED. Members compare equal to their names.")


_DESCRIPTIONS = dict(zip(_core.WAIT_STATUSES, _core.WAIT_STATUS_DESCRIPTIONS))


def describe(status: str) -> str:
    """A wait status for people ("stream closed", "an upstream stage left"), as C++ says it."""
    return _DESCRIPTIONS.get(str(status), str(status))


def renamed(kwargs: dict, old: str, new: str, value: Any, default: Any,
            stacklevel: int = 3) -> Any:
    """The value of keyword ``new``, taking the deprecated spelling ``old`` from ``kwargs``
    (with a DeprecationWarning) when ``new`` was left at ``default``."""
    if old not in kwargs:
        return value
    old_value = kwargs.pop(old)
    warnings.warn(f"'{old}' is deprecated; use '{new}' (the C++ name)", DeprecationWarning,
                  stacklevel=stacklevel)
    return old_value if value == default else value
