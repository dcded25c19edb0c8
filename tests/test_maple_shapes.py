"""Kernel tree shapes and write paths of the maple tree model.

The expected heights, node slot counts, gaps and node ranges below were checked
against the real kernel's lib/maple_tree.c (the userspace-harness oracle built
from Linux 6.12 and 6.1; see tests/data/maple/generate.py).
"""

from __future__ import annotations

import pytest
from maple_helpers import PAGE, TOP, Collector, build, live_nodes, shape, vma_stores

from vmaviz.model.maple import ULONG_MAX, MapleError, MapleTree, Node

BASE = 0x100000
VMA = 2 * PAGE  # 8192-byte VMAs


def _height_after(n: int, gap: int, descending: bool) -> int:
    t = build(vma_stores(n, gap, descending=descending))
    assert t.validate() == []
    return t.height


# (n, expected height): the boundaries observed on the kernel oracle.
ADJACENT = [(1, 1), (13, 1), (14, 1), (15, 2), (60, 2), (140, 2), (149, 2), (150, 3), (160, 3)]
GAPPED_ASC = [(1, 1), (7, 1), (8, 2), (40, 2), (60, 2), (79, 2), (80, 3)]
GAPPED_DESC = [(1, 1), (7, 1), (8, 2), (40, 2), (60, 2), (71, 2), (72, 3), (80, 3)]


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "top-down"])
@pytest.mark.parametrize(("n", "height"), ADJACENT)
def test_height_of_adjacent_vmas(n: int, height: int, descending: bool) -> None:
    assert _height_after(n, 0, descending) == height


@pytest.mark.parametrize(("n", "height"), GAPPED_ASC)
def test_height_of_gapped_vmas_ascending(n: int, height: int) -> None:
    assert _height_after(n, PAGE, False) == height


@pytest.mark.parametrize(("n", "height"), GAPPED_DESC)
def test_height_of_gapped_vmas_top_down(n: int, height: int) -> None:
    assert _height_after(n, PAGE, True) == height


def test_first_splits_of_adjacent_and_gapped_vmas() -> None:
    assert shape(build(vma_stores(14, 0)).dump()["root"]) == 16
    assert shape(build(vma_stores(15, 0)).dump()["root"]) == [9, 8]
    assert shape(build(vma_stores(7, PAGE)).dump()["root"]) == 15
    assert shape(build(vma_stores(8, PAGE)).dump()["root"]) == [10, 7]


def test_forty_gapped_vmas_layout() -> None:
    t = build(vma_stores(40, PAGE))
    d = t.dump()
    root = d["root"]
    assert d["height"] == 2
    assert root["type"] == "arange64" and (root["min"], root["max"]) == (0, ULONG_MAX)
    assert len(root["children"]) == 6
    assert [len(c["entries"]) for c in root["children"]] == [16, 16, 16, 16, 10, 7]
    assert root["gaps"] == [1048576, 4096, 4096, 4096, 4096, 18446744073708015616]
    assert [(c["min"], c["max"]) for c in root["children"]] == [
        (0x0, 0x116FFF),
        (0x117000, 0x12EFFF),
        (0x12F000, 0x146FFF),
        (0x147000, 0x15EFFF),
        (0x15F000, 0x16DFFF),
        (0x16E000, ULONG_MAX),
    ]
    assert all(c["type"] == "leaf64" for c in root["children"])
    # Leaves never end on a NULL slot except the last one of the tree.
    for c in root["children"][:-1]:
        assert c["entries"][-1][2] is not None
    assert t.validate() == []


def test_three_level_tree_of_160_adjacent_vmas() -> None:
    t = build(vma_stores(160, 0))
    assert t.height == 3 and t.validate() == []
    depths = {d for n, d in t.nodes() if n.is_leaf}
    assert depths == {2}
    assert [e for _, _, e in t.entries()] == list(range(1, 161))


# ----------------------------------------------------------------- write paths


def _leaf_entries(t: MapleTree) -> list[list]:
    root = t.dump()["root"]
    assert root["type"] == "leaf64"
    return root["entries"]


def test_direct_replace_in_place() -> None:
    t = build(vma_stores(3, PAGE))
    leaf = t.root
    r = t.store_range(BASE, BASE + VMA - 1, 9)
    assert r.op == "direct_replace"
    assert not r.replaced and r.retired == [] and r.created == 0
    assert t.root is leaf and not leaf.dead
    assert _leaf_entries(t)[1] == [BASE, BASE + VMA - 1, 9]
    # Filling a NULL hole exactly is a direct replacement too (the gap is updated).
    gap = (BASE + VMA, BASE + VMA + PAGE - 1)
    r = t.store_range(*gap, 1)
    assert r.op == "direct_replace" and t.root is leaf
    assert _leaf_entries(t)[2] == [*gap, 1]
    assert t.validate() == []


