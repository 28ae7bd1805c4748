"""Rings, producers and consumers: the Python face of xdisruptor.

A :class:`Ring` maps one named shared-memory ring. Its :meth:`Ring.producer` publishes
records or numpy arrays; its :meth:`Ring.consumer` registers a named consumer that reads the
stream per event (iteration), per batch (zero-copy numpy views) or as a pipeline stage
(:meth:`Consumer.run`). Waits release the GIL and let Ctrl-C through.
"""

from __future__ import annotations

import json
import os
import itertools
import struct
import sys
import threading
import time
import traceback
import weakref
from typing import Any, AsyncGenerator, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from . import _arrow, _async
from . import _xdisruptor as _core
from ._dtype import dtype_to_schema, schema_to_dtype


from ._handling import Handling
from ._vocabulary import WAIT_STRATEGIES, WaitStatus, renamed
from .errors import (DTypeError, HandlerError, InvalidArgumentError, RecordError,
                     SchemaMismatchError, StateError, error_for_wait_status)

__all__ = ["Ring", "Producer", "Consumer"]

# The most events a Python consumer takes at once unless told otherwise (max_batch,
# max_size), and the most a per-event loop (iteration, values()) turns into Python values at
# once whatever it was told. A Python handler spends ~100x what a C++ one does per event, so
# C++'s default, half the ring (DefaultMaxBatch), would hold the ring ~100x as long; measured:
# a prebuilt-batch Python consumer of a 65536-slot ring at 0.89x with half the ring
# (docs/benchmarks.md).
PYTHON_MAX_BATCH = 4096


