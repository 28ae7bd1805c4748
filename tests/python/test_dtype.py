"""dtype <-> schema text, as stored in a ring's header."""

import numpy as np
import pytest

import xdisruptor
from xdisruptor import DTypeError, dtype_to_schema, schema_to_dtype


@pytest.mark.parametrize("dt", [
    np.dtype([("seq", "<i8"), ("price", "<f8"), ("symbol", "S12")]),
    np.dtype([("a", "u1"), ("b", "<f8")], align=True),          # padding between fields
    np.dtype([("grid", "<i2", (2, 3)), ("v", "<f4", (4,))]),     # sub-arrays
    np.dtype([("t", "<M8[ns]"), ("dt", "<m8[us]"), ("ok", "?"), ("z", "<c16")]),
    np.dtype([("code", "<U3"), ("raw", "V5"), ("h", "<f2")]),
    np.dtype({"names": ["x"], "formats": ["<i4"], "offsets": [4], "itemsize": 16}),
])
def test_should_round_trip_when_converting_a_dtype(dt):
    schema = dtype_to_schema(dt)
    back = schema_to_dtype(schema)
    assert back == dt
    assert back.itemsize == dt.itemsize


@pytest.mark.parametrize("dt, words", [
    (np.dtype([("o", "O")]), "objects"),
    (np.dtype([("s", "S")]), "fixed size"),
    (np.dtype([("inner", [("a", "<i4")])]), "nested"),
    (np.dtype("<i8"), "structured"),
    (np.dtype([("bad name", "<i8")]), "identifier"),
])
def test_should_raise_dtype_error_when_the_dtype_cannot_be_shared(dt, words):
    with pytest.raises(DTypeError, match=words):
        dtype_to_schema(dt)


def test_should_raise_dtype_error_when_creating_a_ring_of_objects(ring_name):
    with pytest.raises(DTypeError):
        xdisruptor.Ring.create(ring_name, dtype=[("o", "O")])
    assert not xdisruptor.Ring.exists(ring_name)


@pytest.mark.parametrize("dt, words", [
    ([("o", "O")], "objects"),
    ("<i8", "structured"),
])
def test_should_raise_dtype_error_when_attaching_a_ring_without_a_schema_as_such_a_dtype(
        ring_name, dt, words):
    # A ring made by C++ with raw slots (no schema) takes a dtype on attach: only one shared
    # memory can hold (objects would be pointers read in another process).
    raw = xdisruptor._xdisruptor.RawRing.create(ring_name, 16, 64, "", False, 0o600)
    try:
        with pytest.raises(DTypeError, match=words):
            xdisruptor.Ring.attach(ring_name, dtype=dt)
        with xdisruptor.Ring.attach(ring_name, dtype=[("a", "<i8")]) as ring:
            assert ring.dtype == np.dtype([("a", "<i8")])
    finally:
        raw.close()
        xdisruptor.Ring.remove(ring_name, force=True)