def test_append_in_place() -> None:
    t = MapleTree()
    r = t.store_range(BASE, BASE + VMA - 1, 1)
    assert r.op == "root_store" and t.height == 1
    leaf = t.root
    r = t.store_range(BASE + VMA, BASE + 2 * VMA - 1, 2)
    # Linux 6.4 appends in place even in RCU mode (6.5 stopped doing so when
    # readers are possible); the layout is the same either way.
    assert r.op == "append"
    assert not r.replaced and r.retired == [] and r.created == 0
    assert t.root is leaf
    assert _leaf_entries(t) == [
        [0, BASE - 1, None],
        [BASE, BASE + VMA - 1, 1],
        [BASE + VMA, BASE + 2 * VMA - 1, 2],
        [BASE + 2 * VMA, ULONG_MAX, None],
    ]
    assert t.validate() == []


@pytest.mark.parametrize(
    ("first", "last", "expect"),
    [
        # munmap the tail page of VMA 1; the freed page joins the gap after it.
        (
            BASE + PAGE,
            BASE + VMA - 1,
            [[BASE, BASE + PAGE - 1, 1], [BASE + PAGE, BASE + 3 * PAGE - 1, None]],
        ),
        # munmap the head page of VMA 1; the freed page joins the NULL before it.
        (BASE, BASE + PAGE - 1, [[0, BASE + PAGE - 1, None], [BASE + PAGE, BASE + VMA - 1, 1]]),
    ],
    ids=["tail", "head"],
)
def test_slot_store_in_place(first: int, last: int, expect: list) -> None:
    t = build(vma_stores(3, PAGE))
    leaf = t.root
    r = t.store_range(first, last, None)
    assert r.op == "slot_store"
    assert not r.replaced and r.retired == [] and t.root is leaf
    entries = _leaf_entries(t)
    for e in expect:
        assert e in entries
    assert len(entries) == 7
    assert t.validate() == []


def test_node_store_replaces_the_leaf() -> None:
    col = Collector()
    t = build(vma_stores(3, PAGE), MapleTree(rcu_free=col))
    col.take()
    old = t.root
    # VMA 2 is [BASE + 3 pages, BASE + 5 pages); mprotect its first page.
    middle = (BASE + 3 * PAGE, BASE + 4 * PAGE - 1)
    r = t.store_range(*middle, 7)
    assert r.op == "node_store"
    assert r.replaced and r.retired == [old] and r.created == 1
    assert old.dead and not old.freed and col.nodes == [old]
    assert t.root is not old and t.height == 1
    assert _leaf_entries(t)[3:5] == [
        [BASE + 3 * PAGE, BASE + 4 * PAGE - 1, 7],
        [BASE + 4 * PAGE, BASE + 5 * PAGE - 1, 2],
    ]
    assert t.validate() == []


def test_bnode_store_fills_the_root_leaf() -> None:
    t = build(vma_stores(12, 0))
    r = t.store_range(*vma_stores(13, 0)[-1])
    assert r.op == "bnode_store" and r.replaced and r.created == 1
    assert t.height == 1 and shape(t.dump()["root"]) == 15


def test_root_growth_split() -> None:
    stores = vma_stores(8, PAGE)
    t = build(stores[:7])
    old_root = t.root
    assert t.height == 1
    r = t.store_range(*stores[7])
    assert r.op == "split"
    assert r.retired == [old_root] and r.created == 3  # two leaves and a new root
    assert t.height == 2 and shape(t.dump()["root"]) == [10, 7]
    assert t.validate() == []


def test_split_pushes_left_into_sibling() -> None:
    stores = vma_stores(13, PAGE)
    t = build(stores[:12])
    assert shape(t.dump()["root"]) == [10, 15]
    left, right = t.root.slot[0], t.root.slot[1]
    r = t.store_range(*stores[12])
    assert r.op == "split"
    # No new leaf: the left sibling took entries and ends full.
    assert shape(t.dump()["root"]) == [16, 11]
    assert set(r.retired) >= {left, right}
    assert len(t.dump()["root"]["children"][0]["entries"]) == 16
    assert t.validate() == []


