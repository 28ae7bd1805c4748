"""Events as Arrow: a structured numpy batch (from a ring or a journal) as a pyarrow
RecordBatch, and through it a pandas DataFrame. pyarrow is an optional extra
(``pip install 'xdisruptor[arrow]'``).

Arrow stores each column contiguously; a batch stores whole events back to back. So a column
is zero-copy only when it already is contiguous: a dtype of exactly one numeric field and no
padding. Every other column is gathered into its own buffer once (a strided copy numpy does at
memory speed), and the RecordBatch owns it. Zero-copy columns follow the batch's lifetime
rule: a view of ring slots is valid until the batch is released (copy what you keep).

Types: integers, floats and bool keep their type; ``S`` fields become ``binary`` (the bytes
up to the trailing NULs, as numpy reads them); ``V`` fields of n bytes become
``fixed_size_binary(n)`` (the bytes as stored); ``U`` fields become
strings (a per-value conversion: slow); datetime64/timedelta64 become timestamps/durations of
the same unit; sub-array fields ``(n,)`` become ``fixed_size_list``; nested records become
structs. Padding fields (``V`` fields whose name starts with ``_``) are left out."""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ImportError("Arrow conversions need pyarrow: pip install 'xdisruptor[arrow]'") \
            from None
    return pyarrow


def _column(pa: Any, col: np.ndarray, dtype: np.dtype) -> Any:
    """One field's values (``col``: that field of every event) as an Arrow array."""
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        width = int(np.prod(shape))
        flat = np.ascontiguousarray(col).reshape(len(col) * width)
        return pa.FixedSizeListArray.from_arrays(_column(pa, flat, base), width)
    if dtype.names is not None and dtype.fields is not None:
        children = [_column(pa, col[name], dtype.fields[name][0]) for name in _kept(dtype)]
        return pa.StructArray.from_arrays(children, names=list(_kept(dtype)))
    kind = dtype.kind
    if kind in "biufMm" and not dtype.isnative:
        # Arrow holds native byte order only ("byte-swapped arrays not supported"): a copy in
        # it (a ring's schema may say ">" for a field).
        col = col.astype(dtype.newbyteorder("="))
    if kind in "biuf":
        return pa.array(col if col.flags.c_contiguous else np.ascontiguousarray(col))
    if kind in "Mm":
        return pa.array(np.ascontiguousarray(col))
    if kind == "S":
        # As numpy reads an S field: the bytes up to the trailing NULs. Vectorised: each
        # value's length, then one masked gather of the kept bytes.
        width = dtype.itemsize
        data = np.ascontiguousarray(col).view(np.uint8).reshape(len(col), width)
        nonzero = data != 0
        lengths = np.where(nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 0)
        offsets = np.zeros(len(col) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        values = data[np.arange(width) < lengths[:, None]]
        return pa.BinaryArray.from_buffers(pa.binary(), len(col),
                                           [None, pa.py_buffer(offsets), pa.py_buffer(values)])
    if kind == "V":
        data = np.ascontiguousarray(col).view(np.uint8)
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(dtype.itemsize), len(col),
                                                    [None, pa.py_buffer(data)])
    if kind == "U":
        return pa.array(col.tolist(), type=pa.string())
    raise TypeError(f"no Arrow type for field of dtype {dtype}")


def _kept(dtype: np.dtype) -> list:
    fields: Any = dtype.fields or {}
    return [n for n in dtype.names or ()
            if not (n.startswith("_") and fields[n][0].kind == "V")]


def to_arrow(batch: np.ndarray) -> Any:
    """A structured array of events (a ring or journal batch) as a ``pyarrow.RecordBatch``,
    a column per field (see the module's notes on what is copied)."""
    pa = _pyarrow()
    if not isinstance(batch, np.ndarray):
        raise TypeError("to_arrow takes a structured numpy array (a batch of events)")
    batch = batch.reshape(-1)
    if batch.dtype.names is None:  # events without a schema: one column of their bytes
        if batch.dtype.kind != "V":
            raise TypeError(f"to_arrow takes a structured numpy array, not one of {batch.dtype}")
        return pa.RecordBatch.from_arrays([_column(pa, batch, batch.dtype)], names=["event"])
    names = _kept(batch.dtype)
    fields: Any = batch.dtype.fields or {}
    columns = [_column(pa, batch[n], fields[n][0]) for n in names]
    return pa.RecordBatch.from_arrays(columns, names=names)


def to_pandas(batch: np.ndarray) -> Any:
    """A structured array of events as a ``pandas.DataFrame`` (through :func:`to_arrow`)."""
    return to_arrow(batch).to_pandas()
