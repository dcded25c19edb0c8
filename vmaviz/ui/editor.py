"""Editing in place: the scenario's YAML in the page, checked as you type, run on demand.

* The editor (``#editor-text``, a plain textarea: no CDN, no editor library) is filled
  with the current scenario's text when it is opened or the scenario changes.
* ``assets/editor.js`` sends the text ``CHECK_DELAY_MS`` after the last key press to
  :func:`check_text`, which runs the safe loader (the same messages as an upload:
  ``file:line: field: message``) and marks the bad lines in the gutter.
* Run saves the text as an upload does (:meth:`RunStore.save_upload`) and selects it;
  the scenario dropdown's callback then loads it as it loads any upload.
* The permalink carries an edited (uploaded) scenario as ``yaml=``: its text
  compressed (zlib, base64url), at most :data:`MAX_LINK_YAML_CHARS` characters. The
  browser adds it to the link (assets/editor.js), so the step's permalink that the
  server sends on every step stays as small as before. Opening such a link only parses
  the text with the safe loader: nothing in a URL runs code.
* Export for slides and the presenter layout are buttons here too; they run in the
  browser (assets/editor.js) and cost nothing per step.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, dcc, html, no_update

from vmaviz.scenario.errors import ScenarioErrors
from vmaviz.scenario.loader import load_scenario_text
from vmaviz.scenario.schema import MAX_FILE_BYTES
from vmaviz.ui.components import aria, button
from vmaviz.ui.session import RunStore, ScenarioMissing

#: The longest ``yaml=`` value a permalink carries (characters, compressed and
#: encoded). gunicorn refuses a request line over 8,190 bytes (gunicorn_conf.py:
#: limit_request_line); this leaves room for the rest of the link.
MAX_LINK_YAML_CHARS = 6000

#: The file name the edited text's errors are reported against.
EDITED_NAME = "edited.yaml"

#: The gutter is decoration for screen readers (the errors are listed in text).
_HIDDEN: dict[str, Any] = {"aria-hidden": "true"}

#: The most lines the gutter numbers (a longer text's errors are still listed).
MAX_GUTTER_LINES = 5000


def encode_yaml(text: str) -> str:
    """A scenario text as a URL-safe parameter: zlib-compressed, base64url, no padding."""
    packed = zlib.compress(text.encode("utf-8"), 9)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def decode_yaml(value: str) -> str:
    """The scenario text of a ``yaml=`` parameter.

    Raises:
        ValueError: too long, not base64url, not zlib data, larger than the upload
            limit once decompressed (read no further than that), or not UTF-8 text.
    """
    if len(value) > MAX_LINK_YAML_CHARS:
        raise ValueError(f"the link's scenario is longer than {MAX_LINK_YAML_CHARS:,} characters")
    try:
        padded = value + "=" * (-len(value) % 4)
        packed = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the link's scenario is not valid base64url data") from None
    inflater = zlib.decompressobj()
    try:
        # Bounded: a small link must not inflate into more than an upload may be.
        raw = inflater.decompress(packed, MAX_FILE_BYTES + 1)
    except zlib.error:
        raise ValueError("the link's scenario is not valid compressed data") from None
    if not inflater.eof and not inflater.unconsumed_tail:
        raise ValueError("the link's scenario is cut short")
    if len(raw) > MAX_FILE_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"the link's scenario is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the link's scenario is not UTF-8 text") from None


def link_param(store: RunStore, ref: str | None) -> dict[str, Any]:
    """What the browser adds to the permalink for scenario ``ref``.

    Returns:
        ``{"ref", "yaml"}`` for an upload whose compressed text fits in the link,
        ``{"ref", "note"}`` for one that does not (the link then names its upload
        reference only, which lasts while the server keeps the upload), ``{}`` for a
        bundled scenario.
    """
    if not ref or not ref.startswith("upload:"):
        return {}
    text = store.cache.get(f"scn:{ref}")
    if not isinstance(text, str):
        return {}
    value = store.get_or_build(f"yamlq:{ref}", lambda: encode_yaml(text))
    if len(value) > MAX_LINK_YAML_CHARS:
        return {
            "ref": ref,
            "note": (
                f"This scenario is {len(value):,} characters compressed, more than the "
                f"{MAX_LINK_YAML_CHARS:,} a link carries: the link names its upload only, "
                "which opens while this server keeps it."
            ),
        }
    return {"ref": ref, "yaml": value}


def restore_from_query(store: RunStore, search: str | None) -> tuple[str | None, str | None]:
    """The upload a permalink's ``yaml=`` carries, saved as an upload.

    Returns:
        ``(reference, None)`` when the link carries a valid scenario, ``(None, note)``
        when it carries one that is refused (the note says why), ``(None, None)``
        when it carries none.
    """
    values = parse_qs((search or "").lstrip("?")).get("yaml")
    if not values:
        return None, None
    try:
        text = decode_yaml(values[-1])
        ref, _ = store.save_upload(text, EDITED_NAME)
    except ScenarioErrors as exc:
        return None, f"The link's scenario has errors:\n{exc}"
    except ValueError as exc:
        return None, f"The link's scenario is refused: {exc}."
    return ref, None


def check_text(text: Any) -> tuple[list[Any], list[int]]:
    """Check an edited text with the safe loader.

    Returns:
        The message to show (``file:line: field: message`` per error, as for an upload)
        and the lines with errors.
    """
    if not isinstance(text, str) or not text.strip():
        return [html.Span("The editor is empty.", className="editor-bad")], []
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return [
            html.Span(
                f"The text is larger than the {MAX_FILE_BYTES // 1024} KiB limit "
                "for scenario files (MAX_FILE_BYTES).",
                className="editor-bad",
            )
        ], []
    try:
        sc = load_scenario_text(text, EDITED_NAME)
    except ScenarioErrors as exc:
        lines = sorted({e.line for e in exc.errors if e.line})
        items = [
            html.Li(
                str(e),
                className="editor-error",
                **_data_line(e.line),
            )
            for e in exc.errors
        ]
        return [html.Ul(items, className="editor-errors-list")], lines
    return [html.Span(f"No errors: scenario {sc.name}.", className="editor-ok")], []


def _data_line(line: int | None) -> dict[str, Any]:
    """The ``data-line`` attribute of an error (assets/editor.js selects that line)."""
    return {"data-line": str(line)} if line else {}


def gutter(text: str, bad: list[int]) -> list[Any]:
    """Line numbers for the editor's gutter, the lines with errors marked."""
    count = min(text.count("\n") + 1, MAX_GUTTER_LINES)
    marked = set(bad)
    return [
        html.Div(str(i), className="editor-line-bad" if i in marked else None)
        for i in range(1, count + 1)
    ]


