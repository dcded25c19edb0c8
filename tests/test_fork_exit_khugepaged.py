"""dup_mmap, exit_mmap, khugepaged's collapse and signals in the fault path, as 6.4.0.

Each test names the 6.4.0 function whose rule it checks; the expectations are
read from the kernel source, not from the model's output.
"""

from __future__ import annotations

from typing import Any

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M
from vmaviz.model.kernel import ARCHES
from vmaviz.scenario import ScenarioErrors, load_scenario_text


def run(text: str, **kw: Any) -> Engine:
    return Engine(load_scenario_text(text, "t.yaml"), **kw).run()


def rows(e: Engine) -> list[dict[str, Any]]:
    return [e.trace.row(i) for i in range(len(e.trace))]


def codes(e: Engine) -> list[str]:
    return [r["event"] for r in rows(e)]


# --- kernel/fork.c dup_mmap, mm/memory.c copy_page_range / vma_needs_copy ---------

FORK = """
name: f
description: d
kernel: {cpus: 1}
mm:
  vmas:
    - {name: anon, pages: 4, anon_vma: true}
    - {name: noanon, pages: 4}
threads:
  - name: T
    ops:
      - touch: {vma: anon, pages: "0-1", access: write}
      - fault: {vma: noanon, page: 0, access: read}
      - fork
"""


def test_copy_page_range_write_protects_only_where_vma_needs_copy() -> None:
    """vma_needs_copy: an anon_vma means copy (and COW write-protect the parent's
    PTEs, copy_present_pte); a VMA without one is skipped, its PTEs untouched."""
    e = run(FORK)
    k = e.k
    anon = k.mm.vma_at(k.names["anon"][0])
    noanon = k.mm.vma_at(k.names["noanon"][0])
    assert anon is not None and noanon is not None
    assert anon.pages == {0: M.PTE_WP, 1: M.PTE_WP}
    # The read fault mapped the zero page without an anon_vma; fork leaves it.
    assert noanon.anon_vma is None and noanon.pages == {0: M.PTE_WP}
    notes = {r["a"]: r.get("note", "") for r in rows(e) if r["event"] == "dup_mmap:vm_area_dup"}
    assert "vma_needs_copy" in notes[noanon.vid]
    assert "vma_needs_copy" not in notes[anon.vid]


def test_vm_dontcopy_and_wipeonfork_leave_parent_ptes_writable() -> None:
    """dup_mmap: VM_DONTCOPY is skipped; VM_WIPEONFORK gets no copy_page_range."""
    text = FORK.replace("      - fork\n", "").replace(
        "      - fault: {vma: noanon, page: 0, access: read}\n",
        '      - touch: {vma: noanon, pages: "0-1", access: write}\n'
        "      - madvise: {vma: anon, advice: dontfork}\n"
        "      - madvise: {vma: noanon, advice: wipeonfork}\n"
        "      - fork\n",
    )
    e = run(text)
    k = e.k
    for name in ("anon", "noanon"):
        vma = k.mm.vma_at(k.names[name][0])
        assert vma is not None
        assert vma.pages == {0: M.PTE_PRESENT, 1: M.PTE_PRESENT}, name


def test_is_cow_mapping() -> None:
    """include/linux/mm.h is_cow_mapping: VM_MAYWRITE and not VM_SHARED."""
    from vmaviz.model.ops import is_cow_mapping

    assert is_cow_mapping(M.VM_MAYWRITE | M.VM_READ)
    assert not is_cow_mapping(M.VM_MAYWRITE | M.VM_SHARED)
    assert not is_cow_mapping(M.VM_READ)


# --- mm/mmap.c exit_mmap -------------------------------------------------------------

EXIT = """
name: x
description: d
kernel: {cpus: 1}
mm:
  vmas:
    - {name: A, pages: 2, anon_vma: true}
    - {name: B, pages: 2, anon_vma: true}
threads:
  - name: T
    ops:
      - touch: {vma: A, pages: "0-1"}
      - exit
"""


