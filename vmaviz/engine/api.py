"""A small API for notebooks: run a scenario, get the summary and the steps as a DataFrame.

Example::

    from vmaviz.engine.api import simulate

    run = simulate("scenarios/default.yaml", mode="per_vma", seed=7)
    run.summary()["vma_lock"]
    df = run.steps()
    df[df.event.str.startswith("lock_vma_under_rcu:abort")]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmaviz.engine.engine import Engine, EngineError, RunBudget, RunBudgetExceeded
from vmaviz.engine.export import CSV_COLUMNS, stack_strings, synced_trace, thread_names
from vmaviz.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    import pandas as pd

#: Columns of :meth:`Run.steps`.
STEP_COLUMNS = (*CSV_COLUMNS, "op")


class Run:
    """A finished simulation.

    Attributes:
        engine: The :class:`~vmaviz.engine.engine.Engine`; use it to step through
            states (``engine.state_at(n)``) or export (:mod:`vmaviz.engine.export`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._summary: dict[str, Any] | None = None

    def __repr__(self) -> str:
        e = self.engine
        return (
            f"<Run {e.scenario.name!r} mode={e.mode} arch={e.arch} "
            f"seed={e.scenario.kernel.seed} steps={len(e.trace):,}>"
        )

    def summary(self) -> dict[str, Any]:
        """The RUN object of ``python -m vmaviz run --json`` (computed once)."""
        if self._summary is None:
            self._summary = self.engine.summary()
        return self._summary

    def steps(self) -> pd.DataFrame:
        """One row per step.

        Returns:
            A DataFrame with columns ``step, time_ns, thread, cpu, event, a, b, stack,
            op``: the thread by name (``rcu`` for the RCU pseudo-thread), the event
            code, the kernel stack outermost first joined by ``>``, and the thread's
            scenario op number (1-based, loops unrolled).
        """
        # pandas and numpy cost ~0.3 s to import; only callers of this method pay.
        import numpy as np
        import pandas as pd

        t = synced_trace(self.engine)
        n = len(t)
        names = thread_names(self.engine)
        tids = np.frombuffer(t.tid, dtype=np.int16) if n else np.zeros(0, np.int16)
        # Strings are looked up per distinct value, then spread with one take().
        uniq, inverse = np.unique(tids, return_inverse=True)
        thread = np.array([names.get(int(u), str(int(u))) for u in uniq], dtype=object)[inverse]
        codes = np.array(t.codes, dtype=object)
        stacks = np.array(stack_strings(self.engine), dtype=object)
        return pd.DataFrame(
            {
                "step": np.arange(n, dtype=np.int64),
                "time_ns": np.array(t.time, dtype=np.int64),
                "thread": thread if n else np.array([], dtype=object),
                "cpu": np.array(t.cpu, dtype=np.int64),
                "event": codes[np.array(t.code, dtype=np.intp)] if n else codes[:0],
                "a": np.array(t.a, dtype=np.int64),
                "b": np.array(t.b, dtype=np.int64),
                "stack": stacks[np.array(t.stack, dtype=np.intp)] if n else stacks[:0],
                "op": np.array(t.op, dtype=np.int64),
            },
            columns=list(STEP_COLUMNS),
        )


def simulate(
    path_or_scenario: str | Path | Scenario,
    mode: str | None = None,
    arch: str | None = None,
    seed: int | None = None,
    *,
    cpus: int | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    max_rss_bytes: int | None = None,
    budget: RunBudget | None = None,
) -> Run:
    """Load (if given a path) and run a scenario to the end.

    Args:
        path_or_scenario: A scenario file or an already loaded :class:`Scenario`.
        mode: ``per_vma`` or ``mmap_lock`` (default: the scenario's).
        arch: ``x86``, ``arm64``, ``powerpc`` or ``s390`` (default: the scenario's).
        seed: Scheduler seed (default: the scenario's).
        cpus: Simulated CPUs (default: the scenario's).
        max_steps: Step limit (default: the engine's).
        max_seconds: Wall-clock limit of the run in seconds (default: none).
        max_rss_bytes: Limit on this process's resident memory in bytes, checked
            while the run goes (default: none).
        budget: A whole :class:`~vmaviz.engine.engine.RunBudget` instead of
            ``max_seconds``/``max_rss_bytes`` (e.g. with a clock of your own).

    Returns:
        The finished :class:`Run`.

    Raises:
        ScenarioErrors: The file is not a valid scenario.
        ValueError: A setting is out of range.
        RunBudgetExceeded: The run needed more steps, time or memory than
            allowed; the message says which limit and at which step.
        EngineError: The run cannot proceed otherwise (e.g. a bad cost name).
    """
    if budget is not None and (max_seconds is not None or max_rss_bytes is not None):
        raise ValueError("give either budget or max_seconds/max_rss_bytes, not both")
    if isinstance(path_or_scenario, Scenario):
        scenario = path_or_scenario
    else:
        scenario = load_scenario(path_or_scenario)
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if cpus is not None:
        changes["cpus"] = cpus
    if mode is not None:
        changes["mode"] = mode
    if arch is not None:
        changes["arch"] = arch
    if changes:
        # with_overrides range-checks the values, so a typo fails here, not mid-run.
        scenario = scenario.with_overrides(**changes)
    kwargs: dict[str, Any] = {}
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    if budget is None and (max_seconds is not None or max_rss_bytes is not None):
        budget = RunBudget(seconds=max_seconds, rss_bytes=max_rss_bytes)
    engine = Engine(scenario, mode=mode, arch=arch, budget=budget, **kwargs).run()
    return Run(engine)


__all__ = ["STEP_COLUMNS", "EngineError", "Run", "RunBudget", "RunBudgetExceeded", "simulate"]
