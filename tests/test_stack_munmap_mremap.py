"""Stack growth, the munmap downgrade rule and mremap's flags, as Linux 6.4.0 has them.

Written from the 6.4.0 source (commit 6e5f9d87e):

* mm/mmap.c ``expand_downwards``: ``-ENOMEM`` when ``address - prev->vm_end <
  stack_guard_gap`` (256 pages), unless ``prev`` is ``VM_GROWSDOWN`` or not
  ``vma_is_accessible``; then ``anon_vma_prepare(vma)`` before growing.
* mm/mmap.c ``do_vmi_align_munmap``: ``next = vma_next(vmi)`` after the detach
  loop, and ``if (next && (next->vm_flags & VM_GROWSDOWN)) downgrade = false``:
  the next VMA at any distance, not only an adjacent one.  ``brk`` shrinking
  (``do_vma_munmap(..., true)``) and ``mremap`` shrinking
  (``do_vmi_munmap(..., true)``) go through it.
* mm/mremap.c ``mremap``: a grow that ``vma_expandable`` refuses is ``-ENOMEM``
  without ``MREMAP_MAYMOVE`` ("ret = -ENOMEM; if (flags & MREMAP_MAYMOVE)");
  ``MREMAP_DONTUNMAP`` without ``MREMAP_MAYMOVE`` or with ``old_len != new_len``
  is ``-EINVAL``; ``move_vma`` with ``MREMAP_DONTUNMAP`` returns before
  ``do_vmi_munmap`` and calls ``unlink_anon_vmas`` on a source that is exactly
  the old range.
"""

from __future__ import annotations

from typing import Any

import pytest
from kernel_helpers import (
    PAGE,
    assert_clean,
    codes,
    events,
    make_scenario,
    nonzero,
    run,
    vid_of,
    write_sections,
)

from vmaviz.engine.engine import Engine
from vmaviz.engine.narrate import narrate
from vmaviz.model.kernel import STACK_GUARD_GAP
from vmaviz.model.mm import PTE_PRESENT
from vmaviz.scenario import ScenarioErrors, load_scenario_text

FIX = {"fix_stack_expand_write_lock": True}
GAP_PAGES = 256  # mm/mmap.c: stack_guard_gap = 256UL << PAGE_SHIFT

LIB = 0x7FFF_E000_0000
ROOM = LIB + 4 * PAGE
ROOM_PAGES = 300
STACK = ROOM + ROOM_PAGES * PAGE


def stack_vmas(
    below: dict[str, Any] | None = None, stack_anon_vma: bool = True
) -> list[dict[str, Any]]:
    """``lib`` (4 pages), ``room`` (300 pages, unmapped first to name the gap), ``stack``."""
    lib = {"name": "lib", "start": hex(LIB), "pages": 4, "anon_vma": True, **(below or {})}
    return [
        lib,
        {"name": "room", "start": hex(ROOM), "pages": ROOM_PAGES, "anon_vma": True},
        {
            "name": "stack",
            "start": hex(STACK),
            "pages": 8,
            "anon_vma": stack_anon_vma,
            "growsdown": True,
        },
    ]


def one(
    ops: list[dict[str, Any]],
    vmas: list[dict[str, Any]],
    patches: dict[str, bool] | None = None,
    mode: str | None = None,
) -> Engine:
    sc = make_scenario(
        vmas=vmas,
        threads=[{"name": "T", "ops": ops}],
        kernel={"patches": patches} if patches else None,
    )
    e = run(sc, mode=mode, keep_freed=True)
    assert e.finished
    assert_clean(e)
    return e


def fault_below_stack(room_page: int, access: str = "read") -> dict[str, Any]:
    return {"fault": {"vma": "room", "page": room_page, "access": access}}


# Both paths to expand_downwards: 6.4.0 (under the mmap read lock; mmap_lock mode
# so that the StackRot hole reports nothing) and the 6.4.1 lock_mm_and_find_vma
# path (under the write lock, with VMA locks).
PATHS = [
    pytest.param({}, "mmap_lock", id="6.4.0-read-lock"),
    pytest.param(FIX, "per_vma", id="6.4.1-lock_mm_and_find_vma"),
]


# =====================================================================
# expand_downwards: stack_guard_gap
# =====================================================================


