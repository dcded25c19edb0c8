"""The sweep figure: a metric against the first parameter, one line per mode.

Published points (:mod:`vmaviz.sweep.published`) are drawn as hollow markers in their
mode's colour, their source in the hover text. The HTML file embeds plotly.js, so it
opens without network access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from vmaviz.sweep.published import PublishedPoint

#: Line colour per mode, shared by the simulated lines and the published markers.
MODE_COLOURS = {"per_vma": "#1f77b4", "mmap_lock": "#d62728"}
_OTHER_COLOUR = "#7f7f7f"
#: Dash styles that tell apart lines of one mode when more parameters are swept.
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def sweep_figure(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    metric: str,
    published: Sequence[PublishedPoint] | None = None,
    *,
    title: str | None = None,
    metric_label: str | None = None,
    extra_params: Sequence[str] | None = None,
) -> go.Figure:
    """Build the figure.

    Args:
        rows: Sweep rows (parameter columns first, then the result columns).
        x: The column on the x axis.
        metric: The column on the y axis.
        published: Points to overlay (their ``metric`` value against ``threads``).
        title: Figure title (default: scenario, metric and x).
        metric_label: The y axis title (default: ``metric``).
        extra_params: Other parameters that split a mode's line in several (default:
            every column before ``scenario`` other than ``x``).

    Returns:
        The figure.
    """
    if extra_params is None:
        keys = list(rows[0]) if rows else []
        cut = keys.index("scenario") if "scenario" in keys else len(keys)
        extra_params = [k for k in keys[:cut] if k != x]
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (row.get("mode"), *(row.get(p) for p in extra_params))
        groups.setdefault(key, []).append(row)
    numeric_x = all(_is_number(r.get(x)) for r in rows)
    fig = go.Figure()
    dash_of: dict[tuple[Any, ...], str] = {}
    for (mode, *others), members in groups.items():
        if numeric_x:
            members = sorted(members, key=lambda r: r[x])
        other_key = tuple(others)
        dash = dash_of.setdefault(other_key, _DASHES[len(dash_of) % len(_DASHES)])
        label = str(mode)
        if extra_params:
            label += ", " + ", ".join(f"{p}={v}" for p, v in zip(extra_params, others, strict=True))
        hover = [
            "<br>".join(
                [
                    f"{label}",
                    f"{x} {_fmt(r[x])}",
                    f"{metric} {_fmt(r[metric])}",
                    f"sim_ns {_fmt(r.get('sim_ns', ''))}",
                    f"faults {_fmt(r.get('faults', ''))}",
                    f"trace {str(r.get('trace_sha256', ''))[:12]}",
                ]
            )
            for r in members
        ]
        fig.add_trace(
            go.Scatter(
                x=[r[x] for r in members],
                y=[r[metric] for r in members],
                mode="lines+markers",
                name=label,
                line={"color": MODE_COLOURS.get(str(mode), _OTHER_COLOUR), "dash": dash},
                hovertext=hover,
                hoverinfo="text",
            )
        )
    if published:
        _add_published(fig, published, metric)
    scenario = rows[0].get("scenario", "") if rows else ""
    label = metric_label or metric
    fig.update_layout(
        title=title or f"{scenario}: {label} vs {x}",
        xaxis_title=x,
        yaxis_title=label,
        template="plotly_white",
        hovermode="closest",
        legend={"title": "mode"},
    )
    if not numeric_x:
        fig.update_xaxes(type="category")
    return fig


def _add_published(fig: go.Figure, points: Sequence[PublishedPoint], metric: str) -> None:
    by_mode: dict[str, list[PublishedPoint]] = {}
    for p in points:
        by_mode.setdefault(p.mode, []).append(p)
    for mode, members in by_mode.items():
        members = sorted(members, key=lambda p: p.threads)
        hover = [
            f"published, {mode}<br>threads {p.threads:,}<br>{metric} {p.value(metric):,}"
            f"<br>source: {p.source}"
            for p in members
        ]
        fig.add_trace(
            go.Scatter(
                x=[p.threads for p in members],
                y=[p.value(metric) for p in members],
                mode="markers",
                name=f"published: {mode}",
                marker={
                    "color": MODE_COLOURS.get(mode, _OTHER_COLOUR),
                    "symbol": "diamond-open",
                    "size": 10,
                    "line": {"width": 2},
                },
                hovertext=hover,
                hoverinfo="text",
            )
        )


def write_html(fig: go.Figure, path: str | Path) -> None:
    """Write a standalone HTML file with plotly.js inside (no CDN, works offline)."""
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, include_mathjax=False)
