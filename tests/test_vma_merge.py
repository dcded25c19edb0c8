"""``vma_merge`` and its callers as in Linux 6.4.0 (mm/mmap.c, mm/mprotect.c, mm/madvise.c).

Each test builds a layout at fixed addresses and checks, from the kernel source
rather than from the model's output: which VMA survives, its bounds and
anon_vma, and which VMAs ``vma_prepare`` write-locked (their ``vm_lock_seq``
set to ``mm_lock_seq`` inside the op's mmap write section).  The case numbers
are those of the comment above 6.4.0's ``vma_merge``:

    ****             ****                   ****
   PPPPPPNNNNNN    PPPPPPNNNNNN       PPPPPPCCCCCC
   cannot merge    might become       might become
                   PPNNNNNNNNNN       PPPPPPPPPPCC
                   case 4             case 5
                       ****               ****
                   PPPP    NNNN       PPPPCCCCNNNN
                   PPPPPPPPPPPP 1 or  PPPPPPPPPPPP 6 or
                   PPPPPPPPNNNN 2 or  PPPPPPPPNNNN 7 or
                   PPPPNNNNNNNN 3     PPPPNNNNNNNN 8

``vma_prepare`` locks ``vma``, then ``adj_next``, ``remove``, ``remove2``.
"""

from __future__ import annotations

from typing import Any

import pytest
from kernel_helpers import (
    PAGE,
    assert_clean,
    events,
    make_scenario,
    run,
    vid_of,
    write_sections,
)

from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M
from vmaviz.model.ops import (
    can_vma_merge_after,
    can_vma_merge_before,
    is_mergeable_anon_vma,
    is_mergeable_vma,
    vma_merge_plan,
)

BASE = 0x1000_0000


def vma(name: str, page: int, pages: int = 4, **kw: Any) -> dict[str, Any]:
    """A VMA spec at ``BASE + page * PAGE``."""
    return {"name": name, "start": hex(BASE + page * PAGE), "pages": pages, **kw}


def go(vmas: list[dict[str, Any]], ops: list[dict[str, Any]]) -> Engine:
    e = run(make_scenario(vmas=vmas, threads=[{"name": "T", "ops": ops}]), keep_freed=True)
    assert_clean(e)
    return e


