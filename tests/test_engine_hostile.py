"""Scenarios the loader accepts but that hit the model in an unexpected order.

Names used before another thread maps them, names whose mmap or mremap failed,
syscalls on ranges that are no longer (or never were) mapped, stack growth that
races with munmap, and costs of 0 ns.  In each case the run must finish with
the user-visible outcome Linux 6.4 gives (an errno, a SIGSEGV, nothing
happening), say so in the trace, and keep every lock balanced.
"""

from __future__ import annotations

from typing import Any

import pytest
from kernel_helpers import (
    PAGE,
    RandomPicker,
    assert_clean,
    codes,
    events,
    make_scenario,
    random_scenario_doc,
    run,
    scenario_from_doc,
    vid_of,
    write_sections,
)

from vmaviz.engine.engine import Engine, EngineError
from vmaviz.engine.narrate import narrate
from vmaviz.model import mm as M
from vmaviz.model.kernel import ARCH_HANDLER, STALL_POLLS, StallError
from vmaviz.scenario.schema import MAX_PAGES, OPS

AB = [
    {"name": "A", "pages": 4, "anon_vma": True},
    {"name": "B", "pages": 4, "anon_vma": True},
]


def finished_clean(e: Engine) -> None:
    """The run ended, every thread is done, no invariant broke, no lock is held."""
    assert e.finished
    assert_clean(e)
    assert all(th.state == "done" for th in e.k.threads)
    assert e.k.mm.mmap_lock.is_free and not e.k.mm.mmap_lock.waiters
    assert all(v.vm_lock.is_free for v in e.k.mm.vmas.values())


def one(ops: list[Any], vmas: list[dict[str, Any]] = AB, **kernel: Any) -> Engine:
    sc = make_scenario(vmas=vmas, threads=[{"name": "T", "ops": ops}], kernel=kernel or None)
    e = run(sc, keep_freed=True)
    finished_clean(e)
    return e


def narration_of(e: Engine, code: str) -> str:
    (r,) = events(e, code)[:1]
    n = narrate(e, r["step"])
    assert "` and records `" not in n.text, n.text  # a specific sentence, not the fallback
    return n.title + " " + n.text


# ------------------------------------------------------- names without an address


def test_an_op_on_a_name_another_thread_maps_later_is_not_issued() -> None:
    sc = make_scenario(
        vmas=AB,
        threads=[
            {"name": "user", "ops": [{"fault": {"vma": "N", "page": 0, "access": "write"}}]},
            {"name": "mapper", "start_ns": 50_000, "ops": [{"mmap": {"name": "N", "pages": 2}}]},
        ],
    )
    e = run(sc)
    finished_clean(e)
    (skip,) = events(e, "no_address")
    assert skip["tid"] == 0 and skip["stack"] == ["no_address"]
    assert "vma 'N'" in skip["note"] and "fault" in skip["note"]
    # No fault was taken: the op never reached the kernel.
    assert e.summary()["faults"]["total"] == 0
    text = narration_of(e, "no_address")
    assert "no address" in text and "skipped" in text
    # The same op once the mmap has returned takes a real fault.
    sc2 = make_scenario(
        vmas=AB,
        threads=[
            {
                "name": "user",
                "start_ns": 50_000,
                "ops": [{"fault": {"vma": "N", "page": 0, "access": "write"}}],
            },
            {"name": "mapper", "ops": [{"mmap": {"name": "N", "pages": 2}}]},
        ],
    )
    e2 = run(sc2)
    finished_clean(e2)
    assert not events(e2, "no_address") and e2.summary()["faults"]["total"] == 1


