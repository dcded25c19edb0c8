"""madvise's read-lock advice and its page effects, as Linux 6.4.0 mm/madvise.c has them.

Each test names the 6.4.0 function it follows; the expected PTE states come from
that source (``madvise_dontneed_free``, ``madvise_free_pte_range``,
``madvise_cold_or_pageout_pte_range``, ``madvise_willneed``, ``madvise_populate``
-> ``faultin_vma_page_range``; ``do_swap_page`` for the later faults).
"""

from __future__ import annotations

from typing import Any

import pytest
from kernel_helpers import events, make_scenario, run, vid_of

from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M

VMAS: list[dict[str, Any]] = [{"name": "A", "pages": 8, "anon_vma": True}]


def one(ops: list[Any], vmas: list[dict[str, Any]] = VMAS) -> Engine:
    e = run(make_scenario(vmas=vmas, threads=[{"name": "T", "ops": ops}]))
    assert e.finished and e.k.violations == []
    return e


def pages(e: Engine, name: str) -> dict[int, int]:
    return dict(e.k.mm.vmas[vid_of(e, name)].pages)


def madvise(advice: str, vma: str = "A", rng: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"vma": vma, "advice": advice}
    if rng is not None:
        args["pages"] = rng
    return {"madvise": args}


def touch(rng: str, access: str = "write", vma: str = "A") -> dict[str, Any]:
    return {"touch": {"vma": vma, "pages": rng, "access": access}}


def result(e: Engine) -> Any:
    """What do_madvise returned: the error of madvise:enomem / madvise_vma_behavior:error."""
    (err,) = events(e, "madvise_vma_behavior:error") or [None]
    return err


# ------------------------------------------------------------ the lock each advice takes


@pytest.mark.parametrize(
    "advice",
    ["dontneed", "free", "cold", "pageout", "willneed", "populate_read", "populate_write"],
)
def test_read_lock_advice_takes_mmap_lock_for_read_and_no_vma_lock(advice: str) -> None:
    # madvise_need_mmap_write() is 0 for these.
    e = one([touch("0-3"), madvise(advice)])
    assert e.k.mm.mmap_lock.stats["write_acquired"] == 0
    assert events(e, "vma_start_write:seq_set") == []
    (sc,) = events(e, f"syscall:madvise:{advice}")
    assert sc["a"] == 0


# --------------------------------------------------------------------------- DONTNEED


def test_dontneed_zaps_present_and_swap_ptes() -> None:
    # zap_page_range_single clears every PTE of the range, swap entries included.
    e = one(
        [touch("0-5"), {"swap_out": {"vma": "A", "pages": "0-1"}}, madvise("dontneed", rng="0-3")]
    )
    assert pages(e, "A") == {4: M.PTE_PRESENT, 5: M.PTE_PRESENT}
    (z,) = events(e, "zap_page_range_single")
    assert z["b"] == 4
    assert events(e, "madvise:read_lock_advice")[0]["a"] == 4


def test_dontneed_then_write_faults_a_new_page_under_the_vma_lock() -> None:
    e = one([touch("0-3"), madvise("dontneed"), touch("0-3")])
    assert e.k.vma_lock["success"] == 8 and e.k.vma_lock["retry"] == 0
    assert pages(e, "A") == {i: M.PTE_PRESENT for i in range(4)}


# ------------------------------------------------------------------------------- FREE


def test_free_keeps_ptes_lazy_free_and_clears_swap_entries() -> None:
    # madvise_free_pte_range: swap entries -> free_swap_and_cache + pte clear;
    # present pages keep their PTE (folio_mark_lazyfree); the zero page is skipped.
    e = one(
        [
            touch("0-3"),
            touch("6-7", access="read"),
            {"swap_out": {"vma": "A", "pages": "0"}},
            madvise("free"),
        ]
    )
    assert pages(e, "A") == {
        1: M.PTE_LAZYFREE,
        2: M.PTE_LAZYFREE,
        3: M.PTE_LAZYFREE,
        6: M.PTE_WP,
        7: M.PTE_WP,
    }
    (free,) = events(e, "madvise_free_pte_range")
    assert free["b"] == 3 and "1 swap entries cleared" in free["note"]


