"""The exceptions xdisruptor raises. Every one derives from :class:`Error` and carries the
core library's message, which says what went wrong and what to do."""

from typing import Optional


class Error(Exception):
    """Base class of every xdisruptor error."""


class NotFoundError(Error, LookupError):
    """Something named does not exist."""


class RingNotFoundError(NotFoundError, FileNotFoundError):
    """No ring of that name exists on this machine."""


class ConsumerNotFoundError(NotFoundError):
    """No consumer of that name is registered (for example one named in ``after``)."""


class AlreadyExistsError(Error):
    """A name is taken."""


class RingExistsError(AlreadyExistsError, FileExistsError):
    """A ring of that name already exists."""


class NameTakenError(AlreadyExistsError):
    """A live consumer already holds that name on the ring."""


class InvalidArgumentError(Error, ValueError):
    """An argument is out of range or malformed."""


class DTypeError(InvalidArgumentError, TypeError):
    """A dtype cannot describe events in shared memory (objects, variable size, nesting)."""


class RecordError(InvalidArgumentError):
    """A record to publish does not match the ring's dtype."""


class SchemaMismatchError(Error):
    """The ring carries another event layout than the one asked for."""


class StateError(Error):
    """The operation does not fit the current state (a second producer, a closed object)."""


class CorruptRingError(Error):
    """The ring's segment is truncated or corrupt; remove and recreate it."""


class UnavailableError(Error):
    """The ring exists but is not ready (its creator has not finished it)."""


class TableFullError(Error):
    """The ring's consumer table is full."""


class PermissionDeniedError(Error, PermissionError):
    """The operating system refused access to the ring."""


class TimeoutError(Error):  # noqa: A001 - deliberately the package's own
    """A wait or lock took too long."""


class UpstreamGoneError(Error):
    """A consumer this one runs after left the ring before releasing the events it needs."""


class ProducerStalledError(Error):
    """A producer of a multi-producer ring died between claiming and publishing: the events
    it claimed will never arrive, and the stream cannot go past them."""


class ProducerGoneError(Error):
    """The producer process died without closing the stream; everything it published was
    delivered. A new producer may attach and go on."""


class EvictedError(Error):
    """This consumer was evicted (by an operator, or because it was dead with policy "evict")
    and no longer holds the producer back."""


class MissedEventsError(Error):
    """Events asked for are gone: an evicted consumer came back under its name, but events
    were published since (say ``rejoin_at_cursor=True`` to go on from the cursor; the count
    missed is in the message), or a consumer asked to ``start_at`` a sequence the ring no
    longer protects (start later, or read the older events from a journal)."""


class CorruptJournalError(Error):
    """A journal's segment fails its checks (a flipped byte, a damaged header or index); the
    message names the first bad sequence. `xdisruptor journal verify DIR` says the same."""


class LappedError(Error):
    """An observer (a consumer made with ``gating=False``, which never holds the producer
    back) was lapped: the producer overwrote events it had not finished reading. The batch
    handed out last may hold overwritten data and was not released."""


class RewindableError(Error):
    """Raise it from a handler for a failure worth retrying (a full disk, a busy service): the
    stage runs its whole batch again as its rewind strategy allows (error_policy "retry":
    ``max_retries`` times), as the C++ RewindableError and the Disruptor's RewindableException
    do. Any other exception is fatal for its event."""


class HandlerError(Error):
    """A stage's handler raised and its error policy stopped the stage ("stop", or "retry"
    out of retries). ``stage``, ``sequence`` (the event it failed on), ``attempts`` and
    ``traceback`` (the handler's, as text) say where and why; ``__cause__`` is the
    handler's exception."""

    def __init__(self, message: str, *, stage: str = "", sequence: int = -1,
                 attempts: int = 1, traceback: str = ""):
        super().__init__(message)
        self.stage = stage
        self.sequence = sequence
        self.attempts = attempts
        self.traceback = traceback


# --- Which exception a failure becomes: the one table of each kind ---------------------------