@pytest.mark.parametrize(
    "op",
    [
        {"fault": {"vma": "N", "page": 1}},
        {"touch": {"vma": "N", "pages": "0-1"}},
        {"munmap": {"vma": "N"}},
        {"mprotect": {"vma": "N", "prot": "r"}},
        {"madvise": {"vma": "N", "advice": "dontneed"}},
        {"madvise": {"vma": "N", "advice": "hugepage"}},
        {"mremap": {"vma": "N", "new_pages": 4}},
        {"swap_out": {"vma": "N"}},
        {"uffd_register": {"vma": "N"}},
        {"khugepaged_collapse": {"vma": "N"}},
        {"tcp_zerocopy_receive": {"vma": "N"}},
        {"mmap": {"name": "X", "pages": 1, "at": {"vma": "N", "page": 0}}},
        {"mmap": {"name": "X", "pages": 1, "fixed": True, "at": {"vma": "N", "page": 0}}},
    ],
    ids=lambda op: next(iter(op)) + ("_fixed" if "fixed" in str(op) else ""),
)
def test_every_op_on_a_name_without_address_is_skipped(op: dict[str, Any]) -> None:
    # "late" maps N long after "early" has run all its ops.
    sc = make_scenario(
        vmas=AB,
        threads=[
            {"name": "early", "ops": [op, {"fault": {"vma": "A", "page": 0}}]},
            {"name": "late", "start_ns": 10_000_000, "ops": [{"mmap": {"name": "N", "pages": 2}}]},
        ],
    )
    e = run(sc)
    finished_clean(e)
    assert codes(e, tid=0)[0] == "no_address"
    # The thread goes on with its next op.
    assert "fault:entry" in codes(e, tid=0)
    # Nothing but the later fault touched mmap_lock or a VMA lock in "early".
    assert not [c for c in codes(e, tid=0) if c.startswith("syscall:")]


def test_the_new_name_of_a_failed_mremap_has_no_address() -> None:
    # B is unmapped first, so the mremap of B fails with EFAULT and never names R.
    e = one(
        [
            {"munmap": {"vma": "B"}},
            {"mremap": {"vma": "B", "new_pages": 2, "move": True, "name": "R"}},
            {"fault": {"vma": "R", "page": 0, "access": "write"}},
            {"mprotect": {"vma": "R", "prot": "r"}},
        ]
    )
    (fail,) = events(e, "mremap:efault")
    assert fail["a"] == e.k.names["B"][0] and fail["b"] == 4 * PAGE
    assert "R" not in e.k.names
    assert [r["note"].split(" ")[0] for r in events(e, "no_address")] == ["fault", "mprotect"]
    assert "EFAULT" in narration_of(e, "mremap:efault")


def test_hold_mmap_write_skips_names_without_address() -> None:
    sc = make_scenario(
        vmas=AB,
        threads=[
            {"name": "h", "ops": [{"hold_mmap_write": {"ns": 1000, "vmas": ["N", "A"]}}]},
            {"name": "m", "start_ns": 1_000_000, "ops": [{"mmap": {"name": "N", "pages": 1}}]},
        ],
    )
    e = run(sc)
    finished_clean(e)
    (sec, *_) = write_sections(e, 0)
    assert sec["locked"] == [vid_of(e, "A")]


# ----------------------------------------------------- syscalls on unmapped memory


def test_munmap_of_an_unmapped_range_succeeds_doing_nothing() -> None:
    e = one([{"munmap": {"vma": "B"}}, {"munmap": {"vma": "B"}}])
    assert len(events(e, "do_vmi_munmap:nothing")) == 1
    # The second munmap takes the write lock and leaves without downgrading.
    secs = write_sections(e, 0)
    assert len(secs) == 2 and secs[1]["how"] == "unlock" and secs[1]["locked"] == []


def test_munmap_beyond_task_size_is_einval() -> None:
    # The failed mremap declares B with a huge size (the loader's bound) but the
    # range stays 4 pages; a munmap of pages 0..MAX_PAGES-1 reaches past TASK_SIZE.
    e = one(
        [
            {"mremap": {"vma": "B", "new_pages": MAX_PAGES, "move": True}},
            {"munmap": {"vma": "B", "pages": f"0-{MAX_PAGES - 1}"}},
        ]
    )
    assert codes(e).count("get_unmapped_area:enomem") == 1
    (inval,) = events(e, "munmap:einval")
    assert inval["b"] > M.TASK_SIZE
    assert [v.name for v in e.k.mm.live_vmas()] == ["B", "A"]
    assert "EINVAL" in narration_of(e, "munmap:einval")


