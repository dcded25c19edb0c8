"""Thread-level stepping: step, step over, step out and by operation, for one thread.

A debugger's step over runs the program until the current function returns; here
the program is a finished run, so "running until" is finding the row in the
trace.  Every target is found with numpy on the trace columns of the selected
thread (never a Python loop over the rows); the other threads' steps in between
are whatever the scheduler chose, as they were when the run was made.

How a function's return is found.  ``run.frame`` is the activation id of the
function that took each step, and activation ids come from one counter that only
grows (:meth:`vmaviz.model.sched.MachineBase.call`).  So, for the activation ``A``
at stack depth ``e`` that is on the thread's stack at the reference row ``r``:

* every activation on that stack has an id no larger than ``frame[r]`` (the
  innermost one is the newest), and every activation made later has a larger id;
* a later step of the thread is inside ``A`` when its stack starts with ``A``'s
  stack prefix and it is either deeper than ``e`` or ``A``'s own step (depth ``e``
  with an id ``<= frame[r]``); a step at depth ``e`` with a larger id is a new
  call of the same function at the same place: ``A`` has returned.
* Steps of ``A`` (and of its callees) are contiguous among the thread's steps, so
  the return is the first thread step that is not inside.  When it is such a new
  sibling call, the sibling's own callees that ran before its first step (ids
  larger than the sibling's) are moved out too.

The one case this cannot see is a new sibling that returns without taking a
step of its own; its callees are then counted as ``A``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from vmaviz.ui.components import aria, control

if TYPE_CHECKING:
    from vmaviz.ui.session import RunData, RunStore
    from vmaviz.ui.stepping import Track

#: The moves, in the order of the buttons: value -> (button label, title, key).
MOVES: dict[str, tuple[str, str, str]] = {
    "prev_op": ("⇤ op", "the thread's previous operation ([)", "["),
    "back": ("◀ step", "the thread's previous step (Shift+T)", "T"),
    "step": ("step ▶", "the thread's next step; others run as scheduled (T)", "t"),
    "over": ("over ↷", "run until the thread's current kernel function returns (O)", "o"),
    "out": ("out ↰", "run until the function that called it returns (U)", "u"),
    "next_op": ("op ⇥", "the thread's next operation (])", "]"),
}

#: Longest thread name a request may carry (the names come from the scenario).
MAX_THREAD_NAME = 200


def thread_rows(run: RunData, tid: int) -> np.ndarray:
    """The rows the thread ``tid`` took, sorted."""
    rows: np.ndarray = np.flatnonzero(run.tid == tid)
    return rows


def _stack_tables(run: RunData, prefix: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per interned stack: its depth, and whether it starts with ``prefix``.

    A loop over the run's stack table (hundreds of entries), not over the rows.
    """
    stacks = run.engine.trace.stacks
    n = len(prefix)
    depth = np.fromiter((len(s) for s in stacks), dtype=np.int64, count=len(stacks))
    match = np.fromiter((s[:n] == prefix for s in stacks), dtype=bool, count=len(stacks))
    return depth, match


def activation_end(run: RunData, ref: int, level: int) -> int | None:
    """The first row of ``ref``'s thread after the activation at depth ``level`` returned.

    Args:
        run: The run.
        ref: A row of the thread, taken inside that activation.
        level: The depth of the activation on the row's stack (1 is the outermost
            kernel function; the row's own function is at ``len(stack)``).

    Returns:
        The row, or ``None`` when the thread takes no step after the return (the
        run ended first, or the thread ended with the function).
    """
    stack = run.engine.trace.stacks[int(run.stack[ref])]
    if not 1 <= level <= len(stack):
        raise ValueError(f"level {level} is not on a stack of depth {len(stack)}")
    tid = int(run.tid[ref])
    idx = ref + 1 + np.flatnonzero(run.tid[ref + 1 :] == tid)
    if not len(idx):
        return None
    depth_of, match_of = _stack_tables(run, tuple(stack[:level]))
    sids = run.stack[idx]
    depth = depth_of[sids]
    match = match_of[sids]
    fid = run.frame[idx]
    own = int(run.frame[ref])
    inside = match & ((depth > level) | (fid <= own))
    outside = np.flatnonzero(~inside)
    if not len(outside):
        return None
    k = int(outside[0])
    if match[k] and depth[k] == level:
        # A new call at the same place: its callees that stepped before it did are
        # its own (their ids are larger than the new call's), not the old one's.
        later = np.flatnonzero(fid[:k] > fid[k])
        if len(later):
            k = int(later[0])
    return int(idx[k])


def target_row(run: RunData, row: int | None, tid: int, move: str) -> int | None:
    """The row a thread-level ``move`` goes to from the cursor's current ``row``.

    Args:
        run: The run.
        row: The current row (the step run last; ``None`` before the first).
        tid: The selected thread.
        move: One of :data:`MOVES`.

    Returns:
        The target row, or ``None`` when there is none (the thread has no such step).
    """
    if move not in MOVES:
        raise ValueError(f"unknown move {move!r}")
    rows = thread_rows(run, tid)
    if not len(rows):
        return None
    cur = -1 if row is None else row
    after = int(np.searchsorted(rows, cur, side="right"))
    if move == "step":
        return int(rows[after]) if after < len(rows) else None
    if move == "back":
        before = int(np.searchsorted(rows, cur, side="left")) - 1
        return int(rows[before]) if before >= 0 else None
    starts = run.op_starts[run.tid[run.op_starts] == tid]
    if move == "next_op":
        i = int(np.searchsorted(starts, cur, side="right"))
        return int(starts[i]) if i < len(starts) else None
    if move == "prev_op":
        i = int(np.searchsorted(starts, cur, side="left")) - 1
        return int(starts[i]) if i >= 0 else None
    # over / out: from the thread's own position (its last step so far).
    if after == 0:
        return int(rows[0])
    ref = int(rows[after - 1])
    depth = len(run.engine.trace.stacks[int(run.stack[ref])])
    level = depth if move == "over" else depth - 1
    if level < 1:
        # Outside the kernel (or in its outermost function): the operation's end.
        return target_row(run, row, tid, "next_op")
    return activation_end(run, ref, level)


