"""The Dash application: scenario VMAs → mm maple tree → figures.

``create_app()`` builds a fresh app each call and keeps no module-level mutable
state: the VMAs added by the user live in the browser (a ``dcc.Store``), and every
view is recomputed from the scenario plus those additions by pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from vmaviz import __version__
from vmaviz.mm_layout import PAGE_SIZE, find_topdown, mm_tree_dump, mmap_base
from vmaviz.scenario_vmas import Vma, load_vma_specs
from vmaviz.ui.address_space_figure import PROT_TEXT, address_space_figure
from vmaviz.ui.fmt import hexaddr, human_size
from vmaviz.ui.tree_figure import maple_tree_figure

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = REPO_ROOT / "scenarios" / "default.yaml"
ASSETS = REPO_ROOT / "assets"
TITLE = "vmaviz — the mm maple tree"
MAX_MMAP_PAGES = 1 << 20  # 4 GiB per request keeps the demo sane


def _all_vmas(scenario: Sequence[Vma], added: Sequence[Sequence[Any]]) -> list[Vma]:
    """Scenario VMAs (entry ids 1..N) followed by user mmaps in the order they were made."""
    extra = [Vma(name=str(n), start=int(s), end=int(e), prot="rw") for n, s, e in added]
    return [*scenario, *extra]


def _table(vmas: Sequence[Vma]) -> list[Any]:
    head = html.Thead(
        html.Tr([html.Th(h) for h in ("entry", "name", "start", "end", "pages", "size", "prot")])
    )
    rows = [
        html.Tr(
            [
                html.Td(str(entry), className="num"),
                html.Td(v.name),
                html.Td(hexaddr(v.start), className="mono"),
                html.Td(hexaddr(v.end), className="mono"),
                html.Td(str(v.pages), className="num"),
                html.Td(human_size(v.end - v.start), className="num"),
                html.Td(PROT_TEXT.get(v.prot, v.prot), className=f"mono prot prot-{v.prot}"),
            ]
        )
        for entry, v in sorted(enumerate(vmas, start=1), key=lambda ev: ev[1].start)
    ]
    return [head, html.Tbody(rows)]


def build_views(
    scenario: Sequence[Vma], added: Sequence[Sequence[Any]] = ()
) -> tuple[go.Figure, go.Figure, list[Any], str]:
    """Address-space figure, maple tree figure, table rows and a summary line."""
    vmas = _all_vmas(scenario, added)
    tuples = [v.as_tuple() for v in vmas]
    dump, names = mm_tree_dump(tuples)
    tree = maple_tree_figure(dump, names)
    space = address_space_figure(tuples, [v.prot for v in vmas])
    nodes = tree.layout.meta["nodes"] if tree.layout.meta else 0
    summary = (
        f"{len(vmas)} VMAs stored as entries 1..{len(vmas)}; "
        f"tree height {dump.get('height', 0)}, {nodes} node{'s' if nodes != 1 else ''}"
    )
    return space, tree, _table(vmas), summary


def _layout(scenario: Sequence[Vma], scenario_path: Path) -> html.Div:
    space, tree, table, summary = build_views(scenario)
    return html.Div(
        className="page",
        children=[
            html.Header(
                [
                    html.H1(TITLE),
                    html.P(
                        [
                            "Linux 6.4: the VMAs of one process, stored in ",
                            html.Code("mm->mm_mt"),
                            f" (scenario {scenario_path.name}). vmaviz {__version__}.",
                        ],
                        className="lede",
                    ),
                ]
            ),
            html.Section(
                className="controls",
                children=[
                    html.Label("mmap", htmlFor="mmap-pages"),
                    dcc.Input(
                        id="mmap-pages",
                        type="number",
                        min=1,
                        max=MAX_MMAP_PAGES,
                        step=1,
                        value=16,
                        debounce=True,
                    ),
                    html.Span("pages, anonymous rw, placed top-down", className="hint"),
                    html.Button("mmap", id="mmap-button", n_clicks=0),
                    html.Button("reset", id="reset-button", n_clicks=0, className="secondary"),
                    html.Span(summary, id="status", className="status"),
                ],
            ),
            html.Section(
                [
                    html.H2("Address space"),
                    html.P(
                        "Address order, left to right; widths grow with log(size). "
                        "≈ marks a free gap of 1 GiB or more.",
                        className="hint",
                    ),
                    html.Div(
                        dcc.Graph(
                            id="address-space-graph",
                            figure=space,
                            config={"displayModeBar": False, "responsive": False},
                        ),
                        className="scroll",
                    ),
                ]
            ),
            html.Section(
                [
                    html.H2(["Maple tree: ", html.Code("mm->mm_mt")]),
                    html.P(
                        "Each row of a node is a slot: slot number, pivot (last address "
                        "the slot covers), then the VMA, ∅ for a NULL range, or, in an "
                        "arange64 node, the largest gap under that child.",
                        className="hint",
                    ),
                    html.Div(
                        dcc.Graph(
                            id="maple-tree-graph",
                            figure=tree,
                            config={"displayModeBar": False, "responsive": False},
                        ),
                        className="scroll",
                    ),
                ]
            ),
            html.Section(
                [html.H2("VMAs"), html.Table(table, id="vma-table", className="vma-table")]
            ),
            dcc.Store(id="added-mmaps", data=[]),
        ],
    )


def create_app(scenario_path: str | Path | None = None) -> dash.Dash:
    """A new vmaviz Dash app for the scenario file (default: scenarios/default.yaml)."""
    path = Path(scenario_path) if scenario_path is not None else DEFAULT_SCENARIO
    scenario = load_vma_specs(path)

    app = dash.Dash(
        __name__,
        title=TITLE,
        assets_folder=str(ASSETS),
        serve_locally=True,
        update_title="",
    )
    app.layout = _layout(scenario, path)

    @app.callback(
        Output("added-mmaps", "data"),
        Output("address-space-graph", "figure"),
        Output("maple-tree-graph", "figure"),
        Output("vma-table", "children"),
        Output("status", "children"),
        Input("mmap-button", "n_clicks"),
        Input("reset-button", "n_clicks"),
        State("mmap-pages", "value"),
        State("added-mmaps", "data"),
        prevent_initial_call=True,
    )
    def on_mmap(
        _mmap_clicks: int | None,
        _reset_clicks: int | None,
        pages: Any,
        added: list[list[Any]] | None,
    ) -> tuple[list[list[Any]], go.Figure, go.Figure, list[Any], str]:
        added = [] if dash.ctx.triggered_id == "reset-button" else list(added or [])
        message = ""
        if dash.ctx.triggered_id == "mmap-button":
            try:
                n = int(pages)
            except (TypeError, ValueError):
                n = 0
            if not 1 <= n <= MAX_MMAP_PAGES:
                message = f"mmap: pages must be 1..{MAX_MMAP_PAGES}. "
            else:
                current = [v.as_tuple() for v in _all_vmas(scenario, added)]
                start = find_topdown(current, n * PAGE_SIZE, mmap_base(current))
                if start is None:
                    message = "mmap: ENOMEM, no gap fits. "
                else:
                    name = f"mmap #{len(added) + 1}"
                    added.append([name, start, start + n * PAGE_SIZE])
                    message = f"{name}: {n} pages at {hexaddr(start)}. "
        space, tree, table, summary = build_views(scenario, added)
        return added, space, tree, table, message + summary

    return app
