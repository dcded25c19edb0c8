"""The race explorer: systematic and randomized search over a scenario's schedules.

``explore(scenario, patches=..., preemptions=...)`` returns an
:class:`ExploreResult`; ``python -m vmaviz explore FILE`` is its command line.
"""

from vmaviz.explore.search import ExploreError, ExploreResult, Violation, explore

__all__ = ["ExploreError", "ExploreResult", "Violation", "explore"]
