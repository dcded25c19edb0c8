"""The deterministic engine: build a run from a scenario, step it, keep a compact trace.

One :meth:`Engine.step` is one interleaving point.  Each step appends one row to
a columnar trace (about 40 bytes: time, thread, CPU, event code, kernel stack,
operation number, two arguments).  Every ``keyframe_every`` steps the whole
kernel state is pickled, so the state at any step is rebuilt by loading the
nearest earlier keyframe and re-running at most one keyframe interval: the
cost of going back is the same at step 10 and at step 1,000,000.

The keyframes' memory is bounded (:attr:`Engine.keyframe_budget`): a big kernel
(10,000 VMAs pickle to megabytes) widens the interval, and so do keyframes
whose total passes the budget, by dropping every other one (see
:meth:`Engine._add_keyframe`).

A run can carry a budget (:class:`RunBudget`: steps, wall-clock seconds, process
memory), checked every :data:`BUDGET_CHECK_STEPS` steps inside the run loop;
exceeding it raises :class:`RunBudgetExceeded`.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import os
import pickle
import statistics
import struct
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vmaviz.engine.costs import cost_table
from vmaviz.model import mm as M
from vmaviz.model.kernel import ARCH_HANDLER, STEP_FN, Kernel, StallError
from vmaviz.model.maple import free_immediately
from vmaviz.model.mm import PAGE_SIZE
from vmaviz.model.sched import EV_RCU, EV_STEP, EV_TIMER, RUNNING, SLEEPING, Thread
from vmaviz.scenario.schema import MAX_STEPS, Op, Scenario

KEYFRAME_EVERY = 4096
#: ``keyframe_every`` for runs that only want the summary or the trace (the CLI's
#: run and export, sweeps, calibration): no keyframe past the initial state, which
#: saves the pickling (a tenth to a seventh of a run's time); ``state_at`` replays from 0.
NO_KEYFRAMES = 1 << 62
#: Default cap on the bytes of a run's keyframes (:attr:`Engine.keyframe_budget`).
KEYFRAME_BUDGET = 256 << 20
#: Keyframe bytes per step above which the interval doubles.  Pickling takes
#: about 40 ns a byte, so 128 bytes a step cost about what a step does: the
#: keyframes of a big kernel (2.4 MB at 10,000 VMAs and 1,024 threads) then take
#: no longer than the steps between them.  Small kernels (tens of kB at
#: ``keyframe_every`` 1,024) stay under it and keep ``keyframe_every``.
KEYFRAME_BYTES_PER_STEP = 128
#: Steps between two checks of a run's time and memory budget (:class:`RunBudget`):
#: a few milliseconds of stepping, so a budget stops a run promptly while the
#: check (a clock read, a read of ``/proc/self/statm``) costs nothing per step.
BUDGET_CHECK_STEPS = 4096


class EngineError(RuntimeError):
    """A run that cannot proceed (bad cost name, step limit)."""


class RunBudgetExceeded(EngineError):
    """A run went past one of its budgets (:class:`RunBudget`) and was stopped.

    The message says which budget, its value and the step the run stopped at, in
    words meant for the user.  The engine is left consistent at that step: its
    trace and state can still be read (and the run continued, budget permitting).

    Attributes:
        budget: ``"steps"``, ``"seconds"`` or ``"memory"``.
        limit: The budget's value (steps, seconds or bytes).
        used: What the run had used when it stopped (same unit).
        step: The number of steps taken when it stopped.
        max_steps: The run's step limit.
    """

    def __init__(self, budget: str, limit: float, used: float, step: int, max_steps: int) -> None:
        self.budget = budget
        self.limit = limit
        self.used = used
        self.step = step
        self.max_steps = max_steps
        super().__init__(self._message())

    def _message(self) -> str:
        smaller = "make the scenario smaller (fewer threads, VMAs, ops or loop rounds)"
        if self.budget == "steps":
            return (
                f"step limit reached: {self.max_steps:,} steps; this scenario needs more"
                f" than {self.max_steps:,} steps (stopped at step {self.step:,}); {smaller}"
                " or raise the step limit"
            )
        where = f"stopped at step {self.step:,} of the {self.max_steps:,} allowed"
        if self.budget == "seconds":
            return (
                f"time limit reached: this scenario needs more than {self.limit:g} s of run"
                f" time ({where}, after {self.used:.1f} s); {smaller}"
            )
        return (
            f"memory limit reached: this run needs more than {_gib(self.limit)} of memory"
            f" (the process used {_gib(self.used)}; {where}); {smaller}"
        )


class RunStalled(EngineError, StallError):
    """Simulated time stopped advancing (the model's :class:`StallError`): the run ends.

    An :class:`EngineError`, so the CLI, the app and sweeps report it like any
    other run that stopped, with the model's message (the thread, the lock, the time).
    """


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def read_rss_bytes() -> int:
    """This process's resident set size in bytes, from ``/proc/self/statm`` (0 if unreadable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class RunBudget:
    """Limits on one run beyond its step limit, checked every :data:`BUDGET_CHECK_STEPS` steps.

    Attributes:
        seconds: Wall-clock seconds from the engine's creation (None: no limit).
        rss_bytes: Resident memory of the whole process, in bytes (None: no
            limit).  It counts everything the process holds, so a server sets it
            for the worker, not per scenario.
        clock: Returns seconds (``time.monotonic``); tests pass a fake one.
        rss: Returns the process's resident bytes (:func:`read_rss_bytes`);
            tests pass a fake one.
        pause: Called at every check (None: nothing): a background run lets a
            foreground request go first here.  The time it takes does not count
            against ``seconds``.
    """

    seconds: float | None = None
    rss_bytes: int | None = None
    clock: Callable[[], float] = time.monotonic
    rss: Callable[[], int] = read_rss_bytes
    pause: Callable[[], None] | None = None

    @property
    def active(self) -> bool:
        return self.seconds is not None or self.rss_bytes is not None or self.pause is not None


class Trace:
    """The retained record of a run: one row per step, in parallel arrays.

    The run loop packs each row into a byte buffer with one ``struct`` call
    (``ROW``), and :meth:`flush` moves the buffer into the typed column arrays
    in one vectorised split: recording a step then costs one C call instead of
    nine array appends.
    """

    #: Each column and its packed type (``struct`` codes, little-endian, no padding).
    #: The column arrays below have the same item sizes (``L`` and ``l`` are 8
    #: bytes on 64-bit Linux).
    LAYOUT = (
        ("time", "q"),
        ("tid", "h"),
        ("cpu", "h"),
        ("code", "H"),
        ("stack", "Q"),
        ("op", "q"),
        ("frame", "q"),
        ("a", "q"),
        ("b", "q"),
    )
    COLUMNS = tuple(name for name, _ in LAYOUT)
    #: One packed row, and the same row as a numpy record for the split.
    ROW = struct.Struct("<" + "".join(code for _, code in LAYOUT))
    ROW_DTYPE = np.dtype([(name, "<" + code) for name, code in LAYOUT])

    def __init__(self, stacks: list[tuple[str, ...]]) -> None:
        self.time = array("q")
        self.tid = array("h")
        self.cpu = array("h")
        self.code = array("H")
        self.stack = array("L")
        self.op = array("l")
        #: The activation id of the function that took the step: consecutive
        #: steps with one ``frame`` value belong to one kernel-function call.
        self.frame = array("l")
        self.a = array("q")
        self.b = array("q")
        self.codes: list[str] = []
        self.stacks = stacks
        self.notes: dict[int, str] = {}
        #: Packed rows not yet moved into the columns.
        self.raw = bytearray()
        self.code_ix: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.time) + len(self.raw) // self.ROW.size

    def flush(self) -> None:
        if not self.raw:
            return
        rows = np.frombuffer(bytes(self.raw), dtype=self.ROW_DTYPE)
        for name in self.COLUMNS:
            getattr(self, name).frombytes(rows[name].tobytes())
        # In place: the run loop holds this buffer.
        self.raw.clear()

    def intern_code(self, code: str) -> int:
        ix = self.code_ix.get(code)
        if ix is None:
            ix = self.code_ix[code] = len(self.codes)
            self.codes.append(code)
        return ix

    def nbytes(self) -> int:
        self.flush()
        return sum(getattr(self, c).itemsize * len(getattr(self, c)) for c in self.COLUMNS)

    def row(self, i: int) -> dict[str, Any]:
        self.flush()
        return {
            "step": i,
            "time_ns": self.time[i],
            "tid": self.tid[i],
            "cpu": self.cpu[i],
            "event": self.codes[self.code[i]],
            "stack": list(self.stacks[self.stack[i]]),
            "op": self.op[i],
            "frame": self.frame[i],
            "a": self.a[i],
            "b": self.b[i],
            "note": self.notes.get(i, ""),
        }

    def sha256(self) -> str:
        self.flush()
        h = hashlib.sha256()
        for c in self.COLUMNS:
            h.update(getattr(self, c).tobytes())
        h.update("\n".join(self.codes).encode())
        h.update("\n".join("/".join(s) for s in self.stacks).encode())
        return h.hexdigest()


