"""``tuple_state``: the model's slotted objects pickle every slot, and cycles survive."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from vmaviz.model.maple import Node
from vmaviz.model.mm import Mm, Vma
from vmaviz.model.pickling import slot_names, tuple_state
from vmaviz.model.rcu import Rcu, RcuCallback
from vmaviz.model.rwsem import RwSem, Waiter
from vmaviz.model.sched import Frame, Line, Thread

DECORATED = [Frame, Thread, Line, Vma, Mm, Waiter, RwSem, RcuCallback, Rcu, Node]


def _instance(cls: type) -> Any:
    """An instance of ``cls`` whose every slot holds a value of its own."""
    obj = cls.__new__(cls)
    for i, name in enumerate(slot_names(cls)):
        setattr(obj, name, ("value", name, i))
    return obj


@pytest.mark.parametrize("cls", DECORATED, ids=lambda c: c.__name__)
def test_every_slot_round_trips(cls: type) -> None:
    obj = _instance(cls)
    for proto in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(obj, proto))
        assert type(back) is cls
        for name in slot_names(cls):
            assert getattr(back, name) == getattr(obj, name), name
    # copy.copy and copy.deepcopy go through the same __reduce__.
    dup = copy.deepcopy(obj)
    assert all(getattr(dup, n) == getattr(obj, n) for n in slot_names(cls))


@tuple_state
@dataclass(slots=True)
class _Pair:
    name: str
    other: Any = None
    items: list[Any] = field(default_factory=list)


@tuple_state
@dataclass(slots=True)
class _One:
    only: Any


def test_cycles_and_shared_objects_keep_their_identity() -> None:
    a, b = _Pair("a"), _Pair("b")
    a.other, b.other = b, a
    shared: list[int] = [1, 2]
    a.items.append(shared)
    b.items.append(shared)
    a.items.append(a)
    back = pickle.loads(pickle.dumps([a, b], pickle.HIGHEST_PROTOCOL))
    ra, rb = back
    assert ra.other is rb and rb.other is ra
    assert ra.items[0] is rb.items[0] == [1, 2]
    assert ra.items[1] is ra


def test_a_single_slot_class_round_trips() -> None:
    assert pickle.loads(pickle.dumps(_One(only=[7]))).only == [7]


def test_slot_names_include_inherited_slots_base_first() -> None:
    class Base:
        __slots__ = ("x",)

    class Sub(Base):
        __slots__ = ("__weakref__", "y")

    assert slot_names(Sub) == ("x", "y")


def test_a_class_without_slots_is_refused() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match="no slots"):
        tuple_state(Plain)