def test_free_pages_are_discarded_by_reclaim_unless_written_again() -> None:
    # try_to_unmap_one: a clean lazy-free folio is discarded (no swap entry); a
    # write after MADV_FREE dirties it again and it is swapped out as usual.
    e = one([touch("0-3"), madvise("free"), touch("0"), {"swap_out": {"vma": "A"}}])
    assert pages(e, "A") == {0: M.PTE_SWAP}
    assert len(events(e, "try_to_unmap:discard_lazyfree")) == 3


def test_free_is_einval_on_a_file_or_shared_vma() -> None:
    # madvise_free_single_vma: "MADV_FREE works for only anon vma at the moment".
    for vma in ({"name": "A", "pages": 4, "file": "f"}, {"name": "A", "pages": 4, "shared": True}):
        e = one([touch("0-1", access="read"), madvise("free")], vmas=[vma])
        assert result(e)["b"] == 22
        assert len(pages(e, "A")) == 2


def test_dontneed_and_free_are_einval_on_vm_locked_but_dontneed_locked_is_not() -> None:
    # madvise_dontneed_free_valid_vma: VM_LOCKED is forbidden unless DONTNEED_LOCKED.
    for advice, ok in (("dontneed", False), ("free", False), ("dontneed_locked", True)):
        sc = make_scenario(
            vmas=VMAS, threads=[{"name": "T", "ops": [touch("0-1"), madvise(advice)]}]
        )
        e = Engine(sc)
        e.k.mm.vmas[vid_of(e, "A")].vm_flags |= M.VM_LOCKED
        e.run()
        assert (result(e) is None) == ok, advice
        assert len(pages(e, "A")) == (0 if ok else 2)


# ---------------------------------------------------------------------------- PAGEOUT


def test_pageout_leaves_swap_entries_for_anonymous_pages_only_mapped_once() -> None:
    # madvise_cold_or_pageout_pte_range: present, vm_normal_folio (not the zero
    # page), folio_mapcount == 1 -> reclaim_pages -> swap entry.
    e = one([touch("0-3"), touch("4-5", access="read"), madvise("pageout")])
    assert pages(e, "A") == {
        0: M.PTE_SWAP,
        1: M.PTE_SWAP,
        2: M.PTE_SWAP,
        3: M.PTE_SWAP,
        4: M.PTE_WP,
        5: M.PTE_WP,
    }
    assert events(e, "reclaim_pages")[0]["b"] == 4


def test_pageout_then_fault_retries_under_the_vma_lock_and_swaps_in_under_mmap_lock() -> None:
    # do_swap_page (6.4.0): FAULT_FLAG_VMA_LOCK -> VM_FAULT_RETRY before the swap-in.
    e = one([touch("0-3"), madvise("pageout", rng="0-1"), touch("0-3", access="read")])
    assert len(events(e, "do_swap_page:retry_vma_lock")) == 2
    swapins = events(e, "do_swap_page:swap_in")
    assert len(swapins) == 2
    assert all("mmap_read_lock" not in r["stack"] for r in swapins)
    assert e.k.vma_lock["retry"] == 2
    assert pages(e, "A") == {i: M.PTE_PRESENT for i in range(4)}


def test_pageout_of_a_file_vma_unmaps_its_pages() -> None:
    # reclaim_pages on page-cache folios: try_to_unmap clears the PTE, no swap entry.
    e = one(
        [touch("0-3", access="read"), madvise("pageout")],
        vmas=[{"name": "A", "pages": 4, "file": "f"}],
    )
    assert pages(e, "A") == {}


def test_cold_changes_no_pte() -> None:
    # madvise_cold: folio_deactivate only.
    e = one([touch("0-3"), madvise("cold")])
    assert pages(e, "A") == {i: M.PTE_PRESENT for i in range(4)}
    assert events(e, "madvise_cold_or_pageout_pte_range")[0]["b"] == 4


# --------------------------------------------------------------------------- WILLNEED


def test_willneed_on_anonymous_memory_maps_nothing() -> None:
    # madvise_willneed -> swapin_walk_pmd_entry: read_swap_cache_async only.
    e = one([touch("0-3"), {"swap_out": {"vma": "A", "pages": "0-1"}}, madvise("willneed")])
    assert pages(e, "A") == {0: M.PTE_SWAP, 1: M.PTE_SWAP, 2: M.PTE_PRESENT, 3: M.PTE_PRESENT}
    assert events(e, "read_swap_cache_async")[0]["b"] == 2


