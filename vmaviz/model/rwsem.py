"""``struct rw_semaphore`` as Linux 6.4 runs it (``kernel/locking/rwsem.c``), non-PREEMPT_RT.

The model keeps the state the kernel keeps in ``sem->count`` (writer-locked bit,
waiters bit, handoff bit, reader count) and ``sem->wait_list`` (a FIFO of
readers and writers, each with the time it queued), and implements each
operation's *decision* exactly as reference §8 describes.  Timing (how long a
spin lasts, when a woken task runs) belongs to the engine; these methods only
say what happened and whom to wake.

Thread identities are small integers.  The model never blocks: an operation that
would sleep returns ``QUEUED`` and the engine parks the thread until
:meth:`RwSem.grant` or a wake-up tells it to continue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmaviz.model.pickling import tuple_state

# Outcomes of acquisition attempts.
ACQUIRED = "acquired"
QUEUED = "queued"
FAILED = "failed"

READER = "r"
WRITER = "w"

# What ``rwsem_owner_state`` (kernel/locking/rwsem.c) reads from ``sem->owner``.
OWNER_NULL = "null"
OWNER_WRITER = "writer"
OWNER_READER = "reader"
OWNER_NONSPINNABLE = "nonspinnable"

# RWSEM_WAIT_TIMEOUT = DIV_ROUND_UP(HZ, 250) jiffies: about 4 ms.
RWSEM_WAIT_TIMEOUT_NS = 4_000_000
# rwsem_mark_wake grants at most this many readers per call.
MAX_READERS_WAKEUP = 256


@tuple_state
@dataclass(slots=True)
class Waiter:
    """One ``struct rwsem_waiter`` on ``sem->wait_list``."""

    tid: int
    kind: str  # READER or WRITER
    since_ns: int
    handoff_set: bool = False

    @property
    def timeout_ns(self) -> int:
        return self.since_ns + RWSEM_WAIT_TIMEOUT_NS


@dataclass(slots=True)
class Wake:
    """A wake-up decided by ``rwsem_mark_wake``.

    ``granted`` readers already hold the lock when they run; a woken writer
    still has to win ``rwsem_try_write_lock`` (another writer may steal first).
    """

    tid: int
    kind: str
    granted: bool


@tuple_state
@dataclass(slots=True)
class RwSem:
    """One rw_semaphore: ``mm->mmap_lock`` or a ``vma->vm_lock->lock``.

    Attributes:
        name: label for traces.
        readers: the reader count (``count >> RWSEM_READER_SHIFT``).
        writer: the owning writer's thread id, or None (the writer-locked bit).
        handoff: ``RWSEM_FLAG_HANDOFF``.
        owner: the task in ``sem->owner``: the writer holding the lock, or the
            last reader that took it.  Readers never clear it
            (``rwsem_clear_reader_owned`` is a no-op without
            ``CONFIG_DEBUG_RWSEMS``), so for a free lock it may name a stale reader.
        reader_owned: ``RWSEM_READER_OWNED`` in ``sem->owner``.
        nonspinnable: ``RWSEM_NONSPINNABLE`` in ``sem->owner``: set by a writer
            whose spin on a reader-owned lock timed out; kept by every later
            reader (``__rwsem_set_reader_owned``) until ``clear_nonspinnable`` or
            a writer's ``rwsem_set_owner``.
        waiters: ``sem->wait_list`` in FIFO order; its non-emptiness is
            ``RWSEM_FLAG_WAITERS``.
        reader_tids: which threads hold it for read (the kernel does not track
            this; the model does, for invariants and the UI).
    """

    name: str
    readers: int = 0
    writer: int | None = None
    handoff: bool = False
    owner: int | None = None
    reader_owned: bool = False
    nonspinnable: bool = False
    #: The FIFO wait queue.  A list rather than a deque: it is short, and lists
    #: pickle (into every keyframe) without a Python-level call per queue.
    waiters: list[Waiter] = field(default_factory=list)
    reader_tids: list[int] = field(default_factory=list)
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "read_acquired": 0,
            "write_acquired": 0,
            "read_trylock_failed": 0,
            "write_trylock_failed": 0,
            "read_steal": 0,
            "queued": 0,
            "handoffs": 0,
            "write_steal": 0,
            "nonspinnable": 0,
        }
    )

    # ----------------------------------------------------------- state views

    @property
    def has_waiters(self) -> bool:
        return bool(self.waiters)

    @property
    def is_free(self) -> bool:
        return self.writer is None and self.readers == 0

    def count_bits(self) -> dict[str, int | bool]:
        """The ``sem->count`` fields, for the UI and traces."""
        return {
            "writer_locked": self.writer is not None,
            "waiters": bool(self.waiters),
            "handoff": self.handoff,
            "readers": self.readers,
        }

    def _take_read(self, tid: int, set_owner: bool = True) -> None:
        self.readers += 1
        self.reader_tids.append(tid)
        self.stats["read_acquired"] += 1
        if set_owner:
            self._set_reader_owned(tid)

    def _set_reader_owned(self, tid: int) -> None:
        """``__rwsem_set_reader_owned``: the reader and READER_OWNED; NONSPINNABLE is kept."""
        self.owner = tid
        self.reader_owned = True

    def _take_write(self, tid: int) -> None:
        self.writer = tid
        self.stats["write_acquired"] += 1
        # rwsem_set_owner stores the bare task pointer: both owner flags go.
        self.owner = tid
        self.reader_owned = False
        self.nonspinnable = False

    def clear_nonspinnable(self) -> None:
        """``clear_nonspinnable``: called once the lock is free of readers and writers."""
        self.nonspinnable = False

    def set_nonspinnable(self) -> bool:
        """``rwsem_set_nonspinnable``: only while ``sem->owner`` still says READER_OWNED.

        Returns:
            Whether the bit was newly set.
        """
        if not self.reader_owned or self.nonspinnable:
            return False
        self.nonspinnable = True
        self.stats["nonspinnable"] += 1
        return True

    # ------------------------------------------------------------ try-locks

    def down_read_trylock(self, tid: int) -> bool:
        """``down_read_trylock``: fails as soon as a writer, a waiter or handoff is present."""
        if self.writer is not None or self.waiters or self.handoff:
            self.stats["read_trylock_failed"] += 1
            return False
        self._take_read(tid)
        return True

    def down_write_trylock(self, tid: int) -> bool:
        """``down_write_trylock``: ``count`` 0 -> writer-locked, nothing else."""
        if self.writer is not None or self.readers or self.waiters or self.handoff:
            self.stats["write_trylock_failed"] += 1
            return False
        self._take_write(tid)
        return True

    # ------------------------------------------------------------- readers

    def down_read(self, tid: int, now: int) -> tuple[str, list[Wake]]:
        """``down_read``: fast path, then ``rwsem_down_read_slowpath``.

        Returns ``(ACQUIRED, wakes)`` or ``(QUEUED, [])``.  ``wakes`` lists the
        queued readers that a stealing first reader also grants.
        """
        if self.writer is None and not self.waiters and not self.handoff:
            self._take_read(tid)
            return ACQUIRED, []
        # Slow path: the reader bias is already added (rcnt counts us).
        rcnt = self.readers + 1
        if self.writer is None and rcnt > 1:
            # Anti-starvation: don't join other readers while someone waits.
            return self.queue_reader(tid, now)
        if self.writer is None and not self.handoff:
            # Reader optimistic lock stealing.
            self._take_read(tid)
            self.stats["read_steal"] += 1
            wakes: list[Wake] = []
            if rcnt == 1 and self.waiters:
                wakes = self._mark_wake_readers_owned()
            return ACQUIRED, wakes
        return self.queue_reader(tid, now)

    def up_read(self, tid: int) -> list[Wake]:
        """``up_read``: the last reader out wakes the queue."""
        if tid not in self.reader_tids:
            raise RuntimeError(f"{self.name}: up_read by T{tid}, which holds no read lock")
        self.reader_tids.remove(tid)
        self.readers -= 1
        # __up_read: (count & (LOCK_MASK | WAITERS)) == WAITERS -> clear the
        # nonspinnable bit, then rwsem_wake.  Without waiters the owner word,
        # stale reader and NONSPINNABLE included, is left as it is.
        if self.readers == 0 and self.writer is None and self.waiters:
            self.clear_nonspinnable()
            return self._mark_wake()
        return []

    # ------------------------------------------------------------- writers

    def down_write_fast(self, tid: int) -> bool:
        """``down_write`` fast path: CAS 0 -> writer-locked."""
        if self.writer is None and self.readers == 0 and not self.waiters and not self.handoff:
            self._take_write(tid)
            return True
        return False

    def can_spin_on_owner(self, owner_running: bool) -> bool:
        """``rwsem_can_spin_on_owner`` (kernel/locking/rwsem.c).

        Spinning is refused only when ``sem->owner`` has NONSPINNABLE, or names
        a writer that is not on a CPU.  A free lock (owner cleared by
        ``up_write``) and a reader-owned one -- even a stale reader owner whose
        readers have all left -- may be spun on; ``need_resched`` is not modelled.

        Args:
            owner_running: whether the task in ``sem->owner`` is on a CPU
                (only consulted for a writer owner).
        """
        if self.nonspinnable:
            return False
        return not (self.owner is not None and not self.reader_owned and not owner_running)

    def owner_state(self, owner_running: bool) -> str:
        """``rwsem_owner_state``, plus ``rwsem_spin_on_owner``'s stop on an owner off its CPU.

        Args:
            owner_running: whether the task in ``sem->owner`` is on a CPU.

        Returns:
            ``OWNER_NONSPINNABLE``, ``OWNER_READER`` (possibly stale),
            ``OWNER_WRITER`` or ``OWNER_NULL``.
        """
        if self.nonspinnable:
            return OWNER_NONSPINNABLE
        if self.reader_owned:
            return OWNER_READER
        if self.owner is None:
            return OWNER_NULL
        return OWNER_WRITER if owner_running else OWNER_NONSPINNABLE

    def reader_spin_limit_ns(self) -> int:
        """``rwsem_rspin_threshold``: ``(20 + min(readers, 30)) / 2`` microseconds."""
        return (20 + min(self.readers, 30)) * 1000 // 2

    def try_write_lock_unqueued(self, tid: int) -> bool:
        """A spinning writer's ``rwsem_try_write_lock_unqueued`` (kernel/locking/rwsem.c).

        The CAS succeeds whenever ``count`` has neither a lock holder nor
        HANDOFF: the WAITERS bit does not stop it, so a spinner takes a free
        lock ahead of queued waiters, even of a first waiter that
        ``rwsem_mark_wake`` has woken but that has not run yet.
        """
        if self.writer is None and self.readers == 0 and not self.handoff:
            if self.waiters:
                self.stats["write_steal"] += 1
            self._take_write(tid)
            return True
        return False

    def queue_writer(self, tid: int, now: int) -> tuple[str, list[Wake]]:
        """The queueing part of ``rwsem_down_write_slowpath`` (after a failed spin).

        The writer joins the tail of ``wait_list``.  If it is not the first
        waiter, ``rwsem_cond_wake_waiter`` runs (it wakes the queue head when
        the lock is free, or grants queued readers when readers own it).  Then,
        before sleeping, it tries ``rwsem_try_write_lock`` once: a free lock
        without a HANDOFF owned by the first waiter is taken even from behind
        other waiters.

        Returns:
            ``(ACQUIRED or QUEUED, the wake-ups rwsem_cond_wake_waiter decided)``.
        """
        self._queue(tid, WRITER, now)
        wakes: list[Wake] = []
        if self.waiters[0].tid != tid:
            wakes = self._cond_wake_waiter()
        if self.writer_retry(tid, now):
            return ACQUIRED, wakes
        return QUEUED, wakes

    def writer_retry(self, tid: int, now: int) -> bool:
        """A queued writer runs ``rwsem_try_write_lock`` (kernel/locking/rwsem.c).

        With HANDOFF set and the first waiter being the one that set it
        (``handoff_set``), every other waiter fails.  Otherwise a free lock is
        taken (clearing HANDOFF) by whichever waiter runs this, first or not.
        A waiter that finds the lock held after waiting past
        ``RWSEM_WAIT_TIMEOUT`` sets HANDOFF -- first or not -- and marks the
        first waiter ``handoff_set``; from then on readers cannot steal,
        try-locks fail and spinning writers' ``rwsem_try_write_lock_unqueued``
        fails, so the lock goes to that first waiter.
        """
        w = self._find(tid)
        first = self.waiters[0]
        if self.handoff:
            if w is not first:
                return False
            # "First waiter inherits a previously set handoff bit": HANDOFF can
            # outlive the waiter that set it when that one left the queue
            # (del_wake_waiter), and the new first waiter takes it over.
            w.handoff_set = True
        if self.writer is None and self.readers == 0:
            self.waiters.remove(w)
            self.handoff = False
            self._take_write(tid)
            return True
        if self.handoff or now < w.timeout_ns:
            return False
        self.handoff = True
        first.handoff_set = True
        self.stats["handoffs"] += 1
        return False

    def del_wake_waiter(self, tid: int, now: int) -> list[Wake]:
        """A killable waiter gives up: ``out_nolock`` -> ``rwsem_del_wake_waiter``.

        kernel/locking/rwsem.c: ``rwsem_del_waiter`` unlinks the waiter and, only
        when the list is now empty, clears ``RWSEM_FLAG_HANDOFF`` and
        ``RWSEM_FLAG_WAITERS``; a HANDOFF set for a waiter that leaves a
        non-empty queue stays set, and the next first writer inherits it
        (:meth:`writer_retry`).  If the waiter was the first one and others
        remain, ``rwsem_mark_wake(RWSEM_WAKE_ANY)`` runs whatever the lock's
        state: a writer at the head is woken to retry; readers at the head are
        granted unless a writer holds the lock, in which case the first reader
        sets HANDOFF if it has waited past ``RWSEM_WAIT_TIMEOUT``.

        Returns:
            The wake-ups ``rwsem_mark_wake`` decided.
        """
        w = self._find(tid)
        first = self.waiters[0] is w
        self.waiters.remove(w)
        if not self.waiters:
            self.handoff = False
            return []
        if not first:
            return []
        head = self.waiters[0]
        if head.kind == WRITER:
            return [Wake(head.tid, WRITER, granted=False)]
        if self.writer is not None:
            # rwsem_mark_wake backs its reader bias out of a writer-locked count.
            if now >= head.timeout_ns:
                if not self.handoff:
                    self.handoff = True
                    self.stats["handoffs"] += 1
                head.handoff_set = True
            return []
        return self._grant_readers()

    def waiter_handoff_set(self, tid: int) -> bool:
        """``waiter.handoff_set`` of queued ``tid``: it spins on the owner instead of sleeping."""
        return self._find(tid).handoff_set

    def up_write(self, tid: int) -> list[Wake]:
        """``up_write``: clear the owner word and the writer bit; wake the queue if any."""
        if self.writer != tid:
            raise RuntimeError(f"{self.name}: up_write by T{tid}, owner is {self.writer}")
        self.writer = None
        # rwsem_clear_owner: sem->owner = 0, flags included.
        self.owner = None
        self.reader_owned = False
        self.nonspinnable = False
        if self.waiters:
            return self._mark_wake()
        return []

    def downgrade_write(self, tid: int) -> list[Wake]:
        """``downgrade_write``: the writer becomes a reader; queued readers join it."""
        if self.writer != tid:
            raise RuntimeError(f"{self.name}: downgrade by T{tid}, owner is {self.writer}")
        self.writer = None
        self.readers += 1
        self.reader_tids.append(tid)
        self._set_reader_owned(tid)
        if self.waiters and self.waiters[0].kind == READER:
            # rwsem_downgrade_wake: RWSEM_WAKE_READ_OWNED leaves sem->owner alone.
            return self._grant_readers(set_owner=False)
        return []

    # ----------------------------------------------------------- wait queue

    def _queue(self, tid: int, kind: str, now: int) -> str:
        self.waiters.append(Waiter(tid, kind, now))
        self.stats["queued"] += 1
        return QUEUED

    def queue_reader(self, tid: int, now: int) -> tuple[str, list[Wake]]:
        """The ``queue:`` part of ``rwsem_down_read_slowpath``.

        A reader that finds the queue empty and no writer keeps its bias and
        succeeds.  Otherwise it queues, then ``rwsem_cond_wake_waiter`` runs:
        with readers holding the lock it grants queued readers when a reader
        heads the queue; with the lock free it wakes whoever heads the queue.
        Returns whether this reader got the lock and whom else to wake.
        """
        if not self.waiters and self.writer is None:
            self._take_read(tid)
            return ACQUIRED, []
        self._queue(tid, READER, now)
        wakes = self._cond_wake_waiter()
        mine = [w for w in wakes if w.tid == tid and w.granted]
        others = [w for w in wakes if w.tid != tid]
        return (ACQUIRED if mine else QUEUED), others

    def _find(self, tid: int) -> Waiter:
        for w in self.waiters:
            if w.tid == tid:
                return w
        raise RuntimeError(f"{self.name}: T{tid} is not queued")

    def is_queued(self, tid: int) -> bool:
        return any(w.tid == tid for w in self.waiters)

    def _cond_wake_waiter(self) -> list[Wake]:
        """``rwsem_cond_wake_waiter``: nothing under a writer; readers-only wake under readers.

        On a free lock it first clears NONSPINNABLE, then wakes with RWSEM_WAKE_ANY.
        """
        if self.writer is not None:
            return []
        if self.readers > 0:
            if self.waiters[0].kind == READER:
                return self._grant_readers()
            return []
        self.clear_nonspinnable()
        return self._mark_wake()

    def _mark_wake(self) -> list[Wake]:
        """``rwsem_mark_wake`` (RWSEM_WAKE_ANY).

        A writer at the head is only woken: until it runs, a spinning writer
        or a stealing reader may take the lock first.
        """
        first = self.waiters[0]
        if first.kind == WRITER:
            return [Wake(first.tid, WRITER, granted=False)]
        return self._grant_readers()

    def _mark_wake_readers_owned(self) -> list[Wake]:
        """``rwsem_mark_wake`` (RWSEM_WAKE_READ_OWNED) from a stealing reader."""
        if self.waiters and self.waiters[0].kind == READER:
            return self._grant_readers(set_owner=False)
        return []

    def _grant_readers(self, set_owner: bool = True) -> list[Wake]:
        """Phase-fair: grant every queued reader, skipping writers, which keep their order.

        Args:
            set_owner: ``rwsem_mark_wake`` for any wake type but
                RWSEM_WAKE_READ_OWNED stores the first granted reader in
                ``sem->owner`` (``__rwsem_set_reader_owned``).
        """
        granted: list[Wake] = []
        keep: list[Waiter] = []
        for w in self.waiters:
            if w.kind == READER and len(granted) < MAX_READERS_WAKEUP:
                self._take_read(w.tid, set_owner=set_owner and not granted)
                granted.append(Wake(w.tid, READER, granted=True))
            else:
                keep.append(w)
        self.waiters = keep
        if granted:
            self.handoff = False
        return granted
