"""Producer.publish of tuples: the packed fast path gives exactly what numpy would."""

import numpy as np
import pytest

import xdisruptor


@pytest.mark.parametrize("dtype", [
    np.dtype([("a", "<i8"), ("b", "<f8"), ("s", "S5"), ("flag", "?"), ("c", "<u2")]),
    np.dtype({"names": ["x", "y"], "formats": ["<i4", "<f4"], "offsets": [0, 8],
              "itemsize": 16}),  # padding between and after fields
])
def test_should_store_the_same_record_as_numpy_when_publishing_tuples(ring_name, dtype):
    values = [(1, 2.5, b"abc", True, 7), (-3, 1e300, b"toolongvalue", False, 65535)] \
        if len(dtype.names) == 5 else [(5, 0.25), (-1, -2.0)]
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=dtype) as ring:
        consumer = ring.consumer("c", wait="yielding")
        with ring.producer() as producer:
            for v in values:
                producer.publish(v)
            # Values struct cannot pack go through numpy as before: str for bytes fields,
            # floats for integer fields.
            if len(dtype.names) == 5:
                producer.publish((2.0, 3, "xyz", 0, 1))
                values.append((2, 3.0, b"xyz", False, 1))
        got = [b.copy() for b in consumer.batches()]
        got = np.concatenate(got)
        expected = np.array(values, dtype=ring.dtype)
        for name in dtype.names:  # (numpy leaves padding bytes undefined: compare fields)
            assert np.array_equal(got[name], expected[name]), name


def test_should_refuse_a_tuple_of_the_wrong_length(ring_name):
    dtype = np.dtype([("a", "<i8"), ("b", "<f8")])
    with xdisruptor.Ring.create(ring_name, capacity=16, dtype=dtype) as ring:
        with ring.producer() as producer:
            with pytest.raises(xdisruptor.RecordError):
                producer.publish((1, 2.0, 3))
