"""The pure figure builders on real runs: lock-state cues, stable tree layout, counters."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest

from vmaviz.engine.engine import Engine
from vmaviz.engine.export import synced_trace
from vmaviz.engine.timeline import SEGMENT_KINDS
from vmaviz.engine.view import snapshot
from vmaviz.model.kernel import ARCHES
from vmaviz.scenario import load_scenario
from vmaviz.ui.figures import (
    BOX_W,
    address_space_figure,
    counters_figure,
    dead_nodes,
    maple_tree_figure,
    tree_layout,
)
from vmaviz.ui.palette import (
    ARCH_STYLES,
    LOCK_MODE_STYLES,
    LOCK_STATES,
    SEGMENT_STYLES,
    THREAD_STATES,
    Style,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def run(name: str, mode: str = "per_vma", arch: str | None = None) -> Engine:
    return Engine(load_scenario(SCENARIOS / f"{name}.yaml"), mode=mode, arch=arch).run()


def first(e: Engine, code: str) -> int:
    t = synced_trace(e)
    return next(i for i in range(len(t)) if t.codes[t.code[i]] == code)


def trace_named(fig: go.Figure, prefix: str) -> Any:
    (tr,) = [t for t in fig.data if str(t.name).startswith(prefix) or t.name == prefix]
    return tr


def bar_of(fig: go.Figure, state: str) -> Any:
    st = LOCK_STATES[state]
    name = f"{st.badge + ': ' if st.badge else ''}{st.label}"
    (tr,) = [t for t in fig.data if t.name == name]
    return tr


@pytest.fixture(scope="module")
def hold() -> Engine:
    return run("hold-write-other-vma")


@pytest.fixture(scope="module")
def munmap() -> Engine:
    return run("fault-vs-munmap")


# ------------------------------------------------------------------ address space


def test_address_space_lock_states(hold: Engine) -> None:
    # A step after T0 write-locked A at which a fault holds B's read lock.
    t = synced_trace(hold)
    start = first(hold, "vma_start_write:seq_set") + 1
    step = next(
        i
        for i in range(start, len(t))
        if t.codes[t.code[i]] == "vma_start_read:locked" and t.time[i] < 50_000
    )
    snap = snapshot(hold.state_at(step + 1))
    fig = address_space_figure(snap)
    ids = {v["name"]: v["id"] for v in snap["vmas"]}
    (b,) = [v for v in snap["vmas"] if v["name"] == "B"]
    assert b["state"] == "read_locked"
    w = bar_of(fig, "write_locked")
    assert list(w.customdata) == [ids["A"]]
    assert list(w.text) == ["W"]
    assert w.marker.pattern.shape == LOCK_STATES["write_locked"].pattern != ""
    assert "vm_lock_seq 0 == mm_lock_seq 0" in w.hovertext[0]
    r = bar_of(fig, "read_locked")
    assert list(r.customdata) == [ids["B"]] and list(r.text) == [f"R{len(b['readers'])}"]
    assert b["read_holders"][0] in r.hovertext[0]
    assert "vm_lock_seq -1 != mm_lock_seq 0" in r.hovertext[0]
    assert r.marker.pattern.shape == "."
    assert "mm_lock_seq = 0" in fig.layout.title.text
    # Both VMAs are on the main lane and the figure serialises.
    assert list(w.y) == [0.0] and list(r.y) == [0.0]
    json.loads(fig.to_json())


def test_maple_tree_hover_is_one_point_per_row_reaching_the_whole_row(munmap: Engine) -> None:
    k = munmap.state_at(first(munmap, "vma_iter_clear") + 1)
    snap = snapshot(k)
    dead = dead_nodes(k)
    boxes = tree_layout(snap, dead)
    fig = maple_tree_figure(snap, dead)
    details = trace_named(fig, "details")
    # A header point and one point per slot row, each at its box's centre line.
    assert len(details.x) == sum(1 + len(b.rows) for b in boxes)
    centres = {b.cx for b in boxes}
    assert set(details.x) <= centres
    # hovermode "closest" picks the nearest point within hoverdistance pixels (the
    # axes are pixels): the centre must reach both ends of its row, and the
    # next row's centre is farther from any point of a row than the row's own.
    assert fig.layout.hovermode == "closest"
    assert fig.layout.hoverdistance >= BOX_W / 2


def test_address_space_detached_lane_and_compressed_gaps(munmap: Engine) -> None:
    step = first(munmap, "vma_iter_clear") + 1
    snap = snapshot(munmap.state_at(step))
    fig = address_space_figure(snap)
    d = bar_of(fig, "detached")
    (victim,) = [v for v in snap["vmas"] if v["name"] == "victim"]
    assert list(d.customdata) == [victim["id"]] and list(d.text) == ["D"]
    assert d.y[0] < 0  # the "unmapped, not freed" lane
    u = bar_of(fig, "unlocked")
    assert u.y[0] == 0
    # The 4-page VMA is drawn at least as wide as log2 says, not 1/8 of the 32-page one.
    assert u.x[0] >= 3 and d.x[0] >= u.x[0]
    assert fig.layout.yaxis.ticktext == ("in mm_mt", "unmapped,<br>not freed")


def test_address_space_mmap_lock_mode() -> None:
    e = run("hold-write-other-vma", "mmap_lock")
    fig = address_space_figure(snapshot(e.state_at(5)))
    assert "per-VMA locks off" in fig.layout.title.text
    assert len(bar_of(fig, "unlocked").customdata) == 2


# ---------------------------------------------------------------------- maple tree


def count_nodes(node: dict[str, Any] | None) -> int:
    if node is None:
        return 0
    return 1 + sum(count_nodes(c) for c in node.get("children") or [])


def test_maple_tree_and_dead_nodes(munmap: Engine) -> None:
    step = first(munmap, "vma_iter_clear") + 1
    k = munmap.state_at(step)
    snap = snapshot(k)
    dead = dead_nodes(k)
    assert dead and {d["id"] for d in dead} == set(snap["dead_nodes_pending"])
    for d in dead:
        assert d["dead"] and not d["freed"] and "children" not in d
        assert d["queued_ns"] <= snap["now_ns"]
        if d["type"] == "leaf64":
            names = [e[3] for e in d["entries"] if e[2] is not None]
            assert "victim" in names  # the old leaf still maps the unmapped VMA
    fig = maple_tree_figure(snap, dead)
    assert fig.layout.meta["nodes"] == count_nodes(snap["tree"]["root"])
    assert fig.layout.meta["dead"] == len(dead)
    outline = trace_named(fig, "dead-node outline")
    assert outline.line.dash == "dash" and len(outline.x) == 6 * len(dead)
    labels = trace_named(fig, "labels").text
    assert any(t.startswith("<b>DEAD</b>") for t in labels)
    assert any("victim [D]" in t for t in labels)
    assert "waiting for RCU" in fig.layout.title.text
    # The legend is under the tree, in a bottom margin that holds all its rows: it
    # can no longer climb over the title.
    entries = [t for t in fig.data if t.showlegend]
    assert fig.layout.legend.y == 0 and fig.layout.legend.yanchor == "top"
    assert fig.layout.margin.b >= 34 * -(-len(entries) // 2) and fig.layout.margin.t == 64
    # After the grace period the dead node is gone.
    later = munmap.state_at(first(munmap, "rcu:callbacks") + 1)
    assert dead_nodes(later) == []
    assert maple_tree_figure(snapshot(later), []).layout.meta["dead"] == 0
    json.loads(fig.to_json())


def test_address_space_names_fit_a_compare_column(hold: Engine) -> None:
    """The names are laid out for compare view's column: none overlaps another on its
    row there, none is clipped at the plot's edge, and the title is short."""
    from vmaviz.ui.figures import FONT_SIZE, LEGEND_PX

    fig = address_space_figure(snapshot(hold.k))
    names = trace_named(fig, "names")
    assert names.cliponaxis is False
    assert len(fig.layout.title.text) <= 48
    span = fig.layout.xaxis.range[1] - fig.layout.xaxis.range[0]
    per_char = span / (LEGEND_PX - 130) * FONT_SIZE * 0.6
    rows: dict[float, list[tuple[float, float]]] = {}
    for x, y, text in zip(names.x, names.y, names.text, strict=True):
        if text != "≈":
            rows.setdefault(y, []).append(
                (x - len(text) * per_char / 2, x + len(text) * per_char / 2)
            )
    for spans in rows.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_slot_cells_show_lock_badges(hold: Engine) -> None:
    step = first(hold, "vma_start_write:seq_set") + 1
    fig = maple_tree_figure(snapshot(hold.state_at(step)))
    labels = trace_named(fig, "labels").text
    assert any(t.endswith("A [W]") for t in labels)
    w = [t for t in fig.data if t.name == f"VMA slot: {LOCK_STATES['write_locked'].label} [W]"]
    assert w and w[0].fillcolor == LOCK_STATES["write_locked"].colour


