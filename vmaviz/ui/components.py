"""Reusable layout components: labelled controls, panels, and the per-side views.

A "side" is one run on screen: ``left`` in single view; ``left`` (mmap_lock) and
``right`` (per_vma) in compare view. Every view of a side has a pattern-matching id
``{"type": KIND, "side": SIDE}``, so one callback fills every side present and the
same component serves both sides of compare view.
"""

from __future__ import annotations

from typing import Any, cast

from dash import dcc, html

#: Views of one side, filled on every step (id ``{"type": kind, "side": side}``).
SIDE_FIGURES = ("address-space", "maple-tree")

GRAPH_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "toImage"],
}
STATIC_GRAPH_CONFIG: dict[str, Any] = {"displayModeBar": False, "responsive": True}


def side_id(kind: str, side: str) -> dict[str, str]:
    return {"type": kind, "side": side}


def aria(label: str, **extra: Any) -> dict[str, Any]:
    """``aria-label`` (and other ``aria-*``/``data-*``) props for html components."""
    props = {"aria-label": label}
    props.update({k.replace("_", "-"): v for k, v in extra.items()})
    return props


def aria_live(mode: str = "polite") -> dict[str, Any]:
    """``aria-live``: screen readers announce changes of the element."""
    return {"aria-live": mode}


def button(
    id_: str | dict[str, Any],
    text: str,
    label: str,
    *,
    title: str | None = None,
    className: str = "",
    **kwargs: Any,
) -> html.Button:
    """A button with an accessible name (``aria-label``) and a tooltip."""
    return html.Button(
        text,
        id=id_,
        n_clicks=0,
        title=title or label,
        className=className,
        type="button",
        **aria(label),
        **kwargs,
    )


def control(label: str, child: Any, *, for_id: str | None = None, hint: str = "") -> html.Div:
    """A control with its visible label (and an ``aria-label`` on the wrapper).

    dcc components do not take ``aria-*`` props, so the wrapper carries the label in
    ``data-aria-label`` too and ``assets/vmaviz.js`` copies it onto the focusable
    element inside (the slider handle, the dropdown's input).
    """
    parts: list[Any] = [html.Label(label, htmlFor=for_id, className="control-label")]
    parts.append(child)
    if hint:
        parts.append(html.Span(hint, className="hint"))
    return html.Div(parts, className="control", role="group", **aria(label, data_aria_label=label))


def filter_dropdown(label: str, id_: str) -> html.Div:
    """A labelled, clearable dropdown whose options a callback fills (a filter)."""
    return control(label, dcc.Dropdown(id=id_, options=[], clearable=True), for_id=id_)


def panel(
    title: Any,
    body: Any,
    *,
    id_: str | dict[str, Any] | None = None,
    className: str = "",
    help_text: str = "",
) -> html.Section:
    """A titled card; ``body`` goes in a div whose id is ``id_`` (filled by callbacks)."""
    head: list[Any] = [html.H2(title, className="panel-title")]
    if help_text:
        head.append(html.P(help_text, className="hint"))
    if id_ is not None:
        inner: list[Any] = [html.Div(body, id=id_, className="panel-body")]
    else:
        inner = list(body) if isinstance(body, list | tuple) else [body]
    return html.Section([*head, *inner], className=f"panel {className}".strip())


def graph(
    id_: str | dict[str, Any], label: str, *, static: bool = False, figure: Any = None
) -> html.Div:
    """A ``dcc.Graph`` in a labelled region (screen readers announce the label)."""
    return html.Div(
        dcc.Graph(
            id=id_,
            figure=figure if figure is not None else {"data": [], "layout": {}},
            config=cast(Any, STATIC_GRAPH_CONFIG if static else GRAPH_CONFIG),
        ),
        className="graph",
        role="figure",
        **aria(label),
    )


def timeline_panel(side: str, title: str, data: Any = None) -> html.Section:
    """One run's timeline: per-thread lanes and lock tracks, click a bar to jump.

    The lanes are drawn by the browser on a canvas (``assets/vmaviz.js``: ``Lanes``)
    from ``data`` (:func:`vmaviz.ui.lanes.timeline_data`), kept in the Store
    ``{"type": "timeline-data", "side": side}``; the element they are drawn into is
    ``{"type": "timeline", "side": side}``. The same component serves single view
    (``left``) and both sides of compare view.
    """
    label = (
        f"timeline: {title}. Wheel or W and S zoom, drag or A and D pan, "
        "a click on a bar goes to its step."
    )
    return html.Section(
        [
            dcc.Store(id={"type": "timeline-data", "side": side}, data=data),
            html.Div(id=side_id("timeline", side), className="lanes", role="figure", **aria(label)),
            # The statistics of a shifted-dragged range (vmaviz/ui/timeline_nav.py).
            html.Div(
                id={"type": "range-stats", "side": side},
                className="range-stats",
                **aria_live(),
            ),
        ],
        className=f"panel timeline-panel side-{side}",
    )


def side_header(side: str, title: str) -> html.Div:
    return html.Div(
        html.H2(title, id=side_id("side-title", side)), className=f"side-header side-{side}"
    )


def slot(kind: str, side: str, className: str = "") -> html.Div:
    """An empty place for a self-titled panel of :mod:`vmaviz.ui.panels`, filled per step."""
    return html.Div(id=side_id(kind, side), className=f"slot slot-{kind} {className}".strip())


def narration_box(side: str) -> html.Div:
    return html.Div(id=side_id("narration", side), className="slot slot-narration", **aria_live())


def memory_panels(side: str) -> list[Any]:
    """The address space and the maple tree of one side at the cursor."""
    return [
        panel(
            "Address space",
            graph(side_id("address-space", side), "address space", static=True),
            className="address-space-panel",
        ),
        panel(
            ["Maple tree ", html.Code("mm->mm_mt")],
            graph(side_id("maple-tree", side), "maple tree", static=True),
            className="maple-tree-panel",
            help_text="Dead nodes stay grey until their RCU grace period ends.",
        ),
    ]


def state_column(side: str, title: str) -> html.Div:
    """Everything about one side at the cursor, stacked: compare view's column."""
    return html.Div(
        [
            side_header(side, title),
            narration_box(side),
            slot("mmap-lock", side),
            slot("vma-table", side),
            slot("threads", side),
            slot("rcu", side),
            slot("violations", side),
            *memory_panels(side),
        ],
        className=f"state-column side-{side}",
    )