def test_the_guard_gap_is_256_pages() -> None:
    assert STACK_GUARD_GAP == GAP_PAGES * PAGE


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_growth_to_exactly_the_gap_above_an_accessible_vma_is_allowed(
    patches: dict[str, bool], mode: str
) -> None:
    # room page 256 is 256 pages above lib's end: address - prev->vm_end ==
    # stack_guard_gap, not below it.
    e = one(
        [{"munmap": {"vma": "room"}}, fault_below_stack(GAP_PAGES)], stack_vmas(), patches, mode
    )
    (grow,) = events(e, "expand_stack")
    assert grow["a"] == vid_of(e, "stack") and grow["b"] == ROOM_PAGES - GAP_PAGES
    stack = e.k.mm.vmas[vid_of(e, "stack")]
    assert stack.vm_start == ROOM + GAP_PAGES * PAGE
    assert e.summary()["faults"]["sigsegv"] == 0


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_growth_one_page_into_the_gap_is_refused_with_sigsegv(
    patches: dict[str, bool], mode: str
) -> None:
    # 255 pages above lib: -ENOMEM from expand_downwards, bad_area, SIGSEGV.
    e = one(
        [{"munmap": {"vma": "room"}}, fault_below_stack(GAP_PAGES - 1)], stack_vmas(), patches, mode
    )
    (refused,) = events(e, "expand_stack:guard_gap")
    assert refused["a"] == vid_of(e, "stack") and refused["b"] == vid_of(e, "lib")
    assert not events(e, "expand_stack")
    assert e.k.mm.vmas[vid_of(e, "stack")].vm_start == STACK
    assert e.summary()["faults"]["sigsegv"] == 1
    c = codes(e, 0)
    assert c.index("expand_stack:guard_gap") < c.index("fault:bad_area_sigsegv")


# =====================================================================
# expand_downwards -> acct_stack_growth: RLIMIT_STACK
# =====================================================================


def one_with_rlimit(ops: list[dict[str, Any]], rlimit: int, patches: dict[str, bool], mode: str):
    sc = make_scenario(
        vmas=stack_vmas(),
        threads=[{"name": "T", "ops": ops}],
        kernel={"patches": patches, "rlimit_stack": rlimit},
    )
    e = run(sc, mode=mode, keep_freed=True)
    assert e.finished
    assert_clean(e)
    return e


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_growth_to_exactly_rlimit_stack_is_allowed(patches: dict[str, bool], mode: str) -> None:
    # mm/mmap.c acct_stack_growth: "if (size > rlimit(RLIMIT_STACK)) return -ENOMEM"
    # with size = vma->vm_end - address: a stack of exactly the limit may exist.
    page = ROOM_PAGES - 2  # the stack grows by 2 pages to 10 pages
    ops = [{"munmap": {"vma": "room"}}, fault_below_stack(page)]
    e = one_with_rlimit(ops, 10 * PAGE, patches, mode)
    (grow,) = events(e, "expand_stack")
    assert grow["b"] == 2
    assert e.summary()["faults"]["sigsegv"] == 0
    assert not events(e, "expand_stack:acct_stack_growth")


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_growth_past_rlimit_stack_is_refused_with_sigsegv(
    patches: dict[str, bool], mode: str
) -> None:
    # One page more than the limit: acct_stack_growth's -ENOMEM, so
    # expand_downwards fails and the arch handler goes to bad_area (SIGSEGV); the
    # stack keeps its start.
    page = ROOM_PAGES - 3  # 11 pages would be needed
    ops = [{"munmap": {"vma": "room"}}, fault_below_stack(page)]
    e = one_with_rlimit(ops, 10 * PAGE, patches, mode)
    (refused,) = events(e, "expand_stack:acct_stack_growth")
    assert refused["a"] == vid_of(e, "stack") and refused["b"] == 11 * PAGE
    assert not events(e, "expand_stack")
    assert e.k.mm.vmas[vid_of(e, "stack")].vm_start == STACK
    assert e.summary()["faults"]["sigsegv"] == 1
    c = codes(e, 0)
    assert c.index("expand_stack:acct_stack_growth") < c.index("fault:bad_area_sigsegv")


def test_the_default_rlimit_stack_is_8_mib() -> None:
    # include/uapi/linux/resource.h: _STK_LIM (8 MiB), the default soft limit.
    sc = make_scenario(vmas=stack_vmas(), threads=[{"name": "T", "ops": []}])
    assert sc.kernel.rlimit_stack == 8 << 20
    assert Engine(sc).k.mm.rlimit_stack == 8 << 20


