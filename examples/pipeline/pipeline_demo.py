"""The Python stages of the pipeline demo (demo.toml). Each gets whole batches as zero-copy
numpy views of the ring's slots (``on_batch``), so the per-event work runs in numpy, not in
the interpreter.

- :class:`Analytics`: rolling VWAP and volatility per symbol (exponentially weighted).
- :class:`Recorder`: writes every event to a .npy file (check_recording.py reads it back).
"""

from __future__ import annotations

import os
import time
from typing import BinaryIO, Optional

import numpy as np

SYMBOLS = 32


class Analytics:
    """Per symbol: VWAP of the mid price weighted by size, and the volatility of log returns
    of the mid, both over a window of about ``window`` ticks of that symbol."""

    def __init__(self, window: int = 500, report_every: float = 5.0):
        self.decay = 1.0 - 1.0 / float(window)
        self.report_every = float(report_every)
        self.pv = np.zeros(SYMBOLS)       # decayed sum of mid * size
        self.volume = np.zeros(SYMBOLS)   # decayed sum of size
        self.var = np.zeros(SYMBOLS)      # decayed mean of squared log returns
        self.last_mid = np.full(SYMBOLS, np.nan)
        self.names = [b""] * SYMBOLS
        self.events = 0
        self.batches = 0
        self.largest = 0
        self.deepest = 0
        self.next_report = time.monotonic() + self.report_every

    def on_batch_start(self, size: int, queue_depth: int) -> None:
        self.largest = max(self.largest, size)
        self.deepest = max(self.deepest, queue_depth)

    def on_batch(self, ticks: np.ndarray, first_sequence: int) -> None:
        ids = ticks["symbol_id"]
        mid = ticks["mid"]
        counts = np.bincount(ids, minlength=SYMBOLS)
        decay = self.decay ** counts
        self.pv = self.pv * decay + np.bincount(ids, weights=mid * ticks["size"],
                                                minlength=SYMBOLS)
        self.volume = self.volume * decay + np.bincount(ids, weights=ticks["size"],
                                                        minlength=SYMBOLS)
        # Log returns per symbol: order the batch by symbol (stable: time order kept within
        # each), difference neighbours of the same symbol, and chain on from the last batch.
        order = np.argsort(ids, kind="stable")
        sid, smid = ids[order], np.log(mid[order])
        returns = np.diff(smid)
        same = sid[1:] == sid[:-1]
        sq = np.bincount(sid[1:][same], weights=returns[same] ** 2, minlength=SYMBOLS)
        n = np.bincount(sid[1:][same], minlength=SYMBOLS).astype(float)
        firsts = np.flatnonzero(np.r_[True, ~same])
        prev = np.log(self.last_mid[sid[firsts]])
        link = smid[firsts] - prev
        ok = ~np.isnan(link)
        np.add.at(sq, sid[firsts][ok], link[ok] ** 2)
        np.add.at(n, sid[firsts][ok], 1.0)
        lasts = np.r_[firsts[1:] - 1, len(sid) - 1]
        self.last_mid[sid[lasts]] = mid[order][lasts]
        w = 1.0 - self.decay ** n
        with np.errstate(invalid="ignore", divide="ignore"):
            self.var = np.where(n > 0, self.var * (1 - w) + w * sq / np.maximum(n, 1), self.var)
        for i in np.flatnonzero(counts)[:SYMBOLS]:
            if not self.names[i]:
                self.names[i] = ticks["symbol"][np.argmax(ids == i)]
        self.events += len(ticks)
        self.batches += 1
        if time.monotonic() >= self.next_report:
            self.next_report += self.report_every
            print(self.report(3), flush=True)

    def report(self, top: int) -> str:
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = self.pv / self.volume
        vol = np.sqrt(self.var)
        busiest = np.argsort(-self.volume)[:top]
        parts = [f"{self.names[i].decode() or i}: VWAP {vwap[i]:.2f}, vol {vol[i] * 1e4:.1f} bp"
                 for i in busiest]
        return f"analytics: {self.events:,} ticks; " + "; ".join(parts)

    def on_shutdown(self) -> None:
        print(f"analytics: {self.events:,} ticks in {self.batches:,} numpy batches (largest "
              f"{self.largest}, deepest queue {self.deepest}); " +
              self.report(5).split("; ", 1)[1],
              flush=True)


class Recorder:
    """Writes every event to ``path`` as a .npy file of the ring's dtype. The header is
    written first with room to spare and rewritten with the final count at the end."""

    HEADER = 256  # bytes reserved for the .npy header

    def __init__(self, path: str):
        self.path = path
        self.file: Optional[BinaryIO] = None
        self.dtype: Optional[np.dtype] = None
        self.events = 0

    def _header(self, count: int) -> bytes:
        assert self.dtype is not None  # known from the first batch
        text = (f"{{'descr': {np.lib.format.dtype_to_descr(self.dtype)!r}, "
                f"'fortran_order': False, 'shape': ({count},), }}")
        magic = b"\x93NUMPY\x01\x00"
        body = text.encode("latin1")
        pad = self.HEADER - len(magic) - 2 - len(body) - 1
        if pad < 0:
            raise ValueError("the dtype's description does not fit the .npy header")
        body += b" " * pad + b"\n"
        return magic + len(body).to_bytes(2, "little") + body

    def on_batch(self, ticks: np.ndarray, first_sequence: int) -> None:
        if self.file is None:
            self.dtype = ticks.dtype
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self.file = open(self.path, "wb")
            self.file.write(self._header(0))
        self.file.write(ticks.tobytes())
        self.events += len(ticks)

    def on_shutdown(self) -> None:
        if self.file is None:
            return
        self.file.seek(0)
        self.file.write(self._header(self.events))
        self.file.close()
        print(f"recorder: {self.events:,} ticks written to {self.path}", flush=True)
