"""Scenario files: the YAML format, its validation and the parsed model.

``load_scenario(path)`` / ``load_scenario_text(text)`` return a validated
:class:`Scenario` or raise :class:`ScenarioErrors` listing every problem as
``file:line: field: message``. See ``scenarios/*.yaml`` for examples.
"""

from vmaviz.scenario.errors import ScenarioError, ScenarioErrors
from vmaviz.scenario.loader import load_scenario, load_scenario_text, validate_main
from vmaviz.scenario.schema import (
    MAX_STEPS,
    KernelConfig,
    Op,
    Scenario,
    ThreadSpec,
    VmaSpec,
    count_ops,
)

__all__ = [
    "MAX_STEPS",
    "KernelConfig",
    "Op",
    "Scenario",
    "ScenarioError",
    "ScenarioErrors",
    "ThreadSpec",
    "VmaSpec",
    "count_ops",
    "load_scenario",
    "load_scenario_text",
    "validate_main",
]
