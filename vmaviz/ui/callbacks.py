"""The callbacks: thin wrappers that read the inputs, call the functions here, and return.

Data flow::

    url / scenario dropdown / upload --select_scenario--> controls (+ pending step)
    controls --load_run--> #run store, #body (views of the chosen layout), cursor
    buttons / keys / slider / timer / timeline click / log click --navigate--> cursor
    cursor --show_step--> every view of every side (sent only when it changed)

The heavy lifting is in :func:`load_run_views` and :func:`step_views`, which take plain
values and a :class:`~vmaviz.ui.session.RunStore`, so they can be timed and tested
without a browser. Nothing here keeps state between requests: the browser sends the
session id, configuration and cursor with every call, and the server's cache does the
rest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from functools import partial
from typing import Any

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update

from vmaviz.engine.view import snapshot
from vmaviz.model.kernel import ABORT_REASONS
from vmaviz.scenario import Scenario, ScenarioErrors
from vmaviz.scenario.schema import ARCHES
from vmaviz.ui import components as C
from vmaviz.ui import layout as L
from vmaviz.ui import wire
from vmaviz.ui.html_render import dom_id, to_html
from vmaviz.ui.lessons import expand_search
from vmaviz.ui.palette import format_ns
from vmaviz.ui.session import (
    MAX_SCHED,
    SIDES,
    Config,
    RunData,
    RunStore,
    ScenarioMissing,
    SessionState,
    bundled_scenarios,
    checked_sched,
    describe_error,
    from_query,
    patch_overrides,
    patches_on,
    paused_gc,
    to_query,
    upload_text,
)
from vmaviz.ui.source_panel import source_view
from vmaviz.ui.stepping import Breakpoints, LogFilter, Track, log_kinds, log_rows, row_dict
from vmaviz.ui.thread_step import thread_navigate

#: Threads and VMAs shown in the state tables; the rest are summarised in one line.
MAX_THREAD_ROWS = 16
MAX_VMA_ROWS = 24
#: Runs of the other arches (for the per-arch counters) are skipped past this size.
ARCH_RUNS_MAX_STEPS = 300_000

SIDE_TITLES = {
    "mmap_lock": "mmap_lock only (before 6.4)",
    "per_vma": "per-VMA locks (Linux 6.4)",
}


# =====================================================================
# Helpers
# =====================================================================


def scenario_option(ref: str, scenario: Scenario | None = None) -> dict[str, str]:
    if ref.startswith("upload:"):
        name = scenario.name if scenario is not None else ref[7:19]
        return {"label": f"uploaded: {name}", "value": ref}
    return {"label": ref, "value": ref}


def bundled_options() -> list[dict[str, str]]:
    return [scenario_option(name) for name in bundled_scenarios()]


def config_of(data: dict[str, Any] | None) -> Config:
    return Config(**(data or {})).checked()


def runs_of(store: RunStore, info: dict[str, Any]) -> list[RunData]:
    """The runs of a ``#run`` store (from the worker's memory, the cache, or re-run)."""
    config = config_of(info.get("config"))
    # Each side re-runs from its own configuration (patch compare view: the right
    # side has the patches back on) when it is in neither memory nor the cache.
    sides = config.side_configs()
    if len(sides) != len(info["sides"]):
        raise ScenarioMissing("the page's sides do not match its configuration; reload it")
    return [
        store.cached_run(s["key"], side_config, s["mode"], s["arch"])
        for s, (side_config, _mode) in zip(info["sides"], sides, strict=True)
    ]


def track_of(store: RunStore, runs: Sequence[RunData]) -> Track:
    if len(runs) == 1:
        return Track(runs)
    key = "track:" + "+".join(r.key for r in runs)
    track: Track = store.get_or_build(key, lambda: Track(runs))
    return track


def options(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in values]


# =====================================================================
# select_scenario: URL, dropdown and upload -> controls
# =====================================================================


def select_scenario(
    store: RunStore,
    trigger: str | None,
    search: str | None,
    ref: str | None,
    contents: str | None,
    filename: str | None,
    current_options: list[dict[str, str]] | None,
) -> tuple[Any, ...]:
    """Outputs: scenario value, options, mode, arch, cpus, seed, view, pending step,
    errors, patches (the names on), forced schedule, compare kind."""
    opts = list(current_options or bundled_options())
    known = {o["value"] for o in opts}

    def with_option(new_ref: str, scenario: Scenario) -> list[dict[str, str]]:
        return opts if new_ref in known else [*opts, scenario_option(new_ref, scenario)]

    if trigger == "upload":
        try:
            text = upload_text(contents, filename)
            new_ref, scenario = store.save_upload(text, filename or "uploaded.yaml")
        except ScenarioErrors as exc:
            errors = _errors(str(exc), title="The scenario has errors:")
            return (*[no_update] * 8, errors, no_update, no_update, no_update)
        except ValueError as exc:
            return (*[no_update] * 8, _errors(str(exc)), no_update, no_update, no_update)
        k = scenario.kernel
        return (
            new_ref,
            with_option(new_ref, scenario),
            k.mode,
            k.arch,
            k.cpus,
            k.seed,
            no_update,
            None,
            html.Div(
                f"Loaded {filename or 'the upload'}: scenario {scenario.name}.",
                className="upload-ok",
            ),
            patches_on(scenario, ()),
            [],
            no_update,
        )

    if trigger == "scenario" and ref:
        try:
            scenario = store.scenario(ref)
        except (ScenarioMissing, ScenarioErrors) as exc:
            return (
                *[no_update] * 8,
                _errors(describe_error(exc)),
                no_update,
                no_update,
                no_update,
            )
        k = scenario.kernel
        own = patches_on(scenario, ())
        kernel = (k.mode, k.arch, k.cpus, k.seed)
        return (no_update, no_update, *kernel, no_update, None, None, own, [], no_update)

    # The page was (re)loaded: restore everything the query string names; what it
    # does not name comes from the scenario's own settings.
    # A lesson's permalink names its checkpoint: open the lesson's run at its step.
    search = expand_search(store, search)
    config, step, named = from_query(search)
    notes: list[str] = []
    if named.get("scenario") == "refused":
        notes.append("The link names no scenario that exists here: showing the default one.")
    # An edited scenario the link carries (``yaml=``; vmaviz/ui/editor.py): parsed by
    # the safe loader only, and saved as an upload.
    from vmaviz.ui.editor import restore_from_query

    carried, carried_note = restore_from_query(store, search)
    if carried is not None:
        config = replace(config, scenario=carried)
    elif carried_note:
        notes.append(carried_note)
    try:
        scenario = store.scenario(config.scenario)
    except (ScenarioMissing, ScenarioErrors) as exc:
        notes.append(f"{config.scenario}: {describe_error(exc)} Showing the default one.")
        config, step, named = Config(), None, {}
        scenario = store.scenario(config.scenario)
    for key, what in (("patches", "patches"), ("sched", "schedule")):
        if named.get(key) == "refused":
            notes.append(
                f"The link's {what} is refused ({named.get(key + '_reason', 'not valid')}): "
                f"the scenario's own {what} is used instead."
            )
    if named.get("compare") == "refused":
        notes.append(
            "The link's compare is refused (expected modes or patches): "
            "compare view compares the two modes instead."
        )
    special = ("scenario", "patches", "sched", "compare")
    refused = [k for k, v in named.items() if v == "refused" and k not in special]
    if refused:
        verb = "is" if len(refused) == 1 else "are"
        notes.append(
            f"The link's {', '.join(refused)} {verb} not valid here: "
            "the scenario's own settings are used instead."
        )
    k = scenario.kernel

    def pick(name: str, own: Any) -> Any:
        return getattr(config, name) if named.get(name) == "ok" else own

    config = Config(
        config.scenario,
        mode=pick("mode", k.mode),
        arch=pick("arch", k.arch),
        cpus=pick("cpus", k.cpus),
        seed=pick("seed", k.seed),
        view=config.view,
        patches=config.patches,
        sched=config.sched,
        compare=config.compare,
    )
    return (
        config.scenario,
        with_option(config.scenario, scenario),
        config.mode,
        config.arch,
        config.cpus,
        config.seed,
        config.view,
        step,
        _errors("\n".join(notes)) if notes else None,
        patches_on(scenario, config.patches),
        list(config.sched),
        config.compare,
    )


