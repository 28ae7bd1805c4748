"""Prometheus metrics of rings from a Python process, through ``prometheus-client``.

The families, names, labels and values are the ones ``xdisruptor metrics`` serves (one table in
C++, ``metrics.h``), so dashboards and alert rules work against either::

    import xdisruptor, xdisruptor.metrics

    ring = xdisruptor.Ring.attach("ticks")
    server = xdisruptor.metrics.serve(9464)        # http://127.0.0.1:9464/metrics
    ...
    server.close()

``serve`` exports the rings this process opened (``Ring.create``/``Ring.attach``) unless
``rings`` names others; :class:`RingCollector` can join a registry of your own instead. Needs
``pip install xdisruptor[metrics]``. See docs/operations.md for every metric.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Iterator, Optional, Union

from . import _xdisruptor as _core
from ._ring import Ring, open_ring_names
from .errors import InvalidArgumentError

try:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily, Metric)
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError("xdisruptor.metrics needs prometheus-client: "
                      "pip install 'xdisruptor[metrics]'") from None

__all__ = ["RingCollector", "MetricsServer", "serve"]

RingRef = Union[Ring, str]


def _names(rings: Optional[Iterable[RingRef]]) -> list[str]:
    if rings is None:
        return open_ring_names()
    names = []
    for r in rings:
        if isinstance(r, Ring):
            names.append(r.name)
        elif isinstance(r, str):
            names.append(r)
        else:
            raise InvalidArgumentError(f"rings holds Ring objects or names, not {r!r}")
    return names


class RingCollector(Collector):
    """Collects the metric families of ``rings`` (Ring objects or names; None: the rings this
    process has open, looked up at each scrape) whenever the registry is scraped."""

    def __init__(self, rings: Optional[Iterable[RingRef]] = None) -> None:
        self._rings = None if rings is None else _names(rings)

    def collect(self) -> Iterator[Metric]:
        names = open_ring_names() if self._rings is None else self._rings
        for name, kind, help_text, points in _core.metric_families(names):
            keys = list(points[0][0]) if points else []
            family: Any
            if kind == "counter":
                family = CounterMetricFamily(name, help_text, labels=keys)
            elif kind == "histogram":
                family = HistogramMetricFamily(name, help_text, labels=keys)
            else:
                family = GaugeMetricFamily(name, help_text, labels=keys)
            for labels, value, buckets, count, total in points:
                values = [labels[k] for k in keys]
                if kind == "histogram":
                    le = [(repr(float(bound)), float(n)) for bound, n in buckets]
                    family.add_metric(values, le + [("+Inf", float(count))], total)
                else:
                    family.add_metric(values, value)
            yield family


class MetricsServer:
    """An HTTP server of /metrics in a daemon thread (what :func:`serve` returns)."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose when serve() was given 0)."""
        return int(self._server.server_port)

    def close(self) -> None:
        """Stops serving and frees the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(port: int, rings: Optional[Iterable[RingRef]] = None, *, addr: str = "127.0.0.1",
          registry: Optional[CollectorRegistry] = None) -> MetricsServer:
    """Serves the metrics of ``rings`` (default: the rings this process has open) on
    http://ADDR:PORT/metrics (port 0: any free port, see ``.port``) from a daemon thread, in a
    registry of its own unless ``registry`` is given (the collector is added to it)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgumentError(f"port must be 0..65535, not {port!r}")
    registry = CollectorRegistry() if registry is None else registry
    registry.register(RingCollector(rings))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)
