"""The timeline's data for the canvas renderer (vmaviz.ui.lanes), on real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vmaviz.bench.engine import workload_yaml
from vmaviz.engine.engine import Engine
from vmaviz.engine.timeline import Timeline, build_timeline
from vmaviz.scenario import load_scenario, load_scenario_text
from vmaviz.ui import lanes as lanes_mod
from vmaviz.ui.lanes import MAX_LOCK_ROWS, PRIORITY, TIME_SCALE, timeline_data
from vmaviz.ui.palette import LOCK_MODE_STYLES, SEGMENT_STYLES

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def timeline(name: str, mode: str) -> Timeline:
    return build_timeline(Engine(load_scenario(SCENARIOS / f"{name}.yaml"), mode=mode).run())


def items_of(data: dict[str, Any], key: str) -> list[int]:
    """Indices of the items of drawing key ``key``."""
    ki = [k["key"] for k in data["kinds"]].index(key)
    return [i for i, k in enumerate(data["items"]["kind"]) if k == ki]


@pytest.fixture(scope="module")
def hold() -> dict[str, Timeline]:
    return {m: timeline("hold-write-other-vma", m) for m in ("mmap_lock", "per_vma")}


def test_rows_kinds_and_items(hold: dict[str, Timeline]) -> None:
    tl = hold["mmap_lock"]
    data = timeline_data(tl, title="mmap_lock only")
    assert data["title"] == "mmap_lock only"
    rows = data["rows"]
    assert rows[:3] == ["T0", "T1", "T2"] and data["threads"] == 3
    assert rows[3] == "── locks ──" and "mmap_lock" in rows
    # Paint order: least telling first, waits last (so they stay on top).
    order = [k["key"] for k in data["kinds"]]
    assert order == [k for k in reversed(PRIORITY) if k in order]
    assert order.index("wait_mmap_read") > order.index("running")
    # Every kind carries its colour, hatch and badge from the palette.
    for k in data["kinds"]:
        st = SEGMENT_STYLES.get(k["key"]) or LOCK_MODE_STYLES[k["key"]]
        assert (k["colour"], k["pattern"], k["badge"], k["label"]) == (
            st.colour,
            st.pattern,
            st.badge,
            st.label,
        )
    # Columns of one length; each item's step is a real step, at the item's start.
    it = data["items"]
    n = len(it["start"])
    assert n == sum(len(t.segments) for t in tl.threads) + sum(len(lk.intervals) for lk in tl.locks)
    assert all(len(col) == n for col in it.values())
    assert all(0 <= s < tl.n_steps for s in it["step"])
    assert all(a <= b for a, b in zip(it["start"], it["end"], strict=True))
    waits = items_of(data, "wait_mmap_read")
    assert sorted(rows[it["row"][i]] for i in waits) == ["T1", "T2"]
    for i in waits:
        assert it["start"][i] == pytest.approx(tl.time_of(it["step"][i]) / TIME_SCALE, abs=1e-3)
        assert data["labels"][it["label"][i]]  # hover text of the segment
    assert data["end_us"] == pytest.approx(tl.end_ns / TIME_SCALE)
    assert 0 < data["work_end_us"] <= data["end_us"]
    assert data["coarsened_ns"] == 0 and data["hidden_locks"] == 0
    json.dumps(data)


def test_per_vma_has_no_mmap_waits(hold: dict[str, Timeline]) -> None:
    data = timeline_data(hold["per_vma"])
    assert not items_of(data, "wait_mmap_read")
    legend = {k["key"]: k["legend"] for k in data["kinds"]}
    assert not legend["wait_mmap_read"] and legend["hold_vma_read"]
    assert len(items_of(data, "hold_vma_read")) > 10
    locked = items_of(data, "vma_write_locked")
    assert locked and data["rows"][data["items"]["row"][locked[0]]] == "vma1 A"
    # A lock mode drawn like a thread state shares its legend entry.
    assert not legend["vma_read"]


def test_work_end_leaves_out_the_rcu_tail() -> None:
    tl = timeline("default", "per_vma")
    data = timeline_data(tl)
    last_exit = max(
        next(s.end_ns for s in reversed(th.segments) if s.kind != "done") for th in tl.threads
    )
    assert data["work_end_us"] == pytest.approx(last_exit / TIME_SCALE)
    assert data["work_end_us"] < data["end_us"]


def test_large_runs_are_binned_keeping_the_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    # 100 threads on 128 CPUs faulting their own VMAs while 10 hold the mmap write lock
    # now and then: many short segments, and waits for mmap_lock.
    ops = {"touch", "compute", "sleep", "hold_mmap_write"}
    text = workload_yaml(ops, threads=100, writers=10, times=50)
    e = Engine(load_scenario_text(text, "<100>"), mode="mmap_lock", cpus=128)
    e.run(max_steps=40_000)
    tl = build_timeline(e)
    full = timeline_data(tl)
    rows = full["rows"]
    assert rows[: len(tl.threads)] == [t.name for t in tl.threads]
    assert len(rows) <= len(tl.threads) + 2 + MAX_LOCK_ROWS
    total = len(full["items"]["start"])
    assert full["coarsened_ns"] == 0
    waited = {k["key"] for k in full["kinds"] if k["key"].startswith("wait") and k["legend"]}
    assert waited
    monkeypatch.setattr(lanes_mod, "ITEM_BUDGET", 2_000)
    small = timeline_data(tl)
    assert small["coarsened_ns"] > 0 and small["labels"] == []
    assert 0 < len(small["items"]["start"]) < total
    # A bin shows its most telling state: every kind of wait is still there.
    assert all(items_of(small, k) for k in waited)
    assert all(0 <= s < tl.n_steps for s in small["items"]["step"])
    assert all(lab == -1 for lab in small["items"]["label"])
