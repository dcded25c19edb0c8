"""build_timeline: per-thread segments and lock intervals rebuilt from real traces."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from vmaviz.bench.engine import implemented_ops, workload_yaml
from vmaviz.engine.engine import Engine
from vmaviz.engine.export import PID_LOCKS, split_note, synced_trace, to_perfetto
from vmaviz.engine.timeline import SEGMENT_KINDS, Timeline, build_timeline
from vmaviz.scenario import load_scenario, load_scenario_text

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def run(name: str, mode: str) -> Engine:
    return Engine(load_scenario(SCENARIOS / f"{name}.yaml"), mode=mode).run()


@pytest.fixture(scope="module")
def hold() -> dict[str, tuple[Engine, Timeline]]:
    out = {}
    for mode in ("mmap_lock", "per_vma"):
        e = run("hold-write-other-vma", mode)
        out[mode] = (e, build_timeline(e))
    return out


@pytest.fixture(scope="module")
def munmap() -> tuple[Engine, Timeline]:
    e = run("fault-vs-munmap", "per_vma")
    return e, build_timeline(e)


def kinds_of(tl: Timeline, name: str) -> set[str]:
    th = next(t for t in tl.threads if t.name == name)
    return {s.kind for s in th.segments}


def assert_consistent(e: Engine, tl: Timeline) -> None:
    """Segments are in time order, never overlap, and start at their recorded step."""
    t = synced_trace(e)
    assert tl.n_steps == len(t)
    assert list(tl.step_times) == list(t.time)
    assert [th.tid for th in tl.threads] == sorted(th.tid for th in e.k.threads)
    for th in tl.threads:
        prev_end = None
        for s in th.segments:
            assert s.kind in SEGMENT_KINDS
            assert 0 <= s.start_ns < s.end_ns <= tl.end_ns
            assert s.label
            # A segment starts at a step of its own thread, or at the step that
            # granted it a lock while it slept (the waker's unlock).
            granted = any(th.tid in tids for _, tids in split_note(t.notes.get(s.step, ""))[1])
            assert t.tid[s.step] == th.tid or (granted and "granted by" in s.label)
            assert t.time[s.step] == s.start_ns == tl.time_of(s.step)
            if prev_end is not None:
                assert s.start_ns >= prev_end
            prev_end = s.end_ns
    for lk in tl.locks:
        for iv in lk.intervals:
            assert iv.mode in ("read", "write", "write_locked")
            assert 0 <= iv.start_ns < iv.end_ns <= tl.end_ns
            assert t.time[iv.step] == iv.start_ns


@pytest.mark.parametrize("mode", ["mmap_lock", "per_vma"])
def test_segments_consistent(hold: dict[str, tuple[Engine, Timeline]], mode: str) -> None:
    assert_consistent(*hold[mode])


def test_mmap_lock_mode_faults_wait_for_the_writer(
    hold: dict[str, tuple[Engine, Timeline]],
) -> None:
    _, tl = hold["mmap_lock"]
    for name in ("T1", "T2"):
        kinds = kinds_of(tl, name)
        assert "wait_mmap_read" in kinds
        assert "hold_mmap_read" in kinds
        assert "hold_vma_read" not in kinds
        waits = [s for s in tl.threads[int(name[1])].segments if s.kind == "wait_mmap_read"]
        # They wait for T0's 50 us hold.
        assert sum(s.end_ns - s.start_ns for s in waits) > 40_000
        assert all(s.label == "waits for mmap_lock (read)" for s in waits)
    assert "hold_mmap_write" in kinds_of(tl, "T0")


def test_per_vma_mode_faults_do_not_wait(hold: dict[str, tuple[Engine, Timeline]]) -> None:
    _, tl = hold["per_vma"]
    for name in ("T1", "T2"):
        kinds = kinds_of(tl, name)
        assert "wait_mmap_read" not in kinds
        assert "hold_mmap_read" not in kinds
        assert {"faulting", "hold_vma_read"} <= kinds
        labels = {s.label for s in tl.threads[int(name[1])].segments if s.kind == "hold_vma_read"}
        assert labels == {"holds vma2 B (read)"}
    assert "hold_mmap_write" in kinds_of(tl, "T0")
    # Everyone ends done.
    assert all(th.segments[-1].kind == "done" for th in tl.threads[1:])


def test_lock_tracks_per_vma(hold: dict[str, tuple[Engine, Timeline]]) -> None:
    e, tl = hold["per_vma"]
    t = synced_trace(e)
    assert tl.locks[0].key == 0 and tl.locks[0].name == "mmap_lock"
    (mm_write,) = [iv for iv in tl.locks[0].intervals if iv.mode == "write"]
    assert mm_write.label == "write: T0" and mm_write.start_ns == 0
    by_name = {lk.name: lk for lk in tl.locks}
    assert set(by_name) == {"mmap_lock", "vma1 A", "vma2 B"}
    a, b = by_name["vma1 A"], by_name["vma2 B"]
    (epoch,) = [iv for iv in a.intervals if iv.mode == "write_locked"]
    assert epoch.label == "write-locked by T0 (seq 0)"
    assert t.codes[t.code[epoch.step]] == "vma_start_write:seq_set"
    end_all = [i for i in range(len(t)) if t.codes[t.code[i]] == "vma_end_write_all"]
    assert epoch.end_ns == t.time[end_all[0]]
    assert not [iv for iv in a.intervals if iv.mode == "read"]
    reads = [iv for iv in b.intervals if iv.mode == "read"]
    assert reads and not [iv for iv in b.intervals if iv.mode == "write_locked"]
    assert {"read: T1", "read: T2", "read: T1, T2"} >= {iv.label for iv in reads}
    # B is read while A is write-locked: the point of per-VMA locks.
    assert any(epoch.start_ns < iv.start_ns < epoch.end_ns for iv in reads)


def test_lock_tracks_mmap_lock_mode(hold: dict[str, tuple[Engine, Timeline]]) -> None:
    _, tl = hold["mmap_lock"]
    assert [lk.name for lk in tl.locks] == ["mmap_lock"]
    modes = [iv.mode for iv in tl.locks[0].intervals]
    assert modes[0] == "write" and "read" in modes


def test_mmap_lock_intervals_agree_with_perfetto(
    hold: dict[str, tuple[Engine, Timeline]],
) -> None:
    e, tl = hold["mmap_lock"]
    doc = to_perfetto(e, step_events=False)
    slices = [
        ev
        for ev in doc["traceEvents"]
        if ev["ph"] == "X" and (ev["pid"], ev["tid"]) == (PID_LOCKS, 1)
    ]
    starts = {round(ev["ts"] * 1000): ev["name"] for ev in slices}
    for iv in tl.locks[0].intervals:
        assert iv.start_ns in starts
        assert iv.label in starts[iv.start_ns]


def test_munmap_scenario(munmap: tuple[Engine, Timeline]) -> None:
    e, tl = munmap
    assert_consistent(e, tl)
    by_name = {lk.name: lk for lk in tl.locks}
    victim = by_name["vma1 victim"]
    modes = {iv.mode for iv in victim.intervals}
    assert {"read", "write", "write_locked"} <= modes
    # munmap holds mmap_lock for write, then (downgraded) for read.
    t0 = kinds_of(tl, "T0")
    assert {"hold_mmap_write", "hold_mmap_read", "running", "done"} <= t0
    # T1's fault during munmap falls back and waits on mmap_lock.
    assert "wait_mmap_read" in kinds_of(tl, "T1")


def test_step_at(hold: dict[str, tuple[Engine, Timeline]]) -> None:
    _, tl = hold["per_vma"]
    times = list(tl.step_times)
    assert tl.step_at(-5) == 0
    assert tl.step_at(10**15) == tl.n_steps - 1
    for i in (0, 1, len(times) // 2, len(times) - 1):
        j = tl.step_at(times[i])
        assert times[j] == times[i] and j >= i
        assert j == len(times) - 1 or times[j + 1] > times[i]
    assert tl.time_of(tl.n_steps) == tl.end_ns


def test_json_and_pickle(hold: dict[str, tuple[Engine, Timeline]]) -> None:
    _, tl = hold["per_vma"]
    d = tl.to_dict()
    back = json.loads(json.dumps(d))
    assert back["mode"] == "per_vma" and back["scenario"] == "hold-write-other-vma"
    assert len(back["step_times"]) == tl.n_steps
    assert [len(t["segments"]) for t in back["threads"]] == [len(t.segments) for t in tl.threads]
    assert back["threads"][0]["segments"][0][:3] == [
        0,
        tl.threads[0].segments[0].end_ns,
        "hold_mmap_write",
    ]
    again = pickle.loads(pickle.dumps(tl))
    assert again.to_dict() == d


def test_empty_run() -> None:
    e = Engine(load_scenario(SCENARIOS / "hold-write-other-vma.yaml"))
    tl = build_timeline(e)
    assert tl.n_steps == 0 and tl.end_ns == 0
    assert [len(t.segments) for t in tl.threads] == [0, 0, 0]
    assert tl.step_at(100) == 0 and tl.time_of(3) == 0
    assert [lk.name for lk in tl.locks] == ["mmap_lock"]


def test_hundred_threads() -> None:
    text = workload_yaml(implemented_ops(), threads=100, writers=10, times=50)
    e = Engine(load_scenario_text(text, "<100 threads>"), mode="per_vma").run(max_steps=30_000)
    tl = build_timeline(e)
    assert tl.n_steps == 30_000
    assert len(tl.threads) == 100
    assert_consistent(e, tl)
    # Merging keeps far fewer segments than steps.
    assert 100 <= tl.segment_count() < tl.n_steps
    assert {"wait_mmap_write", "hold_mmap_write", "hold_vma_read", "faulting"} <= {
        s.kind for th in tl.threads for s in th.segments
    }
    assert tl.locks[0].name == "mmap_lock" and len(tl.locks) >= 2


OTHER_WAITS = """\
name: other-waits
description: a userfault, a barrier and a sleep, for the blocked_other and sleeping kinds
kernel: {cpus: 2, seed: 1}
mm:
  vmas:
    - {name: u, pages: 4, anon_vma: true}
    - {name: a, pages: 4, anon_vma: true}