def describe(run: RunData, ref: int | None, tid: int, move: str) -> str:
    """What ``move`` runs to, for the status line (``ref``: the thread's last row)."""
    name = run.thread_name(tid)
    if move in ("over", "out") and ref is not None:
        stack = run.engine.trace.stacks[int(run.stack[ref])]
        if move == "over" and stack:
            return f"{name}: {stack[-1]} returned"
        if move == "out" and len(stack) >= 2:
            return f"{name}: {stack[-2]} returned"
    return f"{name}: {MOVES[move][1].split(' (')[0]}"


def thread_navigate(
    track: Track, runs: list[RunData], m: int, value: dict[str, Any]
) -> tuple[int | None, str | None, bool]:
    """A thread-level move sent as ``{"thread_move", "thread"}`` on ``nav-request``.

    Moves the first run's thread (in compare view the left side's). With no
    thread named, the thread of the current step moves.

    Returns:
        ``(cursor or None, status message, at_end)`` as ``navigate_to`` does.
    """
    move = value.get("thread_move")
    if move not in MOVES or not runs:
        return None, "Unknown thread move.", False
    run = runs[0]
    row = track.current(m)[0]
    name = value.get("thread")
    if isinstance(name, str) and name:
        if len(name) > MAX_THREAD_NAME or name not in run.thread_names:
            return None, "Pick a thread of this run first.", False
        tid = run.thread_names.index(name)
    elif row is not None:
        tid = int(run.tid[row])
        if tid < 0:
            return None, "The current step is RCU's: pick a thread first.", False
    else:
        return None, "Pick a thread first.", False
    target = target_row(run, row, tid, move)
    if target is None:
        return None, f"{run.thread_name(tid)} has no such step; the cursor stays.", False
    rows = thread_rows(run, tid)
    last = int(np.searchsorted(rows, -1 if row is None else row, side="right")) - 1
    ref = int(rows[last]) if last >= 0 else None
    new = track.position(0, target)
    return new, f"{describe(run, ref, tid, move)}: step {target:,}", new >= track.total


# =====================================================================
# Layout and callbacks
# =====================================================================


def thread_step_row() -> html.Div:
    """The stepper's row of thread-level moves: a thread picker and six buttons."""
    buttons = [
        html.Button(label, id=f"ts-{move}", title=title, className="nav ts-btn", n_clicks=0)
        for move, (label, title, _key) in MOVES.items()
    ]
    return html.Div(
        [
            # control(): its data-aria-label names the dropdown's focusable input.
            control(
                "thread",
                dcc.Dropdown(
                    id="ts-thread",
                    options=[],
                    value=None,
                    placeholder="the current step's",
                    clearable=True,
                    className="ts-thread",
                ),
                for_id="ts-thread",
            ),
            html.Div(buttons, className="nav-buttons ts-buttons", role="toolbar"),
        ],
        className="controls-row thread-step-row",
        id="thread-step-controls",
        **aria("thread-level stepping"),
    )


def register_thread_step(app: Any, store: RunStore) -> None:
    """The thread picker's options, picking a thread by clicking, and the moves."""
    from vmaviz.ui.callbacks import runs_of

    @app.callback(
        Output("ts-thread", "options"),
        Output("ts-thread", "value"),
        Input("run", "data"),
        State("ts-thread", "value"),
    )
    def on_run(info: dict[str, Any] | None, current: str | None) -> tuple[Any, Any]:
        if not info:
            raise PreventUpdate
        names = runs_of(store, info)[0].thread_names
        return names, current if current in names else None

    @app.callback(
        Output("ts-thread", "value", allow_duplicate=True),
        Input("timeline-click", "data"),
        Input("log-click", "data"),
        State("run", "data"),
        prevent_initial_call=True,
    )
    def on_pick(lane: Any, log: Any, info: dict[str, Any] | None) -> Any:
        # Clicking a thread's bar or its event-log row selects that thread.
        value = lane if ctx.triggered_id == "timeline-click" else log
        step = value.get("step") if isinstance(value, dict) else None
        if not info or not isinstance(step, int):
            raise PreventUpdate
        run = runs_of(store, info)[0]
        if not 0 <= step < run.steps or int(run.tid[step]) < 0:
            raise PreventUpdate
        return run.thread_name(int(run.tid[step]))

    @app.callback(
        Output("nav-request", "data", allow_duplicate=True),
        *[Input(f"ts-{move}", "n_clicks") for move in MOVES],
        State("ts-thread", "value"),
        prevent_initial_call=True,
    )
    def on_move(*args: Any) -> Any:
        trigger = ctx.triggered_id
        if not isinstance(trigger, str) or not trigger.startswith("ts-"):
            raise PreventUpdate
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return {"thread_move": trigger[3:], "thread": args[-1], "n": ctx.triggered[0]["value"]}