def _errors(message: str, title: str = "") -> html.Div:
    parts: list[Any] = []
    if title:
        parts.append(html.Strong(title))
    parts.append(html.Pre(message, className="error-lines"))
    return html.Div(parts, className="error-box")


# =====================================================================
# load_run: controls -> runs, body, cursor
# =====================================================================

LOAD_OUTPUTS = (
    "run",
    "body",
    "cursor",
    "sent",
    "figures_sent",
    "error",
    "info",
    "bp_reason",
    "bp_thread",
    "bp_function",
    "bp_vma",
    "log_thread",
    "log_kind",
    "log_vma",
    "log_side_options",
    "log_side_value",
    "log_side_hidden",
    "pending",
    "delta",
    "delta_hidden",
    "counters_title",
    "jump_placeholder",
)


def load_run_views(
    store: RunStore,
    scenario: str | None,
    mode: str | None,
    arch: str | None,
    cpus: Any,
    seed: Any,
    view: str | None,
    pending: int | None,
    patches: Sequence[str] | None = None,
    sched: Sequence[int] | None = None,
    compare: str | None = None,
) -> dict[str, Any]:
    """Run the configuration (memoised) and lay out its views; see :data:`LOAD_OUTPUTS`.

    ``patches`` are the names ticked (``None``: the scenario's own settings);
    ``sched`` the forced schedule (be the scheduler, an explorer's counterexample);
    ``compare`` what compare view compares (``modes`` or ``patches``).
    """
    from vmaviz.ui.panels import delta_table

    out: dict[str, Any] = dict.fromkeys(LOAD_OUTPUTS, no_update)
    problems = []
    if not isinstance(cpus, int) or isinstance(cpus, bool) or not 1 <= cpus <= 256:
        problems.append("CPUs must be a whole number from 1 to 256.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.append("The seed must be a whole number, 0 or more.")
    if problems:
        out["error"] = _errors("\n".join(problems))
        return out
    config = Config(
        scenario or "",
        mode or "",
        arch or "",
        int(cpus),
        int(seed),
        view or "",
        compare=compare or "",
    ).checked()
    try:
        sc = store.scenario(config.scenario)
        overrides = patch_overrides(sc, patches) if patches is not None else ()
        config = replace(config, patches=overrides, sched=checked_sched(tuple(sched or ())))
        if sched and not config.sched:
            raise ValueError(f"the schedule is not a list of at most {MAX_SCHED} thread ids")
        side_configs = config.side_configs()
        runs = [store.run(c, mode=m) for c, m in side_configs]
    except (ScenarioMissing, ScenarioErrors, ValueError, RuntimeError) as exc:
        out["error"] = _errors(describe_error(exc))
        return out
    track = track_of(store, runs)
    sides = list(zip(SIDES, runs, strict=False))
    labels = [SIDE_TITLES[r.mode] for r in runs]
    if config.compares_patches:
        labels = [patches_label(c.patches) for c, _m in side_configs]
    titles = [
        f"{label} · {r.arch} · {r.steps:,} steps{_left_schedule_note(r)}"
        if len(runs) > 1
        else f"{sc.name}: {label} · {r.arch}"
        for r, label in zip(runs, labels, strict=True)
    ]
    # The lanes are drawn in the browser from their data; stacked in compare view,
    # they share one time range (assets/vmaviz.js: Lanes).
    # Built once per run and title (this worker's memory), as a warm open must be quick.
    lanes = [
        store.get_or_build(f"lanes:{run.key}:{title}", partial(_lanes_of, run, title))
        for run, title in zip(runs, titles, strict=True)
    ]
    if config.sched and (len(runs) == 1 or config.compares_patches):
        # A forced schedule (be the scheduler, an explored race): mark where it
        # switches thread, the points the story of the race turns on (on each side,
        # up to where that side left the schedule).
        lanes = [
            _with_marks(lane, run, config.sched) for lane, run in zip(lanes, runs, strict=True)
        ]
    # Counters per arch: the same scenario and mode on every simulated arch.
    # The run shown is one of them; the others run in the background (RunStore.warm)
    # and join the counters as they finish, so the page opens on its own run.
    # (Patch compare view: both sides run the page's mode; the counters follow the
    # left side's patches, as the other arches run the page's configuration.)
    counter_mode = "per_vma" if config.view == "compare" else config.mode
    if config.compares_patches:
        counter_mode = config.mode
    main = next((r for r in runs if r.mode == counter_mode), runs[-1])
    counter_arches = [main.arch]
    if max(r.steps for r in runs) <= ARCH_RUNS_MAX_STEPS:
        counter_arches = list(ARCHES)
        store.warm(config, counter_mode, [a for a in ARCHES if a != main.arch])

    start = track.clamp(pending) if pending is not None else 0
    info = {
        "config": asdict(config),
        "sides": [
            {
                "side": side,
                "key": run.key,
                "mode": run.mode,
                "arch": run.arch,
                "steps": run.steps,
                "title": title,
            }
            for (side, run), title in zip(sides, titles, strict=True)
        ],
        "counter_arches": counter_arches,
        "counter_mode": counter_mode,
        "total": track.total,
    }
    out["run"] = info
    out["body"] = L.body(
        config.view, [(s, t) for (s, _), t in zip(sides, titles, strict=True)], lanes
    )
    if config.compares_patches:
        out["delta"] = {"html": {"delta-table": to_html(patch_delta_table(labels, runs))}}
        out["delta_hidden"] = False
        out["counters_title"] = (
            f"Per-VMA lock events by arch ({config.mode} run of each arch with the left "
            "side's patches), up to the cursor's time"
        )
    elif config.view == "compare":
        # As HTML text, drawn by the browser (assets/vmaviz.js: render): with a row per
        # thread it was hundreds of Dash components, each costing the renderer time on
        # every later step.
        out["delta"] = {
            "html": {"delta-table": to_html(delta_table({r.mode: r.summary for r in runs}))}
        }
        out["delta_hidden"] = False
        out["counters_title"] = (
            "Per-VMA lock events by arch (per_vma run of each arch), up to the cursor's time"
        )
    else:
        out["delta"] = {"html": {"delta-table": ""}}
        out["delta_hidden"] = True
        out["counters_title"] = (
            f"Per-VMA lock events by arch ({config.mode} run of each arch), up to the cursor"
        )
    out["jump_placeholder"] = "merged step" if config.view == "compare" else "step"
    # The scrubber follows the cursor in the browser (assets/vmaviz.js: render).
    out["cursor"] = start
    out["sent"] = {}
    out["figures_sent"] = {}
    out["error"] = None
    out["info"] = scenario_info(sc, _look_at_links(store, sc, sides[0][0], sides[0][1]))
    names = sorted({n for r in runs for n in r.thread_names})
    vmas = sorted({n for r in runs for n in r.vma_names.values()})
    functions = sorted({f for r in runs for f in r.functions})
    kinds = sorted({k for r in runs for k in log_kinds(r)})
    out["bp_reason"] = options(ABORT_REASONS)
    out["bp_thread"] = options(names)
    out["bp_function"] = options(functions)
    out["bp_vma"] = options(vmas)
    out["log_thread"] = options([*names, "rcu"])
    out["log_kind"] = options(kinds)
    out["log_vma"] = options(vmas)
    out["log_side_options"] = [
        {"label": label, "value": side} for (side, _r), label in zip(sides, labels, strict=True)
    ]
    out["log_side_value"] = "left" if len(runs) == 1 else "right"
    out["log_side_hidden"] = len(runs) == 1
    out["pending"] = None
    return out


def _with_marks(lanes: dict[str, Any], run: RunData, sched: Sequence[int]) -> dict[str, Any]:
    """The lanes with a mark at each step where the forced schedule switches thread
    (up to where the run left the schedule, when it followed it leniently)."""
    from vmaviz.ui.lanes import TIME_SCALE
    from vmaviz.ui.scheduler import preemption_points

    end = run.left_schedule[0] if run.left_schedule is not None else len(sched)
    marks = [
        {"us": float(run.time[p]) / TIME_SCALE, "step": p, "label": run.thread_name(sched[p])}
        for p in preemption_points(list(sched))
        if p < min(run.steps, end)
    ]
    return {**lanes, "marks": marks}


def patches_label(patches: tuple[tuple[str, bool], ...]) -> str:
    """A patch compare side's title: the patch overrides it runs with (the patches
    the model leaves off by default, later fixes, are not listed)."""
    off = [name for name, on in patches if not on]
    on = [name for name, on in patches if on]
    parts = [", ".join(off) + " off"] if off else []
    parts += [", ".join(on) + " on"] if on else []
    return "; ".join(parts) or "the scenario's own patches"


def _left_schedule_note(run: RunData) -> str:
    """`` · left the schedule at step N`` for a run that could not follow it all."""
    if run.left_schedule is None:
        return ""
    step, tid = run.left_schedule
    return f" · left the schedule at step {step:,} ({run.thread_name(tid)} could not move)"


def patch_delta_table(labels: Sequence[str], runs: Sequence[RunData]) -> html.Table:
    """Patch compare view's whole-run summary: each side's steps, violations, makespan
    and where it left the forced schedule."""

    def first_violation(run: RunData) -> str:
        rows = run.violation_rows
        return f"step {int(rows[0]):,}" if len(rows) else "none"

    def left(run: RunData) -> str:
        if run.left_schedule is None:
            return "followed it"
        return f"step {run.left_schedule[0]:,} ({run.thread_name(run.left_schedule[1])})"

    metrics: list[tuple[str, Callable[[RunData], str]]] = [
        ("steps", lambda r: f"{r.steps:,}"),
        ("invariant violations", lambda r: f"{len(r.engine.k.violations):,}"),
        ("first violation", first_violation),
        ("left the forced schedule at", left),
        ("last step at", lambda r: format_ns(int(r.time[-1])) if r.steps else "0"),
    ]
    head = html.Tr([html.Th(""), *[html.Th(label, scope="col") for label in labels]])
    rows = [
        html.Tr([html.Th(name, scope="row"), *[html.Td(f(r), className="num") for r in runs]])
        for name, f in metrics
    ]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="delta-table")


