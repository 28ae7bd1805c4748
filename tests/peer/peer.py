#!/usr/bin/env python3
"""The Python twin of xdisruptor_test_peer (peer.cc): the same modes, flags, output and exit
codes, so a test can run any role in either language.

    peer.py produce --ring=R [--create --capacity=C --multi] [--events=N | --until=N]
                    [--batch=B] [--rate=E] [--consumers=K] [--noclose] [--spawn=NAME --log=F]
                    [--stall] [--wait=yielding]
    peer.py consume --ring=R --name=X --events=N [--after=A,B] [--wait=W]
                    [--start_at=S | --start_back=K] [--observer] [--journal=DIR]
    peer.py chaos-consume --ring=R --name=X --log=F [--policy=evict] [--after=A,B]
                    [--max_lag=N --max_lag_s=S] [--slow_ms=M]

produce prints "ready" once attached (then "child PID" for --spawn, "stalled" for --stall),
publishes PeerEvents (every field derives from the sequence) and closes the stream.
consume checks every event from where it joined (the cursor, or --start_at) and exits 0 only
if it saw them intact in order up to N, then the end of the stream; an --observer that was
lapped exits 6 if only the batch it was told about held damaged events (else 1).
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


def consume(args):
    import xdisruptor
    ring = xdisruptor.Ring.attach(args.ring, dtype=PEER_DTYPE)
    start_at = None if args.start_at < 0 else args.start_at
    if args.start_back >= 0:
        start_at = max(0, ring.minimum_gating_sequence + 1 - args.start_back)
    try:
        consumer = ring.consumer(args.name, wait=args.wait,
                                 after=[a for a in args.after.split(",") if a],
                                 start_at=start_at,
                                 gating=not args.observer, journal=args.journal or None)
    except xdisruptor.Error as e:
        print(f"peer: {e}", file=sys.stderr)
        return 2
    print("ready", flush=True)
    expected, bad, bad_unconfirmed, end = consumer.sequence + 1, 0, 0, "closed"
    try:
        for batch in consumer.batches():
            bad += bad_unconfirmed  # the batch before was released: it had to be intact
            s = batch["sequence"]
            good = len(s) and int(s[0]) == expected and check_events(batch)
            bad_unconfirmed = 0 if good else len(batch)
            expected += len(batch)
        bad += bad_unconfirmed
    except xdisruptor.LappedError:
        end = "lapped"  # the batch in hand may hold overwritten events, unless it was released
        if consumer.sequence >= expected - 1:  # told before the next batch: it was released
            bad, bad_unconfirmed = bad + bad_unconfirmed, 0
    print(f"consumed {expected} events, {bad + bad_unconfirmed} bad, end {end}", flush=True)
    if end == "lapped":
        return 6 if bad == 0 else 1
    return 0 if bad == 0 and expected == args.events else 1


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
    parser.add_argument("mode", choices=["produce", "consume", "chaos-consume"])
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
    parser.add_argument("--start_at", type=int, default=-1)
    parser.add_argument("--start_back", type=int, default=-1)
    parser.add_argument("--observer", action="store_true")
    parser.add_argument("--journal", default="")
    args = parser.parse_args(argv)
    return {"produce": produce, "consume": consume, "chaos-consume": chaos_consume}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
