"""Pure figure builders: state in, plotly Figure out.

Every function here takes plain data (a :func:`vmaviz.engine.view.snapshot` dict,
a :class:`~vmaviz.engine.timeline.Timeline`, summaries) and returns a new figure;
nothing is cached and nothing is kept between calls.  Figures are a handful of
traces each (one per category, with many items separated by gaps), never one
layout shape per item, so that a figure with 100,000 items still serialises and
draws quickly.  Colours, patterns and badges come from :mod:`vmaviz.ui.palette`;
each colour has a second cue (a pattern, a text badge, a dash or a symbol).

The timeline is not a figure: the browser draws it on a canvas from
:func:`vmaviz.ui.lanes.timeline_data`. :func:`address_space_figure` bars carry the
VMA id in ``customdata``.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from vmaviz.engine.view import node_summary
from vmaviz.ui.palette import (
    ARCH_STYLES,
    FONT_MONO,
    FONT_SANS,
    FONT_SIZE,
    GRID,
    INK,
    LOCK_STATES,
    MUTED,
    PAPER,
    SMALL_FONT,
    TITLE_FONT,
    TREE_COLOURS,
    VMA_LOCK_COUNTERS,
    Style,
    hexaddr,
    style_of,
)

if TYPE_CHECKING:
    from vmaviz.model.kernel import Kernel

PAGE_SIZE = 4096
#: The width (px) a figure's legend is assumed to wrap in: compare view's column.
LEGEND_PX = 620
ULONG_MAX = 2**64 - 1

#: How "changed by this step" is drawn in the figures: the accent of the panels'
#: ``.changed`` outline (assets/vmaviz.css), never by colour alone: a dotted thick
#: outline and a ``Δ`` badge go with it.
CHANGED_COLOUR = "#E08A00"
CHANGED_DASH = "dot"
CHANGED_BADGE = "Δ"
CHANGED_LABEL = f"{CHANGED_BADGE} changed by this step"


def _simple_white_2d() -> go.layout.Template:
    """plotly's ``simple_white`` template cut down to what 2-D bar/scatter figures use.

    Naming the template makes plotly validate all of it (defaults for ~25 trace
    types, 3-D scenes, polar and geo axes) for every figure: about 20 ms each.
    The parts kept are exactly the ones these figures can show, so they look the
    same.  It is a Template object, built once: passing the same thing as a plain
    dict to ``update_layout`` would merge it key by key (about 200 ms).
    """
    full = pio.templates["simple_white"].to_plotly_json()
    unused = ("polar", "ternary", "scene", "geo", "mapbox", "map")
    return go.layout.Template(
        {
            "layout": {k: v for k, v in full["layout"].items() if k not in unused},
            "data": {k: v for k, v in full["data"].items() if k in ("bar", "scatter", "scattergl")},
        }
    )


TEMPLATE = _simple_white_2d()


def _base_layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": TEMPLATE,
        "plot_bgcolor": PAPER,
        "paper_bgcolor": PAPER,
        "font": {"family": FONT_SANS, "size": FONT_SIZE, "color": INK},
        "hoverlabel": {"font": {"family": FONT_MONO, "size": FONT_SIZE}},
        "hovermode": "closest",
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": FONT_SIZE},
        },
    }
    layout.update(extra)
    return layout


def _top(title: str, legend: Sequence[str], width_px: float) -> dict[str, Any]:
    """Title, legend and top margin: the title on top, the legend rows under it.

    The top margin grows with the number of legend rows the labels need at
    ``width_px``, so the legend never overlaps the title or the plot.
    """
    # A horizontal legend is laid out in columns as wide as its widest entry: the
    # rows are the entries over the columns that fit (estimated from text length).
    rows = 0
    if legend:
        widest = max((len(label) + 5) * FONT_SIZE * 0.6 for label in legend)
        cols = max(1, int(width_px // widest))
        rows = -(-len(legend) // cols)
    top = 64 + rows * 34
    return {
        "title": {
            "text": _esc(title),
            "font": {"size": TITLE_FONT},
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 14},
        },
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1,
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": FONT_SIZE},
            "traceorder": "normal",
        },
        "top": top,
    }


def _pattern(st: Style) -> dict[str, Any]:
    return {"shape": st.pattern, "fgcolor": st.text, "size": 9, "solidity": 0.25}


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


# =====================================================================
# Address space
# =====================================================================

ADDR_GAP_W = 0.8
BIG_GAP = 1 << 30
_LANE_Y = {0: 0.0, 1: -1.5}


def _vma_lane(v: Mapping[str, Any]) -> int:
    """0 for VMAs in the tree, 1 for those on their way out (detached, RCU-pending)."""
    return 1 if v.get("detached") or v.get("state") in ("detached", "rcu_pending") else 0


def vma_badge(v: Mapping[str, Any]) -> str:
    """The text cue of a VMA's lock state: ``W``, ``R2`` (two readers), ``D``, ``RCU``."""
    state = str(v.get("state", "unlocked"))
    if state == "read_locked":
        return f"R{len(v.get('readers') or []) or ''}"
    return style_of(LOCK_STATES, state).badge


