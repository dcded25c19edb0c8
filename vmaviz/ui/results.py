"""The Results page: the model's runs beside the published measurements.

Four figures, each with a short explanation and its shape targets met or missed:

* pft on one shared VMA and pft with one VMA per thread (faults/s against threads,
  simulated lines for both modes beside Punit Agrawal's points, calibration.md §1b/§1c);
* the Android app launch (launch time per mode, with the cover letter's "up to 20%");
* TCP zerocopy receive against an madvise writer (the receivers' blocked time per
  mode, on the 6.4 receive path and with the 6.5 patch the published numbers are for).

The data is ``data/results/*.csv`` (``python -m vmaviz.results.build``). A
"Recompute" button re-runs the pft sweeps in a background thread with a progress
bar; the results go to the shared cache under the page's job id, never into the
repository.

Mounting: ``results_layout()`` goes in the page built for each request (e.g. a child
of :func:`vmaviz.ui.layout.serve_layout`, after the glossary; each call makes a new
job id, so every browser tab recomputes on its own), and
:func:`vmaviz.ui.app_factory.create_app` calls
``register_results_callbacks(app, flask_cache)`` after its other callbacks. The
section must be in the layout function that is *first* assigned to ``app.layout``:
Dash keeps that function's first output as its validation layout.

One recompute runs at a time per server: a click queues the page's job
(:class:`RecomputeQueue`, at most :data:`MAX_QUEUED` waiting, FIFO) and one thread
per process runs the queue, taking a lock in the shared cache before each job so
that the workers of one server also take turns.

Nothing here is module-level mutable state: the queue belongs to the app, and the
job's progress and rows live in the flask cache (a file cache or Redis shared by
every worker), so under ``gunicorn -w 2`` the thread runs in whichever worker took
the click while the other worker can answer the progress polls.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, cast

import plotly.graph_objects as go
from dash import Input, Output, State, ctx, dcc, html, no_update

from vmaviz.results import build as B
from vmaviz.sweep.core import Progress
from vmaviz.sweep.executors import make_executor
from vmaviz.sweep.published import PublishedPoint, load_published
from vmaviz.ui.components import GRAPH_CONFIG, aria, aria_live, button
from vmaviz.ui.palette import (
    FONT_SANS,
    FONT_SIZE,
    GRID,
    INK,
    MUTED,
    OKABE_ITO,
    PAPER,
    SMALL_FONT,
    format_ns,
)

if TYPE_CHECKING:
    import dash
    from flask_caching import Cache

#: The page section's id: link to it with ``href="#results"``.
RESULTS_ID: Final = "results"
#: Milliseconds between progress polls while a recompute runs.
POLL_MS: Final = 500
#: Seconds the job's status and rows stay in the cache.
JOB_TIMEOUT: Final = 6 * 3600
#: Recomputes that may wait behind the running one in a server process; a click
#: beyond that is refused with a message (each recompute is an 11 s sweep).
MAX_QUEUED: Final = 4
#: The lock that lets one recompute run at a time across every worker sharing the
#: cache. Its holder refreshes it on each progress report, so the lock of a worker
#: that died expires after this many seconds.
SERVER_LOCK: Final = "results:lock:server"
SERVER_LOCK_TIMEOUT: Final = 120
#: Seconds between looks at the server lock while another worker's recompute runs.
LOCK_POLL: Final = 1.0
#: A running job whose progress has not moved for this long is taken as dead (its
#: worker exited); the next click starts it again. The longest single run takes ~3 s.
STALE_AFTER: Final = 300.0

#: The pft figures, in page order: sweep name -> panel title.
PFT_TITLES: Final = MappingProxyType(
    {
        "pft-single-vma": "pft-threads, one shared VMA (worst case for per-VMA locks)",
        "pft-per-thread-vma": "pft, one VMA per thread (best case for per-VMA locks)",
    }
)
#: Who measured each published dataset, for the hover text.
PUBLISHED_WHO: Final = MappingProxyType(
    {
        "pft_threads_single_vma": "Punit Agrawal, 2023-02-15",
        "pft_per_thread_vma": "Punit Agrawal, 2023-02-28",
    }
)
PUBLISHED_MACHINE: Final = "2-socket Xeon 8336C (Ice Lake)"


@dataclass(frozen=True)
class ModeStyle:
    """How one locking mode is drawn: colour plus a second cue (dash, symbol, pattern).

    Simulated values are lines with filled markers (or solid bars); published values
    are open markers without a line, in the same colour.
    """

    label: str
    colour: str
    dash: str
    symbol: str
    open_symbol: str
    pattern: str


MODE_STYLES: Final = MappingProxyType(
    {
        "mmap_lock": ModeStyle(
            "mmap_lock only", OKABE_ITO["black"], "dash", "square", "square-open", "/"
        ),
        "per_vma": ModeStyle(
            "per-VMA locks", OKABE_ITO["blue"], "solid", "circle", "circle-open", ""
        ),
    }
)
PUBLISHED_SIZE = 13
BAND_FILL = "#BBBBBB"

Row = dict[str, Any]
Runner = Callable[[Progress], dict[str, list[Row]]]


# =====================================================================
# Data
# =====================================================================


@dataclass
class PageData:
    """What the page shows, read from ``data/results``.

    Attributes:
        sweeps: pft sweep name -> rows (empty when the file is missing).
        android: Android launch rows.
        tcp: TCP zerocopy rows.
        targets: The target table (``data/results/targets.csv``).
        missing: Files that were not found.
    """

    sweeps: dict[str, list[Row]] = field(default_factory=dict)
    android: list[Row] = field(default_factory=list)
    tcp: list[Row] = field(default_factory=list)
    targets: list[Row] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def load_page_data(directory: Path = B.RESULTS_DIR) -> PageData:
    """Read every results file; a missing file leaves its part empty."""
    data = PageData()
    tables: dict[str, list[Row]] = {}
    for key, name in B.FILES.items():
        path = directory / name
        if path.is_file():
            tables[key] = B.read_rows(path)
        else:
            tables[key] = []
            data.missing.append(name)
    data.sweeps = {name: tables[name] for name in PFT_TITLES}
    data.android, data.tcp, data.targets = tables["android"], tables["tcp"], tables["targets"]
    return data


def targets_of(targets: Sequence[Mapping[str, Any]], group: str, source: str) -> list[Row]:
    """The target rows of one page section from one source."""
    return [dict(t) for t in targets if t.get("group") == group and t.get("source") == source]


def headline_targets(targets: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Each target once: the pft ones checked on the sweeps, the rest from calibration.

    ``targets.csv`` holds the pft targets twice (on the sweeps and as ``bench
    calibration`` measures them); the page counts the sweep ones, which it plots.
    """
    pft = {"pft-single-vma", "pft-per-thread-vma"}
    return [
        dict(t) for t in targets if (t.get("group") in pft) == (t.get("source") == B.SOURCE_SWEEP)
    ]


