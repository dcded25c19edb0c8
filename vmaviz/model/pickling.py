"""Compact pickling for the model's slotted state objects.

Every keyframe pickles the whole kernel: a few thousand threads, frames, VMAs,
rw-semaphores, waiters and cache lines.  A ``@dataclass(slots=True)`` pickles
through the ``__getstate__``/``__setstate__`` that ``dataclasses`` adds for
slotted classes, which calls ``fields()`` and builds a list for every object; a
plain slotted class pickles a dict of slot names per object.  :func:`tuple_state`
replaces both with one tuple of slot values, read by one ``attrgetter`` call.
For the 64-thread bench workload at step 80,000 a keyframe became a quarter
smaller (92 kB to 69 kB) and took about a quarter fewer instructions (valgrind)
and up to half the wall time (best of five: 2.1 ms to 1.0 ms).

The object is still created first and filled afterwards (``copyreg.__newobj__``
and then ``__setstate__``), exactly as for the default protocol, so reference
cycles between state objects pickle as before.
"""

from __future__ import annotations

import copyreg
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def slot_names(cls: type) -> tuple[str, ...]:
    """All slots of ``cls`` and its bases, base classes first."""
    names: list[str] = []
    for base in reversed(cls.__mro__):
        slots = base.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return tuple(n for n in names if n not in ("__weakref__", "__dict__"))


def tuple_state(cls: T) -> T:
    """Class decorator: pickle instances of the slotted ``cls`` as a tuple of slot values.

    Apply it outside ``@dataclass(slots=True)`` (so it sees the final class).
    Every slot must always be set; the state is read in :func:`slot_names` order.
    """
    names = slot_names(cls)
    if not names:
        raise TypeError(f"{cls.__name__} has no slots")
    getter = attrgetter(*names)
    one = len(names) == 1

    def state_of(self: Any) -> tuple[Any, ...]:
        return (getter(self),) if one else getter(self)

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return copyreg.__newobj__, (type(self),), state_of(self)  # type: ignore[attr-defined]

    # One generated assignment that unpacks the tuple into the slots: a loop of
    # setattr() calls would cost a Python call per slot for every loaded object.
    targets = "".join(f"self.{n}, " for n in names)
    namespace: dict[str, Any] = {}
    exec(f"def __setstate__(self, state):\n    ({targets}) = state\n", namespace)
    setstate = namespace["__setstate__"]
    setstate.__qualname__ = f"{cls.__qualname__}.__setstate__"
    setstate.__module__ = cls.__module__
    __reduce__.__qualname__ = f"{cls.__qualname__}.__reduce__"
    cls.__reduce__ = __reduce__  # type: ignore[assignment]
    cls.__setstate__ = setstate  # type: ignore[attr-defined]
    cls.__getstate__ = state_of  # type: ignore[assignment]
    return cls
