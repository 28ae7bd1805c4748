"""Pipeline files: TOML (read with tomllib) naming the ring, the producer and each stage.

    [vars]                       # {name} placeholders, overridable with --set name=value
    build = "build/release"

    [ring]
    name = "ticks"               # default: the file's stem and the launcher's pid
    capacity = 65536             # a power of two
    dtype = "<i8:sequence,<f8:price,S8:symbol"   # or [["sequence", "<i8"], ...]
    producers = "single"         # or "multi"
    latency_sample_every = 1024  # observability (docs/operations.md): latency sampling,
    flight_wait = 1.0            # flight records after a producer waited this long (s),
    flight_dir = "{root}/flight" # where they go, and how many events each decodes
    flight_events = 16

    [metrics]                    # serve /metrics of the ring (needs prometheus-client)
    listen = "127.0.0.1:9464"

    [producer]
    command = ["{build}/examples/xdisruptor_demo_feed", "--seconds=15"]

    [[stage]]
    name = "enricher"
    command = ["{build}/examples/xdisruptor_demo_stage", "--role=enricher"]   # a C++ stage
    wait = "blocking"

    [[stage]]
    name = "analytics"
    handler = "pipeline_demo:Analytics"       # a Python stage: module:attribute
    options = { window = 256 }                # keyword arguments if it is a class
    after = ["enricher"]
    error_policy = "skip"                     # stop | skip | retry (max_retries, retry_pause)
    restart = "on-crash"                      # no | on-crash | on-failure: started again by
    max_restarts = 3                          # name, it resumes where it stopped
    restart_pause = 0.5

    [journal]                                 # record the stream (docs/journal.md)
    directory = "{root}/journal"              # fsync, segment_bytes, retain_bytes,
    name = "journal"                          # retain_seconds as `xdisruptor journal record`

    [[stage]]                                 # a worker group: 4 processes share the
    name = "scorers"                          # stream, each event to one of them
    handler = "scoring:score"                 # (docs/worker-groups.md); claim = events
    workers = 4                               # a member takes at a time (default 64)

    [[stage]]                                 # a stage may catch up from the journal:
    name = "late"                             # start_at = 0, journal = true (the [journal]
                                              # table's directory) or a directory

    [[check]]                                 # run after a clean end; {published} = events
    command = ["{python}", "check.py", "--events={published}"]

Placeholders in commands: {ring}, {root} (the file's directory), {python} (this interpreter),
{published} (checks only) and the [vars]. Relative executables resolve against the working
directory; Python handler modules are found in {root} and in `python_path`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import shutil
import string
import sys
import tomllib
import warnings
from typing import Any, Optional

import numpy as np

from .._dtype import dtype_to_schema, schema_to_dtype
from .. import _xdisruptor as _core
from .._vocabulary import ERROR_POLICIES, STALL_POLICIES, WAIT_STRATEGIES
from ..errors import Error

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
STAGE_KEYS = {"name", "command", "handler", "options", "after", "wait", "wait_params",
              "error_policy", "max_retries", "retry_pause", "max_batch", "stall_policy",
              "max_lag", "max_lag_s", "writable", "python_path", "env", "start_at", "journal",
              "workers", "claim", "restart", "max_restarts", "restart_pause"}
JOURNAL_KEYS = {"directory", "name", "fsync", "segment_bytes", "retain_bytes", "retain_seconds",
                "after", "restart", "max_restarts", "restart_pause"}
# When the launcher starts a stage's process again (by name: it resumes where it stopped).
RESTART_POLICIES = ("no", "on-crash", "on-failure")
# Keys of earlier releases, still read (with a warning) for one release: old -> new.
DEPRECATED_STAGE_KEYS = {"on_error": "error_policy", "retries": "max_retries",
                         "policy": "stall_policy"}


class ConfigError(Exception):
    """A pipeline file that cannot run; ``errors`` lists each problem as FILE:LINE: text."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclasses.dataclass