def _compressed_axis(vmas: Sequence[Mapping[str, Any]]) -> tuple[dict[int, float], list[Any]]:
    """Address -> x for every VMA boundary, plus the free gaps ``(x0, w, lo, hi)``.

    Each stretch between consecutive boundaries gets a width growing with the log of
    its size when a VMA covers it, and a fixed narrow width when it is free: small
    VMAs stay visible next to huge ones, and address order is kept.
    """
    bounds = sorted({int(v["start"]) for v in vmas} | {int(v["end"]) for v in vmas})
    # How many VMAs cover each stretch: +1 where one starts, -1 where it ends, summed
    # in address order (one pass; a scan of every VMA per stretch was quadratic).
    index = {b: i for i, b in enumerate(bounds)}
    delta = [0] * (len(bounds) + 1)
    for v in vmas:
        delta[index[int(v["start"])]] += 1
        delta[index[int(v["end"])]] -= 1
    xs: dict[int, float] = {}
    gaps: list[Any] = []
    x = 0.0
    depth = 0
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        xs[lo] = x
        depth += delta[i]
        if depth > 0:
            w = 1.0 + math.log2(max((hi - lo) // PAGE_SIZE, 1))
        else:
            w = ADDR_GAP_W
            gaps.append((x, w, lo, hi))
        x += w
    if bounds:
        xs[bounds[-1]] = x
    return xs, gaps


def _label_rows(items: Sequence[tuple[float, str]], units_per_char: float) -> list[int]:
    """Greedy rows for names centred at x: a name goes to the lowest row it fits in."""
    row_end: list[float] = []
    rows: list[int] = []
    for centre, text in items:
        half = (len(text) + 1) * units_per_char / 2
        for r, end in enumerate(row_end):
            if centre - half > end:
                row_end[r] = centre + half
                rows.append(r)
                break
        else:
            row_end.append(centre + half)
            rows.append(len(row_end) - 1)
    return rows


def address_space_figure(snap: Mapping[str, Any]) -> go.Figure:
    """The process address space as one bar of VMAs, coloured by lock state.

    VMAs in the tree are on the main bar; detached and RCU-pending VMAs (unmapped but
    maybe still read by an RCU reader) are on a second lane below, at the addresses
    they had.  Free gaps are drawn narrow (``≈`` marks gaps of 1 GiB or more).  Every
    bar shows its lock badge (``W``, ``R2``, ``D``, ``RCU``) and a fill pattern.

    Args:
        snap: A :func:`vmaviz.engine.view.snapshot` dict.

    Returns:
        The figure; each VMA bar's ``customdata`` is the VMA id.
    """
    vmas = [v for v in snap.get("vmas", []) if v.get("state") != "freed"]
    seq = snap.get("mm_lock_seq")
    xs, gaps = _compressed_axis(vmas)
    total = max(xs.values(), default=1.0) or 1.0
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            orientation="h",
            base=[g[0] for g in gaps],
            x=[g[1] for g in gaps],
            y=[0.0] * len(gaps),
            width=0.35,
            marker={"color": "#E6E6E6", "line": {"color": "#AAAAAA", "width": 1}},
            name="free (no VMA)",
            hovertext=[
                f"free: [{hexaddr(g[2])}, {hexaddr(g[3])})<br>{g[3] - g[2]:,} bytes" for g in gaps
            ],
            hoverinfo="text",
            showlegend=bool(gaps),
        )
    )
    by_state: dict[str, list[Mapping[str, Any]]] = {s: [] for s in LOCK_STATES if s != "freed"}
    for v in vmas:
        by_state.setdefault(str(v.get("state", "unlocked")), []).append(v)
    for state, items in by_state.items():
        st = style_of(LOCK_STATES, state)
        hover = []
        for v in items:
            seq_text = (
                f"vm_lock_seq {v['vm_lock_seq']} {'==' if v['vm_lock_seq'] == seq else '!='}"
                f" mm_lock_seq {seq}"
                if seq is not None and v.get("vm_lock_seq") is not None
                else "per-VMA locks off"
            )
            backing = f"file {v['file']}" if v.get("file") else "anonymous"
            readers = ", ".join(v.get("read_holders") or []) or "none"
            hover.append(
                f"<b>{_esc(v['name'])}</b> (vma{v['id']})  {_esc(st.label)}<br>"
                f"[{hexaddr(v['start'])}, {hexaddr(v['end'])})  "
                f"{(v['end'] - v['start']) // PAGE_SIZE} pages<br>"
                f"{_esc(v.get('flags', ''))}  {_esc(backing)}<br>{seq_text}<br>"
                f"read holders: {_esc(readers)}"
            )
        fig.add_trace(
            go.Bar(
                orientation="h",
                base=_coords([xs[int(v["start"])] for v in items]),
                x=_coords([xs[int(v["end"])] - xs[int(v["start"])] for v in items]),
                y=_coords([_LANE_Y[_vma_lane(v)] for v in items]),
                width=0.8,
                marker={
                    "color": st.colour,
                    "line": {"color": INK, "width": 1.5},
                    "pattern": _pattern(st),
                },
                text=[vma_badge(v) for v in items],
                textposition="inside",
                insidetextanchor="middle",
                textangle=0,
                textfont={"family": FONT_SANS, "size": FONT_SIZE + 2, "color": st.text},
                customdata=[v["id"] for v in items],
                name=f"{st.badge + ': ' if st.badge else ''}{st.label}",
                legendgroup=state,
                hovertext=hover,
                hoverinfo="text",
                showlegend=bool(items),
            )
        )
    # Names above the main bar, below the second lane; "≈" on big gaps. Laid out for
    # the narrowest plot the figure is shown in (compare view's column), so that
    # names never run into each other there.
    plot_px = float(LEGEND_PX - 130)
    units_per_char = total / plot_px * FONT_SIZE * 0.62
    text_x: list[float] = []
    text_y: list[float] = []
    text: list[str] = []
    for lane, sign in ((0, 1.0), (1, -1.0)):
        items2 = sorted(
            (
                ((xs[int(v["start"])] + xs[int(v["end"])]) / 2, str(v["name"]))
                for v in vmas
                if _vma_lane(v) == lane
            ),
            key=lambda it: it[0],
        )
        for (cx, name), row in zip(items2, _label_rows(items2, units_per_char), strict=True):
            text_x.append(cx)
            text_y.append(_LANE_Y[lane] + sign * (0.62 + 0.42 * row))
            text.append(_esc(name))
    for g in gaps:
        if g[3] - g[2] >= BIG_GAP:
            text_x.append(g[0] + g[1] / 2)
            text_y.append(0.0)
            text.append("≈")
    fig.add_trace(
        go.Scatter(
            x=_coords(text_x),
            y=_coords(text_y),
            mode="text",
            text=text,
            textfont={"family": FONT_SANS, "size": FONT_SIZE, "color": INK},
            hoverinfo="skip",
            showlegend=False,
            cliponaxis=False,  # a name at the edge is not cut
            name="names",
        )
    )
    top = max([0.9, *(y + 0.3 for y in text_y)])
    bottom = min([-0.6, *(y - 0.3 for y in text_y)])
    lanes_used = {_vma_lane(v) for v in vmas}
    # The y axis names the lanes; the x axis marks the first address after each gap.
    lane_vals = [_LANE_Y[lane] for lane in sorted(lanes_used)]
    lane_text = [
        "in mm_mt" if lane == 0 else "unmapped,<br>not freed" for lane in sorted(lanes_used)
    ]
    tick_x: list[float] = []
    tick_t: list[str] = []
    gap_ends = {g[0] + g[1] for g in gaps}
    for addr, x in sorted(xs.items()):
        if (not tick_x or x in gap_ends) and any(int(v["start"]) == addr for v in vmas):
            tick_x.append(x)
            tick_t.append(hexaddr(addr))
    n_tree = sum(1 for v in vmas if _vma_lane(v) == 0)
    # Short enough for compare view's column (a plotly title does not wrap).
    title = f"{n_tree} VMA{'s' if n_tree != 1 else ''} in the tree; " + (
        f"mm_lock_seq = {seq}" if seq is not None else "per-VMA locks off"
    )
    head = _top(title, [str(t.name) for t in fig.data if t.showlegend], LEGEND_PX)
    fig.update_layout(
        **_base_layout(
            title=head["title"],
            legend=head["legend"],
            barmode="overlay",
            height=int((top - bottom) * 60) + head["top"] + 50,
            margin={"l": 110, "r": 20, "t": head["top"], "b": 40},
            xaxis={
                "range": [-0.3, total + 0.3],
                "fixedrange": True,
                "tickmode": "array",
                "tickvals": tick_x,
                "ticktext": tick_t,
                "tickfont": {"family": FONT_MONO, "size": SMALL_FONT},
                "showline": False,
                "ticks": "",
            },
            yaxis={
                "range": [bottom, top],
                "fixedrange": True,
                "tickmode": "array",
                "tickvals": lane_vals,
                "ticktext": lane_text,
                "showline": False,
                "ticks": "",
                "tickfont": {"size": SMALL_FONT, "color": MUTED},
            },
            uirevision="address-space",
            meta={"vmas": len(vmas)},
        )
    )
    if not vmas:
        fig.add_annotation(text="no VMAs", x=0.5, y=0, xref="paper", showarrow=False)
    return fig


