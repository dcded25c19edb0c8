"""Be the scheduler, and Explore: the user (or the race explorer) picks who moves next.

* **Be the scheduler** (as in The Deadlock Empire, on the kernel model): at the
  cursor the page lists the threads that could take the next step, each with the
  kernel function it is in; picking one re-runs the scenario with the forced
  schedule "the steps taken so far, then that thread" (``Engine(schedule=...)``).
  The schedule lives in :attr:`vmaviz.ui.session.Config.sched`, so it is part of
  the run key and of the permalink.
* **Explore**: :class:`ExploreJobs` runs :func:`vmaviz.explore.explore` in a
  background thread, one search at a time per process, with its progress and
  result in the shared cache (the page polls it); the result is a configuration
  (patches + the counterexample as the forced schedule) that opens in the normal
  views at the violating step.

Everything the explorer's API names is used in :func:`run_search` and
:func:`result_summary` only, so a change of its names is one edit here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vmaviz.engine.engine import _runnable
from vmaviz.scenario import Scenario

if TYPE_CHECKING:
    from flask_caching import Cache

    from vmaviz.model.kernel import Kernel
    from vmaviz.ui.session import RunData

#: The bounds of one search from the app (the CLI allows more).
EXPLORE_PREEMPTIONS = 3
EXPLORE_SECONDS = 30.0
#: Seconds a finished search's result stays in the cache.
RESULT_TIMEOUT = 3600
#: A search whose progress has not moved for this long is taken as dead (its worker
#: was restarted) and another may start.
STALE_SECONDS = 120.0


# =====================================================================
# Be the scheduler
# =====================================================================


def next_function(k: Kernel, tid: int) -> str:
    """What ``tid`` runs next: its innermost kernel function, or the op it starts."""
    if tid < 0:
        return "rcu_core (RCU callbacks)"
    th = k.threads[tid]
    if th.frames:
        return th.frames[-1].fn
    # Between operations: the program position's next op (a loop's body included).
    for ops, index, _count in reversed(th.pc_stack):
        if index < len(ops):
            return f"starts {ops[index].kind}"
    return "exits"


def choices(run: RunData, cursor: int) -> list[dict[str, Any]]:
    """The threads that could take the step after ``cursor`` steps, in the
    order :func:`vmaviz.engine.engine._runnable` lists them.

    Works on a copy of the state at the cursor (``state_at``), so the run is
    untouched; the list is what a forced schedule may name at that step.
    """
    k = run.engine.state_at(cursor)
    return [
        {"tid": tid, "name": run.thread_name(tid), "function": next_function(k, tid)}
        for tid in _runnable(k)
    ]


def picked_schedule(run: RunData, cursor: int, tid: int) -> tuple[int, ...]:
    """The forced schedule that runs the steps taken up to ``cursor``, then ``tid``.

    Raises:
        ValueError: ``tid`` cannot move after ``cursor`` steps.
    """
    if tid not in {c["tid"] for c in choices(run, cursor)}:
        raise ValueError(f"thread {tid} cannot move at step {cursor}")
    taken = run.engine.schedule_taken()[:cursor]
    return (*taken, tid)


def first_violation(run: RunData) -> tuple[int, int, str] | None:
    """The run's first invariant violation as (step, invariant, message), if any."""
    found = [v for v in run.engine.k.violations if v[0] >= 0]
    return min(found) if found else None


def invariant_title(number: int) -> str:
    """How the page names invariant ``number`` (reference §11)."""
    return f"invariant {number} (reference §11)"


# =====================================================================
# Explore
# =====================================================================


def run_search(
    scenario: Scenario,
    patches: dict[str, bool],
    mode: str,
    arch: str,
    preemptions: int,
    seconds: float,
    progress: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Run the explorer and return its result as plain data (for the cache).

    The adapter to :func:`vmaviz.explore.explore`: the only place that names its
    arguments and the attributes of its result.
    """
    from vmaviz.explore import explore

    result = explore(
        scenario,
        patches=patches,
        preemptions=preemptions,
        seconds=seconds,
        mode=mode,
        arch=arch,
        progress=progress,
    )
    v = result.violation
    return {
        "found": result.found,
        "violation": (
            {"invariant": v.invariant, "step": v.step, "message": v.message} if v else None
        ),
        "schedule": list(result.schedule or []),
        "preemptions": result.preemptions,
        "steps": result.steps,
        "schedules": result.schedules,
        "states": result.states,
        "seconds": round(result.seconds, 3),
        "exhaustive": result.exhaustive,
        "bound": result.bound,
        "explanation": list(result.explanation),
        "patches": dict(result.patches),
    }


def preemption_points(schedule: list[int]) -> list[int]:
    """The steps at which the schedule switches thread (candidates for the markers).

    A switch is where the forced schedule names another thread than the step
    before; the explorer counts only those where the previous thread could still
    have moved as preemptions, but every switch is where the story turns.
    """
    return [i for i in range(1, len(schedule)) if schedule[i] != schedule[i - 1]]


def status_key(job: str) -> str:
    return f"explore:{job}"


class ExploreJobs:
    """Background explorer searches: one at a time per process.

    The job's status (``queued``/``running``/``done``/``failed``, the progress and
    the result) is in the shared cache under :func:`status_key`, so any worker
    can answer the page's polls.

    Args:
        cache: The shared flask cache.
        spawn: Starts a worker (a daemon thread by default; tests may run it inline).
    """

    def __init__(
        self, cache: Cache, spawn: Callable[[Callable[[], None]], None] | None = None
    ) -> None:
        self.cache = cache
        self.spawn = spawn or _daemon
        self._mutex = threading.Lock()
        self._running: str | None = None

    def submit(self, scenario: Scenario, request: dict[str, Any]) -> tuple[str | None, str]:
        """Start a search; (job id, "started") or (None, why not)."""
        with self._mutex:
            if self._running is not None:
                status = self.cache.get(status_key(self._running)) or {}
                if time.time() - float(status.get("updated", 0)) < STALE_SECONDS:
                    return None, "another search is running on this server; try again soon"
            job = uuid.uuid4().hex
            self._running = job
        self._set(job, {"state": "running", "progress": {}, "request": request})
        self.spawn(lambda: self._work(job, scenario, request))
        return job, "started"

    def status(self, job: str) -> dict[str, Any] | None:
        value = self.cache.get(status_key(job))
        return value if isinstance(value, dict) else None

    def _set(self, job: str, status: dict[str, Any]) -> None:
        status["updated"] = time.time()
        self.cache.set(status_key(job), status, timeout=RESULT_TIMEOUT)

    def _work(self, job: str, scenario: Scenario, request: dict[str, Any]) -> None:
        def progress(info: dict[str, Any]) -> None:
            self._set(job, {"state": "running", "progress": dict(info), "request": request})

        try:
            result = run_search(
                scenario,
                request["patches"],
                request["mode"],
                request["arch"],
                int(request["preemptions"]),
                float(request["seconds"]),
                progress,
            )
            self._set(job, {"state": "done", "result": result, "request": request})
        except Exception as exc:  # any failure is the job's result, shown on the page
            self._set(job, {"state": "failed", "error": str(exc), "request": request})
        finally:
            with self._mutex:
                if self._running == job:
                    self._running = None


def _daemon(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="vmaviz-explore", daemon=True).start()