def editor_section() -> html.Section:
    """The editor (folded), the slide-export buttons and the presenter toggle."""
    editor = html.Details(
        [
            html.Summary("Edit the scenario (YAML)"),
            html.P(
                "Errors are checked as you type, with the messages of an upload. Run loads "
                "the edited text as an upload; the permalink then carries it (compressed, "
                f"up to {MAX_LINK_YAML_CHARS:,} characters).",
                className="hint",
            ),
            html.Div(
                [
                    html.Div(id="editor-gutter", className="editor-gutter", **_HIDDEN),
                    dcc.Textarea(
                        id="editor-text",
                        value="",
                        spellCheck=False,
                        className="editor-text",
                        maxLength=MAX_FILE_BYTES,
                        wrap="off",
                    ),
                ],
                className="editor-box",
            ),
            html.Div(
                [
                    button("editor-run", "Run the edited scenario", "run the edited scenario"),
                    button("editor-reset", "Reset", "put back the scenario's own text"),
                ],
                className="editor-buttons",
            ),
            html.Div(id="editor-check-out", className="editor-check", role="status"),
            html.Div(id="editor-status", className="editor-status", role="alert"),
        ],
        id="editor-details",
        className="editor-details",
    )
    slides = html.Div(
        [
            html.Span("Slides:", className="slides-title"),
            button("export-png", "PNG", "download the timeline and figures as PNG images"),
            button("export-svg", "SVG", "download the timeline and figures as SVG images"),
            button(
                "presenter",
                "Presenter layout",
                "bigger fonts, fewer panels (kept in the permalink)",
                className="presenter-toggle",
            ),
            html.Span(id="export-status", className="export-status", role="status"),
        ],
        className="slides-bar",
        **aria("export for slides"),
    )
    return html.Section(
        [
            slides,
            editor,
            dcc.Store(id="editor-check", data=None),
            dcc.Store(id="editor-link", data=None),
            dcc.Store(id="editor-link-drawn", data=None),
        ],
        className="editor-section",
    )


