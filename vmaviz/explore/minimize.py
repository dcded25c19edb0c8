"""Shortening a counterexample, and saying in words where its preemptions fall.

The bounded search already gives the fewest preemptions (iterative bounding).
:func:`shortest` then looks for the fewest steps: it searches the same
preemption bound again with a step cap one below the best length so far,
until no schedule within the cap violates an invariant (or a budget ends).
The last search is repeated at exactly the final length so that the schedule
returned is the first of that length in depth-first order, whichever
schedule the minimization started from (so ``--jobs`` does not change it).
"""

from __future__ import annotations

from collections.abc import Sequence

from vmaviz.engine.engine import NO_KEYFRAMES, Engine
from vmaviz.explore.search import Bounded, Limits, _Stop
from vmaviz.scenario.schema import Scenario


def shortest(
    root: bytes, found: list[int], preemptions: int, limits: Limits, por: bool = False
) -> list[int]:
    """The shortest violating schedule with at most ``preemptions`` preemptions.

    Args:
        root: The initial state's snapshot.
        found: A violating schedule (it ends at its violating step).
        preemptions: Its preemptions: the bound of the searches.
        limits: Budgets for all the searches together.
        por: Sleep sets in the searches.

    Returns:
        The shortest schedule found (``found`` itself if none is shorter or a
        budget ran out first).
    """
    best = list(found)
    search = Bounded(root, limits, por=por)
    try:
        while len(best) > 1:
            # A fresh cache per cap: its entries carry the steps left, and a
            # smaller cap would find few of them useful anyway.
            search.cache = {}
            shorter = search.run_pass(preemptions, max_depth=len(best) - 1)
            if shorter is None:
                break
            best = shorter
        search.cache = {}
        canon = search.run_pass(preemptions, max_depth=len(best))
        if canon is not None:
            best = canon
    except _Stop:
        pass
    return best


def _name(sc: Scenario, tid: int) -> str:
    if tid < 0:
        return "the RCU callbacks"
    return f"T{tid} ({sc.threads[tid].name})"


def explain(sc: Scenario, mode: str, arch: str, schedule: Sequence[int]) -> list[str]:
    """Each preemption of ``schedule`` in words, from the trace rows around it.

    E.g. "step 41: T1 (splitter) preempts T0 (faulter) after its
    lock_vma_under_rcu:found and runs vma_start_write ... before T0 goes on
    with vma_start_read:locked".  The last line names the violation.
    """
    eng = Engine(sc, mode=mode, arch=arch, schedule=list(schedule), keyframe_every=NO_KEYFRAMES)
    eng.run(max_steps=len(schedule))
    t = eng.trace
    t.flush()
    n = len(t)

    def event(i: int) -> str:
        return t.codes[t.code[i]]

    lines: list[str] = []
    k = eng.state_at(0)
    from vmaviz.explore.search import movable, step_forced, switch_cost

    last: int | None = None
    for i, tid in enumerate(schedule[:n]):
        rn = movable(k)
        if switch_cost(k, last, tid, rn) and last is not None:
            # What the preempting thread did before the preempted one moved again.
            j = i
            done: list[str] = []
            while j < n and t.tid[j] != last:
                if t.tid[j] == tid:
                    ev = event(j)
                    if not done or done[-1] != ev:
                        done.append(ev)
                j += 1
            shown = ", ".join(done[:6]) + (", ..." if len(done) > 6 else "")
            after = f"{_name(sc, last)} goes on with {event(j)}" if j < n else "the violation"
            lines.append(
                f"step {i}: {_name(sc, tid)} preempts {_name(sc, last)} right after its"
                f" {event(i - 1)} and runs {shown} before {after}"
            )
        step_forced(k, tid)
        last = tid
    for s, inv, msg in eng.k.violations[:1]:
        who = _name(sc, t.tid[s]) if s < n else "?"
        lines.append(f"step {s}: {who} at {event(s) if s < n else '?'}: invariant {inv}: {msg}")
    return lines
