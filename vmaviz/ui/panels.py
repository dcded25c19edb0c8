"""Pure panel builders: snapshot dicts in, Dash components out.

Each function builds a fresh component tree from plain data (a
:func:`vmaviz.engine.view.snapshot` dict, a :class:`~vmaviz.engine.narrate.Narration`,
trace rows, run summaries) and keeps nothing.  Every state that a colour shows is
also written as text (a badge such as ``W``, ``R2``, ``BLOCKED``), tables have
captions and row headers, and regions carry ARIA labels for screen readers.

The only ids set here are the pattern-matching ids of :func:`event_log` rows
(``{"type": "log-row", "index": step}``, with ``n_clicks``), so a callback can jump
to the step a row shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from vmaviz.engine.narrate import GLOSSARY, Narration
from vmaviz.ui.palette import (
    LOCK_STATES,
    THREAD_STATES,
    Style,
    format_ns,
    hexaddr,
    style_of,
)

#: Pattern-matching id type of event-log rows.
LOG_ROW = "log-row"


def _aria(label: str, **more: str) -> dict[str, Any]:
    """``aria-label`` (and ``aria-*`` from keywords: ``live="polite"``) as Dash props."""
    props: dict[str, Any] = {"aria-label": label}
    props.update({f"aria-{k.replace('_', '-')}": v for k, v in more.items()})
    return props


def _badge(st: Style, text: str | None = None, title: str | None = None) -> html.Span:
    """A coloured chip whose text says the same as its colour."""
    return html.Span(
        text if text is not None else (st.badge or st.label),
        className="badge",
        title=title or st.label,
        # The chip's shape is the .badge rule of assets/vmaviz.css (sent once, not
        # with every badge of every step); only its colours are its own.
        style={"backgroundColor": st.colour, "color": st.text},
    )


def _table(
    caption: Any, head: Sequence[str], rows: list[html.Tr], label: str, class_name: str
) -> html.Table:
    return html.Table(
        [
            html.Caption(caption),
            html.Thead(html.Tr([html.Th(h, scope="col") for h in head])),
            html.Tbody(rows),
        ],
        className=f"panel-table {class_name}",
        **_aria(label),
    )


def _section(title: str, children: list[Any], label: str, class_name: str) -> html.Section:
    return html.Section(
        [html.H3(title), *children],
        className=f"panel {class_name}",
        role="region",
        **_aria(label),
    )


# =====================================================================
# VMAs
# =====================================================================


def _vma_state_text(v: Mapping[str, Any]) -> str:
    state = str(v.get("state", "unlocked"))
    st = style_of(LOCK_STATES, state)
    if state == "read_locked":
        n = len(v.get("readers") or [])
        return f"R{n}: read-locked by {n} reader{'s' if n != 1 else ''}"
    return f"{st.badge}: {st.label}" if st.badge else st.label


def vma_table(snap: Mapping[str, Any]) -> Component:
    """Every VMA with its range, flags, backing, ``anon_vma`` and lock state.

    The ``vm_lock_seq`` column compares the VMA's sequence number with
    ``mm_lock_seq``: equal means write-locked, shown with a ``W WRITE-LOCKED``
    badge and the ``==``, not by colour alone.
    """
    seq = snap.get("mm_lock_seq")
    rows: list[html.Tr] = []
    for v in snap.get("vmas", []):
        state = str(v.get("state", "unlocked"))
        st = style_of(LOCK_STATES, state)
        vm_seq = v.get("vm_lock_seq")
        if seq is None or vm_seq is None:
            seq_cell: Any = html.Span("— (per-VMA locks off)", className="muted")
        elif vm_seq == seq:
            seq_cell = [
                _badge(LOCK_STATES["write_locked"], "W WRITE-LOCKED"),
                html.Span(f" {vm_seq} == {seq}", className="mono"),
            ]
        else:
            seq_cell = html.Span(f"{vm_seq} ≠ {seq}", className="mono")
        size = int(v["end"]) - int(v["start"])
        backing = f"file {v['file']}" if v.get("file") else "anonymous"
        if v.get("anon_name"):
            # PR_SET_VMA_ANON_NAME: shown as /proc/pid/maps shows it.
            backing += f" [anon:{v['anon_name']}]"
        readers = ", ".join(v.get("read_holders") or []) or "—"
        waiters = v.get("waiters") or []
        if waiters:
            readers += f" (writer waiting: {', '.join(waiters)})"
        rows.append(
            html.Tr(
                [
                    html.Th(
                        [v["name"], html.Span(f" vma{v['id']}", className="muted")], scope="row"
                    ),
                    # The columns the app exists to show come first, so that a narrow
                    # column (compare view) cuts the details, never the lock state.
                    html.Td(_badge(st, _vma_state_text(v)), className="key-col"),
                    html.Td(seq_cell, className="key-col"),
                    html.Td(readers, className="wrap"),
                    html.Td("yes" if v.get("detached") else "no"),
                    html.Td(
                        [
                            hexaddr(int(v["start"])),
                            html.Br(),
                            hexaddr(int(v["end"])),
                        ],
                        className="mono range",
                        title=f"[{hexaddr(int(v['start']))}, {hexaddr(int(v['end']))})",
                    ),
                    html.Td(f"{size // 4096} pages", className="num"),
                    html.Td(v.get("flags", ""), className="mono wrap"),
                    html.Td(backing, className="wrap"),
                    html.Td(
                        str(v["anon_vma"]) if v.get("anon_vma") is not None else "none",
                        className="mono",
                    ),
                ],
                className=f"vma-row state-{state}",
            )
        )
    caption = (
        f"VMAs; mm_lock_seq = {seq} (a VMA whose vm_lock_seq equals it is write-locked)"
        if seq is not None
        else "VMAs (per-VMA locks off: every fault takes mmap_lock)"
    )
    return _table(
        caption,
        (
            "VMA",
            "state",
            "vm_lock_seq vs mm_lock_seq",
            "read holders",
            "detached",
            "range [start, end)",
            "size",
            "flags",
            "backing",
            "anon_vma",
        ),
        rows,
        "VMAs and their locks",
        "vma-table",
    )


# =====================================================================
# mmap_lock
# =====================================================================


def mmap_lock_panel(snap: Mapping[str, Any]) -> Component:
    """Who holds ``mmap_lock``, the wait queue in order, the count bits and spinners."""
    ml = snap.get("mmap_lock") or {}
    now = int(snap.get("now_ns", 0))
    writer = ml.get("writer")
    readers = list(ml.get("readers_held_by") or [])
    queue = list(ml.get("waiters") or []) if isinstance(ml.get("waiters"), list) else []
    if writer:
        holder: list[Any] = [
            _badge(style_of(LOCK_STATES, "write_locked"), "W"),
            f" held for write by {writer}",
        ]
    elif readers:
        holder = [
            _badge(style_of(LOCK_STATES, "read_locked"), f"R{len(readers)}"),
            f" held for read by {', '.join(readers)}",
        ]
    else:
        holder = [_badge(style_of(LOCK_STATES, "unlocked"), "free"), " nobody holds it"]
    bits = [
        ("writer-locked", bool(writer)),
        ("waiters", bool(queue)),
        ("handoff", bool(ml.get("handoff"))),
    ]
    bit_items = [
        html.Li([html.Code(name), f": {int(on)} ({'set' if on else 'clear'})"]) for name, on in bits
    ]
    bit_items.append(html.Li([html.Code("reader count"), f": {int(ml.get('readers', 0) or 0)}"]))
    waits: list[Any] = []
    for w in queue:
        kind = str(w.get("kind", "read"))
        since = int(w.get("since_ns", 0))
        waits.append(
            html.Li(
                [
                    _badge(
                        style_of(THREAD_STATES, "blocked"),
                        "W" if kind == "write" else "R",
                        title=f"waits for {kind}",
                    ),
                    f" {w.get('thread')} wants {kind}, waiting since {format_ns(since)} "
                    f"({format_ns(max(now - since, 0))})",
                    html.Strong(" HANDOFF") if w.get("handoff_set") else "",
                ]
            )
        )
    spinners = list(ml.get("spinners") or [])
    return _section(
        "mmap_lock",
        [
            html.P(holder, className="holder"),
            html.Ul(bit_items, className="bits", **_aria("count bits")),
            html.H4("Wait queue (first in line first)"),
            html.Ol(waits, className="wait-queue", **_aria("mmap_lock wait queue"))
            if waits
            else html.P("empty", className="muted"),
            html.P(
                [
                    _badge(style_of(THREAD_STATES, "spinning")),
                    f" spinning on a CPU for it: {', '.join(spinners)}",
                ]
            )
            if spinners
            else html.P("No one spins on it.", className="muted"),
        ],
        "mmap_lock holders and waiters",
        "mmap-lock-panel",
    )


# =====================================================================
# Threads
# =====================================================================


def threads_panel(snap: Mapping[str, Any]) -> Component:
    """Per thread: state (and what it is blocked on), RCU section, kernel stack, next step."""
    rows: list[html.Tr] = []
    for th in snap.get("threads", []):
        state = str(th.get("state", ""))
        st = style_of(THREAD_STATES, state)
        detail = ""
        if th.get("blocked_on"):
            detail = f" on {th['blocked_on']}"
        stack = list(th.get("stack") or [])
        stack_cell: Any = (
            html.Ol(
                [
                    html.Li(
                        html.Code(fn),
                        # .innermost is bold (assets/vmaviz.css).
                        className="innermost" if i == len(stack) - 1 else None,
                    )
                    for i, fn in enumerate(stack)
                ],
                className="stack",
                **_aria(f"{th.get('name')} kernel stack, outermost first"),
            )
            if stack
            else html.Span("(user space)", className="muted")
        )
        locks = list(th.get("vma_read_locks") or [])
        rows.append(
            html.Tr(
                [
                    html.Th(th.get("name", ""), scope="row"),
                    # State, next step and op first (see vma_table); the long cells wrap.
                    html.Td([_badge(st), html.Span(detail)], className="key-col"),
                    html.Td(th.get("next") or "—", className="mono wrap"),
                    html.Td(th.get("op") or "—", className="mono wrap"),
                    html.Td(", ".join(locks) or "—", className="wrap"),
                    html.Td(
                        _badge(style_of(LOCK_STATES, "rcu_pending"), "RCU", "inside rcu_read_lock")
                        if th.get("in_rcu")
                        else "—"
                    ),
                    html.Td(
                        str(th.get("cpu")) if int(th.get("cpu", -1)) >= 0 else "—", className="num"
                    ),
                    html.Td(stack_cell, className="wrap"),
                    html.Td(str(th.get("faults", 0)), className="num"),
                ],
                className=f"thread-row thread-{state}",
            )
        )
    return _table(
        "Threads",
        (
            "thread",
            "state",
            "next",
            "op",
            "VMA read locks",
            "RCU read section",
            "CPU",
            "kernel stack (outermost first)",
            "faults",
        ),
        rows,
        "Threads: state, locks and kernel stacks",
        "threads-table",
    )


# =====================================================================
# RCU
# =====================================================================


def _rcu_waiting(cb: Mapping[str, Any]) -> str:
    """Who a pending callback's grace period still waits for."""
    if cb.get("gp_started") is False:
        return f"grace period {int(cb.get('gp', 0)) - 1} to end first"
    return ", ".join(cb.get("waiting_for") or []) or "nobody (time only)"