def test_split_pushes_right_into_sibling() -> None:
    stores = vma_stores(12, PAGE, descending=True)
    t = build(stores[:11])
    assert shape(t.dump()["root"]) == [16, 7]
    r = t.store_range(*stores[11])
    assert r.op == "split"
    assert shape(t.dump()["root"]) == [10, 15]
    assert t.validate() == []


def test_rebalance_then_height_collapse() -> None:
    col = Collector()
    stores = vma_stores(16, PAGE)
    t = build(stores, MapleTree(rcu_free=col))
    assert shape(t.dump()["root"]) == [16, 10, 7]
    r = t.store_range(stores[15][0], stores[15][1], None)
    assert r.op == "rebalance" and shape(t.dump()["root"]) == [16, 15]
    assert len(r.retired) == 3 and all(n.dead for n in r.retired)
    ops = []
    for first, last, _ in reversed(stores[7:15]):
        ops.append(t.store_range(first, last, None).op)
        assert t.validate() == []
    # The last erase underflows the leaf and the root is left with one child.
    assert ops[-1] == "rebalance"
    assert t.height == 1 and shape(t.dump()["root"]) == 15
    assert [e for _, _, e in t.entries()] == list(range(1, 8))


def test_spanning_store_over_several_leaves() -> None:
    col = Collector()
    t = build(vma_stores(40, PAGE), MapleTree(rcu_free=col))
    first, last = BASE + 5 * 3 * PAGE, BASE + 30 * 3 * PAGE - 1
    r = t.store_range(first, last, None)
    assert r.op == "spanning_store" and r.replaced
    assert t.height == 2 and shape(t.dump()["root"]) == [14, 10, 7]
    assert [e for _, _, e in t.entries()] == [*range(1, 6), *range(31, 41)]
    assert t.walk(first) == (None, BASE + 4 * 3 * PAGE + VMA, BASE + 30 * 3 * PAGE - 1)
    live = {id(n) for n in live_nodes(t)}
    assert all(n.dead and id(n) not in live for n in col.nodes)
    assert t.validate() == []


def test_spanning_store_collapses_three_levels() -> None:
    t = build(vma_stores(160, PAGE))
    assert t.height == 3
    r = t.store_range(BASE + 2 * 3 * PAGE, BASE + 158 * 3 * PAGE - 1, None)
    assert r.op == "spanning_store"
    assert t.height == 1 and shape(t.dump()["root"]) == 9
    assert [e for _, _, e in t.entries()] == [1, 2, 159, 160]
    assert t.validate() == []


def test_spanning_non_null_store_collapses() -> None:
    t = build(vma_stores(160, PAGE))
    r = t.store_range(BASE + 2 * 3 * PAGE, BASE + 158 * 3 * PAGE - 1, 777)
    assert r.op == "spanning_store"
    assert t.height == 1 and shape(t.dump()["root"]) == 10
    assert t.load(BASE + 100 * 3 * PAGE) == 777
    assert t.validate() == []


def test_new_root_over_everything() -> None:
    t = build(vma_stores(3, PAGE))
    r = t.store_range(0, ULONG_MAX, 7)
    assert r.op == "new_root"
    assert t.dump() == {
        "height": 1,
        "root": {"type": "leaf64", "min": 0, "max": ULONG_MAX, "entries": [[0, ULONG_MAX, 7]]},
    }
    # Linux 6.4 checks for a [0, ULONG_MAX] store before the exact-fit case, so
    # NULL over everything empties the tree (6.12 keeps a leaf with one NULL
    # slot; 6.1 agrees with 6.4 here).
    col = Collector()
    t.rcu_free = col
    old = t.root
    r = t.store_range(0, ULONG_MAX, None)
    assert r.op == "new_root"
    assert t.dump() == {"height": 0, "root": None}
    assert col.nodes == [old] and old.dead
    assert t.load(12345) is None and list(t.entries()) == []


def test_new_root_from_a_two_level_tree() -> None:
    col = Collector()
    t = build(vma_stores(40, PAGE), MapleTree(rcu_free=col))
    before = live_nodes(t)
    col.take()
    t.store_range(0, ULONG_MAX, 7)
    assert t.height == 1 and t.dump()["root"]["entries"] == [[0, ULONG_MAX, 7]]
    assert {id(n) for n in col.nodes} == {id(n) for n in before}


