#!/usr/bin/env python3
"""One Python benchmark run: a producer and one Python consumer of 64-byte events, through
xdisruptor or a peer, per event or per batch; prints one JSON line. bench/run alternates the
implementations run by run.

    python bench/python_peers.py --impl iceoryx2 --mode batch --events 1000000

Producers: the "-py" rows take a Python producer process (iceoryx2, faster-fifo and
multiprocessing.Queue exist only in Python here); zmq-cpp a C++ PUSH program. (The C++
producer -> Python consumer rows of xdisruptor and of the naive ctypes ring come from
bench/python_consumer.py.) The consumer checks every
event: per event its sequence and tag word; per batch every event's sequence and tag word
against the expected ones, so a lost, repeated or torn event fails the run.

Per event, every Python producer makes its events 256 at a time (one numpy array) and sends
each event's 64 bytes (a bytes object) with one call; xdisruptor with --records tuples publishes
a tuple of the 8 fields instead (ndarray.tolist(), which costs more than the publish). With
--prebuilt every event is made before the clock starts (per event: a list of every event's
bytes or tuple), so the figure is the transport's alone.

Implementations (--impl) and what per event / per batch mean for each:
  xdisruptor-py   Python producer (publish / publish_batch of 256); the consumer reads the
                  two words it checks (consumer.values; with --records tuples it iterates
                  whole tuples) / takes numpy batches
  zmq-cpp         C++ PUSH, pyzmq PULL, one message per event (per event only; the consumer
                  reads the two words it checks with struct)
  zmq-py          pyzmq PUSH/PULL: a message per event, or per 256 events
  iceoryx2-py     iceoryx2 publish-subscribe (no overflow, blocking publisher): a sample per
                  event, or a sample of 256 events
  faster-fifo-py  faster_fifo.Queue: put/get per event, or put_many/get_many of 256
  mpqueue-py      multiprocessing.Queue: an item per event, or one bytes item of 256 events
"""

import argparse
import ctypes
import json
import mmap
import multiprocessing
import os
import pathlib
import struct
import subprocess
import sys
import time

# numpy's OpenBLAS starts a thread per core that spins for a while after numpy calls: on a
# 2-core machine it takes CPU from the other side of every transport alike. No BLAS here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

TAG = 0x9E3779B97F4A7C15
BATCH = 256
EVENT = np.dtype([("w", "<u8", (8,))])
FLAT = np.dtype([("sequence", "<u8"), ("w1", "<u8"), ("w2", "<u8"), ("w3", "<u8"),
                 ("w4", "<u8"), ("w5", "<u8"), ("w6", "<u8"), ("tag", "<u8")])


# Word j of event s is s * MUL[j] + ADD[j] (the sequence, then s * 31 + j), the tag s ^ TAG.
MUL = np.array([1, 31, 31, 31, 31, 31, 31, 0], dtype=np.uint64)
ADD = np.array([0, 1, 2, 3, 4, 5, 6, 0], dtype=np.uint64)


def _words(first, n):
    """Events first..first+n-1 as an (n, 8) array of words."""
    s = np.arange(first, first + n, dtype=np.uint64)
    words = s[:, None] * MUL + ADD
    np.bitwise_xor(s, np.uint64(TAG), out=words[:, 7])
    return words


# Events 0..255: a batch of 256 starting at `first` is these plus first * MUL, its tag column
# recomputed: no arange and no (256, 8) multiply per batch.
_BASE = _words(0, BATCH)
_OFFSETS = np.arange(BATCH, dtype=np.uint64)


def make_events(first, n):
    """Events first..first+n-1 in the layout of bench/zmq_producer.cc, as FLAT records: every
    Python producer pays this, alike, in its loop (timeit here, a batch of 256: ~45 ns per
    event, against 65-90 for _words; a field at a time took ~20 numpy calls)."""
    if n == BATCH:
        words = _BASE + np.uint64(first) * MUL
        words[:, 7] = (_OFFSETS + np.uint64(first)) ^ np.uint64(TAG)
    else:
        words = _words(first, n)
    return words.view(FLAT).reshape(n)


