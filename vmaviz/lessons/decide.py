"""Where a checkpoint stops and which of its choices the model makes right.

Nothing is hard-coded: the checkpoint's step is found in the run (the ``nth`` step
matching its event pattern, or the step it names), and the right choice is read
from the steps that follow it (which choice's event happens first) or from a
counter once the step has run. A lesson whose checkpoint no step matches, or whose
choices the run leaves undecided, is an error (:class:`LessonRunError`), so every
bundled lesson is checked by running it (tests/test_lessons.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from vmaviz.lessons.loader import Checkpoint, Lesson, scenario_path
from vmaviz.scenario import Scenario, load_scenario
from vmaviz.ui.session import (
    COMPARE_MODES,
    Config,
    RunData,
    build_run,
    patch_overrides,
    patches_on,
)
from vmaviz.ui.stepping import Track

#: Steps of the model shown after a reveal (the rest are summarised).
MAX_SHOWN_STEPS = 12


class LessonRunError(ValueError):
    """A checkpoint the model run cannot place or decide (``file:line: field: ...``)."""


@dataclass(frozen=True)
class Decision:
    """The model's answer to a checkpoint.

    Attributes:
        row: The checkpoint's step (row of its run).
        cursor: The cursor of the views at the checkpoint (its step just run).
        right: Index of the right choice.
        evidence: The row that decided it (the first matching event), or ``row``.
        shown: Rows of the model's next steps to show (from ``row + 1``).
        value: Counting checkpoints: the counter's value.
    """

    row: int
    cursor: int
    right: int
    evidence: int
    shown: tuple[int, ...]
    value: int | None = None


def lesson_config(lesson: Lesson, scenario: Scenario) -> Config:
    """The app configuration of a lesson (what it does not set: the scenario's own).

    Args:
        lesson: The lesson.
        scenario: Its scenario, loaded.
    """
    k = scenario.kernel
    on = patches_on(scenario, ())
    for name, value in lesson.patches:
        on = [n for n in on if n != name] + ([name] if value else [])
    return Config(
        scenario=lesson.scenario,
        mode=lesson.mode or k.mode,
        arch=lesson.arch or k.arch,
        cpus=k.cpus,
        seed=k.seed,
        view=lesson.view,
        patches=patch_overrides(scenario, on),
        sched=lesson.sched,
    )


def direct_runs(lesson: Lesson) -> list[RunData]:
    """The page's runs of a lesson, built here (no app cache): for tests and checks.

    The same runs as :meth:`vmaviz.ui.session.RunStore.run` gives the page: the
    lesson's patches applied, its schedule forced in single view only.
    """
    path = scenario_path(lesson.scenario)
    if path is None:
        raise LessonRunError(f"{lesson.file}: scenario: no bundled scenario {lesson.scenario!r}")
    base = load_scenario(path)
    config = lesson_config(lesson, base)
    overrides: dict[str, Any] = {}
    if config.patches:
        overrides["patches"] = {**base.kernel.patches, **dict(config.patches)}
    runs = []
    for mode in config.modes():
        scenario = base.with_overrides(
            mode=mode, arch=config.arch, cpus=config.cpus, seed=config.seed, **overrides
        )
        schedule = config.sched if config.view == "single" else ()
        runs.append(build_run("lesson", scenario, mode, config.arch, schedule=schedule))
    return runs


def side_index(lesson: Lesson, cp: Checkpoint) -> int:
    """Which of the page's runs a checkpoint is in (compare view: by mode)."""
    return COMPARE_MODES.index(cp.side) if lesson.view == "compare" else 0


def _rows_matching(run: RunData, pattern: str, thread: str | None) -> np.ndarray:
    ids = run.codes_matching(lambda code: fnmatchcase(code, pattern))
    rows = run.rows_with_codes(ids)
    if thread is not None and len(rows):
        names = run.thread_names
        tid = names.index(thread) if thread in names else -2
        rows = rows[run.tid[rows] == tid]
    return rows


def _where(lesson: Lesson, cp: Checkpoint, index: int, what: str) -> str:
    return f"{lesson.file}:{cp.line}: checkpoints[{index}].{what}"


def checkpoint_row(lesson: Lesson, index: int, run: RunData) -> int:
    """The row of run ``run`` at which checkpoint ``index`` stops.

    Raises:
        LessonRunError: No such step in the run.
    """
    cp = lesson.checkpoints[index]
    if cp.step is not None:
        if cp.step >= run.steps:
            raise LessonRunError(
                f"{_where(lesson, cp, index, 'at.step')}: step {cp.step} is past the run's"
                f" {run.steps} steps"
            )
        return cp.step
    assert cp.event is not None
    rows = _rows_matching(run, cp.event, cp.thread)
    if len(rows) < cp.nth:
        raise LessonRunError(
            f"{_where(lesson, cp, index, 'at.event')}: the run has {len(rows)} steps matching"
            f" {cp.event!r}{'' if cp.thread is None else f' of {cp.thread}'}, not {cp.nth}"
        )
    return int(rows[cp.nth - 1])


def decide(lesson: Lesson, index: int, runs: list[RunData]) -> Decision:
    """Place checkpoint ``index`` in the runs of the page and decide its right choice.

    Args:
        lesson: The lesson.
        index: The checkpoint (0-based).
        runs: The page's runs (one; two in compare view, mmap_lock first).

    Raises:
        LessonRunError: The checkpoint is not in the run, or no choice (or more
            than one) is right.
    """
    cp = lesson.checkpoints[index]
    run = runs[side_index(lesson, cp)]
    row = checkpoint_row(lesson, index, run)
    cursor = Track(runs).position(side_index(lesson, cp), row)
    if cp.kind == "count":
        if cp.counter is not None:
            group, _, key = cp.counter.partition(".")
            value = int(run.counters_at(row + 1)[group][key])
        else:
            assert cp.count is not None
            value = int(np.count_nonzero(_rows_matching(run, cp.count, cp.count_thread) <= row))
        right = [i for i, c in enumerate(cp.choices) if c.value == value]
        if len(right) != 1:
            raise LessonRunError(
                f"{_where(lesson, cp, index, 'choices')}: the model's value is {value},"
                " which no choice has"
            )
        return Decision(row, cursor, right[0], row, _shown(run, row, row + MAX_SHOWN_STEPS), value)
    end = min(run.steps, row + 1 + cp.window)
    first: dict[int, int] = {}
    for i, choice in enumerate(cp.choices):
        if choice.event is None:
            continue
        rows = _rows_matching(run, choice.event, choice.thread)
        after = rows[(rows > row) & (rows < end)]
        if len(after):
            first[i] = int(after[0])
    if first:
        evidence = min(first.values())
        right = [i for i, r in first.items() if r == evidence]
        if len(right) > 1:
            raise LessonRunError(
                f"{_where(lesson, cp, index, 'choices')}: choices {right} match the same step"
                f" {evidence}: make their events distinct"
            )
        return Decision(row, cursor, right[0], evidence, _shown(run, row, evidence))
    others = [i for i, c in enumerate(cp.choices) if c.otherwise]
    if not others:
        raise LessonRunError(
            f"{_where(lesson, cp, index, 'choices')}: no choice's event happens in the"
            f" {cp.window} steps after step {row}"
        )
    return Decision(
        row, cursor, others[0], row, _shown(run, row, min(end - 1, row + MAX_SHOWN_STEPS))
    )


def _shown(run: RunData, row: int, evidence: int) -> tuple[int, ...]:
    """The next steps to show after ``row``, up to ``evidence`` (at most MAX_SHOWN_STEPS,
    the last ones kept: they lead to the deciding step)."""
    rows = list(range(row + 1, min(evidence, run.steps - 1) + 1))
    return tuple(rows[-MAX_SHOWN_STEPS:])


def step_line(run: RunData, row: int) -> str:
    """``step N · thread · event code`` for one step of the run."""
    code = run.engine.trace.codes[int(run.code[row])]
    return f"step {row} · {run.thread_name(int(run.tid[row]))} · {code}"


def check_lesson(lesson: Lesson, runs_of: Callable[[Lesson], list[RunData]]) -> list[Decision]:
    """Decide every checkpoint (raises :class:`LessonRunError` on the first bad one)."""
    runs = runs_of(lesson)
    return [decide(lesson, i, runs) for i in range(len(lesson.checkpoints))]
