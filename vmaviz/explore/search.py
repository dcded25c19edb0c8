"""Systematic and randomized search over the schedules of one scenario.

The explorer decides which thread moves at each step, among the threads the
engine says can move (:func:`vmaviz.engine.engine._runnable`; -1 stands for
the RCU callbacks).  Rules:

* **Who may move.**  Only runnable threads: a thread blocked on a lock, asleep
  on a timer or waiting at a barrier is not offered, so every schedule is one
  the kernel could run.  Time does not limit what is possible: a runnable
  thread may move now even if the default scheduler would run it later (its
  step then runs at the current clock); costs only order the default run.
* **Preemption.**  Moving a thread other than the one that just moved, while
  that one is still runnable, costs one preemption.  Switching away from a
  thread that cannot move (it blocked, finished or went to sleep) or that is
  spinning (``Thread.spinning``: an rwsem optimistic or handoff spin, which
  makes no progress until another thread does) is free, so a spinner never
  starves the others under a small bound.  The RCU callbacks count as one
  more thread.
* **Spinners.**  A spinning thread that just polled is not offered again
  while another thread can move (the switch away is free): its next poll can
  only differ once something else moved, and other threads' steps also move
  the clock towards its spin deadlines.  Without this, every count of vain
  polls would be a separate schedule.
* **Bounded search** (``bounded``): iterative context bounding (Musuvathi and
  Qadeer 2007): depth-first over every schedule with at most 0, then 1, ...,
  ``preemptions`` preemptions, so the first violation found has the fewest
  preemptions.  Children are tried the thread that just moved first, then by
  thread id, so the order (and the first violation) is deterministic.
* **Prefix sharing.**  At a branch point the kernel is pickled once
  (:func:`vmaviz.explore.state.snapshot`); each further branch restores it
  rather than re-running from step 0.
* **State caching.**  At each branch point the state's key
  (:func:`vmaviz.explore.state.state_key`, which includes the thread that
  moved last) is looked up with the preemptions still allowed and the steps
  still allowed; a state already explored with at least as many of both is
  cut (it held no violation, or the search would have stopped).  The cache is
  kept across the bounds of one search, which removes the re-exploration of
  iterative bounding; two orders of independent steps that reach the same
  state are merged there at the next branch point (when they moved the same
  thread last).
* **Sleep sets** (``por``, off by default; Godefroid 1996, with the test of
  independence made by running both orders).  At a branch point, a thread
  ``t`` tried before ``u`` (or asleep there already) is put to sleep in
  ``u``'s subtree when, from that state, t;u and u;t both run without a
  stall, a violation or a spinning thread and reach equal state keys (the
  last mover left out; the result is kept per state key, t and u), and when
  t;u costs no more preemptions than u;t whatever step comes next (t's switch
  cost, plus 1 if t can still move after its step, plus 1 if u can still move
  after both, at most u's switch cost plus 1 if u can still move after its
  step).  A sleeping thread is not moved; it stays asleep across a step it
  commutes with and wakes at any other (or when it is no longer offered).
  *Soundness*: every schedule u;t;w skipped this way has a twin t;u;w that
  reaches the same states after its second step with no more preemptions and
  the same length, and the two steps it skips were run by the test itself
  (so a violation inside them is not missed); by the usual induction on sleep
  sets the twin is explored or skipped for a twin of its own, so every state
  and step within the bound is still reached.  Because the pricing of the
  twin bounds the next step's cost too, the bound of CHESS is respected (a
  twin never needs more preemptions).  The state cache cuts a visit only if
  an earlier one had at least the budgets *and* a sleep set within this
  one's (it then explored every way this one would).  *Why it is off*: the
  model is timed, and a forced step moves the clock to its own event's time,
  so two steps due at different instants leave the other thread's next event
  shifted in one order: exact commutation is rare (0 to 1 schedule saved of
  about 100 on the race scenarios) and the test runs cost two to three times
  the search's time.
* **PCT** (``pct``): Burckhardt et al. 2010.  Each run gives the threads
  random distinct priorities and picks ``depth - 1`` random change points
  among the steps; the highest-priority runnable thread moves, except that a
  spinning thread yields to any runnable thread that is not spinning; at the
  *i*-th change point the thread that moves drops to priority *i* (below all
  initial ones).  The seed is reported so a find reproduces.
"""