# With --prebuilt every event is made before the clock starts: one array for per-batch
# producers, each event's 64 bytes (or its tuple) for per-event ones.
PREBUILT = None
PREBUILT_EVENTS = None
_SPLITS = {}


def split_events(raw):
    """The 64-byte events of `raw` as separate bytes objects, in one C call (struct; slicing
    them one by one in a comprehension cost ~150 ns per event, more than a publish)."""
    n = len(raw) // 64
    split = _SPLITS.get(n)
    if split is None:
        split = _SPLITS[n] = struct.Struct("64s" * n)
    return split.unpack(raw)


def events_at(first, n):
    """The producer's events first..first+n-1: made now, or a slice of the prebuilt array."""
    if PREBUILT is not None:
        return PREBUILT[first:first + n]
    return make_events(first, n)


def event_items(first, n, tuples=False):
    """Per event: events first..first+n-1 (at most BATCH), each as its 64 bytes (a tuple of
    its fields with `tuples`: xdisruptor with --records tuples), made now or taken from the
    prebuilt list."""
    if PREBUILT_EVENTS is not None:
        return PREBUILT_EVENTS[first:first + n]
    if tuples:
        return make_events(first, n).tolist()
    return split_events(make_events(first, n).tobytes())


def prebuilt_items(events, tuples):
    """Every event's item, made before the clock starts."""
    return [item for lo in range(0, events, BATCH)
            for item in event_items(lo, min(BATCH, events - lo), tuples)]


class BatchCheck:
    """Checks batches of FLAT records arrive complete and in order: every event's sequence
    and tag word against the expected ones, computed before the clock starts."""

    def __init__(self, events):
        self.next = 0
        self.ok = True
        self.sequences = np.arange(events, dtype=np.uint64)
        self.tags = self.sequences ^ np.uint64(TAG)

    def check(self, arr):
        n = len(arr)
        if n == 0:
            return
        lo, hi = self.next, self.next + n
        # tobytes of a field gathers its words; comparing bytes is a memcmp (numpy's
        # array_equal with a uint64 scalar cost ~10 us per batch, more than the transports)
        if hi > len(self.sequences) or \
                arr["sequence"].tobytes() != self.sequences[lo:hi].tobytes() or \
                arr["tag"].tobytes() != self.tags[lo:hi].tobytes():
            self.ok = False
        self.next = hi


# ---------------------------------------------------------------- producers (Python side)
def py_producer(impl, mode, events, ready, go, arg):
    global PREBUILT, PREBUILT_EVENTS
    if PREBUILD and mode == "batch":
        PREBUILT = make_events(0, events)
    elif PREBUILD:
        PREBUILT_EVENTS = prebuilt_items(events, TUPLES and impl == "xdisruptor-py")
    if impl == "xdisruptor-py":
        import xdisruptor
        ring = xdisruptor.Ring.attach(arg)
        while not ring.consumers():
            time.sleep(0.001)
        with ring.producer(wait="yielding") as producer:
            ready.set()
            go.wait()
            if mode == "batch":
                for lo in range(0, events, BATCH):
                    producer.publish_batch(events_at(lo, min(BATCH, events - lo)))
            else:  # each event as its 64 bytes, as every peer below gets it (or a tuple)
                publish = producer.publish
                for lo in range(0, events, BATCH):
                    for item in event_items(lo, min(BATCH, events - lo), tuples=TUPLES):
                        publish(item)
        ring.close()
    elif impl == "zmq-py":
        import zmq
        ctx = zmq.Context()
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, 65536)
        s.connect(arg)
        ready.set()
        go.wait()
        send = s.send
        for lo in range(0, events, BATCH):
            if mode == "batch":
                send(events_at(lo, min(BATCH, events - lo)).tobytes(), copy=False)
            else:
                for item in event_items(lo, min(BATCH, events - lo)):
                    send(item)
        s.close(linger=-1)
        ctx.term()
    elif impl == "iceoryx2-py":
        import iceoryx2 as iox2
        node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
        service = _iox_service(node, arg, mode)
        publisher = (service.publisher_builder()
                     .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered).create())
        payload = _iox_type(mode)
        while service.dynamic_config.number_of_subscribers < 1:
            time.sleep(0.001)
        ready.set()
        go.wait()
        for lo in range(0, events, BATCH):
            if mode == "batch":
                chunk = events_at(lo, min(BATCH, events - lo))
                sample = publisher.loan_uninit()
                raw = len(chunk).to_bytes(8, "little").ljust(64, b"\0") + chunk.tobytes()
                buf = payload.from_buffer_copy(raw.ljust(ctypes.sizeof(payload), b"\0"))
                sample = sample.write_payload(buf)
                sample.send()
            else:
                for item in event_items(lo, min(BATCH, events - lo)):
                    sample = publisher.loan_uninit()
                    sample = sample.write_payload(payload.from_buffer_copy(item))
                    sample.send()
    elif impl in ("faster-fifo-py", "mpqueue-py"):
        q = arg
        ready.set()
        go.wait()
        for lo in range(0, events, BATCH):
            if mode == "batch":
                raw = events_at(lo, min(BATCH, events - lo)).tobytes()
                if impl == "faster-fifo-py":
                    q.put_many([raw[i:i + 64] for i in range(0, len(raw), 64)], timeout=60)
                else:
                    q.put(raw)
            else:
                for item in event_items(lo, min(BATCH, events - lo)):
                    q.put(item, timeout=60) if impl == "faster-fifo-py" else q.put(item)


