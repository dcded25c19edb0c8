"""Hypothesis properties of the maple tree model on VMA-shaped store sequences.

Every sequence is built from abstract operations (see ``maple_helpers.run_vma_ops``):
top-down mmaps and bursts of them, whole and partial munmaps, mprotect-like splits,
merges over neighbouring VMAs, mremap moves, MAP_FIXED-like stores and large NULL
stores spanning many VMAs.  A trivial reference interval map runs alongside.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from maple_helpers import (
    FLOOR,
    PAGE,
    TOP,
    Collector,
    RefMap,
    check_against_ref,
    live_nodes,
    probe_points,
    run_vma_ops,
    vma_op,
)

from vmaviz.model.maple import ULONG_MAX, MapleTree, MasWalk, StoreResult

IN_PLACE = {"direct_replace", "slot_store", "append"}
OP = vma_op()
# Start most sequences with a burst so that trees of height 2 and 3 are common.
OPS = st.tuples(
    st.tuples(
        st.sampled_from(["burst", "burst_up"]),
        st.one_of(st.integers(0, 40), st.integers(70, 170)),
        st.integers(1, 4),
        st.integers(0, 2),
    ),
    st.lists(OP, max_size=25),
).map(lambda t: [t[0], *t[1]])

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# For the properties that check a built tree rather than every store.
BUILD_SETTINGS = settings(SETTINGS, max_examples=100)


def _build(
    ops: list[tuple], tree: MapleTree, after_store=None, ref: RefMap | None = None
) -> RefMap:
    ref = ref if ref is not None else RefMap()

    def store(first: int, last: int, entry: object) -> None:
        result = tree.store_range(first, last, entry)
        ref.store(first, last, entry)
        if after_store is not None:
            after_store(first, last, entry, result)

    run_vma_ops(ops, store, ref)
    return ref


@SETTINGS
@given(OPS)
def test_every_store_matches_reference(ops: list[tuple]) -> None:
    tree = MapleTree()
    count = [0]

    def after(first: int, last: int, entry: object, result: StoreResult) -> None:
        event(f"op={result.op}")
        event(f"height={tree.height}")
        count[0] += 1
        # Full lookup probes on small trees and every 8th store; otherwise around
        # the store (validate, entries() and items() are always compared in full).
        full = len(ref.ranges) <= 24 or count[0] % 8 == 0
        check_against_ref(tree, ref, None if full else (first, last))

    ref = RefMap()
    _build(ops, tree, after, ref)
    check_against_ref(tree, ref)


@BUILD_SETTINGS
@given(OPS, st.data())
def test_empty_area_matches_brute_force(ops: list[tuple], data: st.DataObject) -> None:
    tree = MapleTree()
    ref = _build(ops, tree)
    pts = sorted(probe_points(ref.ranges) | {0, FLOOR, TOP, ULONG_MAX})
    point = st.one_of(
        st.sampled_from(pts),
        st.integers(FLOOR - 64 * PAGE, TOP + 64 * PAGE),
        st.integers(0, ULONG_MAX),
    )
    size = st.one_of(
        st.integers(1, 20).map(lambda n: n * PAGE),
        st.integers(1, 40 * PAGE),
        st.integers(1, ULONG_MAX),
    )
    for _ in range(25):
        a, b = data.draw(point), data.draw(point)
        lo, hi = min(a, b), max(a, b)
        n = data.draw(size)
        assert tree.empty_area(lo, hi, n) == ref.empty_area(lo, hi, n), (lo, hi, n)
        assert tree.empty_area_rev(lo, hi, n) == ref.empty_area_rev(lo, hi, n), (lo, hi, n)
    # The whole mmap area, the way get_unmapped_area asks (top-down and bottom-up).
    for pages in (1, 2, 16, 64, 300):
        n = pages * PAGE
        assert tree.empty_area_rev(FLOOR, TOP - 1, n) == ref.empty_area_rev(FLOOR, TOP - 1, n)
        assert tree.empty_area(FLOOR, TOP - 1, n) == ref.empty_area(FLOOR, TOP - 1, n)


@BUILD_SETTINGS
@given(OPS, st.data())
def test_find_next_prev_match_reference(ops: list[tuple], data: st.DataObject) -> None:
    tree = MapleTree()
    ref = _build(ops, tree)
    pts = sorted(probe_points(ref.ranges) | {0, FLOOR, TOP, ULONG_MAX})
    point = st.one_of(st.sampled_from(pts), st.integers(FLOOR - PAGE, TOP + PAGE))
    for a in pts[:: max(1, len(pts) // 40)]:
        assert tree.find(a) == ref.find(a), hex(a)
        assert tree.next(a) == ref.next(a), hex(a)
        assert tree.prev(a) == ref.prev(a), hex(a)
    for _ in range(20):
        a, b = data.draw(point), data.draw(point)
        lo, hi = min(a, b), max(a, b)
        assert tree.find(lo, hi) == ref.find(lo, hi), (lo, hi)
        assert tree.next(lo, hi) == ref.next(lo, hi), (lo, hi)
        assert tree.prev(hi, lo) == ref.prev(hi, lo), (lo, hi)
    # mas_for_each: chaining next() from 0 visits every VMA in order.
    seen = []
    cur = tree.find(0)
    while cur is not None:
        seen.append(cur)
        cur = tree.next(cur[1])
    assert seen == [(e, lo, hi) for lo, hi, e in ref.entries()]


@SETTINGS
@given(OPS)
def test_rcu_retirement(ops: list[tuple]) -> None:
    """In RCU mode: in-place ops retire nothing; every vanished node is retired,
    dead and unreachable; no live node is ever dead; freed only via the callback."""
    col = Collector()
    tree = MapleTree(rcu_free=col)
    before: list = []

    def snapshot() -> None:
        before[:] = live_nodes(tree)

    snapshot()

    def after(first: int, last: int, entry: object, result: StoreResult) -> None:
        retired = col.take()
        after_nodes = live_nodes(tree)
        live_ids = {id(n) for n in after_nodes}
        before_ids = {id(n) for n in before}
        assert not result.pending
        if result.op in IN_PLACE:
            assert retired == [] and result.retired == [] and not result.replaced
            assert result.created == 0
            assert live_ids == before_ids, "an in-place store changed the node set"
        for n in retired:
            assert n.dead and not n.freed
            assert id(n) not in live_ids
            assert id(n) in before_ids, "retired a node that was not in the tree"
        assert len({id(n) for n in retired}) == len(retired), "a node retired twice"
        # Nothing leaks: every node that left the tree went to rcu_free.
        assert before_ids - live_ids == {id(n) for n in retired}
        # New nodes are exactly those the store created.
        assert len(live_ids - before_ids) == result.created
        assert not any(n.dead or n.freed for n in after_nodes)
        # StoreResult.retired is what went to rcu_free.
        assert {id(n) for n in result.retired} == {id(n) for n in retired}
        assert result.replaced == bool(retired)
        if result.op not in IN_PLACE | {"root_store"}:
            assert result.created > 0 or tree.root is None
        snapshot()

    ref = _build(ops, tree, after)
    check_against_ref(tree, ref)


def _reader_addresses(ref: RefMap, data: st.DataObject) -> int:
    pts = sorted(probe_points(ref.ranges) | {FLOOR, TOP - 1})
    return data.draw(st.one_of(st.sampled_from(pts), st.integers(FLOOR, TOP - 1)))


@SETTINGS
@given(OPS, st.lists(OP, min_size=1, max_size=6), st.data())
def test_reader_interleaved_with_writers(
    ops: list[tuple], later: list[tuple], data: st.DataObject
) -> None:
    """A reader stepped between stores (non-freeing RCU) returns what ``load``
    returns at the moment it finishes, restarting on dead nodes."""
    col = Collector()
    tree = MapleTree(rcu_free=col)
    ref = _build(ops, tree)
    addr = _reader_addresses(ref, data)
    pre_steps = data.draw(st.integers(0, 3))
    walker = MasWalk(tree, addr)
    for _ in range(pre_steps):
        if not walker.done:
            walker.step()
    per_store = data.draw(st.integers(1, 2))
    finished: list = []

    def store(first: int, last: int, entry: object) -> None:
        tree.store_range(first, last, entry)
        ref.store(first, last, entry)
        for _ in range(per_store):
            if not walker.done:
                walker.step()
                if walker.done:
                    finished.append(tree.load(addr))

    if walker.done:
        finished.append(tree.load(addr))
    run_vma_ops(later, store, ref)
    if not walker.done:
        walker.run()
        finished.append(tree.load(addr))
    assert walker.entry == finished[0]
    kinds = [e.kind for e in walker.events]
    for kind in sorted(set(kinds)):
        event(f"reader saw {kind}")
    assert "use_after_free" not in kinds
    assert kinds.count("dead_node") + kinds.count("dead_root") == walker.restarts
    assert kinds[-1] in ("found", "empty", "root_entry")
    check_against_ref(tree, ref)


@BUILD_SETTINGS
@given(OPS, st.lists(OP, min_size=1, max_size=4), st.data())
def test_staged_store_readers(ops: list[tuple], later: list[tuple], data: st.DataObject) -> None:
    """While a staged replacement is unpublished (old nodes dead, new ones not yet
    reachable) readers restart instead of finishing on a dead node; every reader
    agrees with the published tree."""
    col = Collector()
    tree = MapleTree(rcu_free=col)
    ref = _build(ops, tree)
    addrs = [_reader_addresses(ref, data) for _ in range(3)]

    def store(first: int, last: int, entry: object) -> None:
        col.take()
        walkers = []
        for a in addrs:
            # Readers that are part-way down the tree when the writer starts.
            w = MasWalk(tree, a)
            for _ in range(data.draw(st.integers(0, 3))):
                w.step()
                if w.done:
                    break
            if w.done:
                assert w.entry == tree.load(a)
            else:
                walkers.append((a, w))
        res = tree.store_range(first, last, entry, staged=True)
        ref.store(first, last, entry)
        if res.op in IN_PLACE:
            assert not res.pending and not res.replaced
        if res.pending:
            event(f"staged {res.op}")
            assert all(n.dead and not n.freed for n in res.retired)
            for _a, w in walkers:
                for _ in range(12):
                    if w.done:
                        break
                    w.step()
                kinds = {e.kind for e in w.events}
                assert "use_after_free" not in kinds
                if not w.done:
                    # A walk takes at most height + 1 steps without a restart.
                    assert w.restarts > 0
                    assert kinds & {"dead_node", "dead_root"}
            assert tree.commit_pending() is not None
            assert col.take() == res.retired
        assert not any(n.dead for n, _ in tree.nodes())
        for a, w in walkers:
            assert w.run() == tree.load(a), hex(a)
        check_against_ref(tree, ref)

    run_vma_ops(later, store, ref)