def _lanes_of(run: RunData, title: str) -> dict[str, Any]:
    from vmaviz.engine.export import synced_trace
    from vmaviz.engine.flows import wake_flows
    from vmaviz.ui.lanes import timeline_data

    # The hand-off arrows travel with the lanes: sent once per run, never per step.
    flows = wake_flows(synced_trace(run.engine))
    return timeline_data(run.timeline, title=title, flows=flows)


def _look_at_links(store: RunStore, sc: Scenario, side: str, run: RunData) -> Any:
    """The look_at bullets as links to their steps, worked out once per run."""
    from vmaviz.ui.look_at import look_at_list, look_at_rows

    if not sc.look_at_targets:
        return None
    # The run key hashes what runs, not the bullets: they are part of this key.
    key = f"lookat:{run.key}:{hash(tuple(sc.look_at_targets))}"
    rows = store.get_or_build(key, lambda: look_at_rows(run, sc))
    return look_at_list(list(sc.look_at), rows, side)


def scenario_info(sc: Scenario, look_at: Any = None) -> list[Any]:
    parts: list[Any] = [html.Span(sc.name, className="scenario-name", title=sc.name)]
    if sc.question:
        parts.append(html.Span(sc.question, className="scenario-question"))
    details: list[Any] = [html.P(p) for p in sc.description.strip().split("\n\n") if p.strip()]
    if sc.look_at:
        details.append(html.P("Look at:", className="look-at-title"))
        # With targets, each bullet links to its step (vmaviz/ui/look_at.py).
        details.append(
            look_at
            if look_at is not None
            else html.Ul([html.Li(x) for x in sc.look_at], className="look-at")
        )
    parts.append(
        html.Details(
            [html.Summary("About this scenario"), html.Div(details, className="scenario-text")],
            className="scenario-details",
        )
    )
    return parts