class IoxEvent(ctypes.Structure):
    _fields_ = [("w", ctypes.c_uint64 * 8)]


class IoxBatch(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint64), ("pad", ctypes.c_uint64 * 7),
                ("events", IoxEvent * BATCH)]


def _iox_type(mode):
    return IoxBatch if mode == "batch" else IoxEvent


def _iox_service(node, name, mode):
    import iceoryx2 as iox2
    return (node.service_builder(iox2.ServiceName.new(name))
            .publish_subscribe(_iox_type(mode))
            .enable_safe_overflow(False)
            .subscriber_max_buffer_size(1024)
            .open_or_create())


# ---------------------------------------------------------------------- the consumer
def run(impl, mode, events, build):
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    name = f"xdbench-{impl}-{os.getpid()}"
    check = BatchCheck(events)
    expected = 0
    procs = []
    cleanup = []
    if impl == "xdisruptor-py":
        import xdisruptor
        ring = xdisruptor.Ring.create(name, capacity=65536, dtype=FLAT)
        cleanup.append(lambda: (ring.close(), xdisruptor.Ring.remove(name)))
        consumer = ring.consumer("bench", wait=WAIT)
        procs.append(ctx.Process(target=py_producer, args=(impl, mode, events, ready, go, name)))
        procs[-1].start()
        ready.wait()
        go.set()
        start = time.perf_counter()
        if mode == "batch":
            for batch in consumer.batches():
                check.check(batch)
        elif RECORDS == "tuples":
            for rec in consumer:
                if rec[0] != expected or rec[7] != rec[0] ^ TAG:
                    check.ok = False
                expected += 1
            check.next = expected
        else:  # the two words checked, as pyzmq's consumer reads them with struct
            for first, tag in consumer.values("sequence", "tag"):
                if first != expected or tag != expected ^ TAG:
                    check.ok = False
                expected += 1
            check.next = expected
        consumer.close()
    elif impl in ("zmq-py", "zmq-cpp"):
        import zmq
        endpoint = f"ipc:///tmp/{name}"
        zctx = zmq.Context()
        s = zctx.socket(zmq.PULL)
        s.setsockopt(zmq.RCVHWM, 65536)
        s.bind(endpoint)
        cleanup.append(lambda: (s.close(linger=0), zctx.term()))
        if impl == "zmq-py":
            procs.append(ctx.Process(target=py_producer,
                                     args=(impl, mode, events, ready, go, endpoint)))
            procs[-1].start()
            ready.wait()
            go.set()
        else:
            cpp = subprocess.Popen([str(build / "bench/xdisruptor_bench_zmq_producer"),
                                    endpoint, str(events)])
            cleanup.append(lambda: cpp.wait(60))
        start = time.perf_counter()
        if mode == "batch":
            while check.next < events:
                check.check(np.frombuffer(s.recv(copy=False), dtype=FLAT))
        else:
            recv = s.recv
            unpack = struct.Struct("<Q48xQ").unpack  # the two words checked: its cheapest read
            while expected < events:
                first, tag = unpack(recv())
                if first != expected or tag != expected ^ TAG:
                    check.ok = False
                expected += 1
            check.next = expected
    elif impl == "iceoryx2-py":
        import iceoryx2 as iox2
        node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
        service = _iox_service(node, name, mode)
        subscriber = service.subscriber_builder().create()
        procs.append(ctx.Process(target=py_producer, args=(impl, mode, events, ready, go, name)))
        procs[-1].start()
        ready.wait()
        go.set()
        start = time.perf_counter()
        receive = subscriber.receive
        while check.next < events and check.ok:
            sample = receive()
            if sample is None:
                continue  # polling: iceoryx2's subscriber has no blocking receive
            if mode == "batch":
                data = sample.payload().contents
                check.check(np.frombuffer(data.events, dtype=FLAT, count=int(data.count)))
            else:
                w = sample.payload().contents.w
                if w[0] != check.next or w[7] != check.next ^ TAG:
                    check.ok = False
                check.next += 1
            del sample
    elif impl in ("faster-fifo-py", "mpqueue-py"):
        if impl == "faster-fifo-py":
            import faster_fifo
            q = faster_fifo.Queue(max_size_bytes=64 * 1024 * 1024)
        else:
            q = ctx.Queue(maxsize=65536)
        procs.append(ctx.Process(target=py_producer, args=(impl, mode, events, ready, go, q)))
        procs[-1].start()
        ready.wait()
        go.set()
        start = time.perf_counter()
        while check.next < events:
            if impl == "faster-fifo-py":
                items = q.get_many(max_messages_to_get=BATCH, timeout=60) if mode == "batch" \
                    else [q.get(timeout=60)]
                check.check(np.frombuffer(b"".join(items), dtype=FLAT))
            else:
                check.check(np.frombuffer(q.get(), dtype=FLAT))
    else:
        raise SystemExit(f"unknown --impl {impl}")
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join(60)
    for c in cleanup:
        c()
    ok = check.ok and check.next == events and all(p.exitcode == 0 for p in procs)
    if not ok:
        print(f"{impl}/{mode}: check {'passed' if check.ok else 'FAILED'} at event "
              f"{check.next} of {events}; producer exit codes "
              f"{[p.exitcode for p in procs]}", file=sys.stderr)
    return elapsed, ok


