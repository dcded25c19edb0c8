"""The scenario library: every bundled scenario loads, runs in both modes without an
invariant violation, and shows what its description says it shows.

Each run is simulated once per (scenario, mode, arch, patches) and shared by the
tests that look at it. Expectations that the model does not meet are kept as
``xfail(strict=True)`` tests whose reason records the numbers measured, so that a
model change that fixes (or further breaks) them is noticed.
"""

from __future__ import annotations

import functools
import statistics
from pathlib import Path
from typing import Any

import pytest

from vmaviz.bench.calibration import TCP_SHARE_BAND, mmap_lock_share
from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M
from vmaviz.scenario import Scenario, ScenarioErrors, load_scenario, load_scenario_text
from vmaviz.scenario.loader import validate_main

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SWEEP = SCENARIOS / "sweep"
MODES = ("per_vma", "mmap_lock")
ARCHES = ("x86", "arm64", "powerpc", "s390")


def _loads(path: Path) -> bool:
    try:
        load_scenario(path)
    except ScenarioErrors:
        return False
    return True


#: Every bundled scenario; default.yaml (owned by the app) only if it loads.
BUNDLED = sorted(p for p in SCENARIOS.glob("*.yaml") if p.name != "default.yaml" or _loads(p))
STEMS = [p.stem for p in BUNDLED]

#: The scenarios this library adds, with what each is for (the test below checks that
#: each exists, so a rename is caught here too).
LIBRARY = (
    "android-app-launch",
    "fibers-spawn-burst",
    "tcp-zerocopy",
    "pft-single-vma",
    "pft-per-thread-vma",
    "spf-test",
    "page-fault1-threads",
    "proc-maps-vs-mapper",
    "fork-stress",
    "kernbench-neutral",
    "uffd-armed",
    "munmap-race-miss",
    "split-bounds-recheck",
    "write-locked-vma",
    "start-write-waits-reader",
    "mmu-notifier-register",
    "khugepaged-collapse",
    "stack-growth",
    "stack-guard-gap",
    "rcu-dead-node",
    "arch-access-checks",
    "rwsem-writer-starvation",
    "rwsem-reader-stealing",
    "rwsem-handoff",
    "partial-mprotect-merge",
)


# =====================================================================
# Running (cached) and reading traces
# =====================================================================


@functools.cache
def scenario(stem: str) -> Scenario:
    return load_scenario(SCENARIOS / f"{stem}.yaml")


@functools.cache
def run(
    stem: str,
    mode: str,
    arch: str | None = None,
    patches: tuple[tuple[str, bool], ...] = (),
    seed: int | None = None,
) -> Engine:
    """The finished run of a bundled scenario (simulated once per argument set)."""
    sc = scenario(stem)
    over: dict[str, Any] = {}
    if patches:
        over["patches"] = {**sc.kernel.patches, **dict(patches)}
    if seed is not None:
        over["seed"] = seed
    if over:
        sc = sc.with_overrides(**over)
    return Engine(sc, mode=mode, arch=arch).run()


@functools.cache
def summary(stem: str, mode: str, arch: str | None = None) -> dict[str, Any]:
    return run(stem, mode, arch).summary()


def rows(e: Engine) -> list[dict[str, Any]]:
    """Every step as ``{i, t, who, ev, a, b, stack}`` (``who`` is the thread name)."""
    t = e.trace
    t.flush()
    names = {th.tid: th.name for th in e.k.threads}
    return [
        {
            "i": i,
            "t": t.time[i],
            "who": names.get(t.tid[i], "rcu"),
            "ev": t.codes[t.code[i]],
            "a": t.a[i],
            "b": t.b[i],
            "stack": t.stacks[t.stack[i]],
        }
        for i in range(len(t))
    ]


def find(rs: list[dict[str, Any]], ev: str, who: str | None = None) -> list[dict[str, Any]]:
    """Rows whose event is ``ev`` (or starts with it, for ``ev`` ending in ':')."""
    out = []
    for r in rs:
        hit = r["ev"].startswith(ev) if ev.endswith(":") else r["ev"] == ev
        if hit and (who is None or r["who"] == who):
            out.append(r)
    return out


def first(rs: list[dict[str, Any]], ev: str, who: str | None = None) -> dict[str, Any]:
    hits = find(rs, ev, who)
    assert hits, f"no {ev!r} event{' of ' + who if who else ''}"
    return hits[0]


def done(stem: str, mode: str, name: str) -> int:
    for t in summary(stem, mode)["threads"]:
        if t["name"] == name:
            return int(t["done_ns"])
    raise KeyError(name)


def threads(stem: str, mode: str, prefix: str) -> list[dict[str, Any]]:
    return [t for t in summary(stem, mode)["threads"] if t["name"].startswith(prefix)]


def aborts(s: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in s["abort_reasons"].items() if v}


def faults_per_sec(s: dict[str, Any]) -> float:
    return float(s["faults"]["total"] * 1e9 / s["sim_ns"])


def gain(stem: str) -> float:
    """per_vma faults/s over mmap_lock faults/s, minus 1."""
    return faults_per_sec(summary(stem, "per_vma")) / faults_per_sec(summary(stem, "mmap_lock")) - 1


# =====================================================================
# Every bundled scenario
# =====================================================================


def test_the_library_is_bundled() -> None:
    missing = [s for s in LIBRARY if s not in STEMS]
    assert not missing, f"missing scenarios: {missing}"
    assert (SWEEP / "pft-single-vma.yaml").exists()
    assert (SWEEP / "pft-per-thread-vma.yaml").exists()


