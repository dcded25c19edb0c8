"""The default cost table: named costs in nanoseconds, each with its source.

One table serves every scenario; scenarios may override single entries (their
``costs:`` mapping) but the bundled ones do not tune costs to hit a target.
Sources are keys of ``../shared/reference/calibration.md`` §0 and §2.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    ns: int
    source: str


DEFAULT_COSTS: dict[str, Cost] = {
    # Cache lines and atomics.
    "atomic_local": Cost(20, "PERFBOOK: best-case CAS 12.2 ns, lock+unlock 25.6 ns (Nehalem)"),
    "line_transfer": Cost(
        80,
        "calibration §2a DERIVED: 6.2 M faults/s plateau / 2 atomics = ~80 ns per "
        "contended atomic; PERFBOOK off-socket CAS miss 95.9 ns",
    ),
    "plain_load": Cost(2, "L1 hit; order of magnitude (UNVERIFIED placeholder)"),
    # Fault path.
    "exc_entry": Cost(
        150, "exception entry/exit + fault flag setup; share of the 1.11 us fault (estimate)"
    ),
    "rcu_read_lock": Cost(1, "calibration §2a: ~free on non-preemptible kernels"),
    "maple_level": Cost(
        20, "calibration §2a placeholder: 50-150 ns per lookup / ~3 levels (UNVERIFIED)"
    ),
    "vma_check": Cost(3, "one field load and compare"),
    "access_check": Cost(5, "arch access_error(): a few flag tests"),
    "anon_page_alloc": Cost(
        700,
        "PUNIT-1 DERIVED: 1/898,793 faults/cpu-s = 1.11 us per zero-fill fault, minus the "
        "other steps of the path",
    ),
    "pte_install": Cost(60, "pte lock, re-check, set_pte_at, unlock (estimate)"),
    "cow_copy": Cost(900, "copy a 4 KiB page: ~zero-fill cost plus a read (estimate)"),
    "file_fault": Cost(600, "page-cache hit, map the page (estimate)"),
    "swap_in": Cost(20_000, "major fault from a fast swap device (zram) (UNVERIFIED)"),
    "spurious_fault": Cost(100, "PTE already present: update access bits"),
    "uffd_resolve": Cost(50_000, "userfaultfd monitor round trip (UNVERIFIED)"),
    "anon_vma_prepare": Cost(300, "allocate and link an anon_vma (estimate)"),
    "find_vma": Cost(60, "maple walk under mmap_lock, 3 levels (see maple_level)"),
    # mm operations.
    "syscall": Cost(100, "syscall entry/exit (estimate)"),
    "get_unmapped_area": Cost(200, "gap search in the arange tree (estimate)"),
    "vma_alloc": Cost(150, "vm_area_alloc + vma_lock_alloc (slab) (estimate)"),
    "maple_store": Cost(250, "one maple tree store incl. node allocation (estimate)"),
    "vma_modify": Cost(100, "update VMA fields, vma_prepare/vma_complete bookkeeping"),
    "zap_page": Cost(300, "calibration §2b: munmap of 1 GiB populated ~300 ns/page"),
    "free_pgtables": Cost(500, "free page tables of an unmapped range (estimate)"),
    "change_protection_page": Cost(50, "rewrite one PTE's protection (estimate)"),
    "tlb_flush": Cost(1000, "TLB shootdown IPI round (estimate)"),
    "madvise_read": Cost(400, "calibration §2b: MADV_DONTNEED of an empty page ~0.4 us"),
    "madvise_write": Cost(3000, "calibration §2b: MADV_HUGEPAGE ~7 us incl. syscall and locks"),
    "swap_out_page": Cost(2000, "reclaim one page to swap (estimate)"),
    "copy_vma_fork": Cost(2000, "dup_mmap per VMA: copy VMA, anon_vma_fork, copy PTEs"),
    "proc_maps_per_vma": Cost(
        500, "show_map_vma: format one line of /proc/pid/maps (MAPS: median 11 us)"
    ),
    "tcp_zc_page": Cost(400, "vm_insert_pages of one 4 KiB payload page (estimate)"),
    "khugepaged_collapse": Cost(100_000, "collapse 512 pages into a THP (estimate)"),
    "mm_take_all_locks_per_vma": Cost(100, "lock i_mmap/anon_vma per VMA (estimate)"),
    # Scheduling.
    "ctx_switch": Cost(2000, "context switch (estimate)"),
    "wakeup_latency": Cost(3000, "try_to_wake_up until the task runs (estimate)"),
    "timeslice": Cost(3_000_000, "CFS slice with a few runnable tasks (estimate)"),
    "spin_poll": Cost(100, "one optimistic-spin iteration on the owner (estimate)"),
    "op_jitter": Cost(
        50, "seeded random delay before each op, so seeds explore interleavings (model knob)"
    ),
}


def cost_table(overrides: dict[str, int] | None = None) -> dict[str, int]:
    """The costs in ns, with a scenario's overrides applied.

    Raises:
        KeyError: for an override naming an unknown cost.
    """
    table = {k: c.ns for k, c in DEFAULT_COSTS.items()}
    for name, ns in (overrides or {}).items():
        if name not in table:
            raise KeyError(name)
        table[name] = int(ns)
    return table
