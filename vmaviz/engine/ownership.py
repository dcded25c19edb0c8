"""Who holds each rw_semaphore, replayed one lock event at a time.

Two views rebuild lock ownership from a run's trace: the timeline's lock tracks
(:func:`vmaviz.engine.timeline.build_timeline`) and the Perfetto export's lock
tracks and counters (:func:`vmaviz.engine.export.to_perfetto`).  They must agree
on who held what at every step, including the subtle cases: readers that an
unlock granted the lock to before they ran again, a reader nested on the same
lock twice, and a writer downgrading to a reader.  This module is the one place
those rules live; each view keeps only what it draws (labels, slices, counters,
waiters, the ``vm_lock_seq`` epochs).

Typical use, one call per lock event and one per grant in a step's note::

    own = Ownership(Holders)
    for action, key, tid in events:          # from lock_effect(code)
        if own.apply(action, key, tid):
            redraw(key, own.lock(key))
    for key, tids in grants:                 # from split_note(note)
        redraw(key, own.grant(key, tids))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar


@dataclass
class Holders:
    """The holders of one rw_semaphore.

    Attributes:
        readers: Thread ids holding it for read, in the order they got it; a
            thread nested on the lock appears once per hold.
        writer: The thread holding it for write, or None.
    """

    readers: list[int] = field(default_factory=list)
    writer: int | None = None


H = TypeVar("H", bound=Holders)


class Ownership(Generic[H]):
    """The holders of every lock seen so far (``key`` 0 is mmap_lock, else a VMA id).

    Args:
        new: Makes the record of a lock seen for the first time; a view may pass a
            subclass of :class:`Holders` that carries its own per-lock fields.
    """

    def __init__(self, new: Callable[[], H]) -> None:
        self._new = new
        #: Lock key -> its holders, in the order the locks were first seen.
        self.locks: dict[int, H] = {}
        # (key, tid) of readers counted from their grant whose own acquire step
        # has not come yet: that step must not count them a second time.
        self._early: set[tuple[int, int]] = set()

    def lock(self, key: int) -> H:
        """The record of ``key``, made empty the first time it is asked for."""
        st = self.locks.get(key)
        if st is None:
            st = self.locks[key] = self._new()
        return st

    def apply(self, action: str, key: int, tid: int) -> bool:
        """Thread ``tid`` did ``action`` (see :func:`vmaviz.engine.export.lock_effect`) on ``key``.

        A release or downgrade by a thread that does not hold the lock changes
        nothing (the run may have started or been cut mid-hold).

        Returns:
            False when the holders certainly did not change: a ``queued`` step, or
            the ``read_acquire`` of a reader already counted from its grant.
            True otherwise (the holders may have changed).
        """
        st = self.lock(key)
        if action == "read_acquire":
            if (key, tid) in self._early:
                self._early.discard((key, tid))
                return False
            st.readers.append(tid)
        elif action == "write_acquire":
            st.writer = tid
        elif action == "read_release":
            if tid in st.readers:
                st.readers.remove(tid)
        elif action == "write_release":
            if st.writer == tid:
                st.writer = None
        elif action == "downgrade":
            if st.writer == tid:
                st.writer = None
                st.readers.append(tid)
        else:
            return False
        return True

    def grant(self, key: int, tids: Iterable[int]) -> H:
        """A releasing step handed ``key`` to the waiting readers ``tids`` on the spot.

        They hold it from now, though each records its acquire only when it next
        runs; that later ``read_acquire`` is then absorbed by :meth:`apply`.

        Returns:
            The record of ``key``.
        """
        st = self.lock(key)
        for tid in tids:
            st.readers.append(tid)
            self._early.add((key, tid))
        return st


__all__ = ["Holders", "Ownership"]
