"""A run as timelines: what each thread was doing, and who held each lock, over time.

:func:`build_timeline` reads only the engine's trace (one row per step), never
the kernel state, so it works on any finished or stopped run.  Each row says
what one thread did at one instant; the thread then stays in the state that
step left it in until its next row.  A step that queues on a lock is followed
by the step that got the lock, so "waiting" is the interval between them.

Thread state is classified with whole-array numpy operations (per-code lookup
tables, per-thread cumulative sums for lock nesting), so a million-step trace
takes about a second; only the merged segments and the lock events are visited
one by one.  Which event acquires or releases which lock comes from the Perfetto
exporter's tables (:func:`vmaviz.engine.export.lock_effect`), so both views agree.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from vmaviz.engine.export import lock_effect, split_note, synced_trace, thread_names
from vmaviz.engine.ownership import Holders, Ownership
from vmaviz.model.kernel import ARCH_HANDLER, OP_ENTRY

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vmaviz.engine.engine import Engine

#: What a thread can be doing, in drawing order (see :data:`vmaviz.ui.palette.SEGMENT_STYLES`).
SEGMENT_KINDS = (
    "running",
    "faulting",
    "spinning",
    "wait_mmap_read",
    "wait_mmap_write",
    "hold_mmap_read",
    "hold_mmap_write",
    "hold_vma_read",
    "wait_vma_write",
    "blocked_other",
    "sleeping",
    "done",
)
_K = {k: i for i, k in enumerate(SEGMENT_KINDS)}

#: Modes of a lock interval: mmap_lock has ``read`` and ``write``; a VMA lock also has
#: ``write_locked``, its write-locked epoch (``vm_lock_seq == mm_lock_seq``).
LOCK_MODES = ("read", "write", "write_locked")

#: Event codes that leave the thread off the normal path until its next step:
#: code -> (kind when the lock key ``a`` is 0 = mmap_lock, kind for a VMA lock).
_TRANSIENT: dict[str, tuple[str, str]] = {
    "down_read:queued": ("wait_mmap_read", "blocked_other"),
    "down_write:queued": ("wait_mmap_write", "wait_vma_write"),
    "down_write:retry_failed": ("wait_mmap_write", "wait_vma_write"),
    "down_write:spin": ("spinning", "spinning"),
    "down_write:spinning": ("spinning", "spinning"),
    "sleep": ("sleeping", "sleeping"),
    "barrier:wait": ("blocked_other", "blocked_other"),
    "handle_userfault:wait_monitor": ("blocked_other", "blocked_other"),
    "exit": ("done", "done"),
}
_ACTION = {"read_acquire": 0, "write_acquire": 1, "read_release": 2, "write_release": 3}
_DOWNGRADE, _QUEUED = 4, 5
_SEQ_CODES = ("vma_start_write:seq_set", "vma_end_write_all")
_ENTRY_OP = {entry: kind for kind, entry in OP_ENTRY.items()}


class Segment(NamedTuple):
    """One stretch of a thread's time in one state.

    The first four fields are ``(start_ns, end_ns, kind, label)``; ``step`` is the
    first step of the stretch (clicking it in the UI jumps there).
    """

    start_ns: int
    end_ns: int
    kind: str
    label: str
    step: int


class LockInterval(NamedTuple):
    """One stretch during which a lock had one set of holders in one mode."""

    start_ns: int
    end_ns: int
    mode: str
    label: str
    step: int


@dataclass(frozen=True, eq=False)
class ThreadTrack:
    """The segments of one thread, in time order, adjacent same-state steps merged."""

    tid: int
    name: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, eq=False)
class LockTrack:
    """The holder intervals of one lock (``key`` 0 is mmap_lock, else a VMA id).

    Intervals of different modes may overlap (a VMA can be write-locked by sequence
    number while a reader that raced in still holds its rwsem for a few steps).
    """

    key: int
    name: str
    intervals: tuple[LockInterval, ...]


@dataclass(frozen=True, eq=False)
class Timeline:
    """Threads and locks over the whole run, plus the time of every step.

    Attributes:
        scenario, mode, arch: Which run this is.
        end_ns: Time of the last step (0 for an empty trace).
        threads: One track per simulated thread, in thread-id order.
        locks: mmap_lock first, then every VMA lock that was ever taken, by id.
        step_times: ``step_times[i]`` is the time of step ``i`` (non-decreasing).
    """

    scenario: str
    mode: str
    arch: str
    end_ns: int
    threads: tuple[ThreadTrack, ...]
    locks: tuple[LockTrack, ...]
    step_times: array[int]

    @property
    def n_steps(self) -> int:
        return len(self.step_times)

    def step_at(self, time_ns: float) -> int:
        """The step in progress at ``time_ns``: the last step whose time is <= it.

        Clamped to ``0 .. n_steps - 1`` (0 for an empty trace).
        """
        i = bisect_right(self.step_times, time_ns) - 1
        return max(0, min(i, len(self.step_times) - 1))

    def time_of(self, step: int) -> int:
        """The time of ``step`` (``end_ns`` past the last step)."""
        if not self.step_times:
            return 0
        if step >= len(self.step_times):
            return self.end_ns
        return int(self.step_times[max(step, 0)])

    def segment_count(self) -> int:
        return sum(len(t.segments) for t in self.threads)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (lists and dicts of str and int)."""
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "arch": self.arch,
            "end_ns": self.end_ns,
            "threads": [
                {"tid": t.tid, "name": t.name, "segments": [list(s) for s in t.segments]}
                for t in self.threads
            ],
            "locks": [
                {"key": lk.key, "name": lk.name, "intervals": [list(iv) for iv in lk.intervals]}
                for lk in self.locks
            ],
            "step_times": self.step_times.tolist(),
        }


