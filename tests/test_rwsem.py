"""``RwSem`` against reference §8 (Linux 6.4 ``kernel/locking/rwsem.c``).

Thread ids are small integers; times are ns.  Every test builds the lock state
through the public operations only, then checks the decision the reference
prescribes.
"""

from __future__ import annotations

import pytest

from vmaviz.model.rwsem import (
    ACQUIRED,
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
            assert sem.queue_writer(tid, 0) == QUEUED
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
    assert sem.queue_writer(3, 0) == QUEUED
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
    assert sem.queue_writer(2, 10) == QUEUED
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
    assert sem.queue_writer(3, 0) == QUEUED
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
    assert sem.queue_writer(2, 0) == QUEUED
    assert not sem.writer_retry(2, 100)
    assert sem.writer is None
    assert sem.up_read(1) == [Wake(2, WRITER, granted=False)]
    assert sem.writer_retry(2, 200)
    assert sem.writer == 2
    assert not sem.waiters


def test_queue_writer_on_a_free_lock_with_empty_queue_acquires() -> None:
    sem = RwSem("s")
    assert sem.queue_writer(1, 0) == ACQUIRED
    assert sem.writer == 1
    assert not sem.waiters


# ------------------------------------------------------------------- handoff


def test_handoff_set_only_after_the_wait_timeout() -> None:
    assert RWSEM_WAIT_TIMEOUT_NS == 4 * MS  # DIV_ROUND_UP(HZ, 250) jiffies ~ 4 ms
    sem = RwSem("s")
    assert sem.down_read_trylock(1)
    assert sem.queue_writer(2, 1000) == QUEUED
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
    assert sem.queue_writer(2, 0) == QUEUED
    assert sem.queue_writer(3, 1) == QUEUED
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
    assert sem.queue_writer(3, 0) == QUEUED
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
    sem = RwSem("s")
    assert sem.down_write_fast(1)
    assert sem.can_spin(owner_running=True)
    assert not sem.can_spin(owner_running=False)
    assert sem.up_write(1) == []
    for tid in range(1, 41):
        assert sem.down_read_trylock(tid)
    assert sem.can_spin(owner_running=False)
    # (20 + min(readers, 30)) / 2 microseconds.
    assert sem.reader_spin_limit_ns() == 25_000
    sem2 = RwSem("t")
    assert sem2.down_read_trylock(1)
    assert sem2.reader_spin_limit_ns() == 10_500