def sweep_targets(sweeps: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Row]:
    """The pft targets checked on sweep rows (as in ``targets.csv``, source ``sweep``)."""
    checks = B.pft_checks(sweeps.get("pft-single-vma"), sweeps.get("pft-per-thread-vma"))
    return B.target_rows(checks, B.SOURCE_SWEEP)


# =====================================================================
# Figures
# =====================================================================


def _base_layout(fig: go.Figure, x_title: str, y_title: str, height: int = 460) -> None:
    fig.update_layout(
        # "none" rather than a named template: copying simple_white costs ~80 ms a
        # figure, on every page load; the few axis styles it would set are set below.
        template="none",
        height=height,
        margin={"l": 80, "r": 20, "t": 20, "b": 60},
        font={"family": FONT_SANS, "size": FONT_SIZE, "color": INK},
        paper_bgcolor=PAPER,
        plot_bgcolor=PAPER,
        hovermode="closest",
        hoverlabel={"font": {"family": FONT_SANS, "size": SMALL_FONT}},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "left",
            "x": 0,
            "font": {"size": SMALL_FONT},
        },
    )
    axis = {
        "showgrid": True,
        "gridcolor": GRID,
        "showline": True,
        "linecolor": INK,
        "ticks": "outside",
        "zeroline": False,
        "automargin": True,
    }
    fig.update_xaxes(title_text=x_title, **axis)
    fig.update_yaxes(title_text=y_title, rangemode="tozero", **axis)


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M/s"


def pft_figure(
    rows: Sequence[Mapping[str, Any]], published: Sequence[PublishedPoint], dataset: str = ""
) -> go.Figure:
    """Faults/s against threads: a simulated line per mode and the published points.

    Args:
        rows: Sweep rows (``threads``, ``mode``, ``faults_per_sec``, ...).
        published: The published points of the same workload.
        dataset: The published dataset's name (for the hover text).
    """
    fig = go.Figure()
    for mode, style in MODE_STYLES.items():
        members = sorted((r for r in rows if r.get("mode") == mode), key=lambda r: r["threads"])
        if not members:
            continue
        hover = [
            "<br>".join(
                [
                    f"<b>simulated, {style.label}</b>",
                    f"threads {int(r['threads'])}",
                    f"faults/s {_rate(float(r['faults_per_sec']))}",
                    f"faults {int(r.get('faults', 0)):,} in {format_ns(float(r.get('sim_ns', 0)))}",
                    f"fault latency p99 {format_ns(float(r.get('latency_p99_ns', 0)))}",
                    f"trace {str(r.get('trace_sha256', ''))[:12]}",
                ]
            )
            for r in members
        ]
        fig.add_trace(
            go.Scatter(
                x=[r["threads"] for r in members],
                y=[r["faults_per_sec"] for r in members],
                mode="lines+markers",
                name=f"simulated: {style.label}",
                line={"color": style.colour, "dash": style.dash, "width": 3},
                marker={"color": style.colour, "symbol": style.symbol, "size": 9},
                hovertext=hover,
                hoverinfo="text",
                legendgroup="simulated",
            )
        )
    who = PUBLISHED_WHO.get(dataset, "published")
    for mode, style in MODE_STYLES.items():
        points = sorted((p for p in published if p.mode == mode), key=lambda p: p.threads)
        if not points:
            continue
        hover = [
            "<br>".join(
                [
                    f"<b>published, {style.label}</b>",
                    f"threads {p.threads}",
                    f"faults/s {_rate(p.faults_per_sec)}",
                    f"{who}, {PUBLISHED_MACHINE}",
                    f"source: {p.source}",
                ]
            )
            for p in points
        ]
        fig.add_trace(
            go.Scatter(
                x=[p.threads for p in points],
                y=[p.faults_per_sec for p in points],
                mode="markers",
                name=f"published: {style.label}",
                marker={
                    "color": style.colour,
                    "symbol": style.open_symbol,
                    "size": PUBLISHED_SIZE,
                    "line": {"width": 2, "color": style.colour},
                },
                hovertext=hover,
                hoverinfo="text",
                legendgroup="published",
            )
        )
    _base_layout(fig, "threads (one per simulated CPU)", "page faults per second")
    fig.update_yaxes(tickformat="~s")
    return fig


