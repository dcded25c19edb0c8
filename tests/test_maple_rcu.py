"""RCU readers (``MasWalk``) racing with writers, one node read per step."""

from __future__ import annotations

import pytest
from maple_helpers import PAGE, Collector, build, vma_stores

from vmaviz.model.maple import MapleTree, MasWalk

BASE = 0x100000
VMA = 2 * PAGE


def gapped(n: int, rcu_free=None) -> tuple[MapleTree, list]:
    stores = vma_stores(n, PAGE)
    tree = MapleTree(rcu_free=rcu_free) if rcu_free is not None else MapleTree()
    build(stores, tree)
    if isinstance(rcu_free, Collector):
        rcu_free.take()  # forget what building retired
    return tree, stores


def kinds(w: MasWalk) -> list[str]:
    return [e.kind for e in w.events]


def mid(store: tuple[int, int, int]) -> int:
    return store[0] + PAGE + 17


# ------------------------------------------------------------ plain walks


def test_walk_finds_every_vma_and_holes() -> None:
    t, stores = gapped(40)
    for first, last, ident in stores:
        for a in (first, mid((first, last, ident)), last):
            w = MasWalk(t, a)
            assert w.run() == ident
            assert kinds(w) == ["load_root", "descend", "found"]
            assert (w.mas.index, w.mas.last) == (first, last)
            assert w.restarts == 0
    w = MasWalk(t, stores[0][1] + 1)
    assert w.run() is None
    assert (w.mas.index, w.mas.last) == (stores[0][1] + 1, stores[1][0] - 1)


def test_walk_of_empty_and_direct_root_trees() -> None:
    w = MasWalk(MapleTree(), 1234)
    assert w.run() is None and kinds(w) == ["empty"]
    t = MapleTree()
    t.store_range(0, 0, 5)
    w = MasWalk(t, 0)
    assert w.run() == 5 and kinds(w) == ["root_entry"]
    w = MasWalk(t, 1)
    assert w.run() is None and kinds(w) == ["root_entry"]


def test_step_after_done_raises() -> None:
    t, stores = gapped(3)
    w = MasWalk(t, stores[0][0])
    w.run()
    with pytest.raises(RuntimeError):
        w.step()


def test_one_level_per_step() -> None:
    t = build(vma_stores(160, 0))
    assert t.height == 3
    w = MasWalk(t, BASE + 100 * VMA)
    evs = [w.step() for _ in range(4)]
    assert [e.kind for e in evs] == ["load_root", "descend", "descend", "found"]
    assert [e.depth for e in evs] == [1, 2, 3, 3]
    assert evs[-1].node.is_leaf and w.done and w.entry == 101


# ------------------------------------------------- writers replacing nodes


def test_root_split_under_a_reader_restarts_it() -> None:
    col = Collector()
    t, stores = gapped(7, col)
    eighth = vma_stores(8, PAGE)[7]
    w = MasWalk(t, mid(stores[2]))
    assert w.step().kind == "load_root"  # the reader holds the root leaf
    old_root = t.root
    r = t.store_range(*eighth)
    assert r.op == "split" and old_root in r.retired and t.height == 2
    ev = w.step()
    assert ev.kind == "dead_node" and ev.node is old_root and not old_root.freed
    assert w.run() == 3
    assert kinds(w) == ["load_root", "dead_node", "load_root", "descend", "found"]
    assert w.restarts == 1


def test_push_left_split_kills_the_root_the_reader_holds() -> None:
    col = Collector()
    t, stores = gapped(12, col)
    thirteenth = vma_stores(13, PAGE)[12]
    w = MasWalk(t, mid(stores[1]))
    w.step()
    assert w.mas.depth == 1
    r = t.store_range(*thirteenth)
    assert r.op == "split"
    assert w.step().kind == "dead_node"
    assert w.run() == 2 and w.restarts == 1
    assert w.entry == t.load(mid(stores[1]))


def test_spanning_store_under_a_reader_at_depth_two() -> None:
    col = Collector()
    t = build(vma_stores(160, PAGE), MapleTree(rcu_free=col))
    target = vma_stores(160, PAGE)[100]
    w = MasWalk(t, mid(target))
    assert [w.step().kind for _ in range(2)] == ["load_root", "descend"]
    r = t.store_range(BASE + 2 * 3 * PAGE, BASE + 158 * 3 * PAGE - 1, None)
    assert r.op == "spanning_store" and t.height == 1
    ev = w.step()
    assert ev.kind == "dead_node" and ev.node.dead and not ev.node.freed
    assert w.run() is None  # the VMA was unmapped
    assert kinds(w)[-2:] == ["load_root", "found"]


def test_in_place_store_under_a_reader_needs_no_restart() -> None:
    col = Collector()
    t, stores = gapped(3, col)
    w = MasWalk(t, stores[0][0])
    w.step()
    r = t.store_range(stores[0][0], stores[0][1], 9)
    assert r.op == "direct_replace" and col.nodes == []
    assert w.run() == 9 and w.restarts == 0


def test_immediate_free_is_a_use_after_free() -> None:
    """Without a grace period the reader reads a freed node: why RCU is needed."""
    t, stores = gapped(7)  # default rcu_free frees at once
    w = MasWalk(t, mid(stores[2]))
    w.step()
    old_root = t.root
    t.store_range(*vma_stores(8, PAGE)[7])
    assert old_root.dead and old_root.freed
    ev = w.step()
    assert ev.kind == "use_after_free" and ev.node is old_root
    assert w.run() == 3  # the model restarts; the kernel would have read garbage


