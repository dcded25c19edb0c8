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

from typing import Any

from vmaviz.model import mm as M
from vmaviz.model.kernel import (
    OP_ENTRY,
    Kernel,
    _page_range,
    _start_write,
    kfunc,
)
from vmaviz.model.mm import PAGE_SHIFT, PAGE_SIZE, Vma
from vmaviz.model.sched import Frame, Thread

MADVISE_WRITE_FLAGS = {
    "hugepage": (M.VM_HUGEPAGE, M.VM_NOHUGEPAGE),
    "nohugepage": (M.VM_NOHUGEPAGE, M.VM_HUGEPAGE),
    "dontfork": (M.VM_DONTCOPY, 0),
    "dofork": (0, M.VM_DONTCOPY),
    "mergeable": (M.VM_MERGEABLE, 0),
    "unmergeable": (0, M.VM_MERGEABLE),
}


def _range_of(k: Kernel, args: dict[str, Any]) -> tuple[int, int]:
    """The byte range ``[start, end)`` an op's ``vma`` + ``pages`` name."""
    start, end = k.names[args["vma"]]
    lo, hi = _page_range(args.get("pages"), (end - start) >> PAGE_SHIFT)
    return start + lo * PAGE_SIZE, start + (hi + 1) * PAGE_SIZE


def _overlapping(k: Kernel, start: int, end: int) -> list[Vma]:
    return [e for _, _, e in k.mm.mm_mt.items(start, end - 1) if e is not None]


def _store(k: Kernel, start: int, end: int, vma: Vma | None) -> int:
    return k.tree_store(start, end, vma)