def _by_mode(rows: Sequence[Mapping[str, Any]], **match: Any) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            out.setdefault(str(r.get("mode")), []).append(r)
    return out


def android_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per mode: ``launch_ns``, ``makespan_ns`` and the UI thread's ``blocked_ns``."""
    out: dict[str, dict[str, int]] = {}
    for mode, members in _by_mode(rows).items():
        main = next((r for r in members if r.get("thread") == "main"), members[0])
        out[mode] = {
            "launch_ns": int(main["launch_ns"]),
            "makespan_ns": int(main["makespan_ns"]),
            "main_blocked_ns": int(main["blocked_ns"]),
            "setup_blocked_ns": sum(
                int(r["blocked_ns"]) for r in members if r.get("role") == "thread-setup"
            ),
        }
    return out


def android_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Launch time per mode as bars, with the published "up to 20%" shorter launch."""
    summary = android_summary(rows)
    fig = go.Figure()
    for mode, style in MODE_STYLES.items():
        s = summary.get(mode)
        if s is None:
            continue
        ms = s["launch_ns"] / 1e6
        fig.add_trace(
            go.Bar(
                x=[style.label],
                y=[ms],
                name=f"simulated: {style.label}",
                marker={
                    "color": style.colour if mode == "per_vma" else "#E8E8E8",
                    "line": {"color": style.colour, "width": 2},
                    "pattern": {"shape": style.pattern, "fgcolor": style.colour},
                },
                text=[f"{ms:.2f} ms"],
                textposition="outside",
                hovertext=[
                    "<br>".join(
                        [
                            f"<b>simulated, {style.label}</b>",
                            f"launch (main done) {format_ns(s['launch_ns'])}",
                            f"main blocked {format_ns(s['main_blocked_ns'])}",
                            f"makespan (all threads) {format_ns(s['makespan_ns'])}",
                            f"thread setup blocked, total {format_ns(s['setup_blocked_ns'])}",
                        ]
                    )
                ],
                hoverinfo="text",
            )
        )
    base = summary.get("mmap_lock")
    if base is not None:
        mm = base["launch_ns"] / 1e6
        pv_label = MODE_STYLES["per_vma"].label
        fig.add_shape(
            type="rect",
            xref="x",
            x0=0.55,
            x1=1.45,
            y0=0.70 * mm,
            y1=0.95 * mm,
            fillcolor=BAND_FILL,
            opacity=0.35,
            line={"width": 1, "dash": "dot", "color": MUTED},
            layer="below",
            showlegend=True,
            name="target: 5-30% shorter than mmap_lock",
        )
        fig.add_trace(
            go.Scatter(
                x=[pv_label],
                y=[0.8 * mm],
                mode="markers",
                name="published: up to 20% shorter (cover letter)",
                marker={
                    "color": MODE_STYLES["per_vma"].colour,
                    "symbol": "diamond-open",
                    "size": 18,
                    "line": {"width": 3, "color": MODE_STYLES["per_vma"].colour},
                },
                hovertext=[
                    "<b>published</b><br>launch up to 20% shorter for apps with ~100 threads"
                    f"<br>= {0.8 * mm:.2f} ms here<br>source: per-VMA lock cover letter"
                    " (PVL v1-v3); no per-app table"
                ],
                hoverinfo="text",
            )
        )
    _base_layout(fig, "", "launch time (ms)", height=420)
    fig.update_layout(barmode="overlay", bargap=0.45)
    return fig


def tcp_summary(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (receive path, mode): the receivers' total and per-thread blocked time."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r.get("receive_path")), str(r.get("mode")))
        entry = out.setdefault(
            key,
            {
                "blocked_ns": 0,
                "per_thread": {},
                "makespan_ns": int(r["makespan_ns"]),
                "mmap_lock_share": float(r["mmap_lock_share"]),
            },
        )
        if r.get("role") == "receiver":
            entry["blocked_ns"] += int(r["blocked_ns"])
            entry["per_thread"][str(r["thread"])] = int(r["blocked_ns"])
    return out


#: Receive path -> its axis label; TCP_PATH_NAMES has the longer hover names.
TCP_PATHS: Final = MappingProxyType({"6.4": "Linux 6.4 path", "6.5": "6.5 patch"})
TCP_PATH_NAMES: Final = MappingProxyType(
    {
        "6.4": "Linux 6.4 receive path (under mmap_read_lock)",
        "6.5": "6.5 patch (receive under the per-VMA lock)",
    }
)


def _tcp_x(path: str, mode: str) -> str:
    return f"{TCP_PATHS.get(path, path)}<br>{MODE_STYLES[mode].label}"


def tcp_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """The receivers' blocked time per mode, on the 6.4 path and with the 6.5 patch."""
    summary = tcp_summary(rows)
    fig = go.Figure()
    for mode, style in MODE_STYLES.items():
        keys = [(p, mode) for p in TCP_PATHS if (p, mode) in summary]
        if not keys:
            continue
        values = [summary[k]["blocked_ns"] / 1e3 for k in keys]
        hover = []
        for k in keys:
            s = summary[k]
            lines = [
                f"<b>simulated, {style.label}</b>",
                TCP_PATH_NAMES[k[0]],
                f"receivers blocked, total {format_ns(s['blocked_ns'])}",
                *(f"{t} {format_ns(ns)}" for t, ns in s["per_thread"].items()),
                f"CPU time in mmap_lock lock/unlock {s['mmap_lock_share']:.2%}",
            ]
            hover.append("<br>".join(lines))
        fig.add_trace(
            go.Bar(
                x=[_tcp_x(*k) for k in keys],
                y=values,
                name=f"simulated: {style.label}",
                marker={
                    "color": style.colour if mode == "per_vma" else "#E8E8E8",
                    "line": {"color": style.colour, "width": 2},
                    "pattern": {"shape": style.pattern, "fgcolor": style.colour},
                },
                text=[f"{v:,.1f} µs" if v else "0 µs" for v in values],
                textposition="outside",
                hovertext=hover,
                hoverinfo="text",
            )
        )
    if ("6.5", "per_vma") in summary:
        colour = MODE_STYLES["per_vma"].colour
        fig.add_trace(
            go.Scatter(
                x=[_tcp_x("6.5", "per_vma")],
                y=[0],
                mode="markers",
                name="published: per-VMA receivers never block (6.5)",
                marker={
                    "color": colour,
                    "symbol": "diamond-open",
                    "size": 18,
                    "line": {"width": 3, "color": colour},
                },
                hovertext=[
                    "<b>published</b><br>with the madvise writer, receivers under the per-VMA"
                    " lock do not block<br>source: per-VMA lock cover letter; commit 7a7f0946"
                    " (calibration.md §5.6)"
                ],
                hoverinfo="text",
                cliponaxis=False,
            )
        )
    _base_layout(fig, "", "receivers blocked, total (µs)", height=440)
    fig.update_layout(barmode="overlay", bargap=0.4)
    order = [_tcp_x(p, m) for p in TCP_PATHS for m in MODE_STYLES if (p, m) in summary]
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    return fig


