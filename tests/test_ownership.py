"""The shared lock-holder bookkeeping behind the timeline's and the export's lock tracks."""

from __future__ import annotations

from dataclasses import dataclass, field

from vmaviz.engine.ownership import Holders, Ownership

VMA = 7


def test_reader_granted_before_it_ran_is_counted_once() -> None:
    own = Ownership(Holders)
    assert own.apply("write_acquire", 0, 1)
    assert own.apply("queued", 0, 2) is False
    assert own.apply("write_release", 0, 1)
    # The unlock hands the lock to the sleeping reader: it holds it from here...
    st = own.grant(0, [2])
    assert (st.readers, st.writer) == ([2], None)
    # ...so its own acquire step, when it runs, changes nothing.
    assert own.apply("read_acquire", 0, 2) is False
    assert own.lock(0).readers == [2]
    # A later acquire by the same thread is a real second hold.
    assert own.apply("read_acquire", 0, 2)
    assert own.lock(0).readers == [2, 2]


def test_grant_is_per_lock() -> None:
    own = Ownership(Holders)
    own.grant(VMA, [3])
    assert own.apply("read_acquire", 0, 3)
    assert own.lock(0).readers == [3]
    assert own.apply("read_acquire", VMA, 3) is False
    assert own.lock(VMA).readers == [3]


def test_nested_reader_holds_until_its_last_release() -> None:
    own = Ownership(Holders)
    for tid in (1, 2, 1):
        assert own.apply("read_acquire", VMA, tid)
    assert own.lock(VMA).readers == [1, 2, 1]
    own.apply("read_release", VMA, 1)
    assert own.lock(VMA).readers == [2, 1]
    own.apply("read_release", VMA, 1)
    assert own.lock(VMA).readers == [2]


def test_downgrade_turns_the_writer_into_a_reader() -> None:
    own = Ownership(Holders)
    own.apply("read_acquire", 0, 4)
    own.apply("read_release", 0, 4)
    own.apply("write_acquire", 0, 1)
    assert own.apply("downgrade", 0, 1)
    assert (own.lock(0).readers, own.lock(0).writer) == ([1], None)
    # Only the writer can downgrade.
    own.apply("downgrade", 0, 2)
    assert (own.lock(0).readers, own.lock(0).writer) == ([1], None)


def test_release_of_a_lock_never_taken_changes_nothing() -> None:
    own = Ownership(Holders)
    own.apply("read_release", VMA, 1)
    own.apply("write_release", VMA, 1)
    own.apply("downgrade", VMA, 1)
    assert (own.lock(VMA).readers, own.lock(VMA).writer) == ([], None)
    own.apply("write_acquire", VMA, 2)
    own.apply("write_release", VMA, 1)
    assert own.lock(VMA).writer == 2


def test_locks_keep_first_seen_order_and_the_callers_record_type() -> None:
    @dataclass
    class Extra(Holders):
        waiters: set[int] = field(default_factory=set)

    own = Ownership(Extra)
    own.apply("queued", VMA, 1)
    own.grant(0, [2])
    own.apply("write_acquire", 3, 1)
    assert list(own.locks) == [VMA, 0, 3]
    assert all(isinstance(st, Extra) for st in own.locks.values())
