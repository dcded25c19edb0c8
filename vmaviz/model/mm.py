"""``struct mm_struct`` and ``struct vm_area_struct`` as Linux 6.4 has them (reference §1).

Only the fields the per-VMA-lock machinery reads or writes are modelled.  Pages
are tracked per VMA as a small map from page index to a state (present,
present-read-only after fork, swapped out); absent pages are simply missing.
"""

from __future__ import annotations

import functools
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
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_UFFD_MISSING = 0x200
VM_PFNMAP = 0x400
VM_LOCKED = 0x2000
VM_IO = 0x4000
VM_SEQ_READ = 0x8000
VM_RAND_READ = 0x10000
VM_DONTCOPY = 0x20000
VM_DONTEXPAND = 0x40000
VM_ACCOUNT = 0x100000
VM_NORESERVE = 0x200000
VM_WIPEONFORK = 0x2000000
VM_DONTDUMP = 0x4000000
VM_SOFTDIRTY = 0x8000000
VM_MIXEDMAP = 0x10000000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_MERGEABLE = 0x80000000
VM_UFFD_WP = 0x1000
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP
#: ``VM_SPECIAL`` (include/linux/mm.h): ``vma_merge`` never merges these.
VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP

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
#: Present and clean, its folio on the lazy-free list (``madvise_free_pte_range``,
#: mm/madvise.c): reclaim discards it instead of swapping it out, unless a write
#: dirtied it again first.
PTE_LAZYFREE = 4


#: ``vm_userfaultfd_ctx.ctx`` of the one userfaultfd the model registers with
#: (``UFFDIO_REGISTER`` and scenario VMAs with ``uffd: true``); 0 is NULL.
UFFD_CTX = 1

#: What a shared anonymous mapping is backed by: ``shmem_zero_setup`` gives it
#: ``vm_ops``, so ``vma_is_anonymous`` is false (reference §1.2).
SHMEM_FILE = "/dev/zero (deleted)"


def backing_file(file: str | None, shared: bool) -> str | None:
    """The ``vm_file`` of a new mapping: shared anonymous memory is shmem."""
    if file is None and shared:
        return SHMEM_FILE
    return file


#: The flags shown after the permissions, named as in include/linux/mm.h
#: without the ``VM_`` prefix: every flag that decides a merge
#: (``is_mergeable_vma`` compares all but ``VM_SOFTDIRTY``), what fork copies
#: (``dup_mmap``: ``dontcopy``, ``wipeonfork``) or the locking.
FLAG_NAMES = (
    (VM_GROWSDOWN, "growsdown"),
    (VM_UFFD_MISSING, "uffd_missing"),
    (VM_UFFD_WP, "uffd_wp"),
    (VM_LOCKED, "locked"),
    (VM_SEQ_READ, "seq_read"),
    (VM_RAND_READ, "rand_read"),
    (VM_DONTCOPY, "dontcopy"),
    (VM_ACCOUNT, "account"),
    (VM_NORESERVE, "noreserve"),
    (VM_WIPEONFORK, "wipeonfork"),
    (VM_DONTDUMP, "dontdump"),
    (VM_SOFTDIRTY, "softdirty"),
    (VM_HUGEPAGE, "hugepage"),
    (VM_NOHUGEPAGE, "nohugepage"),
    (VM_MERGEABLE, "mergeable"),
)


@functools.lru_cache(maxsize=1024)
def flags_text(flags: int) -> str:
    """``/proc/pid/maps``-style permission text plus the ``VmFlags`` of :data:`FLAG_NAMES`."""
    perm = (
        ("r" if flags & VM_READ else "-")
        + ("w" if flags & VM_WRITE else "-")
        + ("x" if flags & VM_EXEC else "-")
        + ("s" if flags & VM_SHARED else "p")
    )
    extra = [name for bit, name in FLAG_NAMES if flags & bit]
    return perm + (" " + ",".join(extra) if extra else "")


def accountable_mapping(file: str | None, vm_flags: int) -> bool:
    """``accountable_mapping`` (mm/mmap.c): a private writable mapping is charged.

    ``mmap_region`` then sets ``VM_ACCOUNT`` (hugetlb files are never accounted;
    the model has none).
    """
    return vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE) == VM_WRITE


def mmap_pgoff(file: str | None, shared: bool, addr: int, pgoff: int = 0) -> int:
    """``vm_pgoff`` of a new mapping (mm/mmap.c ``do_mmap``).

    A file mapping keeps the offset it was mapped at; ``MAP_SHARED`` anonymous
    memory uses 0 ("Ignore pgoff"); private anonymous memory uses
    ``addr >> PAGE_SHIFT`` "for anon_vma", so adjacent private mappings are
    pgoff-contiguous and can merge.
    """
    if file is not None:
        return pgoff
    return 0 if shared else addr >> PAGE_SHIFT


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
        pgoff: ``vm_pgoff``: the file page (anonymous: see :func:`mmap_pgoff`)
            mapped at ``vm_start``; merges need it contiguous.
        anon_vma_forked: the VMA's ``anon_vma_chain`` has more than one entry
            (an anon_vma inherited through fork), so ``list_is_singular`` is
            false.  The modelled mm is never a fork child, so the ops leave it
            False; it exists for ``is_mergeable_anon_vma``'s test.
        uffd_ctx: ``vm_userfaultfd_ctx.ctx`` (0 = NULL); set together with the
            ``VM_UFFD_*`` flags.
        anon_name: ``anon_vma_name`` (``PR_SET_VMA_ANON_NAME``), None if unnamed.
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
    anon_vma_forked: bool = False
    uffd_ctx: int = 0
    anon_name: str | None = None

    def __post_init__(self) -> None:
        self.vm_lock.name = f"vma{self.vid}.vm_lock"

    @property
    def anon_vma_chain_singular(self) -> bool:
        """``list_is_singular(&vma->anon_vma_chain)``: one anon_vma, not inherited."""
        return self.anon_vma is not None and not self.anon_vma_forked

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
    #: ``rlimit(RLIMIT_STACK)`` of the process, in bytes (``acct_stack_growth``).
    rlimit_stack: int = 8 << 20
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
        vma.anon_vma_forked = orig.anon_vma_forked  # anon_vma_clone copies the chain
        vma.pgoff = orig.pgoff
        vma.uffd_ctx = orig.uffd_ctx
        vma.anon_name = orig.anon_name
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
