"""xdisruptor: the LMAX Disruptor across processes and languages.

One producer publishes fixed-size events (a numpy structured dtype) into a ring in shared
memory; any number of named consumers, in Python or C++ processes, read the same stream::

    import numpy as np, xdisruptor

    tick = np.dtype([("seq", "<i8"), ("price", "<f8"), ("symbol", "S8")])
    with xdisruptor.Ring.create("ticks", capacity=65536, dtype=tick) as ring:
        with ring.consumer("printer") as consumer, ring.producer() as producer:
            producer.publish((0, 101.5, b"AAPL"))
            producer.close()            # end of stream
            for seq, price, symbol in consumer:
                print(seq, price, symbol)

See :class:`Ring`, :class:`Producer`, :class:`Consumer` and :mod:`xdisruptor.errors`.
"""

from . import errors
from ._arrow import to_arrow, to_pandas
from ._dtype import dtype_to_schema, schema_to_dtype
from ._handling import AlwaysRewind, NeverRewind, RewindUpTo
from ._journal import Journal, JournalRecorder
from ._ring import Consumer, Producer, Ring
from ._vocabulary import ERROR_POLICIES, STALL_POLICIES, WAIT_PARAMS, WAIT_STRATEGIES, WaitStatus
from .errors import (AlreadyExistsError, ConsumerNotFoundError, Error, CorruptJournalError,
                     CorruptRingError, DTypeError, EvictedError, HandlerError,
                     InvalidArgumentError, LappedError, MissedEventsError, NameTakenError,
                     NotFoundError, PermissionDeniedError, ProducerGoneError,
                     ProducerStalledError, RecordError, RewindableError, RingExistsError,
                     RingNotFoundError, SchemaMismatchError, StateError, TableFullError,
                     TimeoutError, UnavailableError, UpstreamGoneError)

__version__ = "0.1.0"

__all__ = ["Ring", "Producer", "Consumer", "Journal", "JournalRecorder", "WaitStatus",
           "AlwaysRewind", "RewindUpTo",
           "NeverRewind", "WAIT_STRATEGIES", "WAIT_PARAMS",
           "STALL_POLICIES", "ERROR_POLICIES", "dtype_to_schema", "schema_to_dtype", "errors",
           "to_arrow", "to_pandas",
           "__version__"]
__all__ += ["AlreadyExistsError", "ConsumerNotFoundError", "Error", "CorruptJournalError",
            "CorruptRingError", "DTypeError", "EvictedError", "HandlerError",
            "InvalidArgumentError", "LappedError", "MissedEventsError", "NameTakenError",
            "NotFoundError", "PermissionDeniedError", "ProducerGoneError",
            "ProducerStalledError", "RecordError", "RewindableError", "RingExistsError",
            "RingNotFoundError", "SchemaMismatchError", "StateError", "TableFullError",
            "TimeoutError", "UnavailableError", "UpstreamGoneError"]