# absl status codes of the C++ core (absl::StatusCodeToString) and what they concern.
_STATUS_CODE_ERRORS = {
    ("NOT_FOUND", "ring"): RingNotFoundError,
    ("NOT_FOUND", "consumer"): ConsumerNotFoundError,
    ("NOT_FOUND", ""): NotFoundError,
    ("ALREADY_EXISTS", "ring"): RingExistsError,
    ("ALREADY_EXISTS", "consumer"): NameTakenError,
    ("ALREADY_EXISTS", ""): AlreadyExistsError,
    ("INVALID_ARGUMENT", ""): InvalidArgumentError,
    ("FAILED_PRECONDITION", ""): StateError,
    ("DATA_LOSS", "journal"): CorruptJournalError,
    ("NOT_FOUND", "journal"): NotFoundError,
    ("DATA_LOSS", ""): CorruptRingError,
    ("UNAVAILABLE", ""): UnavailableError,
    ("RESOURCE_EXHAUSTED", ""): TableFullError,
    ("PERMISSION_DENIED", ""): PermissionDeniedError,
    ("DEADLINE_EXCEEDED", ""): TimeoutError,
    ("OUT_OF_RANGE", ""): MissedEventsError,
}


def error_class(code: str, subject: str = "") -> type:
    """The exception class for an absl status code of the core (``"NOT_FOUND"``, ...) about a
    ``subject`` ("ring", "consumer" or ""). The compiled module raises through this."""
    return (_STATUS_CODE_ERRORS.get((code, subject)) or _STATUS_CODE_ERRORS.get((code, ""))
            or Error)


# Wait statuses (xdisruptor.WaitStatus values) that end a read loop with an error, and what
# the error says; {ring}, {consumer} and {sequence} (the event waited for) are filled in.
_WAIT_STATUS_ERRORS = {
    "producer-gone": (ProducerGoneError,
                      "the producer of ring '{ring}' died without closing the stream; every "
                      "event it published up to {before} was delivered"),
    "evicted": (EvictedError, "consumer '{consumer}' was evicted from ring '{ring}'"),
    "producer-stalled": (ProducerStalledError,
                         "a producer of ring '{ring}' died between claiming and publishing "
                         "event {sequence}; the stream cannot go on past it"),
    "missed-events": (MissedEventsError,
                      "consumer '{consumer}' of ring '{ring}' cannot catch up: events from "
                      "{sequence} on are neither in its journal nor still in the ring (is the "
                      "journal's recorder running?)"),
    "lapped": (LappedError,
               "observer '{consumer}' of ring '{ring}' was lapped: events from {sequence} on "
               "were overwritten before it finished reading them"),
    "upstream-gone": (UpstreamGoneError,
                      "a stage that consumer '{consumer}' runs after left the ring before "
                      "event {sequence}"),
}


def error_for_wait_status(status: str, *, ring: str, consumer: str,
                          sequence: int) -> Optional[Error]:
    """The exception a wait that ended with ``status`` raises, or None when it ends a loop
    quietly (closed, halted) or is not an end (ok, timeout)."""
    entry = _WAIT_STATUS_ERRORS.get(str(status))
    if entry is None:
        return None
    cls, text = entry
    return cls(text.format(ring=ring, consumer=consumer, sequence=sequence,
                           before=sequence - 1))


__all__ = [
    "AlreadyExistsError",
    "Error",
    "ConsumerNotFoundError",
    "CorruptJournalError",
    "CorruptRingError",
    "DTypeError",
    "EvictedError",
    "HandlerError",
    "InvalidArgumentError",
    "LappedError",
    "MissedEventsError",
    "NameTakenError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProducerGoneError",
    "ProducerStalledError",
    "RecordError",
    "RewindableError",
    "RingExistsError",
    "RingNotFoundError",
    "SchemaMismatchError",
    "StateError",
    "TableFullError",
    "TimeoutError",
    "UnavailableError",
    "UpstreamGoneError",
]  # written out for type checkers; tests/python/test_typing.py checks it is complete
