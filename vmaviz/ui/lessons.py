"""The Lessons section: a path through the scenarios with predictions checked by the model.

* The section lists the bundled lessons (``lessons/*.yaml``) as links
  ``?lesson=NAME&checkpoint=N``: the permalink of a lesson's checkpoint.
* :func:`expand_search` turns such a query into the lesson's configuration and the
  checkpoint's step, so the page's usual URL callback (``callbacks.select_scenario``)
  opens the scenario there: the normal views show the checkpoint.
* The user picks an answer; only then does the server decide it from the model run
  (:func:`vmaviz.lessons.decide.decide`) and reveal right/wrong, the model's next steps
  and the explanation. Answered checkpoints are kept in the browser
  (``dcc.Store(storage_type="local")``).

None of these callbacks listens to the cursor: with no lesson open, stepping costs
exactly what it did before.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, State, dcc, html, no_update

from vmaviz.lessons import LESSON_DIR, Lesson, bundled_lessons, load_lesson
from vmaviz.lessons.decide import Decision, LessonRunError, decide, lesson_config, step_line
from vmaviz.lessons.loader import LESSON_NAME_RE, MAX_CHECKPOINTS
from vmaviz.scenario import ScenarioErrors
from vmaviz.ui.session import RunData, RunStore, ScenarioMissing, describe_error, to_query

#: Lessons and checkpoints the progress store may hold (it comes from the browser).
MAX_PROGRESS_LESSONS = 64
#: The Lessons page: the whole path on a page of its own (:func:`lessons_page`).
LESSONS_PATH = "/lessons"


@lru_cache(maxsize=64)
def _lesson(name: str, _mtime: float) -> Lesson:
    return load_lesson(LESSON_DIR / f"{name}.yaml")


def get_lesson(name: str) -> Lesson:
    """A bundled lesson by name (re-read when its file changes).

    Raises:
        LookupError: No such lesson; ScenarioErrors: the file has errors.
    """
    if not isinstance(name, str) or not LESSON_NAME_RE.match(name) or len(name) > 80:
        raise LookupError(f"no lesson {str(name)[:80]!r}")
    path = LESSON_DIR / f"{name}.yaml"
    if not path.is_file():
        raise LookupError(f"no lesson {name!r}")
    return _lesson(name, path.stat().st_mtime)


def lesson_params(search: str | None) -> tuple[str, int] | None:
    """``(lesson, checkpoint)`` (checkpoint 1-based, 1 if absent) named by a query."""
    params = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items() if v}
    name = params.get("lesson")
    if not name:
        return None
    text = params.get("checkpoint", "1")
    n = int(text) if text.isdigit() and len(text) <= 3 else 1
    return name, max(1, min(n, MAX_CHECKPOINTS))


def lesson_link(name: str, checkpoint: int) -> str:
    """The permalink (query string) of a lesson's checkpoint."""
    return "?" + urlencode({"lesson": name, "checkpoint": checkpoint})


def _runs(store: RunStore, lesson: Lesson) -> tuple[Any, list[RunData]]:
    scenario = store.scenario(lesson.scenario)
    config = lesson_config(lesson, scenario)
    return config, [store.run(config, mode) for mode in config.modes()]


def open_checkpoint(store: RunStore, name: str, n: int) -> tuple[Lesson, Any, Decision]:
    """The lesson, its configuration and checkpoint ``n``'s decision (1-based).

    Raises:
        LookupError, ScenarioErrors, ScenarioMissing, LessonRunError, EngineError.
    """
    lesson = get_lesson(name)
    n = max(1, min(n, len(lesson.checkpoints)))
    config, runs = _runs(store, lesson)
    return lesson, config, decide(lesson, n - 1, runs)


