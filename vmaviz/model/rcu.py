"""RCU as the per-VMA-lock code relies on it (reference §6.5, §13).

Each thread is either inside a read-side section or not.  ``call_rcu`` records
the set of threads that are inside a section at that moment; the callback may
run only once every one of them has left that section (sections started later
do not delay it) *and* the configured grace-period latency has passed, which is
how a user widens race windows.

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
    """One queued ``call_rcu``: ``kind`` names what is freed (``vma`` or ``maple_node``)."""

    seq: int
    kind: str
    payload: Any
    queued_ns: int
    waiting_for: set[int]
    gp: int


@tuple_state
@dataclass(slots=True)
class Rcu:
    """The RCU state of one simulated machine.

    Attributes:
        grace_ns: the shortest time from ``call_rcu`` to the callback.
        nesting: read-side nesting depth per thread (``rcu_read_lock`` count).
        section: per thread, a counter bumped at every outermost
            ``rcu_read_unlock``; a callback waits for the section that was open
            when it was queued, not for later ones.
        pending: queued callbacks in ``call_rcu`` order.
        gp_completed: how many grace periods have ended.
    """

    grace_ns: int = 20_000
    nesting: dict[int, int] = field(default_factory=dict)
    pending: list[RcuCallback] = field(default_factory=list)
    gp_completed: int = 0
    gp_started: int = 0
    seq: int = 0
    freed: dict[str, int] = field(default_factory=lambda: {"vma": 0, "maple_node": 0})

    def in_section(self, tid: int) -> bool:
        return self.nesting.get(tid, 0) > 0

    def readers(self) -> list[int]:
        """Threads inside a read-side section, in id order."""
        return sorted(t for t, n in self.nesting.items() if n > 0)

    def read_lock(self, tid: int) -> None:
        """``rcu_read_lock``."""
        self.nesting[tid] = self.nesting.get(tid, 0) + 1

    def read_unlock(self, tid: int) -> None:
        """``rcu_read_unlock``: leaving the outermost section releases waiting callbacks."""
        depth = self.nesting.get(tid, 0)
        if depth <= 0:
            raise RuntimeError(f"rcu_read_unlock by T{tid} outside a read-side section")
        if depth == 1:
            del self.nesting[tid]
            for cb in self.pending:
                cb.waiting_for.discard(tid)
        else:
            self.nesting[tid] = depth - 1

    def call_rcu(self, kind: str, payload: Any, now: int) -> RcuCallback:
        """``call_rcu``: queue a free that waits for every current reader."""
        self.seq += 1
        if not self.pending or self.pending[-1].gp <= self.gp_completed:
            self.gp_started += 1
        cb = RcuCallback(self.seq, kind, payload, now, set(self.readers()), self.gp_started)
        self.pending.append(cb)
        return cb

    def next_expiry(self) -> int | None:
        """The earliest time at which some callback's latency has passed."""
        if not self.pending:
            return None
        # Callbacks are queued in time order (call_rcu appends at "now"), so the
        # oldest is the first.
        return self.pending[0].queued_ns + self.grace_ns

    def ready_peek(self, now: int) -> bool:
        """Whether the oldest callback could run at ``now``."""
        if not self.pending:
            return False
        cb = self.pending[0]
        return not cb.waiting_for and now >= cb.queued_ns + self.grace_ns

    def ready(self, now: int) -> list[RcuCallback]:
        """Remove and return the callbacks whose grace period has ended by ``now``.

        Callbacks complete in ``call_rcu`` order, as the kernel's per-CPU
        segmented callback lists do: one still waiting holds back later ones.
        """
        done: list[RcuCallback] = []
        while self.pending:
            cb = self.pending[0]
            if cb.waiting_for or now < cb.queued_ns + self.grace_ns:
                break
            self.pending.pop(0)
            done.append(cb)
            self.freed[cb.kind] = self.freed.get(cb.kind, 0) + 1
        if done:
            self.gp_completed = max(self.gp_completed, done[-1].gp)
        return done
