"""The bounded search over several processes (``--jobs N``) or a dask cluster (``--dask``).

For each preemption bound in turn, the search tree is split at its first few
branch points into disjoint subtrees (schedule prefixes, in depth-first
order), each searched by one worker with its own state cache.  When a bound
holds a violation, the one reported is that of the first subtree in
depth-first order that has one: the same schedule a single process would
find first, since a state cache only ever cuts subtrees already searched in
vain.  The minimization that follows runs in the calling process.

Budgets are per worker: each gets the search's remaining seconds and the
schedule budget divided among the subtrees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vmaviz.explore.search import (
    Bounded,
    Limits,
    _ordered,
    _safe_step,
    _Stop,
    movable,
    restore,
    switch_cost,
)

#: Subtrees per worker: enough to keep every worker busy when subtrees differ in size.
SUBTREES_PER_JOB = 4
#: At most this many branch levels are expanded to find the subtrees.
MAX_SPLIT_LEVELS = 8


def _children(root: bytes, bound: int, prefix: list[int], max_depth: int) -> list[list[int]] | None:
    """The prefixes one branch point below ``prefix`` (None: its subtree has no branch)."""
    k = restore(root)
    used = 0
    last: int | None = None
    path = list(prefix)
    for tid in prefix:
        rn = movable(k)
        used += switch_cost(k, last, tid, rn)
        if not _safe_step(k, tid):
            return None
        last = tid
        if k.violations:
            return None
    while len(path) < max_depth:
        rn = movable(k)
        if not rn:
            return None
        kids = _ordered(k, last, rn, bound - used)
        if len(kids) > 1:
            return [[*path, tid] for tid, _ in kids]
        tid, cost = kids[0]
        used += cost
        if not _safe_step(k, tid):
            return None
        path.append(tid)
        last = tid
        if k.violations:
            return None
    return None


def split(root: bytes, bound: int, want: int, max_depth: int) -> list[list[int]]:
    """Disjoint schedule prefixes that together cover the tree, in depth-first order."""
    prefixes: list[list[int]] = [[]]
    for _ in range(MAX_SPLIT_LEVELS):
        if len(prefixes) >= want:
            break
        grown: list[list[int]] = []
        changed = False
        for p in prefixes:
            kids = _children(root, bound, p, max_depth)
            if kids is None:
                grown.append(p)
            else:
                grown.extend(kids)
                changed = True
        prefixes = grown
        if not changed:
            break
    return prefixes


def search_subtree(
    root: bytes,
    bound: int,
    prefix: list[int],
    max_schedules: int | None,
    seconds: float | None,
    max_depth: int,
    cache: bool,
) -> tuple[list[int] | None, int, int, bool, bool]:
    """One worker's part: (violating schedule, schedules, states, truncated, stopped)."""
    search = Bounded(root, Limits(max_schedules, seconds, max_depth), cache=cache)
    try:
        found = search.run_pass(bound, prefix)
    except _Stop:
        return None, search.schedules, search.states, search.truncated, True
    return found, search.schedules, search.states, search.truncated, False


def bounded_parallel(
    root: bytes,
    preemptions: int,
    limits: Limits,
    jobs: int,
    dask: str | None,
    progress: Callable[[dict[str, Any]], None] | None,
    cache: bool = True,
) -> tuple[list[int] | None, int, int, int, bool]:
    """Iterative bounding with each bound's subtrees spread over workers.

    Returns:
        (violating schedule or None, last bound searched, schedules, states, exhaustive).

    Raises:
        ExecutorUnavailable: dask asked for but missing or unreachable.
    """
    from vmaviz.sweep.executors import make_executor, stop_now

    executor = make_executor(jobs, dask)
    started = time.monotonic()
    schedules = states = 0
    bound = 0
    try:
        for bound in range(preemptions + 1):
            left = None if limits.seconds is None else limits.seconds - (time.monotonic() - started)
            if left is not None and left <= 0:
                return None, bound, schedules, states, False
            prefixes = split(root, bound, max(2, jobs * SUBTREES_PER_JOB), limits.max_depth)
            each = None
            if limits.max_schedules is not None:
                each = max(1, (limits.max_schedules - schedules) // len(prefixes))
            futures = [
                executor.submit(search_subtree, root, bound, p, each, left, limits.max_depth, cache)
                for p in prefixes
            ]
            found: list[int] | None = None
            stopped = truncated = False
            for fut in futures:
                path, n, s, trunc, stop = fut.result()
                schedules += n
                states += s
                truncated |= trunc
                stopped |= stop
                if found is None and path is not None:
                    found = path
                if progress is not None:
                    progress(
                        {
                            "bound": bound,
                            "schedules": schedules,
                            "states": states,
                            "seconds": time.monotonic() - started,
                        }
                    )
            if found is not None:
                return found, bound, schedules, states, False
            if stopped:
                return None, bound, schedules, states, False
        executor.shutdown()
        return None, bound, schedules, states, not truncated
    except BaseException:
        stop_now(executor)
        raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
