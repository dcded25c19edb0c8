"""Tree RCU as the per-VMA-lock code relies on it (reference §6.5, §13; ``kernel/rcu/tree.c``).

Each thread is either inside a read-side section or not.  Callbacks are
batched by grace period, as Tree RCU does:

* ``call_rcu`` (``__call_rcu_common``, then ``rcu_accelerate_cbs``) gives a
  callback the grace-period number ``rcu_seq_snap(&rcu_state.gp_seq)``: with no
  grace period in progress that is the next one, which starts at once
  (``rcu_start_this_gp``); while grace period *n* is in progress it is *n + 1*,
  because readers that started before the callback may not be covered by *n*.
* A grace period waits for every thread that was inside a read-side section
  when it started (its quiescent states), and lasts at least ``grace_ns``:
  that is how a user widens race windows.
* When grace period *n* ends (``rcu_gp_cleanup``), every callback numbered
  *n* or less runs together (``rcu_do_batch``), and if callbacks wait for
  *n + 1*, that grace period starts at once (``needgp``).

Callbacks carry plain data (what to free), never Python callables, so that the
whole model can be copied into a keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmaviz.model.pickling import tuple_state


@tuple_state
@dataclass(slots=True)
class RcuCallback:
    """One queued ``call_rcu``: ``kind`` names what is freed (``vma`` or ``maple_node``).

    Attributes:
        gp: the grace period after whose end it runs (``rcu_seq_snap``).
        waiting_for: the readers that grace period still waits for; empty
            until it starts (see :meth:`Rcu.gp_in_progress`).
        cpu: the CPU whose callback list it was queued on (``__call_rcu_common``
            enqueues on the caller's ``rcu_data``), -1 when no CPU is known.
    """

    seq: int
    kind: str
    payload: Any
    queued_ns: int
    waiting_for: set[int]
    gp: int
    cpu: int = -1


@tuple_state
@dataclass(slots=True)
class Rcu:
    """The RCU state of one simulated machine.

    Attributes:
        grace_ns: the shortest duration of a grace period.
        nesting: read-side nesting depth per thread (``rcu_read_lock`` count).
        pending: queued callbacks in ``call_rcu`` order (so in grace-period order).
        gp_completed: how many grace periods have ended (``rcu_seq_ctr(gp_seq)``).
        gp_started: how many have started; one more than ``gp_completed``
            while a grace period is in progress.
        gp_start_ns: when the grace period in progress started.
    """

    grace_ns: int = 20_000
    nesting: dict[int, int] = field(default_factory=dict)
    pending: list[RcuCallback] = field(default_factory=list)
    gp_completed: int = 0
    gp_started: int = 0
    seq: int = 0
    freed: dict[str, int] = field(default_factory=lambda: {"vma": 0, "maple_node": 0})
    gp_start_ns: int = 0

    def in_section(self, tid: int) -> bool:
        return self.nesting.get(tid, 0) > 0

    def readers(self) -> list[int]:
        """Threads inside a read-side section, in id order."""
        return sorted(t for t, n in self.nesting.items() if n > 0)

    @property
    def gp_in_progress(self) -> bool:
        """``rcu_seq_state(rcu_state.gp_seq) != 0``: a grace period has started, not ended."""
        return self.gp_started > self.gp_completed

    def read_lock(self, tid: int) -> None:
        """``rcu_read_lock``."""
        self.nesting[tid] = self.nesting.get(tid, 0) + 1

    def read_unlock(self, tid: int) -> None:
        """``rcu_read_unlock``: leaving the outermost section is this thread's quiescent state."""
        depth = self.nesting.get(tid, 0)
        if depth <= 0:
            raise RuntimeError(f"rcu_read_unlock by T{tid} outside a read-side section")
        if depth == 1:
            del self.nesting[tid]
            for cb in self.pending:
                cb.waiting_for.discard(tid)
        else:
            self.nesting[tid] = depth - 1

    def _start_gp(self, now: int) -> None:
        """``rcu_gp_init``: the next grace period waits for the readers inside now."""
        self.gp_started += 1
        self.gp_start_ns = now
        inside = self.readers()
        for cb in self.pending:
            if cb.gp == self.gp_started:
                cb.waiting_for = set(inside)

    def call_rcu(self, kind: str, payload: Any, now: int, cpu: int = -1) -> RcuCallback:
        """``call_rcu``: queue a free for the grace period ``rcu_seq_snap`` names.

        With a grace period in progress the callback needs the one after it;
        with none, the next one, which starts now.  ``cpu`` is the caller's CPU
        (see :meth:`rcu_head_next_is_null`).
        """
        self.seq += 1
        busy = self.gp_in_progress
        gp = self.gp_started + 1 if busy else self.gp_completed + 1
        cb = RcuCallback(self.seq, kind, payload, now, set(), gp, cpu)
        self.pending.append(cb)
        if not busy:
            self._start_gp(now)
        return cb

    def rcu_head_next_is_null(self, kind: str, payload: Any) -> bool:
        """Whether the queued callback's ``rcu_head.next`` is still NULL.

        ``rcu_segcblist_enqueue`` (kernel/rcu/rcu_segcblist.c) sets the new
        callback's ``next`` to NULL and links it behind the tail of its CPU's
        list, so ``next`` stays NULL until another callback is queued on the
        same CPU.  A stale reader of a freed VMA reads that pointer as
        ``vm_start`` (the union in include/linux/mm_types.h): see
        ``lock_vma_under_rcu`` in vmaviz/model/kernel.py.
        """
        mine = next((cb for cb in self.pending if cb.kind == kind and cb.payload == payload), None)
        if mine is None:
            return False
        return not any(cb.seq > mine.seq and cb.cpu == mine.cpu for cb in self.pending)

    def _gp_can_end(self, now: int) -> bool:
        if not self.gp_in_progress or now < self.gp_start_ns + self.grace_ns:
            return False
        current = self.gp_started
        return not any(cb.waiting_for for cb in self.pending if cb.gp == current)

    def next_expiry(self) -> int | None:
        """The earliest time at which the grace period in progress may end."""
        if not self.gp_in_progress:
            return None
        return self.gp_start_ns + self.grace_ns

    def ready_peek(self, now: int) -> bool:
        """Whether the grace period in progress can end at ``now``."""
        return self._gp_can_end(now)

    def ready(self, now: int) -> list[RcuCallback]:
        """End the grace period in progress if it can; return the callbacks it releases.

        ``rcu_gp_cleanup`` ends grace period *n*; ``rcu_do_batch`` then runs,
        in ``call_rcu`` order, every callback numbered *n* or less, and the
        next grace period starts at once if callbacks wait for it (with a
        ``grace_ns`` of 0 and no reader it may end at the same instant).
        """
        done: list[RcuCallback] = []
        while self._gp_can_end(now):
            self.gp_completed += 1
            while self.pending and self.pending[0].gp <= self.gp_completed:
                cb = self.pending.pop(0)
                done.append(cb)
                self.freed[cb.kind] = self.freed.get(cb.kind, 0) + 1
            if self.pending:
                self._start_gp(now)
        return done
