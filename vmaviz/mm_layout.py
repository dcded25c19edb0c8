"""The mm's VMAs as maple tree entries, and top-down placement of a new mmap.

``build_mm_tree`` stores VMA *i* of a list as entry id ``i + 1`` over
``[start, end - 1]``, as ``vma_mas_store()`` does for ``mm->mm_mt``.

``find_topdown`` mirrors ``unmapped_area_topdown()`` (mm/mmap.c) for the simple case:
the highest free gap below ``high_limit`` (the mmap base) and at or above
``low_limit`` (``mmap_min_addr``) that fits the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vmaviz.model.maple import MapleTree

PAGE_SIZE = 4096
MMAP_MIN_ADDR = 0x10000  # default vm.mmap_min_addr
TASK_SIZE = 0x7FFFFFFFF000
SIZE_128M = 128 << 20

VmaTuple = tuple[str, int, int]


def build_mm_tree(vmas: Sequence[VmaTuple]) -> MapleTree:
    """A maple tree holding VMA ``i`` of ``vmas`` as entry ``i + 1`` over ``[start, end-1]``."""
    tree = MapleTree()
    for i, (_name, start, end) in enumerate(vmas):
        tree.store_range(start, end - 1, i + 1)
    return tree


def mm_tree_dump(vmas: Sequence[VmaTuple]) -> tuple[dict[str, Any], dict[int, str]]:
    """The tree dump of ``vmas`` and the entry id → VMA name map to label it."""
    dump = build_mm_tree(vmas).dump()
    return dump, {i + 1: name for i, (name, _s, _e) in enumerate(vmas)}


def mmap_base(vmas: Sequence[VmaTuple]) -> int:
    """Where top-down mmaps start: the end of the highest VMA below ``[stack]``.

    The dynamic loader is mapped first, right under the kernel's ``mm->mmap_base``,
    so in a scenario its end stands for that base. Without a ``[stack]`` VMA, the
    kernel's minimum stack gap below ``TASK_SIZE`` is used.
    """
    stacks = [start for name, start, _end in vmas if name == "[stack]"]
    if not stacks:
        return TASK_SIZE - SIZE_128M
    below = [end for _name, _start, end in vmas if end <= min(stacks)]
    return max(below) if below else min(stacks)


def find_topdown(
    vmas: Sequence[VmaTuple],
    length: int,
    high_limit: int,
    low_limit: int = MMAP_MIN_ADDR,
) -> int | None:
    """Start address of the highest free ``length`` bytes in ``[low_limit, high_limit)``."""
    if length <= 0 or length % PAGE_SIZE:
        raise ValueError(f"length must be a positive multiple of {PAGE_SIZE}, got {length}")
    spans = sorted((start, end) for _name, start, end in vmas)
    gap_end = high_limit
    for start, end in reversed(spans):
        if start >= high_limit:
            continue
        if end <= gap_end and gap_end - end >= length and gap_end - length >= low_limit:
            return gap_end - length
        gap_end = min(gap_end, start)
        if gap_end <= low_limit:
            return None
    if gap_end - low_limit >= length:
        return gap_end - length
    return None
