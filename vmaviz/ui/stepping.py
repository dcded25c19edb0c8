"""Moving the cursor: granularities, breakpoints and the event-log window (pure functions).

The cursor is one integer ``m``: the number of steps executed. In single view it
counts the steps of the one run. In compare view it counts the steps of both runs
merged in time order (ties: the left run first), so one cursor is one time and each
run shows its state after the steps it had taken by then: moving the cursor moves
both sides together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from vmaviz.ui.session import RunData

GRANULARITIES = ("step", "function", "operation")

#: Breakpoint kinds, in the order the UI lists them: value -> label.
BREAKPOINTS = {
    "fallback": "a fault falls back to mmap_lock (any abort)",
    "abort": "lock_vma_under_rcu aborts with reason …",
    "enter": "a thread enters a function …",
    "vma_write": "a VMA becomes write-locked …",
    "mmap_wait": "a waiter queues on mmap_lock",
    "miss": "lock_vma_under_rcu retries after a VMA_LOCK_MISS",
    "retry": "a fault under the VMA lock returns VM_FAULT_RETRY (VMA_LOCK_RETRY)",
    "violation": "an invariant is violated",
}

#: Event codes at which the per-VMA lock counters MISS and RETRY are counted.
_MISS_CODES = ("lock_vma_under_rcu:miss_retry",)
_RETRY_CODES = ("fault:vma_lock_retry", "fault:signal_pending_quick_exit")

#: Event codes whose ``a`` argument is a VMA id (the event-log VMA filter uses it).
VID_PREFIXES = (
    "vma_start_read",
    "vma_end_read",
    "vma_start_write",
    "lock_vma_under_rcu:",
    "fault:vma_",
    "fault:access_ok",
    "fault:done_mmap_lock",
    "fault:retry_tried",
    "fault:bad_area_access_error",
    "anon_vma_prepare",
    "do_anonymous_page",
    "set_pte_at",
    "find_vma",
    "vma_link",
    "vm_area_alloc",
    "vm_flags_reset",
    "change_protection",
    "vma_merge",
    "vm_flags_set",
    "vma_mark_detached",
    "vma_expand",
    "do_swap_page",
    "do_wp_page",
    "do_fault",
    "handle_userfault",
    "handle_pte_fault",
    "expand_stack",
    "show_map_vma",
    "collapse_huge_page",
    "mremap:",
    "move_page_tables",
    "do_brk_flags",
    "exit_mmap:remove_vma",
    "dup_mmap:vm_area_dup",
    "try_to_unmap",
    "down_read",
    "down_write",
    "do_vmi_munmap:vma_find",
)
NO_VID = ("lock_vma_under_rcu:rcu_read_lock",)


def event_kind(code: str) -> str:
    """The event-log "kind" of an event code: the part before the first colon."""
    return code.split(":", 1)[0] or "step"


@dataclass(frozen=True)
class Breakpoints:
    """The breakpoints the user switched on, with their parameters."""

    kinds: tuple[str, ...] = ()
    reason: str | None = None
    thread: str | None = None
    function: str | None = None
    vma: str | None = None

    @classmethod
    def from_ui(
        cls,
        kinds: Sequence[str] | None,
        reason: str | None,
        thread: str | None,
        function: str | None,
        vma: str | None,
    ) -> Breakpoints:
        return cls(
            tuple(k for k in (kinds or ()) if k in BREAKPOINTS), reason, thread, function, vma
        )

    #: The breakpoints ticked when a page opens (and when a link names none).
    DEFAULT_KINDS = ("fallback",)

    def to_params(self) -> dict[str, str]:
        """Permalink parameters (none for the default set)."""
        if self.kinds == self.DEFAULT_KINDS and not any(
            (self.reason, self.thread, self.function, self.vma)
        ):
            return {}
        out = {"bp": ",".join(self.kinds) or "none"}
        for name in ("reason", "thread", "function", "vma"):
            value = getattr(self, name)
            if value:
                out[f"bp_{name}"] = str(value)
        return out

    @classmethod
    def from_query(cls, search: str | None) -> Breakpoints | None:
        """The breakpoints a permalink names (``None``: it names none)."""
        params = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items() if v}
        if "bp" not in params:
            return None
        kinds = tuple(k for k in params["bp"].split(",") if k in BREAKPOINTS)
        named = {n: params.get(f"bp_{n}", "")[:200] or None for n in ("reason", "thread")}
        more = {n: params.get(f"bp_{n}", "")[:200] or None for n in ("function", "vma")}
        return cls(kinds, named["reason"], named["thread"], more["function"], more["vma"])

    def rows(self, run: RunData) -> np.ndarray:
        """The sorted rows of ``run`` at which any of these breakpoints fires."""
        found: list[np.ndarray] = []
        for kind in self.kinds:
            found.append(self._rows(run, kind))
        if not found:
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate(found))

    def _rows(self, run: RunData, kind: str) -> np.ndarray:
        empty = np.zeros(0, np.int64)
        if kind == "fallback":
            return run.rows_with_codes(
                run.codes_matching(lambda c: c.startswith("lock_vma_under_rcu:abort:"))
            )
        if kind == "abort":
            if not self.reason:
                return empty
            return run.rows_with_codes(
                [i for i in [run.code_id(f"lock_vma_under_rcu:abort:{self.reason}")] if i >= 0]
            )
        if kind == "enter":
            if not self.function:
                return empty
            starts = run.function_starts
            inner = np.array([f == self.function for f in run.innermost], dtype=bool)
            rows = starts[inner[run.stack[starts]]] if len(starts) else empty
            if self.thread:
                tid = _tid(run, self.thread)
                rows = rows[run.tid[rows] == tid]
            return rows
        if kind == "vma_write":
            rows = run.rows_with_codes(
                [i for i in [run.code_id("vma_start_write:seq_set")] if i >= 0]
            )
            if self.vma:
                vids = [v for v, name in run.vma_names.items() if name == self.vma]
                rows = rows[np.isin(run.a[rows], vids)]
            return rows
        if kind == "mmap_wait":
            rows = run.rows_with_codes(
                [i for c in ("down_read:queued", "down_write:queued") if (i := run.code_id(c)) >= 0]
            )
            waits: np.ndarray = rows[run.a[rows] == 0]
            return waits
        if kind in ("miss", "retry"):
            codes = _MISS_CODES if kind == "miss" else _RETRY_CODES
            return run.rows_with_codes([i for c in codes if (i := run.code_id(c)) >= 0])
        if kind == "violation":
            return run.violation_rows
        return empty


def _tid(run: RunData, name: str) -> int:
    try:
        return run.thread_names.index(name)
    except ValueError:
        return -2


class Track:
    """One run, or two runs merged in time order, as one sequence of steps."""

    def __init__(self, runs: Sequence[RunData]) -> None:
        self.runs = list(runs)
        if len(self.runs) == 1:
            self.total = self.runs[0].steps
            self._order: np.ndarray | None = None
            self._pos: list[np.ndarray] = []
            self._counts: list[np.ndarray] = []
            self._times = self.runs[0].time
            return
        times = np.concatenate([r.time for r in self.runs])
        sides = np.concatenate(
            [np.full(r.steps, i, dtype=np.int64) for i, r in enumerate(self.runs)]
        )
        order = np.argsort(times, kind="stable")
        self._order = sides[order]
        self._times = times[order]
        self.total = len(order)
        self._pos = [np.flatnonzero(self._order == i) for i in range(len(self.runs))]
        self._counts = [
            np.concatenate(([0], np.cumsum(self._order == i))) for i in range(len(self.runs))
        ]

    def clamp(self, m: Any) -> int:
        try:
            value = int(m)
        except (TypeError, ValueError):
            value = 0
        return max(0, min(value, self.total))

    def split(self, m: int) -> list[int]:
        """Steps executed by each run when ``m`` merged steps have run."""
        m = self.clamp(m)
        if self._order is None:
            return [m]
        return [int(c[m]) for c in self._counts]

    def position(self, side: int, row: int) -> int:
        """The cursor at which ``row`` of run ``side`` has just run (its row is current)."""
        run = self.runs[side]
        row = max(0, min(row, run.steps - 1))
        if run.steps == 0:
            return 0
        if self._order is None:
            return row + 1
        return int(self._pos[side][row]) + 1

    def positions(self, side: int, rows: np.ndarray) -> np.ndarray:
        """:meth:`position` of many rows at once (sorted rows give sorted cursors)."""
        out: np.ndarray = rows + 1 if self._order is None else self._pos[side][rows] + 1
        return out

    def time_at(self, m: int) -> int:
        """The simulated time of the cursor: the time of the last step run (0 at start)."""
        m = self.clamp(m)
        return int(self._times[m - 1]) if m > 0 else 0

    def at_time(self, t: float) -> int:
        """The cursor after every step at or before time ``t``."""
        return int(np.searchsorted(self._times, t, side="right"))

    def current(self, m: int) -> list[int | None]:
        """Each run's current row (the step it ran last), ``None`` before its first."""
        return [n - 1 if n > 0 else None for n in self.split(m)]

    # ------------------------------------------------------------ moving

    def next_in(self, m: int, candidates: list[np.ndarray], forward: bool) -> int | None:
        """The nearest cursor among per-run candidate rows, after (or before) ``m``."""
        best: int | None = None
        for side, rows in enumerate(candidates):
            if not len(rows):
                continue
            pos = self.positions(side, rows)
            if forward:
                i = int(np.searchsorted(pos, m, side="right"))
                if i < len(pos) and (best is None or pos[i] < best):
                    best = int(pos[i])
            else:
                i = int(np.searchsorted(pos, m, side="left")) - 1
                if i >= 0 and (best is None or pos[i] > best):
                    best = int(pos[i])
        return best

    def move(self, m: int, granularity: str, count: int) -> int:
        """``count`` steps (negative: back) at a granularity: step, function, operation."""
        m = self.clamp(m)
        if granularity not in ("function", "operation"):
            return self.clamp(m + count)
        forward = count > 0
        for _ in range(abs(count)):
            if granularity == "function":
                rows = [r.function_starts for r in self.runs]
            else:
                rows = [r.op_starts for r in self.runs]
            target = self.next_in(m, rows, forward)
            if target is None:
                return self.total if forward else 0
            m = target
        return m

    def breakpoint(self, m: int, bps: Breakpoints, forward: bool = True) -> int | None:
        """The first cursor after ``m`` (or the last before it) at which a breakpoint
        fires: the cursor that shows the firing step as its last (``None``: none)."""
        return self.next_in(self.clamp(m), [bps.rows(r) for r in self.runs], forward)


