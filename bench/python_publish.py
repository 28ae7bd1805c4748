#!/usr/bin/env python3
"""The Python per-record paths alone, in one process: Producer.publish of a tuple and of one
record's bytes, publish_batch of 1 and of 256 records of a prebuilt array, a consumer's tuples
and its values of two fields (TupleReader), each beside a len() call as the floor of a
Python loop calling a builtin. 64-byte records of eight u64 fields (bench/python_peers.py's
FLAT), 256 records reused so they stay in cache; medians of --runs.

    python bench/python_publish.py --runs 5
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see python_peers.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_peers import FLAT, make_events  # noqa: E402

import xdisruptor  # noqa: E402

CHUNK = 256


def timed(loops, body):
    start = time.perf_counter()
    for _ in range(loops):
        body()
    return (time.perf_counter() - start) / (loops * CHUNK) * 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loops", type=int, default=2000, help="chunks of 256 per run")
    args = parser.parse_args()
    name = f"xdbench-publish-{os.getpid()}"
    ring = xdisruptor.Ring.create(name, capacity=1 << 17, dtype=FLAT)
    records = make_events(1 << 40, CHUNK).tolist()  # wide ints, as a real stream has
    raw = make_events(1 << 40, CHUNK).tobytes()
    byte_records = [raw[i:i + 64] for i in range(0, len(raw), 64)]
    prebuilt = make_events(1 << 40, CHUNK)
    results = {"len() of a tuple (floor)": [], "publish(tuple)": [], "publish(bytes)": [],
               "publish_batch of 1 (per call)": [], "publish_batch of 256 (per record)": [],
               "consumer tuples (reader, 256 a call)": [],
               "consumer values of 2 fields (256 a call)": []}
    try:
        for _ in range(args.runs):
            for label, items in (("len() of a tuple (floor)", records),
                                 ("publish(tuple)", records), ("publish(bytes)", byte_records)):
                consumer = ring.consumer("gate")  # rejoins at the cursor: room for the run
                with ring.producer() as producer:
                    call = len if label.startswith("len") else producer.publish
                    loops = min(args.loops, (ring.capacity // CHUNK) - 1)

                    def body(items=items, call=call):
                        for x in items:
                            call(x)
                    results[label].append(timed(loops, body))
                consumer.close()
            for label, size in (("publish_batch of 1 (per call)", 1),
                                ("publish_batch of 256 (per record)", CHUNK)):
                consumer = ring.consumer("gate")
                with ring.producer() as producer:
                    loops = min(args.loops, (ring.capacity // CHUNK) - 1)
                    arrays = [prebuilt[i:i + size] for i in range(0, CHUNK, size)]

                    def batch_body(arrays=arrays, call=producer.publish_batch):
                        for a in arrays:
                            call(a)
                    per = timed(loops, batch_body)  # per record (= per call of 1)
                    results[label].append(per)
                consumer.close()
            reader = ring._raw.tuple_reader(xdisruptor._ring._tuple_fields(FLAT))
            results["consumer tuples (reader, 256 a call)"].append(
                timed(args.loops, lambda: reader(0, CHUNK)))
            two = ring._raw.tuple_reader(xdisruptor._ring._tuple_fields(FLAT, ("sequence", "tag")))
            results["consumer values of 2 fields (256 a call)"].append(
                timed(args.loops, lambda: two(0, CHUNK)))
    finally:
        ring.close()
        xdisruptor.Ring.remove(name)
    for label, v in results.items():
        print(f"{label:40s} {statistics.median(v):7.1f} ns per record "
              f"({min(v):.1f}..{max(v):.1f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