# =====================================================================
# navigate: every way of moving the cursor
# =====================================================================


def navigate_to(
    store: RunStore,
    info: dict[str, Any] | None,
    cursor: int | None,
    trigger: Any,
    value: Any,
    granularity: str | None,
    jump: Any = None,
    bps: Breakpoints | None = None,
    log_side: str | None = None,
) -> tuple[int | None, str | None, bool]:
    """The new cursor for one user action.

    Returns:
        ``(cursor or None for no change, a status message or None, at_end)``.
    """
    if not info:
        return None, None, False
    runs = runs_of(store, info)
    track = track_of(store, runs)
    m = track.clamp(cursor)
    gran = granularity or "step"
    new: int | None = None
    message: str | None = None
    if trigger == "nav-request" and isinstance(value, dict) and "thread_move" in value:
        # A thread-level move (vmaviz.ui.thread_step): step/over/out/op of one thread.
        return thread_navigate(track, runs, m, value)
    if trigger == "nav-request":
        # A step button, key or Play tick at function/operation granularity, sent by
        # the browser (assets/vmaviz.js: step) as ``{"move": signed count, "play"}``.
        move = _int_field(value, "move")
        if move is None or move == 0 or gran == "step":
            return None, None, False
        new = track.move(m, gran, move)
    elif trigger == "log-click":
        # A click on an event-log row (assets/vmaviz.js sets ``{"step": N}``).
        row = _int_field(value, "step")
        if row is None:
            return None, None, False
        new = track.position(_side_index(info, log_side), row)
    elif trigger == "timeline-click":
        # A click on a bar of the lanes (assets/vmaviz.js: ``{"side", "step"}``).
        row = _int_field(value, "step")
        if row is None:
            return None, None, False
        side = value.get("side") if isinstance(value, dict) else None
        new = track.position(_side_index(info, side), row)
    elif trigger in ("jump-go", "jump"):
        try:
            target = int(jump)
        except (TypeError, ValueError, OverflowError):
            return None, "Type a step number to jump to.", False
        # Single view: the run's own step. Compare view: the step of both runs merged
        # in time order, the number the link and the scrubber use (the status line
        # gives each run's own step).
        last = track.total - 1
        if not 0 <= target <= last:
            what = "of both runs in time order " if len(track.runs) > 1 else ""
            return (
                None,
                f"There is no step {target:,} {what}here: the steps are 0 to {last:,}.",
                False,
            )
        new = target + 1
    elif trigger in ("bp-run", "bp-back"):
        if bps is None or not bps.kinds:
            return None, "Tick at least one breakpoint first (Breakpoints, above).", False
        forward = trigger == "bp-run"
        hit = track.breakpoint(m, bps, forward=forward)
        if hit is None:
            # Stay where the user is: jumping to an end would lose their place.
            where = "after" if forward else "before"
            return None, f"No breakpoint fires {where} this step; the cursor stays.", False
        new = hit
        message = f"Breakpoint: {_describe_current(track, hit, with_step=True)}"
    if new is None:
        return None, None, False
    return new, message, new >= track.total


def _int_field(value: Any, key: str) -> int | None:
    """``value[key]`` as an int, or None when the browser sent something else."""
    if not isinstance(value, dict):
        return None
    x = value.get(key)
    if isinstance(x, bool) or not isinstance(x, int | float) or x != x or abs(x) > 2**53:
        return None
    return int(x)


def _side_label(runs: Sequence[RunData], side: int) -> str:
    """A short name of a compare view side: its mode, or left/right when both
    sides run the same mode (patch compare view)."""
    if len({r.mode for r in runs}) < len(runs):
        return SIDES[side]
    return "mmap_lock" if runs[side].mode == "mmap_lock" else "per-VMA"


def _side_index(info: dict[str, Any], side: Any) -> int:
    for i, s in enumerate(info["sides"]):
        if s["side"] == side:
            return i
    return 0


def _describe_current(track: Track, m: int, with_step: bool = False) -> str:
    """The step that took the track to ``m``: ``main: vma_start_write:seq_set``."""
    for side, (run, row) in enumerate(zip(track.runs, track.current(m), strict=True)):
        if row is not None and track.position(side, row) == m:
            r = run.engine.trace.row(row)
            who = run.thread_name(int(r["tid"]))
            text = f"{who}: {r['event'] or '(' + (r['stack'][-1] if r['stack'] else 'step') + ')'}"
            if len(track.runs) > 1:
                text = f"{_side_label(track.runs, side)} {text}"
            return f"step {row:,}, {text}" if with_step else text
    return ""


# =====================================================================
# show_step: the views of every side at the cursor
# =====================================================================


def trim_snapshot(snap: dict[str, Any], current_tid: int | None) -> dict[str, Any]:
    """A copy of ``snap`` with at most MAX_THREAD_ROWS threads and MAX_VMA_ROWS VMAs.

    The rows kept are the interesting ones: the thread that just stepped, lock holders
    and waiters, running threads; locked, detached or changing VMAs. The counts of the
    rows left out are in ``snap["hidden"]``.
    """
    out = dict(snap)
    hidden = {"threads": 0, "vmas": 0}
    threads = snap["threads"]
    if len(threads) > MAX_THREAD_ROWS:

        def trank(th: dict[str, Any]) -> tuple[int, int]:
            score = 0
            if th["tid"] == current_tid:
                score -= 100
            if th["state"] in ("blocked", "spinning"):
                score -= 20
            if th["vma_read_locks"] or th["name"] in snap["mmap_lock"]["readers_held_by"]:
                score -= 10
            if th["name"] == snap["mmap_lock"].get("writer"):
                score -= 30
            if th["state"] == "running":
                score -= 5
            if th["state"] == "done":
                score += 10
            return score, th["tid"]

        keep = sorted(sorted(threads, key=trank)[:MAX_THREAD_ROWS], key=lambda t: t["tid"])
        hidden["threads"] = len(threads) - len(keep)
        out["threads"] = keep
    vmas = snap["vmas"]
    if len(vmas) > MAX_VMA_ROWS:

        def vrank(v: dict[str, Any]) -> tuple[int, int]:
            score = 0
            if v["state"] != "unlocked":
                score -= 20
            if v["waiters"]:
                score -= 10
            return score, v["start"]

        keep = sorted(sorted(vmas, key=vrank)[:MAX_VMA_ROWS], key=lambda v: (v["start"], v["id"]))
        hidden["vmas"] = len(vmas) - len(keep)
        out["vmas"] = keep
    out["hidden"] = hidden
    return out


def _hidden_note(n: int, what: str) -> Any:
    return html.P(f"… and {n:,} more {what}, not shown (see the event log).", className="hint")


