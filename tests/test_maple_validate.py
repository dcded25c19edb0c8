"""``MapleTree.validate`` (invariant 9) reports each kind of broken tree.

The kernel model validates the tree after every store, so a wrong write path
shows up as an invariant-9 event.  Each test here builds a valid tree, breaks
one rule of reference §11.9 by hand, and checks that validation names it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from maple_helpers import PAGE, build, vma_stores

from vmaviz.model.maple import ARANGE_64, MapleTree, Node


def two_level() -> MapleTree:
    """A height-2 tree of 40 gapped VMAs: an arange64 root over leaves."""
    t = build(vma_stores(40, PAGE, descending=False))
    assert t.height == 2 and t.validate() == []
    return t


def root(t: MapleTree) -> Node:
    assert isinstance(t.root, Node) and t.root.type == ARANGE_64
    return t.root


def leaf(t: MapleTree, i: int = 1) -> Node:
    child = root(t).slot[i]
    assert isinstance(child, Node) and child.is_leaf
    return child


def swap_pivots(t: MapleTree) -> None:
    lf = leaf(t)
    lf.pivot[1], lf.pivot[2] = lf.pivot[2], lf.pivot[1]


def pivot_beyond_max(t: MapleTree) -> None:
    lf = leaf(t)
    end = lf.data_end()
    lf.pivot[end - 1] = lf.max + 1


def adjacent_nulls(t: MapleTree) -> None:
    lf = leaf(t)
    # The gapped layout alternates VMA and NULL; blank the VMA between two NULLs.
    i = next(j for j in range(1, lf.data_end()) if lf.slot[j] is not None)
    lf.slot[i] = None


def wrong_gap(t: MapleTree) -> None:
    root(t).gap[0] += PAGE


def bad_parent(t: MapleTree) -> None:
    leaf(t).parent_slot += 1


def dead_node(t: MapleTree) -> None:
    leaf(t).dead = True


def wrong_height(t: MapleTree) -> None:
    t.height = 3


def not_contiguous(t: MapleTree) -> None:
    # The leaf claims to start a page later than its parent's pivot says.
    lf = leaf(t)
    lf.min += PAGE


def under_minimum(t: MapleTree) -> None:
    lf = leaf(t)
    end = lf.data_end()
    # Keep two slots: the first range now runs to the leaf's end.
    for j in range(1, lf.pivot.__len__()):
        lf.pivot[j] = 0
    lf.pivot[0] = lf.pivot[end - 1]
    lf.meta_end = 1


def metadata_gap(t: MapleTree) -> None:
    r = root(t)
    r.meta_gap = (r.meta_gap + 1) % (r.data_end() + 1)


CASES: list[tuple[Callable[[MapleTree], None], str]] = [
    (swap_pivots, "not increasing"),
    (pivot_beyond_max, "beyond max"),
    (adjacent_nulls, "adjacent NULL ranges"),
    (wrong_gap, "child's largest gap"),
    (bad_parent, "bad parent pointer"),
    (dead_node, "dead node reachable"),
    (wrong_height, "height 3 != actual"),
    (not_contiguous, "cached range"),
    (under_minimum, "below the minimum"),
    (metadata_gap, "metadata gap offset"),
]


@pytest.mark.parametrize(("corrupt", "message"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_validate_reports_a_broken_rule(corrupt: Callable[[MapleTree], None], message: str) -> None:
    t = two_level()
    corrupt(t)
    errors = t.validate()
    assert any(message in e for e in errors), errors


def test_a_valid_tree_has_no_errors_at_every_height() -> None:
    for n in (1, 7, 40, 200):
        assert build(vma_stores(n, PAGE, descending=True)).validate() == []
