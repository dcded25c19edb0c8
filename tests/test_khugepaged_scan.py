"""khugepaged's PTE scan limits and the page state after a collapse, as 6.4.0.

Each test names the mm/khugepaged.c (6.4.0, commit 6e5f9d87e) function and rule
it follows; the expectations are read from the kernel source: the defaults of
``khugepaged_init`` (max_ptes_none = HPAGE_PMD_NR - 1 = 511, max_ptes_swap =
HPAGE_PMD_NR / 8 = 64, max_ptes_shared = HPAGE_PMD_NR / 2 = 256) and the checks
of ``hpage_collapse_scan_pmd``, ``__collapse_huge_page_isolate`` and
``collapse_huge_page``.
"""

from __future__ import annotations

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M
from vmaviz.model.ops import (
    HPAGE_PMD_SIZE,
    __collapse_huge_page_isolate,
    hpage_collapse_scan_pmd,
)
from vmaviz.scenario import load_scenario_text

BASE = 0x7F00_0000_0000
RW = M.VM_READ | M.VM_WRITE | M.VM_MAYREAD | M.VM_MAYWRITE


def vma_with(pages: dict[int, int], flags: int = RW) -> M.Vma:
    """An anonymous 512-page VMA at a 2 MiB boundary with the given PTE states."""
    v = M.Vma(1, "heap", BASE, BASE + HPAGE_PMD_SIZE, flags, anon_vma=1)
    v.pages = dict(pages)
    return v


def states(n: int, state: int, first: int = 0) -> dict[int, int]:
    return dict.fromkeys(range(first, first + n), state)


# --- hpage_collapse_scan_pmd: is_swap_pte / khugepaged_max_ptes_swap -----------------


def test_swap_entries_up_to_max_ptes_swap_are_allowed() -> None:
    """`unmapped <= khugepaged_max_ptes_swap` continues: 64 swap entries (and 448
    young present pages, above HPAGE_PMD_NR / 2 referenced) pass."""
    v = vma_with(states(64, M.PTE_SWAP) | states(448, M.PTE_PRESENT, 64))
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=True) == (None, 64)


def test_the_65th_swap_entry_is_scan_exceed_swap_pte() -> None:
    """`unmapped > khugepaged_max_ptes_swap` -> SCAN_EXCEED_SWAP_PTE for khugepaged;
    MADV_COLLAPSE (`!cc->is_khugepaged`) has no limit and swaps all 65 in."""
    v = vma_with(states(65, M.PTE_SWAP) | states(447, M.PTE_PRESENT, 65))
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=True)[0] == "SCAN_EXCEED_SWAP_PTE"
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=False) == (None, 65)


# --- none PTEs: khugepaged_max_ptes_none and userfaultfd_armed ------------------------


def test_511_none_ptes_are_allowed_for_khugepaged() -> None:
    """`none_or_zero <= khugepaged_max_ptes_none` (511): one written page suffices."""
    v = vma_with({0: M.PTE_PRESENT})
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=True) == (None, 0)


def test_no_pte_at_all_is_an_empty_pmd() -> None:
    """find_pmd_or_thp_or_none: `pmd_none` -> SCAN_PMD_NONE before any PTE is read."""
    v = vma_with({})
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=True)[0] == "SCAN_PMD_NONE"


@pytest.mark.parametrize("is_khugepaged", [True, False])
def test_a_none_pte_in_a_uffd_armed_vma_is_scan_exceed_none_pte(is_khugepaged: bool) -> None:
    """`if (!userfaultfd_armed(vma) && ...) continue; else SCAN_EXCEED_NONE_PTE`: the
    uffd rule applies to MADV_COLLAPSE too (a collapse would hide missing faults)."""
    v = vma_with(states(511, M.PTE_PRESENT), RW | M.VM_UFFD_MISSING)
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged)[0] == "SCAN_EXCEED_NONE_PTE"
    full = vma_with(states(511, M.PTE_PRESENT) | {511: M.PTE_LAZYFREE}, RW | M.VM_UFFD_MISSING)
    assert hpage_collapse_scan_pmd(full, BASE, is_khugepaged)[0] is None


# --- page_mapcount > 1: khugepaged_max_ptes_shared -------------------------------------


