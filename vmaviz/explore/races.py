"""The race scenarios of ``scenarios/races/`` and the reference §12 rows they answer.

One table serves the tests (every race is found with its toggle off and not found
with every patch on), ``python -m vmaviz bench explore`` (the results table) and
the README.  :data:`RACES` lists each scenario with the patch or fix toggle it is
about, the invariant (reference §11) that breaks without it and the preemption
bound within which the explorer finds the break; :data:`NOT_MODELLED` lists the
§12 rows the model cannot express yet, each with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Where the race scenarios live.
RACE_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "races"


@dataclass(frozen=True)
class Race:
    """One race scenario.

    Attributes:
        stem: The file name in :data:`RACE_DIR` without ``.yaml``.
        patch: The ``PATCHES`` toggle the race is about (off: the race happens).
        invariant: The §11 invariant the explorer reports with the toggle off.
        bound: Preemptions within which the explorer finds it (and, with every
            patch on, covers every schedule without a violation).
        row: The reference §12 row: the patch or fix it is about.
    """

    stem: str
    patch: str
    invariant: int
    bound: int
    row: str

    @property
    def path(self) -> Path:
        """The scenario file."""
        return RACE_DIR / f"{self.stem}.yaml"


RACES: tuple[Race, ...] = (
    Race("maple-rcu-mode", "maple_rcu_mode", 7, 1, "[v3 8/35] maple tree RCU mode"),
    Race("rcu-vma-free", "rcu_vma_free", 7, 1, "[v3 10/35] rcu safe VMA freeing"),
    Race("start-read-recheck", "vma_start_read_recheck", 1, 2, "[v3 12/35] second seq check"),
    Race("vm-flags-write-lock", "vm_flags_write_lock", 4, 1, "[v3 13/35] vm_flags writers"),
    Race("khugepaged-write-lock", "khugepaged_write_lock", 4, 1, "[v3 15/35] khugepaged"),
    Race("vma-prepare-write-lock", "vma_prepare_write_lock", 4, 1, "[v4 16/33] vma_prepare"),
    Race("mremap-write-lock", "mremap_write_lock", 4, 1, "[v3 18/35] mremap write-locks the VMA"),
    Race("write-lock-before-detach", "write_lock_before_detach", 4, 1, "[v3 19/35] munmap"),
    Race("detached", "vma_detached_flag", 5, 1, "[v3 24/35] detached flag"),
    Race("bounds-recheck", "lock_vma_bounds_check", 5, 1, "[v3 25/35] bounds re-check"),
    Race("anon-vma-fallback", "anon_vma_fallback", 7, 1, "[v3 26/35] anon_vma fallback"),
    Race("swap-retry", "swap_retry", 14, 1, "[v3 28/35] do_swap_page RETRY under VMA lock"),
    Race("uffd-fallback", "uffd_fallback", 14, 0, "[v3 29/35] no userfaults under VMA lock"),
    Race("stackrot", "fix_stack_expand_write_lock", 3, 0, "R-S1 StackRot stack expansion"),
    Race("fork-parent-lock", "fix_fork_lock_parent", 4, 1, "R-F1 fork locks parent VMAs"),
    Race("anon-vma-check", "fix_anon_vma_check_under_lock", 5, 1, "R-A1 anon_vma check order"),
    Race("dup-anon-vma", "fix_dup_anon_vma_lock", 3, 1, "R-D1 dup_anon_vma lock"),
)

#: §12 rows without a race scenario, and why.
NOT_MODELLED: tuple[tuple[str, str], ...] = (
    (
        "R-M1 mmap_region locks the new VMA before inserting it",
        "unreachable in 6.4.0: lock_vma_under_rcu bails on a VMA that is not anonymous "
        "or has no anon_vma, and mmap_region's new VMA is either file-backed (vm_ops set "
        "by call_mmap before vma_iter_store) or anonymous without an anon_vma until the "
        "mmap write lock is dropped; a VMA it expands instead is write-locked by vma_prepare",
    ),
    (
        "R-O1 memory ordering of mm_lock_seq/vm_lock_seq",
        "needs a weakly ordered memory model; the model's steps are sequentially consistent",
    ),
    (
        "R-P1 mbind replaces vm_policy unlocked",
        "mempolicies (mbind, vm_policy) are not modelled",
    ),
    (
        "R-W1 page walkers that modify page tables",
        "walk_page_range and its users are not modelled",
    ),
    (
        "R-R1 mas_wr_append in RCU mode",
        "the model's maple stores are atomic steps: a reader cannot see an append half done",
    ),
    (
        "R-T1 retry with a stale maple state",
        "6.4 only aborts spuriously (no invariant breaks); the UAF needs 6.16's unlocked retry",
    ),
    (
        "[v3 23/35] mm_take_all_locks write-locks every VMA (mmu_notifier registration)",
        "MMU notifiers are not modelled: a fault fires no invalidate_range_start/end and "
        "registration changes no VMA, so a VMA-locked fault during it breaks nothing the "
        "model can see",
    ),
    (
        "[v3 22/35] assert no readers at destruction, [v3 34/35], [v3 35/35]",
        "debug assertion or performance only: nothing breaks without them",
    ),
)


def race(stem: str) -> Race:
    """The :class:`Race` of a scenario stem.

    Raises:
        KeyError: No race scenario has that stem.
    """
    for r in RACES:
        if r.stem == stem:
            return r
    raise KeyError(stem)