@pytest.mark.parametrize("bad", ["0", "4095", "-1", "1e9", "yes", str(1 << 48)])
def test_a_bad_rlimit_stack_is_a_schema_error(bad: str) -> None:
    text = f"name: r\nkernel: {{rlimit_stack: {bad}}}\nmm: {{vmas: []}}\nthreads: []\n"
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "r.yaml")
    msg = str(info.value)
    assert "r.yaml:2" in msg and "rlimit_stack" in msg


def test_a_one_page_growth_far_from_the_vma_below_is_allowed() -> None:
    # The old model kept one page of gap; 299 pages is above 256 either way, but
    # 255 pages (above) was allowed by it and is refused by 6.4.
    e = one([{"munmap": {"vma": "room"}}, fault_below_stack(ROOM_PAGES - 1)], stack_vmas(), FIX)
    (grow,) = events(e, "expand_stack")
    assert grow["b"] == 1


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_an_inaccessible_vma_below_is_exempt_from_the_gap(
    patches: dict[str, bool], mode: str
) -> None:
    # vma_is_accessible(prev) is false for PROT_NONE: the stack may grow right up
    # to it (room page 0 is adjacent to lib).
    e = one(
        [{"munmap": {"vma": "room"}}, fault_below_stack(0)],
        stack_vmas(below={"prot": "none"}),
        patches,
        mode,
    )
    (grow,) = events(e, "expand_stack")
    assert grow["b"] == ROOM_PAGES
    assert e.k.mm.vmas[vid_of(e, "stack")].vm_start == ROOM
    assert not events(e, "expand_stack:guard_gap")


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_a_growsdown_vma_below_is_exempt_from_the_gap(patches: dict[str, bool], mode: str) -> None:
    e = one(
        [{"munmap": {"vma": "room"}}, fault_below_stack(10)],
        stack_vmas(below={"growsdown": True}),
        patches,
        mode,
    )
    (grow,) = events(e, "expand_stack")
    assert grow["b"] == ROOM_PAGES - 10


def test_mprotect_none_below_lifts_the_gap_for_the_next_fault() -> None:
    e = one(
        [
            {"munmap": {"vma": "room"}},
            fault_below_stack(100),
            {"mprotect": {"vma": "lib", "prot": "none"}},
            fault_below_stack(100),
        ],
        stack_vmas(),
        FIX,
    )
    assert len(events(e, "expand_stack:guard_gap")) == 1
    (grow,) = events(e, "expand_stack")
    assert grow["b"] == ROOM_PAGES - 100
    assert e.summary()["faults"]["sigsegv"] == 1


# =====================================================================
# expand_downwards: anon_vma_prepare before growing
# =====================================================================


@pytest.mark.parametrize(("patches", "mode"), PATHS)
def test_expansion_prepares_the_anon_vma_before_growing(
    patches: dict[str, bool], mode: str
) -> None:
    e = one(
        [{"munmap": {"vma": "room"}}, fault_below_stack(ROOM_PAGES - 1, "read")],
        stack_vmas(stack_anon_vma=False),
        patches,
        mode,
    )
    stack = e.k.mm.vmas[vid_of(e, "stack")]
    (prep,) = events(e, "anon_vma_prepare:expand_stack")
    assert stack.anon_vma is not None
    assert prep["a"] == stack.vid and prep["b"] == stack.anon_vma
    c = codes(e, 0)
    assert c.index("anon_vma_prepare:expand_stack") < c.index("expand_stack")
    # A read fault maps the zero page: nothing else would have prepared it.
    assert "anon_vma_prepare" not in c


def test_the_grown_stacks_next_fault_succeeds_under_the_vma_lock() -> None:
    # Without anon_vma_prepare in expand_downwards the stack would have no
    # anon_vma after a read fault, and the write below would abort (no_anon_vma)
    # and fall back to mmap_lock.
    e = one(
        [
            {"munmap": {"vma": "room"}},
            fault_below_stack(ROOM_PAGES - 1, "read"),
            {"fault": {"vma": "stack", "page": 0, "access": "write"}},
            fault_below_stack(ROOM_PAGES - 1, "write"),
        ],
        stack_vmas(stack_anon_vma=False),
        FIX,
    )
    s = e.summary()
    # Only the fault below the stack aborts (no VMA there yet).
    assert nonzero(s["abort_reasons"]) == {"no_vma": 1}
    assert s["faults"]["via_vma_lock"] == 2 and s["faults"]["via_mmap_lock"] == 1
    assert not any(r["event"] == "anon_vma_prepare" for r in events(e))
    # Page 0 is the grown page (zero page, then copied on write); page 1 the old first.
    stack = e.k.mm.vmas[vid_of(e, "stack")]
    assert stack.pages == {0: PTE_PRESENT, 1: PTE_PRESENT}