def _flags_compatible(a: Vma, b: Vma, flags: int) -> bool:
    """``is_mergeable_vma`` + ``is_mergeable_anon_vma`` (mm/mmap.c) on the modelled fields."""
    if b.vm_flags & ~M.VM_SOFTDIRTY != flags & ~M.VM_SOFTDIRTY:
        return False
    if a.file != b.file:
        return False
    if a.is_anonymous:
        return a.anon_vma is None or b.anon_vma is None or a.anon_vma == b.anon_vma
    return True


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
    ``("remove", vid)`` (detach + ``vm_area_free``), ``("flags", vid, set, clear)``.
    """
    L = fr.loc
    if fr.pc == 0:
        while L["lock"]:
            vid = L["lock"].pop(0)
            vma = k.mm.vmas[vid]
            if k.per_vma and not k.mm.is_write_locked(vma):
                _start_write(k, th, vma)
                return -1
        fr.pc = 1
        return -1
    cost = k.costs["vma_modify"]
    for act in L["plan"]:
        if act[0] == "bounds":
            vma = k.mm.vmas[act[1]]
            k.check_modify_vma(th, vma, "vm_start/vm_end")
            shift = (act[2] - vma.vm_start) >> PAGE_SHIFT
            vma.pages = {
                i - shift: s
                for i, s in vma.pages.items()
                if act[2] <= vma.vm_start + i * PAGE_SIZE < act[3]
            }
            if vma.file is not None:
                vma.pgoff += shift
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
            k.check_modify_vma(th, vma, "vm_flags")
            vma.vm_flags = (vma.vm_flags | act[2]) & ~act[3]
        elif act[0] == "insert":
            vma = k.mm.vmas[act[1]]
            cost += _store(k, vma.vm_start, vma.vm_end, vma)
            k.mm.map_count += 1
    k.emit("vma_complete", len(L["plan"]), L.get("what_code", 0), L.get("what", ""))
    k.ret(th, L.get("result"))
    return cost


def _detach(k: Kernel, th: Thread, vma: Vma) -> None:
    """``vma_mark_detached(vma, true)``: only while write-locked (invariant 6)."""
    if k.per_vma and not k.mm.is_write_locked(vma):
        k.violate(6, f"{vma.label()} marked detached without its write lock")
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
            if new.file is not None:
                new.pgoff += off
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
            k.emit("do_vmi_munmap:find_vma", first.vid)
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
            if k.per_vma and k.patch["write_lock_before_detach"] and not k.mm.is_write_locked(vma):
                _start_write(k, th, vma)
                return -1
            L["todo"].pop(0)
            _detach(k, th, vma)
            k.emit("vma_mark_detached", vid)
            return k.costs["maple_store"]
        if pc == 5:
            # The point of no return: clear the range from mm_mt.
            cost = _store(k, start, end, None)
            k.mm.map_count -= len(L["victims"])
            nxt = k.mm.find_vma(end)
            grows = nxt is not None and nxt.vm_start == end and nxt.vm_flags & M.VM_GROWSDOWN
            fr.pc = 7
            if L["downgrade"] and not grows:
                fr.pc = 6
            k.emit("vma_iter_clear", start, end)
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
        k.emit("remove_mt:vm_area_free", len(L["victims"]))
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
        k.call(th, "mmap_write_lock")
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
            k.call(th, "mmap_write_lock")
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
            L["flags"] = flags
            L["file"] = M.backing_file(a.get("file"), bool(a.get("shared")))
            probe = Vma(0, "", start, end, flags, L["file"])
            prev = k.mm.vma_at(start - 1) if start else None
            nxt = k.mm.vma_at(end)
            merge_prev = (
                prev is not None
                and prev.vm_end == start
                and _flags_compatible(probe, prev, flags)
                and not flags & M.VM_GROWSDOWN
            )
            merge_next = (
                nxt is not None
                and nxt.vm_start == end
                and _flags_compatible(probe, nxt, flags)
                and not flags & M.VM_GROWSDOWN
                and (not merge_prev or _anon_compatible(prev, nxt))
            )
            if merge_prev or merge_next:
                # vma_expand: vma_prepare locks the expanded VMA and a removed next.
                assert prev is not None or nxt is not None
                if merge_prev and prev is not None:
                    target = prev
                    new_end = nxt.vm_end if merge_next and nxt is not None else end
                    plan: list[tuple[Any, ...]] = [("bounds", prev.vid, prev.vm_start, new_end)]
                    lock = [prev.vid]
                    if merge_next and nxt is not None:
                        plan.append(("remove", nxt.vid))
                        lock.append(nxt.vid)
                    plan.append(("store", prev.vm_start, new_end, prev.vid))
                else:
                    assert nxt is not None
                    target = nxt
                    plan = [
                        ("bounds", nxt.vid, start, nxt.vm_end),
                        ("store", start, nxt.vm_end, nxt.vid),
                    ]
                    lock = [nxt.vid]
                L["vid"] = target.vid
                fr.pc = 5
                k.emit("vma_expand", target.vid)
                _commit(k, th, lock, plan, "expand")
                return k.costs["vma_modify"]
            vma = k.mm.new_vma(a["name"], start, end, flags, L["file"])
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
            return -1
        if pc == 5:
            L.pop("ret", None)
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 6
            if k.patch["vm_flags_write_lock"]:
                _start_write(k, th, vma)
            return -1
        if pc == 6:
            vma = k.mm.vmas[fr.loc["vid"]]
            k.check_modify_vma(th, vma, "vm_flags")
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


def _anon_compatible(a: Vma | None, b: Vma | None) -> bool:
    if a is None or b is None:
        return True
    return a.anon_vma is None or b.anon_vma is None or a.anon_vma == b.anon_vma


def _get_unmapped_area(k: Kernel, size: int, hint: int | None) -> int | None:
    """``arch_get_unmapped_area_topdown``: the hint if free, else the top-most gap."""
    tree = k.mm.mm_mt
    if hint is not None and hint + size <= M.TASK_SIZE and not _overlapping(k, hint, hint + size):
        return hint
    return tree.empty_area_rev(M.MMAP_MIN_ADDR, M.MMAP_BASE - 1, size)


# =====================================================================
# Flag changes over a range: mprotect_fixup / madvise_update_vma / userfaultfd
# =====================================================================


@kfunc("vma_modify_flags", "mm/mprotect.c")
def vma_modify_flags(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mprotect_fixup`` / ``madvise_update_vma``: ``vma_merge``, else ``split_vma``, then
    ``vm_flags_reset`` (which write-locks the VMA) over every VMA of ``[start, end)``.

    Holes in the range are skipped (``madvise_walk_vmas``), or with ``stop_at_hole``
    end the walk there (``do_mprotect_pkey``): it then returns the address of the
    hole, else None.
    """
    L = fr.loc
    while True:
        pc = fr.pc
        if pc == 0:
            L["cursor"] = L["start"]
            fr.pc = 1
            continue
        if pc == 1:
            L.pop("ret", None)
            cur, end = L["cursor"], L["end"]
            vma = k.mm.find_vma(cur) if cur < end else None
            if L.get("stop_at_hole") and cur < end and (vma is None or vma.vm_start > cur):
                # do_mprotect_pkey: a VMA that does not start where the previous
                # one ended, or no VMA before the end, is -ENOMEM: return the hole.
                k.ret(th, cur)
                return -1
            if vma is None or vma.vm_start >= end:
                k.ret(th)
                return -1
            s, e = max(cur, vma.vm_start), min(end, vma.vm_end)
            L["cursor"] = e
            newflags = (vma.vm_flags | L["set"]) & ~L["clear"]
            L["vid"], L["s"], L["e"], L["newflags"] = vma.vid, s, e, newflags
            if newflags == vma.vm_flags:
                continue
            plan = _merge_plan(k, vma, s, e, newflags)
            if plan is not None:
                lock, actions, target = plan
                L["vid"] = target
                fr.pc = 4
                k.emit("vma_merge", target, len(lock))
                _commit(k, th, lock, actions, "merge")
                return k.costs["vma_modify"]
            fr.pc = 2
            if s > vma.vm_start:
                # mprotect_fixup: split_vma(vmi, vma, start, 1): the unchanged head
                # becomes a new VMA; the original continues from ``start``.
                k.call(th, "__split_vma", vid=vma.vid, addr=s, new_below=True)
                return -1
            continue
        if pc == 2:
            L.pop("ret", None)
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 3
            if L["e"] < vma.vm_end:
                # split_vma(vmi, vma, end, 0): the unchanged tail becomes new.
                k.call(th, "__split_vma", vid=vma.vid, addr=L["e"], new_below=False)
                return -1
            continue
        if pc == 3:
            L.pop("ret", None)
            fr.pc = 4
            continue
        if pc == 4:
            L.pop("ret", None)
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 5
            # vm_flags_reset -> vma_start_write.
            if k.patch["vm_flags_write_lock"]:
                _start_write(k, th, vma)
                return -1
            continue
        if pc == 5:
            vma = k.mm.vmas[fr.loc["vid"]]
            k.check_modify_vma(th, vma, "vm_flags")
            old = vma.vm_flags
            vma.vm_flags = L["newflags"]
            fr.pc = 1
            cost = k.costs["plain_load"]
            if L.get("protect") and (old & M.VM_WRITE) and not (vma.vm_flags & M.VM_WRITE):
                # change_protection: rewrite the PTEs of the range.
                cost += len(vma.pages) * k.costs["change_protection_page"] + k.costs["tlb_flush"]
            k.emit("vm_flags_reset", vma.vid, vma.vm_flags)
            return cost