def test_collected_nodes_freed_later_become_use_after_free() -> None:
    col = Collector()
    t, stores = gapped(7, col)
    w = MasWalk(t, mid(stores[2]))
    w.step()
    t.store_range(*vma_stores(8, PAGE)[7])
    for n in col.nodes:  # the grace period ends while the reader still holds the node
        n.freed = True
    assert w.step().kind == "use_after_free"


# ------------------------------------------------------------ staged stores


def test_staged_root_replacement_reader_spins_until_published() -> None:
    col = Collector()
    t, stores = gapped(7, col)
    eighth = vma_stores(8, PAGE)[7]
    old_root = t.root
    r = t.store_range(*eighth, staged=True)
    assert r.pending and r.op == "split"
    assert t.root is old_root and old_root.dead and col.nodes == []
    w = MasWalk(t, mid(stores[2]))
    for _ in range(5):
        assert w.step().kind == "dead_root"
    assert not w.done and w.restarts == 5
    with pytest.raises(Exception, match="staged"):
        t.store_range(1, 2, 3)
    published = t.commit_pending()
    assert published is not None and t.root is not old_root and t.height == 2
    assert col.nodes == [old_root]
    assert w.run() == 3
    assert kinds(w)[-3:] == ["load_root", "descend", "found"]
    assert t.commit_pending() is None
    assert t.validate() == []


def test_staged_leaf_replacement_reader_restarts_from_root() -> None:
    col = Collector()
    t, stores = gapped(40, col)
    target = stores[33]  # in the fifth leaf, which has room (10 of 16 slots)
    root = t.root
    r = t.store_range(target[0], target[0] + PAGE - 1, 99, staged=True)  # mprotect head page
    assert r.pending and r.op == "node_store"
    assert t.root is root and not root.dead
    w = MasWalk(t, mid(target))
    for _ in range(3):
        assert [w.step().kind for _ in range(3)] == ["load_root", "descend", "dead_node"]
    assert w.restarts == 3 and not w.done
    # A reader of an untouched leaf is not held up.
    other = MasWalk(t, mid(stores[0]))
    assert other.run() == 1 and other.restarts == 0
    t.commit_pending()
    assert w.run() == 34
    assert MasWalk(t, target[0]).run() == 99
    assert t.validate() == []


# ------------------------------------------- stale maple state (lock_vma_under_rcu)


def test_retry_on_unchanged_tree_uses_cached_leaf() -> None:
    t, stores = gapped(40)
    x = stores[10]
    w = MasWalk(t, mid(x))
    assert w.run() == 11
    assert w.mas.index == x[0]  # the walk left the range start in mas.index
    n = len(w.events)
    w.retry()
    assert w.run() == 11
    assert kinds(w)[n:] == ["found"]
    assert w.restarts == 0


def test_retry_after_in_place_shrink_finds_the_hole() -> None:
    """X loses its head page in place: the stale index now points into the hole."""
    col = Collector()
    t, stores = gapped(3, col)
    x = stores[1]
    w = MasWalk(t, mid(x))
    assert w.run() == 2
    leaf = t.root
    r = t.store_range(x[0], x[0] + PAGE - 1, None)
    assert r.op == "slot_store" and t.root is leaf
    assert t.load(mid(x)) == 2  # the address itself is still in X
    n = len(w.events)
    w.retry()
    assert w.run() is None  # but the retry looks up X's old start
    assert kinds(w)[n:] == ["found"]
    assert w.mas.index == stores[0][1] + 1  # the NULL range now starts after VMA 1


def test_retry_after_in_place_store_finds_another_vma() -> None:
    """W and X are adjacent; Z is stored over W and X's head page in place."""
    col = Collector()
    t = build(vma_stores(5, 0), MapleTree(rcu_free=col))
    col.take()
    w_vma, x = vma_stores(5, 0)[1], vma_stores(5, 0)[2]
    walker = MasWalk(t, mid(x))
    assert walker.run() == 3
    r = t.store_range(w_vma[0], x[0] + PAGE - 1, 9)
    assert r.op == "slot_store" and col.nodes == []
    walker.retry()
    assert walker.run() == 9
    assert kinds(walker)[-1:] == ["found"] and walker.restarts == 0
    assert t.load(mid(x)) == 3


def test_retry_after_split_restarts_from_root_with_old_start() -> None:
    """X's head page gets a new VMA (a node store): the cached leaf is dead, the
    retry restarts from the root and still looks up X's old start."""
    col = Collector()
    t, stores = gapped(40, col)
    x = stores[33]
    w = MasWalk(t, mid(x))
    assert w.run() == 34
    leaf = w.mas.node
    r = t.store_range(x[0], x[0] + PAGE - 1, 77)
    assert r.op == "node_store" and leaf in r.retired and leaf.dead
    n = len(w.events)
    w.retry()
    assert w.run() == 77
    assert kinds(w)[n:] == ["dead_node", "load_root", "descend", "found"]
    assert w.restarts == 1
    assert w.mas.index == x[0] and w.mas.last == x[0] + PAGE - 1
    assert t.load(mid(x)) == 34


def test_retry_after_vma_removed_and_replaced() -> None:
    """munmap X then map Y at the same place: retry finds Y (a different VMA)."""
    col = Collector()
    t, stores = gapped(40, col)
    x = stores[5]
    w = MasWalk(t, mid(x))
    assert w.run() == 6
    t.store_range(x[0], x[1], None)
    t.store_range(x[0], x[1] + PAGE, 500)
    w.retry()
    assert w.run() == 500
    assert w.mas.index == x[0]
