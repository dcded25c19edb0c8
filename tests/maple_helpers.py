"""Shared helpers for the maple tree model tests (``tests/test_maple*.py``).

* :class:`RefMap` is a deliberately trivial reference for what an mm maple tree
  holds: a sorted list of the non-NULL ranges exactly as they were stored (the
  tree never merges equal neighbours; it only coalesces NULL ranges).
* :func:`run_vma_ops` interprets abstract VMA-shaped operations (top-down mmap,
  munmap, mprotect-like splits and merges, mremap moves, fixed stores, large
  NULL stores) into concrete page-aligned stores.
* :func:`vma_op` is the hypothesis strategy of one such operation.
* :func:`dump_diff` names the first node where two ``dump()`` dicts differ.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import strategies as st

from vmaviz.model.maple import ULONG_MAX, MapleTree, Node

PAGE = 4096
# The top of the mmap area (mmap_base) and the bottom of the page universe the
# random operations use: 8192 pages (32 MiB) below it.
TOP = 0x7F00_0000_0000
UNIVERSE_PAGES = 8192
FLOOR = TOP - UNIVERSE_PAGES * PAGE

Range = tuple[int, int, Any]


class RefMap:
    """A reference interval map over ``[0, ULONG_MAX]`` with the tree's semantics."""

    def __init__(self) -> None:
        self.ranges: list[Range] = []  # non-NULL, sorted, disjoint
        self._starts: list[int] = []

    def store(self, first: int, last: int, entry: Any) -> None:
        out: list[Range] = []
        for lo, hi, e in self.ranges:
            if hi < first or lo > last:
                out.append((lo, hi, e))
                continue
            if lo < first:
                out.append((lo, first - 1, e))
            if hi > last:
                out.append((last + 1, hi, e))
        if entry is not None:
            out.append((first, last, entry))
        out.sort(key=lambda r: r[0])
        self.ranges = out
        self._starts = [r[0] for r in out]

    def entries(self) -> list[Range]:
        return list(self.ranges)

    def items(self) -> list[Range]:
        """Every range including the (maximal) NULL ones, as ``MapleTree.items``."""
        out: list[Range] = []
        nxt = 0
        for lo, hi, e in self.ranges:
            if lo > nxt:
                out.append((nxt, lo - 1, None))
            out.append((lo, hi, e))
            nxt = hi + 1
        if not self.ranges or self.ranges[-1][1] < ULONG_MAX:
            out.append((nxt, ULONG_MAX, None))
        return out

    def walk(self, index: int) -> tuple[Any, int, int]:
        """The entry at ``index`` and its range (a NULL range extends to its neighbours)."""
        i = bisect.bisect_right(self._starts, index) - 1
        if i >= 0 and self.ranges[i][1] >= index:
            lo, hi, e = self.ranges[i]
            return e, lo, hi
        lo = self.ranges[i][1] + 1 if i >= 0 else 0
        hi = self.ranges[i + 1][0] - 1 if i + 1 < len(self.ranges) else ULONG_MAX
        return None, lo, hi

    def load(self, index: int) -> Any:
        return self.walk(index)[0]

    # Brute-force versions of the search API (semantics of the model's docstrings).

    def empty_area(self, lo: int, hi: int, size: int) -> int | None:
        for r_lo, r_hi, e in self.items():
            if e is not None:
                continue
            a, z = max(r_lo, lo), min(r_hi, hi)
            if z >= a and z - a + 1 >= size:
                return a
        return None

    def empty_area_rev(self, lo: int, hi: int, size: int) -> int | None:
        for r_lo, r_hi, e in reversed(self.items()):
            if e is not None:
                continue
            a, z = max(r_lo, lo), min(r_hi, hi)
            if z >= a and z - a + 1 >= size:
                return z - size + 1
        return None

    def find(self, index: int, limit: int = ULONG_MAX) -> tuple[Any, int, int] | None:
        for lo, hi, e in self.ranges:
            if hi >= index and lo <= limit:
                return e, lo, hi
        return None

    def next(self, index: int, limit: int = ULONG_MAX) -> tuple[Any, int, int] | None:
        _, _, hi = self.walk(index)
        if hi >= limit or hi == ULONG_MAX:
            return None
        return self.find(hi + 1, limit)

    def prev(self, index: int, minimum: int = 0) -> tuple[Any, int, int] | None:
        _, lo, _ = self.walk(index)
        if lo == 0 or lo <= minimum:
            return None
        best = None
        for r_lo, r_hi, e in self.ranges:
            if r_hi < minimum:
                continue
            if r_lo > lo - 1:
                break
            best = (e, r_lo, r_hi)
        return best