from __future__ import annotations

import heapq
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmaviz.engine.engine import _run_step, _runnable, build_kernel
from vmaviz.explore.state import restore, snapshot, state_key
from vmaviz.model.kernel import PATCHES, Kernel, StallError
from vmaviz.model.sched import EV_RCU, EV_STEP
from vmaviz.scenario.schema import Scenario

#: Default cap on the steps of one schedule (a path longer than this is cut and
#: the search is then not exhaustive).
MAX_DEPTH = 5000
#: Schedules between two progress callbacks and limit checks.
CHECK_EVERY = 64
#: Bytes of the pickled states a depth-first search may keep at once (one per
#: branch point of the current schedule): a big scenario's state is megabytes,
#: and a deep schedule would otherwise keep thousands of them.  Past it the
#: search stops as if a budget ran out (not exhaustive).
MAX_SNAPSHOT_BYTES = 512 << 20
#: Steps between two looks at the clock: in a big scenario one schedule is
#: thousands of steps, and the time budget must hold all the same.
CHECK_STEPS = 32


class ExploreError(ValueError):
    """Bad input to the explorer: an unknown patch, a bad bound or strategy."""


@dataclass(frozen=True)
class Violation:
    """The first invariant violation of a schedule (reference §11)."""

    invariant: int
    step: int
    message: str