# =====================================================================
# Maple tree
# =====================================================================

BOX_W = 420
ROW_H = 28
HEADER_ROWS = 2
#: Rows reserved per level: every level is as tall as the fullest possible node, so a
#: node's place never depends on how full its neighbours are.
LEVEL_SLOTS = 16
LEVEL_H = (HEADER_ROWS + LEVEL_SLOTS) * ROW_H
H_GAP = 28
V_GAP = 64
DEAD_GAP = 90
PAD = 4
NODE_SLOTS = {"leaf64": 16, "arange64": 10}


@dataclass(frozen=True)
class SlotBox:
    """One used slot of a drawn node."""

    index: int
    first: int
    last: int
    kind: str  # "null", "child", or the VMA's lock state
    label: str
    hover: str


@dataclass(frozen=True)
class NodeBox:
    """A maple node placed on the canvas (pixel units, y grows downwards)."""

    node_id: int
    node_type: str
    depth: int
    min: int
    max: int
    dead: bool
    x0: float
    y0: float
    rows: tuple[SlotBox, ...]
    path: tuple[int, ...]  # slot path from the root; () for the root and dead nodes

    @property
    def x1(self) -> float:
        return self.x0 + BOX_W

    @property
    def y1(self) -> float:
        return self.y0 + (HEADER_ROWS + len(self.rows)) * ROW_H

    @property
    def cx(self) -> float:
        return self.x0 + BOX_W / 2

    def row_y(self, i: int) -> float:
        return self.y0 + (HEADER_ROWS + i + 0.5) * ROW_H