def rcu_panel(snap: Mapping[str, Any]) -> Component:
    """Threads in RCU read sections, callbacks waiting for a grace period, GP count."""
    rcu = snap.get("rcu") or {}
    readers = list(rcu.get("readers") or [])
    pending = list(rcu.get("pending") or [])
    rows = [
        html.Tr(
            [
                html.Th("VMA" if cb.get("kind") == "vma" else "maple nodes", scope="row"),
                html.Td(str(cb.get("what", ""))),
                html.Td(format_ns(int(cb.get("queued_ns", 0)))),
                html.Td(str(cb.get("gp", ""))),
                html.Td(_rcu_waiting(cb)),
            ]
        )
        for cb in pending
    ]
    dead = list(snap.get("dead_nodes_pending") or [])
    return _section(
        "RCU",
        [
            html.P(
                [
                    html.Strong("Readers in a read-side section: "),
                    ", ".join(readers) if readers else "none",
                ]
            ),
            html.P(
                [
                    html.Strong("Grace periods completed: "),
                    str(rcu.get("grace_periods", 0)),
                    f" (each lasts at least {format_ns(int(rcu.get('grace_ns', 0)))})",
                ]
            ),
            _table(
                f"{len(pending)} callback{'s' if len(pending) != 1 else ''} waiting for a grace "
                "period"
                + (
                    f"; {len(dead)} dead maple node{'s' if len(dead) != 1 else ''}, ids "
                    f"{', '.join(map(str, dead))}"
                    if dead
                    else ""
                ),
                ("frees", "what", "queued at", "grace period", "waiting for readers"),
                rows,
                "RCU callbacks waiting for a grace period",
                "rcu-table",
            )
            if pending
            else html.P("No frees are waiting for a grace period.", className="muted"),
        ],
        "RCU readers and pending frees",
        "rcu-panel",
    )


