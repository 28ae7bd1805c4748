"""Journals from Python: read what a recorder wrote (``xdisruptor journal record``, or
:class:`JournalRecorder`), as numpy arrays, Arrow tables or Parquet files."""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from . import _arrow

from . import _xdisruptor as _core
from ._dtype import schema_to_dtype
from .errors import InvalidArgumentError


class Journal:
    """A journal directory, read-only. ``first`` and ``last`` are its oldest and newest
    sequences (a recorder that is still running appends: :meth:`refresh`, or any read past
    ``last``, sees more). Raises NotFoundError for a directory with no journal and
    CorruptJournalError when a read meets a damaged batch (the message names the first bad
    sequence)."""

    def __init__(self, directory: Any):
        self._raw = _core.RawJournal(os.fspath(directory))
        schema = self._raw.schema
        self._dtype = schema_to_dtype(schema) if schema else np.dtype(f"V{self._raw.slot_size}")

    @property
    def directory(self) -> str:
        """The journal's directory."""
        return self._raw.directory

    @property
    def dtype(self) -> np.dtype:
        """The dtype of its events (from the schema it was recorded with)."""
        return self._dtype

    @property
    def schema(self) -> str:
        """The schema text of its events."""
        return self._raw.schema

    @property
    def ring_name(self) -> str:
        """The ring it was recorded from."""
        return self._raw.ring_name

    @property
    def first(self) -> int:
        """The oldest sequence it holds."""
        return self._raw.first

    @property
    def last(self) -> int:
        """The newest sequence it holds (first - 1 when empty)."""
        return self._raw.last

    @property
    def segments(self) -> int:
        """How many segment files it has."""
        return self._raw.segments

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)

    def refresh(self) -> None:
        """Sees what a running recorder appended (and segments retention removed)."""
        self._raw.refresh()

    def verify(self) -> None:
        """Checks every batch's checksum; CorruptJournalError names the first bad sequence."""
        self._raw.verify()

    def read(self, start: Optional[int] = None, stop: Optional[int] = None) -> np.ndarray:
        """Events ``start`` (default: first) up to ``stop`` (exclusive; default: last + 1) as
        one structured array: read-only and zero-copy when they lie in one segment, else a
        copy."""
        start, stop = self._bounds(start, stop)
        return self._raw.read(start, stop - start, self._dtype)

    def batches(self, start: Optional[int] = None, max_size: int = 65536, *,
                stop: Optional[int] = None) -> Iterator[np.ndarray]:
        """Zero-copy read-only arrays of at most ``max_size`` events from ``start`` to
        ``stop`` (exclusive; default: the end at the time each batch is taken), never across
        a segment's end."""
        if int(max_size) < 1:
            raise InvalidArgumentError("max_size must be >= 1")
        s = self.first if start is None else int(start)
        while True:
            end = (self.last + 1) if stop is None else int(stop)
            if s >= end:
                return
            batch = self._raw.span(s, min(int(max_size), end - s), self._dtype)
            if len(batch) == 0:
                return
            yield batch
            s += len(batch)

    def to_arrow(self, start: Optional[int] = None, stop: Optional[int] = None) -> Any:
        """The events as a ``pyarrow.Table``, a column per field, as :func:`xdisruptor.to_arrow`
        makes them (``pip install 'xdisruptor[arrow]'``)."""
        pa = _arrow._pyarrow()
        return pa.Table.from_batches([_arrow.to_arrow(self.read(start, stop))])

    def to_parquet(self, path: Any, start: Optional[int] = None,
                   stop: Optional[int] = None) -> None:
        """Writes the events to a Parquet file (through :meth:`to_arrow`)."""
        _arrow._pyarrow()
        import pyarrow.parquet as pq
        pq.write_table(self.to_arrow(start, stop), os.fspath(path))

    def _bounds(self, start: Optional[int], stop: Optional[int]) -> tuple:
        if stop is not None and int(stop) > self.last + 1:
            self.refresh()
        start = self.first if start is None else int(start)
        stop = self.last + 1 if stop is None else int(stop)
        if start > stop:
            raise InvalidArgumentError(f"start {start} is after stop {stop}")
        return start, stop

    def __repr__(self) -> str:
        return (f"<xdisruptor.Journal {self.directory!r} {self.first}..{self.last} "
                f"dtype={self._dtype}>")


class JournalRecorder:
    """Records ``ring`` into ``directory`` as the named consumer ``name``: :meth:`run` blocks
    (the GIL released) until the stream ends or :meth:`halt` (any thread). The same recorder
    as ``xdisruptor journal record``: each batch is released only once written (and synced,
    by ``fsync``: "none", "batch" or "every:MS"). With ``after`` (consumer names) it records
    events as those consumers left them."""

    def __init__(self, ring: Any, directory: Any, *, name: str = "journal", fsync: str = "none",
                 segment_bytes: int = 256 << 20, retain_bytes: int = 0,
                 retain_seconds: float = 0.0, stall_policy: str = "hold",
                 after: Sequence[str] = ()):
        if isinstance(after, str):
            after = [after]
        self._raw = _core.RawRecorder(ring._raw, os.fspath(directory), name, fsync,
                                      int(segment_bytes), int(retain_bytes),
                                      float(retain_seconds), stall_policy, list(after))

    def run(self) -> str:
        """Records until the stream ends or halt(); returns why it stopped (a WaitStatus name)."""
        return self._raw.run()

    def halt(self) -> None:
        """Makes run() return after the batch in hand (from any thread or a signal handler)."""
        self._raw.halt()

    def close(self) -> None:
        """Leaves the ring (deregisters the recorder's consumer) and closes the journal. After
        a run that failed (a write error) it keeps its entry instead, as if its process had
        died: the ring holds what it did not record, and a recorder started again by name (in
        any process) goes on without a gap."""
        self._raw.close()

    @property
    def recorded(self) -> int:
        """Events this recorder appended."""
        return self._raw.recorded

    @property
    def last(self) -> int:
        """The last sequence in the journal."""
        return self._raw.last

    def __enter__(self) -> "JournalRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
