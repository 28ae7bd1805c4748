"""Handlers the pipeline tests run as Python stages (imported by module:attribute)."""

import json
import os
import signal

import numpy as np


class CheckEnriched:
    """Checks every tick: contiguous sequences from the first, and mid/spread filled in by an
    upstream stage (C++ or Python). Any failure raises (policy stop: the stage fails)."""

    def __init__(self, result: str = ""):
        self.result = result
        self.first = None
        self.next = None
        self.events = 0

    def on_batch(self, ticks, first):
        if self.first is None:
            self.first = self.next = first
        if first != self.next:
            raise AssertionError(f"gap: expected {self.next}, got {first}")
        seq = ticks["sequence"]
        if not np.array_equal(seq, np.arange(first, first + len(ticks))):
            raise AssertionError(f"wrong sequences in batch at {first}")
        if not np.array_equal(ticks["mid"], (ticks["bid"] + ticks["ask"]) / 2) or \
                not np.array_equal(ticks["spread"], ticks["ask"] - ticks["bid"]):
            raise AssertionError(f"batch at {first}: the upstream change is missing")
        self.next = first + len(ticks)
        self.events += len(ticks)

    def on_shutdown(self):
        if self.result:
            with open(self.result, "w") as f:
                json.dump({"first": self.first, "events": self.events}, f)


class Enrich:
    """A Python stage that changes ticks in place (writable), for stages after it."""

    def on_batch(self, ticks, first):
        ticks["mid"] = (ticks["bid"] + ticks["ask"]) / 2
        ticks["spread"] = ticks["ask"] - ticks["bid"]


class FailOn:
    """Raises ValueError on event `at` (the first `times` times it sees it; -1: always), a
    RewindableError when `rewindable`, exits with code 3 there when `die`, or SIGKILLs its
    own process when `kill`. With `once` (a file), only while that file does not exist (it is
    made then): a restarted stage goes on."""

    def __init__(self, at: int = 100, times: int = -1, die: bool = False,
                 rewindable: bool = False, kill: bool = False, once: str = ""):
        self.at, self.times, self.die, self.rewindable = at, times, die, rewindable
        self.kill, self.once = kill, once
        self.seen = 0

    def on_event(self, tick, sequence, end_of_batch):
        if sequence == self.at:
            if self.once:
                try:
                    os.close(os.open(self.once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    self.seen += 1
                    return
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.die:
                os._exit(3)
            if self.times != 0:
                self.times -= 1
                if self.rewindable:
                    from xdisruptor import RewindableError
                    raise RewindableError(f"cannot handle tick {sequence} yet")
                raise ValueError(f"cannot handle tick {sequence}")
        self.seen += 1


def count(tick, sequence, end_of_batch):
    """A plain function handler."""


class Slow:
    """Sleeps `seconds` per batch: a stage that cannot keep up. With `result`, writes the
    largest batch it was handed there at the end."""

    def __init__(self, seconds: float = 0.05, result: str = ""):
        self.seconds, self.result, self.largest = seconds, result, 0

    def on_batch(self, ticks, first):
        import time
        self.largest = max(self.largest, len(ticks))
        time.sleep(self.seconds)

    def on_shutdown(self):
        if self.result:
            with open(self.result, "w") as f:
                json.dump({"largest": self.largest}, f)
