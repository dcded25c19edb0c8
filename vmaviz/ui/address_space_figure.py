"""A compressed linear view of a process address space.

A real x86-64 address space spans 128 TiB while many VMAs are a page or two, so a
true-scale bar would show nothing. Instead each VMA gets a width that grows with the
logarithm of its size, free gaps get a fixed narrow slot (a ``≈`` marks gaps of
1 GiB or more), and the order along the bar is the address order. Colour encodes
the protection (Okabe-Ito palette); the protection is also written on the bar where
it fits, guard areas are hatched, and names sit above and below the bar.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from vmaviz.ui.fmt import hexaddr, human_size
from vmaviz.ui.tree_figure import FONT_FAMILY, OKABE_ITO

PAGE_SIZE = 4096
BIG_GAP = 1 << 30

#: Protection → (fill colour, bar pattern, legend label). Pattern is a second cue.
PROT_STYLE: dict[str, tuple[str, str, str]] = {
    "r": (OKABE_ITO["sky_blue"], "", "r--  read-only"),
    "rw": (OKABE_ITO["orange"], "", "rw-  read/write"),
    "rx": (OKABE_ITO["bluish_green"], "", "r-x  code"),
    "rwx": (OKABE_ITO["vermillion"], "x", "rwx  writable code"),
    "none": ("#FFFFFF", "/", "---  no access (guard)"),
}
PROT_TEXT = {"r": "r--", "rw": "rw-", "rx": "r-x", "rwx": "rwx", "none": "---"}
_FREE = "#E6E6E6"

FIG_WIDTH = 1320
PLOT_PX = FIG_WIDTH - 40
BAR_H = 0.8
ROW_STEP = 0.6
FIRST_ROW = 0.38  # distance from the bar edge to the first label row
GAP_W = 0.9
FONT_SIZE = 15
CHAR_W = FONT_SIZE * 0.6
MAX_ROWS = 4


@dataclass(frozen=True)
class _Label:
    centre: float
    text: str
    band: int  # +1 above the bar, -1 below
    row: int
    lo: float
    hi: float


def _vma_width(nbytes: int) -> float:
    pages = max(nbytes // PAGE_SIZE, 1)
    return 1.0 + math.log2(pages)


def _clear(
    placed: Sequence[_Label], band: int, row: int, lo: float, hi: float, c: float, pad: float
) -> int:
    """0 if the label fits cleanly, 1 if only leader lines cross it, 2 if text overlaps."""
    worst = 0
    for p in placed:
        if p.band != band:
            continue
        if p.row == row and lo < p.hi + pad and p.lo < hi + pad:
            return 2
        if (p.row > row and lo - pad <= p.centre <= hi + pad) or (
            p.row < row and p.lo - pad <= c <= p.hi + pad
        ):
            worst = 1
    return worst


def _place_labels(items: Sequence[tuple[float, str]], total: float) -> list[_Label]:
    """Put each name above or below the bar, in the lowest row free of overlaps.

    Left to right, each label takes the band and row with no text overlap and, if
    possible, no leader line crossing its text; among those, the row nearest the bar.
    """
    units_per_px = total / PLOT_PX
    placed: list[_Label] = []
    for centre, text in items:
        half = (len(text) * CHAR_W + 8) * units_per_px / 2
        lo = min(max(centre - half, 0.0), max(total - 2 * half, 0.0))
        hi = lo + 2 * half
        best: tuple[int, int, int] | None = None  # (crossing, row, band order)
        for row in range(len(items) + 1):
            for order, band in enumerate((1, -1)):
                score = _clear(placed, band, row, lo, hi, centre, 8 * units_per_px)
                if score == 2:
                    continue
                key = (score if row < MAX_ROWS else 0, row, order)
                if best is None or key < best:
                    best = key
            if best is not None and (best[0] == 0 or row >= MAX_ROWS):
                break
        assert best is not None
        _, row, order = best
        placed.append(_Label(centre, text, (1, -1)[order], row, lo, hi))
    return placed


def address_space_figure(
    vmas: Sequence[tuple[str, int, int]], prots: Sequence[str] | None = None
) -> go.Figure:
    """Figure of ``vmas`` (``(name, start, end_exclusive)``) in address order.

    ``prots`` gives each VMA's protection (``none, r, rw, rx, rwx``), same order as
    ``vmas``; without it all VMAs are drawn as ``rw``.
    """
    prot_of = list(prots) if prots is not None else ["rw"] * len(vmas)
    if len(prot_of) != len(vmas):
        raise ValueError(f"got {len(vmas)} VMAs but {len(prot_of)} protections")
    order = sorted(range(len(vmas)), key=lambda i: vmas[i][1])

    # Segments along the compressed axis.
    x = 0.0
    bars: dict[str, tuple[list[float], list[float], list[str]]] = {}
    free_base: list[float] = []
    free_w: list[float] = []
    free_hover: list[str] = []
    marks_x: list[float] = []
    marks_text: list[str] = []
    names: list[tuple[float, str]] = []
    addr_x: list[float] = []
    addr_text: list[str] = []
    prev_end: int | None = None
    for i in order:
        name, start, end = vmas[i]
        prot = prot_of[i]
        ptext = PROT_TEXT.get(prot, prot)
        if prev_end is not None and start > prev_end:
            gap = start - prev_end
            free_base.append(x)
            free_w.append(GAP_W)
            free_hover.append(f"free: [{hexaddr(prev_end)}, {hexaddr(start)})<br>{human_size(gap)}")
            if gap >= BIG_GAP:
                marks_x.append(x + GAP_W / 2)
                marks_text.append("≈")
            x += GAP_W
        if prev_end is None or start - prev_end >= BIG_GAP:
            addr_x.append(x)
            addr_text.append(hexaddr(start))
        w = _vma_width(end - start)
        base, width, hover = bars.setdefault(prot, ([], [], []))
        base.append(x)
        width.append(w)
        hover.append(
            f"<b>{html.escape(name)}</b>  {ptext}<br>"
            f"[{hexaddr(start)}, {hexaddr(end)})<br>"
            f"{(end - start) // PAGE_SIZE} pages, {human_size(end - start)}"
        )
        names.append((x + w / 2, name))
        marks_x.append(x + w / 2)
        marks_text.append(ptext)
        x += w
        prev_end = end
    total = max(x, 1.0)
    units_per_px = total / PLOT_PX

    # Protection written on the bar where it fits (the "≈" gap marks always do).
    fits = [
        t == "≈" or (len(t) * CHAR_W + 6) * units_per_px <= _width_at(bars, mx)
        for mx, t in zip(marks_x, marks_text, strict=True)
    ]
    marks_x = [m for m, ok in zip(marks_x, fits, strict=True) if ok]
    marks_text = [t for t, ok in zip(marks_text, fits, strict=True) if ok]

    labels = _place_labels(names, total)
    rows_above = max((lb.row + 1 for lb in labels if lb.band > 0), default=0)
    rows_below = max((lb.row + 1 for lb in labels if lb.band < 0), default=0)
    label_y = [lb.band * (BAR_H / 2 + FIRST_ROW + lb.row * ROW_STEP) for lb in labels]
    lead_x: list[float | None] = []
    lead_y: list[float | None] = []
    for lb, y in zip(labels, label_y, strict=True):
        lead_x.extend([lb.centre, lb.centre, None])
        lead_y.extend([lb.band * BAR_H / 2, y - lb.band * 0.2, None])
    addr_y = -(BAR_H / 2 + FIRST_ROW + rows_below * ROW_STEP)
    # Room on the right for the last address label (drawn rightwards from its x).
    right = max(
        [
            total,
            *(
                (ax + len(t) * CHAR_W * units_per_px)
                for ax, t in zip(addr_x, addr_text, strict=True)
            ),
        ]
    )

    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            orientation="h",
            y=[0.0] * len(free_base),
            x=free_w,
            base=free_base,
            width=BAR_H * 0.5,
            marker={"color": _FREE, "line": {"color": "#BBBBBB", "width": 1}},
            name="free (no VMA)",
            hovertext=free_hover,
            hoverinfo="text",
        )
    )
    for prot in (*PROT_STYLE, *sorted(set(bars) - set(PROT_STYLE))):
        if prot not in bars:
            continue
        base, width, hover = bars[prot]
        colour, pattern, legend = PROT_STYLE.get(prot, (OKABE_ITO["grey"], "", prot))
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=[0.0] * len(base),
                x=width,
                base=base,
                width=BAR_H,
                marker={
                    "color": colour,
                    "line": {"color": "#000000", "width": 1},
                    "pattern": {"shape": pattern, "fgcolor": "#000000"},
                },
                name=legend,
                hovertext=hover,
                hoverinfo="text",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=lead_x,
            y=lead_y,
            mode="lines",
            line={"color": "#777777", "width": 1},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[(lb.lo + lb.hi) / 2 for lb in labels],
            y=label_y,
            mode="text",
            text=[html.escape(lb.text) for lb in labels],
            textfont={"family": FONT_FAMILY, "size": FONT_SIZE, "color": "#000000"},
            showlegend=False,
            hoverinfo="skip",
            name="names",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=marks_x + addr_x,
            y=[0.0] * len(marks_x) + [addr_y] * len(addr_x),
            mode="text",
            text=marks_text + addr_text,
            textposition=["middle center"] * len(marks_x) + ["middle right"] * len(addr_x),
            textfont={
                "family": FONT_FAMILY,
                "size": [FONT_SIZE + 8 if t == "≈" else FONT_SIZE - 2 for t in marks_text]
                + [FONT_SIZE - 2] * len(addr_x),
                "color": "#000000",
            },
            showlegend=False,
            hoverinfo="skip",
            name="marks",
        )
    )
    top = BAR_H / 2 + FIRST_ROW + max(rows_above - 1, 0) * ROW_STEP + 0.3
    bottom = addr_y - 0.3
    px_per_unit_y = 42
    fig.update_layout(
        barmode="overlay",
        width=FIG_WIDTH,
        height=int((top - bottom) * px_per_unit_y) + 60,
        autosize=False,
        margin={"l": 20, "r": 20, "t": 50, "b": 10},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font={"family": FONT_FAMILY, "size": FONT_SIZE, "color": "#000000"},
        hovermode="closest",
        hoverlabel={"font": {"family": FONT_FAMILY, "size": FONT_SIZE}},
        legend={
            "orientation": "h",
            "x": 0,
            "y": 1,
            "xanchor": "left",
            "yanchor": "bottom",
            "traceorder": "normal",
        },
        xaxis={"visible": False, "range": [-0.2, right + 0.2], "fixedrange": True},
        yaxis={"visible": False, "range": [bottom, top], "fixedrange": True},
    )
    return fig


def _width_at(bars: dict[str, tuple[list[float], list[float], list[str]]], x: float) -> float:
    """Width of the VMA bar whose centre is ``x`` (0 if none)."""
    for base, width, _hover in bars.values():
        for b, w in zip(base, width, strict=True):
            if abs(b + w / 2 - x) < 1e-9:
                return w
    return 0.0
