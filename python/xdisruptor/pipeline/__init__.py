"""Pipelines of C++ and Python handlers over one ring.

- :class:`Pipeline` and :class:`Stage`: the Disruptor's DSL in Python
  (``handle_events_with(a, b).then(c)``, ``after("x").handle_events_with(d)``), each stage a
  named consumer in a thread or in its own process.
- ``python3 -m xdisruptor.pipeline run FILE``: the launcher for TOML pipeline files naming C++
  programs and Python ``module:function`` handlers (``validate FILE`` checks one).

See docs/pipelines.md.
"""

from ._config import ConfigError, PipelineSpec, StageSpec, load
from ._dsl import Pipeline, Stage, StageGroup, StageResult

__all__ = ["Pipeline", "Stage", "StageGroup", "StageResult", "ConfigError", "PipelineSpec",
           "StageSpec", "load"]
