"""``RwSem`` against reference §8 (Linux 6.4 ``kernel/locking/rwsem.c``).

Thread ids are small integers; times are ns.  Every test builds the lock state
through the public operations only, then checks the decision the reference
prescribes.
"""

from __future__ import annotations

import pytest
from kernel_helpers import make_scenario, rows, run

from vmaviz.model.rwsem import (
    ACQUIRED,
    OWNER_NONSPINNABLE,
    OWNER_NULL,
    OWNER_READER,
    OWNER_WRITER,
    QUEUED,
    READER,
    RWSEM_WAIT_TIMEOUT_NS,
    WRITER,
    RwSem,
    Wake,
)

MS = 1_000_000


def queue_kinds(sem: RwSem) -> list[tuple[int, str]]:
    return [(w.tid, w.kind) for w in sem.waiters]


def write_held_with_queue(*queue: tuple[int, str]) -> RwSem:
    """T1 holds the lock for write; ``queue`` is then queued in order at t=0."""
    sem = RwSem("s")
    assert sem.down_write_fast(1)
    for tid, kind in queue:
        if kind == WRITER:
            assert sem.queue_writer(tid, 0) == (QUEUED, [])
        else:
            assert sem.down_read(tid, 0) == (QUEUED, [])
    assert queue_kinds(sem) == list(queue)
    return sem


# ----------------------------------------------------------------- fast paths


def test_read_fast_path_shares_the_lock() -> None:
    sem = RwSem("s")
    assert sem.down_read(1, 0) == (ACQUIRED, [])
    assert sem.down_read_trylock(2)
    assert sem.down_read(3, 0) == (ACQUIRED, [])
    assert sem.readers == 3
    assert sorted(sem.reader_tids) == [1, 2, 3]
    assert sem.writer is None
    assert not sem.waiters


def test_write_fast_path_is_cas_from_zero_only() -> None:
    sem = RwSem("s")
    assert sem.down_write_fast(1)
    assert sem.writer == 1
    # count != 0: the fast path and the trylock both fail, for readers and writers.
    assert not sem.down_write_fast(2)
    assert not sem.down_write_trylock(2)
    assert not sem.down_read_trylock(3)
    assert sem.up_write(1) == []
    assert sem.is_free
    assert sem.down_write_trylock(2)
    assert sem.writer == 2


def test_write_trylock_fails_while_readers_hold() -> None:
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert not sem.down_write_trylock(2)
    assert not sem.down_write_fast(2)
    assert sem.writer is None
    assert sem.readers == 1


def test_up_read_of_a_non_holder_is_refused() -> None:
    sem = RwSem("s")
    with pytest.raises(RuntimeError):
        sem.up_read(7)
    assert sem.down_write_fast(1)
    with pytest.raises(RuntimeError):
        sem.up_write(2)


# -------------------------------------------------- trylock and the waiter bit


def test_read_trylock_fails_once_a_waiter_is_queued_even_if_only_readers_hold() -> None:
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.down_read_trylock(2)  # no waiter yet: readers share
    assert sem.queue_writer(3, 0) == (QUEUED, [])
    assert sem.has_waiters
    assert sem.writer is None and sem.readers == 2
    # reference §8.2: "a trylock fails as soon as anyone is queued".
    assert not sem.down_read_trylock(4)
    assert not sem.down_write_trylock(4)
    assert sem.readers == 2
    assert 4 not in sem.reader_tids


def test_anti_starvation_new_reader_queues_behind_waiting_writer() -> None:
    sem = RwSem("s")
    assert sem.down_read(1, 0) == (ACQUIRED, [])
    assert sem.queue_writer(2, 10) == (QUEUED, [])
    # Readers own the lock and a writer waits: a new reader does not join them.
    result, wakes = sem.down_read(3, 20)
    assert result == QUEUED
    assert wakes == []
    assert sem.readers == 1
    assert queue_kinds(sem) == [(2, WRITER), (3, READER)]
    # The last reader out wakes the writer at the head (not granted), not reader 3.
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    assert sem.writer_retry(2, 30)
    assert sem.writer == 2
    assert queue_kinds(sem) == [(3, READER)]
    # up_write: the reader at the head is granted.
    assert sem.up_write(2) == [Wake(3, READER, granted=True)]
    assert sem.reader_tids == [3]
    assert not sem.waiters


def test_up_read_wakes_only_when_the_last_reader_leaves() -> None:
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.down_read_trylock(2)
    assert sem.queue_writer(3, 0) == (QUEUED, [])
    assert sem.up_read(1) == []
    assert sem.up_read(2) == [Wake(3, WRITER, granted=False)]
    assert sem.is_free  # woken, not granted: the writer still has to retry