# =====================================================================
# Narration, glossary
# =====================================================================


def narration_panel(n: Narration) -> Component:
    """The step's explanation: title, text, kernel function and file, and why."""
    return html.Section(
        [
            html.H3(n.title, className="narration-title"),
            dcc.Markdown(n.text, className="narration-text"),
            html.Div(
                [
                    html.Strong("Kernel function: "),
                    html.Code(n.function or "—"),
                    html.Span(f" ({n.source})" if n.source else ""),
                ],
                className="narration-function",
            ),
            html.Div(
                [html.Strong("Why: "), dcc.Markdown(n.reason, style={"display": "inline-block"})],
                className="narration-reason",
            ),
        ],
        className="panel narration",
        role="region",
        **_aria("What this step does", live="polite"),
    )


def _slug(term: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in term.lower()).strip("-")


def glossary_panel() -> Component:
    """The glossary (:data:`~vmaviz.engine.narrate.GLOSSARY`) in a collapsible block."""
    items: list[Any] = []
    for term, text in GLOSSARY.items():
        items.append(html.Dt(term, id=f"glossary-{_slug(term)}"))
        items.append(html.Dd(dcc.Markdown(text)))
    return html.Details(
        [html.Summary("Glossary: the ideas behind each step"), html.Dl(items)],
        className="panel glossary",
        **_aria("Glossary"),
    )


