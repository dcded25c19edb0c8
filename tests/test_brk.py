"""brk growth's own guard-gap check, as Linux 6.4.0 has it.

Written from the 6.4.0 source (commit 6e5f9d87e), mm/mmap.c ``SYSCALL_DEFINE1(brk)``:
after ``check_brk_limits`` it does ``vma_iter_init(&vmi, mm, oldbrk)``, ``next =
vma_find(&vmi, newbrk + PAGE_SIZE + stack_guard_gap)`` and ``if (next && newbrk +
PAGE_SIZE > vm_start_gap(next)) goto out;`` (``mm->brk`` unchanged).
include/linux/mm.h ``vm_start_gap``: ``vm_start - stack_guard_gap`` for a
``VM_GROWSDOWN`` VMA (0 if that wraps), else ``vm_start``.  So one page must stay
free between the new break and the next VMA, a stack above keeps its 256-page guard
gap, and only the first VMA ``vma_find`` returns is looked at.
"""

from __future__ import annotations

from typing import Any

from kernel_helpers import PAGE, events, make_scenario, run, write_sections

from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M
from vmaviz.model.kernel import STACK_GUARD_GAP
from vmaviz.model.ops import vm_start_gap

BRK = 0x5555_5556_0000  # the engine's mm->start_brk when no [heap] is mapped
GAP_PAGES = 256  # mm/mmap.c: stack_guard_gap = 256UL << PAGE_SHIFT


def grow(above: list[dict[str, Any]], pages: int) -> Engine:
    """One ``brk`` of ``pages`` pages (a new heap VMA) with ``above`` mapped above."""
    sc = make_scenario(vmas=above, threads=[{"name": "T", "ops": [{"brk": {"pages": pages}}]}])
    e = run(sc)
    assert e.finished
    return e


def vma_at_page(name: str, page: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "start": hex(BRK + page * PAGE), "pages": 1, **kw}


def refused(e: Engine) -> bool:
    """The growth was refused: ``brk:vm_start_gap`` and ``mm->brk`` unchanged."""
    gone = bool(events(e, "brk:vm_start_gap"))
    assert gone == (e.k.mm.brk == BRK)
    assert gone == (not events(e, "do_brk_flags:new_vma"))
    return gone


def test_vm_start_gap_subtracts_the_guard_gap_below_a_stack_only() -> None:
    assert STACK_GUARD_GAP == GAP_PAGES * PAGE
    stack = M.Vma(1, "s", BRK + 300 * PAGE, BRK + 301 * PAGE, M.VM_GROWSDOWN, None)
    plain = M.Vma(2, "p", BRK + 300 * PAGE, BRK + 301 * PAGE, M.VM_READ, None)
    low = M.Vma(3, "l", 16 * PAGE, 17 * PAGE, M.VM_GROWSDOWN, None)
    assert vm_start_gap(stack) == BRK + (300 - GAP_PAGES) * PAGE
    assert vm_start_gap(plain) == BRK + 300 * PAGE
    assert vm_start_gap(low) == 0  # the subtraction would wrap: clamped to 0


def test_brk_keeps_one_page_free_below_the_next_vma() -> None:
    # lib starts 3 pages above the break: newbrk + PAGE_SIZE must not pass its start.
    lib = vma_at_page("lib", 3)
    ok = grow([lib], 2)
    assert not refused(ok)
    assert ok.k.mm.brk == BRK + 2 * PAGE
    e = grow([lib], 3)  # would end exactly at lib's start: no overlap, still refused
    assert refused(e)
    (ev,) = events(e, "brk:vm_start_gap")
    assert e.k.mm.vmas[ev["a"]].name == "lib"
    assert e.k.mm.vma_at(BRK) is None  # no heap VMA was inserted


def test_brk_keeps_a_stack_above_its_guard_gap() -> None:
    stack = vma_at_page("stack", 300, growsdown=True, anon_vma=True)
    # vm_start_gap(stack) = BRK + 44 pages: newbrk + PAGE_SIZE may reach it, not pass it.
    assert not refused(grow([stack], 300 - GAP_PAGES - 1))
    assert refused(grow([stack], 300 - GAP_PAGES))
    # The same VMA without VM_GROWSDOWN claims only its own start.
    plain = vma_at_page("plain", 300, anon_vma=True)
    assert not refused(grow([plain], 300 - GAP_PAGES))


def test_brk_looks_only_at_the_first_vma_vma_find_returns() -> None:
    # A one-page VMA 10 pages up, then a stack whose guard gap reaches below the
    # new break: vma_find stops at the small VMA, so the growth goes ahead.
    small = vma_at_page("small", 10)
    stack = vma_at_page("stack", 12, growsdown=True, anon_vma=True)
    e = grow([small, stack], 5)
    assert not refused(e)
    assert e.k.mm.brk == BRK + 5 * PAGE


def test_refused_brk_holds_mmap_lock_for_write_and_locks_no_vma() -> None:
    e = grow([vma_at_page("lib", 3)], 3)
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == []
    assert "brk:vm_start_gap" in sec["events"]
    assert e.k.mm.map_count == 1


def test_brk_below_min_brk_returns_the_old_break_and_changes_nothing() -> None:
    # SYSCALL_DEFINE1(brk), 6.4.0: min_brk = mm->start_brk; "if (brk < min_brk) goto
    # out" returns origbrk: no clamping to start_brk, no unmap, no VMA touched.
    sc = make_scenario(
        vmas=[],
        threads=[{"name": "T", "ops": [{"brk": {"pages": 2}}, {"brk": {"pages": -3}}]}],
    )
    e = run(sc)
    assert e.finished
    # start_brk = brk = BRK; +2 grows a 2-page heap, -3 asks for BRK - 1 page, below
    # start_brk: refused, the break stays at BRK + 2 pages.
    assert e.k.mm.brk_start == BRK
    assert e.k.mm.brk == BRK + 2 * PAGE
    (ev,) = events(e, "brk:out")
    assert (ev["a"], ev["b"]) == (BRK - PAGE, BRK)
    assert not events(e, "brk:shrink")
    vmas = sorted((v.vm_start, v.vm_end) for v in e.k.mm.live_vmas())
    assert vmas == [(BRK, BRK + 2 * PAGE)]


def test_brk_down_to_exactly_min_brk_shrinks() -> None:
    # brk == min_brk is not below it: the shrink goes ahead (do_vma_munmap).
    ops = [{"brk": {"pages": 3}}, {"brk": {"pages": -3}}]
    sc = make_scenario(vmas=[], threads=[{"name": "T", "ops": ops}])
    e = run(sc)
    assert e.finished
    assert e.k.mm.brk == BRK
    assert events(e, "brk:shrink") and not events(e, "brk:out")
    assert not list(e.k.mm.live_vmas())
