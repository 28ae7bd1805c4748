"""Conversion between numpy structured dtypes and the schema text stored in a ring's header.

The schema is a comma-separated list of ``FORMAT:NAME`` fields packed in order, for example
``"<i8:seq,<f8:price,S12:symbol"`` (see ``core/include/xdisruptor/schema.h``). Gaps between
fields (alignment padding) are written as void fields named ``__xd_pad<N>`` and dropped again
when the dtype is rebuilt, so ``schema_to_dtype(dtype_to_schema(dt)) == dt`` for any packed or
aligned dtype of plain fields.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import DTypeError

_PAD_PREFIX = "__xd_pad"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def _field_format(name: str, fdt: np.dtype) -> str:
    if fdt.hasobject:
        raise DTypeError(f"field '{name}' holds Python objects, which cannot live in shared memory")
    if fdt.fields is not None:
        raise DTypeError(f"field '{name}' is itself structured; flatten nested fields")
    shape = ""
    if fdt.subdtype is not None:
        base, dims = fdt.subdtype
        if base.fields is not None or base.hasobject:
            raise DTypeError(f"field '{name}' is an array of structures or objects")
        shape = "(" + ",".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
        fdt = base
    if fdt.itemsize == 0:
        raise DTypeError(
            f"field '{name}' has no fixed size ({fdt}); give strings a length, e.g. 'S16'")
    text = fdt.str
    if text.startswith("|"):  # no byte order applies (bytes, void, bool, 1-byte ints)
        text = text[1:]
    return shape + text


def dtype_to_schema(dtype) -> str:
    """The schema text for a structured dtype. Raises DTypeError if it cannot be shared."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise DTypeError(f"not a numpy dtype: {dtype!r} ({e})") from None
    if dt.fields is None:
        raise DTypeError(
            f"events need a structured dtype with named fields, e.g. "
            f"np.dtype([('seq', '<i8'), ('price', '<f8')]); got {dt}")
    if dt.hasobject:
        raise DTypeError("the dtype holds Python objects, which cannot live in shared memory")
    items = []
    position = 0
    pads = 0
    ordered = sorted(dt.names, key=lambda n: dt.fields[n][1])
    for name in ordered:
        fdt, offset = dt.fields[name][:2]
        if not _IDENTIFIER.match(name) or name.startswith(_PAD_PREFIX):
            raise DTypeError(
                f"field name '{name}' must be an identifier of at most 64 characters "
                f"(and not start with '{_PAD_PREFIX}')")
        if offset < position:
            raise DTypeError(f"field '{name}' overlaps the field before it")
        if offset > position:
            items.append(f"V{offset - position}:{_PAD_PREFIX}{pads}")
            pads += 1
        items.append(f"{_field_format(name, fdt)}:{name}")
        position = offset + fdt.itemsize
    if dt.itemsize > position:
        items.append(f"V{dt.itemsize - position}:{_PAD_PREFIX}{pads}")
    return ",".join(items)


_SHAPE = re.compile(r"\(([0-9, ]*)\)")


def _split_fields(text: str) -> list[str]:
    fields, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            fields.append(text[start:i])
            start = i + 1
    fields.append(text[start:])
    return fields


def schema_to_dtype(schema: str) -> np.dtype:
    """The numpy dtype a ring's schema text describes (padding fields dropped)."""
    if not schema:
        raise DTypeError("the ring has no schema (raw bytes); pass dtype= to attach")
    names, formats, offsets = [], [], []
    position = 0
    for item in _split_fields(schema):
        fmt, _, name = item.rpartition(":")
        shape: tuple[int, ...] = ()
        m = _SHAPE.match(fmt)
        if m:
            shape = tuple(int(d) for d in m.group(1).split(",") if d.strip())
            fmt = fmt[m.end():]
        fdt = np.dtype(fmt) if not shape else np.dtype((np.dtype(fmt), shape))
        if not name.startswith(_PAD_PREFIX):
            names.append(name)
            formats.append(fdt)
            offsets.append(position)
        position += fdt.itemsize
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": position})