# =====================================================================
# Explanations
# =====================================================================


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _verdicts(targets: Sequence[Mapping[str, Any]]) -> str:
    """One sentence: which targets were met and which missed, with the numbers."""
    checked = [t for t in targets if t.get("result") in ("PASS", "MISS")]
    if not checked:
        return "No shape target was checked on this data."
    met = [t for t in checked if t["result"] == "PASS"]
    missed = [t for t in checked if t["result"] == "MISS"]
    text = f"Shape targets met: {len(met)} of {len(checked)}."
    if missed:
        parts = [
            f"{_short(t['target'])} (simulated {t['simulated']}, published {t['published']})"
            for t in missed
        ]
        text += " Missed: " + "; ".join(parts) + "."
    return text


def _short(name: str) -> str:
    return name.split(": ", 1)[-1]


def pft_explanation(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    published: Sequence[PublishedPoint],
    targets: Sequence[Mapping[str, Any]],
) -> str:
    """What a pft figure shows and whether its targets are met (a few sentences)."""
    if not rows:
        return "No simulated data: run python -m vmaviz.results.build."
    sim = B.curves(rows)
    pub = B.published_curves(published)
    smm, spv = sim.get("mmap_lock", {}), sim.get("per_vma", {})
    pmm, ppv = pub.get("mmap_lock", {}), pub.get("per_vma", {})
    top = max(set(smm) & set(spv), default=0)
    if name == "pft-single-vma":
        first = (
            "Every thread faults its own slice of one shared anonymous VMA (mmtests"
            " pft-threads, calibration.md §1b): the worst case for per-VMA locks, since"
            " every fault takes the lock of the same VMA."
        )
    else:
        first = (
            "Each thread faults its own VMA (pft with per-thread mappings,"
            " calibration.md §1c): the best case for per-VMA locks, since threads share"
            " nothing but mmap_lock."
        )
    second = ""
    if top and top in pmm and top in ppv:
        second = (
            f" At {top} threads per-VMA locks change the rate by"
            f" {_pct(spv[top] / smm[top] - 1)} in the model and by"
            f" {_pct(ppv[top] / pmm[top] - 1)} on Punit Agrawal's Ice Lake machine."
        )
    third = ""
    if top and top in pmm:
        third = (
            " Absolute rates are not a target: the simulated mmap_lock rate at"
            f" {top} threads is {_rate(smm[top])} against the published {_rate(pmm[top])}."
        )
    return f"{first}{second} {_verdicts(targets)}{third}"


def android_explanation(rows: Sequence[Mapping[str, Any]], targets: Sequence[Row]) -> str:
    """What the Android figure shows and whether its target is met."""
    s = android_summary(rows)
    if "mmap_lock" not in s or "per_vma" not in s:
        return "No simulated data: run python -m vmaviz.results.build."
    mm, pv = s["mmap_lock"], s["per_vma"]
    delta = pv["launch_ns"] / mm["launch_ns"] - 1
    text = (
        "A thread-heavy app launches on 8 CPUs: the UI thread faults in its working set"
        " while 100 new threads map their stacks, TLS and signal stacks under the mmap"
        " write lock (scenarios/android-app-launch.yaml). Launch time (the UI thread done)"
        f" is {format_ns(mm['launch_ns'])} with mmap_lock only, of which"
        f" {format_ns(mm['main_blocked_ns'])} blocked on the lock, and"
        f" {format_ns(pv['launch_ns'])} with per-VMA locks ({_pct(delta)}); the cover letter"
        " reports launches up to 20% faster for apps with ~100 threads. "
    )
    text += _verdicts(targets)
    text += (
        " The gain rests on assumptions no source gives (how often threads are created,"
        " main's share of time in faults, the file-backed share of its working set);"
        " the scenario file states them and how the gain moves with them."
    )
    return text


