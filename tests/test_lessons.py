"""Lessons: the loader's errors, every bundled lesson decided by the model, the app over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.lessons import LESSON_DIR, bundled_lessons, load_lesson, load_lesson_text
from vmaviz.lessons.decide import LessonRunError, check_lesson, decide, direct_runs
from vmaviz.scenario import ScenarioErrors
from vmaviz.ui.lessons import expand_search, lesson_link, lesson_params
from vmaviz.ui.session import from_query
from vmaviz.ui.testing import Browser, find_node

GOOD = """\
title: First fault
intro: One thread writes twice.
scenario: first-fault-anon-vma
checkpoints:
  - at: {event: "lock_vma_under_rcu:anonymous", thread: T0}
    question: Will it take the VMA lock?
    window: 40
    choices:
      - {text: "yes", event: "lock_vma_under_rcu:locked"}
      - {text: "no", event: "lock_vma_under_rcu:abort:*"}
    explain: No anon_vma yet.
  - at: {step: 32}
    question: How many aborts?
    counter: vma_lock.abort
    choices:
      - {text: "0", value: 0}
      - {text: "1", value: 1}
    explain: One.
"""

#: The path the issue asks for, in order (by scenario).
PATH = [
    "first-fault-anon-vma",
    "write-locked-vma",
    "munmap-race-miss",
    "rcu-dead-node",
    "arch-access-checks",
    "default",
    "races/detached",
    "races/bounds-recheck",
]


def errors_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ScenarioErrors) as info:
        load_lesson_text(text, "l.yaml")
    return [(e.line, e.field, e.message) for e in info.value.errors]


# =====================================================================
# Loader
# =====================================================================


def test_valid_lesson_loads() -> None:
    lesson = load_lesson_text(GOOD, "l.yaml", name="l")
    assert lesson.scenario == "first-fault-anon-vma"
    assert [cp.kind for cp in lesson.checkpoints] == ["first", "count"]
    assert lesson.checkpoints[0].thread == "T0"
    assert lesson.checkpoints[0].choices[1].event == "lock_vma_under_rcu:abort:*"
    assert lesson.checkpoints[1].step == 32
    assert lesson.checkpoints[1].choices[1].value == 1


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("title: First fault\n", "", 1, "title", "missing required field"),
        ("scenario: first-fault-anon-vma", "scenario: nope", 3, "scenario", "no bundled scenario"),
        ("thread: T0}", "thread: T9}", 5, "checkpoints[0].at.thread", "unknown thread 'T9'"),
        ("window: 40", "window: 0", 7, "checkpoints[0].window", "out of range"),
        (
            'event: "lock_vma_under_rcu:locked"',
            "event: 'a b'",
            9,
            "checkpoints[0].choices[0].event",
            "not an event pattern",
        ),
        (
            "counter: vma_lock.abort",
            "counter: vma_lock.abrt",
            14,
            "checkpoints[1].counter",
            "did you mean 'vma_lock.abort'",
        ),
        (
            '{text: "1", value: 1}',
            '{text: "1", value: 0}',
            17,
            "checkpoints[1].choices[1].value",
            "same value as choices[0]",
        ),
        (
            "    explain: One.\n",
            "    explain: One.\n    colour: red\n",
            19,
            "checkpoints[1].colour",
            "unknown key 'colour'",
        ),
        (
            "  - at: {step: 32}",
            "  - at: {step: 32, event: x}",
            12,
            "checkpoints[1].at",
            "exactly one of step or event",
        ),
    ],
)
def test_each_error_names_file_line_and_field(
    old: str, new: str, line: int, field: str, words: str
) -> None:
    assert old in GOOD
    errors = errors_of(GOOD.replace(old, new, 1))
    assert any(ln == line and f == field and words in m for ln, f, m in errors), errors
    with pytest.raises(ScenarioErrors) as info:
        load_lesson_text(GOOD.replace(old, new, 1), "l.yaml")
    assert any(str(e).startswith(f"l.yaml:{line}: {field}: ") for e in info.value.errors)


def test_bad_yaml_and_limits() -> None:
    assert errors_of("title: [unclosed\n")[0][0] == 2
    assert "larger than the limit" in errors_of("x" * 70_000)[0][2]
    head, _rest = GOOD.split("    choices:\n", 1)
    seven = "".join(f'      - {{text: c{i}, event: "e{i}"}}\n' for i in range(7))
    bad = head + "    choices:\n" + seven + "    explain: x\n"
    assert any("2 to 6 choices" in m for _l, _f, m in errors_of(bad))


def test_checkpoint_outside_the_run_is_an_error() -> None:
    lesson = load_lesson_text(GOOD.replace("{step: 32}", "{step: 9999}"), "l.yaml", name="l")
    runs = direct_runs(lesson)
    with pytest.raises(LessonRunError, match=r"l\.yaml:12: checkpoints\[1\]\.at\.step"):
        decide(lesson, 1, runs)


def test_undecided_choices_are_an_error() -> None:
    text = GOOD.replace('event: "lock_vma_under_rcu:locked"', 'event: "nothing:*"').replace(
        'event: "lock_vma_under_rcu:abort:*"', 'event: "never:*"'
    )
    lesson = load_lesson_text(text, "l.yaml", name="l")
    with pytest.raises(LessonRunError, match="no choice's event happens"):
        decide(lesson, 0, direct_runs(lesson))


# =====================================================================
# Every bundled lesson: valid, in the path's order, decided by the model
# =====================================================================


def test_bundled_lessons_follow_the_path() -> None:
    names = bundled_lessons()
    assert [load_lesson(LESSON_DIR / f"{n}.yaml").scenario for n in names] == PATH
    for name in names:
        assert 2 <= len(load_lesson(LESSON_DIR / f"{name}.yaml").checkpoints) <= 4


@pytest.mark.parametrize("name", bundled_lessons())
def test_bundled_lesson_is_decided_by_the_model(name: str) -> None:
    lesson = load_lesson(LESSON_DIR / f"{name}.yaml")
    runs = direct_runs(lesson)
    decisions = check_lesson(lesson, lambda _lesson: runs)
    for cp, d in zip(lesson.checkpoints, decisions, strict=True):
        # Exactly one choice is right, and it is the model's: for "first", the
        # deciding step matches the right choice's event and no other choice's
        # event happens between the checkpoint and it.
        assert 0 <= d.right < len(cp.choices)
        run = runs[0 if lesson.view == "single" else ("mmap_lock", "per_vma").index(cp.side)]
        if cp.kind == "first" and not cp.choices[d.right].otherwise:
            from fnmatch import fnmatchcase

            codes = run.engine.trace.codes
            code = codes[int(run.code[d.evidence])]
            assert fnmatchcase(code, cp.choices[d.right].event or "")
            for i, choice in enumerate(cp.choices):
                if i == d.right or choice.event is None:
                    continue
                between = [codes[int(run.code[r])] for r in range(d.row + 1, d.evidence + 1)]
                assert not any(fnmatchcase(c, choice.event) for c in between)
        else:
            assert [c.value for c in cp.choices].count(d.value) == 1


def test_race_lessons_show_the_violation_with_the_patch_off() -> None:
    for name in ("07-race-detached", "08-race-bounds"):
        lesson = load_lesson(LESSON_DIR / f"{name}.yaml")
        assert all(not on for _n, on in lesson.patches)
        (run,) = direct_runs(lesson)
        assert run.engine.k.violations, name


# =====================================================================
# The app over HTTP
# =====================================================================


# app, client: the HTTP app and its test client (tests/conftest.py).


def open_lesson(b: Browser, name: str, n: int) -> dict[str, Any]:
    search = lesson_link(name, n)
    b.open(search)
    return b.call("lesson-panel", "children", {"url.search": search})


def check(b: Browser, choice: int) -> str:
    b.call(
        "lesson-progress",
        "data",
        {"lesson-check.n_clicks": 1},
        {"lesson-choice.value": choice},
    )
    b.call(
        "lesson-marks", "children", {"lesson-progress.data": b.props[("lesson-progress", "data")]}
    )
    return b.text("lesson-reveal")


def test_lesson_link_expands_to_the_checkpoint_step(app: Any) -> None:
    store = app.server.extensions["vmaviz_store"]
    assert lesson_params("?lesson=01-first-fault&checkpoint=2") == ("01-first-fault", 2)
    config, cursor, _named = from_query(expand_search(store, lesson_link("01-first-fault", 2)))
    assert config.scenario == "first-fault-anon-vma"
    lesson = load_lesson(LESSON_DIR / "01-first-fault.yaml")
    assert cursor == decide(lesson, 1, direct_runs(lesson)).cursor
    # A link to no lesson opens the page as usual (the panel says why).
    assert expand_search(store, "?lesson=nope") == "?lesson=nope"


def test_http_lesson_right_and_wrong(client: FlaskClient) -> None:
    b = Browser(client)
    open_lesson(b, "01-first-fault", 1)
    lesson = load_lesson(LESSON_DIR / "01-first-fault.yaml")
    d = decide(lesson, 0, direct_runs(lesson))
    # The views moved to the checkpoint's step.
    assert b.cursor == d.cursor
    assert "Will this first fault" in b.text("lesson-panel")
    wrong = 1 - d.right
    text = check(b, wrong)
    assert "Not this time" in text and lesson.checkpoints[0].explain.split()[0] in text
    assert "lock_vma_under_rcu:abort:no_anon_vma" in text  # the model's next steps
    assert b.props[("lesson-progress", "data")] == {"01-first-fault": {"1": "wrong"}}
    text = check(b, d.right)
    assert text.startswith("Right!")
    assert b.props[("lesson-progress", "data")] == {"01-first-fault": {"1": "right"}}
    assert "Answered 1 of 3" in b.text("lesson-marks")
    # A counting checkpoint, opened by its permalink.
    open_lesson(b, "01-first-fault", 3)
    assert "vma_lock.abort" in b.text("lesson-panel")
    assert check(b, 1).startswith("Right!")
    assert "value after step" in b.text("lesson-reveal")


def test_http_no_answer_and_bad_progress(client: FlaskClient) -> None:
    b = Browser(client)
    open_lesson(b, "03-detached-miss", 1)
    b.props[("lesson-progress", "data")] = {
        "x y": 1,
        "03-detached-miss": {"1": "<b>", "9": "right"},
    }
    b.call("lesson-reveal", "children", {"lesson-check.n_clicks": 1}, {"lesson-choice.value": None})
    assert "Pick an answer first" in b.text("lesson-reveal")
    check(b, 0)
    assert b.props[("lesson-progress", "data")] == {
        "03-detached-miss": {"9": "right", "1": "right"}
    }


def test_http_unknown_lesson_says_so(client: FlaskClient) -> None:
    b = Browser(client)
    b.call("lesson-panel", "children", {"url.search": "?lesson=no-such&checkpoint=1"})
    assert "cannot be opened" in b.text("lesson-panel")


def test_compare_lesson_moves_both_sides(client: FlaskClient) -> None:
    b = Browser(client)
    open_lesson(b, "06-compare-timelines", 2)
    info = b.props[("run", "data")]
    assert len(info["sides"]) == 2
    lesson = load_lesson(LESSON_DIR / "06-compare-timelines.yaml")
    assert b.cursor == decide(lesson, 1, direct_runs(lesson)).cursor


def test_lesson_files_are_in_the_repo() -> None:
    assert Path(LESSON_DIR).is_dir()
    assert len(bundled_lessons()) >= 8


def test_the_lessons_page_lists_every_lesson_without_its_answers() -> None:
    """GET /lessons: the path in file order, each checkpoint's question linked to its
    permalink, and none of the answers or explanations the app only shows after a
    prediction."""
    import html as _html

    from vmaviz.lessons import bundled_lessons
    from vmaviz.ui.app_factory import create_app

    app = create_app({"CACHE_TYPE": "SimpleCache"})
    res = app.server.test_client().get("/lessons")
    assert res.status_code == 200 and res.mimetype == "text/html"
    page = _html.unescape(res.get_data(as_text=True))
    assert "/assets/lessons_page.js" in page and "/assets/vmaviz.css" in page
    at = 0
    for name in bundled_lessons():
        lesson = load_lesson(LESSON_DIR / f"{name}.yaml")
        found = page.index(lesson.title, at)
        assert found > at
        at = found
        for k, cp in enumerate(lesson.checkpoints, 1):
            assert f"/?lesson={name}&checkpoint={k}" in page
            assert cp.question in page
            assert cp.explain.strip().splitlines()[0] not in page
    # The app's Lessons section links to the page.
    layout = app.server.test_client().get("/_dash-layout").get_json()
    link = find_node(layout, "lessons-page-link")
    assert link is not None and link["props"]["href"] == "/lessons"
