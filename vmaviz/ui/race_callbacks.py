"""Callbacks of the race section: be the scheduler, and Explore (see :mod:`.scheduler`).

Thin, like :mod:`vmaviz.ui.callbacks`: the work is in plain functions
(:func:`scheduler_view`, :func:`pick_outputs`, :func:`explore_view`) that the
HTTP tests reach through the real callbacks.

A pick or an explorer's result changes the ``#sched`` store (and ``#patches``),
which is an input of the configuration callback: the run is recomputed with the
forced schedule and opens at ``#pending-step``.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, html, no_update

from vmaviz.scenario import Scenario, ScenarioErrors
from vmaviz.ui.callbacks import config_of, runs_of
from vmaviz.ui.components import button
from vmaviz.ui.scheduler import (
    EXPLORE_PREEMPTIONS,
    EXPLORE_SECONDS,
    ExploreJobs,
    choices,
    first_violation,
    invariant_title,
    picked_schedule,
    preemption_points,
)
from vmaviz.ui.session import (
    MAX_SCHED,
    Config,
    RunData,
    RunStore,
    ScenarioMissing,
    describe_error,
    patch_overrides,
    patches_on,
    to_query,
)
from vmaviz.ui.stepping import Track

#: Keys 1-9 pick the first nine threads listed.
MAX_KEYS = 9


def _single_run(store: RunStore, info: dict[str, Any] | None) -> RunData | None:
    """The run of a single-view page (be the scheduler picks in one run only)."""
    if not info or len(info.get("sides", [])) != 1:
        return None
    try:
        return runs_of(store, info)[0]
    except (ScenarioMissing, ValueError, RuntimeError):
        return None


def scheduler_view(
    store: RunStore, info: dict[str, Any] | None, cursor: Any, on: Any
) -> tuple[Any, Any]:
    """The rows of the runnable threads at the cursor, and the violation banner."""
    run = _single_run(store, info)
    if run is None:
        note = "Be the scheduler works in single view." if on else None
        return (html.P(note, className="hint") if note else None), None
    config = config_of(info.get("config") if info else None)
    banner = None
    found = first_violation(run)
    if found is not None and config.sched:
        step, number, message = found
        banner = html.Div(
            [
                html.Strong(f"The kernel breaks! {invariant_title(number)} fails at step {step}"),
                html.Span(f": {message}. "),
                html.Span(
                    "This schedule is one the kernel could run: without the patch that "
                    "prevents it, this interleaving breaks the kernel's rules.",
                ),
            ],
            className="bts-win",
        )
    if not on:
        return None, banner
    n = int(cursor) if isinstance(cursor, int) else 0
    n = max(0, min(n, run.steps))
    rows = choices(run, n)
    if not rows:
        return html.P("No thread can move: the run is over.", className="hint"), banner
    items = [
        html.Li(
            button(
                {"type": "bts-pick", "tid": row["tid"]},
                f"{i}. {row['name']} → {row['function']}" if i <= MAX_KEYS else row["name"],
                f"run {row['name']} next",
                className="bts-pick",
            )
        )
        for i, row in enumerate(rows, start=1)
    ]
    head = html.P(
        f"Who moves after step {n - 1}? Click a thread, or press its number."
        if n
        else "Who moves first? Click a thread, or press its number.",
        className="hint",
    )
    return html.Div([head, html.Ol(items, className="bts-rows")]), banner


def pick_outputs(
    store: RunStore, info: dict[str, Any] | None, cursor: Any, tid: int
) -> tuple[Any, Any, Any]:
    """(sched, pending step, message) after picking ``tid`` at the cursor."""
    run = _single_run(store, info)
    if run is None:
        return no_update, no_update, "Be the scheduler works in single view."
    n = max(0, min(int(cursor or 0), run.steps))
    try:
        sched = picked_schedule(run, n, tid)
    except ValueError as exc:
        return no_update, no_update, str(exc)
    if len(sched) > MAX_SCHED:
        return no_update, no_update, f"the schedule would pass {MAX_SCHED} steps"
    return list(sched), n + 1, None


def explore_request(
    store: RunStore, info: dict[str, Any] | None, patches: Any, preemptions: Any, seconds: Any
) -> tuple[Any, dict[str, Any] | str]:
    """(scenario, request) for a search of the page's configuration, or (None, why not)."""
    if not info:
        return None, "open a scenario first"
    config = config_of(info.get("config"))
    try:
        scenario = store.scenario(config.scenario)
    except (ScenarioMissing, ValueError) as exc:
        return None, describe_error(exc)
    p = preemptions if isinstance(preemptions, int) and not isinstance(preemptions, bool) else 2
    s = seconds if isinstance(seconds, int | float) and not isinstance(seconds, bool) else 30
    overrides = patch_overrides(scenario, patches) if patches is not None else config.patches
    request = {
        "scenario": config.scenario,
        "patches": {**scenario.kernel.patches, **dict(overrides)},
        "overrides": [list(o) for o in overrides],
        "mode": config.mode,
        "arch": config.arch,
        "preemptions": max(0, min(p, EXPLORE_PREEMPTIONS)),
        "seconds": max(1.0, min(float(s), EXPLORE_SECONDS)),
    }
    return scenario, request