def tcp_explanation(rows: Sequence[Mapping[str, Any]], targets: Sequence[Row]) -> str:
    """What the TCP figure shows and whether its targets are met."""
    s = tcp_summary(rows)
    need = [(p, m) for p in TCP_PATHS for m in MODE_STYLES]
    if any(k not in s for k in need):
        return "No simulated data: run python -m vmaviz.results.build."

    def b(path: str, mode: str) -> str:
        return format_ns(s[(path, mode)]["blocked_ns"])

    text = (
        "Seven receivers map a payload page with getsockopt(TCP_ZEROCOPY_RECEIVE) while a"
        " tuner thread toggles MADV_HUGEPAGE on the heap under the mmap write lock. On the"
        " Linux 6.4 receive path every receive takes mmap_lock for read, so the receivers"
        f" block in both modes ({b('6.4', 'mmap_lock')} vs {b('6.4', 'per_vma')}); the"
        " published numbers are for the 6.5 path (commit 7a7f0946, run here with the patch"
        f" {B.TCP_PATCH}), where they block {b('6.5', 'mmap_lock')} with mmap_lock only and"
        f" {b('6.5', 'per_vma')} with per-VMA locks. "
    )
    text += _verdicts(targets)
    share_mm = float(s[("6.5", "mmap_lock")]["mmap_lock_share"])
    share_pv = float(s[("6.5", "per_vma")]["mmap_lock_share"])
    if share_mm > 0.01:
        text += (
            f" The CPU share in mmap_lock lock/unlock falls from {share_mm:.2%} to"
            f" {share_pv:.2%}; the mmap_lock-only level is above the published ~0.5%."
            " The share is the lock pair over the per-RPC work, which no source gives"
            " (the scenario's 20 us is an estimate)."
        )
    return text


# =====================================================================
# Layout
# =====================================================================


def _graph(name: str, label: str, figure: go.Figure) -> html.Div:
    return html.Div(
        dcc.Graph(id=f"results-graph-{name}", figure=figure, config=cast(Any, GRAPH_CONFIG)),
        className="graph",
        role="figure",
        **aria(label),
    )


def _result_cell(result: str) -> html.Td:
    mark = {"PASS": "✓ PASS", "MISS": "✗ MISS"}.get(result, "• " + result)
    style = {"fontWeight": "bold"} if result == "MISS" else {}
    return html.Td(mark, style=style)


def targets_table(targets: Sequence[Mapping[str, Any]], with_source: bool = False) -> Any:
    """Targets as a table: target, simulated, published, result (and source)."""
    if not targets:
        return html.P("No targets checked.", className="hint")
    head = ["target", "simulated", "published", "result", *(["source"] if with_source else [])]
    body = []
    for t in targets:
        cells = [
            html.Td(str(t.get("target", ""))),
            html.Td(str(t.get("simulated", ""))),
            html.Td(str(t.get("published", ""))),
            _result_cell(str(t.get("result", ""))),
        ]
        if with_source:
            cells.append(html.Td(str(t.get("source", ""))))
        body.append(html.Tr(cells))
    return html.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(body)],
        className="results-targets",
    )


def pft_text(name: str, rows: Sequence[Row], targets: Sequence[Row], note: str = "") -> list[Any]:
    """The explanation and target table under a pft figure."""
    published = load_published(B.PFT_SWEEPS[name][1])
    parts: list[Any] = [html.P(pft_explanation(name, rows, published, targets))]
    if note:
        parts.append(html.P(note, className="hint"))
    parts.append(targets_table(targets))
    return parts


def pft_panel_figure(name: str, rows: Sequence[Row]) -> go.Figure:
    dataset = B.PFT_SWEEPS[name][1]
    return pft_figure(rows, load_published(dataset), dataset)


def _section(title: str, children: list[Any], section_id: str) -> html.Section:
    return html.Section(
        [html.H3(title, className="panel-title"), *children],
        id=section_id,
        className="panel results-panel",
    )


def recompute_controls(job: str) -> html.Section:
    """The Recompute button, its progress bar and status, the poll timer and the job id."""
    return _section(
        "Recompute the pft sweeps",
        [
            html.P(
                f"Re-runs both pft sweeps ({len(B.THREADS)} thread counts x 2 modes x 2"
                " workloads) on the server with the current code; takes about half a"
                " minute. The results replace the two pft figures for this page only.",
                className="hint",
            ),
            html.Div(
                [
                    button(
                        "results-recompute",
                        "Recompute",
                        "recompute the pft sweeps on the server",
                    ),
                    html.Progress(
                        id="results-progress",
                        value="0",
                        max=1,
                        className="results-progress",
                        style={"margin": "0 0.75em", "width": "14em", "height": "1.2em"},
                        **aria("recompute progress"),
                    ),
                    html.Span(
                        "Showing the committed results (data/results).",
                        id="results-status",
                        className="results-status",
                        **aria_live(),
                    ),
                ],
                className="results-recompute-row",
            ),
            dcc.Interval(id="results-poll", interval=POLL_MS, disabled=True, n_intervals=0),
            dcc.Store(id="results-job", data=job),
        ],
        "results-recompute-panel",
    )


