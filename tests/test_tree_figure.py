"""Unit tests of the pure figure builders, on hand-made maple tree dumps."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import pytest

from vmaviz.ui.address_space_figure import address_space_figure
from vmaviz.ui.tree_figure import (
    BOX_W,
    MAX_INDEX,
    layout_tree,
    maple_tree_figure,
)

LEAF_A = {
    "type": "leaf64",
    "min": 0,
    "max": 0x7FFF_FFFF,
    "entries": [
        [0, 0xFFFF, None],
        [0x10000, 0x1FFFF, 1],
        [0x20000, 0x3FFFF, None],
        [0x40000, 0x7FFF_FFFF, 2],
    ],
}
LEAF_B = {
    "type": "leaf64",
    "min": 0x8000_0000,
    "max": MAX_INDEX,
    "entries": [
        [0x8000_0000, 0x8000_0FFF, 3],
        [0x8000_1000, MAX_INDEX, None],
    ],
}
HEIGHT2: dict[str, Any] = {
    "height": 2,
    "root": {
        "type": "arange64",
        "min": 0,
        "max": MAX_INDEX,
        "gaps": [0x20000, MAX_INDEX - 0x8000_1000 + 1],
        "children": [LEAF_A, LEAF_B],
    },
}
NAMES = {1: "exe .text", 2: "[heap]", 3: "libc.so.6"}


def _texts(fig: go.Figure) -> list[str]:
    out: list[str] = []
    for trace in fig.data:
        if trace.mode == "text" and trace.text is not None:
            out.extend(trace.text)
    return out


def test_layout_counts_and_order() -> None:
    boxes = layout_tree(HEIGHT2, NAMES)
    assert [b.node_type for b in boxes] == ["arange64", "leaf64", "leaf64"]
    assert [b.path for b in boxes] == [(), (0,), (1,)]
    assert [b.depth for b in boxes] == [0, 1, 1]
    root, a, b = boxes
    assert len(root.rows) == 2 and len(a.rows) == 4 and len(b.rows) == 2
    # Leaves left to right in index order, same level; root centred above them.
    assert a.x1 < b.x0
    assert a.y0 == b.y0 > root.y1
    assert root.cx == pytest.approx((a.cx + b.cx) / 2)
    assert root.x1 - root.x0 == BOX_W
    assert (root.min, root.max) == (0, MAX_INDEX)


def test_same_input_same_figure() -> None:
    first = maple_tree_figure(HEIGHT2, NAMES)
    second = maple_tree_figure(json.loads(json.dumps(HEIGHT2)), dict(NAMES))
    assert first.to_json() == second.to_json()
    assert [(b.x0, b.y0, b.x1, b.y1) for b in layout_tree(HEIGHT2)] == [
        (b.x0, b.y0, b.x1, b.y1) for b in layout_tree(HEIGHT2)
    ]


def test_labels_types_ranges_pivots_and_entries() -> None:
    fig = maple_tree_figure(HEIGHT2, NAMES)
    texts = _texts(fig)
    headers = [t for t in texts if t.startswith("<b>")]
    assert len(headers) == 3  # one per node
    assert sum("arange64" in t for t in headers) == 1
    assert sum("leaf64" in t for t in headers) == 2
    assert "[0x0, 0xffffffffffffffff]" in texts
    assert "[0x80000000, 0xffffffffffffffff]" in texts
    joined = "\n".join(texts)
    for name in NAMES.values():
        assert name in joined
    assert joined.count("∅") == 3  # the three NULL ranges
    assert "0x1ffff" in joined  # a pivot
    assert "gap 0x20000" in joined  # a per-child gap of the arange64 node
    assert fig.layout.meta["nodes"] == 3


def test_unnamed_entries_show_their_id() -> None:
    texts = "\n".join(_texts(maple_tree_figure(HEIGHT2)))
    assert "#1" in texts and "#3" in texts


def test_edges_one_per_child() -> None:
    fig = maple_tree_figure(HEIGHT2, NAMES)
    (edges,) = [t for t in fig.data if t.mode == "lines" and t.fill is None]
    assert list(edges.x).count(None) == 2


def test_few_traces() -> None:
    fig = maple_tree_figure(HEIGHT2, NAMES)
    assert len(fig.data) <= 12
    assert not fig.layout.shapes


def test_full_leaf_last_pivot_is_implied() -> None:
    entries = [[i * 16, i * 16 + 15, i % 2 or None] for i in range(15)]
    entries.append([240, MAX_INDEX, 7])
    dump = {"height": 1, "root": {"type": "leaf64", "min": 0, "max": MAX_INDEX, "entries": entries}}
    (box,) = layout_tree(dump)
    assert [r.pivot_implied for r in box.rows] == [False] * 15 + [True]
    texts = _texts(maple_tree_figure(dump))
    assert any(t.startswith("15") and "max" in t for t in texts)
    assert any("16/16 slots" in t for t in texts)


def test_empty_and_direct_roots() -> None:
    empty = maple_tree_figure({"height": 0, "root": None})
    assert not layout_tree({"height": 0, "root": None})
    assert "empty tree" in empty.layout.annotations[0].text
    direct = {"height": 0, "root": {"type": "direct", "entry": 5}}
    (box,) = layout_tree(direct, {5: "only"})
    assert box.rows[0].label == "only"
    assert (box.rows[0].first, box.rows[0].last) == (0, 0)


def test_address_space_figure() -> None:
    vmas = [
        ("[stack]", 0x7FFC_0000_0000, 0x7FFC_0002_1000),
        ("exe", 0x5555_0000_0000, 0x5555_0000_2000),
        ("guard", 0x7F00_0000_0000, 0x7F00_0000_1000),
    ]
    fig = address_space_figure(vmas, ["rw", "rx", "none"])
    bars = [t for t in fig.data if isinstance(t, go.Bar) and t.name != "free (no VMA)"]
    assert sum(len(t.base) for t in bars) == 3
    names = next(t for t in fig.data if t.name == "names")
    assert list(names.text) == ["exe", "guard", "[stack]"]  # address order
    marks = next(t for t in fig.data if t.name == "marks")
    assert "≈" in marks.text  # gaps of 1 GiB or more are marked
    assert fig.to_json() == address_space_figure(vmas, ["rw", "rx", "none"]).to_json()
    with pytest.raises(ValueError):
        address_space_figure(vmas, ["rw"])