class StageSpec:
    name: str
    line: int
    command: Optional[list[str]] = None   # a program (C++ or anything else)
    handler: Optional[str] = None         # a Python "module:attribute"
    options: dict = dataclasses.field(default_factory=dict)
    after: list = dataclasses.field(default_factory=list)
    wait: str = "blocking"
    wait_params: dict = dataclasses.field(default_factory=dict)
    error_policy: str = "stop"
    max_retries: int = 3
    retry_pause: float = 0.001
    max_batch: int = 0
    stall_policy: str = "hold"
    max_lag: int = 0
    max_lag_s: float = 0.0
    writable: bool = False
    python_path: list = dataclasses.field(default_factory=list)
    env: dict = dataclasses.field(default_factory=dict)
    start_at: Optional[int] = None       # catch up from here (with journal)
    journal: Optional[str] = None        # the journal directory it catches up from
    workers: int = 1                     # > 1: a worker group of this many processes
    claim: int = 64                      # ... each claiming this many events at a time
    restart: str = "no"                  # no | on-crash (a signal) | on-failure (also exit != 0)
    max_restarts: int = 3                # restarts of one process in a run, then it fails
    restart_pause: float = 0.5           # seconds before a restart

    def member_names(self) -> list[str]:
        """The consumer names of its processes: itself, or NAME.0 .. NAME.(N-1) (members of
        the worker group NAME)."""
        return [self.name] if self.workers <= 1 else [f"{self.name}.{i}"
                                                      for i in range(self.workers)]

    @property
    def language(self) -> str:
        return "python" if self.handler else "program"


@dataclasses.dataclass
class PipelineSpec:
    path: str
    root: str
    ring: str
    capacity: int
    dtype: np.dtype
    producers: str
    producer_command: list
    stages: list            # in dependency order
    checks: list            # commands, placeholders left for {published}
    start_timeout: float = 30.0
    stop_timeout: float = 10.0
    mode: int = 0o600                # the ring's permission bits and group ([ring] mode, group)
    group: Optional[str] = None
    journal: Optional[dict] = None   # [journal]: its recorder is one of the stages
    # [ring] observability settings, as Ring.create takes them (None: its default)
    observability: dict = dataclasses.field(default_factory=dict)
    metrics_listen: Optional[tuple] = None  # [metrics] listen: (host, port)

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.stages if s.name == name)


# [ring] keys passed to Ring.create as they are, with their checks.
_OBSERVABILITY = {
    "latency_sample_every": lambda v: isinstance(v, int) and v >= 0 and v & (v - 1) == 0,
    "flight_wait": lambda v: isinstance(v, (int, float)) and 0 <= v <= 1e9,
    "flight_dir": lambda v: isinstance(v, str) and 0 < len(v) < 256,
    "flight_events": lambda v: isinstance(v, int) and 0 <= v <= 1024,
}
_OBSERVABILITY_HELP = {
    "latency_sample_every": "is 0 (off) or a power of two",
    "flight_wait": "is seconds from 0 to 1e9",
    "flight_dir": "is a directory path",
    "flight_events": "is a count from 0 to 1024",
}


class _Lines:
    """Where keys sit in the file, for messages (tomllib keeps no positions)."""

    def __init__(self, text: str):
        self.tables: dict[str, dict[str, int]] = {}
        self.stages: list[dict[str, int]] = []
        self.checks: list[dict[str, int]] = []
        self.top: dict[str, int] = {}  # keys before any table (ring = "x": a mistake)
        current: Optional[dict[str, int]] = None
        depth = 0  # open brackets of a value that spans lines (a dtype list, say)
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            bare = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', '""', line).split("#")[0].strip()
            if depth > 0:
                depth = max(0, depth + bare.count("[") - bare.count("]"))
                continue
            if not bare:
                continue
            if bare.startswith("[["):
                header = bare.strip("[] \t")
                current = {"": n}
                (self.stages if header == "stage" else self.checks if header == "check"
                 else []).append(current)
            elif bare.startswith("["):
                header = bare.split("]")[0].strip("[ \t")
                if header.startswith("stage.") and self.stages:
                    current = self.stages[-1]
                else:
                    current = self.tables.setdefault(header, {"": n})
            elif "=" in bare:
                key = line.split("=", 1)[0]  # as written: a quoted key keeps its name
                (current if current is not None else self.top).setdefault(
                    key.strip().strip('"\''), n)
                value = bare.split("=", 1)[1]
                depth = max(0, value.count("[") - value.count("]"))

    def table(self, name: str, key: str = "") -> int:
        if name not in self.tables:
            return self.top.get(name, 1)
        t = self.tables[name]
        return t.get(key, t.get("", 1))

    def stage(self, index: int, key: str = "") -> int:
        if index < len(self.stages):
            return self.stages[index].get(key, self.stages[index][""])
        return 1


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def expand(words: list, values: dict) -> list[str]:
    """Fills {placeholders} in each word; KeyError names an unknown one (also a malformed
    one: `{}`, `{0}`, a lone brace; write `{{` and `}}` for braces)."""
    out = []
    for w in words:
        try:
            out.append(string.Formatter().vformat(str(w), (), _Placeholders(values)))
        except (ValueError, IndexError) as e:
            raise KeyError(f"{str(w)!r} ({e}; write {{{{ and }}}} for a brace)") from None
    return out