# ----------------------------------------------------------- reader stealing


def test_reader_steals_a_just_released_lock_with_a_writer_waiting() -> None:
    sem = write_held_with_queue((2, WRITER))
    wakes = sem.up_write(1)
    assert wakes == [Wake(2, WRITER, granted=False)]
    assert sem.is_free and sem.has_waiters and not sem.handoff
    # A new reader: the fast path fails (waiters bit), but the lock is neither
    # writer-locked nor handed off, so it steals it.
    result, wakes = sem.down_read(3, 5)
    assert result == ACQUIRED
    assert wakes == []  # the head waiter is a writer: nothing to grant
    assert sem.reader_tids == [3]
    assert sem.stats["read_steal"] == 1
    # The woken writer loses its retry and stays queued.
    assert not sem.writer_retry(2, 6)
    assert sem.writer is None
    assert queue_kinds(sem) == [(2, WRITER)]


def test_no_stealing_while_a_writer_holds() -> None:
    sem = write_held_with_queue((2, WRITER))
    result, _ = sem.down_read(3, 1)
    assert result == QUEUED
    assert sem.readers == 0
    assert queue_kinds(sem) == [(2, WRITER), (3, READER)]


# ------------------------------------------------------------ phase-fair wake


def test_up_write_grants_all_queued_readers_skipping_writers() -> None:
    sem = write_held_with_queue((2, READER), (3, WRITER), (4, READER), (5, WRITER), (6, READER))
    wakes = sem.up_write(1)
    assert wakes == [
        Wake(2, READER, granted=True),
        Wake(4, READER, granted=True),
        Wake(6, READER, granted=True),
    ]
    assert sorted(sem.reader_tids) == [2, 4, 6]
    assert sem.readers == 3
    assert sem.writer is None
    # Writers keep their FIFO order.
    assert queue_kinds(sem) == [(3, WRITER), (5, WRITER)]


def test_writer_at_head_is_only_woken_and_can_be_robbed() -> None:
    sem = write_held_with_queue((2, WRITER), (3, READER))
    wakes = sem.up_write(1)
    assert wakes == [Wake(2, WRITER, granted=False)]
    assert sem.writer is None
    assert sem.readers == 0
    assert queue_kinds(sem) == [(2, WRITER), (3, READER)]
    # Another writer (optimistically spinning, unqueued) takes it first.
    assert sem.try_write_lock_unqueued(9)
    assert sem.writer == 9
    assert not sem.writer_retry(2, 10)
    assert queue_kinds(sem) == [(2, WRITER), (3, READER)]
    # When 9 leaves, 2 is woken again and wins this time.
    assert sem.up_write(9) == [Wake(2, WRITER, granted=False)]
    assert sem.writer_retry(2, 20)
    assert sem.writer == 2
    assert queue_kinds(sem) == [(3, READER)]


def test_queued_writer_does_not_take_a_lock_while_readers_hold() -> None:
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.queue_writer(2, 0) == (QUEUED, [])
    assert not sem.writer_retry(2, 100)
    assert sem.writer is None
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    assert sem.writer_retry(2, 200)
    assert sem.writer == 2
    assert not sem.waiters


def test_queue_writer_on_a_free_lock_with_empty_queue_acquires() -> None:
    sem = RwSem("s")
    assert sem.queue_writer(1, 0) == (ACQUIRED, [])
    assert sem.writer == 1
    assert not sem.waiters


# ------------------------------------------------------------------- handoff


def test_handoff_set_only_after_the_wait_timeout() -> None:
    assert RWSEM_WAIT_TIMEOUT_NS == 4 * MS  # DIV_ROUND_UP(HZ, 250) jiffies ~ 4 ms
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.queue_writer(2, 1000) == (QUEUED, [])
    assert not sem.writer_retry(2, 1000 + RWSEM_WAIT_TIMEOUT_NS - 1)
    assert not sem.handoff
    assert not sem.writer_retry(2, 1000 + RWSEM_WAIT_TIMEOUT_NS + 1)
    assert sem.handoff
    assert sem.writer is None  # handoff is not the lock
    assert sem.stats["handoffs"] == 1


def handed_off() -> RwSem:
    """Reader 1 holds; writer 2 waited past the timeout and set handoff; writer 3 queued later."""
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.queue_writer(2, 0) == (QUEUED, [])
    assert sem.queue_writer(3, 1) == (QUEUED, [])
    assert not sem.writer_retry(2, 5 * MS)
    assert sem.handoff
    return sem


