"""Export a run's trace: CSV (one row per step) and Chrome trace-event JSON for Perfetto.

The trace keeps only what each step did (time, thread, CPU, event code, kernel
stack, two arguments).  Both exporters rebuild everything else from those rows, so
they work on any finished or stopped :class:`~vmaviz.engine.engine.Engine` without
touching its state.

Perfetto layout (open the file in https://ui.perfetto.dev):

* process 1 "threads": one track per simulated thread (``tid`` = thread id + 1) and
  one for the RCU callbacks.  Each thread shows an outer slice per scenario op and,
  inside it, one slice per kernel function on its call stack, nested like a flame
  chart.  Every step is also an instant event named by its event code.
* process 2 "locks": a track for ``mmap_lock`` (``tid`` 1) and one per VMA lock
  (``tid`` = VMA id + 1) with a slice per held period (read or write, with the
  holders), plus counters for ``mm_lock_seq``, the mmap_lock readers and waiters and
  each VMA's ``vm_lock_seq``.
* flow arrows from an unlock to the waiter it wakes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from vmaviz.engine.ownership import Holders, Ownership

if TYPE_CHECKING:
    from vmaviz.engine.engine import Engine, Trace
    from vmaviz.scenario.schema import Op

#: Column names of :func:`to_csv` (also the first columns of the notebook DataFrame).
CSV_COLUMNS = ("step", "time_ns", "thread", "cpu", "event", "a", "b", "stack")

#: Name of the RCU pseudo-thread (trace tid -1).
RCU_NAME = "rcu"

PID_THREADS = 1
PID_LOCKS = 2

# --- Activation boundaries ---------------------------------------------------------
#
# The trace records the *names* on a thread's kernel stack, not frame identities, so
# two back-to-back calls of the same function (touch faulting page 0 then page 1,
# hold_mmap_write write-locking two VMAs) look like one long activation.  These event
# codes mark where the innermost function of the step started or finished, which is
# enough to split such calls; a code missing here only merges two slices, it never
# breaks the nesting.  A trailing ':' matches any code with that prefix.

#: The step is the first step of its innermost function.
ENTRY_CODES = (
    "fault:entry",
    "lock_vma_under_rcu:rcu_read_lock",
    "vma_start_read:seq_ok",
    "vma_start_read:seq_locked",
    "down_read:acquired",
    "down_read:queued",
    "down_write:spin",
    "vma_end_read:up_read",
    "vma_start_write:already_locked",
    "mmap_read_unlock",
    "compute",
    "sleep",
    "barrier:",
)

#: The innermost function of the step returned at the end of it.
EXIT_CODES = (
    "down_read:acquired",
    "down_read:granted",
    "down_write:acquired",
    "down_write:acquired_spinning",
    "down_write:acquired_after_wait",
    "mmap_read_unlock",
    "mmap_write_unlock",
    "mmap_write_downgrade",
    "vma_end_write_all",
    "vma_start_read:seq_locked",
    "vma_start_read:trylock_failed",
    "vma_start_read:seq_locked_after_trylock",
    "vma_start_read:locked",
    "vma_end_read:rcu_read_unlock",
    "vma_start_write:already_locked",
    "vma_start_write:up_write",
    "lock_vma_under_rcu:locked",
    "lock_vma_under_rcu:abort:",
    "set_pte_at",
    "handle_pte_fault:spurious",
    "do_swap_page:retry_vma_lock",
    "handle_userfault:resolved",
    "fault:vma_lock_success",
    "fault:done_mmap_lock",
    "compute",
)

# --- Lock events: event code -> how it changes which thread holds which lock -------
# ``None`` as key means "the lock key is the step's ``a`` argument".

_READ_ACQUIRE: dict[str, int | None] = {
    "down_read:acquired": None,
    "down_read:granted": None,
    "vma_start_read:trylock_ok": None,
    "fault:mmap_read_trylock_ok": 0,
}
_WRITE_ACQUIRE: dict[str, int | None] = {
    "down_write:acquired": None,
    "down_write:acquired_spinning": None,
    "down_write:acquired_after_wait": None,
}
_READ_RELEASE: dict[str, int | None] = {
    "mmap_read_unlock": 0,
    "handle_userfault:mmap_read_unlock": 0,
    "vma_end_read:up_read": None,
    "vma_start_read:seq_locked_after_trylock": None,
}
_WRITE_RELEASE: dict[str, int | None] = {
    "mmap_write_unlock": 0,
    "vma_start_write:up_write": None,
}
_DOWNGRADE: dict[str, int | None] = {"mmap_write_downgrade": 0}
_QUEUED: dict[str, int | None] = {"down_read:queued": None, "down_write:queued": None}


#: The lock actions :func:`lock_effect` reports.
LOCK_ACTIONS = (
    "read_acquire",
    "write_acquire",
    "read_release",
    "write_release",
    "downgrade",
    "queued",
)


def lock_effect(code: str) -> tuple[str, int | None] | None:
    """How an event code changes who holds which rw_semaphore (the tables above).

    Args:
        code: A trace event code.

    Returns:
        ``(action, key)`` with ``action`` one of :data:`LOCK_ACTIONS` and ``key`` the
        lock (0 is ``mmap_lock``, else a VMA id) or None when the step's ``a``
        argument names the lock; None when the code changes no lock.
    """
    for action, table in (
        ("read_acquire", _READ_ACQUIRE),
        ("write_acquire", _WRITE_ACQUIRE),
        ("read_release", _READ_RELEASE),
        ("write_release", _WRITE_RELEASE),
        ("downgrade", _DOWNGRADE),
        ("queued", _QUEUED),
    ):
        if code in table:
            return action, table[code]
    return None


def _matches(code: str, table: tuple[str, ...]) -> bool:
    return any(code.startswith(p) if p.endswith(":") else code == p for p in table)


_GRANT = re.compile(r"granted=(\d+):([\d,]+)")
_WOKE = re.compile(r"woke=(\d+):([\d,]+)")


def split_note(note: str) -> tuple[str, list[tuple[int, list[int]]]]:
    """A step's note without its lock grants, and the grants: ``[(key, [tid, ...])]``.

    A step that releases a lock may grant it to waiting readers on the spot (see
    ``MachineBase.wake_all``): they hold it from that step on, before they run.
    """
    grants = [(int(k), [int(x) for x in tids.split(",")]) for k, tids in _GRANT.findall(note)]
    parts = (x.strip() for x in note.split(";"))
    # The wake tags (``woke=``, for hand-off arrows: vmaviz.engine.flows) are not prose.
    rest = "; ".join(p for p in parts if p and not (_GRANT.fullmatch(p) or _WOKE.fullmatch(p)))
    return rest, grants


def synced_trace(engine: Engine) -> Trace:
    """The engine's trace with every recorded step moved into its column arrays.

    The engine may buffer the latest rows outside the arrays; readers of the
    columns must flush first or they miss the tail of the run.
    """
    t = engine.trace
    flush = getattr(t, "flush", None)
    if callable(flush):
        flush()
    return t


def thread_names(engine: Engine) -> dict[int, str]:
    """Trace tid -> display name (the scenario's thread names; ``rcu`` for -1)."""
    names = {th.tid: th.name for th in engine.k.threads}
    names[-1] = RCU_NAME
    return names


def stack_strings(engine: Engine) -> list[str]:
    """Each interned kernel stack as one string, outermost first, joined by ``>``."""
    return [">".join(s) for s in engine.trace.stacks]


# =====================================================================
# CSV
# =====================================================================


def to_csv(engine: Engine, file: IO[str]) -> int:
    """Write the trace as CSV, one row per step.

    Columns: ``step,time_ns,thread,cpu,event,a,b,stack`` (thread by name, ``rcu`` for
    the RCU pseudo-thread; the stack outermost first, joined by ``>``).

    Args:
        engine: A run (finished or not; the steps taken so far are written).
        file: A text file opened with ``newline=""`` (or ``sys.stdout``).

    Returns:
        The number of data rows written (the engine's step count).
    """
    t = synced_trace(engine)
    names = thread_names(engine)
    codes = t.codes
    stacks = stack_strings(engine)
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = len(t)
    # Column arrays are read once into locals: this loop runs once per step.
    time, tid, cpu, code, stack, a, b = t.time, t.tid, t.cpu, t.code, t.stack, t.a, t.b
    writer.writerows(
        (
            i,
            time[i],
            names.get(tid[i], str(tid[i])),
            cpu[i],
            codes[code[i]],
            a[i],
            b[i],
            stacks[stack[i]],
        )
        for i in range(n)
    )
    return n


# =====================================================================
# Perfetto (Chrome trace-event JSON)
# =====================================================================


def _us(ns: int) -> float:
    """Trace-event timestamps are microseconds; Perfetto rounds ``ts * 1000`` back to ns."""
    return ns / 1000


@dataclass
class _Slice:
    name: str
    start: int
    depth: int
    args: dict[str, Any] | None = None


@dataclass
class _Track:
    """Slices of one track, opened and closed like a call stack so they always nest."""

    pid: int
    tid: int
    open: list[_Slice] = field(default_factory=list)
    done: list[tuple[int, int, int, dict[str, Any]]] = field(default_factory=list)

    def push(self, name: str, start: int, args: dict[str, Any] | None = None) -> None:
        self.open.append(_Slice(name, start, len(self.open), args))

    def close_to(self, depth: int, end: int) -> None:
        """Close every open slice at ``depth`` or deeper, innermost first, at ``end``."""
        while len(self.open) > depth:
            s = self.open.pop()
            ev: dict[str, Any] = {
                "ph": "X",
                "name": s.name,
                "pid": self.pid,
                "tid": self.tid,
                "ts": _us(s.start),
                "dur": _us(end - s.start),
            }
            if s.args:
                ev["args"] = s.args
            self.done.append((s.start, -end, s.depth, ev))


def _unrolled(ops: list[Op]) -> Iterator[Op]:
    """A thread's ops in execution order, loops unrolled lazily (never materialised)."""
    for op in ops:
        if op.body is not None:
            for _ in range(int(op.args["times"])):
                yield from _unrolled(op.body)
        else:
            yield op


class _OpNames:
    """Op number (1-based, counted per thread like the engine does) -> scenario op."""

    def __init__(self, ops: list[Op] | None) -> None:
        self._it = _unrolled(ops) if ops is not None else iter(())
        self._n = 0
        self._op: Op | None = None

    def get(self, n: int) -> Op | None:
        # Op numbers only grow along a thread, so one forward pass serves every lookup.
        while self._n < n:
            self._op = next(self._it, None)
            self._n += 1
            if self._op is None:
                self._n = n
                break
        return self._op if self._n == n else None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _op_slice(n: int, op: Op | None, stack: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    if op is None:
        kind = stack[0] if stack else "op"
        return f"{kind} #{n}", {"op": n}
    target = op.args.get("vma") or op.args.get("name")
    name = f"{op.kind} {target}" if isinstance(target, str) else op.kind
    args = {"op": n, "line": op.line, **{k: _jsonable(v) for k, v in op.args.items()}}
    return name, args


@dataclass
class _Lock(Holders):
    """What the exporter knows about one rw_semaphore besides its holders."""

    waiters: set[int] = field(default_factory=set)
    #: (vm_lock_seq, tid) while a VMA is write-locked by ``vm_lock_seq == mm_lock_seq``.
    seq_locked: tuple[int, int] | None = None


def _holders(names: dict[int, str], tids: list[int]) -> str:
    shown = [names.get(t, str(t)) for t in dict.fromkeys(tids)]
    if len(shown) > 4:
        shown = [*shown[:4], f"+{len(shown) - 4}"]
    return ", ".join(shown)


class _PerfettoBuilder:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.t = synced_trace(engine)
        self.names = thread_names(engine)
        self.threads: dict[int, _Track] = {}
        self.locks: dict[int, _Track] = {}
        self.own = Ownership(_Lock)
        self.other: list[dict[str, Any]] = []  # counters, instants, flows
        self.flow_id = 0
        self.rcu_tid = len(engine.k.threads) + 1
        self.mm_lock_seq: int | None = None
        self.mmap_counts: dict[str, int] = {}
        self.last_counter: dict[str, dict[str, Any]] = {}
        specs = engine.scenario.threads
        self.ops = {
            th.tid: _OpNames(specs[th.tid].ops if th.tid < len(specs) else None)
            for th in engine.k.threads
        }

    # ------------------------------------------------------------------ tracks

    def ttid(self, tid: int) -> int:
        """Perfetto tid of a trace tid: thread id + 1; the RCU pseudo-thread last."""
        return self.rcu_tid if tid < 0 else tid + 1

    def thread_track(self, tid: int) -> _Track:
        tr = self.threads.get(tid)
        if tr is None:
            tr = self.threads[tid] = _Track(PID_THREADS, self.ttid(tid))
        return tr

    def lock_track(self, key: int) -> _Track:
        tr = self.locks.get(key)
        if tr is None:
            tr = self.locks[key] = _Track(PID_LOCKS, key + 1)
        return tr

    # ------------------------------------------------------------------ build

    def build(self, step_events: bool) -> dict[str, Any]:
        t = self.t
        n = len(t)
        codes = t.codes
        is_entry = [_matches(c, ENTRY_CODES) for c in codes]
        is_exit = [_matches(c, EXIT_CODES) for c in codes]
        effects = [lock_effect(c) for c in codes]
        prev: dict[int, tuple[int, int, int]] = {}  # tid -> (op, stack ix, code ix)
        self._init_counters()
        for i in range(n):
            tid, time, ci = t.tid[i], t.time[i], t.code[i]
            code = codes[ci]
            if tid < 0:
                self._rcu_step(i, time, code)
                continue
            op, si = t.op[i], t.stack[i]
            stack = t.stacks[si]
            track = self.thread_track(tid)
            last = prev.get(tid)
            # The engine records a thread's end as an "exit" step with an empty stack.
            ended = code == "exit" or not stack
            if ended or (last is not None and last[0] != op):
                track.close_to(0, time)
            if not ended:
                if not track.open:
                    name, args = _op_slice(op, self.ops[tid].get(op), stack)
                    track.push(name, time, args)
                # Frames sit below the op slice: open[k + 1] is stack[k].
                keep = 0
                frames = track.open[1:]
                while keep < len(frames) and keep < len(stack) and frames[keep].name == stack[keep]:
                    keep += 1
                if is_entry[ci]:
                    keep = min(keep, len(stack) - 1)
                if last is not None and last[0] == op and is_exit[last[2]]:
                    keep = min(keep, len(t.stacks[last[1]]) - 1)
                keep = max(keep, 0)
                track.close_to(keep + 1, time)
                for name in stack[keep:]:
                    track.push(name, time)
            prev[tid] = (op, si, ci)
            if step_events:
                self._instant(i, tid, time, code)
            self._lock_step(tid, time, code, effects[ci], t.a[i], t.b[i])
            note = t.notes.get(i)
            if note and "granted=" in note:
                self._granted(time, split_note(note)[1])
        end = max(t.time[n - 1] if n else 0, 0)
        for th in self.e.k.threads:
            tr = self.threads.get(th.tid)
            if tr is not None:
                tr.close_to(0, max(end, tr.open[0].start) if tr.open else end)
        for key, tr in self.locks.items():
            self._lock_changed(key, end, force_close=True)
            tr.close_to(0, end)
        self._flows()
        return self._document()

    # ---------------------------------------------------------------- steps

    def _instant(self, i: int, tid: int, time: int, code: str) -> None:
        self.other.append(
            {
                "ph": "i",
                "s": "t",
                "name": code or "step",
                "cat": "step",
                "pid": PID_THREADS,
                "tid": self.ttid(tid),
                "ts": _us(time),
                "args": {"step": i, "cpu": self.t.cpu[i], "a": self.t.a[i], "b": self.t.b[i]},
            }
        )

    def _rcu_step(self, i: int, time: int, code: str) -> None:
        # The RCU "thread" has no stack worth nesting: each batch is an instant.
        self.other.append(
            {
                "ph": "i",
                "s": "t",
                "name": code or "rcu_core",
                "cat": "rcu",
                "pid": PID_THREADS,
                "tid": self.rcu_tid,
                "ts": _us(time),
                "args": {"step": i, "vmas_freed": self.t.a[i], "nodes_freed": self.t.b[i]},
            }
        )

    # ---------------------------------------------------------------- locks

    def _init_counters(self) -> None:
        if self.e.mode == "per_vma":
            # The seq before the first step: keyframe 0 is the initial state.
            self.mm_lock_seq = self.e.state_at(0).mm.mm_lock_seq
            self._counter("mm", 0, {"mm_lock_seq": self.mm_lock_seq})
        self.mmap_counts = {"readers": 0, "waiters": 0}
        self._counter("mmap_lock", 0, dict(self.mmap_counts))

    def _counter(self, name: str, time: int, args: dict[str, int]) -> None:
        last = self.last_counter.get(name)
        if last is not None and last["ts"] == _us(time):
            # One sample per instant: the value after every change at that time.
            last["args"] = args
            return
        ev = {
            "ph": "C",
            "name": name,
            "cat": "lock",
            "pid": PID_LOCKS,
            "ts": _us(time),
            "args": args,
        }
        self.last_counter[name] = ev
        self.other.append(ev)

    def _state(self, key: int) -> _Lock:
        st = self.own.locks.get(key)
        if st is None:
            st = self.own.lock(key)
            self.lock_track(key)
        return st

    def _granted(self, time: int, grants: list[tuple[int, list[int]]]) -> None:
        """Readers an unlock granted the lock to: holders from now, before they run."""
        for key, tids in grants:
            self._state(key).waiters.difference_update(tids)
            self.own.grant(key, tids)
            self._lock_changed(key, time)

    def _lock_step(
        self, tid: int, time: int, code: str, eff: tuple[str, int | None] | None, a: int, b: int
    ) -> None:
        if eff is not None:
            action, fixed = eff
            key = _key(fixed, a)
            st = self._state(key)
            if action == "queued":
                st.waiters.add(tid)
            elif not self.own.apply(action, key, tid):
                # Granted at the unlock (see _granted): it holds the lock already.
                return
            elif action == "read_acquire" or action == "write_acquire":
                st.waiters.discard(tid)
            self._lock_changed(key, time)
            if code in ("mmap_write_unlock", "mmap_write_downgrade") and a >= 0:
                self._seq(time, a)
        elif code == "vma_end_write_all":
            self._seq(time, a)
        elif code == "vma_start_write:seq_set":
            self._counter(f"vma{a}", time, {"vm_lock_seq": b})
            if self.mm_lock_seq is None or b == self.mm_lock_seq:
                self._state(a).seq_locked = (b, tid)
                self._lock_changed(a, time)

    def _seq(self, time: int, seq: int) -> None:
        if seq == self.mm_lock_seq:
            return
        self.mm_lock_seq = seq
        self._counter("mm", time, {"mm_lock_seq": seq})
        # vma_end_write_all: bumping mm_lock_seq unlocks every VMA of the old epoch at once.
        for key, st in self.own.locks.items():
            if st.seq_locked is not None and st.seq_locked[0] != seq:
                st.seq_locked = None
                self._lock_changed(key, time)

    def _lock_changed(self, key: int, time: int, force_close: bool = False) -> None:
        """Replace the held-period slice of ``key`` (one slice per holder set)."""
        st = self._state(key)
        tr = self.lock_track(key)
        # One slice per distinct holder state, so the track is a plain sequence.  A VMA
        # is write-locked while vm_lock_seq == mm_lock_seq, long after vma_start_write
        # released the rwsem itself; that is the period readers are turned away.
        parts: list[str] = []
        args: dict[str, Any] = {}
        if st.seq_locked is not None:
            who = self.names.get(st.seq_locked[1], str(st.seq_locked[1]))
            parts.append(f"write-locked: {who}")
            args["vm_lock_seq"] = st.seq_locked[0]
            args["write_locked_by"] = who
        if st.writer is not None:
            who = self.names.get(st.writer, str(st.writer))
            parts.append(f"write: {who}" if key == 0 else f"vm_lock write: {who}")
            args["writer"] = who
        if st.readers:
            parts.append(f"read: {_holders(self.names, st.readers)}")
            args["readers"] = [self.names.get(r, str(r)) for r in st.readers]
        name = " + ".join(parts)
        current = tr.open[0].name if tr.open else ""
        if force_close or name != current:
            if tr.open and tr.open[0].start == time and not force_close:
                # Several changes at one instant (a writer's unlock granting three
                # readers): keep only the last state rather than zero-length slices.
                tr.open.pop()
            tr.close_to(0, time)
            if name and not force_close:
                tr.push(name, time, args)
        if key == 0:
            counts = {"readers": len(st.readers), "waiters": len(st.waiters)}
            if counts != self.mmap_counts:
                self.mmap_counts = counts
                self._counter("mmap_lock", time, counts)

    def _flows(self) -> None:
        """One arrow per wake the model recorded (:func:`vmaviz.engine.flows.wake_flows`).

        The tail (``s``) sits on the waker's track at the releasing step, inside the
        slice of the unlock function; the head (``f``, ``bp: e``: bound to the
        enclosing slice) on the woken thread's track when it runs again. Perfetto
        follows a flow by its ``id`` (unique here) within ``cat``.
        """
        from vmaviz.engine.flows import wake_flows

        fl = wake_flows(self.t)
        cols = zip(
            fl.key.tolist(),
            fl.waker.tolist(),
            fl.woken.tolist(),
            fl.granted.tolist(),
            fl.t0_ns.tolist(),
            fl.t1_ns.tolist(),
            strict=True,
        )
        for key, waker, woken, granted, t0, t1 in cols:
            self.flow_id += 1
            lock = "mmap_lock" if key == 0 else f"vma{key} vm_lock"
            common = {
                "name": f"{'hand-off' if granted else 'wakeup'}: {lock}",
                "cat": "lock",
                "id": self.flow_id,
                "pid": PID_THREADS,
            }
            self.other.append({"ph": "s", **common, "tid": self.ttid(waker), "ts": _us(t0)})
            self.other.append(
                {"ph": "f", "bp": "e", **common, "tid": self.ttid(woken), "ts": _us(t1)}
            )

    # --------------------------------------------------------------- output

    def _document(self) -> dict[str, Any]:
        e = self.e
        meta: list[dict[str, Any]] = []

        def m(name: str, pid: int, tid: int | None, args: dict[str, Any]) -> None:
            ev: dict[str, Any] = {"ph": "M", "name": name, "pid": pid, "args": args}
            if tid is not None:
                ev["tid"] = tid
            meta.append(ev)

        title = f"{e.scenario.name} ({e.mode}, {e.arch}, seed {e.scenario.kernel.seed})"
        m("process_name", PID_THREADS, None, {"name": f"threads: {title}"})
        m("process_sort_index", PID_THREADS, None, {"sort_index": 1})
        m("process_name", PID_LOCKS, None, {"name": "locks"})
        m("process_sort_index", PID_LOCKS, None, {"sort_index": 2})
        for th in e.k.threads:
            m("thread_name", PID_THREADS, self.ttid(th.tid), {"name": th.name})
            m("thread_sort_index", PID_THREADS, self.ttid(th.tid), {"sort_index": th.tid})
        m("thread_name", PID_THREADS, self.rcu_tid, {"name": "rcu callbacks"})
        m("thread_sort_index", PID_THREADS, self.rcu_tid, {"sort_index": self.rcu_tid})
        vma_names = e.k.mm.vma_names()
        for key in sorted(self.locks):
            if key == 0:
                label = "mmap_lock"
            else:
                name = vma_names.get(key)
                label = f"vma{key} {name} vm_lock" if name is not None else f"vma{key} vm_lock"
            m("thread_name", PID_LOCKS, key + 1, {"name": label})
            m("thread_sort_index", PID_LOCKS, key + 1, {"sort_index": key})
        slices: list[dict[str, Any]] = []
        for tr in [*self.threads.values(), *self.locks.values()]:
            # Parents before children at equal start (longer first, then shallower), so
            # importers that nest by file order see the same tree as by interval.
            tr.done.sort(key=lambda d: (d[0], d[1], d[2]))
            slices.extend(d[3] for d in tr.done)
        # A stable sort by time keeps slices ahead of instants and flows at equal ts.
        rest = sorted(self.other, key=lambda ev: float(ev["ts"]))
        return {"traceEvents": [*meta, *slices, *rest], "displayTimeUnit": "ns"}


def _key(fixed: int | None, a: int) -> int:
    return a if fixed is None else fixed


def to_perfetto(engine: Engine, *, step_events: bool = True) -> dict[str, Any]:
    """The run as a Chrome trace-event JSON document for https://ui.perfetto.dev.

    Timestamps are microseconds (``ts = ns / 1000``); every ``X`` slice of a track
    nests properly inside the ones around it.

    Args:
        engine: A run (finished or not; the steps taken so far are exported).
        step_events: Also emit one instant event per step (named by its event code),
            roughly doubling the size.

    Returns:
        ``{"traceEvents": [...], "displayTimeUnit": "ns"}``, ready for ``json.dump``.
    """
    return _PerfettoBuilder(engine).build(step_events)


__all__ = [
    "CSV_COLUMNS",
    "LOCK_ACTIONS",
    "RCU_NAME",
    "lock_effect",
    "synced_trace",
    "thread_names",
    "to_csv",
    "to_perfetto",
]
