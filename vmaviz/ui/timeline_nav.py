"""The statistics of a time range selected on the timeline (shift-drag on the lanes).

The browser (``assets/lanes.js``) sends the range only when it changes, in the Store
``timeline-range`` (``{"side", "t0", "t1"}`` in µs); the server answers with a small
table per side (:func:`stats_table`) computed from the run's trace by
:func:`vmaviz.engine.flows.range_stats`. The wait intervals that needs are built
once per run and kept with the run's other derived data.
"""

from __future__ import annotations

import math
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update

from vmaviz.engine.export import synced_trace, thread_names
from vmaviz.engine.flows import lock_waits, range_stats
from vmaviz.ui.session import RunData, RunStore

#: The range's ends in µs must lie in [0, this] (a week of simulated time).
MAX_US = 7 * 24 * 3600 * 1e6
#: At most this many wait rows are listed (the longest).
MAX_ROWS = 40


def parse_range(data: Any, sides: list[str]) -> tuple[str, float, float] | str | None:
    """The side and ends (µs) of a ``timeline-range`` value, or why it is refused.

    Returns:
        ``(side, t0, t1)`` with ``t0 < t1``; ``None`` for "no range" (cleared); or an
        error message for a value that is not a range of this page.
    """
    if data is None:
        return None
    if not isinstance(data, dict):
        return "the selected range is not an object"
    side, t0, t1 = data.get("side"), data.get("t0"), data.get("t1")
    if side not in sides:
        return "the selected range names no timeline on this page"
    if t0 is None and t1 is None:
        return None
    ok = all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
        for x in (t0, t1)
    )
    if not ok:
        return "the selected range's ends are not numbers"
    lo, hi = sorted((float(t0), float(t1)))  # type: ignore[arg-type]
    if lo < 0 or hi > MAX_US:
        return f"the selected range must lie within 0 and {MAX_US:.0f} µs"
    if hi <= lo:
        return None
    return str(side), lo, hi


def _fmt_ns(ns: int) -> str:
    return f"{ns / 1000:,.3f} µs"


def stats_table(run: RunData, stats: dict[str, Any]) -> html.Div:
    """The range statistics as a small captioned summary (waits, faults, fallbacks)."""
    span = stats["t1_ns"] - stats["t0_ns"]
    head = html.P(
        f"Selected {_fmt_ns(stats['t0_ns'])} → {_fmt_ns(stats['t1_ns'])} "
        f"({_fmt_ns(span)}, {stats['steps']:,} steps). Shift-drag again to change, "
        "Escape to clear.",
        className="range-head",
    )
    waits = stats["waits"][:MAX_ROWS]
    wait_rows = [
        html.Tr(
            [
                html.Td(w["thread"]),
                html.Td(w["lock"]),
                html.Td(_fmt_ns(w["ns"])),
                html.Td(w["count"]),
            ]
        )
        for w in waits
    ]
    wait_table = (
        html.Table(
            [
                html.Caption("Time waiting on each lock in the range"),
                html.Thead(
                    html.Tr(
                        [html.Th("thread"), html.Th("lock"), html.Th("waited"), html.Th("waits")]
                    )
                ),
                html.Tbody(wait_rows),
            ],
            className="range-waits",
        )
        if waits
        else html.P("No thread waited on a lock in this range.", className="range-waits-none")
    )
    more = len(stats["waits"]) - len(waits)
    faults = [html.Li(f"{f['what']}: {f['count']:,}") for f in stats["faults"]]
    faults += [
        html.Li(f"fell back to mmap_lock ({a['reason']}): {a['count']:,}") for a in stats["aborts"]
    ]
    attrs: dict[str, Any] = {"data-t0": str(stats["t0_ns"]), "data-t1": str(stats["t1_ns"])}
    return html.Div(
        [
            head,
            wait_table,
            html.P(f"{more} shorter waits not listed.", className="hint") if more > 0 else None,
            html.H4("Faults and VMA-lock outcomes in the range"),
            html.Ul(faults, className="range-faults")
            if faults
            else html.P("No fault in this range."),
        ],
        className="range-stats-body",
        **attrs,
    )


def compute(store: RunStore, run: RunData, t0_us: float, t1_us: float) -> dict[str, Any]:
    """:func:`range_stats` for ``run`` between two times in µs (waits cached per run)."""
    waits = store.get_or_build(f"waits:{run.key}", lambda: lock_waits(synced_trace(run.engine)))
    locks = {lk.key: str(lk.name) for lk in run.timeline.locks}
    locks.setdefault(0, "mmap_lock")
    return range_stats(
        synced_trace(run.engine),
        waits,
        round(t0_us * 1000),
        round(t1_us * 1000),
        thread_names(run.engine),
        locks,
    )


def register_timeline_nav(app: Dash, store: RunStore) -> None:
    """The range-statistics callback: one answer per range change, nothing per step."""
    from vmaviz.ui.callbacks import runs_of

    @app.callback(
        Output({"type": "range-stats", "side": ALL}, "children"),
        Input("timeline-range", "data"),
        State("run", "data"),
        prevent_initial_call=True,
    )
    def on_range(data: Any, info: Any) -> list[Any]:
        outs = ctx.outputs_list or []
        sides = [o["id"]["side"] for o in outs]
        if not info or not info.get("sides"):
            return [no_update] * len(sides)
        parsed = parse_range(data, sides)
        if parsed is None:
            return [None] * len(sides)
        if isinstance(parsed, str):
            return [html.P(parsed, className="error", role="alert")] * len(sides)
        side, t0, t1 = parsed
        run_sides = [s["side"] for s in info["sides"]]
        if side not in run_sides:
            return [no_update] * len(sides)
        run = runs_of(store, info)[run_sides.index(side)]
        table = stats_table(run, compute(store, run, t0, t1))
        return [table if s == side else no_update for s in sides]


__all__ = ["MAX_ROWS", "MAX_US", "compute", "parse_range", "register_timeline_nav", "stats_table"]
