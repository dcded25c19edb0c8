"""The mm operations of reference §5 as step sequences: which VMAs each write-locks, and when.

Each operation takes ``mmap_lock`` in the mode 6.4 takes it, write-locks exactly
the VMAs the kernel write-locks (``vma_prepare``, ``vm_flags_*``, the munmap
loop, ...), changes the VMAs and the maple tree, and releases.  VMA changes that
need the same locking share one data-driven step sequence (:func:`vma_commit`):
a list of VMAs to lock followed by a plan of field updates and tree stores, so
that a merge, a split and an expansion all lock and publish in the kernel's
order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmaviz.model import mm as M
from vmaviz.model.kernel import (
    OP_ENTRY,
    STACK_GUARD_GAP,
    Kernel,
    _anon_vma_prepare,
    _page_range,
    _start_write,
    kfunc,
)
from vmaviz.model.mm import PAGE_SHIFT, PAGE_SIZE, Vma
from vmaviz.model.sched import BARRIER, BLOCKED, DONE, EV_TIMER, SLEEPING, Frame, Thread


def _range_of(k: Kernel, args: dict[str, Any]) -> tuple[int, int]:
    """The byte range ``[start, end)`` an op's ``vma`` + ``pages`` name."""
    start, end = k.names[args["vma"]]
    lo, hi = _page_range(args.get("pages"), (end - start) >> PAGE_SHIFT)
    return start + lo * PAGE_SIZE, start + (hi + 1) * PAGE_SIZE


def _overlapping(k: Kernel, start: int, end: int) -> list[Vma]:
    return [e for _, _, e in k.mm.mm_mt.items(start, end - 1) if e is not None]


def _store(k: Kernel, start: int, end: int, vma: Vma | None) -> int:
    return k.tree_store(start, end, vma)


def _find_vma_intersection(mm: M.Mm, start: int, end: int) -> Vma | None:
    """``find_vma_intersection`` (mm/mmap.c): the first VMA overlapping ``[start, end)``."""
    vma = mm.find_vma(start)
    return vma if vma is not None and vma.vm_start < end else None


def _vma_prev(mm: M.Mm, addr: int) -> Vma | None:
    """``vma_prev`` from ``addr``: the last VMA ending at or below ``addr`` (any distance)."""
    hit = mm.mm_mt.prev(addr) if addr else None
    return hit[0] if hit else None


def is_mergeable_vma(
    vma: Vma,
    file: str | None,
    vm_flags: int,
    uffd_ctx: int,
    anon_name: str | None,
) -> bool:
    """``is_mergeable_vma`` (mm/mmap.c) on the modelled fields.

    The flags must be equal except ``VM_SOFTDIRTY`` (the caller marks the merged
    VMA soft-dirty), the file the same, the userfaultfd context the same
    (``is_mergeable_vm_userfaultfd_ctx``) and the anon_vma name equal
    (``anon_vma_name_eq``).  The ``vm_ops->close`` test never refuses: no
    modelled VMA has a ``close`` operation.
    """
    if (vma.vm_flags ^ vm_flags) & ~M.VM_SOFTDIRTY:
        return False
    if vma.file != file:
        return False
    if vma.uffd_ctx != uffd_ctx:
        return False
    return vma.anon_name == anon_name


def is_mergeable_anon_vma(anon_vma1: int | None, anon_vma2: int | None, vma: Vma | None) -> bool:
    """``is_mergeable_anon_vma`` (mm/mmap.c).

    One side without an anon_vma is acceptable only when the *existing* VMA
    ``vma`` (the neighbour, whose anon_vma is ``anon_vma2``) has a singular
    ``anon_vma_chain``: so a neighbour with no anon_vma (empty chain) cannot
    absorb a range that has one, while a neighbour with its own (not forked)
    anon_vma can absorb a range without.  With ``vma`` None (``vma_merge``'s
    prev-and-next test) one NULL side is enough.  Otherwise both must be equal.
    """
    if (anon_vma1 is None or anon_vma2 is None) and (vma is None or vma.anon_vma_chain_singular):
        return True
    return anon_vma1 == anon_vma2


def can_vma_merge_before(
    vma: Vma,
    vm_flags: int,
    anon_vma: int | None,
    file: str | None,
    vm_pgoff: int,
    uffd_ctx: int,
    anon_name: str | None,
) -> bool:
    """``can_vma_merge_before`` (mm/mmap.c): the range can merge in front of ``vma``.

    ``vm_pgoff`` is the file page the range's *end* would have: it must be
    ``vma``'s own ``vm_pgoff``.
    """
    return (
        is_mergeable_vma(vma, file, vm_flags, uffd_ctx, anon_name)
        and is_mergeable_anon_vma(anon_vma, vma.anon_vma, vma)
        and vma.pgoff == vm_pgoff
    )


def can_vma_merge_after(
    vma: Vma,
    vm_flags: int,
    anon_vma: int | None,
    file: str | None,
    vm_pgoff: int,
    uffd_ctx: int,
    anon_name: str | None,
) -> bool:
    """``can_vma_merge_after`` (mm/mmap.c): the range (at file page ``vm_pgoff``)
    can merge after ``vma``: the pages must continue ``vma``'s.
    """
    return (
        is_mergeable_vma(vma, file, vm_flags, uffd_ctx, anon_name)
        and is_mergeable_anon_vma(anon_vma, vma.anon_vma, vma)
        and vma.pgoff + vma.npages == vm_pgoff
    )


@dataclass(slots=True)
class MergePlan:
    """What ``vma_merge`` (mm/mmap.c) decided: its local variables at ``vma_prepare``.

    Attributes:
        case: the case number of the comment above 6.4's ``vma_merge`` (1-8), or 0
            for the ``vma_expand`` of ``mmap_region``.
        res: the VMA returned (the one covering the range afterwards).
        vma: the VMA whose bounds become ``[vma_start, vma_end)`` at ``vma_pgoff``.
        adjust: the VMA whose start moves by ``adj_start`` bytes (cases 4, 5).
        remove, remove2: the VMAs removed (``remove2`` only in case 6).
        dups: ``dup_anon_vma(dst, src)`` calls, in order.
    """

    case: int
    res: Vma
    vma: Vma
    vma_start: int
    vma_end: int
    vma_pgoff: int
    adjust: Vma | None = None
    adj_start: int = 0
    remove: Vma | None = None
    remove2: Vma | None = None
    dups: list[tuple[Vma, Vma]] = field(default_factory=list)

    @property
    def lock(self) -> list[int]:
        """The VMAs ``vma_prepare`` write-locks, in its order: vma, adj_next, remove, remove2."""
        order = (self.vma, self.adjust, self.remove, self.remove2)
        return [v.vid for v in order if v is not None]

    def action(self) -> tuple[Any, ...]:
        """The :func:`vma_commit` action that applies the plan."""
        removes = tuple(v.vid for v in (self.remove, self.remove2) if v is not None)
        return (
            "merge",
            self.vma.vid,
            self.vma_start,
            self.vma_end,
            self.vma_pgoff,
            self.adjust.vid if self.adjust is not None else 0,
            self.adj_start,
            removes,
        )


def vma_merge_plan(
    mm: M.Mm,
    prev: Vma | None,
    addr: int,
    end: int,
    vm_flags: int,
    anon_vma: int | None,
    file: str | None,
    pgoff: int,
    uffd_ctx: int = 0,
    anon_name: str | None = None,
) -> MergePlan | None:
    """The decision of ``vma_merge`` (mm/mmap.c, 6.4.0) for ``[addr, end)``, or None.

    ``prev`` is what the caller passes: the VMA before the range, or (mprotect,
    madvise, userfaultfd on a range starting inside a VMA) the VMA holding
    ``addr``.  ``curr`` is a VMA already covering the range (the one whose flags
    change); ``next`` the VMA at ``end``, looked up only when there is no
    ``curr`` or the range ends where ``curr`` ends.  The eight cases:

    1. prev + range + next become prev (next removed);
    2. prev grows over the range;
    3. next grows down over the range;
    4. the tail of prev joins next: next's start moves down (adjust);
    5. the head of curr joins prev: curr's start moves up (adjust);
    6. prev absorbs curr and next (both removed);
    7. prev absorbs curr (removed);
    8. next absorbs curr (removed).
    """
    if vm_flags & M.VM_SPECIAL:
        return None
    curr = _find_vma_intersection(mm, prev.vm_end if prev is not None else 0, end)
    nxt = mm.vma_at(end) if curr is None or end == curr.vm_end else None
    pglen = (end - addr) >> PAGE_SHIFT
    vma_start, vma_end, vma_pgoff = addr, end, 0
    merge_prev = merge_next = False
    if prev is not None:
        vma_start, vma_pgoff = prev.vm_start, prev.pgoff
        merge_prev = addr == prev.vm_end and can_vma_merge_after(
            prev, vm_flags, anon_vma, file, pgoff, uffd_ctx, anon_name
        )
    if nxt is not None:
        merge_next = can_vma_merge_before(
            nxt, vm_flags, anon_vma, file, pgoff + pglen, uffd_ctx, anon_name
        )
    if not merge_prev and not merge_next:
        return None
    if (
        merge_prev
        and merge_next
        and prev is not None
        and nxt is not None
        and is_mergeable_anon_vma(prev.anon_vma, nxt.anon_vma, None)
    ):
        plan = MergePlan(1, prev, prev, vma_start, nxt.vm_end, vma_pgoff, remove=nxt)
        plan.dups.append((prev, nxt))
        if curr is not None:
            plan.case, plan.remove, plan.remove2 = 6, curr, nxt
            if nxt.anon_vma is None:
                plan.dups.append((prev, curr))
        return plan
    if merge_prev:
        assert prev is not None
        plan = MergePlan(2, prev, prev, vma_start, vma_end, vma_pgoff)
        if curr is not None:
            plan.dups.append((prev, curr))
            if end == curr.vm_end:
                plan.case, plan.remove = 7, curr
            else:
                plan.case, plan.adjust, plan.adj_start = 5, curr, end - curr.vm_start
        return plan
    assert nxt is not None
    if prev is not None and addr < prev.vm_end:
        plan = MergePlan(4, nxt, prev, vma_start, addr, vma_pgoff)
        plan.adjust, plan.adj_start = nxt, -(prev.vm_end - addr)
        plan.dups.append((nxt, prev))
        return plan
    plan = MergePlan(3, nxt, nxt, addr, nxt.vm_end, nxt.pgoff - pglen)
    if curr is not None:
        plan.case, plan.vma_pgoff, plan.remove = 8, curr.pgoff, curr
        plan.dups.append((nxt, curr))
    return plan


def dup_anon_vma(k: Kernel, th: Thread, dst: Vma, src: Vma) -> None:
    """``dup_anon_vma`` (mm/mmap.c): the growing VMA takes the shrinking one's
    anon_vma (``anon_vma_clone``) if it has none, to cover the pages it imports.

    6.4.0 sets ``dst->anon_vma`` here, before ``vma_prepare`` write-locks ``dst``
    (R-D1): the change is recorded so that a fault which VMA-locks ``dst`` in
    that window reports invariant 3 (``_check_dup_anon_vma_window``).  With
    ``fix_dup_anon_vma_lock`` (6.4.8) the caller has already run
    ``vma_start_write(dst)`` (:func:`_dup_anon_vma_lock_target`).
    """
    if src.anon_vma is not None and dst.anon_vma is None:
        if k.patch["fix_dup_anon_vma_lock"]:
            k.check_modify_vma(th, dst, "anon_vma")
        elif k.per_vma and not k.mm.is_write_locked(dst):
            seq = k.mm.mm_lock_seq
            # Entries of older write epochs can never match again: drop them.
            stale = [v for v, s in k.dup_anon_vma_unlocked.items() if s != seq]
            for v in stale:
                del k.dup_anon_vma_unlocked[v]
            k.dup_anon_vma_unlocked[dst.vid] = seq
        dst.anon_vma = src.anon_vma
        dst.anon_vma_forked = src.anon_vma_forked


def _dup_anon_vma_lock_target(k: Kernel, dups: list[tuple[Vma, Vma]]) -> Vma | None:
    """With ``fix_dup_anon_vma_lock``: the first ``dst`` that ``dup_anon_vma`` must
    ``vma_start_write`` before setting its anon_vma (6.4.8 mm/mmap.c
    ``dup_anon_vma``), or None once every such ``dst`` is write-locked.
    """
    if not (k.per_vma and k.patch["fix_dup_anon_vma_lock"]):
        return None
    for dst, src in dups:
        if src.anon_vma is not None and dst.anon_vma is None and not k.mm.is_write_locked(dst):
            return dst
    return None


def _unlock_and_return(k: Kernel, th: Thread, fr: Frame) -> int:
    """The tail of a write-locked op: release ``mmap_lock`` (for read if it was
    downgraded on the way), then return to the caller.
    """
    L = fr.loc
    if not L.get("unlocking"):
        L["unlocking"] = True
        k.call(th, "mmap_read_unlock" if L.get("downgraded") else "mmap_write_unlock")
        return -1
    k.ret(th)
    return -1


# =====================================================================
# vma_prepare ... vma_complete: lock, then apply a plan
# =====================================================================


