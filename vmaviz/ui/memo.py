"""A small bounded, thread-safe memo, least recently used out first.

Why: a worker keeps a few derived values between the requests of a step callback
(the last snapshot each page drew, the kernels of recent steps). Losing one only
costs recomputing it, so each memo is bounded by a count and shared by the
worker's request threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """At most ``size`` values by key; a get or a put makes the key the newest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._memo: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._memo.get(key)
            if value is not None:
                self._memo.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._memo[key] = value
            self._memo.move_to_end(key)
            while len(self._memo) > self.size:
                self._memo.popitem(last=False)


__all__ = ["BoundedMemo"]