def test_handoff_blocks_trylocks_and_reader_stealing() -> None:
    sem = handed_off()
    assert not sem.down_read_trylock(4)
    assert not sem.down_write_trylock(4)
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    assert sem.is_free
    # Free lock, but handoff: no stealing by readers or unqueued writers.
    result, _ = sem.down_read(5, 5 * MS + 10)
    assert result == QUEUED
    assert sem.readers == 0
    assert not sem.try_write_lock_unqueued(6)
    assert not sem.down_write_fast(6)
    assert sem.writer is None


def test_handoff_only_the_first_waiter_may_take_the_lock() -> None:
    sem = handed_off()
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    # Writer 3 also waited past its timeout, but it is not first.
    assert not sem.writer_retry(3, 6 * MS)
    assert sem.writer is None
    assert sem.writer_retry(2, 6 * MS)
    assert sem.writer == 2
    assert not sem.handoff  # taking the lock clears handoff
    assert queue_kinds(sem) == [(3, WRITER)]


def test_granting_readers_clears_handoff() -> None:
    sem = RwSem("s")
    assert sem.down_write_fast(1)
    assert sem.down_read(2, 0) == (QUEUED, [])
    assert sem.queue_writer(3, 0) == (QUEUED, [])
    assert not sem.writer_retry(3, 5 * MS)  # not first, but past its timeout
    assert sem.handoff
    assert sem.up_write(1) == [Wake(2, READER, granted=True)]
    assert not sem.handoff
    assert sem.reader_tids == [2]


# ----------------------------------------------------------------- downgrade


def test_downgrade_grants_queued_readers_and_leaves_writers_queued() -> None:
    sem = write_held_with_queue((2, READER), (3, WRITER), (4, READER))
    wakes = sem.downgrade_write(1)
    assert wakes == [Wake(2, READER, granted=True), Wake(4, READER, granted=True)]
    assert sem.writer is None
    assert sorted(sem.reader_tids) == [1, 2, 4]
    assert sem.readers == 3
    assert queue_kinds(sem) == [(3, WRITER)]
    # New readers now queue behind the writer (readers own it, a waiter exists).
    assert sem.down_read(5, 1) == (QUEUED, [])
    assert not sem.down_read_trylock(6)


def test_downgrade_with_a_writer_at_the_head_wakes_nobody() -> None:
    sem = write_held_with_queue((2, WRITER), (3, READER))
    assert sem.downgrade_write(1) == []
    assert sem.reader_tids == [1]
    assert sem.writer is None
    assert queue_kinds(sem) == [(2, WRITER), (3, READER)]
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]


def test_downgrade_by_non_owner_is_refused() -> None:
    sem = RwSem("s")
    assert sem.down_write_fast(1)
    with pytest.raises(RuntimeError):
        sem.downgrade_write(2)
    assert sem.writer == 1


def test_spin_policy() -> None:
    # rwsem_can_spin_on_owner (kernel/locking/rwsem.c, 6.4.0 line 705): refuse only
    # for NONSPINNABLE in sem->owner, or a writer owner that is not on a CPU.
    sem = RwSem("s")
    assert sem.can_spin_on_owner(owner_running=False)  # free: owner NULL
    assert sem.owner_state(owner_running=False) == OWNER_NULL
    assert sem.down_write_fast(1)
    assert sem.can_spin_on_owner(owner_running=True)
    assert not sem.can_spin_on_owner(owner_running=False)
    assert sem.owner_state(owner_running=True) == OWNER_WRITER
    assert sem.owner_state(owner_running=False) == OWNER_NONSPINNABLE
    assert sem.up_write(1) == []
    # rwsem_clear_owner: a free lock again, owner NULL.
    assert sem.owner is None and sem.owner_state(owner_running=False) == OWNER_NULL
    for tid in range(1, 41):
        assert sem.down_read_trylock(tid)
    # "Don't check the read-owner as the entry may be stale."
    assert sem.can_spin_on_owner(owner_running=False)
    assert sem.owner_state(owner_running=False) == OWNER_READER
    # rwsem_rspin_threshold: (20 + min(readers, 30)) / 2 microseconds.
    assert sem.reader_spin_limit_ns() == 25_000
    sem2 = RwSem("t")
    assert sem2.down_read_trylock(1)
    assert sem2.reader_spin_limit_ns() == 10_500


# ------------------------------------------- writer optimistic lock stealing