def test_a_stack_with_an_anon_vma_is_not_prepared_again() -> None:
    e = one([{"munmap": {"vma": "room"}}, fault_below_stack(ROOM_PAGES - 1)], stack_vmas(), FIX)
    assert not events(e, "anon_vma_prepare:expand_stack")
    assert len(events(e, "expand_stack")) == 1


# =====================================================================
# do_vmi_align_munmap: no downgrade below a VM_GROWSDOWN next, at any distance
# =====================================================================

BASE = 0x7F00_0000_0000


def munmap_vmas(next_growsdown: bool, distance_pages: int) -> list[dict[str, Any]]:
    return [
        {"name": "B", "start": hex(BASE), "pages": 4, "anon_vma": True},
        {
            "name": "S",
            "start": hex(BASE + (4 + distance_pages) * PAGE),
            "pages": 4,
            "anon_vma": True,
            "growsdown": next_growsdown,
        },
    ]


@pytest.mark.parametrize("distance", [0, 1, 1000])
def test_munmap_below_a_growsdown_vma_keeps_the_write_lock(distance: int) -> None:
    e = one([{"munmap": {"vma": "B"}}], munmap_vmas(True, distance))
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "unlock"
    c = codes(e, 0)
    assert "mmap_write_downgrade" not in c and "mmap_read_unlock" not in c
    # unmap_region runs with mmap_lock still held for write.
    assert c.index("unmap_region") < c.index("mmap_write_unlock")
    (clear,) = events(e, "vma_iter_clear")
    assert "grows down" in clear["note"]


@pytest.mark.parametrize("distance", [0, 1000])
def test_munmap_below_an_ordinary_vma_downgrades(distance: int) -> None:
    e = one([{"munmap": {"vma": "B"}}], munmap_vmas(False, distance))
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "downgrade"
    c = codes(e, 0)
    assert c.index("mmap_write_downgrade") < c.index("unmap_region") < c.index("mmap_read_unlock")


def test_munmap_above_a_growsdown_vma_downgrades() -> None:
    # Only next counts (the prev rule is VM_GROWSUP, VM_NONE on x86/arm64/ppc/s390).
    vmas = [
        {"name": "S", "start": hex(BASE), "pages": 4, "anon_vma": True, "growsdown": True},
        {"name": "B", "start": hex(BASE + 8 * PAGE), "pages": 4, "anon_vma": True},
    ]
    e = one([{"munmap": {"vma": "B"}}], vmas)
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "downgrade"


def test_munmap_with_no_next_vma_downgrades() -> None:
    e = one([{"munmap": {"vma": "S"}}], munmap_vmas(False, 10))
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "downgrade"


@pytest.mark.parametrize(
    ("growsdown", "granted_at"), [(True, "mmap_write_unlock"), (False, "mmap_write_downgrade")]
)
def test_a_queued_reader_gets_mmap_lock_only_after_unmap_region_below_a_stack(
    growsdown: bool, granted_at: str
) -> None:
    # R queues for mmap_lock (read) while T unmaps B.  With a VM_GROWSDOWN VMA
    # 1000 pages above B, R is granted the lock at mmap_write_unlock, after
    # unmap_region; otherwise at mmap_write_downgrade, before it.
    vmas = [*munmap_vmas(growsdown, 1000), {"name": "X", "pages": 4, "anon_vma": True}]
    sc = make_scenario(
        vmas=vmas,
        threads=[
            {"name": "T", "ops": [{"munmap": {"vma": "B"}}]},
            {"name": "R", "start_ns": 50, "ops": [{"read_proc_maps": {}}]},
        ],
    )
    e = run(sc, keep_freed=True)
    assert_clean(e)
    # The first read() (the last one, at EOF, returns 0 without the lock).
    asked = events(e, "syscall:read:/proc/pid/maps", tid=1)[0]
    (unmap,) = events(e, "unmap_region", tid=0)
    (grant,) = [r for r in events(e, tid=0) if "granted=0:1" in r["note"]]
    assert asked["step"] < unmap["step"]
    assert grant["event"] == granted_at
    assert (grant["step"] > unmap["step"]) is growsdown