class Views:
    """The figures the browser has, and how to bring them up to date cheaply.

    ``sent`` (a ``dcc.Store`` round-tripped through the browser) maps each view to
    the hash of the input it was drawn from; the session cache keeps the plain JSON
    last sent for each view. A view whose input hash is unchanged is not redrawn
    (``no_update``); a changed one is drawn and, when the browser has the previous
    version, sent as a :class:`dash.Patch` of the leaves that differ.
    """

    def __init__(self, state: SessionState, sent: dict[str, str] | None) -> None:
        self.state = state
        self.sent = dict(sent or {})
        self.new_sent = dict(self.sent)
        saved = state.get("views")
        self.saved: dict[str, Any] = saved if isinstance(saved, dict) else {}

    def view(self, name: str, h: str, build: Any) -> Any:
        """The update for view ``name`` whose content is ``build()``, drawn from an
        input whose hash is ``h``."""
        if self.sent.get(name) == h:
            return no_update
        return self._send(name, h, wire.plain(build()))

    def _send(self, name: str, h: str, new: Any) -> Any:
        """``new`` as a patch of what the browser has when possible; remember it."""
        old = self.saved.get(name)
        value: Any = new
        if old is not None and old[0] == self.sent.get(name):
            if old[1] == new:
                value = no_update  # a new input that draws the same
            else:
                patch = wire.patch_between(old[1], new)
                if patch is not None:
                    value = patch
        self.saved[name] = (h, new)
        self.new_sent[name] = h
        self.state.set("views", self.saved)
        return value


class HtmlViews:
    """The step's panels as HTML text, only those the browser does not have yet.

    ``sent`` (a ``dcc.Store`` round-tripped through the browser) maps each DOM id to
    the hash of the input its panel was drawn from. A panel whose input is unchanged
    is neither built nor sent; a changed one is built with :mod:`vmaviz.ui.panels`
    and written out by :func:`~vmaviz.ui.html_render.to_html`. ``assets/vmaviz.js``
    (``render``) puts each in its place.
    """

    def __init__(self, sent: dict[str, str] | None) -> None:
        self.sent = dict(sent or {}) if isinstance(sent, dict) else {}
        self.new_sent = dict(self.sent)
        self.html: dict[str, str] = {}

    def view(self, ident: str, key: Any, build: Any) -> None:
        h = wire.digest(key)
        if self.sent.get(ident) == h:
            return
        self.html[ident] = to_html(build())
        self.new_sent[ident] = h


def side_id(kind: str, side: str) -> str:
    """The DOM id of a side panel ``{"type": kind, "side": side}``."""
    return dom_id({"type": kind, "side": side})