@dataclass
class ExploreResult:
    """What a search found, or what it covered.

    Attributes:
        found: A schedule violated an invariant.
        violation: The minimal counterexample's first violation.
        schedule: The minimal counterexample's thread ids, one a step (it ends
            at the violating step).
        preemptions: Its preemptions (see the module docstring).
        steps: Its length in steps.
        schedules: Schedules explored (complete, cut by the cache or the depth).
        states: Distinct states seen at branch points.
        seconds: Wall time of the search (minimization included).
        exhaustive: Every schedule within ``bound`` was covered.
        bound: The largest preemption bound searched.
        strategy: ``bounded`` or ``pct``.
        seed: PCT's seed (None for ``bounded``).
        patches: Every patch toggle as the search ran it.
        mode, arch: The kernel configuration.
        explanation: The counterexample's preemptions, in words.
        found_preemptions: Preemptions of the schedule first found (before minimizing).
        found_steps: Its length.
    """

    found: bool
    violation: Violation | None
    schedule: list[int] | None
    preemptions: int | None
    steps: int | None
    schedules: int
    states: int
    seconds: float
    exhaustive: bool
    bound: int
    strategy: str
    seed: int | None
    patches: dict[str, bool]
    mode: str
    arch: str
    explanation: list[str] = field(default_factory=list)
    found_preemptions: int | None = None
    found_steps: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The object ``explore --json`` prints (the CLI contract)."""
        v = self.violation
        return {
            "found": self.found,
            "violation": (
                {"invariant": v.invariant, "step": v.step, "message": v.message} if v else None
            ),
            "preemptions": self.preemptions,
            "steps": self.steps,
            "schedules": self.schedules,
            "states": self.states,
            "seconds": round(self.seconds, 3),
            "exhaustive": self.exhaustive,
        }


class _Stop(Exception):
    """A budget (schedules, seconds) ran out."""


# ----------------------------------------------------------------- stepping


def step_forced(k: Kernel, tid: int) -> None:
    """Move ``tid`` now; ``tid`` must be in ``movable(k)``, called just before.

    The engine's ``_advance_forced`` (vmaviz/engine/engine.py) without its
    runnable check, which the search has just made: the RCU callbacks run as
    one step; a thread's step runs at the later of its own time and the clock.
    """
    k.event.code = ""
    k.event.note = ""
    heap = k.heap
    if tid == -1:
        entry = min(e for e in heap if e[1] == EV_RCU)
        heap.remove(entry)
        heapq.heapify(heap)
        k.now = max(k.now, entry[0])
        k.steps += 1
        k.step_tid, k.step_cpu, k.step_op, k.step_fid = -1, -1, 0, 0
        k.step_sid = k.intern_sid(0, "rcu_core")
        k.run_rcu_callbacks()
        return
    th = k.threads[tid]
    token = th.token
    entry = min(e for e in heap if e[1] == EV_STEP and e[3] == tid and e[4] == token)
    heap.remove(entry)
    heapq.heapify(heap)
    _run_step(k, th, max(k.now, entry[0]))


def movable(k: Kernel) -> list[int]:
    """The ids the explorer may move next: the engine's runnable set, less idle RCU.

    The engine offers the RCU callbacks (-1) whenever their timer is queued; run
    before the grace period can end they do nothing but re-arm it, a step that
    could repeat forever, so the explorer offers them only when they would
    end a grace period (``Rcu.ready_peek``).
    """
    rn = _runnable(k)
    if rn and rn[0] == -1:
        at = min(e[0] for e in k.heap if e[1] == EV_RCU)
        if not k.rcu.ready_peek(max(k.now, at)):
            del rn[0]
    return rn


def switch_cost(k: Kernel, last: int | None, tid: int, runnable: Sequence[int]) -> int:
    """1 when moving ``tid`` after ``last`` is a preemption, else 0 (module docstring)."""
    if last is None or tid == last or last not in runnable:
        return 0
    if last >= 0 and k.threads[last].spinning:
        return 0
    return 1


def count_preemptions(k: Kernel, schedule: Sequence[int]) -> int:
    """Replay ``schedule`` on ``k`` (mutated) and count its preemptions."""
    last: int | None = None
    total = 0
    for tid in schedule:
        rn = movable(k)
        if tid not in rn:
            raise ExploreError(f"thread {tid} cannot move at step {k.steps}")
        total += switch_cost(k, last, tid, rn)
        step_forced(k, tid)
        last = tid
        if k.violations:
            break
    return total


def _ordered(k: Kernel, last: int | None, rn: list[int], left: int) -> list[tuple[int, int]]:
    """The children of a node: (tid, cost) within ``left`` preemptions, last mover first."""
    out: list[tuple[int, int]] = []
    # A spinner that just polled in vain polls again only when nothing else
    # can move: its next poll can differ only once another thread moved
    # (which also moves the clock towards its deadlines).
    if (
        last is not None
        and last in rn
        and (last < 0 or not k.threads[last].spinning or len(rn) == 1)
    ):
        out.append((last, 0))
    for tid in rn:
        if tid == last:
            continue
        c = switch_cost(k, last, tid, rn)
        if c <= left:
            out.append((tid, c))
    return out


# ------------------------------------------------------------ bounded search


@dataclass
class Limits:
    """The budgets of a search: schedules, wall seconds, steps a schedule, and the
    bytes of the snapshots kept at the branch points of the current schedule."""

    max_schedules: int | None = None
    seconds: float | None = None
    max_depth: int = MAX_DEPTH
    max_bytes: int = MAX_SNAPSHOT_BYTES


class Bounded:
    """A preemption-bounded depth-first search from one root state.

    Args:
        root: The root state (:func:`snapshot` of the initial kernel).
        limits: The budgets.
        progress: Called with a progress dict every :data:`CHECK_EVERY` schedules.
    """

    def __init__(
        self,
        root: bytes,
        limits: Limits,
        progress: Callable[[dict[str, Any]], None] | None = None,
        cache: bool = True,
        por: bool = False,
    ) -> None:
        self.root = root
        self.limits = limits
        self.progress = progress
        self.use_cache = cache
        self.por = por
        #: state key -> the (preemptions left, steps left, sleep set) it was explored with.
        self.cache: dict[bytes, list[tuple[int, int, frozenset[int]]]] = {}
        #: (state key without the last mover, t, u) -> what :meth:`_commute` found.
        self.commute: dict[tuple[bytes, int, int], tuple[int, int, int] | None] = {}
        self.schedules = 0
        #: Steps taken by the search (prefix replays included).
        self.steps = 0
        self.truncated = False
        self.started = time.monotonic()
        self.bound = 0

    @property
    def states(self) -> int:
        return len(self.cache)

    def _tick(self) -> None:
        self.schedules += 1
        lim = self.limits
        if lim.max_schedules is not None and self.schedules >= lim.max_schedules:
            raise _Stop
        if self.schedules % CHECK_EVERY:
            return
        if self.progress is not None:
            self.progress(
                {
                    "bound": self.bound,
                    "schedules": self.schedules,
                    "states": self.states,
                    "seconds": time.monotonic() - self.started,
                }
            )
        self._check_time()

    def _check_time(self) -> None:
        lim = self.limits
        if lim.seconds is not None and time.monotonic() - self.started > lim.seconds:
            raise _Stop

    def run_pass(
        self, bound: int, prefix: Sequence[int] = (), max_depth: int | None = None
    ) -> list[int] | None:
        """Every schedule that starts with ``prefix`` within ``bound`` preemptions.

        Returns:
            The first violating schedule in depth-first order, or None.

        Raises:
            _Stop: a budget ran out.
            ExploreError: ``prefix`` does not fit the scenario.
        """
        self.bound = bound
        depth_cap = self.limits.max_depth if max_depth is None else max_depth
        k = restore(self.root)
        path: list[int] = []
        used = 0
        last: int | None = None
        for tid in prefix:
            rn = movable(k)
            if tid not in rn:
                raise ExploreError(f"thread {tid} cannot move at step {len(path)}")
            used += switch_cost(k, last, tid, rn)
            if used > bound:
                # A prefix split at a larger bound: nothing here at this one.
                return None
            if not _safe_step(k, tid):
                self._tick()
                return None
            path.append(tid)
            last = tid
            if k.violations:
                self.schedules += 1  # the violating schedule counts as explored
                return path
        if used > bound:
            return None
        # Branch points still to try: [snapshot, awake children, next child, path
        # length, used, cost of every offered child, sleep set, state key without
        # the last mover (lazily)].
        stack: list[list[Any]] = []
        kept = 0  # bytes of the snapshots on the stack
        cache = self.cache if self.use_cache else None
        # The sleep set of the node being entered (module docstring, "Sleep sets").
        sleep: frozenset[int] = frozenset()
        dead = False
        while True:
            leaf = dead
            dead = False
            children: list[tuple[int, int]] = []
            offered: list[tuple[int, int]] = []
            if not leaf:
                rn = movable(k)
                leaf = not rn or len(path) >= depth_cap
                if leaf and rn:
                    self.truncated = True
                if not leaf:
                    offered = _ordered(k, last, rn, bound - used)
                    # A sleeping thread that is not offered here leaves the set:
                    # a smaller sleep set only explores more.
                    if sleep:
                        sleep = frozenset(t for t, _ in offered if t in sleep)
                        children = [c for c in offered if c[0] not in sleep]
                    else:
                        children = offered
                    # Keyed only where the search branches: a key costs a few
                    # steps' time, and a state with one way on is cut at the
                    # next branch point anyway.
                    if cache is not None and len(offered) > 1:
                        key = state_key(k, -2 if last is None else last)
                        budget = (bound - used, depth_cap - len(path))
                        if _cached(cache, key, budget, sleep):
                            leaf = True
                    if not children:
                        leaf = True  # every way on is asleep: covered elsewhere
            if leaf:
                self._tick()
                # Back to the deepest branch point with a child left.
                while stack and stack[-1][2] >= len(stack[-1][1]):
                    kept -= len(stack.pop()[0])
                if not stack:
                    return None
                fr = stack[-1]
                i = fr[2]
                tid, cost = fr[1][i]
                fr[2] += 1
                sleep = self._sleep_after(fr, tid, [c[0] for c in fr[1][:i]])
                k = restore(fr[0])
                del path[fr[3] :]
                used = fr[4] + cost
            else:
                tid, cost = children[0]
                if len(offered) > 1:
                    blob = snapshot(k)
                    kept += len(blob)
                    if kept > self.limits.max_bytes:
                        raise _Stop
                    fr = [blob, children, 1, len(path), used, dict(offered), sleep, None]
                    sleep = self._sleep_after(fr, tid, [])
                    if len(children) > 1:
                        stack.append(fr)
                    else:
                        kept -= len(blob)
                else:
                    sleep = frozenset()
                used += cost
            self.steps += 1
            if not self.steps % CHECK_STEPS:
                self._check_time()
            if not _safe_step(k, tid):
                # The model stalled (StallError): this schedule ends here.
                dead = True
                continue
            path.append(tid)
            last = tid
            if k.violations:
                self.schedules += 1  # the violating schedule counts as explored
                return path

    def _sleep_after(self, fr: list[Any], u: int, before: list[int]) -> frozenset[int]:
        """The sleep set of the child reached by moving ``u`` at branch point ``fr``.

        A thread ``t`` asleep at the branch point, or tried there before ``u``,
        sleeps on after ``u`` when ``t`` and ``u`` commute there and moving ``t``
        first spends no more preemptions than moving ``u`` first, whatever
        follows (module docstring, "Sleep sets").
        """
        if not self.por:
            return frozenset()
        candidates = [t for t in (*fr[6], *before) if t != u]
        if not candidates:
            return frozenset()
        if fr[7] is None:
            fr[7] = state_key(restore(fr[0]), -3)
        costs: dict[int, int] = fr[5]
        out = []
        for t in candidates:
            facts = self._commute(fr[7], fr[0], t, u)
            if facts is None:
                continue
            moves_t, moves_u, u_after = facts
            # t then u costs c(t) + [t could go on]; u then t costs c(u) + [u could
            # go on]; the next step after t;u may cost one more than after u;t
            # only if u can still move there (it then preempts u, not t).
            if costs[t] + moves_t + u_after <= costs[u] + moves_u:
                out.append(t)
        return frozenset(out)

    def _commute(self, skey: bytes, blob: bytes, t: int, u: int) -> tuple[int, int, int] | None:
        """Whether ``t`` and ``u`` commute at the state ``blob`` (key ``skey``).

        Runs t;u and u;t from the state; they commute when neither order
        stalls, violates an invariant or involves a spinning thread, and both
        reach states with the same key (the last mover left out).

        Returns:
            None if they do not commute, else (t can still move after its step,
            u can still move after its step, u can still move after both).
        """
        memo = (skey, t, u)
        if memo in self.commute:
            return self.commute[memo]
        self.commute[memo] = None
        keys: list[bytes] = []
        after: list[int] = []
        last_movable: list[bool] = []
        for a, b in ((t, u), (u, t)):
            k = restore(blob)
            if _spins(k, a) or _spins(k, b):
                return None
            if not _safe_step(k, a) or k.violations:
                return None
            rn = movable(k)
            if b not in rn or _spins(k, a) or _spins(k, b):
                return None
            after.append(int(a in rn))
            if not _safe_step(k, b) or k.violations:
                return None
            if _spins(k, a) or _spins(k, b):
                return None
            self.steps += 2
            keys.append(state_key(k, -3))
            if not last_movable:
                last_movable.append(u in movable(k))
        if keys[0] != keys[1]:
            return None
        facts = (after[0], after[1], int(last_movable[0]))
        self.commute[memo] = facts
        return facts


def _spins(k: Kernel, tid: int) -> bool:
    """``tid`` is a thread in an rwsem spin (the RCU callbacks never spin)."""
    return tid >= 0 and k.threads[tid].spinning


def _cached(
    cache: dict[bytes, list[tuple[int, int, frozenset[int]]]],
    key: bytes,
    budget: tuple[int, int],
    sleep: frozenset[int],
) -> bool:
    """True if ``key`` was explored with at least ``budget`` and a sleep set within
    ``sleep`` (then everything from here was covered); else record this visit.

    A visit with a larger sleep set explored fewer ways on, so it covers this
    one only if every thread it left asleep is asleep here too.
    """
    seen = cache.get(key)
    if seen is None:
        cache[key] = [(budget[0], budget[1], sleep)]
        return False
    for left, steps, asleep in seen:
        if left >= budget[0] and steps >= budget[1] and asleep <= sleep:
            return True
    # Keep only the visits the new one does not cover.
    seen[:] = [e for e in seen if not (budget[0] >= e[0] and budget[1] >= e[1] and sleep <= e[2])]
    seen.append((budget[0], budget[1], sleep))
    return False


def _safe_step(k: Kernel, tid: int) -> bool:
    """Move ``tid``; False if the model stalled (a polling loop that cannot end)."""
    try:
        step_forced(k, tid)
    except StallError:
        return False
    return True


# ------------------------------------------------------------------- PCT


def pct_run(
    root: bytes, rng: random.Random, depth: int, length: int, max_depth: int
) -> tuple[list[int], bool]:
    """One PCT schedule from ``root``: (its thread ids, whether it ends at a violation)."""
    k = restore(root)
    tids = [-1, *range(len(k.threads))]
    prio_values = rng.sample(range(depth, depth + len(tids)), len(tids))
    prio = dict(zip(tids, prio_values, strict=True))
    changes = sorted(rng.sample(range(1, max(length, depth) + 1), depth - 1)) if depth > 1 else []
    change_ix = 0
    path: list[int] = []
    while len(path) < max_depth:
        rn = movable(k)
        if not rn:
            break
        calm = [t for t in rn if t < 0 or not k.threads[t].spinning]
        tid = max(calm or rn, key=lambda t: prio[t])
        if change_ix < len(changes) and len(path) + 1 >= changes[change_ix]:
            change_ix += 1
            prio[tid] = depth - change_ix
        if not _safe_step(k, tid):
            break
        path.append(tid)
        if k.violations:
            return path, True
    return path, False


# ------------------------------------------------------------------ driver


def resolve_patches(scenario: Scenario, settings: dict[str, bool] | None) -> dict[str, bool]:
    """The scenario's patch overrides with ``settings`` applied (``all`` expands first).

    Raises:
        ExploreError: an unknown patch name.
    """
    out = dict(scenario.kernel.patches)
    for name, on in (settings or {}).items():
        if name == "all":
            out.update(dict.fromkeys(PATCHES, on))
            out.pop("all", None)
        elif name not in PATCHES:
            raise ExploreError(f"unknown patch {name!r}; known: all, {', '.join(PATCHES)}")
        else:
            out[name] = on
    return out


def parse_patch_args(items: Sequence[str]) -> dict[str, bool]:
    """``NAME=on|off`` strings (``--patch``) as a dict, in order.

    Raises:
        ExploreError: a malformed item or an unknown name.
    """
    out: dict[str, bool] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        value = value.strip().lower()
        if not sep or value not in ("on", "off", "true", "false", "1", "0"):
            raise ExploreError(f"--patch {item!r}: expected NAME=on or NAME=off")
        if name != "all" and name not in PATCHES:
            raise ExploreError(f"unknown patch {name!r}; known: all, {', '.join(PATCHES)}")
        out[name] = value in ("on", "true", "1")
    return out


def configured(
    scenario: Scenario,
    patches: dict[str, bool] | None = None,
    mode: str | None = None,
    arch: str | None = None,
) -> tuple[Scenario, Kernel]:
    """The scenario with the patch settings applied, and its initial kernel."""
    resolved = resolve_patches(scenario, patches)
    sc = scenario.with_overrides(patches=resolved)
    return sc, build_kernel(sc, mode, arch)


def explore(
    scenario: Scenario,
    patches: dict[str, bool] | None = None,
    preemptions: int = 2,
    max_schedules: int | None = None,
    seconds: float | None = None,
    strategy: str = "bounded",
    seed: int | None = None,
    jobs: int = 1,
    dask: str | None = None,
    max_depth: int = MAX_DEPTH,
    mode: str | None = None,
    arch: str | None = None,
    minimize: bool = True,
    cache: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
    por: bool = False,
) -> ExploreResult:
    """Search the schedules of ``scenario`` for an invariant violation.

    Args:
        scenario: A loaded scenario.
        patches: Patch toggles (``{"name": bool}``; ``all`` sets every one).
        preemptions: The preemption bound (``bounded``), or PCT's depth - 1.
        max_schedules, seconds: Budgets (None: none).
        strategy: ``bounded`` or ``pct``.
        seed: PCT's seed (default: a random one, reported in the result).
        jobs: Local processes for ``bounded`` (subtrees split at a shallow depth).
        dask: A dask scheduler address instead of local processes.
        max_depth: Steps a schedule may take before it is cut.
        mode, arch: Overrides of the scenario's kernel settings.
        minimize: Shorten the counterexample (fewest steps within its preemptions).
        cache: State caching (off only to measure what it saves).
        por: Sleep sets (module docstring; off by default: they do not pay here).
        progress: Called with a dict (bound, schedules, states, seconds) now and then.

    Raises:
        ExploreError: bad arguments.
    """
    if preemptions < 0:
        raise ExploreError("--preemptions must be 0 or more")
    if strategy not in ("bounded", "pct"):
        raise ExploreError(f"unknown strategy {strategy!r}; expected bounded or pct")
    sc, k0 = configured(scenario, patches, mode, arch)
    root = snapshot(k0)
    resolved = dict(k0.patch)
    mode_name = "per_vma" if k0.per_vma else "mmap_lock"
    started = time.monotonic()
    limits = Limits(max_schedules, seconds, max_depth)
    found: list[int] | None = None
    exhaustive = False
    schedules = states = 0
    bound = preemptions
    if strategy == "pct":
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "little")
        found, schedules, exhaustive = _pct(root, seed, preemptions + 1, limits, progress)
        states = 0
    elif jobs > 1 or dask is not None:
        from vmaviz.explore.parallel import bounded_parallel

        found, bound, schedules, states, exhaustive = bounded_parallel(
            root, preemptions, limits, jobs, dask, progress, cache, por
        )
    else:
        search = Bounded(root, limits, progress, cache, por)
        try:
            for b in range(preemptions + 1):
                bound = b
                found = search.run_pass(b)
                if found is not None:
                    break
            else:
                exhaustive = not search.truncated
        except _Stop:
            pass
        schedules, states = search.schedules, search.states
    result = ExploreResult(
        found=found is not None,
        violation=None,
        schedule=None,
        preemptions=None,
        steps=None,
        schedules=schedules,
        states=states,
        seconds=0.0,
        exhaustive=exhaustive and found is None,
        bound=bound,
        strategy=strategy,
        seed=seed if strategy == "pct" else None,
        patches=resolved,
        mode=mode_name,
        arch=k0.arch,
    )
    if found is not None:
        p = count_preemptions(restore(root), found)
        result.found_preemptions, result.found_steps = p, len(found)
        best = found
        if minimize:
            from vmaviz.explore.minimize import shortest

            left = None if seconds is None else max(1.0, seconds - (time.monotonic() - started))
            best = shortest(root, found, p, Limits(max_schedules, left, max_depth), por)
        k = restore(root)
        result.preemptions = count_preemptions(k, best)
        inv_step, inv, msg = k.violations[0]
        result.violation = Violation(inv, inv_step, msg)
        result.schedule = best
        result.steps = len(best)
        from vmaviz.explore.minimize import explain

        result.explanation = explain(sc, mode_name, k0.arch, best)
    result.seconds = time.monotonic() - started
    return result


def _pct(
    root: bytes,
    seed: int,
    depth: int,
    limits: Limits,
    progress: Callable[[dict[str, Any]], None] | None,
) -> tuple[list[int] | None, int, bool]:
    """PCT runs until a violation or a budget; (schedule, runs, False)."""
    rng = random.Random(seed)
    # The length of the default-ordered run estimates the steps for change points.
    length = len(pct_run(root, random.Random(0), 1, 1, limits.max_depth)[0])
    started = time.monotonic()
    cap = limits.max_schedules if limits.max_schedules is not None else 10_000
    runs = 0
    while runs < cap:
        if limits.seconds is not None and time.monotonic() - started > limits.seconds:
            break
        path, violated = pct_run(root, rng, depth, length, limits.max_depth)
        runs += 1
        if runs % CHECK_EVERY == 0 and progress is not None:
            progress(
                {
                    "bound": depth - 1,
                    "schedules": runs,
                    "states": 0,
                    "seconds": time.monotonic() - started,
                }
            )
        if violated:
            return path, runs, False
    return None, runs, False
