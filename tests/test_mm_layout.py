"""VMAs in the mm maple tree, top-down placement, and the tree figure on real dumps."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vmaviz.mm_layout import PAGE_SIZE, find_topdown, mm_tree_dump, mmap_base
from vmaviz.scenario_vmas import load_vmas
from vmaviz.ui.tree_figure import layout_tree, maple_tree_figure


def _leaf_entries(dump: dict) -> list[list]:
    out: list[list] = []

    def walk(node: dict) -> None:
        if "children" in node:
            for child in node["children"]:
                walk(child)
        else:
            out.extend(node["entries"])

    walk(dump["root"])
    return out


def test_default_scenario_tree(repo_root: Path) -> None:
    vmas = load_vmas(repo_root / "scenarios" / "default.yaml")
    dump, names = mm_tree_dump(vmas)
    stored = [(first, last, e) for first, last, e in _leaf_entries(dump) if e is not None]
    assert stored == [(s, e - 1, i + 1) for i, (_n, s, e) in enumerate(vmas)]
    assert names[1] == vmas[0][0]
    boxes = layout_tree(dump, names)
    assert len(boxes) >= 2
    texts = "\n".join(
        t for tr in maple_tree_figure(dump, names).data if tr.mode == "text" for t in tr.text
    )
    assert "[heap]" in texts and "[stack]" in texts


def test_topdown_fills_highest_hole_first() -> None:
    vmas = [
        ("low", 0x10000, 0x20000),
        ("mid", 0x40000, 0x50000),
        ("ld.so", 0x58000, 0x60000),
        ("[stack]", 0x7000_0000, 0x7000_1000),
    ]
    base = mmap_base(vmas)
    assert base == 0x60000
    assert find_topdown(vmas, 0x8000, base) == 0x50000  # the hole between mid and ld.so
    assert find_topdown(vmas, 0x10000, base) == 0x30000  # too big for it: next hole down
    assert find_topdown(vmas, 0x100000, base) is None  # ENOMEM


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 8)), min_size=0, max_size=25),
    st.integers(1, 16),
)
def test_topdown_result_is_free_and_highest(raw: list[tuple[int, int]], pages: int) -> None:
    vmas: list[tuple[str, int, int]] = []
    taken: set[int] = set()
    for i, (page, n) in enumerate(raw):
        span = set(range(16 + page, 16 + page + n))
        if span & taken:
            continue
        taken |= span
        vmas.append((f"v{i}", (16 + page) * PAGE_SIZE, (16 + page + n) * PAGE_SIZE))
    high = 5000 * PAGE_SIZE
    start = find_topdown(vmas, pages * PAGE_SIZE, high)
    free = [p for p in range(16, 5000) if p not in taken]
    fits = [
        p for p in free if all(q not in taken for q in range(p, p + pages)) and p + pages <= 5000
    ]
    if not fits:
        assert start is None
    else:
        assert start == max(fits) * PAGE_SIZE