def expand_search(store: RunStore, search: str | None) -> str | None:
    """A lesson permalink as the query of its scenario, settings and checkpoint step.

    Any other query is returned as it is; so is a lesson link that cannot be opened
    (the lesson panel says why).
    """
    named = lesson_params(search)
    if named is None:
        return search
    try:
        lesson, config, decision = open_checkpoint(store, *named)
    except Exception:
        # Any failure: the panel reports it; the page opens as usual.
        return search
    n = max(1, min(named[1], len(lesson.checkpoints)))
    return to_query(config, decision.cursor, {"lesson": lesson.name, "checkpoint": str(n)})


# =====================================================================
# Layout
# =====================================================================


def _data(**attrs: str) -> dict[str, Any]:
    """``data-*`` attributes for a component (what assets/lessons_page.js reads)."""
    return {f"data-{name}": value for name, value in attrs.items()}


def lessons_page() -> str:
    """The Lessons page, one HTML document: the ordered path, every lesson's intro and
    its checkpoints' questions (never their answers), each a link that opens the
    checkpoint in the app. ``assets/lessons_page.js`` marks the checkpoints answered
    in this browser (the app keeps them in local storage) and links "continue" to
    the first one not answered yet.

    Written with :func:`~vmaviz.ui.html_render.to_html`, so every text from a lesson
    file is escaped; a lesson file with errors is listed with them.
    """
    from vmaviz.ui.html_render import to_html

    names = bundled_lessons()
    entries = []
    for name in names:
        try:
            lesson = get_lesson(name)
        except LookupError:
            continue
        except ScenarioErrors as exc:
            entries.append(
                html.Li(
                    [html.H2(name), html.Pre(str(exc), className="lesson-errors", role="alert")],
                    className="lesson-entry",
                )
            )
            continue
        checkpoints = [
            html.Li(
                [
                    html.A(cp.question, href="/" + lesson_link(name, k)),
                    " ",
                    html.Span(
                        "·",
                        className="mark",
                        title="not answered yet",
                        **_data(lesson=name, checkpoint=str(k)),
                    ),
                ]
            )
            for k, cp in enumerate(lesson.checkpoints, 1)
        ]
        view = (
            "compare view (mmap_lock beside per-VMA)" if lesson.view == "compare" else "single view"
        )
        entries.append(
            html.Li(
                [
                    html.H2(html.A(lesson.title, href="/" + lesson_link(name, 1))),
                    html.P(lesson.intro, className="lesson-intro"),
                    html.P(
                        [
                            "Scenario ",
                            html.Code(lesson.scenario),
                            f", {view}; {len(lesson.checkpoints)} checkpoints. ",
                            html.Span(className="lesson-done", **_data(lesson=name)),
                        ],
                        className="hint",
                    ),
                    html.Ol(checkpoints, className="lesson-checkpoints"),
                ],
                className="lesson-entry",
                **_data(lesson=name),
            )
        )
    page = html.Div(
        [
            html.Header(
                [
                    html.H1(["vmaviz ", html.Span("Lessons", className="h1-sub")]),
                    html.P(html.A("← back to the app", href="/"), className="lessons-back"),
                ],
                className="header",
            ),
            html.P(
                "A path through the per-VMA lock mechanism, in order. Each lesson opens "
                "its scenario at a checkpoint and asks what the kernel does next; the "
                "model's own next steps decide your answer, then the explanation is "
                "shown. Your answers stay in this browser.",
                className="lessons-lead",
            ),
            # The script turns this into "continue" once some checkpoints are answered.
            html.P(
                html.A(
                    "Start with lesson 1",
                    href="/" + lesson_link(names[0], 1) if names else "/",
                    id="lessons-continue",
                )
            ),
            html.Ol(entries, className="lessons-path"),
        ],
        id="lessons-page",
        className="page lessons-page",
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>vmaviz · Lessons</title>"
        "<link rel='stylesheet' href='/assets/vmaviz.css'>"
        "<link rel='stylesheet' href='/assets/lessons.css'></head><body>"
        f"{to_html(page)}<script src='/assets/lessons_page.js'></script></body></html>"
    )