def _np(col: array[int]) -> NDArray[Any]:
    """A zero-copy numpy view of a trace column (its typecode is a numpy dtype too)."""
    if not len(col):
        return np.zeros(0, dtype=np.int64)
    return np.frombuffer(col, dtype=np.dtype(col.typecode)).astype(np.int64)


def _group_cumsum(delta: NDArray[Any], start: NDArray[Any]) -> NDArray[Any]:
    """Cumulative sums of ``delta`` restarting at every ``start`` (rows grouped by thread)."""
    cs = np.cumsum(delta)
    first = np.flatnonzero(start)
    before = np.concatenate(([0], cs))[first]
    group = np.cumsum(start) - 1
    out: NDArray[Any] = cs - before[group]
    return out


def build_timeline(engine: Engine) -> Timeline:
    """The per-thread segments and per-lock holder intervals of ``engine``'s run.

    Args:
        engine: A run (finished or not; the steps taken so far are used).

    Returns:
        The :class:`Timeline`.
    """
    t = synced_trace(engine)
    n = len(t)
    names = thread_names(engine)
    end_ns = int(t.time[n - 1]) if n else 0
    vma_names = engine.k.mm.vma_names()
    grants = _grants(t)
    threads = _granted_early(
        _thread_tracks(engine, names, vma_names, end_ns), grants, t, names, vma_names
    )
    locks = _lock_tracks(engine, names, vma_names, end_ns, grants)
    return Timeline(
        scenario=engine.scenario.name,
        mode=engine.mode,
        arch=engine.arch,
        end_ns=end_ns,
        threads=threads,
        locks=locks,
        step_times=array("q", t.time),
    )


# ------------------------------------------------------------------------ grants


def _grants(t: Any) -> dict[int, list[tuple[int, list[int]]]]:
    """Step -> the readers that step granted a lock to: ``[(key, [tid, ...])]``.

    A writer's unlock (or a downgrade) grants the lock to the waiting readers on the
    spot; they hold it from that step, though each records its ``down_read:granted``
    only when it runs again. Both views must show them holding it from the grant.
    """
    out: dict[int, list[tuple[int, list[int]]]] = {}
    for step, note in t.notes.items():
        if "granted=" in note:
            _rest, found = split_note(note)
            if found:
                out[step] = found
    return out