def test_spinning_writer_steals_a_free_lock_from_a_woken_writer() -> None:
    # up_write (__up_write, line 1360) clears sem->owner and, with WAITERS set,
    # rwsem_wake -> rwsem_mark_wake only *marks* the head writer for wake-up.
    sem = write_held_with_queue((2, WRITER), (3, READER))
    assert sem.up_write(1) == [Wake(2, WRITER, granted=False)]
    # A new writer 9: rwsem_write_trylock needs count == 0 and WAITERS is set.
    assert not sem.down_write_fast(9)
    # rwsem_can_spin_on_owner is true for a NULL owner; rwsem_spin_on_owner
    # returns OWNER_NULL; rwsem_try_write_lock_unqueued only tests
    # LOCK_MASK | HANDOFF, so it takes the lock although 2 was woken first.
    assert sem.can_spin_on_owner(owner_running=False)
    assert sem.owner_state(owner_running=False) == OWNER_NULL
    assert sem.try_write_lock_unqueued(9)
    assert sem.writer == 9 and sem.owner == 9 and not sem.reader_owned
    assert sem.stats["write_steal"] == 1
    # The woken writer then runs rwsem_try_write_lock, fails, sleeps again.
    assert not sem.writer_retry(2, 1_000)
    assert queue_kinds(sem) == [(2, WRITER), (3, READER)]


def test_spinning_writer_steals_a_lock_whose_owner_is_a_stale_reader() -> None:
    # __up_read leaves sem->owner pointing at the last reader (READER_OWNED),
    # since rwsem_clear_reader_owned is empty without CONFIG_DEBUG_RWSEMS.
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.queue_writer(2, 0) == (QUEUED, [])
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    assert sem.is_free and sem.owner == 1 and sem.reader_owned
    assert sem.owner_state(owner_running=False) == OWNER_READER
    assert sem.can_spin_on_owner(owner_running=False)
    assert sem.try_write_lock_unqueued(5)
    assert sem.writer == 5 and not sem.reader_owned
    assert not sem.writer_retry(2, 10)


def test_writer_queueing_behind_a_woken_writer_takes_a_free_lock() -> None:
    # rwsem_down_write_slowpath: a waiter that is not first runs
    # rwsem_cond_wake_waiter (free lock: RWSEM_WAKE_ANY), then
    # rwsem_try_write_lock before sleeping; with no HANDOFF a free lock is its.
    sem = write_held_with_queue((2, WRITER))
    assert sem.up_write(1) == [Wake(2, WRITER, granted=False)]
    result, wakes = sem.queue_writer(7, 50)
    assert result == ACQUIRED
    assert wakes == [Wake(2, WRITER, granted=False)]
    assert sem.writer == 7
    assert queue_kinds(sem) == [(2, WRITER)]


def test_no_writer_steals_once_handoff_is_set() -> None:
    sem = handed_off()  # reader 1 holds, writer 2 set HANDOFF, writer 3 queued
    assert sem.waiters[0].handoff_set
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    assert sem.is_free and sem.handoff
    # A spinner may still spin (stale reader owner, no NONSPINNABLE) ...
    assert sem.can_spin_on_owner(owner_running=False)
    # ... but rwsem_try_write_lock_unqueued fails on RWSEM_FLAG_HANDOFF.
    assert not sem.try_write_lock_unqueued(9)
    # Queued, it fails rwsem_try_write_lock: HANDOFF and first->handoff_set.
    assert sem.queue_writer(9, 5 * MS) == (QUEUED, [Wake(2, WRITER, granted=False)])
    assert not sem.writer_retry(3, 6 * MS)
    assert sem.writer is None and sem.stats["write_steal"] == 0
    assert sem.writer_retry(2, 6 * MS)
    assert sem.writer == 2 and not sem.handoff
    assert queue_kinds(sem) == [(3, WRITER), (9, WRITER)]


def test_a_later_waiter_past_its_timeout_sets_handoff_for_the_first() -> None:
    # rwsem_try_write_lock: "A waiter (first or not) can set the handoff bit";
    # first->handoff_set is what is recorded.
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.queue_writer(2, 3 * MS) == (QUEUED, [])
    assert sem.queue_writer(3, 0) == (QUEUED, [])  # an earlier timeout, queued second
    assert not sem.writer_retry(3, 5 * MS)
    assert sem.handoff
    assert sem.waiters[0].tid == 2 and sem.waiters[0].handoff_set
    assert not sem.waiters[1].handoff_set
    sem.up_read(1)
    assert not sem.writer_retry(3, 5 * MS + 1)  # not first: yields to 2
    assert sem.writer_retry(2, 5 * MS + 2)