def step_views(
    store: RunStore,
    info: dict[str, Any],
    cursor: Any,
    session: str,
    sent: dict[str, str] | None,
    flt: LogFilter,
    log_side: str | None,
    figs_sent: dict[str, str] | None = None,
    bps: Breakpoints | None = None,
) -> dict[str, Any]:
    """Every view at the cursor: ``"html"``, ``"sent"`` and ``"arches_pending"``.

    ``"html"`` is what the browser's ``render`` takes: the changed panels as HTML
    text by DOM id (``"html"``), the event log's current row, the cursor and total,
    the permalink's query string (``"search"``), each side's cursor time in µs for
    the timeline overlay (``"cursor_x"``), what the step changed, and
    ``"figures"``. The memory figures and the counters are not drawn here: when
    their input changed, ``"figures"`` names them and :func:`figure_views` (a
    second callback, asked for by the browser for those on screen) draws them, so
    that the text views arrive first.
    """
    from vmaviz.engine.narrate import Narration, narrate
    from vmaviz.ui import panels as P
    from vmaviz.ui.changes import step_changes
    from vmaviz.ui.figures import dead_nodes
    from vmaviz.ui.lanes import TIME_SCALE

    runs = runs_of(store, info)
    track = track_of(store, runs)
    m = track.clamp(cursor)
    ns = track.split(m)
    t = track.time_at(m)
    state = store.session(session, "step")
    views = HtmlViews(sent)
    out: dict[str, Any] = {}
    figs_sent = dict(figs_sent or {})
    request: dict[str, str] = {}
    stash: dict[str, Any] = {}

    def want(name: str, data: Any, key: Any = None) -> None:
        """Ask :func:`figure_views` for figure ``name`` unless the browser has it."""
        h = wire.digest(data if key is None else key)
        if figs_sent.get(name) != h:
            stash[name] = (h, data)
            request[name] = h

    cursor_times: dict[str, float] = {}
    changed: dict[str, Any] = {}
    for i, (side_info, run) in enumerate(zip(info["sides"], runs, strict=True)):
        side = side_info["side"]
        n = ns[i]
        before, after = state.kernels(i, run, n)
        snap = snapshot(after)
        # What this step changed, for the marks in every view (vmaviz/ui/changes.py).
        memo = store.snapshot_memo
        prev = memo.previous_snapshot(session, side, run.key, n, before)
        changed[side] = step_changes(prev, snap)
        memo.remember(session, side, run.key, n, snap)
        row = n - 1 if n > 0 else None
        current_tid = int(run.tid[row]) if row is not None else None
        if row is not None:
            narration = narrate(run.engine, row, before, after)
        else:
            narration = Narration(
                title="Before the first step",
                text=(
                    f"`{run.engine.scenario.name}`: the initial state, with "
                    f"{len(snap['vmas'])} VMAs and {len(snap['threads'])} threads. "
                    "Press → (or ▶) to run step 0."
                ),
                function="",
                source="",
                reason="",
            )
        shown = trim_snapshot(snap, current_tid)
        hidden = shown["hidden"]
        views.view(
            side_id("narration", side), [run.key, row], lambda n=narration: P.narration_panel(n)
        )
        # The step's Linux 6.4 source and the model's code, one panel per side. Its
        # key is the step's code, stack and reason: in compare view the side that
        # did not move keeps its key and sends nothing.
        views.view(side_id("source", side), *source_view(run, row, narration.reason))
        # Each panel is redrawn only when the part of the snapshot it reads changed.
        seq = snap["mm_lock_seq"]
        views.view(
            side_id("vma-table", side),
            [shown["vmas"], seq, hidden["vmas"]],
            lambda items=shown["vmas"], q=seq, k=hidden["vmas"]: _with_note(
                P.vma_table({"vmas": items, "mm_lock_seq": q}), k, "VMAs"
            ),
        )
        views.view(
            side_id("mmap-lock", side),
            [snap["mmap_lock"], snap["now_ns"], snap["mm_lock_seq"]],
            lambda s=snap: P.mmap_lock_panel(s),
        )
        views.view(
            side_id("threads", side),
            [shown["threads"], hidden["threads"]],
            lambda items=shown["threads"], k=hidden["threads"]: _with_note(
                P.threads_panel({"threads": items}), k, "threads"
            ),
        )
        views.view(
            side_id("rcu", side),
            [snap["rcu"], snap["dead_nodes_pending"]],
            lambda s=snap: P.rcu_panel(s),
        )
        views.view(
            side_id("violations", side), snap["violations"], lambda s=snap: P.violations_panel(s)
        )
        # The figures read these keys of the snapshot (and only these).
        want(
            f"address-space:{side}",
            {"vmas": snap["vmas"], "mm_lock_seq": snap["mm_lock_seq"], "mode": snap["mode"]},
        )
        # The nodes this step wrote are outlined: their ids are part of the input,
        # so the tree is redrawn when the marks move and not otherwise.
        tree_marks = changed[side].get("tree", [])
        want(
            f"maple-tree:{side}",
            {
                "snap": {"vmas": snap["vmas"], "tree": snap["tree"], "mode": snap["mode"]},
                "dead": dead_nodes(after),
                "changed": tree_marks,
            },
            key=[snap["vmas"], snap["tree"], snap["rcu"]["pending"], tree_marks],
        )
        # The timeline's cursor is an overlay the browser moves (assets/vmaviz.js:
        # render, Lanes.setCursor): redrawing a figure of thousands of bars per step is what
        # made stepping slow. In compare view both sides show the merged cursor's time.
        x = t if len(runs) > 1 else (int(run.time[row]) if row is not None else 0)
        cursor_times[side] = int(x) / TIME_SCALE

    # Counters per arch, up to the cursor's time (exactly the cursor for its own run).
    # An arch still running in the background is left out until it has finished
    # (``arches_pending`` makes the browser ask again; see the arch-poll timer).
    per_arch: dict[str, dict[str, Any]] = {}
    config = config_of(info.get("config"))
    counter_mode = info.get("counter_mode", config.mode)
    # The first side of the counters' mode counts (patch compare view: the left,
    # whose patches the other arches' runs have too).
    by_arch: dict[str, tuple[RunData, int]] = {}
    for i, r in enumerate(runs):
        if r.mode == counter_mode:
            by_arch.setdefault(r.arch, (r, ns[i]))
    pending: list[str] = []
    # The counters the step changed, per arch: those that differ from one step of the
    # cursor back (the same rule, at m - 1, as the counts themselves).
    counter_marks: dict[str, list[str]] = {}
    prev_ns = track.split(m - 1) if m > 0 else None
    prev_t = track.time_at(m - 1) if m > 0 else None
    for arch in info.get("counter_arches") or []:
        if arch in by_arch:
            run, n = by_arch[arch]
            side_i = next(i for i, r in enumerate(runs) if r is run)
            n0 = prev_ns[side_i] if prev_ns is not None else None
        else:
            found = store.peek_run(config, counter_mode, arch)
            if found is None:
                pending.append(arch)
                continue
            run = found
            n = int(run.time.searchsorted(t, side="right")) if m < track.total else run.steps
            n0 = int(run.time.searchsorted(prev_t, side="right")) if prev_t is not None else None
        per_arch[arch] = run.counters_at(n)
        if n0 is not None and n0 != n:
            counter_marks[arch] = _counter_changes(run.counters_at(n0), per_arch[arch])
    want("counters", {"per_arch": per_arch, "changed": counter_marks})
    out["arches_pending"] = pending

    # The event log of one side: a page of rows around its current row.
    li = _side_index(info, log_side)
    log_run = runs[li]
    current = ns[li] - 1 if ns[li] > 0 else None
    rows = log_rows(log_run, current, flt)
    here = -1 if current is None else current
    # The page of rows is drawn without a current row, so that it is sent only when
    # the page changes; the browser marks the current row (``log_current``).
    views.view(
        "event-log",
        [log_run.key, rows],
        lambda: P.event_log([row_dict(log_run, r) for r in rows], -1),
    )
    if stash:
        state.set("figures", stash)
    state.save()
    status = _status(track, m, t)
    views.view("step-status", status, lambda: status)
    # The cursor and the total, for the browser's own step keys and the scrubber
    # (assets/vmaviz.js: Nav, render); the link's query string; each side's cursor
    # time (µs) for the timeline overlay; the figures to draw, if any changed.
    out["html"] = {
        "html": views.html,
        "log_current": here,
        "cursor": m,
        "total": track.total,
        "changed": changed,
        "search": to_query(config, m, bps.to_params() if bps is not None else None),
        "cursor_x": cursor_times,
        "figures": request or None,
    }
    out["sent"] = views.new_sent
    return out