def _granted_early(
    threads: tuple[ThreadTrack, ...],
    grants: dict[int, list[tuple[int, list[int]]]],
    t: Any,
    names: dict[int, str],
    vma_names: dict[int, str],
) -> tuple[ThreadTrack, ...]:
    """Each granted reader holds the lock from its grant, not from when it next runs:
    its waiting segment is cut at the grant and the rest drawn as holding."""
    if not grants:
        return threads
    by_tid = {th.tid: list(th.segments) for th in threads}
    for step in sorted(grants):
        at = int(t.time[step])
        waker = names.get(int(t.tid[step]), f"T{int(t.tid[step])}")
        for key, tids in grants[step]:
            kind = "hold_mmap_read" if key == 0 else "hold_vma_read"
            label = (
                f"holds {_lock_name(key, vma_names)} (read): granted by {waker}, not running yet"
            )
            for tid in tids:
                segs = by_tid.get(tid)
                if not segs:
                    continue
                j = bisect_right([sg.start_ns for sg in segs], at) - 1
                if j < 0:
                    continue
                sg = segs[j]
                if not (sg.start_ns <= at < sg.end_ns) or sg.kind not in _WAITING:
                    continue
                held = Segment(at, sg.end_ns, kind, label, step)
                segs[j : j + 1] = [sg._replace(end_ns=at), held] if at > sg.start_ns else [held]
    return tuple(
        ThreadTrack(th.tid, th.name, tuple(by_tid[th.tid])) if th.tid in by_tid else th
        for th in threads
    )


#: Segment kinds of a reader waiting for a lock (mmap_lock, or a VMA lock).
_WAITING = ("wait_mmap_read", "blocked_other")


# ----------------------------------------------------------------------- threads


def _thread_tracks(
    engine: Engine, names: dict[int, str], vma_names: dict[int, str], end_ns: int
) -> tuple[ThreadTrack, ...]:
    t = engine.trace
    codes = t.codes
    nc = max(len(codes), 1)
    # Per-code lookup tables: what each event code means, computed once per code.
    tr0 = np.full(nc, -1, dtype=np.int64)
    tr1 = np.full(nc, -1, dtype=np.int64)
    action = np.full(nc, -1, dtype=np.int64)
    fixed_key = np.full(nc, -1, dtype=np.int64)
    for ci, cname in enumerate(codes):
        if cname in _TRANSIENT:
            k0, k1 = _TRANSIENT[cname]
            tr0[ci], tr1[ci] = _K[k0], _K[k1]
        eff = lock_effect(cname)
        if eff is not None:
            act_name, fixed = eff
            action[ci] = _ACTION.get(act_name, _DOWNGRADE if act_name == "downgrade" else _QUEUED)
            if fixed is not None:
                fixed_key[ci] = fixed
    handlers = set(ARCH_HANDLER.values())
    in_fault = np.array([any(fn in handlers for fn in s) for s in t.stacks] or [False])

    tid_all = _np(t.tid)
    rows = np.flatnonzero(tid_all >= 0)  # the RCU pseudo-thread (-1) has no track
    per_thread: dict[int, list[Segment]] = {th.tid: [] for th in engine.k.threads}
    m = len(rows)
    if m == 0:
        return tuple(ThreadTrack(tid, names.get(tid, f"T{tid}"), ()) for tid in per_thread)
    # Group the rows by thread (stable, so each thread's rows stay in step order).
    order = rows[np.argsort(tid_all[rows], kind="stable")]
    tids = tid_all[order]
    time = _np(t.time)[order]
    code = _np(t.code)[order]
    stack = _np(t.stack)[order]
    op = _np(t.op)[order]
    a = _np(t.a)[order]

    first = np.ones(m, dtype=bool)
    first[1:] = tids[1:] != tids[:-1]
    last = np.ones(m, dtype=bool)
    last[:-1] = first[1:]
    # A row lasts until the thread's next row; a thread's last row until the run's end.
    ends = np.where(last, end_ns, np.concatenate((time[1:], [end_ns])))

    act = action[code]
    key = np.where(fixed_key[code] >= 0, fixed_key[code], a)
    mmap = key == 0
    ra = act == _ACTION["read_acquire"]
    wa = act == _ACTION["write_acquire"]
    rr = act == _ACTION["read_release"]
    wr = act == _ACTION["write_release"]
    dg = act == _DOWNGRADE
    d_mread = (ra & mmap).astype(np.int64) - (rr & mmap) + (dg & mmap)
    d_mwrite = (wa & mmap).astype(np.int64) - (wr & mmap) - (dg & mmap)
    vacq = ra & ~mmap
    d_vread = vacq.astype(np.int64) - (rr & ~mmap)
    mread = _group_cumsum(d_mread, first)
    mwrite = _group_cumsum(d_mwrite, first)
    vread = _group_cumsum(d_vread, first)

    # Priority, lowest first: running < faulting < VMA read < mmap read < mmap write <
    # whatever the step itself left the thread doing (waiting, spinning, sleeping, done).
    kind = np.where(in_fault[stack], _K["faulting"], _K["running"])
    kind = np.where(vread > 0, _K["hold_vma_read"], kind)
    kind = np.where(mread > 0, _K["hold_mmap_read"], kind)
    kind = np.where(mwrite > 0, _K["hold_mmap_write"], kind)
    trans = np.where(mmap, tr0[code], tr1[code])
    kind = np.where(trans >= 0, trans, kind)

    # The VMA whose read lock a thread holds: its last VMA read-acquire (forward fill).
    src = np.maximum.accumulate(np.where(vacq | first, np.arange(m), 0))
    vkey = np.where(vacq[src], key[src], -1)

    # Zero-length rows show nothing; merging the rest by (thread, kind, op) keeps the
    # segment count near the number of state changes, not the number of steps.
    keep = np.flatnonzero(ends > time)
    kt, kk, ko = tids[keep], kind[keep], op[keep]
    nk = len(keep)
    brk = np.ones(nk, dtype=bool)
    brk[1:] = (kt[1:] != kt[:-1]) | (kk[1:] != kk[:-1]) | (ko[1:] != ko[:-1])
    starts = np.flatnonzero(brk)
    stops = np.concatenate((starts[1:] - 1, [nk - 1])).astype(np.int64)
    seg_rows = keep[starts]
    seg_ends = ends[keep[stops]] if nk else keep

    labels: dict[tuple[int, ...], str] = {}
    stacks = t.stacks
    for r, s_end in zip(seg_rows.tolist(), seg_ends.tolist(), strict=True):
        k, sid, ci, kr, vk = (
            int(kind[r]),
            int(stack[r]),
            int(code[r]),
            int(key[r]),
            int(vkey[r]),
        )
        lkey = (k, sid, ci, kr, vk)
        label = labels.get(lkey)
        if label is None:
            label = labels[lkey] = _segment_label(
                SEGMENT_KINDS[k], stacks[sid], codes[ci], kr, vk, vma_names
            )
        per_thread.setdefault(int(tids[r]), []).append(
            Segment(int(time[r]), int(s_end), SEGMENT_KINDS[k], label, int(order[r]))
        )
    return tuple(
        ThreadTrack(tid, names.get(tid, f"T{tid}"), tuple(segs))
        for tid, segs in sorted(per_thread.items())
    )