def build_kernel(
    sc: Scenario,
    mode: str | None = None,
    arch: str | None = None,
    cpus: int | None = None,
    keep_freed: bool = False,
) -> Kernel:
    """A :class:`Kernel` set up as the scenario's initial state (not simulated steps)."""
    kc = sc.kernel
    per_vma = kc.per_vma_lock if mode is None else mode == "per_vma"
    try:
        costs = cost_table(sc.costs)
    except KeyError as exc:
        raise EngineError(f"unknown cost name {exc.args[0]!r} in costs:") from None
    try:
        k = Kernel(
            per_vma,
            arch or kc.arch,
            cpus or kc.cpus,
            costs,
            kc.rcu_grace_ns,
            kc.patches,
            seed=kc.seed,
            keep_freed=keep_freed,
        )
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    mm = k.mm
    # The initial layout is set up, not simulated: its retired nodes free at once.
    mm.mm_mt.rcu_free = free_immediately
    for spec in sc.vmas:
        size = spec.pages * PAGE_SIZE
        if spec.start is not None:
            start = spec.start
        else:
            # get_unmapped_area: top-down below mmap_base, like mmap without a hint.
            found = mm.mm_mt.empty_area_rev(M.MMAP_MIN_ADDR, M.MMAP_BASE - 1, size)
            if found is None:
                raise EngineError(f"no room to place VMA {spec.name!r}")
            start = found
        flags = M.PROT_FLAGS[spec.prot] | M.VM_MAYREAD | M.VM_MAYWRITE | M.VM_MAYEXEC
        if spec.shared:
            flags |= M.VM_SHARED
        if spec.growsdown:
            flags |= M.VM_GROWSDOWN
        if spec.uffd:
            flags |= M.VM_UFFD_MISSING
        if M.accountable_mapping(spec.file, flags):
            flags |= M.VM_ACCOUNT  # as mmap_region would have charged it
        vma = mm.new_vma(
            spec.name, start, start + size, flags, M.backing_file(spec.file, spec.shared)
        )
        vma.pgoff = M.mmap_pgoff(spec.file, spec.shared, start)
        if spec.uffd:
            vma.uffd_ctx = M.UFFD_CTX
        if spec.anon_vma and vma.file is None:
            vma.anon_vma = mm.next_anon_vma
            mm.next_anon_vma += 1
        mm.mm_mt.store_range(vma.vm_start, vma.vm_end - 1, vma)
        mm.map_count += 1
        k.names[spec.name] = (vma.vm_start, vma.vm_end)
    mm.mm_mt.rcu_free = k.maple_nodes_retired
    heap = k.names.get("[heap]")
    mm.brk_start = mm.brk = heap[1] if heap else 0x5555_5556_0000
    mm.rlimit_stack = kc.rlimit_stack
    sizes: dict[str, int] = {}
    for tid, ts in enumerate(sc.threads):
        th = Thread(tid, ts.name, list(ts.ops), ts.start_ns)
        th.pc_stack = [[th.ops, 0, 0]]
        k.threads.append(th)
        for name in _barriers(ts.ops):
            sizes[name] = sizes.get(name, 0) + 1
    k.barrier_sizes = sizes
    k.start_threads()
    return k


