"""The three patch/fix toggles of reference §12 added for the race explorer.

Each test loads a ``scenarios/races/`` file, forces the racy interleaving with
``Engine.step(tid)`` and checks: toggle off -> the invariant violation at that
interleaving; toggle on (alone and with ``patches: {all: true}``) -> none, on
the same interleaving and on the default schedule.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import PATCHES
from vmaviz.model.sched import DONE
from vmaviz.scenario import Scenario, load_scenario_text

RACES = Path(__file__).resolve().parent.parent / "scenarios" / "races"
#: Steps a forced phase may take before the test gives up (bounds the work).
STEP_LIMIT = 400


def race(stem: str, patches: dict[str, bool]) -> Scenario:
    """The race scenario ``stem`` with ``kernel.patches`` set to ``patches``."""
    doc = yaml.safe_load((RACES / f"{stem}.yaml").read_text())
    doc["kernel"]["patches"] = dict(patches)
    return load_scenario_text(yaml.safe_dump(doc, sort_keys=False))


def last_event(e: Engine) -> str:
    return str(e.trace.row(len(e.trace) - 1)["event"])


def step_until(e: Engine, tid: int, code: str) -> None:
    """Move only ``tid`` until its step emits ``code``."""
    for _ in range(STEP_LIMIT):
        assert tid in e.runnable(), f"T{tid} cannot move before {code}"
        e.step(tid)
        if last_event(e) == code:
            return
    raise AssertionError(f"T{tid} never emitted {code}")


def step_to_end(e: Engine, tid: int) -> None:
    """Move only ``tid`` while it can, until its ops are done."""
    for _ in range(STEP_LIMIT):
        if e.k.threads[tid].state == DONE or tid not in e.runnable():
            return
        e.step(tid)
    raise AssertionError(f"T{tid} did not finish in {STEP_LIMIT} steps")


def finish(e: Engine) -> Engine:
    """The rest of the run under the time-ordered scheduler."""
    e.run(max_steps=20 * STEP_LIMIT)
    assert e.finished
    return e


def invariants(e: Engine) -> list[tuple[int, str]]:
    return [(inv, msg) for _, inv, msg in e.k.violations]


def events(e: Engine, tid: int) -> list[str]:
    return [
        str(r["event"]) for r in (e.trace.row(i) for i in range(len(e.trace))) if r["tid"] == tid
    ]


def on_sets(name: str) -> list[dict[str, bool]]:
    """The toggle alone, and every patch on."""
    return [{name: True}, {"all": True}]


def test_the_three_toggles_and_their_6_4_0_defaults() -> None:
    assert PATCHES["maple_rcu_mode"][0] is True
    assert PATCHES["fix_anon_vma_check_under_lock"][0] is False
    assert PATCHES["fix_dup_anon_vma_lock"][0] is False


# ---------------------------------------------------------------- maple_rcu_mode
# [v3 8/35] 3dd4432549415 "mm: Enable maple tree RCU mode by default": MM_MT_FLAGS
# gains MT_FLAGS_USE_RCU (include/linux/mm_types.h), used by mm_init
# (kernel/fork.c).  Without it lib/maple_tree.c mas_free recycles a replaced
# node at once (mas_push_node) instead of ma_free_rcu.


def maple_race(patches: dict[str, bool]) -> Engine:
    e = Engine(race("maple-rcu-mode", patches))
    # faulter's walk descends from the root: its cursor now names the low leaf.
    step_until(e, 0, "mas_walk:descend")
    # mapper's whole mmap runs: the new VMA splits that leaf.
    step_to_end(e, 1)
    return finish(e)


def test_maple_rcu_mode_off_the_walker_reads_a_freed_leaf() -> None:
    e = maple_race({"maple_rcu_mode": False})
    assert not e.k.mm.mm_mt.in_rcu
    assert invariants(e) == [(7, "T0's RCU walk read a freed maple node")]
    walk = [c for c in events(e, 0) if c.startswith("mas_walk:")]
    assert walk[:3] == ["mas_walk:load_root", "mas_walk:descend", "mas_walk:use_after_free"]


@pytest.mark.parametrize("patches", on_sets("maple_rcu_mode"))
def test_maple_rcu_mode_on_the_walker_sees_a_dead_node_and_restarts(
    patches: dict[str, bool],
) -> None:
    e = maple_race(patches)
    assert e.k.mm.mm_mt.in_rcu
    assert invariants(e) == []
    walk = [c for c in events(e, 0) if c.startswith("mas_walk:")]
    assert walk[:3] == ["mas_walk:load_root", "mas_walk:descend", "mas_walk:dead_node"]
    assert walk[-1] == "mas_walk:found"


@pytest.mark.parametrize("patches", [{}, *on_sets("maple_rcu_mode")])
def test_maple_rcu_mode_default_schedule_is_clean(patches: dict[str, bool]) -> None:
    assert invariants(finish(Engine(race("maple-rcu-mode", patches)))) == []


# ------------------------------------------------- fix_anon_vma_check_under_lock
# 6.4.0 mm/memory.c lock_vma_under_rcu: "if (!vma->anon_vma) goto inval;" comes
# before vma_start_read.  Jann Horn, "mm: lock_vma_under_rcu() must check
# vma->anon_vma under vma lock" (6.5-rc, 6.4.y) moves it after vma_start_read.


def anon_vma_race(patches: dict[str, bool]) -> Engine:
    e = Engine(race("anon-vma-check", patches))
    step_until(e, 0, "lock_vma_under_rcu:anon_vma_ok")
    # mover's mremap(MREMAP_DONTUNMAP) runs to its end: heap's anon_vma is NULL.
    step_to_end(e, 1)
    return finish(e)


def test_anon_vma_check_before_the_lock_returns_an_anon_vma_less_vma() -> None:
    e = anon_vma_race({})
    assert "move_vma:dontunmap" in events(e, 1)
    # The returned VMA, then the anonymous fault that would run __anon_vma_prepare
    # (find_mergeable_anon_vma on unlocked neighbours) under the VMA lock.
    assert invariants(e) == [
        (5, "lock_vma_under_rcu returned heap#1, which 6.4 must refuse"),
        (5, "fault on heap#1 without anon_vma under the VMA lock"),
    ]
    assert "lock_vma_under_rcu:locked" in events(e, 0)


@pytest.mark.parametrize("patches", on_sets("fix_anon_vma_check_under_lock"))
def test_anon_vma_check_under_the_lock_falls_back(patches: dict[str, bool]) -> None:
    e = anon_vma_race(patches)
    assert invariants(e) == []
    codes = events(e, 0)
    i = codes.index("lock_vma_under_rcu:no_anon_vma")
    assert codes[i:].index("lock_vma_under_rcu:abort:no_anon_vma") > 0
    assert "lock_vma_under_rcu:locked" not in codes
    assert e.k.abort_reasons["no_anon_vma"] == 1


@pytest.mark.parametrize("patches", [{}, *on_sets("fix_anon_vma_check_under_lock")])
def test_anon_vma_check_default_schedule_is_clean(patches: dict[str, bool]) -> None:
    assert invariants(finish(Engine(race("anon-vma-check", patches)))) == []


# --------------------------------------------------------- fix_dup_anon_vma_lock
# 6.4.0 mm/mmap.c vma_merge: dup_anon_vma(res, ...) sets dst->anon_vma, then
# vma_prepare write-locks dst.  Jann Horn, "mm: lock VMA in dup_anon_vma() before
# setting ->anon_vma" (6.4.8) adds vma_start_write(dst) at dup_anon_vma's start.


def dup_race(patches: dict[str, bool]) -> Engine:
    e = Engine(race("dup-anon-vma", patches))
    # faulter found low and is about to test its anon_vma.
    step_until(e, 0, "lock_vma_under_rcu:anonymous")
    # protector up to vma_merge's dup_anon_vma step (before vma_prepare).
    step_until(e, 1, "vma_merge")
    # faulter: the anon_vma test, then vma_start_read.
    for _ in range(STEP_LIMIT):
        e.step(0)
        if last_event(e).startswith(("lock_vma_under_rcu:abort", "lock_vma_under_rcu:locked")):
            break
    return finish(e)


def test_dup_anon_vma_before_vma_prepare_lets_a_fault_lock_dst() -> None:
    e = dup_race({})
    codes = events(e, 0)
    assert "lock_vma_under_rcu:anon_vma_ok" in codes
    assert "lock_vma_under_rcu:locked" in codes
    assert invariants(e) == [
        (
            3,
            "dup_anon_vma set low#3's anon_vma without its write lock and T0 "
            "VMA-locked it in that window (R-D1)",
        )
    ]


@pytest.mark.parametrize("patches", on_sets("fix_dup_anon_vma_lock"))
def test_dup_anon_vma_locks_dst_first(patches: dict[str, bool]) -> None:
    e = dup_race(patches)
    assert invariants(e) == []
    codes = events(e, 0)
    assert "lock_vma_under_rcu:abort:vma_locked" in codes
    assert "lock_vma_under_rcu:locked" not in codes
    # protector write-locked low before vma_merge set its anon_vma.
    w = events(e, 1)
    assert w.index("vma_start_write:seq_set") < w.index("vma_merge")


@pytest.mark.parametrize("patches", [{}, *on_sets("fix_dup_anon_vma_lock")])
def test_dup_anon_vma_default_schedule_is_clean(patches: dict[str, bool]) -> None:
    assert invariants(finish(Engine(race("dup-anon-vma", patches)))) == []


# ------------------------------------------------------------ anon_vma_fallback
# Without [v3 26/35] a VMA-locked write fault on an anon_vma-less VMA runs
# __anon_vma_prepare (mm/rmap.c): find_mergeable_anon_vma (mm/mmap.c) takes the
# next VMA's pointer (mas_walk), then reads its fields (reusable_anon_vma) with
# neither mmap_lock nor that VMA's lock, outside any RCU read section.


def anon_fallback_race(patches: dict[str, bool]) -> Engine:
    e = Engine(race("anon-vma-fallback", patches))
    if patches.get("anon_vma_fallback", True):
        # With the patch the fault never takes the VMA-lock path: let it fall
        # back, then run the unmapper and the RCU callbacks.
        step_until(e, 0, "lock_vma_under_rcu:abort:no_anon_vma")
    else:
        step_until(e, 0, "find_mergeable_anon_vma:mas_walk")
    # unmapper unmaps nbr to the end: nbr waits for its grace period.
    step_to_end(e, 1)
    # The grace periods end (munmap's maple nodes, then nbr itself):
    # vm_area_free_rcu_cb frees nbr while the faulter still holds its pointer.
    for _ in range(STEP_LIMIT):
        if -1 not in e.runnable():
            break
        e.step(-1)
    return finish(e)


def test_anon_vma_fallback_off_reads_a_freed_neighbour() -> None:
    e = anon_fallback_race({"anon_vma_fallback": False})
    codes = events(e, 0)
    assert "lock_vma_under_rcu:locked" in codes
    assert "find_mergeable_anon_vma:mas_walk" in codes
    assert e.k.mm.mmap_lock.stats["read_acquired"] == 0
    assert invariants(e) == [
        (
            7,
            "T0's find_mergeable_anon_vma for fresh#1 reads freed nbr#2 "
            "(held only the VMA lock of its own VMA)",
        )
    ]
    # The fault still completes: a new anon_vma, not the freed neighbour's.
    assert e.k.mm.vmas[1].anon_vma is not None


@pytest.mark.parametrize("patches", on_sets("anon_vma_fallback"))
def test_anon_vma_fallback_on_prepares_under_mmap_lock(patches: dict[str, bool]) -> None:
    e = anon_fallback_race(patches)
    assert invariants(e) == []
    codes = events(e, 0)
    assert "lock_vma_under_rcu:locked" not in codes
    assert "find_mergeable_anon_vma:mas_walk" not in codes
    assert "anon_vma_prepare" in codes
    assert e.k.abort_reasons["no_anon_vma"] == 1


@pytest.mark.parametrize("patches", [{"anon_vma_fallback": False}, *on_sets("anon_vma_fallback")])
def test_anon_vma_fallback_default_schedule_is_clean(patches: dict[str, bool]) -> None:
    # The time-ordered run frees nbr long after the fault read it.
    assert invariants(finish(Engine(race("anon-vma-fallback", patches)))) == []


# ---------------------------------------------------------------- uffd_fallback
# Without [v3 29/35] a VMA-locked fault on a uffd-armed VMA reaches
# handle_userfault (fs/userfaultfd.c), which calls mmap_read_unlock before it
# sleeps.  Deterministic: the faulter alone shows it.


def uffd_run(patches: dict[str, bool]) -> Engine:
    e = Engine(race("uffd-fallback", patches))
    step_to_end(e, 0)
    return finish(e)


def test_uffd_fallback_off_unlocks_an_mmap_lock_it_never_took() -> None:
    e = uffd_run({"uffd_fallback": False})
    codes = events(e, 0)
    i = codes.index("lock_vma_under_rcu:locked")
    j = codes.index("handle_userfault:mmap_read_unlock")
    assert i < j < codes.index("fault:vma_lock_retry")
    assert invariants(e) == [
        (
            14,
            "T0 holds only armed#1's VMA lock; handle_userfault calls "
            "mmap_read_unlock on an mmap_lock it does not hold",
        )
    ]
    # The bogus release was not applied: the mmap_lock ends free and balanced.
    assert e.k.mm.mmap_lock.is_free
    assert e.k.vma_lock["retry"] == 1


@pytest.mark.parametrize("patches", on_sets("uffd_fallback"))
def test_uffd_fallback_on_handles_the_userfault_under_mmap_lock(
    patches: dict[str, bool],
) -> None:
    e = uffd_run(patches)
    assert invariants(e) == []
    codes = events(e, 0)
    assert "lock_vma_under_rcu:uffd_armed" in codes
    assert "lock_vma_under_rcu:locked" not in codes
    assert codes.count("handle_userfault:mmap_read_unlock") == 1
    assert e.k.abort_reasons["uffd_armed"] == 1