def results_layout(directory: Path = B.RESULTS_DIR) -> html.Section:
    """The Results section: every figure with its explanation, and the Recompute control.

    Call it for every page load (inside the layout function): each call gives the
    page a new job id for its recomputes.

    Args:
        directory: Where the results CSVs are (default ``data/results``).
    """
    data = load_page_data(directory)
    children: list[Any] = [html.H2("Results: the model beside published measurements")]
    checked = [t for t in headline_targets(data.targets) if t.get("result") in ("PASS", "MISS")]
    met = sum(1 for t in checked if t["result"] == "PASS")
    intro = (
        "Each figure runs a bundled scenario in both locking modes and sets the result"
        " beside the published measurement it models. The figures check shapes (ratios,"
        " plateaus, crossovers), not absolute rates: the model's costs are one default"
        " table, not fitted to each machine."
    )
    if checked:
        intro += (
            f" {met} of the {len(checked)} shape targets are met; each figure names its"
            " misses, and the table at the end lists every target."
        )
    children.append(html.P(intro))
    if data.missing:
        children.append(
            html.P(
                "Missing in data/results: "
                + ", ".join(data.missing)
                + ". Run: python -m vmaviz.results.build",
                className="hint",
                role="alert",
            )
        )
    children.append(recompute_controls(uuid.uuid4().hex))
    for name, title in PFT_TITLES.items():
        rows = data.sweeps.get(name, [])
        targets = targets_of(data.targets, name, B.SOURCE_SWEEP)
        children.append(
            _section(
                title,
                [
                    _graph(
                        name,
                        f"{title}: faults per second against threads",
                        pft_panel_figure(name, rows),
                    ),
                    html.Div(pft_text(name, rows, targets), id=f"results-text-{name}"),
                ],
                f"results-{name}",
            )
        )
    android_targets = targets_of(data.targets, "android", B.SOURCE_CALIBRATION)
    children.append(
        _section(
            "Android app launch with ~100 threads",
            [
                _graph("android", "Android launch time per mode", android_figure(data.android)),
                html.P(android_explanation(data.android, android_targets)),
                targets_table(android_targets),
            ],
            "results-android",
        )
    )
    tcp_targets = targets_of(data.targets, "tcp", B.SOURCE_CALIBRATION)
    children.append(
        _section(
            "TCP zerocopy receive against an madvise writer",
            [
                _graph(
                    "tcp", "TCP zerocopy receivers' blocked time per mode", tcp_figure(data.tcp)
                ),
                html.P(tcp_explanation(data.tcp, tcp_targets)),
                targets_table(tcp_targets),
            ],
            "results-tcp",
        )
    )
    children.append(
        _section(
            "All targets (data/results/targets.csv)",
            [
                html.P(
                    "source 'sweep': checked on the pft sweeps above; 'bench calibration':"
                    " the table of python -m vmaviz bench calibration (its pft curves fault"
                    " 48 pages per thread, the sweeps 100).",
                    className="hint",
                ),
                targets_table(data.targets, with_source=True),
            ],
            "results-targets",
        )
    )
    return html.Section(children, id=RESULTS_ID, className="results", **aria("results"))


# =====================================================================
# Recompute: a background thread, progress in the cache, polled by the page
# =====================================================================


def status_key(job: str) -> str:
    return f"results:status:{job}"


def rows_key(job: str) -> str:
    return f"results:rows:{job}"


def valid_job(job: Any) -> bool:
    """Whether ``job`` looks like an id :func:`results_layout` made (32 hex digits)."""
    return isinstance(job, str) and len(job) == 32 and all(c in "0123456789abcdef" for c in job)


def progress_hook(cache: Cache, job: str, clock: Callable[[], float] = time.time) -> Progress:
    """The sweep's ``progress(done, total)`` hook: writes the job's status to the cache."""
    started = clock()

    def hook(done: int, total: int) -> None:
        now = clock()
        # The running job holds the server lock (its value is the job): keep it
        # from expiring while the sweep makes progress.
        if cache.get(SERVER_LOCK) == job:
            cache.set(SERVER_LOCK, job, timeout=SERVER_LOCK_TIMEOUT)
        cache.set(
            status_key(job),
            {
                "state": "running",
                "done": int(done),
                "total": int(total),
                "started": started,
                "updated": now,
                "message": "",
            },
            timeout=JOB_TIMEOUT,
        )

    return hook


def default_runner(jobs: int = 1) -> Runner:
    """The recompute: both pft sweeps over :data:`~vmaviz.results.build.THREADS`.

    Args:
        jobs: 1 runs inline in the job's thread; more uses a process pool.
    """

    def run(progress: Progress) -> dict[str, list[Row]]:
        executor = make_executor(jobs)
        try:
            return B.run_pft_sweeps(B.THREADS, B.PFT_PAGES, executor, progress)
        finally:
            executor.shutdown()

    return run


def run_job(cache: Cache, job: str, runner: Runner, clock: Callable[[], float] = time.time) -> None:
    """The body of a recompute (run in a thread): sweeps, rows to the cache, status.

    Never raises: a failure is recorded as the job's status. The caller
    (:class:`RecomputeQueue`) holds the server lock and releases it.
    """
    hook = progress_hook(cache, job, clock)
    started = clock()
    status: dict[str, Any] = {"state": "error", "done": 0, "total": 0, "message": "stopped"}
    try:
        hook(0, 0)
        sweeps = runner(hook)
        cache.set(rows_key(job), {"sweeps": sweeps, "finished": clock()}, timeout=JOB_TIMEOUT)
        total = sum(len(rows) for rows in sweeps.values())
        status = {"state": "done", "done": total, "total": total, "message": ""}
    except Exception as exc:  # a failed recompute is reported on the page
        status = {"state": "error", "done": 0, "total": 0, "message": str(exc) or repr(exc)}
    status.update(started=started, updated=clock())
    cache.set(status_key(job), status, timeout=JOB_TIMEOUT)


def _thread(target: Callable[[], None]) -> None:
    threading.Thread(target=target, name="vmaviz-results-recompute", daemon=True).start()