def test_shared_pages_up_to_max_ptes_shared() -> None:
    """`shared > khugepaged_max_ptes_shared` (256) -> SCAN_EXCEED_SHARED_PTE for
    khugepaged only; pages still shared with a fork child are PTE_WP in the model."""
    ok = vma_with(states(256, M.PTE_WP) | states(256, M.PTE_PRESENT, 256))
    assert hpage_collapse_scan_pmd(ok, BASE, is_khugepaged=True) == (None, 0)
    over = vma_with(states(257, M.PTE_WP) | states(255, M.PTE_PRESENT, 257))
    assert hpage_collapse_scan_pmd(over, BASE, is_khugepaged=True)[0] == "SCAN_EXCEED_SHARED_PTE"
    assert hpage_collapse_scan_pmd(over, BASE, is_khugepaged=False)[0] is None


# --- writable and referenced -----------------------------------------------------------


def test_no_writable_pte_is_scan_page_ro() -> None:
    """`if (!writable) result = SCAN_PAGE_RO`, for both callers."""
    v = vma_with(states(512, M.PTE_WP))
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=False)[0] == "SCAN_PAGE_RO"
    ro = vma_with(states(4, M.PTE_PRESENT), M.VM_READ | M.VM_MAYREAD)
    assert hpage_collapse_scan_pmd(ro, BASE, is_khugepaged=True)[0] == "SCAN_PAGE_RO"


def test_only_lazy_free_pages_lack_a_referenced_page() -> None:
    """`cc->is_khugepaged && !referenced` -> SCAN_LACK_REFERENCED_PAGE.  Lazy-free pages
    are old (madvise_free_pte_range: pte_mkold; lru_lazyfree_fn clears PG_referenced)
    but still writable; MADV_COLLAPSE does not count referenced pages."""
    v = vma_with(states(8, M.PTE_LAZYFREE))
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=True)[0] == "SCAN_LACK_REFERENCED_PAGE"
    assert hpage_collapse_scan_pmd(v, BASE, is_khugepaged=False) == (None, 0)


def test_swap_entries_need_half_the_range_referenced() -> None:
    """`unmapped && referenced < HPAGE_PMD_NR / 2` -> SCAN_LACK_REFERENCED_PAGE: one
    swap entry and 255 young pages are refused, 256 young pages are enough."""
    few = vma_with({0: M.PTE_SWAP} | states(255, M.PTE_PRESENT, 1))
    assert hpage_collapse_scan_pmd(few, BASE, is_khugepaged=True)[0] == "SCAN_LACK_REFERENCED_PAGE"
    enough = vma_with({0: M.PTE_SWAP} | states(256, M.PTE_PRESENT, 1))
    assert hpage_collapse_scan_pmd(enough, BASE, is_khugepaged=True) == (None, 1)


# --- __collapse_huge_page_isolate: the recheck under mmap_write_lock -----------------


def test_isolate_refuses_a_swap_entry_as_non_present() -> None:
    """__collapse_huge_page_isolate: `if (!pte_present(pteval)) SCAN_PTE_NON_PRESENT` (a
    page swapped out again after __collapse_huge_page_swapin); no unmapped rule."""
    v = vma_with({0: M.PTE_SWAP} | states(4, M.PTE_PRESENT, 1))
    assert __collapse_huge_page_isolate(v, BASE, is_khugepaged=True) == "SCAN_PTE_NON_PRESENT"
    ok = vma_with(states(4, M.PTE_PRESENT))
    assert __collapse_huge_page_isolate(ok, BASE, is_khugepaged=True) is None


# --- collapse_huge_page end to end -----------------------------------------------------

SCEN = """
name: k
description: d
kernel: {cpus: 1}
mm:
  vmas:
    - {name: heap, start: "0x7f0000000000", pages: 1024, anon_vma: true}
threads:
  - name: K
    ops:
OPS
"""


def run(ops: str) -> Engine:
    return Engine(load_scenario_text(SCEN.replace("OPS", ops), "t.yaml")).run()


def codes(e: Engine) -> list[str]:
    return [e.trace.row(i)["event"] for i in range(len(e.trace))]