def _merge_plan(
    k: Kernel, vma: Vma, s: int, e: int, newflags: int
) -> tuple[list[int], list[tuple[Any, ...]], int] | None:
    """The ``vma_merge`` cases for changing ``[s, e)`` of ``vma`` to ``newflags``.

    Returns (VMAs ``vma_prepare`` locks, the plan, the surviving VMA) or None.
    """
    mm = k.mm
    prev = mm.vma_at(s - 1) if s == vma.vm_start and s else None
    nxt = mm.vma_at(e) if e == vma.vm_end else None
    mp = prev is not None and prev.vm_end == s and _flags_compatible(vma, prev, newflags)
    mn = nxt is not None and nxt.vm_start == e and _flags_compatible(vma, nxt, newflags)
    if mp and mn and not _anon_compatible(prev, nxt):
        mn = False
    whole = s == vma.vm_start and e == vma.vm_end
    if mp and prev is not None and whole:
        if mn and nxt is not None:
            return (
                [prev.vid, vma.vid, nxt.vid],
                [
                    ("bounds", prev.vid, prev.vm_start, nxt.vm_end),
                    ("remove", vma.vid),
                    ("remove", nxt.vid),
                    ("store", prev.vm_start, nxt.vm_end, prev.vid),
                ],
                prev.vid,
            )
        return (
            [prev.vid, vma.vid],
            [
                ("bounds", prev.vid, prev.vm_start, e),
                ("remove", vma.vid),
                ("store", prev.vm_start, e, prev.vid),
            ],
            prev.vid,
        )
    if mn and nxt is not None and whole:
        return (
            [nxt.vid, vma.vid],
            [
                ("bounds", nxt.vid, s, nxt.vm_end),
                ("remove", vma.vid),
                ("store", s, nxt.vm_end, nxt.vid),
            ],
            nxt.vid,
        )
    return None


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
            k.call(th, "mmap_write_lock")
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
            want = M.PROT_FLAGS[a["prot"]]
            fr.pc = 2
            k.call(
                th,
                "vma_modify_flags",
                start=start,
                end=end,
                set=want,
                clear=M.VM_ACCESS_FLAGS & ~want,
                protect=True,
                stop_at_hole=True,
            )
            return -1
        if pc == 2:
            hole = L.pop("ret", None)
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
    """``madvise``: read-lock advice runs under ``mmap_read_lock`` and locks no VMA;
    write-lock advice changes flags under the mmap write lock (``madvise_update_vma``).

    Unmapped parts of the range are skipped and the call returns ``-ENOMEM``
    (``madvise_walk_vmas``): the trace records ``madvise:enomem`` (``a``, ``b`` =
    the range) before the unlock.
    """
    L = fr.loc
    a = L["op"].args
    advice = a["advice"]
    write = advice in MADVISE_WRITE_FLAGS or advice in (
        "wipeonfork",
        "keeponfork",
        "dontdump",
        "dodump",
        "random",
        "sequential",
        "normal",
    )
    pc = fr.pc
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_write_lock" if write else "mmap_read_lock")
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
            bits = MADVISE_WRITE_FLAGS.get(advice, (0, 0))
            k.call(th, "vma_modify_flags", start=start, end=end, set=bits[0], clear=bits[1])
            k.emit("madvise:write_lock_advice", bits[0], bits[1])
            return k.costs["madvise_write"]
        cost = k.costs["madvise_read"]
        zapped = 0
        fill = []
        for vma in _overlapping(k, start, end):
            lo = max(0, (start - vma.vm_start) >> PAGE_SHIFT)
            hi = min(vma.npages, (end - vma.vm_start) >> PAGE_SHIFT)
            if advice in ("dontneed", "dontneed_locked", "free", "remove", "pageout"):
                # Only the mapped pages: the range may be far larger than the VMA's
                # populated part.
                for i in [i for i in vma.pages if lo <= i < hi]:
                    del vma.pages[i]
                    zapped += 1
            elif advice in ("populate_read", "populate_write", "willneed"):
                fill.append([vma.vid, lo, hi])
        if fill:
            L["fill"] = fill
            cost += _populate(k, fill) * k.costs["anon_page_alloc"]
            if fill:
                fr.pc = 6
        k.emit("madvise:read_lock_advice", zapped)
        return cost + zapped * k.costs["zap_page"]
    if pc == 6:
        # The populate goes on, PAGES_PER_STEP pages a step (the mmap read lock
        # is held throughout, so the VMAs stay).
        fill = L["fill"]
        vid = fill[0][0]
        done = _populate(k, fill)
        if not fill:
            fr.pc = 2
        k.emit("madvise:populate", vid, done)
        return done * k.costs["anon_page_alloc"]
    if pc == 2:
        L.pop("ret", None)
        if L.get("error") and not L.get("reported"):
            L["reported"] = True
            start, end = _range_of(k, a)
            k.emit("madvise:enomem", start, end)
            return k.costs["plain_load"]
        fr.pc = 3
        k.call(th, "mmap_write_unlock" if write else "mmap_read_unlock")
        return -1
    k.ret(th, L.get("error"))
    return -1