def test_mprotect_of_an_unmapped_range_is_enomem_and_changes_nothing() -> None:
    e = one([{"munmap": {"vma": "B"}}, {"mprotect": {"vma": "B", "prot": "r"}}])
    start, end = e.k.names["B"]
    (err,) = events(e, "mprotect:enomem")
    assert (err["a"], err["b"]) == (start, end)
    sec = write_sections(e, 0)[-1]
    assert sec["locked"] == [] and "vm_flags_reset" not in sec["events"]
    assert "ENOMEM" in narration_of(e, "mprotect:enomem")


def test_mprotect_stops_at_a_hole_with_enomem() -> None:
    # W's middle pages are unmapped; the name still covers all 12 pages.  The part
    # below the hole changes, the VMA above it does not.
    vmas = [{"name": "W", "start": "0x10000000", "pages": 12, "anon_vma": True}]
    e = one(
        [{"munmap": {"vma": "W", "pages": "4-7"}}, {"mprotect": {"vma": "W", "prot": "r"}}],
        vmas=vmas,
    )
    (err,) = events(e, "mprotect:enomem")
    assert err["a"] == 0x10004000  # where the hole starts
    low, high = sorted(e.k.mm.live_vmas(), key=lambda v: v.vm_start)
    assert low.vm_flags & M.VM_ACCESS_FLAGS == M.VM_READ
    assert high.vm_flags & M.VM_ACCESS_FLAGS == M.VM_READ | M.VM_WRITE


@pytest.mark.parametrize("advice", ["dontneed", "willneed", "hugepage"])
def test_madvise_over_a_hole_does_the_rest_and_returns_enomem(advice: str) -> None:
    vmas = [{"name": "W", "start": "0x10000000", "pages": 12, "anon_vma": True}]
    e = one(
        [
            {"munmap": {"vma": "W", "pages": "4-7"}},
            {"touch": {"vma": "W", "pages": "0-3"}},
            {"madvise": {"vma": "W", "advice": advice}},
        ],
        vmas=vmas,
    )
    (err,) = events(e, "madvise:enomem")
    assert (err["a"], err["b"]) == e.k.names["W"]
    low, high = sorted(e.k.mm.live_vmas(), key=lambda v: v.vm_start)
    if advice == "dontneed":
        assert low.pages == {}
    elif advice == "willneed":
        # madvise_willneed on anonymous memory maps nothing (swap readahead only).
        assert len(low.pages) == 4 and high.pages == {}
    else:
        assert low.vm_flags & M.VM_HUGEPAGE and high.vm_flags & M.VM_HUGEPAGE
    assert "ENOMEM" in narration_of(e, "madvise:enomem")


def test_madvise_populate_of_a_large_range_maps_a_bounded_number_of_pages_a_step() -> None:
    e = one(
        [{"madvise": {"vma": "A", "advice": "populate_write"}}],
        vmas=[{"name": "A", "pages": 100, "anon_vma": True}],
    )
    assert len(e.k.mm.live_vmas()[0].pages) == 100
    steps = events(e, "madvise:populate")
    # 16 pages in the madvise walk's step, then 84 in steps of at most 16.
    assert [r["b"] for r in steps] == [16, 16, 16, 16, 16, 16, 4]
    assert not events(e, "madvise:enomem")
    assert "populates 16 more pages" in narration_of(e, "madvise:populate")


def test_mremap_of_an_unmapped_address_is_efault() -> None:
    e = one([{"munmap": {"vma": "A"}}, {"mremap": {"vma": "A", "new_pages": 8}}])
    assert len(events(e, "mremap:efault")) == 1
    assert [v.name for v in e.k.mm.live_vmas()] == ["B"]


def test_mremap_growing_across_the_end_of_its_vma_is_efault() -> None:
    # The last two pages of A are unmapped: the name's 4-page range now crosses
    # the end of the VMA at its start (vma_to_resize).
    e = one([{"munmap": {"vma": "A", "pages": "2-3"}}, {"mremap": {"vma": "A", "new_pages": 8}}])
    (err,) = events(e, "mremap:efault")
    assert err["b"] == 4 * PAGE
    assert not events(e, "mremap:move") and not events(e, "mremap:expand_in_place")


