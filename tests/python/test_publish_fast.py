"""The compiled record packer behind Producer.publish and publish_many: for every field kind
the ring accepts, the bytes in the slot are exactly numpy's own packing of the same record;
what it cannot pack goes through numpy (same result, or RecordError), and a refused record
claims nothing."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import xdisruptor
from xdisruptor.errors import RecordError

KINDS = np.dtype([("i1", "i1"), ("i2", "<i2"), ("i4", "<i4"), ("i8", "<i8"), ("u1", "u1"),
                  ("u2", "<u2"), ("u4", "<u4"), ("u8", "<u8"), ("f4", "<f4"), ("f8", "<f8"),
                  ("ok", "?"), ("sym", "S6"), ("levels", "<f8", (3,)), ("grid", "<i2", (2, 2)),
                  ("ts", "<M8[ns]")])
FAST = np.dtype([d for d in KINDS.descr if d[0] != "ts"])  # every field on the fast path


def slot_bytes(ring, dtype, seq):
    with ring.consumer(f"peek{seq}", start_at=seq) as c:
        for batch in c.batches(max_size=1):
            return batch.tobytes()[:dtype.itemsize]


def ints(bits, signed=True):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return st.integers(lo, hi)


records = st.tuples(
    ints(8), ints(16), ints(32), ints(64), ints(8, False), ints(16, False), ints(32, False),
    ints(64, False), st.floats(width=32, allow_nan=False), st.floats(allow_nan=False),
    st.booleans(), st.binary(max_size=6),
    st.lists(st.floats(allow_nan=False), min_size=3, max_size=3),
    st.lists(st.lists(ints(16), min_size=2, max_size=2), min_size=2, max_size=2))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records)
def test_should_pack_every_field_kind_exactly_as_numpy_does(ring_name_factory, record):
    assert_packs_as_numpy(ring_name_factory(), FAST, record)


def assert_packs_as_numpy(name, dtype, record):
    with xdisruptor.Ring.create(name, capacity=8, dtype=dtype) as ring:
        with ring.producer() as p:
            seq = p.publish(record)
            assert slot_bytes(ring, dtype, seq) == np.array([record], dtype).tobytes()
    xdisruptor.Ring.remove(name)


SCALARS = np.dtype([d for d in FAST.descr if d[0] not in ("levels", "grid")])  # the flat loop


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records)
def test_should_pack_scalar_records_in_the_flat_loop_exactly_as_numpy_does(ring_name_factory,
                                                                           record):
    assert_packs_as_numpy(ring_name_factory(), SCALARS, record[:12])  # the scalar fields


def test_should_leave_to_numpy_what_the_flat_loop_does_not_take_and_refuse_what_numpy_refuses(
        ring_name):
    base = (-1, -2, -3, -4, 1, 2, 3, 4, 1.5, 2.5, True, b"AB")

    def at(i, v):
        return base[:i] + (v,) + base[i + 1:]
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=SCALARS) as ring:
        p = ring.producer()
        # The limits of each width, exact; values numpy converts (an int for a float or a bool,
        # a numpy scalar, a bytearray) the same as numpy does.
        for record in [at(3, -(1 << 63)), at(3, (1 << 63) - 1), at(7, (1 << 64) - 1),
                       at(0, -128), at(0, 127), at(4, 255), at(1, -(1 << 15)), at(6, (1 << 32) - 1),
                       at(2, -(1 << 31)), at(5, (1 << 16) - 1), at(7, 0), at(3, 0), at(3, -(1 << 30)),
                       at(3, -(1 << 60)), at(7, 1 << 60), at(9, 3), at(8, -2), at(10, 1),
                       at(10, False), at(3, np.int64(-5)), at(9, np.float32(0.25)),
                       at(11, b"ABCDEF"), at(11, b"")]:
            want = np.array([record], SCALARS).tobytes()
            assert slot_bytes(ring, SCALARS, p.publish(record)) == want, record
        before = p.cursor
        for bad in [at(0, 128), at(0, -129), at(4, 256), at(4, -1), at(7, -1), at(7, 1 << 64),
                    at(3, 1 << 63), at(3, -(1 << 63) - 1), at(3, 1 << 100), at(1, 1 << 15),
                    at(5, 1 << 16), at(2, 1 << 31), at(6, 1 << 32), base[:11], base + (1,),
                    b"\0" * (SCALARS.itemsize - 1), b"\0" * (SCALARS.itemsize + 1)]:
            with pytest.raises(RecordError):
                p.publish(bad)
        assert p.cursor == before  # a refused record claims nothing
        # One record's bytes exactly: copied as they are.
        raw = np.array([base], SCALARS).tobytes()
        assert slot_bytes(ring, SCALARS, p.publish(raw)) == raw
        p.close()


@pytest.fixture
def ring_name_factory(ring_name):
    count = iter(range(10 ** 6))
    made = []

    def make():
        made.append(f"{ring_name}-{next(count)}")
        return made[-1]

    yield make
    for name in made:
        if xdisruptor.Ring.exists(name):
            xdisruptor.Ring.remove(name, force=True)


def test_should_take_sequences_arrays_and_numpy_values_and_fall_back_for_the_rest(ring_name):
    base = (-1, -2, -3, -4, 1, 2, 3, 4, 1.5, 2.5, True, b"AB")
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=FAST) as ring:
        p = ring.producer()
        variants = [
            base + ([1.0, 2.0, 3.0], [[1, 2], [3, 4]]),
            base + ((1.0, 2.0, 3.0), ((1, 2), (3, 4))),
            base + (np.arange(1.0, 4.0), np.array([[1, 2], [3, 4]])),  # numpy: fallback
            tuple(np.int64(v) if isinstance(v, int) else v for v in base[:4]) + base[4:]
            + ([1.0, 2.0, 3.0], [[1, 2], [3, 4]]),
            base[:11] + ("AB",) + ([1.0, 2.0, 3.0], [[1, 2], [3, 4]]),  # str: numpy encodes
        ]
        want = np.array([variants[0]], FAST).tobytes()
        for v in variants:
            seq = p.publish(v)
            assert slot_bytes(ring, FAST, seq) == want, v
        record = np.array([variants[0]], FAST)[0]
        assert slot_bytes(ring, FAST, p.publish(record)) == want  # a numpy record
        assert slot_bytes(ring, FAST, p.publish(want)) == want    # its bytes
        # Bytes longer than the field are cut, as numpy (and publish_batch) does.
        long = base[:11] + (b"AB\0\0\0\0TOO LONG",) + ([1.0, 2.0, 3.0], [[1, 2], [3, 4]])
        assert slot_bytes(ring, FAST, p.publish(long)) == want
        before = p.cursor
        for bad in [base, base + ([1.0, 2.0], [[1, 2], [3, 4]]), (300,) + variants[0][1:],
                    "not a record"]:
            with pytest.raises(RecordError):
                p.publish(bad)
        assert p.cursor == before  # a refused record claims nothing
        p.close()
    # A dtype with a field the packer does not handle (datetime64): numpy packs every record.
    xdisruptor.Ring.remove(ring_name)
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=KINDS) as ring:
        p = ring.producer()
        record = base + ([1.0, 2.0, 3.0], [[1, 2], [3, 4]], np.datetime64(5, "ns"))
        assert slot_bytes(ring, KINDS, p.publish(record)) == np.array([record], KINDS).tobytes()
        p.close()


def test_should_publish_many_records_in_few_claims(ring_name):
    dtype = np.dtype([("seq", "<i8"), ("x", "<f8"), ("tag", "S4")])
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=dtype) as ring:
        consumer = ring.consumer("all")
        p = ring.producer()
        n = 1000  # far more than the ring: publish_many waits for room between claims
        import threading
        got = []
        reader = threading.Thread(target=lambda: got.extend(
            e for b in consumer.batches() for e in b.tolist()))
        reader.start()

        def records():
            for i in range(n):
                if i % 3 == 0:
                    yield (i, i * 0.5, b"t")
                elif i % 3 == 1:
                    yield np.array([(i, i * 0.5, b"t")], dtype)[0]
                else:
                    yield np.array([(i, i * 0.5, b"t")], dtype).tobytes()

        assert p.publish_many(records()) == n - 1
        p.close()
        reader.join(30)
        assert got == [(i, i * 0.5, b"t") for i in range(n)]
        consumer.close()


def test_should_publish_a_claim_whose_block_raised_and_check_n_before_entry(ring_name):
    dtype = np.dtype([("seq", "<i8")])
    with xdisruptor.Ring.create(ring_name, capacity=8, dtype=dtype) as ring:
        p = ring.producer()
        with pytest.raises(xdisruptor.InvalidArgumentError, match="n must be"):
            p.claim(9)  # more than the ring: refused at the call, nothing claimed
        assert ring.cursor == -1
        first = 0
        for n in (3, 4, 4):  # the third claim (7..10) wraps around the end: copied in on exit
            with pytest.raises(ZeroDivisionError):
                with p.claim(n) as view:
                    view["seq"] = np.arange(first, first + n)
                    1 / 0
            first += n
            assert ring.cursor == first - 1  # published all the same
        claim = p.claim(2)
        with claim as view:  # the object claims on entry: its slots are the next ones
            view["seq"] = [11, 12]
        assert ring.cursor == 12
        p.close()