def test_willneed_on_a_file_drops_mmap_lock_around_vfs_fadvise() -> None:
    # madvise_willneed: *prev = NULL; mmap_read_unlock; vfs_fadvise; mmap_read_lock.
    e = one([madvise("willneed")], vmas=[{"name": "A", "pages": 4, "file": "f"}])
    (fad,) = events(e, "vfs_fadvise")
    unlocks = [r["step"] for r in events(e, "mmap_read_unlock")]
    locks = [r["step"] for r in events(e, "down_read:acquired") if r["a"] == 0]
    assert len(unlocks) == 2 and len(locks) == 2
    assert locks[0] < unlocks[0] < fad["step"] < locks[1] < unlocks[1]
    assert pages(e, "A") == {}


# --------------------------------------------------------------------------- POPULATE


def test_populate_read_maps_the_zero_page_without_an_anon_vma() -> None:
    # GUP read fault -> do_anonymous_page: the zero page, read-only, no anon_vma.
    e = one([madvise("populate_read")], vmas=[{"name": "A", "pages": 4}])
    assert pages(e, "A") == {i: M.PTE_WP for i in range(4)}
    assert e.k.mm.vmas[vid_of(e, "A")].anon_vma is None
    assert events(e, "anon_vma_prepare") == []


def test_populate_write_allocates_the_anon_vma_and_breaks_cow() -> None:
    # GUP write fault -> do_anonymous_page / do_wp_page -> anon_vma_prepare.
    e = one(
        [touch("0-1", access="read"), madvise("populate_write")], vmas=[{"name": "A", "pages": 4}]
    )
    assert pages(e, "A") == {i: M.PTE_PRESENT for i in range(4)}
    assert e.k.mm.vmas[vid_of(e, "A")].anon_vma is not None
    (prep,) = events(e, "anon_vma_prepare")
    assert "do_madvise" in prep["stack"]


def test_populate_swaps_in_under_mmap_lock_without_retry() -> None:
    # faultin_page runs handle_mm_fault without FAULT_FLAG_VMA_LOCK: no RETRY.
    e = one([touch("0-3"), {"swap_out": {"vma": "A"}}, madvise("populate_read"), touch("0-3")])
    assert events(e, "do_swap_page:retry_vma_lock") == []
    # Pages 4-7 had no PTE: the read populate maps the zero page there.
    assert pages(e, "A") == {
        **{i: M.PTE_PRESENT for i in range(4)},
        **{i: M.PTE_WP for i in range(4, 8)},
    }
    assert e.k.vma_lock["retry"] == 0


def test_populate_write_dirties_lazy_free_pages_again() -> None:
    # FOLL_TOUCH | FOLL_WRITE: set_page_dirty on the lazy-free folio.
    e = one([touch("0-3"), madvise("free"), madvise("populate_write", rng="0-1")])
    assert pages(e, "A") == {
        0: M.PTE_PRESENT,
        1: M.PTE_PRESENT,
        2: M.PTE_LAZYFREE,
        3: M.PTE_LAZYFREE,
    }


@pytest.mark.parametrize(("prot", "advice"), [("r", "populate_write"), ("none", "populate_read")])
def test_populate_without_the_permission_is_einval(prot: str, advice: str) -> None:
    # check_vma_flags without FOLL_FORCE -> -EFAULT -> faultin_vma_page_range: -EINVAL.
    e = one([madvise(advice)], vmas=[{"name": "A", "pages": 4, "prot": prot}])
    assert result(e)["b"] == 22
    assert pages(e, "A") == {}


# ----------------------------------------------------------------------------- REMOVE


def test_remove_needs_a_shared_writable_file() -> None:
    # madvise_remove: no file -> -EINVAL; not VM_SHARED|VM_WRITE -> -EACCES.
    e = one([touch("0-1"), madvise("remove")])
    assert result(e)["b"] == 22
    e = one(
        [touch("0-1", access="read"), madvise("remove")],
        vmas=[{"name": "A", "pages": 4, "file": "f"}],
    )
    assert result(e)["b"] == 13
    assert len(pages(e, "A")) == 2