def explore_view(store: RunStore, status: dict[str, Any] | None) -> dict[str, Any]:
    """What the page shows of a search's status: progress, result, and what to open."""
    out: dict[str, Any] = {
        "progress": no_update,
        "result": no_update,
        "poll_disabled": False,
        "patches": no_update,
        "sched": no_update,
        "pending": no_update,
    }
    if status is None:
        out.update(progress=None, result="The search was lost; press Explore again.")
        out["poll_disabled"] = True
        return out
    request = status.get("request") or {}
    state = status.get("state")
    if state == "running":
        pr = status.get("progress") or {}
        limit = float(request.get("seconds") or EXPLORE_SECONDS)
        done = min(float(pr.get("seconds") or 0.0) / limit, 1.0)
        out["progress"] = html.Div(
            [
                html.Progress(value=str(round(done * 100)), max="100", id="explore-bar"),
                html.Span(
                    f" searching: bound {pr.get('bound', 0)}, "
                    f"{pr.get('schedules', 0):,} schedules, {pr.get('states', 0):,} states",
                ),
            ]
        )
        return out
    out["poll_disabled"] = True
    out["progress"] = None
    if state == "failed":
        out["result"] = html.Div(f"The search failed: {status.get('error')}", className="error-box")
        return out
    result = status.get("result") or {}
    if not result.get("found"):
        cover = "every schedule" if result.get("exhaustive") else "the schedules it reached"
        out["result"] = html.Div(
            [
                html.Strong("No violation found. "),
                html.Span(
                    f"The search covered {cover} with at most {result.get('bound')} "
                    f"preemptions: {result.get('schedules', 0):,} schedules, "
                    f"{result.get('states', 0):,} distinct states, "
                    f"{result.get('seconds', 0)} s"
                    + ("." if result.get("exhaustive") else " (not exhaustive: a budget ran out).")
                ),
            ],
            className="explore-none",
        )
        return out
    v = result["violation"]
    schedule = list(result["schedule"])
    points = preemption_points(schedule)
    story = [html.Li(line) for line in result.get("explanation") or []]
    out["result"] = html.Div(
        [
            html.Strong(
                f"Race found: {invariant_title(v['invariant'])} fails at step "
                f"{v['step']}: {v['message']}"
            ),
            html.P(
                f"{result.get('preemptions')} preemption(s), {result.get('steps')} steps; "
                f"{result.get('schedules', 0):,} schedules searched in {result.get('seconds')} s. "
                "The counterexample is open below at the violating step; "
                "the schedule switches thread at steps "
                + ", ".join(str(p) for p in points[:12])
                + ("…" if len(points) > 12 else "")
                + "."
            ),
            html.H3("The story of the race"),
            html.Ol(story, className="explore-story"),
        ],
        className="explore-found",
        id="explore-found",
    )
    try:
        scenario = store.scenario(str(request.get("scenario")))
        overrides = tuple((str(a), bool(b)) for a, b in request.get("overrides") or [])
        out["patches"] = patches_on(scenario, overrides)
        link = compare_link(store, scenario, request, overrides, schedule)
        if link is not None:
            out["result"].children.append(link)
    except (ScenarioMissing, ValueError):
        out["patches"] = no_update
    out["sched"] = schedule
    out["pending"] = len(schedule)
    return out


def compare_link(
    store: RunStore,
    scenario: Scenario,
    request: dict[str, Any],
    overrides: tuple[tuple[str, bool], ...],
    schedule: list[int],
) -> html.P | None:
    """A link to patch compare view of a counterexample, at its violation.

    The left side is the counterexample (the search's patch overrides), the right
    the same schedule with those patches back on (followed while it fits). The
    link's ``step`` is the violation's place among the steps of both runs merged
    in time order, as compare view numbers them. None when no patch was turned off
    (both sides would be the same run) or a run fails.
    """
    if not any(not on for _name, on in overrides):
        return None
    k = scenario.kernel
    config = Config(
        scenario=str(request.get("scenario")),
        mode=str(request.get("mode")),
        arch=str(request.get("arch")),
        cpus=k.cpus,
        seed=k.seed,
        view="compare",
        patches=overrides,
        sched=tuple(schedule),
        compare="patches",
    ).checked()
    try:
        runs = [store.run(c, mode=m) for c, m in config.side_configs()]
    except (ScenarioMissing, ScenarioErrors, ValueError, RuntimeError):
        return None
    rows = runs[0].violation_rows
    row = int(rows[0]) if len(rows) else len(schedule) - 1
    cursor = Track(runs).position(0, row)
    off = ", ".join(name for name, on in overrides if not on)
    return html.P(
        [
            html.A(
                "Compare with the patch on",
                href=to_query(config, cursor),
                id="explore-compare",
                className="explore-compare",
            ),
            f": the same schedule with {off} back on, side by side, one cursor.",
        ]
    )