def is_stale(status: Mapping[str, Any] | None, now: float) -> bool:
    """A running or queued job whose status has not moved for :data:`STALE_AFTER` s."""
    return (
        isinstance(status, Mapping)
        and status.get("state") in ("running", "queued")
        and now - float(status.get("updated", 0.0)) > STALE_AFTER
    )


def _claim(cache: Cache, key: str, value: Any, timeout: int) -> bool:
    """``cache.add`` of a lock, also over an expired one.

    FileSystemCache.add refuses while the file of an expired entry is still there;
    ``get`` returns ``None`` for it, and the entry is then replaced.
    """
    if cache.add(key, value, timeout=timeout):
        return True
    if cache.get(key) is not None:
        return False
    cache.delete(key)
    return bool(cache.add(key, value, timeout=timeout))


class RecomputeQueue:
    """One recompute at a time per server; the others wait their turn.

    A click queues its page's job (FIFO, at most :data:`MAX_QUEUED` behind the one
    running); one thread per process runs the queue and takes :data:`SERVER_LOCK`
    in the shared cache before each job, so two workers do not sweep at once
    either. A queued job's status says how many are ahead of it.

    Args:
        cache: The shared flask cache.
        runner: What a recompute runs.
        clock, sleep: Time (for tests).
        spawn: Starts the queue's thread (a daemon thread by default).
        max_queued: Jobs that may wait behind the running one.
    """

    def __init__(
        self,
        cache: Cache,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        spawn: Callable[[Callable[[], None]], None] | None = None,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.cache = cache
        self.runner = runner
        self.clock = clock
        self.sleep = sleep
        self.spawn = spawn or _thread
        self.max_queued = max_queued
        self._mutex = threading.Lock()
        #: The job running (or about to) first, then the waiting ones.
        self._jobs: list[str] = []
        self._draining = False

    def submit(self, job: str) -> str:
        """Queue ``job``: ``"queued"``, ``"already"`` (queued, running) or ``"full"``."""
        now = self.clock()
        with self._mutex:
            status = self.cache.get(status_key(job))
            busy = isinstance(status, Mapping) and status.get("state") in ("running", "queued")
            if job in self._jobs or (busy and not is_stale(status, now)):
                return "already"
            if len(self._jobs) > self.max_queued:
                return "full"
            self._jobs.append(job)
            self.cache.delete(rows_key(job))
            self._mark_queued(job, len(self._jobs) - 1, now)
            start = not self._draining
            self._draining = True
        if start:
            self.spawn(self._drain)
        return "queued"

    def _mark_queued(self, job: str, ahead: int, now: float, elsewhere: bool = False) -> None:
        self.cache.set(
            status_key(job),
            {
                "state": "queued",
                "ahead": ahead,
                "elsewhere": elsewhere,
                "done": 0,
                "total": 0,
                "started": now,
                "updated": now,
            },
            timeout=JOB_TIMEOUT,
        )

    def _refresh(self, elsewhere: bool = False) -> None:
        """Tell each waiting job how many are ahead of it now."""
        now = self.clock()
        with self._mutex:
            jobs = list(self._jobs)
        for ahead, job in enumerate(jobs):
            if ahead or elsewhere:
                self._mark_queued(job, ahead, now, elsewhere)

    def _drain(self) -> None:
        try:
            self._drain_jobs()
        except BaseException:
            # The cache failed under us (or the server is stopping): let the next
            # click start a new thread for the jobs still queued.
            with self._mutex:
                self._draining = False
            raise

    def _drain_jobs(self) -> None:
        while True:
            with self._mutex:
                if not self._jobs:
                    self._draining = False
                    return
                job = self._jobs[0]
            while not _claim(self.cache, SERVER_LOCK, job, SERVER_LOCK_TIMEOUT):
                # Another worker of this server is recomputing: wait for its turn.
                self._refresh(elsewhere=True)
                self.sleep(LOCK_POLL)
            try:
                run_job(self.cache, job, self.runner, self.clock)
            finally:
                self.cache.delete(SERVER_LOCK)
                with self._mutex:
                    self._jobs.remove(job)
                self._refresh()


@dataclass(frozen=True)
class ProgressView:
    """What the page shows for a job's status.

    Attributes:
        value: Runs finished (the progress bar's value).
        maximum: Runs in all (at least 1).
        text: The status line.
        running: Whether to keep polling.
        finished: Whether the job finished and its rows can be shown.
        error: Whether it failed.
    """

    value: int
    maximum: int
    text: str
    running: bool
    finished: bool = False
    error: bool = False


def progress_view(status: Mapping[str, Any] | None, now: float) -> ProgressView:
    """The progress bar and status line for a job's cached status."""
    if not isinstance(status, Mapping):
        return ProgressView(0, 1, "Showing the committed results (data/results).", False)
    done, total = int(status.get("done", 0)), int(status.get("total", 0))
    elapsed = max(0.0, float(status.get("updated", now)) - float(status.get("started", now)))
    state = status.get("state")
    if state == "done":
        return ProgressView(
            total,
            max(total, 1),
            f"Recomputed {total} runs in {elapsed:.1f} s: the pft figures show the new"
            " results (kept on the server for this page, not written to data/results).",
            False,
            finished=True,
        )
    if state == "error":
        return ProgressView(
            0, 1, f"The recompute failed: {status.get('message', '')}", False, error=True
        )
    if is_stale(status, now):
        return ProgressView(
            done,
            max(total, 1),
            "The recompute stopped (its server worker exited); press Recompute again.",
            False,
            error=True,
        )
    if state == "queued":
        ahead = int(status.get("ahead", 0))
        where = (
            "another worker of this server is recomputing"
            if status.get("elsewhere")
            else f"{ahead} recompute{'s' if ahead != 1 else ''} ahead of this one"
        )
        return ProgressView(0, 1, f"Queued: {where} (one runs at a time on this server).", True)
    if total == 0:
        return ProgressView(0, 1, "Recompute: planning the sweeps...", True)
    return ProgressView(
        done,
        total,
        f"Recomputing: {done} of {total} runs, {now - float(status.get('started', now)):.0f} s"
        " (the runs with more threads take longer).",
        True,
    )


@dataclass
class RecomputeOutputs:
    """The outputs of the recompute callback (``no_update`` where nothing changes)."""

    progress_value: Any = no_update
    progress_max: Any = no_update
    status: Any = no_update
    poll_disabled: Any = no_update
    button_disabled: Any = no_update
    figures: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, Any] = field(default_factory=dict)

    def as_tuple(self) -> tuple[Any, ...]:
        names = list(PFT_TITLES)
        return (
            self.progress_value,
            self.progress_max,
            self.status,
            self.poll_disabled,
            self.button_disabled,
            *(self.figures.get(n, no_update) for n in names),
            *(self.texts.get(n, no_update) for n in names),
        )


