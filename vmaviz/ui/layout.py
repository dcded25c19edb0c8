"""The page: header, controls, the body of the chosen view, event log and glossary.

:func:`serve_layout` is called for every page load, so every browser tab gets its own
session id (a ``dcc.Store``); the server keys its per-session cache entries by it.
:func:`body` lays out one view (single or compare) around the figures of the runs;
the ``load_run`` callback puts it in ``#body`` whenever the configuration changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from dash import dcc, html

from vmaviz import __version__
from vmaviz.model.kernel import PATCHES
from vmaviz.scenario.schema import ARCHES, MAX_CPUS, MAX_FILE_BYTES, MAX_SEED
from vmaviz.ui.components import (
    aria,
    aria_live,
    button,
    control,
    filter_dropdown,
    graph,
    memory_panels,
    narration_box,
    panel,
    slot,
    state_column,
    timeline_panel,
)
from vmaviz.ui.editor import editor_section
from vmaviz.ui.lessons import lessons_section
from vmaviz.ui.results import results_layout
from vmaviz.ui.source_panel import source_slot
from vmaviz.ui.stepping import BREAKPOINTS, GRANULARITIES
from vmaviz.ui.thread_step import thread_step_row

TITLE = "vmaviz: per-VMA locks and the maple tree, step by step"

#: Playback speeds: label -> milliseconds between steps.
SPEEDS = {"1/s": 1000, "2/s": 500, "5/s": 200, "10/s": 100}
DEFAULT_SPEED = 500

MODE_OPTIONS = [
    {"label": "per-VMA", "value": "per_vma"},
    {"label": "mmap_lock", "value": "mmap_lock"},
]
VIEW_OPTIONS = [
    {"label": "single", "value": "single"},
    {"label": "compare both modes", "value": "compare"},
]
#: What compare view compares (vmaviz/ui/session.py: COMPARE_KINDS).
COMPARE_OPTIONS = [
    {"label": "modes", "value": "modes"},
    {"label": "patch on/off", "value": "patches"},
]
GRANULARITY_LABELS = {"step": "step", "function": "function", "operation": "operation"}


def serve_layout(scenario_options: Sequence[dict[str, str]]) -> html.Div:
    """The whole page, with a fresh session id."""
    return html.Div(
        className="page",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="session-id", data=uuid.uuid4().hex),
            dcc.Store(id="run", data=None),
            dcc.Store(id="cursor", data=0),
            dcc.Store(id="sent", data={}),
            dcc.Store(id="figure-request", data=None),
            dcc.Store(id="nav-seen", data={}),
            # Moves the browser cannot make alone (function/operation granularity) and
            # event-log clicks, for the server's navigate callback.
            dcc.Store(id="nav-request", data=None),
            dcc.Store(id="log-click", data=None),
            # A click on the lanes, and the sink of the clientside callback that
            # draws them.
            dcc.Store(id="lanes-drawn", data=None),
            dcc.Store(id="timeline-click", data=None),
            # A range selected on the lanes (shift-drag), for its statistics.
            dcc.Store(id="timeline-range", data=None),
            # The step's changed panels as HTML ({DOM id: html}), put in place by
            # assets/vmaviz.js (render), and that callback's sink.
            dcc.Store(id="step-html", data={}),
            dcc.Store(id="step-drawn", data=None),
            # The compare table of the run, as HTML (drawn like the step's panels).
            dcc.Store(id="delta-html", data=None),
            dcc.Store(id="delta-drawn", data=None),
            dcc.Store(id="figures-sent", data={}),
            # The figures in or near the window (assets/vmaviz.js), and the figures of
            # figure-request that are among them: only those are drawn.
            dcc.Store(id="figures-visible", data=None),
            dcc.Store(id="figure-go", data=None),
            # Lazy sections the browser saw come near the window (mount them).
            dcc.Store(id="lazy-open", data=None),
            dcc.Store(id="pending-step", data=None),
            dcc.Store(id="permalink-search", data=""),
            dcc.Store(id="permalink-drawn", data=None),
            dcc.Store(id="clipboard-status", data=None),
            dcc.Interval(id="play-timer", interval=DEFAULT_SPEED, disabled=True),
            # While other arches' runs finish in the background, redraw the counters.
            dcc.Interval(id="arch-poll", interval=1000, disabled=True),
            dcc.Download(id="download"),
            html.A("Skip to the step controls", href="#step-controls", className="skip-link"),
            header(),
            *controls(scenario_options),
            race_section(),
            lessons_section(),
            editor_section(),
            html.Div(id="run-error", className="run-error", role="alert"),
            html.Main(id="body", className="body"),
            summary_section(),
            event_log_section(),
            # Mounted when they come near the window (assets/vmaviz.js: lazy): every
            # Dash component on the page costs the renderer time on every step, and
            # these two are a third of the page.
            lazy_slot("glossary", "glossary-box", "The glossary"),
            lazy_slot("results-slot", "results-slot", "The results"),
            html.Footer(
                [
                    f"vmaviz {__version__}. Keys: ← → or , . step; Shift: 10 at a time; "
                    "Space play/pause; Home/End first/last step.",
                ],
                className="footer",
            ),
        ],
    )


def header() -> html.Header:
    return html.Header(
        [
            html.H1(["vmaviz ", html.Span("Linux 6.4 per-VMA locks", className="h1-sub")]),
            html.Div(id="scenario-info", className="scenario-info"),
        ],
        className="header",
    )


def controls(scenario_options: Sequence[dict[str, str]]) -> list[html.Section]:
    """Two bars: the configuration (with breakpoints, link and export folded away) and
    the stepper (sticky at the top of the window while the page scrolls)."""
    config_row = html.Div(
        [
            control(
                "Scenario",
                dcc.Dropdown(
                    id="scenario",
                    options=list(scenario_options),
                    value=scenario_options[0]["value"] if scenario_options else None,
                    clearable=False,
                    searchable=False,
                    className="scenario-dropdown",
                ),
                for_id="scenario",
            ),
            # One tab stop: the file input inside, named by assets/vmaviz.js from the
            # wrapper's data-aria-label (the visible text is a click target only).
            html.Div(
                dcc.Upload(
                    id="upload",
                    children=html.Span("Upload YAML…", className="upload-button"),
                    accept=".yaml,.yml,text/yaml,application/x-yaml,text/plain",
                    multiple=False,
                    className="upload",
                ),
                className="upload-box",
                **aria(
                    f"upload a scenario YAML file (at most {MAX_FILE_BYTES // 1024} KiB)",
                    data_aria_label=(
                        f"upload a scenario YAML file (at most {MAX_FILE_BYTES // 1024} KiB)"
                    ),
                ),
            ),
            control(
                "Mode",
                dcc.RadioItems(
                    id="mode", options=MODE_OPTIONS, value="per_vma", inline=True, className="radio"
                ),
            ),
            control(
                "Arch",
                dcc.Dropdown(
                    id="arch",
                    options=[{"label": a, "value": a} for a in ARCHES],
                    value="x86",
                    clearable=False,
                    searchable=False,
                    className="arch-dropdown",
                ),
                for_id="arch",
            ),
            control(
                "CPUs",
                dcc.Input(
                    id="cpus", type="number", min=1, max=MAX_CPUS, step=1, value=4, debounce=True
                ),
                for_id="cpus",
            ),
            control(
                "Seed",
                dcc.Input(
                    id="seed", type="number", min=0, max=MAX_SEED, step=1, value=1, debounce=True
                ),
                for_id="seed",
            ),
        ],
        className="controls-row config-row",
    )
    upload_errors = html.Div(id="upload-errors", className="upload-errors", role="alert")

    step_row = html.Div(
        [
            html.Div(
                [
                    button("step-start", "|◀", "go to the first step", className="nav"),
                    button("step-back10", "◀◀", "back 10 (Shift+←)", className="nav"),
                    button("step-back", "◀", "back one (← or ,)", className="nav"),
                    button("step-fwd", "▶", "forward one (→ or .)", className="nav primary"),
                    button("step-fwd10", "▶▶", "forward 10 (Shift+→)", className="nav"),
                    button("step-end", "▶|", "go to the last step", className="nav"),
                ],
                className="nav-buttons",
                role="toolbar",
                **aria("step controls"),
            ),
            control(
                "by",
                dcc.RadioItems(
                    id="granularity",
                    options=[{"label": GRANULARITY_LABELS[g], "value": g} for g in GRANULARITIES],
                    value="step",
                    inline=True,
                    className="radio",
                ),
            ),
            button("play", "▶ Play", "play or pause (Space)", className="play"),
            control(
                "steps",
                dcc.Dropdown(
                    id="speed",
                    options=[{"label": k, "value": v} for k, v in SPEEDS.items()],
                    value=DEFAULT_SPEED,
                    clearable=False,
                    searchable=False,
                    className="speed-dropdown",
                ),
                for_id="speed",
            ),
            control(
                "jump to",
                dcc.Input(id="jump", type="number", min=0, step=1, debounce=False, size="7"),
                for_id="jump",
            ),
            button("jump-go", "Go", "jump to the step number"),
            button(
                "bp-back",
                "◀ Break",
                "run back to the previous breakpoint",
                className="bp-run",
            ),
            button(
                "bp-run",
                "Break ▶",
                "run to the next breakpoint",
                className="bp-run",
            ),
            # In the stepper, not in the (folded) Breakpoints panel: why the run stopped
            # must be visible where the user pressed the button.
            html.Span(id="bp-status", className="bp-status", role="status"),
        ],
        className="controls-row step-row",
        id="step-controls",
    )
    slider_row = html.Div(
        [
            # The scrubber is a native range input that assets/vmaviz.js (Scrubber)
            # puts in this box, not a Dash input: it follows the drawn cursor and a
            # move sets the cursor, so that a step costs no callback of its own.
            control(
                "step", html.Div(id="scrubber-box", className="scrubber-box"), for_id="scrubber"
            ),
            html.Div(id="step-status", className="step-status", **aria_live()),
        ],
        className="controls-row slider-row",
    )
    breakpoints = html.Details(
        [
            html.Summary("Breakpoints", id="bp-summary"),
            html.Div(
                [
                    dcc.Checklist(
                        id="bp-kinds",
                        options=[{"label": v, "value": k} for k, v in BREAKPOINTS.items()],
                        value=["fallback"],
                        className="bp-kinds",
                    ),
                    html.Div(
                        [
                            filter_dropdown("abort reason", "bp-reason"),
                            filter_dropdown("thread", "bp-thread"),
                            filter_dropdown("function", "bp-function"),
                            filter_dropdown("VMA", "bp-vma"),
                        ],
                        className="bp-params",
                    ),
                ],
                className="bp-body",
            ),
        ],
        className="breakpoints",
        id="breakpoints",
    )
    share = html.Details(
        [
            html.Summary("Link & export", id="share-summary"),
            html.Div(
                [
                    # The link field (a read-only input) is put in this box and kept
                    # up to date by assets/vmaviz.js (showLink): not a Dash input, so
                    # that the link of each step costs the renderer nothing.
                    control(
                        "Link to this view",
                        html.Div(id="permalink-box", className="permalink-box"),
                        for_id="permalink",
                    ),
                    html.Span("Export:", className="export-label"),
                    button("export-csv", "CSV", "download the steps as CSV"),
                    button("export-perfetto", "Perfetto", "download a Perfetto trace (JSON)"),
                    button("export-yaml", "YAML", "download the scenario YAML"),
                ],
                className="share-body",
            ),
        ],
        className="share",
        id="share",
    )
    return [
        html.Section(
            [
                config_row,
                upload_errors,
                html.Div(
                    [
                        control(
                            "View",
                            dcc.RadioItems(
                                id="view",
                                options=VIEW_OPTIONS,
                                value="single",
                                inline=True,
                                className="radio",
                            ),
                        ),
                        # Compare view: the two modes, or the page's mode with its
                        # patch overrides on the left and those patches back on the
                        # right, both on the same forced schedule.
                        control(
                            "Compare",
                            dcc.RadioItems(
                                id="compare-kind",
                                options=COMPARE_OPTIONS,
                                value="modes",
                                inline=True,
                                className="radio",
                            ),
                        ),
                        breakpoints,
                        share,
                        button("copy-link", "Copy link", "copy the link to this view"),
                        html.Span(id="copy-status", className="copy-status", role="status"),
                        html.A(
                            "Glossary",
                            href="#glossary",
                            className="glossary-link",
                            id="glossary-link",
                        ),
                        html.A(
                            "Results",
                            href="#results-slot",
                            className="glossary-link",
                            id="results-link",
                        ),
                    ],
                    className="details-row",
                ),
            ],
            className="controls config",
            **aria("scenario and configuration"),
        ),
        html.Section(
            [step_row, slider_row, thread_step_row()],
            className="controls stepper",
            **aria("stepping"),
        ),
    ]


def _with_source(side: str, title: str) -> html.Div:
    """Compare view's column of ``side`` with the source panel under its narration."""
    column = state_column(side, title)
    children = list(column.children)
    # After the header and the narration: the source explains the step narrated.
    children.insert(2, source_slot(side))
    column.children = children
    return column