def test_mremap_to_the_same_size_without_move_changes_nothing() -> None:
    e = one([{"mremap": {"vma": "A", "new_pages": 4}}])
    assert "changes nothing" in narration_of(e, "mremap:same_size")
    assert not events(e, "mremap:move") and not events(e, "vma_start_write:seq_set")
    assert e.k.names["A"] == (e.k.mm.live_vmas()[1].vm_start, e.k.mm.live_vmas()[1].vm_end)


def test_mremap_expanding_a_name_inside_a_merged_vma_keeps_the_vma_start() -> None:
    # N is mapped where C was, right above B and with B's flags, so it merges into
    # B: one VMA that starts below N.  Growing N in place must keep that start.
    e = one(
        [
            {"munmap": {"vma": "C"}},
            {"mmap": {"name": "N", "pages": 2, "at": {"vma": "C", "page": 0}}},
            {"mremap": {"vma": "N", "new_pages": 6}},
        ],
        vmas=[
            {"name": "B", "start": "0x20000000", "pages": 4, "anon_vma": True},
            {"name": "C", "start": "0x20004000", "pages": 4, "anon_vma": True},
        ],
    )
    assert "vma_expand" in codes(e)
    assert "mremap:expand_in_place" in codes(e)
    (vma,) = e.k.mm.live_vmas()
    assert (vma.vm_start, vma.vm_end) == (0x20000000, 0x20004000 + 6 * PAGE)
    assert [(lo, hi) for lo, hi, _ in e.k.mm.mm_mt.entries()] == [(vma.vm_start, vma.vm_end - 1)]


def test_uffd_register_on_an_unmapped_range_is_einval() -> None:
    e = one([{"munmap": {"vma": "A"}}, {"uffd_register": {"vma": "A"}}])
    assert len(events(e, "userfaultfd_register:einval")) == 1
    assert not events(e, "vm_flags_reset")
    assert "EINVAL" in narration_of(e, "userfaultfd_register:einval")


@pytest.mark.parametrize("arch", sorted(ARCH_HANDLER))
@pytest.mark.parametrize("mode", ["per_vma", "mmap_lock"])
def test_a_fault_on_an_unmapped_address_is_a_sigsegv(arch: str, mode: str) -> None:
    sc = make_scenario(
        vmas=AB,
        threads=[
            {"name": "T", "ops": [{"munmap": {"vma": "A"}}, {"fault": {"vma": "A", "page": 2}}]}
        ],
        kernel={"arch": arch},
    )
    e = run(sc, mode=mode)
    finished_clean(e)
    s = e.summary()
    assert s["faults"]["sigsegv"] == 1 and s["faults"]["total"] == 1
    c = codes(e)
    if mode == "per_vma":
        assert "lock_vma_under_rcu:abort:no_vma" in c
    assert c.index("find_vma") < c.index("fault:bad_area_sigsegv")


# ------------------------------------------------------------------ stack growth

STACK = [
    {"name": "heap", "start": "0x7ffe00000000", "pages": 4, "anon_vma": True},
    {"name": "below", "start": "0x7ffff0000000", "pages": 4, "anon_vma": True},
    {"name": "stack", "start": "0x7ffff0004000", "pages": 8, "anon_vma": True, "growsdown": True},
]
FIX = {"fix_stack_expand_write_lock": True}


def stack_run(threads: list[dict[str, Any]], patches: dict[str, bool], **kw: Any) -> Engine:
    sc = make_scenario(vmas=STACK, threads=threads, kernel={"patches": patches, "cpus": 2})
    e = run(sc, keep_freed=True, **kw)
    finished_clean(e)
    return e