def lessons_section() -> html.Details:
    """The Lessons section: the ordered path, the open checkpoint and its reveal."""
    items = []
    for name in bundled_lessons():
        try:
            title = get_lesson(name).title
        except (LookupError, ScenarioErrors):
            continue
        items.append(html.Li(dcc.Link(title, href=lesson_link(name, 1), id=f"lesson-link-{name}")))
    return html.Details(
        [
            html.Summary("Lessons: predict what the kernel does next"),
            html.P(
                [
                    "The path in order, with your progress: ",
                    html.A("the Lessons page", href=LESSONS_PATH, id="lessons-page-link"),
                    ".",
                ],
                className="hint",
            ),
            html.Ol(items, className="lesson-list"),
            html.Div(id="lesson-panel", className="lesson-panel"),
            dcc.RadioItems(id="lesson-choice", options=[], value=None, className="lesson-choice"),
            html.Button("Check my answer", id="lesson-check", n_clicks=0, hidden=True),
            html.Div(id="lesson-reveal", className="lesson-reveal", role="status"),
            html.Div(id="lesson-nav", className="lesson-nav"),
            html.Div(id="lesson-marks", className="lesson-marks"),
            dcc.Store(id="lesson-at", data=None),
            dcc.Store(id="lesson-progress", storage_type="local"),
        ],
        id="lessons-box",
        className="controls lessons",
    )


def _panel(lesson: Lesson, n: int, decision: Decision) -> list[Any]:
    cp = lesson.checkpoints[n - 1]
    total = len(lesson.checkpoints)
    return [
        html.H3(lesson.title, id="lesson-title"),
        html.P(lesson.intro, className="lesson-intro"),
        html.P(
            [
                f"Checkpoint {n} of {total}, at step {decision.cursor - 1}. ",
                html.A(
                    "link to this checkpoint",
                    href=lesson_link(lesson.name, n),
                    id="lesson-permalink",
                ),
            ]
        ),
        html.P(cp.question, id="lesson-question", className="lesson-question"),
    ]


def _nav(lesson: Lesson, n: int) -> list[Any]:
    """Links to the previous and next checkpoints (their permalinks)."""
    total = len(lesson.checkpoints)
    nav = []
    if n > 1:
        nav.append(dcc.Link("← previous", href=lesson_link(lesson.name, n - 1), id="lesson-prev"))
    if n < total:
        nav.append(dcc.Link("next →", href=lesson_link(lesson.name, n + 1), id="lesson-next"))
    return nav


def _clean_progress(progress: Any) -> dict[str, dict[str, str]]:
    """The browser's progress, bounded and with anything malformed dropped."""
    out: dict[str, dict[str, str]] = {}
    if not isinstance(progress, dict):
        return out
    for name, marks in list(progress.items())[:MAX_PROGRESS_LESSONS]:
        if isinstance(name, str) and LESSON_NAME_RE.match(name) and isinstance(marks, dict):
            out[name] = {
                k: v
                for k, v in list(marks.items())[:MAX_CHECKPOINTS]
                if isinstance(k, str) and k.isdigit() and v in ("right", "wrong")
            }
    return out


# =====================================================================
# Callbacks
# =====================================================================