def _lock_name(key: int, vma_names: dict[int, str]) -> str:
    if key == 0:
        return "mmap_lock"
    name = vma_names.get(key)
    return f"vma{key} {name}" if name else f"vma{key}"


def _segment_label(
    kind: str,
    stack: tuple[str, ...],
    code: str,
    key: int,
    vkey: int,
    vma_names: dict[int, str],
) -> str:
    op = _ENTRY_OP.get(stack[0], stack[0]) if stack else ""
    if kind == "running":
        return op or "user space"
    if kind == "faulting":
        return f"page fault ({op})" if op and op != "fault" else "page fault"
    if kind == "hold_mmap_read":
        return f"holds mmap_lock (read): {op}"
    if kind == "hold_mmap_write":
        return f"holds mmap_lock (write): {op}"
    if kind == "hold_vma_read":
        return f"holds {_lock_name(vkey, vma_names)} (read)"
    if kind == "wait_mmap_read":
        return "waits for mmap_lock (read)"
    if kind == "wait_mmap_write":
        return f"waits for mmap_lock (write): {op}"
    if kind == "wait_vma_write":
        return f"waits for {_lock_name(key, vma_names)} (write)"
    if kind == "spinning":
        return f"spins on {_lock_name(key, vma_names)}"
    if kind == "blocked_other":
        if code.startswith("barrier"):
            return "waits at a barrier"
        if code.startswith("handle_userfault"):
            return "waits for the userfault monitor"
        return f"waits for {_lock_name(key, vma_names)}"
    if kind == "sleeping":
        return "sleeps"
    return "done"