def test_stack_expansion_refused_by_the_guard_gap_unlocks_the_write_lock_once() -> None:
    # A guard VMA right below "below": growing to below's page 0 comes within
    # the guard gap, so lock_mm_and_find_vma fails after taking the write lock.
    guard = {"name": "guard", "start": "0x7fffefffc000", "pages": 4, "anon_vma": True}
    sc = make_scenario(
        vmas=[guard, *STACK],
        threads=[
            {
                "name": "main",
                "ops": [
                    {"munmap": {"vma": "below"}},
                    {"fault": {"vma": "below", "page": 0, "access": "write"}},
                ],
            }
        ],
        kernel={"patches": FIX},
    )
    e = run(sc)
    finished_clean(e)
    c = codes(e)
    i = c.index("expand_stack:guard_gap")
    # Write lock, re-look-up and vma_start_write of the stack, refusal, write
    # unlock, SIGSEGV: and no read unlock after it.
    fault = c[c.index("fault:entry") : i]
    assert fault.index("mmap_read_unlock") < fault.index("lock_mm_and_find_vma:stack")
    assert fault[-2:] == ["vma_start_write:seq_set", "vma_start_write:up_write"]
    tail = c[i + 1 :]
    assert tail[:3] == ["fault:bad_area_sigsegv", "vma_end_write_all", "mmap_write_unlock"]
    assert "mmap_read_unlock" not in tail and "mmap_write_downgrade" not in tail
    assert e.summary()["faults"]["sigsegv"] == 1
    stack = next(v for v in e.k.mm.live_vmas() if v.name == "stack")
    assert stack.vm_start == 0x7FFFF0004000  # not grown


def test_stack_gone_after_the_lock_upgrade_fails_with_the_write_lock_released() -> None:
    # main's fault below the stack finds it under the read lock; unmapper, queued
    # for the write lock meanwhile, gets it when main drops the read lock and
    # unmaps the stack; main's look-up under the write lock finds nothing.
    e = stack_run(
        [
            {
                "name": "main",
                "ops": [
                    {"munmap": {"vma": "below"}},
                    {"fault": {"vma": "below", "page": 3, "access": "write"}},
                ],
            },
            {"name": "unmapper", "start_ns": 2500, "ops": [{"munmap": {"vma": "stack"}}]},
        ],
        FIX,
    )
    c = codes(e, tid=0)
    assert "lock_mm_and_find_vma:stack" not in c and "expand_stack" not in c
    # find_vma under the read lock finds the stack; under the write lock, nothing.
    stack = vid_of(e, "stack")
    assert [r["a"] for r in events(e, "find_vma", tid=0)] == [stack, 0]
    i = c.index("fault:bad_area_sigsegv")
    assert c[i - 1] == "find_vma"
    assert c[i + 1 :] == ["vma_end_write_all", "mmap_write_unlock", "fault:done", "exit"]
    # The unmapper really took mmap_lock in between.
    (upgrade,) = events(e, "mmap_read_unlock", tid=0)
    (clear,) = events(e, "vma_iter_clear", tid=1)
    (segv,) = events(e, "fault:bad_area_sigsegv")
    assert upgrade["step"] < clear["step"] < segv["step"]


def test_stack_replaced_by_a_plain_mapping_after_the_lock_upgrade_fails() -> None:
    # As above, but replacer maps a plain (not growsdown) VMA over the stack with
    # MAP_FIXED in the window: the re-look-up finds a VMA above the address that
    # may not grow down, so lock_mm_and_find_vma fails.
    e = stack_run(
        [
            {
                "name": "main",
                "ops": [
                    {"munmap": {"vma": "below"}},
                    {"fault": {"vma": "below", "page": 3, "access": "write"}},
                ],
            },
            {
                "name": "replacer",
                "start_ns": 2500,
                "ops": [
                    {
                        "mmap": {
                            "name": "X",
                            "pages": 8,
                            "fixed": True,
                            "at": {"vma": "stack", "page": 0},
                        }
                    }
                ],
            },
        ],
        FIX,
    )
    assert [r["a"] for r in events(e, "find_vma", tid=0)] == [vid_of(e, "stack"), vid_of(e, "X")]
    c = codes(e, tid=0)
    assert "lock_mm_and_find_vma:stack" not in c and "expand_stack" not in c
    i = c.index("fault:bad_area_sigsegv")
    assert c[i + 1 :] == ["vma_end_write_all", "mmap_write_unlock", "fault:done", "exit"]
    x = next(v for v in e.k.mm.live_vmas() if v.name == "X")
    assert not x.vm_flags & M.VM_GROWSDOWN and x.vm_start == 0x7FFFF0004000


