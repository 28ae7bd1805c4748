"""Runs a pipeline file: the ring, every stage in dependency order, then the producer; a live
view while it runs; a summary, and the checks, when it ends."""

from __future__ import annotations

import collections
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Callable, Optional

from .._journal import Journal
from .._ring import Ring
from ..errors import Error as XdisruptorError, NotFoundError
from ._config import PipelineSpec, StageSpec, expand


_PR_SET_PDEATHSIG = 1
_prctl: Optional[Callable[..., int]] = None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork
except (AttributeError, OSError):  # not Linux
    pass


def _stop_with(launcher: int):
    """What a child runs between fork and exec: SIGTERM when the launcher dies, whatever kills
    it (SIGKILL too), so no child outlives it; and at once if it is already gone. Nothing here
    takes a lock (the launcher has reader threads when it forks)."""
    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != launcher:
            os._exit(1)  # (the launcher's own SIGTERM handler is still installed here)
    return preexec


class _Proc:
    """A child process of the launcher with its output collected by two reader threads."""

    def __init__(self, role: str, name: str, argv: list[str], env: dict,
                 before: Optional["_Proc"] = None):
        self.role = role          # "stage" or "producer"
        self.name = name
        self.argv = argv
        self.env = env
        self.out: collections.deque = collections.deque(maxlen=50)
        self.err: collections.deque = collections.deque(maxlen=400)
        if before is not None:  # a restart: what the process before it said stays in view
            self.err.extend(before.err)
            self.err.append(f"--- {before.name} {before.exit_text()}; started again ---")
        # Its own session: Ctrl-C reaches only the launcher, which stops the children in
        # order (the producer first, so every stage drains what was published).
        self.popen = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, errors="replace",
                                      start_new_session=True,
                                      preexec_fn=_stop_with(os.getpid()))
        self.readers = [threading.Thread(target=self._read, args=(s, q), daemon=True)
                        for s, q in ((self.popen.stdout, self.out), (self.popen.stderr, self.err))]
        for r in self.readers:
            r.start()
        self.started = time.monotonic()
        self.ended: Optional[float] = None

    @staticmethod
    def _read(stream: IO[str], into: collections.deque) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def poll(self) -> Optional[int]:
        rc = self.popen.poll()
        if rc is not None and self.ended is None:
            self.ended = time.monotonic()
            for r in self.readers:
                r.join(2)
        return rc

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def exit_text(self) -> str:
        rc = self.popen.returncode
        if rc is None:
            return "running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return "exit 0" if rc == 0 else f"exit code {rc}"