@kfunc("vma_prepare", "mm/mmap.c")
def vma_commit(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vma_prepare`` (write-lock each VMA to change) then ``vma_complete`` (apply, store).

    ``loc['lock']`` lists VMA ids to write-lock; ``loc['plan']`` is a list of
    actions: ``("bounds", vid, start, end)``, ``("store", start, end, vid or 0)``,
    ``("remove", vid)`` (detach + ``vm_area_free``), ``("flags", vid, set, clear)``,
    ``("merge", vid, start, end, pgoff, adjust, adj_start, removed)`` (the
    ``vma_merge`` / ``vma_expand`` update, see :func:`_apply_merge`).
    """
    L = fr.loc
    if fr.pc == 0:
        if not k.patch["vma_prepare_write_lock"]:
            # Remembered so vma_complete reports a fault inside a VMA whose
            # bounds change (the race the lock prevents), not the missing lock.
            L["lock"], L["unlocked"] = [], True
        while L["lock"]:
            vid = L["lock"].pop(0)
            vma = k.mm.vmas[vid]
            if k.per_vma and not k.mm.is_write_locked(vma):
                _start_write(k, th, vma)
                return -1
        fr.pc = 1
        return -1
    cost = k.costs["vma_modify"]
    unlocked = L.get("unlocked", False)
    for act in L["plan"]:
        if act[0] == "bounds":
            vma = k.mm.vmas[act[1]]
            k.check_modify_vma(th, vma, "vm_start/vm_end", unlocked)
            shift = (act[2] - vma.vm_start) >> PAGE_SHIFT
            vma.pages = {
                i - shift: s
                for i, s in vma.pages.items()
                if act[2] <= vma.vm_start + i * PAGE_SIZE < act[3]
            }
            vma.pgoff += shift  # vm_pgoff follows vm_start, anonymous or not
            vma.vm_start, vma.vm_end = act[2], act[3]
        elif act[0] == "store":
            cost += _store(k, act[1], act[2], k.mm.vmas[act[3]] if act[3] else None)
        elif act[0] == "remove":
            vma = k.mm.vmas[act[1]]
            _detach(k, th, vma)
            k.mm.map_count -= 1
            k.vm_area_free(vma)
        elif act[0] == "flags":
            vma = k.mm.vmas[act[1]]
            k.check_modify_vma(th, vma, "vm_flags", unlocked)
            vma.vm_flags = (vma.vm_flags | act[2]) & ~act[3]
        elif act[0] == "merge":
            cost += _apply_merge(k, th, *act[1:], unlocked=unlocked)
        elif act[0] == "insert":
            vma = k.mm.vmas[act[1]]
            cost += _store(k, vma.vm_start, vma.vm_end, vma)
            k.mm.map_count += 1
    k.emit("vma_complete", len(L["plan"]), L.get("what_code", 0), L.get("what", ""))
    k.ret(th, L.get("result"))
    return cost


def _apply_merge(
    k: Kernel,
    th: Thread,
    vid: int,
    start: int,
    end: int,
    pgoff: int,
    adjust_vid: int,
    adj_start: int,
    removed: tuple[int, ...],
    *,
    unlocked: bool = False,
) -> int:
    """The body of ``vma_merge`` / ``vma_expand`` (mm/mmap.c) between ``vma_prepare``
    and ``vma_complete``: new bounds and ``vm_pgoff`` for ``vma``, stored in the
    tree if it grew; ``adjust``'s start moved by ``adj_start`` (stored when it
    moved down, case 4); then each removed VMA is detached and freed.
    ``unlocked``: ``vma_prepare``'s write locks were switched off (patch
    ``vma_prepare_write_lock``), see :meth:`Kernel.check_modify_vma`.

    The PTEs stay where they are; the model keeps them per VMA, so each page
    goes to whichever surviving VMA now covers its address.
    """
    mm = k.mm
    vma = mm.vmas[vid]
    adjust = mm.vmas[adjust_vid] if adjust_vid else None
    gone = [mm.vmas[r] for r in removed]
    pages = {
        v.vm_start + i * PAGE_SIZE: st
        for v in (vma, adjust, *gone)
        if v is not None
        for i, st in v.pages.items()
    }
    cost = 0
    k.check_modify_vma(th, vma, "vm_start/vm_end/vm_pgoff", unlocked)
    expanded = start < vma.vm_start or end > vma.vm_end
    vma.vm_start, vma.vm_end, vma.pgoff = start, end, pgoff
    if expanded:
        cost += _store(k, start, end, vma)
    if adjust is not None and adj_start:
        k.check_modify_vma(th, adjust, "vm_start/vm_pgoff", unlocked)
        adjust.vm_start += adj_start
        adjust.pgoff += adj_start >> PAGE_SHIFT
        if adj_start < 0:
            cost += _store(k, adjust.vm_start, adjust.vm_end, adjust)
    for v in (vma, adjust):
        if v is not None:
            v.pages = {
                (a - v.vm_start) >> PAGE_SHIFT: st
                for a, st in pages.items()
                if v.vm_start <= a < v.vm_end
            }
    for v in gone:
        _detach(k, th, v)
        mm.map_count -= 1
        k.vm_area_free(v)
    return cost


def _detach(k: Kernel, th: Thread, vma: Vma) -> None:
    """``vma_mark_detached(vma, true)``: only while write-locked (invariant 6)."""
    if k.per_vma and not k.mm.is_write_locked(vma):
        k.violate(6, f"{vma.label()} marked detached without its write lock")
    vma.detached = True


def _detach_unlocked(k: Kernel, vma: Vma) -> None:
    """``vma_mark_detached`` as ``do_vmi_align_munmap`` reaches it without [v3 19/35]
    (patch ``write_lock_before_detach`` off): no ``vma_start_write`` first.

    That kernel had no rule that a VMA is detached only while write-locked (the
    patch adds it: invariant 6), so an unlocked detach alone is not the break; the
    race it opens is.  A fault that read-locked the VMA before munmap took it out of
    the tree keeps running while munmap zaps its pages and frees its page tables
    (invariant 4: tree membership and page tables change under a VMA read lock).
    """
    readers = k.vma_read_locked(vma)
    if readers:
        k.violate(4, f"{vma.label()} leaves the tree while {readers} task(s) read-lock it")
    vma.detached = True


def _commit(
    k: Kernel,
    th: Thread,
    lock: list[int],
    plan: list[tuple[Any, ...]],
    what: str,
    result: Any = None,
) -> None:
    k.call(th, "vma_prepare", lock=list(lock), plan=plan, what=what, result=result)


@kfunc("__split_vma", "mm/mmap.c")
def split_vma(k: Kernel, th: Thread, fr: Frame) -> int:
    """``__split_vma``: a new VMA for one side; ``vma_prepare`` locks only the original.

    ``new_below`` selects which side the new VMA takes (the lower part when set).
    Returns the new VMA's id.  The new VMA (``vp->insert``) is not locked: it is
    "always a newly created VMA".
    """
    L = fr.loc
    if fr.pc == 0:
        vma = k.mm.vmas[fr.loc["vid"]]
        addr = L["addr"]
        if not vma.vm_start < addr < vma.vm_end:
            k.ret(th, None)  # nothing to split
            return -1
        new = k.mm.vma_dup(vma)
        if L["new_below"]:
            new.vm_end = addr
            new.pages = {
                i: s for i, s in vma.pages.items() if i < (addr - vma.vm_start) >> PAGE_SHIFT
            }
            plan = [("bounds", vma.vid, addr, vma.vm_end), ("insert", new.vid)]
        else:
            new.vm_start = addr
            off = (addr - vma.vm_start) >> PAGE_SHIFT
            new.pages = {i - off: s for i, s in vma.pages.items() if i >= off}
            new.pgoff += off  # __split_vma: new->vm_pgoff += (addr - vm_start) >> PAGE_SHIFT
            plan = [("bounds", vma.vid, vma.vm_start, addr), ("insert", new.vid)]
        fr.pc = 1
        k.emit("__split_vma:vm_area_dup", vma.vid, new.vid)
        _commit(k, th, [vma.vid], plan, "split", new.vid)
        return k.costs["vma_alloc"]
    new_vid = L.pop("ret")
    k.ret(th, new_vid)
    return -1


# =====================================================================
# munmap (mm/mmap.c do_vmi_align_munmap)
# =====================================================================


@kfunc("do_vmi_align_munmap", "mm/mmap.c")
def do_vmi_align_munmap(k: Kernel, th: Thread, fr: Frame) -> int:
    """Split at the edges, write-lock and detach each VMA, clear the range, maybe downgrade.

    Returns True when the mmap lock was downgraded (the caller then read-unlocks).
    """
    L = fr.loc
    start, end = L["start"], L["end"]
    while True:
        pc = fr.pc
        if pc == 0:
            first = k.mm.find_vma(start)
            if first is None or first.vm_start >= end:
                k.emit("do_vmi_munmap:nothing", start)
                k.ret(th, False)
                return k.costs["find_vma"]
            fr.pc = 1
            if first.vm_start < start:
                k.call(th, "__split_vma", vid=first.vid, addr=start, new_below=False)
            k.emit("do_vmi_munmap:vma_find", first.vid)
            return k.costs["find_vma"]
        if pc == 1:
            L.pop("ret", None)
            last = k.mm.vma_at(end - 1)
            fr.pc = 2
            if last is not None and last.vm_end > end:
                # 6.4: __split_vma(vmi, next, end, 0): the surviving tail is the
                # new (unlocked) VMA; the original keeps the part to unmap.
                k.call(th, "__split_vma", vid=last.vid, addr=end, new_below=False)
                return -1
            continue
        if pc == 2:
            L.pop("ret", None)
            L["victims"] = [v.vid for v in _overlapping(k, start, end)]
            L["todo"] = list(L["victims"])
            fr.pc = 3
            continue
        if pc == 3:
            # Write-lock each VMA, then move it to the side tree and mark it detached.
            if not L["todo"]:
                fr.pc = 5
                continue
            vid = L["todo"][0]
            vma = k.mm.vmas[vid]
            if k.per_vma and not k.mm.is_write_locked(vma):
                if k.patch["write_lock_before_detach"]:
                    _start_write(k, th, vma)
                    return -1
                _detach_unlocked(k, vma)
            else:
                _detach(k, th, vma)
            L["todo"].pop(0)
            k.emit("vma_mark_detached", vid)
            return k.costs["maple_store"]
        if pc == 5:
            # The point of no return: clear the range from mm_mt.
            cost = _store(k, start, end, None)
            k.mm.map_count -= len(L["victims"])
            # next = vma_next(vmi): the first VMA above the range, at any distance.
            # A VM_GROWSDOWN next keeps the write lock: under the read lock it could
            # grow down into the range being unmapped.  (The VM_GROWSUP prev rule is
            # dead code on the modelled arches, where VM_GROWSUP is VM_NONE.)
            nxt = k.mm.find_vma(end)
            grows = nxt is not None and bool(nxt.vm_flags & M.VM_GROWSDOWN)
            fr.pc = 7
            note = ""
            if L["downgrade"]:
                if grows:
                    assert nxt is not None
                    note = f"no downgrade: next VMA {nxt.label()} grows down"
                else:
                    fr.pc = 6
            k.emit("vma_iter_clear", start, end, note)
            return cost
        if pc == 6:
            L["downgraded"] = True
            fr.pc = 7
            k.call(th, "mmap_write_downgrade")
            return -1
        if pc == 7:
            # unmap_region: zap the pages, free page tables, flush the TLB.
            pages = 0
            for vid in L["victims"]:
                vma = k.mm.vmas[vid]
                pages += len(vma.pages)
                vma.pages = {}
            fr.pc = 8
            k.emit("unmap_region", pages, int(L.get("downgraded", False)))
            return pages * k.costs["zap_page"] + k.costs["free_pgtables"] + k.costs["tlb_flush"]
        # pc 8: remove_mt -> remove_vma -> vm_area_free (RCU) for each VMA.
        for vid in L["victims"]:
            k.vm_area_free(k.mm.vmas[vid])
        k.emit("remove_mt:remove_vma", len(L["victims"]))
        k.ret(th, L.get("downgraded", False))
        return k.costs["vma_modify"] * max(1, len(L["victims"]))


@kfunc("__vm_munmap", "mm/mmap.c")
def op_munmap(k: Kernel, th: Thread, fr: Frame) -> int:
    """``munmap`` -> ``__vm_munmap(downgrade=true)`` -> ``do_vmi_munmap``.

    An unmapped range is no error: ``do_vmi_munmap`` finds no VMA and returns 0
    (``do_vmi_munmap:nothing``).  A range reaching beyond ``TASK_SIZE`` is
    ``-EINVAL`` (``munmap:einval``), checked under the lock as 6.4 does.
    """
    L = fr.loc
    if fr.pc == 0:
        L["start"], L["end"] = _range_of(k, L["op"].args)
        fr.pc = 1
        k.call(th, "mmap_write_lock_killable")
        k.emit("syscall:munmap", L["start"], L["end"])
        return k.costs["syscall"]
    if fr.pc == 1:
        fr.pc = 2
        if L["end"] > M.TASK_SIZE:
            L["ret"] = False
            k.emit("munmap:einval", L["start"], L["end"])
            return k.costs["plain_load"]
        k.call(th, "do_vmi_align_munmap", start=L["start"], end=L["end"], downgrade=True)
        return -1
    if fr.pc == 2:
        fr.pc = 3
        k.call(th, "mmap_read_unlock" if L.pop("ret") else "mmap_write_unlock")
        return -1
    k.ret(th)
    return -1


# =====================================================================
# mmap (mm/mmap.c do_mmap -> mmap_region)
# =====================================================================


@kfunc("mmap_region", "mm/mmap.c")
def op_mmap(k: Kernel, th: Thread, fr: Frame) -> int:
    """``do_mmap`` -> ``get_unmapped_area`` -> ``mmap_region`` (6.4.0 order)."""
    L = fr.loc
    a = L["op"].args
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock_killable")
            k.emit("syscall:mmap", int(a["pages"]))
            return k.costs["syscall"]
        if pc == 1:
            size = int(a["pages"]) * PAGE_SIZE
            at = a.get("at")
            start: int | None
            if a.get("fixed") and at:
                start = k.resolve(at["vma"], int(at.get("page", 0)))
                if start + size > M.TASK_SIZE:
                    # get_unmapped_area: a range reaching past TASK_SIZE is -ENOMEM.
                    start = None
            else:
                hint = k.resolve(at["vma"], int(at.get("page", 0))) if at else None
                start = _get_unmapped_area(k, size, hint)
            if start is None:
                L["error"] = "ENOMEM"
                fr.pc = 9
                k.emit("get_unmapped_area:enomem", size)
                return k.costs["get_unmapped_area"]
            L["start"], L["end"] = start, start + size
            fr.pc = 2
            k.emit("get_unmapped_area", start, size)
            if _overlapping(k, start, start + size):
                # MAP_FIXED over existing mappings: unmap them first (no downgrade).
                k.call(th, "do_vmi_align_munmap", start=start, end=start + size, downgrade=False)
            return k.costs["get_unmapped_area"]
        if pc == 2:
            L.pop("ret", None)
            start, end = L["start"], L["end"]
            flags = M.PROT_FLAGS[a.get("prot", "rw")] | M.VM_MAYREAD | M.VM_MAYWRITE | M.VM_MAYEXEC
            if a.get("shared"):
                flags |= M.VM_SHARED
            if a.get("growsdown"):
                flags |= M.VM_GROWSDOWN
            if a.get("noreserve") and not a.get("shared"):
                # do_mmap (mm/mmap.c): MAP_NORESERVE on a private mapping sets
                # VM_NORESERVE (overcommit is not OVERCOMMIT_NEVER in the model), so
                # accountable_mapping is false and no VM_ACCOUNT is set.
                flags |= M.VM_NORESERVE
            L["flags"] = flags
            if M.accountable_mapping(a.get("file"), flags):
                flags |= M.VM_ACCOUNT  # mmap_region: a private writable mapping is charged
            L["flags"] = flags
            L["file"] = M.backing_file(a.get("file"), bool(a.get("shared")))
            shared = bool(a.get("shared"))
            pgoff = M.mmap_pgoff(a.get("file"), shared, start, int(a.get("pgoff", 0)))
            L["pgoff"] = pgoff
            plan = _mmap_expand_plan(k, start, end, flags, a.get("file"), pgoff)
            if plan is not None:
                # vma_expand: dup_anon_vma from a removed next, then vma_prepare
                # write-locks the expanded VMA and the removed next.
                lock_dst = _dup_anon_vma_lock_target(k, plan.dups)
                if lock_dst is not None:
                    # 6.4.8: dup_anon_vma's vma_start_write(dst); this pc runs
                    # again (same plan: the mmap write lock is held) once it returns.
                    _start_write(k, th, lock_dst)
                    return -1
                for dst, src in plan.dups:
                    dup_anon_vma(k, th, dst, src)
                L["vid"] = plan.vma.vid
                fr.pc = 5
                k.emit("vma_expand", plan.vma.vid, len(plan.lock))
                _commit(k, th, plan.lock, [plan.action()], "expand")
                return k.costs["vma_modify"]
            vma = k.mm.new_vma(a["name"], start, end, flags, L["file"])
            vma.pgoff = pgoff
            L["vid"] = vma.vid
            fr.pc = 3
            k.emit("vm_area_alloc", vma.vid)
            if k.patch["fix_mmap_lock_new_vma"]:
                _start_write(k, th, vma)  # 6.4.3: lock before the VMA becomes visible
            return k.costs["vma_alloc"]
        if pc == 3:
            vma = k.mm.vmas[fr.loc["vid"]]
            cost = _store(k, vma.vm_start, vma.vm_end, vma)
            k.mm.map_count += 1
            fr.pc = 4
            k.emit("vma_link:inserted", vma.vid, int(k.mm.is_write_locked(vma)))
            return cost
        if pc == 4:
            # vm_flags_set(vma, VM_SOFTDIRTY): write-locks the (already visible) VMA.
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 6
            if k.patch["vm_flags_write_lock"]:
                _start_write(k, th, vma)
            else:
                L["flags_unlocked"] = True
            return -1
        if pc == 5:
            L.pop("ret", None)
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 6
            if k.patch["vm_flags_write_lock"]:
                _start_write(k, th, vma)
            else:
                L["flags_unlocked"] = True
            return -1
        if pc == 6:
            vma = k.mm.vmas[fr.loc["vid"]]
            _check_vm_flags_write(k, th, vma, not L.get("flags_unlocked", False))
            vma.vm_flags |= M.VM_SOFTDIRTY
            k.names[a["name"]] = (L["start"], L["end"])
            fr.pc = 9
            k.emit("vm_flags_set:softdirty", vma.vid)
            return k.costs["plain_load"]
        if pc == 9:
            fr.pc = 10
            k.call(th, "mmap_write_unlock")
            return -1
        k.ret(th)
        return -1


def _mmap_expand_plan(
    k: Kernel, start: int, end: int, flags: int, file: str | None, pgoff: int
) -> MergePlan | None:
    """``mmap_region``'s "Attempt to expand an old mapping" (mm/mmap.c, 6.4.0).

    ``next`` is tested first, with no anon_vma (the new range has none): it can
    grow down over the range only if its own ``anon_vma_chain`` is singular or
    it has no anon_vma either.  ``prev`` is then tested against the anon_vma (and
    userfaultfd context) of what it would merge with: ``next``'s when ``next``
    matched, so a ``prev`` without an anon_vma cannot absorb a ``next`` that has
    one.  ``file`` is the file argument (None for shared anonymous memory, whose
    shmem file is set up only later: it never merges here).  The result is a
    ``vma_expand`` of the chosen VMA over ``[merge_start, merge_end)``, removing
    ``next`` when the expansion reaches its end.
    """
    mm = k.mm
    if flags & M.VM_SPECIAL:
        return None
    nxt = mm.find_vma(start)
    prev = _vma_prev(mm, start)
    pglen = (end - start) >> PAGE_SHIFT
    vma: Vma | None = None
    merge_start, merge_end, vm_pgoff = start, end, pgoff
    if (
        nxt is not None
        and nxt.vm_start == end
        and can_vma_merge_before(nxt, flags, None, file, pgoff + pglen, 0, None)
    ):
        merge_end, vma, vm_pgoff = nxt.vm_end, nxt, nxt.pgoff - pglen
    if (
        prev is not None
        and prev.vm_end == start
        and can_vma_merge_after(
            prev,
            flags,
            vma.anon_vma if vma is not None else None,
            file,
            pgoff,
            vma.uffd_ctx if vma is not None else 0,
            None,
        )
    ):
        merge_start, vma, vm_pgoff = prev.vm_start, prev, prev.pgoff
    if vma is None:
        return None
    # vma_expand(vmi, vma, merge_start, merge_end, vm_pgoff, next)
    plan = MergePlan(0, vma, vma, merge_start, merge_end, vm_pgoff)
    if nxt is not None and nxt is not vma and merge_end == nxt.vm_end:
        plan.remove = nxt
        plan.dups.append((vma, nxt))
    return plan


def _get_unmapped_area(k: Kernel, size: int, hint: int | None) -> int | None:
    """``arch_get_unmapped_area_topdown``: the hint if free, else the top-most gap."""
    tree = k.mm.mm_mt
    if hint is not None and hint + size <= M.TASK_SIZE and not _overlapping(k, hint, hint + size):
        return hint
    return tree.empty_area_rev(M.MMAP_MIN_ADDR, M.MMAP_BASE - 1, size)


# =====================================================================
# Flag changes over a range: mprotect_fixup / madvise_update_vma / userfaultfd
# =====================================================================


@kfunc("vma_merge", "mm/mmap.c")
def vma_merge(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vma_merge``: decide the case (:func:`vma_merge_plan`), ``dup_anon_vma``,
    then ``vma_prepare`` (write-lock vma, adjust, remove, remove2) and
    ``vma_complete``.  Returns the surviving VMA's id, or None (no merge).
    """
    L = fr.loc
    if fr.pc == 0:
        mm = k.mm
        prev = mm.vmas[L["prev"]] if L["prev"] else None
        plan = vma_merge_plan(
            mm,
            prev,
            L["addr"],
            L["end"],
            L["flags"],
            L["anon_vma"],
            L["file"],
            L["pgoff"],
            L["uffd_ctx"],
            L["anon_name"],
        )
        if plan is None:
            k.ret(th, None)
            return -1
        lock_dst = _dup_anon_vma_lock_target(k, plan.dups)
        if lock_dst is not None:
            # 6.4.8: dup_anon_vma starts with vma_start_write(dst); pc 0 runs
            # again afterwards and finds the same plan (mmap write lock held).
            _start_write(k, th, lock_dst)
            return -1
        # 6.4.0: dup_anon_vma runs before vma_prepare, under the mmap write lock
        # only; a fault can VMA-lock dst between this step and vma_prepare's
        # vma_start_write(dst) (R-D1).
        for dst, src in plan.dups:
            dup_anon_vma(k, th, dst, src)
        fr.pc = 1
        k.emit("vma_merge", plan.res.vid, len(plan.lock), f"case {plan.case}")
        _commit(k, th, plan.lock, [plan.action()], f"merge case {plan.case}", plan.res.vid)
        return k.costs["vma_modify"]
    res = L.pop("ret", None)
    k.ret(th, res)
    return -1


def _check_vm_flags_write(k: Kernel, th: Thread, vma: Vma, locked: bool) -> None:
    """Invariants 3 and 4 for a ``vm_flags_*`` writer (include/linux/mm.h).

    ``locked`` is False when the writer skipped ``vma_start_write`` because patch
    ``vm_flags_write_lock`` is off (the kernel before [v3 13/35]).  That kernel had
    no rule that flags change only under the VMA write lock (the patch adds it:
    invariant 3), so an unlocked change alone is not the break; the race it opens
    is.  A fault that passed its access check (``VM_WRITE``) under the VMA read lock
    sees the flags change under it, and installs a PTE the new flags forbid after
    ``change_protection`` has write-protected the others (invariant 4).
    """
    if locked:
        k.check_modify_vma(th, vma, "vm_flags")
    elif k.per_vma and vma.state == "live" and not vma.detached:
        readers = k.vma_read_locked(vma)
        if readers:
            k.violate(4, f"{vma.label()} changes vm_flags while {readers} task(s) read-lock it")


