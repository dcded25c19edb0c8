"""Trace exporters: CSV rows, and Perfetto JSON that is well formed and properly nested."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from vmaviz.bench.engine import implemented_ops, workload_yaml
from vmaviz.engine.engine import Engine
from vmaviz.engine.export import (
    CSV_COLUMNS,
    PID_LOCKS,
    PID_THREADS,
    synced_trace,
    to_csv,
    to_perfetto,
)
from vmaviz.scenario import load_scenario_text

#: The small scenario these CLI, API and export tests share.
TINY = (Path(__file__).resolve().parent / "data" / "tiny" / "tiny.yaml").read_text()

# A writer holds mmap_lock (and write-locks the VMA) while faulting threads arrive:
# they queue on mmap_lock and are woken by its unlock, which gives flow arrows.
CONTENDED = """\
name: contended
description: a writer holds mmap_lock while faulting threads queue behind it
kernel: {cpus: 4, seed: 1}
mm:
  vmas:
    - {name: heap, start: "0x10000000", pages: 8, prot: rw, anon_vma: true}
threads:
  - name: writer
    ops:
      - hold_mmap_write: {ns: 5000, vmas: [heap]}
      - hold_mmap_write: {ns: 3000, vmas: [heap]}
  - name: f${i}
    count: 3
    start_ns: 200
    ops:
      - loop: {times: 3, ops: [{fault: {vma: heap, page: 1, access: write}}, {compute: {ns: 1500}}]}