# ---------------------------------------------------------- RWSEM_NONSPINNABLE


def test_nonspinnable_persists_in_the_owner_word_until_cleared() -> None:
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    # A writer spun past rwsem_rspin_threshold: rwsem_set_nonspinnable.
    assert sem.set_nonspinnable()
    assert not sem.set_nonspinnable()  # already set
    assert not sem.can_spin_on_owner(owner_running=True)
    assert sem.owner_state(owner_running=True) == OWNER_NONSPINNABLE
    # __up_read with no waiter does not clear it: the stale owner keeps the bit.
    assert sem.up_read(1) == []
    assert sem.nonspinnable and sem.reader_owned
    # __rwsem_set_reader_owned copies the bit for every new reader.
    assert sem.down_read(4, 0) == (ACQUIRED, [])
    assert sem.nonspinnable and sem.owner == 4
    # A writer now does not spin at all; it queues (without spinning).
    assert not sem.can_spin_on_owner(owner_running=False)
    assert sem.queue_writer(5, 0) == (QUEUED, [])
    # The last reader leaving with a waiter queued: clear_nonspinnable, rwsem_wake.
    assert sem.up_read(4) == [Wake(5, WRITER, granted=False)]
    assert not sem.nonspinnable
    assert sem.can_spin_on_owner(owner_running=False)


def test_a_writer_owner_clears_nonspinnable_and_set_needs_reader_owned() -> None:
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.set_nonspinnable()
    assert sem.up_read(1) == []
    # rwsem_write_trylock -> rwsem_set_owner stores the bare task pointer.
    assert sem.down_write_fast(2)
    assert not sem.nonspinnable and not sem.reader_owned
    # rwsem_set_nonspinnable aborts when READER_OWNED is not set.
    assert not sem.set_nonspinnable()
    assert sem.up_write(2) == []
    assert sem.owner is None and not sem.nonspinnable


# ---------------------------------------------- the engine: down_write steps


def steal_scenario(t2_start: int | None):
    """scan reads /proc/pid/maps (mmap_lock read-held for long); A's mmap spins on
    the reader-owned lock, times out and queues; B's mmap starts at ``t2_start``.
    B holds mmap_lock for write for 100 us.  The wake-up latency is widened to
    50 us so that B can arrive while A is woken but not running yet."""
    threads: list[dict] = [
        {"name": "scan", "ops": [{"read_proc_maps": {"ns_per_vma": 20_000}}]},
        {"name": "A", "start_ns": 5_000, "ops": [{"mmap": {"name": "a", "pages": 1}}]},
    ]
    if t2_start is not None:
        threads.append(
            {"name": "B", "start_ns": t2_start, "ops": [{"hold_mmap_write": {"ns": 100_000}}]}
        )
    return make_scenario(
        vmas=[{"name": f"lib{i}", "pages": 2} for i in range(4)],
        threads=threads,
        kernel={"cpus": 4},
        costs={"wakeup_latency": 50_000},
    )


def test_engine_spinning_writer_steals_ahead_of_the_woken_waiter() -> None:
    base = run(steal_scenario(None))
    evs = list(rows(base))
    queued = next(r for r in evs if r["event"] == "down_write:queued" and r["tid"] == 1)
    # A's spin timed out on the reader-owned lock and set NONSPINNABLE first.
    ends = [r for r in evs if r["event"] == "down_write:spin_end" and r["tid"] == 1]
    assert ends and ends[-1]["b"] == 1 and ends[-1]["step"] < queued["step"]
    unlock = next(r for r in evs if r["event"] == "mmap_read_unlock" and r["tid"] == 0)
    assert unlock["time_ns"] > queued["time_ns"]
    # B arrives 10 us after the unlock woke A (A runs only 50 us after it).
    e = run(steal_scenario(unlock["time_ns"] + 10_000))
    trace = list(rows(e))
    stolen = next(r for r in trace if r["event"] == "down_write:acquired_spinning")
    assert stolen["tid"] == 2
    assert stolen["b"] == 1  # one waiter (A) was queued when B took the lock
    a_got = next(
        r for r in trace if r["event"] == "down_write:acquired_after_wait" and r["tid"] == 1
    )
    failed = [r for r in trace if r["event"] == "down_write:retry_failed" and r["tid"] == 1]
    assert failed and stolen["step"] < failed[0]["step"] < a_got["step"]
    assert e.k.mm.mmap_lock.stats["write_steal"] == 1
    assert e.k.violations == []