def test_stack_grown_by_another_fault_meanwhile_is_used_as_found() -> None:
    # Two threads fault on the same page below the stack at once: both see it
    # starting above the address under the read lock and upgrade; the second to
    # get the write lock finds it already grown and goes on without expanding.
    e = stack_run(
        [
            {"name": "u", "ops": [{"munmap": {"vma": "below"}}]},
            {"name": "a", "start_ns": 100, "ops": [{"fault": {"vma": "below", "page": 3}}]},
            {"name": "b", "start_ns": 100, "ops": [{"fault": {"vma": "below", "page": 3}}]},
        ],
        FIX,
    )
    grows = events(e, "expand_stack")
    assert len(grows) == 1 and grows[0]["b"] == 1
    (other,) = {1, 2} - {grows[0]["tid"]}
    oc = codes(e, tid=other)
    assert "mmap_write_downgrade" in oc and "lock_mm_and_find_vma:stack" not in oc
    assert "fault:done_mmap_lock" in oc
    assert e.summary()["faults"]["sigsegv"] == 0


def test_stack_expansion_in_640_leaves_a_stack_another_fault_grew() -> None:
    # 6.4.0 expands under the read lock: the second of two concurrent faults
    # finds the stack already grown and leaves it alone (it used to shrink it).
    sc = make_scenario(
        vmas=STACK,
        threads=[
            {"name": "u", "ops": [{"munmap": {"vma": "below"}}]},
            {"name": "a", "start_ns": 1800, "ops": [{"fault": {"vma": "below", "page": 3}}]},
            {"name": "b", "start_ns": 1800, "ops": [{"fault": {"vma": "below", "page": 3}}]},
        ],
        kernel={"cpus": 2},
    )
    e = run(sc, mode="mmap_lock")
    finished_clean(e)
    assert len(events(e, "expand_stack")) == 1 and len(events(e, "expand_stack:raced")) == 1
    stack = next(v for v in e.k.mm.live_vmas() if v.name == "stack")
    assert stack.vm_start == 0x7FFFF0004000 - PAGE
    assert "already" in narration_of(e, "expand_stack:raced")


# ----------------------------------------------------------- time that stands still


def spin_scenario() -> Engine:
    sc = make_scenario(
        vmas=AB,
        threads=[
            {"name": "holder", "ops": [{"hold_mmap_write": {"ns": 1_000_000}}]},
            {"name": "writer", "start_ns": 500, "ops": [{"mprotect": {"vma": "A", "prot": "r"}}]},
        ],
    )
    return Engine(sc, max_steps=10 * STALL_POLLS)


def test_a_free_optimistic_spin_stops_with_a_stall_error() -> None:
    # holder keeps mmap_lock for 1 ms and stays on its CPU, so writer spins on it.
    # With spin polls of 0 ns writer's spin never reaches its time limit.
    e = spin_scenario()
    e.k.costs["spin_poll"] = 0
    with pytest.raises(StallError, match=r"optimistic spin on mmap_lock .* without simulated time"):
        e.run()
    # The engine reports it as a run that stopped, as the CLI and the app expect.
    e = spin_scenario()
    e.k.costs["spin_poll"] = 0
    with pytest.raises(EngineError, match="without simulated time"):
        e.run()
    assert STALL_POLLS <= len(e.trace) < 2 * STALL_POLLS
    # With the default cost the same spin makes time pass and ends.
    e = spin_scenario().run()
    finished_clean(e)
    spins = codes(e, tid=1).count("down_write:spinning")
    assert 0 < spins < STALL_POLLS


# ------------------------------------------------------------- the generator itself


def test_the_random_generator_covers_every_op_and_the_hostile_paths() -> None:
    kinds: set[str] = set()
    seen: set[str] = set()
    for seed in range(150):
        doc, mode = random_scenario_doc(RandomPicker(seed))
        sc = scenario_from_doc(doc)
        stack = [op for t in sc.threads for op in t.ops]
        while stack:
            op = stack.pop()
            kinds.add(op.kind)
            stack.extend(op.body or [])
        e = Engine(sc, mode=mode, max_steps=100_000).run()
        seen.update(e.trace.codes)
    assert kinds == set(OPS)
    for code in (
        "no_address",
        "mprotect:enomem",
        "madvise:enomem",
        "mremap:efault",
        "get_unmapped_area:enomem",
        "do_vmi_munmap:nothing",
        "fault:bad_area_sigsegv",
        "lock_mm_and_find_vma:stack",
        "expand_stack",
        "expand_stack:guard_gap",
    ):
        assert code in seen, code