def register_races(app: dash.Dash, store: RunStore) -> None:
    """Attach the race section's callbacks to ``app``."""
    jobs = ExploreJobs(store.cache)
    app.server.extensions["vmaviz_explore"] = jobs

    # Not an input of the cursor: with the list off, a step would still cost a
    # request. The browser sets ``bts-cursor`` after each drawn step while it is on.
    @app.callback(
        Output("bts-list", "children"),
        Output("bts-banner", "children"),
        Input("bts-cursor", "data"),
        Input("run", "data"),
        Input("bts-on", "value"),
        State("cursor", "data"),
    )
    def on_scheduler(_drawn: Any, info: Any, on: Any, cursor: Any) -> tuple[Any, Any]:
        return scheduler_view(store, info, cursor, bool(on))

    @app.callback(
        Output("sched", "data", allow_duplicate=True),
        Output("pending-step", "data", allow_duplicate=True),
        Output("run-error", "children", allow_duplicate=True),
        Input({"type": "bts-pick", "tid": ALL}, "n_clicks"),
        Input("bts-key", "data"),
        Input("timeline-click", "data"),
        Input("bts-undo", "n_clicks"),
        State("bts-on", "value"),
        State("cursor", "data"),
        State("run", "data"),
        prevent_initial_call=True,
    )
    def on_pick(
        _clicks: Any, key: Any, lane: Any, _undo: Any, on: Any, cursor: Any, info: Any
    ) -> tuple[Any, Any, Any]:
        trigger = ctx.triggered_id
        if not on or not info:
            raise dash.exceptions.PreventUpdate
        if trigger == "bts-undo":
            sched = list(config_of(info.get("config")).sched)
            if not sched:
                raise dash.exceptions.PreventUpdate
            return sched[:-1], len(sched) - 1, None
        run = _single_run(store, info)
        if run is None:
            raise dash.exceptions.PreventUpdate
        n = max(0, min(int(cursor or 0), run.steps))
        if isinstance(trigger, dict) and trigger.get("type") == "bts-pick":
            # New rows (a re-drawn list) fire this with no click: not a pick.
            if not ctx.triggered[0].get("value"):
                raise dash.exceptions.PreventUpdate
            tid = int(trigger["tid"])
        elif trigger == "bts-key" and isinstance(key, dict):
            rows = choices(run, n)
            index = key.get("n")
            if not isinstance(index, int) or not 1 <= index <= min(len(rows), MAX_KEYS):
                raise dash.exceptions.PreventUpdate
            tid = rows[index - 1]["tid"]
        elif trigger == "timeline-click" and isinstance(lane, dict):
            # A click on a bar of a thread's lane picks that thread.
            step = lane.get("step")
            if not isinstance(step, int) or not 0 <= step < run.steps:
                raise dash.exceptions.PreventUpdate
            tid = int(run.tid[step])
            if tid not in {r["tid"] for r in choices(run, n)}:
                raise dash.exceptions.PreventUpdate
        else:
            raise dash.exceptions.PreventUpdate
        sched, pending, message = pick_outputs(store, info, n, tid)
        if message:
            return no_update, no_update, html.Div(message, className="error-box")
        return sched, pending, None

    @app.callback(
        Output("explore-job", "data"),
        Output("explore-poll", "disabled", allow_duplicate=True),
        Output("explore-progress", "children", allow_duplicate=True),
        Output("explore-result", "children", allow_duplicate=True),
        Input("explore-go", "n_clicks"),
        State("run", "data"),
        State("patches", "value"),
        State("explore-preemptions", "value"),
        State("explore-seconds", "value"),
        prevent_initial_call=True,
    )
    def on_explore(
        _clicks: Any, info: Any, patches: Any, preemptions: Any, seconds: Any
    ) -> tuple[Any, ...]:
        scenario, request = explore_request(store, info, patches, preemptions, seconds)
        if scenario is None or not isinstance(request, dict):
            return no_update, True, None, html.Div(str(request), className="error-box")
        job, why = jobs.submit(scenario, request)
        if job is None:
            return no_update, True, None, html.Div(why, className="error-box")
        bar = html.Div(
            [html.Progress(value="0", max="100", id="explore-bar"), html.Span(" searching…")]
        )
        return job, False, bar, None

    @app.callback(
        Output("explore-progress", "children"),
        Output("explore-result", "children"),
        Output("explore-poll", "disabled"),
        Output("patches", "value", allow_duplicate=True),
        Output("sched", "data", allow_duplicate=True),
        Output("pending-step", "data", allow_duplicate=True),
        Output("view", "value", allow_duplicate=True),
        Input("explore-poll", "n_intervals"),
        State("explore-job", "data"),
        prevent_initial_call=True,
    )
    def on_explore_poll(_n: Any, job: Any) -> tuple[Any, ...]:
        if not isinstance(job, str):
            raise dash.exceptions.PreventUpdate
        out = explore_view(store, jobs.status(job))
        view = "single" if out["sched"] is not no_update else no_update
        return (
            out["progress"],
            out["result"],
            out["poll_disabled"],
            out["patches"],
            out["sched"],
            out["pending"],
            view,
        )
