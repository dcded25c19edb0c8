"""The kernel source beside each step: where the step is in Linux 6.4, and the model's code.

For the kernel function of the current step the panel shows its Linux 6.4 file and
function with a link to its definition in a public source browser (Bootlin's
Elixir, v6.4 tree), the step's point in it (the event code's detail and what it
means), the 6.4 callers on the stack, and a short excerpt of the model's own step
function: the ``pc`` branch that emitted the step's event, with that line marked.

The line numbers come from ``vmaviz/data/linux-6.4-lines.tsv``, built once from the
pristine 6.4.0 tree by ``tests/data/build_linux_lines.py``: the app never fetches
anything, the link is only for the user's browser.  Only names in that file are
shown, so every function name the panel shows exists in 6.4 (names from later
patches, and the model's own events such as ``touch``, give way to the nearest 6.4
function on the stack).

Excerpts are cut once per (function, event code) and cached; a step only looks
them up.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dash import dcc, html

from vmaviz.engine import narrate
from vmaviz.model.kernel import STEPS
from vmaviz.ui.components import aria

LINES_FILE = Path(__file__).resolve().parents[1] / "data" / "linux-6.4-lines.tsv"
#: The public source browser the link opens (v6.4 tree); ``{file}``, ``{line}``.
SOURCE_URL = "https://elixir.bootlin.com/linux/v6.4/source/{file}#L{line}"
#: Longest excerpt of the model's code, in lines.
MAX_EXCERPT = 24
#: Callers listed at most (innermost first).
MAX_CALLERS = 6

#: The head of a ``pc`` branch of a step function (its indent is the body's, or the
#: ``while True:`` loop's around the branches).
_BRANCH = re.compile(r"^( +)(?:(?:el)?if (?:fr\.)?pc\b|# pc \d)")


@functools.cache
def kernel_lines() -> dict[str, tuple[str, int]]:
    """``linux-6.4-lines.tsv`` as kernel function -> (file, line) in Linux 6.4.0."""
    out: dict[str, tuple[str, int]] = {}
    for line in LINES_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, where = line.split("\t")
        path, _, number = where.rpartition(":")
        out[name] = (path, int(number))
    return out


def source_url(name: str) -> str | None:
    """The link to ``name``'s definition in the v6.4 tree (None: not a 6.4 function)."""
    where = kernel_lines().get(name)
    if where is None:
        return None
    return SOURCE_URL.format(file=where[0], line=where[1])


def shown_function(code: str, stack: tuple[str, ...] | list[str]) -> str | None:
    """The 6.4 kernel function the panel shows for a step (None: user space).

    Narration's choice (the event code's function, else the innermost frame) when
    6.4 has it; otherwise the innermost frame of the stack that 6.4 has.
    """
    known = kernel_lines()
    fn, _ = narrate.step_function(code, stack)
    for name in (fn, *reversed(stack)):
        if name in known:
            return name
    return None


def model_function(code: str, stack: tuple[str, ...] | list[str]) -> str | None:
    """The model's step function that took the step (the innermost registered frame)."""
    fn, _ = narrate.step_function(code, stack)
    for name in (*reversed(stack), fn):
        if name in STEPS:
            return name
    return None


@dataclass(frozen=True)
class Excerpt:
    """A few lines of a model step function around the step's event.

    Attributes:
        path: The model file, relative to the repository (``vmaviz/model/kernel.py``).
        first: The file line number of ``lines[0]``.
        lines: The lines (no newlines).
        mark: Index in ``lines`` of the line that emits the step's event (-1: none).
    """

    path: str
    first: int
    lines: tuple[str, ...]
    mark: int


def _emit_index(lines: list[str], code: str) -> int:
    """The line that emits ``code``.

    In order: the code as a whole literal (``"vma_start_read:seq_ok"``); an
    f-string whose literal head is the code's longest prefix
    (``f"mas_walk:{ev.kind}"``); a line passing the code's last part as a literal
    to a helper that emits it (``_abort(k, th, "no_anon_vma")``).  -1: none.
    """
    parts = code.split(":")
    full = (f'"{code}"', f"'{code}'")
    for i, line in enumerate(lines):
        if "emit(" in line and any(needle in line for needle in full):
            return i
    for n in range(len(parts) - 1, 0, -1):
        head = ":".join(parts[:n])
        needles = (f'f"{head}:{{', f"f'{head}:{{")
        for i, line in enumerate(lines):
            if "emit(" in line and any(needle in line for needle in needles):
                return i
    last = parts[-1]
    if len(parts) > 1 and re.fullmatch(r"[a-z_][a-z0-9_]*", last):
        for i, line in enumerate(lines):
            if f'"{last}"' in line and "emit(" not in line:
                return i
    return -1