threads:
  - name: M
    ops:
      - uffd_register: {vma: u}
      - barrier: {name: go}
      - fault: {vma: u, page: 0, access: write}
  - name: S
    ops:
      - sleep: {ns: 5000}
      - barrier: {name: go}
      - touch: {vma: a, pages: "0-1"}
"""


@pytest.mark.parametrize("mode", ["per_vma", "mmap_lock"])
def test_blocked_and_sleeping(mode: str) -> None:
    e = Engine(load_scenario_text(OTHER_WAITS, "<waits>"), mode=mode).run()
    tl = build_timeline(e)
    assert_consistent(e, tl)
    m = {s.label for s in tl.threads[0].segments if s.kind == "blocked_other"}
    assert m == {"waits at a barrier", "waits for the userfault monitor"}
    s_kinds = kinds_of(tl, "S")
    assert "sleeping" in s_kinds and "done" in s_kinds


def test_a_reader_granted_the_lock_holds_it_before_it_runs() -> None:
    """default: main's mmap_write_unlock grants mmap_lock to the sleeping reader jit.

    From that step the lock's state says jit holds it for read, though jit records
    ``down_read:granted`` only when it runs, later. The timeline must agree with the
    state: the mmap_lock lane shows jit reading from the grant, and jit's own lane
    shows it holding the lock, not waiting.
    """
    e = run("default", "per_vma")
    t = synced_trace(e)
    grants = {i: split_note(n)[1] for i, n in t.notes.items() if "granted=" in n}
    assert grants
    step, [(key, tids)] = next(iter(grants.items()))
    assert key == 0
    jit = tids[0]
    names = {th.tid: th.name for th in e.k.threads}
    ran = next(i for i in range(step, len(t)) if t.tid[i] == jit)
    assert t.codes[t.code[ran]] == "down_read:granted" and t.time[ran] > t.time[step]
    # The model's state right after the grant: jit already holds mmap_lock.
    k = e.state_at(step + 1)
    assert jit in k.mm.mmap_lock.reader_tids
    tl = build_timeline(e)
    at = t.time[step]
    mm = next(lk for lk in tl.locks if lk.key == 0)
    (iv,) = [iv for iv in mm.intervals if iv.start_ns <= at < iv.end_ns]
    assert iv.mode == "read" and names[jit] in iv.label and iv.start_ns == at
    lane = next(th for th in tl.threads if th.tid == jit)
    (seg,) = [sg for sg in lane.segments if sg.start_ns <= at < sg.end_ns]
    assert seg.kind == "hold_mmap_read" and seg.end_ns == t.time[ran]
    assert "granted by main" in seg.label
    assert_consistent(e, tl)