#: Pages one step maps at most (a populate, ``vm_insert_pages``): the work of one
#: step stays bounded however large the range is.
PAGES_PER_STEP = 16


def _populate(k: Kernel, fill: list[list[int]]) -> int:
    """Map the next (at most :data:`PAGES_PER_STEP`) missing pages of ``fill``.

    ``fill`` lists ``[vid, next page, end page]`` segments; it is consumed in
    place.  Returns how many pages it mapped.
    """
    done = 0
    while fill and done < PAGES_PER_STEP:
        seg = fill[0]
        pages = k.mm.vmas[seg[0]].pages
        while seg[1] < seg[2] and done < PAGES_PER_STEP:
            if seg[1] not in pages:
                pages[seg[1]] = M.PTE_PRESENT
                done += 1
            seg[1] += 1
        if seg[1] >= seg[2]:
            fill.pop(0)
    return done


@kfunc("userfaultfd_register", "fs/userfaultfd.c")
def op_uffd_register(k: Kernel, th: Thread, fr: Frame) -> int:
    """``UFFDIO_REGISTER``: merge/split, then ``userfaultfd_set_vm_flags`` -> ``vm_flags_reset``.

    A range without any VMA fails with ``-EINVAL`` (``userfaultfd_register``:
    ``vma_find`` returns NULL), recorded as ``userfaultfd_register:einval``.
    """
    L = fr.loc
    if fr.pc == 0:
        fr.pc = 1
        k.call(th, "mmap_write_lock")
        k.emit("syscall:uffdio_register")
        return k.costs["syscall"]
    if fr.pc == 1:
        start, end = k.names[L["op"].args["vma"]]
        fr.pc = 2
        if not _overlapping(k, start, end):
            # userfaultfd_register: vma_find(&vmi, end) finds nothing: -EINVAL.
            L["error"] = "EINVAL"
            k.emit("userfaultfd_register:einval", start, end)
            return k.costs["find_vma"]
        k.call(th, "vma_modify_flags", start=start, end=end, set=M.VM_UFFD_MISSING, clear=0)
        return -1
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
    """``mremap``: shrink (``do_vmi_munmap``), grow in place (``vma_expand``) or
    ``move_vma`` (lock the source, ``copy_vma`` + lock the copy, move the page
    tables, unmap the old range without downgrading).

    The old range is the name's last range.  As in 6.4's ``mremap`` syscall it
    fails with ``-EFAULT`` when no VMA holds the old address (``vma_lookup``) or,
    for a grow or a move, when the range crosses the end of that VMA
    (``vma_to_resize``), and with ``-ENOMEM`` when a move finds no free range
    (``get_unmapped_area``).  A failed mremap leaves its new name without an
    address (ops on it are then not issued, see ``kernel.unmapped_name``).
    """
    L = fr.loc
    a = L["op"].args
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock")
            k.emit("syscall:mremap", int(a["new_pages"]))
            return k.costs["syscall"]
        if pc == 1:
            start, end = k.names[a["vma"]]
            vma = k.mm.vma_at(start)
            new_len = int(a["new_pages"]) * PAGE_SIZE
            old_len = end - start
            move = bool(a.get("move"))
            if vma is None:
                # vma_lookup(mm, addr) finds no VMA at the old address: -EFAULT.
                L["error"] = "EFAULT"
                fr.pc = 20
                k.emit("mremap:efault", start, old_len)
                return k.costs["find_vma"]
            L["vid"], L["start"], L["old_end"], L["new_end"] = vma.vid, start, end, start + new_len
            if new_len == old_len and not move:
                # Equal lengths take the shrink branch: unmapping an empty range
                # fails with -EINVAL, which mremap ignores when the lengths are
                # equal; it returns the old address and changes nothing.
                fr.pc = 20
                k.emit("mremap:same_size", vma.vid)
                return k.costs["find_vma"]
            if new_len < old_len and not move:
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
            if start + new_len > end and free_after and not move and vma.vm_end == end:
                fr.pc = 20
                k.names[a.get("name") or a["vma"]] = (start, start + new_len)
                # vma_merge of the extension: the VMA keeps its start (the name may
                # be only the tail part of it) and grows to the new end.
                _commit(
                    k,
                    th,
                    [vma.vid],
                    [
                        ("bounds", vma.vid, vma.vm_start, start + new_len),
                        ("store", vma.vm_start, start + new_len, vma.vid),
                    ],
                    "expand",
                )
                k.emit("mremap:expand_in_place", vma.vid)
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
            # move_vma: vma_start_write(vma) before copy_vma.
            vma = k.mm.vmas[fr.loc["vid"]]
            fr.pc = 6
            _start_write(k, th, vma)
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
            new = k.mm.vma_dup(vma, a.get("name") or vma.name)
            new.vm_start, new.vm_end = dest, dest + new_len
            L["new"], L["dest"] = new.vid, dest
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
            off = (L["start"] - vma.vm_start) >> PAGE_SHIFT
            moved = {i - off: s for i, s in vma.pages.items() if i >= off}
            new.pages = {i: s for i, s in moved.items() if i < new.npages}
            k.check_modify_vma(th, vma, "page tables")
            vma.pages = {i: s for i, s in vma.pages.items() if i < off}
            fr.pc = 9
            k.emit("move_page_tables", vma.vid, len(new.pages))
            return k.costs["free_pgtables"] + len(new.pages) * k.costs["change_protection_page"]
        if pc == 9:
            fr.pc = 10
            k.call(th, "do_vmi_align_munmap", start=L["start"], end=L["old_end"], downgrade=False)
            return -1
        if pc == 10:
            L.pop("ret", None)
            new = k.mm.vmas[L["new"]]
            k.names[a.get("name") or a["vma"]] = (new.vm_start, new.vm_end)
            fr.pc = 20
            continue
        return _unlock_and_return(k, th, fr)


