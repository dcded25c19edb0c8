"""The race explorer (vmaviz/explore): finds each race with its patch off, none with all on.

Every search here is bounded by preemptions and schedule counts, never by time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmaviz import __main__ as entry
from vmaviz.explore import ExploreError, explore
from vmaviz.explore.races import RACE_DIR, RACES
from vmaviz.explore.search import Bounded, Limits, _Stop, configured, count_preemptions
from vmaviz.explore.state import restore, snapshot, state_key
from vmaviz.scenario import load_scenario

#: (scenario, the patch whose race it shows, the invariant it breaks, the bound that finds
#: it), from the one table the bench and the README use too.
DETACHED = str(RACE_DIR / "detached.yaml")
#: The keys of `explore --json` (the CLI contract of issue 13).
JSON_KEYS = {
    "found",
    "violation",
    "preemptions",
    "steps",
    "schedules",
    "states",
    "seconds",
    "exhaustive",
}
CASES = [(r.stem, r.patch, r.invariant, r.bound) for r in RACES]
IDS = [c[0] for c in CASES]
#: Far above what any search here needs (about 1,500 schedules at most).
CAP = 50_000


def race(name: str):  # type: ignore[no-untyped-def]
    return load_scenario(RACE_DIR / f"{name}.yaml")


def test_every_race_scenario_is_in_the_table() -> None:
    on_disk = sorted(p.stem for p in RACE_DIR.glob("*.yaml"))
    assert on_disk == sorted(r.stem for r in RACES)
    from vmaviz.model.kernel import PATCHES

    assert all(r.patch in PATCHES for r in RACES)


@pytest.mark.parametrize(("name", "patch", "inv", "bound"), CASES, ids=IDS)
def test_each_counterexample_replays_to_the_same_violation(
    name: str, patch: str, inv: int, bound: int
) -> None:
    """The minimal schedule, forced through the engine with the same patches, breaks
    the same invariant at the same step (what ``run --schedule`` does)."""
    from vmaviz.engine.engine import Engine

    sc = race(name)
    r = explore(sc, patches={patch: False}, preemptions=bound, max_schedules=CAP)
    assert r.found and r.violation is not None and r.schedule is not None
    e = Engine(sc.with_overrides(patches=r.patches), schedule=r.schedule).run()
    first = e.k.violations[0]
    assert (first[0], first[1]) == (r.violation.step, r.violation.invariant)


@pytest.mark.parametrize(("name", "patch", "inv", "bound"), CASES, ids=IDS)
def test_race_found_with_its_patch_off(name: str, patch: str, inv: int, bound: int) -> None:
    r = explore(race(name), patches={patch: False}, preemptions=bound, max_schedules=CAP)
    assert r.found and r.violation is not None and r.schedule is not None
    assert r.violation.invariant == inv
    # Iterative bounding: nothing with fewer preemptions, so exactly ``bound``.
    assert r.preemptions == bound
    assert r.steps == len(r.schedule) == r.violation.step + 1
    assert r.patches[patch] is False
    # The explanation names each preemption and then the violation.
    assert len(r.explanation) == bound + 1
    # A rule one thread breaks alone (StackRot's unlocked expansion) needs no preemption.
    assert all("preempts" in line for line in r.explanation[:bound])
    assert f"invariant {inv}" in r.explanation[-1]


@pytest.mark.parametrize(("name", "patch", "inv", "bound"), CASES, ids=IDS)
def test_no_violation_with_all_patches_on(name: str, patch: str, inv: int, bound: int) -> None:
    r = explore(race(name), patches={"all": True}, preemptions=bound, max_schedules=CAP)
    assert not r.found and r.violation is None
    assert r.exhaustive, "the whole bound must be covered, not cut by a budget"
    assert r.schedules > 1 and r.states > 1


def test_bound_zero_misses_a_one_preemption_race() -> None:
    r = explore(race("bounds-recheck"), patches={"lock_vma_bounds_check": False}, preemptions=0)
    assert not r.found and r.exhaustive and r.bound == 0


def test_minimal_counterexample_has_no_more_preemptions_than_any_found() -> None:
    sc = race("start-read-recheck")
    off = {"vma_start_read_recheck": False}
    best = explore(sc, patches=off, preemptions=3, max_schedules=CAP)
    assert best.found and best.preemptions is not None and best.steps is not None
    assert best.found_preemptions is not None and best.found_steps is not None
    assert best.preemptions <= best.found_preemptions
    assert best.steps <= best.found_steps
    # Schedules found another way (PCT, several seeds) never beat it.
    _, k0 = configured(sc, off)
    root = snapshot(k0)
    for seed in range(4):
        r = explore(sc, patches=off, strategy="pct", seed=seed, max_schedules=3000, minimize=False)
        assert r.found and r.schedule is not None
        assert count_preemptions(restore(root), r.schedule) >= best.preemptions


def test_state_caching_explores_fewer_schedules() -> None:
    _, k0 = configured(race("bounds-recheck"), {"all": True})
    root = snapshot(k0)
    cached = Bounded(root, Limits(max_schedules=CAP))
    assert cached.run_pass(2) is None and not cached.truncated
    covered = cached.schedules
    # Without the cache the same bound needs more schedules: it is cut at that many.
    plain = Bounded(root, Limits(max_schedules=covered), cache=False)
    with pytest.raises(_Stop):
        plain.run_pass(2)
    assert plain.schedules == covered
    # And it does finish given room (so the cut was the budget, not an error).
    roomy = Bounded(root, Limits(max_schedules=CAP), cache=False)
    assert roomy.run_pass(2) is None
    assert roomy.schedules > covered


def test_state_key_ignores_history_but_not_state() -> None:
    _, k0 = configured(race("bounds-recheck"), {"all": True})
    a, b = restore(snapshot(k0)), restore(snapshot(k0))
    # Statistics and the step counter do not decide what happens next.
    b.vma_lock["success"] += 5
    b.steps += 3
    assert state_key(a, 0) == state_key(b, 0)
    # Shifting every time by the same amount changes nothing either.
    shift = 123_456
    b.now += shift
    b.heap = [(e[0] + shift, *e[1:]) for e in b.heap]
    for th in b.threads:
        th.slice_start += shift
        th.start_ns += shift
    b.rcu.gp_start_ns += shift
    assert state_key(a, 0) == state_key(b, 0)
    # But who moved last, a lock word or one event's time relative to the others does.
    assert state_key(a, 0) != state_key(a, 1)
    b.heap = [(e[0] + i, *e[1:]) for i, e in enumerate(b.heap)]
    if len(b.heap) > 1:
        assert state_key(a, 0) != state_key(b, 0)
    c = restore(snapshot(k0))
    c.mm.mmap_lock.readers += 1
    assert state_key(a, 0) != state_key(c, 0)


def test_pct_same_seed_same_schedule() -> None:
    sc = race("detached")
    off = {"vma_detached_flag": False}
    one = explore(sc, patches=off, strategy="pct", seed=11, max_schedules=3000)
    two = explore(sc, patches=off, strategy="pct", seed=11, max_schedules=3000)
    assert one.found and one.seed == 11
    assert one.schedule == two.schedule and one.schedules == two.schedules
    assert one.violation == two.violation


def test_jobs_two_finds_the_same_minimal_counterexample() -> None:
    sc = race("start-read-recheck")
    off = {"vma_start_read_recheck": False}
    one = explore(sc, patches=off, preemptions=2, max_schedules=CAP)
    two = explore(sc, patches=off, preemptions=2, max_schedules=CAP, jobs=2)
    assert one.found and two.found
    assert two.schedule == one.schedule
    assert two.violation == one.violation and two.preemptions == one.preemptions
    none = explore(sc, patches={"all": True}, preemptions=2, max_schedules=CAP, jobs=2)
    assert not none.found and none.exhaustive


def test_unknown_patch_is_an_error() -> None:
    with pytest.raises(ExploreError, match="unknown patch 'no_such'"):
        explore(race("detached"), patches={"no_such": False})


# ------------------------------------------------------------------- the CLI


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = entry.main(list(args))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_json_and_schedule_replay(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = str(RACE_DIR / "bounds-recheck.yaml")
    sched = tmp_path / "race.json"
    status, out, _ = main(
        capsys,
        "explore",
        scenario,
        "--patch",
        "lock_vma_bounds_check=off",
        "--preemptions",
        "1",
        "--schedule-out",
        str(sched),
        "--json",
    )
    assert status == 0
    doc = json.loads(out)
    assert set(doc) == JSON_KEYS
    assert doc["found"] is True and doc["preemptions"] == 1 and doc["exhaustive"] is False
    saved = json.loads(sched.read_text())
    assert saved["patches"]["lock_vma_bounds_check"] is False
    assert saved["scenario"]["file"] == "bounds-recheck.yaml"
    assert len(saved["schedule"]) == doc["steps"]
    # The replay applies the file's patches and hits the same invariant at the same step.
    status, out, _ = main(capsys, "run", scenario, "--schedule", str(sched), "--json")
    assert status == 0
    [run] = json.loads(out)["runs"]
    hit = {"step": doc["violation"]["step"], "invariant": doc["violation"]["invariant"]}
    assert hit in [
        {"step": v["step"], "invariant": v["invariant"]} for v in run["invariant_violations"]
    ]


def test_cli_reports_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = main(
        capsys,
        "explore",
        DETACHED,
        "--patch",
        "all=on",
        "--preemptions",
        "1",
    )
    assert status == 0
    assert "all schedules with at most 1 preemptions" in out and "no violation" in out


def test_cli_bad_patch_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = main(capsys, "explore", DETACHED, "--patch", "bogus=off")
    assert status == 2 and "unknown patch 'bogus'" in err
    status, _, err = main(capsys, "explore", DETACHED, "--patch", "vma_detached_flag")
    assert status == 2 and "NAME=on or NAME=off" in err


def _schedule_file(tmp_path: Path, scenario: Path, tids: list[int]) -> Path:
    from vmaviz.explore.schedule import FORMAT, VERSION, file_sha256

    doc = {
        "format": FORMAT,
        "version": VERSION,
        "scenario": {"name": "x", "file": scenario.name, "sha256": file_sha256(scenario)},
        "mode": "per_vma",
        "arch": "x86",
        "patches": {},
        "schedule": tids,
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    return path


def test_cli_bad_schedules_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = RACE_DIR / "detached.yaml"
    # A thread the scenario does not have.
    path = _schedule_file(tmp_path, scenario, [0, 5])
    status, _, err = main(capsys, "run", str(scenario), "--schedule", str(path))
    assert status == 2 and "thread id 5 does not fit the scenario" in err
    # A thread that has finished (so cannot move) long before the schedule ends.
    path = _schedule_file(tmp_path, scenario, [1] * 200)
    status, _, err = main(capsys, "run", str(scenario), "--schedule", str(path))
    assert status == 2 and "thread 1 cannot move at step" in err
    # A schedule written for another scenario file.
    path = _schedule_file(tmp_path, RACE_DIR / "bounds-recheck.yaml", [0])
    status, _, err = main(capsys, "run", str(scenario), "--schedule", str(path))
    assert status == 2 and "written for another scenario" in err
    path.write_text("{not json")
    status, _, err = main(capsys, "run", str(scenario), "--schedule", str(path))
    assert status == 2 and "not a schedule file" in err


def test_the_snapshot_memory_budget_stops_the_search() -> None:
    """The snapshots kept at the branch points of the current schedule are bounded
    (a big scenario's state is megabytes): past the budget the search stops as
    when its time runs out, it does not grow without end."""
    _, k0 = configured(race("detached"), {"all": True})
    root = snapshot(k0)
    search = Bounded(root, Limits(max_bytes=len(root) // 2))
    with pytest.raises(_Stop):
        search.run_pass(1)
    roomy = Bounded(root, Limits(max_bytes=64 * len(root)))
    assert roomy.run_pass(1) is None  # no violation with every patch on, and no stop


# ------------------------------------------------------- sleep sets (--por)


@pytest.mark.parametrize(("name", "patch", "inv", "bound"), CASES, ids=IDS)
def test_sleep_sets_keep_every_race_and_never_explore_more(
    name: str, patch: str, inv: int, bound: int
) -> None:
    """With sleep sets the race is still found at exactly its bound, the clean
    search still covers the whole bound, and neither explores more schedules."""
    sc = race(name)
    off = {patch: False}
    plain = explore(sc, patches=off, preemptions=bound, max_schedules=CAP)
    por = explore(sc, patches=off, preemptions=bound, max_schedules=CAP, por=True)
    assert por.found and por.violation is not None
    assert por.violation.invariant == inv and por.preemptions == bound
    # The minimal counterexample is the same schedule (same length, first in order).
    assert por.schedule == plain.schedule
    assert por.schedules <= plain.schedules
    clean_plain = explore(sc, patches={"all": True}, preemptions=bound, max_schedules=CAP)
    clean = explore(sc, patches={"all": True}, preemptions=bound, max_schedules=CAP, por=True)
    assert not clean.found and clean.exhaustive
    assert clean.schedules <= clean_plain.schedules


def test_sleep_sets_prune_some_schedules() -> None:
    """Where two steps commute (equal states in both orders, no dearer twin) the
    second order is skipped: strictly fewer schedules, nothing else changes."""
    _, k0 = configured(race("maple-rcu-mode"), {"all": True})
    root = snapshot(k0)
    plain = Bounded(root, Limits(max_schedules=CAP))
    slept = Bounded(root, Limits(max_schedules=CAP), por=True)
    for b in range(2):
        assert plain.run_pass(b) is None and slept.run_pass(b) is None
    assert slept.schedules < plain.schedules
    # Every pair it put to sleep was tested by running both orders.
    assert any(v is not None for v in slept.commute.values())
    assert not plain.commute  # off: no test is ever run


def test_sleep_sets_with_jobs_two_find_the_same_counterexample() -> None:
    sc = race("start-read-recheck")
    off = {"vma_start_read_recheck": False}
    one = explore(sc, patches=off, preemptions=2, max_schedules=CAP, por=True)
    two = explore(sc, patches=off, preemptions=2, max_schedules=CAP, jobs=2, por=True)
    assert one.found and two.found
    assert two.schedule == one.schedule and two.violation == one.violation
    assert two.preemptions == one.preemptions == 2


def test_cli_por_flag_keeps_the_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = main(
        capsys, "explore", DETACHED, "--patch", "all=on", "--preemptions", "1", "--por", "--json"
    )
    assert status == 0
    doc = json.loads(out)
    assert doc["found"] is False and doc["exhaustive"] is True
    assert set(doc) == JSON_KEYS
