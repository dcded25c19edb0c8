"""The pure panel builders on real snapshots: text cues, ARIA, clickable log rows, deltas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plotly
import pytest
from dash import dcc, html
from dash.development.base_component import Component

from vmaviz.engine.engine import Engine
from vmaviz.engine.export import synced_trace
from vmaviz.engine.narrate import GLOSSARY, narrate
from vmaviz.engine.view import snapshot
from vmaviz.scenario import load_scenario
from vmaviz.ui.panels import (
    LOG_ROW,
    delta_table,
    event_log,
    glossary_panel,
    mmap_lock_panel,
    narration_panel,
    rcu_panel,
    threads_panel,
    violations_panel,
    vma_table,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def run(name: str, mode: str = "per_vma") -> Engine:
    return Engine(load_scenario(SCENARIOS / f"{name}.yaml"), mode=mode).run()


def first(e: Engine, code: str) -> int:
    t = synced_trace(e)
    return next(i for i in range(len(t)) if t.codes[t.code[i]] == code)


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None) if isinstance(node, Component) else None
    if isinstance(node, (list, tuple)):
        children = node
        yield from ()
    if children is None:
        return
    for child in children if isinstance(children, (list, tuple)) else [children]:
        yield from walk(child)


def text_of(node: Any) -> str:
    parts = []
    for n in walk(node):
        if isinstance(n, str):
            parts.append(n)
        elif isinstance(n, dcc.Markdown):
            parts.append(str(n.children))
    return " ".join(parts)


def components(node: Any, kind: type) -> list[Any]:
    return [n for n in walk(node) if isinstance(n, kind)]


def serialisable(node: Component) -> None:
    json.loads(json.dumps(node, cls=plotly.utils.PlotlyJSONEncoder))


@pytest.fixture(scope="module")
def hold_mm() -> Engine:
    return run("hold-write-other-vma", "mmap_lock")


@pytest.fixture(scope="module")
def hold_vma() -> Engine:
    return run("hold-write-other-vma", "per_vma")


def row_of(table: html.Table, name: str) -> html.Tr:
    (tr,) = [
        tr for tr in components(table, html.Tr) if isinstance(tr.children[0], html.Th)
        and text_of(tr.children[0]).startswith(name)
    ]  # fmt: skip
    return tr


def test_vma_table_write_lock_badge(hold_vma: Engine) -> None:
    snap = snapshot(hold_vma.state_at(first(hold_vma, "vma_start_write:seq_set") + 1))
    table = vma_table(snap)
    assert isinstance(table, html.Table)
    assert "mm_lock_seq = 0" in text_of(components(table, html.Caption)[0])
    a = text_of(row_of(table, "A"))
    assert "W WRITE-LOCKED" in a and "0 == 0" in a and "W: write-locked" in a
    b = text_of(row_of(table, "B"))
    assert "-1 ≠ 0" in b and "WRITE-LOCKED" not in b and "anonymous" in b
    assert [th.scope for th in components(table, html.Th)][:10] == ["col"] * 10
    assert table.to_plotly_json()["props"]["aria-label"] == "VMAs and their locks"
    serialisable(table)


def test_vma_table_mmap_lock_mode(hold_mm: Engine) -> None:
    table = vma_table(snapshot(hold_mm.state_at(3)))
    assert "per-VMA locks off" in text_of(table)
    assert "WRITE-LOCKED" not in text_of(table)


def test_mmap_lock_panel_queue(hold_mm: Engine) -> None:
    t = synced_trace(hold_mm)
    step = [i for i in range(len(t)) if t.codes[t.code[i]] == "down_read:queued"][-1] + 1
    snap = snapshot(hold_mm.state_at(step))
    panel = mmap_lock_panel(snap)
    text = text_of(panel)
    assert "held for write by T0" in text
    (queue,) = [ol for ol in components(panel, html.Ol)]
    items = [text_of(li) for li in queue.children]
    assert len(items) == 2
    assert "T1 wants read" in items[0] and "T2 wants read" in items[1]
    assert "waiting since" in items[0]
    assert "writer-locked" in text and ": 1 (set)" in text
    assert panel.to_plotly_json()["props"]["aria-label"] == "mmap_lock holders and waiters"
    serialisable(panel)
    free = text_of(mmap_lock_panel(snapshot(hold_mm.state_at(len(t)))))
    assert "nobody holds it" in free and "empty" in free


def test_threads_panel(hold_mm: Engine) -> None:
    step = first(hold_mm, "down_read:queued") + 1
    panel = threads_panel(snapshot(hold_mm.state_at(step)))
    t1 = row_of(panel, "T1")
    text = text_of(t1)
    assert "BLOCKED" in text and "mmap_lock (read)" in text
    stack = [text_of(li) for li in components(t1, html.Li)]
    assert stack[0] == "touch" and stack[-1] == "down_read"
    t0 = text_of(row_of(panel, "T0"))
    assert "hold_mmap_write" in t0


def test_threads_panel_rcu_section(hold_vma: Engine) -> None:
    step = first(hold_vma, "lock_vma_under_rcu:rcu_read_lock") + 1
    panel = threads_panel(snapshot(hold_vma.state_at(step)))
    assert "RCU" in text_of(row_of(panel, "T1")) or "RCU" in text_of(row_of(panel, "T2"))


def test_rcu_panel() -> None:
    e = run("fault-vs-munmap")
    snap = snapshot(e.state_at(first(e, "vma_iter_clear") + 1))
    text = text_of(rcu_panel(snap))
    assert "maple nodes" in text and "waiting for a grace period" in text
    dead = snap["dead_nodes_pending"]
    assert f"{len(dead)} dead maple node{'s' if len(dead) != 1 else ''}, ids " in text
    done = text_of(rcu_panel(snapshot(e.k)))
    assert "No frees are waiting" in done and "Grace periods completed:" in done


def test_narration_and_glossary(hold_vma: Engine) -> None:
    i = first(hold_vma, "vma_start_write:seq_set")
    n = narrate(hold_vma, i, hold_vma.state_at(i), hold_vma.state_at(i + 1))
    panel = narration_panel(n)
    props = panel.to_plotly_json()["props"]
    assert props["aria-live"] == "polite" and props["role"] == "region"
    text = text_of(panel)
    assert n.title in text and n.text in text and "include/linux/mm.h" in text
    assert [c.children for c in components(panel, html.Code)] == ["vma_start_write"]
    g = glossary_panel()
    assert isinstance(g, html.Details)
    terms = [dt.children for dt in components(g, html.Dt)]
    assert terms == list(GLOSSARY)
    assert len(components(g, dcc.Markdown)) == len(GLOSSARY)
    serialisable(g)


def test_event_log(hold_vma: Engine) -> None:
    t = synced_trace(hold_vma)
    rows = [t.row(i) for i in range(10, 20)]
    log = event_log(rows, current=14, names={0: "T0", 1: "T1", 2: "T2"})
    buttons = components(log, html.Button)
    props = [b.to_plotly_json()["props"] for b in buttons]
    assert [p["data-step"] for p in props] == [str(i) for i in range(10, 20)]
    assert all(LOG_ROW in b.className for b in buttons)
    current = [b for b in buttons if "aria-current" in b.to_plotly_json()["props"]]
    assert [b.to_plotly_json()["props"]["data-step"] for b in current] == ["14"]
    assert "current" in current[0].className
    assert rows[4]["event"] in text_of(current[0])
    assert log.to_plotly_json()["props"]["aria-label"].startswith("Event log")
    serialisable(log)


def test_delta_table() -> None:
    runs = {m: run("hold-write-other-vma", m).summary() for m in ("mmap_lock", "per_vma")}
    table = delta_table(runs)
    heads = [text_of(th) for th in components(table, html.Thead)[0].children.children]
    assert heads == ["", "mmap_lock", "per_vma", "Δ per_vma - mmap_lock"]
    wait = text_of(row_of(table, "total mmap_lock wait"))
    assert "▼" in wait and "less" in wait  # per-VMA locks remove the wait
    p99 = text_of(row_of(table, "fault latency p99"))
    assert "▼" in p99
    falls = text_of(row_of(table, "faults handled under mmap_lock"))
    assert "32" in falls and "0" in falls
    for name in ("T0", "T1", "T2"):
        assert "µs" in text_of(row_of(table, f"{name} done at"))
    one = delta_table({"per_vma": runs["per_vma"]})
    assert "Δ" not in text_of(one)
    serialisable(table)


def test_delta_table_makespan_leaves_out_the_rcu_tail_and_counts_fallbacks_once() -> None:
    """default: RCU callbacks run long after the last thread; each fallback counts once."""
    from vmaviz.ui.palette import format_ns

    runs = {m: run("default", m).summary() for m in ("mmap_lock", "per_vma")}
    table = delta_table(runs)
    for m, col in (("mmap_lock", 1), ("per_vma", 2)):
        s = runs[m]
        last_done = max(th["done_ns"] for th in s["threads"])
        assert last_done < s["sim_ns"]  # the RCU tail
        cells = components(row_of(table, "makespan (last thread done)"), html.Td)
        assert text_of(cells[col - 1]) == format_ns(last_done)
        cells = components(row_of(table, "last RCU callback ran"), html.Td)
        assert text_of(cells[col - 1]) == format_ns(s["sim_ns"])
        vl = s["vma_lock"]
        fallbacks = vl.get("abort", 0) + vl.get("miss", 0) + vl.get("retry", 0)
        cells = components(row_of(table, "fallbacks to mmap_lock"), html.Td)
        assert text_of(cells[col - 1]) == f"{fallbacks:,}"
    # per_vma falls back on every abort: never more fallbacks than mmap_lock faults.
    pv = runs["per_vma"]
    assert 0 < pv["vma_lock"]["abort"] <= pv["faults"]["via_mmap_lock"]


def test_violations_panel(hold_vma: Engine) -> None:
    ok = violations_panel(snapshot(hold_vma.k))
    assert ok.to_plotly_json()["props"]["role"] == "status"
    assert "No invariant violations" in text_of(ok)
    bad = violations_panel(
        {"violations": [{"step": 7, "invariant": 1, "message": "T1 read-locked A"}]}
    )
    assert bad.to_plotly_json()["props"]["role"] == "alert"
    text = text_of(bad)
    assert "1 invariant violation" in text and "step 7: invariant 1" in text
    assert "T1 read-locked A" in text
