"""Every error a user can provoke is an xdisruptor.Error subclass with the cause in words."""

import numpy as np
import pytest

import xdisruptor
from xdisruptor import errors

DT = np.dtype([("seq", "<i8"), ("price", "<f8")])


def test_should_raise_ring_not_found_when_the_ring_is_missing(ring_name):
    with pytest.raises(errors.RingNotFoundError, match=ring_name):
        xdisruptor.Ring.attach(ring_name)
    with pytest.raises(errors.RingNotFoundError):
        xdisruptor.Ring.remove(ring_name)
    assert issubclass(errors.RingNotFoundError, FileNotFoundError)


def test_should_raise_ring_exists_when_the_name_is_taken(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=DT):
        with pytest.raises(errors.RingExistsError, match="already exists"):
            xdisruptor.Ring.create(ring_name, dtype=DT)


def test_should_raise_schema_mismatch_when_attaching_with_another_dtype(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=DT):
        with pytest.raises(errors.SchemaMismatchError, match="carries events"):
            xdisruptor.Ring.attach(ring_name, dtype=[("seq", "<i8"), ("price", "<f4")])


@pytest.mark.parametrize("dtype", [[("o", "O")], [("s", "U")], [("n", [("a", "<i4")])], "<i8"])
def test_should_raise_dtype_error_when_the_dtype_is_bad(ring_name, dtype):
    with pytest.raises(errors.DTypeError):
        xdisruptor.Ring.create(ring_name, dtype=dtype)


def test_should_raise_name_taken_when_a_live_consumer_has_the_name(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=DT) as ring, ring.consumer("dup"):
        with pytest.raises(errors.NameTakenError, match="live process"):
            ring.consumer("dup")


@pytest.mark.parametrize("record", [(1,), (1, 2.0, 3), b"short", "text", [[1, 2]]])
def test_should_raise_record_error_when_the_record_has_the_wrong_shape(ring_name, record):
    with xdisruptor.Ring.create(ring_name, dtype=DT) as ring, ring.producer() as producer:
        with pytest.raises(errors.RecordError):
            producer.publish(record)
        with pytest.raises(errors.RecordError):
            producer.publish_batch(np.zeros(3, dtype=[("a", "<i4")]))
        assert producer.cursor == -1  # nothing was claimed or published


@pytest.mark.parametrize("kwargs, error", [
    ({"capacity": 1000}, errors.InvalidArgumentError),
    ({"capacity": 0}, errors.InvalidArgumentError),
    ({"slot_size": 12}, errors.InvalidArgumentError),
    ({"slot_size": 8}, errors.InvalidArgumentError),
])
def test_should_raise_invalid_argument_when_ring_options_are_bad(ring_name, kwargs, error):
    with pytest.raises(error):
        xdisruptor.Ring.create(ring_name, dtype=DT, **kwargs)


def test_should_raise_invalid_argument_when_the_ring_name_is_bad():
    with pytest.raises(errors.InvalidArgumentError, match="letters, digits"):
        xdisruptor.Ring.create("no/slashes", dtype=DT)


def test_should_raise_state_error_for_a_second_producer(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=DT) as ring, ring.producer():
        with pytest.raises(errors.StateError, match="live producer"):
            ring.producer()


def test_should_raise_on_bad_consumer_options(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=DT) as ring:
        with pytest.raises(errors.ConsumerNotFoundError, match="start the upstream"):
            ring.consumer("late", after=["nobody"])
        with pytest.raises(errors.InvalidArgumentError, match="unknown wait strategy"):
            ring.consumer("c", wait="snoozing")
        with pytest.raises(errors.InvalidArgumentError, match="unknown wait parameter"):
            ring.consumer("c", wait="blocking", nap=3)
        with pytest.raises(errors.InvalidArgumentError, match="needs a timeout"):
            ring.consumer("c", wait="timeout-blocking")


def test_should_raise_state_error_when_using_a_closed_object(ring_name):
    ring = xdisruptor.Ring.create(ring_name, dtype=DT)
    consumer = ring.consumer("c")
    consumer.close()
    with pytest.raises(errors.StateError, match="left the ring"):
        next(iter(consumer))
    ring.close()
    with pytest.raises(errors.StateError, match="closed"):
        ring.capacity


def test_should_raise_upstream_gone_when_the_upstream_leaves(ring_name):
    with xdisruptor.Ring.create(ring_name, dtype=DT) as ring:
        up = ring.consumer("up")
        down = ring.consumer("down", after=["up"])
        with ring.producer() as producer:
            producer.publish((0, 1.0))
            up.close()
            with pytest.raises(errors.UpstreamGoneError, match="runs after"):
                next(iter(down))
        down.close()


def test_should_derive_every_error_from_the_package_error():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.Error)
