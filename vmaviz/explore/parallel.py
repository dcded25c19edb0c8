"""The bounded search over several processes (``--jobs N``) or a dask cluster (``--dask``).

The search tree is split once, at its first few branch points, into disjoint
subtrees (schedule prefixes, in depth-first order); each worker runs the
iterative bounding (0, 1, ... preemptions) over its subtree with its own state
cache, kept across the bounds.  The violation reported has the smallest bound
any worker found and, among those, is that of the first subtree in
depth-first order: the same schedule a single process would find first, since
a state cache only ever cuts subtrees already searched in vain.  The
minimization that follows runs in the calling process.

Budgets are per worker: each gets the search's seconds and the schedule
budget divided among the subtrees.
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
SUBTREES_PER_JOB = 16
#: At most this many subtrees are expanded to find the pieces.
MAX_SPLITS = 256


def _children(
    root: bytes, bound: int, prefix: list[int], max_depth: int
) -> list[tuple[list[int], int]] | None:
    """The prefixes one branch point below ``prefix``, each with the preemptions it
    spends (None: its subtree has no branch)."""
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
            return [([*path, tid], used + cost) for tid, cost in kids]
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
    """Disjoint schedule prefixes that together cover the tree, in depth-first order.

    The subtree with the most preemptions left is split first (ties: the
    shallowest): the budget left is what makes a subtree big (a prefix that
    spent every preemption has one schedule per cheap switch left), so the
    pieces come out of comparable size and the workers finish together.
    """
    # (preemptions spent, depth, order key, prefix); the order key keeps depth-first order.
    pieces: list[tuple[int, int, tuple[int, ...], list[int]]] = [(0, 0, (), [])]
    done: list[tuple[tuple[int, ...], list[int]]] = []
    expansions = 0
    while pieces and len(pieces) + len(done) < want and expansions < MAX_SPLITS:
        pieces.sort(key=lambda p: (p[0], p[1]))
        _used, _depth, order, prefix = pieces.pop(0)
        expansions += 1
        kids = _children(root, bound, prefix, max_depth)
        if kids is None:
            done.append((order, prefix))
            continue
        for i, (kid, kid_used) in enumerate(kids):
            pieces.append((kid_used, len(kid), (*order, i), kid))
    done.extend((order, prefix) for _, _, order, prefix in pieces)
    done.sort(key=lambda p: p[0])
    return [prefix for _, prefix in done]


def search_subtree(
    root: bytes,
    preemptions: int,
    prefix: list[int],
    max_schedules: int | None,
    seconds: float | None,
    max_depth: int,
    cache: bool,
    por: bool = False,
) -> tuple[int | None, list[int] | None, int, int, bool, bool]:
    """One worker's part: iterative bounding 0..``preemptions`` over one subtree.

    The worker's state cache is kept across the bounds, as the one-process
    search keeps its own (bound *b* does not search again what bound *b - 1*
    searched in vain).

    Returns:
        (the bound of the violation or None, the violating schedule or None,
        schedules, states, truncated, stopped by a budget).
    """
    search = Bounded(root, Limits(max_schedules, seconds, max_depth), cache=cache, por=por)
    try:
        for bound in range(preemptions + 1):
            found = search.run_pass(bound, prefix)
            if found is not None:
                return bound, found, search.schedules, search.states, search.truncated, False
    except _Stop:
        return None, None, search.schedules, search.states, search.truncated, True
    return None, None, search.schedules, search.states, search.truncated, False


def bounded_parallel(
    root: bytes,
    preemptions: int,
    limits: Limits,
    jobs: int,
    dask: str | None,
    progress: Callable[[dict[str, Any]], None] | None,
    cache: bool = True,
    por: bool = False,
) -> tuple[list[int] | None, int, int, int, bool]:
    """Iterative bounding with the tree's subtrees spread over workers.

    The tree is split once, at the largest bound, into disjoint subtrees in
    depth-first order; each worker bounds its subtree from 0 up (a split
    prefix that already spends more preemptions than a bound has nothing at
    that bound).  The violation reported has the smallest bound found by any
    worker and, among those, comes from the first subtree in depth-first
    order: the schedule the one-process search finds first.

    Returns:
        (violating schedule or None, last bound searched, schedules, states, exhaustive).

    Raises:
        ExecutorUnavailable: dask asked for but missing or unreachable.
    """
    from vmaviz.sweep.executors import make_executor, stop_now

    executor = make_executor(jobs, dask)
    started = time.monotonic()
    schedules = states = 0
    try:
        prefixes = split(root, preemptions, max(2, jobs * SUBTREES_PER_JOB), limits.max_depth)
        each = None
        if limits.max_schedules is not None:
            each = max(1, limits.max_schedules // len(prefixes))
        left = limits.seconds
        futures = [
            executor.submit(
                search_subtree, root, preemptions, p, each, left, limits.max_depth, cache, por
            )
            for p in prefixes
        ]
        best: tuple[int, list[int]] | None = None
        stopped = truncated = False
        for fut in futures:
            bound, path, n, st, trunc, stop = fut.result()
            schedules += n
            states += st
            truncated |= trunc
            stopped |= stop
            # Futures are read in depth-first order: the first at the smallest bound wins.
            if bound is not None and path is not None and (best is None or bound < best[0]):
                best = (bound, path)
            if progress is not None:
                progress(
                    {
                        "bound": preemptions,
                        "schedules": schedules,
                        "states": states,
                        "seconds": time.monotonic() - started,
                    }
                )
        executor.shutdown()
        if best is not None:
            return best[1], best[0], schedules, states, False
        return None, preemptions, schedules, states, not (truncated or stopped)
    except BaseException:
        stop_now(executor)
        raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