def register_lessons(app: dash.Dash, store: RunStore) -> None:
    """The Lessons page's route and the Lessons section's callbacks (none of them
    depends on the cursor)."""

    def serve_lessons_page() -> Any:
        return app.server.response_class(lessons_page(), mimetype="text/html")

    app.server.add_url_rule(LESSONS_PATH, "vmaviz_lessons", serve_lessons_page)

    @app.callback(
        Output("lesson-panel", "children"),
        Output("lesson-choice", "options"),
        Output("lesson-choice", "value"),
        Output("lesson-check", "hidden"),
        Output("lesson-at", "data"),
        Output("lesson-reveal", "children"),
        Output("lessons-box", "open"),
        Output("lesson-nav", "children"),
        Input("url", "search"),
    )
    def on_lesson_url(search: str | None) -> tuple[Any, ...]:
        named = lesson_params(search)
        if named is None:
            raise dash.exceptions.PreventUpdate
        try:
            lesson, _config, decision = open_checkpoint(store, *named)
        except (LookupError, ScenarioErrors, ScenarioMissing, LessonRunError, ValueError) as exc:
            message = html.Div(
                f"This lesson cannot be opened: {describe_error(exc)}",
                role="alert",
                className="run-error",
            )
            return message, [], None, True, None, None, True, None
        n = max(1, min(named[1], len(lesson.checkpoints)))
        cp = lesson.checkpoints[n - 1]
        options = [{"label": c.text, "value": i} for i, c in enumerate(cp.choices)]
        at = {"lesson": lesson.name, "checkpoint": n}
        panel = _panel(lesson, n, decision)
        return panel, options, None, False, at, None, True, _nav(lesson, n)

    @app.callback(
        Output("lesson-reveal", "children", allow_duplicate=True),
        Output("lesson-progress", "data"),
        Input("lesson-check", "n_clicks"),
        State("lesson-choice", "value"),
        State("lesson-at", "data"),
        State("lesson-progress", "data"),
        prevent_initial_call=True,
    )
    def on_lesson_check(_clicks: Any, choice: Any, at: Any, progress: Any) -> tuple[Any, Any]:
        if not isinstance(at, dict):
            raise dash.exceptions.PreventUpdate
        if not isinstance(choice, int) or isinstance(choice, bool):
            return html.P(
                "Pick an answer first: the model's answer is shown after yours."
            ), no_update
        try:
            lesson, _config, decision = open_checkpoint(
                store, str(at.get("lesson")), int(at.get("checkpoint") or 1)
            )
            _c, runs = _runs(store, lesson)
        except (LookupError, ScenarioErrors, ScenarioMissing, LessonRunError, ValueError) as exc:
            return html.Div(describe_error(exc), role="alert"), no_update
        n = max(1, min(int(at.get("checkpoint") or 1), len(lesson.checkpoints)))
        cp = lesson.checkpoints[n - 1]
        if not 0 <= choice < len(cp.choices):
            raise dash.exceptions.PreventUpdate
        from vmaviz.lessons.decide import side_index

        run = runs[side_index(lesson, cp)]
        right = choice == decision.right
        verdict = (
            "Right!"
            if right
            else (f"Not this time: the model says “{cp.choices[decision.right].text}”.")
        )
        if cp.kind == "count":
            model: list[Any] = [
                html.P(f"The model's value after step {decision.row}: {decision.value}.")
            ]
        else:
            model = [
                html.P("The model's next steps:"),
                html.Ol(
                    [html.Li(step_line(run, r)) for r in decision.shown], className="lesson-steps"
                ),
            ]
        reveal = html.Div(
            [
                html.P(verdict, id="lesson-verdict", className="right" if right else "wrong"),
                *model,
                html.P(cp.explain, className="lesson-explain"),
            ]
        )
        marks = _clean_progress(progress)
        marks.setdefault(lesson.name, {})[str(n)] = "right" if right else "wrong"
        return reveal, marks

    @app.callback(
        Output("lesson-marks", "children"),
        Input("lesson-progress", "data"),
        Input("lesson-at", "data"),
    )
    def on_lesson_marks(progress: Any, at: Any) -> Any:
        if not isinstance(at, dict):
            raise dash.exceptions.PreventUpdate
        name = str(at.get("lesson"))
        try:
            lesson = get_lesson(name)
        except (LookupError, ScenarioErrors):
            raise dash.exceptions.PreventUpdate from None
        marks = _clean_progress(progress).get(name, {})
        cells = []
        for i in range(1, len(lesson.checkpoints) + 1):
            mark = marks.get(str(i))
            sign = {"right": "✓", "wrong": "✗"}.get(mark or "", "·")
            cells.append(
                dcc.Link(f"{i} {sign}", href=lesson_link(name, i), className=f"mark {mark or ''}")
            )
        done = len(marks)
        return [html.Span(f"Answered {done} of {len(lesson.checkpoints)}: "), *cells]