class _Stop(KeyboardInterrupt):
    """SIGTERM or SIGHUP to the launcher: stop the pipeline as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _fmt(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


class Launcher:
    def __init__(self, spec: PipelineSpec, *, view: str = "auto", out: IO[str] = sys.stdout):
        self.spec = spec
        self.out = out
        if view == "auto":
            view = "tty" if out.isatty() else "lines"
        self.view = view
        self.ring: Optional[Ring] = None
        self.stages: dict[str, _Proc] = {}
        self.producer: Optional[_Proc] = None
        self.max_lag: dict[str, int] = collections.defaultdict(int)
        self.last_sample: dict[str, tuple[float, int]] = {}
        self.rates: dict[str, float] = {}
        self.final_events: dict[str, int] = {}
        self.final_errors: dict[str, int] = {}
        self.last_lag: dict[str, int] = {}
        self.drawn_lines = 0
        self.started = time.monotonic()
        self.producer_started: Optional[float] = None
        self.last_lines_view = 0.0
        self.stopping = False   # stopping the children: a further signal hurries it
        self.hurry = False      # ... to SIGKILL now
        self.stop_signal = 0    # what stopped the pipeline (SIGINT, SIGTERM, SIGHUP), if any
        self.undrained: list[str] = []  # stages that did not drain (still running, or failed)
        self.deferring = False  # starting a child: a stopping signal waits until it is recorded
        self.pending_signal = 0
        self.specs: dict[str, StageSpec] = {}     # each stage process's spec, by its name
        self.restarts: dict[str, int] = collections.defaultdict(int)
        self.restart_at: dict[str, float] = {}    # crashed, to be started again then
        self.settled: set[str] = set()  # members that died, their run taken over: done

    def _on_signal(self, signum: int, frame) -> None:
        if self.stopping:
            self.hurry = True  # a second Ctrl-C (or SIGTERM) while stopping: SIGKILL now
            return
        self.stop_signal = signum
        if self.deferring:
            self.pending_signal = signum
            return
        self.stopping = True  # from here a second signal hurries instead of raising
        raise _Stop(signum)

    def _spawn(self, role: str, name: str, argv: list[str], env: dict,
               before: Optional[_Proc] = None) -> _Proc:
        """Starts a child and records it before a stopping signal acts on the launcher (a
        child started but not recorded would outlive the run)."""
        self.deferring = True
        try:
            proc = _Proc(role, name, argv, env, before)
            if role == "producer":
                self.producer = proc
                self.producer_started = time.monotonic()
            else:
                self.stages[name] = proc
        finally:
            self.deferring = False
        if self.pending_signal:
            self.stopping = True
            raise _Stop(self.pending_signal)
        return proc

    # -- starting ------------------------------------------------------------------------
    def _stage_env(self, s) -> dict:
        env = dict(os.environ)
        # What the launcher sets only for some stages must not come from its own environment.
        for key in ("XDISRUPTOR_JOURNAL", "XDISRUPTOR_START_AT", "XDISRUPTOR_GROUP",
                    "XDISRUPTOR_CLAIM", "XDISRUPTOR_HANDLER", "XDISRUPTOR_OPTIONS",
                    "XDISRUPTOR_PYTHONPATH", "XDISRUPTOR_WRITABLE",
                    "XDISRUPTOR_KEEP_ON_FAILURE"):
            env.pop(key, None)
        env.update(s.env)
        env.update({
            "XDISRUPTOR_RING": self.spec.ring, "XDISRUPTOR_STAGE": s.name,
            "XDISRUPTOR_AFTER": ",".join(s.after), "XDISRUPTOR_WAIT": s.wait,
            "XDISRUPTOR_WAIT_PARAMS": ",".join(f"{k}={v}" for k, v in s.wait_params.items()),
            "XDISRUPTOR_STALL_POLICY": s.stall_policy,
            "XDISRUPTOR_ERROR_POLICY": s.error_policy,
            "XDISRUPTOR_MAX_RETRIES": str(s.max_retries),
            "XDISRUPTOR_RETRY_PAUSE": str(s.retry_pause),
            "XDISRUPTOR_MAX_BATCH": str(s.max_batch),
            "XDISRUPTOR_MAX_LAG": str(s.max_lag), "XDISRUPTOR_MAX_LAG_S": str(s.max_lag_s),
            "XDISRUPTOR_ATTACH_TIMEOUT": str(self.spec.start_timeout),
        })
        if s.restart == "on-failure":  # a failed stage keeps its entry: the restart resumes
            env["XDISRUPTOR_KEEP_ON_FAILURE"] = "1"
        if s.journal:
            env.update({"XDISRUPTOR_JOURNAL": s.journal, "XDISRUPTOR_START_AT": str(s.start_at)})
        if s.handler:
            paths = [self.spec.root] + [os.path.join(self.spec.root, p) for p in s.python_path]
            env.update({"XDISRUPTOR_HANDLER": s.handler,
                        "XDISRUPTOR_OPTIONS": json.dumps(s.options),
                        "XDISRUPTOR_PYTHONPATH": ":".join(paths),
                        "XDISRUPTOR_WRITABLE": "1" if s.writable else "0",
                        "PYTHONUNBUFFERED": "1"})
        return env

    @property
    def _live_ring(self) -> Ring:
        assert self.ring is not None, "the launcher makes its ring first"
        return self.ring

    def _registered(self, name: str, pid: int) -> bool:
        return any(c["name"] == name and c["pid"] == pid for c in self._live_ring.consumers())

    def _ready(self, s: StageSpec, name: str, pid: int) -> bool:
        """A stage is up once it has registered; the recorder once its journal opens too (the
        stages after it may catch up from that journal)."""
        if not self._registered(name, pid):
            return False
        if not self.spec.journal or s.name != self.spec.journal["name"]:
            return True
        try:
            Journal(self.spec.journal["directory"])
            return True
        except NotFoundError:
            return False

    def _start_stages(self) -> Optional[str]:
        for s in self.spec.stages:
            argv = s.command if s.command else [sys.executable, "-m", "xdisruptor.pipeline",
                                                "stage"]
            # A worker group: one process per member, each registered as NAME.i in group NAME.
            for member in s.member_names():
                env = self._stage_env(s)
                if s.workers > 1:
                    env.update({"XDISRUPTOR_STAGE": member, "XDISRUPTOR_GROUP": s.name,
                                "XDISRUPTOR_CLAIM": str(s.claim)})
                self.specs[member] = s
                proc = self._spawn("stage", member, argv, env)
                deadline = time.monotonic() + self.spec.start_timeout
                while not self._ready(s, member, proc.popen.pid):
                    if proc.poll() is not None:
                        return (f"stage '{member}' exited before it registered "
                                f"({proc.exit_text()})")
                    if time.monotonic() > deadline:
                        return (f"stage '{member}' did not register within "
                                f"{self.spec.start_timeout:g} s")
                    time.sleep(0.02)
                self._print(f"started stage {member} ("
                            f"{'Python ' + s.handler if s.handler else s.command[0]}"
                            f", pid {proc.popen.pid}, wait {s.wait}"
                            f"{', after ' + ', '.join(s.after) if s.after else ''}"
                            f"{f', worker {member} of group {s.name}' if s.workers > 1 else ''})")
        return None

    # -- the live view -------------------------------------------------------------------
    def _print(self, text: str) -> None:
        self._clear_view()
        print(text, file=self.out, flush=True)

    def _clear_view(self) -> None:
        if self.view == "tty" and self.drawn_lines:
            self.out.write(f"\033[{self.drawn_lines}F\033[J")
            self.drawn_lines = 0

    def _sample(self) -> list[str]:
        now = time.monotonic()
        cursor = self._live_ring.cursor
        by_name = {c["name"]: c for c in self._live_ring.consumers()}
        elapsed = now - (self.producer_started or now)
        lines = [f"ring {self.spec.ring}: {self.spec.capacity} slots, published {cursor + 1:,}"
                 f" in {elapsed:.1f} s" + (", stream closed" if self._live_ring.stream_closed else "")]
        width = max((len(n) for n in self.stages), default=5)
        for name, proc in self.stages.items():
            c = by_name.get(name)
            if c is not None:
                lag = max(0, cursor - c["sequence"])
                self.max_lag[name] = max(self.max_lag[name], lag)
                before = self.last_sample.get(name)
                if before is not None and now > before[0]:
                    self.rates[name] = (c["events"] - before[1]) / (now - before[0])
                self.last_sample[name] = (now, c["events"])
                self.final_events[name] = c["events"]
                self.final_errors[name] = c["handler_errors"]
                self.last_lag[name] = lag
            elif name in self.final_events:  # it left the ring: its last figures
                self.rates[name] = 0.0
            lines.append(f"  {name:<{width}}  {self.final_events.get(name, 0):>12,} events  "
                         f"{_fmt(self.rates.get(name, 0)):>7}/s  "
                         f"lag {self.last_lag.get(name, 0):>8,}  "
                         f"errors {self.final_errors.get(name, 0):<5} {self._state(name, proc)}")
            # (a copy: the reader thread appends meanwhile)
            last_err = next((l for l in reversed(list(proc.err)) if l.strip()), "")
            if last_err and (self.final_errors.get(name) or proc.popen.returncode):
                lines.append(f"  {'':<{width}}  last error: {last_err[:100]}")
        return lines

    def _draw(self, force: bool = False) -> None:
        lines = self._sample()
        if self.view == "tty":
            self._clear_view()
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
            self.drawn_lines = len(lines)
        elif self.view == "lines" and (force or time.monotonic() - self.last_lines_view >= 5):
            self.last_lines_view = time.monotonic()
            print("\n".join(lines), file=self.out, flush=True)

    # -- stopping ------------------------------------------------------------------------
    def _stop_all(self, drain: bool) -> None:
        """The producer first (it closes the stream), then the stages: given time to drain
        when `drain`, then SIGTERM, then SIGKILL (at once if a signal hurries it)."""
        self.stopping = True
        if self.producer is not None:
            self.producer.signal(signal.SIGTERM)
        deadline = time.monotonic() + (self.spec.stop_timeout if drain else 0)
        procs = list(self.stages.values()) + ([self.producer] if self.producer else [])
        while (time.monotonic() < deadline and not self.hurry
               and any(p.poll() is None for p in procs)):
            time.sleep(0.05)
            if self.view == "tty":
                self._draw()
        if drain:  # still running, or ended on an error: not drained
            self.undrained = [name for name, p in self.stages.items() if name not in
                              self.settled and (p.poll() is None or p.popen.returncode != 0)]
        for p in procs:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.spec.stop_timeout
        while (time.monotonic() < deadline and not self.hurry
               and any(p.poll() is None for p in procs)):
            time.sleep(0.05)
        for p in procs:
            if p.poll() is None:
                p.signal(signal.SIGKILL)
                p.popen.wait()
                p.poll()

    # -- the run -------------------------------------------------------------------------
    def run(self) -> int:
        spec = self.spec
        if Ring.exists(spec.ring):
            try:
                Ring.remove(spec.ring)  # a stale ring of an earlier run of this file
            except XdisruptorError as e:
                print(f"pipeline FAILED: ring {spec.ring!r} is still in use, by another run of "
                      f"this file or by processes an earlier run left (`xdisruptor stat "
                      f"{spec.ring}` shows them): {e}", file=self.out, flush=True)
                return 1
        self.ring = Ring.create(spec.ring, capacity=spec.capacity, dtype=spec.dtype,
                                producers=spec.producers, mode=spec.mode, group=spec.group,
                                **spec.observability)
        metrics_server = None
        if spec.metrics_listen is not None:
            from .. import metrics  # prometheus-client: only when asked for
            host, port = spec.metrics_listen
            metrics_server = metrics.serve(port, [self.ring], addr=host)
            self._print(f"metrics at http://{host}:{metrics_server.port}/metrics")
        failure: Optional[str] = None
        interrupted = False
        # Ctrl-C, SIGTERM (kill, timeout, a service manager) and SIGHUP (a closed terminal)
        # stop the pipeline the same way: the children run in their own sessions and get
        # nothing themselves.
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, self._on_signal) for s in handled}
        try:
            try:
                failure = self._start_stages()
                if failure is None:
                    env = dict(os.environ, XDISRUPTOR_RING=spec.ring)
                    producer = self._spawn("producer", "producer", spec.producer_command, env)
                    self._print(f"started the producer ({spec.producer_command[0]}, pid "
                                f"{producer.popen.pid}); Ctrl-C stops the pipeline")
                    failure = self._watch()
            except KeyboardInterrupt:
                interrupted = True
                self.stop_signal = self.stop_signal or signal.SIGINT
                self._print(f"interrupted ({signal.Signals(self.stop_signal).name}): stopping "
                            "the producer, letting the stages drain")
            # Drain only what a producer published and only after a clean run or a stop.
            self._stop_all(drain=failure is None and self.producer is not None)
            self._draw(force=True)
            self.drawn_lines = 0
            code = self._summary(failure, interrupted)
            if code == 0 and not interrupted:
                code = self._checks()
            return 128 + self.stop_signal if interrupted and code == 0 else code
        finally:
            # Whatever ended the run (an error, a broken pipe, a signal while stopping), no
            # child outlives the launcher's run.
            self.stopping = True
            for proc in list(self.stages.values()) + ([self.producer] if self.producer else []):
                if proc.popen.poll() is None:
                    proc.signal(signal.SIGKILL)
                    proc.popen.wait()
            for s, handler in previous.items():
                signal.signal(s, handler)
            if metrics_server is not None:
                metrics_server.close()
            try:
                self.ring.close()
                Ring.remove(spec.ring)
            except Exception:  # already gone
                pass

    def _state(self, name: str, proc: _Proc) -> str:
        n = self.restarts.get(name, 0)
        return (proc.exit_text() + (f", restarted {n} time{'s' if n > 1 else ''}" if n else "")
                + (", its run taken over" if name in self.settled else ""))

    def _may_restart(self, name: str, rc: int) -> bool:
        """A stage that crashed (a signal), or failed under on-failure, with restarts left.
        It left its entry in the ring (a crash does; a failed stage program does when the
        launcher asks: XDISRUPTOR_KEEP_ON_FAILURE), so started again by name it resumes where
        it stopped and the producer and the stages after it wait meanwhile."""
        s = self.specs.get(name)
        if s is None or self.stopping or self.restarts[name] >= s.max_restarts:
            return False
        return s.restart == "on-failure" or (s.restart == "on-crash" and rc < 0)

    def _entry(self, name: str) -> Optional[dict]:
        return next((c for c in self._live_ring.consumers() if c["name"] == name), None)

    def _nothing_to_resume(self, name: str, proc: _Proc) -> Optional[str]:
        """Why a stage to restart is not started again, or None. A worker group's member
        whose run the others took over, once the group has ended, has nothing left to do (the
        run is not failed for it). A stage that left the ring would start again at the
        cursor and miss what was published meanwhile: that fails the run."""
        if self._entry(name) is not None:
            return None
        s = self.specs[name]
        if s.workers > 1:
            if self._entry(s.name) is None and self._live_ring.stream_closed:
                self.settled.add(name)
                self._print(f"stage {name} {proc.exit_text()}: not started again, its group "
                            "handled its events and has ended")
            return None if name not in self.settled else "settled"
        return (f"stage '{name}' failed ({proc.exit_text()}) and left the ring, so a restart "
                "would begin at the cursor and miss events (a stage program must keep its "
                "entry when it fails, as RunStage and Python stages do under restart = "
                "\"on-failure\")")

    def _restart(self, name: str) -> Optional[str]:
        """Starts a stage again, or says why the run fails instead."""
        del self.restart_at[name]
        why = self._nothing_to_resume(name, self.stages[name])
        if why is not None:
            return None if why == "settled" else why
        self.restarts[name] += 1
        before = self.stages[name]
        proc = self._spawn("stage", name, before.argv, before.env, before)
        s = self.specs[name]
        self._print(f"started stage {name} again (pid {proc.popen.pid}, restart "
                    f"{self.restarts[name]} of {s.max_restarts}, restart = {s.restart})")
        return None

    def _watch(self) -> Optional[str]:
        """Until every process ended well, or one failed: returns what failed. Restarts the
        stages their restart policy allows."""
        period = 0.25 if self.view == "tty" else 0.5
        while True:
            self._draw()
            for name, proc in list(self.stages.items()):
                if name in self.settled:
                    continue
                if name in self.restart_at:
                    if time.monotonic() >= self.restart_at[name]:
                        failed = self._restart(name)
                        if failed is not None:
                            return failed
                    continue
                rc = proc.poll()
                if rc is None:
                    continue
                if rc != 0:
                    if self._may_restart(name, rc):
                        pause = self.specs[name].restart_pause
                        self.restart_at[name] = time.monotonic() + pause
                        self._print(f"stage {name} {proc.exit_text()}; starting it again in "
                                    f"{pause:g} s")
                        continue
                    n = self.restarts.get(name, 0)
                    return (f"stage '{name}' failed ({proc.exit_text()})" +
                            (f" after {n} restart{'s' if n > 1 else ''}" if n else ""))
                if not self._live_ring.stream_closed:
                    return f"stage '{name}' ended before the stream did"
            producer = self.producer
            assert producer is not None, "the producer starts before the watch"
            rc = producer.poll()
            if rc is not None and rc != 0:
                return f"the producer failed ({producer.exit_text()})"
            if rc == 0 and not self.restart_at and all(
                    p.poll() is not None for p in self.stages.values()):
                return None
            time.sleep(min(period, max(0.01, min(self.restart_at.values(), default=1e18)
                                       - time.monotonic())))

    def _final_counts(self) -> None:
        """A stage's own last line ("stage NAME: why, N events, E handler errors") carries
        its final counts, also when it left the ring between two samples."""
        for name, proc in self.stages.items():
            for line in list(proc.out):
                if not line.startswith(f"stage {name}: ") or not line.endswith("handler errors"):
                    continue
                try:
                    parts = line.rsplit(", ", 2)
                    self.final_events[name] = int(parts[1].split()[0])
                    self.final_errors[name] = int(parts[2].split()[0])
                except (IndexError, ValueError):
                    pass

    def _summary(self, failure: Optional[str], interrupted: bool) -> int:
        self._final_counts()
        published = self._live_ring.cursor + 1
        end = max([p.ended or time.monotonic() for p in self.stages.values()] or [time.monotonic()])
        seconds = max(1e-9, end - (self.producer_started or end))
        out = self.out
        print("", file=out)
        print(f"summary: {published:,} events published in {seconds:.1f} s "
              f"({_fmt(published / seconds)}/s)", file=out)
        width = max((len(n) for n in self.stages), default=5)
        print(f"  {'stage':<{width}}  {'events':>12}  {'events/s':>9}  {'max lag':>9}  "
              f"{'errors':>6}  end", file=out)
        for name, proc in self.stages.items():
            print(f"  {name:<{width}}  {self.final_events.get(name, 0):>12,}  "
                  f"{_fmt(self.final_events.get(name, 0) / seconds):>9}  "
                  f"{self.max_lag.get(name, 0):>9,}  {self.final_errors.get(name, 0):>6}  "
                  f"{self._state(name, proc)}", file=out)
        for proc in list(self.stages.values()) + ([self.producer] if self.producer else []):
            for line in list(proc.out):
                if line.strip():
                    print(f"  [{proc.name}] {line}", file=out)
        code = 0
        for proc in list(self.stages.values()) + ([self.producer] if self.producer else []):
            if proc.err and (proc.popen.returncode or self.final_errors.get(proc.name)):
                print(f"--- {proc.name}: its error output (last {len(proc.err)} lines) ---",
                      file=out)
                for line in list(proc.err):
                    print(f"  {line}", file=out)
        how = "Ctrl-C" if self.stop_signal in (0, signal.SIGINT) else \
            signal.Signals(self.stop_signal).name
        if failure:
            print(f"pipeline FAILED: {failure}", file=out)
            code = 1
        elif interrupted and self.undrained:
            why = ("a second signal cut the drain short" if self.hurry else
                   f"not within stop_timeout ({self.spec.stop_timeout:g} s), or failed")
            print(f"pipeline stopped by {how}; NOT drained ({why}): "
                  f"{', '.join(self.undrained)}", file=out)
            code = 1
        elif interrupted and self.producer is None:
            print(f"pipeline stopped by {how} before the producer started", file=out)
        elif interrupted:
            print(f"pipeline stopped by {how}; every stage drained what was published", file=out)
        else:
            print("pipeline finished: the producer closed the stream and every stage drained "
                  "it", file=out)
        out.flush()
        return code

    def _checks(self) -> int:
        published = self._live_ring.cursor + 1
        for command in self.spec.checks:
            argv = expand(command, {"published": str(published)})
            print(f"check: {' '.join(argv)}", file=self.out, flush=True)
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace")
            self.out.write(done.stdout)
            self.out.flush()
            rc = done.returncode
            if rc != 0:
                print(f"pipeline FAILED: check {argv[0]} exited with {rc}", file=self.out)
                return 1
        return 0
