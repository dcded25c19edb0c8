"""Lock hand-offs (who woke whom) and the statistics of a time range, from a trace.

Both the timeline's flow arrows (:mod:`vmaviz.ui.lanes`) and the Perfetto export
(:mod:`vmaviz.engine.export`) draw an arrow from the step that released or granted a
lock to the thread it woke. The model says which threads a release woke in the
step's note (``MachineBase.wake_all`` in ``vmaviz/model/sched.py``: readers granted
the lock by ``rwsem_mark_wake`` as ``granted=KEY:TIDS``, writers woken to retry it
as ``woke=KEY:TIDS``), so nothing here guesses: the arrow's tail is that step and
its head is the woken thread's next step, the moment it runs again.

The range statistics (:func:`range_stats`) answer "what happened between these two
times": how long each thread waited for each lock, and how the faults in the range
went (VMA lock taken, retried, aborted and why, mmap_lock fallbacks). They are
computed with numpy from the trace's columns and the wait intervals
(:func:`lock_waits`), which are built once per run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vmaviz.engine.engine import Trace

_WAKE = re.compile(r"(granted|woke)=(\d+):([\d,]+)")

#: Codes that put a thread to sleep on a lock's wait list (``a`` is the lock key).
QUEUE_CODES = ("down_read:queued", "down_write:queued")
#: Codes that end a wait on the lock ``a``: got it, or left the queue on a signal.
WAIT_END_CODES = (
    "down_read:granted",
    "down_write:acquired_after_wait",
    "rwsem_down_read_slowpath:eintr",
    "rwsem_down_write_slowpath:eintr",
)

#: Fault outcomes counted by :func:`range_stats`: code -> what the count means.
FAULT_CODES = {
    "fault:entry": "faults",
    "fault:vma_lock_success": "handled under the VMA lock",
    "fault:vma_lock_retry": "VMA-lock fault asked to retry",
    "fault:done_mmap_lock": "handled under mmap_lock",
    "fault:mmap_read_trylock_failed": "mmap_read_trylock failed (slept for mmap_lock)",
    "do_swap_page:retry_vma_lock": "swap-in retried under mmap_lock",
    "fault:bad_area_sigsegv": "SIGSEGV",
}
#: ``lock_vma_under_rcu:abort:REASON``: a per-VMA attempt fell back to mmap_lock.
ABORT_PREFIX = "lock_vma_under_rcu:abort:"


@dataclass(frozen=True)
class Flows:
    """One row per woken thread, as equal-length numpy columns.

    Attributes:
        step: The step that woke it (a release, downgrade or grant).
        key: The lock (0 is mmap_lock, else a VMA id).
        waker: Thread id that took ``step``.
        woken: Thread id woken.
        granted: True when the lock was handed over at ``step`` (readers).
        head: The woken thread's next step (when it runs again).
        t0_ns, t1_ns: The times of ``step`` and ``head``.
    """

    step: Any
    key: Any
    waker: Any
    woken: Any
    granted: Any
    head: Any
    t0_ns: Any
    t1_ns: Any

    def __len__(self) -> int:
        return len(self.step)


def _columns(t: Trace) -> tuple[Any, Any, Any, Any]:
    t.flush()
    return (
        np.frombuffer(t.time, dtype=np.int64) if len(t.time) else np.zeros(0, np.int64),
        np.frombuffer(t.tid, dtype=np.int16).astype(np.int64)
        if len(t.tid)
        else np.zeros(0, np.int64),
        np.frombuffer(t.code, dtype=np.uint16).astype(np.int64)
        if len(t.code)
        else np.zeros(0, np.int64),
        np.frombuffer(t.a, dtype=np.int64) if len(t.a) else np.zeros(0, np.int64),
    )


def wake_flows(t: Trace) -> Flows:
    """Every wake the model recorded, with the step the woken thread next ran.

    A wake whose thread never ran again (the run stopped first) has no head and is
    left out, as is one by the RCU pseudo-thread (it holds no rw_semaphore).
    """
    time, tid, _code, _a = _columns(t)
    rows: list[tuple[int, int, int, int, bool]] = []
    for i in sorted(t.notes):
        note = t.notes[i]
        if "=" not in note:
            continue
        for kind, key, tids in _WAKE.findall(note):
            rows += [(i, int(key), int(tid[i]), int(x), kind == "granted") for x in tids.split(",")]
    per_tid: dict[int, Any] = {}
    out: list[tuple[int, int, int, int, bool, int]] = []
    for i, key, waker, woken, granted in rows:
        if waker < 0:
            continue
        steps = per_tid.get(woken)
        if steps is None:
            steps = per_tid[woken] = np.flatnonzero(tid == woken)
        j = int(np.searchsorted(steps, i, side="right"))
        if j < len(steps):
            out.append((i, key, waker, woken, granted, int(steps[j])))
    cols = list(zip(*out, strict=True)) if out else [(), (), (), (), (), ()]
    step = np.asarray(cols[0], dtype=np.int64)
    head = np.asarray(cols[5], dtype=np.int64)
    return Flows(
        step=step,
        key=np.asarray(cols[1], dtype=np.int64),
        waker=np.asarray(cols[2], dtype=np.int64),
        woken=np.asarray(cols[3], dtype=np.int64),
        granted=np.asarray(cols[4], dtype=bool),
        head=head,
        t0_ns=time[step] if len(step) else np.zeros(0, np.int64),
        t1_ns=time[head] if len(head) else np.zeros(0, np.int64),
    )


@dataclass(frozen=True)
class Waits:
    """Each sleep on a lock's wait list: ``tid``, ``key``, ``start_ns``, ``end_ns``.

    A wait runs from the step that queued the thread to the step where it got the
    lock or gave up (:data:`WAIT_END_CODES`), or to the end of the run.
    """

    tid: Any
    key: Any
    start_ns: Any
    end_ns: Any


def lock_waits(t: Trace) -> Waits:
    """The wait intervals of a run (only the queue and wait-end steps are visited)."""
    time, tid, code, a = _columns(t)
    queue = [t.code_ix[c] for c in QUEUE_CODES if c in t.code_ix]
    end = [t.code_ix[c] for c in WAIT_END_CODES if c in t.code_ix]
    rows = np.flatnonzero(np.isin(code, queue + end)) if queue else np.zeros(0, np.int64)
    is_queue = np.isin(code[rows], queue)
    open_: dict[tuple[int, int], int] = {}
    out: list[tuple[int, int, int, int]] = []
    for i, q in zip(rows.tolist(), is_queue.tolist(), strict=True):
        who = (int(tid[i]), int(a[i]))
        if q:
            # A writer that failed its retry stays queued: one wait, not two.
            open_.setdefault(who, int(time[i]))
        elif who in open_:
            out.append((*who, open_.pop(who), int(time[i])))
    last = int(time[-1]) if len(time) else 0
    out += [(*who, start, last) for who, start in open_.items()]
    cols = list(zip(*out, strict=True)) if out else [(), (), (), ()]
    return Waits(*(np.asarray(c, dtype=np.int64) for c in cols))


def range_stats(
    t: Trace,
    waits: Waits,
    t0_ns: int,
    t1_ns: int,
    thread_names: dict[int, str],
    lock_names: dict[int, str],
) -> dict[str, Any]:
    """What happened between ``t0_ns`` and ``t1_ns`` (inclusive of steps at both ends).

    Returns:
        ``t0_ns``, ``t1_ns``; ``steps`` (how many in the range); ``waits``: per
        thread and lock, the ns spent waiting inside the range, longest first
        (``[{"thread", "lock", "ns", "count"}]``, ``count`` being the waits that
        overlap the range); ``faults``: ``[{"what", "count"}]`` for the fault
        outcomes of :data:`FAULT_CODES` present; ``aborts``: ``[{"reason",
        "count"}]`` for per-VMA attempts that fell back (:data:`ABORT_PREFIX`).
    """
    lo, hi = (int(t0_ns), int(t1_ns)) if t0_ns <= t1_ns else (int(t1_ns), int(t0_ns))
    time, _tid, code, _a = _columns(t)
    s0 = int(np.searchsorted(time, lo, side="left"))
    s1 = int(np.searchsorted(time, hi, side="right"))
    counts = np.bincount(code[s0:s1], minlength=len(t.codes))
    faults = [
        {"what": what, "count": int(counts[t.code_ix[c]])}
        for c, what in FAULT_CODES.items()
        if c in t.code_ix and counts[t.code_ix[c]]
    ]
    aborts: list[dict[str, Any]] = [
        {"reason": c[len(ABORT_PREFIX) :], "count": int(counts[ix])}
        for c, ix in t.code_ix.items()
        if c.startswith(ABORT_PREFIX) and counts[ix]
    ]
    aborts.sort(key=lambda r: (-r["count"], r["reason"]))
    overlap = np.minimum(waits.end_ns, hi) - np.maximum(waits.start_ns, lo)
    hit = (overlap > 0) | ((waits.start_ns <= hi) & (waits.end_ns >= lo) & (overlap == 0))
    out_waits: list[dict[str, Any]] = []
    if hit.any():
        pair = waits.tid[hit] * (1 << 32) + waits.key[hit]
        uniq, inv = np.unique(pair, return_inverse=True)
        total = np.bincount(inv, weights=np.maximum(overlap[hit], 0), minlength=len(uniq))
        n = np.bincount(inv, minlength=len(uniq))
        for p, ns, c in zip(uniq.tolist(), total.tolist(), n.tolist(), strict=True):
            th, key = p >> 32, p & 0xFFFFFFFF
            out_waits.append(
                {
                    "thread": thread_names.get(th, str(th)),
                    "lock": lock_names.get(key, f"vma{key} vm_lock"),
                    "ns": int(ns),
                    "count": int(c),
                }
            )
        out_waits.sort(key=lambda r: (-r["ns"], r["thread"], r["lock"]))
    return {
        "t0_ns": lo,
        "t1_ns": hi,
        "steps": s1 - s0,
        "waits": out_waits,
        "faults": faults,
        "aborts": aborts,
    }


__all__ = [
    "ABORT_PREFIX",
    "FAULT_CODES",
    "QUEUE_CODES",
    "WAIT_END_CODES",
    "Flows",
    "Waits",
    "lock_waits",
    "range_stats",
    "wake_flows",
]