# =====================================================================
# Event log
# =====================================================================


def _arg(v: int) -> str:
    return hexaddr(v) if abs(v) >= 1 << 16 else str(v)


def event_log(
    rows: Sequence[Mapping[str, Any]],
    current: int,
    names: Mapping[int, str] | None = None,
) -> Component:
    """Trace rows as a list of buttons; the current step is marked ``aria-current``.

    Args:
        rows: ``Trace.row(i)`` dicts (a ``thread`` key, if present, names the thread).
        current: The step shown now.
        names: Thread id -> name, for rows without a ``thread`` key.

    Returns:
        An ordered list; each row is a button of class ``log-row`` whose
        ``data-step`` is its step.
    """
    items = []
    for r in rows:
        step = int(r["step"])
        tid = int(r.get("tid", 0))
        who = r.get("thread") or (names or {}).get(tid) or ("rcu" if tid < 0 else f"T{tid}")
        stack = list(r.get("stack") or [])
        here = step == current
        # assets/vmaviz.js turns a click into ``log-click`` by ``data-step`` (no callback
        # input per row: a pattern-matching input fired on every re-render).
        extra: dict[str, Any] = {"data-step": str(step)}
        if here:
            extra["aria-current"] = "step"
        items.append(
            html.Li(
                html.Button(
                    [
                        html.Span(f"{step:>6}", className="log-step mono"),
                        html.Span(format_ns(int(r.get("time_ns", 0))), className="log-time"),
                        html.Span(str(who), className="log-thread"),
                        html.Span(r.get("event") or "(step)", className="log-event mono"),
                        html.Span(
                            f"a={_arg(int(r.get('a', 0)))} b={_arg(int(r.get('b', 0)))}",
                            className="log-args mono",
                        ),
                        html.Span(stack[-1] if stack else "", className="log-fn mono"),
                        html.Strong(" ◀ now") if here else "",
                    ],
                    className="log-row current" if here else "log-row",
                    title=f"Jump to step {step}",
                    **extra,
                )
            )
        )
    return html.Ol(items, className="event-log", **_aria("Event log; click a row to jump"))


# =====================================================================
# Compare: mmap_lock vs per_vma
# =====================================================================


def _metrics(s: Mapping[str, Any]) -> dict[str, tuple[int, bool]]:
    """Metric name -> (value, is a time in ns)."""
    ml = s.get("mmap_lock") or {}
    faults = s.get("faults") or {}
    lat = faults.get("latency_ns") or {}
    vl = s.get("vma_lock") or {}
    via = int(faults.get("via_mmap_lock", 0))
    aborts = int(vl.get("abort", 0))
    # Each fault that gave up on the VMA lock went on under mmap_lock once: it is one
    # fallback, whichever counter (ABORT, MISS or RETRY) recorded why.
    fallbacks = aborts + int(vl.get("miss", 0)) + int(vl.get("retry", 0))
    # The threads' work ends when the last one is done; RCU callbacks may run on.
    done = [int(th.get("done_ns", -1)) for th in s.get("threads") or []]
    work = max((d for d in done if d >= 0), default=int(s.get("sim_ns", 0)))
    return {
        "makespan (last thread done)": (work, True),
        "last RCU callback ran": (int(s.get("sim_ns", 0)), True),
        "total mmap_lock wait (read + write)": (
            int(ml.get("read_wait_ns", 0)) + int(ml.get("write_wait_ns", 0)),
            True,
        ),
        "fault latency p50": (int(lat.get("p50", 0)), True),
        "fault latency p99": (int(lat.get("p99", 0)), True),
        "fault latency max": (int(lat.get("max", 0)), True),
        "faults handled under mmap_lock": (via, False),
        "VMA lock aborts (VMA_LOCK_ABORT)": (aborts, False),
        "fallbacks to mmap_lock (ABORT + MISS + RETRY)": (fallbacks, False),
    }


