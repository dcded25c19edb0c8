"""``struct mm_struct`` and ``struct vm_area_struct`` as Linux 6.4 has them (reference §1).

Only the fields the per-VMA-lock machinery reads or writes are modelled.  Pages
are tracked per VMA as a small map from page index to a state (present,
present-read-only after fork, swapped out); absent pages are simply missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmaviz.model.maple import MapleTree, RcuFree, free_immediately
from vmaviz.model.pickling import tuple_state
from vmaviz.model.rwsem import RwSem

PAGE_SIZE = 4096
PAGE_SHIFT = 12
TASK_SIZE = 1 << 47  # x86-64 4-level user address space
MMAP_MIN_ADDR = 65536
MMAP_BASE = 0x7F00_0000_0000  # top-down mmap base used for placement

# vm_flags bits (include/linux/mm.h)
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_GROWSDOWN = 0x100
VM_UFFD_MISSING = 0x200
VM_LOCKED = 0x2000
VM_DONTCOPY = 0x20000
VM_SOFTDIRTY = 0x8000000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_MERGEABLE = 0x80000000
VM_UFFD_WP = 0x1000
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP

PROT_FLAGS = {
    "none": 0,
    "r": VM_READ,
    "rw": VM_READ | VM_WRITE,
    "rx": VM_READ | VM_EXEC,
    "rwx": VM_READ | VM_WRITE | VM_EXEC,
}

# Page states
PTE_PRESENT = 1  # mapped writable (or read-only if the VMA is)
PTE_WP = 2  # present but write-protected (COW after fork)
PTE_SWAP = 3  # a swap entry: do_swap_page


#: What a shared anonymous mapping is backed by: ``shmem_zero_setup`` gives it
#: ``vm_ops``, so ``vma_is_anonymous`` is false (reference §1.2).
SHMEM_FILE = "/dev/zero (deleted)"


def backing_file(file: str | None, shared: bool) -> str | None:
    """The ``vm_file`` of a new mapping: shared anonymous memory is shmem."""
    if file is None and shared:
        return SHMEM_FILE
    return file


def flags_text(flags: int) -> str:
    """``/proc/pid/maps``-style permission text plus the notable extra flags."""
    perm = (
        ("r" if flags & VM_READ else "-")
        + ("w" if flags & VM_WRITE else "-")
        + ("x" if flags & VM_EXEC else "-")
        + ("s" if flags & VM_SHARED else "p")
    )
    extra = [
        name
        for bit, name in (
            (VM_GROWSDOWN, "growsdown"),
            (VM_UFFD_MISSING, "uffd"),
            (VM_LOCKED, "locked"),
            (VM_HUGEPAGE, "hugepage"),
            (VM_SOFTDIRTY, "sd"),
        )
        if flags & bit
    ]
    return perm + (" " + ",".join(extra) if extra else "")


@tuple_state
@dataclass(eq=False, slots=True)
class Vma:
    """``struct vm_area_struct`` (6.4), with its separately allocated ``vma_lock``.

    Attributes:
        vid: identity (the "pointer"); never reused.
        name: the scenario label of the range it was created for.
        vm_start, vm_end: the half-open range.
        vm_flags: ``VM_*`` bits.
        file: backing file name, or None for an anonymous VMA
            (``vma_is_anonymous``: ``vm_ops == NULL``).
        anon_vma: id of the ``anon_vma``, or None until the first anonymous
            fault under the mmap lock runs ``anon_vma_prepare``.
        vm_lock: ``vma->vm_lock->lock``, the per-VMA rw_semaphore.
        vm_lock_seq: equal to ``mm->mm_lock_seq`` iff the VMA is write-locked;
            -1 after ``vma_lock_alloc``.
        detached: set when the VMA is removed from the tree (6.4 ``detached``).
        state: ``live``, ``rcu_pending`` (``vm_area_free`` queued, bounds
            overwritten by the rcu_head) or ``freed``.
        pages: page index (from ``vm_start``) -> PTE state.
        pgoff: ``vm_pgoff`` (for merge decisions on file VMAs).
    """

    vid: int
    name: str
    vm_start: int
    vm_end: int
    vm_flags: int
    file: str | None = None
    anon_vma: int | None = None
    vm_lock: RwSem = field(default_factory=lambda: RwSem("vma"))
    vm_lock_seq: int = -1
    detached: bool = False
    state: str = "live"
    pages: dict[int, int] = field(default_factory=dict)
    pgoff: int = 0

    def __post_init__(self) -> None:
        self.vm_lock.name = f"vma{self.vid}.vm_lock"

    @property
    def is_anonymous(self) -> bool:
        return self.file is None

    @property
    def uffd_armed(self) -> bool:
        """``userfaultfd_armed``."""
        return bool(self.vm_flags & VM_UFFD_FLAGS)

    @property
    def npages(self) -> int:
        return (self.vm_end - self.vm_start) >> PAGE_SHIFT

    def page_of(self, address: int) -> int:
        return (address - self.vm_start) >> PAGE_SHIFT

    def label(self) -> str:
        return f"{self.name}#{self.vid}"


@tuple_state
@dataclass(slots=True)
class Mm:
    """``struct mm_struct``: the fields of reference §1.1.

    ``per_vma`` is CONFIG_PER_VMA_LOCK; with it off there is no ``mm_lock_seq``
    and no VMA lock is ever taken.
    """

    per_vma: bool = True
    rcu_free: RcuFree = free_immediately
    mmap_lock: RwSem = field(default_factory=lambda: RwSem("mmap_lock"))
    mm_lock_seq: int = 0
    map_count: int = 0
    next_vid: int = 1
    next_anon_vma: int = 1
    #: Every VMA not yet freed, by vid (plus freed ones a thread still holds).
    vmas: dict[int, Vma] = field(default_factory=dict)
    #: Names of the VMAs freed and dropped from ``vmas``, for labelling old events.
    freed_names: dict[int, str] = field(default_factory=dict)
    #: Freed VMAs kept in ``vmas`` because some thread still refers to them.
    freed_held: list[int] = field(default_factory=list)
    brk_start: int = 0
    brk: int = 0
    mm_mt: MapleTree = field(init=False)

    def __post_init__(self) -> None:
        self.mm_mt = MapleTree(rcu_free=self.rcu_free)

    def new_vma(self, name: str, start: int, end: int, flags: int, file: str | None) -> Vma:
        """``vm_area_alloc``: a fresh VMA (``detached`` false, ``vm_lock_seq`` -1)."""
        vma = Vma(self.next_vid, name, start, end, flags, file)
        self.next_vid += 1
        self.vmas[vma.vid] = vma
        return vma

    def vma_names(self) -> dict[int, str]:
        """The name of every VMA ever created, by vid (freed ones included)."""
        names = dict(self.freed_names)
        names.update((vid, v.name) for vid, v in self.vmas.items())
        return names

    def vma_dup(self, orig: Vma, name: str | None = None) -> Vma:
        """``vm_area_dup``: copy the fields, with a fresh ``vma_lock``."""
        vma = self.new_vma(name or orig.name, orig.vm_start, orig.vm_end, orig.vm_flags, orig.file)
        vma.anon_vma = orig.anon_vma
        vma.pgoff = orig.pgoff
        return vma

    def is_write_locked(self, vma: Vma) -> bool:
        """``vm_lock_seq == mm_lock_seq``: the VMA is write-locked in this epoch."""
        return self.per_vma and vma.vm_lock_seq == self.mm_lock_seq

    def live_vmas(self) -> list[Vma]:
        """The VMAs in the tree, in address order."""
        return [e for _, _, e in self.mm_mt.entries()]

    def find_vma(self, address: int) -> Vma | None:
        """``find_vma``: the first VMA ending above ``address``."""
        hit = self.mm_mt.find(address)
        return hit[0] if hit else None

    def vma_at(self, address: int) -> Vma | None:
        return self.mm_mt.load(address)  # type: ignore[no-any-return]
