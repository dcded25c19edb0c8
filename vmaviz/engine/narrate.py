"""Plain-language explanations of single steps, and a glossary of the ideas behind them.

:func:`narrate` turns one trace row (event code, arguments, thread, kernel stack)
into a :class:`Narration`: a one-line title, a paragraph saying what the kernel
function did and why, the function's name and its kernel source file.  When the
kernel state before (and after) the step is given it also names what the row
alone cannot: the VMA's name, ``mm_lock_seq``, the thread holding ``mmap_lock``
for write, who waits.  Without it the text falls back on what the trace records
(the writer of a write-locked VMA is found by searching the trace backwards).

Texts use Markdown code spans for kernel identifiers.  Facts follow the kernel
model reference (``/work/shared/reference/kernel-model.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vmaviz.engine.export import lock_effect, split_note, synced_trace, thread_names
from vmaviz.model.kernel import ARCH_HANDLER, OP_ENTRY, STEPS

if TYPE_CHECKING:
    from vmaviz.engine.engine import Engine, Trace
    from vmaviz.model.kernel import Kernel


@dataclass(frozen=True)
class Narration:
    """What one step did, for people.

    Attributes:
        title: One line of plain text, e.g. "vma_start_read fails: B is write-locked".
        text: A paragraph (Markdown code spans) explaining the step.
        function: The kernel function that took the step.
        source: Its kernel source file (from :data:`vmaviz.model.kernel.STEPS`).
        reason: Why it happened / why the kernel does it, in one sentence.
    """

    title: str
    text: str
    function: str
    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


#: Kernel functions that appear in event codes but are not modelled as step functions.
_SOURCES = {
    "mas_walk": "lib/maple_tree.c",
    "find_vma": "mm/mmap.c",
    "set_pte_at": "arch/x86/include/asm/pgtable.h",
    "do_anonymous_page": "mm/memory.c",
    "handle_pte_fault": "mm/memory.c",
    "do_swap_page": "mm/memory.c",
    "do_wp_page": "mm/memory.c",
    "do_fault": "mm/memory.c",
    "handle_userfault": "fs/userfaultfd.c",
    "anon_vma_prepare": "include/linux/rmap.h",
    "expand_stack": "mm/mmap.c",
    "vma_mark_detached": "include/linux/mm.h",
    "vma_iter_clear": "mm/internal.h",
    "unmap_region": "mm/mmap.c",
    "remove_mt": "mm/mmap.c",
    "vm_area_alloc": "kernel/fork.c",
    "vma_link": "mm/mmap.c",
    "vm_flags_set": "include/linux/mm.h",
    "vm_flags_reset": "include/linux/mm.h",
    "replace_anon_vma_name": "mm/madvise.c",
    "madvise_vma_anon_name": "mm/madvise.c",
    "change_protection": "mm/mprotect.c",
    "get_unmapped_area": "mm/mmap.c",
    "vma_complete": "mm/mmap.c",
    "vma_merge": "mm/mmap.c",
    "vma_expand": "mm/mmap.c",
    "copy_vma": "mm/mmap.c",
    "move_page_tables": "mm/mremap.c",
    "move_vma": "mm/mremap.c",
    "do_brk_flags": "mm/mmap.c",
    "exit_mmap": "mm/mmap.c",
    "try_to_unmap": "mm/rmap.c",
    "mm_take_all_locks": "mm/mmap.c",
    "mm_drop_all_locks": "mm/mmap.c",
    "vm_insert_pages": "mm/memory.c",
    "show_map_vma": "fs/proc/task_mmu.c",
    "rcu_core": "kernel/rcu/tree.c",
}
#: Event-code prefixes that name a function by another name.
_ALIASES = {"do_vmi_munmap": "do_vmi_align_munmap", "rcu": "rcu_core", "exit": "do_exit"}
_ENTRY_OP = {entry: kind for kind, entry in OP_ENTRY.items()}

ABORT_WHY = {
    "no_vma": "no VMA covers the address: the walk found a NULL range (a gap, or a range "
    "just unmapped)",
    "not_anonymous": "the VMA is file-backed (it has `vm_ops`); 6.4 handles only anonymous "
    "VMAs under the VMA lock",
    "no_anon_vma": "the VMA has no `anon_vma` yet (its first fault); `anon_vma_prepare` "
    "needs `mmap_lock`",
    "vma_locked": "`vma_start_read` found the VMA write-locked (`vm_lock_seq == mm_lock_seq`)",
    "trylock_failed": "`down_read_trylock` on the VMA's `vm_lock` failed: a writer holds it or "
    "waits for it",
    "uffd_armed": "userfaultfd is armed on the VMA; 6.4 handles userfaults only under `mmap_lock`",
    "out_of_range": "after locking, the address is no longer inside the VMA (it shrank, moved "
    "or is being freed)",
}

GLOSSARY: dict[str, str] = {
    "mmap_lock": "The per-process `rw_semaphore` (`mm->mmap_lock`) that protects the list of "
    "VMAs. Page faults take it for read; `mmap`, `munmap`, `mprotect` and friends take it for "
    "write. Before Linux 6.4 every fault took it, so one writer stalled every fault in the "
    "process, and the shared lock word bounced between CPUs.",
    "per-VMA lock": "Linux 6.4 (`CONFIG_PER_VMA_LOCK`) gives every VMA its own `vm_lock` "
    "rw_semaphore. A fault finds its VMA without `mmap_lock` (`lock_vma_under_rcu`), "
    "read-locks just that VMA and handles the fault; faults on other VMAs, or a writer "
    "changing other VMAs, no longer get in the way. When that is not possible it falls back "
    "to `mmap_lock`.",
    "mm_lock_seq / vm_lock_seq": "How a VMA is write-locked without holding a lock: "
    "`mm->mm_lock_seq` counts `mmap_lock` write sections; `vma_start_write` sets the VMA's "
    "`vm_lock_seq` to it. While they are equal the VMA is write-locked and `vma_start_read` "
    "fails. `mmap_write_unlock` (via `vma_end_write_all`) adds one to `mm_lock_seq`, which "
    "unlocks every VMA locked in that section at once.",
    "lock_vma_under_rcu": "The fault's fast path (mm/memory.c): inside an RCU read section, "
    "walk the maple tree to the VMA, check it is anonymous with an `anon_vma`, "
    "`vma_start_read` it, check userfaultfd, the bounds and `detached`, and return it "
    "read-locked. Any failure returns NULL (VMA_LOCK_ABORT) and the fault takes `mmap_lock`.",
    "RCU": "Read-copy-update: readers mark a read-side section (`rcu_read_lock`) and take no "
    "lock; writers never free memory a reader might still see, but queue the free with "
    "`call_rcu`. `lock_vma_under_rcu` relies on it: the VMA and maple nodes it walks cannot "
    "be freed under it, even if `munmap` removes them at that very moment.",
    "grace period": "The wait between `call_rcu` and the free. A grace period ends only "
    "after every thread that was inside an RCU read section when it started has left it. "
    "Frees queued while grace period n runs wait for grace period n+1, which starts when n "
    "ends; its callbacks then run together. Freed VMAs and replaced maple nodes stay "
    "readable until then.",
    "maple tree": "The B-tree of address ranges (`mm->mm_mt`) that holds the VMAs since "
    "Linux 6.1. Leaves (`maple_leaf_64`, shown as leaf64, 16 slots) map ranges to VMAs or "
    "NULL (free); internal nodes (`maple_arange_64`, shown as arange64, 10 slots) also "
    "record the largest free gap below each child for "
    "`get_unmapped_area`. Pivots are the last address each slot covers.",
    "dead node": "In RCU mode the maple tree never changes a node a reader may be walking: "
    "it builds a new node, publishes it, and marks the old one dead. A reader that lands on a "
    "dead node restarts its walk from the root. The dead node is freed after a grace period.",
    "VMA_LOCK_SUCCESS": "The fault was handled under the VMA lock alone (`handle_mm_fault` "
    "did not return `VM_FAULT_RETRY`).",
    "VMA_LOCK_ABORT": "`lock_vma_under_rcu` gave up (no VMA, not anonymous, no `anon_vma`, "
    "VMA write-locked, trylock failed, userfaultfd, out of range) and the fault fell back to "
    "`mmap_lock`. Counted once per attempt.",
    "VMA_LOCK_RETRY": "The fault got the VMA lock, but `handle_mm_fault` returned "
    "`VM_FAULT_RETRY` (in 6.4: a swapped-out page, `do_swap_page`), so the fault is redone "
    "under `mmap_lock`.",
    "VMA_LOCK_MISS": "`lock_vma_under_rcu` locked a VMA that had just been detached (removed "
    "from the tree by `munmap`); it unlocks it and walks the tree again inside the same RCU "
    "section. Can happen more than once per fault.",
    "detached": "`vma->detached` is set when `munmap` (or a merge) removes the VMA from the "
    "tree, while it is write-locked. An RCU reader that found the VMA before that sees the "
    "flag after locking it and retries (VMA_LOCK_MISS).",
    "anon_vma": "The reverse-mapping object of an anonymous VMA, created on its first fault "
    "(`anon_vma_prepare`). 6.4's fast path refuses a VMA without one, because creating it "
    "needs `mmap_lock`: the first fault of every VMA falls back.",
    "downgrade": "`mmap_write_downgrade` turns a held write lock into a read lock without "
    "letting go (`munmap` does it before zapping pages). It calls `vma_end_write_all` first, "
    "so every write-locked VMA is unlocked; queued readers may now join.",
    "handoff": "A waiter on an rw_semaphore that has waited too long (about 4 ms) sets the "
    "handoff bit: from then on only the first waiter may take the lock next; readers can no "
    "longer steal, spinning writers can no longer take it, and trylocks fail.",
    "reader stealing": "A reader arriving at an rw_semaphore that no writer holds may take it "
    "even though others are queued (no handoff set); right after a writer leaves this lets "
    "readers in without waiting their turn.",
    "spinning": "Optimistic spinning: a writer that finds the lock held by a writer running "
    "on another CPU, owned by readers (for (20 + readers) / 2 us at most), or free with "
    "waiters queued keeps polling on its CPU instead of sleeping, betting the lock frees up "
    "soon. It takes a free lock even ahead of queued waiters (writer lock stealing) unless "
    "the handoff bit is set. A spin that times out on readers sets RWSEM_NONSPINNABLE, and "
    "later writers queue at once until the readers are gone.",
}


def _ns(ns: float) -> str:
    v = float(ns)
    if abs(v) < 1_000:
        return f"{v:.0f} ns"
    if abs(v) < 1_000_000:
        return f"{v / 1e3:.2f} µs"
    return f"{v / 1e6:.2f} ms"


def _np_col(col: Any) -> Any:
    if not len(col):
        return np.zeros(0, dtype=np.int64)
    return np.frombuffer(col, dtype=np.dtype(col.typecode))


class _Ctx:
    """Everything a sentence may need about one step, looked up lazily."""

    def __init__(
        self,
        engine: Engine,
        t: Trace,
        step: int,
        kb: Kernel | None,
        ka: Kernel | None,
    ) -> None:
        self.e = engine
        self.t = t
        self.step = step
        self.kb = kb
        self.ka = ka
        row = t.row(step)
        self.row = row
        self.code: str = row["event"]
        self.a: int = row["a"]
        self.b: int = row["b"]
        self.tid: int = row["tid"]
        self.stack: list[str] = row["stack"]
        #: The note, and the readers this step granted a lock to (they hold it now).
        self.note, self.grants = split_note(row["note"])
        self.names = thread_names(engine)
        self.who = self.tname(self.tid)
        self.per_vma = engine.mode == "per_vma"

    # ------------------------------------------------------------ naming

    def tname(self, tid: int | None) -> str:
        if tid is None:
            return "nobody"
        if tid < 0:
            return "the RCU callbacks"
        return self.names.get(tid, f"T{tid}")

    def kernel(self) -> Kernel:
        return self.kb or self.ka or self.e.k

    def vma_name(self, vid: int) -> str:
        for k in (self.kb, self.ka, self.e.k):
            if k is not None:
                v = k.mm.vmas.get(vid)
                if v is not None:
                    return v.name
                if vid in k.mm.freed_names:
                    return k.mm.freed_names[vid]
        return ""

    def vma(self, vid: int) -> str:
        """``B`` (vma2), or vma2 when the name is unknown."""
        name = self.vma_name(vid)
        return f"`{name}` (vma{vid})" if name else f"vma{vid}"

    def lock(self, key: int) -> str:
        return "`mmap_lock`" if key == 0 else f"the VMA lock of {self.vma(key)}"

    def op_of(self, tid: int) -> str:
        """The scenario op a thread is running (``mprotect``), from the state or the trace."""
        k = self.kb or self.ka
        if k is not None and 0 <= tid < len(k.threads):
            for f in k.threads[tid].frames:
                op = f.loc.get("op")
                if op is not None:
                    return str(op.kind)
        if tid == self.tid and self.stack:
            return _ENTRY_OP.get(self.stack[0], self.stack[0])
        tids = _np_col(self.t.tid)[: self.step]
        hits = np.flatnonzero(tids == tid)
        if len(hits):
            st = self.t.stacks[self.t.stack[int(hits[-1])]]
            if st:
                return _ENTRY_OP.get(st[0], st[0])
        return ""

    def thread_with_op(self, tid: int | None) -> str:
        if tid is None:
            return "nobody"
        op = self.op_of(tid)
        return f"{self.tname(tid)} ({op})" if op else self.tname(tid)

    # ----------------------------------------------------------- lookups

    def mm_lock_seq(self) -> int | None:
        k = self.kb or self.ka
        return k.mm.mm_lock_seq if k is not None and self.per_vma else None

    def mmap_writer(self) -> int | None:
        """The thread holding mmap_lock for write when the step ran."""
        if self.kb is not None:
            return self.kb.mm.mmap_lock.writer
        t = self.t
        acq = [
            ci
            for ci, c in enumerate(t.codes)
            if (eff := lock_effect(c)) is not None and eff[0] == "write_acquire"
        ]
        rel = [
            ci
            for ci, c in enumerate(t.codes)
            if (eff := lock_effect(c)) is not None
            and eff[0] in ("write_release", "downgrade")
            and eff[1] == 0
        ]
        code = _np_col(t.code)[: self.step]
        a = _np_col(t.a)[: self.step]
        got = np.flatnonzero(np.isin(code, acq) & (a == 0))
        if not len(got):
            return None
        gone = np.flatnonzero(np.isin(code, rel))
        if len(gone) and gone[-1] > got[-1]:
            return None
        return int(t.tid[int(got[-1])])

    def vma_writer(self, vid: int) -> int | None:
        """Who write-locked ``vid`` most recently (its last ``vma_start_write:seq_set``)."""
        ci = self.t.code_ix.get("vma_start_write:seq_set")
        if ci is None:
            return None
        code = _np_col(self.t.code)[: self.step]
        a = _np_col(self.t.a)[: self.step]
        hits = np.flatnonzero((code == ci) & (a == vid))
        return int(self.t.tid[int(hits[-1])]) if len(hits) else None

    def sem_desc(self, key: int) -> str:
        """Who holds and who waits for lock ``key``, from the state before the step."""
        k = self.kb
        if k is None:
            return ""
        sem = k.mm.mmap_lock if key == 0 else (k.mm.vmas[key].vm_lock if key in k.mm.vmas else None)
        if sem is None:
            return ""
        parts = []
        if sem.writer is not None:
            parts.append(f"{self.thread_with_op(sem.writer)} holds it for write")
        if sem.reader_tids:
            readers = ", ".join(self.tname(t) for t in dict.fromkeys(sem.reader_tids))
            parts.append(f"{readers} hold{'s' if len(sem.reader_tids) == 1 else ''} it for read")
        if sem.waiters:
            queue = ", ".join(
                f"{self.tname(w.tid)} ({'write' if w.kind == 'w' else 'read'})" for w in sem.waiters
            )
            parts.append(f"queued: {queue}")
        return "; ".join(parts)


# =====================================================================
# Function name and source file of a step
# =====================================================================


def step_function(code: str, stack: list[str] | tuple[str, ...]) -> tuple[str, str]:
    """The kernel function a step belongs to and its source file.

    The event code's prefix names the function when it is one (``mas_walk:descend``
    is ``mas_walk``); otherwise the innermost function on the stack took the step.
    """
    prefix = code.split(":", 1)[0]
    prefix = _ALIASES.get(prefix, prefix)
    inner = stack[-1] if stack else ""
    if (prefix in STEPS and (prefix == inner or not inner)) or prefix in _SOURCES:
        fn = prefix
    elif inner:
        fn = inner
    else:
        fn = prefix
    if fn in STEPS:
        return fn, STEPS[fn][1]
    return fn, _SOURCES.get(fn, "")


# =====================================================================
# Sentences per event-code family
# =====================================================================

_Out = tuple[str, str, str]  # title, text, reason


def _fault(c: _Ctx, sub: str) -> _Out:
    who, a = c.who, c.a
    handler = ARCH_HANDLER.get(c.e.arch, "the fault handler")
    if sub == "entry":
        vma = ""
        k = c.kb or c.ka
        if k is not None:
            v = k.mm.vma_at(a)
            if v is not None:
                vma = f" in {c.vma(v.vid)}"
        if c.b == 0:
            path = (
                "It is a kernel-mode access (like `copy_from_user`): 6.4 never uses the VMA "
                "lock for those, so it goes straight to `mmap_lock`."
            )
        elif c.per_vma:
            path = (
                "With per-VMA locks it first tries `lock_vma_under_rcu`, which finds and "
                "locks just this VMA without touching `mmap_lock`."
            )
        else:
            path = "Without per-VMA locks it must take `mmap_lock` for read first."
        return (
            f"{who} page-faults at {a:#x}",
            f"{who} touches address `{a:#x}`{vma}, which has no usable page-table entry, so "
            f"the CPU traps into `{handler}`. {path}",
            "a user access hit a page that is not mapped (yet) or not writable",
        )
    if sub == "vma_access_ok":
        return (
            f"{who}: access allowed on {c.vma(a)}",
            f"`{handler}` checks the access against {c.vma(a)}'s flags and calls "
            "`handle_mm_fault` with `FAULT_FLAG_VMA_LOCK`: only the VMA lock is held.",
            "the VMA permits this access",
        )
    if sub == "vma_access_error":
        return (
            f"{who}: access not allowed on {c.vma(a)}",
            f"The VMA-locked fault found that {c.vma(a)} does not permit this access. It "
            "releases the VMA lock (`vma_end_read`) and redoes the fault under `mmap_lock`, "
            "which repeats the check and delivers the signal. Nothing is counted.",
            "6.4 lets the slow path report access errors",
        )
    if sub == "vma_lock_success":
        return (
            f"{who}: fault done under the VMA lock (VMA_LOCK_SUCCESS)",
            f"`handle_mm_fault` returned without `VM_FAULT_RETRY` and the VMA lock of "
            f"{c.vma(a)} was released: the whole fault ran without `mmap_lock`. Counted as "
            "VMA_LOCK_SUCCESS.",
            "nothing in this fault needed `mmap_lock`",
        )
    if sub == "vma_lock_retry":
        return (
            f"{who}: VMA_LOCK_RETRY, redo under mmap_lock",
            f"`handle_mm_fault` returned `VM_FAULT_RETRY` under the VMA lock of {c.vma(a)} "
            "(in 6.4: the page is in swap, `do_swap_page`). The VMA lock was released; the "
            "fault is redone under `mmap_lock`. Counted as VMA_LOCK_RETRY.",
            "swap-in may sleep and drop locks, which 6.4 allows only under `mmap_lock`",
        )
    if sub == "mmap_read_trylock_ok":
        return (
            f"{who} takes mmap_lock for read (trylock)",
            f"`mmap_read_trylock` succeeded: no writer holds `mmap_lock` and nobody is "
            f"queued. {who} now looks the VMA up with `find_vma` under `mmap_lock`.",
            "the fault's slow path needs `mmap_lock` to find and use the VMA",
        )
    if sub == "mmap_read_trylock_failed":
        desc = c.sem_desc(0)
        writer = c.mmap_writer()
        held = (
            f" {desc}."
            if desc
            else (f" {c.thread_with_op(writer)} holds it for write." if writer is not None else "")
        )
        return (
            f"{who}: mmap_read_trylock fails, will wait",
            f"`mmap_read_trylock` failed: `mmap_lock` is held for write or has waiters.{held} "
            f"{who} calls `mmap_read_lock`, which sleeps until it gets the lock (in 6.4.0 "
            "not even a fatal signal can interrupt it).",
            "a trylock fails whenever a writer holds the lock or anyone is queued",
        )
    if sub in ("access_ok", "bad_area_access_error"):
        ok = sub == "access_ok"
        return (
            f"{who}: access {'allowed' if ok else 'refused'} on {c.vma(a)} (mmap_lock path)",
            f"Under `mmap_lock`, the handler checks the access against {c.vma(a)}'s flags"
            + (
                " and calls `handle_mm_fault` without `FAULT_FLAG_VMA_LOCK`."
                if ok
                else ": not permitted, so the fault ends in `bad_area` (SIGSEGV)."
            ),
            "the VMA's flags decide which accesses are legal",
        )
    if sub == "bad_area_sigsegv":
        return (
            f"{who}: no VMA at {a:#x}: SIGSEGV",
            f"`find_vma` found no VMA covering `{a:#x}` (or the access is not allowed). "
            f"The fault releases `mmap_lock` and would deliver SIGSEGV to {who}.",
            "the address is not mapped (for example it was just unmapped)",
        )
    if sub == "done":
        return (
            f"{who}'s fault is done",
            f"The {handler} returns to user space after {_ns(c.b)}.",
            "the faulting access will now succeed when retried",
        )
    if sub == "signal_pending_quick_exit":
        return (
            f"{who} returns to handle a signal",
            f"`handle_mm_fault` returned `VM_FAULT_RETRY` under the VMA lock and a signal "
            f"is pending (`fault_signal_pending`): the {handler} returns at once instead of "
            "retrying under `mmap_lock`; the access is retried after the signal.",
            "a task with a pending signal should not block on `mmap_lock`",
        )
    if sub == "done_mmap_lock":
        return (
            f"{who}: fault done under mmap_lock",
            f"The fault on {c.vma(a)} finished on the slow path and released `mmap_lock`.",
            "the fault could not (or, without per-VMA locks, cannot) use the VMA lock",
        )
    if sub == "retry_tried":
        return (
            f"{who}: VM_FAULT_RETRY, retry with FAULT_FLAG_TRIED",
            f"`handle_mm_fault` dropped `mmap_lock` and asked for a retry (it waited for "
            f"I/O or userfaultfd); {who} takes `mmap_lock` again and redoes the fault.",
            "the callee had to sleep without holding `mmap_lock`",
        )
    return _generic(c)


def _lvur(c: _Ctx, sub: str) -> _Out:
    who, a = c.who, c.a
    if sub == "rcu_read_lock":
        return (
            f"{who} enters an RCU read section",
            f"`lock_vma_under_rcu` starts with `rcu_read_lock()`: until {who} leaves the "
            "section, no VMA or maple node it finds can be freed, even if another thread "
            "unmaps it right now. It then walks the maple tree for the address.",
            "the lookup takes no lock, so RCU must keep what it reads alive",
        )
    if sub.startswith("abort:"):
        reason = sub.split(":", 1)[1]
        why = ABORT_WHY.get(reason, reason)
        extra = ""
        if reason == "vma_locked" and a:
            holder = c.mmap_writer() if c.kb is not None else c.vma_writer(a)
            if holder is not None:
                extra = f" {c.thread_with_op(holder)} holds it write-locked."
        return (
            f"{who}: lock_vma_under_rcu gives up ({reason}), fall back to mmap_lock",
            f"VMA_LOCK_ABORT ({reason}): {why}.{extra} `lock_vma_under_rcu` leaves the RCU "
            f"section and returns NULL, so {who} falls back to `mmap_lock`.",
            why,
        )
    texts = {
        "anonymous": (
            f"{c.vma(a)} is anonymous",
            f"The walk found {c.vma(a)}. It has no `vm_ops` (anonymous memory), which 6.4's "
            "fast path requires.",
            "6.4 handles only anonymous VMAs under the VMA lock",
        ),
        "anon_vma_ok": (
            f"{c.vma(a)} already has an anon_vma",
            f"{c.vma(a)} has its `anon_vma` (it was faulted before), so no `mmap_lock` is "
            "needed to set one up. Next: `vma_start_read`.",
            "creating an `anon_vma` needs `mmap_lock`",
        ),
        "not_uffd": (
            f"{c.vma(a)} has no userfaultfd",
            f"{c.vma(a)} is read-locked and not registered with userfaultfd.",
            "6.4 handles userfaults only under `mmap_lock`",
        ),
        "uffd_armed": (
            f"{c.vma(a)} is registered with userfaultfd",
            f"{c.vma(a)} is read-locked but userfaultfd is armed on it: `vma_end_read`, "
            "then give up.",
            "6.4 handles userfaults only under `mmap_lock`",
        ),
        "in_range": (
            f"the address is still inside {c.vma(a)}",
            f"After locking, {who} re-checks that the address is inside {c.vma(a)}'s "
            "`[vm_start, vm_end)`: the VMA did not shrink or move between the walk and the "
            "lock.",
            "the bounds can change between the lock-free walk and `vma_start_read`",
        ),
        "out_of_range": (
            f"the address is outside {c.vma(a)} now",
            f"{c.vma(a)} changed (or is being freed) after the walk found it: the address is "
            "no longer inside it. `vma_end_read`, then give up.",
            "the bounds can change between the lock-free walk and `vma_start_read`",
        ),
        "attached": (
            f"{c.vma(a)} is still attached",
            f"{c.vma(a)}'s `detached` flag is clear: no `munmap` removed it from the tree.",
            "a detached VMA must not be used",
        ),
        "detached": (
            f"{c.vma(a)} was detached",
            f"{c.vma(a)} was locked, but it has been removed from the tree (`detached`) "
            "since the walk found it: `vma_end_read` and look again.",
            "`munmap` removed the VMA after the RCU walk found it",
        ),
        "miss_retry": (
            f"{who}: VMA_LOCK_MISS, walk again",
            f"{c.vma(a)} was detached; {who} counts VMA_LOCK_MISS and walks the maple tree "
            "again, still inside the same RCU section (in 6.4 without resetting the maple "
            "state).",
            "the VMA found by the walk was removed before it was locked",
        ),
        "locked": (
            f"{who} holds {c.vma(a)}'s VMA lock: fast path",
            f"`lock_vma_under_rcu` returns {c.vma(a)} read-locked and leaves the RCU "
            f"section. The fault proceeds without `mmap_lock`: a writer holding "
            "`mmap_lock` elsewhere does not stop it.",
            "every check passed",
        ),
    }
    return texts.get(sub) or _generic(c)


def _mas_walk(c: _Ctx, sub: str) -> _Out:
    who, node, depth = c.who, c.a, c.b
    texts = {
        "load_root": (
            f"{who} loads the maple tree root (node {node})",
            f"`mas_walk` reads `mm->mm_mt`'s root, node {node}, without any lock: RCU keeps "
            "it alive even if a writer replaces it now.",
            "the VMA lookup walks `mm->mm_mt` from the root",
        ),
        "descend": (
            f"{who} reads node {node} (depth {depth}) and descends",
            f"`mas_walk` reads the pivots of node {node} to pick the child slot covering "
            "the address, and moves one level down.",
            "each internal node narrows the range by its pivots",
        ),
        "found": (
            f"{who} reaches leaf node {node}",
            f"The walk reads leaf node {node}: the slot covering the address holds either a "
            "VMA or NULL (no mapping).",
            "leaves map address ranges to VMAs",
        ),
        "dead_node": (
            f"{who} finds node {node} dead: restart the walk",
            f"Node {node} was replaced by a writer (copy-on-write) while {who} was walking; "
            "the writer marked it dead. `mas_walk` restarts from the root. The dead node is "
            "still readable: it is freed only after a grace period.",
            "in RCU mode the maple tree replaces nodes instead of changing them in place",
        ),
        "dead_root": (
            f"{who}: the root (node {node}) is dead; load it again",
            "`mas_start` loaded a root that a writer has just replaced; it loads the root "
            "pointer again.",
            "the root was replaced concurrently",
        ),
        "use_after_free": (
            f"{who} reads freed node {node}: use-after-free!",
            f"Node {node} was already freed when {who} read it: the grace period ended while "
            "a reader still used the node (invariant 7 violated).",
            "a reader outside an RCU section, or a grace period that ended too early",
        ),
        "empty": (
            f"{who}: the maple tree is empty",
            "`ma_root` is NULL: there is no VMA at all.",
            "the process has no mappings",
        ),
        "root_entry": (
            f"{who}: the tree holds a single entry in its root",
            "The tree stores one entry directly in `ma_root` (no node).",
            "single-entry trees need no node",
        ),
    }
    return texts.get(sub) or _generic(c)


def _vma_start_read(c: _Ctx, sub: str) -> _Out:
    who, vid, b = c.who, c.a, c.b
    seq = c.mm_lock_seq()
    if sub == "seq_locked":
        holder = c.mmap_writer() if c.kb is not None else None
        if holder is None:
            holder = c.vma_writer(vid)
        holder_text = (
            f"{c.thread_with_op(holder)} holds this VMA write-locked"
            if holder is not None
            else "a writer holding `mmap_lock` for write has write-locked this VMA"
        )
        mm_seq = seq if seq is not None else b
        return (
            f"vma_start_read fails: {c.vma_name(vid) or f'vma{vid}'} is write-locked",
            f"`vma_start_read` failed: `vm_lock_seq` {b} == `mm_lock_seq` {mm_seq}, so "
            f"{holder_text}. {who} cannot use the VMA lock of {c.vma(vid)}: fall back to "
            "`mmap_lock`.",
            f"`vm_lock_seq` {b} == `mm_lock_seq` {mm_seq}: the VMA is write-locked until that "
            "writer's `mmap_write_unlock`",
        )
    if sub == "seq_ok":
        cmp = f"`mm_lock_seq` {seq}" if seq is not None else "`mm_lock_seq`"
        return (
            f"{c.vma(vid)} is not write-locked",
            f"`vma_start_read`: `vm_lock_seq` {b} != {cmp}, so nobody has write-locked "
            f"{c.vma(vid)} in the current `mmap_lock` write section. Next: "
            "`down_read_trylock` on its `vm_lock`.",
            "a VMA is write-locked exactly when `vm_lock_seq == mm_lock_seq`",
        )
    if sub == "trylock_failed":
        desc = c.sem_desc(vid)
        detail = f" ({desc})" if desc else ""
        return (
            f"vma_start_read fails: {c.vma_name(vid) or f'vma{vid}'}'s vm_lock is busy",
            f"`down_read_trylock` on {c.vma(vid)}'s `vm_lock` failed{detail}: a writer "
            "holds it, or waits for it inside `vma_start_write` (a queued writer makes every "
            f"trylock fail). Readers never sleep on a VMA lock, so {who} falls back to "
            "`mmap_lock`.",
            "a writer holds or waits for the VMA's rwsem",
        )
    if sub == "trylock_ok":
        return (
            f"{who} read-locks {c.vma(vid)}",
            f"`down_read_trylock` on {c.vma(vid)}'s `vm_lock` succeeded. Next `vma_start_read` "
            "re-checks the sequence numbers under the lock.",
            "no writer holds or waits for the VMA's rwsem",
        )
    if sub == "seq_locked_after_trylock":
        return (
            f"{c.vma(vid)} got write-locked meanwhile: back off",
            f"Re-check under the read lock: `vm_lock_seq` {b} now equals `mm_lock_seq`, a "
            "writer locked the VMA between the first check and the trylock. `up_read` and "
            "fail.",
            "the re-check catches a writer that finished `vma_start_write` in between",
        )
    if sub == "locked":
        return (
            f"{who} holds {c.vma(vid)} read-locked",
            f"The re-check passed: {c.vma(vid)} is read-locked by {who}; `vma_start_write` "
            "will now wait for it to finish.",
            "both sequence checks and the trylock passed",
        )
    return _generic(c)


def _vma_start_write(c: _Ctx, sub: str) -> _Out:
    who, vid, b = c.who, c.a, c.b
    if sub == "already_locked":
        return (
            f"{c.vma(vid)} is already write-locked",
            f"`vma_start_write`: `vm_lock_seq` {b} already equals `mm_lock_seq`; {who} "
            "locked it earlier in this `mmap_lock` write section. Nothing to do.",
            "write-locking is idempotent within one write section",
        )
    if sub == "seq_set":
        return (
            f"{who} write-locks {c.vma(vid)} (vm_lock_seq = {b})",
            f"Holding `mmap_lock` for write and {c.vma(vid)}'s `vm_lock` for write, {who} "
            f"sets `vm_lock_seq` = `mm_lock_seq` = {b}. From now until {who}'s "
            f"`mmap_write_unlock`, new faults on {c.vma(vid)} fail `vma_start_read` and fall "
            "back to `mmap_lock`.",
            f"{who} is about to change {c.vma(vid)}, so VMA-locked faults must stay out",
        )
    if sub == "seq_unlocked":
        return (
            f"{who} starts write-locking {c.vma(vid)}",
            f"`vma_start_write`: `vm_lock_seq` {b} differs from `mm_lock_seq`, so {who} "
            f"takes {c.vma(vid)}'s `vm_lock` for write (`down_write`), waiting for any "
            "fault that holds it for read.",
            "the writer must wait for in-flight VMA-locked faults to finish",
        )
    if sub == "up_write":
        return (
            f"{who} releases {c.vma(vid)}'s rwsem; the VMA stays write-locked",
            f"`vma_start_write` ends with `up_write`: the rwsem is free again, but "
            f"{c.vma(vid)} stays write-locked by the sequence numbers alone.",
            "the long-lived VMA write lock is `vm_lock_seq == mm_lock_seq`, not the rwsem",
        )
    return _generic(c)


def _rwsem(c: _Ctx, fn: str, sub: str) -> _Out:
    who, key, b = c.who, c.a, c.b
    lock = c.lock(key)
    desc = c.sem_desc(key)
    held = f" ({desc})" if desc else ""
    if fn == "down_read":
        if sub == "acquired":
            return (
                f"{who} takes {lock} for read",
                f"`down_read` on {lock} succeeded at once{held}: no writer holds it and "
                "nobody with priority waits.",
                "the lock was free for readers",
            )
        if sub == "queued":
            writer = c.mmap_writer() if key == 0 else None
            who_holds = (
                f" {c.thread_with_op(writer)} holds it for write."
                if writer is not None and not desc
                else ""
            )
            return (
                f"{who} waits for {lock} (read)",
                f"`down_read`: {lock} is not available{held}.{who_holds} {who} joins the "
                f"wait queue (position {b}) and sleeps until the lock is granted.",
                "a writer holds the lock, or waiters are queued and readers may not overtake",
            )
        if sub == "granted":
            return (
                f"{who} gets {lock} for read after {_ns(b)}",
                f"{who} was woken holding {lock} for read after waiting {_ns(b)}.",
                "the holder released the lock and the queue head was a reader",
            )
    if fn == "down_write":
        texts = {
            "acquired": (
                f"{who} takes {lock} for write",
                f"`down_write` on {lock} succeeded{held}: the lock was free.",
                "nobody held the lock",
            ),
            "spin": (
                f"{who} spins on {lock}",
                f"The fast path failed on {lock}{held}: it is held, or waiters are queued. "
                f"`rwsem_can_spin_on_owner` allows spinning (the owner is a running writer, "
                f"readers own it, or it has no owner), so {who} spins on its CPU "
                "(optimistic spinning) rather than queue, betting it frees up soon.",
                "no RWSEM_NONSPINNABLE and no sleeping writer owner: spinning beats sleeping",
            ),
            "rwsem_down_write_slowpath": (
                f"{who} cannot spin on {lock}: slow path",
                f"The fast path failed on {lock}{held} and `rwsem_can_spin_on_owner` says no "
                "(the owner is a writer that is not running, or RWSEM_NONSPINNABLE is set), "
                f"so {who} goes straight to `rwsem_down_write_slowpath` to queue.",
                "spinning only pays while the owner runs",
            ),
            "spinning": (
                f"{who} keeps spinning on {lock}",
                f"{who} polls {lock} again; it is still held{held}.",
                "the lock is still held",
            ),
            "spin_end": (
                f"{who} stops spinning on {lock}",
                (
                    f"{who} spun on the reader-owned {lock} past its limit "
                    "(`rwsem_rspin_threshold`) and sets RWSEM_NONSPINNABLE: until the "
                    "readers are gone, later writers queue without spinning. It will queue."
                    if b
                    else f"{who} gave up spinning (the owner sleeps, the spin budget ran out, "
                    "or RWSEM_NONSPINNABLE is set) and will queue."
                ),
                "spinning only pays while the owner runs",
            ),
            "acquired_spinning": (
                f"{who} takes {lock} for write while spinning"
                + (f", ahead of {b} waiter{'s' if b != 1 else ''}" if b else ""),
                f"The lock became free while {who} spun: `rwsem_try_write_lock_unqueued` got "
                f"{lock} without sleeping"
                + (
                    f", although {b} waiter{'s are' if b != 1 else ' is'} queued: a woken "
                    "waiter that has not run yet loses the lock (only the handoff bit "
                    "prevents this)."
                    if b
                    else "."
                ),
                "the lock was free and no handoff bit was set",
            ),
            "queued": (
                f"{who} waits for {lock} (write)",
                f"`down_write`: {lock} is held{held}; {who} queues (position {b}) and sleeps."
                + (
                    " While a writer waits on a VMA lock, every new `vma_start_read` fails."
                    if key
                    else ""
                ),
                "the lock is held",
            ),
            "acquired_after_wait": (
                f"{who} gets {lock} for write",
                f"{who} was woken and took {lock} for write.",
                "the holders released the lock",
            ),
            "retry_failed": (
                f"{who} woke but {lock} is taken again",
                f"{who} was woken but someone took {lock} first; it waits again"
                + (" with the handoff bit set: nobody else may take the lock next." if b else "."),
                "a writer may lose the race after a wake-up (handoff fixes starvation)",
            ),
        }
        if sub in texts:
            return texts[sub]
    return _generic(c)


def _unlocks(c: _Ctx) -> _Out:
    who, code, a = c.who, c.code, c.a
    kb = c.kb
    if code == "vma_end_write_all":
        unlocked = ""
        if kb is not None:
            old = a - 1
            names = [
                f"`{v.name}`"
                for v in kb.mm.vmas.values()
                if v.vm_lock_seq == old and v.state == "live"
            ]
            if names:
                unlocked = f" ({', '.join(names)})"
        return (
            f"{who}: mm_lock_seq becomes {a}, unlocking its VMAs",
            f"`vma_end_write_all` adds one to `mm_lock_seq` ({a - 1} → {a}). Every VMA "
            f"write-locked in this section{unlocked} has `vm_lock_seq` {a - 1}, which no "
            "longer matches: all are unlocked at once, before `mmap_lock` itself is released.",
            "one increment unlocks every VMA without touching them",
        )
    if code == "mmap_write_unlock":
        woken = ""
        if kb is not None and kb.mm.mmap_lock.waiters:
            queue = ", ".join(
                f"{c.tname(w.tid)} ({'write' if w.kind == 'w' else 'read'})"
                for w in kb.mm.mmap_lock.waiters
            )
            woken = f" It wakes the queue: {queue}."
        return (
            f"{who} releases mmap_lock (write)",
            "`mmap_write_unlock`: `vma_end_write_all` has already unlocked the VMAs; now "
            f"`up_write` releases `mmap_lock`.{woken} Faults waiting in `mmap_read_lock` can "
            "now run.",
            f"{who}'s change to the address space is complete",
        )
    if code == "mmap_write_downgrade":
        return (
            f"{who} downgrades mmap_lock to read",
            f"`mmap_write_downgrade`: `vma_end_write_all` unlocks the VMAs, then "
            f"`downgrade_write` turns {who}'s write lock into a read lock; queued readers "
            "may now join.",
            "the rest of the work (zapping pages) needs only the read lock",
        )
    if code == "mmap_read_unlock":
        return (
            f"{who} releases mmap_lock (read)",
            f"`mmap_read_unlock` (`up_read`): {who} no longer holds `mmap_lock`. The last "
            "reader out wakes a queued writer.",
            f"{who} is done with the VMAs",
        )
    if code == "vma_end_read:up_read":
        return (
            f"{who} releases {c.vma(a)}'s VMA lock",
            f"`vma_end_read`: `up_read` on {c.vma(a)}'s `vm_lock`, inside a short RCU "
            "section so the VMA cannot be freed under `up_read`. The last reader wakes a "
            "waiting `vma_start_write`.",
            "the fault is finished with the VMA",
        )
    if code == "vma_end_read:rcu_read_unlock":
        return (
            f"{who} leaves the RCU section of vma_end_read",
            f"`rcu_read_unlock` after `up_read` on {c.vma(a)}'s lock.",
            "the RCU section only protected the `up_read`",
        )
    return _generic(c)


def _mm_ops(c: _Ctx) -> _Out | None:
    """mmap/munmap/mprotect/... internals; None when the code is not one of them."""
    who, code, a, b = c.who, c.code, c.a, c.b
    if code.startswith("syscall:"):
        name = code.split(":", 1)[1]
        detail = ""
        if name == "munmap" or name == "mprotect":
            detail = f" of `[{a:#x}, {b:#x})`"
        mode = "read" if name.startswith(("read:", "getsockopt")) else "write"
        if name.startswith("madvise:"):
            mode = "write" if a else "read"
        return (
            f"{who} enters {name}",
            f"{who} calls `{name}`{detail}; it takes `mmap_lock` for {mode} first.",
            f"`{name}` reads or changes the VMAs, which `mmap_lock` protects",
        )
    table: dict[str, _Out] = {
        "do_tkill": (
            f"{who} sends {c.note or 'a signal'} to {c.tname(a)}" if b else f"{who}'s tgkill fails",
            (
                f"`do_tkill` queues {c.note or 'a handled signal'} for {c.tname(a)}."
                if b
                else "`do_tkill` finds no live thread: -ESRCH."
            ),
            "tgkill(2), from the scenario's signal op",
        ),
        "complete_signal": (
            f"SIGKILL kills the thread group: {a} threads marked, {b} woken",
            f"`complete_signal` sets `SIGNAL_GROUP_EXIT` and SIGKILL pending in {a} threads; "
            f"`signal_wake_up(t, 1)` woke {b} in killable or interruptible sleeps. "
            "Threads asleep in `mmap_read_lock`/`down_write` (uninterruptible) sleep on; "
            "each thread dies at its next return to user mode.",
            "a fatal signal to one thread takes the whole group down",
        ),
        "rwsem_down_write_slowpath:eintr": (
            f"{who} leaves the write queue: -EINTR",
            f"{who} slept in `down_write_killable` with SIGKILL pending: "
            "`rwsem_del_wake_waiter` takes it off the wait list (waking the new first "
            f"waiters if it was first) and the lock returns -EINTR (HANDOFF now {b}).",
            "a TASK_KILLABLE sleeper gives up the wait on a fatal signal",
        ),
        "rwsem_down_read_slowpath:eintr": (
            f"{who} leaves the read queue: -EINTR",
            f"{who} slept in `down_read_killable` with SIGKILL pending and was not granted "
            "the lock: `rwsem_del_wake_waiter` takes it off the wait list and the lock "
            f"returns -EINTR (HANDOFF now {b}).",
            "a TASK_KILLABLE sleeper gives up the wait on a fatal signal",
        ),
        "mmap_write_lock_killable:eintr": (
            f"{who}'s syscall returns -EINTR",
            f"`mmap_write_lock_killable` failed, so {c.note or 'the syscall'}: nothing changed.",
            "`if (mmap_write_lock_killable(mm)) return -EINTR;`",
        ),
        "mmap_read_lock_killable:eintr": (
            f"{who}'s syscall returns -EINTR",
            f"`mmap_read_lock_killable` failed, so {c.note or 'the syscall'}: nothing changed.",
            "`m_start` returns -EINTR when `mmap_read_lock_killable` fails",
        ),
        "find_vma": (
            f"{who}: find_vma → {c.vma(a) if a else 'no VMA'}",
            f"Under `mmap_lock`, `find_vma` looks up `{b:#x}`: "
            + (f"{c.vma(a)}." if a else "nothing is mapped there."),
            "the slow path looks the VMA up under `mmap_lock`",
        ),
        "lock_mm_and_find_vma:stack": (
            f"{who} write-locks the stack {c.vma(a)} to grow it",
            f"6.4.1 `lock_mm_and_find_vma`: with `mmap_lock` held for write, {who} looks the "
            f"stack up again and write-locks {c.vma(a)} before `expand_downwards`.",
            "the StackRot fix: stack growth changes the VMA and the tree, so it needs the "
            "write locks",
        ),
        "brk:shrink": (
            f"{who} shrinks the heap by {a // 4096} pages",
            f"`brk` moving down unmaps the top {a // 4096} pages of the heap with "
            "`do_vma_munmap(..., downgrade=true)`.",
            "a shrinking brk is an munmap",
        ),
        "madvise:write_lock_advice": (
            f"{who}: madvise changes vm_flags",
            f"This advice changes `vm_flags` (set {a:#x}, clear {b:#x}), so it holds "
            "`mmap_lock` for write and write-locks the VMAs it changes.",
            "`madvise_need_mmap_write` is true for flag-changing advice",
        ),
        "dup_mmap:flush_tlb_mm": (
            f"{who} finishes copying {a} VMAs for fork",
            f"`dup_mmap` copied {a} VMAs; `flush_tlb_mm` flushes the TLB for the "
            "write-protected pages and releases `mmap_lock`.",
            "the parent's PTEs were write-protected for copy-on-write",
        ),
        "handle_pte_fault:spurious": (
            f"{who}: the page is already there",
            f"Page {b} of {c.vma(a)} is already mapped (another thread faulted it in): a "
            "spurious fault, nothing to do.",
            "two threads faulted the same page",
        ),
        "do_anonymous_page:zero_page": (
            f"{who} maps the shared zero page into {c.vma(a)}",
            f"A read of never-written anonymous memory: `do_anonymous_page` maps page {b} of "
            f"{c.vma(a)} to the shared zero page, write-protected. No page is allocated and "
            "no `anon_vma` is needed.",
            "reads of untouched anonymous memory all see the same page of zeros",
        ),
        "do_anonymous_page:vma_alloc_zeroed_movable_folio": (
            f"{who} allocates a zeroed page for {c.vma(a)}",
            f"`do_anonymous_page` allocates a zeroed page (`vma_alloc_zeroed_movable_folio`) for "
            f"page {b} of {c.vma(a)}.",
            "first touch of anonymous memory",
        ),
        "set_pte_at": (
            f"{who} maps page {b} of {c.vma(a)}",
            f"`set_pte_at` installs the page-table entry for page {b} of {c.vma(a)} under "
            "the page-table lock. The access can now be retried by the CPU.",
            "the fault's result is a new page-table entry",
        ),
        "do_swap_page:retry_vma_lock": (
            f"{who}: page in swap, cannot swap in under the VMA lock",
            f"Page {b} of {c.vma(a)} is swapped out. In 6.4 `do_swap_page` returns "
            "`VM_FAULT_RETRY` when only the VMA lock is held, without doing anything.",
            "swap-in may sleep and drop locks, allowed in 6.4 only under `mmap_lock`",
        ),
        "do_swap_page:swap_in": (
            f"{who} swaps page {b} of {c.vma(a)} in",
            f"`do_swap_page` reads page {b} of {c.vma(a)} back from swap.",
            "the page was swapped out",
        ),
        "do_wp_page:copy": (
            f"{who} copies a write-protected page (COW)",
            f"Page {b} of {c.vma(a)} is shared copy-on-write (after `fork`): `do_wp_page` "
            "copies it.",
            "a write to a COW page",
        ),
        "do_fault:file": (
            f"{who} reads page {b} of file-backed {c.vma(a)}",
            f"`do_fault` maps page {b} of {c.vma(a)} from its file.",
            "file-backed memory",
        ),
        "anon_vma_prepare": (
            f"{who} creates the anon_vma of {c.vma(a)}",
            f"First anonymous fault on {c.vma(a)}: `anon_vma_prepare` attaches a new "
            f"`anon_vma` ({b}) under `page_table_lock`. From now on faults on it can use "
            "the VMA lock.",
            "6.4's fast path refuses VMAs without an `anon_vma`",
        ),
        "vma_mark_detached": (
            f"{who} marks {c.vma(a)} detached",
            f"`vma_mark_detached`: {c.vma(a)} is write-locked and about to leave the tree; "
            "an RCU reader that already found it will see `detached` and retry "
            "(VMA_LOCK_MISS).",
            "the VMA is being unmapped",
        ),
        "vma_iter_clear": (
            f"{who} clears [{a:#x}, {b:#x}) from the maple tree",
            f"`vma_iter_clear` stores NULL over `[{a:#x}, {b:#x})` in `mm->mm_mt`. In RCU "
            "mode the changed nodes are replaced by new ones; the old ones become dead and "
            "wait for a grace period."
            + (
                f" `do_vmi_align_munmap` keeps `mmap_lock` for write ({c.note}, at any "
                "distance): under the read lock it could grow into the range being unmapped."
                if c.note.startswith("no downgrade")
                else ""
            ),
            "the point of no return of `munmap`",
        ),
        "unmap_region": (
            f"{who} zaps {a} pages",
            f"`unmap_region` removes the page-table entries ({a} pages), frees page tables "
            "and flushes the TLB" + (" under the downgraded read lock." if b else "."),
            "the memory is unmapped",
        ),
        "remove_mt:remove_vma": (
            f"{who} frees {a} VMA{'s' if a != 1 else ''} after a grace period",
            f"`remove_mt` → `remove_vma` → `vm_area_free` queues {a} "
            f"VMA{'s' if a != 1 else ''} with `call_rcu`: an RCU reader that found "
            f"{'them' if a != 1 else 'it'} may keep reading until the grace period ends.",
            "lock-free readers may still hold pointers to the VMA",
        ),
        "__split_vma:vm_area_dup": (
            f"{who} splits {c.vma(a)} (new {c.vma(b)})",
            f"`__split_vma` duplicates {c.vma(a)} into {c.vma(b)}; `vma_prepare` "
            "write-locks the original, the new VMA is not visible yet.",
            "the operation covers only part of the VMA",
        ),
        "vma_merge": (
            f"{who} merges into {c.vma(a)}",
            f"`vma_merge`: the range merges with a neighbour into {c.vma(a)}; {b} VMA"
            f"{'s' if b != 1 else ''} get write-locked first.",
            "adjacent VMAs with the same flags are merged",
        ),
        "vma_expand": (
            f"{who} expands {c.vma(a)}",
            f"`vma_expand` grows {c.vma(a)} over the new range (write-locking it first).",
            "the new mapping is adjacent to a compatible VMA",
        ),
        "vm_area_alloc": (
            f"{who} allocates {c.vma(a)}",
            f"`vm_area_alloc`: a new VMA, {c.vma(a)}, with a fresh `vm_lock` and "
            "`vm_lock_seq` = -1.",
            "a new mapping",
        ),
        "vma_link:inserted": (
            f"{who} inserts {c.vma(a)} into the tree",
            f"{c.vma(a)} is stored in `mm->mm_mt`; it is visible to lock-free lookups from "
            "now on"
            + (
                " (already write-locked)."
                if b
                else " and not write-locked (6.4.0; 6.4.3 locks it first)."
            ),
            "a new mapping becomes visible",
        ),
        "vma_link": (
            f"{who} inserts {c.vma(a)} into the tree",
            f"{c.vma(a)} is stored in `mm->mm_mt` and becomes visible.",
            "a new or moved mapping",
        ),
        "vm_flags_set:softdirty": (
            f"{who} sets VM_SOFTDIRTY on {c.vma(a)}",
            f"`vm_flags_set` (which write-locks {c.vma(a)} first) marks it soft-dirty.",
            "every `vm_flags` writer write-locks the VMA",
        ),
        "vm_flags_reset": (
            f"{who} changes {c.vma(a)}'s flags",
            f"`vm_flags_reset` writes the new `vm_flags` ({b:#x}) of {c.vma(a)}, which is "
            "write-locked, so no VMA-locked fault sees half of the change.",
            "every `vm_flags` writer write-locks the VMA",
        ),
        "change_protection": (
            f"{who} rewrites the PTEs of {c.vma(a)}",
            f"`change_protection` write-protects the {b} present page(s) of {c.vma(a)} "
            "and flushes the TLB, still under the mmap write lock.",
            "mprotect took write permission away",
        ),
        "get_unmapped_area": (
            f"{who} picks [{a:#x}, {a + b:#x})",
            f"`get_unmapped_area` finds a free range of {b:#x} bytes at `{a:#x}` using the "
            "maple tree's gap tracking.",
            "a new mapping needs free address space",
        ),
        "get_unmapped_area:enomem": (
            f"{who}: no room (ENOMEM)",
            f"No free range of {a:#x} bytes exists.",
            "the address space is full",
        ),
        "vma_complete": (
            f"{who} publishes the change ({c.note or 'VMA update'})",
            f"`vma_complete` applies the {a} planned update{'s' if a != 1 else ''} "
            f"({c.note or 'bounds, tree stores'}) while the VMAs are write-locked.",
            "changes are applied only after every affected VMA is write-locked",
        ),
        "do_vmi_munmap:vma_find": (
            f"{who} finds the first VMA to unmap: {c.vma(a)}",
            f"`do_vmi_munmap` finds {c.vma(a)} with `vma_find`; `do_vmi_align_munmap` "
            "starts there.",
            "`munmap` walks the VMAs of the range",
        ),
        "mprotect:enomem": (
            f"{who}: mprotect fails with ENOMEM",
            f"`do_mprotect_pkey` reaches unmapped memory at `{a:#x}` (the range ends at "
            f"`{b:#x}`): it stops there and returns `-ENOMEM`. VMAs of the range below "
            f"`{a:#x}`, if any, already have the new protection.",
            "mprotect needs every page of its range to be mapped",
        ),
        "madvise:enomem": (
            f"{who}: madvise returns ENOMEM",
            f"Part of `[{a:#x}, {b:#x})` is not mapped: `madvise_walk_vmas` applied the "
            "advice to the mapped parts, skipped the holes and returns `-ENOMEM`.",
            "madvise reports unmapped parts of its range after doing the rest",
        ),
        "munmap:einval": (
            f"{who}: munmap fails with EINVAL",
            f"`[{a:#x}, {b:#x})` reaches beyond the top of the user address space "
            "(`TASK_SIZE`): `do_vmi_munmap` returns `-EINVAL` and unmaps nothing.",
            "munmap only takes ranges inside the user address space",
        ),
        "mremap:efault": (
            f"{who}: mremap fails with EFAULT",
            f"No single VMA holds the old range at `{a:#x}` ({b // 4096} pages): "
            "`vma_lookup` finds none at the address, or the range runs past the end of the "
            "VMA there (`vma_to_resize`). `mremap` returns `-EFAULT`; nothing changes and "
            "a new name it was to give stays without an address.",
            "mremap works on the pages of one mapped VMA",
        ),
        "mremap:same_size": (
            f"{who}: mremap to the same size does nothing",
            f"The new size of {c.vma(a)} equals the old one and no move was asked for: "
            "`mremap` returns the old address and changes nothing.",
            "a shrinking (or equal) remap only unmaps the excess, here none",
        ),
        "userfaultfd_register:einval": (
            f"{who}: UFFDIO_REGISTER fails with EINVAL",
            f"`userfaultfd_register` finds no VMA it may register in `[{a:#x}, {b:#x})`: "
            "none at all (`vma_find` returns NULL), or one that `vma_can_userfault` refuses "
            "(a file mapping: MISSING mode needs anonymous memory, shmem or hugetlb). "
            "The ioctl returns `-EINVAL` and registers nothing.",
            "userfaultfd checks every VMA of the range before changing any",
        ),
        "userfaultfd_register:eperm": (
            f"{who}: UFFDIO_REGISTER fails with EPERM",
            f"{c.vma(a)} lacks `VM_MAYWRITE`: `userfaultfd_register` returns `-EPERM` "
            "before changing any VMA.",
            "UFFDIO_COPY could write a mapping the process may not write",
        ),
        "userfaultfd_register:ebusy": (
            f"{who}: UFFDIO_REGISTER fails with EBUSY",
            f"{c.vma(a)} already belongs to userfaultfd context {b}: a VMA has one owner, "
            "so `userfaultfd_register` returns `-EBUSY` and changes nothing.",
            "the kernel must know which userfaultfd gets each fault",
        ),
        "prctl_set_vma:einval": (
            f"{who}: PR_SET_VMA_ANON_NAME fails with EINVAL",
            f"The name ({a} characters) is too long or has a character "
            "`is_valid_name_char` refuses: `prctl_set_vma` returns `-EINVAL` before "
            "taking `mmap_lock`.",
            "names are checked before any lock is taken",
        ),
        "prctl_set_vma:enomem": (
            f"{who}: PR_SET_VMA_ANON_NAME returns ENOMEM",
            f"Part of `[{a:#x}, {b:#x})` is not mapped: `madvise_walk_vmas` named the "
            "mapped VMAs, skipped the holes and returns `-ENOMEM`.",
            "naming walks VMAs like madvise",
        ),
        "madvise_vma_anon_name:ebadf": (
            f"{who}: PR_SET_VMA_ANON_NAME fails with EBADF",
            f"{c.vma(a)} maps a file: `madvise_vma_anon_name` returns `-EBADF` (only "
            "anonymous memory and anonymous shmem can be named); VMAs before it keep their "
            "new name.",
            "a file mapping is named by its file",
        ),
        "replace_anon_vma_name": (
            f"{who} names {c.vma(a)}",
            f"`madvise_update_vma`: after `vm_flags_reset` write-locked {c.vma(a)}, "
            "`replace_anon_vma_name` sets its `anon_vma_name`; /proc/pid/maps shows it as "
            "`[anon:NAME]`.",
            "the name is a VMA field that `vma_merge` compares, so it is changed under "
            "the VMA's write lock",
        ),
        "brk:out": (
            f"{who}: brk below the heap's start is ignored",
            f"The new break `{a:#x}` is below `mm->start_brk` (`{b:#x}`): `brk` returns the "
            "old break and changes nothing.",
            "the heap cannot shrink below where it starts",
        ),
        "madvise:populate": (
            f"{who} populates {b} more pages of {c.vma(a)}",
            f"`madvise_populate` faults in {b} more pages of {c.vma(a)} through GUP "
            "(`faultin_vma_page_range`) under `mmap_read_lock`; a step maps at most 16.",
            "populating a range maps its pages one after another",
        ),
        "no_address": (
            f"{who}: the op has no address and is skipped",
            f"{who}'s op on line {a} names a VMA that has no address at this point"
            + (f" ({c.note})." if c.note else ".")
            + " Without a pointer there is nothing to pass to the kernel: the op is not "
            "issued and the thread goes on with its next op.",
            "a name gets its address when the mmap (or mremap) that declares it returns",
        ),
        "expand_stack:raced": (
            f"{who}: the stack {c.vma(a)} already reaches {b:#x}",
            f"`expand_downwards` finds that {c.vma(a)} already starts at or below the "
            "faulting page: another fault grew it first, between its `find_vma` and this "
            "step. Nothing changes.",
            "two faults below the stack raced to grow it",
        ),
        "do_vmi_munmap:nothing": (
            f"{who}: nothing mapped at {a:#x}",
            "There is no VMA in the range: nothing to unmap.",
            "the range is empty",
        ),
        "rcu:callbacks": (
            f"{c.note or 'grace period'} over: {a} VMA{'s' if a != 1 else ''}, {b} node"
            f"{'s' if b != 1 else ''} freed",
            "Every thread that was inside an RCU read section when this grace period "
            "started has left it: the callbacks that waited for it run together "
            f"(`rcu_do_batch`) and free {a} VMA{'s' if a != 1 else ''} and {b} maple node"
            f"{'s' if b != 1 else ''}. Frees queued while it ran wait for the next grace "
            "period, which starts now.",
            "the grace period ended",
        ),
        "compute": (
            f"{who} computes for {_ns(a)}",
            f"{who} runs user-space code for {_ns(a)}; it holds no kernel lock.",
            "scenario op `compute`",
        ),
        "sleep": (
            f"{who} sleeps for {_ns(a)}",
            f"{who} calls `nanosleep` and is off the CPU for {_ns(a)}.",
            "scenario op `sleep`",
        ),
        "hold_mmap_write:hold": (
            f"{who} holds mmap_lock for write for {_ns(a)}",
            f"{who} keeps `mmap_lock` held for write (and its write-locked VMAs locked) for "
            f"{_ns(a)}, like a long `mprotect` or `munmap`. Faults on other VMAs can still "
            "use their VMA locks" + ("." if c.per_vma else " — but not in mmap_lock mode."),
            "teaching op: a long writer",
        ),
        "barrier:wait": (
            f"{who} waits at a barrier",
            f"{who} reached a user-space barrier ({a} arrived) and waits for the others.",
            "scenario op `barrier`",
        ),
        "barrier:release": (
            f"{who} releases a barrier",
            f"The last of {a} threads arrived: all continue.",
            "scenario op `barrier`",
        ),
        "exit": (
            f"{who} exits",
            f"{who} has no more work and exits.",
            "end of the thread's ops",
        ),
        "expand_stack": (
            f"{who} grows the stack {c.vma(a)} by {b} pages",
            f"`expand_stack` moves {c.vma(a)}'s `vm_start` down and stores the new range in "
            "the maple tree"
            + (
                " while holding `mmap_lock` only for read (6.4.0: the StackRot bug)."
                if not c.kernel().patch.get("fix_stack_expand_write_lock")
                else " under the mmap write lock (6.4.1 fix)."
            ),
            "a fault just below a growsdown VMA",
        ),
        "expand_stack:guard_gap": (
            f"{who}: stack would hit the guard gap",
            f"Growing {c.vma(a)} down to the faulting page would leave less than "
            f"`stack_guard_gap` (256 pages) above {c.vma(b)}, an accessible VMA that does "
            "not grow down: `expand_downwards` returns `-ENOMEM` and the fault is SIGSEGV.",
            "a stack keeps 256 pages of unmapped guard gap above the mapping below it",
        ),
        "expand_stack:acct_stack_growth": (
            f"{who}: stack would pass RLIMIT_STACK",
            f"Growing {c.vma(a)} down to the faulting page would make it {b:,} bytes, more "
            "than `rlimit(RLIMIT_STACK)` (the scenario's `kernel.rlimit_stack`, 8 MiB by "
            "default): `acct_stack_growth` returns `-ENOMEM`, `expand_downwards` fails and "
            "the fault is SIGSEGV.",
            "a stack grows only up to RLIMIT_STACK",
        ),
        "anon_vma_prepare:expand_stack": (
            f"{who} creates the stack's anon_vma ({c.vma(a)})",
            f"`expand_downwards` makes sure the stack has an `anon_vma` ({b}) before it "
            "takes the anon_vma lock and grows: `anon_vma_prepare`. The grown stack's next "
            "anonymous fault can then use the VMA lock.",
            "stack growth needs the stack's `anon_vma`",
        ),
        "mremap:einval": (
            f"{who}: mremap fails with EINVAL",
            f"`MREMAP_DONTUNMAP` is always a move and may not resize: without "
            f"`MREMAP_MAYMOVE`, or with a new length other than {b // 4096} pages, `mremap` "
            "returns `-EINVAL` before taking `mmap_lock`. Nothing changes.",
            "the flags check of the `mremap` syscall",
        ),
        "mremap:enomem": (
            f"{who}: mremap fails with ENOMEM",
            f"{c.vma(a)} cannot grow in place to {b // 4096} pages (the range above it is "
            "taken, or the old range does not end at the VMA's end) and `MREMAP_MAYMOVE` "
            "was not given: `mremap` returns `-ENOMEM` and changes nothing.",
            "only `MREMAP_MAYMOVE` lets mremap move a mapping",
        ),
        "move_vma:dontunmap": (
            f"{who} leaves {c.vma(a)} mapped but empty (MREMAP_DONTUNMAP)",
            f"`move_vma` with `MREMAP_DONTUNMAP`: the page tables moved to the new VMA, "
            f"{c.vma(a)} stays in the tree without them (`VM_LOCKED` cleared)"
            + (
                "; its `anon_vma` links go too (`unlink_anon_vmas`), so its next anonymous "
                "write fault falls back to `mmap_lock` to run `anon_vma_prepare`."
                if b
                else "; it keeps its `anon_vma`, as the old range was only part of it."
            ),
            "`MREMAP_DONTUNMAP` moves the pages and keeps the source mapping",
        ),
        "try_to_unmap:swap_entry": (
            f"reclaim swaps page {b} of {c.vma(a)} out",
            "`try_to_unmap` replaces the page's PTE with a swap entry. Reclaim takes neither "
            "`mmap_lock` nor a VMA lock.",
            "memory pressure (scenario op `swap_out`)",
        ),
        "try_to_unmap:discard_lazyfree": (
            f"reclaim discards lazy-free page {b} of {c.vma(a)}",
            "`try_to_unmap_one` finds a clean lazy-free folio (`MADV_FREE`, not written "
            "since): it clears the PTE and frees the page, no swap entry. The next touch "
            "gets a fresh zeroed page.",
            "MADV_FREE pages are dropped, not swapped, by reclaim",
        ),
        "zap_page_range_single": (
            f"{who}: MADV_DONTNEED zaps {b} pages of {c.vma(a)}",
            f"`madvise_dontneed_single_vma` → `zap_page_range_single` clears {b} PTEs of "
            f"{c.vma(a)} (swap entries too) under `mmap_read_lock`; no VMA lock is taken.",
            "`MADV_DONTNEED` throws the pages away at once",
        ),
        "madvise_free_pte_range": (
            f"{who}: MADV_FREE marks {b} pages of {c.vma(a)} lazy-free",
            f"`madvise_free_pte_range` keeps the PTEs of {b} pages of {c.vma(a)} but makes "
            "them clean and old and puts their folios on the lazy-free list "
            "(`folio_mark_lazyfree`): they stay mapped until reclaim discards them, and a "
            "write before that dirties them again. Swap entries in the range are cleared "
            "(`free_swap_and_cache`)." + (f" ({c.note})" if c.note else ""),
            "`MADV_FREE` is lazy: freeing waits for memory pressure",
        ),
        "madvise_cold_or_pageout_pte_range": (
            f"{who}: MADV_COLD deactivates {b} pages of {c.vma(a)}",
            f"`madvise_cold_or_pageout_pte_range` clears the young bit of {b} pages of "
            f"{c.vma(a)} and moves their folios to the inactive list; the PTEs stay.",
            "`MADV_COLD` only makes the pages first in line for reclaim",
        ),
        "reclaim_pages": (
            f"{who}: MADV_PAGEOUT reclaims {b} pages of {c.vma(a)}",
            f"`madvise_cold_or_pageout_pte_range` isolates {b} pages of {c.vma(a)} mapped "
            "only here and `reclaim_pages` reclaims them now: anonymous pages leave swap "
            "entries (a later fault is `do_swap_page`), lazy-free ones are discarded, file "
            "pages are unmapped. Only `mmap_read_lock` is held.",
            "`MADV_PAGEOUT` is reclaim on request",
        ),
        "read_swap_cache_async": (
            f"{who}: MADV_WILLNEED reads {b} swapped pages of {c.vma(a)} ahead",
            f"`madvise_willneed` starts swap-in I/O for {b} swap entries of {c.vma(a)} "
            "(`swapin_walk_pmd_entry`); it maps nothing, so the PTEs stay swap entries "
            "and a later fault still goes through `do_swap_page`.",
            "`MADV_WILLNEED` on anonymous memory only warms the swap cache",
        ),
        "vfs_fadvise": (
            f"{who}: MADV_WILLNEED reads {b} pages of {c.vma(a)}'s file ahead",
            f"`madvise_willneed` dropped `mmap_lock` and calls `vfs_fadvise` "
            f"(`POSIX_FADV_WILLNEED`) for {b} pages of {c.vma(a)}'s file; it maps nothing.",
            "filesystem readahead may sleep on locks, so `mmap_lock` is dropped",
        ),
        "vfs_fallocate": (
            f"{who}: MADV_REMOVE punches a hole under {c.vma(a)}",
            f"`madvise_remove` dropped `mmap_lock`; `vfs_fallocate(FALLOC_FL_PUNCH_HOLE)` "
            f"frees the file's pages and unmaps {b} of them from {c.vma(a)}.",
            "`MADV_REMOVE` frees the backing store",
        ),
        "madvise_collapse": (
            f"{who}: MADV_COLLAPSE made {b} huge pages in {c.vma(a)}",
            f"`madvise_collapse` is done with {c.vma(a)}: {b} huge pages collapsed"
            + (f", last failure {c.note}" if c.note else "")
            + "; it returns holding `mmap_read_lock`, as `madvise_walk_vmas` expects.",
            "`MADV_COLLAPSE` collapses synchronously, under the same locks as khugepaged",
        ),
        "madvise_collapse:hpage_collapse_scan_pmd": (
            f"{who}: MADV_COLLAPSE scans a huge-page range of {c.vma(a)}",
            "`hpage_collapse_scan_pmd` checks the 512 PTEs under `mmap_read_lock` "
            "(none and swap PTEs allowed, as it is not khugepaged)"
            + (
                f": {c.note}."
                if c.note
                else "; `collapse_huge_page` follows: it drops the read lock, takes "
                "`mmap_write_lock` and write-locks the VMA."
            ),
            "`MADV_COLLAPSE` collapses synchronously, under the same locks as khugepaged",
        ),
        "madvise_collapse:hugepage_vma_revalidate": (
            f"{who}: MADV_COLLAPSE looks {c.vma(a)} up again",
            "`collapse_huge_page` returned without `mmap_lock`, so `madvise_collapse` "
            "retakes the read lock and `hugepage_vma_revalidate` checks the VMA again"
            + (f": {c.note}, the call ends." if c.note else "."),
            "`MADV_COLLAPSE` drops `mmap_lock` between huge pages",
        ),
        "madvise_vma_behavior:error": (
            f"{who}: madvise fails on {c.vma(a)}",
            f"`madvise_vma_behavior` returns -{ {22: 'EINVAL', 13: 'EACCES'}.get(b, b) } for "
            f"{c.vma(a)} (flags or backing the "
            "advice refuses); `madvise_walk_vmas` stops and returns the error.",
            "an error of one VMA ends the madvise walk",
        ),
    }
    if code in table:
        return table[code]
    prefix = code.split(":", 1)[0]
    if prefix in (
        "handle_userfault",
        "mremap",
        "copy_vma",
        "move_page_tables",
        "do_brk_flags",
        "dup_mmap",
        "do_exit",
        "exit_mmap",
        "khugepaged",
        "collapse_huge_page",
        "mm_take_all_locks",
        "mm_drop_all_locks",
        "vm_insert_pages",
        "show_map_vma",
        "madvise",
    ):
        return _family_sentence(c, prefix)
    return None


def _family_sentence(c: _Ctx, prefix: str) -> _Out:
    who, code, a, b = c.who, c.code, c.a, c.b
    sub = code.split(":", 1)[1] if ":" in code else ""
    texts: dict[str, tuple[str, str]] = {
        "handle_userfault": (
            {
                "mmap_read_unlock": f"`handle_userfault`: page {b} of {c.vma(a)} is missing "
                "and userfaultfd is registered on it. The fault drops `mmap_lock` and hands "
                "the page to the userfaultfd monitor.",
                "wait_monitor": f"{who} sleeps until the userfaultfd monitor supplies page {b} "
                f"of {c.vma(a)}; it holds no lock meanwhile.",
                "resolved": f"The monitor supplied page {b} of {c.vma(a)}. The fault returns "
                "`VM_FAULT_RETRY` with `mmap_lock` already released, and is retried.",
            }.get(sub, f"`handle_userfault` ({sub}) on {c.vma(a)}."),
            "userfaults may wait for user space, so they must not hold `mmap_lock`",
        ),
        "mremap": (
            f"`mremap` ({sub}) on {c.vma(a)}.",
            "scenario op `mremap`",
        ),
        "copy_vma": (
            f"`copy_vma` makes {c.vma(a)} at `{b:#x}` and write-locks it.",
            "`mremap` moves the mapping",
        ),
        "move_page_tables": (
            f"`move_page_tables` moves {b} page-table entries of {c.vma(a)} (write-locked).",
            "`mremap` moves the mapping",
        ),
        "do_brk_flags": (
            f"`do_brk_flags` ({sub}) grows the heap via {c.vma(a)}.",
            "scenario op `brk`",
        ),
        "dup_mmap": (
            f"`dup_mmap` skips {c.vma(a)} (`VM_DONTCOPY`): the child gets no copy."
            if sub == "vm_stat_account"
            else f"`dup_mmap` copies {c.vma(a)} into the child with `vm_area_dup` ({b} pages "
            "write-protected for COW).",
            "`fork` copies every VMA under the mmap write lock",
        ),
        "do_exit": (
            f"{who} exits ({a} other threads still running).",
            "scenario op `exit`",
        ),
        "exit_mmap": (
            f"`exit_mmap` ({sub or 'start'}): the last thread tears the address space down "
            "and frees VMAs immediately (no RCU: no one can fault any more).",
            "the process exits",
        ),
        "khugepaged": (
            {
                "scan": "khugepaged scans the VMA for small pages to collapse under "
                "`mmap_read_lock`.",
                "hugepage_vma_revalidate": "khugepaged drops the read lock to allocate, and "
                "will look the VMA up again.",
                "alloc_charge_hpage": "khugepaged allocated a huge page "
                "(`alloc_charge_hpage`) and takes `mmap_lock` for write; next it "
                "write-locks the VMA (`vma_start_write`).",
            }.get(sub, f"khugepaged ({sub})."),
            "khugepaged scans under the read lock, collapses under the write lock",
        ),
        "collapse_huge_page": (
            f"`collapse_huge_page` ({sub}) on {c.vma(a)}, which is write-locked.",
            "khugepaged",
        ),
        "mm_take_all_locks": (
            f"`mm_take_all_locks`: all {a} VMAs are write-locked.",
            "registering an MMU notifier",
        ),
        "mm_drop_all_locks": (
            "`mm_drop_all_locks` ends with `vma_end_write_all`, unlocking every VMA while "
            "`mmap_lock` is still held for write.",
            "registering an MMU notifier",
        ),
        "vm_insert_pages": (
            f"`vm_insert_pages` maps {b} pages into {c.vma(a)} under `mmap_read_lock`.",
            "TCP zerocopy receive",
        ),
        "show_map_vma": (
            f"`show_map_vma` prints {c.vma(a)} for `/proc/pid/maps` under `mmap_read_lock`.",
            "reading `/proc/pid/maps`",
        ),
        "madvise": (
            f"`madvise` read-lock advice changed {a} PTEs (no VMA lock taken).",
            "scenario op `madvise`",
        ),
    }
    text, reason = texts[prefix]
    return (f"{who}: {code}", text, reason)


#: What each kernel function is for: the sentence of an event code this module has no
#: specific text for (a code the model gained later), so it still says something true.
FUNCTION_ROLE = {
    "fault": "the page-fault handler",
    "lock_vma_under_rcu": "the lock-free VMA lookup of the per-VMA-lock fault path",
    "mas_walk": "the lock-free maple tree walk",
    "vma_start_read": "read-locking one VMA for a fault (never sleeps)",
    "vma_start_write": "write-locking one VMA under the mmap write lock",
    "vma_end_read": "releasing a VMA read lock",
    "down_read": "taking an rw_semaphore for read",
    "down_write": "taking an rw_semaphore for write",
    "down_read_killable": "taking an rw_semaphore for read, in a sleep SIGKILL can end",
    "down_write_killable": "taking an rw_semaphore for write, in a sleep SIGKILL can end",
    "do_anonymous_page": "the first touch of anonymous memory",
    "do_swap_page": "bringing a swapped-out page back",
    "do_wp_page": "a write to a write-protected (copy-on-write) page",
    "do_fault": "a fault on file-backed memory",
    "handle_pte_fault": "deciding what a fault needs from its page-table entry",
    "handle_mm_fault": "the architecture-independent fault handling",
    "handle_userfault": "handing a fault to the userfaultfd monitor",
    "expand_stack": "growing a stack VMA downwards",
    "get_unmapped_area": "choosing free address space for a new mapping",
    "do_vmi_munmap": "unmapping a range of VMAs",
    "vma_link": "inserting a VMA into the maple tree",
    "mremap": "resizing or moving a mapping",
    "do_brk_flags": "growing the heap",
    "dup_mmap": "copying the address space for fork",
    "exit_mmap": "tearing the address space down at exit",
    "khugepaged": "collapsing small pages into a huge page",
    "collapse_huge_page": "collapsing small pages into a huge page",
    "syscall": "a system call that works on the address space",
    "rcu": "freeing what a finished grace period released",
}


def _generic(c: _Ctx) -> _Out:
    fn, _src = step_function(c.code, c.stack)
    if not c.code:
        return (
            f"{c.who} runs {fn or 'a step'}",
            f"{c.who} takes one step inside `{fn}` (a control step that records no event).",
            "one interleaving point of the kernel function",
        )
    prefix, _, sub = c.code.partition(":")
    role = FUNCTION_ROLE.get(prefix)
    if role is not None:
        return (
            f"{c.who}: {fn} ({sub or prefix})",
            f"{c.who} is in `{fn}` ({role}); this step is `{c.code}`"
            + (f" on {c.vma(c.a)}." if c.a and c.vma_name(c.a) else "."),
            role,
        )
    return (
        f"{c.who}: {c.code}",
        f"{c.who} runs `{fn}` and records `{c.code}` (a={c.a}, b={c.b}).",
        f"a step of `{fn}`",
    )


_FAMILIES: dict[str, Callable[[_Ctx, str], _Out]] = {
    "fault": _fault,
    "lock_vma_under_rcu": _lvur,
    "mas_walk": _mas_walk,
    "vma_start_read": _vma_start_read,
    "vma_start_write": _vma_start_write,
    "down_read": lambda c, sub: _rwsem(c, "down_read", sub),
    "down_write": lambda c, sub: _rwsem(c, "down_write", sub),
}
_UNLOCKS = (
    "vma_end_write_all",
    "mmap_write_unlock",
    "mmap_write_downgrade",
    "mmap_read_unlock",
    "vma_end_read:up_read",
    "vma_end_read:rcu_read_unlock",
)


def narrate(
    engine: Engine,
    step: int,
    kernel_before: Kernel | None = None,
    kernel_after: Kernel | None = None,
) -> Narration:
    """Explain step ``step`` of ``engine``'s run in plain language.

    Args:
        engine: The run.
        step: The step (row) index.
        kernel_before: ``engine.state_at(step)``, the state before the step (optional;
            names the write-lock holder, ``mm_lock_seq``, waiters).
        kernel_after: ``engine.state_at(step + 1)`` (optional).

    Returns:
        The :class:`Narration`; a "no such step" narration when ``step`` is out of range.
    """
    t = synced_trace(engine)
    if not 0 <= step < len(t):
        return Narration(
            f"No step {step}",
            f"The run has {len(t)} steps (0 to {len(t) - 1}).",
            "",
            "",
            "",
        )
    c = _Ctx(engine, t, step, kernel_before, kernel_after)
    fn, source = step_function(c.code, c.stack)
    if c.code == "exit" and not c.stack:
        fn, source = "do_exit", STEPS["do_exit"][1]
    prefix, _, sub = c.code.partition(":")
    if c.code in _UNLOCKS:
        out = _unlocks(c)
    elif prefix in _FAMILIES:
        out = _FAMILIES[prefix](c, sub)
    else:
        out = _mm_ops(c) or _generic(c)
    title, text, reason = out
    for key, tids in c.grants:
        lock = "mmap_lock" if key == 0 else f"the VMA lock of `{c.vma_name(key)}`"
        who = ", ".join(c.tname(x) for x in tids)
        text += (
            f" The wake-up grants {lock} for read to {who} at once (`rwsem_mark_wake`): "
            f"{'they hold' if len(tids) > 1 else 'it holds'} it from this step on, "
            "before running again."
        )
    # The title is plain text (a heading); code spans belong in the text only.
    return Narration(title.replace("`", ""), text, fn, source, reason)


__all__ = ["ABORT_WHY", "FUNCTION_ROLE", "GLOSSARY", "Narration", "narrate", "step_function"]
