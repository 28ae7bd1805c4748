"""The launcher's [journal] table as a stage program: records the ring into a journal directory
(the same recorder as `xdisruptor journal record`). Configured by its environment:
XDISRUPTOR_RING, XDISRUPTOR_STAGE (the recorder's consumer name), XDISRUPTOR_AFTER,
XDISRUPTOR_JOURNAL_DIR,
XDISRUPTOR_JOURNAL_FSYNC, XDISRUPTOR_JOURNAL_SEGMENT_BYTES, XDISRUPTOR_JOURNAL_RETAIN_BYTES,
XDISRUPTOR_JOURNAL_RETAIN_SECONDS. SIGTERM or SIGINT stop it after the batch in hand."""

from __future__ import annotations

import os
import signal
import sys
import time

from .._journal import JournalRecorder
from .._ring import Ring
from ..errors import Error, NotFoundError


def main() -> int:
    env = os.environ
    ring_name, name = env.get("XDISRUPTOR_RING", ""), env.get("XDISRUPTOR_STAGE", "journal")
    directory = env.get("XDISRUPTOR_JOURNAL_DIR", "")
    if not ring_name or not directory:
        print("record: XDISRUPTOR_RING and XDISRUPTOR_JOURNAL_DIR must be set", file=sys.stderr)
        return 2
    deadline = time.monotonic() + float(env.get("XDISRUPTOR_ATTACH_TIMEOUT", "10"))
    while True:
        try:
            ring = Ring.attach(ring_name)
            break
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    try:
        recorder = JournalRecorder(
            ring, directory, name=name, fsync=env.get("XDISRUPTOR_JOURNAL_FSYNC", "none"),
            segment_bytes=int(env.get("XDISRUPTOR_JOURNAL_SEGMENT_BYTES", str(256 << 20))),
            retain_bytes=int(env.get("XDISRUPTOR_JOURNAL_RETAIN_BYTES", "0")),
            retain_seconds=float(env.get("XDISRUPTOR_JOURNAL_RETAIN_SECONDS", "0")),
            after=[a for a in env.get("XDISRUPTOR_AFTER", "").split(",") if a])
    except (Error, ValueError) as e:
        print(f"journal {name}: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: recorder.halt())
    signal.signal(signal.SIGINT, lambda *_: recorder.halt())
    status = recorder.run()
    print(f"journal {name}: recorded {recorder.recorded} events into {directory}; it ends at "
          f"{recorder.last} ({status})", flush=True)
    recorder.close()
    return 0 if status in ("closed", "halted") else 1