def probe_points(ranges: Iterable[Range]) -> set[int]:
    """Each range's first and last index and the indices either side of them."""
    pts: set[int] = set()
    for lo, hi, _ in ranges:
        for a in (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1):
            if 0 <= a <= ULONG_MAX:
                pts.add(a)
    return pts


def check_against_ref(tree: MapleTree, ref: RefMap, near: tuple[int, int] | None = None) -> None:
    """Assert the tree is valid and holds exactly what the reference holds.

    Lookups are probed at every range boundary (and either side of it); with
    ``near=(first, last)`` only at the boundaries of the ranges overlapping or
    next to ``[first, last]`` (a cheaper per-store check for large trees).
    """
    errors = tree.validate()
    assert errors == [], errors
    assert list(tree.entries()) == ref.entries()
    assert list(tree.items()) == ref.items()
    ranges = ref.items()
    if near is not None:
        first, last = near
        i = max(0, bisect.bisect_right([r[0] for r in ranges], first) - 2)
        j = bisect.bisect_right([r[0] for r in ranges], last) + 1
        ranges = ranges[i:j]
    for a in probe_points(ranges):
        assert tree.walk(a) == ref.walk(a), hex(a)
    for lo, _hi, e in ranges:
        assert tree.load(lo) == e, hex(lo)


class Collector:
    """An ``rcu_free`` callback that never frees: it keeps every retired batch."""

    def __init__(self) -> None:
        self.batches: list[list[Node]] = []

    def __call__(self, nodes: list[Node]) -> None:
        self.batches.append(list(nodes))

    @property
    def nodes(self) -> list[Node]:
        return [n for batch in self.batches for n in batch]

    def take(self) -> list[Node]:
        """The nodes retired since the last ``take``."""
        out = self.nodes
        self.batches.clear()
        return out


Store = tuple[int, int, Any]


def run_vma_ops(
    ops: Iterable[tuple],
    store: Callable[[int, int, Any], None],
    ref: RefMap,
) -> int:
    """Turn abstract VMA operations into page-aligned stores.

    ``store(first, last, entry)`` must apply the store to the tree *and* to
    ``ref`` (the interpreter reads ``ref`` to pick VMAs).  Returns the number of
    stores issued.
    """
    next_id = [1]
    count = [0]

    def new_id() -> int:
        next_id[0] += 1
        return next_id[0]

    def do(first: int, last: int, entry: Any) -> None:
        count[0] += 1
        store(first, last, entry)

    def mmap_topdown(npages: int, gap: int, entry: Any = None) -> None:
        size = (npages + gap) * PAGE
        addr = ref.empty_area_rev(FLOOR, TOP - 1, size)
        if addr is None:
            return
        do(addr, addr + npages * PAGE - 1, entry if entry is not None else new_id())

    def mmap_bottomup(npages: int, gap: int) -> None:
        size = (npages + gap) * PAGE
        addr = ref.empty_area(FLOOR, TOP - 1, size)
        if addr is None:
            return
        addr += gap * PAGE
        do(addr, addr + npages * PAGE - 1, new_id())

    def pick(i: int) -> Range | None:
        vmas = ref.entries()
        return vmas[i % len(vmas)] if vmas else None

    def part(vma: Range, kind: str, n: int) -> tuple[int, int]:
        s, e, _ = vma
        pages = (e - s + 1) // PAGE
        k = max(1, min(n, pages))
        if kind == "head":
            return s, s + k * PAGE - 1
        if kind == "tail":
            return e - k * PAGE + 1, e
        if kind == "middle" and pages >= 3:
            m = 1 + n % (pages - 2)
            return s + m * PAGE, s + (m + 1) * PAGE - 1
        return s, e

    for op in ops:
        kind = op[0]
        if kind == "mmap":
            mmap_topdown(op[1], op[2])
        elif kind == "mmap_up":
            mmap_bottomup(op[1], op[2])
        elif kind == "burst":
            for _ in range(op[1]):
                mmap_topdown(op[2], op[3])
        elif kind == "burst_up":
            for _ in range(op[1]):
                mmap_bottomup(op[2], op[3])
        elif kind in ("grow_down", "grow_up"):
            # Stack-like growth down / brk-like growth up into the free space
            # next to a VMA (vma_expand stores the VMA over the whole new range).
            vmas = ref.entries()
            if not vmas:
                continue
            i = op[1] % len(vmas)
            s, e, ident = vmas[i]
            if kind == "grow_down":
                floor = vmas[i - 1][1] + 1 if i else FLOOR
                s = max(floor, s - op[2] * PAGE)
            else:
                ceil = vmas[i + 1][0] - 1 if i + 1 < len(vmas) else TOP - 1
                e = min(ceil, e + op[2] * PAGE)
            do(s, e, ident)
        elif kind in ("munmap", "mprotect"):
            vma = pick(op[1])
            if vma is None:
                continue
            first, last = part(vma, op[2], op[3])
            do(first, last, None if kind == "munmap" else new_id())
        elif kind == "merge":
            vmas = ref.entries()
            if not vmas:
                continue
            i = op[1] % len(vmas)
            j = min(len(vmas) - 1, i + op[2])
            do(vmas[i][0], vmas[j][1], vmas[i][2])
        elif kind == "mremap":
            vma = pick(op[1])
            if vma is None:
                continue
            s, e, ident = vma
            do(s, e, None)
            mmap_topdown(op[2], 0, ident)
        elif kind == "fixed":
            first = FLOOR + op[1] * PAGE
            last = min(TOP - 1, first + op[2] * PAGE - 1)
            do(first, last, new_id() if op[3] else None)
        elif kind == "raw":
            do(op[1], op[2], new_id() if op[3] else None)
        else:  # pragma: no cover - a typo in a test
            raise ValueError(f"unknown op {op!r}")
    return count[0]