def test_exit_mmap_unmaps_under_read_lock_then_frees_under_write_lock() -> None:
    """exit_mmap: unmap_vmas under mmap_read_lock, MMF_OOM_SKIP, mmap_write_lock,
    free_pgtables (vma_start_write each), remove_vma each, __mt_destroy."""
    e = Engine(load_scenario_text(EXIT, "x.yaml"))
    mm = e.k.mm
    seen: list[tuple[str, int, bool]] = []
    while e.step():
        r = e.trace.row(len(e.trace) - 1)
        if r["event"].startswith("exit_mmap:"):
            seen.append((r["event"], mm.mmap_lock.readers, mm.mmap_lock.writer is not None))
    order = [s[0] for s in seen]
    assert order == [
        "exit_mmap:unmap_vmas",
        "exit_mmap:unmap_vmas",
        "exit_mmap:MMF_OOM_SKIP",
        "exit_mmap:free_pgtables",
        "exit_mmap:free_pgtables",
        "exit_mmap:remove_vma",
        "exit_mmap:remove_vma",
        "exit_mmap:__mt_destroy",
    ]
    # unmap_vmas: read-held, not write-held.
    assert all(readers == 1 and not w for c, readers, w in seen if c.endswith("unmap_vmas"))
    # free_pgtables/remove_vma/__mt_destroy: write-held.
    assert all(w for c, _, w in seen[3:])
    assert e.summary()["vmas"] == [] and e.summary()["invariant_violations"] == []
    assert mm.map_count == 0 and mm.mmap_lock.is_free


# --- mm/khugepaged.c collapse_huge_page / hugepage_vma_revalidate --------------------

KHUGE = """
name: k
description: d
kernel: {cpus: 1}
mm:
  vmas:
    - {name: heap, start: "START", pages: PAGES, anon_vma: ANON}
threads:
  - name: K
    ops:
      # hpage_collapse_scan_pmd needs a page table (find_pmd_or_thp_or_none:
      # pmd_none is SCAN_PMD_NONE) and a writable, young PTE.
      - touch: {vma: heap, pages: "0-15", access: write}
      - khugepaged_collapse: {vma: heap}
"""


def khuge(start: str = "0x7f0000000000", pages: int = 512, anon: bool = True) -> Engine:
    text = (
        KHUGE.replace("START", start)
        .replace("PAGES", str(pages))
        .replace("ANON", "true" if anon else "false")
    )
    if not anon:
        # A read fault maps the zero page without anon_vma_prepare, so the VMA
        # keeps no anon_vma for hugepage_vma_check to refuse.
        text = text.replace("access: write", "access: read")
    return run(text)


def test_collapse_of_an_aligned_anonymous_range_write_locks_it() -> None:
    """collapse_huge_page: revalidate under the read lock, then under the write lock,
    then vma_start_write and pmdp_collapse_flush."""
    e = khuge()
    ev = codes(e)
    assert ev.count("khugepaged:hugepage_vma_revalidate") == 2
    assert ev.index("vma_start_write:seq_set") < ev.index("collapse_huge_page:pmdp_collapse_flush")
    assert e.summary()["mm_lock_seq"] == 1


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        # transhuge_vma_suitable: 512 pages from a 4 KiB-aligned start hold no 2 MiB range.
        ({"start": "0x7f0000001000"}, "SCAN_VMA_CHECK"),
        # hugepage_vma_check: an anonymous VMA without anon_vma (smaps/in_pf false).
        ({"anon": False}, "SCAN_VMA_CHECK"),
        # 256 pages: too small for one huge page.
        ({"pages": 256}, "SCAN_VMA_CHECK"),
    ],
)
def test_no_collapse_and_no_vma_lock_when_the_vma_fails_the_checks(kw: Any, why: str) -> None:
    """khugepaged_scan_mm_slot/hugepage_vma_check refuse before any vma_start_write."""
    e = khuge(**kw)
    ev = codes(e)
    assert "collapse_huge_page:pmdp_collapse_flush" not in ev
    assert "vma_start_write:seq_set" not in ev
    assert "mmap_write_lock" not in " ".join(ev)
    notes = [r.get("note", "") for r in rows(e) if r["event"] == "khugepaged:scan"]
    assert why in notes
    assert e.k.mm.mmap_lock.is_free