def test_erase_everything_empties_the_tree() -> None:
    col = Collector()
    t = build(vma_stores(40, PAGE), MapleTree(rcu_free=col))
    before = live_nodes(t)
    col.take()
    t.store_range(BASE, BASE + 40 * 3 * PAGE, None)
    assert t.dump() == {"height": 0, "root": None}
    assert t.validate() == []
    assert {id(n) for n in col.nodes} == {id(n) for n in before}
    assert all(n.dead for n in before)


def test_direct_root_entry() -> None:
    t = MapleTree()
    assert t.dump() == {"height": 0, "root": None}
    r = t.store_range(0, 0, 5)
    assert r.op == "root_store"
    assert t.dump() == {"height": 0, "root": {"type": "direct", "entry": 5}}
    assert t.load(0) == 5 and t.load(1) is None
    assert t.walk(0) == (5, 0, 0) and t.walk(99) == (None, 1, ULONG_MAX)
    assert list(t.entries()) == [(0, 0, 5)]
    assert t.empty_area(0, 100, 10) == 1 and t.empty_area_rev(0, 100, 10) == 91
    # Storing elsewhere expands the root into a leaf that keeps the entry.
    t.store_range(2, 2, 6)
    assert t.dump() == {
        "height": 1,
        "root": {
            "type": "leaf64",
            "min": 0,
            "max": ULONG_MAX,
            "entries": [[0, 0, 5], [1, 1, None], [2, 2, 6], [3, ULONG_MAX, None]],
        },
    }
    t2 = MapleTree()
    t2.store_range(0, 0, 5)
    t2.store_range(0, 0, None)
    assert t2.dump() == {"height": 0, "root": None}


def test_erase_removes_whole_range() -> None:
    t = build(vma_stores(3, PAGE))
    assert t.erase(BASE + PAGE) == 1
    assert t.load(BASE) is None and t.load(BASE + VMA - 1) is None
    assert t.erase(BASE + PAGE) is None
    assert [e for _, _, e in t.entries()] == [2, 3]
    assert t.validate() == []


@pytest.mark.parametrize(("first", "last"), [(5, 4), (-1, 3), (0, ULONG_MAX + 1)])
def test_bad_range_raises(first: int, last: int) -> None:
    t = build(vma_stores(3, PAGE))
    before = t.dump()
    with pytest.raises(MapleError):
        t.store_range(first, last, 1)
    assert t.dump() == before


def test_top_down_first_leaf() -> None:
    t = build(vma_stores(7, PAGE, descending=True))
    entries = _leaf_entries(t)
    assert len(entries) == 15
    assert entries[-1] == [TOP, ULONG_MAX, None]
    assert entries[-2] == [TOP - VMA, TOP - 1, 1]


def test_non_rcu_mode_builds_the_same_layout_in_place() -> None:
    stores = vma_stores(60, PAGE, descending=True)
    rcu, plain = build(stores), build(stores, MapleTree(in_rcu=False))
    assert rcu.dump() == plain.dump()
    leaf = next(plain.leaves())
    r = plain.store_range(TOP - VMA, TOP - VMA + PAGE - 1, 99)
    assert r.op in ("node_store", "bnode_store")
    assert not r.replaced and r.retired == [] and r.created == 0
    assert not leaf.dead and any(n is leaf for n in plain.leaves())
    assert plain.validate() == []


def test_mt_dump_text() -> None:
    t = build(vma_stores(8, PAGE))
    text = t.mt_dump()
    lines = text.splitlines()
    assert lines[0].startswith("maple_tree") and "height 2" in lines[0]
    assert sum(" type 1 " in ln for ln in lines) == 2
    assert sum(" type 3 " in ln for ln in lines) == 1


# ------------------------------- StoreResult accounting and items() edge cases


def test_store_result_reports_nodes_retired_by_emptying_new_root() -> None:
    col = Collector()
    t = build(vma_stores(3, PAGE), MapleTree(rcu_free=col))
    col.take()  # forget what building the tree retired
    r = t.store_range(0, ULONG_MAX, None)
    assert col.nodes, "the old leaf went to rcu_free"
    assert r.retired == col.nodes


def test_store_result_counts_root_expand_node() -> None:
    t = MapleTree()
    r = t.store_range(BASE, BASE + VMA - 1, 1)
    assert isinstance(t.root, Node)
    assert r.created == 1


def test_items_of_empty_and_direct_root_trees() -> None:
    t = MapleTree()
    assert list(t.items()) == [(0, ULONG_MAX, None)]
    t.store_range(0, 0, 5)
    assert list(t.items()) == [(0, 0, 5), (1, ULONG_MAX, None)]