# =====================================================================
# brk (mm/mmap.c)
# =====================================================================


@kfunc("brk", "mm/mmap.c")
def op_brk(k: Kernel, th: Thread, fr: Frame) -> int:
    """``brk``: grow with ``do_brk_flags`` (expand the brk VMA or insert a new one,
    then ``vm_flags_set``), shrink with ``do_vma_munmap(downgrade=true)``.
    """
    L = fr.loc
    delta = int(L["op"].args["pages"]) * PAGE_SIZE
    mm = k.mm
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock")
            k.emit("syscall:brk", delta)
            return k.costs["syscall"]
        if pc == 1:
            old, new = mm.brk, max(mm.brk_start, mm.brk + delta)
            L["old"], L["new"] = old, new
            if new < old:
                fr.pc = 2
                k.call(th, "do_vmi_align_munmap", start=new, end=old, downgrade=True)
                k.emit("brk:shrink", old - new)
                return k.costs["find_vma"]
            if new == old or _overlapping(k, old, new):
                fr.pc = 20
                continue
            prev = mm.vma_at(old - 1) if old > mm.brk_start else None
            flags = M.VM_READ | M.VM_WRITE | M.VM_MAYREAD | M.VM_MAYWRITE | M.VM_MAYEXEC
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


@kfunc("dup_mmap", "kernel/fork.c")
def op_fork(k: Kernel, th: Thread, fr: Frame) -> int:
    """``dup_mmap``: copy every VMA under the parent's mmap write lock; write-protect
    private anonymous pages for COW.  6.4.0 does not write-lock the parent VMAs
    (R-F1); ``fix_fork_lock_parent`` adds the 6.4.3 ``vma_start_write`` per VMA.
    """
    L = fr.loc
    while True:
        pc = fr.pc
        if pc == 0:
            fr.pc = 1
            k.call(th, "mmap_write_lock")
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
            cost = k.costs["copy_vma_fork"]
            if vma.is_anonymous and not vma.vm_flags & M.VM_SHARED and vma.pages:
                # copy_present_pte write-protects the parent's PTEs.
                if vma.vm_lock.readers:
                    k.violate(
                        4,
                        f"dup_mmap write-protects {vma.label()}'s PTEs during a "
                        "VMA-locked fault (R-F1)",
                    )
                for i, s in vma.pages.items():
                    if s == M.PTE_PRESENT:
                        vma.pages[i] = M.PTE_WP
                cost += len(vma.pages) * k.costs["change_protection_page"]
            L["copied"] += 1
            fr.pc = 2
            k.emit("dup_mmap:copy_vma", vma.vid, len(vma.pages))
            return cost
        if pc == 4:
            fr.pc = 5
            k.call(th, "mmap_write_unlock")
            k.emit("dup_mmap:flush_tlb", L["copied"])
            return k.costs["tlb_flush"]
        k.ret(th)
        return -1