def register(app: dash.Dash, store: RunStore) -> None:
    """The editor's callbacks."""

    @app.callback(
        Output("editor-text", "value"),
        Output("editor-gutter", "children"),
        Output("editor-check-out", "children", allow_duplicate=True),
        Input("scenario", "value"),
        Input("editor-details", "n_clicks"),
        Input("editor-reset", "n_clicks"),
        State("editor-text", "value"),
        prevent_initial_call=True,
    )
    def on_fill(ref: str | None, opened: Any, _reset: Any, current: Any) -> tuple[Any, ...]:
        """The scenario's own text, sent only once the editor has been opened.

        (A click on the folded editor's summary is what opens it: ``html.Details``
        does not report ``open`` back.)
        """
        trigger = dash.ctx.triggered_id
        if not ref or not opened:
            raise dash.exceptions.PreventUpdate
        if trigger == "editor-details" and current:
            raise dash.exceptions.PreventUpdate
        try:
            text = store.scenario(ref).source_text
        except (ScenarioMissing, ScenarioErrors) as exc:
            return no_update, no_update, html.Span(str(exc), className="editor-bad")
        return text, gutter(text, []), None

    @app.callback(
        Output("editor-check-out", "children"),
        Output("editor-gutter", "children", allow_duplicate=True),
        Input("editor-check", "data"),
        prevent_initial_call=True,
    )
    def on_check(text: Any) -> tuple[Any, ...]:
        message, bad = check_text(text)
        return message, gutter(text if isinstance(text, str) else "", bad)

    @app.callback(
        Output("scenario", "value", allow_duplicate=True),
        Output("scenario", "options", allow_duplicate=True),
        Output("editor-status", "children"),
        Output("editor-check-out", "children", allow_duplicate=True),
        Input("editor-run", "n_clicks"),
        State("editor-text", "value"),
        State("scenario", "options"),
        prevent_initial_call=True,
    )
    def on_run(_clicks: Any, text: Any, opts: Any) -> tuple[Any, ...]:
        """Save the text as an upload and select it (the dropdown's callback loads it)."""
        message, bad = check_text(text)
        if bad or not isinstance(text, str) or not text.strip():
            return (
                no_update,
                no_update,
                html.Span("Fix the errors first.", className="editor-bad"),
                message,
            )
        try:
            ref, sc = store.save_upload(text, EDITED_NAME)
        except (ScenarioErrors, ValueError) as exc:
            return no_update, no_update, html.Span(str(exc), className="editor-bad"), message
        from vmaviz.ui.callbacks import scenario_option

        options = list(opts or [])
        if ref not in {o.get("value") for o in options if isinstance(o, dict)}:
            options.append(scenario_option(ref, sc))
        note = link_param(store, ref).get("note", "")
        status = html.Span(f"Running the edited scenario {sc.name}. {note}", className="editor-ok")
        return ref, options, status, message

    @app.callback(Output("editor-link", "data"), Input("scenario", "value"))
    def on_link(ref: str | None) -> Any:
        """What the browser adds to the permalink: sent when the scenario changes."""
        return link_param(store, ref) or None

    app.clientside_callback(
        "function (link) {"
        " return window.VmavizEditor ? window.VmavizEditor.setLink(link) : null; }",
        Output("editor-link-drawn", "data"),
        Input("editor-link", "data"),
    )