def test_remove_punches_the_hole_without_mmap_lock() -> None:
    e = one(
        [touch("0-3"), madvise("remove", rng="0-1")],
        vmas=[{"name": "A", "pages": 4, "file": "f", "shared": True}],
    )
    (fal,) = events(e, "vfs_fallocate")
    assert fal["b"] == 2
    assert sorted(pages(e, "A")) == [2, 3]
    down = [
        r["step"]
        for r in events(e, "down_read:acquired")
        if r["a"] == 0 and "do_madvise" in r["stack"]
    ]
    assert len(down) == 2 and down[0] < fal["step"] < down[1]


# ------------------------------------------------- MADV_COLLAPSE (mm/khugepaged.c)

#: Two huge-page ranges, 2 MiB aligned.
HUGE: list[dict[str, Any]] = [
    {"name": "H", "start": "0x7f0000000000", "pages": 1024, "anon_vma": True}
]


def collapse_errno(e: Engine) -> Any:
    """madvise_collapse's final event: ``a`` = THPs made, note = last failure."""
    (row,) = events(e, "madvise_collapse")
    return row


def test_collapse_drops_the_read_lock_and_write_locks_the_vma_per_range() -> None:
    """madvise_collapse: mmap_read_lock from do_madvise (madvise_need_mmap_write is 0);
    hpage_collapse_scan_pmd -> collapse_huge_page drops it, takes mmap_write_lock,
    revalidates and vma_start_write; the next range retakes the read lock and
    hugepage_vma_revalidate runs (mmap_locked == false)."""
    e = one([touch("0-1023", vma="H"), madvise("collapse", vma="H")], vmas=HUGE)
    h = vid_of(e, "H")
    assert [r["a"] for r in events(e, "collapse_huge_page:pmdp_collapse_flush")] == [h, h]
    assert e.k.mm.mmap_lock.stats["write_acquired"] == 2
    # Revalidation of the second range under the read lock madvise_collapse retook.
    assert len(events(e, "madvise_collapse:hugepage_vma_revalidate")) == 1
    assert collapse_errno(e)["b"] == 2
    assert result(e) is None
    assert e.k.mm.mmap_lock.is_free
    seq = [r["event"] for r in events(e, prefix="")]
    first_write = seq.index("vma_start_write:seq_set")
    assert seq.index("madvise_collapse:hpage_collapse_scan_pmd") < first_write


def test_collapse_refused_by_hugepage_vma_check_is_einval_without_a_write_lock() -> None:
    """madvise_collapse: !hugepage_vma_check -> -EINVAL before any lock change (a VMA
    too small for one huge page fails transhuge_vma_suitable)."""
    e = one([touch("0-7"), madvise("collapse")])
    assert "hugepage_vma_check" in collapse_errno(e)["note"]
    assert events(e, "madvise_vma_behavior:error")[0]["b"] == 22
    assert e.k.mm.mmap_lock.stats["write_acquired"] == 0


def test_collapse_of_an_empty_range_stops_at_scan_pmd_none() -> None:
    """find_pmd_or_thp_or_none: SCAN_PMD_NONE is not in madvise_collapse's list of
    results to go on after, so the loop ends (out_maybelock) with -EINVAL and no
    collapse_huge_page."""
    e = one([madvise("collapse", vma="H")], vmas=HUGE)
    assert events(e, "collapse_huge_page:pmdp_collapse_flush") == []
    assert collapse_errno(e)["note"] == "SCAN_PMD_NONE"
    assert events(e, "madvise_vma_behavior:error")[0]["b"] == 22
    assert e.k.mm.mmap_lock.stats["write_acquired"] == 0


def test_collapse_goes_on_after_a_read_only_range() -> None:
    """hpage_collapse_scan_pmd: no writable PTE is SCAN_PAGE_RO, which madvise_collapse
    goes on after: the second range collapses, the call still fails (thps != 2)."""
    e = one([touch("0-511", access="read", vma="H"), touch("512-1023", vma="H"),
             madvise("collapse", vma="H")], vmas=HUGE)  # fmt: skip
    assert len(events(e, "collapse_huge_page:pmdp_collapse_flush")) == 1
    row = collapse_errno(e)
    assert (row["b"], row["note"]) == (1, "SCAN_PAGE_RO")
    assert events(e, "madvise_vma_behavior:error")[0]["b"] == 22