@kfunc("do_exit", "kernel/exit.c")
def op_exit(k: Kernel, th: Thread, fr: Frame) -> int:
    """The thread exits; the last one runs ``exit_mmap`` (no RCU for the VMAs, reference §6.3)."""
    L = fr.loc
    if fr.pc == 0:
        # Only here: a scan of every thread on each exit_mmap step would cost
        # O(threads) a step.
        others = [t for t in k.threads if t.tid != th.tid and t.done_ns < 0]
        if others:
            k.emit("do_exit", len(others))
            th.pc_stack = []
            k.ret(th)
            return k.costs["syscall"]
        fr.pc = 1
        k.call(th, "mmap_write_lock")
        k.emit("exit_mmap", len(k.mm.live_vmas()))
        return k.costs["syscall"]
    if fr.pc == 1:
        k.mm.mm_mt.in_rcu = False  # mt_clear_in_rcu
        L["todo"] = [v.vid for v in k.mm.live_vmas()]
        fr.pc = 2
    if fr.pc == 2:
        if L["todo"]:
            vma = k.mm.vmas[L["todo"][0]]
            if k.per_vma and not k.mm.is_write_locked(vma):
                _start_write(k, th, vma)  # free_pgtables(..., mm_wr_locked=true)
                return -1
            L["todo"].pop(0)
            cost = len(vma.pages) * k.costs["zap_page"] + k.costs["vma_modify"]
            vma.pages = {}
            _store(k, vma.vm_start, vma.vm_end, None)
            k.mm.map_count -= 1
            vma.detached = True
            k._vm_area_free_rcu_cb(vma)  # __vm_area_free: immediately
            k.vmas_freed += 1
            k.emit("exit_mmap:remove_vma", vma.vid)
            return cost
        fr.pc = 3
        k.call(th, "mmap_write_unlock")
        return -1
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
        if i in vma.pages:
            vma.pages[i] = M.PTE_SWAP
    k.emit("try_to_unmap:swap_entry", vid, i)
    return cost