def positions(boxes: list[Any]) -> list[tuple[Any, ...]]:
    return [(b.node_type, b.min, b.max, b.depth, b.x0, b.y0, b.dead) for b in boxes]


def leaf(lo: int, hi: int, vids: list[int | None], step: int) -> dict[str, Any]:
    entries = []
    start = lo
    for i, vid in enumerate(vids):
        end = hi if i == len(vids) - 1 else start + step - 1
        entries.append([start, end, vid, f"v{vid}" if vid else None])
        start = end + 1
    return {"id": 100 + lo // step, "type": "leaf64", "min": lo, "max": hi, "dead": False,
            "freed": False, "entries": entries}  # fmt: skip


def tree(leaves: list[dict[str, Any]]) -> dict[str, Any]:
    root = {
        "id": 1,
        "type": "arange64",
        "min": 0,
        "max": 2**64 - 1,
        "dead": False,
        "freed": False,
        "pivots": [lf["max"] for lf in leaves[:-1]],
        "gaps": [4096] * len(leaves),
        "children": leaves,
    }
    return {"tree": {"height": 2, "root": root}, "vmas": []}


def test_layout_is_a_function_of_ranges_not_ids() -> None:
    snap = tree(
        [leaf(0, 0xFFFF, [None, 1, 2], 0x1000), leaf(0x10000, 2**64 - 1, [3, None], 0x1000)]
    )
    a = positions(tree_layout(snap))
    assert a == positions(tree_layout(copy.deepcopy(snap)))
    renumbered = copy.deepcopy(snap)
    renumbered["tree"]["root"]["id"] = 77
    for i, child in enumerate(renumbered["tree"]["root"]["children"]):
        child["id"] = 500 + i
    assert positions(tree_layout(renumbered)) == a
    # A VMA added in the last leaf does not move the first leaf or the root.
    grown = copy.deepcopy(snap)
    grown["tree"]["root"]["children"][1] = leaf(0x10000, 2**64 - 1, [3, 4, None], 0x1000)
    b = positions(tree_layout(grown))
    assert b[:2] == a[:2]
    assert b[2][4:6] == a[2][4:6]  # the changed leaf keeps its place too
    # Dead nodes go beside the live tree, ordered by range, not by id.
    dead = [
        {**leaf(0x10000, 2**64 - 1, [3, None], 0x1000), "id": 9},
        {**leaf(0, 0xFFFF, [None, 1], 0x1000), "id": 8},
    ]
    boxes = tree_layout(snap, dead)
    live_right = max(bx.x1 for bx in boxes if not bx.dead)
    dboxes = [bx for bx in boxes if bx.dead]
    assert [bx.min for bx in dboxes] == [0, 0x10000]
    assert all(bx.x0 > live_right and bx.depth == 1 for bx in dboxes)
    assert positions(tree_layout(snap, list(reversed(dead)))) == positions(boxes)