def _counter_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The counters (``group.key``) that differ between two ``counters_at`` dicts."""
    out: list[str] = []
    for group in ("vma_lock", "abort_reasons"):
        old, new = before.get(group) or {}, after.get(group) or {}
        out.extend(f"{group}.{k}" for k in new if old.get(k) != new[k])
    return out


def _with_note(panel: Any, hidden: int, what: str) -> Any:
    return [panel, _hidden_note(hidden, what)] if hidden else panel


def figure_views(
    store: RunStore, session: str, request: dict[str, str] | None, sent: dict[str, str] | None
) -> dict[str, Any]:
    """Draw the figures a step asked for: ``{name: figure or Patch}`` plus ``"sent"``.

    Their inputs were left in the session cache by :func:`step_views`; a figure whose
    input was replaced since (the user stepped on) is skipped, the newer request
    will draw it.
    """
    from vmaviz.ui.figures import address_space_figure, counters_figure, maple_tree_figure

    state = store.session(session, "figures")
    views = Views(state, sent)
    stash = store.session(session, "step").get("figures") or {}
    out: dict[str, Any] = {}
    for name, h in (request or {}).items():
        stashed = stash.get(name)
        if not isinstance(stashed, tuple) or stashed[0] != h:
            continue
        data = stashed[1]
        kind = name.split(":", 1)[0]
        if kind == "address-space":
            build: Any = lambda d=data: address_space_figure(d)  # noqa: E731
        elif kind == "maple-tree":
            build = lambda d=data: maple_tree_figure(  # noqa: E731
                d["snap"], dead=d["dead"], changed=d.get("changed")
            )
        elif kind == "counters":
            build = lambda d=data: counters_figure(  # noqa: E731
                d["per_arch"], changed=d["changed"]
            )
        else:
            continue
        # ``h`` is the hash step_views compared with ``figures-sent``: store it as is,
        # or every later step would ask for every figure again.
        out[name] = views.view(name, h, build)
    state.save()
    out["sent"] = views.new_sent
    return out


def _status(track: Track, m: int, t: int) -> list[Any]:
    """``step 41 / 498 · t = 5.2 µs · main: vma_start_write:seq_set`` (per side in compare)."""
    if m == 0:
        return [html.Strong("initial state"), " (no step run yet) · → runs step 0"]
    parts: list[Any] = []
    rows = track.current(m)
    if len(track.runs) == 1:
        parts += [html.Strong(f"step {rows[0]:,}"), f" / {track.total - 1:,}"]
    else:
        for side, row in enumerate(rows):
            label = _side_label(track.runs, side)
            shown = f"{row:,}" if row is not None else "-"
            parts += [f"{label}: ", html.Strong(f"step {shown}"), " · "]
        parts.pop()
    parts.append(f" · t = {format_ns(t)}")
    desc = _describe_current(track, m)
    if desc:
        parts += [" · ", html.Code(desc)]
    return parts


# =====================================================================
# Exports
# =====================================================================


def export_file(store: RunStore, info: dict[str, Any], which: str, side: str | None) -> Any:
    """The ``dcc.Download`` data for one export of the run on ``side``."""
    from vmaviz.engine import export

    runs = runs_of(store, info)
    run = runs[_side_index(info, side)]
    engine = run.engine
    stem = f"{engine.scenario.name}-{run.mode}-{run.arch}"
    if which == "export-csv":
        buf = io.StringIO()
        export.to_csv(engine, buf)
        return dcc.send_string(buf.getvalue(), f"{stem}.csv", type="text/csv")
    if which == "export-perfetto":
        doc = export.to_perfetto(engine)
        return dcc.send_string(
            json.dumps(doc, separators=(",", ":")), f"{stem}.perfetto.json", type="application/json"
        )
    text = engine.scenario.source_text or ""
    return dcc.send_string(text, f"{engine.scenario.name}.yaml", type="application/x-yaml")


# =====================================================================
# Registration
# =====================================================================


def _outputs_order(spec: list[dict[str, Any]] | dict[str, Any]) -> list[str]:
    """The sides of an ALL output, in the order Dash wants the values."""
    items = spec if isinstance(spec, list) else [spec]
    return [item["id"]["side"] for item in items]


#: The breakpoint controls, in :meth:`Breakpoints.from_ui` order.
BP_STATES = tuple(
    State(ident, "value")
    for ident in ("bp-kinds", "bp-reason", "bp-thread", "bp-function", "bp-vma")
)


def register(app: dash.Dash, store: RunStore) -> None:
    """Attach every callback of the app to ``app``, serving runs from ``store``."""

    @app.callback(
        Output("scenario", "value"),
        Output("scenario", "options"),
        Output("mode", "value"),
        Output("arch", "value"),
        Output("cpus", "value"),
        Output("seed", "value"),
        Output("view", "value"),
        Output("pending-step", "data"),
        Output("upload-errors", "children"),
        Output("patches", "value"),
        Output("sched", "data"),
        Output("compare-kind", "value"),
        Input("url", "search"),
        Input("scenario", "value"),
        Input("upload", "contents"),
        State("upload", "filename"),
        State("scenario", "options"),
    )
    def on_select(
        search: str | None,
        ref: str | None,
        contents: str | None,
        filename: str | None,
        opts: list[dict[str, str]] | None,
    ) -> tuple[Any, ...]:
        trigger = ctx.triggered_id if isinstance(ctx.triggered_id, str) else None
        return select_scenario(store, trigger, search, ref, contents, filename, opts)

    @app.callback(
        Output("run", "data"),
        Output("body", "children"),
        Output("cursor", "data", allow_duplicate=True),
        Output("sent", "data", allow_duplicate=True),
        Output("figures-sent", "data", allow_duplicate=True),
        Output("run-error", "children"),
        Output("scenario-info", "children"),
        Output("bp-reason", "options"),
        Output("bp-thread", "options"),
        Output("bp-function", "options"),
        Output("bp-vma", "options"),
        Output("log-thread", "options"),
        Output("log-kind", "options"),
        Output("log-vma", "options"),
        Output("log-side", "options"),
        Output("log-side", "value"),
        Output("log-side-box", "hidden"),
        Output("pending-step", "data", allow_duplicate=True),
        Output("delta-html", "data"),
        Output("delta-box", "hidden"),
        Output("counters-title", "children"),
        Output("jump", "placeholder"),
        Input("scenario", "value"),
        Input("mode", "value"),
        Input("arch", "value"),
        Input("cpus", "value"),
        Input("seed", "value"),
        Input("view", "value"),
        Input("patches", "value"),
        Input("sched", "data"),
        Input("compare-kind", "value"),
        State("pending-step", "data"),
        prevent_initial_call=True,
    )
    def on_config(
        scenario: str | None,
        mode: str | None,
        arch: str | None,
        cpus: Any,
        seed: Any,
        view: str | None,
        patches: list[str] | None,
        sched: list[int] | None,
        compare: str | None,
        pending: int | None,
    ) -> tuple[Any, ...]:
        out = load_run_views(
            store, scenario, mode, arch, cpus, seed, view, pending, patches, sched, compare
        )
        return tuple(out[k] for k in LOAD_OUTPUTS)

    @app.callback(
        Output("cursor", "data"),
        Output("bp-status", "children"),
        Output("play-timer", "disabled", allow_duplicate=True),
        Output("play", "children", allow_duplicate=True),
        Input("nav-request", "data"),
        Input("log-click", "data"),
        Input("jump-go", "n_clicks"),
        Input("jump", "n_submit"),
        Input("bp-run", "n_clicks"),
        Input("bp-back", "n_clicks"),
        Input("timeline-click", "data"),
        State("cursor", "data"),
        State("run", "data"),
        State("granularity", "value"),
        State("jump", "value"),
        State("bp-kinds", "value"),
        State("bp-reason", "value"),
        State("bp-thread", "value"),
        State("bp-function", "value"),
        State("bp-vma", "value"),
        State("log-side", "value"),
        State("play-timer", "disabled"),
        prevent_initial_call=True,
    )
    def on_navigate(*args: Any) -> tuple[Any, ...]:
        (
            cursor,
            info,
            granularity,
            jump,
            bp_kinds,
            bp_reason,
            bp_thread,
            bp_function,
            bp_vma,
            log_side,
            paused,
        ) = args[-11:]
        trigger = ctx.triggered_id
        value = ctx.triggered[0]["value"] if ctx.triggered else None
        bps = Breakpoints.from_ui(bp_kinds, bp_reason, bp_thread, bp_function, bp_vma)
        new, message, at_end = navigate_to(
            store, info, cursor, trigger, value, granularity, jump, bps, log_side
        )
        # Play at function/operation granularity moves on the server (a nav-request
        # marked ``play``): it stops at the end, as Play by steps does in the browser.
        played = trigger == "nav-request" and isinstance(value, dict) and bool(value.get("play"))
        stop = at_end and not paused and played
        return (
            new if new is not None else no_update,
            message if message is not None else (no_update if new is None else ""),
            True if stop else no_update,
            "▶ Play" if stop else no_update,
        )

    @app.callback(
        Output("play-timer", "disabled"),
        Output("play", "children"),
        Input("play", "n_clicks"),
        State("play-timer", "disabled"),
        prevent_initial_call=True,
    )
    def on_play(_clicks: int | None, disabled: bool | None) -> tuple[bool, str]:
        playing = bool(disabled)  # it was paused: now it plays
        return (not playing, "⏸ Pause" if playing else "▶ Play")

    @app.callback(Output("play-timer", "interval"), Input("speed", "value"))
    def on_speed(ms: int | None) -> int:
        return int(ms) if ms else L.DEFAULT_SPEED

    @app.callback(
        Output("step-html", "data"),
        Output("sent", "data"),
        Output("arch-poll", "disabled"),
        Input("cursor", "data"),
        Input("arch-poll", "n_intervals"),
        Input("log-thread", "value"),
        Input("log-kind", "value"),
        Input("log-vma", "value"),
        Input("log-side", "value"),
        State("run", "data"),
        State("session-id", "data"),
        State("sent", "data"),
        State("figures-sent", "data"),
        State("arch-poll", "disabled"),
        *BP_STATES,
        prevent_initial_call=True,
    )
    def on_step(
        cursor: Any,
        _poll: Any,
        log_thread: str | None,
        log_kind: str | None,
        log_vma: str | None,
        log_side: str | None,
        info: dict[str, Any] | None,
        session: str | None,
        sent: dict[str, str] | None,
        figs_sent: dict[str, str] | None,
        polling_off: bool | None,
        *bp: Any,
    ) -> tuple[Any, ...]:
        if not info:
            raise dash.exceptions.PreventUpdate
        flt = LogFilter(log_thread, log_kind, log_vma)
        bps = Breakpoints.from_ui(*bp)
        with store.foreground(), paused_gc(collect_young=True):
            out = step_views(
                store, info, cursor, session or "", sent, flt, log_side, figs_sent, bps
            )
        # One output carries the step (a callback's every output is a round of the
        # renderer's store updates for every component of the page): the browser
        # writes the link, the timeline cursor and the figure request from it.
        off = not out["arches_pending"]
        return out["html"], out["sent"], no_update if off == polling_off else off

    @app.callback(
        *[Output({"type": k, "side": ALL}, "figure") for k in C.SIDE_FIGURES],
        Output("counters-graph", "figure"),
        Output("figures-sent", "data"),
        Input("figure-go", "data"),
        State("session-id", "data"),
        State("figures-sent", "data"),
        prevent_initial_call=True,
    )
    def on_figures(
        request: dict[str, str] | None, session: str | None, figs_sent: dict[str, str] | None
    ) -> tuple[Any, ...]:
        with store.foreground():
            out = figure_views(store, session or "", request, figs_sent)
        values: list[Any] = []
        for spec, kind in zip(ctx.outputs_list[: len(C.SIDE_FIGURES)], C.SIDE_FIGURES, strict=True):
            values.append([out.get(f"{kind}:{s}", no_update) for s in _outputs_order(spec)])
        return (*values, out.get("counters", no_update), out["sent"])

    @app.callback(
        Output("download", "data"),
        Input("export-csv", "n_clicks"),
        Input("export-perfetto", "n_clicks"),
        Input("export-yaml", "n_clicks"),
        State("run", "data"),
        State("log-side", "value"),
        prevent_initial_call=True,
    )
    def on_export(_c: Any, _p: Any, _y: Any, info: dict[str, Any] | None, side: str | None) -> Any:
        if not info or not isinstance(ctx.triggered_id, str):
            raise dash.exceptions.PreventUpdate
        return export_file(store, info, ctx.triggered_id, side)

    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="step"),
        Output("cursor", "data", allow_duplicate=True),
        Output("play-timer", "disabled", allow_duplicate=True),
        Output("play", "children", allow_duplicate=True),
        Output("nav-seen", "data"),
        Output("nav-request", "data"),
        Input("step-fwd", "n_clicks"),
        Input("step-back", "n_clicks"),
        Input("step-fwd10", "n_clicks"),
        Input("step-back10", "n_clicks"),
        Input("step-start", "n_clicks"),
        Input("step-end", "n_clicks"),
        Input("play-timer", "n_intervals"),
        State("cursor", "data"),
        State("run", "data"),
        State("granularity", "value"),
        State("play-timer", "disabled"),
        State("nav-seen", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="render"),
        Output("step-drawn", "data"),
        Input("step-html", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="render"),
        Output("delta-drawn", "data"),
        Input("delta-html", "data"),
    )

    @app.callback(
        Output("permalink-search", "data", allow_duplicate=True),
        *[Input(b.component_id, b.component_property) for b in BP_STATES],
        State("cursor", "data"),
        State("run", "data"),
        prevent_initial_call=True,
    )
    def on_breakpoints(*args: Any) -> Any:
        """The permalink follows the breakpoints as soon as they change."""
        *bp, cursor, info = args
        if not info:
            raise dash.exceptions.PreventUpdate
        track = track_of(store, runs_of(store, info))
        config = config_of(info.get("config"))
        return to_query(config, track.clamp(cursor), Breakpoints.from_ui(*bp).to_params())

    @app.callback(
        *[Output(b.component_id, b.component_property) for b in BP_STATES],
        Input("url", "search"),
    )
    def on_url_breakpoints(search: str | None) -> tuple[Any, ...]:
        """A permalink's breakpoints, restored when the page opens."""
        bps = Breakpoints.from_query(search)
        if bps is None:
            raise dash.exceptions.PreventUpdate
        return (list(bps.kinds), bps.reason, bps.thread, bps.function, bps.vma)

    @app.callback(
        *[Output(ident, "children") for ident in L.LAZY_SECTIONS],
        Input("lazy-open", "data"),
        prevent_initial_call=True,
    )
    def on_lazy(names: Any) -> tuple[Any, ...]:
        wanted = set(names) if isinstance(names, list) else set()
        return tuple(
            build() if ident in wanted else no_update for ident, build in L.LAZY_SECTIONS.items()
        )

    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="figureGate"),
        Output("figure-go", "data"),
        Input("figure-request", "data"),
        Input("figures-visible", "data"),
        State("figures-sent", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="lanes"),
        Output("lanes-drawn", "data"),
        Input({"type": "timeline-data", "side": ALL}, "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="permalink"),
        Output("permalink-drawn", "data"),
        Input("permalink-search", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="vmaviz", function_name="copyLink"),
        Output("copy-status", "children"),
        Input("copy-link", "n_clicks"),
        prevent_initial_call=True,
    )
