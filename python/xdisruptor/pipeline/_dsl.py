"""The pipeline DSL in Python: stages of handlers wired by dependency, each a named consumer.

    p = Pipeline(ring)
    p.handle_events_with(Stage("enricher", enrich, writable=True)) \\
     .then(Stage("analytics", Analytics(), mode="process"), Stage("recorder", Recorder())) \\
     .then(Stage("sink", sink))
    p.after("cpp-enricher").handle_events_with(Stage("alerts", alerts))  # another process's
    results = p.run()          # start, then wait until the stream ends

A thread stage runs its handler in a thread of this process (for I/O-bound work: waits
release the GIL). A process stage runs it in its own process (fork), for CPU-bound work; it
registers from that process, so the ring shows its pid and a crash there is survived like
any consumer's. Stages register in dependency order, all before any starts, so none misses
an event the others see.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
import traceback
from typing import Any, Callable, Optional, Sequence, Union

from .._ring import Ring
from .._vocabulary import ERROR_POLICIES, STALL_POLICIES, WAIT_STRATEGIES, renamed
from ..errors import (InvalidArgumentError, MissedEventsError, NotFoundError,
                      TimeoutError as XTimeoutError)

__all__ = ["Pipeline", "Stage", "StageGroup", "StageResult"]


@dataclasses.dataclass
class Stage:
    """One stage: its consumer name, its handler (anything :meth:`Consumer.run` takes) and how
    it runs. ``mode`` is "thread" or "process"; ``wait`` and ``wait_params`` its wait
    strategy; ``error_policy``, ``max_retries``, ``retry_pause`` its error policy;
    ``max_batch`` caps its batches; ``writable`` lets it change events in place for the stages
    after it; ``stall_policy`` is "hold" or "evict", ``max_lag`` and ``max_lag_s`` its
    slow-consumer limit (evict only); ``exception_handler`` and ``rewind_strategy`` replace
    the presets of ``error_policy`` (see :meth:`Consumer.run`). ``processor`` instead of
    ``handler`` makes a custom processor (the Disruptor's EventProcessorFactory): a callable
    ``processor(consumer)`` given the stage's registered :class:`Consumer`, which runs its own
    loop on it (for example over ``consumer.batches()``, which ends when the pipeline halts or
    the stream ends) and returns its status ("closed", "halted"; None means "closed").
    ``workers=N`` (N > 1) makes a worker pool (docs/worker-groups.md): N members of the
    worker group ``name`` (consumers ``name.0`` .. ``name.N-1``, threads or processes as
    ``mode`` says; "process" for CPU-bound Python handlers), each event handled by one of
    them, taking ``claim`` events at a time; stages after ``name`` see an event once its
    member released it. ``group`` makes this one stage a member of that group directly.
    ``on_error``, ``retries`` and ``policy`` are deprecated spellings of ``error_policy``,
    ``max_retries`` and ``stall_policy``."""

    name: str
    handler: Any = None
    mode: str = "thread"
    wait: str = "blocking"
    wait_params: dict = dataclasses.field(default_factory=dict)
    error_policy: str = "stop"
    max_retries: int = 3
    retry_pause: float = 0.001
    max_batch: Optional[int] = None
    writable: bool = False
    stall_policy: str = "hold"
    max_lag: int = 0
    max_lag_s: float = 0.0
    exception_handler: Any = None   # see Consumer.run; None: the pipeline's default
    rewind_strategy: Any = None
    processor: Optional[Callable[[Any], Optional[str]]] = None
    workers: int = 1
    claim: int = 64
    group: Optional[str] = None
    on_error: dataclasses.InitVar[Optional[str]] = None
    retries: dataclasses.InitVar[Optional[int]] = None
    policy: dataclasses.InitVar[Optional[str]] = None

    def __post_init__(self, on_error: Optional[str], retries: Optional[int],
                      policy: Optional[str]) -> None:
        old = {k: v for k, v in (("on_error", on_error), ("retries", retries),
                                 ("policy", policy)) if v is not None}
        self.error_policy = renamed(old, "on_error", "error_policy", self.error_policy, "stop", 4)
        self.max_retries = renamed(old, "retries", "max_retries", self.max_retries, 3, 4)
        self.stall_policy = renamed(old, "policy", "stall_policy", self.stall_policy, "hold", 4)
        if (self.handler is None) == (self.processor is None):
            raise InvalidArgumentError(f"stage '{self.name}': give a handler or a processor "
                                       "(exactly one)")
        if self.processor is not None and not callable(self.processor):
            raise InvalidArgumentError(f"stage '{self.name}': processor must be callable")
        if self.mode not in ("thread", "process"):
            raise InvalidArgumentError(f"stage '{self.name}': mode must be 'thread' or "
                                       f"'process', not {self.mode!r}")
        if self.wait not in WAIT_STRATEGIES:
            raise InvalidArgumentError(f"stage '{self.name}': unknown wait {self.wait!r}; "
                                       f"use one of {', '.join(WAIT_STRATEGIES)}")
        if self.error_policy not in ERROR_POLICIES:
            raise InvalidArgumentError(f"stage '{self.name}': error_policy must be one of "
                                       f"{', '.join(ERROR_POLICIES)}")
        if self.stall_policy not in STALL_POLICIES:
            raise InvalidArgumentError(f"stage '{self.name}': stall_policy must be one of "
                                       f"{', '.join(STALL_POLICIES)}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or \
                not 1 <= self.workers <= 62:
            raise InvalidArgumentError(f"stage '{self.name}': workers must be from 1 to 62")
        if self.workers > 1 and self.group is not None:
            raise InvalidArgumentError(f"stage '{self.name}': give workers or group, not both")

    def members(self) -> list["Stage"]:
        """The stages it runs as: itself, or its ``workers`` members of group ``name``."""
        if self.workers <= 1:
            return [self]
        return [dataclasses.replace(self, name=f"{self.name}.{i}", workers=1, group=self.name)
                for i in range(self.workers)]


@dataclasses.dataclass
class StageResult:
    """How a stage ended: "closed" (the stream ended), "halted", or "failed" (``error`` says
    why, ``traceback`` where)."""

    name: str
    status: str
    events: int = 0
    handler_errors: int = 0
    sequence: int = -1
    error: str = ""
    traceback: str = ""


class StageGroup:
    """The stages one builder call added; :meth:`then` adds stages that run after them."""

    def __init__(self, pipeline: "Pipeline", names: Sequence[str]):
        self._pipeline = pipeline
        self.names = list(names)

    def then(self, *stages: Stage) -> "StageGroup":
        return self._pipeline._add(self.names, stages)

    handle_events_with = then


class _Running:
    """A started stage: a thread, or a child process with a pipe back."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.consumer: Any = None
        self.thread: Optional[threading.Thread] = None
        self.process: Any = None  # a multiprocessing process of the fork or spawn context
        self.conn: Any = None
        self.go: Any = None
        self.result: Optional[StageResult] = None


def _run_stage(consumer, stage: Stage, default_handler: Any = None) -> StageResult:
    """Runs one stage's handler on its registered consumer; never raises."""
    try:
        if stage.processor is not None:
            status = stage.processor(consumer) or "closed"
            if not isinstance(status, str):
                raise InvalidArgumentError(f"stage '{stage.name}': its processor returned "
                                           f"{status!r}, not a status name")
            return StageResult(stage.name, status, consumer.events, consumer.handler_errors,
                               consumer.sequence)
        status = consumer.run(stage.handler, max_batch=stage.max_batch,
                              error_policy=stage.error_policy, max_retries=stage.max_retries,
                              retry_pause=stage.retry_pause,
                              exception_handler=stage.exception_handler or default_handler,
                              rewind_strategy=stage.rewind_strategy)
        error, tb = "", ""
    except BaseException as exc:  # reported, not raised: the pipeline decides
        status, error, tb = "failed", f"{type(exc).__name__}: {exc}", getattr(
            exc, "traceback", "") or traceback.format_exc()
    return StageResult(stage.name, status, consumer.events, consumer.handler_errors,
                       consumer.sequence, error, tb)


class Pipeline:
    """Builds and runs a graph of stages over one ring (a :class:`Ring` or its name)."""

    def __init__(self, ring: Union[Ring, str], *, register_timeout: float = 10.0,
                 halt_all_on_failure: bool = True, exception_handler: Any = None):
        self._ring = ring if isinstance(ring, Ring) else Ring.attach(ring)
        self._stages: list[tuple[Stage, list[str]]] = []
        self._running: list[_Running] = []
        self._register_timeout = float(register_timeout)
        self._halt_all = halt_all_on_failure
        self._started = False
        self.exception_handler = exception_handler  # every stage's, unless it has its own
        self._early: dict[str, Any] = {}  # stages registered when added

    def handle_events_with(self, *stages: Stage) -> StageGroup:
        """Stages that see each event as it is published."""
        return self._add([], stages)

    def after(self, *names: str) -> StageGroup:
        """A group standing for stages already named, of this pipeline or of other processes
        (a C++ program, say); its ``handle_events_with`` adds stages after all of them."""
        return StageGroup(self, names)

    def _add(self, after: Sequence[str], stages: Sequence[Stage]) -> StageGroup:
        if self._started:
            raise InvalidArgumentError("stages cannot be added once the pipeline started")
        names = [s.name for s, _ in self._stages]
        for stage in stages:
            if not isinstance(stage, Stage):
                raise InvalidArgumentError(f"expected Stage(...), got {stage!r}")
            if stage.name in names:
                raise InvalidArgumentError(
                    f"two stages are called '{stage.name}'; each stage needs its own name")
            names.append(stage.name)
        for stage in stages:
            self._stages.append((stage, list(after)))
            self._register_early(stage, list(after))
        return StageGroup(self, [s.name for s in stages])

    def _register_early(self, stage: Stage, after: list[str]) -> None:
        """A thread stage gates from the moment it is added (as the Disruptor's
        handleEventsWith does), so nothing published before start() is lost to it: it
        registers now if the stages it runs after are registered already; else at start().
        A process stage registers from its own process, at start()."""
        if stage.mode != "thread" or stage.workers > 1:
            return
        registered = {c["name"] for c in self._ring.consumers()}
        if all(up in registered for up in after):
            self._early[stage.name] = self._register(stage, after, self._start_for(after))

    def _start_for(self, after: list[str]) -> Optional[int]:
        """Where a stage after stages of this pipeline starts: at the first event any of them
        got, so it misses none they see (registered later than they did, at start() for a
        process stage, it would join at the cursor). They gate from when they joined and run
        only after start(), so those events are still in the ring. None: at the cursor."""
        ours = {s.name for s, _ in self._stages}
        joins = [c["join_sequence"] for c in self._ring.consumers()
                 if c["name"] in after and c["name"] in ours]
        return min(joins) + 1 if joins else None

    def _order(self) -> list[tuple[Stage, list[str]]]:
        by_name: dict[str, tuple[Stage, list[str]]] = {}
        for stage, after in self._stages:
            if stage.name in by_name:
                raise InvalidArgumentError(
                    f"two stages are called '{stage.name}'; each stage needs its own name")
            by_name[stage.name] = (stage, after)
        order: list[tuple[Stage, list[str]]] = []
        mark: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if mark.get(name) == 2:
                return
            if mark.get(name) == 1:
                raise InvalidArgumentError(
                    "stages run after each other in a cycle: " + " -> ".join(path + [name]))
            mark[name] = 1
            for up in by_name[name][1]:
                if up in by_name:
                    visit(up, path + [name])
            mark[name] = 2
            order.append(by_name[name])

        for stage, _ in self._stages:
            visit(stage.name, [])
        return order

    def _register(self, stage: Stage, after: list[str], start_at: Optional[int] = None):
        deadline = time.monotonic() + self._register_timeout
        while True:
            try:
                return self._ring.consumer(stage.name, wait=stage.wait, after=after,
                                           start_at=start_at,
                                           writable=stage.writable, max_batch=stage.max_batch,
                                           stall_policy=stage.stall_policy,
                                           max_lag=stage.max_lag, max_lag_s=stage.max_lag_s,
                                           group=stage.group, claim=stage.claim,
                                           **stage.wait_params)
            except NotFoundError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
            except MissedEventsError:
                # Where its upstream joined is no longer in the ring (an upstream that resumed
                # an older entry of its name): from the cursor, as a stage of its own would.
                if start_at is None:
                    raise
                start_at = None

    def start(self) -> None:
        """Registers every stage in dependency order (process stages from their own process;
        upstream stages of other processes are waited for up to ``register_timeout``), then
        starts them all. On an error no stage stays registered."""
        if self._started:
            raise InvalidArgumentError("the pipeline was already started")
        if not self._stages:
            raise InvalidArgumentError("the pipeline has no stages")
        try:
            order = self._order()
        except BaseException:  # a cycle: the stages registered when added leave again
            self._abort()
            raise
        self._started = True
        ctx = multiprocessing.get_context("fork")
        try:
            for stage, after in [(m, a) for st, a in order for m in st.members()]:
                r = _Running(stage)
                self._running.append(r)
                if stage.mode == "thread":
                    r.consumer = self._early.pop(stage.name, None) or self._register(
                        stage, after, self._start_for(after))
                    continue
                parent, child = ctx.Pipe()
                r.conn, r.go = parent, ctx.Event()
                r.process = ctx.Process(target=_child_main,
                                        args=(self._ring.name, stage, after, child, r.go,
                                              self._register_timeout,
                                              self.exception_handler,
                                              self._start_for(after)),
                                        name=f"xdisruptor-stage-{stage.name}", daemon=True)
                r.process.start()
                child.close()
                if not r.conn.poll(self._register_timeout + 5):
                    raise XTimeoutError(f"stage '{stage.name}' did not register in time")
                message = r.conn.recv()
                if message[0] != "registered":
                    raise InvalidArgumentError(f"stage '{stage.name}': {message[1]}")
        except BaseException:
            self._abort()
            raise
        for r in self._running:
            if r.process is not None:
                r.go.set()
            else:
                r.thread = threading.Thread(target=self._thread_main, args=(r,),
                                            name=f"xdisruptor-stage-{r.stage.name}",
                                            daemon=True)
                r.thread.start()

    def _thread_main(self, r: _Running) -> None:
        r.result = _run_stage(r.consumer, r.stage, self.exception_handler)
        if r.result.status == "failed" and self._halt_all:
            self.halt()

    def _abort(self) -> None:
        for consumer in self._early.values():
            consumer.close()
        self._early = {}
        for r in self._running:
            if r.consumer is not None:
                r.consumer.close()
            if r.process is not None and r.process.is_alive():
                r.process.terminate()
                r.process.join(5)
                if r.process.is_alive():
                    r.process.kill()
                    r.process.join()
        self._running = []

    def halt(self) -> None:
        """Asks every stage to stop after the batch in hand (any thread)."""
        for r in self._running:
            if r.consumer is not None and r.result is None:
                try:
                    r.consumer.halt()
                except Exception:  # it may have left already
                    pass
            if r.process is not None and r.process.is_alive():
                os.kill(r.process.pid, signal.SIGTERM)

    def join(self, timeout: Optional[float] = None) -> list[StageResult]:
        """Waits for every stage to end and returns how each did, in the order added (a
        worker pool: each of its members, in its place)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = list(self._running)
        while pending:
            for r in list(pending):
                if r.thread is not None:
                    r.thread.join(0.05)
                    if not r.thread.is_alive():
                        pending.remove(r)
                elif r.process is not None:
                    alive = r.process.is_alive()
                    # Polled after is_alive(): a result sent just before the process ended is
                    # read, not taken for a death.
                    if r.conn.poll(0.05 if alive else 0):
                        try:
                            r.result = r.conn.recv()
                        except EOFError:
                            pass
                    if not alive or r.result is not None:
                        r.process.join()
                        pending.remove(r)
                        if r.result is None:
                            r.result = StageResult(r.stage.name, "failed",
                                                   error=f"its process died (exit code "
                                                   f"{r.process.exitcode})")
                        if r.result.status == "failed" and self._halt_all:
                            self.halt()
            if deadline is not None and time.monotonic() > deadline:
                raise XTimeoutError("the pipeline's stages did not end in time")
        results: list[StageResult] = []
        for r in self._running:
            if r.consumer is not None:
                r.consumer.close()
            assert r.result is not None  # every stage that ended said how
            results.append(r.result)
        by_name = {r.name: r for r in results}
        self._running = []
        # In the order the stages were added; a worker pool's members in its place.
        return [by_name[m.name] for s, _ in self._stages for m in s.members()]

    def run(self) -> list[StageResult]:
        """start(), then join()."""
        self.start()
        return self.join()


def _child_main(ring_name: str, stage: Stage, after: list[str], conn, go,
                register_timeout: float, default_handler: Any = None,
                start_at: Optional[int] = None) -> None:
    """A process stage: attach, register, say so, wait for the go, run, send the result."""
    try:
        ring = Ring.attach(ring_name)
        pipeline = Pipeline(ring, register_timeout=register_timeout)
        consumer = pipeline._register(stage, after, start_at)
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        os._exit(1)
    def on_sigterm(*_: object) -> None:
        if go.is_set():  # running (or about to): halt after the batch in hand
            consumer.halt()
            return
        consumer.close()  # stopped before the go (another stage failed to start): deregister,
        os._exit(0)       # so nothing of this stage holds the producer back

    signal.signal(signal.SIGTERM, on_sigterm)
    conn.send(("registered", os.getpid()))
    go.wait()
    result = _run_stage(consumer, stage, default_handler)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # (a halt now would find it closed)
    consumer.close()
    conn.send(result)
    conn.close()
    os._exit(0 if result.status != "failed" else 1)