def recompute_update(
    cache: Cache,
    trigger: str | None,
    job: Any,
    queue: RecomputeQueue,
    *,
    clock: Callable[[], float] = time.time,
) -> RecomputeOutputs:
    """The recompute callback's logic: queue on a click, report on a poll.

    Args:
        cache: The shared flask cache.
        trigger: ``results-recompute`` (a click) or ``results-poll`` (the timer).
        job: The page's job id (from ``#results-job``).
        queue: The app's :class:`RecomputeQueue`.
        clock: Seconds (for tests).
    """
    out = RecomputeOutputs()
    if not valid_job(job):
        out.status = "This page has no job id; reload the page."
        out.poll_disabled = True
        return out
    prefix = ""
    if trigger == "results-recompute":
        outcome = queue.submit(job)
        if outcome == "already":
            prefix = "A recompute is already running or queued for this page. "
        elif outcome == "full":
            prefix = (
                f"The server is busy: {queue.max_queued} recomputes are already waiting; "
                "press Recompute again in a minute. "
            )
    view = progress_view(cache.get(status_key(job)), clock())
    out.progress_value, out.progress_max = str(view.value), view.maximum
    out.status = prefix + view.text
    out.poll_disabled = not view.running
    out.button_disabled = view.running
    if view.finished:
        _show_rows(cache, job, out)
    return out


def _show_rows(cache: Cache, job: str, out: RecomputeOutputs) -> None:
    blob = cache.get(rows_key(job))
    if not isinstance(blob, dict) or not isinstance(blob.get("sweeps"), dict):
        out.status = "The recomputed results expired from the server's cache; recompute again."
        return
    sweeps: dict[str, list[Row]] = blob["sweeps"]
    when = time.strftime("%H:%M:%S", time.localtime(float(blob.get("finished", 0.0))))
    targets = sweep_targets(sweeps)
    for name in PFT_TITLES:
        rows = sweeps.get(name, [])
        if not rows:
            continue
        out.figures[name] = pft_panel_figure(name, rows)
        out.texts[name] = pft_text(
            name,
            rows,
            [t for t in targets if t["group"] == name],
            note=f"Recomputed on the server at {when} (not written to data/results).",
        )


def register_results_callbacks(
    app: dash.Dash,
    cache: Cache,
    *,
    runner: Runner | None = None,
    jobs: int = 1,
) -> None:
    """Register the Results page's callback on ``app``.

    Args:
        app: The Dash app whose layout includes :func:`results_layout`.
        cache: The app's flask-caching :class:`~flask_caching.Cache`, shared by the
            workers (its file cache or Redis).
        runner: What a recompute runs (default: :func:`default_runner`).
        jobs: Parallel runs of the default runner (1: inline in the job's thread).
    """
    names = list(PFT_TITLES)
    server = app.server

    def spawn(body: Callable[[], None]) -> None:
        # The queue's thread has no request: give it the app context the cache may need.
        def in_context() -> None:
            with server.app_context():
                body()

        _thread(in_context)

    queue = RecomputeQueue(
        cache, runner if runner is not None else default_runner(jobs), spawn=spawn
    )

    @app.callback(
        Output("results-progress", "value"),
        Output("results-progress", "max"),
        Output("results-status", "children"),
        Output("results-poll", "disabled"),
        Output("results-recompute", "disabled"),
        *(Output(f"results-graph-{n}", "figure") for n in names),
        *(Output(f"results-text-{n}", "children") for n in names),
        Input("results-recompute", "n_clicks"),
        Input("results-poll", "n_intervals"),
        State("results-job", "data"),
        prevent_initial_call=True,
    )
    def on_recompute(_clicks: int | None, _ticks: int | None, job: Any) -> tuple[Any, ...]:
        trigger = ctx.triggered_id if isinstance(ctx.triggered_id, str) else None
        return recompute_update(cache, trigger, job, queue).as_tuple()


__all__ = [
    "MODE_STYLES",
    "RESULTS_ID",
    "PageData",
    "ProgressView",
    "RecomputeQueue",
    "android_figure",
    "load_page_data",
    "pft_figure",
    "progress_view",
    "recompute_update",
    "register_results_callbacks",
    "results_layout",
    "run_job",
    "tcp_figure",
]