WAIT = "yielding"
RECORDS = "bytes"
TUPLES = False  # xdisruptor per event with --records tuples
PREBUILD = False


def main():
    global WAIT, RECORDS, TUPLES, PREBUILD
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--mode", choices=("event", "batch"), default="batch")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--wait", default="yielding", help="xdisruptor consumer wait")
    parser.add_argument("--build", default="build/release", type=pathlib.Path)
    parser.add_argument("--records", choices=("bytes", "tuples"), default="bytes",
                        help="xdisruptor per event: publish each event's 64 bytes (as every "
                        "peer sends them) and read the two checked fields, or publish a tuple "
                        "of its fields (ndarray.tolist()) and iterate whole tuples")
    parser.add_argument("--prebuilt", action="store_true",
                        help="Python producers make every event before the clock starts (per "
                        "batch one structured array they send slices of, per event a list of "
                        "every event's bytes): the transport alone")
    args = parser.parse_args()
    WAIT = args.wait
    RECORDS = args.records
    TUPLES = RECORDS == "tuples"
    PREBUILD = args.prebuilt
    elapsed, ok = run(args.impl, args.mode, args.events, args.build)
    print(json.dumps({"impl": args.impl, "mode": args.mode, "wait": args.wait,
                      "records": args.records, "prebuilt": args.prebuilt,
                      "events": args.events, "seconds": elapsed,
                      "events_per_s": args.events / elapsed if ok else 0.0, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