def _size(nbytes: int) -> str:
    """Binary-prefixed size (``4 KiB``, ``128 TiB``): gaps span up to 2**64 bytes."""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024 or unit == "EiB":
            return f"{size:.0f} {unit}" if size.is_integer() else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _span(lo: int, hi: int) -> str:
    return f"[{hexaddr(lo)}, {hexaddr(hi)}]"


def _slot_rows(node: Mapping[str, Any], vmas: Mapping[int, Mapping[str, Any]]) -> list[SlotBox]:
    rows: list[SlotBox] = []
    if "entries" in node:
        for i, entry in enumerate(node.get("entries") or []):
            first, last, vid = int(entry[0]), int(entry[1]), entry[2]
            name = entry[3] if len(entry) > 3 else None
            if vid is None:
                rows.append(
                    SlotBox(i, first, last, "null", "∅", f"slot {i}: NULL {_span(first, last)}")
                )
                continue
            v = vmas.get(int(vid), {})
            state = str(v.get("state", "unlocked"))
            badge = vma_badge(v) if v else ""
            label = f"{name or f'vma{vid}'}" + (f" [{badge}]" if badge else "")
            rows.append(
                SlotBox(
                    i,
                    first,
                    last,
                    state,
                    label,
                    f"slot {i}: vma{vid} {_esc(name or '')} {_span(first, last)}<br>"
                    f"{_esc(style_of(LOCK_STATES, state).label)}",
                )
            )
        return rows
    lo = int(node["min"])
    children = node.get("children")
    pivots = [int(p) for p in node.get("pivots") or []]
    gaps = list(node.get("gaps") or [])
    ids = list(node.get("child_ids") or [])
    if children is not None:
        his = [int(c["max"]) for c in children]
    else:
        # A dead node has no children to read the ranges from: its pivots give them.
        n = max(len(ids), len(pivots) + 1)
        his = [pivots[i] if i < len(pivots) else int(node["max"]) for i in range(n)]
    for i, hi in enumerate(his):
        gap = gaps[i] if i < len(gaps) else None
        target = f"→ n{ids[i]} " if i < len(ids) and ids[i] is not None else "→ "
        label = f"{target}gap {_size(gap)}" if gap is not None else target
        rows.append(
            SlotBox(
                i,
                lo,
                hi,
                "child",
                label,
                f"slot {i} → child {_span(lo, hi)}<br>largest free range below: "
                f"{f'{hexaddr(gap)} ({_size(gap)})' if gap is not None else '?'}",
            )
        )
        lo = hi + 1
    return rows


