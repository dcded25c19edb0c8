"""The scenario's "Look at" bullets as links to the step where each becomes visible.

A bullet may name a target (``vmaviz.scenario.schema.LookAtTarget``): an event
pattern (a glob over the trace's event codes, optionally for one thread) or a fixed
step. The step it links to is worked out once per run (the caller memoises it by run
key), never per step, and the page sends it with the scenario's description.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from dash import html

from vmaviz.scenario.schema import LookAtTarget, Scenario
from vmaviz.ui.session import RunData


def first_row(run: RunData, target: LookAtTarget) -> int | None:
    """The row (step index) of ``run`` where ``target`` first becomes visible.

    Args:
        run: A finished run.
        target: The bullet's target.

    Returns:
        The first step emitting an event code the pattern matches (of the named
        thread, if any), the fixed step clamped to the run, or ``None`` when the run
        never matches (the bullet then stays plain text).
    """
    if run.steps == 0:
        return None
    if target.step is not None:
        return min(target.step, run.steps - 1)
    if target.event is None:
        return None
    pattern = target.event
    rows = run.rows_with_codes(run.codes_matching(lambda code: fnmatchcase(code, pattern)))
    if target.thread is not None:
        names = run.thread_names
        if target.thread not in names:
            return None
        rows = rows[run.tid[rows] == names.index(target.thread)]
    return int(rows[0]) if len(rows) else None


def look_at_rows(run: RunData, scenario: Scenario) -> list[int | None]:
    """For each ``look_at`` bullet, the row its link goes to (``None``: plain text)."""
    targets = list(scenario.look_at_targets) or [None] * len(scenario.look_at)
    return [first_row(run, t) if t is not None else None for t in targets]


def look_at_list(texts: list[str], rows: list[int | None], side: str) -> html.Ul:
    """The bullets, each with a target as a link (assets/editor.js moves the cursor).

    The link carries the run's side and row, as a click on the lanes does: the server
    turns it into the cursor (merged in time order in compare view).
    """
    items: list[Any] = []
    for text, row in zip(texts, rows, strict=False):
        if row is None:
            items.append(html.Li(text))
            continue
        data: dict[str, Any] = {"data-side": side, "data-step": str(row)}
        link = html.A(
            text,
            href=f"#step-{row}",
            className="look-at-link",
            title=f"Go to step {row:,}",
            **data,
        )
        items.append(html.Li([link, html.Span(f" (step {row:,})", className="look-at-step")]))
    return html.Ul(items, className="look-at")
