"""``MapleTree.validate_store``: the per-store check of invariant 9 covers what a store writes.

The kernel model checks the tree after every store only where the store wrote
(``Kernel.tree_store``), so that a store costs the same with 10 VMAs or 10,000.
These tests show that nothing a store changes escapes that check:

* every rule of ``validate`` that a store can break is reported by
  ``validate_store`` when the node the store wrote breaks it
  (``test_maple_validate.CASES``, applied right after a store);
* for random store sequences, every node that a store created or changed in
  place (found by comparing snapshots of all nodes before and after) is one
  that ``validate_store`` checks in full: breaking any of them is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import test_maple_validate as mv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maple_helpers import PAGE, RefMap, run_vma_ops, vma_op

from vmaviz.model.maple import MapleTree, Node, StoreResult


def _touched(res: StoreResult) -> list[Node]:
    return [*res.new_nodes, *res.retired]


@pytest.mark.parametrize(("corrupt", "message"), mv.CASES, ids=[c.__name__ for c, _ in mv.CASES])
def test_each_broken_rule_in_the_stored_leaf_is_reported(
    corrupt: Callable[[MapleTree], None], message: str
) -> None:
    t = mv.two_level()
    leaf = mv.leaf(t)
    # Store over a VMA of leaf 1 (root slot 1), as an mprotect of it would.
    i = next(j for j in range(leaf.data_end()) if leaf.slot[j] is not None)
    first, last = (leaf.pivot[i - 1] + 1 if i else leaf.min), leaf.pivot[i]
    res = t.store_range(first, last, 1000)
    assert t.validate_store(first, last, _touched(res)) == []
    corrupt(t)
    errors = t.validate_store(first, last, _touched(res))
    assert any(message in e for e in errors), errors


def test_a_store_far_from_the_broken_leaf_does_not_see_it_but_validate_does() -> None:
    # The limit of the per-store check, and why the kernel model also runs the
    # full one periodically: a node no store wrote is not looked at.
    t = mv.two_level()
    root = mv.root(t)
    far = root.slot[root.data_end()]
    far.pivot[0], far.pivot[1] = far.pivot[1], far.pivot[0]
    first = mv.leaf(t, 0).min
    res = t.store_range(first, first + PAGE - 1, 1000)
    assert t.validate_store(first, first + PAGE - 1, _touched(res)) == []
    assert any("not increasing" in e for e in t.validate())


# ----------------------------------------------------------------- coverage


#: ``_fingerprint(n)[:CONTENT]`` is what the node holds; the rest is its link to the tree.
CONTENT = 5


def _fingerprint(node: Node) -> tuple[Any, ...]:
    return (
        tuple(node.pivot),
        tuple(id(s) if isinstance(s, Node) else s for s in node.slot),
        tuple(node.gap),
        node.meta_end,
        node.meta_gap,
        node.min,
        node.max,
        id(node.parent),
        node.parent_slot,
        node.dead,
    )


def _snapshot(t: MapleTree) -> dict[int, tuple[Any, ...]]:
    return {id(n): _fingerprint(n) for n, _ in t.nodes()}


def _break_content(node: Node) -> Callable[[], None] | None:
    """Break ``node`` so that only a full check of the node itself can tell; returns an undo.

    Two pivots out of order (or, in a two-slot node, an empty last range) are
    invisible from the node's parent and children: a check that only looked at
    the node's link to its parent would miss them.
    """
    end = node.data_end()
    p = node.pivot
    if end >= 2:
        a, b = p[0], p[1]
        p[0], p[1] = b, a

        def undo() -> None:
            p[0], p[1] = a, b

        return undo
    if end == 1:
        a = p[0]
        p[0] = node.max

        def undo1() -> None:
            p[0] = a

        return undo1
    return None


def _break_link(node: Node) -> Callable[[], None]:
    """Mark ``node`` dead while it is still reachable; returns an undo."""
    node.dead = True

    def undo() -> None:
        node.dead = False

    return undo


OP = vma_op(burst_pages=4, fixed_pages=512, upward=False, storms=False)
OPS = st.tuples(
    st.tuples(st.just("burst"), st.integers(40, 170), st.integers(1, 4), st.integers(0, 2)),
    st.lists(OP, max_size=20),
).map(lambda t: [t[0], *t[1]])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(OPS, st.booleans())
def test_every_node_a_store_writes_is_checked_in_full(ops: list[tuple], in_rcu: bool) -> None:
    # in_rcu False is the tree exit_mmap writes (stores change nodes in place).
    t = MapleTree(in_rcu=in_rcu)
    ref = RefMap()
    stores = [0]

    def store(first: int, last: int, entry: object) -> None:
        before = _snapshot(t)
        res = t.store_range(first, last, entry)
        ref.store(first, last, entry)
        stores[0] += 1
        touched = _touched(res)
        assert t.validate_store(first, last, touched) == []
        assert t.validate() == []
        for node, _ in t.nodes():
            old, now = before.get(id(node)), _fingerprint(node)
            if old is None or old[:CONTENT] != now[:CONTENT]:
                # New, or its slots, pivots or gaps changed: checked in full.
                undo = _break_content(node)
            elif old != now:
                # Only its link (parent pointer, slot, range) changed, as when a
                # split adopts an old child into a new parent: the link is checked.
                undo = _break_link(node)
            else:
                continue
            if undo is None:
                continue
            errors = t.validate_store(first, last, touched)
            undo()
            assert any(f"node #{node.nid} " in e for e in errors), (node, errors)

    run_vma_ops(ops, store, ref)
    assert stores[0] > 0