def _barriers(ops: list[Op]) -> set[str]:
    names: set[str] = set()
    for op in ops:
        if op.kind == "barrier":
            names.add(str(op.args["name"]))
        elif op.body:
            names |= _barriers(op.body)
    return names


class Engine:
    """A run of one scenario in one configuration.

    Args:
        scenario: the validated scenario.
        mode: ``per_vma`` or ``mmap_lock`` (default: the scenario's).
        arch, cpus: overrides of the scenario's kernel settings.
        keyframe_every: steps between state snapshots (at least; see
            :attr:`keyframe_interval`).
        max_steps: the step limit (:class:`RunBudgetExceeded` past it).
        schedule: a forced schedule (see :attr:`schedule`).
        keep_freed: keep freed VMAs in the kernel state for inspection (tests,
            debugging); by default they are dropped once nothing refers to them.
        keyframe_budget: cap on the bytes of all keyframes but the initial one.
        budget: time and memory limits of the run (default: none).
    """

    def __init__(
        self,
        scenario: Scenario,
        mode: str | None = None,
        arch: str | None = None,
        cpus: int | None = None,
        keyframe_every: int = KEYFRAME_EVERY,
        max_steps: int = MAX_STEPS,
        schedule: list[int] | None = None,
        keep_freed: bool = False,
        keyframe_budget: int = KEYFRAME_BUDGET,
        budget: RunBudget | None = None,
    ) -> None:
        self.budget = budget or RunBudget()
        #: When the run started, on the budget's clock (the time budget counts from here).
        self.started = self.budget.clock() if self.budget.seconds is not None else 0.0
        self.scenario = scenario
        #: A forced schedule: the thread id that moves at each step (-1: the RCU
        #: callbacks).  Past its end the time-ordered scheduler takes over.
        self.schedule = list(schedule) if schedule is not None else None
        self.k = build_kernel(scenario, mode, arch, cpus, keep_freed)
        self.mode = "per_vma" if self.k.per_vma else "mmap_lock"
        self.arch = self.k.arch
        self.trace = Trace(self.k.stack_table)
        self.keyframe_every = keyframe_every
        #: The steps between keyframes now: ``keyframe_every`` times a power of
        #: two, doubled by :meth:`_add_keyframe` when keyframes grow too big.
        self.keyframe_interval = keyframe_every
        self.keyframe_budget = keyframe_budget
        self.max_steps = max_steps
        self.keyframes: dict[int, bytes] = {0: pickle.dumps(self.k, pickle.HIGHEST_PROTOCOL)}
        #: The keyframes' steps in order (for :meth:`state_at`), and their bytes
        #: past the initial one (what :attr:`keyframe_budget` caps).
        self._kf_steps = [0]
        self.keyframe_bytes = 0
        # A big initial state widens the interval from the start (see _add_keyframe).
        while len(self.keyframes[0]) > self.keyframe_interval * KEYFRAME_BYTES_PER_STEP:
            self.keyframe_interval *= 2
        #: The step of the next keyframe and of the next budget check; the run
        #: loop compares the step count with the smaller of the two only.
        self._next_kf = self.keyframe_interval
        self._next_check = BUDGET_CHECK_STEPS if self.budget.active else NO_KEYFRAMES
        self.finished = False
        #: Whether any step was forced; replays then follow the recorded thread ids.
        self.forced = False

    def __getstate__(self) -> dict[str, Any]:
        """The engine's attributes, with the budget's limits but the standard clock and reader.

        Runs are pickled into the app's cache; a clock or RSS reader passed in
        (a test's fake, a lambda) need not pickle, and means nothing elsewhere.
        """
        state = self.__dict__.copy()
        b = self.budget
        state["budget"] = RunBudget(seconds=b.seconds, rss_bytes=b.rss_bytes)
        return state

    # -------------------------------------------------------------- stepping

    def step(self, tid: int | None = None) -> bool:
        """Run one step; False when nothing is left to run.

        Args:
            tid: force this thread (or -1, the RCU callbacks) to move now
                instead of the earliest event; it must be in :meth:`runnable`.

        Raises:
            EngineError: when ``tid`` (or the forced schedule's entry) cannot run.
        """
        if self.finished:
            return False
        if tid is None and self.schedule is not None:
            n = len(self.trace)
            if n < len(self.schedule):
                tid = self.schedule[n]
        if tid is not None:
            self.forced = True
        try:
            ok = _advance(self.k) if tid is None else _advance_forced(self.k, tid)
        except StallError as exc:
            raise RunStalled(str(exc)) from exc
        if not ok:
            self.finished = True
            return False
        self._record()
        n = len(self.trace)
        if n >= self._next_kf or n >= self._next_check:
            self._checkpoint(n)
        if n >= self.max_steps:
            raise self._over_steps(n)
        return True

    def run(self, max_steps: int | None = None) -> Engine:
        """Run to the end (or ``max_steps`` more steps)."""
        if self.schedule is not None:
            budget = max_steps if max_steps is not None else -1
            while budget != 0 and self.step():
                budget -= 1
            return self
        n = len(self.trace)
        stop = min(self.max_steps, n + max_steps) if max_steps is not None else self.max_steps
        # CPython 3.11 specialises ("quickens") a function's bytecode only after
        # the function has been entered a few times; a back-edge does not count.
        # A loop that runs inside one long call would stay generic and take
        # about twice as long per step, so enter it with an empty budget first.
        for _ in range(_QUICKEN_CALLS):
            _run_steps(self, n, n)
        try:
            n = _run_steps(self, n, stop)
        except StallError as exc:
            raise RunStalled(str(exc)) from exc
        if n >= self.max_steps and not self.finished:
            raise self._over_steps(n)
        return self

    # ---------------------------------------------------- keyframes, budget

    def _over_steps(self, n: int) -> RunBudgetExceeded:
        return RunBudgetExceeded("steps", self.max_steps, n, n, self.max_steps)

    def _checkpoint(self, n: int) -> None:
        """After step ``n``: take the keyframe due, check the budget when due.

        The run loop calls it only when ``n`` reaches :attr:`_next_kf` or
        :attr:`_next_check`, with the kernel's state written back (as after
        :meth:`step`).

        Raises:
            RunBudgetExceeded: the run is over its time or memory budget.
        """
        if n >= self._next_kf:
            self.trace.flush()
            self._add_keyframe(n)
        if n >= self._next_check:
            self._next_check = n + BUDGET_CHECK_STEPS
            # The pending rows are moved into their compact columns here too, so
            # the raw buffer stays small however seldom keyframes are taken.
            self.trace.flush()
            self._check_budget(n)

    def _add_keyframe(self, n: int) -> None:
        """Pickle the state after step ``n``; keep the keyframes within their budget.

        The interval doubles, and the keyframes off the new interval (every
        other one) are dropped, while (a) this keyframe is larger than
        :data:`KEYFRAME_BYTES_PER_STEP` per step of the interval, or (b) the
        keyframes past the initial one hold more than :attr:`keyframe_budget`
        bytes.  So their total stays within the budget (plus the initial
        keyframe), consecutive keyframes stay at most one interval apart, and
        :meth:`state_at` replays at most one interval; and over a run the number
        of keyframes pickled grows with the logarithm of its length once the
        budget is reached, not with the length.
        """
        blob = pickle.dumps(self.k, pickle.HIGHEST_PROTOCOL)
        self.keyframes[n] = blob
        self._kf_steps.append(n)
        self.keyframe_bytes += len(blob)
        while len(self.keyframes) > 1 and (
            len(blob) > self.keyframe_interval * KEYFRAME_BYTES_PER_STEP
            or self.keyframe_bytes > self.keyframe_budget
        ):
            self._thin_keyframes()
        self._next_kf = (n // self.keyframe_interval + 1) * self.keyframe_interval

    def _thin_keyframes(self) -> None:
        """Double the keyframe interval and drop the keyframes that are off it."""
        every = self.keyframe_interval = self.keyframe_interval * 2
        keep = [s for s in self._kf_steps if s % every == 0]
        for s in self._kf_steps:
            if s % every:
                self.keyframe_bytes -= len(self.keyframes.pop(s))
        self._kf_steps = keep

    def _check_budget(self, n: int) -> None:
        b = self.budget
        if b.pause is not None:
            t0 = b.clock()
            b.pause()
            # Waiting for someone else is not this run's time.
            self.started += b.clock() - t0
        if b.seconds is not None:
            used = b.clock() - self.started
            if used > b.seconds:
                raise RunBudgetExceeded("seconds", b.seconds, used, n, self.max_steps)
        if b.rss_bytes is not None:
            rss = b.rss()
            if rss > b.rss_bytes:
                raise RunBudgetExceeded("memory", b.rss_bytes, rss, n, self.max_steps)

    def _record(self) -> None:
        k, t = self.k, self.trace
        ev = k.event
        if not ev.code:
            # A step that did not describe itself: name it after its function.
            stack = k.stack_table[k.step_sid]
            ev.code = f"{stack[-1]}:step" if stack else "step"
        code = t.code_ix.get(ev.code)
        if code is None:
            code = t.intern_code(ev.code)
        if ev.note:
            t.notes[len(t)] = ev.note
            ev.note = ""
        t.raw += t.ROW.pack(
            k.now, k.step_tid, k.step_cpu, code, k.step_sid, k.step_op, k.step_fid, ev.a, ev.b
        )
        # emit() always sets code, a and b; clearing the code marks a step that
        # forgot to emit (it then records an empty event, not the previous one).
        ev.code = ""

    def runnable(self) -> list[int]:
        """The thread ids that could take the next step (-1: ready RCU callbacks).

        Wakes sleepers whose timers are due first; if nothing can run yet,
        advances the clock to the next timer.
        """
        return _runnable(self.k)

    def schedule_taken(self) -> list[int]:
        """The schedule this run followed (replay it with ``Engine(schedule=...)``)."""
        self.trace.flush()
        return list(self.trace.tid)

    # ---------------------------------------------------------- time travel

    def state_at(self, n: int) -> Kernel:
        """The kernel state after ``n`` steps (a copy; the run is unaffected)."""
        n = max(0, min(n, len(self.trace)))
        base = self._kf_steps[bisect.bisect_right(self._kf_steps, n) - 1]
        return self.replay(pickle.loads(self.keyframes[base]), base, n)

    def replay(self, k: Kernel, frm: int, to: int) -> Kernel:
        """Run ``k`` (a copy of this run's state after ``frm`` steps) on to ``to`` steps.

        Steps are re-run as the run took them (following the recorded thread ids
        when any step was forced); returns ``k``.
        """
        if self.forced:
            self.trace.flush()
        for i in range(frm, to):
            k.event.code = ""
            ok = _advance_forced(k, self.trace.tid[i]) if self.forced else _advance(k)
            if not ok:
                break
        return k

    def run_until(self, pred: Callable[[Trace, int], bool], start: int = 0) -> int | None:
        """The first step at or after ``start`` whose row satisfies ``pred`` (running on)."""
        i = start
        while True:
            self.trace.flush()
            while i < len(self.trace):
                if pred(self.trace, i):
                    return i
                i += 1
            if not self.step():
                return None

    # -------------------------------------------------------------- results

    def summary(self) -> dict[str, Any]:
        """The RUN object of ``python -m vmaviz run --json``."""
        k = self.k
        lat = sorted(k.fault_latencies)

        def pct(p: float) -> int:
            if not lat:
                return 0
            return lat[min(len(lat) - 1, int(p * len(lat)))]

        sem = k.mm.mmap_lock
        return {
            "mode": self.mode,
            "arch": self.arch,
            "seed": self.scenario.kernel.seed,
            "steps": len(self.trace),
            "sim_ns": max([th.done_ns for th in k.threads] + [k.now]),
            "vma_lock": dict(k.vma_lock),
            "abort_reasons": dict(k.abort_reasons),
            "faults": {
                **k.fault_stats,
                "latency_ns": {
                    "mean": int(statistics.fmean(lat)) if lat else 0,
                    "p50": pct(0.50),
                    "p99": pct(0.99),
                    "max": lat[-1] if lat else 0,
                },
            },
            "mmap_lock": {
                "read_acquired": sem.stats["read_acquired"],
                "write_acquired": sem.stats["write_acquired"],
                **k.mmap_wait,
            },
            "rcu": {
                "grace_periods": k.rcu.gp_completed,
                "vmas_freed": k.vmas_freed,
                "nodes_freed": k.nodes_freed,
            },
            "mm_lock_seq": k.mm.mm_lock_seq if k.per_vma else None,
            "vmas": [
                {
                    "name": v.name,
                    "start": v.vm_start,
                    "end": v.vm_end,
                    "vm_lock_seq": v.vm_lock_seq if k.per_vma else None,
                    "anon_vma": v.anon_vma is not None,
                    "detached": v.detached,
                }
                for v in k.mm.live_vmas()
            ],
            "threads": [
                {
                    "name": th.name,
                    "done_ns": th.done_ns,
                    "blocked_ns": th.blocked_ns,
                    "faults": th.faults,
                }
                for th in k.threads
            ],
            "invariant_violations": [
                {"step": s, "invariant": i, "message": m} for s, i, m in k.violations
            ],
            "trace_sha256": self.trace.sha256(),
        }


def run_to_end(
    scenario: Scenario,
    mode: str | None = None,
    arch: str | None = None,
    max_steps: int | None = None,
) -> Engine:
    """A finished run for its summary and trace only (the CLI, sweeps, calibration).

    It takes no keyframes (``NO_KEYFRAMES``): nothing steps such a run backwards.
    """
    kwargs: dict[str, Any] = {"keyframe_every": NO_KEYFRAMES}
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    return Engine(scenario, mode=mode, arch=arch, **kwargs).run()


#: Empty calls that make CPython quicken the hot loop before it runs (see Engine.run).
_QUICKEN_CALLS = 8


def _run_steps(eng: Engine, n: int, stop: int) -> int:
    """Run ``eng`` from step ``n`` up to step ``stop`` (or its end); returns the new step count."""
    # The hot loop: the same work as step() -> _advance() -> _run_step() ->
    # Kernel.step_thread() -> continue_at() and _record(), inlined, because a
    # step is a few microseconds of Python and each call layer costs a tenth
    # of that.  tests/test_engine_properties.py checks that this loop and the
    # step() path give the same trace.  When the thread that just ran is
    # also the earliest event (its step was left in ``pending``), it runs
    # again without touching the heap.
    k, t = eng.k, eng.trace
    threads, heap, ev, runq = k.threads, k.heap, k.event, k.runq
    raw, pack, code_ix, notes = t.raw, Trace.ROW.pack, t.code_ix, t.notes
    heappop, heappushpop = heapq.heappop, heapq.heappushpop
    step_fn, next_op = STEP_FN, k._next_op
    # The op-start jitter is rng.randrange(jitter_max); inlined as the same
    # getrandbits draws that Random._randbelow makes, so the sequence is identical.
    getrandbits = k.rng.getrandbits
    jitter_max = k.costs["op_jitter"] + 1
    jitter_bits = jitter_max.bit_length()
    timeslice = k.costs["timeslice"]
    # k.pending and the step fields live in locals while the loop runs; they
    # are written back whenever the state is observable (a keyframe, the end).
    pending = k.pending
    k.pending = None
    start = n
    # The next keyframe or budget check: one comparison a step for both.
    next_ev = min(eng._next_kf, eng._next_check)
    while n < stop:
        # ---- pick the earliest event (Engine._advance without the run).
        th: Thread | None = None
        entry = None
        if pending is not None:
            at, tid, token = pending
            pending = None
            if not heap or at < heap[0][0]:
                cand = threads[tid]
                if token == cand.token and cand.state == RUNNING:
                    th = cand
            else:
                # Queue the pending step and take the earliest event in one go.
                k.seq += 1
                entry = heappushpop(heap, (at, EV_STEP, k.seq, tid, token))
        rcu_ran = False
        while th is None:
            if entry is None:
                if not heap:
                    break
                entry = heappop(heap)
            at, kind, _seq, tid, token = entry
            entry = None
            if kind == EV_STEP:
                cand = threads[tid]
                if token == cand.token and cand.state == RUNNING:
                    th = cand
            elif _other_event(k, at, kind, tid, token):
                rcu_ran = True
                break
        if th is None:
            if not rcu_ran:
                eng.finished = True
                break
            # The RCU callbacks ran as this step (_other_event set the step fields).
            tid, cpu, op, sid, fid = k.step_tid, k.step_cpu, k.step_op, k.step_sid, k.step_fid
        else:
            # ---- one step of ``th`` (Kernel.step_thread).
            k.now = at
            k.steps += 1
            cpu = k.cur_cpu = th.cpu
            frames = th.frames
            jitter = 0
            while True:
                if not frames:
                    if not next_op(th):
                        cost = -1
                        break
                    jitter = getrandbits(jitter_bits)
                    while jitter >= jitter_max:
                        jitter = getrandbits(jitter_bits)
                fr = frames[-1]
                cost = step_fn[fr.fn](k, th, fr)
                if cost >= 0:
                    cost += jitter
                    break
            op = th.op_no
            # ---- after the step (MachineBase.continue_at).
            if cost < 0:
                sid = fid = 0
                k.emit("exit", tid)
                k.finish(th, 0)
            else:
                sid = fr.sid
                fid = fr.fid
                if th.state == RUNNING:
                    at = k.now + cost
                    if runq and at - th.slice_start >= timeslice:
                        k.continue_at(th, cost)
                    else:
                        th.token += 1
                        pending = (at, tid, th.token)
        # ---- record the step (Engine._record).
        code = ev.code
        ci = code_ix.get(code) if code else None
        if ci is None:
            k.step_tid, k.step_cpu, k.step_op, k.step_sid, k.step_fid = tid, cpu, op, sid, fid
            eng._record()
        else:
            if ev.note:
                notes[n] = ev.note
                ev.note = ""
            raw += pack(k.now, tid, cpu, ci, sid, op, fid, ev.a, ev.b)
            ev.code = ""
        n += 1
        if n >= next_ev:
            _write_back(k, pending, tid, cpu, op, sid, fid)
            # On a budget error the state stays written back, as after step().
            eng._checkpoint(n)
            k.pending = None
            next_ev = min(eng._next_kf, eng._next_check)
    if n > start:
        _write_back(k, pending, tid, cpu, op, sid, fid)
    else:
        k.pending = pending
    return n


def _write_back(k: Kernel, pending: Any, tid: int, cpu: int, op: int, sid: int, fid: int) -> None:
    """Store the loop's locals in the kernel, as the step() path leaves it after a step."""
    k.pending = pending
    k.step_tid, k.step_cpu, k.step_op, k.step_sid, k.step_fid = tid, cpu, op, sid, fid


def _advance(k: Kernel) -> bool:
    """Pop events until one step has run; False when the run is over."""
    heap = k.heap
    threads = k.threads
    pending = k.pending
    if pending is not None:
        k.pending = None
        at, tid, token = pending
        if not heap or at < heap[0][0]:
            th = threads[tid]
            if token == th.token and th.state == RUNNING:
                _run_step(k, th, at)
                return True
        else:
            k.seq += 1
            heapq.heappush(heap, (at, EV_STEP, k.seq, tid, token))
    heappop = heapq.heappop
    while heap:
        time, kind, _seq, tid, token = heappop(heap)
        if kind == EV_STEP:
            th = threads[tid]
            if token != th.token or th.state != RUNNING:
                continue
            _run_step(k, th, time)
            return True
        if _other_event(k, time, kind, tid, token):
            return True
    return False


def _other_event(k: Kernel, time: int, kind: int, tid: int, token: int) -> bool:
    """Handle a popped timer or RCU event; True when it ran the RCU callbacks as a step."""
    if kind == EV_TIMER:
        th = k.threads[tid]
        if token != th.token or th.state != SLEEPING:
            return False
        k.now = max(k.now, time)
        k.make_ready(th, 0 if th.op_no == 0 else k.costs["wakeup_latency"])
        return False
    # EV_RCU
    if time != k.rcu_timer_at:
        return False
    k.now = max(k.now, time)
    if not k.rcu.ready_peek(k.now):
        k.rcu_timer_at = -1
        return False
    k.steps += 1
    k.step_tid, k.step_cpu, k.step_op, k.step_fid = -1, -1, 0, 0
    k.step_sid = k.intern_sid(0, "rcu_core")
    k.run_rcu_callbacks()
    return True


def _flush_pending(k: Kernel) -> None:
    if k.pending is not None:
        at, tid, token = k.pending
        k.pending = None
        k.seq += 1
        heapq.heappush(k.heap, (at, EV_STEP, k.seq, tid, token))


def _valid(k: Kernel, e: tuple[int, int, int, int, int]) -> bool:
    time, kind, _seq, tid, token = e
    if kind == EV_RCU:
        return time == k.rcu_timer_at
    th = k.threads[tid]
    return token == th.token and th.state == (RUNNING if kind == EV_STEP else SLEEPING)


def _runnable(k: Kernel) -> list[int]:
    """The ids that could take the next step, after the non-step events due first.

    Timers and unready RCU timers that come before every step event are
    processed exactly as the time-ordered scheduler would, so that forcing the
    recorded thread ids replays a run step for step.
    """
    _flush_pending(k)
    k.heap = [e for e in k.heap if _valid(k, e)]
    heapq.heapify(k.heap)
    heap = k.heap
    while heap:
        time, kind, _seq, tid, _token = heap[0]
        if kind == EV_TIMER:
            heapq.heappop(heap)
            k.now = max(k.now, time)
            th = k.threads[tid]
            k.make_ready(th, 0 if th.op_no == 0 else k.costs["wakeup_latency"])
            _flush_pending(k)
            continue
        if kind == EV_RCU and not k.rcu.ready_peek(max(k.now, time)):
            heapq.heappop(heap)
            k.rcu_timer_at = -1
            continue
        break
    tids = sorted({e[3] for e in heap if e[1] == EV_STEP and _valid(k, e)})
    if any(e[1] == EV_RCU and _valid(k, e) for e in heap):
        tids.insert(0, -1)
    return tids


def _advance_forced(k: Kernel, tid: int) -> bool:
    """Run ``tid``'s next step now (at the later of its own time and the clock)."""
    if tid not in _runnable(k):
        raise EngineError(f"schedule: thread {tid} cannot move at step {k.steps}")
    if tid == -1:
        entry = min(e for e in k.heap if e[1] == EV_RCU)
        k.heap.remove(entry)
        heapq.heapify(k.heap)
        k.now = max(k.now, entry[0])
        k.steps += 1
        k.step_tid, k.step_cpu, k.step_op, k.step_fid = -1, -1, 0, 0
        k.step_sid = k.intern_sid(0, "rcu_core")
        k.run_rcu_callbacks()
        return True
    th = k.threads[tid]
    entry = min(e for e in k.heap if e[1] == EV_STEP and e[3] == tid and e[4] == th.token)
    k.heap.remove(entry)
    heapq.heapify(k.heap)
    _run_step(k, th, max(k.now, entry[0]))
    return True


def _run_step(k: Kernel, th: Thread, time: int) -> None:
    k.now = time
    k.steps += 1
    k.step_tid = th.tid
    k.step_cpu = k.cur_cpu = th.cpu
    k.step_op = th.op_no
    cost = k.step_thread(th)
    if cost < 0:
        k.step_sid = k.step_fid = 0
        k.emit("exit", th.tid)
        k.finish(th, 0)
    elif th.state == RUNNING:
        k.continue_at(th, cost)


def handler_name(arch: str) -> str:
    return ARCH_HANDLER[arch]