@kfunc("collapse_huge_page", "mm/khugepaged.c")
def op_khugepaged(k: Kernel, th: Thread, fr: Frame) -> int:
    """khugepaged: scan under the mmap read lock, allocate, then ``mmap_write_lock`` +
    ``vma_start_write`` before the anon_vma lock and the PMD collapse ([v3 15/35]).
    """
    L = fr.loc
    pc = fr.pc
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_read_lock")
        k.emit("khugepaged:scan")
        return k.costs["plain_load"]
    if pc == 1:
        fr.pc = 2
        k.call(th, "mmap_read_unlock")
        k.emit("khugepaged:hugepage_vma_revalidate")
        return k.costs["find_vma"]
    if pc == 2:
        fr.pc = 3
        k.call(th, "mmap_write_lock")
        k.emit("khugepaged:alloc_huge_page")
        return k.costs["anon_page_alloc"] * 8
    if pc == 3:
        vma = k.mm.vma_at(k.resolve(L["op"].args["vma"]))
        fr.pc = 4
        if vma is None:
            return -1
        L["vid"] = vma.vid
        _start_write(k, th, vma)
        return -1
    if pc == 4:
        fr.pc = 5
        if "vid" in L:
            vma = k.mm.vmas[fr.loc["vid"]]
            k.check_modify_vma(th, vma, "page tables (collapse)")
            k.emit("collapse_huge_page:pmdp_collapse_flush", vma.vid)
            return k.costs["khugepaged_collapse"]
        return -1
    if pc == 5:
        fr.pc = 6
        k.call(th, "mmap_write_unlock")
        return -1
    k.ret(th)
    return -1


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


@kfunc("show_map", "fs/proc/task_mmu.c")
def op_read_proc_maps(k: Kernel, th: Thread, fr: Frame) -> int:
    """``/proc/pid/maps``: ``m_start`` takes the mmap read lock, held while walking the VMAs."""
    L = fr.loc
    pc = fr.pc
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_read_lock")
        k.emit("syscall:read:/proc/pid/maps")
        return k.costs["syscall"]
    if pc == 1:
        L["todo"] = [v.vid for v in k.mm.live_vmas()]
        fr.pc = 2
    if pc in (1, 2):
        if L["todo"]:
            vid = L["todo"].pop(0)
            per = L["op"].args.get("ns_per_vma")
            k.emit("show_map_vma", vid)
            return int(per) if per is not None else k.costs["proc_maps_per_vma"]
        fr.pc = 3
        k.call(th, "mmap_read_unlock")
        return -1
    k.ret(th)
    return -1


OP_ENTRY.update(
    {
        "mmap": "mmap_region",
        "munmap": "__vm_munmap",
        "mprotect": "do_mprotect_pkey",
        "madvise": "do_madvise",
        "uffd_register": "userfaultfd_register",
        "mremap": "mremap",
        "brk": "brk",
        "fork": "dup_mmap",
        "exit": "do_exit",
        "swap_out": "shrink_folio_list",
        "khugepaged_collapse": "collapse_huge_page",
        "mmu_notifier_register": "__mmu_notifier_register",
        "tcp_zerocopy_receive": "tcp_zerocopy_receive",
        "read_proc_maps": "show_map",
    }
)