def _delta(old: int, new: int, is_time: bool) -> html.Td:
    d = new - old
    if d == 0:
        return html.Td("= same", className="delta same")
    text = format_ns(abs(d)) if is_time else f"{abs(d):,}"
    pct = f" ({abs(d) / old:.0%})" if old else ""
    # Lower is better for every metric here; the arrow and word carry it, not colour.
    word, arrow, cls = ("less", "▼", "better") if d < 0 else ("more", "▲", "worse")
    return html.Td(f"{arrow} {text}{pct} {word}", className=f"delta {cls}")


def delta_table(runs: Mapping[str, Mapping[str, Any]]) -> Component:
    """The same scenario without and with per-VMA locks, side by side, with deltas.

    Args:
        runs: ``{"mmap_lock": summary, "per_vma": summary}`` (:meth:`Engine.summary`);
            either may be missing.

    Returns:
        A table: makespan (when the last thread was done) and when the last RCU
        callback ran, total mmap_lock wait, fault latency p50/p99/max, faults under
        mmap_lock, aborts and fallbacks (each fault once), and each thread's
        completion time; the last column is per_vma - mmap_lock.
    """
    modes = [m for m in ("mmap_lock", "per_vma") if m in runs]
    both = len(modes) == 2
    metrics = {m: _metrics(runs[m]) for m in modes}
    names: list[str] = []
    done: dict[str, dict[str, int]] = {}
    for m in modes:
        done[m] = {}
        for th in runs[m].get("threads") or []:
            name = str(th.get("name"))
            if name not in names:
                names.append(name)
            done[m][name] = int(th.get("done_ns", -1))
    rows: list[html.Tr] = []
    keys = list(metrics[modes[0]]) if modes else []
    for key in keys:
        cells: list[Any] = [html.Th(key, scope="row")]
        vals = [metrics[m][key] for m in modes]
        for value, is_time in vals:
            cells.append(html.Td(format_ns(value) if is_time else f"{value:,}", className="num"))
        if both:
            cells.append(_delta(vals[0][0], vals[1][0], vals[0][1]))
        rows.append(html.Tr(cells))
    for name in names:
        cells = [html.Th(f"{name} done at", scope="row")]
        vals2 = [done[m].get(name, -1) for m in modes]
        for v in vals2:
            cells.append(html.Td(format_ns(v) if v >= 0 else "not done", className="num"))
        if both:
            cells.append(
                _delta(vals2[0], vals2[1], True)
                if min(vals2) >= 0
                else html.Td("—", className="delta")
            )
        rows.append(html.Tr(cells))
    head = ["", *modes, *(["Δ per_vma - mmap_lock"] if both else [])]
    return _table(
        "mmap_lock only vs per-VMA locks (lower is better)",
        head,
        rows,
        "Comparison of the two kernels",
        "delta-table",
    )


# =====================================================================
# Violations
# =====================================================================


def violations_panel(snap: Mapping[str, Any]) -> Component:
    """Invariant violations found so far (an alert), or a plain all-clear line."""
    found = list(snap.get("violations") or [])
    if not found:
        return html.Div(
            [_badge(style_of(LOCK_STATES, "unlocked"), "OK"), " No invariant violations so far."],
            className="panel violations ok",
            role="status",
        )
    return html.Div(
        [
            html.H3(
                [
                    _badge(style_of(LOCK_STATES, "write_locked"), "!"),
                    f" {len(found)} invariant violation{'s' if len(found) != 1 else ''}",
                ]
            ),
            html.Ul(
                [
                    html.Li(
                        [
                            html.Strong(f"step {v.get('step')}: invariant {v.get('invariant')}"),
                            f" — {v.get('message')}",
                        ]
                    )
                    for v in found
                ]
            ),
        ],
        className="panel violations bad",
        role="alert",
    )


__all__ = [
    "LOG_ROW",
    "delta_table",
    "event_log",
    "glossary_panel",
    "mmap_lock_panel",
    "narration_panel",
    "rcu_panel",
    "threads_panel",
    "violations_panel",
    "vma_table",
]