def body(view: str, sides: Sequence[tuple[str, str]], timelines: Sequence[Any]) -> list[Any]:
    """The main area for a view.

    Args:
        view: ``single`` or ``compare``.
        sides: ``(side, title)`` per run shown.
        timelines: The timeline data of each side (same order), from
            :func:`vmaviz.ui.lanes.timeline_data`.
    """
    if view == "compare":
        (left, ltitle), (right, rtitle) = sides
        return [
            html.Div(
                [timeline_panel(s, t, fig) for (s, t), fig in zip(sides, timelines, strict=True)],
                className="timelines-stacked",
            ),
            html.Div(
                [_with_source(left, ltitle), _with_source(right, rtitle)],
                className="compare-columns",
            ),
        ]
    (side, title) = sides[0]
    return [
        html.Div(
            [
                narration_box(side),
                html.Div([slot("mmap-lock", side), slot("violations", side)], className="col"),
            ],
            className="row top",
        ),
        source_slot(side),
        slot("vma-table", side, "wide"),
        timeline_panel(side, title, timelines[0]),
        html.Div(
            [slot("threads", side, "threads-slot"), slot("rcu", side, "rcu-slot")],
            className="row",
        ),
        *memory_panels(side),
    ]


def summary_section() -> html.Div:
    """Whole-run comparison (compare view only) and the per-arch counters."""
    return html.Div(
        [
            html.Div(
                panel("mmap_lock vs per-VMA locks: the whole run", None, id_="delta-table"),
                id="delta-box",
                hidden=True,
            ),
            panel(
                html.Span("Per-VMA lock events by arch, up to the cursor", id="counters-title"),
                graph("counters-graph", "per-arch counters", static=True),
            ),
        ],
        className="row two summary",
    )