def parse_dtype(value: Any) -> np.dtype:
    """A ring dtype from a schema string, a list of [name, type] pairs or a table."""
    if isinstance(value, str):
        return schema_to_dtype(value)
    if isinstance(value, dict):
        value = list(value.items())
    if isinstance(value, list) and all(isinstance(f, list) and len(f) == 2 for f in value):
        dt = np.dtype([(str(n), str(t)) for n, t in value])
        dtype_to_schema(dt)  # refuses what cannot live in shared memory
        return dt
    raise ValueError("dtype is a schema string (\"<i8:seq,<f8:price\"), a list of "
                     "[name, type] pairs, or a table of name = type")


def _find_handler(spec: StageSpec, root: str):
    """Imports "module:attribute"; returns it or raises with a message."""
    handler = spec.handler or ""
    if handler.count(":") != 1:
        raise ValueError(f"handler {handler!r} is not module:attribute")
    module_name, attr = handler.split(":")
    paths = [root] + [os.path.join(root, p) for p in spec.python_path]
    added = [p for p in paths if p not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or the module's own error (SyntaxError, ...)
        raise ValueError(f"handler {spec.handler!r}: cannot import {module_name!r} "
                         f"({type(e).__name__}: {e})") from None
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
    if not hasattr(module, attr):
        raise ValueError(f"handler {spec.handler!r}: module {module_name!r} has no "
                         f"{attr!r}")
    return getattr(module, attr)


def _find_program(word: str) -> Optional[str]:
    if os.sep in word:
        return word if os.path.isfile(word) and os.access(word, os.X_OK) else None
    return shutil.which(word)


def load(path: str, *, overrides: Optional[dict] = None, check_handlers: bool = True,
         ring_name: Optional[str] = None) -> PipelineSpec:
    """Reads and checks a pipeline file; raises ConfigError listing every problem."""
    errors: list[str] = []
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError([f"{path}: {e.strerror}"]) from None
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    lines = _Lines(text)
    root = os.path.dirname(os.path.abspath(path))

    def err(line: int, message: str) -> None:
        errors.append(f"{path}:{line}: {message}")

    for key in doc:
        if key not in ("vars", "ring", "producer", "stage", "check", "launcher", "journal",
                       "metrics"):
            err(lines.table(key), f"unknown table [{key}]; use [vars], [ring], [producer], "
                "[[stage]], [[check]], [launcher], [journal], [metrics]")
    # A table of the wrong kind (ring = "x", stage = [1]) is a problem to report, not a crash.
    for key in ("vars", "ring", "producer", "launcher", "journal", "metrics"):
        if key in doc and not isinstance(doc[key], dict):
            err(lines.table(key), f"[{key}] must be a table ([{key}] and its keys)")
            del doc[key]
    for key in ("stage", "check"):
        if key in doc and (not isinstance(doc[key], list) or
                           not all(isinstance(t, dict) for t in doc[key])):
            err(lines.table(key), f"[[{key}]] must be tables ([[{key}]] and their keys)")
            doc[key] = []
    variables = {str(k): str(v) for k, v in doc.get("vars", {}).items()}
    variables.update(overrides or {})
    ring_doc = doc.get("ring", {})
    name = ring_name or str(ring_doc.get("name", "")) or (
        f"{os.path.splitext(os.path.basename(path))[0]}-{os.getpid()}")
    values = dict(variables, ring=name, root=root, python=sys.executable)

    for key in ring_doc:
        if key not in ("name", "capacity", "dtype", "producers", "mode", "group",
                       *_OBSERVABILITY):
            err(lines.table("ring", key), f"[ring]: unknown key '{key}'")
    observability = {}
    for key, check in _OBSERVABILITY.items():
        if key in ring_doc:
            value = ring_doc[key]
            if key == "flight_dir" and isinstance(value, str):
                try:
                    value = expand([value], values)[0]
                except KeyError as e:
                    err(lines.table("ring", key), f"[ring]: unknown placeholder {e}")
            if isinstance(value, bool) or not check(value):
                err(lines.table("ring", key), f"[ring]: {key} {_OBSERVABILITY_HELP[key]}, "
                    f"not {value!r}")
            observability[key] = value
    metrics_listen = None
    metrics_doc = doc.get("metrics")
    if metrics_doc is not None:
        for key in metrics_doc:
            if key != "listen":
                err(lines.table("metrics", key), f"[metrics]: unknown key '{key}'")
        listen = metrics_doc.get("listen")
        host, _, port = str(listen).rpartition(":")
        if not isinstance(listen, str) or not host or not port.isdigit() or int(port) > 65535:
            err(lines.table("metrics", "listen"),
                f"[metrics]: listen is \"HOST:PORT\", not {listen!r}")
        else:
            metrics_listen = (host, int(port))
    capacity = ring_doc.get("capacity", 65536)
    if not isinstance(capacity, int) or capacity < 2 or capacity & (capacity - 1):
        err(lines.table("ring", "capacity"),
            f"[ring]: capacity must be a power of two >= 2, not {capacity!r}")
    dtype = np.dtype("u1")
    if "dtype" not in ring_doc:
        err(lines.table("ring"), "[ring]: dtype is missing (the events' layout)")
    else:
        try:
            dtype = parse_dtype(ring_doc["dtype"])
        except Exception as e:  # numpy's messages vary
            err(lines.table("ring", "dtype"), f"[ring]: bad dtype: {e}")
    mode = ring_doc.get("mode", 0o600)
    if isinstance(mode, str):  # "0640"
        mode = int(mode, 8) if re.fullmatch(r"0?[0-7]{1,4}", mode) else -1
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
        err(lines.table("ring", "mode"), "[ring]: mode is permission bits, e.g. \"0640\"")
        mode = 0o600
    group = ring_doc.get("group")
    if group is not None and not isinstance(group, (str, int)):
        err(lines.table("ring", "group"), "[ring]: group is a group name or number")
        group = None
    producers = ring_doc.get("producers", "single")
    if producers not in ("single", "multi"):
        err(lines.table("ring", "producers"), "[ring]: producers is 'single' or 'multi'")
    if not NAME_RE.match(name):
        err(lines.table("ring", "name"), f"[ring]: bad ring name {name!r}")

    producer_doc = doc.get("producer", {})
    producer_command: list = []
    if not isinstance(producer_doc.get("command"), list) or not producer_doc["command"]:
        err(lines.table("producer", "command"),
            "[producer]: command must be a non-empty list of strings")
    else:
        try:
            producer_command = expand(producer_doc["command"], values)
            if check_handlers and _find_program(producer_command[0]) is None:
                err(lines.table("producer", "command"),
                    f"[producer]: program not found: {producer_command[0]}")
        except KeyError as e:
            err(lines.table("producer", "command"), f"[producer]: unknown placeholder {e}")

    for key in producer_doc:
        if key != "command":
            err(lines.table("producer", key), f"[producer]: unknown key '{key}'; use command")
    launcher_doc = doc.get("launcher", {})
    timeouts = {"start_timeout": 30.0, "stop_timeout": 10.0}
    for key, value in launcher_doc.items():
        if key not in timeouts:
            err(lines.table("launcher", key), f"[launcher]: unknown key '{key}'; use "
                "start_timeout, stop_timeout")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            err(lines.table("launcher", key), f"[launcher]: {key} must be a number of "
                "seconds > 0")
        else:
            timeouts[key] = float(value)
    journal = None
    journal_doc = doc.get("journal")
    if journal_doc is not None:
        for key in journal_doc:
            if key not in JOURNAL_KEYS:
                err(lines.table("journal", key), f"[journal]: unknown key '{key}'; use "
                    + ", ".join(sorted(JOURNAL_KEYS)))
        directory = journal_doc.get("directory")
        if not isinstance(directory, str) or not directory:
            err(lines.table("journal"), "[journal]: directory is missing")
            directory = ""
        try:
            directory = expand([directory], values)[0] if directory else ""
        except KeyError as e:
            err(lines.table("journal", "directory"), f"[journal]: unknown placeholder {e}")
        journal = {"directory": os.path.join(root, directory) if directory else "",
                   "name": str(journal_doc.get("name", "journal")),
                   "fsync": str(journal_doc.get("fsync", "none")),
                   "segment_bytes": journal_doc.get("segment_bytes", 256 << 20),
                   "retain_bytes": journal_doc.get("retain_bytes", 0),
                   "retain_seconds": journal_doc.get("retain_seconds", 0),
                   "after": journal_doc.get("after", [])}
        journal["restart"], journal["max_restarts"], journal["restart_pause"] = _restart_keys(
            journal_doc, "[journal]", lambda key: lines.table("journal", key), err)
        if isinstance(journal["after"], str):
            journal["after"] = [journal["after"]]
        if not isinstance(journal["after"], list) or not all(
                isinstance(a, str) for a in journal["after"]):
            err(lines.table("journal", "after"), "[journal]: after is a list of stage names")
            journal["after"] = []
        if not NAME_RE.match(journal["name"]):
            err(lines.table("journal", "name"), "[journal]: name is the recorder's consumer "
                "name: 1-63 letters, digits, '_', '-' or '.'")
        if not re.match(r"^(none|batch|every:[1-9][0-9]*)$", journal["fsync"]):
            err(lines.table("journal", "fsync"), "[journal]: fsync is none, batch or every:MS")
        for key in ("segment_bytes", "retain_bytes", "retain_seconds"):
            value = journal[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                err(lines.table("journal", key), f"[journal]: {key} must be a number >= 0")
    stages: list[StageSpec] = []
    raw_stages = doc.get("stage", [])
    if not isinstance(raw_stages, list) or not raw_stages:
        err(1, "no [[stage]] tables: a pipeline needs at least one stage")
        raw_stages = []
    for i, st in enumerate(raw_stages):
        line = lines.stage(i)
        sname = st.get("name")
        label = f"stage '{sname}'" if sname else f"stage #{i + 1}"
        if not isinstance(sname, str) or not NAME_RE.match(sname):
            err(line, f"{label}: name must be 1-63 letters, digits, '_', '-' or '.'")
            continue
        for key in list(st):
            if key in DEPRECATED_STAGE_KEYS:
                new = DEPRECATED_STAGE_KEYS[key]
                warnings.warn(f"{path}:{lines.stage(i, key)}: {label}: '{key}' is deprecated; "
                              f"write '{new}'", DeprecationWarning, stacklevel=2)
                st.setdefault(new, st.pop(key))
            elif key not in STAGE_KEYS:
                err(lines.stage(i, key), f"{label}: unknown key '{key}'")
        spec = StageSpec(name=sname, line=line)
        if ("command" in st) == ("handler" in st):
            err(line, f"{label}: give exactly one of command (a program) or handler (a "
                "Python module:attribute)")
        if "command" in st:
            if not isinstance(st["command"], list) or not st["command"]:
                err(lines.stage(i, "command"), f"{label}: command must be a non-empty list")
            else:
                try:
                    spec.command = expand(st["command"], values)
                except KeyError as e:
                    err(lines.stage(i, "command"), f"{label}: unknown placeholder {e}")
        if "handler" in st:
            spec.handler = str(st["handler"])
        for key in ("options", "wait_params", "env"):
            if not isinstance(st.get(key, {}), dict):
                err(lines.stage(i, key), f"{label}: {key} must be a table (key = value, ...)")
                st[key] = {}
        spec.options = dict(st.get("options", {}))
        for key, value in spec.options.items():
            if isinstance(value, str):
                try:
                    spec.options[key] = expand([value], values)[0]
                except KeyError as e:
                    err(lines.stage(i, "options"), f"{label}: unknown placeholder {e}")
        spec.after = st.get("after", [])
        if isinstance(spec.after, str):
            spec.after = [spec.after]
        if not isinstance(spec.after, list) or not all(isinstance(a, str) for a in spec.after):
            err(lines.stage(i, "after"), f"{label}: after is a list of stage names")
            spec.after = []
        spec.wait = st.get("wait", "blocking")
        if spec.wait not in WAIT_STRATEGIES:
            err(lines.stage(i, "wait"), f"{label}: unknown wait {spec.wait!r}; use one of "
                f"{', '.join(WAIT_STRATEGIES)}")
        spec.wait_params = dict(st.get("wait_params", {}))
        if spec.wait in WAIT_STRATEGIES:
            try:  # checked by the C++ parser every consumer uses
                _core.wait_params(spec.wait, spec.wait_params)
            except Error as e:
                err(lines.stage(i, "wait_params"), f"{label}: {e}")
        spec.error_policy = st.get("error_policy", "stop")
        if spec.error_policy not in ERROR_POLICIES:
            err(lines.stage(i, "error_policy"), f"{label}: error_policy must be one of "
                f"{', '.join(ERROR_POLICIES)}")
        spec.max_retries = st.get("max_retries", 3)
        spec.retry_pause = st.get("retry_pause", 0.001)
        spec.max_batch = st.get("max_batch", 0)
        spec.max_lag = st.get("max_lag", 0)
        spec.max_lag_s = st.get("max_lag_s", 0.0)
        for key, value in (("max_retries", spec.max_retries), ("retry_pause", spec.retry_pause),
                           ("max_batch", spec.max_batch), ("max_lag", spec.max_lag),
                           ("max_lag_s", spec.max_lag_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                    key not in ("retry_pause", "max_lag_s") and not isinstance(value, int)):
                err(lines.stage(i, key), f"{label}: {key} must be a number >= 0")
        spec.stall_policy = st.get("stall_policy", "hold")
        if spec.stall_policy not in STALL_POLICIES:
            err(lines.stage(i, "stall_policy"), f"{label}: stall_policy must be one of "
                f"{', '.join(STALL_POLICIES)}")
        elif (spec.max_lag or spec.max_lag_s) and spec.stall_policy != "evict":
            err(lines.stage(i, "max_lag"), f"{label}: a slow-consumer limit (max_lag, "
                "max_lag_s) evicts, so it needs stall_policy = \"evict\"")
        spec.workers = st.get("workers", 1)
        if isinstance(spec.workers, bool) or not isinstance(spec.workers, int) or \
                not 1 <= spec.workers <= 62:
            err(lines.stage(i, "workers"), f"{label}: workers must be a whole number from 1 "
                "to 62")
            spec.workers = 1
        spec.claim = st.get("claim", 64)
        if isinstance(spec.claim, bool) or not isinstance(spec.claim, int) or spec.claim < 1:
            err(lines.stage(i, "claim"), f"{label}: claim must be a whole number >= 1")
        spec.restart, spec.max_restarts, spec.restart_pause = _restart_keys(
            st, label, lambda key, i=i: lines.stage(i, key), err)
        if spec.restart != "no" and st.get("stall_policy") == "evict":
            err(lines.stage(i, "restart"), f"{label}: a restart resumes the stage's entry, "
                "which stall_policy = \"evict\" lets the producer drop when the process dies; "
                "use the hold policy (the default) with restart")
        spec.writable = st.get("writable", False)
        if not isinstance(spec.writable, bool):
            err(lines.stage(i, "writable"), f"{label}: writable must be true or false")
            spec.writable = False
        spec.python_path = st.get("python_path", [])
        if not isinstance(spec.python_path, list) or \
                not all(isinstance(d, str) for d in spec.python_path):
            err(lines.stage(i, "python_path"), f"{label}: python_path must be a list of "
                "directories ([\"lib\"], not \"lib\")")
            spec.python_path = []
        spec.env = {str(k): str(v) for k, v in st.get("env", {}).items()}
        start_at = st.get("start_at")
        if start_at is not None and (isinstance(start_at, bool) or not isinstance(start_at, int)
                                     or start_at < 0):
            err(lines.stage(i, "start_at"), f"{label}: start_at must be a sequence >= 0")
        spec.start_at = start_at
        stage_journal = st.get("journal")
        if stage_journal is True:
            if journal is None:
                err(lines.stage(i, "journal"), f"{label}: journal = true needs a [journal] "
                    "table (or give the journal's directory)")
            else:
                spec.journal = journal["directory"]
        elif isinstance(stage_journal, str) and stage_journal:
            try:
                spec.journal = os.path.join(root, expand([stage_journal], values)[0])
            except KeyError as e:
                err(lines.stage(i, "journal"), f"{label}: unknown placeholder {e}")
        elif stage_journal not in (None, False):
            err(lines.stage(i, "journal"), f"{label}: journal is a directory or true")
        if spec.journal and spec.start_at is None:
            err(lines.stage(i, "journal"), f"{label}: a journal is for catching up; say "
                "where to start (start_at)")
        elif spec.journal and spec.start_at:
            err(lines.stage(i, "start_at"), f"{label}: start_at must be 0: each run makes "
                "the ring anew, from sequence 0, so nothing of it comes before (a journal of "
                "an earlier run holds another life of the ring)")
        if isinstance(spec.workers, int) and spec.workers > 1 and spec.journal:
            err(lines.stage(i, "workers"), f"{label}: a worker group cannot catch up from a "
                "journal")
        if any(s.name == sname for s in stages):
            err(line, f"{label}: a second stage of that name (each needs its own)")
            continue
        stages.append(spec)

    names = {s.name for s in stages}
    for spec in stages:  # a worker group's members are registered as NAME.0 .. NAME.N-1
        taken = [m for m in spec.member_names() if m != spec.name and m in names]
        if taken:
            err(next(s.line for s in stages if s.name == taken[0]),
                f"stage '{taken[0]}': its name is that of a member of worker group "
                f"'{spec.name}' (workers = {spec.workers}); choose another name")
    for i, spec in enumerate(stages):
        index = next(k for k, st in enumerate(raw_stages) if st.get("name") == spec.name)
        for up in spec.after:
            if up == spec.name:
                err(lines.stage(index, "after"), f"stage '{spec.name}': runs after itself")
            elif up not in names:
                err(lines.stage(index, "after"), f"stage '{spec.name}': after names unknown "
                    f"stage '{up}'")
        if check_handlers and spec.handler:
            try:
                _find_handler(spec, root)
            except ValueError as e:
                err(lines.stage(index, "handler"), f"stage '{spec.name}': {e}")
        if check_handlers and spec.command and _find_program(spec.command[0]) is None:
            err(lines.stage(index, "command"), f"stage '{spec.name}': program not found: "
                f"{spec.command[0]}")

    recorder = None
    if journal is not None:
        if any(s.name == journal["name"] for s in stages):
            err(lines.table("journal", "name"), f"[journal]: name '{journal['name']}' is also "
                "a stage's; give the recorder its own")
        for up in journal["after"]:
            if up not in names:
                err(lines.table("journal", "after"), f"[journal]: after names unknown stage "
                    f"'{up}'")
        recorder = _recorder_stage(journal, lines.table("journal"))
        _check_catch_up(stages, recorder, journal["directory"],
                        lambda s, text: err(lines.stage(
                            next(k for k, st in enumerate(raw_stages)
                                 if st.get("name") == s.name), "journal"), text))
    everything = stages + ([recorder] if recorder is not None else [])
    journal_dir = journal["directory"] if journal is not None else None
    order = _dependency_order(everything, lambda s, cycle: err(
        s.line, f"stage '{s.name}': the stages run after each other in a cycle: "
        + " -> ".join(cycle)), starts_after=lambda s: (
            [recorder.name] if recorder is not None and s.journal == journal_dir else []))

    checks = []
    for i, check in enumerate(doc.get("check", [])):
        line = lines.checks[i][""] if i < len(lines.checks) else 1
        for key in check:
            if key != "command":
                err(lines.checks[i].get(key, line) if i < len(lines.checks) else line,
                    f"check #{i + 1}: unknown key '{key}'; use command")
        command = check.get("command")
        if not isinstance(command, list) or not command:
            err(line, f"check #{i + 1}: command must be a non-empty list")
            continue
        try:
            checks.append(expand(command, dict(values, published="{published}")))
        except KeyError as e:
            err(line, f"check #{i + 1}: unknown placeholder {e}")

    if errors:
        raise ConfigError(errors)
    return PipelineSpec(path=path, root=root, ring=name, capacity=capacity, dtype=dtype,
                        producers=producers, producer_command=producer_command,
                        stages=order, checks=checks,
                        start_timeout=timeouts["start_timeout"],
                        stop_timeout=timeouts["stop_timeout"],
                        mode=mode, group=None if group is None else str(group),
                        journal=journal, observability=observability,
                        metrics_listen=metrics_listen)


def _restart_keys(table: dict, label: str, line_of, err) -> tuple[str, int, float]:
    """restart, max_restarts and restart_pause of a [[stage]] or the [journal] table."""
    restart = table.get("restart", "no")
    if restart not in RESTART_POLICIES:
        err(line_of("restart"), f"{label}: restart must be one of {', '.join(RESTART_POLICIES)}")
        restart = "no"
    max_restarts = table.get("max_restarts", 3)
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
        err(line_of("max_restarts"), f"{label}: max_restarts must be a whole number >= 0")
        max_restarts = 0
    pause = table.get("restart_pause", 0.5)
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0 <= pause <= 3600:
        err(line_of("restart_pause"), f"{label}: restart_pause must be a number of seconds "
            "from 0 to 3600")
        pause = 0.5
    return restart, max_restarts, float(pause)


def _recorder_stage(journal: dict, line: int) -> StageSpec:
    """The [journal] table as a stage: `python3 -m xdisruptor.pipeline record` (the same
    recorder as `xdisruptor journal record`), gating with policy hold."""
    spec = StageSpec(name=journal["name"], line=line, after=list(journal["after"]),
                     command=[sys.executable, "-m", "xdisruptor.pipeline", "record"],
                     restart=journal["restart"], max_restarts=journal["max_restarts"],
                     restart_pause=journal["restart_pause"])
    spec.env = {"XDISRUPTOR_JOURNAL_DIR": journal["directory"],
                "XDISRUPTOR_JOURNAL_FSYNC": journal["fsync"],
                "XDISRUPTOR_JOURNAL_SEGMENT_BYTES": str(int(journal["segment_bytes"])),
                "XDISRUPTOR_JOURNAL_RETAIN_BYTES": str(int(journal["retain_bytes"])),
                "XDISRUPTOR_JOURNAL_RETAIN_SECONDS": str(float(journal["retain_seconds"]))}
    return spec


def _upstream(stage: StageSpec, by_name: dict) -> set:
    seen: set = set()
    todo = list(stage.after)
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        todo += by_name[name].after
    return seen


def _check_catch_up(stages: list[StageSpec], recorder: StageSpec, directory: str,
                    err) -> None:
    """A stage catching up from the pipeline's journal reads events as the recorder saw
    them: every stage it runs after must have processed them before the recorder did."""
    by_name = {s.name: s for s in stages}
    recorded_after = _upstream(recorder, by_name)
    for s in stages:
        if s.journal != directory:
            continue
        missing = sorted(_upstream(s, by_name) - recorded_after)
        if missing:
            err(s, f"stage '{s.name}': runs after {', '.join(repr(m) for m in missing)} but "
                f"the journal records events before they have processed them; add them to "
                f"[journal] after")


def _dependency_order(stages: list[StageSpec], on_cycle,
                      starts_after=lambda s: []) -> list[StageSpec]:
    """Stages in an order to start them: each after the stages it runs after (and those
    `starts_after` names: the recorder before the stages catching up from its journal)."""
    by_name = {s.name: s for s in stages}
    mark: dict[str, int] = {}
    order: list[StageSpec] = []
    reported = False

    def visit(s: StageSpec, path: list[str]) -> None:
        nonlocal reported
        if mark.get(s.name) == 2:
            return
        if mark.get(s.name) == 1:
            if not reported:
                reported = True
                on_cycle(s, path[path.index(s.name):] + [s.name])
            return
        mark[s.name] = 1
        for up in list(s.after) + list(starts_after(s)):
            if up in by_name and up != s.name:
                visit(by_name[up], path + [s.name])
        mark[s.name] = 2
        order.append(s)

    for s in stages:
        visit(s, [])
    return order


def load_handler(spec: StageSpec, root: str) -> Any:
    """The handler object a Python stage runs: a class is instantiated with its options."""
    obj = _find_handler(spec, root)
    if isinstance(obj, type):
        return obj(**spec.options)
    if spec.options:
        raise ValueError(f"handler {spec.handler!r} is not a class; options need a class")
    return obj