def layout(e: Engine) -> list[tuple[int, int, int]]:
    """(vid, first page, end page) of every VMA in the tree, in address order."""
    return [
        (v.vid, (v.vm_start - BASE) // PAGE, (v.vm_end - BASE) // PAGE) for v in e.k.mm.live_vmas()
    ]


def locked_by_last_op(e: Engine) -> list[int]:
    """The VMAs write-locked (``vm_lock_seq`` set to ``mm_lock_seq``) in the last section."""
    return list(write_sections(e, 0)[-1]["locked"])


def merge_case(e: Engine) -> list[str]:
    """The ``vma_merge`` case notes of the run, in order."""
    return [r["note"] for r in events(e, "vma_merge")]


def prepare_locked(e: Engine) -> list[int]:
    """VMAs write-locked from inside ``vma_prepare`` (by call stack) in the last section."""
    sec = write_sections(e, 0)[-1]
    out = []
    for r in events(e, "vma_start_write:seq_set"):
        if sec["start"] <= r["step"] <= sec["end"] and "vma_prepare" in r["stack"]:
            out.append(r["a"])
    return out


# ----------------------------------------------------------- the eight cases


def test_case_4_tail_of_prev_joins_next_boundary_moves_down() -> None:
    # A rw [0,4) without anon_vma, B [4,8) made read-only (keeps VM_ACCOUNT) with
    # an anon_vma.  mprotect(A pages 2-3, r): prev = A (the range starts inside
    # it), no curr, next = B, which can_vma_merge_before: case 4.
    e = go(
        [vma("A", 0), vma("B", 4, anon_vma=True)],
        [
            {"mprotect": {"vma": "B", "prot": "r"}},
            {"mprotect": {"vma": "A", "pages": "2-3", "prot": "r"}},
        ],
    )
    a, b = vid_of(e, "A"), vid_of(e, "B")
    assert merge_case(e) == ["case 4"]
    assert layout(e) == [(a, 0, 2), (b, 2, 8)]  # no split: the boundary moved
    mm = e.k.mm
    assert mm.vmas[b].anon_vma is not None
    assert mm.vmas[b].pgoff == (BASE >> 12) + 2  # adjust->vm_pgoff += adj_start >> PAGE_SHIFT
    # vma_prepare: vma (= prev, A) then adj_next (B).
    assert prepare_locked(e) == [a, b]
    assert set(locked_by_last_op(e)) == {a, b}
    assert not events(e, "__split_vma:vm_area_dup")


def test_case_5_head_of_curr_joins_prev_boundary_moves_up() -> None:
    # A made read-only (has an anon_vma), B rw without.  mprotect(B pages 0-1, r):
    # prev = A, curr = B, end < B's end: case 5, B's start moves up.
    e = go(
        [vma("A", 0, anon_vma=True), vma("B", 4)],
        [
            {"mprotect": {"vma": "A", "prot": "r"}},
            {"mprotect": {"vma": "B", "pages": "0-1", "prot": "r"}},
        ],
    )
    a, b = vid_of(e, "A"), vid_of(e, "B")
    assert merge_case(e) == ["case 5"]
    assert layout(e) == [(a, 0, 6), (b, 6, 8)]
    assert e.k.mm.vmas[a].vm_flags & M.VM_ACCESS_FLAGS == M.VM_READ
    assert e.k.mm.vmas[b].vm_flags & M.VM_WRITE  # the rest of B keeps its flags
    assert e.k.mm.vmas[b].pgoff == (BASE >> 12) + 6
    assert prepare_locked(e) == [a, b]  # vma (A), adj_next (B)


def test_case_6_prev_absorbs_curr_and_next() -> None:
    # A r, B rw, C r, all VM_ACCOUNT; only C has an anon_vma.  mprotect(B, r):
    # prev = A, curr = B, next = C: case 6; dup_anon_vma(prev, next) gives A C's.
    e = go(
        [vma("A", 0), vma("B", 4), vma("C", 8, anon_vma=True)],
        [
            {"mprotect": {"vma": "A", "prot": "r"}},
            {"mprotect": {"vma": "C", "prot": "r"}},
            {"mprotect": {"vma": "B", "prot": "r"}},
        ],
    )
    a, b, c = vid_of(e, "A"), vid_of(e, "B"), vid_of(e, "C")
    c_anon = e.k.mm.vmas[c].anon_vma
    assert merge_case(e) == ["case 6"]
    assert layout(e) == [(a, 0, 12)]
    assert e.k.mm.vmas[a].anon_vma == c_anon is not None
    assert e.k.mm.vmas[b].detached and e.k.mm.vmas[c].detached
    assert prepare_locked(e) == [a, b, c]  # vma, remove (curr), remove2 (next)
    assert e.k.mm.map_count == 1


def test_case_7_prev_absorbs_curr() -> None:
    # A r with an anon_vma, B rw without, nothing after B.  mprotect(B, r): case 7.
    e = go(
        [vma("A", 0, anon_vma=True), vma("B", 4)],
        [
            {"mprotect": {"vma": "A", "prot": "r"}},
            {"mprotect": {"vma": "B", "prot": "r"}},
        ],
    )
    a, b = vid_of(e, "A"), vid_of(e, "B")
    a_anon = e.k.mm.vmas[a].anon_vma
    assert merge_case(e) == ["case 7"]
    assert layout(e) == [(a, 0, 8)]
    assert e.k.mm.vmas[a].anon_vma == a_anon is not None
    assert prepare_locked(e) == [a, b]  # vma (prev), remove (curr)


def test_case_8_next_absorbs_curr() -> None:
    # A rw, B r with an anon_vma; nothing before A.  mprotect(A, r): prev is NULL,
    # curr = A, next = B: case 8, B grows down and takes A's vm_pgoff.
    e = go(
        [vma("A", 0), vma("B", 4, anon_vma=True)],
        [
            {"mprotect": {"vma": "B", "prot": "r"}},
            {"mprotect": {"vma": "A", "prot": "r"}},
        ],
    )
    a, b = vid_of(e, "A"), vid_of(e, "B")
    assert merge_case(e) == ["case 8"]
    assert layout(e) == [(b, 0, 8)]
    assert e.k.mm.vmas[b].pgoff == BASE >> 12  # vma_pgoff = curr->vm_pgoff
    assert e.k.mm.vmas[b].anon_vma is not None
    assert prepare_locked(e) == [b, a]  # vma (next), remove (curr)


def test_case_1_mremap_expansion_reaches_next() -> None:
    # mremap grows A over the hole up to C: vma_merge(prev = A, hole): case 1.
    # A has no anon_vma, C has one: dup_anon_vma(prev, next) gives it to A.
    e = go(
        [vma("A", 0), vma("C", 8, anon_vma=True)],
        [{"mremap": {"vma": "A", "new_pages": 8}}],
    )
    a, c = vid_of(e, "A"), vid_of(e, "C")
    c_anon = e.k.mm.vmas[c].anon_vma
    assert merge_case(e) == ["case 1"]
    assert layout(e) == [(a, 0, 12)]
    assert e.k.mm.vmas[a].anon_vma == c_anon is not None
    assert prepare_locked(e) == [a, c]  # vma (prev), remove (next)
    assert "mremap" in events(e, "vma_merge")[0]["stack"]


def test_case_2_mremap_expansion_grows_prev_only() -> None:
    # A has an anon_vma and C none: C cannot absorb A's (is_mergeable_anon_vma),
    # so only case 2: A grows over the extension.
    e = go(
        [vma("A", 0, anon_vma=True), vma("C", 8)],
        [{"mremap": {"vma": "A", "new_pages": 8}}],
    )
    a, c = vid_of(e, "A"), vid_of(e, "C")
    assert merge_case(e) == ["case 2"]
    assert layout(e) == [(a, 0, 8), (c, 8, 12)]
    assert prepare_locked(e) == [a]


def test_case_3_next_grows_down_over_an_unmapped_range() -> None:
    # No modelled op calls vma_merge with an unmapped range and no mergeable
    # prev, so the decision is checked directly: prev NULL, [0,4) unmapped,
    # next = B at 4: vma = next, vma_start = addr, vm_pgoff = next's - pglen.
    e = go([vma("B", 4, anon_vma=True)], [])
    b = e.k.mm.vmas[vid_of(e, "B")]
    plan = vma_merge_plan(e.k.mm, None, BASE, BASE + 4 * PAGE, b.vm_flags, None, None, b.pgoff - 4)
    assert plan is not None and plan.case == 3
    assert plan.res is b and plan.vma is b
    assert (plan.vma_start, plan.vma_end, plan.vma_pgoff) == (BASE, b.vm_end, b.pgoff - 4)
    assert plan.lock == [b.vid]
    assert plan.remove is None and plan.adjust is None


def test_mmap_next_only_expands_next_and_locks_only_it() -> None:
    # mmap_region's vma_expand of next (the mmap analogue of case 3): map into
    # the hole H leaves below B.
    e = go(
        [vma("H", 0), vma("B", 4, anon_vma=True)],
        [
            {"munmap": {"vma": "H"}},
            {"mmap": {"name": "N", "pages": 4, "fixed": True, "at": {"vma": "H", "page": 0}}},
        ],
    )
    b = vid_of(e, "B")
    assert layout(e) == [(b, 0, 8)]
    assert [r["a"] for r in events(e, "vma_expand")] == [b]
    assert prepare_locked(e) == [b]
    assert e.k.mm.vmas[b].pgoff == BASE >> 12


@pytest.mark.parametrize("noreserve", [False, True])
def test_map_noreserve_sets_vm_noreserve_not_vm_account_and_does_not_merge(
    noreserve: bool,
) -> None:
    # mm/mmap.c do_mmap: MAP_NORESERVE on a private mapping sets VM_NORESERVE;
    # accountable_mapping is then false (no VM_ACCOUNT), and is_mergeable_vma
    # compares vm_flags, so the new mapping does not expand B (mmap_region).
    e = go(
        [vma("H", 0), vma("B", 4)],
        [
            {"munmap": {"vma": "H"}},
            {
                "mmap": {
                    "name": "N",
                    "pages": 4,
                    "fixed": True,
                    "at": {"vma": "H", "page": 0},
                    "noreserve": noreserve,
                }
            },
        ],
    )
    b = vid_of(e, "B")
    if noreserve:
        n = vid_of(e, "N")
        assert layout(e) == [(n, 0, 4), (b, 4, 8)]
        flags = e.k.mm.vmas[n].vm_flags
        assert flags & M.VM_NORESERVE and not flags & M.VM_ACCOUNT
    else:
        assert layout(e) == [(b, 0, 8)]
        assert e.k.mm.vmas[b].vm_flags & M.VM_ACCOUNT


# ------------------------------------------------------ is_mergeable_anon_vma


def test_is_mergeable_anon_vma_needs_a_singular_chain_on_the_existing_side() -> None:
    e = go([vma("A", 0, anon_vma=True), vma("B", 8)], [])
    a, b = e.k.mm.vmas[vid_of(e, "A")], e.k.mm.vmas[vid_of(e, "B")]
    # A neighbour with its own anon_vma absorbs a range without one...
    assert is_mergeable_anon_vma(None, a.anon_vma, a)
    # ... but one with no anon_vma (empty chain) cannot absorb a range that has one.
    assert not is_mergeable_anon_vma(a.anon_vma, None, b)
    assert is_mergeable_anon_vma(None, None, b)
    # prev-and-next test (vma NULL): one NULL side suffices; two differ: no.
    assert is_mergeable_anon_vma(a.anon_vma, None, None)
    assert not is_mergeable_anon_vma(1, 2, None)
    # An anon_vma chain inherited through fork is not singular.
    a.anon_vma_forked = True
    assert not is_mergeable_anon_vma(None, a.anon_vma, a)
    assert is_mergeable_anon_vma(a.anon_vma, a.anon_vma, a)


def test_mmap_between_prev_without_and_next_with_anon_vma_merges_only_next() -> None:
    # mmap_region tests next first (it can take the anon-less range), then prev
    # against next's anon_vma: prev has none, so prev cannot absorb next's.
    e = go(
        [vma("P", 0), vma("H", 4), vma("N", 8, anon_vma=True)],
        [
            {"munmap": {"vma": "H"}},
            {"mmap": {"name": "X", "pages": 4, "fixed": True, "at": {"vma": "H", "page": 0}}},
            {"touch": {"vma": "X", "pages": "0"}},
        ],
    )
    p, n = vid_of(e, "P"), vid_of(e, "N")
    assert layout(e) == [(p, 0, 4), (n, 4, 12)]
    assert e.k.mm.vmas[n].anon_vma is not None
    # The later fault on the merged range runs under the VMA lock: no no_anon_vma.
    assert not events(e, "lock_vma_under_rcu:no_anon_vma")


def test_mmap_between_prev_with_and_next_without_anon_vma_merges_all_three() -> None:
    e = go(
        [vma("P", 0, anon_vma=True), vma("H", 4), vma("N", 8)],
        [
            {"munmap": {"vma": "H"}},
            {"mmap": {"name": "X", "pages": 4, "fixed": True, "at": {"vma": "H", "page": 0}}},
        ],
    )
    p, n = vid_of(e, "P"), vid_of(e, "N")
    assert layout(e) == [(p, 0, 12)]
    assert e.k.mm.vmas[p].anon_vma is not None
    assert prepare_locked(e) == [p, n]  # vma_expand: vma, remove (next)


def test_neighbour_without_anon_vma_cannot_absorb_the_tail_that_has_one() -> None:
    # Case 4 refused: A's anon_vma cannot go into B (no anon_vma): split instead.
    e = go(
        [vma("A", 0, anon_vma=True), vma("B", 4)],
        [
            {"mprotect": {"vma": "B", "prot": "r"}},
            {"mprotect": {"vma": "A", "pages": "2-3", "prot": "r"}},
        ],
    )
    assert not events(e, "vma_merge")
    assert [(s, t) for _, s, t in layout(e)] == [(0, 2), (2, 4), (4, 8)]


# --------------------------------------------------------------- VM_ACCOUNT


def test_vm_account_kept_by_mprotect_lets_the_pieces_remerge() -> None:
    # All three rw private: VM_ACCOUNT.  mprotect(B, r) keeps it, so mprotect(B, rw)
    # makes B's flags equal A's and C's again: case 6 back into one VMA.
    e = go(
        [vma("A", 0), vma("B", 4), vma("C", 8)],
        [
            {"mprotect": {"vma": "B", "prot": "r"}},
            {"mprotect": {"vma": "B", "prot": "rw"}},
        ],
    )
    a = vid_of(e, "A")
    assert merge_case(e) == ["case 6"]
    assert layout(e) == [(a, 0, 12)]
    assert e.k.mm.vmas[a].vm_flags & M.VM_ACCOUNT


def test_vm_account_set_on_first_write_blocks_the_remerge() -> None:
    # A read-only mapping has no VM_ACCOUNT; mprotect_fixup adds it when page 1
    # first becomes writable and never clears it: back to r, page 1's flags
    # differ from its neighbours' by VM_ACCOUNT, so nothing merges.
    e = go(
        [vma("A", 0, prot="r")],
        [
            {"mprotect": {"vma": "A", "pages": "1", "prot": "rw"}},
            {"mprotect": {"vma": "A", "pages": "1", "prot": "r"}},
        ],
    )
    assert not events(e, "vma_merge")
    vmas = e.k.mm.live_vmas()
    assert [(v.vm_start - BASE) // PAGE for v in vmas] == [0, 1, 2]
    assert [bool(v.vm_flags & M.VM_ACCOUNT) for v in vmas] == [False, True, False]
    assert all(v.vm_flags & M.VM_ACCESS_FLAGS == M.VM_READ for v in vmas)


# --------------------------------------------- is_mergeable_vma and its callers


def test_is_mergeable_vma_ignores_only_softdirty() -> None:
    e = go([vma("A", 0)], [])
    a = e.k.mm.vmas[vid_of(e, "A")]
    f = a.vm_flags
    assert is_mergeable_vma(a, None, f ^ M.VM_SOFTDIRTY, 0, None)
    for bit in (M.VM_ACCOUNT, M.VM_DONTDUMP, M.VM_WIPEONFORK, M.VM_DONTCOPY, M.VM_LOCKED):
        assert not is_mergeable_vma(a, None, f ^ bit, 0, None)
    assert not is_mergeable_vma(a, "f", f, 0, None)  # another file
    assert not is_mergeable_vma(a, None, f, M.UFFD_CTX, None)  # another uffd context
    assert not is_mergeable_vma(a, None, f, 0, "name")  # another anon_vma_name
    # pgoff contiguity on both sides.
    assert can_vma_merge_after(a, f, None, None, a.pgoff + 4, 0, None)
    assert not can_vma_merge_after(a, f, None, None, a.pgoff + 5, 0, None)
    assert can_vma_merge_before(a, f, None, None, a.pgoff, 0, None)
    assert not can_vma_merge_before(a, f, None, None, a.pgoff + 1, 0, None)


@pytest.mark.parametrize(("pgoff", "merged"), [(4, True), (0, False)])
def test_file_mappings_merge_only_with_contiguous_pgoff(pgoff: int, merged: bool) -> None:
    # Map file pages 0-3 where H was, then file pages ``pgoff``.. right after.
    e = go(
        [vma("H", 0, pages=8)],
        [
            {"munmap": {"vma": "H"}},
            {
                "mmap": {
                    "name": "F0",
                    "pages": 4,
                    "file": "data",
                    "prot": "r",
                    "fixed": True,
                    "at": {"vma": "H", "page": 0},
                }
            },
            {
                "mmap": {
                    "name": "F1",
                    "pages": 4,
                    "file": "data",
                    "prot": "r",
                    "fixed": True,
                    "at": {"vma": "H", "page": 4},
                    "pgoff": pgoff,
                }
            },
        ],
    )
    spans = [(s, t) for _, s, t in layout(e)]
    assert spans == ([(0, 8)] if merged else [(0, 4), (4, 8)])


def test_madvise_dontdump_on_a_tail_moves_the_boundary_into_next() -> None:
    # madvise_update_vma goes through vma_merge too: case 4 with VM_DONTDUMP.
    e = go(
        [vma("A", 0), vma("B", 4)],
        [
            {"madvise": {"vma": "B", "advice": "dontdump"}},
            {"madvise": {"vma": "A", "pages": "3", "advice": "dontdump"}},
        ],
    )
    a, b = vid_of(e, "A"), vid_of(e, "B")
    assert merge_case(e) == ["case 4"]
    assert layout(e) == [(a, 0, 3), (b, 3, 8)]
    assert e.k.mm.vmas[b].vm_flags & M.VM_DONTDUMP
    assert "madvise_update_vma" in events(e, "vma_merge")[0]["stack"]
    assert prepare_locked(e) == [a, b]


def test_uffd_register_of_the_second_vma_merges_into_a_registered_prev() -> None:
    # userfaultfd_register: the new flags and this context equal A's: case 7.
    e = go(
        [vma("A", 0, uffd=True), vma("B", 4)],
        [{"uffd_register": {"vma": "B"}}],
    )
    a = vid_of(e, "A")
    assert merge_case(e) == ["case 7"]
    assert layout(e) == [(a, 0, 8)]
    assert e.k.mm.vmas[a].uffd_ctx == M.UFFD_CTX


def test_mprotect_stack_uses_the_6_4_names() -> None:
    e = go(
        [vma("A", 0), vma("B", 4)],
        [{"mprotect": {"vma": "B", "pages": "1", "prot": "r"}}],
    )
    (reset,) = events(e, "vm_flags_reset")
    assert "do_mprotect_pkey" in reset["stack"] and "mprotect_fixup" in reset["stack"]
    for r in events(e, "vma_start_write:seq_set"):
        assert "vma_modify_flags" not in r["stack"]
    # The middle page: two splits, then vm_flags_reset locks the changed VMA.
    assert len(events(e, "__split_vma:vm_area_dup")) == 2


def test_flags_text_shows_the_merge_flags() -> None:
    text = M.flags_text(M.VM_READ | M.VM_ACCOUNT | M.VM_DONTDUMP | M.VM_SOFTDIRTY)
    assert text == "r--p account,dontdump,softdirty"
    assert "wipeonfork" in M.flags_text(M.VM_WIPEONFORK)
    assert "dontcopy" in M.flags_text(M.VM_DONTCOPY)


# ------------------------------------------- copy_vma: the mremap destination

#: Where ``arch_get_unmapped_area_topdown`` puts a 4-page move when the 4 pages
#: below ``MMAP_BASE`` are taken: the top-most free gap, right below them.
TOP = M.MMAP_BASE - 4 * PAGE
DEST = TOP - 4 * PAGE


def top_vma(name: str, **kw: Any) -> dict[str, Any]:
    """A 4-page VMA ending at ``MMAP_BASE``."""
    return {"name": name, "start": hex(TOP), "pages": 4, **kw}


def test_copy_vma_merges_an_unfaulted_move_into_the_next_vma() -> None:
    # mm/mmap.c copy_vma: S has no anon_vma, so pgoff = DEST >> PAGE_SHIFT, which
    # is contiguous with N's (a private anonymous mmap has vm_pgoff = addr >>
    # PAGE_SHIFT); find_vma_prev gives S (not adjacent), so vma_merge is case 3:
    # N grows down over the destination, and vma_prepare write-locks N only (S
    # was write-locked by move_vma).  No vm_area_dup; do_vmi_munmap then frees S.
    e = go(
        [vma("S", 0), top_vma("N")],
        [{"mremap": {"vma": "S", "new_pages": 4, "move": True}}],
    )
    s, n = vid_of(e, "S"), vid_of(e, "N")
    assert merge_case(e) == ["case 3"]
    assert [(v.vid, v.vm_start, v.vm_end) for v in e.k.mm.live_vmas()] == [(n, DEST, M.MMAP_BASE)]
    assert e.k.mm.vmas[n].pgoff == DEST >> M.PAGE_SHIFT
    assert e.k.mm.vmas[s].detached
    assert prepare_locked(e) == [n]
    assert s in locked_by_last_op(e) and n in locked_by_last_op(e)
    assert not events(e, "copy_vma:vm_area_dup")
    (merged,) = events(e, "copy_vma:vma_merge")
    assert merged["a"] == n
    assert e.k.names["S"] == (DEST, DEST + 4 * PAGE)


def test_copy_vma_of_a_faulted_vma_keeps_its_pgoff_and_does_not_merge() -> None:
    # With an anon_vma, copy_vma keeps new_pgoff = vm_pgoff + offset (S's own
    # BASE >> PAGE_SHIFT): not contiguous with N, so vm_area_dup + vma_link.
    e = go(
        [vma("S", 0, anon_vma=True), top_vma("N")],
        [{"mremap": {"vma": "S", "new_pages": 4, "move": True}}],
    )
    s, n = vid_of(e, "S"), vid_of(e, "N")
    assert merge_case(e) == []
    (dup,) = events(e, "copy_vma:vm_area_dup")
    copy = e.k.mm.vmas[dup["a"]]
    assert (copy.vm_start, copy.vm_end) == (DEST, TOP)
    assert copy.pgoff == BASE >> M.PAGE_SHIFT
    assert [v.vid for v in e.k.mm.live_vmas()] == [copy.vid, n]
    assert e.k.mm.vmas[s].detached


def test_copy_vma_source_merged_into_itself_moves_on_with_the_merged_vma() -> None:
    # "Source vma may have been merged into new_vma": an unfaulted S just below
    # MMAP_BASE moved to the gap right below itself.  vma_merge(prev, DEST) is
    # case 3 with next = S (S grows down); S is already write-locked by
    # move_vma, so vma_prepare takes no lock.  move_vma goes on with S; the
    # munmap of the old range splits S (__split_vma, new VMA above) and frees
    # the upper part: S is left at DEST with vm_pgoff = DEST >> PAGE_SHIFT.
    e = go([top_vma("S")], [{"mremap": {"vma": "S", "new_pages": 4, "move": True}}])
    s = vid_of(e, "S")
    assert merge_case(e) == ["case 3"]
    assert [(v.vid, v.vm_start, v.vm_end) for v in e.k.mm.live_vmas()] == [(s, DEST, TOP)]
    assert e.k.mm.vmas[s].pgoff == DEST >> M.PAGE_SHIFT
    assert prepare_locked(e) == []
    assert not events(e, "copy_vma:vm_area_dup")
    assert e.k.names["S"] == (DEST, TOP)