def tree_layout(
    snap: Mapping[str, Any], dead: Sequence[Mapping[str, Any]] | None = None
) -> list[NodeBox]:
    """Place every node of the snapshot's maple tree, and the dead nodes beside it.

    Positions depend only on the nodes' ranges, depth and slots, never on node ids:
    leaves take columns in index order, a parent is centred over its first and last
    child, and every level is :data:`LEVEL_H` tall.  Dead nodes (waiting for an RCU
    grace period) go in a strip to the right of the live tree: dead internal nodes on
    the root's level, dead leaves on the leaves' level, each row sorted by range.

    Args:
        snap: A snapshot dict (its ``tree`` and ``vmas``).
        dead: :func:`dead_nodes` of the same kernel, or None.

    Returns:
        Live nodes in pre-order, then dead nodes.
    """
    vmas = {int(v["id"]): v for v in snap.get("vmas", [])}
    root = (snap.get("tree") or {}).get("root")
    flat: list[tuple[tuple[int, ...], Mapping[str, Any], int]] = []

    def walk(node: Mapping[str, Any], path: tuple[int, ...], depth: int) -> None:
        flat.append((path, node, depth))
        for i, child in enumerate(node.get("children") or []):
            walk(child, (*path, i), depth + 1)

    if root is not None:
        walk(root, (), 0)
    centre: dict[tuple[int, ...], float] = {}
    column = 0
    for path, node, _depth in flat:
        if not node.get("children"):
            centre[path] = column * (BOX_W + H_GAP) + BOX_W / 2
            column += 1
    for path, node, _depth in reversed(flat):
        if path not in centre:
            kids = [centre[(*path, i)] for i in range(len(node["children"]))]
            centre[path] = (kids[0] + kids[-1]) / 2
    boxes = [
        NodeBox(
            node_id=int(node.get("id", 0)),
            node_type=str(node.get("type", "?")),
            depth=depth,
            min=int(node["min"]),
            max=int(node["max"]),
            dead=bool(node.get("dead")),
            x0=centre[path] - BOX_W / 2,
            y0=depth * (LEVEL_H + V_GAP),
            rows=tuple(_slot_rows(node, vmas)),
            path=path,
        )
        for path, node, depth in flat
    ]
    if dead:
        leaf_level = max((d for _p, _n, d in flat), default=0)
        left = column * (BOX_W + H_GAP) + (DEAD_GAP if column else 0)
        rows_of: dict[int, list[Mapping[str, Any]]] = {}
        for node in dead:
            level = leaf_level if "entries" in node else 0
            rows_of.setdefault(level, []).append(node)
        for level, nodes in sorted(rows_of.items()):
            nodes = sorted(nodes, key=lambda n: (int(n["min"]), int(n["max"])))
            for k, node in enumerate(nodes):
                boxes.append(
                    NodeBox(
                        node_id=int(node.get("id", 0)),
                        node_type=str(node.get("type", "?")),
                        depth=level,
                        min=int(node["min"]),
                        max=int(node["max"]),
                        dead=True,
                        x0=left + k * (BOX_W + H_GAP),
                        y0=level * (LEVEL_H + V_GAP),
                        rows=tuple(_slot_rows(node, vmas)),
                        path=(),
                    )
                )
    return boxes


def _rect(
    xs: list[float | None], ys: list[float | None], x0: float, y0: float, x1: float, y1: float
) -> None:
    xs.extend([x0, x1, x1, x0, x0, None])
    ys.extend([y0, y0, y1, y1, y0, None])


def dead_nodes(kernel: Kernel) -> list[dict[str, Any]]:
    """Maple nodes replaced by a writer but not yet freed: they wait for a grace period.

    They are no longer reachable from the root, yet an RCU reader that loaded them
    before the replacement may still be reading them.

    Args:
        kernel: The kernel state (its queued ``call_rcu`` callbacks).

    Returns:
        Node dicts shaped like a snapshot's tree nodes without ``children``: leaves
        have ``entries`` ``[first, last, vma_id | None, name | None]``, internal nodes
        ``pivots``, ``gaps`` and ``child_ids``; each also has ``queued_ns`` (when it
        was retired) and ``waiting_for`` (the RCU readers holding the free back).
    """
    from vmaviz.model.maple import Node

    names = kernel.mm.vma_names()
    tnames = {th.tid: th.name for th in kernel.threads}
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for cb in kernel.rcu.pending:
        if cb.kind != "maple_node":
            continue
        for n in cb.payload:
            if n.freed or id(n) in seen:
                continue
            seen.add(id(n))
            d = node_summary(n, names)
            if not n.is_leaf:
                d["child_ids"] = [
                    c.nid if isinstance(c, Node) else None for c in n.slot[: n.data_end() + 1]
                ]
            d["queued_ns"] = cb.queued_ns
            d["waiting_for"] = [tnames.get(t, f"T{t}") for t in sorted(cb.waiting_for)]
            out.append(d)
    return out


def _coords(values: Sequence[float | None]) -> np.ndarray:
    """Coordinates as a float array, None (a break between shapes) as NaN.

    Why: plotly checks a list element by element, which took seconds for the tree
    of 10,000 VMAs; an array is taken as it is, and NaN breaks a line as None does.
    """
    return np.array(values, dtype=float)


_TREE_FILLS = ("internal_head", "internal_body", "leaf_head", "leaf_body", "dead_head", "dead_body")