def _whole(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as a whole number in lo..hi, or InvalidArgumentError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not lo <= int(value) <= hi:
        raise InvalidArgumentError(f"{name} must be a whole number from {lo} to {hi}, "
                                   f"not {value!r}")
    return int(value)


def _seconds(value: Any, name: str) -> float:
    """``value`` as seconds >= 0, or InvalidArgumentError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= float(value) <= 1e9:
        raise InvalidArgumentError(f"{name} must be seconds from 0 to 1e9, not {value!r}")
    return float(value)


# The rings this process has open, for xdisruptor.metrics.serve's default. A scrape lists
# them in the server's thread while others may open rings: both under the lock (a set changed
# during iteration raises).
_open_rings: "weakref.WeakSet[Ring]" = weakref.WeakSet()
_open_rings_lock = threading.Lock()


def open_ring_names() -> list:
    """Names of the rings this process has open (created or attached, not closed)."""
    with _open_rings_lock:
        rings = list(_open_rings)
    return sorted({r.name for r in rings if not r._raw.closed})


def _slot_size_for(dtype: np.dtype) -> int:
    return max(8, (dtype.itemsize + 7) // 8 * 8)


def _tuple_fields(dtype: np.dtype, names: Optional[Sequence[str]] = None):
    """(offset, kind, size) per field (of ``names``, else all) when every one is a scalar the
    compiled reader handles (integers, floats, bytes, bools in this machine's byte order);
    else None, and per-event loops read the batch through numpy."""
    if sys.byteorder != "little":
        return None
    spec = []
    assert dtype.names is not None and dtype.fields is not None  # a ring's dtype is structured
    for name in dtype.names if names is None else names:
        fdt, offset = dtype.fields[name][:2]
        if fdt.subdtype is not None or fdt.byteorder == ">":
            return None
        if fdt.kind in "iu" and fdt.itemsize in (1, 2, 4, 8):
            spec.append((offset, fdt.kind, fdt.itemsize))
        elif fdt.kind == "f" and fdt.itemsize in (4, 8):
            spec.append((offset, "f", fdt.itemsize))
        elif fdt.kind == "S":
            spec.append((offset, "S", fdt.itemsize))
        elif fdt.kind == "b":
            spec.append((offset, "b", 1))
        else:
            return None
    return spec


def _pack_ops(dtype: np.dtype) -> Optional[list]:
    """The fields of ``dtype`` for the compiled record packer: (offset, kind, size, count,
    nested) per field, kind i/u/f/b/S or R (a nested record, ``nested`` its fields); None when
    a field has no fast path (other kinds, big-endian), and numpy packs every record."""
    if sys.byteorder != "little" or dtype.names is None or dtype.fields is None:
        return None
    ops: list[tuple[int, str, int, int, Optional[list]]] = []
    for name in dtype.names:
        fdt, offset = dtype.fields[name][:2]
        count = 1
        if fdt.subdtype is not None:
            fdt, shape = fdt.subdtype
            count = int(np.prod(shape))
            if fdt.names is not None:
                return None
        if fdt.names is not None:
            nested = _pack_ops(fdt)
            if nested is None:
                return None
            ops.append((offset, "R", fdt.itemsize, 1, nested))
        elif fdt.byteorder == ">" and fdt.itemsize > 1:
            return None
        elif (fdt.kind in "iu" and fdt.itemsize in (1, 2, 4, 8)) or \
                (fdt.kind == "f" and fdt.itemsize in (4, 8)) or fdt.kind == "S":
            ops.append((offset, fdt.kind, fdt.itemsize, count, None))
        elif fdt.kind == "b":
            ops.append((offset, "b", 1, count, None))
        else:
            return None
    return ops


def _struct_for(dtype: np.dtype) -> Optional[struct.Struct]:
    """A struct.Struct packing a tuple in field order into one record of ``dtype`` (with its
    padding), when every field is a plain scalar; else None (numpy does it, slower)."""
    fields = _tuple_fields(dtype)
    if fields is None:
        return None
    codes = {("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q", ("u", 1): "B",
             ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q", ("f", 4): "f", ("f", 8): "d",
             ("b", 1): "?"}
    fmt, at = "<", 0
    for offset, kind, size in sorted(fields):
        if offset < at:
            return None  # overlapping fields
        fmt += "x" * (offset - at)
        fmt += f"{size}s" if kind == "S" else codes[(kind, size)]
        at = offset + size
    fmt += "x" * (dtype.itemsize - at)
    packer = struct.Struct(fmt)
    return packer if packer.size == dtype.itemsize else None


class Ring:
    """One named shared-memory ring of fixed-size events, described by a numpy dtype.

    Use :meth:`create` or :meth:`attach`; close it (or use ``with``) when done. Closing unmaps
    the ring in this process only; :meth:`remove` deletes its name from the machine.
    """

    def __init__(self, raw: "_core.RawRing", dtype: np.dtype):
        self._raw = raw
        self._dtype = dtype
        with _open_rings_lock:
            _open_rings.add(self)

    # -- making and finding rings -------------------------------------------------------
    @classmethod
    def create(cls, name: str, *, capacity: int = 1024, dtype: Any,
               slot_size: Optional[int] = None, producers: str = "single",
               mode: int = 0o600, group: Optional[str] = None,
               latency_sample_every: int = 1024, flight_wait: float = 1.0,
               flight_dir: Optional[str] = None, flight_events: int = 16) -> "Ring":
        """Creates the ring ``name`` with ``capacity`` slots (a power of two) of events of
        ``dtype`` (a structured numpy dtype; stored in the ring so any process, in any language,
        can read it back). ``slot_size`` defaults to the dtype's size rounded up to 8 bytes.
        ``mode`` is the segment's permission bits, exactly (the umask does not apply), and
        ``group`` its group (a name or number; this process must be a member): together they
        say who may attach (monitors need only read access). The whole segment is reserved at
        once: a ring that does not fit in /dev/shm raises TableFullError saying what it needed
        and what was free. Raises RingExistsError if the name is taken, DTypeError for a dtype
        that cannot live in shared memory, InvalidArgumentError for a bad capacity or name.

        Observability (docs/operations.md): the producer stamps the publish time of every
        ``latency_sample_every``-th sequence (a power of two; 0 turns the latency histograms
        off) and each consumer keeps a publish -> release histogram (``stats()``, the metrics).
        A flight record (a JSON file: every consumer's position and state and the
        ``flight_events`` events around the stuck one) is written when a consumer is evicted
        or a producer has waited ``flight_wait`` seconds on the full ring (0: only on
        eviction), into ``flight_dir`` (default: $XDISRUPTOR_FLIGHT_DIR of the writing
        process, else /tmp/xdisruptor-flight)."""
        dt = np.dtype(dtype) if not isinstance(dtype, np.dtype) else dtype
        if dt.names is None or not dt.names:
            raise DTypeError(f"a ring's dtype needs at least one named field; got {dt}")
        schema = dtype_to_schema(dt)
        if producers not in ("single", "multi"):
            raise InvalidArgumentError("producers must be 'single' or 'multi'")
        size = _whole(slot_size, "slot_size", 8, 1 << 20) if slot_size else _slot_size_for(dt)
        raw = _core.RawRing.create(name, _whole(capacity, "capacity", 1, 1 << 30), size, schema,
                                   producers == "multi", _whole(mode, "mode", 0, 0o777),
                                   "" if group is None else str(group),
                                   _whole(latency_sample_every, "latency_sample_every", 0,
                                          1 << 30),
                                   _seconds(flight_wait, "flight_wait"),
                                   "" if flight_dir is None else os.fspath(flight_dir),
                                   _whole(flight_events, "flight_events", 0, 1024))
        try:
            return cls(raw, schema_to_dtype(schema))
        except BaseException:
            raw.close()
            _core.RawRing.remove(name, True)  # nothing half-made stays behind
            raise

    @classmethod
    def attach(cls, name: str, *, dtype: Any = None, timeout: float = 2.0,
               read_only: bool = False) -> "Ring":
        """Attaches to the existing ring ``name``; its dtype comes from the ring itself. If
        ``dtype`` is given, it must match (SchemaMismatchError otherwise). ``read_only`` maps
        it for reading only (stats, consumers() and views; no producer or consumer): a
        monitor needs only read access to the segment. Raises RingNotFoundError when there is
        no such ring, PermissionDeniedError when the segment's mode and group refuse."""
        raw = _core.RawRing.attach(name, _seconds(timeout, "timeout"), bool(read_only))
        stored = schema_to_dtype(raw.schema) if raw.schema else None
        if dtype is not None:
            try:
                # A ring without a schema takes any dtype that fits its slots, but only one
                # shared memory can hold (no Python objects: their pointers would be read in
                # other processes), structured as the schema would be.
                dtype_to_schema(dtype)
            except DTypeError:
                raw.close()
                raise
            wanted = np.dtype(dtype)
            if stored is None:
                if wanted.itemsize > raw.slot_size:
                    raise SchemaMismatchError(
                        f"ring '{name}' has {raw.slot_size}-byte slots; {wanted} needs "
                        f"{wanted.itemsize}")
                stored = wanted
            elif wanted != stored:
                raise SchemaMismatchError(
                    f"ring '{name}' carries events {stored} (schema \"{raw.schema}\"), not "
                    f"{wanted}")
        if stored is None:
            raise DTypeError(f"ring '{name}' stores raw bytes with no schema; pass dtype=")
        return cls(raw, stored)

    @staticmethod
    def remove(name: str, *, force: bool = False) -> None:
        """Deletes the ring's name. Refuses (StateError) a file that is not a ring and a ring
        that other processes still map (naming them) unless ``force``; processes that have it
        mapped keep working on their mapping."""
        _core.RawRing.remove(name, bool(force))

    @staticmethod
    def exists(name: str) -> bool:
        """True when a ring of that name exists on this machine."""
        return _core.RawRing.exists(name)

    # -- properties ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The ring's name (its segment is /dev/shm/<name>)."""
        return self._raw.name

    @property
    def dtype(self) -> np.dtype:
        """The numpy structured dtype of the events (from the ring's schema)."""
        return self._dtype

    @property
    def capacity(self) -> int:
        """How many events the ring holds (a power of two)."""
        return self._raw.capacity

    @property
    def slot_size(self) -> int:
        """Bytes per slot (the dtype's itemsize rounded up to 8)."""
        return self._raw.slot_size

    @property
    def schema(self) -> str:
        """The schema text the ring carries (see dtype_to_schema)."""
        return self._raw.schema

    @property
    def cursor(self) -> int:
        """The last published sequence (-1 before the first event)."""
        return self._raw.cursor

    @property
    def stream_closed(self) -> bool:
        """True once a producer closed the stream (end of stream)."""
        return self._raw.stream_closed

    @property
    def closed(self) -> bool:
        """True once this handle was closed (the ring itself may live on)."""
        return self._raw.closed

    def consumers(self) -> list:
        """The registered consumers: name, pid, alive, state, gating, sequence,
        join_sequence (where it joined: its first event is the one after), counters,
        wait, after, and for worker groups role ("group" or "member"), group, members,
        claim_hi (a member's run ends there; unfinished while sequence < claim_hi) and
        takeovers."""
        return self._raw.consumers()

    def stats(self) -> dict:
        """What ``xdisruptor stat RING --json`` prints: capacity, cursor, producer alive, and per
        consumer name, pid, alive, state, sequence, lag, events/s, wait strategy and
        parameters, stall policy, evictions, missed."""
        return json.loads(self._raw.stats_json())

    @staticmethod
    def evict(ring: str, consumer: str) -> None:
        """Evicts consumer ``consumer`` of ring ``ring`` (as ``xdisruptor evict`` does)."""
        _core.evict(ring, consumer)

    # -- producers and consumers --------------------------------------------------------
    @property
    def multi_producer(self) -> bool:
        """True for a ring made with ``producers="multi"``."""
        return self._raw.multi_producer

    def producer(self, *, wait: str = "yielding", **wait_params: Any) -> "Producer":
        """Becomes one of the ring's producers: the only one of a single-producer ring
        (StateError if another lives), or one of up to 16 of a ``producers="multi"`` ring.
        ``wait`` is how it waits on a full ring; see :data:`WAIT_STRATEGIES`."""
        return Producer(self, _core.RawProducer(self._raw, wait, wait_params))

    def consumer(self, name: str, *, wait: str = "blocking", after: Sequence[str] = (),
                 writable: bool = False, max_batch: Optional[int] = None,
                 stall_policy: str = "hold", rejoin_at_cursor: bool = False,
                 max_lag: int = 0, max_lag_s: float = 0.0,
                 start_at: Optional[int] = None, gating: bool = True,
                 journal: Optional[str] = None, group: Optional[str] = None,
                 claim: int = 64,
                 **wait_params: Any) -> "Consumer":
        """Registers the consumer ``name``. It starts at the cursor (events published before
        it joined are not its), waits by ``wait`` (times in seconds: ``timeout``,
        ``sleep_ceiling``, ``phase_spin``, ``phase_yield``; counts: ``spin_tries``,
        ``yield_tries``; ``fallback``), and runs after the consumers named in ``after``: it
        sees an event only once they released it, with their in-place changes. Views are
        read-only unless ``writable`` (for a stage that modifies events for those after it).
        ``stall_policy``: "hold" (if this process dies the producer waits for it; coming back
        under the same name resumes after its last released event) or "evict" (once dead it
        is dropped and the producer goes on). An evicted name that comes back raises
        MissedEventsError unless ``rejoin_at_cursor`` (then it joins at the cursor;
        ``missed`` counts). Raises NameTakenError if a live consumer holds the name.
        ``max_lag`` (events, below the capacity) and ``max_lag_s`` (seconds) set the
        slow-consumer limit of an "evict" consumer: alive but lagging more than ``max_lag``
        events while a producer has been blocked by the full ring for longer than
        ``max_lag_s``, it is evicted (its loop raises EvictedError; it may come back with
        ``rejoin_at_cursor`` and ``missed`` says exactly how many events it skipped).
        ``start_at``: a fresh name starts reading at this older sequence instead of the
        cursor (the join with history of a late consumer or a journal's catch-up), if the
        ring still protects it (some gating consumer is at or before it); otherwise
        MissedEventsError says from where it could start. A resumed name goes on where it was.
        ``gating=False`` makes an observer: it never holds the producer back, so it may be
        lapped; its loop then raises LappedError (the batch read last may hold overwritten
        events).
        ``journal`` (a directory a recorder writes, :class:`Journal`): the consumer first reads
        from ``start_at`` out of the journal, then joins the ring at the first sequence the
        journal does not hold, with no gap and no duplicate; an evicted name registering again
        with a journal catches up from where it stopped. Batches read from the journal are
        read-only arrays (``writable`` applies once it reads the ring).
        ``group``: a member of the worker group of that name (docs/worker-groups.md): the
        members share the stream, each event handled by one live member, in runs of up to
        ``claim`` events; the first member makes the group, a stage named ``group`` that
        others can run ``after``. A member that dies has its unfinished run handled again by
        another (at least once: :attr:`batch_first` gives each batch's sequence,
        :attr:`batch_taken_over` says when it is a dead member's run).
        ``policy=`` and ``rejoin=`` are deprecated spellings of ``stall_policy=`` and
        ``rejoin_at_cursor=``."""
        stall_policy = renamed(wait_params, "policy", "stall_policy", stall_policy, "hold")
        rejoin_at_cursor = renamed(wait_params, "rejoin", "rejoin_at_cursor", rejoin_at_cursor,
                                   False)
        raw = _core.RawConsumer(self._raw, name, list(after), wait, wait_params, stall_policy,
                                bool(rejoin_at_cursor), _whole(max_lag, "max_lag", 0, 2 ** 62),
                                _seconds(max_lag_s, "max_lag_s"),
                                None if start_at is None else
                                _whole(start_at, "start_at", 0, 2 ** 62), bool(gating),
                                "" if journal is None else os.fspath(journal),
                                "" if group is None else str(group),
                                _whole(claim, "claim", 1, 2 ** 62))
        return Consumer(self, raw, writable=writable,
                        max_batch=None if max_batch is None else
                        _whole(max_batch, "max_batch", 0, 2 ** 62))

    # -- the stream (the Disruptor's RingBuffer queries) ------------------------------------
    def is_available(self, sequence: int) -> bool:
        """True when ``sequence`` is published and its slot still holds it (not overwritten
        by a later lap)."""
        return self._raw.is_available(int(sequence))

    def highest_published(self, lo: int, hi: int) -> int:
        """The highest sequence from ``lo`` to ``hi`` before the first one not yet published
        (``lo - 1`` if ``lo`` is not)."""
        return self._raw.highest_published(int(lo), int(hi))

    @property
    def minimum_gating_sequence(self) -> int:
        """The slowest gating consumer's sequence, or the cursor when none is slower: the
        producer may not overwrite past it."""
        return self._raw.minimum_gating_sequence

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Unmaps the ring in this process once no view, producer or consumer uses it."""
        self._raw.close()

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<xdisruptor.Ring (closed)>"
        return (f"<xdisruptor.Ring {self.name!r} capacity={self.capacity} "
                f"dtype={self.dtype} cursor={self.cursor}>")


def _weakly_bound(obj: Any, function: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
    """``function`` bound to ``obj`` through a weak reference. The C++ producer holds the
    Python functions it falls back to; a bound method there would make a reference cycle the
    garbage collector cannot see (pybind11 objects do not show it what their C++ side holds),
    and a producer dropped without close() would never be freed."""
    ref = weakref.ref(obj)

    def call(arg: Any) -> Any:
        target = ref()
        if target is None:
            raise StateError("the producer this function belonged to is gone")
        return function(target, arg)
    return call


class Producer:
    """Publishes events into a ring. Made by :meth:`Ring.producer`. Threads and asyncio tasks
    may share it for publish, publish_many, publish_batch and apublish (one at a time inside);
    a claim() block, and publish_event(s) with a translator, are one thread's from claim to
    publish."""

    def __init__(self, ring: Ring, raw: "_core.RawProducer"):
        self._ring = ring
        self._raw = raw
        self._dtype = ring.dtype
        self._itemsize = self._dtype.itemsize
        self._ring_raw = ring._raw
        self._capacity = ring.capacity
        self._async_helper: Optional[_async._Helper] = None
        self._turns = _async.Turns()  # when apublish last let the event loop run others
        self._packer = _struct_for(self._dtype)
        # Field order of the dtype (tuples come in this order) is offset order for the packer.
        names, fields = self._dtype.names or (), dict(self._dtype.fields or {})
        if self._packer is not None and [fields[n][1] for n in names] \
                != sorted(fields[n][1] for n in names):
            self._packer = None
        # publish() is the compiled packer itself, a METH_O builtin (no pybind11 dispatch): no
        # Python frame per record on the fast path (a tuple of plain values, or one record's
        # bytes); anything else goes through _pack_one.
        # (Both take their argument by position only, as builtins do.)
        raw.set_packer(_pack_ops(self._dtype), self._dtype.itemsize,
                       _weakly_bound(self, Producer._pack_one))
        self.publish = raw.publish_function()  # type: ignore[method-assign]
        # publish_batch() likewise: a 1-D contiguous ndarray of the ring's dtype goes to the
        # ring from C++; anything else to the method below (the general path).
        raw.set_batch_path(self._dtype, np.ndarray, _weakly_bound(self, Producer.publish_batch))
        self.publish_batch = raw.publish_batch_function()  # type: ignore[method-assign]

    def _as_records(self, data: Any) -> np.ndarray:
        if isinstance(data, (bytes, bytearray, memoryview)):
            b = bytes(data)
            if len(b) % self._dtype.itemsize != 0:
                raise RecordError(
                    f"{len(b)} bytes is not a whole number of {self._dtype.itemsize}-byte "
                    f"records of {self._dtype}")
            return np.frombuffer(b, dtype=self._dtype)
        if isinstance(data, np.ndarray):
            if data.dtype != self._dtype:
                if data.dtype.names != self._dtype.names:
                    raise RecordError(
                        f"array of {data.dtype} does not match the ring's {self._dtype}")
                data = data.astype(self._dtype)
            return np.ascontiguousarray(data.reshape(-1))
        if isinstance(data, np.void) and data.dtype != self._dtype:
            raise RecordError(f"record of {data.dtype} does not match the ring's {self._dtype}")
        try:
            return np.array([data], dtype=self._dtype)
        except (ValueError, TypeError, OverflowError) as e:
            raise RecordError(
                f"cannot make a record of {self._dtype} from {data!r}: {e}") from None

    def _batch_records(self, records: Any) -> np.ndarray:
        """What publish_batch and apublish_batch take, as contiguous records of the dtype: a
        list is a list of records (anything else as _as_records takes it)."""
        if not isinstance(records, list):
            return self._as_records(records)
        try:
            return np.array(records, dtype=self._dtype).reshape(-1)
        except (ValueError, TypeError, OverflowError) as e:
            raise RecordError(f"cannot make records of {self._dtype} from the list: {e}") from None

    def _pack_one(self, record: Any) -> Any:  # bytes, or a uint8 ndarray
        """One record as ``dtype.itemsize`` bytes (or a uint8 view of them)."""
        if self._packer is not None and type(record) is tuple:
            try:
                return self._packer.pack(*record)
            except struct.error:
                pass  # not plain values: let numpy convert it, or say why not
        records = self._as_records(record)
        if records.shape != (1,):
            raise RecordError(f"publish takes one record; got {len(records)} (use publish_batch)")
        return records.view(np.uint8)

    def publish(self, record: Any) -> int:
        """Publishes one record: a tuple in field order, a numpy record, or exactly
        ``dtype.itemsize`` bytes. Returns the ring's cursor after it: the record's sequence on
        a single-producer ring (on a multi-producer ring, the highest claimed by anyone).
        (Each producer replaces this method with its compiled packer, a builtin function of
        one argument: a tuple of plain values (numbers, bytes, sequences for sub-array fields,
        tuples for nested records) is packed in C++ with no Python frame, in one flat loop when
        every field is a scalar; one record's bytes are copied as they are; anything else goes
        through numpy.)"""
        return self._raw.publish_record(record)

    def publish_many(self, records: Any) -> int:
        """Publishes every record of an iterable (tuples as :meth:`publish` takes them, numpy
        records, bytes), claiming slots for many at once (up to half the ring per claim).
        Returns the cursor after the last one."""
        return self._raw.publish_many(records)

    async def apublish(self, record: Any) -> int:
        """As :meth:`publish`, awaiting room on a full ring without blocking the event loop
        (the wait runs in this producer's helper thread). Cancelled while it waits, it
        publishes nothing. Returns the record's sequence (single-producer ring)."""
        return await _async.publish_bytes(self, self._pack_one(record), 1)

    async def apublish_batch(self, records: Any) -> int:
        """As :meth:`publish_batch`, awaiting room without blocking the event loop. More
        records than half the ring go in several claims; a cancellation stops it between
        claims (the records before are published). Returns the last one's sequence."""
        arr = self._batch_records(records)
        if not len(arr):
            return self._raw.cursor
        return await _async.publish_bytes(self, arr.view(np.uint8), len(arr))

    def _helper(self) -> "_async._Helper":
        if self._async_helper is None:
            self._async_helper = _async._Helper("producer")
        return self._async_helper

    def publish_batch(self, records: Any) -> int:
        """Publishes every record of a structured array of the ring's dtype (or its bytes, or
        a list of record tuples), in order, claiming many slots at once. Returns the sequence
        of the last one."""
        # A producer's publish_batch is a builtin (see __init__) that hands a 1-D contiguous
        # ndarray of the ring's dtype to the ring itself; this is the path of everything else.
        arr = self._batch_records(records)
        if len(arr):
            data: Any = arr  # a buffer (numpy's stubs say so only from 3.12)
            return self._raw.publish_bytes(data, len(arr), self._itemsize)
        return self._raw.cursor

    def claim(self, n: int = 1) -> "_Claim":
        """``with producer.claim(n) as view:`` claims ``n`` slots on entry and gives a writable
        structured view of them; they are published when the block ends (also if it raises: a
        claimed slot must be published, so fill every one). The view is the slots themselves
        (zero copy) unless the claim wraps around the ring's end; then it is a buffer copied in
        on exit. ``n`` is checked here, the claim (which may wait for room) is made on entry."""
        if n.__class__ is int and 0 < n <= self._capacity:  # the common case, checked fast
            return _Claim(self, n)
        return _Claim(self, _whole(n, "n", 1, self._capacity))

    # -- translators (the Disruptor's publishEvent family) ----------------------------------
    def publish_event(self, translator: Callable[..., None], *args: Any) -> int:
        """Claims one slot, calls ``translator(event, sequence, *args)`` to fill it in place
        (``event`` is a writable record of the slot) and publishes it, also if the translator
        raises (the exception then propagates). Returns the sequence."""
        hi = self._raw.next(1)
        self._translate(hi, 1, lambda i: translator, [(a,) for a in args], 0)
        return hi

    def try_publish_event(self, translator: Callable[..., None], *args: Any) -> bool:
        """As :meth:`publish_event` if a slot is free now; False (nothing called) if the ring
        is full."""
        hi = self._raw.try_next(1)
        if hi is None:
            return False
        self._translate(hi, 1, lambda i: translator, [(a,) for a in args], 0)
        return True

    def publish_events(self, translator: Any, *arg_lists: Sequence[Any], start: int = 0,
                       count: Optional[int] = None) -> int:
        """Publishes ``count`` events in one claim: event ``i`` is filled by
        ``translator(event, sequence, arg_lists[0][start + i], ...)``, or, when
        ``translator`` is a sequence of translators, by ``translator[start + i](event,
        sequence)``. ``count`` defaults to the rest of the lists from ``start``. Raises
        InvalidArgumentError (publishing nothing) unless ``1 <= count <= capacity`` and every
        list holds ``start + count`` items. Returns the sequence of the last event."""
        pick, n = self._batch(translator, arg_lists, start, count)
        hi = self._raw.next(n)
        self._translate(hi, n, pick, arg_lists, start)
        return hi

    def try_publish_events(self, translator: Any, *arg_lists: Sequence[Any], start: int = 0,
                           count: Optional[int] = None) -> bool:
        """As :meth:`publish_events` if the slots are free now; False (nothing called) if
        not."""
        pick, n = self._batch(translator, arg_lists, start, count)
        hi = self._raw.try_next(n)
        if hi is None:
            return False
        self._translate(hi, n, pick, arg_lists, start)
        return True

    def _batch(self, translator: Any, arg_lists: tuple, start: Any, count: Any):
        """Validates a batch before anything is claimed: (translator of item i, count)."""
        many = not callable(translator)
        if many and not all(callable(t) for t in translator):
            raise InvalidArgumentError("translator must be callable or a sequence of callables")
        if many and arg_lists:
            raise InvalidArgumentError("a sequence of translators takes no argument lists")
        lists = [translator] if many else list(arg_lists)
        start = _whole(start, "start", 0, 2 ** 62)
        if count is None:
            if not lists:
                raise InvalidArgumentError("publish_events needs count= when no lists are given")
            count = min(len(x) for x in lists) - start
        count = _whole(count, "count", 1, self._ring.capacity)
        for x in lists:
            if start + count > len(x):
                raise InvalidArgumentError(
                    f"start {start} + count {count} runs past a list of {len(x)} items")
        if many:
            return (lambda i: translator[i]), count
        return (lambda i: translator), count

    def _translate(self, hi: int, n: int, pick: Callable[[int], Any], arg_lists: Sequence[Any],
                   start: int) -> None:
        """Fills the claimed ``hi - n + 1 .. hi`` through the translators and publishes it
        (whatever they raise: a claimed slot must be published)."""
        lo = hi - n + 1
        with _Claim(self, n, hi) as view:
            for i in range(n):
                pick(start + i)(view[i], lo + i, *(x[start + i] for x in arg_lists))

    # -- state ---------------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        """The ring's cursor: the highest sequence published (on a multi-producer ring, the
        highest claimed)."""
        return self._raw.cursor

    @property
    def remaining_capacity(self) -> int:
        """Slots that can be claimed now without waiting."""
        return self._raw.remaining_capacity

    def has_available_capacity(self, n: int) -> bool:
        """True when ``n`` slots (n >= 1) can be claimed now without waiting; False for more
        than the capacity."""
        return self._raw.has_available_capacity(_whole(n, "n", 1, 2 ** 62))

    def claim_sequence(self, sequence: int) -> None:
        """Moves the claim to ``sequence``, so the next claim starts after it (the Disruptor's
        ``claim``): for tests and replays. No gating check; on a multi-producer ring it moves
        everyone's claim counter, so only while no other producer runs."""
        self._raw.claim_sequence(_whole(sequence, "sequence", -1, 2 ** 62))

    def close(self, end_stream: bool = True) -> None:
        """Ends the stream (consumers drain it, then their iteration ends) unless
        ``end_stream`` is false, and gives up the producer role. On a multi-producer ring the
        end of the stream is everyone's: let only the last producer end it."""
        if self._raw.closed:
            return
        if end_stream:
            self._raw.close()
        self._raw.detach()
        if self._async_helper is not None:
            self._async_helper.shutdown()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Claim:
    """What :meth:`Producer.claim` returns: a plain context manager (a generator-based one cost
    twice as much per claim). Claims on entry (unless given the claim ``hi`` already made),
    gives the writable view of the slots, publishes on exit, whatever happened."""

    __slots__ = ("_producer", "_n", "_hi", "_claims", "_buffer")

    def __init__(self, producer: Producer, n: int, hi: Optional[int] = None):
        self._producer = producer
        self._n = n
        self._claims = hi is None  # then each entry claims anew
        self._hi = -1 if hi is None else hi
        self._buffer: Optional[np.ndarray] = None

    def __enter__(self) -> np.ndarray:
        p, n = self._producer, self._n
        if self._claims:
            self._hi = p._raw.next(n)
        lo = self._hi - n + 1
        capacity = p._capacity
        if (lo & (capacity - 1)) + n <= capacity:
            view: np.ndarray = p._ring_raw.view(lo, n, p._dtype, True)
            return view
        self._buffer = np.zeros(n, dtype=p._dtype)  # wraps around the end: copied in on exit
        return self._buffer

    def __exit__(self, *exc: object) -> None:
        p, hi = self._producer, self._hi
        lo = hi - self._n + 1
        buffer, self._buffer = self._buffer, None
        try:
            if buffer is not None:
                first = p._capacity - (lo % p._capacity)
                p._ring_raw.view(lo, first, p._dtype, True)[:] = buffer[:first]
                p._ring_raw.view(lo + first, self._n - first, p._dtype, True)[:] = buffer[first:]
        finally:
            p._raw.publish(lo, hi)


class Consumer:
    """A named consumer of a ring: iterate it, take batches, or run a handler as a stage.

    Iteration yields one event at a time as a tuple of field values (a copy: it stays valid).
    :meth:`batches` yields zero-copy structured views of many events at once. Each batch is
    released to the producer (and to stages after this one) when the next one is asked for, or
    when the stream ends. A loop left early (``break``, an exception) does not release the
    batch it was in: the next loop starts with that batch again (at-least-once), and so does a
    process that restarts under the same name after a crash. Leave with :meth:`close` (or
    ``with``); a process that dies leaves its name to be taken over.
    """

    def __init__(self, ring: Ring, raw: "_core.RawConsumer", *, writable: bool,
                 max_batch: Optional[int]):
        self._ring = ring
        self._ring_raw = ring._raw
        self._raw = raw
        self._dtype = ring.dtype
        self._writable = writable
        self._max_batch = (int(max_batch) if max_batch else
                           min(PYTHON_MAX_BATCH, _core.default_max_batch(ring.capacity)))
        # Per-event loops (iteration, values) make a Python value per event, a batch's list
        # at a time: never more than PYTHON_MAX_BATCH in one list held to its end.
        self._event_batch = min(self._max_batch, PYTHON_MAX_BATCH)
        self._tuple_fields = _tuple_fields(self._dtype)
        self._async_helper: Optional[_async._Helper] = None
        self._batch_first = -1
        self._batch_taken_over = False
        self._ended = "halted"  # how the last loop ended: "closed" or "halted"

    @property
    def name(self) -> str:
        """The consumer's registered name."""
        return self._raw.name

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the events it reads."""
        return self._dtype

    @property
    def sequence(self) -> int:
        """The last sequence this consumer released."""
        return self._raw.sequence

    @property
    def resumed(self) -> bool:
        """True when this consumer took over its name from a dead process and goes on after
        that process's last released event."""
        return self._raw.resumed

    @property
    def missed(self) -> int:
        """Events this name missed, counted when it rejoined at the cursor after an eviction."""
        return self._raw.missed

    @property
    def join_sequence(self) -> int:
        """The cursor when this consumer joined: it reads from the event after it."""
        return self._raw.join_sequence

    @property
    def catching_up(self) -> bool:
        """True while it reads its journal, before it joins the ring (``journal=``)."""
        return self._raw.catching_up

    @property
    def group(self) -> Optional[str]:
        """The worker group this consumer is a member of (``group=``), or None."""
        return self._raw.group if self._raw.member else None

    @property
    def takeovers(self) -> int:
        """Runs this member took over from members that died (handled again)."""
        return self._raw.takeovers

    @property
    def batch_first(self) -> int:
        """The sequence of the first event of the batch handed out last (-1 before one)."""
        return self._batch_first

    @property
    def batch_taken_over(self) -> bool:
        """True when the batch handed out last belongs to a run this member took over from
        a member that died (or its own, resumed after a restart): some of its events may have
        been handled already; the sequences tell which."""
        return self._batch_taken_over

    @property
    def observer(self) -> bool:
        """True for an observer (``gating=False``): it never holds the producer back and may
        be lapped (its loop then raises LappedError)."""
        return self._raw.observer

    def _journal_batch(self) -> np.ndarray:
        """The journal batch in hand: a read-only view of the journal, or, for a consumer that
        writes in place, a copy it may write (the journal is not the ring: the writes reach
        neither the journal nor the stages after it)."""
        view = self._raw.journal_view(self._dtype)
        return view.copy() if self._writable else view

    def _ranges(self, limit: int, on_timeout: Optional[Callable[[int], None]]):
        """Yields (first, count, journal) of each batch: ``journal`` is a read-only array of
        the batch when it comes out of the journal (catching up), else None (it is in the
        ring). The C++ side releases a batch when the next is asked for, and on the way out."""
        limit = _whole(limit, "max_size", 1, 2 ** 62)
        next_range = self._raw.next_range
        self._raw.begin_loop()  # one loop at a time reads a consumer (StateError otherwise)
        try:
            while True:
                first, count, status = next_range(limit)
                if status == "ok" or status == "taken-over":
                    self._batch_first = first
                    self._batch_taken_over = status == "taken-over"
                    yield first, count, None
                elif status == "journal":
                    yield first, count, self._journal_batch()
                elif status == "timeout":
                    if on_timeout is not None:
                        on_timeout(first - 1)
                else:
                    error = error_for_wait_status(status, ring=self._ring.name,
                                                  consumer=self.name, sequence=first)
                    if error is not None:
                        raise error
                    self._ended = status  # closed or halted: what run() reports
                    return
        except GeneratorExit:
            # The loop over this batch was left early (break, an exception, or the iterator
            # dropped): its unprocessed events must not be released. The next loop gets the
            # whole batch again (at-least-once).
            self._raw.discard_pending()
            raise
        finally:
            if not self._raw.closed:
                self._raw.release_pending()
                self._raw.clear_halt()
            self._raw.end_loop()  # a close() asked for meanwhile happens here

    def batches(self, max_size: Optional[int] = None, *,
                on_timeout: Optional[Callable[[int], None]] = None) -> Iterator[np.ndarray]:
        """Yields structured views of every available event (at most ``max_size`` at a time,
        by default half the ring up to 4096 events; never wrapping the ring's end), waiting
        when there are none. Ends when the producer closed the stream and everything was read,
        or after :meth:`halt`; raises UpstreamGoneError if a stage this one runs after left."""
        limit = int(max_size) if max_size else self._max_batch
        capacity = self._ring.capacity
        mask = capacity - 1
        # One view of the whole ring, sliced per batch: no new array object per batch.
        whole = self._ring_raw.view(0, capacity, self._dtype, self._writable)
        for first, count, journal in self._ranges(limit, on_timeout):
            if journal is not None:
                yield journal
                continue
            start = first & mask
            yield whole[start:start + count]

    def __iter__(self) -> Iterator[tuple]:
        """One event at a time as a tuple of field values (a copy), until the stream ends."""
        return self._per_event(None)

    def values(self, *fields: str) -> Iterator[Any]:
        """One event at a time, only the fields named: ``for seq, price in
        consumer.values("seq", "price")`` yields tuples of their values, ``values("price")``
        the values themselves (copies). Otherwise as iteration; cheaper when a record has
        more fields than the loop reads (a Python value is made only for those)."""
        return self._per_event(self._field_names(fields))

    def _field_names(self, fields: tuple) -> tuple:
        """``fields`` checked against the ring's dtype: one or more distinct field names."""
        known = self._dtype.names or ()
        if not fields:
            raise InvalidArgumentError(f"name one field or more (of {', '.join(known)})")
        for name in fields:
            if not isinstance(name, str) or name not in known:
                raise InvalidArgumentError(
                    f"{name!r} is not a field of ring {self._ring.name!r} "
                    f"(its fields: {', '.join(known)})")
        if len(set(fields)) != len(fields):
            raise InvalidArgumentError(f"a field is named twice in {fields!r}")
        return fields

    def _lists(self, names: Optional[tuple]) -> Callable[[int, int, Any], list]:
        """The per-event values of one batch (first, count, journal array or None) as a list:
        tuples of every field (``names`` None) or of ``names``, one name's values bare. Read
        straight from the slots in C++ when the fields allow, else through numpy."""
        bare = names is not None and len(names) == 1
        columns: Sequence[str] = names if names is not None else (self._dtype.names or ())

        def through_numpy(batch: np.ndarray) -> list:
            # Column by column: a record array's tolist() gives its sub-array fields as views
            # of the batch (of ring slots the producer reuses); a column's gives lists.
            values = [batch[name].tolist() for name in columns]
            return values[0] if bare else list(zip(*values))

        spec = self._tuple_fields if names is None else _tuple_fields(self._dtype, names)
        if spec is None:
            view, dtype = self._ring_raw.view, self._dtype
            return lambda first, count, journal: through_numpy(
                view(first, count, dtype, False) if journal is None else journal)
        read = self._ring_raw.tuple_reader(spec, bare)
        return lambda first, count, journal: (
            read(first, count) if journal is None else through_numpy(journal))

    def _per_event(self, names: Optional[tuple]) -> Iterator[Any]:
        # chain.from_iterable walks each batch's list in C: no Python frame per event. It asks
        # for the next batch (releasing this one) only once every value of it was taken.
        lists = self._lists(names)
        return itertools.chain.from_iterable(
            lists(first, count, journal)
            for first, count, journal in self._ranges(self._event_batch, None))

    def arrow_batches(self, max_size: Optional[int] = None) -> Iterator[Any]:
        """:meth:`batches` as ``pyarrow.RecordBatch`` objects (:func:`xdisruptor.to_arrow`:
        columns are gathered out of the slots, so they stay valid after the batch is
        released, except a dtype of one field, which is zero-copy and follows the batch's
        lifetime). ``pip install 'xdisruptor[arrow]'``."""
        for batch in self.batches(max_size):
            yield _arrow.to_arrow(batch)

    # -- asyncio ---------------------------------------------------------------------------
    def abatches(self, max_size: Optional[int] = None, *,
                 on_timeout: Optional[Callable[[int], None]] = None
                 ) -> AsyncGenerator[np.ndarray, None]:
        """``async for batch in consumer.abatches():`` the batches of :meth:`batches`, awaiting
        new events without blocking the event loop: events already published come at once;
        a wait runs in this consumer's helper thread (its own wait strategy, the GIL
        released) and wakes the loop when it ends. A cancelled task releases nothing it was
        not handed; a loop left early (``break``, an exception, cancellation) does not release
        the batch in hand, which comes again. Use ``contextlib.aclosing(...)`` to end it at
        once when you break out (an async generator is otherwise closed later, by the loop).
        Not for worker-group members (read them with :meth:`batches` or :meth:`run`)."""
        self._not_a_member("abatches()")
        # Checked here, as batches() checks it (an async generator would only say so at the
        # first batch, and a limit below 1 would hand out empty batches for ever).
        limit = _whole(int(max_size) if max_size else self._max_batch, "max_size", 1, 2 ** 62)
        return _async.batches(self, limit, on_timeout)

    def _not_a_member(self, what: str) -> None:
        if self._raw.member:
            raise InvalidArgumentError(
                f"{what} is not for a worker-group member ({self.name!r} of {self.group!r}); "
                "read it with batches(), iteration, values() or run()")

    def __aiter__(self) -> AsyncGenerator[tuple, None]:
        """``async for seq, price, symbol in consumer:`` one event at a time as a tuple, as
        synchronous iteration, awaiting as :meth:`abatches` does."""
        self._not_a_member("async iteration")
        return _async.events(self, None)

    def avalues(self, *fields: str) -> AsyncGenerator[Any, None]:
        """``async for seq, price in consumer.avalues("seq", "price"):`` :meth:`values`,
        awaiting as :meth:`abatches` does."""
        self._not_a_member("avalues()")
        return _async.events(self, self._field_names(fields))

    def _helper(self) -> "_async._Helper":
        if self._async_helper is None:
            self._async_helper = _async._Helper(f"consumer-{self.name}", self._raw.halt)
        return self._async_helper

    def records(self) -> Iterator[np.void]:
        """Yields one event at a time as a numpy record view (fields by name; writable if the
        consumer is). A view is valid until the next batch is taken: copy what you keep."""
        for batch in self.batches():
            yield from batch

    def run(self, handler: Any, *, max_batch: Optional[int] = None,
            error_policy: str = "stop", max_retries: int = 3, retry_pause: float = 0.001,
            exception_handler: Any = None,
            rewind_strategy: Optional[Callable[[BaseException, int], bool]] = None,
            **deprecated: Any) -> str:
        """Runs ``handler`` as a named pipeline stage until the stream ends (returns "closed"),
        :meth:`halt` is called ("halted"), an upstream stage leaves (UpstreamGoneError), or
        the error handling stops it (HandlerError). The value returned is a
        :class:`WaitStatus`.

        ``handler`` is a callable ``handler(event, sequence, end_of_batch)`` called per event
        with a record view, or an object with ``on_event(event, sequence, end_of_batch)`` or
        ``on_batch(events, first_sequence)`` (a structured array of a whole batch), and
        optionally ``on_start()`` and ``on_shutdown()`` (once each per run, also when halted
        before it started), ``on_timeout(sequence)``, ``on_batch_start(batch_size,
        queue_depth)`` (before each batch: its size and how many events were ready;
        ``max_batch`` caps the size; None: half the ring up to 4096 events),
        ``set_sequence_callback(release)`` (given before ``on_start``: ``release(sequence)`` from inside ``on_event`` releases the events up to
        it before the batch ends) and ``on_handler_error(event_or_batch, sequence,
        exception)`` (told of every failure, instead of the default report on stderr).

        Failures are handled as the C++ processor does (error_policy.h). A
        :class:`RewindableError` goes to the rewind strategy: ``rewind_strategy(error,
        attempts) -> bool`` if given (presets: AlwaysRewind, RewindUpTo, NeverRewind), else
        the preset of ``error_policy``: "retry" runs the whole batch again after
        ``retry_pause`` seconds, at most ``max_retries`` times. Any other exception (and a
        rewind given up) goes to the exception handler: ``exception_handler`` if given (a
        callable, or an object with ``handle_event_error(error, sequence, event)`` returning
        "skip" or "stop", and optionally ``handle_start_error(error)``,
        ``handle_shutdown_error(error)``), else the preset: "skip" reports it and goes on with
        the next event (for ``on_batch`` handlers the batch is the unit skipped), "stop" and
        "retry" release the events before it and raise HandlerError (a restart under the same
        name resumes at it). Each failure is counted in the ring (``handler_errors``).
        ``on_error=`` and ``retries=`` are deprecated spellings of ``error_policy=`` and
        ``max_retries=``."""
        error_policy = renamed(deprecated, "on_error", "error_policy", error_policy, "stop")
        max_retries = renamed(deprecated, "retries", "max_retries", max_retries, 3)
        if deprecated:
            raise InvalidArgumentError(f"unknown keyword {next(iter(deprecated))!r}")
        handling = Handling(self, handler, error_policy, max_retries, retry_pause,
                            exception_handler, rewind_strategy)
        on_batch = getattr(handler, "on_batch", None)
        on_event = getattr(handler, "on_event", None)
        if on_batch is None and on_event is None:
            if not callable(handler):
                raise InvalidArgumentError(
                    "handler must be callable or have on_event or on_batch")
            on_event = handler
        on_start = getattr(handler, "on_start", None)
        on_shutdown = getattr(handler, "on_shutdown", None)
        on_timeout = getattr(handler, "on_timeout", None)
        on_batch_start = getattr(handler, "on_batch_start", None)
        set_callback = getattr(handler, "set_sequence_callback", None)
        raw = self._raw
        if set_callback is not None:
            set_callback(raw.release_early)
        if on_start is not None:
            try:
                on_start()
            except Exception as exc:  # noqa: BLE001 - the exception handler decides
                handling.start_error(exc)
        reason = WaitStatus.HALTED
        try:
            limit = int(max_batch) if max_batch else self._max_batch
            mask = self._ring.capacity - 1
            whole = self._ring_raw.view(0, self._ring.capacity, self._dtype, self._writable)
            ranges = self._ranges(limit, on_timeout)
            self._ended = "halted"
            try:
                for first, count, journal in ranges:
                    batch = journal if journal is not None else \
                        whole[first & mask:(first & mask) + count]
                    self._run_batch(batch, first, count, on_event, on_batch, on_batch_start,
                                    handling)
            finally:
                ranges.close()
            # As the core said it ended: halted before the end of a closed stream (another
            # stage's failure halted this one mid-drain) is not "closed".
            reason = WaitStatus.CLOSED if self._ended == "closed" else WaitStatus.HALTED
        finally:
            if on_shutdown is not None:
                try:
                    on_shutdown()
                except Exception as exc:  # noqa: BLE001 - the exception handler is told
                    handling.shutdown_error(exc)
        return reason

    def _run_batch(self, batch, first, count, on_event, on_batch, on_batch_start,
                   handling: Handling) -> None:
        """One batch under the error handling (see :meth:`run`). After a skipped event the
        rest is a new batch, as in the Disruptor (and the C++ processor): announced again, and
        rewinds go back only to its start."""
        raw = self._raw
        failures = 0
        start = 0  # where the batch (or, after a skip, the rest of it) starts
        j = 0  # where the batch goes on from (after a skip or a rewind)
        while True:
            if j == start and on_batch_start is not None:
                on_batch_start(count - start, max(count, raw.available() - first + 1) - start)
            try:
                if on_batch is not None:
                    on_batch(batch, first)
                else:
                    last = count - 1
                    for j in range(j, count):
                        on_event(batch[j], first + j, j == last)
                return
            except Exception as exc:  # the handler's: the error handling decides
                failures += 1
                failed = first if on_batch is not None else first + j
                action = handling.on_failure(exc, batch if on_batch is not None else batch[j],
                                             failed, failures)
                if action == "skip":
                    if on_batch is not None or j + 1 >= count:
                        return
                    j = start = j + 1
                    failures = 0
                elif action == "rewind":
                    # released events are never handed out again
                    j = max(start, raw.sequence + 1 - first)
                else:
                    handling.stop(exc, first, failed, failures)

    @property
    def events(self) -> int:
        """Events this consumer released since it registered (resumed: since its name did)."""
        return self._raw.events

    @property
    def handler_errors(self) -> int:
        """Handler failures this consumer's error policy handled, as counted in the ring."""
        return self._raw.handler_errors

    def halt(self) -> None:
        """Makes a running :meth:`run`, :meth:`batches` or iteration in another thread end
        after the batch in hand (waking it if it sleeps)."""
        self._raw.halt()

    def close(self) -> None:
        """Releases what is pending and leaves the ring: the producer no longer waits for this
        consumer, and its name is free. Called from another thread while a loop reads this
        consumer, it halts the loop (which is handed no further event) and the consumer leaves
        as the loop ends."""
        if self._raw.closed:
            return
        self._raw.deregister()
        if self._async_helper is not None:
            self._async_helper.shutdown()

    def abandon(self) -> None:
        """Lets go of the ring as if this process had crashed: the entry stays, keeps gating
        the producer (its stall policy decides for how long) and the stages after it, and a
        consumer registered by this name, from any process (this one too), resumes at its
        sequence; events handed out but not released are handed out again. For a failure
        that must not lose the stream (what a stage program does under the launcher's
        ``restart = "on-failure"``). Not while a loop reads this consumer (StateError)."""
        if self._raw.closed:
            return
        self._raw.abandon()
        if self._async_helper is not None:
            self._async_helper.shutdown()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._raw.closed:
            return "<xdisruptor.Consumer (closed)>"
        return f"<xdisruptor.Consumer {self.name!r} sequence={self.sequence}>"