# =====================================================================
# Event log
# =====================================================================


@dataclass(frozen=True)
class LogFilter:
    thread: str | None = None
    kind: str | None = None
    vma: str | None = None

    def active(self) -> bool:
        return bool(self.thread or self.kind or self.vma)

    def mask(self, run: RunData) -> np.ndarray | None:
        """Rows of ``run`` that pass, or ``None`` when nothing is filtered."""
        if not self.active():
            return None
        mask = np.ones(run.steps, dtype=bool)
        codes = run.engine.trace.codes
        if self.thread:
            mask &= run.tid == (_tid(run, self.thread) if self.thread != "rcu" else -1)
        if self.kind:
            ids = [i for i, c in enumerate(codes) if event_kind(c) == self.kind]
            mask &= np.isin(run.code, ids)
        if self.vma:
            ids = [i for i, c in enumerate(codes) if c.startswith(VID_PREFIXES) and c not in NO_VID]
            vids = [v for v, name in run.vma_names.items() if name == self.vma]
            mask &= np.isin(run.code, ids) & np.isin(run.a, vids)
        return mask


#: The event log shows pages: rows move a page at a time, not one row per step, so
#: stepping within a page only moves the "current" mark (a small patch).
LOG_PAGE = 16
LOG_CONTEXT = 4