def test_bundled_scenarios_pass_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_main([str(p) for p in BUNDLED]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(BUNDLED)
    assert all(line.startswith("OK ") for line in out)


@pytest.mark.parametrize("stem", STEMS)
def test_scenario_is_documented(stem: str) -> None:
    sc = scenario(stem)
    assert sc.name == stem
    assert len(sc.description.split()) >= 40, "the description should explain the mechanism"
    assert sc.question and sc.question.strip().endswith("?")
    assert len(sc.look_at) >= 2 and all(isinstance(s, str) and s.strip() for s in sc.look_at)
    assert sc.vmas and sc.threads


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stem", STEMS)
def test_scenario_runs_clean(stem: str, mode: str) -> None:
    e = run(stem, mode)
    s = summary(stem, mode)
    assert e.finished
    assert s["mode"] == mode
    assert s["invariant_violations"] == []
    # Every thread ran to its end.
    assert all(t["done_ns"] >= 0 for t in s["threads"])
    if mode == "mmap_lock":
        assert set(s["vma_lock"].values()) == {0}
        assert s["faults"]["via_vma_lock"] == 0
    # Each fault ended one way: VMA lock, mmap_lock or SIGSEGV.
    f = s["faults"]
    assert f["via_vma_lock"] + f["via_mmap_lock"] + f["sigsegv"] == f["total"]


def test_mechanism_scenarios_are_small_enough_to_step_through() -> None:
    small = [
        "first-fault-anon-vma",
        "file-backed-fault",
        "swap-retry",
        "madvise-pageout-retry",
        "uffd-armed",
        "munmap-race-miss",
        "split-bounds-recheck",
        "write-locked-vma",
        "start-write-waits-reader",
        "mmu-notifier-register",
        "stack-growth",
        "stack-guard-gap",
        "rcu-dead-node",
        "arch-access-checks",
        "rwsem-writer-starvation",
        "rwsem-reader-stealing",
    ]
    steps = {s: summary(s, "per_vma")["steps"] for s in small}
    assert all(n < 600 for n in steps.values()), steps
    # rwsem-handoff must wait 4 ms, khugepaged a 100 us collapse: still small.
    assert summary("rwsem-handoff", "per_vma")["steps"] < 2000
    assert summary("khugepaged-collapse", "per_vma")["steps"] < 2000


# =====================================================================
# The teaching scenarios that were already bundled
# =====================================================================


def test_first_fault_anon_vma() -> None:
    s = summary("first-fault-anon-vma", "per_vma")
    assert aborts(s) == {"no_anon_vma": 1}
    assert s["vma_lock"] == {"success": 1, "abort": 1, "retry": 0, "miss": 0}
    rs = rows(run("first-fault-anon-vma", "per_vma"))
    prepare = first(rs, "anon_vma_prepare")
    assert "do_user_addr_fault" in prepare["stack"]
    assert first(rs, "fault:vma_lock_success")["i"] > prepare["i"]


def test_file_backed_fault() -> None:
    s = summary("file-backed-fault", "per_vma")
    assert aborts(s) == {"not_anonymous": 8}
    assert s["vma_lock"]["success"] == 8
    assert s["faults"]["via_mmap_lock"] == 8


def test_swap_retry() -> None:
    s = summary("swap-retry", "per_vma")
    assert s["vma_lock"]["retry"] == 4
    rs = rows(run("swap-retry", "per_vma"))
    assert len(find(rs, "do_swap_page:retry_vma_lock")) == 4
    assert len(find(rs, "do_swap_page:swap_in")) == 4
    # mmap_lock mode: the swap-ins happen directly.
    rs = rows(run("swap-retry", "mmap_lock"))
    assert len(find(rs, "do_swap_page:swap_in")) == 4
    assert not find(rs, "do_swap_page:retry_vma_lock")


def test_madvise_pageout_retry() -> None:
    # madvise_cold_or_pageout_pte_range -> reclaim_pages leaves 4 swap entries under
    # mmap_read_lock; 6.4.0 do_swap_page returns VM_FAULT_RETRY under the VMA lock.
    s = summary("madvise-pageout-retry", "per_vma")
    assert s["vma_lock"] == {"success": 20, "abort": 0, "retry": 4, "miss": 0}
    assert s["faults"]["via_mmap_lock"] == 4
    assert s["mmap_lock"]["write_acquired"] == 0
    rs = rows(run("madvise-pageout-retry", "per_vma"))
    (reclaim,) = find(rs, "reclaim_pages")
    assert reclaim["b"] == 4
    retries = find(rs, "do_swap_page:retry_vma_lock")
    assert [r["b"] for r in retries] == [0, 1, 2, 3]
    assert all(r["i"] > reclaim["i"] for r in retries)
    assert len(find(rs, "do_swap_page:swap_in")) == 4
    # The reader's faults on `other` run under its VMA lock during the madvise.
    lock = first(rs, "syscall:madvise:pageout")
    unlock = next(r for r in rs if r["ev"] == "mmap_read_unlock" and r["i"] > lock["i"])
    during = [
        r
        for r in rs
        if r["who"] == "reader"
        and lock["i"] < r["i"] < unlock["i"]
        and r["ev"] == "fault:vma_lock_success"
    ]
    assert during
    # mmap_lock mode: no retry, the swap-ins happen at once.
    rs = rows(run("madvise-pageout-retry", "mmap_lock"))
    assert len(find(rs, "do_swap_page:swap_in")) == 4
    assert not find(rs, "do_swap_page:retry_vma_lock")


def test_fault_vs_munmap() -> None:
    s = summary("fault-vs-munmap", "per_vma")
    assert s["abort_reasons"]["no_vma"] > 0
    assert s["faults"]["sigsegv"] > 0
    assert s["faults"]["via_vma_lock"] > 0
    assert s["rcu"]["vmas_freed"] == 1


def test_hold_write_other_vma() -> None:
    pv = {t["name"]: t for t in summary("hold-write-other-vma", "per_vma")["threads"]}
    ml = {t["name"]: t for t in summary("hold-write-other-vma", "mmap_lock")["threads"]}
    for name in ("T1", "T2"):
        assert pv[name]["blocked_ns"] == 0
        assert pv[name]["done_ns"] < 50_000
        assert ml[name]["done_ns"] > 50_000
    assert summary("hold-write-other-vma", "per_vma")["vma_lock"]["success"] == 32


def test_mprotect_vs_fault() -> None:
    s = summary("mprotect-vs-fault", "per_vma")
    a = aborts(s)
    assert set(a) <= {"vma_locked", "trylock_failed"}
    assert a.get("vma_locked", 0) >= 1
    assert s["faults"]["sigsegv"] == 0
    assert s["mmap_lock"]["write_acquired"] == 8


# =====================================================================
# Mechanisms
# =====================================================================


def test_uffd_armed() -> None:
    s = summary("uffd-armed", "per_vma")
    assert aborts(s) == {"uffd_armed": 1}
    assert s["vma_lock"]["success"] == 4  # plain's 4 pages
    rs = rows(run("uffd-armed", "per_vma"))
    # vma_start_read succeeded before the uffd check released the lock again.
    armed = first(rs, "lock_vma_under_rcu:uffd_armed", "app")
    assert find(rs, "vma_start_read:locked", "app")[-1]["i"] < armed["i"]
    wait = first(rs, "handle_userfault:wait_monitor", "app")
    resolved = first(rs, "handle_userfault:resolved", "app")
    assert resolved["t"] - wait["t"] >= 50_000
    retry = first(rs, "fault:retry_tried", "app")
    assert retry["i"] > resolved["i"]
    assert find(rs, "handle_pte_fault:spurious", "app")[-1]["i"] > retry["i"]
    # The mapper's mmap ran while the fault slept without mmap_lock.
    unlock = first(rs, "mmap_write_unlock", "mapper")
    assert wait["t"] < unlock["t"] < resolved["t"]
    # mmap_lock mode: the same monitor round trip, without a VMA-lock attempt.
    rs = rows(run("uffd-armed", "mmap_lock"))
    assert first(rs, "handle_userfault:resolved", "app")
    assert not find(rs, "lock_vma_under_rcu:", "app")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_munmap_race_produces_a_miss(seed: int) -> None:
    e = run("munmap-race-miss", "per_vma", seed=seed)
    s = e.summary()
    assert s["invariant_violations"] == []
    assert s["vma_lock"] == {"success": 0, "abort": 1, "retry": 0, "miss": 1}
    assert aborts(s) == {"no_vma": 1}
    assert s["faults"]["sigsegv"] == 1
    rs = rows(e)
    found = first(rs, "mas_walk:found", "faulter")
    detach = first(rs, "vma_mark_detached", "unmapper")
    clear = first(rs, "vma_iter_clear", "unmapper")
    bump = first(rs, "vma_end_write_all", "unmapper")
    locked = first(rs, "vma_start_read:locked", "faulter")
    detached = first(rs, "lock_vma_under_rcu:detached", "faulter")
    miss = first(rs, "lock_vma_under_rcu:miss_retry", "faulter")
    abort = first(rs, "lock_vma_under_rcu:abort:no_vma", "faulter")
    # walk -> detach -> clear -> epoch bump -> read lock succeeds -> detached -> MISS.
    assert found["i"] < detach["i"] < clear["i"] < bump["i"] < locked["i"]
    assert locked["i"] < detached["i"] < miss["i"] < abort["i"]
    # The retry reused the stale maple state: it walked again without the fault
    # re-entering lock_vma_under_rcu (no second rcu_read_lock in between).
    between = [r for r in rs if miss["i"] < r["i"] < abort["i"] and r["who"] == "faulter"]
    assert [r["ev"] for r in between if r["ev"].startswith("mas_walk:")]
    assert not [r for r in between if r["ev"] == "lock_vma_under_rcu:rcu_read_lock"]
    # It started from the cached leaf, which the clear updated in place (no dead node).
    assert find(rs, "mas_walk:found", "faulter")[-1]["a"] == found["a"]
    assert not find(rs, "mas_walk:dead_node", "faulter")
    assert first(rs, "fault:bad_area_sigsegv", "faulter")["i"] > abort["i"]


def test_munmap_race_without_the_cost_knob_has_no_miss() -> None:
    """The knob is what opens the window: at the default walk cost there is no MISS."""
    text = (SCENARIOS / "munmap-race-miss.yaml").read_text()
    text = text.replace("costs:\n  maple_level: 1000\n", "")
    sc = load_scenario_text(text, "munmap-race-miss-nocost.yaml")
    assert sc.costs == {}
    s = Engine(sc, mode="per_vma").run().summary()
    assert s["vma_lock"]["miss"] == 0
    assert s["invariant_violations"] == []


def test_split_bounds_recheck() -> None:
    s = summary("split-bounds-recheck", "per_vma")
    assert aborts(s) == {"out_of_range": 1}
    assert s["vma_lock"]["success"] == 1
    assert s["faults"]["via_mmap_lock"] == 1
    rs = rows(run("split-bounds-recheck", "per_vma"))
    found = first(rs, "mas_walk:found", "faulter")
    complete = first(rs, "vma_complete", "splitter")
    unlock = first(rs, "mmap_write_unlock", "splitter")
    locked = first(rs, "vma_start_read:locked", "faulter")
    oor = first(rs, "lock_vma_under_rcu:out_of_range", "faulter")
    assert found["i"] < complete["i"] < unlock["i"] < locked["i"] < oor["i"]
    assert oor["a"] == locked["a"]  # the VMA it locked is the one out of range
    # The fallback handled the fault in the new VMA (the head split off).
    fv = find(rs, "find_vma", "faulter")[0]
    assert fv["a"] != oor["a"]
    # The second fault found the new VMA directly.
    assert find(rs, "fault:vma_lock_success", "faulter")[0]["a"] == fv["a"]


def test_partial_mprotect_merge_moves_the_boundary() -> None:
    # mm/mmap.c vma_merge case 5 (prev = code, curr = buf, end < buf's end):
    # vma_prepare locks vma (code) then adj_next (buf); no __split_vma.
    e = run("partial-mprotect-merge", "per_vma")
    rs = rows(e)
    mm = e.k.mm
    code, buf = (v for v in mm.live_vmas())
    assert (code.name, buf.name) == ("code", "buf")
    assert code.vm_end == buf.vm_start == 0x7F0000000000 + 10 * 4096  # 2 pages moved
    assert buf.vm_end == 0x7F0000000000 + 16 * 4096
    assert not find(rs, "__split_vma:vm_area_dup")
    (merge,) = find(rs, "vma_merge", "jit")
    assert merge["a"] == code.vid and merge["b"] == 2
    complete = first(rs, "vma_complete", "jit")
    locked = [
        r["a"]
        for r in find(rs, "vma_start_write:seq_set", "jit")
        if merge["i"] < r["i"] < complete["i"]
    ]
    assert locked == [code.vid, buf.vid]
    # find_mergeable_anon_vma gave buf code's anon_vma, so the merge was allowed.
    assert code.anon_vma == buf.anon_vma is not None
    assert first(rs, "lock_vma_under_rcu:abort:no_anon_vma", "runner")["a"] == buf.vid
    # Both keep VM_ACCOUNT (mprotect never clears it); code is now rx.
    assert "account" in M.flags_text(code.vm_flags) and "account" in M.flags_text(buf.vm_flags)
    assert M.flags_text(code.vm_flags).startswith("r-xp")
    # runner's fault on code while it was write-locked fell back to mmap_lock.
    s = summary("partial-mprotect-merge", "per_vma")
    assert s["faults"]["via_mmap_lock"] >= 2 and s["faults"]["sigsegv"] == 0


def test_write_locked_vma() -> None:
    s = summary("write-locked-vma", "per_vma")
    assert aborts(s) == {"vma_locked": 1}
    assert s["vma_lock"]["success"] == 2
    assert s["mm_lock_seq"] == 1
    rs = rows(run("write-locked-vma", "per_vma"))
    seq_set = first(rs, "vma_start_write:seq_set", "T0")
    seq_locked = first(rs, "vma_start_read:seq_locked", "T1")
    assert seq_locked["a"] == seq_set["a"] and seq_locked["b"] == seq_set["b"]
    # The first check failed without touching the rwsem: no trylock by T1 before it.
    assert not [r for r in find(rs, "vma_start_read:trylock_ok", "T1") if r["i"] < seq_locked["i"]]
    unlock = first(rs, "mmap_write_unlock", "T0")
    bump = first(rs, "vma_end_write_all", "T0")
    assert bump["i"] < unlock["i"]
    assert first(rs, "fault:vma_lock_success", "T2")["i"] < bump["i"]
    assert first(rs, "down_read:granted", "T1")["i"] > unlock["i"]
    assert first(rs, "fault:vma_lock_success", "T1")["i"] > unlock["i"]


def test_start_write_waits_for_the_reader() -> None:
    s = summary("start-write-waits-reader", "per_vma")
    assert aborts(s) == {"trylock_failed": 1}
    assert s["vma_lock"]["success"] == 2
    rs = rows(run("start-write-waits-reader", "per_vma"))
    vid = first(rs, "vma_start_read:locked", "faulter")["a"]
    spin = first(rs, "down_write:spin", "tuner")
    assert spin["a"] == vid  # spinning on the VMA's rwsem, not on mmap_lock
    early = first(rs, "vma_start_read:trylock_ok", "early")
    queued = next(r for r in find(rs, "down_write:queued", "tuner") if r["a"] == vid)
    late = first(rs, "vma_start_read:trylock_failed", "late")
    got = next(r for r in find(rs, "down_write:acquired_after_wait", "tuner") if r["a"] == vid)
    assert spin["i"] < early["i"] < queued["i"] < late["i"] < got["i"]
    # The writer got the VMA lock only after both readers' vma_end_read.
    ends = [r for r in find(rs, "vma_end_read:up_read") if r["who"] in ("faulter", "early")]
    assert len(ends) == 2 and max(r["i"] for r in ends) < got["i"]
    # late waited in mmap_read_lock for the whole madvise.
    assert first(rs, "down_read:queued", "late")["i"] > late["i"]
    assert (
        first(rs, "down_read:granted", "late")["i"] > first(rs, "mmap_write_unlock", "tuner")["i"]
    )


def test_mmu_notifier_register_locks_every_vma() -> None:
    s = summary("mmu-notifier-register", "per_vma")
    assert s["mm_lock_seq"] == 2  # mm_drop_all_locks + mmap_write_unlock
    assert set(aborts(s)) == {"vma_locked"}
    rs = rows(run("mmu-notifier-register", "per_vma"))
    locked = {r["a"] for r in find(rs, "vma_start_write:seq_set", "kvm")}
    assert len(locked) == len(scenario("mmu-notifier-register").vmas) == 4
    take = first(rs, "mm_take_all_locks", "kvm")
    drop = first(rs, "mm_drop_all_locks", "kvm")
    bumps = find(rs, "vma_end_write_all", "kvm")
    unlock = first(rs, "mmap_write_unlock", "kvm")
    assert max(r["i"] for r in find(rs, "vma_start_write:seq_set", "kvm")) < take["i"]
    assert len(bumps) == 2 and drop["i"] < bumps[0]["i"] < bumps[1]["i"] < unlock["i"]
    first_lock = first(rs, "vma_start_write:seq_set", "kvm")
    for r in find(rs, "lock_vma_under_rcu:abort:vma_locked"):
        assert first_lock["i"] < r["i"] < unlock["i"]
    # Faults before and after the registration use the VMA lock.
    assert s["vma_lock"]["success"] == 24 - s["vma_lock"]["abort"]


def test_khugepaged_collapse_stalls_only_its_vma() -> None:
    s = summary("khugepaged-collapse", "per_vma")
    assert aborts(s) == {"vma_locked": 1}
    rs = rows(run("khugepaged-collapse", "per_vma"))
    collapse = first(rs, "collapse_huge_page:pmdp_collapse_flush", "khugepaged")
    unlock = first(rs, "mmap_write_unlock", "khugepaged")
    abort = first(rs, "lock_vma_under_rcu:abort:vma_locked", "app")
    assert collapse["i"] < abort["i"] < unlock["i"]
    # The worker's arena faults during the collapse all used the VMA lock.
    during = [
        r
        for r in find(rs, "fault:vma_lock_success", "worker")
        if collapse["t"] < r["t"] < unlock["t"]
    ]
    assert len(during) > 30
    assert not find(rs, "lock_vma_under_rcu:abort:", "worker")
    assert done("khugepaged-collapse", "per_vma", "worker") < unlock["t"]
    assert done("khugepaged-collapse", "mmap_lock", "worker") > unlock["t"]


def test_stack_growth_with_the_stackrot_fix() -> None:
    s = summary("stack-growth", "per_vma")
    assert aborts(s) == {"no_vma": 4}
    assert s["faults"]["sigsegv"] == 0
    rs = rows(run("stack-growth", "per_vma"))
    grows = find(rs, "expand_stack", "main")
    assert len(grows) == 4 and all(r["b"] == 1 for r in grows)
    # Each expansion: write lock, vma_start_write on the stack, expand, downgrade.
    for g in grows:
        before = [r for r in rs if r["who"] == "main" and r["i"] < g["i"]]
        assert before[-1]["ev"] == "vma_start_write:seq_set" or any(
            r["ev"] == "vma_start_write:seq_set" for r in before[-4:]
        )
    assert len(find(rs, "mmap_write_downgrade", "main")) == 4
    # munmap of "below" did not downgrade: the VMA above it grows down.
    munmap_unlock = first(rs, "mmap_write_unlock", "main")
    assert munmap_unlock["i"] < grows[0]["i"]
    # The last read of the grown page is a VMA-lock success; heapw never waits.
    assert find(rs, "fault:vma_lock_success", "main")[-1]["i"] > grows[-1]["i"]
    assert all(t["blocked_ns"] == 0 for t in threads("stack-growth", "per_vma", "heapw"))


@pytest.mark.parametrize("mode", MODES)
def test_stack_growth_without_the_fix_is_the_6_4_0_hole(mode: str) -> None:
    e = run("stack-growth", mode, patches=(("fix_stack_expand_write_lock", False),))
    v = e.summary()["invariant_violations"]
    if mode == "per_vma":
        assert len(v) == 4 and {x["invariant"] for x in v} == {3}
        assert all("stack expansion" in x["message"] for x in v)
    else:
        assert v == []  # no VMA locks, nothing to violate
    rs = rows(e)
    assert len(find(rs, "expand_stack", "main")) == 4
    assert not find(rs, "mmap_write_downgrade", "main")  # under the read lock


@pytest.mark.parametrize("mode", MODES)
def test_stack_guard_gap(mode: str) -> None:
    # mm/mmap.c expand_downwards (6.4): refuse a new start less than
    # stack_guard_gap (256 pages) above an accessible VMA that does not grow
    # down; anon_vma_prepare before growing.  The stack is 300 pages above lib.
    s = summary("stack-guard-gap", mode)
    assert s["faults"]["sigsegv"] == 1
    rs = rows(run("stack-guard-gap", mode))
    grows = find(rs, "expand_stack", "main")
    # Room page 299 (1 page), then room page 100 after lib became PROT_NONE (199).
    assert [g["b"] for g in grows] == [1, 199]
    (refused,) = find(rs, "expand_stack:guard_gap", "main")
    assert grows[0]["i"] < refused["i"] < grows[1]["i"]
    assert first(rs, "fault:bad_area_sigsegv", "main")["i"] > refused["i"]
    mprotect = first(rs, "vm_flags_reset", "main")
    assert refused["i"] < mprotect["i"] < grows[1]["i"]
    assert mprotect["a"] != grows[0]["a"]  # lib, not the stack
    # The stack had no anon_vma: expand_downwards prepares it before growing.
    (prep,) = find(rs, "anon_vma_prepare:expand_stack", "main")
    assert prep["i"] < grows[0]["i"] and prep["a"] == grows[0]["a"]
    # munmap of room kept the write lock: the next VMA (the stack) grows down.
    munmap_end = first(rs, "mmap_write_unlock", "main")
    assert munmap_end["i"] < prep["i"]
    assert not [r for r in rs if r["ev"] == "mmap_write_downgrade" and r["i"] < munmap_end["i"]]
    if mode == "per_vma":
        # The write to the stack after the first growth: a VMA-lock success.
        assert aborts(s) == {"no_vma": 3}
        assert s["faults"]["via_vma_lock"] == 1
        ok = first(rs, "fault:vma_lock_success", "main")
        assert grows[0]["i"] < ok["i"] < refused["i"]


def test_rcu_dead_node_restarts_the_walk() -> None:
    e = run("rcu-dead-node", "per_vma")
    s = e.summary()
    assert s["vma_lock"]["success"] == 1
    rs = rows(e)
    walk = [r for r in rs if r["who"] == "reader" and r["ev"].startswith("mas_walk:")]
    kinds = [r["ev"].split(":", 1)[1] for r in walk]
    assert kinds == ["load_root", "descend", "dead_node", "load_root", "descend", "found"]
    clear = first(rs, "vma_iter_clear", "writer")
    assert walk[1]["i"] < clear["i"] < walk[2]["i"]
    assert walk[5]["a"] != walk[2]["a"]  # found in the new leaf, not the dead one
    assert walk[0]["a"] == walk[3]["a"]  # the root itself was updated in place
    # The retired node waits for the reader although the 100 ns grace period is over.
    cb = first(rs, "rcu:callbacks")
    leave = first(rs, "lock_vma_under_rcu:locked", "reader")
    assert cb["i"] > leave["i"]
    assert cb["t"] - clear["t"] > 100 * 10
    assert cb["b"] >= 1  # maple nodes freed
    assert s["rcu"]["nodes_freed"] >= 1 and s["rcu"]["vmas_freed"] == 1


ARCH_SIGSEGV = {"x86": 2, "arm64": 4, "powerpc": 4, "s390": 2}
HANDLER = {
    "x86": "do_user_addr_fault",
    "arm64": "do_page_fault",
    "powerpc": "___do_page_fault",
    "s390": "do_exception",
}


@pytest.mark.parametrize("arch", ARCHES)
def test_arch_access_checks(arch: str) -> None:
    for mode in MODES:
        s = summary("arch-access-checks", mode, arch)
        assert s["invariant_violations"] == []
        assert s["faults"]["sigsegv"] == ARCH_SIGSEGV[arch], (arch, mode)
        assert s["faults"]["via_vma_lock"] + s["faults"]["via_mmap_lock"] == 6 - ARCH_SIGSEGV[arch]
    s = summary("arch-access-checks", "per_vma", arch)
    # A failed access check on the VMA path counts nothing: no ABORT, no SUCCESS.
    assert s["vma_lock"] == {"success": 6 - ARCH_SIGSEGV[arch], "abort": 0, "retry": 0, "miss": 0}
    rs = rows(run("arch-access-checks", "per_vma", arch))
    assert len(find(rs, "fault:vma_access_error")) == ARCH_SIGSEGV[arch]
    assert all(HANDLER[arch] in r["stack"] for r in find(rs, "fault:entry"))
    # s390 takes mmap_read_lock directly; the others try mmap_read_trylock first.
    trylocks = find(rs, "fault:mmap_read_trylock_ok")
    assert len(trylocks) == (0 if arch == "s390" else ARCH_SIGSEGV[arch])


def test_arch_differences_are_the_instruction_fetches() -> None:
    def outcomes(arch: str) -> list[str]:
        rs = rows(run("arch-access-checks", "per_vma", arch))
        out = []
        for r in rs:
            if r["ev"] in ("fault:vma_lock_success", "fault:bad_area_sigsegv"):
                out.append("ok" if r["ev"] == "fault:vma_lock_success" else "SEGV")
        return out

    # exec rodata, exec data, read code, write rodata, read guard, write data
    assert outcomes("x86") == outcomes("s390") == ["ok", "ok", "ok", "SEGV", "SEGV", "ok"]
    assert outcomes("arm64") == outcomes("powerpc") == ["SEGV", "SEGV", "ok", "SEGV", "SEGV", "ok"]


def test_rwsem_writer_starvation_is_prevented() -> None:
    e = run("rwsem-writer-starvation", "per_vma")
    rs = rows(e)
    spin = first(rs, "down_write:spin", "mapper")
    queued = first(rs, "down_write:queued", "mapper")
    got = first(rs, "down_write:acquired_after_wait", "mapper")
    # While the writer only spins, readers still join (no waiter is queued).
    joined = [
        r
        for r in find(rs, "down_read:acquired")
        if spin["i"] < r["i"] < queued["i"] and r["who"].startswith("scan")
    ]
    assert joined
    # Once it is queued, a reader queues behind it although the lock is only read-held.
    behind = [r for r in find(rs, "down_read:queued") if queued["i"] < r["i"] < got["i"]]
    assert behind
    assert not [r for r in find(rs, "down_read:acquired") if queued["i"] < r["i"] < got["i"]]
    assert e.k.mm.mmap_lock.stats["read_steal"] == 0
    waited = got["t"] - spin["t"]
    scans_end = max(t["done_ns"] for t in threads("rwsem-writer-starvation", "per_vma", "scan"))
    assert waited < 40_000 < scans_end - spin["t"]
    assert first(rs, "down_read:granted")["i"] > first(rs, "mmap_write_unlock", "mapper")["i"]


def test_rwsem_reader_stealing() -> None:
    e = run("rwsem-reader-stealing", "per_vma")
    rs = rows(e)
    stats = e.k.mm.mmap_lock.stats
    assert stats["read_steal"] >= 3 and stats["handoffs"] == 0
    queued = first(rs, "down_write:queued", "mapper")
    got = first(rs, "down_write:acquired_after_wait", "mapper")
    fails = find(rs, "down_write:retry_failed", "mapper")
    assert len(fails) >= 3 and all(r["b"] == 0 for r in fails)
    # Each failed retry follows a read lock taken after the mapper was woken.
    for f in fails:
        unlocks = [r for r in find(rs, "mmap_read_unlock") if r["i"] < f["i"]]
        stolen = [r for r in find(rs, "down_read:acquired") if unlocks[-1]["i"] < r["i"] < f["i"]]
        assert stolen, f
    assert first(rs, "down_read:queued")["i"] > queued["i"]
    # The mapper gets the lock only after the stealing reader's last read.
    assert got["t"] > done("rwsem-reader-stealing", "per_vma", "scan0") - 5_000
    assert got["t"] - queued["t"] < 4_000_000


def test_rwsem_handoff() -> None:
    e = run("rwsem-handoff", "per_vma")
    rs = rows(e)
    assert e.k.mm.mmap_lock.stats["handoffs"] == 1
    queued = first(rs, "down_write:queued", "mapper")
    fails = find(rs, "down_write:retry_failed", "mapper")
    handoff = [r for r in fails if r["b"] == 1]
    assert len(handoff) == 1
    assert all(r["b"] == 0 for r in fails[: fails.index(handoff[0])])
    assert handoff[0]["t"] - queued["t"] >= 4_000_000
    got = first(rs, "down_write:acquired_after_wait", "mapper")
    # After the handoff bit, the next reader queues instead of stealing.
    after = [
        r for r in rs if handoff[0]["i"] < r["i"] < got["i"] and r["ev"].startswith("down_read:")
    ]
    assert after and all(r["ev"] == "down_read:queued" for r in after)
    assert got["t"] - handoff[0]["t"] < 400_000  # one read later, not when the readers stop
    granted = [r for r in find(rs, "down_read:granted") if r["i"] > got["i"]]
    assert {r["who"] for r in granted[:2]} == {"scan0", "scan1"}


# =====================================================================
# Benchmarks and use cases
# =====================================================================


def test_pft_single_vma() -> None:
    pv, ml = summary("pft-single-vma", "per_vma"), summary("pft-single-vma", "mmap_lock")
    for s in (pv, ml):
        assert s["faults"]["total"] == 1600 and s["faults"]["sigsegv"] == 0
    a = aborts(pv)
    assert set(a) == {"no_anon_vma"} and 1 <= a["no_anon_vma"] <= 16
    assert pv["vma_lock"]["success"] == 1600 - a["no_anon_vma"]
    assert len(pv["vmas"]) == 1  # one VMA shared by every thread
    assert gain("pft-single-vma") > 0


def test_pft_per_thread_vma() -> None:
    pv = summary("pft-per-thread-vma", "per_vma")
    assert aborts(pv) == {"no_anon_vma": 16}  # each region's first fault
    assert pv["vma_lock"]["success"] == 1600 - 16
    assert len(pv["vmas"]) == 16
    # The per-thread-VMA gain is far larger than the shared-VMA one (calibration §5.1-2).
    assert gain("pft-per-thread-vma") > 0.25
    assert gain("pft-per-thread-vma") > 2 * gain("pft-single-vma")


@pytest.mark.xfail(
    strict=True,
    reason="model gain too large: pft-single-vma at 16 threads measured +49% faults/s "
    "(per_vma 6.22 M/s vs mmap_lock 4.17 M/s); Punit Agrawal's pvl-v2+opt is +5.9% at 12 "
    "and +7.7% at 21 threads (calibration §1b). The model's crossover is at ~5 threads "
    "(sweep: -3.6% at 4, +25% at 7, +49% at 12..48) instead of 10-20.",
)
def test_pft_single_vma_gain_matches_published() -> None:
    assert 0.0 <= gain("pft-single-vma") <= 0.20


@pytest.mark.xfail(
    strict=True,
    reason="model gain too large: pft-per-thread-vma at 16 threads measured about +190% "
    "faults/s (12.2 M/s vs 4.17 M/s); published +33% at 12 and +47% at 21 threads "
    "(calibration §1c). The model's per_vma curve also plateaus at ~12.2 M/s from 21 "
    "threads (x86's prefetchw of mmap_lock costs a full line transfer per fault), where "
    "the published curve keeps rising to 18.7 M/s at 128.",
)
def test_pft_per_thread_vma_gain_matches_published() -> None:
    assert 0.2 <= gain("pft-per-thread-vma") <= 0.8


def sweep_variant(name: str, threads: int) -> Scenario:
    from vmaviz.sweep.core import substitute

    path = SWEEP / f"{name}.yaml"
    text = substitute(path.read_text(), {"threads": str(threads)}, str(path))
    return load_scenario_text(text, str(path))


@pytest.mark.parametrize("name", ["pft-single-vma", "pft-per-thread-vma"])
def test_sweep_templates_substitute_and_match_the_fixed_files(name: str) -> None:
    sc = sweep_variant(name, 16)
    fixed = scenario(name)
    assert sc.name == fixed.name and sc.kernel.cpus == 16 and len(sc.threads) == 16
    assert [t.ops[0].args for t in sc.threads] == [t.ops[0].args for t in fixed.threads]
    assert sc.question and sc.look_at and "16 threads" in sc.description


@functools.cache
def sweep_gain(name: str, threads: int) -> float:
    sc = sweep_variant(name, threads)
    fps = {}
    for mode in MODES:
        s = Engine(sc, mode=mode).run().summary()
        assert s["invariant_violations"] == []
        assert s["faults"]["total"] == 100 * threads
        fps[mode] = faults_per_sec(s)
    return fps["per_vma"] / fps["mmap_lock"] - 1


def test_pft_sweep_small_thread_counts_follow_the_published_shape() -> None:
    # 1 thread: per-VMA locks cost a little (published -0.5% / -2%).
    assert -0.06 < sweep_gain("pft-single-vma", 1) <= 0.0
    assert -0.06 < sweep_gain("pft-per-thread-vma", 1) <= 0.0
    # 4 threads: one shared VMA loses (published -8%), per-thread VMAs win (+7.6%).
    assert sweep_gain("pft-single-vma", 4) < 0
    assert sweep_gain("pft-per-thread-vma", 4) > 0


def per_thread_time(stem: str, mode: str, prefix: str = "t") -> float:
    return statistics.fmean(t["done_ns"] for t in threads(stem, mode, prefix))


def test_spf_test() -> None:
    pv, ml = summary("spf-test", "per_vma"), summary("spf-test", "mmap_lock")
    for s in (pv, ml):
        assert s["faults"]["total"] == 2000
        assert s["mmap_lock"]["write_acquired"] == 200
    # Merged mappings: the mmaps write-lock VMAs others fault on.
    assert aborts(pv).get("vma_locked", 0) > 50
    assert per_thread_time("spf-test", "per_vma") < 0.9 * per_thread_time("spf-test", "mmap_lock")


@pytest.mark.xfail(
    strict=True,
    reason="model gain too small: spf_test 100/2/10 average per-thread time measured "
    "1.03 ms per_vma vs 1.35 ms mmap_lock (1.31x); SPF's published gain is 5.8x "
    "(1.89 ms -> 0.33 ms) and per-VMA locks were said to give ~75% of SPF's benefit "
    "(>= 2.6x). In the model most mappings merge into one VMA that every mmap "
    "write-locks (about 200 vma_locked aborts).",
)
def test_spf_test_gain_matches_published() -> None:
    assert per_thread_time("spf-test", "mmap_lock") >= 2 * per_thread_time("spf-test", "per_vma")


def test_page_fault1_threads() -> None:
    pv, ml = summary("page-fault1-threads", "per_vma"), summary("page-fault1-threads", "mmap_lock")
    for s in (pv, ml):
        assert s["faults"]["total"] == 8 * 4 * 128
        assert s["mmap_lock"]["write_acquired"] == 8 * 4 * 2
        assert s["rcu"]["vmas_freed"] >= 1
    assert pv["faults"]["via_vma_lock"] > 0.95 * pv["faults"]["total"]
    # iterations/s: the classic per-VMA-lock win (SPF published +36%).
    assert ml["sim_ns"] > 1.3 * pv["sim_ns"]


def mapper_latencies(stem: str, mode: str) -> dict[str, list[int]]:
    """Per-call latency of the mapper's munmap and mmap calls (first to last step)."""
    e = run(stem, mode)
    t = e.trace
    t.flush()
    tid = next(th.tid for th in e.k.threads if th.name == "mapper")
    spans: dict[int, list[int]] = {}
    kinds: dict[int, str] = {}
    for i in range(len(t)):
        if t.tid[i] != tid:
            continue
        span = spans.setdefault(t.op[i], [t.time[i], t.time[i]])
        span[1] = t.time[i]
        code = t.codes[t.code[i]]
        if code.startswith("syscall:"):
            kinds[t.op[i]] = code.split(":")[1]
    out: dict[str, list[int]] = {"munmap": [], "mmap": []}
    for op, (a, b) in spans.items():
        if kinds.get(op) in out:
            out[kinds[op]].append(b - a)
    return out


def test_proc_maps_vs_mapper() -> None:
    lat = {m: mapper_latencies("proc-maps-vs-mapper", m) for m in MODES}
    for m in MODES:
        assert len(lat[m]["munmap"]) == len(lat[m]["mmap"]) == 40
        calls = lat[m]["munmap"] + lat[m]["mmap"]
        # Bounded by about one /proc/pid/maps read (31 lines x 500 ns) plus the spin.
        assert max(calls) < 50_000
        assert statistics.median(calls) < 20_000
    # 6.4: maps readers, mmap and munmap all use mmap_lock; the modes agree.
    med = {m: statistics.median(lat[m]["munmap"] + lat[m]["mmap"]) for m in MODES}
    assert abs(med["per_vma"] / med["mmap_lock"] - 1) < 0.1
    pv = summary("proc-maps-vs-mapper", "per_vma")
    assert pv["mmap_lock"]["write_acquired"] == 80 and pv["mmap_lock"]["read_acquired"] == 80
    assert pv["mm_lock_seq"] >= 80
    assert len(pv["vmas"]) == 31  # the range is whole again at the end


def test_fork_stress() -> None:
    pv = summary("fork-stress", "per_vma")
    # With the fix, faults on a VMA being copied abort and wait; no race.
    assert aborts(pv).get("vma_locked", 0) >= 1
    rs = rows(run("fork-stress", "per_vma"))
    assert len(find(rs, "dup_mmap:vm_area_dup", "forker")) == 10 * 100
    assert len({r["a"] for r in find(rs, "vma_start_write:seq_set", "forker")}) == 100
    # Fork pays for locking every VMA.
    assert done("fork-stress", "per_vma", "forker") > done("fork-stress", "mmap_lock", "forker")


def test_fork_stress_without_the_fix_is_race_r_f1() -> None:
    e = run("fork-stress", "per_vma", patches=(("fix_fork_lock_parent", False),))
    v = e.summary()["invariant_violations"]
    assert v and {x["invariant"] for x in v} == {4}
    assert all("R-F1" in x["message"] for x in v)
    ml = run("fork-stress", "mmap_lock", patches=(("fix_fork_lock_parent", False),))
    assert ml.summary()["invariant_violations"] == []


@pytest.mark.xfail(
    strict=True,
    reason="model cost too small: with fix_fork_lock_parent the fork loop is measured "
    "+1.7% slower than under mmap_lock only (forker 2.24 ms vs 2.20 ms); FORKFIX reports "
    "about +7% on its fork stress test (calibration §1d, §5.7). vma_start_write costs "
    "~45 ns against 2 us of copy_vma_fork per VMA in the cost table.",
)
def test_fork_stress_cost_matches_published() -> None:
    r = done("fork-stress", "per_vma", "forker") / done("fork-stress", "mmap_lock", "forker")
    assert 1.04 <= r <= 1.12


def test_kernbench_neutral() -> None:
    pv, ml = summary("kernbench-neutral", "per_vma"), summary("kernbench-neutral", "mmap_lock")
    assert abs(pv["sim_ns"] / ml["sim_ns"] - 1) <= 0.02
    assert set(aborts(pv)) == {"not_anonymous", "no_anon_vma"}
    assert aborts(pv)["no_anon_vma"] == 20  # each new obstack's first fault
    assert pv["mmap_lock"]["read_wait_ns"] == ml["mmap_lock"]["read_wait_ns"] == 0


def launch_ns(mode: str) -> int:
    return done("android-app-launch", mode, "main")


def test_android_app_launch() -> None:
    pv, ml = summary("android-app-launch", "per_vma"), summary("android-app-launch", "mmap_lock")
    for s in (pv, ml):
        assert s["mmap_lock"]["write_acquired"] == 100 * 5
        assert s["faults"]["sigsegv"] == 0
    assert launch_ns("per_vma") < launch_ns("mmap_lock")
    # The faults no longer wait for the thread-setup writers, except main's odex
    # (file-backed) faults, which take mmap_lock in 6.4 in both modes.
    assert pv["mmap_lock"]["read_wait_ns"] < ml["mmap_lock"]["read_wait_ns"] / 5
    assert pv["abort_reasons"]["not_anonymous"] == 150 * 8
    # Every anonymous fault takes the VMA lock except the first write of a VMA that
    # has no anon_vma yet (mm/memory.c lock_vma_under_rcu: "if (vma_is_anonymous(vma)
    # && !vma->anon_vma) goto inval"): at most each new thread's stack and ART table
    # (the stack is MAP_NORESERVE, so neither finds a compatible neighbour's anon_vma).
    anon = pv["faults"]["total"] - pv["abort_reasons"]["not_anonymous"]
    first_writes = pv["abort_reasons"]["no_anon_vma"]
    assert 0 < first_writes <= 2 * 100
    assert pv["faults"]["via_vma_lock"] == anon - first_writes


def test_android_app_launch_gain_matches_published() -> None:
    # Published: "up to 20%" (PVL), 5-28% for thread-heavy apps (SPF). The scenario's
    # comments give the assumptions this depends on and how the gain moves with them.
    assert 0.05 <= 1 - launch_ns("per_vma") / launch_ns("mmap_lock") <= 0.30


def spawn_latencies(mode: str) -> list[int]:
    return sorted(t["done_ns"] - 20_000 for t in threads("fibers-spawn-burst", mode, "fiber"))


def test_fibers_spawn_burst() -> None:
    for mode in MODES:
        s = summary("fibers-spawn-burst", mode)
        assert s["mmap_lock"]["write_acquired"] == 48 * 4
    # The serving threads are no longer held up by the burst.
    serve = {m: max(t["done_ns"] for t in threads("fibers-spawn-burst", m, "serve")) for m in MODES}
    assert serve["per_vma"] < 0.8 * serve["mmap_lock"]
    assert (
        summary("fibers-spawn-burst", "per_vma")["sim_ns"]
        < summary("fibers-spawn-burst", "mmap_lock")["sim_ns"]
    )
    # All 48 threads become available within about a millisecond in both modes.
    assert all(max(spawn_latencies(m)) < 1_500_000 for m in MODES)


@pytest.mark.xfail(
    strict=True,
    reason="model: the median spawn latency is longer with per-VMA locks (measured "
    "0.49 ms per_vma vs 0.47 ms mmap_lock; the maximum 0.51 vs 0.88 ms). The burst "
    "saturates mmap_lock with writers in both modes, and the new threads' own faults hit "
    "VMAs that other new threads' mmaps merge into (vma_locked, ~50 aborts). The cover "
    "letter says thread creation 'is no longer a bottleneck' (no number).",
)
def test_fibers_spawn_latency_is_shorter_with_per_vma_locks() -> None:
    assert statistics.median(spawn_latencies("per_vma")) < statistics.median(
        spawn_latencies("mmap_lock")
    )


def receivers_blocked(mode: str) -> float:
    return statistics.fmean(t["blocked_ns"] for t in threads("tcp-zerocopy", mode, "rx"))


def test_tcp_zerocopy_in_6_4() -> None:
    for mode in MODES:
        s = summary("tcp-zerocopy", mode)
        assert s["mmap_lock"]["read_acquired"] == 700
        assert s["mmap_lock"]["write_acquired"] == 100
        assert s["faults"]["total"] == 0
    # 6.4: receive takes mmap_lock for read in both modes; the receivers stall the same.
    assert receivers_blocked("per_vma") > 0
    assert abs(receivers_blocked("per_vma") / receivers_blocked("mmap_lock") - 1) < 0.15
    rs = rows(run("tcp-zerocopy", "per_vma"))
    heap_locks = {r["a"] for r in find(rs, "vma_start_write:seq_set", "tuner")}
    assert len(heap_locks) == 1  # madvise write-locks only the heap


def test_tcp_zerocopy_receivers_do_not_block_with_the_65_receive_path() -> None:
    # calibration §5.6 expects per-VMA-lock receivers not to block on the madvise
    # writer: that is TCP receive under lock_vma_under_rcu (7a7f0946, 6.5), the
    # tcp_zerocopy_vma_lock toggle.  In mmap_lock mode they still block.
    sc = load_scenario(SCENARIOS / "tcp-zerocopy.yaml").with_overrides(
        patches={"tcp_zerocopy_vma_lock": True}
    )
    blocked = {}
    for mode in ("per_vma", "mmap_lock"):
        s = Engine(sc, mode=mode).run().summary()
        blocked[mode] = sum(t["blocked_ns"] for t in s["threads"] if t["name"].startswith("rx"))
        assert s["invariant_violations"] == []
    assert blocked["per_vma"] == 0
    assert blocked["mmap_lock"] > 0


def tcp_mmap_lock_share() -> dict[str, float]:
    """The share of CPU time in mmap_lock lock/unlock per mode (as `bench calibration`)."""
    sc = load_scenario(SCENARIOS / "tcp-zerocopy.yaml").with_overrides(
        patches={"tcp_zerocopy_vma_lock": True}
    )
    return {m: mmap_lock_share(Engine(sc, mode=m).run()) for m in MODES}


def test_tcp_zerocopy_mmap_lock_share_drops_below_a_tenth_of_a_percent() -> None:
    share = tcp_mmap_lock_share()
    assert share["per_vma"] < 0.001
    # Within a factor of 10 of the published 0.5%: the lock pair is a small share.
    assert 0.0005 <= share["mmap_lock"] <= 0.05


@pytest.mark.xfail(
    strict=True,
    reason="model: mmap_lock lock/unlock is 1.16% of CPU time in mmap_lock mode against "
    "the cover letter's ~0.5% (taken as 0.25-1%). The share is about the lock pair's "
    "~0.2 us over the per-RPC work, which no source gives; the scenario uses an "
    "a-priori 20 us (40 us would give 0.5%, but choosing it to hit the target would be "
    "tuning). per_vma: 0.02% (published <0.1%), which passes.",
)
def test_tcp_zerocopy_mmap_lock_share_matches_published() -> None:
    # Cover letter: mmap_read_lock + unlock ~0.5% of cycles -> <0.1%.
    share = tcp_mmap_lock_share()
    assert TCP_SHARE_BAND[0] <= share["mmap_lock"] <= TCP_SHARE_BAND[1]
    assert share["per_vma"] < 0.001


# =====================================================================
# Model gaps found while writing the library
# =====================================================================


SHARED_ANON = """
name: shared-anon
description: a fault on a MAP_SHARED|MAP_ANONYMOUS mapping
kernel: {cpus: 1}
mm:
  vmas:
    - {name: shm, pages: 4, shared: true, anon_vma: true}
threads:
  - name: T0
    ops:
      - fault: {vma: shm, page: 0, access: write}
"""


def test_shared_anonymous_vma_is_not_anonymous() -> None:
    sc = load_scenario_text(SHARED_ANON, "shared-anon.yaml")
    s = Engine(sc, mode="per_vma").run().summary()
    assert s["abort_reasons"]["not_anonymous"] == 1


def test_every_step_records_an_event() -> None:
    empty = []
    for stem in ("write-locked-vma", "fault-vs-munmap", "tcp-zerocopy", "fork-stress"):
        e = run(stem, "per_vma")
        t = e.trace
        t.flush()
        # The engine names a silent step after its function ("<fn>:step"): none here.
        empty += [
            (stem, i)
            for i in range(len(t))
            if t.codes[t.code[i]] in ("", "step") or t.codes[t.code[i]].endswith(":step")
        ]
    assert empty == []
