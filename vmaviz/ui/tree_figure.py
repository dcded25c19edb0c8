"""Draw a maple tree dump the way the kernel holds it.

Input is the dict returned by ``vmaviz.model.maple.MapleTree.dump()``::

    {"height": H, "root": NODE | None}
    leaf:     {"type": "leaf64", "min": m, "max": M,
               "entries": [[first, last, entry_id | None], ...]}
    internal: {"type": "arange64", "min": m, "max": M,
               "gaps": [g0, ...], "children": [NODE, ...]}

Every node is a box: a header band (node type, slot usage, ``[min, max]``), then one
row per used slot: slot index, pivot (the last index the slot covers) and the slot
content (the VMA name, ``∅`` for a NULL range, or the child's gap for ``arange64``).
Edges run from a parent's slot to the child it points to.

The layout is computed, not simulated: leaves are placed left to right in index
order, each parent is centred over its children and rows go down by depth, all in
pixel units, so the same dump always yields the same coordinates. The figure is a
handful of scatter traces (fills, edges, text, hover points), not one shape per slot.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import plotly.graph_objects as go

from vmaviz.ui.fmt import ellipsize, hexaddr, human_size

MAX_INDEX = 2**64 - 1

#: Slots and pivots per node type on 64-bit kernels (lib/maple_tree.c, mt_slots/mt_pivots).
NODE_SLOTS: dict[str, int] = {"dense": 31, "leaf64": 16, "range64": 16, "arange64": 10}
NODE_PIVOTS: dict[str, int] = {"dense": 0, "leaf64": 15, "range64": 15, "arange64": 9}

#: Okabe-Ito colour-blind-safe palette.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

# Light tints of the palette for large filled areas, with black text on top.
_INTERNAL_HEADER = "#9CC7E6"  # blue tint
_INTERNAL_BODY = "#E3EFF8"
_LEAF_HEADER = "#9ED9C4"  # bluish-green tint
_LEAF_BODY = "#E0F3EC"
_ENTRY_CELL = "#F6D48A"  # orange tint
_NULL_CELL = "#EDEDED"
_CHILD_CELL = "#FFFFFF"
_EDGE = "#4D4D4D"
_TEXT = "#000000"
_TEXT_MUTED = "#555555"

FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
FONT_SIZE = 15
CHAR_W = FONT_SIZE * 0.6  # advance width of a monospace glyph, px

BOX_W = 424
ROW_H = 26
HEADER_ROWS = 2
H_GAP = 32
V_GAP = 64
PAD = 4
MARGIN = 4
NAME_CHARS = 22

RowKind = Literal["entry", "null", "child"]


@dataclass(frozen=True)
class SlotRow:
    """One used slot of a node, as drawn."""

    index: int
    pivot: int
    pivot_implied: bool
    kind: RowKind
    first: int
    last: int
    label: str
    hover: str


@dataclass(frozen=True)
class NodeBox:
    """One tree node placed on the canvas (pixel units, y grows downwards)."""

    path: tuple[int, ...]
    node_type: str
    depth: int
    min: int
    max: int
    x0: float
    y0: float
    x1: float
    y1: float
    rows: tuple[SlotRow, ...]

    @property
    def is_leaf(self) -> bool:
        return all(row.kind != "child" for row in self.rows)

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    def row_y(self, i: int) -> float:
        """Vertical centre of slot row ``i``."""
        return self.y0 + (HEADER_ROWS + i + 0.5) * ROW_H


def _is_internal(node: Mapping[str, Any]) -> bool:
    return "children" in node


def _node_rows(node: Mapping[str, Any], names: Mapping[int, str] | None) -> tuple[SlotRow, ...]:
    node_type = str(node.get("type", "?"))
    n_pivots = NODE_PIVOTS.get(node_type, NODE_SLOTS.get(node_type, 16) - 1)
    rows: list[SlotRow] = []
    if _is_internal(node):
        children: Sequence[Mapping[str, Any]] = node["children"]
        gaps: Sequence[int] = node.get("gaps") or []
        for i, child in enumerate(children):
            first, last = int(child["min"]), int(child["max"])
            gap = int(gaps[i]) if i < len(gaps) else None
            gap_text = f"gap {hexaddr(gap)}" if gap is not None else "→"
            hover = (
                f"slot {i} → child {child.get('type', '?')}<br>[{hexaddr(first)}, {hexaddr(last)}]"
            )
            if gap is not None:
                hover += f"<br>largest NULL range below: {hexaddr(gap)} ({human_size(gap)})"
            rows.append(SlotRow(i, last, i >= n_pivots, "child", first, last, gap_text, hover))
    else:
        for i, (first_, last_, entry) in enumerate(node.get("entries") or []):
            first, last = int(first_), int(last_)
            kind: RowKind
            span = f"[{hexaddr(first)}, {hexaddr(last)}]<br>{human_size(last - first + 1)}"
            if entry is None:
                label, kind = "∅", "null"
                hover = f"slot {i}: NULL<br>{span}"
            else:
                name = names.get(entry) if names and isinstance(entry, int) else None
                label = name if name is not None else f"#{entry}"
                kind = "entry"
                hover = f"slot {i}: entry {entry} {html.escape(label)}<br>{span}"
            rows.append(SlotRow(i, last, i >= n_pivots, kind, first, last, label, hover))
    return tuple(rows)


def layout_tree(dump: Mapping[str, Any], names: Mapping[int, str] | None = None) -> list[NodeBox]:
    """Place every node of ``dump``; nodes are returned in depth-first (pre-)order.

    Leaves get consecutive columns in index order, a parent is centred over its first
    and last child, and each depth level is as tall as its tallest node.
    """
    root = dump.get("root")
    if root is None:
        return []
    if root.get("type") == "direct":
        # A lone entry at index 0 lives in ma_root itself, with no node (height 0).
        root = {"type": "direct", "min": 0, "max": 0, "entries": [[0, 0, root.get("entry")]]}

    # Pass 1: depth-first walk, leaf columns and per-depth heights.
    flat: list[tuple[tuple[int, ...], Mapping[str, Any], int]] = []
    level_h: dict[int, int] = {}

    def walk(node: Mapping[str, Any], path: tuple[int, ...], depth: int) -> None:
        flat.append((path, node, depth))
        n_rows = len(node["children"]) if _is_internal(node) else len(node.get("entries") or [])
        level_h[depth] = max(level_h.get(depth, 0), (HEADER_ROWS + n_rows) * ROW_H)
        if _is_internal(node):
            for i, child in enumerate(node["children"]):
                walk(child, (*path, i), depth + 1)

    walk(root, (), 0)

    level_top: dict[int, float] = {}
    top = 0.0
    for depth in sorted(level_h):
        level_top[depth] = top
        top += level_h[depth] + V_GAP

    # Pass 2: x centres, bottom-up (children before parents: reverse pre-order).
    centre: dict[tuple[int, ...], float] = {}
    column = 0
    for path, node, _depth in flat:
        if not _is_internal(node) or not node["children"]:
            centre[path] = column * (BOX_W + H_GAP) + BOX_W / 2
            column += 1
    for path, node, _depth in reversed(flat):
        if path not in centre:
            kids = [centre[(*path, i)] for i in range(len(node["children"]))]
            centre[path] = (kids[0] + kids[-1]) / 2

    boxes: list[NodeBox] = []
    for path, node, depth in flat:
        rows = _node_rows(node, names)
        cx = centre[path]
        y0 = level_top[depth]
        boxes.append(
            NodeBox(
                path=path,
                node_type=str(node.get("type", "?")),
                depth=depth,
                min=int(node["min"]),
                max=int(node["max"]),
                x0=cx - BOX_W / 2,
                y0=y0,
                x1=cx + BOX_W / 2,
                y1=y0 + (HEADER_ROWS + len(rows)) * ROW_H,
                rows=rows,
            )
        )
    return boxes


def _rect(
    xs: list[float | None], ys: list[float | None], x0: float, y0: float, x1: float, y1: float
) -> None:
    xs.extend([x0, x1, x1, x0, x0, None])
    ys.extend([y0, y0, y1, y1, y0, None])


def _fill_trace(
    name: str, colour: str, xs: list[float | None], ys: list[float | None], legend: bool
) -> go.Scatter:
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        fill="toself",
        fillcolor=colour,
        line={"color": _EDGE, "width": 1},
        name=name,
        legendgroup=name,
        showlegend=legend,
        hoverinfo="skip",
    )


def _row_label(box: NodeBox, row: SlotRow, pivot_w: int) -> str:
    pivot = "max" if row.pivot_implied else hexaddr(row.pivot)
    budget = NAME_CHARS + (18 - pivot_w)
    label = row.label if row.kind == "child" else ellipsize(row.label, budget)
    return f"{row.index:>2} {pivot:>{pivot_w}}  {html.escape(label)}"


def maple_tree_figure(dump: Mapping[str, Any], names: Mapping[int, str] | None = None) -> go.Figure:
    """Build the figure of a maple tree dump (see the module docstring for the format).

    ``names`` maps entry ids to the text shown in their slots (for the mm tree, VMA
    names); entries without a name are shown as ``#id``.
    """
    boxes = layout_tree(dump, names)
    height = int(dump.get("height", 0) or 0)

    fig = go.Figure()
    if not boxes:
        fig.add_annotation(
            text="empty tree: ma_root is NULL (height 0)",
            x=0,
            y=0,
            showarrow=False,
            font={"family": FONT_FAMILY, "size": FONT_SIZE + 2, "color": _TEXT_MUTED},
        )
        fig.update_layout(
            height=200,
            xaxis={"visible": False},
            yaxis={"visible": False},
            plot_bgcolor="white",
            paper_bgcolor="white",
            margin={"l": 10, "r": 10, "t": 10, "b": 10},
        )
        return fig

    fills: dict[str, tuple[list[float | None], list[float | None]]] = {
        key: ([], [])
        for key in ("int_body", "int_head", "leaf_body", "leaf_head", "entry", "null", "child")
    }
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    text_x: list[float] = []
    text_y: list[float] = []
    text: list[str] = []
    text_colour: list[str] = []
    hover_x: list[float] = []
    hover_y: list[float] = []
    hover: list[str] = []

    by_path = {box.path: box for box in boxes}
    for box in boxes:
        internal = not box.is_leaf
        body, head = ("int_body", "int_head") if internal else ("leaf_body", "leaf_head")
        _rect(*fills[body], box.x0, box.y0, box.x1, box.y1)
        _rect(*fills[head], box.x0, box.y0, box.x1, box.y0 + HEADER_ROWS * ROW_H)

        slots = NODE_SLOTS.get(box.node_type)
        if box.node_type == "direct":
            usage = "entry in ma_root, no node"
        elif slots:
            usage = f"{len(box.rows)}/{slots} slots"
        else:
            usage = f"{len(box.rows)} slots"
        role = "root" if not box.path else ("internal" if internal else "leaf")
        node_hover = (
            f"<b>{html.escape(box.node_type)}</b> ({role}, depth {box.depth})<br>"
            f"min {hexaddr(box.min)}<br>max {hexaddr(box.max)}<br>{usage}"
        )
        header_lines = (
            f"<b>{html.escape(box.node_type)}</b>  {usage}",
            f"[{hexaddr(box.min)}, {hexaddr(box.max)}]",
        )
        for k, line in enumerate(header_lines):
            text_x.append(box.x0 + 2 * PAD)
            text_y.append(box.y0 + (k + 0.5) * ROW_H)
            text.append(line)
            text_colour.append(_TEXT)
        for fx in (0.25, 0.75):
            hover_x.append(box.x0 + fx * BOX_W)
            hover_y.append(box.y0 + ROW_H)
            hover.append(node_hover)

        pivot_w = max(
            (3 if row.pivot_implied else len(hexaddr(row.pivot)) for row in box.rows), default=3
        )
        for row in box.rows:
            ry = box.row_y(row.index)
            _rect(
                *fills[row.kind],
                box.x0 + PAD,
                ry - ROW_H / 2 + 1,
                box.x1 - PAD,
                ry + ROW_H / 2 - 1,
            )
            text_x.append(box.x0 + 2 * PAD)
            text_y.append(ry)
            text.append(_row_label(box, row, pivot_w))
            text_colour.append(_TEXT_MUTED if row.kind == "null" else _TEXT)
            for fx in (0.15, 0.5, 0.85):
                hover_x.append(box.x0 + fx * BOX_W)
                hover_y.append(ry)
                hover.append(
                    f"{row.hover}<br><i>in {html.escape(box.node_type)} {hexaddr(box.min)}</i>"
                )
            if row.kind == "child":
                child = by_path[(*box.path, row.index)]
                start_x = box.x0 + (row.index + 0.5) * BOX_W / len(box.rows)
                edge_x.extend([start_x, start_x, child.cx, child.cx, None])
                mid_y = (box.y1 + child.y0) / 2
                edge_y.extend([box.y1, mid_y, mid_y, child.y0, None])

    legend_names = {
        "int_head": "arange64 (internal node)",
        "leaf_head": "leaf64 (leaf node)",
        "entry": "slot → VMA",
        "null": "slot: NULL range ∅",
        "child": "slot → child node",
    }
    colours = {
        "int_body": _INTERNAL_BODY,
        "int_head": _INTERNAL_HEADER,
        "leaf_body": _LEAF_BODY,
        "leaf_head": _LEAF_HEADER,
        "entry": _ENTRY_CELL,
        "null": _NULL_CELL,
        "child": _CHILD_CELL,
    }
    for key, (xs, ys) in fills.items():
        if xs:
            legend = key in legend_names
            fig.add_trace(_fill_trace(legend_names.get(key, key), colours[key], xs, ys, legend))

    fig.add_trace(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": _EDGE, "width": 2},
            name="parent slot → child",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=text_x,
            y=text_y,
            mode="text",
            text=text,
            textposition="middle right",
            textfont={"family": FONT_FAMILY, "size": FONT_SIZE, "color": text_colour},
            name="labels",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=hover_x,
            y=hover_y,
            mode="markers",
            marker={"size": 18, "opacity": 0},
            hovertext=hover,
            hoverinfo="text",
            name="details",
            showlegend=False,
        )
    )

    width = max(box.x1 for box in boxes) + MARGIN
    bottom = max(box.y1 for box in boxes) + MARGIN
    top_margin = 56
    fig.update_layout(
        width=int(width + MARGIN),
        height=int(bottom + MARGIN + top_margin),
        autosize=False,
        margin={"l": 0, "r": 0, "t": top_margin, "b": 0},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font={"family": FONT_FAMILY, "size": FONT_SIZE, "color": _TEXT},
        hovermode="closest",
        hoverlabel={"font": {"family": FONT_FAMILY, "size": FONT_SIZE}},
        legend={
            "orientation": "h",
            "x": 0,
            "y": 1,
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": FONT_SIZE},
        },
        xaxis={"visible": False, "range": [-MARGIN, width], "fixedrange": True},
        yaxis={"visible": False, "range": [bottom, -MARGIN], "fixedrange": True},
        meta={"height": height, "nodes": len(boxes)},
    )
    return fig
