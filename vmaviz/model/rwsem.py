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
        waiters: ``sem->wait_list`` in FIFO order; its non-emptiness is
            ``RWSEM_FLAG_WAITERS``.
        reader_tids: which threads hold it for read (the kernel does not track
            this; the model does, for invariants and the UI).
    """

    name: str
    readers: int = 0
    writer: int | None = None
    handoff: bool = False
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

    def _take_read(self, tid: int) -> None:
        self.readers += 1
        self.reader_tids.append(tid)
        self.stats["read_acquired"] += 1

    def _take_write(self, tid: int) -> None:
        self.writer = tid
        self.stats["write_acquired"] += 1

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
        if self.readers == 0 and self.writer is None and self.waiters:
            return self._mark_wake()
        return []

    # ------------------------------------------------------------- writers

    def down_write_fast(self, tid: int) -> bool:
        """``down_write`` fast path: CAS 0 -> writer-locked."""
        if self.writer is None and self.readers == 0 and not self.waiters and not self.handoff:
            self._take_write(tid)
            return True
        return False

    def can_spin(self, owner_running: bool) -> bool:
        """``rwsem_can_spin_on_owner``: spin while a running writer owns it, or readers do."""
        if self.writer is not None:
            return owner_running
        return self.readers > 0

    def reader_spin_limit_ns(self) -> int:
        """``rwsem_rspin_threshold``: ``(20 + min(readers, 30)) / 2`` microseconds."""
        return (20 + min(self.readers, 30)) * 1000 // 2

    def try_write_lock_unqueued(self, tid: int) -> bool:
        """A spinning writer's ``rwsem_try_write_lock_unqueued``."""
        if self.writer is None and self.readers == 0 and not self.handoff:
            self._take_write(tid)
            return True
        return False

    def queue_writer(self, tid: int, now: int) -> str:
        """``rwsem_down_write_slowpath``: queue, unless the lock is free right now."""
        if not self.waiters and self.writer is None and self.readers == 0 and not self.handoff:
            self._take_write(tid)
            return ACQUIRED
        return self._queue(tid, WRITER, now)

    def writer_retry(self, tid: int, now: int) -> bool:
        """A queued writer runs ``rwsem_try_write_lock``.

        Once handoff is set only the first waiter may take the lock, and it
        inherits ``handoff_set`` (which lets it spin on the owner instead of
        sleeping).  Any waiter that finds the lock held after waiting past
        ``RWSEM_WAIT_TIMEOUT`` sets handoff, so that readers can no longer
        steal and new try-locks fail.
        """
        w = self._find(tid)
        first = self.waiters[0] is w
        if self.handoff:
            if not first:
                return False
            w.handoff_set = True
        if self.writer is None and self.readers == 0:
            self.waiters.remove(w)
            self.handoff = False
            self._take_write(tid)
            return True
        if self.handoff or now < w.timeout_ns:
            return False
        self.handoff = True
        self.waiters[0].handoff_set = True
        self.stats["handoffs"] += 1
        return False

    def up_write(self, tid: int) -> list[Wake]:
        """``up_write``: clear the writer bit; wake the queue if any."""
        if self.writer != tid:
            raise RuntimeError(f"{self.name}: up_write by T{tid}, owner is {self.writer}")
        self.writer = None
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
        if self.waiters and self.waiters[0].kind == READER:
            return self._grant_readers()
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
        wakes: list[Wake] = []
        if self.writer is None:
            wakes = self._mark_wake_readers_owned() if self.readers > 0 else self._mark_wake()
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

    def _mark_wake(self) -> list[Wake]:
        """``rwsem_mark_wake`` (RWSEM_WAKE_ANY)."""
        first = self.waiters[0]
        if first.kind == WRITER:
            return [Wake(first.tid, WRITER, granted=False)]
        return self._grant_readers()

    def _mark_wake_readers_owned(self) -> list[Wake]:
        """``rwsem_mark_wake`` (RWSEM_WAKE_READ_OWNED) from a stealing reader."""
        if self.waiters and self.waiters[0].kind == READER:
            return self._grant_readers()
        return []

    def _grant_readers(self) -> list[Wake]:
        """Phase-fair: grant every queued reader, skipping writers, which keep their order."""
        granted: list[Wake] = []
        keep: list[Waiter] = []
        for w in self.waiters:
            if w.kind == READER and len(granted) < MAX_READERS_WAKEUP:
                self._take_read(w.tid)
                granted.append(Wake(w.tid, READER, granted=True))
            else:
                keep.append(w)
        self.waiters = keep
        if granted:
            self.handoff = False
        return granted