def event_log_section() -> html.Section:
    return panel(
        "Event log",
        [
            html.Div(
                [
                    filter_dropdown("thread", "log-thread"),
                    filter_dropdown("kind", "log-kind"),
                    filter_dropdown("VMA", "log-vma"),
                    html.Div(
                        control(
                            "run",
                            dcc.RadioItems(
                                id="log-side",
                                options=[{"label": "left", "value": "left"}],
                                value="left",
                                inline=True,
                                className="radio",
                            ),
                        ),
                        id="log-side-box",
                    ),
                ],
                className="controls-row log-filters",
            ),
            html.Div(id="event-log", className="event-log"),
        ],
        className="event-log-panel",
        help_text="Click a row to jump to that step.",
    )


def glossary_section() -> Any:
    """The glossary, folded: one click away from every page."""
    from vmaviz.ui.panels import glossary_panel

    return glossary_panel()


#: What a lazy slot holds once mounted: slot id -> builder.
LAZY_SECTIONS: dict[str, Callable[[], Any]] = {
    "glossary": glossary_section,
    "results-slot": results_layout,
}


def lazy_slot(ident: str, class_name: str, what: str) -> html.Div:
    """A place for a section that is mounted when it comes near the window."""
    attrs: dict[str, Any] = {"data-lazy": ident}
    return html.Div(
        html.P(f"{what} appear when you scroll here.", className="hint"),
        id=ident,
        className=f"lazy {class_name}",
        **attrs,
    )


