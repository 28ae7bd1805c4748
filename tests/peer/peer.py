#!/usr/bin/env python3
"""The Python twin of xdisruptor_test_peer (peer.cc): the same modes, flags, output and exit
codes, so a test can run any role in either language.

    peer.py produce --ring=R [--create --capacity=C --multi] [--events=N | --until=N]
                    [--batch=B] [--rate=E] [--consumers=K] [--noclose] [--spawn=NAME --log=F]
                    [--stall] [--wait=yielding]
    peer.py chaos-consume --ring=R --name=X --log=F [--policy=evict] [--after=A,B]
                    [--max_lag=N --max_lag_s=S] [--slow_ms=M]

produce prints "ready" once attached (then "child PID" for --spawn, "stalled" for --stall),
publishes PeerEvents (every field derives from the sequence) and closes the stream.
chaos-consume logs "E first last" per batch before releasing it, "G told joined" and "M total"
when it rejoined after an eviction, skips on restart what its log has, and exits 0 when the
stream ended, 3 evicted while alive, 4 upstream gone, 5 producer stalled, 1 bad events.
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

PEER_DTYPE = np.dtype([("sequence", "<i8"), ("value", "<i8"), ("price", "<f8"),
                       ("mark", "<u8"), ("text", "S32")])


def peer_events(first, count):
    seq = np.arange(first, first + count, dtype=np.int64)
    out = np.zeros(count, dtype=PEER_DTYPE)
    out["sequence"] = seq
    out["value"] = seq * 3 + 1
    out["price"] = seq * 0.5
    out["text"] = np.char.encode(np.char.add("event ", seq.astype(str)), "ascii")
    return out


def check_events(batch):
    s = batch["sequence"]
    return (np.array_equal(s, np.arange(s[0], s[0] + len(s)))
            and np.array_equal(batch["value"], s * 3 + 1)
            and np.array_equal(batch["price"], s * 0.5)
            and np.array_equal(batch["text"], peer_events(int(s[0]), len(s))["text"]))


def produce(args):
    import xdisruptor
    if args.create:
        ring = xdisruptor.Ring.create(args.ring, capacity=args.capacity, dtype=PEER_DTYPE,
                                      producers="multi" if args.multi else "single")
    else:
        ring = xdisruptor.Ring.attach(args.ring, dtype=PEER_DTYPE)
    if args.spawn:
        child = subprocess.Popen([sys.executable, __file__, "chaos-consume", f"--ring={args.ring}",
                                  f"--name={args.spawn}", f"--log={args.log}", "--policy=evict"],
                                 stdout=subprocess.DEVNULL)
        print(f"child {child.pid}", flush=True)  # never reaped: the tests make a zombie of it
    try:
        producer = ring.producer(wait=args.wait)
    except xdisruptor.Error as e:
        print(f"peer: {e}", file=sys.stderr)
        return 2
    print("ready", flush=True)
    while len(ring.consumers()) < args.consumers:
        time.sleep(0.001)
    if args.stall:
        with producer.claim(args.batch):
            print("stalled", flush=True)
            while True:
                time.sleep(3600)
    events = args.events if args.until <= 0 else args.until - (ring.cursor + 1)
    start = time.monotonic()
    done = 0
    while done < events:
        n = min(args.batch, events - done)
        if args.rate > 0:
            due = start + done / args.rate
            while time.monotonic() < due:
                time.sleep(0.0001)
        first = producer.cursor + 1  # (the only producer of the ring in these tests)
        with producer.claim(n) as slots:
            slots[:] = peer_events(first, n)
        done += n
    producer.close(end_stream=args.close)
    return 0


def evicted(ring, name):
    return any(c["name"] == name and c["state"] == "evicted" for c in ring.stats()["consumers"])


def chaos_consume(args):
    import xdisruptor
    last_logged, missed_before = -1, 0
    if os.path.exists(args.log):
        for line in open(args.log):
            kind, *rest = line.split()
            if kind == "E":
                last_logged = int(rest[1])
            elif kind == "M":
                missed_before = int(rest[0])
    ring = xdisruptor.Ring.attach(args.ring, dtype=PEER_DTYPE)
    try:
        consumer = ring.consumer(args.name, wait="blocking", stall_policy=args.policy,
                                 rejoin_at_cursor=args.policy == "evict",
                                 after=[a for a in args.after.split(",") if a],
                                 max_lag=args.max_lag, max_lag_s=args.max_lag_s)
    except xdisruptor.Error as e:
        print(f"peer: {e}", file=sys.stderr)
        return 2
    log = open(args.log, "a")
    if consumer.missed > missed_before:
        log.write(f"G {consumer.missed - missed_before} {consumer.sequence}\nM {consumer.missed}\n")
        log.flush()
        last_logged = max(last_logged, consumer.sequence)
    print("ready", flush=True)
    while True:
        try:
            for batch in consumer.batches():
                if args.slow_ms:
                    time.sleep(args.slow_ms / 1000)
                new = batch[batch["sequence"] > last_logged]
                if len(new):
                    if not check_events(new):
                        if evicted(ring, args.name):  # the batch in hand may be overwritten
                            print(f"peer: {args.name} evicted while alive", file=sys.stderr)
                            return 3
                        print(f"{args.name}: bad event content", file=sys.stderr)
                        return 1
                    log.write(f"E {new['sequence'][0]} {new['sequence'][-1]}\n")
                    log.flush()
                    last_logged = int(new["sequence"][-1])
            return 0
        except xdisruptor.ProducerGoneError:
            time.sleep(0.02)  # a test restarts the producer
        except xdisruptor.EvictedError:
            print(f"peer: {args.name} evicted while alive", file=sys.stderr)
            return 3
        except xdisruptor.UpstreamGoneError:
            return 4
        except xdisruptor.ProducerStalledError:
            return 5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["produce", "chaos-consume"])
    parser.add_argument("--ring", required=True)
    parser.add_argument("--name", default="py")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--until", type=int, default=0)
    parser.add_argument("--capacity", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--consumers", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--create", action="store_true")
    parser.add_argument("--multi", action="store_true")
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--noclose", dest="close", action="store_false")
    parser.add_argument("--spawn", default="")
    parser.add_argument("--wait", default="yielding")
    parser.add_argument("--policy", default="hold")
    parser.add_argument("--after", default="")
    parser.add_argument("--log", default="")
    parser.add_argument("--max_lag", type=int, default=0)
    parser.add_argument("--max_lag_s", type=float, default=0.0)
    parser.add_argument("--slow_ms", type=int, default=0)
    args = parser.parse_args(argv)
    return produce(args) if args.mode == "produce" else chaos_consume(args)


if __name__ == "__main__":
    sys.exit(main())