def test_layout_stable_across_steps(hold: Engine) -> None:
    # The tree does not change during the run: every step draws it identically.
    t = synced_trace(hold)
    steps = [0, len(t) // 3, len(t) - 1]
    layouts = {tuple(positions(tree_layout(snapshot(hold.state_at(i))))) for i in steps}
    assert len(layouts) == 1


def test_empty_tree() -> None:
    fig = maple_tree_figure({"tree": {"height": 0, "root": None}, "vmas": []})
    assert fig.layout.meta["nodes"] == 0 and "NULL" in fig.layout.annotations[0].text


# ------------------------------------------------------------------------ timeline


# ------------------------------------------------------------------------ counters


def test_counters_per_arch() -> None:
    runs = {a: run("fault-vs-munmap", arch=a).summary() for a in ARCHES}
    fig = counters_figure(runs)
    assert fig.layout.meta["arches"] == list(ARCHES)
    assert len(fig.data) == 2 * len(ARCHES)
    for arch, (outcomes, aborts) in zip(
        ARCHES, zip(fig.data[::2], fig.data[1::2], strict=True), strict=True
    ):
        s = runs[arch]
        assert list(outcomes.x) == [
            "VMA_LOCK_SUCCESS",
            "VMA_LOCK_ABORT",
            "VMA_LOCK_RETRY",
            "VMA_LOCK_MISS",
        ]
        assert list(outcomes.y) == [s["vma_lock"][k] for k in ("success", "abort", "retry", "miss")]
        assert list(outcomes.text) == [str(v) for v in outcomes.y]
        assert (
            dict(zip(aborts.x, aborts.y, strict=True))["no_vma"] == s["abort_reasons"]["no_vma"] > 0
        )
    patterns = {t.marker.pattern.shape for t in fig.data[::2]}
    assert len(patterns) == len(ARCHES)  # a second cue per arch
    # Snapshots (their "counters") work as input too.
    e = run("fault-vs-munmap")
    fig2 = counters_figure({"x86": snapshot(e.k)})
    assert fig2.data[0].y[0] == e.summary()["vma_lock"]["success"]


# ------------------------------------------------------------------------- palette


def contrast(a: str, b: str) -> float:
    def lum(h: str) -> float:
        r, g, b_ = (int(h.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4))
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b_)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize(
    "table", [LOCK_STATES, SEGMENT_STYLES, LOCK_MODE_STYLES, THREAD_STATES, ARCH_STYLES]
)
def test_palette_readable_and_not_colour_only(table: dict[str, Style]) -> None:
    for key, st in table.items():
        assert contrast(st.colour, st.text) >= 4.5, key  # WCAG AA for text on the fill
    # No two categories look alike: colour and pattern together are unique, and all but
    # at most one (the baseline) carry a text badge.
    looks = [(st.colour, st.pattern) for st in table.values()]
    assert len(set(looks)) == len(looks)
    assert sum(1 for st in table.values() if not st.badge) <= 2
    assert set(SEGMENT_STYLES) == set(SEGMENT_KINDS)


def test_the_compressed_axis_marks_free_stretches_with_overlaps_and_many_vmas() -> None:
    from vmaviz.ui.figures import ADDR_GAP_W, _compressed_axis

    page = 4096
    # A live VMA, a detached one overlapping its tail and running past it, a gap, one more.
    vmas = [
        {"start": 0, "end": 4 * page},
        {"start": 2 * page, "end": 6 * page},
        {"start": 10 * page, "end": 11 * page},
    ]
    xs, gaps = _compressed_axis(vmas)
    assert sorted(xs) == [0, 2 * page, 4 * page, 6 * page, 10 * page, 11 * page]
    assert [(g[2], g[3]) for g in gaps] == [(6 * page, 10 * page)]
    assert gaps[0][1] == ADDR_GAP_W
    assert all(a < b for a, b in itertools.pairwise(xs[k] for k in sorted(xs)))
    # 10,000 VMAs one page apart: 9,999 one-page gaps, found in one pass.
    many = [{"start": 2 * i * page, "end": (2 * i + 1) * page} for i in range(10_000)]
    _xs, gaps = _compressed_axis(many)
    assert len(gaps) == 9_999 and gaps[0][2:] == (page, 2 * page)
