"""The simulated machine: clock, CPUs, run queue, cache lines and the threads' kernel stacks.

Everything here is plain data so that a :class:`Machine` can be copied into a
keyframe (``pickle``) and stepped on from there: a thread's position in the
kernel is an explicit stack of :class:`Frame` objects (function name, program
counter, locals), never a Python generator.

One call to :meth:`Machine.step` is one interleaving point (reference §13): it
pops the earliest event from a heap ordered by ``(time, priority, sequence)``
and runs one micro-step of one thread (or one RCU callback batch).  Ties are
broken by the sequence number, never by set or dict order, so the same scenario
and seed always give the same trace.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vmaviz.model.pickling import tuple_state
from vmaviz.model.rwsem import Wake

# Thread states.
RUNNING = "running"  # on a CPU, next step scheduled
READY = "ready"  # runnable, waiting in the run queue
BLOCKED = "blocked"  # asleep on a lock
SLEEPING = "sleeping"  # asleep on a timer
BARRIER = "barrier"  # waiting at a scenario barrier
DONE = "done"

# Heap entry kinds (also the tie-break priority: timers before thread steps).
EV_RCU = 0
EV_TIMER = 1
EV_STEP = 2

RCU_TID = -1


@tuple_state
class Frame:
    """One kernel function activation: ``fn`` at program counter ``pc`` with its locals.

    ``sid`` names the whole call stack down to this frame (an index into the
    machine's stack table), so a step records its stack as one integer.
    """

    __slots__ = ("fid", "fn", "loc", "pc", "sid")

    def __init__(
        self, fn: str, pc: int = 0, loc: dict[str, Any] | None = None, fid: int = 0, sid: int = 0
    ) -> None:
        self.fn = fn
        self.pc = pc
        self.loc: dict[str, Any] = loc if loc is not None else {}
        self.fid = fid
        self.sid = sid


_new_frame = object.__new__


@tuple_state
@dataclass(slots=True)
class Thread:
    """A simulated task: its program (scenario ops) and its kernel stack."""

    tid: int
    name: str
    ops: list[Any]
    start_ns: int = 0
    frames: list[Frame] = field(default_factory=list)
    state: str = SLEEPING
    cpu: int = -1
    token: int = 0
    slice_start: int = 0
    blocked_on: str = ""
    blocked_since: int = 0
    blocked_ns: int = 0
    done_ns: int = -1
    op_no: int = 0
    # Program position: a stack of (ops list, index, remaining loop count).
    pc_stack: list[list[Any]] = field(default_factory=list)
    faults: int = 0
    spinning: bool = False
    wake_granted: bool = False
    #: A signal is pending (fault_signal_pending() is true after a RETRY).
    signal_pending: bool = False
    #: SIGKILL is pending (``fatal_signal_pending``): ``complete_signal`` put it on
    #: every thread of the group; the thread dies at its next return to user mode.
    sigkill: bool = False
    #: ``do_exit`` has started: this thread no longer counts in ``mm_users``.
    exiting: bool = False

    @property
    def stack_names(self) -> tuple[str, ...]:
        return tuple(f.fn for f in self.frames)

    @property
    def sid(self) -> int:
        return self.frames[-1].sid if self.frames else 0


@tuple_state
@dataclass(slots=True)
class Line:
    """A cache line holding a lock word: who has it and until when it is busy."""

    owner_cpu: int = -1
    busy_until: int = 0
    transfers: int = 0


@dataclass(slots=True)
class Event:
    """What the last step did, for the trace: an interned code plus two arguments."""

    code: str = ""
    a: int = 0
    b: int = 0
    note: str = ""


class MachineBase:
    """Clock, CPUs, scheduler, cache lines, frames.  The kernel paths build on it."""

    # Slots, not a __dict__: every step reads and writes these attributes, and
    # slot access is the fastest attribute access CPython has.
    __slots__ = (
        "costs",
        "cpu_thread",
        "cur_cpu",
        "event",
        "heap",
        "lines",
        "ncpus",
        "next_fid",
        "now",
        "pending",
        "runq",
        "seq",
        "stack_child",
        "stack_table",
        "step_cpu",
        "step_fid",
        "step_op",
        "step_sid",
        "step_tid",
        "steps",
        "threads",
    )

    def __init__(self, ncpus: int, costs: dict[str, int]) -> None:
        self.now = 0
        self.costs = costs
        self.ncpus = ncpus
        self.cpu_thread: list[int] = [-1] * ncpus
        self.runq: deque[int] = deque()
        self.threads: list[Thread] = []
        self.heap: list[tuple[int, int, int, int, int]] = []
        self.seq = 0
        self.lines: dict[int | str, Line] = {}
        self.next_fid = 1
        self.event = Event()
        self.step_tid = 0
        self.step_cpu = 0
        #: The CPU of the thread running the step in progress (the fast run
        #: loop writes the step_* fields back only in batches).
        self.cur_cpu = 0
        self.step_sid = 0
        self.step_fid = 0
        self.step_op = 0
        self.steps = 0
        # Call stacks by function name, interned: sid -> names; (parent sid, fn) -> sid.
        self.stack_table: list[tuple[str, ...]] = [()]
        self.stack_child: dict[tuple[int, str], int] = {}
        # A step scheduled by continue_at() but not pushed yet (see Kernel.advance).
        self.pending: tuple[int, int, int] | None = None

    # ------------------------------------------------------------ the heap

    def _push(self, time: int, kind: int, tid: int, token: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (time, kind, self.seq, tid, token))

    def schedule(self, th: Thread, at: int) -> None:
        """Run ``th``'s next step at ``at``; any earlier scheduled step is void."""
        th.token += 1
        self._push(at, EV_STEP, th.tid, th.token)

    # -------------------------------------------------------------- costs

    def atomic(self, th: Thread, line: int | str, extra: int = 0) -> int:
        """An atomic read-modify-write on ``line`` by ``th``'s CPU; returns its cost.

        Atomics on one line serialise; a line owned by another CPU first moves
        (``line_transfer``).  This is what makes one shared lock word a
        throughput ceiling while separate lock words scale.

        Args:
            th: the thread doing the atomic (on its current CPU).
            line: the cache line: a lock key (0 is the mmap_lock count, a VMA
                id is that VMA's lock) or the name of another line.
            extra: work done inside the atomic (added to its cost).
        """
        ln = self.lines.get(line)
        if ln is None:
            ln = self.lines[line] = Line()
        now = self.now
        busy = ln.busy_until
        costs = self.costs
        cost = costs["atomic_local"] + extra
        cpu = th.cpu
        if ln.owner_cpu != cpu:
            if ln.owner_cpu >= 0:
                # A contended atomic costs about one line transfer in total: the
                # read-modify-write completes as the line arrives (calibration.md
                # §2a derives ~80 ns per contended atomic from the 6.2 M/s plateau).
                transfer = costs["line_transfer"] + extra
                if transfer > cost:
                    cost = transfer
                ln.transfers += 1
            ln.owner_cpu = cpu
        ln.busy_until = (busy if busy > now else now) + cost
        return ln.busy_until - now

    # ------------------------------------------------------------- frames

    def call(self, th: Thread, fn: str, **loc: Any) -> None:
        """Push a kernel function activation; it runs from its next step."""
        self.next_fid += 1
        frames = th.frames
        parent = frames[-1].sid if frames else 0
        sid = self.stack_child.get((parent, fn))
        if sid is None:
            sid = self.intern_sid(parent, fn)
        # Frame.__init__ spelled out: a third of all steps push a frame, and
        # filling the slots here skips a Python-level __init__ call.
        fr = _new_frame(Frame)
        fr.fn = fn
        fr.pc = 0
        fr.loc = loc
        fr.fid = self.next_fid
        fr.sid = sid
        frames.append(fr)

    def intern_sid(self, parent: int, fn: str) -> int:
        """The stack id of ``fn`` called from the stack ``parent``."""
        sid = self.stack_child.get((parent, fn))
        if sid is None:
            sid = len(self.stack_table)
            self.stack_table.append((*self.stack_table[parent], fn))
            self.stack_child[(parent, fn)] = sid
        return sid

    def ret(self, th: Thread, value: Any = None) -> None:
        """Pop the current function and hand ``value`` to the caller as ``ret``."""
        th.frames.pop()
        if th.frames:
            th.frames[-1].loc["ret"] = value

    def emit(self, code: str, a: int = 0, b: int = 0, note: str = "") -> None:
        ev = self.event
        ev.code = code
        ev.a = a
        ev.b = b
        if note:
            # A note the step already has (readers it granted a lock: see wake) stays.
            ev.note = f"{ev.note}; {note}" if ev.note else note

    # ---------------------------------------------------------- scheduling

    def start_threads(self) -> None:
        for th in self.threads:
            th.state = SLEEPING
            self._push(th.start_ns, EV_TIMER, th.tid, th.token)

    def make_ready(self, th: Thread, delay: int) -> None:
        """A woken thread: take an idle CPU after ``delay``, or queue for one."""
        for cpu in range(self.ncpus):
            if self.cpu_thread[cpu] < 0:
                self._run_on(th, cpu, self.now + delay)
                return
        th.state = READY
        self.runq.append(th.tid)

    def _run_on(self, th: Thread, cpu: int, at: int) -> None:
        self.cpu_thread[cpu] = th.tid
        th.cpu = cpu
        th.state = RUNNING
        th.slice_start = at
        self.schedule(th, at)

    def release_cpu(self, th: Thread, at: int) -> None:
        """``th`` leaves its CPU at ``at``; the next ready thread gets it."""
        cpu = th.cpu
        if cpu < 0:
            return
        self.cpu_thread[cpu] = -1
        th.cpu = -1
        if self.runq:
            nxt = self.threads[self.runq.popleft()]
            self._run_on(nxt, cpu, at + self.costs["ctx_switch"])

    def block(self, th: Thread, on: str, cost: int) -> None:
        """``th`` sleeps on ``on`` after spending ``cost``; its CPU goes to another thread."""
        th.state = BLOCKED
        th.blocked_on = on
        th.blocked_since = self.now + cost
        th.token += 1
        self.release_cpu(th, self.now + cost)

    def wake(self, tid: int, granted: bool = False) -> None:
        th = self.threads[tid]
        if th.state != BLOCKED:
            return
        th.blocked_ns += max(0, self.now - th.blocked_since)
        th.blocked_on = ""
        th.wake_granted = granted
        self.make_ready(th, self.costs["wakeup_latency"])

    def wake_all(self, wakes: list[Wake], key: int = -1) -> None:
        """Wake the threads ``wakes`` names.

        Readers woken *granted* hold lock ``key`` from this step on, before they run
        again (``rwsem_mark_wake`` adds their reader bias for them). The step's note
        says so (``granted=KEY:TID,TID``), so that a timeline can draw them holding
        it from here, as the lock's state does.

        Sleepers woken without the lock (writers, which retry it themselves) are
        named too (``woke=KEY:TID,TID``): the step that woke a thread is not
        otherwise in the trace, and the timeline's hand-off arrows start there.
        """
        granted: list[int] = []
        woke: list[int] = []
        for w in wakes:
            if self.threads[w.tid].state == BLOCKED:
                (granted if w.granted else woke).append(w.tid)
            self.wake(w.tid, w.granted)
        if key < 0:
            return
        for name, tids in (("granted", granted), ("woke", woke)):
            if tids:
                tag = f"{name}={key}:" + ",".join(str(t) for t in tids)
                ev = self.event
                ev.note = f"{ev.note}; {tag}" if ev.note else tag

    def sleep_until(self, th: Thread, at: int, cost: int) -> None:
        th.state = SLEEPING
        th.token += 1
        self.release_cpu(th, self.now + cost)
        self._push(at, EV_TIMER, th.tid, th.token)

    def finish(self, th: Thread, cost: int) -> None:
        th.state = DONE
        th.done_ns = self.now + cost
        th.token += 1
        self.release_cpu(th, self.now + cost)

    def continue_at(self, th: Thread, cost: int) -> None:
        """After a step: keep running, or yield the CPU when the slice is used up."""
        at = self.now + cost
        if self.runq and at - th.slice_start >= self.costs["timeslice"]:
            th.state = READY
            th.token += 1
            self.runq.append(th.tid)
            self.release_cpu(th, at)
            return
        # Defer the heap push: if this is the earliest event, the next step runs it
        # without touching the heap (same order as pushing now: nothing else is
        # pushed in between, so its sequence number would be the next one anyway).
        th.token += 1
        self.pending = (at, th.tid, th.token)