@kfunc("vm_flags_reset", "include/linux/mm.h")
def vm_flags_reset(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vm_flags_reset``: ``vma_start_write``, then write the new ``vm_flags``."""
    L = fr.loc
    vma = k.mm.vmas[L["vid"]]
    locked = True
    if fr.pc == 0:
        fr.pc = 1
        if k.patch["vm_flags_write_lock"]:
            _start_write(k, th, vma)
            return -1
        locked = False
    _check_vm_flags_write(k, th, vma, locked)
    vma.vm_flags = L["flags"]
    k.emit("vm_flags_reset", vma.vid, vma.vm_flags)
    k.ret(th)
    return k.costs["plain_load"]


def _fixup(k: Kernel, th: Thread, fr: Frame, kind: str) -> int | None:
    """One VMA of a flag change, as ``mprotect_fixup`` (mm/mprotect.c),
    ``madvise_update_vma`` (mm/madvise.c) and the loop body of
    ``userfaultfd_register`` (fs/userfaultfd.c) all do it: ``vma_merge``, else
    ``split_vma`` at ``start`` (new VMA below) and at ``end`` (new VMA above),
    then ``vm_flags_reset`` on the VMA that covers the range.

    Frame locals in: ``fvid`` (the VMA), ``s``/``e`` (the part of it to change),
    ``newflags``, ``fprev`` (the caller's ``*pprev``).  Runs as a sub-machine
    (``fpc``); returns a step cost, or None when done with ``pprev`` set.
    """
    L = fr.loc
    mm = k.mm
    while True:
        fpc = L.get("fpc", 0)
        if fpc == 0:
            vma = mm.vmas[L["fvid"]]
            old = vma.vm_flags
            L["oldflags"] = old
            newflags = L["newflags"]
            if (
                kind == "mprotect"
                and newflags & M.VM_WRITE
                and not old & (M.VM_ACCOUNT | M.VM_WRITE | M.VM_SHARED | M.VM_NORESERVE)
            ):
                # mprotect_fixup: a private mapping first made writable is charged
                # (VM_ACCOUNT); nothing ever clears it again.
                newflags |= M.VM_ACCOUNT
                L["newflags"] = newflags
            L["fpc"] = 1
            k.call(
                th,
                "vma_merge",
                prev=L["fprev"],
                addr=L["s"],
                end=L["e"],
                flags=newflags,
                anon_vma=vma.anon_vma,
                file=vma.file,
                pgoff=vma.pgoff + ((L["s"] - vma.vm_start) >> PAGE_SHIFT),
                uffd_ctx=L["uffd_ctx"] if kind == "uffd" else vma.uffd_ctx,
                anon_name=L["new_name"] if kind == "anon_name" else vma.anon_name,
            )
            return -1
        if fpc == 1:
            res = L.pop("ret", None)
            if res:
                L["ftarget"] = res
                L["fpc"] = 4
                continue
            L["ftarget"] = L["fvid"]
            L["fpc"] = 2
            if L["s"] > mm.vmas[L["fvid"]].vm_start:
                # split_vma(vmi, vma, start, 1): the unchanged head becomes a new
                # VMA; the original continues from ``start``.
                k.call(th, "__split_vma", vid=L["fvid"], addr=L["s"], new_below=True)
                return -1
            continue
        if fpc == 2:
            L.pop("ret", None)
            L["fpc"] = 3
            if L["e"] < mm.vmas[L["fvid"]].vm_end:
                # split_vma(vmi, vma, end, 0): the unchanged tail becomes new.
                k.call(th, "__split_vma", vid=L["fvid"], addr=L["e"], new_below=False)
                return -1
            continue
        if fpc == 3:
            L.pop("ret", None)
            L["fpc"] = 4
            continue
        if fpc == 4:
            L["fpc"] = 5
            k.call(th, "vm_flags_reset", vid=L["ftarget"], flags=L["newflags"])
            return -1
        if fpc == 5:
            L.pop("ret", None)
            vma = mm.vmas[L["ftarget"]]
            L["pprev"] = vma.vid
            L["fpc"] = 6
            if kind == "uffd":
                # vma->vm_userfaultfd_ctx.ctx = ctx, right after the flags.
                k.check_modify_vma(th, vma, "vm_userfaultfd_ctx")
                vma.uffd_ctx = L["uffd_ctx"]
            if kind == "anon_name" and (vma.file is None or vma.file == M.SHMEM_FILE):
                # madvise_update_vma: replace_anon_vma_name comes after
                # vm_flags_reset, so the VMA is already write-locked here.
                k.check_modify_vma(th, vma, "anon_name")
                vma.anon_name = L["new_name"]
                shown = "NULL" if L["new_name"] is None else repr(L["new_name"])
                k.emit("replace_anon_vma_name", vma.vid, 0, f"name {shown}")
                return k.costs["plain_load"]
            if kind == "mprotect" and L["oldflags"] & M.VM_WRITE and not vma.vm_flags & M.VM_WRITE:
                # change_protection: rewrite the PTEs of the range.
                k.emit("change_protection", vma.vid, len(vma.pages))
                return len(vma.pages) * k.costs["change_protection_page"] + k.costs["tlb_flush"]
            continue
        del L["fpc"]
        return None


@kfunc("mprotect_fixup", "mm/mprotect.c")
def mprotect_fixup(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mprotect_fixup``: ``VM_ACCOUNT`` on first write, then :func:`_fixup`.

    Returns (as ``*pprev``) the VMA now covering the range.
    """
    cost = _fixup(k, th, fr, "mprotect")
    if cost is None:
        k.ret(th, fr.loc["pprev"])
        return -1
    return cost


@kfunc("madvise_update_vma", "mm/madvise.c")
def madvise_update_vma(k: Kernel, th: Thread, fr: Frame) -> int:
    """``madvise_update_vma``: :func:`_fixup` with the advice's new flags."""
    cost = _fixup(k, th, fr, "madvise")
    if cost is None:
        k.ret(th, fr.loc["pprev"])
        return -1
    return cost


#: madvise advice that change ``vm_flags``: (bits set, bits cleared), as
#: ``madvise_vma_behavior`` (mm/madvise.c) computes ``new_flags``.
MADVISE_WRITE_FLAGS = {
    "hugepage": (M.VM_HUGEPAGE, M.VM_NOHUGEPAGE),
    "nohugepage": (M.VM_NOHUGEPAGE, M.VM_HUGEPAGE),
    "dontfork": (M.VM_DONTCOPY, 0),
    "dofork": (0, M.VM_DONTCOPY),
    "mergeable": (M.VM_MERGEABLE, 0),
    "unmergeable": (0, M.VM_MERGEABLE),
    "wipeonfork": (M.VM_WIPEONFORK, 0),
    "keeponfork": (0, M.VM_WIPEONFORK),
    "dontdump": (M.VM_DONTDUMP, 0),
    "dodump": (0, M.VM_DONTDUMP),
    "random": (M.VM_RAND_READ, M.VM_SEQ_READ),
    "sequential": (M.VM_SEQ_READ, M.VM_RAND_READ),
    "normal": (0, M.VM_RAND_READ | M.VM_SEQ_READ),
}


def _walk(k: Kernel, th: Thread, fr: Frame, kind: str) -> int | None:
    """The VMA walk of a flag change over ``[cursor, wend)``, run in the caller's frame.

    ``do_mprotect_pkey`` (mm/mprotect.c), ``madvise_walk_vmas`` (mm/madvise.c)
    and ``userfaultfd_register`` (fs/userfaultfd.c) walk alike: ``prev`` starts
    as the VMA before the first one, or the first one itself when the range
    starts inside it; each VMA's part of the range goes to the per-VMA fixup
    with ``prev``; its result becomes ``prev`` and the walk resumes at its end
    (a merge may have swallowed the next VMA).  A VMA whose flags would not
    change is only passed over (the first test of ``mprotect_fixup`` /
    ``madvise_update_vma``; userfaultfd's ``skip``).

    mprotect stops at a hole (``L['hole']`` = its address: ``-ENOMEM``);
    madvise skips holes; ``MADV_WIPEONFORK`` on a file or shared VMA ends the
    walk with ``L['werror'] = 'EINVAL'``.  Returns a step cost, or None when done.
    """
    L = fr.loc
    mm = k.mm
    while True:
        wpc = L.get("wpc", 0)
        if wpc == 0:
            first = mm.find_vma(L["cursor"])
            prev = _vma_prev(mm, first.vm_start) if first is not None else None
            if first is not None and first.vm_start < L["cursor"]:
                prev = first
            L["wprev"] = prev.vid if prev is not None else 0
            L["wpc"] = 1
            continue
        if wpc == 1:
            cur, end = L["cursor"], L["wend"]
            vma = mm.find_vma(cur) if cur < end else None
            if kind == "anon_name" and cur < end and (vma is None or vma.vm_start > cur):
                # madvise_walk_vmas skips a hole but returns -ENOMEM at the end.
                L["unmapped"] = True
            if vma is None or vma.vm_start >= end or (kind == "mprotect" and vma.vm_start > cur):
                if kind == "mprotect" and cur < end:
                    L["hole"] = cur
                del L["wpc"]
                return None
            s, e = max(cur, vma.vm_start), min(end, vma.vm_end)
            if kind == "mprotect":
                newflags = (vma.vm_flags & ~M.VM_ACCESS_FLAGS) | L["want"]
            elif kind == "madvise":
                anon_private = vma.file is None and not vma.vm_flags & M.VM_SHARED
                if L["advice"] == "wipeonfork" and not anon_private:
                    # "MADV_WIPEONFORK is only supported on anonymous memory."
                    L["werror"] = "EINVAL"
                    del L["wpc"]
                    return None
                bits = MADVISE_WRITE_FLAGS[L["advice"]]
                newflags = (vma.vm_flags | bits[0]) & ~bits[1]
            elif kind == "anon_name":
                if vma.file is not None and vma.file != M.SHMEM_FILE:
                    # madvise_vma_anon_name: "Only anonymous mappings can be named".
                    L["werror"] = "EBADF"
                    k.emit("madvise_vma_anon_name:ebadf", vma.vid)
                    del L["wpc"]
                    return None
                newflags = vma.vm_flags
            else:
                newflags = (vma.vm_flags & ~M.VM_UFFD_FLAGS) | M.VM_UFFD_MISSING
            same = newflags == vma.vm_flags
            if kind == "uffd":
                # userfaultfd_register's skip: this context, the mode's flags set.
                same = vma.uffd_ctx == L["uffd_ctx"] and bool(vma.vm_flags & M.VM_UFFD_MISSING)
            elif kind == "anon_name":
                # madvise_update_vma's first test: same flags and anon_vma_name_eq.
                same = vma.anon_name == L["new_name"]
            if same:
                L["wprev"] = vma.vid
                L["cursor"] = vma.vm_end
                continue
            args = {"fvid": vma.vid, "s": s, "e": e, "newflags": newflags, "fprev": L["wprev"]}
            if kind in ("uffd", "anon_name"):
                L.update(args)
                L["wpc"] = 3
                continue
            L["wpc"] = 2
            k.call(th, "mprotect_fixup" if kind == "mprotect" else "madvise_update_vma", **args)
            return -1
        if wpc == 2:
            pprev = L.pop("ret")
        else:
            cost = _fixup(k, th, fr, kind)
            if cost is not None:
                return cost
            pprev = L["pprev"]
        L["wprev"] = pprev
        L["cursor"] = max(L["cursor"], mm.vmas[pprev].vm_end)
        L["wpc"] = 1


@kfunc("madvise_walk_vmas", "mm/madvise.c")
def madvise_walk_vmas(k: Kernel, th: Thread, fr: Frame) -> int:
    """``madvise_walk_vmas`` with ``madvise_vma_behavior`` -> ``madvise_update_vma``
    for the flag-changing advice (see :func:`_walk`).  Returns an error or None.
    """
    cost = _walk(k, th, fr, "madvise")
    if cost is None:
        k.ret(th, fr.loc.get("werror"))
        return -1
    return cost


@kfunc("do_mprotect_pkey", "mm/mprotect.c")
def op_mprotect(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mprotect``: mmap write lock, ``mprotect_fixup`` over the range, unlock.

    The errors of 6.4's ``do_mprotect_pkey`` on unmapped memory: ``-ENOMEM`` with
    nothing changed when no VMA holds ``start`` (``vma_find`` finds none below
    ``end``, or one starting above ``start``); at a hole inside the range, or when
    the range runs past the last VMA, the VMAs before it have been changed and the
    call returns ``-ENOMEM`` there.  Either way the trace records
    ``mprotect:enomem`` (``a`` = where the unmapped part starts, ``b`` = the end).
    """
    L = fr.loc
    a = L["op"].args
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock_killable")
            k.emit("syscall:mprotect", *_range_of(k, a))
            return k.costs["syscall"]
        if pc == 1:
            start, end = _range_of(k, a)
            first = k.mm.find_vma(start)
            if first is None or first.vm_start > start:
                L["error"] = "ENOMEM"
                fr.pc = 3
                k.emit("mprotect:enomem", start, end)
                return k.costs["find_vma"]
            L["want"] = M.PROT_FLAGS[a["prot"]]
            L["cursor"], L["wend"] = start, end
            fr.pc = 2
            continue
        if pc == 2:
            # The loop of do_mprotect_pkey: mprotect_fixup on each VMA (_walk).
            cost = _walk(k, th, fr, "mprotect")
            if cost is not None:
                return cost
            hole = L.pop("hole", None)
            fr.pc = 3
            if hole is not None:
                L["error"] = "ENOMEM"
                k.emit("mprotect:enomem", hole, _range_of(k, a)[1])
                return k.costs["find_vma"]
            continue
        if pc == 3:
            fr.pc = 4
            k.call(th, "mmap_write_unlock")
            return -1
        k.ret(th, L.get("error"))
        return -1


@kfunc("do_madvise", "mm/madvise.c")
def op_madvise(k: Kernel, th: Thread, fr: Frame) -> int:
    """``do_madvise``: ``madvise_need_mmap_write`` picks the lock, then
    ``madvise_walk_vmas`` applies ``madvise_vma_behavior`` to each VMA of the range.

    Flag-changing advice holds ``mmap_lock`` for write and goes through
    ``madvise_update_vma`` (:func:`madvise_walk_vmas`).  The rest (``dontneed``,
    ``dontneed_locked``, ``free``, ``cold``, ``pageout``, ``willneed``,
    ``remove``, ``populate_read``, ``populate_write``) holds it for read, locks no
    VMA and changes only PTEs (:func:`_madvise_read_walk`).

    Unmapped parts of the range are skipped and the call returns ``-ENOMEM``
    (``madvise_walk_vmas``): the trace records ``madvise:enomem`` (``a``, ``b`` =
    the range) before the unlock.  An error of one VMA ends the walk and is
    returned instead.
    """
    L = fr.loc
    a = L["op"].args
    advice = a["advice"]
    write = advice in MADVISE_WRITE_FLAGS
    pc = fr.pc
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_write_lock_killable" if write else "mmap_read_lock")
        k.emit(f"syscall:madvise:{advice}", int(write))
        return k.costs["syscall"]
    if pc == 1:
        start, end = _range_of(k, a)
        # madvise_walk_vmas skips unmapped parts of the range but then returns
        # -ENOMEM (at once when no VMA ends above start): note it for the end.
        mapped = sum(
            min(end, v.vm_end) - max(start, v.vm_start) for v in _overlapping(k, start, end)
        )
        if mapped < end - start:
            L["error"] = "ENOMEM"
        fr.pc = 2
        if write:
            bits = MADVISE_WRITE_FLAGS[advice]
            k.call(th, "madvise_walk_vmas", cursor=start, wend=end, advice=advice)
            k.emit("madvise:write_lock_advice", bits[0], bits[1])
            return k.costs["madvise_write"]
        L["cursor"], L["wend"], L["changed"] = start, end, 0
        fr.pc = 4
        return _madvise_read_walk(k, th, fr, k.costs["madvise_read"])
    if pc == 4:
        return _madvise_read_walk(k, th, fr, 0)
    if pc == 6:
        # madvise_populate goes on, PAGES_PER_STEP pages a step (the mmap read
        # lock is held throughout, so the VMA stays).
        fill = L["fill"]
        vid = fill[0]
        done, cost = _populate(k, th, fill)
        L["changed"] += done
        if fill[1] >= fill[2]:
            del L["fill"]
            fr.pc = 4
        k.emit("madvise:populate", vid, done)
        return cost
    if pc == 10:
        # Back from madvise_collapse: its error ends the walk (madvise_walk_vmas).
        err = L.pop("ret", None)
        if err is not None:
            L["ret"] = err
            fr.pc = 2
            k.emit("madvise_vma_behavior:error", L["io_vid"], _ERRNO[err])
            return k.costs["plain_load"]
        fr.pc = 4
        return _madvise_read_walk(k, th, fr, 0)
    if pc == 8:
        # madvise_willneed (file) / madvise_remove without mmap_lock.
        fr.pc = 9
        return _madvise_unlocked_io(k, L)
    if pc == 9:
        fr.pc = 4
        k.call(th, "mmap_read_lock")
        return -1
    if pc == 2:
        err = L.pop("ret", None)
        if err:
            # An error of madvise_vma_behavior ends the walk and is returned.
            L["error"] = err
        if L.get("error") == "ENOMEM" and not L.get("reported"):
            L["reported"] = True
            start, end = _range_of(k, a)
            k.emit("madvise:enomem", start, end)
            return k.costs["plain_load"]
        fr.pc = 3
        k.call(th, "mmap_write_unlock" if write else "mmap_read_unlock")
        return -1
    k.ret(th, L.get("error"))
    return -1


def _madvise_read_walk(k: Kernel, th: Thread, fr: Frame, cost: int) -> int:
    """One step of ``madvise_walk_vmas`` for read-lock advice, in ``do_madvise``'s frame.

    Each step applies the advice to the next VMA of the range (its event names
    what the advice did there); a populate goes on in later steps (``pc`` 6), an
    advice that drops ``mmap_lock`` unlocks at once (``pc`` 8-9).  The last step
    records ``madvise:read_lock_advice`` (``a`` = PTEs the call changed).
    """
    L = fr.loc
    advice = L["op"].args["advice"]
    cur, end = L["cursor"], L["wend"]
    vma = k.mm.find_vma(cur) if cur < end else None
    if vma is None or vma.vm_start >= end:
        fr.pc = 2
        k.emit("madvise:read_lock_advice", L["changed"])
        return cost + k.costs["plain_load"]
    s, e = max(cur, vma.vm_start), min(end, vma.vm_end)
    L["cursor"] = e
    err, more, changed, c = madvise_vma_behavior(k, th, vma, s, e, advice)
    L["changed"] += changed
    cost += c
    if err is not None:
        L["ret"] = err
        fr.pc = 2
        k.emit("madvise_vma_behavior:error", vma.vid, _ERRNO[err])
        return cost + k.costs["plain_load"]
    if more in ("populate", "populate_later"):
        lo, hi = (s - vma.vm_start) >> PAGE_SHIFT, (e - vma.vm_start) >> PAGE_SHIFT
        L["fill"] = [vma.vid, lo, hi, int(advice == "populate_write")]
        fr.pc = 6
        if more == "populate_later":
            return cost  # this step was anon_vma_prepare
        return cost + _madvise_populate_step(k, th, fr)
    if more == "collapse":
        # madvise_collapse returns with mmap_read_lock held again; when it
        # dropped the lock (*prev = NULL) madvise_walk_vmas goes on with
        # find_vma(start), which is where the cursor already is.
        fr.pc = 10
        L["io_vid"] = vma.vid
        k.call(th, "madvise_collapse", vid=vma.vid, start=s, end=e)
        return cost
    if more == "drop_lock":
        # "*prev = NULL; tell sys_madvise we drop mmap_lock": the walk goes on
        # with find_vma(end of this part) once the lock is back.
        L["io"] = [advice, vma.vid, s, e]
        fr.pc = 8
        k.call(th, "mmap_read_unlock")
        return -1
    return cost


#: The errors :func:`madvise_vma_behavior` returns, as ``b`` of its event.
_ERRNO = {"EINVAL": 22, "EACCES": 13, "ENOMEM": 12, "EAGAIN": 11, "EBUSY": 16}


def _madvise_populate_step(k: Kernel, th: Thread, fr: Frame) -> int:
    """The first batch of ``madvise_populate`` in the walk's step."""
    L = fr.loc
    fill = L["fill"]
    done, cost = _populate(k, th, fill)
    L["changed"] += done
    if fill[1] >= fill[2]:
        del L["fill"]
        fr.pc = 4
    k.emit("madvise:populate", fill[0], done)
    return cost


def madvise_vma_behavior(
    k: Kernel, th: Thread, vma: Vma, s: int, e: int, advice: str
) -> tuple[str | None, str | None, int, int]:
    """``madvise_vma_behavior`` (mm/madvise.c) for read-lock advice on ``[s, e)`` of ``vma``.

    Returns ``(error, more, PTEs changed, cost)``: ``more`` is ``'populate'``
    when :func:`_populate` is to fault the range in, ``'drop_lock'`` when the
    advice drops ``mmap_lock`` around file I/O.
    """
    lo, hi = (s - vma.vm_start) >> PAGE_SHIFT, (e - vma.vm_start) >> PAGE_SHIFT
    if advice in ("dontneed", "dontneed_locked", "free"):
        return madvise_dontneed_free(k, vma, lo, hi, advice)
    if advice in ("cold", "pageout"):
        return madvise_cold_or_pageout(k, vma, lo, hi, advice == "pageout")
    if advice == "willneed":
        return madvise_willneed(k, vma, lo, hi)
    if advice == "remove":
        return madvise_remove(vma)
    if advice in ("populate_read", "populate_write"):
        return madvise_populate(k, th, vma, lo, hi, advice == "populate_write")
    # MADV_COLLAPSE: madvise_collapse (mm/khugepaged.c) runs as its own frame,
    # since it drops and retakes mmap_lock (see op_madvise_collapse).
    return None, "collapse", 0, 0


def madvise_dontneed_free(
    k: Kernel, vma: Vma, lo: int, hi: int, advice: str
) -> tuple[str | None, str | None, int, int]:
    """``madvise_dontneed_free`` (mm/madvise.c).

    ``madvise_dontneed_free_valid_vma``: ``VM_PFNMAP`` VMAs, and ``VM_LOCKED``
    ones unless the advice is ``DONTNEED_LOCKED``, are ``-EINVAL``.  DONTNEED
    zaps every PTE of the range, swap entries included
    (``madvise_dontneed_single_vma`` -> ``zap_page_range_single``); FREE is
    :func:`madvise_free_single_vma`.
    """
    forbidden = M.VM_PFNMAP | (0 if advice == "dontneed_locked" else M.VM_LOCKED)
    if vma.vm_flags & forbidden:
        return "EINVAL", None, 0, 0
    if advice == "free":
        return madvise_free_single_vma(k, vma, lo, hi)
    gone = [i for i in vma.pages if lo <= i < hi]
    for i in gone:
        del vma.pages[i]
    k.emit("zap_page_range_single", vma.vid, len(gone))
    return None, None, len(gone), len(gone) * k.costs["zap_page"] + k.costs["tlb_flush"]


def madvise_free_single_vma(
    k: Kernel, vma: Vma, lo: int, hi: int
) -> tuple[str | None, str | None, int, int]:
    """``madvise_free_single_vma`` with ``madvise_free_pte_range`` (mm/madvise.c).

    Only anonymous VMAs (``vma_is_anonymous``; shmem is not): else ``-EINVAL``.
    A swap entry is cleared (``free_swap_and_cache``: a later fault maps a fresh
    zero-filled page instead of swapping in).  A present page *keeps its PTE*:
    it is made clean and old and its folio goes on the lazy-free list
    (``folio_mark_lazyfree``), so it stays mapped until reclaim discards it; a
    write before that dirties it again and reclaim then keeps it.  The shared
    zero page (``vm_normal_folio`` is NULL) and the model's other write-protected
    PTEs are left alone.
    """
    if not vma.is_anonymous:
        return "EINVAL", None, 0, 0
    swapped = lazy = 0
    for i in [i for i in vma.pages if lo <= i < hi]:
        if vma.pages[i] == M.PTE_SWAP:
            del vma.pages[i]
            swapped += 1
        elif vma.pages[i] == M.PTE_PRESENT:
            vma.pages[i] = M.PTE_LAZYFREE
            lazy += 1
    note = f"free_swap_and_cache: {swapped} swap entries cleared" if swapped else ""
    k.emit("madvise_free_pte_range", vma.vid, lazy, note)
    cost = (swapped + lazy) * k.costs["zap_page"] + k.costs["tlb_flush"]
    return None, None, swapped + lazy, cost


def madvise_cold_or_pageout(
    k: Kernel, vma: Vma, lo: int, hi: int, pageout: bool
) -> tuple[str | None, str | None, int, int]:
    """``madvise_cold`` / ``madvise_pageout`` with ``madvise_cold_or_pageout_pte_range``
    (mm/madvise.c).

    ``can_madv_lru_vma``: a ``VM_LOCKED`` or ``VM_PFNMAP`` VMA is ``-EINVAL``.
    The walk looks at present PTEs only (none and swap entries are skipped),
    passes over the zero page (``vm_normal_folio`` is NULL) and folios mapped
    more than once (``folio_mapcount != 1``: the model's write-protected PTEs are
    one or the other).  COLD only deactivates the folios.  PAGEOUT isolates them
    and ``reclaim_pages`` -> ``shrink_folio_list`` reclaims them at once
    (:func:`reclaim_pte`): an anonymous page leaves a swap entry (a later fault is
    ``do_swap_page``), a lazy-free clean page is discarded, a file page is unmapped.
    The model assumes the caller may page out file pages (``can_do_file_pageout``).
    """
    if vma.vm_flags & (M.VM_LOCKED | M.VM_PFNMAP):
        return "EINVAL", None, 0, 0
    chosen = [i for i in sorted(vma.pages) if lo <= i < hi and vma.pages[i] in _RECLAIMABLE]
    if not pageout:
        k.emit("madvise_cold_or_pageout_pte_range", vma.vid, len(chosen))
        return None, None, 0, len(chosen) * k.costs["plain_load"] + k.costs["tlb_flush"]
    for i in chosen:
        reclaim_pte(vma, i)
    k.emit("reclaim_pages", vma.vid, len(chosen))
    return None, None, len(chosen), len(chosen) * k.costs["swap_out_page"] + k.costs["tlb_flush"]


#: PTE states whose folio reclaim can take: mapped once and not the zero page.
_RECLAIMABLE = (M.PTE_PRESENT, M.PTE_LAZYFREE)


def reclaim_pte(vma: Vma, i: int) -> None:
    """What ``shrink_folio_list`` -> ``try_to_unmap_one`` (mm/rmap.c) leaves in a PTE.

    An anonymous page gets a swap entry; a lazy-free page nobody dirtied again is
    discarded (``try_to_unmap_one``: ``!folio_test_swapbacked`` and clean); a
    page of a file (or shmem) VMA is unmapped and stays in the page cache.
    """
    if vma.pages[i] == M.PTE_LAZYFREE or not vma.is_anonymous:
        del vma.pages[i]
    else:
        vma.pages[i] = M.PTE_SWAP


def madvise_willneed(
    k: Kernel, vma: Vma, lo: int, hi: int
) -> tuple[str | None, str | None, int, int]:
    """``madvise_willneed`` (mm/madvise.c): schedule reads, map nothing.

    Anonymous memory: ``swapin_walk_pmd_entry`` starts ``read_swap_cache_async``
    for each swap entry; the PTEs stay swap entries, so a later fault is still
    ``do_swap_page`` (and RETRYs under the VMA lock in 6.4).  Shmem
    (``force_shm_swapin_readahead``) likewise changes no PTE and keeps the lock.
    Another file: ``vfs_fadvise(POSIX_FADV_WILLNEED)`` runs with ``mmap_lock``
    dropped (``*prev = NULL``), page-cache readahead only.
    """
    if vma.file is not None and vma.file != M.SHMEM_FILE:
        return None, "drop_lock", 0, k.costs["plain_load"]
    n = sum(1 for i, s in vma.pages.items() if lo <= i < hi and s == M.PTE_SWAP)
    k.emit("read_swap_cache_async", vma.vid, n)
    return None, None, 0, (n + 1) * k.costs["plain_load"]


def madvise_remove(vma: Vma) -> tuple[str | None, str | None, int, int]:
    """``madvise_remove`` (mm/madvise.c): punch a hole in the file with ``mmap_lock`` dropped.

    ``VM_LOCKED`` is ``-EINVAL``, so is a VMA without a file (private anonymous
    memory); a VMA not both shared and writable is ``-EACCES``.  The hole is
    punched by ``vfs_fallocate`` after ``mmap_read_unlock`` (:func:`_madvise_unlocked_io`).
    """
    if vma.vm_flags & M.VM_LOCKED or vma.file is None:
        return "EINVAL", None, 0, 0
    if vma.vm_flags & (M.VM_SHARED | M.VM_WRITE) != M.VM_SHARED | M.VM_WRITE:
        return "EACCES", None, 0, 0
    return None, "drop_lock", 0, 0


def _madvise_unlocked_io(k: Kernel, L: dict[str, Any]) -> int:
    """The file I/O ``madvise_willneed`` (``vfs_fadvise``) and ``madvise_remove``
    (``vfs_fallocate`` punching a hole) do without ``mmap_lock``.

    The punched hole is unmapped from every VMA (``unmap_mapping_range``): the
    model zaps the range in the VMA it was asked for, if that is still mapped there.
    """
    advice, vid, s, e = L.pop("io")
    if advice == "willneed":
        k.emit("vfs_fadvise", vid, (e - s) >> PAGE_SHIFT)
        return k.costs["plain_load"]
    vma = k.mm.vmas.get(vid)
    gone: list[int] = []
    if vma is not None and vma.state == "live" and not vma.detached:
        lo, hi = (s - vma.vm_start) >> PAGE_SHIFT, (e - vma.vm_start) >> PAGE_SHIFT
        gone = [i for i in vma.pages if lo <= i < hi]
        for i in gone:
            del vma.pages[i]
    L["changed"] += len(gone)
    k.emit("vfs_fallocate", vid, len(gone))
    return len(gone) * k.costs["zap_page"] + k.costs["plain_load"]


def madvise_populate(
    k: Kernel, th: Thread, vma: Vma, lo: int, hi: int, write: bool
) -> tuple[str | None, str | None, int, int]:
    """``madvise_populate`` -> ``faultin_vma_page_range`` (mm/gup.c): the permission check.

    ``check_vma_flags`` without ``FOLL_FORCE``: ``VM_IO``/``VM_PFNMAP``, a write
    populate of a VMA without ``VM_WRITE`` and a read populate of one without
    ``VM_READ`` are ``-EFAULT``, which ``faultin_vma_page_range`` turns into
    ``-EINVAL``.  The faults themselves are :func:`_populate`; the first write
    fault of an anonymous VMA without an anon_vma allocates one
    (``do_anonymous_page`` / ``wp_page_copy`` -> ``anon_vma_prepare``), which is
    this step (``'populate_later'``).
    """
    if vma.vm_flags & (M.VM_IO | M.VM_PFNMAP):
        return "EINVAL", None, 0, 0
    if not vma.vm_flags & (M.VM_WRITE if write else M.VM_READ):
        return "EINVAL", None, 0, 0
    if (
        write
        and vma.is_anonymous
        and vma.anon_vma is None
        and any(vma.pages.get(i) != M.PTE_PRESENT for i in range(lo, hi))
    ):
        _anon_vma_prepare(k, th, vma, False)
        k.emit("anon_vma_prepare", vma.vid, vma.anon_vma or 0)
        cost = k.costs["anon_vma_prepare"] + k.atomic(th, "page_table_lock")
        return None, "populate_later", 0, cost
    return None, "populate", 0, 0


#: Pages one step maps at most (a populate, ``vm_insert_pages``): the work of one
#: step stays bounded however large the range is.
PAGES_PER_STEP = 16


def _populate(k: Kernel, th: Thread, fill: list[int]) -> tuple[int, int]:
    """``__get_user_pages`` for ``madvise_populate``: the next (at most
    :data:`PAGES_PER_STEP`) pages of ``fill`` = ``[vid, next page, end page, write]``.

    A page ``follow_page_mask`` finds needs no fault; the others go through
    ``faultin_page`` -> ``handle_mm_fault`` under ``mmap_lock`` (never the VMA
    lock), as in mm/memory.c:

    * read, no PTE: anonymous private memory gets the shared zero page,
      write-protected (``do_anonymous_page``, no anon_vma); a file or shmem VMA
      maps its page-cache page (``do_fault``);
    * write, no PTE: ``do_anonymous_page`` with ``anon_vma_prepare`` (the first
      one allocates the VMA's anon_vma) and a new zeroed page;
    * write on a write-protected PTE: ``do_wp_page`` copies (also ``anon_vma_prepare``);
    * a swap entry: ``do_swap_page`` reads it back (under ``mmap_lock`` it does
      not RETRY);
    * write on a lazy-free page: ``FOLL_TOUCH | FOLL_WRITE`` dirties it again.

    ``fill`` is advanced in place.  Returns (PTEs changed, cost).
    """
    vma = k.mm.vmas[fill[0]]
    write = bool(fill[3])
    anon_private = vma.is_anonymous and not vma.vm_flags & M.VM_SHARED
    done = cost = 0
    while fill[1] < fill[2] and done < PAGES_PER_STEP:
        i = fill[1]
        fill[1] += 1
        pte = vma.pages.get(i)
        if pte == M.PTE_SWAP:
            cost += k.costs["swap_in"]
        elif pte is None and not write:
            vma.pages[i] = M.PTE_WP if anon_private else M.PTE_PRESENT
            cost += k.costs["pte_install"]
            done += 1
            continue
        elif pte is None:
            cost += k.costs["anon_page_alloc" if vma.is_anonymous else "file_fault"]
        elif write and pte == M.PTE_WP:
            cost += k.costs["cow_copy"]
        elif write and pte == M.PTE_LAZYFREE:
            cost += k.costs["plain_load"]
        else:
            continue
        vma.pages[i] = M.PTE_PRESENT
        done += 1
    return done, cost


@kfunc("userfaultfd_register", "fs/userfaultfd.c")
def op_uffd_register(k: Kernel, th: Thread, fr: Frame) -> int:
    """``UFFDIO_REGISTER`` (``MISSING`` mode) with userfaultfd context ``uffd``.

    6.4.0's ``userfaultfd_register`` under ``mmap_write_lock`` (not killable):

    * ``vma_find(&vmi, end)`` finds no VMA in ``[start, end)``: ``-EINVAL``.
    * The first loop checks every VMA of the range before anything changes
      (holes between them are allowed): ``vma_can_userfault`` (MISSING mode
      needs ``vma_is_anonymous``, hugetlb or shmem: a file mapping is
      ``-EINVAL``), ``VM_MAYWRITE`` (``-EPERM``), and a VMA already owned by
      another userfaultfd context is ``-EBUSY``.  Any error returns with no VMA
      changed (``userfaultfd_register:einval|eperm|ebusy``).
    * The second loop (inline in 6.4, so it runs in this frame: :func:`_walk`
      with :func:`_fixup`) skips a VMA already registered with this context and
      ``VM_UFFD_MISSING``; each other VMA gets ``vma_merge`` with the new flags and
      context (its part starts at ``max(start, vm_start)``), else ``split_vma``,
      then ``userfaultfd_set_vm_flags`` -> ``vm_flags_reset`` and
      ``vm_userfaultfd_ctx``.

    Not modelled: hugetlb alignment checks (no hugetlb VMAs), the WP/MINOR modes
    and ``validate_range`` (scenario ranges are always page-aligned and inside
    ``TASK_SIZE``).
    """
    L = fr.loc
    if fr.pc == 0:
        fr.pc = 1
        L["uffd_ctx"] = int(L["op"].args.get("uffd") or M.UFFD_CTX)
        k.call(th, "mmap_write_lock")
        k.emit("syscall:uffdio_register", L["uffd_ctx"])
        return k.costs["syscall"]
    if fr.pc == 1:
        start, end = k.names[L["op"].args["vma"]]
        fr.pc = 2
        vmas = _overlapping(k, start, end)
        if not vmas:
            # userfaultfd_register: vma_find(&vmi, end) finds nothing: -EINVAL.
            L["error"] = "EINVAL"
            k.emit("userfaultfd_register:einval", start, end)
            return k.costs["find_vma"]
        for cur in vmas:
            if cur.file is not None and cur.file != M.SHMEM_FILE:
                # vma_can_userfault: neither anonymous nor shmem (nor hugetlb).
                L["error"] = "EINVAL"
                k.emit("userfaultfd_register:einval", cur.vm_start, cur.vm_end, "vma_can_userfault")
                return len(vmas) * k.costs["vma_check"]
            if not cur.vm_flags & M.VM_MAYWRITE:
                L["error"] = "EPERM"
                k.emit("userfaultfd_register:eperm", cur.vid)
                return len(vmas) * k.costs["vma_check"]
            if cur.uffd_ctx and cur.uffd_ctx != L["uffd_ctx"]:
                # "We can't allow more than one userfaultfd to own a single vma".
                L["error"] = "EBUSY"
                k.emit("userfaultfd_register:ebusy", cur.vid, cur.uffd_ctx)
                return len(vmas) * k.costs["vma_check"]
        L["cursor"], L["wend"] = start, end
        fr.pc = 4
    if fr.pc == 4:
        cost = _walk(k, th, fr, "uffd")
        if cost is not None:
            return cost
        fr.pc = 2
    if fr.pc == 2:
        fr.pc = 3
        k.call(th, "mmap_write_unlock")
        return -1
    k.ret(th, L.get("error"))
    return -1


#: ``ANON_VMA_NAME_INVALID_CHARS`` (kernel/sys.c): printable characters
#: ``is_valid_name_char`` (kernel/sys.c) still refuses in a VMA name.
ANON_VMA_NAME_INVALID_CHARS = "\\`$[]"
#: ``ANON_VMA_NAME_MAX_LEN`` (kernel/sys.c): ``strndup_user`` takes at
#: most this many bytes with the terminating NUL, so a name has at most 79 chars.
ANON_VMA_NAME_MAX_LEN = 80


def anon_vma_name_valid(name: str) -> bool:
    """Whether ``prctl_set_vma`` (kernel/sys.c) accepts ``name``: short enough for
    ``strndup_user`` and every character ``is_valid_name_char`` (printable ASCII
    outside :data:`ANON_VMA_NAME_INVALID_CHARS`).
    """
    return len(name) < ANON_VMA_NAME_MAX_LEN and all(
        0x1F < ord(ch) < 0x7F and ch not in ANON_VMA_NAME_INVALID_CHARS for ch in name
    )


@kfunc("prctl_set_vma", "kernel/sys.c")
def op_prctl_set_vma(k: Kernel, th: Thread, fr: Frame) -> int:
    """``prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, start, len, name)`` over the range.

    6.4.0's ``prctl_set_vma`` checks the name first (an invalid character or a
    name too long: ``-EINVAL`` before any lock, ``prctl_set_vma:einval``), then
    takes ``mmap_write_lock`` (not killable) for ``madvise_set_anon_name`` ->
    ``madvise_walk_vmas`` with ``madvise_vma_anon_name`` on each VMA (run in this
    frame by :func:`_walk`):

    * a file VMA that is not anonymous shmem ends the walk with ``-EBADF``
      (``madvise_vma_anon_name:ebadf``); VMAs before it are already renamed;
    * a VMA whose name already equals the new one is passed over
      (``madvise_update_vma``'s first test: the flags do not change);
    * otherwise ``madvise_update_vma`` with the VMA's own flags and the new
      name: ``vma_merge`` (which compares names, ``is_mergeable_vma``), else
      ``split_vma`` at the range's ends, then ``vm_flags_reset`` (which
      write-locks the VMA) and only then ``replace_anon_vma_name``
      (``replace_anon_vma_name`` event).  A merge that swallowed the range still
      gets ``vm_flags_reset`` and the name, as case 8 needs.

    Holes in the range are skipped and the call returns ``-ENOMEM`` at the end
    (``prctl_set_vma:enomem``).  Without ``name`` the VMAs' names are cleared.
    """
    L = fr.loc
    a = L["op"].args
    if fr.pc == 0:
        name = a.get("name")
        L["new_name"] = name
        k.emit("syscall:prctl", 0, 0, f"PR_SET_VMA_ANON_NAME {name!r}")
        if name is not None and not anon_vma_name_valid(name):
            L["error"] = "EINVAL"
            fr.pc = 3
            k.emit("prctl_set_vma:einval", len(name))
            return k.costs["syscall"]
        fr.pc = 1
        k.call(th, "mmap_write_lock")
        return k.costs["syscall"]
    if fr.pc == 1:
        L["cursor"], L["wend"] = _range_of(k, a)
        fr.pc = 4
    if fr.pc == 4:
        cost = _walk(k, th, fr, "anon_name")
        if cost is not None:
            return cost
        fr.pc = 2
        if "werror" in L:
            # The step that found the file VMA (madvise_vma_anon_name:ebadf).
            L["error"] = L["werror"]
            return k.costs["vma_check"]
        if L.get("unmapped"):
            L["error"] = "ENOMEM"
            k.emit("prctl_set_vma:enomem", L["cursor"], L["wend"])
            return k.costs["vma_check"]
    if fr.pc == 2:
        fr.pc = 3
        k.call(th, "mmap_write_unlock")
        return -1
    k.ret(th, L.get("error"))
    return -1


# =====================================================================
# mremap (mm/mremap.c)
# =====================================================================


@kfunc("mremap", "mm/mremap.c")
def op_mremap(k: Kernel, th: Thread, fr: Frame) -> int:
    """The ``mremap`` syscall (mm/mremap.c) with its flags as scenario fields.

    ``maymove`` is ``MREMAP_MAYMOVE``; ``move`` is ``MREMAP_MAYMOVE|MREMAP_FIXED``
    to a free range (the model picks it, as user space would have): it always
    moves; ``dontunmap`` is ``MREMAP_DONTUNMAP``.  The cases, in the syscall's order:

    * ``MREMAP_DONTUNMAP`` without ``MREMAP_MAYMOVE``, or with a new length, is
      ``-EINVAL`` before ``mmap_lock`` is taken (``mremap:einval``).
    * No VMA at the old address: ``-EFAULT`` (``vma_lookup``).
    * Without ``MREMAP_FIXED``/``MREMAP_DONTUNMAP``: a shrink (or equal size) is
      ``do_vmi_munmap(downgrade=true)`` of the excess, which keeps or downgrades
      the lock by :func:`do_vmi_align_munmap`'s rule.  A grow checks
      ``vma_to_resize`` (the old range inside one VMA, else ``-EFAULT``), then
      expands in place when the old range ends at the VMA's end and
      ``vma_expandable`` (``vma_merge`` of the extension, locking the VMA); else
      ``move_vma`` if ``MREMAP_MAYMOVE``, else ``-ENOMEM`` with nothing changed
      (``mremap:enomem``).
    * ``move_vma``: ``vma_start_write`` on the source, ``copy_vma``, then
      ``move_page_tables`` and ``do_vmi_munmap`` of the old range without
      downgrading.  ``copy_vma`` (mm/mmap.c) first tries ``vma_merge`` of the
      destination with its neighbours (``prev`` from ``find_vma_prev``), with
      ``vm_pgoff`` reset to ``dest >> PAGE_SHIFT`` when the source is anonymous
      without an ``anon_vma``; ``vma_prepare`` write-locks what the merge
      changes.  Only when nothing merges does it ``vm_area_dup``, write-lock
      and ``vma_link`` a copy.  When the merge swallowed the source's range (an
      unfaulted VMA merging with itself) ``move_vma`` goes on with the merged
      VMA.  With ``MREMAP_DONTUNMAP`` the source keeps its VMA:
      ``VM_LOCKED`` is cleared and, when the old range is the whole VMA,
      ``unlink_anon_vmas`` drops its ``anon_vma`` (``move_vma:dontunmap``), so its
      next anonymous write fault needs ``mmap_lock`` again.
    * ``get_unmapped_area`` finding no room is ``-ENOMEM``.

    The old range is the name's last range.  A failed mremap leaves its new name
    without an address (ops on it are then not issued, see
    ``kernel.unmapped_name``).
    """
    L = fr.loc
    a = L["op"].args
    move = bool(a.get("move"))
    maymove = move or bool(a.get("maymove"))
    dontunmap = bool(a.get("dontunmap"))
    while True:
        pc = fr.pc
        if pc == 0:
            start, end = k.names[a["vma"]]
            if dontunmap and (not maymove or int(a["new_pages"]) * PAGE_SIZE != end - start):
                # "MREMAP_DONTUNMAP is always a move and it does not allow resizing".
                k.emit("mremap:einval", start, end - start)
                k.ret(th)
                return k.costs["syscall"]
            fr.pc = 1
            k.call(th, "mmap_write_lock_killable")
            k.emit("syscall:mremap", int(a["new_pages"]))
            return k.costs["syscall"]
        if pc == 1:
            start, end = k.names[a["vma"]]
            vma = k.mm.vma_at(start)
            new_len = int(a["new_pages"]) * PAGE_SIZE
            old_len = end - start
            if vma is None:
                # vma_lookup(mm, addr) finds no VMA at the old address: -EFAULT.
                L["error"] = "EFAULT"
                fr.pc = 20
                k.emit("mremap:efault", start, old_len)
                return k.costs["find_vma"]
            L["vid"], L["start"], L["old_end"], L["new_end"] = vma.vid, start, end, start + new_len
            to = move or dontunmap  # the mremap_to path
            if new_len == old_len and not to:
                # Equal lengths take the shrink branch: unmapping an empty range
                # fails with -EINVAL, which mremap ignores when the lengths are
                # equal; it returns the old address and changes nothing.
                fr.pc = 20
                k.emit("mremap:same_size", vma.vid)
                return k.costs["find_vma"]
            if new_len < old_len and not to:
                fr.pc = 3
                k.call(th, "do_vmi_align_munmap", start=start + new_len, end=end, downgrade=True)
                k.emit("mremap:shrink", vma.vid, (old_len - new_len) >> PAGE_SHIFT)
                return k.costs["find_vma"]
            if min(old_len, new_len) > vma.vm_end - start:
                # vma_to_resize: the old range must lie inside one VMA (a move first
                # unmaps the part beyond new_len, hence the min), else -EFAULT.
                L["error"] = "EFAULT"
                fr.pc = 20
                k.emit("mremap:efault", start, old_len)
                return k.costs["find_vma"]
            free_after = start + new_len <= M.TASK_SIZE and not _overlapping(
                k, end, start + new_len
            )
            if not to and free_after and vma.vm_end == end:
                fr.pc = 20
                k.names[a.get("name") or a["vma"]] = (start, start + new_len)
                # vma_merge(vmi, mm, vma, extension_start, extension_end, ...):
                # case 2 (the VMA grows over the extension; the name may be only
                # its tail part), or case 1 when the extension reaches a
                # compatible next VMA, which is then removed.
                k.call(
                    th,
                    "vma_merge",
                    prev=vma.vid,
                    addr=end,
                    end=start + new_len,
                    flags=vma.vm_flags,
                    anon_vma=vma.anon_vma,
                    file=vma.file,
                    pgoff=vma.pgoff + ((end - vma.vm_start) >> PAGE_SHIFT),
                    uffd_ctx=vma.uffd_ctx,
                    anon_name=vma.anon_name,
                )
                k.emit("mremap:expand_in_place", vma.vid)
                return k.costs["find_vma"]
            if not maymove:
                # "We weren't able to just expand": without MREMAP_MAYMOVE, ret
                # stays -ENOMEM and nothing has changed.
                L["error"] = "ENOMEM"
                fr.pc = 20
                k.emit("mremap:enomem", vma.vid, new_len)
                return k.costs["find_vma"]
            fr.pc = 5
            k.emit("mremap:move", vma.vid)
            return k.costs["find_vma"]
        if pc == 3:
            L["downgraded"] = bool(L.pop("ret"))
            k.names[a.get("name") or a["vma"]] = (L["start"], L["new_end"])
            fr.pc = 20
            continue
        if pc == 5:
            # move_vma: vma_start_write(vma) before copy_vma ([v3 18/35]).
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 6
            if k.patch["mremap_write_lock"]:
                _start_write(k, th, vma)
            else:
                # Remembered so move_page_tables reports what the missing lock
                # lets happen (a fault inside the source), not the lock itself.
                L["unlocked"] = True
            return -1
        if pc == 6:
            vma = k.mm.vmas[fr.loc["vid"]]
            new_len = L["new_end"] - L["start"]
            dest = _get_unmapped_area(k, new_len, None)
            if dest is None:
                L["error"] = "ENOMEM"
                fr.pc = 20
                k.emit("get_unmapped_area:enomem", new_len)
                return k.costs["get_unmapped_area"]
            # move_vma: new_pgoff = vm_pgoff + the old range's offset; copy_vma
            # resets it to dest >> PAGE_SHIFT for an anonymous VMA that has not
            # faulted yet (no anon_vma), so that the copy may merge by address.
            pgoff = vma.pgoff + ((L["start"] - vma.vm_start) >> PAGE_SHIFT)
            if vma.is_anonymous and vma.anon_vma is None:
                pgoff = dest >> PAGE_SHIFT
            L["dest"], L["new_pgoff"], L["src_start"] = dest, pgoff, vma.vm_start
            # copy_vma: find_vma_prev(addr) then vma_merge of the destination
            # with its neighbours before any vm_area_dup.
            prev = _vma_prev(k.mm, dest)
            fr.pc = 12
            k.call(
                th,
                "vma_merge",
                prev=prev.vid if prev is not None else 0,
                addr=dest,
                end=dest + new_len,
                flags=vma.vm_flags,
                anon_vma=vma.anon_vma,
                file=vma.file,
                pgoff=pgoff,
                uffd_ctx=vma.uffd_ctx,
                anon_name=vma.anon_name,
            )
            return k.costs["get_unmapped_area"]
        if pc == 12:
            merged = L.pop("ret", None)
            if merged is not None:
                new = k.mm.vmas[merged]
                L["new"] = new.vid
                if new.vm_start <= L["src_start"] < new.vm_end:
                    # "Source vma may have been merged into new_vma": only an
                    # unfaulted anonymous VMA (its pgoff was reset above) can
                    # merge with itself; move_vma then works on new_vma
                    # (*vmap = new_vma), which may be a neighbour that absorbed
                    # the source (case 1).
                    L["vid"] = new.vid
                fr.pc = 8
                k.emit("copy_vma:vma_merge", new.vid, L["dest"])
                return k.costs["plain_load"]
            vma = k.mm.vmas[fr.loc["vid"]]
            dest, new_len = L["dest"], L["new_end"] - L["start"]
            new = k.mm.vma_dup(vma, a.get("name") or vma.name)
            new.vm_start, new.vm_end, new.pgoff = dest, dest + new_len, L["new_pgoff"]
            L["new"] = new.vid
            fr.pc = 7
            k.emit("copy_vma:vm_area_dup", new.vid, dest)
            _start_write(k, th, new)
            return k.costs["vma_alloc"]
        if pc == 7:
            new = k.mm.vmas[L["new"]]
            cost = _store(k, new.vm_start, new.vm_end, new)
            k.mm.map_count += 1
            fr.pc = 8
            k.emit("vma_link", new.vid)
            return cost
        if pc == 8:
            vma, new = k.mm.vmas[fr.loc["vid"]], k.mm.vmas[L["new"]]
            # move_page_tables moves the old range (cut to new_len first when it
            # shrinks); the source's pages outside it stay where they are.  By
            # address: after a copy_vma merge, new_vma may be a neighbour with
            # pages of its own, or the source itself.
            lo, hi = L["start"], min(L["old_end"], L["new_end"])
            moved = {
                vma.vm_start + i * PAGE_SIZE: s
                for i, s in vma.pages.items()
                if lo <= vma.vm_start + i * PAGE_SIZE < hi
            }
            k.check_modify_vma(th, vma, "page tables", unlocked=L.get("unlocked", False))
            vma.pages = {
                i: s for i, s in vma.pages.items() if not lo <= vma.vm_start + i * PAGE_SIZE < hi
            }
            for addr, st in moved.items():
                new.pages[(L["dest"] + addr - lo - new.vm_start) >> PAGE_SHIFT] = st
            fr.pc = 11 if dontunmap else 9
            k.emit("move_page_tables", vma.vid, len(moved))
            return k.costs["free_pgtables"] + len(moved) * k.costs["change_protection_page"]
        if pc == 11:
            # MREMAP_DONTUNMAP: vm_flags_clear(vma, VM_LOCKED_MASK) (the VMA is
            # already write-locked by move_vma) and, when the old range is the
            # whole VMA, unlink_anon_vmas: its page tables are gone, and so are
            # its anon_vma links.  No munmap.
            vma = k.mm.vmas[fr.loc["vid"]]
            k.check_modify_vma(th, vma, "vm_flags, anon_vma")
            vma.vm_flags &= ~M.VM_LOCKED
            # unlink_anon_vmas only when new_vma != vma (not after a self-merge).
            whole = (
                L["new"] != vma.vid and vma.vm_start == L["start"] and vma.vm_end == L["old_end"]
            )
            if whole:
                vma.anon_vma = None
            fr.pc = 10
            L["ret"] = None
            k.emit("move_vma:dontunmap", vma.vid, int(whole))
            return k.costs["vma_modify"]
        if pc == 9:
            fr.pc = 10
            k.call(th, "do_vmi_align_munmap", start=L["start"], end=L["old_end"], downgrade=False)
            return -1
        if pc == 10:
            L.pop("ret", None)
            # The name covers the destination, not all of a VMA it merged into.
            k.names[a.get("name") or a["vma"]] = (L["dest"], L["new_end"] - L["start"] + L["dest"])
            fr.pc = 20
            continue
        return _unlock_and_return(k, th, fr)


# =====================================================================
# brk (mm/mmap.c)
# =====================================================================


def vm_start_gap(vma: Vma) -> int:
    """``vm_start_gap`` (include/linux/mm.h): the lowest address ``vma`` may claim.

    A ``VM_GROWSDOWN`` VMA keeps ``stack_guard_gap`` free below its start (clamped to
    0 where the subtraction would wrap); any other VMA claims only its own start.
    """
    if vma.vm_flags & M.VM_GROWSDOWN:
        return max(0, vma.vm_start - STACK_GUARD_GAP)
    return vma.vm_start


def _brk_next_too_close(mm: M.Mm, oldbrk: int, newbrk: int) -> Vma | None:
    """``brk`` (mm/mmap.c ``SYSCALL_DEFINE1(brk)``): the VMA that refuses a growth.

    6.4.0 looks only at the first VMA found from ``oldbrk`` up to ``newbrk +
    PAGE_SIZE + stack_guard_gap`` (``vma_find``) and refuses when ``newbrk +
    PAGE_SIZE > vm_start_gap(next)``: one page must stay free above the new break,
    and a stack above keeps its whole guard gap.  Returns that VMA, or ``None``
    when the heap may grow.
    """
    limit = newbrk + PAGE_SIZE + STACK_GUARD_GAP - 1
    # items() walks in address order: the first non-NULL range is vma_find's answer.
    nxt = next((e for _, _, e in mm.mm_mt.items(oldbrk, limit) if e is not None), None)
    if nxt is None:
        return None
    return nxt if newbrk + PAGE_SIZE > vm_start_gap(nxt) else None


@kfunc("brk", "mm/mmap.c")
def op_brk(k: Kernel, th: Thread, fr: Frame) -> int:
    """``brk``: grow with ``do_brk_flags`` (expand the brk VMA or insert a new one,
    then ``vm_flags_set``), shrink with ``do_vma_munmap(downgrade=true)``.

    Growth first passes 6.4.0's own guard-gap check (mm/mmap.c ``SYSCALL_DEFINE1(brk)``
    with ``vm_start_gap``, see :func:`_brk_next_too_close`); a refused growth leaves
    ``mm->brk`` as it was (``brk:vm_start_gap``).  A request below ``min_brk``
    returns the old break with nothing changed (``brk:out``); ``min_brk`` is
    ``mm->start_brk`` (the model has no ``end_data``, so the ``CONFIG_COMPAT_BRK``
    choice of ``end_data`` without brk randomization is not modelled).  Not
    modelled either: ``check_data_rlimit`` (RLIMIT_DATA; the model has no data
    segment, so the default unlimited ``RLIMIT_DATA`` never refuses) and the
    sub-page break (scenario deltas are whole pages).
    """
    L = fr.loc
    delta = int(L["op"].args["pages"]) * PAGE_SIZE
    mm = k.mm
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock_killable")
            k.emit("syscall:brk", delta)
            return k.costs["syscall"]
        if pc == 1:
            old, new = mm.brk, mm.brk + delta
            L["old"], L["new"] = old, new
            if new < mm.brk_start:
                # brk < min_brk (mm->start_brk): "goto out", the old break is
                # returned and nothing changes; the request is not clamped.
                fr.pc = 20
                k.emit("brk:out", new, mm.brk_start)
                return k.costs["vma_check"]
            if new < old:
                fr.pc = 2
                k.call(th, "do_vmi_align_munmap", start=new, end=old, downgrade=True)
                k.emit("brk:shrink", old - new)
                return k.costs["find_vma"]
            if new == old:
                fr.pc = 20
                continue
            # The kernel checks vm_start_gap(next), not just overlap: a growth that
            # ends right below a VMA, or inside a stack's guard gap, is refused.
            nxt = _brk_next_too_close(mm, old, new)
            if nxt is not None:
                fr.pc = 20
                k.emit("brk:vm_start_gap", nxt.vid, new)
                return k.costs["find_vma"]
            prev = mm.vma_at(old - 1) if old > mm.brk_start else None
            # do_brk_flags: VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT.
            flags = M.VM_READ | M.VM_WRITE | M.VM_MAYREAD | M.VM_MAYWRITE | M.VM_MAYEXEC
            flags |= M.VM_ACCOUNT
            if (
                prev is not None
                and prev.vm_end == old
                and prev.is_anonymous
                and (prev.vm_flags & ~M.VM_SOFTDIRTY == flags)
            ):
                L["vid"] = prev.vid
                fr.pc = 4
                _commit(
                    k,
                    th,
                    [prev.vid],
                    [
                        ("bounds", prev.vid, prev.vm_start, new),
                        ("store", prev.vm_start, new, prev.vid),
                    ],
                    "brk expand",
                )
                k.emit("do_brk_flags:expand", prev.vid)
                return k.costs["vma_modify"]
            vma = mm.new_vma("[heap]", old, new, flags, None)
            vma.pgoff = old >> PAGE_SHIFT  # do_brk_flags: vm_pgoff = addr >> PAGE_SHIFT
            L["vid"] = vma.vid
            fr.pc = 3
            k.emit("do_brk_flags:new_vma", vma.vid)
            return k.costs["vma_alloc"]
        if pc == 2:
            L["downgraded"] = bool(L.pop("ret"))
            mm.brk = L["new"]
            fr.pc = 20
            continue
        if pc == 3:
            vma = k.mm.vmas[fr.loc["vid"]]
            cost = _store(k, vma.vm_start, vma.vm_end, vma)
            mm.map_count += 1
            fr.pc = 4
            k.emit("vma_link", vma.vid)
            return cost
        if pc == 4:
            L.pop("ret", None)
            fr.pc = 5
            _start_write(k, th, k.mm.vmas[fr.loc["vid"]])  # vm_flags_set(VM_SOFTDIRTY)
            return -1
        if pc == 5:
            vma = k.mm.vmas[fr.loc["vid"]]
            vma.vm_flags |= M.VM_SOFTDIRTY
            mm.brk = L["new"]
            k.names["[heap]"] = (mm.brk_start, mm.brk)
            fr.pc = 20
            k.emit("vm_flags_set:softdirty", vma.vid)
            return k.costs["plain_load"]
        return _unlock_and_return(k, th, fr)


# =====================================================================
# fork, exit, reclaim, khugepaged, mmu notifiers, TCP zerocopy, /proc/pid/maps
# =====================================================================


def is_cow_mapping(flags: int) -> bool:
    """Whether a private writable mapping's pages are shared copy-on-write after fork.

    Models include/linux/mm.h ``is_cow_mapping``: ``VM_MAYWRITE`` without
    ``VM_SHARED``; ``copy_present_pte`` write-protects such PTEs in the parent.
    """
    return flags & (M.VM_SHARED | M.VM_MAYWRITE) == M.VM_MAYWRITE


def vma_needs_copy(src: Vma) -> bool:
    """Whether ``copy_page_range`` copies ``src``'s page tables into the child.

    Models mm/memory.c ``vma_needs_copy`` (6.4.0): the child's copy is
    uffd-wp armed, or ``src`` is ``VM_PFNMAP``/``VM_MIXEDMAP``, or ``src`` has an
    ``anon_vma``; otherwise the child's faults fill its tables from the page
    cache (or the zero page).  ``dup_userfaultfd`` clears the child's
    ``VM_UFFD_*`` flags unless the context asked for ``UFFD_FEATURE_EVENT_FORK``,
    which the modelled contexts never do, so the first test is always false.
    """
    return bool(src.vm_flags & (M.VM_PFNMAP | M.VM_MIXEDMAP)) or src.anon_vma is not None


@kfunc("dup_mmap", "kernel/fork.c")
def op_fork(k: Kernel, th: Thread, fr: Frame) -> int:
    """``dup_mmap`` (kernel/fork.c): copy every VMA under the parent's mmap write lock.

    A ``VM_DONTCOPY`` VMA is skipped; a ``VM_WIPEONFORK`` one gets an empty copy
    (no ``anon_vma_fork``, no ``copy_page_range``); any other is copied with
    ``copy_page_range`` (mm/memory.c), which does nothing unless
    :func:`vma_needs_copy` and write-protects the parent's PTEs when
    :func:`is_cow_mapping`.  6.4.0 does not write-lock the parent VMAs (R-F1);
    ``fix_fork_lock_parent`` adds the 6.4.3 ``vma_start_write`` per VMA.
    """
    L = fr.loc
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock_killable")
            k.emit("syscall:fork")
            return k.costs["syscall"]
        if pc == 1:
            L["todo"] = [v.vid for v in k.mm.live_vmas()]
            L["copied"] = 0
            fr.pc = 2
            continue
        if pc == 2:
            if not L["todo"]:
                fr.pc = 4
                continue
            vma = k.mm.vmas[L["todo"][0]]
            fr.pc = 3
            if k.patch["fix_fork_lock_parent"]:
                _start_write(k, th, vma)
                return -1
            continue
        if pc == 3:
            vma = k.mm.vmas[L["todo"].pop(0)]
            if vma.vm_flags & M.VM_DONTCOPY:
                # dup_mmap: "if (mpnt->vm_flags & VM_DONTCOPY) continue": the
                # child gets no copy (no vm_area_dup), only vm_stat_account takes
                # its pages off the child's counts; the parent's PTEs stay writable.
                fr.pc = 2
                k.emit("dup_mmap:vm_stat_account", vma.vid, 0, "VM_DONTCOPY: not copied")
                return k.costs["plain_load"]
            cost = k.costs["copy_vma_fork"]
            if vma.vm_flags & M.VM_WIPEONFORK:
                # The child's copy starts empty: no copy_page_range, so nothing
                # of the parent is write-protected.
                L["copied"] += 1
                fr.pc = 2
                k.emit("dup_mmap:vm_area_dup", vma.vid, 0, "VM_WIPEONFORK: no copy_page_range")
                return cost
            if not vma_needs_copy(vma):
                # copy_page_range returns at once: the child's faults fill its
                # page tables, and the parent's PTEs stay as they are.
                L["copied"] += 1
                fr.pc = 2
                k.emit("dup_mmap:vm_area_dup", vma.vid, 0, "vma_needs_copy: false")
                return cost
            if is_cow_mapping(vma.vm_flags) and vma.pages:
                # copy_present_pte write-protects the parent's writable PTEs.
                if k.vma_read_locked(vma):
                    k.violate(
                        4,
                        f"dup_mmap write-protects {vma.label()}'s PTEs during a "
                        "VMA-locked fault (R-F1)",
                    )
                for i, s in vma.pages.items():
                    # A lazy-free page is mapped and writable too.
                    if s in (M.PTE_PRESENT, M.PTE_LAZYFREE):
                        vma.pages[i] = M.PTE_WP
                cost += len(vma.pages) * k.costs["change_protection_page"]
            L["copied"] += 1
            fr.pc = 2
            k.emit("dup_mmap:vm_area_dup", vma.vid, len(vma.pages))
            return cost
        if pc == 4:
            fr.pc = 5
            k.call(th, "mmap_write_unlock")
            k.emit("dup_mmap:flush_tlb_mm", L["copied"])
            return k.costs["tlb_flush"]
        k.ret(th)
        return -1


@kfunc("do_exit", "kernel/exit.c")
def op_exit(k: Kernel, th: Thread, fr: Frame) -> int:
    """The thread exits (kernel/exit.c ``do_exit``); the last one runs ``exit_mmap``.

    mm/mmap.c ``exit_mmap`` (6.4.0), in its order: ``mmap_read_lock`` and
    ``unmap_vmas`` (every VMA's pages zapped under the *read* lock),
    ``mmap_read_unlock``; ``MMF_OOM_SKIP`` set; ``mmap_write_lock``,
    ``mt_clear_in_rcu`` and ``free_pgtables(..., mm_wr_locked=true)``, which
    ``vma_start_write``s each VMA as it unlinks it; then ``remove_vma(vma, true)``
    per VMA (``__vm_area_free`` at once: nobody can reach the VMAs, so no RCU,
    reference §6.3), ``__mt_destroy`` and ``mmap_write_unlock``.  With no VMA at
    all it only takes and drops the read lock (the ``dup_mmap`` OOM case).

    The model drops each VMA's range from the tree as ``remove_vma`` frees it
    (its tree never holds a freed VMA); 6.4.0 leaves the stale entries to
    ``__mt_destroy``.  Nobody can see the difference: the write lock is held and
    the tree is out of RCU mode.
    """
    L = fr.loc
    pc = fr.pc
    if pc == 0:
        # Only here: a scan of every thread on each exit_mmap step would cost
        # O(threads) a step.
        # mmput: the last thread to drop mm_users (every other thread has
        # finished or is in do_exit already) runs exit_mmap.
        th.exiting = True
        others = [t for t in k.threads if t.tid != th.tid and t.done_ns < 0 and not t.exiting]
        if others:
            k.emit("do_exit", len(others))
            th.pc_stack = []
            k.ret(th)
            return k.costs["syscall"]
        fr.pc = 1
        # mmu_notifier_release, then the read lock for the unmap phase.
        k.call(th, "mmap_read_lock")
        k.emit("exit_mmap", len(k.mm.live_vmas()))
        return k.costs["syscall"]
    if pc == 1:
        L.pop("ret", None)
        L["todo"] = [v.vid for v in k.mm.live_vmas()]
        L["unlink"] = list(L["todo"])
        L["free"] = list(L["todo"])
        fr.pc = 2 if L["todo"] else 9
        if not L["todo"]:
            # "Can happen if dup_mmap() received an OOM": unlock and return.
            k.call(th, "mmap_read_unlock")
            return -1
    if pc <= 2:
        if L["todo"]:
            # unmap_vmas: zap one VMA's pages; the VMAs stay in the tree.
            vma = k.mm.vmas[L["todo"].pop(0)]
            cost = len(vma.pages) * k.costs["zap_page"] + k.costs["plain_load"]
            vma.pages = {}
            k.emit("exit_mmap:unmap_vmas", vma.vid)
            return cost
        fr.pc = 3
        k.call(th, "mmap_read_unlock")
        return -1
    if pc == 3:
        L.pop("ret", None)
        # set_bit(MMF_OOM_SKIP): the memory is gone, the OOM reaper skips this mm.
        fr.pc = 4
        k.call(th, "mmap_write_lock")
        k.emit("exit_mmap:MMF_OOM_SKIP")
        return k.costs["plain_load"]
    if pc == 4:
        L.pop("ret", None)
        k.mm.mm_mt.in_rcu = False  # mt_clear_in_rcu
        fr.pc = 5
    if pc <= 5:
        if L["unlink"]:
            vma = k.mm.vmas[L["unlink"][0]]
            if k.per_vma and not k.mm.is_write_locked(vma):
                _start_write(k, th, vma)  # free_pgtables(..., mm_wr_locked=true)
                return -1
            L["unlink"].pop(0)
            k.emit("exit_mmap:free_pgtables", vma.vid)
            return k.costs["vma_modify"]
        fr.pc = 6
        # tlb_finish_mmu: the gathered pages and tables are freed.
        return k.costs["tlb_flush"]
    if pc == 6:
        if L["free"]:
            vma = k.mm.vmas[L["free"].pop(0)]
            _store(k, vma.vm_start, vma.vm_end, None)
            k.mm.map_count -= 1
            vma.detached = True
            k._vm_area_free_rcu_cb(vma)  # remove_vma(vma, true): __vm_area_free
            k.vmas_freed += 1
            k.emit("exit_mmap:remove_vma", vma.vid)
            return k.costs["vma_modify"]
        fr.pc = 7
        k.emit("exit_mmap:__mt_destroy", k.mm.map_count)
        return k.costs["plain_load"]
    if pc == 7:
        fr.pc = 8
        k.call(th, "mmap_write_unlock")
        return -1
    L.pop("ret", None)
    th.pc_stack = []
    k.ret(th)
    return -1


@kfunc("shrink_folio_list", "mm/vmscan.c")
def op_swap_out(k: Kernel, th: Thread, fr: Frame) -> int:
    """Reclaim: ``try_to_unmap`` turns present anonymous PTEs into swap entries.

    Reclaim walks the rmap under the anon_vma lock and the page-table lock; it
    takes neither ``mmap_lock`` nor a VMA lock, so between its steps the VMAs it
    chose may be split, moved or unmapped (and freed, and forgotten): each page
    is looked up again by its address, and one no longer mapped there is skipped.
    """
    L = fr.loc
    if fr.pc == 0:
        start, end = _range_of(k, L["op"].args)
        L["todo"] = [
            (v.vid, v.vm_start + i * PAGE_SIZE, i)
            for v in _overlapping(k, start, end)
            for i in sorted(v.pages)
            if start <= v.vm_start + i * PAGE_SIZE < end and v.pages[i] != M.PTE_SWAP
        ]
        fr.pc = 1
    if not L["todo"]:
        k.ret(th)
        return -1
    vid, addr, i = L["todo"].pop(0)
    cost = k.costs["swap_out_page"] + k.atomic(th, f"ptl{addr >> 21}")
    vma = k.mm.vmas.get(vid)
    if vma is not None and vma.state == "live" and vma.vm_start <= addr < vma.vm_end:
        i = vma.page_of(addr)
        if vma.pages.get(i) == M.PTE_LAZYFREE:
            # try_to_unmap_one: a clean lazy-free folio is discarded, no swap entry.
            del vma.pages[i]
            k.emit("try_to_unmap:discard_lazyfree", vid, i)
            return cost
        if i in vma.pages:
            vma.pages[i] = M.PTE_SWAP
    k.emit("try_to_unmap:swap_entry", vid, i)
    return cost


#: ``HPAGE_PMD_SIZE`` on x86-64, arm64 (4 KiB pages), powerpc radix and s390: 2 MiB.
HPAGE_PMD_SIZE = PAGE_SIZE << 9

#: ``VM_NO_KHUGEPAGED`` (include/linux/mm.h): ``VM_SPECIAL | VM_HUGETLB``; the
#: model has no hugetlbfs VMAs, so the ``VM_SPECIAL`` part is what can be set.
VM_NO_KHUGEPAGED = M.VM_SPECIAL


def transhuge_vma_suitable(vma: Vma, addr: int) -> bool:
    """Whether the huge page around ``addr`` fits inside ``vma``.

    Models include/linux/huge_mm.h ``transhuge_vma_suitable`` (6.4.0; renamed
    ``thp_vma_suitable_order`` later): a file VMA also needs its
    ``vm_start`` and ``vm_pgoff`` congruent modulo ``HPAGE_PMD_NR``.
    """
    if not vma.is_anonymous and (vma.vm_start // PAGE_SIZE - vma.pgoff) % 512:
        return False
    haddr = addr & ~(HPAGE_PMD_SIZE - 1)
    return vma.vm_start <= haddr and haddr + HPAGE_PMD_SIZE <= vma.vm_end


def hugepage_vma_check(vma: Vma) -> str | None:
    """Why khugepaged may not collapse in ``vma`` (None: it may).

    Models mm/huge_memory.c ``hugepage_vma_check(vma, vm_flags, smaps=false,
    in_pf=false, enforce_sysfs=true)`` with THP ``enabled=always`` (the model has no
    sysfs): ``VM_NOHUGEPAGE`` or ``VM_NO_KHUGEPAGED`` refuse, the last huge page
    must fit (``transhuge_vma_suitable(vma, vm_end - HPAGE_PMD_SIZE)``), file and
    shmem collapse are not modelled (refused), and an anonymous VMA needs its
    ``anon_vma``.  The returned words are the ``SCAN_*`` result it leads to.
    """
    if vma.vm_flags & (M.VM_NOHUGEPAGE | VM_NO_KHUGEPAGED):
        return "SCAN_VMA_CHECK"
    if not transhuge_vma_suitable(vma, vma.vm_end - HPAGE_PMD_SIZE):
        return "SCAN_VMA_CHECK"
    if not vma.is_anonymous or vma.anon_vma is None:
        return "SCAN_VMA_CHECK"
    return None


def hugepage_vma_revalidate(k: Kernel, address: int) -> tuple[Vma | None, str | None]:
    """Look the collapse address up again after ``mmap_lock`` was dropped.

    Models mm/khugepaged.c ``hugepage_vma_revalidate(mm, address,
    expect_anon=true, ...)``: ``find_vma`` must return a VMA (``SCAN_VMA_NULL``),
    the huge page must fit in it (``SCAN_ADDRESS_RANGE``), ``hugepage_vma_check``
    must pass (``SCAN_VMA_CHECK``) and it must be anonymous with an ``anon_vma``
    (``SCAN_PAGE_ANON``).  Between the scan and here it may have been unmapped,
    split, moved or replaced.
    """
    vma = k.mm.find_vma(address)
    if vma is None:
        return None, "SCAN_VMA_NULL"
    if not transhuge_vma_suitable(vma, address):
        return vma, "SCAN_ADDRESS_RANGE"
    why = hugepage_vma_check(vma)
    if why is not None:
        return vma, why
    if vma.anon_vma is None or not vma.is_anonymous:
        return vma, "SCAN_PAGE_ANON"
    return vma, None


def _khugepaged_address(vma: Vma) -> int | None:
    """The first ``HPAGE_PMD_SIZE``-aligned range inside ``vma`` (khugepaged_scan_mm_slot's
    ``hstart = round_up(vm_start, HPAGE_PMD_SIZE)``), or None if none fits."""
    hstart = -(-vma.vm_start // HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE
    return hstart if hstart + HPAGE_PMD_SIZE <= vma.vm_end else None


@kfunc("collapse_huge_page", "mm/khugepaged.c")
def op_khugepaged(k: Kernel, th: Thread, fr: Frame) -> int:
    """khugepaged collapsing the first huge-page range of a VMA, as 6.4.0 does it.

    mm/khugepaged.c: ``khugepaged_scan_mm_slot`` takes ``mmap_read_lock`` and
    checks the VMA (:func:`hugepage_vma_check`) and the aligned range;
    ``hpage_collapse_scan_pmd`` calls ``collapse_huge_page``, which drops the read
    lock, allocates the huge page (``alloc_charge_hpage``), takes the read lock
    and revalidates (:func:`hugepage_vma_revalidate`), drops it, takes
    ``mmap_write_lock``, revalidates again, and only then ``vma_start_write`` the
    VMA ([v3 15/35]) before the anon_vma lock and ``pmdp_collapse_flush``.  A
    failed check ends the collapse (``out_up_write`` or ``out_nolock``).  Under
    the first read lock :func:`hpage_collapse_scan_pmd` checks the PTEs with
    khugepaged's limits; after the read-lock revalidation
    :func:`__collapse_huge_page_swapin` reads swap entries back in; under the
    write lock :func:`__collapse_huge_page_isolate` checks the PTEs again and
    :func:`collapse_huge_page_set_pmd` leaves the range mapped by one huge page.
    Entered from ``madvise_collapse`` (``madvise=True``) the khugepaged-only
    limits do not apply (``cc->is_khugepaged`` false).
    """
    L = fr.loc
    pc = fr.pc
    if pc == 0 and "addr" in L:
        # Called by madvise_collapse (through hpage_collapse_scan_pmd) with
        # mmap_read_lock held and the range scanned: collapse_huge_page starts
        # by dropping the read lock.
        fr.pc = 2
        k.call(th, "mmap_read_unlock")
        return k.costs["plain_load"]
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_read_lock")
        k.emit("khugepaged:scan")
        return k.costs["plain_load"]
    if pc == 1:
        L.pop("ret", None)
        vma = k.mm.vma_at(k.resolve(L["op"].args["vma"]))
        why = "SCAN_VMA_NULL" if vma is None else hugepage_vma_check(vma)
        addr = None if vma is None else _khugepaged_address(vma)
        if why is None and addr is None:
            why = "SCAN_ADDRESS_RANGE"
        if why is not None:
            # khugepaged_scan_mm_slot skips the VMA: no collapse, the read lock dropped.
            fr.pc = 9
            k.call(th, "mmap_read_unlock")
            k.emit("khugepaged:scan", vma.vid if vma else 0, 0, why)
            return k.costs["find_vma"]
        assert vma is not None and addr is not None
        L["addr"] = addr
        why, L["unmapped"] = hpage_collapse_scan_pmd(vma, addr, is_khugepaged=True)
        k.emit("khugepaged:hpage_collapse_scan_pmd", vma.vid, addr, why or "SCAN_SUCCEED")
        fr.pc = 9 if why else 2
        # A refused range: khugepaged_scan_mm_slot drops the read lock.  A
        # scanned one: collapse_huge_page releases it before allocating.
        k.call(th, "mmap_read_unlock")
        return k.costs["find_vma"] + 512 * k.costs["plain_load"]
    if pc == 2:
        L.pop("ret", None)
        fr.pc = 3
        k.call(th, "mmap_read_lock")
        k.emit("khugepaged:alloc_charge_hpage")
        return k.costs["anon_page_alloc"] * 8
    if pc == 3:
        L.pop("ret", None)
        vma, why = hugepage_vma_revalidate(k, L["addr"])
        L["why"] = why
        k.emit("khugepaged:hugepage_vma_revalidate", vma.vid if vma else 0, 0, why or "")
        if why is None and L.get("unmapped"):
            # The scan saw swap entries: __collapse_huge_page_swapin, still
            # under the read lock.
            fr.pc = 8
            return k.costs["find_vma"]
        fr.pc = 9 if why else 4
        k.call(th, "mmap_read_unlock")
        return k.costs["find_vma"]
    if pc == 8:
        vma = k.mm.find_vma(L["addr"])
        assert vma is not None  # revalidated under this same read lock
        n = __collapse_huge_page_swapin(vma, L["addr"])
        k.emit("collapse_huge_page:__collapse_huge_page_swapin", vma.vid, n)
        fr.pc = 4
        k.call(th, "mmap_read_unlock")
        return max(n, 1) * k.costs["swap_in"]
    if pc == 4:
        L.pop("ret", None)
        fr.pc = 5
        k.call(th, "mmap_write_lock")
        return -1
    if pc == 5:
        L.pop("ret", None)
        vma, why = hugepage_vma_revalidate(k, L["addr"])
        k.emit("khugepaged:hugepage_vma_revalidate", vma.vid if vma else 0, 1, why or "")
        if why is not None or vma is None:
            L["why"] = why
            fr.pc = 7  # out_up_write
            return k.costs["find_vma"]
        L["vid"] = vma.vid
        fr.pc = 6
        if k.patch["khugepaged_write_lock"]:
            _start_write(k, th, vma)  # [v3 15/35]
        else:
            # Remembered so the collapse reports a fault inside the VMA (the
            # race the lock prevents), not the missing lock itself.
            L["unlocked"] = True
        return k.costs["find_vma"]
    if pc == 6:
        fr.pc = 7
        vma = k.mm.vmas[L["vid"]]
        k.check_modify_vma(th, vma, "page tables (collapse)", unlocked=L.get("unlocked", False))
        k.emit("collapse_huge_page:pmdp_collapse_flush", vma.vid)
        fr.pc = 10
        return k.costs["khugepaged_collapse"]
    if pc == 10:
        # Still under mmap_write_lock with the VMA write-locked.
        fr.pc = 7
        vma = k.mm.vmas[L["vid"]]
        why = __collapse_huge_page_isolate(vma, L["addr"], is_khugepaged=not L.get("madvise"))
        if why is not None:
            # pmd_populate puts the page table back; out_up_write.
            L["why"] = why
            k.emit("collapse_huge_page:__collapse_huge_page_isolate", vma.vid, 0, why)
        else:
            collapse_huge_page_set_pmd(vma, L["addr"])
            k.emit("collapse_huge_page:set_pmd_at", vma.vid, L["addr"])
        return k.costs["plain_load"]
    if pc == 7:
        fr.pc = 9
        k.call(th, "mmap_write_unlock")
        return -1
    L.pop("ret", None)
    # The SCAN_* result (None: SCAN_SUCCEED) for madvise_collapse; mmap_lock is
    # not held on return either way.
    k.ret(th, L.get("why"))
    return -1


#: mm/khugepaged.c ``madvise_collapse``'s switch: results after which the
#: loop goes on to the next huge-page range (the rest end it).
_COLLAPSE_CONTINUE = frozenset({
    "SCAN_PMD_NULL", "SCAN_PTE_NON_PRESENT", "SCAN_PTE_UFFD_WP", "SCAN_PAGE_RO",
    "SCAN_LACK_REFERENCED_PAGE", "SCAN_PAGE_NULL", "SCAN_PAGE_COUNT",
    "SCAN_PAGE_LOCK", "SCAN_PAGE_COMPOUND", "SCAN_PAGE_LRU", "SCAN_DEL_PAGE_LRU",
})  # fmt: skip


def madvise_collapse_errno(why: str) -> str:
    """mm/khugepaged.c ``madvise_collapse_errno``: the errno a ``SCAN_*`` result gives."""
    if why == "SCAN_ALLOC_HUGE_PAGE_FAIL":
        return "ENOMEM"
    if why in ("SCAN_CGROUP_CHARGE_FAIL", "SCAN_EXCEED_NONE_PTE"):
        return "EBUSY"
    if why in ("SCAN_PAGE_COUNT", "SCAN_PAGE_LOCK", "SCAN_PAGE_LRU", "SCAN_DEL_PAGE_LRU"):
        return "EAGAIN"
    return "EINVAL"


#: mm/khugepaged.c ``khugepaged_init`` defaults (HPAGE_PMD_NR = 512): how many
#: none/zero, swap and shared PTEs khugepaged (not MADV_COLLAPSE) accepts in a range.
KHUGEPAGED_MAX_PTES_NONE = 512 - 1
KHUGEPAGED_MAX_PTES_SWAP = 512 // 8
KHUGEPAGED_MAX_PTES_SHARED = 512 // 2


def _range_ptes(vma: Vma, addr: int) -> list[int | None]:
    """The 512 PTE states of the huge-page range at ``addr`` (None: ``pte_none``)."""
    lo = (addr - vma.vm_start) >> PAGE_SHIFT
    return [vma.pages.get(i) for i in range(lo, lo + 512)]


def find_pmd_or_thp_or_none(vma: Vma, addr: int) -> str | None:
    """What the PMD of the huge-page range at ``addr`` holds (None: a page table).

    Models mm/khugepaged.c ``find_pmd_or_thp_or_none``.  The model keeps PTE
    states, not page-table pages: a range without any PTE stands for an empty
    PMD (``pmd_none``: ``SCAN_PMD_NONE``).  The model keeps no PMD state, so
    it cannot tell the huge page a collapse leaves from 512 present small pages:
    ``SCAN_PMD_MAPPED`` (``pmd_trans_huge``) is not modelled, and a second
    collapse of the same range collapses it again.
    """
    if all(s is None for s in _range_ptes(vma, addr)):
        return "SCAN_PMD_NONE"
    return None


def hpage_collapse_scan_pmd(vma: Vma, addr: int, is_khugepaged: bool) -> tuple[str | None, int]:
    """The PTE scan of one huge-page range under ``mmap_read_lock``.

    Models mm/khugepaged.c ``hpage_collapse_scan_pmd`` (6.4.0), in its PTE order,
    for khugepaged (``cc->is_khugepaged``) or ``MADV_COLLAPSE`` (not):

    * :func:`find_pmd_or_thp_or_none` first (``SCAN_PMD_NONE``);
    * a swap entry (``is_swap_pte``) counts in ``unmapped``; khugepaged allows
      ``khugepaged_max_ptes_swap`` (64) of them (``SCAN_EXCEED_SWAP_PTE``);
    * a none PTE counts in ``none_or_zero``: ``userfaultfd_armed(vma)`` refuses the
      first one for both callers, khugepaged allows ``khugepaged_max_ptes_none``
      (511) (``SCAN_EXCEED_NONE_PTE``);
    * ``pte_write`` sets ``writable``; a page with ``page_mapcount > 1`` counts in
      ``shared``, khugepaged allows ``khugepaged_max_ptes_shared`` (256)
      (``SCAN_EXCEED_SHARED_PTE``).  The model's ``PTE_WP`` is a page shared
      with a fork child; a read fault's zero page is ``PTE_WP`` too, so the
      model counts it as shared where the kernel counts it in ``none_or_zero``;
    * khugepaged counts young pages in ``referenced``.  The model has no
      accessed bits: every present page counts as young (a fault or fork left
      the PTE young) except a lazy-free one, which ``madvise_free_pte_range``
      made old (``pte_mkold``) and ``lru_lazyfree_fn`` took off the referenced
      list;
    * then no writable PTE is ``SCAN_PAGE_RO``, and for khugepaged no referenced
      page, or swap entries with fewer than ``HPAGE_PMD_NR / 2`` referenced, is
      ``SCAN_LACK_REFERENCED_PAGE``.

    Returns ``(result, unmapped)``: None for ``SCAN_SUCCEED``, and how many
    swap entries ``__collapse_huge_page_swapin`` will read.
    """
    why = find_pmd_or_thp_or_none(vma, addr)
    if why is not None:
        return why, 0
    can_write = bool(vma.vm_flags & M.VM_WRITE)
    unmapped = none_or_zero = shared = referenced = 0
    writable = False
    for s in _range_ptes(vma, addr):
        if s == M.PTE_SWAP:
            unmapped += 1
            if is_khugepaged and unmapped > KHUGEPAGED_MAX_PTES_SWAP:
                return "SCAN_EXCEED_SWAP_PTE", unmapped
            continue
        if s is None:
            none_or_zero += 1
            if vma.uffd_armed or (is_khugepaged and none_or_zero > KHUGEPAGED_MAX_PTES_NONE):
                return "SCAN_EXCEED_NONE_PTE", unmapped
            continue
        if can_write and s in (M.PTE_PRESENT, M.PTE_LAZYFREE):
            writable = True
        if s == M.PTE_WP:
            shared += 1
            if is_khugepaged and shared > KHUGEPAGED_MAX_PTES_SHARED:
                return "SCAN_EXCEED_SHARED_PTE", unmapped
        if s != M.PTE_LAZYFREE:
            referenced += 1
    if not writable:
        return "SCAN_PAGE_RO", unmapped
    if is_khugepaged and (not referenced or (unmapped and referenced < 512 // 2)):
        return "SCAN_LACK_REFERENCED_PAGE", unmapped
    return None, unmapped


def __collapse_huge_page_isolate(vma: Vma, addr: int, is_khugepaged: bool) -> str | None:
    """The second PTE check, under ``mmap_write_lock`` after ``pmdp_collapse_flush``.

    Models mm/khugepaged.c ``__collapse_huge_page_isolate``: PTEs may have
    changed while ``collapse_huge_page`` held no lock or only the read lock
    (``MADV_DONTNEED`` zaps, reclaim swaps out, fork write-protects).  A none
    PTE: the same ``userfaultfd_armed``/``khugepaged_max_ptes_none`` rule
    (``SCAN_EXCEED_NONE_PTE``); any other non-present PTE (a swap entry again)
    is ``SCAN_PTE_NON_PRESENT``; shared pages as in the scan
    (``SCAN_EXCEED_SHARED_PTE``); then ``SCAN_PAGE_RO`` without a writable PTE
    and, for khugepaged, ``SCAN_LACK_REFERENCED_PAGE`` without a referenced page
    (no ``unmapped`` rule here).  None: ``SCAN_SUCCEED``.
    """
    can_write = bool(vma.vm_flags & M.VM_WRITE)
    none_or_zero = shared = referenced = 0
    writable = False
    for s in _range_ptes(vma, addr):
        if s is None:
            none_or_zero += 1
            if vma.uffd_armed or (is_khugepaged and none_or_zero > KHUGEPAGED_MAX_PTES_NONE):
                return "SCAN_EXCEED_NONE_PTE"
            continue
        if s == M.PTE_SWAP:
            return "SCAN_PTE_NON_PRESENT"
        if s == M.PTE_WP:
            shared += 1
            if is_khugepaged and shared > KHUGEPAGED_MAX_PTES_SHARED:
                return "SCAN_EXCEED_SHARED_PTE"
        if can_write and s in (M.PTE_PRESENT, M.PTE_LAZYFREE):
            writable = True
        if s != M.PTE_LAZYFREE:
            referenced += 1
    if not writable:
        return "SCAN_PAGE_RO"
    if is_khugepaged and not referenced:
        return "SCAN_LACK_REFERENCED_PAGE"
    return None


def __collapse_huge_page_swapin(vma: Vma, addr: int) -> int:
    """Read the range's swap entries back in before the collapse; returns how many.

    Models mm/khugepaged.c ``__collapse_huge_page_swapin``, under
    ``mmap_read_lock``: ``do_swap_page`` (``FAULT_FLAG_ALLOW_RETRY``, no
    ``FAULT_FLAG_VMA_LOCK``) for each ``is_swap_pte``.  ``VM_FAULT_RETRY``
    (a page lock it could not take; it would drop ``mmap_lock``) ends it with
    ``SCAN_PAGE_LOCK``: the model has no page locks, so every swap-in succeeds.
    The page comes back exclusive to this mm (``RMAP_EXCLUSIVE``).
    """
    n = 0
    for i, s in enumerate(_range_ptes(vma, addr)):
        if s == M.PTE_SWAP:
            vma.pages[vma.page_of(addr) + i] = M.PTE_PRESENT
            n += 1
    return n


def collapse_huge_page_set_pmd(vma: Vma, addr: int) -> None:
    """The page state after a collapse: one huge page maps the whole range.

    Models the end of mm/khugepaged.c ``collapse_huge_page``:
    ``__collapse_huge_page_copy`` copies every present page into the huge page
    and zero-fills the subpages of none PTEs (``clear_user_highpage``), then
    ``set_pmd_at`` installs ``maybe_pmd_mkwrite(pmd_mkdirty(...))``: the
    huge page is new, so it is exclusive (``page_add_new_anon_rmap``), dirty
    (a lazy-free page is no longer lazy-free) and writable (the scan required a
    writable PTE, so the VMA has ``VM_WRITE``).  The model has no PMD state: all
    512 pages become ``PTE_PRESENT``, so later faults in the range find a
    present, writable page and need no ``do_huge_pmd_wp_page``.
    """
    lo = vma.page_of(addr)
    for i in range(lo, lo + 512):
        vma.pages[i] = M.PTE_PRESENT


@kfunc("madvise_collapse", "mm/khugepaged.c")
def op_madvise_collapse(k: Kernel, th: Thread, fr: Frame) -> int:
    """``madvise_collapse``: MADV_COLLAPSE on ``[start, end)`` of one VMA, as 6.4.0 does it.

    Called from ``madvise_vma_behavior`` with ``mmap_read_lock`` held
    (``madvise_need_mmap_write`` is 0 for ``MADV_COLLAPSE``).
    ``hugepage_vma_check(vma, vm_flags, false, false, enforce_sysfs=false)``
    failing is ``-EINVAL`` (:func:`hugepage_vma_check`; the model assumes THP
    ``enabled=always``, so sysfs changes nothing).  Then for each
    ``HPAGE_PMD_SIZE``-aligned range inside ``[start, end)``: when an earlier
    range dropped the lock, ``mmap_read_lock`` and ``hugepage_vma_revalidate``
    (failure: ``out_nolock``, with the read lock held) and ``hend`` clipped to
    the VMA; :func:`hpage_collapse_scan_pmd`; on ``SCAN_SUCCEED``,
    ``collapse_huge_page`` (:func:`op_khugepaged`, entered with the read lock
    held), which drops it, takes ``mmap_write_lock``, revalidates and
    ``vma_start_write`` s the VMA, and returns with no lock: ``mmap_locked =
    false`` and ``*prev = NULL``.  A result outside the continue-list ends the
    loop (``out_maybelock`` retakes the read lock).  Returns ``(error, ...)`` to
    ``do_madvise``: None when every range collapsed, else
    :func:`madvise_collapse_errno` of the last failure.
    """
    L = fr.loc
    pc = fr.pc
    if pc == 0:
        vma = k.mm.vmas[L["vid"]]
        why = hugepage_vma_check(vma)
        if why is not None:
            k.emit("madvise_collapse", vma.vid, 0, f"hugepage_vma_check: {why}")
            k.ret(th, "EINVAL")
            return k.costs["plain_load"]
        hstart = -(-L["start"] // HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE
        hend = L["end"] // HPAGE_PMD_SIZE * HPAGE_PMD_SIZE
        L.update(addr=hstart, hstart=hstart, hend=hend, thps=0, last="SCAN_FAIL", locked=True)
        fr.pc = 1
        # lru_add_drain_all before the loop.
        return k.costs["plain_load"]
    if pc == 1:
        if L["addr"] >= L["hend"]:
            fr.pc = 5  # loop done: out_maybelock
            return 0
        if not L["locked"]:
            fr.pc = 2
            k.call(th, "mmap_read_lock")
            return -1
        fr.pc = 3
        return 0
    if pc == 2:
        L.pop("ret", None)
        L["locked"] = True
        found, why = hugepage_vma_revalidate(k, L["addr"])
        k.emit("madvise_collapse:hugepage_vma_revalidate", found.vid if found else 0, 0, why or "")
        if why is not None or found is None:
            L["last"] = why or "SCAN_VMA_NULL"
            fr.pc = 6  # out_nolock: the read lock was just taken
            return k.costs["find_vma"]
        L["vid"] = found.vid
        L["hend"] = min(L["hend"], found.vm_end // HPAGE_PMD_SIZE * HPAGE_PMD_SIZE)
        fr.pc = 3
        return k.costs["find_vma"]
    if pc == 3:
        vma = k.mm.vmas[L["vid"]]
        why, unmapped = hpage_collapse_scan_pmd(vma, L["addr"], is_khugepaged=False)
        k.emit("madvise_collapse:hpage_collapse_scan_pmd", vma.vid, L["addr"], why or "")
        if why is None:
            fr.pc = 4
            k.call(th, "collapse_huge_page", addr=L["addr"], madvise=True, unmapped=unmapped)
            return k.costs["find_vma"]
        L["scan"] = why
        fr.pc = 4
        return k.costs["find_vma"]
    if pc == 4:
        if "scan" in L:
            why = L.pop("scan")
        else:
            # collapse_huge_page returned without mmap_lock: "*prev = NULL".
            why = L.pop("ret", None)
            L["locked"] = False
        if why is None or why == "SCAN_PMD_MAPPED":
            L["thps"] += 1
        else:
            L["last"] = why
            if why not in _COLLAPSE_CONTINUE:
                fr.pc = 5  # "Other error, exit": out_maybelock
                return 0
        L["addr"] += HPAGE_PMD_SIZE
        fr.pc = 1
        return 0
    if pc == 5:
        if not L["locked"]:
            fr.pc = 6
            k.call(th, "mmap_read_lock")
            return -1
        fr.pc = 6
        return 0
    L.pop("ret", None)
    # The kernel's count is unsigned: hend below hstart (no aligned range fits)
    # wraps and never equals thps, so that call fails with -EINVAL.
    n = (L["hend"] - L["hstart"]) // HPAGE_PMD_SIZE if L["hend"] >= L["hstart"] else -1
    ok = L["thps"] == n
    k.emit("madvise_collapse", L["vid"], L["thps"], "" if ok else L["last"])
    k.ret(th, None if ok else madvise_collapse_errno(L["last"]))
    return k.costs["plain_load"]


@kfunc("do_tkill", "kernel/signal.c")
def op_signal(k: Kernel, th: Thread, fr: Frame) -> int:
    """``tgkill(2)``: send a signal to another thread of the process.

    kernel/signal.c ``do_tkill`` -> ``do_send_specific`` queues it and
    ``signal_wake_up`` sets ``TIF_SIGPENDING`` on the target; a target that has
    exited gets ``-ESRCH``.

    A handled signal (``sig: SIGUSR1``, the default) wakes nothing the model has
    (its sleeps in ``mmap_read_lock``/``down_write`` are uninterruptible); it makes
    ``fault_signal_pending`` true for the target's next ``VM_FAULT_RETRY``, whose
    quick exit delivers it.

    ``sig: SIGKILL`` is fatal to the whole thread group (:func:`complete_signal`).
    """
    a = fr.loc["op"].args
    target = next((t for t in k.threads if t.name == a["thread"]), None)
    if target is None or target.done_ns >= 0:
        k.emit("do_tkill", target.tid if target else 0, 0, "-ESRCH")
    elif a.get("sig") == "SIGKILL":
        k.emit("do_tkill", target.tid, 1, "SIGKILL")
        complete_signal(k)
    else:
        target.signal_pending = True
        k.emit("do_tkill", target.tid, 1)
    k.ret(th)
    return k.costs["syscall"]


def complete_signal(k: Kernel) -> None:
    """kernel/signal.c ``complete_signal`` for SIGKILL: the whole group is killed.

    ``signal->flags = SIGNAL_GROUP_EXIT``; SIGKILL is added to every thread's
    pending set and ``signal_wake_up(t, 1)`` wakes each thread sleeping in
    ``TASK_KILLABLE`` or ``TASK_INTERRUPTIBLE``: in the model the waiters of
    ``down_write_killable``/``down_read_killable`` (which leave the queue with
    ``-EINTR``), ``nanosleep`` (op ``sleep``), the user-space barrier (a futex
    wait) and threads whose program has not started yet.  A thread asleep in an
    uninterruptible ``down_read``/``down_write`` sleeps on until it gets the lock.
    Every thread then dies at its next return to user mode (``Kernel._next_op``);
    the last one's ``do_exit`` runs ``exit_mmap`` (:func:`op_exit`).  ``a`` =
    threads marked, ``b`` = threads woken.
    """
    marked = woken = 0
    for t in k.threads:
        if t.done_ns >= 0 or t.state == DONE:
            continue
        t.sigkill = True
        marked += 1
        top = t.frames[-1].fn if t.frames else ""
        if t.state == BLOCKED and top in ("down_write_killable", "down_read_killable"):
            k.wake(t.tid)
            woken += 1
        elif t.state == SLEEPING and top in ("", "sleep"):
            # The nanosleep (or the not-yet-started program) ends now: the timer
            # already queued is void once the token moves.
            t.token += 1
            k._push(k.now, EV_TIMER, t.tid, t.token)
            woken += 1
        elif t.state == BARRIER:
            name = t.frames[-1].loc["op"].args["name"]
            k.barriers[name] = [x for x in k.barriers.get(name, []) if x != t.tid]
            t.state = BLOCKED
            k.wake(t.tid)
            woken += 1
    k.emit("complete_signal", marked, woken, "SIGNAL_GROUP_EXIT")


@kfunc("__mmu_notifier_register", "mm/mmu_notifier.c")
def op_mmu_notifier_register(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mm_take_all_locks``: write-lock every VMA first, then the i_mmap and anon_vma
    locks; ``mm_drop_all_locks`` ends with ``vma_end_write_all`` ([v3 23/35]).
    """
    L = fr.loc
    pc = fr.pc
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_write_lock")
        k.emit("syscall:mmu_notifier_register")
        return k.costs["syscall"]
    if pc == 1:
        L["todo"] = [v.vid for v in k.mm.live_vmas()]
        fr.pc = 2
    if pc in (1, 2):
        while L["todo"]:
            vma = k.mm.vmas[L["todo"].pop(0)]
            if k.per_vma:
                _start_write(k, th, vma)
                return -1
        fr.pc = 3
        n = len(k.mm.live_vmas())
        k.emit("mm_take_all_locks", n)
        return n * k.costs["mm_take_all_locks_per_vma"]
    if pc == 3:
        fr.pc = 4
        k.call(th, "vma_end_write_all")
        k.emit("mm_drop_all_locks")
        return k.costs["plain_load"]
    if pc == 4:
        fr.pc = 5
        k.call(th, "mmap_write_unlock")
        return -1
    k.ret(th)
    return -1


@kfunc("tcp_zerocopy_receive", "net/ipv4/tcp.c")
def op_tcp_zerocopy(k: Kernel, th: Thread, fr: Frame) -> int:
    """``tcp_zerocopy_receive``: 6.4 takes ``mmap_read_lock``, ``vma_lookup``, then
    ``vm_insert_pages``.  With the 6.5 ``tcp_zerocopy_vma_lock`` patch,
    ``find_tcp_vma`` first tries ``lock_vma_under_rcu`` and falls back to the
    mmap read lock only if that fails.  ``vm_insert_pages`` maps at most
    :data:`PAGES_PER_STEP` pages a step.
    """
    L = fr.loc
    pc = fr.pc
    start, _ = k.names[L["op"].args["vma"]]
    n = int(L["op"].args.get("pages", 1))
    if pc == 0:
        k.emit("syscall:getsockopt:tcp_zerocopy_receive")
        if k.per_vma and k.patch["tcp_zerocopy_vma_lock"]:
            fr.pc = 10
            k.call(th, "lock_vma_under_rcu", address=start)
            return k.costs["syscall"]
        fr.pc = 1
        k.call(th, "mmap_read_lock")
        return k.costs["syscall"]
    if pc == 10:
        vid = L.pop("ret")
        if vid is None:
            fr.pc = 1
            k.call(th, "mmap_read_lock")
            return -1
        L["vid"] = vid
        cost = _insert_pages(k, L, k.mm.vmas[vid], n)
        fr.pc = 11 if L["inserted"] >= n else 12
        return cost
    if pc == 12:
        # More pages under the VMA read lock.
        cost = _insert_pages(k, L, k.mm.vmas[L["vid"]], n)
        if L["inserted"] >= n:
            fr.pc = 11
        return cost
    if pc == 11:
        fr.pc = 3
        k.call(th, "vma_end_read", vid=L["vid"])
        return -1
    if pc == 1:
        L.pop("ret", None)
        vma = k.mm.vma_at(start)
        fr.pc = 2
        if vma is None:
            k.emit("vm_insert_pages", 0, n)
            return k.costs["find_vma"]
        L["vid"] = vma.vid
        cost = k.costs["find_vma"] + _insert_pages(k, L, vma, n)
        if L["inserted"] < n:
            fr.pc = 4
        return cost
    if pc == 4:
        # More pages under the mmap read lock.
        cost = _insert_pages(k, L, k.mm.vmas[L["vid"]], n)
        if L["inserted"] >= n:
            fr.pc = 2
        return cost
    if pc == 2:
        fr.pc = 3
        k.call(th, "mmap_read_unlock")
        return -1
    L.pop("ret", None)
    k.ret(th)
    return -1


def _insert_pages(k: Kernel, L: dict[str, Any], vma: Vma, n: int) -> int:
    """``vm_insert_pages``: map the next :data:`PAGES_PER_STEP` of ``n`` payload pages
    (from the start of the receive VMA) and count them in ``L['inserted']``.
    """
    first: int = L.get("inserted", 0)
    last = min(n, first + PAGES_PER_STEP)
    # Payload pages beyond the end of the VMA (it may have shrunk) are not mapped.
    for i in range(first, min(last, vma.npages)):
        vma.pages[i] = M.PTE_PRESENT
    L["inserted"] = last
    k.emit("vm_insert_pages", vma.vid, n)
    return (last - first) * k.costs["tcp_zc_page"]


#: The seq_file buffer one read() of /proc/pid/maps fills (fs/seq_file.c
#: seq_read_iter allocates ``m->size = PAGE_SIZE``; a read with a large user buffer,
#: as cat's, returns one buffer).
SEQ_BUF_SIZE = M.PAGE_SIZE
#: Column where a maps line's name starts (show_vma_header_prefix:
#: ``seq_setwidth(m, 25 + sizeof(void *) * 6 - 1)`` on 64-bit, then seq_pad's space).
MAPS_NAME_COLUMN = 25 + 8 * 6 - 1 + 1
#: Assumed directory of a mapped file (scenario files are bare names like lib00.so).
MAPS_FILE_DIR = "/usr/lib/x86_64-linux-gnu/"
#: Assumed inode number digits of a mapped file (a typical ext4 root file system).
MAPS_INODE_DIGITS = 7


def maps_line_bytes(vma: Vma) -> int:
    """Bytes ``show_map_vma`` (fs/proc/task_mmu.c) writes for ``vma``.

    The header (``show_vma_header_prefix``) is ``start-end perms pgoff dev ino `` with
    addresses and pgoff at least 8 hex digits and the device ``00:00``; a file mapping
    is padded to :data:`MAPS_NAME_COLUMN` and followed by its path (assumed
    :data:`MAPS_FILE_DIR` + the scenario's file name, and a
    :data:`MAPS_INODE_DIGITS`-digit inode); an anonymous VMA prints inode ``0`` and no
    name, except a stack (``[stack]``, ``is_stack``).  A VMA named by
    ``PR_SET_VMA_ANON_NAME`` shows ``[anon:NAME]`` (a stack keeps ``[stack]``: 6.4.0
    tests ``is_stack`` first), anonymous shmem ``[anon_shmem:NAME]`` instead of its
    path.  Every line ends in a newline.
    """
    head = len(f"{vma.vm_start:08x}-{vma.vm_end:08x} rwxp ")
    if vma.file is not None:
        head += len(f"{vma.pgoff * M.PAGE_SIZE:08x} 00:00 ") + MAPS_INODE_DIGITS + 1
        name = MAPS_FILE_DIR + vma.file
        if vma.anon_name is not None:
            name = f"[anon_shmem:{vma.anon_name}]"
    else:
        head += len("00000000 00:00 0 ")
        name = "[stack]" if vma.vm_flags & M.VM_GROWSDOWN else ""
        if not name and vma.anon_name is not None:
            name = f"[anon:{vma.anon_name}]"
    if not name:
        return head + 1
    return max(head, MAPS_NAME_COLUMN) + len(name) + 1


@kfunc("show_map", "fs/proc/task_mmu.c")
def op_read_proc_maps(k: Kernel, th: Thread, fr: Frame) -> int:
    """``cat /proc/pid/maps``: read() until EOF, one seq_file buffer per read().

    Models fs/seq_file.c ``seq_read_iter`` over fs/proc/task_mmu.c ``m_start`` /
    ``show_map`` / ``m_next`` / ``m_stop``: each read() takes the mmap read lock in
    ``m_start``, shows VMAs from the address the last read stopped at
    (``vma_iter_init(&priv->iter, mm, last_addr)``: the first VMA ending above it,
    whatever changed meanwhile) while their lines fit in the :data:`SEQ_BUF_SIZE`
    buffer (a line that does not fit overflows and is shown again by the next
    read), and drops the lock in ``m_stop`` before copying to user space.  A writer
    can therefore get ``mmap_lock`` between two buffers.  After the last VMA,
    ``m_start`` returns NULL before locking: the read() that returns 0 (EOF) takes
    no lock.  The gate VMA (x86-64 ``[vsyscall]``) is not modelled.
    """
    L = fr.loc
    pc = fr.pc
    if pc in (0, 3) and th.sigkill and L.get("reads"):
        # The read() loop is user space (cat): a SIGKILL ends it between calls.
        k.ret(th)
        return -1
    if pc == 0:
        # A read() syscall with more VMAs to show (m_start: mmap_read_lock_killable).
        L.setdefault("pos", 0)
        L["reads"] = L.get("reads", 0) + 1
        fr.pc = 1
        k.call(th, "mmap_read_lock_killable")
        k.emit("syscall:read:/proc/pid/maps", L["reads"])
        return k.costs["syscall"]
    if pc == 1:
        L.pop("ret", None)
        L["fill"] = 0
        fr.pc = 2
    if pc in (1, 2):
        vma = k.mm.find_vma(L["pos"])
        if vma is not None:
            line = maps_line_bytes(vma)
            # seq_has_overflowed: a line fits only if it leaves the buffer short of full.
            if L["fill"] == 0 or L["fill"] + line < SEQ_BUF_SIZE:
                L["fill"] += line
                L["pos"] = vma.vm_end
                per = L["op"].args.get("ns_per_vma")
                k.emit("show_map_vma", vma.vid, L["fill"])
                return int(per) if per is not None else k.costs["proc_maps_per_vma"]
            # The buffer is full: m_stop, copy out, and read() again from this VMA.
            L["pos"] = vma.vm_start
            fr.pc = 0
        else:
            # The last VMA is shown: the next read() finds m_start at the end.
            fr.pc = 3
        k.call(th, "mmap_read_unlock")
        return -1
    if pc == 3:
        L.pop("ret", None)
        fr.pc = 4
        k.emit("syscall:read:/proc/pid/maps", 0, 0, "EOF: m_start returns NULL, no lock")
        return k.costs["syscall"]
    k.ret(th)
    return -1


OP_ENTRY.update(
    {
        "mmap": "mmap_region",
        "munmap": "__vm_munmap",
        "mprotect": "do_mprotect_pkey",
        "madvise": "do_madvise",
        "uffd_register": "userfaultfd_register",
        "set_anon_name": "prctl_set_vma",
        "mremap": "mremap",
        "brk": "brk",
        "fork": "dup_mmap",
        "exit": "do_exit",
        "swap_out": "shrink_folio_list",
        "khugepaged_collapse": "collapse_huge_page",
        "signal": "do_tkill",
        "mmu_notifier_register": "__mmu_notifier_register",
        "tcp_zerocopy_receive": "tcp_zerocopy_receive",
        "read_proc_maps": "show_map",
    }
)