def log_rows(run: RunData, current: int | None, flt: LogFilter) -> list[int]:
    """Rows of the event log around the current row.

    A page of :data:`LOG_PAGE` rows (of the rows passing the filter) holding the
    current row, plus :data:`LOG_CONTEXT` rows on each side.
    """
    if not run.steps:
        return []
    cur = -1 if current is None else current
    mask = flt.mask(run)
    if mask is None:
        base = (max(cur, 0) // LOG_PAGE) * LOG_PAGE
        lo = max(0, base - LOG_CONTEXT)
        hi = min(run.steps, base + LOG_PAGE + LOG_CONTEXT)
        return list(range(lo, hi))
    rows = np.flatnonzero(mask)
    i = max(int(np.searchsorted(rows, cur, side="right")) - 1, 0)
    base = (i // LOG_PAGE) * LOG_PAGE
    return [int(r) for r in rows[max(0, base - LOG_CONTEXT) : base + LOG_PAGE + LOG_CONTEXT]]


def row_dict(run: RunData, i: int) -> dict[str, Any]:
    """A trace row with the thread's name added (``rcu`` for the RCU callbacks)."""
    row = run.engine.trace.row(i)
    row["thread"] = run.thread_name(int(row["tid"]))
    return row


def log_kinds(run: RunData) -> list[str]:
    return sorted({event_kind(c) for c in run.engine.trace.codes})