def test_transhuge_vma_suitable_for_an_unaligned_but_large_vma() -> None:
    """transhuge_vma_suitable: 1024 pages from an unaligned start contain one 2 MiB
    range (the next boundary), so the collapse goes ahead."""
    e = run(
        KHUGE.replace("START", "0x7f0000001000")
        .replace("PAGES", "1024")
        .replace("ANON", "true")
        # Pages 511-526 lie in the huge-page range at the 2 MiB boundary.
        .replace('pages: "0-15"', 'pages: "511-526"')
    )
    assert "collapse_huge_page:pmdp_collapse_flush" in codes(e)


def test_revalidate_after_the_vma_was_unmapped() -> None:
    """hugepage_vma_revalidate: find_vma finds nothing -> SCAN_VMA_NULL, no
    vma_start_write (the VMA went away while khugepaged allocated unlocked)."""
    from vmaviz.model.ops import hugepage_vma_revalidate

    e = khuge()
    addr = e.k.names["heap"][0]
    vma, why = hugepage_vma_revalidate(e.k, addr)
    assert why is None and vma is not None
    e2 = run(
        KHUGE.replace("START", "0x7f0000000000")
        .replace("PAGES", "512")
        .replace("ANON", "true")
        .replace("      - khugepaged_collapse: {vma: heap}\n", "      - munmap: {vma: heap}\n")
    )
    assert hugepage_vma_revalidate(e2.k, addr) == (None, "SCAN_VMA_NULL")


# --- fault_signal_pending (include/linux/sched/signal.h) and do_tkill --------------

UFFD = """
name: s
description: d
kernel: {cpus: 2}
mm:
  vmas:
    - {name: armed, pages: 2, anon_vma: true, uffd: true}
threads:
  - name: T
    ops:
      - fault: {vma: armed, page: 0, access: write}
  - name: S
    start_ns: 2000
    ops:
      - signal: {thread: T}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_signal_during_userfault_quick_exit_and_refault(arch: str) -> None:
    """handle_userfault returns VM_FAULT_RETRY with mmap_lock dropped; a pending
    signal makes the arch handler return (fault_signal_pending) instead of
    retrying; the instruction faults again after the signal and finds the page."""
    e = run(UFFD, arch=arch)
    ev = codes(e)
    assert ev.count("do_tkill") == 1
    assert ev.count("fault:signal_pending_quick_exit") == 1
    assert "fault:retry_tried" not in ev
    q = ev.index("fault:signal_pending_quick_exit")
    assert ev.index("handle_userfault:resolved") < q
    # The second fault on the same address: entry after the quick exit.
    assert "fault:entry" in ev[q:]
    assert e.k.threads[0].signal_pending is False
    assert e.k.fault_stats["total"] == 2
    assert e.summary()["invariant_violations"] == []


def test_signal_to_an_exited_thread_is_esrch() -> None:
    """do_tkill -> do_send_specific: no such task, -ESRCH, nothing pending."""
    text = UFFD.replace("start_ns: 2000", "start_ns: 10000000")
    e = run(text)
    (r,) = [r for r in rows(e) if r["event"] == "do_tkill"]
    assert r.get("note") == "-ESRCH"
    assert "fault:signal_pending_quick_exit" not in codes(e)


def test_loader_rejects_an_unknown_signal_target() -> None:
    text = UFFD.replace("signal: {thread: T}", "signal: {thread: Tx}")
    with pytest.raises(ScenarioErrors) as ei:
        load_scenario_text(text, "s.yaml")
    msg = str(ei.value)
    assert "s.yaml:15" in msg and "unknown thread 'Tx'" in msg and "did you mean 'T'" in msg


def test_loader_rejects_a_bad_signal_field() -> None:
    for bad, want in (
        ("signal: {thread: 3}", "expected thread"),
        ("signal: {}", "thread"),
        ("signal: {thread: T, sig: 9}", "sig"),
    ):
        with pytest.raises(ScenarioErrors) as ei:
            load_scenario_text(UFFD.replace("signal: {thread: T}", bad), "s.yaml")
        assert "s.yaml:15" in str(ei.value) and want in str(ei.value), bad


def test_loader_accepts_a_templated_signal_target() -> None:
    text = UFFD.replace("  - name: T\n", "  - name: T${i}\n    count: 2\n").replace(
        "signal: {thread: T}", "signal: {thread: T1}"
    )
    sc = load_scenario_text(text.replace("vma: armed, page: 0", "vma: armed, page: 0"), "s.yaml")
    assert [t.name for t in sc.threads][:2] == ["T0", "T1"]
