"""What a step changed, inside the figures: the maple nodes it wrote are outlined, the
counters it moved are marked, and figures it did not touch are not sent again; and
compare view has a source panel per side (issue 14)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.engine.engine import Engine
from vmaviz.engine.export import synced_trace
from vmaviz.engine.view import snapshot
from vmaviz.scenario import load_scenario
from vmaviz.ui.changes import step_changes
from vmaviz.ui.figures import (
    CHANGED_COLOUR,
    CHANGED_LABEL,
    counters_figure,
    dead_nodes,
    maple_tree_figure,
)
from vmaviz.ui.testing import Browser

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def munmap() -> Engine:
    sc = load_scenario(SCENARIOS / "fault-vs-munmap.yaml")
    return Engine(sc, mode="per_vma").run()


def mark_trace(fig: Any) -> Any:
    (tr,) = [t for t in fig.data if t.name == CHANGED_LABEL]
    return tr


def live_ids(node: dict[str, Any] | None) -> set[int]:
    if not node:
        return set()
    return {int(node["id"])}.union(*(live_ids(c) for c in node.get("children") or []))


def test_maple_nodes_the_step_wrote_are_outlined(munmap: Engine) -> None:
    t = synced_trace(munmap)
    # The step that stored the munmap's range in the tree: the nodes it wrote.
    step = next(i for i in range(len(t)) if t.codes[t.code[i]] == "vma_iter_clear")
    before, after = munmap.state_at(step), munmap.state_at(step + 1)
    prev, snap = snapshot(before), snapshot(after)
    changed = step_changes(prev, snap).get("tree", [])
    assert changed, "the munmap's store wrote maple nodes"
    fig = maple_tree_figure(snap, dead_nodes(after), changed=changed)
    mark = mark_trace(fig)
    # Exactly the live nodes the step wrote carry the outline: five points and a
    # break per box, the accent colour with a dotted dash (not colour alone).
    outlined = list(mark.meta["changed"])
    assert set(outlined) == set(changed) & live_ids(snap["tree"]["root"])
    assert fig.layout.meta["changed"] == outlined
    assert len(mark.x) == 6 * len(outlined)
    assert mark.line.color == CHANGED_COLOUR and mark.line.dash == "dot"
    assert mark.showlegend is True
    labels = fig.data[[t.name for t in fig.data].index("labels")].text
    for nid in outlined:
        assert any(f" n{nid} " in s and s.endswith("<b>Δ</b>") for s in labels)
    # Unmarked nodes have no badge; without changes there is no outline nor legend.
    assert sum(s.endswith("<b>Δ</b>") for s in labels) == len(outlined)
    plain = maple_tree_figure(snap, dead_nodes(after))
    assert len(mark_trace(plain).x) == 0 and mark_trace(plain).showlegend is False
    assert plain.layout.meta["changed"] == []
    json.loads(fig.to_json())


def test_counters_the_step_moved_are_marked(munmap: Engine) -> None:
    s = munmap.summary()
    fig = counters_figure({"x86": s}, changed={"x86": ["vma_lock.success"]})
    outcomes = fig.data[0]
    first, *rest = outcomes.text
    assert first == f"{s['vma_lock']['success']} Δ"
    assert rest == [str(v) for v in list(outcomes.y)[1:]]
    assert list(outcomes.marker.line.width) == [4, 1, 1, 1]
    assert outcomes.marker.line.color[0] == CHANGED_COLOUR
    assert fig.layout.meta["changed"] == ["x86:vma_lock.success"]
    assert CHANGED_LABEL in [t.name for t in fig.data]
    plain = counters_figure({"x86": s})
    assert plain.layout.meta["changed"] == [] and len(plain.data) == 2
    assert CHANGED_LABEL not in [t.name for t in plain.data]


def changes_of(res: dict[str, Any]) -> dict[str, Any]:
    changed = ((res.get("step-html") or {}).get("data") or {}).get("changed") or {}
    return dict(changed.get("left") or {})


def tree_of(res: dict[str, Any]) -> list[int]:
    return list(changes_of(res).get("tree") or [])


def test_http_tree_marks_follow_the_step_and_quiet_steps_send_nothing(
    client: FlaskClient,
) -> None:
    tab = Browser(client)
    tab.open("?scenario=fault-vs-munmap&view=single")
    name = "maple-tree:left"
    history: list[tuple[list[int], bool, Any]] = []
    after_write = 0
    # Bounded by the run's length; stops a few steps after the tree was written.
    for _ in range(int(tab.props[("run", "data")]["total"])):
        res = tab.press("step-fwd")
        if not res:
            break
        request = ((res.get("step-html") or {}).get("data") or {}).get("figures") or {}
        # The address space is drawn from the VMAs too: not asked for, they are
        # as they were.
        res["vmas_same"] = "address-space:left" not in request
        history.append((tree_of(res), name in request, res))
        after_write += bool(after_write or history[-1][0])
        if after_write > 12:
            break
    assert any(tree for tree, _, _ in history), "some step wrote the tree"
    quiet = 0
    for (prev_tree, _, _), (tree, asked, res) in itertools.pairwise(history):
        if tree:
            # A step that wrote nodes redraws the tree with them outlined.
            assert asked
            figs = [v for k, v in res.items() if k.startswith('{"side":"left","type":"maple-tree"')]
            assert figs, res.keys()
        elif not prev_tree and res["vmas_same"] and "rcu" not in changes_of(res):
            # Neither this step nor the one before touched the tree, and the VMAs
            # and RCU's queue (the slots' colours, the dead nodes) are as they were:
            # the figure's key is the same, so it is neither drawn nor sent.
            assert not asked
            quiet += 1
    assert quiet > 0


def test_http_compare_view_has_a_source_panel_per_side(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&view=compare")
    assert tab.sides == ["left", "right"]
    for side in tab.sides:
        assert "No step yet" in tab.side_text("source", side)
    sent: dict[str, int] = {"left": 0, "right": 0}
    for _ in range(8):
        res = tab.press("step-fwd")
        drawn = ((res.get("step-html") or {}).get("data") or {}).get("html") or {}
        for side in tab.sides:
            sent[side] += f'{{"side":"{side}","type":"source"}}' in drawn
    for side in tab.sides:
        text = tab.side_text("source", side)
        assert (
            "Linux 6.4 source" in text
            and "elixir" in tab.html[f'{{"side":"{side}","type":"source"}}']
        )
    # Each side's panel is sent only when its own step changes it: never more than
    # once per merged step, and both sides got theirs.
    assert all(0 < n <= 8 for n in sent.values())