"""

MODES = ("per_vma", "mmap_lock")


def run(text: str, mode: str, max_steps: int | None = None) -> Engine:
    scenario = load_scenario_text(text, "<test>")
    engine = Engine(scenario, mode=mode)
    return engine.run(max_steps) if max_steps else engine.run()


def ns(value: float) -> int:
    # Perfetto turns microsecond floats back into ns with llround(ts * 1000).
    return round(value * 1000)


def slices_by_track(doc: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for ev in doc["traceEvents"]:
        if ev["ph"] == "X":
            tracks[(ev["pid"], ev["tid"])].append(ev)
    return tracks


def assert_well_formed(doc: dict[str, Any]) -> None:
    """The invariants Perfetto needs: numbers >= 0, JSON-able, X slices nest per track."""
    assert set(doc) == {"traceEvents", "displayTimeUnit"}
    assert doc["displayTimeUnit"] == "ns"
    json.loads(json.dumps(doc, allow_nan=False))
    for ev in doc["traceEvents"]:
        assert ev["ph"] in {"M", "X", "C", "i", "s", "f"}, ev
        assert isinstance(ev["pid"], int)
        if ev["ph"] != "M":
            assert ev["ts"] >= 0, ev
        if ev["ph"] == "X":
            assert ev["dur"] >= 0, ev
            assert isinstance(ev["tid"], int) and ev["name"], ev
    for track, evs in slices_by_track(doc).items():
        # Sort parents first; then every slice must end inside whatever encloses it.
        spans = sorted(
            ((ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])) for e in evs), key=lambda s: (s[0], -s[1])
        )
        stack: list[tuple[int, int]] = []
        for start, end in spans:
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack:
                assert end <= stack[-1][1], (track, (start, end), stack[-1])
            stack.append((start, end))


def flows(doc: dict[str, Any]) -> dict[int, dict[str, dict[str, Any]]]:
    pairs: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for ev in doc["traceEvents"]:
        if ev["ph"] in ("s", "f"):
            assert ev["ph"] not in pairs[ev["id"]], ev  # one start and one end per id
            pairs[ev["id"]][ev["ph"]] = ev
    return pairs


def enclosing(doc: dict[str, Any], pid: int, tid: int, ts: float) -> list[dict[str, Any]]:
    t = ns(ts)
    return [
        e
        for e in slices_by_track(doc)[(pid, tid)]
        if ns(e["ts"]) <= t <= ns(e["ts"]) + ns(e["dur"])
    ]


# --- CSV -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_csv_one_row_per_step(mode: str) -> None:
    engine = run(TINY, mode)
    buf = io.StringIO()
    assert to_csv(engine, buf) == len(engine.trace)
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = rows[1:]
    assert len(body) == len(engine.trace) == engine.summary()["steps"]
    assert [int(r[0]) for r in body] == list(range(len(body)))
    times = [int(r[1]) for r in body]
    assert times == sorted(times)
    assert {r[2] for r in body} == {"t0", "t1", "w"}
    t = synced_trace(engine)
    for i in (0, len(body) // 2, len(body) - 1):
        row = t.row(i)
        assert body[i][4] == row["event"]
        assert (int(body[i][5]), int(body[i][6])) == (row["a"], row["b"])
        assert body[i][7] == ">".join(row["stack"])


def test_csv_names_rcu_pseudo_thread() -> None:
    # munmap frees VMAs under RCU, so the trace has steps of the RCU pseudo-thread.
    ops = implemented_ops()
    assert "munmap" in ops
    engine = run(workload_yaml(ops, threads=6, writers=2), "per_vma", max_steps=30_000)
    buf = io.StringIO()
    to_csv(engine, buf)
    threads = {r[2] for r in list(csv.reader(io.StringIO(buf.getvalue())))[1:]}
    assert "fault0" in threads
    assert any(tid < 0 for tid in synced_trace(engine).tid)
    assert "rcu" in threads


# --- Perfetto ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [TINY, CONTENDED], ids=["tiny", "contended"])
@pytest.mark.parametrize("mode", MODES)
def test_perfetto_well_formed(text: str, mode: str) -> None:
    engine = run(text, mode)
    doc = to_perfetto(engine)
    assert_well_formed(doc)
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"]
    named = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta}
    for th in engine.k.threads:
        assert named[(PID_THREADS, th.tid + 1)] == th.name
    assert named[(PID_LOCKS, 1)] == "mmap_lock"
    # Every slice's track has a name.
    assert set(slices_by_track(doc)) <= set(named)
    # One instant per step.
    steps = [e for e in doc["traceEvents"] if e["ph"] == "i" and e.get("cat") == "step"]
    assert len(steps) == len(engine.trace)


def test_perfetto_op_and_frame_slices() -> None:
    engine = run(TINY, "per_vma")
    doc = to_perfetto(engine, step_events=False)
    t0 = slices_by_track(doc)[(PID_THREADS, 1)]
    ops = [e for e in t0 if "op" in e.get("args", {})]
    # touch, then 2 x (fault, compute): five ops, numbered 1..5, each with its line.
    assert [e["args"]["op"] for e in ops] == [1, 2, 3, 4, 5]
    assert [e["name"] for e in ops] == [
        "touch heap",
        "fault buf",
        "compute",
        "fault buf",
        "compute",
    ]
    assert all(isinstance(e["args"]["line"], int) for e in ops)
    # touch faults four pages: four separate fault-handler slices, not one merged one.
    handler = [e for e in t0 if e["name"] == "do_user_addr_fault"]
    assert len(handler) == engine.summary()["threads"][0]["faults"] == 6
    # The op slices tile the thread's life: each starts where the previous ended.
    for prev, nxt in itertools.pairwise(ops):
        assert ns(prev["ts"]) + ns(prev["dur"]) == ns(nxt["ts"])


@pytest.mark.parametrize("mode", MODES)
def test_perfetto_flows_pair_up(mode: str) -> None:
    engine = run(CONTENDED, mode)
    doc = to_perfetto(engine)
    pairs = flows(doc)
    assert pairs, "the queued faults must be woken by an unlock"
    for fid, pair in pairs.items():
        assert set(pair) == {"s", "f"}, fid
        s, f = pair["s"], pair["f"]
        assert s["ts"] <= f["ts"]
        assert s["tid"] != f["tid"]
        assert f["bp"] == "e"
        assert (s["name"], s["cat"]) == (f["name"], f["cat"])
        # Both ends bind to a slice on their thread's track.
        assert enclosing(doc, s["pid"], s["tid"], s["ts"])
        assert enclosing(doc, f["pid"], f["tid"], f["ts"])
    # The writer's unlock wakes the three queued readers.
    writer_tid = 1
    assert {p["s"]["tid"] for p in pairs.values()} == {writer_tid}
    assert {p["f"]["tid"] for p in pairs.values()} == {2, 3, 4}


def test_perfetto_lock_tracks_and_counters() -> None:
    engine = run(CONTENDED, "per_vma")
    doc = to_perfetto(engine, step_events=False)
    tracks = slices_by_track(doc)
    mmap = [e["name"] for e in tracks[(PID_LOCKS, 1)]]
    assert mmap.count("write: writer") == 2
    assert any(n.startswith("read: f") for n in mmap)
    # The VMA stays write-locked (vm_lock_seq == mm_lock_seq) for the whole hold.
    heap_key = 1
    vma = tracks[(PID_LOCKS, heap_key + 1)]
    locked = [e for e in vma if e["name"] == "write-locked: writer"]
    assert len(locked) == 2 and all(ns(e["dur"]) >= 3000 for e in locked)
    counters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in doc["traceEvents"]:
        if e["ph"] == "C":
            counters[e["name"]].append(e)
    assert counters["mm"][-1]["args"]["mm_lock_seq"] == engine.summary()["mm_lock_seq"]
    waiters = [e["args"]["waiters"] for e in counters["mmap_lock"]]
    assert max(waiters) == 3 and waiters[-1] == 0
    assert counters["mmap_lock"][-1]["args"]["readers"] == 0
    for series in counters.values():
        stamps = [e["ts"] for e in series]
        assert stamps == sorted(stamps) and len(stamps) == len(set(stamps))


def test_perfetto_mmap_lock_mode_has_no_vma_locks() -> None:
    doc = to_perfetto(run(CONTENDED, "mmap_lock"), step_events=False)
    lock_tracks = {tid for pid, tid in slices_by_track(doc) if pid == PID_LOCKS}
    assert lock_tracks == {1}
    assert not [e for e in doc["traceEvents"] if e["ph"] == "C" and e["name"] == "mm"]


def test_perfetto_step_events_optional() -> None:
    engine = run(TINY, "per_vma")
    with_steps = to_perfetto(engine)
    without = to_perfetto(engine, step_events=False)
    assert [e for e in without["traceEvents"] if e["ph"] == "i"] == []
    assert [e for e in with_steps["traceEvents"] if e["ph"] == "X"] == [
        e for e in without["traceEvents"] if e["ph"] == "X"
    ]


@pytest.mark.parametrize("mode", MODES)
def test_perfetto_bench_workload_unfinished_run(mode: str) -> None:
    # Every op the engine has, many threads, and a run cut off mid-way: slices still
    # close and nest.
    engine = run(workload_yaml(implemented_ops(), threads=8, writers=2), mode, max_steps=20_000)
    assert len(engine.trace) == 20_000
    doc = to_perfetto(engine)
    assert_well_formed(doc)
    for pair in flows(doc).values():
        assert set(pair) == {"s", "f"}


@pytest.mark.parametrize("mode", MODES)
def test_perfetto_lock_state_matches_engine(mode: str) -> None:
    # A finished run of the full op mix: the exporter's lock bookkeeping, rebuilt from
    # event codes alone, must agree with the engine's counters and end with every
    # lock released and no waiter left.
    engine = run(workload_yaml(implemented_ops(), threads=6, writers=2, times=4), mode)
    assert engine.finished
    summary = engine.summary()
    doc = to_perfetto(engine, step_events=False)
    assert_well_formed(doc)
    mmap = slices_by_track(doc)[(PID_LOCKS, 1)]
    writes = [e for e in mmap if e["name"].startswith("write: ")]
    assert len(writes) == summary["mmap_lock"]["write_acquired"]
    last = [e for e in doc["traceEvents"] if e["ph"] == "C" and e["name"] == "mmap_lock"][-1]
    assert last["args"] == {"readers": 0, "waiters": 0}
    if mode == "per_vma":
        seq = [e for e in doc["traceEvents"] if e["ph"] == "C" and e["name"] == "mm"][-1]
        assert seq["args"]["mm_lock_seq"] == summary["mm_lock_seq"]