@functools.lru_cache(maxsize=4096)
def model_excerpt(function: str, code: str) -> Excerpt | None:
    """The ``pc`` branch of ``function``'s step function that emits ``code``.

    Step functions are ``pc`` state machines: the branch is the lines from one
    ``if pc == N`` head (at the body's indent) to the next.  Without heads, or when
    another function emits the event, the lines around the emit (or the head of the
    function) are shown, at most :data:`MAX_EXCERPT` lines.
    """
    entry = STEPS.get(function)
    if entry is None:
        return None
    fn = inspect.unwrap(entry[0])
    try:
        src, start = inspect.getsourcelines(fn)
        path = Path(inspect.getsourcefile(fn) or "")
    except (OSError, TypeError):
        return None
    lines = [line.rstrip("\n") for line in src]
    mark = _emit_index(lines, code)
    found = [(i, len(m.group(1))) for i, line in enumerate(lines) if (m := _BRANCH.match(line))]
    indent = min((d for _, d in found), default=0)
    # Only the outermost heads: a nested ``if pc`` is part of its branch.
    heads = [i for i, d in found if d == indent]
    lo, hi = 0, len(lines)
    if mark >= 0 and heads:
        before = [h for h in heads if h <= mark]
        after = [h for h in heads if h > mark]
        lo = before[-1] if before else _body_start(lines)
        hi = after[0] if after else len(lines)
    elif mark < 0:
        lo = 0
    if hi - lo > MAX_EXCERPT:
        centre = mark if mark >= 0 else lo
        lo = max(lo, centre - MAX_EXCERPT // 2)
        hi = min(hi, lo + MAX_EXCERPT)
    while hi > lo + 1 and not lines[hi - 1].strip():
        hi -= 1
    try:
        rel = path.resolve().relative_to(Path(__file__).resolve().parents[2])
    except ValueError:
        rel = Path(path.name)
    return Excerpt(str(rel), start + lo, tuple(lines[lo:hi]), mark - lo if mark >= lo else -1)


def _body_start(lines: list[str]) -> int:
    """The first line after the ``def`` line and its docstring."""
    i = 1
    while i < len(lines) and lines[i - 1].rstrip().endswith((",", "(")):
        i += 1
    if i < len(lines) and lines[i].strip().startswith(('"""', "'''")):
        quote = lines[i].strip()[:3]
        if lines[i].strip().count(quote) >= 2 and len(lines[i].strip()) > 3:
            return i + 1
        i += 1
        while i < len(lines) and quote not in lines[i]:
            i += 1
        return i + 1
    return i


def step_meaning(code: str, function: str) -> tuple[str, str]:
    """The event code's detail (after the function's prefix) and what it means."""
    prefix, _, detail = code.partition(":")
    if detail.startswith("abort:"):
        reason = detail.split(":", 1)[1]
        return detail, narrate.ABORT_WHY.get(reason, "")
    if not detail:
        return "", f"the step of `{function}` the model records as `{prefix}`"
    return detail, ""


def source_key(code: str, stack: tuple[str, ...], reason: str) -> tuple[Any, ...]:
    """What the panel is drawn from: it is redrawn only when this changes."""
    return (code, stack, reason)


def source_panel(code: str | None, stack: tuple[str, ...], reason: str = "") -> Any:
    """The source panel for one step (``code`` None: before the first step).

    Args:
        code: The step's event code.
        stack: The step's kernel stack (outermost first).
        reason: Narration's "why" for the step (shown when the code has no detail
            of its own).
    """
    title = html.H3("Linux 6.4 source", className="source-title")
    if code is None:
        return html.Section(
            [title, html.P("No step yet.", className="source-none")],
            className="panel source-panel",
        )
    name = shown_function(code, stack)
    if name is None:
        return html.Section(
            [title, html.P("This step is in user space: no kernel function runs.")],
            className="panel source-panel",
        )
    path, line = kernel_lines()[name]
    url = source_url(name) or ""
    detail, meaning = step_meaning(code, name)
    callers = [f for f in reversed(stack) if f != name and f in kernel_lines()][:MAX_CALLERS]
    parts: list[Any] = [
        title,
        html.Div(
            [
                html.Code(name, className="source-function"),
                " in ",
                html.A(
                    f"{path}:{line}",
                    href=url,
                    target="_blank",
                    rel="noopener noreferrer",
                    className="source-link",
                    title="this function in the Linux v6.4 tree (elixir.bootlin.com)",
                ),
            ],
            className="source-where",
        ),
    ]
    if detail or meaning or reason:
        point: list[Any] = [html.Strong("This step: ")]
        if detail:
            point.append(html.Code(detail))
        text = meaning or reason
        if text:
            point.extend([" — ", dcc.Markdown(text, className="source-meaning")])
        parts.append(html.Div(point, className="source-point"))
    if callers:
        chain: list[Any] = [html.Strong("Called from: ")]
        for i, caller in enumerate(callers):
            if i:
                chain.append(" ← ")
            chain.append(html.Code(caller))
        parts.append(html.Div(chain, className="source-callers"))
    model = model_function(code, stack)
    excerpt = model_excerpt(model, code) if model else None
    if excerpt is not None:
        rows = []
        for i, text in enumerate(excerpt.lines):
            cls = "src-line src-current" if i == excerpt.mark else "src-line"
            rows.append(html.Span(f"{excerpt.first + i:5d}  {text}\n", className=cls))
        parts.append(
            html.Details(
                [
                    html.Summary(
                        ["The model's code: ", html.Code(f"{excerpt.path}:{excerpt.first}")]
                    ),
                    html.Pre(rows, className="source-excerpt"),
                ],
                open=True,
                className="source-model",
            )
        )
    return html.Section(
        parts, className="panel source-panel", role="region", **aria("kernel source")
    )


def source_slot(side: str) -> html.Div:
    """The (empty) slot the step's source panel is drawn into."""
    from vmaviz.ui.components import side_id

    return html.Div(id=side_id("source", side), className="slot slot-source")


def source_view(run: Any, row: int | None, reason: str) -> tuple[Any, Any]:
    """``(key, build)`` of a run's source panel at ``row``, for ``HtmlViews.view``.

    The key is the step's code, stack and reason, so consecutive steps of one
    branch of one function send nothing.
    """
    if row is None:
        return (None,), lambda: source_panel(None, ())
    trace = run.engine.trace
    code = trace.codes[int(run.code[row])]
    stack = tuple(trace.stacks[int(run.stack[row])])
    return source_key(code, stack, reason), lambda: source_panel(code, stack, reason)