def maple_tree_figure(
    snap: Mapping[str, Any],
    dead: Sequence[Mapping[str, Any]] | None = None,
    changed: Sequence[int] | None = None,
) -> go.Figure:
    """The mm maple tree as the kernel holds it, plus the dead nodes awaiting RCU.

    Each node is a box: a header (type, node id, slot use, ``[min, max]``) and a row
    per used slot: slot number, pivot (last address it covers) and the VMA name with
    its lock badge, ``∅`` for a NULL range, or, in an ``arange64`` node, the largest
    free range below that child.  Slot cells are coloured by the VMA's lock state.
    Dead nodes are grey with a dashed outline, to the right of the live tree.
    The live nodes the step wrote (``changed``) get a thick dotted accent outline
    and a ``Δ`` badge in their header.

    Args:
        snap: A snapshot dict.
        dead: :func:`dead_nodes` of the same kernel (None: none drawn).
        changed: Ids of the maple nodes this step made or changed
            (:func:`vmaviz.ui.changes.step_changes`'s ``tree``); None: none.

    Returns:
        The figure (pixel coordinates; ``layout.meta`` has ``nodes``, ``dead`` and
        ``changed``, the ids outlined).
    """
    boxes = tree_layout(snap, dead)
    fig = go.Figure()
    if not boxes:
        fig.add_annotation(
            text="empty tree: ma_root is NULL", x=0, y=0, showarrow=False, font={"size": FONT_SIZE}
        )
        fig.update_layout(
            **_base_layout(
                height=200,
                xaxis={"visible": False},
                yaxis={"visible": False},
                meta={"nodes": 0, "dead": 0, "changed": []},
            )
        )
        return fig
    fills: dict[str, tuple[list[float | None], list[float | None]]] = {
        k: ([], []) for k in (*_TREE_FILLS, "null", "child", "dead_entry", *LOCK_STATES)
    }
    dash_x: list[float | None] = []
    dash_y: list[float | None] = []
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    tx: list[float] = []
    ty: list[float] = []
    tt: list[str] = []
    tc: list[str] = []
    hx: list[float] = []
    hy: list[float] = []
    ht: list[str] = []
    marked = {int(i) for i in changed or ()}
    mark_x: list[float | None] = []
    mark_y: list[float | None] = []
    outlined: list[int] = []
    by_path = {b.path: b for b in boxes if not b.dead}
    for b in boxes:
        kind = "dead" if b.dead else "leaf" if b.node_type == "leaf64" else "internal"
        _rect(*fills[f"{kind}_body"], b.x0, b.y0, b.x1, b.y1)
        _rect(*fills[f"{kind}_head"], b.x0, b.y0, b.x1, b.y0 + HEADER_ROWS * ROW_H)
        if b.dead:
            _rect(dash_x, dash_y, b.x0, b.y0, b.x1, b.y1)
        # Only live nodes are marked: a node retired by this step is drawn dead (its
        # replacement, which is live, carries the mark).
        is_marked = not b.dead and b.node_id in marked
        if is_marked:
            # Just outside the box, so the outline never hides the box's own edge.
            _rect(mark_x, mark_y, b.x0 - 3, b.y0 - 3, b.x1 + 3, b.y1 + 3)
            outlined.append(b.node_id)
        slots = NODE_SLOTS.get(b.node_type, 16)
        head = f"<b>{_esc(b.node_type)}</b> n{b.node_id}  {len(b.rows)}/{slots}"
        if b.dead:
            head = f"<b>DEAD</b> {head}"
        if is_marked:
            head = f"{head}  <b>{CHANGED_BADGE}</b>"
        for k, line in enumerate((head, _span(b.min, b.max))):
            tx.append(b.x0 + 2 * PAD)
            ty.append(b.y0 + (k + 0.5) * ROW_H)
            tt.append(line)
            tc.append(MUTED if b.dead else INK)
        role = (
            "dead, waiting for an RCU grace period"
            if b.dead
            else ("root" if not b.path else f"depth {b.depth}")
        )
        node_hover = (
            f"<b>{_esc(b.node_type)}</b> node {b.node_id} ({role})<br>{_span(b.min, b.max)}"
        )
        # One hover point per row, at the box's centre line: with the layout's
        # hoverdistance (half a box) the nearest point anywhere in a row is that
        # row's, so one point covers the row's width (three per row used to be
        # 60% of this figure's bytes on a big tree).
        hx.append(b.cx)
        hy.append(b.y0 + ROW_H)
        ht.append(node_hover)
        width = max((len(hexaddr(r.last)) for r in b.rows), default=3)
        for r in b.rows:
            ry = b.row_y(r.index)
            # A dead node's slots are greyed: they show what a late reader would see.
            cell = "dead_entry" if b.dead and r.kind != "null" else r.kind
            cell = cell if cell in fills else "unlocked"
            _rect(*fills[cell], b.x0 + PAD, ry - ROW_H / 2 + 1, b.x1 - PAD, ry + ROW_H / 2 - 1)
            tx.append(b.x0 + 2 * PAD)
            ty.append(ry)
            tt.append(f"{r.index:>2} {hexaddr(r.last):>{width}} {_esc(r.label)}")
            text_col = style_of(LOCK_STATES, r.kind).text if r.kind in LOCK_STATES else INK
            tc.append(MUTED if r.kind == "null" or b.dead else text_col)
            hx.append(b.cx)
            hy.append(ry)
            ht.append(f"{r.hover}<br><i>in node {b.node_id}</i>")
            if r.kind == "child" and not b.dead:
                child = by_path.get((*b.path, r.index))
                if child is not None:
                    # Out of the parent's bottom edge at the slot's place, then down to
                    # the child: orthogonal edges never cross a box.
                    sx = b.x0 + (r.index + 0.5) * BOX_W / len(b.rows)
                    mid = (b.y1 + child.y0) / 2
                    edge_x.extend([sx, sx, child.cx, child.cx, None])
                    edge_y.extend([b.y1, mid, mid, child.y0, None])
    legend = {
        "internal_head": "arange64 (internal node)",
        "leaf_head": "leaf64 (leaf node)",
        "dead_head": "dead node: freed after an RCU grace period",
        "null": "∅ NULL range (free)",
        "child": "→ child node (gap = largest free range below)",
    }
    for state, st in LOCK_STATES.items():
        legend[state] = f"VMA slot: {st.label}" + (f" [{st.badge}]" if st.badge else "")
    colours = dict(TREE_COLOURS)
    colours.update({s: st.colour for s, st in LOCK_STATES.items()})
    for key, (xs, ys) in fills.items():
        fig.add_trace(
            go.Scatter(
                x=_coords(xs),
                y=_coords(ys),
                mode="lines",
                fill="toself",
                fillcolor=colours.get(key, PAPER),
                line={"color": TREE_COLOURS["edge"], "width": 1},
                name=legend.get(key, key),
                legendgroup=key,
                showlegend=bool(xs) and key in legend,
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=_coords(dash_x),
            y=_coords(dash_y),
            mode="lines",
            line={"color": INK, "width": 2.5, "dash": "dash"},
            name="dead-node outline",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=_coords(mark_x),
            y=_coords(mark_y),
            mode="lines",
            line={"color": CHANGED_COLOUR, "width": 4, "dash": CHANGED_DASH},
            name=CHANGED_LABEL,
            # Listed only when there is something outlined, so the legend does not
            # promise a mark that is not there.
            showlegend=bool(mark_x),
            hoverinfo="skip",
            meta={"changed": outlined},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=_coords(edge_x),
            y=_coords(edge_y),
            mode="lines",
            line={"color": TREE_COLOURS["edge"], "width": 2},
            name="slot → child",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=_coords(tx),
            y=_coords(ty),
            mode="text",
            text=tt,
            textposition="middle right",
            textfont={"family": FONT_MONO, "size": FONT_SIZE - 1, "color": tc},
            name="labels",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=_coords(hx),
            y=_coords(hy),
            mode="markers",
            marker={"size": 20, "opacity": 0},
            hovertext=ht,
            hoverinfo="text",
            name="details",
            showlegend=False,
        )
    )
    right = max(b.x1 for b in boxes)
    bottom = max(b.y1 for b in boxes)
    n_dead = sum(1 for b in boxes if b.dead)
    tree = snap.get("tree") or {}
    title = f"mm->mm_mt: height {tree.get('height', 0)}, {len(boxes) - n_dead} nodes"
    if n_dead:
        title += f"; {n_dead} dead node{'s' if n_dead != 1 else ''} waiting for RCU"
    canvas_w = max(right + 20, 900.0)
    top = _top(title, [str(t.name) for t in fig.data if t.showlegend], canvas_w - 16)
    # The legend goes under the tree: above it, with the title, it could not be given
    # the exact room it takes and overlapped the title or left a gap.
    legend_px = top["top"] - 64
    fig.update_layout(
        **_base_layout(
            title=top["title"],
            legend={**top["legend"], "y": 0, "yanchor": "top"},
            width=int(canvas_w),
            height=int(bottom + 64 + legend_px + 30),
            autosize=False,
            margin={"l": 8, "r": 8, "t": 64, "b": legend_px + 14},
            xaxis={"visible": False, "range": [-8, canvas_w - 8], "fixedrange": True},
            yaxis={"visible": False, "range": [bottom + 8, -8], "fixedrange": True},
            uirevision="maple-tree",
            hoverdistance=BOX_W // 2 + 2 * PAD,
            meta={"nodes": len(boxes) - n_dead, "dead": n_dead, "changed": outlined},
        )
    )
    return fig


