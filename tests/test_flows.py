"""Lock hand-off arrows (who woke whom) and the statistics of a selected time range.

The scenario ``start-write-waits-reader`` tells the story these tests check: the
last ``vma_end_read`` on buf (thread early) wakes tuner, queued in ``down_write``
on buf's VMA lock (a wake to retry, not a hand-over); tuner then finishes madvise
and its ``mmap_write_unlock`` hands mmap_lock to late, a reader queued behind it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.engine.export import split_note, synced_trace, thread_names, to_perfetto
from vmaviz.engine.flows import lock_waits, range_stats, wake_flows
from vmaviz.scenario import load_scenario
from vmaviz.ui.lanes import timeline_data
from vmaviz.ui.timeline_nav import MAX_US, parse_range

ROOT = Path(__file__).resolve().parents[1]
FAULTER, TUNER, EARLY, LATE = 0, 1, 2, 3
BUF = 1  # buf's VMA id: its VMA lock's key


@pytest.fixture(scope="module")
def engine() -> Engine:
    sc = load_scenario(ROOT / "scenarios" / "start-write-waits-reader.yaml")
    return Engine(sc, mode="per_vma").run()


def test_the_model_names_the_woken_writer_and_the_granted_reader(engine: Engine) -> None:
    t = synced_trace(engine)
    f = wake_flows(t)
    rows = list(
        zip(
            [t.codes[t.code[i]] for i in f.step.tolist()],
            f.key.tolist(),
            f.waker.tolist(),
            f.woken.tolist(),
            f.granted.tolist(),
            [t.codes[t.code[i]] for i in f.head.tolist()],
            strict=True,
        )
    )
    assert rows == [
        # early's vma_end_read wakes tuner, who then takes buf's lock for write.
        ("vma_end_read:up_read", BUF, EARLY, TUNER, False, "down_write:acquired_after_wait"),
        # tuner's unlock hands mmap_lock to the queued reader late.
        ("mmap_write_unlock", 0, TUNER, LATE, True, "down_read:granted"),
    ]
    # The head is the woken thread's very next step, one wake-up latency later.
    for step, head, who in zip(f.step.tolist(), f.head.tolist(), f.woken.tolist(), strict=True):
        assert all(t.tid[i] != who for i in range(step + 1, head))
        assert t.tid[head] == who
    assert (f.t1_ns - f.t0_ns).tolist() == [engine.k.costs["wakeup_latency"]] * 2
    assert f.t0_ns.tolist() == [t.time[i] for i in f.step.tolist()]


def test_wake_tags_are_not_shown_as_prose(engine: Engine) -> None:
    t = synced_trace(engine)
    notes = [n for n in t.notes.values() if "woke=" in n]
    assert notes == ["woke=1:1"]
    assert split_note(notes[0]) == ("", [])


def test_lock_waits_run_from_queueing_to_the_lock(engine: Engine) -> None:
    t = synced_trace(engine)
    w = lock_waits(t)
    queued = {
        (t.tid[i], t.a[i]): t.time[i]
        for i in range(len(t))
        if t.codes[t.code[i]] in ("down_read:queued", "down_write:queued")
    }
    f = wake_flows(t)
    got = {
        (tid, key): (s, e)
        for tid, key, s, e in zip(
            w.tid.tolist(), w.key.tolist(), w.start_ns.tolist(), w.end_ns.tolist(), strict=True
        )
    }
    # One wait each: tuner on buf's VMA lock, late on mmap_lock; each ends when the
    # woken thread gets the lock (the arrow's head).
    assert got == {
        (TUNER, BUF): (queued[(TUNER, BUF)], int(f.t1_ns[0])),
        (LATE, 0): (queued[(LATE, 0)], int(f.t1_ns[1])),
    }


def test_range_stats_of_the_whole_run_and_of_a_part(engine: Engine) -> None:
    t = synced_trace(engine)
    w = lock_waits(t)
    f = wake_flows(t)
    names = thread_names(engine)
    locks = {0: "mmap_lock", BUF: "vma1 buf vm_lock"}
    whole = range_stats(t, w, 0, t.time[len(t) - 1], names, locks)
    assert whole["steps"] == len(t)
    waits = {(x["thread"], x["lock"]): (x["ns"], x["count"]) for x in whole["waits"]}
    tuner_wait = int(w.end_ns[0] - w.start_ns[0])
    late_wait = int(w.end_ns[1] - w.start_ns[1])
    assert waits == {
        ("tuner", "vma1 buf vm_lock"): (tuner_wait, 1),
        ("late", "mmap_lock"): (late_wait, 1),
    }
    # Longest first.
    assert [x["ns"] for x in whole["waits"]] == sorted([tuner_wait, late_wait], reverse=True)
    faults = {x["what"]: x["count"] for x in whole["faults"]}
    assert faults["faults"] == 3  # faulter, early, late
    assert faults["handled under the VMA lock"] == 2  # faulter and early
    assert faults["handled under mmap_lock"] == 1  # late, after its abort
    assert whole["aborts"] == [{"reason": "trylock_failed", "count": 1}]
    # Up to the wake: tuner's wait is cut at the range's end; late has waited since
    # it queued; no fault has finished under mmap_lock yet.
    cut = int(f.t0_ns[0])
    part = range_stats(t, w, 0, cut, names, locks)
    waits = {(x["thread"], x["lock"]): x["ns"] for x in part["waits"]}
    assert waits == {
        ("tuner", "vma1 buf vm_lock"): cut - int(w.start_ns[0]),
        ("late", "mmap_lock"): cut - int(w.start_ns[1]),
    }
    assert "handled under mmap_lock" not in {x["what"] for x in part["faults"]}
    # Ends given in either order; a range before anything waits has no waits.
    assert range_stats(t, w, cut, 0, names, locks) == part
    assert range_stats(t, w, 0, int(w.start_ns.min()) - 1, names, locks)["waits"] == []


def test_lanes_carry_the_arrows_between_thread_rows(engine: Engine) -> None:
    from vmaviz.engine.timeline import build_timeline

    t = synced_trace(engine)
    data = timeline_data(build_timeline(engine), flows=wake_flows(t))
    fl = data["flows"]
    assert fl["from"] == [EARLY, TUNER] and fl["to"] == [TUNER, LATE]
    assert [data["rows"][r] for r in fl["to"]] == ["tuner", "late"]
    assert fl["granted"] == [0, 1] and fl["key"] == [BUF, 0]
    f = wake_flows(t)
    assert fl["t0"] == (f.t0_ns / 1000).tolist() and fl["t1"] == (f.t1_ns / 1000).tolist()
    assert timeline_data(build_timeline(engine))["flows"]["from"] == []


def _flow_pairs(doc: dict[str, Any]) -> dict[int, dict[str, dict[str, Any]]]:
    pairs: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for ev in doc["traceEvents"]:
        if ev["ph"] in ("s", "f"):
            assert ev["ph"] not in pairs[ev["id"]]
            pairs[ev["id"]][ev["ph"]] = ev
    return pairs


def test_perfetto_has_one_flow_per_wake_with_matching_ids_and_times(engine: Engine) -> None:
    doc = to_perfetto(engine)
    f = wake_flows(synced_trace(engine))
    pairs = _flow_pairs(doc)
    assert len(pairs) == len(f) == 2
    got = sorted(
        (p["s"]["ts"], p["s"]["tid"], p["f"]["ts"], p["f"]["tid"], p["s"]["name"])
        for p in pairs.values()
    )
    want = sorted(
        (t0 / 1000, waker + 1, t1 / 1000, woken + 1, name)
        for t0, waker, t1, woken, name in zip(
            f.t0_ns.tolist(),
            f.waker.tolist(),
            f.t1_ns.tolist(),
            f.woken.tolist(),
            ["wakeup: vma1 vm_lock", "hand-off: mmap_lock"],
            strict=True,
        )
    )
    assert got == want
    for p in pairs.values():
        assert set(p) == {"s", "f"}
        assert p["s"]["id"] == p["f"]["id"] and p["s"]["cat"] == p["f"]["cat"] == "lock"
        assert p["f"]["bp"] == "e"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, None),
        ({"side": "left", "t0": None, "t1": None}, None),
        ({"side": "left", "t0": 5.0, "t1": 1.5}, ("left", 1.5, 5.0)),
        ({"side": "left", "t0": 2, "t1": 2}, None),
        ({"side": "right", "t0": 1, "t1": 2}, "the selected range names no timeline on this page"),
        ({"side": "left", "t0": "1", "t1": 2}, "the selected range's ends are not numbers"),
        ({"side": "left", "t0": True, "t1": 2}, "the selected range's ends are not numbers"),
        (
            {"side": "left", "t0": -1, "t1": 2},
            f"the selected range must lie within 0 and {MAX_US:.0f} µs",
        ),
        ([1, 2], "the selected range is not an object"),
    ],
)
def test_parse_range_bounds_what_the_page_sends(value: Any, want: Any) -> None:
    assert parse_range(value, ["left"]) == want