HEAP_BASE = 0x5555_5556_0000  # the engine's brk start without a [heap] VMA


@pytest.mark.parametrize(("growsdown", "how"), [(True, "unlock"), (False, "downgrade")])
def test_brk_shrink_inherits_the_rule(growsdown: bool, how: str) -> None:
    # A stack 512 pages above the brk area (well clear of brk's own guard-gap
    # check on growth).
    vmas = [
        {
            "name": "S",
            "start": hex(HEAP_BASE + 512 * PAGE),
            "pages": 4,
            "anon_vma": True,
            "growsdown": growsdown,
        }
    ]
    e = one([{"brk": {"pages": 4}}, {"brk": {"pages": -2}}], vmas)
    grow, shrink = write_sections(e, 0)
    assert grow["how"] == "unlock"
    assert "vma_iter_clear" in shrink["events"]
    assert shrink["how"] == how
    assert e.k.mm.brk == HEAP_BASE + 2 * PAGE


@pytest.mark.parametrize(("growsdown", "how"), [(True, "unlock"), (False, "downgrade")])
def test_mremap_shrink_inherits_the_rule(growsdown: bool, how: str) -> None:
    e = one([{"mremap": {"vma": "B", "new_pages": 2}}], munmap_vmas(growsdown, 100))
    (sec,) = write_sections(e, 0)
    assert sec["how"] == how
    b = e.k.mm.vmas[vid_of(e, "B")]
    assert (b.vm_start, b.vm_end) == (BASE, BASE + 2 * PAGE)


# =====================================================================
# mremap: MREMAP_MAYMOVE and MREMAP_DONTUNMAP
# =====================================================================

ADJ = [
    {"name": "A", "start": hex(BASE), "pages": 4, "anon_vma": True},
    {"name": "C", "start": hex(BASE + 4 * PAGE), "pages": 4, "prot": "r", "anon_vma": True},
]


def bounds(e: Engine) -> list[tuple[int, int]]:
    return [(v.vm_start, v.vm_end) for v in e.k.mm.live_vmas()]


def test_mremap_grow_without_maymove_that_cannot_expand_is_enomem() -> None:
    # A cannot grow in place (C is right above it) and MREMAP_MAYMOVE is not set:
    # mremap returns -ENOMEM and nothing changes.
    e = one(
        [
            {"fault": {"vma": "A", "page": 0, "access": "write"}},
            {"mremap": {"vma": "A", "new_pages": 8}},
        ],
        ADJ,
    )
    (err,) = events(e, "mremap:enomem")
    assert err["a"] == vid_of(e, "A") and err["b"] == 8 * PAGE
    assert bounds(e) == [(BASE, BASE + 4 * PAGE), (BASE + 4 * PAGE, BASE + 8 * PAGE)]
    assert not events(e, "copy_vma:vm_area_dup") and not events(e, "vma_start_write:seq_set")
    assert e.k.names["A"] == (BASE, BASE + 4 * PAGE)
    assert e.k.mm.vmas[vid_of(e, "A")].pages == {0: 1}


def test_mremap_grow_with_maymove_that_cannot_expand_moves() -> None:
    e = one([{"mremap": {"vma": "A", "new_pages": 8, "maymove": True}}], ADJ)
    assert "mremap:move" in codes(e) and not events(e, "mremap:enomem")
    (dup,) = events(e, "copy_vma:vm_area_dup")
    new = e.k.mm.vmas[dup["a"]]
    assert e.k.names["A"] == (new.vm_start, new.vm_end) and new.npages == 8
    assert e.k.mm.vmas[vid_of(e, "A")].detached


def test_mremap_grow_with_maymove_expands_in_place_when_it_can() -> None:
    vmas = [ADJ[0]]
    e = one([{"mremap": {"vma": "A", "new_pages": 8, "maymove": True}}], vmas)
    assert "mremap:expand_in_place" in codes(e)
    assert not events(e, "copy_vma:vm_area_dup")
    assert bounds(e) == [(BASE, BASE + 8 * PAGE)]