# =====================================================================
# Counters
# =====================================================================


def _counters_of(d: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """``(vma_lock, abort_reasons)`` of a summary, a snapshot or a counters dict."""
    src = d.get("counters", d)
    return dict(src.get("vma_lock") or {}), dict(src.get("abort_reasons") or {})


def _bar_texts(vals: Sequence[int], keys: Sequence[str], moved: set[str]) -> list[str]:
    """Each bar's value, with the ``Δ`` badge after it when the step changed it."""
    return [
        f"{v} {CHANGED_BADGE}" if k in moved else str(v) for v, k in zip(vals, keys, strict=True)
    ]


def _marked_bars(marker: dict[str, Any], keys: Sequence[str], moved: set[str]) -> dict[str, Any]:
    """``marker`` with a thick accent outline on the bars of the changed counters.

    Plotly bars have no dashed outline, so the badge in the bar's text is the cue
    that does not rely on colour.
    """
    if not moved.intersection(keys):
        return marker
    return {
        **marker,
        "line": {
            "color": [CHANGED_COLOUR if k in moved else INK for k in keys],
            "width": [4 if k in moved else 1 for k in keys],
        },
    }


def counters_figure(
    per_arch: Mapping[str, Mapping[str, Any]],
    changed: Mapping[str, Sequence[str]] | None = None,
) -> go.Figure:
    """VMA_LOCK_SUCCESS/ABORT/RETRY/MISS per simulated arch, and why aborts happened.

    Args:
        per_arch: arch name -> :meth:`Engine.summary` (or a snapshot, or its
            ``counters``) of a run on that arch.
        changed: arch name -> the counters this step changed on it, as
            ``vma_lock.<key>`` / ``abort_reasons.<reason>``; None: none.

    Returns:
        Two panels of grouped bars, one bar colour and pattern per arch, each bar
        labelled with its value. A bar the step changed has a thick dotted accent
        outline and a ``Δ`` after its value (``layout.meta["changed"]`` lists them
        as ``arch:counter``).
    """
    order = [a for a in ARCH_STYLES if a in per_arch] + sorted(set(per_arch) - set(ARCH_STYLES))
    reasons: list[str] = []
    for arch in order:
        for r in _counters_of(per_arch[arch])[1]:
            if r not in reasons:
                reasons.append(r)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.42, 0.58],
        horizontal_spacing=0.08,
        subplot_titles=(
            "VMA lock outcomes (/proc/vmstat vma_lock_*)",
            "Why lock_vma_under_rcu gave up (VMA_LOCK_ABORT)",
        ),
    )
    marked: list[str] = []
    for arch in order:
        st = style_of(ARCH_STYLES, arch)
        counts, aborts = _counters_of(per_arch[arch])
        moved = set((changed or {}).get(arch, ()))
        marker = {"color": st.colour, "line": {"color": INK, "width": 1}, "pattern": _pattern(st)}
        vals = [int(counts.get(k, 0)) for k in VMA_LOCK_COUNTERS]
        keys = [f"vma_lock.{k}" for k in VMA_LOCK_COUNTERS]
        marked.extend(f"{arch}:{k}" for k in keys if k in moved)
        fig.add_trace(
            go.Bar(
                x=list(VMA_LOCK_COUNTERS.values()),
                y=vals,
                text=_bar_texts(vals, keys, moved),
                textposition="outside",
                marker=_marked_bars(marker, keys, moved),
                name=st.label if arch in ARCH_STYLES else arch,
                legendgroup=arch,
                hovertemplate=f"{_esc(arch)} %{{x}}: %{{y}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        avals = [int(aborts.get(r, 0)) for r in reasons]
        akeys = [f"abort_reasons.{r}" for r in reasons]
        marked.extend(f"{arch}:{k}" for k in akeys if k in moved)
        fig.add_trace(
            go.Bar(
                x=reasons,
                y=avals,
                text=_bar_texts(avals, akeys, moved),
                textposition="outside",
                marker=_marked_bars(marker, akeys, moved),
                name=arch,
                legendgroup=arch,
                showlegend=False,
                hovertemplate=f"{_esc(arch)} abort %{{x}}: %{{y}}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    fig.update_layout(
        **_base_layout(
            barmode="group",
            height=480,
            margin={"l": 60, "r": 20, "t": 120, "b": 110},
            uirevision="counters",
            meta={"arches": order, "changed": marked},
        )
    )
    if marked:
        # A legend entry for the mark: an empty trace drawn as the outline looks.
        fig.add_trace(
            go.Bar(
                x=[None],
                y=[None],
                name=CHANGED_LABEL,
                marker={
                    "color": PAPER,
                    "line": {"color": CHANGED_COLOUR, "width": 4},
                    "pattern": {"shape": "."},
                },
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    fig.update_layout(legend={"y": 1.12})
    fig.update_yaxes(title_text="events", rangemode="tozero", gridcolor=GRID, showgrid=True)
    fig.update_xaxes(tickangle=-30, tickfont={"family": FONT_MONO, "size": SMALL_FONT + 1})
    return fig


__all__ = [
    "CHANGED_LABEL",
    "NodeBox",
    "SlotBox",
    "address_space_figure",
    "counters_figure",
    "dead_nodes",
    "maple_tree_figure",
    "tree_layout",
    "vma_badge",
]