def shape(node: dict | None) -> Any:
    """A dump's node shape: a leaf is its slot count, an internal node a list."""
    if node is None:
        return None
    if node["type"] == "leaf64":
        return len(node["entries"])
    if node["type"] == "direct":
        return node
    return [shape(c) for c in node["children"]]


def dump_diff(a: Any, b: Any, path: str = "root") -> str | None:
    """The path of the first difference between two dumps, or None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}: key {key!r} only on one side"
            d = dump_diff(a[key], b[key], f"{path}.{key}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            d = dump_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        return None
    if a != b:
        return f"{path}: {a!r} != {b!r}"
    return None


def vma_stores(n: int, gap: int, *, descending: bool = False, size: int = 2 * PAGE) -> list[Store]:
    """``n`` VMAs of ``size`` bytes ``gap`` bytes apart, ids 1..n.

    Ascending from 0x100000, or top-down (each below the previous) from TOP.
    """
    out: list[Store] = []
    if descending:
        a = TOP
        for i in range(n):
            a -= size
            out.append((a, a + size - 1, i + 1))
            a -= gap
    else:
        a = 0x100000
        for i in range(n):
            out.append((a, a + size - 1, i + 1))
            a += size + gap
    return out


def build(stores: Iterable[Store], tree: MapleTree | None = None) -> MapleTree:
    t = tree if tree is not None else MapleTree()
    for first, last, entry in stores:
        t.store_range(first, last, entry)
    return t


def live_nodes(tree: MapleTree) -> list[Node]:
    return [n for n, _ in tree.nodes()]


def vma_op(
    burst_pages: int = 16, fixed_pages: int = 64, upward: bool = True, storms: bool = True
) -> st.SearchStrategy[tuple[Any, ...]]:
    """One abstract operation for :func:`run_vma_ops`.

    Args:
        burst_pages: Largest VMA of a burst, in pages.
        fixed_pages: Largest MAP_FIXED-like store, in pages.
        upward: Also bottom-up mmaps (``mmap_up``).
        storms: Also large NULL stores (munmap storms), up to a sixteenth of the universe.
    """
    parts = st.sampled_from(["whole", "head", "tail", "middle"])
    idx = st.integers(0, 10_000)
    ops = [st.tuples(st.just("mmap"), st.integers(1, 16), st.integers(0, 2))]
    if upward:
        ops.append(st.tuples(st.just("mmap_up"), st.integers(1, 16), st.integers(0, 2)))
    ops += [
        st.tuples(
            st.just("burst"), st.integers(1, 40), st.integers(1, burst_pages), st.integers(0, 2)
        ),
        st.tuples(
            st.just("burst_up"), st.integers(1, 20), st.integers(1, burst_pages), st.integers(0, 2)
        ),
        st.tuples(st.sampled_from(["grow_down", "grow_up"]), idx, st.integers(1, 8)),
        st.tuples(st.just("munmap"), idx, parts, st.integers(1, 16)),
        st.tuples(st.just("mprotect"), idx, parts, st.integers(1, 16)),
        st.tuples(st.just("merge"), idx, st.integers(1, 3)),
        st.tuples(st.just("mremap"), idx, st.integers(1, 16)),
        st.tuples(
            st.just("fixed"),
            st.integers(0, UNIVERSE_PAGES - 1),
            st.integers(1, fixed_pages),
            st.booleans(),
        ),
    ]
    if storms:
        ops.append(
            st.tuples(
                st.just("fixed"),
                st.integers(0, UNIVERSE_PAGES - 1),
                st.integers(16, 512),
                st.just(False),
            )
        )
    return st.one_of(*ops)