# ------------------------------------------------------------------------- locks


class _Builder:
    """Open/close intervals per (lock, mode) so that each has one label throughout."""

    def __init__(self) -> None:
        self.open: dict[tuple[int, str], tuple[int, str, int]] = {}
        self.done: dict[int, list[LockInterval]] = {}

    def set(self, key: int, mode: str, label: str, time: int, step: int) -> None:
        cur = self.open.get((key, mode))
        if cur is not None and cur[1] == label:
            return
        if cur is not None:
            self.close(key, mode, time)
        if label:
            self.open[(key, mode)] = (time, label, step)

    def close(self, key: int, mode: str, time: int) -> None:
        cur = self.open.pop((key, mode), None)
        if cur is not None and time > cur[0]:
            self.done.setdefault(key, []).append(LockInterval(cur[0], time, mode, cur[1], cur[2]))
        else:
            self.done.setdefault(key, [])


def _who(names: dict[int, str], tids: list[int]) -> str:
    shown = [names.get(t, f"T{t}") for t in dict.fromkeys(tids)]
    if len(shown) > 4:
        shown = [*shown[:4], f"+{len(shown) - 4}"]
    return ", ".join(shown)


def _lock_tracks(
    engine: Engine,
    names: dict[int, str],
    vma_names: dict[int, str],
    end_ns: int,
    grants: dict[int, list[tuple[int, list[int]]]] | None = None,
) -> tuple[LockTrack, ...]:
    t = engine.trace
    grants = grants or {}
    effects = [lock_effect(c) for c in t.codes]
    relevant = [ci for ci, c in enumerate(t.codes) if effects[ci] is not None or c in _SEQ_CODES]
    code_col = _np(t.code)
    idx = np.flatnonzero(np.isin(code_col, relevant)) if len(code_col) else code_col
    if grants:
        idx = np.union1d(idx, np.fromiter(grants, dtype=np.int64, count=len(grants)))
    own = Ownership(Holders)
    seq_locked: dict[int, int] = {}  # key -> vm_lock_seq, while its epoch is open
    b = _Builder()
    b.done[0] = []
    times, tids, codes, a_col, b_col = t.time, t.tid, t.code, t.a, t.b

    def refresh(key: int, time: int, step: int, action: str) -> None:
        st = own.locks[key]
        if action != "write_acquire" and action != "write_release":
            read = f"read: {_who(names, st.readers)}" if st.readers else ""
            b.set(key, "read", read, time, step)
        if action != "read_acquire" and action != "read_release":
            write = f"write: {_who(names, [st.writer])}" if st.writer is not None else ""
            b.set(key, "write", write, time, step)

    for i in idx.tolist():
        ci = codes[i]
        code = t.codes[ci]
        time, tid, a = times[i], tids[i], a_col[i]
        eff = effects[ci]
        if eff is not None:
            action, fixed = eff
            key = a if fixed is None else fixed
            # A read_acquire absorbed by its earlier grant changes no label: skip it.
            if own.apply(action, key, tid):
                refresh(key, time, i, action)
        for gkey, gtids in grants.get(i, ()):
            own.grant(gkey, gtids)
            refresh(gkey, time, i, "read_acquire")
        if code == "vma_start_write:seq_set":
            seq_locked[a] = b_col[i]
            who = names.get(tid, f"T{tid}")
            b.set(a, "write_locked", f"write-locked by {who} (seq {b_col[i]})", time, i)
        elif code == "vma_end_write_all" or (
            code in ("mmap_write_unlock", "mmap_write_downgrade") and a >= 0
        ):
            # mm_lock_seq changed: every VMA locked in an older epoch is unlocked at once.
            for key in [k for k, seq in seq_locked.items() if seq != a]:
                del seq_locked[key]
                b.close(key, "write_locked", time)
    for key, mode in list(b.open):
        b.close(key, mode, end_ns)
    return tuple(
        LockTrack(key, _lock_name(key, vma_names), tuple(sorted(b.done.get(key, []))))
        for key in sorted(set(b.done) | {0})
    )


__all__ = [
    "LOCK_MODES",
    "SEGMENT_KINDS",
    "LockInterval",
    "LockTrack",
    "Segment",
    "ThreadTrack",
    "Timeline",
    "build_timeline",
]