def notes(e: Engine, code: str) -> list[str]:
    rows = [e.trace.row(i) for i in range(len(e.trace))]
    return [r.get("note", "") for r in rows if r["event"] == code]


def heap(e: Engine) -> M.Vma:
    v = e.k.mm.vma_at(0x7F00_0000_0000)
    assert v is not None
    return v


def test_after_a_collapse_every_page_of_the_range_is_present_and_writable() -> None:
    """collapse_huge_page: __collapse_huge_page_copy zero-fills the none PTEs' subpages,
    set_pmd_at maps maybe_pmd_mkwrite(pmd_mkdirty(huge pmd)): all 512 pages present,
    writable and dirty (the lazy-free page is no longer lazy-free); the next range
    (pages 512-1023) is not touched."""
    e = run(
        '      - touch: {vma: heap, pages: "0-7", access: write}\n'
        '      - madvise: {vma: heap, pages: "4-7", advice: free}\n'
        "      - khugepaged_collapse: {vma: heap}\n"
        '      - touch: {vma: heap, pages: "100-101", access: write}\n'
    )
    assert notes(e, "khugepaged:hpage_collapse_scan_pmd") == ["SCAN_SUCCEED"]
    assert "collapse_huge_page:set_pmd_at" in codes(e)
    v = heap(e)
    assert all(v.pages.get(i) == M.PTE_PRESENT for i in range(512))
    assert not any(i in v.pages for i in range(512, 1024))
    # The writes after the collapse hit a present, writable page: no page is
    # allocated (handle_pte_fault finds the PMD-mapped huge page).
    after = codes(e)[codes(e).index("collapse_huge_page:set_pmd_at") :]
    assert not [c for c in after if c.startswith("do_anonymous_page")]


def test_swap_entries_are_read_in_under_the_read_lock_then_collapsed() -> None:
    """collapse_huge_page: `if (unmapped) __collapse_huge_page_swapin(...)` after the
    read-lock hugepage_vma_revalidate and before mmap_read_unlock/mmap_write_lock;
    then every page of the range is present."""
    e = run(
        '      - touch: {vma: heap, pages: "0-299", access: write}\n'
        '      - swap_out: {vma: heap, pages: "0-9"}\n'
        "      - khugepaged_collapse: {vma: heap}\n"
    )
    ev = codes(e)
    i = ev.index("collapse_huge_page:__collapse_huge_page_swapin")
    assert ev.index("khugepaged:hugepage_vma_revalidate") < i
    assert i < ev.index("vma_start_write:seq_set")
    assert e.trace.row(i)["b"] == 10  # the ten swap entries, each do_swap_page
    assert all(heap(e).pages.get(j) == M.PTE_PRESENT for j in range(512))


def test_khugepaged_refuses_too_many_swap_entries_end_to_end() -> None:
    """hpage_collapse_scan_pmd: 65 swap entries > khugepaged_max_ptes_swap; the read
    lock is dropped (khugepaged_scan_mm_slot), no write lock, the PTEs unchanged."""
    e = run(
        '      - touch: {vma: heap, pages: "0-299", access: write}\n'
        '      - swap_out: {vma: heap, pages: "0-64"}\n'
        "      - khugepaged_collapse: {vma: heap}\n"
    )
    assert notes(e, "khugepaged:hpage_collapse_scan_pmd") == ["SCAN_EXCEED_SWAP_PTE"]
    assert "vma_start_write:seq_set" not in codes(e)
    assert sum(1 for s in heap(e).pages.values() if s == M.PTE_SWAP) == 65
    assert e.k.mm.mmap_lock.is_free


def test_madvise_collapse_ignores_the_khugepaged_limits() -> None:
    """madvise_collapse -> hpage_collapse_scan_pmd with `cc->is_khugepaged` false: the
    same 65 swap entries are swapped in and the range collapsed."""
    e = run(
        '      - touch: {vma: heap, pages: "0-299", access: write}\n'
        '      - swap_out: {vma: heap, pages: "0-64"}\n'
        '      - madvise: {vma: heap, pages: "0-511", advice: collapse}\n'
    )
    assert "collapse_huge_page:__collapse_huge_page_swapin" in codes(e)
    assert all(heap(e).pages.get(j) == M.PTE_PRESENT for j in range(512))