def test_mremap_grow_without_maymove_expands_in_place_when_it_can() -> None:
    e = one([{"mremap": {"vma": "A", "new_pages": 8}}], [ADJ[0]])
    assert "mremap:expand_in_place" in codes(e)
    assert bounds(e) == [(BASE, BASE + 8 * PAGE)]


def test_mremap_grow_of_a_range_not_ending_at_the_vma_end_without_maymove_is_enomem() -> None:
    # N is the head of a merged VMA: "old_len == vma->vm_end - addr" fails, so no
    # in-place expansion is tried.
    e = one(
        [
            {"munmap": {"vma": "C"}},
            {"mmap": {"name": "N", "pages": 2, "at": {"vma": "C", "page": 0}}},
            {"mremap": {"vma": "A", "new_pages": 5}},
        ],
        [ADJ[0], {**ADJ[1], "prot": "rw"}],
    )
    assert len(e.k.mm.live_vmas()) == 1
    assert len(events(e, "mremap:enomem")) == 1
    assert bounds(e) == [(BASE, BASE + 6 * PAGE)]


def test_mremap_dontunmap_keeps_the_source_vma_without_pages_or_anon_vma() -> None:
    e = one(
        [
            {"touch": {"vma": "A", "pages": "0-3", "access": "write"}},
            {
                "mremap": {
                    "vma": "A",
                    "new_pages": 4,
                    "maymove": True,
                    "dontunmap": True,
                    "name": "M",
                }
            },
        ],
        [ADJ[0]],
    )
    src = e.k.mm.vmas[vid_of(e, "A")]
    (dup,) = events(e, "copy_vma:vm_area_dup")
    new = e.k.mm.vmas[dup["a"]]
    # The source stays mapped where it was, empty, without its anon_vma.
    assert not src.detached and (src.vm_start, src.vm_end) == (BASE, BASE + 4 * PAGE)
    assert src.pages == {} and src.anon_vma is None
    # The copy has the pages and the anon_vma (copy_vma clones it).
    assert sorted(new.pages) == [0, 1, 2, 3] and new.anon_vma is not None
    assert e.k.names["A"] == (BASE, BASE + 4 * PAGE)
    assert e.k.names["M"] == (new.vm_start, new.vm_end)
    # No munmap: move_vma returns before do_vmi_munmap; both VMAs were write-locked.
    assert not events(e, "vma_iter_clear") and not events(e, "vma_mark_detached")
    (dontunmap,) = events(e, "move_vma:dontunmap")
    assert dontunmap["a"] == src.vid and dontunmap["b"] == 1
    (sec,) = [s for s in write_sections(e, 0) if "move_vma:dontunmap" in s["events"]]
    assert sec["locked"] == [src.vid, new.vid] and sec["how"] == "unlock"


def test_after_dontunmap_the_sources_next_write_fault_needs_mmap_lock() -> None:
    e = one(
        [
            {"touch": {"vma": "A", "pages": "0-1", "access": "write"}},
            {
                "mremap": {
                    "vma": "A",
                    "new_pages": 4,
                    "maymove": True,
                    "dontunmap": True,
                    "name": "M",
                }
            },
            {"fault": {"vma": "A", "page": 0, "access": "write"}},
        ],
        [ADJ[0]],
    )
    last = events(e, prefix="lock_vma_under_rcu:abort:")
    assert [r["event"] for r in last][-1] == "lock_vma_under_rcu:abort:no_anon_vma"
    assert "anon_vma_prepare" in codes(e, 0)
    assert e.k.mm.vmas[vid_of(e, "A")].pages == {0: 1}


def test_mremap_dontunmap_of_part_of_a_vma_keeps_its_anon_vma() -> None:
    # N is the tail of a merged VMA: unlink_anon_vmas needs the source to be
    # exactly the old range, so the source keeps its anon_vma and its other pages.
    e = one(
        [
            {"munmap": {"vma": "C"}},
            {"mmap": {"name": "N", "pages": 2, "at": {"vma": "C", "page": 0}}},
            {"touch": {"vma": "A", "pages": "0-3", "access": "write"}},
            {"touch": {"vma": "N", "pages": "0-1", "access": "write"}},
            {"mremap": {"vma": "N", "new_pages": 2, "maymove": True, "dontunmap": True}},
        ],
        [ADJ[0], {**ADJ[1], "prot": "rw"}],
    )
    src = e.k.mm.vmas[vid_of(e, "A")]
    assert (src.vm_start, src.vm_end) == (BASE, BASE + 6 * PAGE)
    assert src.anon_vma is not None and sorted(src.pages) == [0, 1, 2, 3]
    (flag,) = events(e, "move_vma:dontunmap")
    assert flag["b"] == 0
    (dup,) = events(e, "copy_vma:vm_area_dup")
    assert sorted(e.k.mm.vmas[dup["a"]].pages) == [0, 1]


