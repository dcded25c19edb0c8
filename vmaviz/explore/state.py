"""Snapshots and canonical state keys for the race explorer.

A snapshot is the whole :class:`~vmaviz.model.kernel.Kernel` pickled (the same
copy the engine's keyframes use), so a branch of the search restores the state
at its branching point instead of re-running from step 0.

A *state key* says when two states behave the same from here on.  It is the
pickle of the kernel through a pickler whose dispatch table leaves out what
only records history and never decides a later step:

* the step bookkeeping (``steps``, ``step_*``, the last ``event``, the
  interned stack table and the frame-id counter ``next_fid``; a frame's ``fid``);
* the statistics (``vma_lock``, ``abort_reasons``, ``fault_stats``,
  ``mmap_wait``, freed counters, ``violations``: the search stops at the first);
* per-thread accounting (``blocked_since``, ``blocked_ns``, ``done_ns``,
  ``faults``) and the cache lines' transfer counts;
* the heap's sequence numbers (the heap is keyed as its sorted valid entries).

Times are kept *relative to the clock*: the model's behaviour does not change
when every time in the state moves by the same amount, so each time the model
compares with the clock is keyed as what is left of it (``max(0, t - now)``:
a deadline already passed stays passed, since the clock only goes forward).
That covers the heap's event times (a step behind the clock runs at the
clock), cache lines' ``busy_until``, a spinner's ``spin_until`` and
``resched_at``, an rwsem waiter's hand-off timeout, the time slice used and
how much of the RCU grace period has gone.  Start times kept only for
statistics (``since``, a callback's ``queued_ns``) are left out.  So equal
keys mean equal behaviour and caching never hides a schedule, while two
interleavings that reach the same locks and lists at shifted instants still
meet.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import pickle
import random
from typing import Any

from vmaviz.model.kernel import Kernel
from vmaviz.model.pickling import slot_names
from vmaviz.model.rcu import Rcu, RcuCallback
from vmaviz.model.rwsem import RWSEM_WAIT_TIMEOUT_NS, Waiter
from vmaviz.model.sched import Frame, Line, Thread
from vmaviz.scenario.schema import Op

#: Kernel slots that record history only (see the module docstring).
_KERNEL_SKIP = frozenset(
    {
        "steps",
        "step_tid",
        "step_cpu",
        "step_sid",
        "step_fid",
        "step_op",
        "event",
        "stack_table",
        "stack_child",
        "next_fid",
        "seq",
        "vma_lock",
        "abort_reasons",
        "fault_stats",
        "mmap_wait",
        "violations",
        "nodes_freed",
        "vmas_freed",
        "fault_latencies",
        "maple_full_due",
        "forget_at",
        "heap",
        "pending",
        "now",
        "rcu_timer_at",
        # Fixed for the whole search: the same in every state compared.
        "costs",
        "patch",
        "names",
        "arch",
        "per_vma",
        "ncpus",
        "keep_freed",
        "check_maple",
        "barrier_sizes",
    }
)
_KERNEL_KEEP = tuple(n for n in slot_names(Kernel) if n not in _KERNEL_SKIP)
_THREAD_SKIP = frozenset(
    {"blocked_since", "blocked_ns", "done_ns", "faults", "slice_start", "start_ns"}
)
_THREAD_KEEP = tuple(n for n in slot_names(Thread) if n not in _THREAD_SKIP)
_RCU_SKIP = frozenset({"gp_start_ns", "freed", "seq"})
_RCU_KEEP = tuple(n for n in slot_names(Rcu) if n not in _RCU_SKIP)
#: Frame locals that hold deadlines (compared with the clock) and start times
#: (statistics only).
_LOC_DEADLINES = ("spin_until", "resched_at")
_LOC_STARTS = ("since",)

#: The clock of the kernel being keyed (the reducers below read it).
_now = 0
#: Its time slice and grace period (clip what is used of them).
_slice = 0


class _Keyed:
    """Stands for a keyed object in a state key: pickled first, its fields after.

    With the fields as the pickle's *state*, the object is memoised before
    them, so reference cycles (the maple tree's callback holds the kernel)
    pickle as references.  Key pickles are hashed, never loaded.
    """


def _reduce_kernel(k: Kernel) -> tuple[Any, ...]:
    # The heap without sequence numbers, in a canonical order; a pending step
    # (not yet pushed) counts as the heap entry it will become.
    now = k.now
    heap = sorted((max(0, e[0] - now), e[1], e[3], e[4]) for e in k.heap)
    if k.pending is not None:
        at, tid, token = k.pending
        heap.append((max(0, at - now), 2, tid, token))
        heap.sort()
    timer = -1 if k.rcu_timer_at < 0 else max(0, k.rcu_timer_at - now)
    return (_Keyed, (), (heap, timer, *(getattr(k, n) for n in _KERNEL_KEEP)))


def _reduce_thread(th: Thread) -> tuple[Any, ...]:
    used = min(_slice, max(0, _now - th.slice_start))
    return (_Keyed, (), (used, max(0, th.start_ns - _now), *(getattr(th, n) for n in _THREAD_KEEP)))


def _reduce_frame(fr: Frame) -> tuple[Any, ...]:
    # The stack id is an index into the interning table, whose order depends on
    # which thread reached a function first; the frame's function and pc say the same.
    loc = fr.loc
    if any(n in loc for n in _LOC_DEADLINES) or any(n in loc for n in _LOC_STARTS):
        loc = {n: v for n, v in loc.items() if n not in _LOC_STARTS}
        for n in _LOC_DEADLINES:
            if n in loc:
                loc[n] = max(0, loc[n] - _now)
    return (_Keyed, (), (fr.fn, fr.pc, loc))


def _reduce_line(ln: Line) -> tuple[Any, ...]:
    return (_Keyed, (), (ln.owner_cpu, max(0, ln.busy_until - _now)))


def _reduce_random(r: random.Random) -> tuple[Any, ...]:
    # The op-start jitter generator: every state of one search draws from the
    # same seeded sequence, so its position (the Mersenne Twister's index and
    # the first word of the current block) tells two states apart, at a
    # 20th of the size of the whole state.
    st = r.getstate()[1]
    return (_Keyed, (), (st[0], st[-1]))


def _reduce_op(op: Op) -> tuple[Any, ...]:
    # Scenario ops never change; a loop's body is reached through pc_stack.
    return (_Keyed, (), (op.kind, op.line, op.args))


def _reduce_waiter(w: Waiter) -> tuple[Any, ...]:
    left = max(0, w.since_ns + RWSEM_WAIT_TIMEOUT_NS - _now)
    return (_Keyed, (), (w.tid, w.kind, left, w.handoff_set))


def _reduce_rcu(r: Rcu) -> tuple[Any, ...]:
    gone = min(r.grace_ns, max(0, _now - r.gp_start_ns))
    return (_Keyed, (), (gone, *(getattr(r, n) for n in _RCU_KEEP)))


def _reduce_callback(cb: RcuCallback) -> tuple[Any, ...]:
    return (_Keyed, (), (cb.kind, cb.payload, cb.waiting_for, cb.gp))


_DISPATCH: dict[type, Any] = {
    **copyreg.dispatch_table,
    Kernel: _reduce_kernel,
    Thread: _reduce_thread,
    Frame: _reduce_frame,
    Line: _reduce_line,
    Waiter: _reduce_waiter,
    random.Random: _reduce_random,
    Op: _reduce_op,
    Rcu: _reduce_rcu,
    RcuCallback: _reduce_callback,
}


def state_key(k: Kernel, last: int) -> bytes:
    """A digest of what decides the rest of the run, plus the thread that moved last.

    ``last`` is part of the key because it decides which switches cost a
    preemption (see :mod:`vmaviz.explore.search`).
    """
    global _now, _slice
    _now = k.now
    _slice = k.costs["timeslice"]
    buf = io.BytesIO()
    p = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _DISPATCH
    p.dump(k)
    h = hashlib.blake2b(buf.getbuffer(), digest_size=16)
    h.update(last.to_bytes(4, "little", signed=True))
    return h.digest()


def snapshot(k: Kernel) -> bytes:
    """The whole kernel state, to restore a branch point with :func:`restore`."""
    return pickle.dumps(k, pickle.HIGHEST_PROTOCOL)


def restore(blob: bytes) -> Kernel:
    """A fresh kernel equal to the one :func:`snapshot` saved."""
    k: Kernel = pickle.loads(blob)
    return k