def race_section() -> html.Section:
    """Patch toggles, "be the scheduler" and the race explorer (issue 13).

    * ``#patches``: every model patch (:data:`vmaviz.model.kernel.PATCHES`), the
      description as the label's tooltip; the scenario's own settings are the start.
    * ``#sched``: the forced schedule (thread ids) the run follows, part of the
      configuration; ``#bts-*``: the runnable threads at the cursor, to pick from.
    * ``#explore-*``: a background search with a progress bar (polled).
    """
    patch_list = dcc.Checklist(
        id="patches",
        options=[
            {"label": html.Span(name, title=desc), "value": name}
            for name, (_default, desc) in PATCHES.items()
        ],
        value=[name for name, (default, _d) in PATCHES.items() if default],
        className="patch-list",
    )
    patches = html.Details(
        [
            html.Summary("Patches", id="patches-summary"),
            html.P(
                "Untick a patch to remove it from the model (hover a name for what it does).",
                className="hint",
            ),
            patch_list,
        ],
        className="patches",
        id="patches-box",
    )
    scheduler = html.Div(
        [
            dcc.Checklist(
                id="bts-on",
                options=[{"label": "Be the scheduler", "value": "on"}],
                value=[],
                className="bts-toggle",
            ),
            html.Div(id="bts-list", className="bts-list", **aria_live()),
            button("bts-undo", "Undo choice", "undo the last thread you picked"),
            html.Div(id="bts-banner", className="bts-banner", role="alert"),
        ],
        className="bts",
        id="bts-box",
    )
    explorer = html.Div(
        [
            control(
                "Preemptions",
                dcc.Input(id="explore-preemptions", type="number", min=0, max=3, step=1, value=2),
                for_id="explore-preemptions",
            ),
            control(
                "Seconds",
                dcc.Input(id="explore-seconds", type="number", min=1, max=30, step=1, value=30),
                for_id="explore-seconds",
            ),
            button("explore-go", "Explore", "search the schedules for an invariant violation"),
            html.Div(id="explore-progress", className="explore-progress", **aria_live()),
            html.Div(id="explore-result", className="explore-result", **aria_live()),
            dcc.Interval(id="explore-poll", interval=500, disabled=True),
            dcc.Store(id="explore-job", data=None),
        ],
        className="explore",
        id="explore-box",
    )
    return html.Section(
        [
            dcc.Store(id="sched", data=[]),
            dcc.Store(id="bts-key", data=None),
            # Set by the browser after each drawn step while "Be the scheduler" is on
            # (assets/vmaviz.js: render): the runnable threads follow the cursor.
            dcc.Store(id="bts-cursor", data=None),
            dcc.Store(id="sched-marks", data=None),
            patches,
            scheduler,
            explorer,
        ],
        className="controls races",
        **aria("patches, be the scheduler, explore"),
    )