@pytest.mark.parametrize(
    "args",
    [
        {"new_pages": 4, "dontunmap": True},  # no MREMAP_MAYMOVE
        {"new_pages": 8, "dontunmap": True, "maymove": True},  # resizing
    ],
)
def test_mremap_dontunmap_misuse_is_einval_before_the_lock(args: dict[str, Any]) -> None:
    e = one([{"mremap": {"vma": "A", **args}}], [ADJ[0]])
    (err,) = events(e, "mremap:einval")
    assert err["a"] == BASE and err["b"] == 4 * PAGE
    c = codes(e, 0)
    assert "mmap_write_lock" not in " ".join(c) and "syscall:mremap" not in c
    assert bounds(e) == [(BASE, BASE + 4 * PAGE)]


# =====================================================================
# The loader: the flags are schema-validated
# =====================================================================

DOC = """\
name: t
description: mremap flags
mm:
  vmas:
    - {{name: A, pages: 4}}
threads:
  - name: T
    ops:
      - mremap: {{vma: A, new_pages: 4, {flags}}}
"""


def test_loader_accepts_maymove_and_dontunmap() -> None:
    sc = load_scenario_text(DOC.format(flags="maymove: true, dontunmap: true, name: M"))
    (op,) = sc.threads[0].ops
    assert op.args["maymove"] is True and op.args["dontunmap"] is True
    sc = load_scenario_text(DOC.format(flags="move: false"))
    (op,) = sc.threads[0].ops
    assert op.args["maymove"] is False and op.args["dontunmap"] is False


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ("fixed: true", "fixed"),
        ("dontunmap: 1", "dontunmap"),
        ("maymove: yes please", "maymove"),
        ("name: M", "maymove"),
    ],
)
def test_loader_rejects_unknown_or_bad_mremap_flags(flags: str, needle: str) -> None:
    with pytest.raises(ScenarioErrors) as err:
        load_scenario_text(DOC.format(flags=flags), "flags.yaml")
    text = str(err.value)
    assert needle in text and "flags.yaml:9" in text


# =====================================================================
# Narration of the new events
# =====================================================================


@pytest.mark.parametrize(
    ("vmas", "ops", "code", "source", "words"),
    [
        (
            ADJ,
            [{"mremap": {"vma": "A", "new_pages": 8}}],
            "mremap:enomem",
            "mm/mremap.c",
            "MREMAP_MAYMOVE",
        ),
        (
            [ADJ[0]],
            [{"mremap": {"vma": "A", "new_pages": 4, "dontunmap": True}}],
            "mremap:einval",
            "mm/mremap.c",
            "MREMAP_DONTUNMAP",
        ),
        (
            [ADJ[0]],
            [{"mremap": {"vma": "A", "new_pages": 4, "maymove": True, "dontunmap": True}}],
            "move_vma:dontunmap",
            "mm/mremap.c",
            "unlink_anon_vmas",
        ),
        (
            munmap_vmas(True, 100),
            [{"munmap": {"vma": "B"}}],
            "vma_iter_clear",
            "mm/internal.h",
            "grows down",
        ),
        (
            stack_vmas(stack_anon_vma=False),
            [{"munmap": {"vma": "room"}}, fault_below_stack(ROOM_PAGES - 1)],
            "anon_vma_prepare:expand_stack",
            "include/linux/rmap.h",
            "expand_downwards",
        ),
        (
            stack_vmas(),
            [{"munmap": {"vma": "room"}}, fault_below_stack(GAP_PAGES - 1)],
            "expand_stack:guard_gap",
            "mm/mmap.c",
            "256 pages",
        ),
    ],
)
def test_new_events_are_narrated(
    vmas: list[dict[str, Any]], ops: list[dict[str, Any]], code: str, source: str, words: str
) -> None:
    e = one(ops, vmas, FIX)
    (row,) = events(e, code)
    i = row["step"]
    n = narrate(e, i, e.state_at(i), e.state_at(i + 1))
    assert n.source == source
    assert words in n.text and "` and records `" not in n.text
