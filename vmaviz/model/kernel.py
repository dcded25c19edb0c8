"""The Linux 6.4 code paths of the per-VMA-lock machinery, written as step sequences.

Every kernel function the model runs is a step function ``f(k, th, fr) -> cost``
registered in :data:`STEPS` under the kernel's own name.  ``fr`` is the
function's activation (program counter ``fr.pc`` plus locals ``fr.loc``); one
call performs exactly one interleaving point of reference §13 (an atomic on a
lock word, a node read, a pointer publication, ...) and returns its cost in ns.
Pure control flow (branches, calls, returns) happens inside a step and costs
nothing, so the trace shows only real interleaving points.

Each step function's docstring names the kernel file and function it models.
Where 6.4.0 had a hole that a later fix closed, the behaviour is selected by a
named patch toggle in :data:`PATCHES` and tested in exactly one place.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from typing import Any

from vmaviz.model import mm as M
from vmaviz.model.maple import MasWalk, Node
from vmaviz.model.mm import PAGE_SHIFT, PAGE_SIZE, Mm, Vma
from vmaviz.model.pickling import slot_names
from vmaviz.model.rcu import Rcu
from vmaviz.model.rwsem import (
    ACQUIRED,
    OWNER_NONSPINNABLE,
    OWNER_NULL,
    OWNER_READER,
    OWNER_WRITER,
    RwSem,
)
from vmaviz.model.sched import (
    BARRIER,
    BLOCKED,
    DONE,
    RUNNING,
    Frame,
    MachineBase,
    Thread,
)

ARCHES = ("x86", "arm64", "powerpc", "s390")
ARCH_HANDLER = {
    "x86": "do_user_addr_fault",
    "arm64": "do_page_fault",
    "powerpc": "___do_page_fault",
    "s390": "do_exception",
}
ABORT_REASONS = (
    "no_vma",
    "not_anonymous",
    "no_anon_vma",
    "vma_locked",
    "trylock_failed",
    "uffd_armed",
    "out_of_range",
)

# Fault results (include/linux/mm_types.h vm_fault_reason), as strings.
VM_FAULT_OK = 0
VM_FAULT_RETRY = 0x400
VM_FAULT_SIGSEGV = 0x40
VM_FAULT_MAJOR = 0x4

#: Patch toggles: name -> (default, what it does).  ``patches: {all: true}`` in a
#: scenario (or ``--patches all``) switches every one on.  Defaults are Linux 6.4.0 as
#: merged; the "fix_*" entries are the 6.4.y stable fixes of reference §12.2.
PATCHES: dict[str, tuple[bool, str]] = {
    "vma_start_read_recheck": (
        True,
        "[v3 12/35] vma_start_read re-checks vm_lock_seq after down_read_trylock",
    ),
    "vma_detached_flag": (True, "[v3 24/35] lock_vma_under_rcu backs off detached VMAs (MISS)"),
    "lock_vma_bounds_check": (
        True,
        "[v3 25/35] lock_vma_under_rcu re-checks the VMA bounds after locking",
    ),
    "anon_vma_fallback": (
        True,
        "[v3 26/35] fall back to mmap_lock if vma->anon_vma is not yet set",
    ),
    "swap_retry": (True, "[v3 28/35] do_swap_page returns VM_FAULT_RETRY under the VMA lock"),
    "uffd_fallback": (True, "[v3 29/35] no userfaults under the VMA lock"),
    "rcu_vma_free": (True, "[v3 10/35] vm_area_free defers the free by call_rcu"),
    "write_lock_before_detach": (
        True,
        "[v3 19/35] munmap write-locks VMAs before removing them from the tree",
    ),
    "vm_flags_write_lock": (True, "[v3 13/35] every vm_flags writer write-locks the VMA"),
    "khugepaged_write_lock": (
        True,
        "[v3 15/35] 55fd6fccad31: collapse_huge_page write-locks the VMA before "
        "pmdp_collapse_flush",
    ),
    "vma_prepare_write_lock": (
        True,
        "[v4 16/33] 10fca64a6611: vma_prepare write-locks the VMAs a split/merge changes",
    ),
    "mremap_write_lock": (
        True,
        "[v3 18/35] d6ac235de4ba: move_vma write-locks the source before move_page_tables",
    ),
    "fix_fork_lock_parent": (
        False,
        "6.4.3 fb49c455323f: dup_mmap write-locks every parent VMA (R-F1)",
    ),
    "fix_mmap_lock_new_vma": (
        False,
        "6.4.3: mmap_region write-locks the new VMA before inserting it (R-M1)",
    ),
    "fix_stack_expand_write_lock": (
        False,
        "6.4.1 StackRot fix: stack expansion under the mmap write lock + vma_start_write",
    ),
    "maple_rcu_mode": (
        True,
        "[v3 8/35] 3dd4432549415: mm_mt is created in maple RCU mode (MM_MT_FLAGS has "
        "MT_FLAGS_USE_RCU); off, stores rewrite nodes in place and free nodes at once",
    ),
    "fix_anon_vma_check_under_lock": (
        False,
        "6.5-rc/6.4.y (Jann Horn): lock_vma_under_rcu checks vma->anon_vma after "
        "vma_start_read (R-A1)",
    ),
    "fix_dup_anon_vma_lock": (
        False,
        "6.4.8 (Jann Horn): dup_anon_vma write-locks dst before setting dst->anon_vma (R-D1)",
    ),
    "tcp_zerocopy_vma_lock": (
        False,
        "6.5 7a7f0946: tcp_zerocopy_receive tries lock_vma_under_rcu (find_tcp_vma) "
        "before mmap_read_lock; lock_vma_under_rcu accepts TCP VMAs",
    ),
}

#: File names that stand for a mapped TCP socket (``vma_is_tcp``).
TCP_FILES = ("tcp", "socket")


def vma_is_tcp(k: Kernel, vma: Vma) -> bool:
    """6.5 ``vma_is_tcp``: a TCP receive mapping, when that patch is on."""
    return (
        k.patch["tcp_zerocopy_vma_lock"] and vma.file is not None and vma.file.startswith(TCP_FILES)
    )


StepFn = Callable[["Kernel", Thread, Frame], int]
#: kernel function name -> (step function, kernel source file)
STEPS: dict[str, tuple[StepFn, str]] = {}
#: kernel function name -> step function (the hot-path view of STEPS)
STEP_FN: dict[str, StepFn] = {}


def kfunc(name: str, source: str) -> Callable[[StepFn], StepFn]:
    """Register a step function under its kernel name."""

    def deco(fn: StepFn) -> StepFn:
        STEPS[name] = (fn, source)
        STEP_FN[name] = fn
        return fn

    return deco


#: Freed VMAs collected before a pass that forgets them (see Kernel._forget_freed).
FORGET_BATCH = 16
#: A pass that forgets freed VMAs scans every thread's frames; the next pass waits
#: for one more freed VMA per this many values the last pass scanned, so the scan
#: costs O(1) per freed VMA however many threads (or VMA ids in a frame, like
#: exit_mmap's list of every VMA) there are, and the freed VMAs kept meanwhile
#: number at most a quarter of what the frames hold.
FORGET_SCAN_PER_VMA = 4
#: Tree stores between two full maple tree validations (at least; see
#: Kernel.tree_store): each store is checked where it wrote, and the whole tree
#: every ``max(FULL_MAPLE_CHECK_STORES, map_count)`` stores and at the end of the run.
FULL_MAPLE_CHECK_STORES = 256
#: Frame locals that hold a VMA id.
_VID_KEYS = frozenset({"vid", "key", "new"})


class Kernel(MachineBase):
    """One simulated process (one mm) on a simulated machine.

    Args:
        per_vma: CONFIG_PER_VMA_LOCK.
        arch: which arch fault handler runs (``x86``, ``arm64``, ``powerpc``, ``s390``).
        ncpus: simulated CPUs.
        costs: the cost table (ns).
        rcu_grace_ns: shortest grace period.
        patches: overrides of :data:`PATCHES`.
        seed: the seed of the op-start jitter.
        keep_freed: keep freed VMAs in ``mm.vmas`` for inspection.
    """

    __slots__ = (
        "abort_reasons",
        "arch",
        "barrier_sizes",
        "barriers",
        "check_maple",
        "dup_anon_vma_unlocked",
        "fault_latencies",
        "fault_stats",
        "forget_at",
        "keep_freed",
        "maple_full_due",
        "mm",
        "mmap_wait",
        "names",
        "nodes_freed",
        "patch",
        "per_vma",
        "rcu",
        "rcu_timer_at",
        "read_unconfirmed",
        "rng",
        "threads_done",
        "violations",
        "vma_lock",
        "vmas_freed",
    )

    def __init__(
        self,
        per_vma: bool,
        arch: str,
        ncpus: int,
        costs: dict[str, int],
        rcu_grace_ns: int,
        patches: dict[str, bool] | None = None,
        seed: int = 1,
        keep_freed: bool = False,
    ) -> None:
        super().__init__(ncpus, costs)
        self.per_vma = per_vma
        self.arch = arch
        # The seed perturbs when each op starts by up to ``op_jitter`` ns, so that
        # different seeds explore different interleavings; the same seed always
        # gives the same run.
        self.rng = random.Random(seed)
        self.patch = {k: v[0] for k, v in PATCHES.items()}
        patches = dict(patches or {})
        if patches.pop("all", False):
            self.patch = dict.fromkeys(PATCHES, True)
        unknown = sorted(set(patches) - set(PATCHES))
        if unknown:
            raise ValueError(f"unknown patch {unknown[0]!r}; known: {', '.join(PATCHES)}")
        self.patch.update(patches)
        self.rcu = Rcu(grace_ns=rcu_grace_ns)
        self.mm = Mm(per_vma=per_vma, rcu_free=self.maple_nodes_retired)
        # mm_init (kernel/fork.c): mt_init_flags(&mm->mm_mt, MM_MT_FLAGS); only
        # [v3 8/35] put MT_FLAGS_USE_RCU into MM_MT_FLAGS.
        self.mm.mm_mt.in_rcu = self.patch["maple_rcu_mode"]
        #: R-D1: VMA id -> mm_lock_seq of the write epoch in which 6.4.0's
        #: dup_anon_vma set its anon_vma before vma_prepare write-locked it.
        self.dup_anon_vma_unlocked: dict[int, int] = {}
        #: VMA id -> readers that hold its vm_lock between vma_start_read's
        #: down_read_trylock and its second vm_lock_seq check: they back off
        #: there without using the VMA, so invariant 4 does not count them.
        self.read_unconfirmed: dict[int, int] = {}
        self.names: dict[str, tuple[int, int]] = {}
        self.vma_lock = {"success": 0, "abort": 0, "retry": 0, "miss": 0}
        self.abort_reasons = dict.fromkeys(ABORT_REASONS, 0)
        self.fault_stats = {
            "total": 0,
            "via_vma_lock": 0,
            "via_mmap_lock": 0,
            "kernel_mode": 0,
            "sigsegv": 0,
        }
        self.mmap_wait = {"read_wait_ns": 0, "write_wait_ns": 0, "max_wait_ns": 0}
        self.violations: list[tuple[int, int, str]] = []
        self.barriers: dict[str, list[int]] = {}
        self.barrier_sizes: dict[str, int] = {}
        self.rcu_timer_at = -1
        self.nodes_freed = 0
        self.vmas_freed = 0
        #: Validate the maple tree (mt_validate, invariant 9) after every store.
        self.check_maple = True
        #: Stores left before the next full maple tree validation (tree_store).
        self.maple_full_due = FULL_MAPLE_CHECK_STORES
        #: ``len(mm.freed_held)`` at which the next forget pass runs (_maybe_forget_freed).
        self.forget_at = FORGET_BATCH
        #: Threads that have finished (DONE), so "all done" is O(1).
        self.threads_done = 0
        #: Keep freed VMAs in ``mm.vmas`` (state ``freed``) for inspection instead
        #: of forgetting them once nothing holds them (see _forget_freed).
        self.keep_freed = keep_freed
        #: Every finished fault's latency (ns), in order: a log for summaries, not
        #: state.  It is left out of pickles (see __getstate__).
        self.fault_latencies = array("q")

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """The slots to pickle: everything but the fault-latency log.

        The log grows with every fault; in the state it would make each keyframe
        larger than the last (several hundred kB a keyframe after a million
        steps).  A kernel loaded from a pickle starts an empty log: only the live
        run's kernel has the whole one, which is what ``Engine.summary`` reads.
        """
        slots = {name: getattr(self, name) for name in slot_names(type(self))}
        slots["fault_latencies"] = array("q")
        return None, slots

    # ------------------------------------------------------------- helpers

    def violate(self, inv: int, msg: str) -> None:
        """Record an invariant violation (reference §11); never raises."""
        # The 0-based index of the step being taken (its trace row).
        self.violations.append((self.steps - 1, inv, msg))

    def tree_store(self, start: int, end: int, vma: Vma | None) -> int:
        """``vma_iter_store`` / ``vma_iter_clear``: one maple tree write; returns its cost.

        With :attr:`check_maple` the tree is validated afterwards (invariant 9,
        the checks of ``mt_validate``): where the store wrote after every store
        (``MapleTree.validate_store``: the nodes on the stored range's paths, the
        nodes it allocated or retired and their parents; its cost does not grow
        with the tree), and the whole tree every ``max(FULL_MAPLE_CHECK_STORES,
        map_count)`` stores, so a wrong write outside those nodes is still
        reported, within a bounded number of stores, at O(1) amortised cost a
        store.  :meth:`finish` validates the whole tree once more at the end.
        """
        mt = self.mm.mm_mt
        res = mt.store_range(start, end - 1, vma)
        if self.check_maple:
            errors = mt.validate_store(start, end - 1, (*res.new_nodes, *res.retired))
            if errors:
                self.violate(9, f"maple tree invalid after [{start:#x}, {end:#x}): {errors[0]}")
            self.maple_full_due -= 1
            if self.maple_full_due <= 0:
                self.maple_full_due = max(FULL_MAPLE_CHECK_STORES, self.mm.map_count)
                self.check_maple_full(f"after [{start:#x}, {end:#x}) (periodic full check)")
        return self.costs["maple_store"]

    def check_maple_full(self, when: str) -> None:
        """``mt_validate`` (lib/maple_tree.c) on the whole tree (invariant 9): its first problem."""
        errors = self.mm.mm_mt.validate()
        if errors:
            self.violate(9, f"maple tree invalid {when}: {errors[0]}")

    def check_modify_vma(self, th: Thread, vma: Vma, what: str, unlocked: bool = False) -> None:
        """Invariants 3 and 4: a VMA in the tree changes only while write-locked and unread.

        Args:
            th: The writer.
            vma: The VMA it changes.
            what: The fields, for the message.
            unlocked: A patch toggle switched off the ``vma_start_write`` this
                change relies on.  The missing lock is then the experiment, not
                the finding: only its consequence is reported, a fault holding
                the VMA's read lock while it changes (invariant 4).
        """
        if not self.per_vma or vma.state != "live" or vma.detached:
            return
        if unlocked:
            if self.vma_read_locked(vma):
                self.violate(4, f"{vma.label()} changes {what} while a fault holds its read lock")
        elif vma.vm_lock_seq != self.mm.mm_lock_seq or not self.holds_mmap_write(th):
            self.violate(3, f"T{th.tid} modifies {what} of {vma.label()} without its write lock")
        elif self.vma_read_locked(vma):
            self.violate(4, f"{vma.label()} changes {what} while read-locked")

    def vma_read_locked(self, vma: Vma) -> int:
        """How many tasks hold ``vma``'s read lock from a successful ``vma_start_read``.

        A reader between ``down_read_trylock`` and the second ``vm_lock_seq``
        check holds the rwsem but has not read-locked the VMA yet (reference §11
        invariant 1: success is decided at the second check); with the recheck it
        then backs off without touching the VMA, so a writer that finished
        ``vma_start_write`` before the trylock may already change the VMA.
        """
        return vma.vm_lock.readers - self.read_unconfirmed.get(vma.vid, 0)

    def maple_nodes_retired(self, nodes: list[Node]) -> None:
        """The maple tree's RCU-free callback: dead nodes wait for a grace period."""
        if self.mm.mm_mt.in_rcu:
            self.rcu.call_rcu("maple_node", nodes, self.now, self.cur_cpu)
            self._arm_rcu_timer()
        else:
            for n in nodes:
                n.freed = True
            self.nodes_freed += len(nodes)

    def _arm_rcu_timer(self) -> None:
        at = self.rcu.next_expiry()
        if at is None:
            return
        at = max(at, self.now)
        if self.rcu_timer_at < 0 or at < self.rcu_timer_at:
            self.rcu_timer_at = at
            self._push(at, 0, -1, 0)

    def rcu_read_unlock(self, th: Thread) -> None:
        self.rcu.read_unlock(th.tid)
        if self.rcu.pending and not self.rcu.in_section(th.tid):
            self._arm_rcu_timer()

    def run_rcu_callbacks(self) -> None:
        """The RCU softirq: run every callback whose grace period has ended."""
        self.rcu_timer_at = -1
        done = self.rcu.ready(self.now)
        freed_vmas = freed_nodes = 0
        for cb in done:
            if cb.kind == "maple_node":
                for n in cb.payload:
                    n.freed = True
                freed_nodes += len(cb.payload)
            else:
                vma = self.mm.vmas[cb.payload]
                self._vm_area_free_rcu_cb(vma)
                freed_vmas += 1
        self.nodes_freed += freed_nodes
        self.vmas_freed += freed_vmas
        self._maybe_forget_freed()
        self.emit("rcu:callbacks", freed_vmas, freed_nodes, f"grace period {self.rcu.gp_completed}")
        if self.rcu.pending:
            self._arm_rcu_timer()

    def _vm_area_free_rcu_cb(self, vma: Vma) -> None:
        """``vm_area_free_rcu_cb`` (kernel/fork.c): the rwsem must be free (invariant 8)."""
        if not vma.vm_lock.is_free or vma.vm_lock.waiters:
            self.violate(8, f"VMA {vma.label()} freed while its vm_lock is held")
        vma.state = "freed"
        if not self.keep_freed:
            self.mm.freed_held.append(vma.vid)
            self._maybe_forget_freed()

    def _maybe_forget_freed(self) -> None:
        """Forget freed VMAs in batches (each pass scans every frame), and at the end.

        A pass runs once :attr:`forget_at` freed VMAs wait; the pass sets the next
        threshold from what it scanned (see :data:`FORGET_SCAN_PER_VMA`).
        """
        held = self.mm.freed_held
        if held and (len(held) >= self.forget_at or self.threads_done == len(self.threads)):
            self._forget_freed()

    def _forget_freed(self) -> None:
        """Drop freed VMAs that no thread refers to any more, as the slab frees the memory.

        A freed VMA that some thread's kernel frame still holds stays in
        ``mm.vmas`` (with state ``freed``) so that the thread's later access is
        reported as a use-after-free (invariant 7) rather than crashing the model;
        it is dropped by a later pass once nothing holds it.  Forgetting freed
        VMAs keeps the state, and so every keyframe, as small as the live
        address space instead of growing with every VMA ever created.
        """
        mm = self.mm
        refs, scanned = self._frame_refs()
        held = []
        for vid in mm.freed_held:
            vma = mm.vmas[vid]
            if vid in refs or id(vma) in refs:
                held.append(vid)
            else:
                del mm.vmas[vid]
                mm.freed_names[vid] = vma.name
                self.lines.pop(vid, None)
        mm.freed_held = held
        self.forget_at = len(held) + max(FORGET_BATCH, scanned // FORGET_SCAN_PER_VMA)

    def _frame_refs(self) -> tuple[set[int], int]:
        """The VMA ids (and ``id()`` of VMA objects) that threads' kernel frames refer to.

        Frames name a VMA by its id under ``vid`` (``key`` in ``down_write``,
        ``new`` in ``mremap``), by ids or objects in lists
        and tuples (``todo``, ``victims``, ...), or through a maple walk's entry.
        Over-approximating (an unrelated int in a list) only keeps a freed VMA
        a little longer.

        Returns:
            The ids, and how many values the scan looked at (its cost).
        """
        refs: set[int] = set()
        scanned = len(self.threads)
        for th in self.threads:
            for fr in th.frames:
                scanned += len(fr.loc)
                for key, v in fr.loc.items():
                    if key in _VID_KEYS and type(v) is int:
                        refs.add(v)
                    elif isinstance(v, list | tuple | set):
                        scanned += len(v)
                        for x in v:
                            if type(x) is int:
                                refs.add(x)
                            elif isinstance(x, Vma):
                                refs.add(id(x))
                    elif isinstance(v, Vma):
                        refs.add(id(v))
                    elif isinstance(v, MasWalk) and v.entry is not None:
                        refs.add(id(v.entry))
        return refs, scanned

    def finish(self, th: Thread, cost: int) -> None:
        if th.state != DONE:
            self.threads_done += 1
        super().finish(th, cost)
        if self.threads_done == len(self.threads) and self.check_maple:
            # The last thread is done: no store follows, so this full check
            # closes the run's periodic ones (tree_store).
            self.check_maple_full("at the end of the run")
        self._maybe_forget_freed()

    def vm_area_free(self, vma: Vma) -> None:
        """``vm_area_free`` (kernel/fork.c): RCU-deferred with CONFIG_PER_VMA_LOCK."""
        if self.per_vma and self.patch["rcu_vma_free"]:
            vma.state = "rcu_pending"
            self.rcu.call_rcu("vma", vma.vid, self.now, self.cur_cpu)
            self._arm_rcu_timer()
        else:
            self._vm_area_free_rcu_cb(vma)
            self.vmas_freed += 1

    def resolve(self, name: str, page: int = 0) -> int:
        """A scenario address: the byte address of ``page`` of the range labelled ``name``."""
        start, _ = self.names[name]
        return start + page * PAGE_SIZE

    def sem(self, key: int) -> RwSem:
        """The rw_semaphore named by ``key``: 0 is mmap_lock, else a VMA id."""
        return self.mm.mmap_lock if key == 0 else self.mm.vmas[key].vm_lock

    def holds_mmap_write(self, th: Thread) -> bool:
        return self.mm.mmap_lock.writer == th.tid

    # ------------------------------------------------------------ stepping

    def step_thread(self, th: Thread) -> int:
        """Run one micro-step of ``th``; returns its cost (ns)."""
        jitter = 0
        while True:
            if not th.frames:
                if not self._next_op(th):
                    return -1
                jitter = self.rng.randrange(self.costs["op_jitter"] + 1)
            fr = th.frames[-1]
            self.step_sid = fr.sid
            self.step_fid = fr.fid
            cost = STEP_FN[fr.fn](self, th, fr)
            if cost >= 0:
                return cost + jitter
            # A negative cost is a pure control transfer (call/return): keep going.

    def _next_op(self, th: Thread) -> bool:
        """Fetch the thread's next scenario op and push its kernel entry point.

        A thread with SIGKILL pending runs no further op: on its return to user
        mode (``exit_to_user_mode_loop`` -> ``arch_do_signal_or_restart`` ->
        ``get_signal``) it calls ``do_group_exit`` -> ``do_exit``.
        """
        if th.sigkill and not th.exiting:
            th.pc_stack = []
            self.call(th, "do_exit")
            return True
        while th.pc_stack:
            top = th.pc_stack[-1]
            ops, idx, remaining = top
            if idx < len(ops):
                op = ops[idx]
                top[1] = idx + 1
                if op.kind == "loop":
                    th.pc_stack.append([op.body or [], 0, int(op.args["times"]) - 1])
                    continue
                th.op_no += 1
                self.step_op = th.op_no
                name = unmapped_name(self.names, op)
                if name is None:
                    self.call(th, OP_ENTRY[op.kind], op=op)
                else:
                    self.call(th, "no_address", op=op, name=name)
                return True
            if remaining > 0:
                top[1] = 0
                top[2] = remaining - 1
                continue
            th.pc_stack.pop()
        return False


# =====================================================================
# rw_semaphore acquisition as steps (kernel/locking/rwsem.c)
# =====================================================================


@kfunc("down_read_killable", "kernel/locking/rwsem.c")
@kfunc("down_read", "kernel/locking/rwsem.c")
def down_read(k: Kernel, th: Thread, fr: Frame) -> int:
    """``down_read``: fast path, reader stealing, or queue and sleep (reference §8.2).

    ``down_read_killable`` is the same with ``TASK_KILLABLE``: the wait loop of
    ``rwsem_down_read_slowpath`` checks ``signal_pending_state`` before each
    sleep, and a waiter not yet granted leaves by ``out_nolock`` with ``-EINTR``
    (the frame returns False).
    """
    key = fr.loc["key"]
    sem = k.sem(key)
    if fr.pc == 0:
        cost = k.atomic(th, key)
        result, wakes = sem.down_read(th.tid, k.now)
        k.wake_all(wakes, key)
        check_exclusion(k, key)
        if result == ACQUIRED:
            k.emit("down_read:acquired", key)
            k.ret(th, True)
            return cost
        fr.pc = 1
        fr.loc["since"] = k.now
        if th.sigkill and fr.fn == "down_read_killable":
            return _out_nolock(k, th, key, False, cost)
        k.emit("down_read:queued", key, len(sem.waiters))
        k.block(th, f"{sem.name} (read)", cost)
        return cost
    if sem.is_queued(th.tid):
        # Woken but not granted: only a fatal signal wakes a killable reader so
        # ("if (waiter.task) goto out_nolock").
        return _out_nolock(k, th, key, False, k.costs["plain_load"])
    # Woken: readers are woken only once granted.
    waited = k.now - fr.loc["since"]
    if key == 0:
        k.mmap_wait["read_wait_ns"] += waited
        k.mmap_wait["max_wait_ns"] = max(k.mmap_wait["max_wait_ns"], waited)
    k.emit("down_read:granted", key, waited)
    k.ret(th, True)
    return k.costs["plain_load"]


@kfunc("down_write_killable", "kernel/locking/rwsem.c")
@kfunc("down_write", "kernel/locking/rwsem.c")
def down_write(k: Kernel, th: Thread, fr: Frame) -> int:
    """``down_write``: ``rwsem_write_trylock``, then ``rwsem_down_write_slowpath``.

    pc 0 is the fast-path CAS and ``rwsem_can_spin_on_owner``; pc 1 is one
    round of ``rwsem_optimistic_spin`` (``rwsem_spin_on_owner`` then
    ``rwsem_try_write_lock_unqueued``, which ignores queued waiters: a spinner
    takes a free lock from a woken waiter that has not run yet); pc 2 queues
    and tries ``rwsem_try_write_lock`` once before sleeping; pc 3 is that
    try after a wake-up; pc 4 is the slow path's spin on a running writer
    owner once this waiter's ``handoff_set`` is true.  ``need_resched`` is
    modelled as the end of a time slice.

    ``down_write_killable`` runs the same steps in ``TASK_KILLABLE``: after
    each failed ``rwsem_try_write_lock`` a pending SIGKILL
    (``signal_pending_state``) sends it to ``out_nolock`` (``-EINTR``, the
    frame returns False), and ``schedule`` does not put it to sleep.
    """
    key = fr.loc["key"]
    # Kernel.sem, inlined: a contended run is mostly spin polls.
    sem = k.mm.mmap_lock if key == 0 else k.mm.vmas[key].vm_lock
    pc = fr.pc
    if pc == 1:
        # One round of rwsem_optimistic_spin.  (First: in a contended run most
        # steps are these polls.)
        cost = k.costs["spin_poll"]
        state = sem.owner_state(_owner_running(k, sem))
        if state != OWNER_NONSPINNABLE:
            # rwsem_try_write_lock_unqueued: the atomic only when count looks
            # free of holders and HANDOFF; queued waiters do not matter.
            if sem.writer is None and sem.readers == 0 and not sem.handoff:
                cost += k.atomic(th, key)
                if sem.try_write_lock_unqueued(th.tid):
                    th.spinning = False
                    k.emit("down_write:acquired_spinning", key, len(sem.waiters))
                    _wait_done(k, fr, key, write=True)
                    k.ret(th, True)
                    return cost
            if state == OWNER_READER:
                if fr.loc["prev_owner"] != OWNER_READER:
                    # rwsem_rspin_threshold, re-armed whenever readers take over.
                    fr.loc["spin_until"] = k.now + sem.reader_spin_limit_ns()
                elif k.now >= fr.loc["spin_until"]:
                    # Time out on a reader-owned lock: rwsem_set_nonspinnable.
                    newly = sem.set_nonspinnable()
                    return _end_spin(k, th, fr, key, cost, int(newly))
            fr.loc["prev_owner"] = state
            if k.now < fr.loc["resched_at"]:
                if not cost:
                    # A free poll never reaches resched_at: see poll_guard.
                    poll_guard(k, th, fr, f"down_write's optimistic spin on {sem.name}")
                k.emit("down_write:spinning", key, sem.readers)
                return cost
        return _end_spin(k, th, fr, key, cost, 0)
    if pc == 0:
        cost = k.atomic(th, key)
        if sem.down_write_fast(th.tid):
            check_exclusion(k, key)
            k.emit("down_write:acquired", key)
            k.ret(th, True)
            return cost
        fr.loc["since"] = k.now
        if sem.can_spin_on_owner(_owner_running(k, sem)):
            fr.loc["resched_at"] = k.now + k.costs["timeslice"]
            fr.loc["spin_until"] = 0
            # rwsem_optimistic_spin starts with prev_owner_state = OWNER_NULL.
            fr.loc["prev_owner"] = OWNER_NULL
            th.spinning = True
            fr.pc = 1
            k.emit("down_write:spin", key, sem.readers)
            return cost
        # rwsem_can_spin_on_owner refused (a sleeping writer owns it, or
        # NONSPINNABLE): straight to the queueing slow path.
        fr.pc = 2
        k.emit("down_write:rwsem_down_write_slowpath", key, sem.readers)
        return cost
    if pc == 2:
        cost = k.atomic(th, key)
        result, wakes = sem.queue_writer(th.tid, k.now)
        k.wake_all(wakes, key)
        if result == ACQUIRED:
            check_exclusion(k, key)
            k.emit("down_write:acquired", key)
            _wait_done(k, fr, key, write=True)
            k.ret(th, True)
            return cost
        fr.pc = 3
        if th.sigkill and fr.fn == "down_write_killable":
            return _out_nolock(k, th, key, True, cost)
        k.emit("down_write:queued", key, len(sem.waiters))
        k.block(th, f"{sem.name} (write)", cost)
        return cost
    if pc == 4:
        # The slow path's rwsem_spin_on_owner after setting HANDOFF: poll while
        # the same writer owns the lock and runs.
        cost = k.costs["spin_poll"]
        state = sem.owner_state(_owner_running(k, sem))
        same = state == OWNER_WRITER and sem.owner == fr.loc["spin_owner"]
        if same and k.now < fr.loc["resched_at"]:
            if not cost:
                poll_guard(k, th, fr, f"down_write's handoff spin on {sem.name}")
            k.emit("down_write:spinning", key, sem.readers)
            return cost
        th.spinning = False
        fr.pc = 3
        if state == OWNER_NULL:
            # The owner released the lock: trylock_again without sleeping.
            k.emit("down_write:spin_end", key)
            return cost
        k.emit("down_write:spin_end", key)
        if not (th.sigkill and fr.fn == "down_write_killable"):
            # With SIGKILL pending a TASK_KILLABLE schedule() returns at once:
            # the next rwsem_try_write_lock fails into out_nolock.
            k.block(th, f"{sem.name} (write)", cost)
        return cost
    # pc 3: woken (or first attempt after queueing) -> rwsem_try_write_lock.
    cost = k.atomic(th, key)
    if sem.writer_retry(th.tid, k.now):
        check_exclusion(k, key)
        k.emit("down_write:acquired_after_wait", key)
        _wait_done(k, fr, key, write=True)
        k.ret(th, True)
        return cost
    if th.sigkill and fr.fn == "down_write_killable":
        return _out_nolock(k, th, key, True, cost)
    k.emit("down_write:retry_failed", key, int(sem.handoff))
    if sem.waiter_handoff_set(th.tid) and sem.owner_state(_owner_running(k, sem)) == OWNER_WRITER:
        # handoff_set: spin on the running writer owner rather than sleep.
        fr.loc["spin_owner"] = sem.owner
        fr.loc["resched_at"] = k.now + k.costs["timeslice"]
        th.spinning = True
        fr.pc = 4
        return cost
    k.block(th, f"{sem.name} (write)", cost)
    return cost


def _out_nolock(k: Kernel, th: Thread, key: int, write: bool, cost: int) -> int:
    """The ``out_nolock`` path of ``rwsem_down_{read,write}_slowpath``: ``-EINTR``.

    kernel/locking/rwsem.c: a ``TASK_KILLABLE`` waiter with SIGKILL pending takes
    itself off ``wait_list`` with ``rwsem_del_wake_waiter`` (see
    :meth:`RwSem.del_wake_waiter`) and returns ``ERR_PTR(-EINTR)``; it holds
    nothing.  ``a`` = lock key, ``b`` = HANDOFF afterwards.
    """
    sem = k.sem(key)
    k.wake_all(sem.del_wake_waiter(th.tid, k.now), key)
    if write:
        k.emit("rwsem_down_write_slowpath:eintr", key, int(sem.handoff))
    else:
        k.emit("rwsem_down_read_slowpath:eintr", key, int(sem.handoff))
    k.ret(th, False)
    return cost


def _owner_running(k: Kernel, sem: RwSem) -> bool:
    """``owner_on_cpu`` for the task in ``sem->owner`` (meaningful for a writer owner)."""
    return sem.owner is not None and k.threads[sem.owner].state == RUNNING


def _end_spin(k: Kernel, th: Thread, fr: Frame, key: int, cost: int, nonspinnable: int) -> int:
    """``rwsem_optimistic_spin`` gives up: the writer goes on to queue (pc 2).

    ``nonspinnable`` is 1 when this spinner's time-out set RWSEM_NONSPINNABLE.
    """
    th.spinning = False
    fr.pc = 2
    k.emit("down_write:spin_end", key, nonspinnable)
    return cost


#: Rounds of one polling loop at one simulated instant after which the run stops
#: with :class:`StallError` (see :func:`poll_guard`).
STALL_POLLS = 100_000


class StallError(RuntimeError):
    """A polling loop repeats without simulated time advancing, so it never ends.

    ``down_write``'s optimistic spin ends when simulated time reaches its spin
    limit or when the owner, whose next step lies in the future, releases the
    lock.  With a poll that costs 0 ns the spinner is always the earliest event:
    time stands still and the spin never ends.  (The model's other retry loop,
    the MISS retry of ``lock_vma_under_rcu``, repeats only after another
    thread has detached a VMA again, so it cannot spin on an unchanged state.)
    """


def poll_guard(k: Kernel, th: Thread, fr: Frame, what: str) -> None:
    """Count the rounds of a polling loop made at the current instant; stop a stall.

    Called once per round of the loop (O(1)); the count lives in the frame and
    restarts whenever simulated time has moved since the previous round.  Past
    :data:`STALL_POLLS` rounds at one instant the run cannot progress.

    Raises:
        StallError: ``th`` polled :data:`STALL_POLLS` times without time advancing.
    """
    L = fr.loc
    if L.get("poll_at") != k.now:
        L["poll_at"] = k.now
        L["polls"] = 1
        return
    L["polls"] += 1
    if L["polls"] >= STALL_POLLS:
        raise StallError(
            f"T{th.tid} ({th.name}) repeated {what} {STALL_POLLS:,} times at "
            f"t={k.now:,} ns without simulated time advancing: the costs of that "
            "loop's steps are all 0 ns, so it can never end"
        )


def _wait_done(k: Kernel, fr: Frame, key: int, write: bool) -> None:
    if key != 0 or "since" not in fr.loc:
        return
    waited = k.now - fr.loc["since"]
    k.mmap_wait["write_wait_ns" if write else "read_wait_ns"] += waited
    k.mmap_wait["max_wait_ns"] = max(k.mmap_wait["max_wait_ns"], waited)


def _up_read(k: Kernel, th: Thread, key: int) -> int:
    """``up_read``: one atomic; the last reader wakes the queue."""
    cost = k.atomic(th, key)
    k.wake_all(k.sem(key).up_read(th.tid), key)
    return cost


def check_exclusion(k: Kernel, key: int) -> None:
    """Invariant 14 (and its VMA-lock twin): one writer, and no readers beside it."""
    sem = k.sem(key)
    if sem.writer is not None and sem.readers:
        k.violate(14, f"{sem.name}: writer T{sem.writer} and {sem.readers} readers at once")


# =====================================================================
# mmap_lock wrappers (include/linux/mmap_lock.h)
# =====================================================================


def _tail_call(k: Kernel, th: Thread, fr: Frame, fn: str, **loc: Any) -> int:
    """A wrapper's whole body: call ``fn`` (a pure control transfer), then return."""
    if fr.pc == 0:
        fr.pc = 1
        k.call(th, fn, **loc)
        return -1
    k.ret(th)
    return -1


@kfunc("mmap_write_lock", "include/linux/mmap_lock.h")
def mmap_write_lock(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_write_lock``: ``down_write(&mm->mmap_lock)``; no ``mm_lock_seq`` change in 6.4."""
    return _tail_call(k, th, fr, "down_write", key=0)


@kfunc("mmap_read_lock", "include/linux/mmap_lock.h")
def mmap_read_lock(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_read_lock``: ``down_read(&mm->mmap_lock)``."""
    return _tail_call(k, th, fr, "down_read", key=0)


def _killable_lock(k: Kernel, th: Thread, fr: Frame, fn: str) -> bool | None:
    """The body of ``mmap_{write,read}_lock_killable``: ``fn`` on ``mmap_lock``.

    Returns:
        None while the lock call is to be made or has succeeded (the wrapper has
        then returned), True when it failed with ``-EINTR``: the caller then
        unwinds with :func:`_eintr_return`.
    """
    if fr.pc == 0:
        fr.pc = 1
        k.call(th, fn, key=0)
        return None
    if fr.loc.pop("ret", None) is False:
        return True
    k.ret(th)
    return None


def _eintr_return(k: Kernel, th: Thread) -> None:
    """The syscall returns ``-EINTR`` at once: ``if (mmap_write_lock_killable(mm))
    return -EINTR;`` at each 6.4.0 call site, which took the lock before changing
    anything.  Pops the wrapper and the syscall's frame (nothing to undo)."""
    th.frames.pop()
    k.ret(th, "EINTR")


@kfunc("mmap_write_lock_killable", "include/linux/mmap_lock.h")
def mmap_write_lock_killable(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_write_lock_killable``: ``down_write_killable(&mm->mmap_lock)``.

    On ``-EINTR`` (SIGKILL while queued) the calling syscall returns ``-EINTR``
    with nothing changed (``a`` = 0, the note names the syscall's function).
    """
    return _mmap_lock_killable(k, th, fr, "down_write_killable", "mmap_write_lock_killable")


@kfunc("mmap_read_lock_killable", "include/linux/mmap_lock.h")
def mmap_read_lock_killable(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_read_lock_killable``: ``down_read_killable(&mm->mmap_lock)``; see
    :func:`mmap_write_lock_killable` for ``-EINTR``."""
    return _mmap_lock_killable(k, th, fr, "down_read_killable", "mmap_read_lock_killable")


def _mmap_lock_killable(k: Kernel, th: Thread, fr: Frame, down: str, name: str) -> int:
    """The body of both killable mmap_lock wrappers: ``down`` on mmap_lock, and on
    ``-EINTR`` the ``name:eintr`` event and the syscall's return."""
    if not _killable_lock(k, th, fr, down):
        return -1
    k.emit(f"{name}:eintr", 0, 0, f"{th.frames[-2].fn} returns -EINTR")
    _eintr_return(k, th)
    return k.costs["plain_load"]


@kfunc("mmap_read_unlock", "include/linux/mmap_lock.h")
def mmap_read_unlock(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_read_unlock``: ``up_read(&mm->mmap_lock)``."""
    cost = _up_read(k, th, 0)
    k.emit("mmap_read_unlock", 0)
    k.ret(th)
    return cost


@kfunc("vma_end_write_all", "include/linux/mmap_lock.h")
def vma_end_write_all(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vma_end_write_all``: ``mm_lock_seq++`` unlocks every VMA write-locked in this epoch."""
    if not k.holds_mmap_write(th):
        k.violate(2, f"T{th.tid} bumps mm_lock_seq without the mmap write lock")
    if k.per_vma:
        k.mm.mm_lock_seq += 1
        k.emit("vma_end_write_all", k.mm.mm_lock_seq)
    k.ret(th)
    return k.costs["plain_load"] if k.per_vma else -1


@kfunc("mmap_write_unlock", "include/linux/mmap_lock.h")
def mmap_write_unlock(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_write_unlock``: ``vma_end_write_all`` *then* ``up_write`` (VMAs first)."""
    if fr.pc == 0:
        fr.pc = 1
        k.call(th, "vma_end_write_all")
        return -1
    sem = k.mm.mmap_lock
    cost = k.atomic(th, 0)
    k.wake_all(sem.up_write(th.tid), 0)
    k.emit("mmap_write_unlock", k.mm.mm_lock_seq if k.per_vma else -1)
    k.ret(th)
    return cost


@kfunc("mmap_write_downgrade", "include/linux/mmap_lock.h")
def mmap_write_downgrade(k: Kernel, th: Thread, fr: Frame) -> int:
    """``mmap_write_downgrade``: ``vma_end_write_all`` then ``downgrade_write``."""
    if fr.pc == 0:
        fr.pc = 1
        k.call(th, "vma_end_write_all")
        return -1
    cost = k.atomic(th, 0)
    k.wake_all(k.mm.mmap_lock.downgrade_write(th.tid), 0)
    k.emit("mmap_write_downgrade", k.mm.mm_lock_seq if k.per_vma else -1)
    k.ret(th)
    return cost


# =====================================================================
# Per-VMA lock primitives (include/linux/mm.h)
# =====================================================================


@kfunc("vma_start_read", "include/linux/mm.h")
def vma_start_read(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vma_start_read``: seq check, ``down_read_trylock``, seq re-check (reference §2.1)."""
    vma = k.mm.vmas[fr.loc["vid"]]
    mm = k.mm
    pc = fr.pc
    if pc == 0:
        if vma.vm_lock_seq == mm.mm_lock_seq:
            k.emit("vma_start_read:seq_locked", vma.vid, vma.vm_lock_seq)
            k.ret(th, "vma_locked")
            return k.costs["vma_check"]
        fr.pc = 1
        k.emit("vma_start_read:seq_ok", vma.vid, vma.vm_lock_seq)
        return k.costs["vma_check"]
    if pc == 1:
        cost = k.atomic(th, vma.vid)
        if not vma.vm_lock.down_read_trylock(th.tid):
            k.emit("vma_start_read:trylock_failed", vma.vid, len(vma.vm_lock.waiters))
            k.ret(th, "trylock_failed")
            return cost
        fr.pc = 2
        k.read_unconfirmed[vma.vid] = k.read_unconfirmed.get(vma.vid, 0) + 1
        k.emit("vma_start_read:trylock_ok", vma.vid)
        return cost
    # pc 2: re-check under the read lock (the writer may have finished in between).
    left = k.read_unconfirmed[vma.vid] - 1
    if left:
        k.read_unconfirmed[vma.vid] = left
    else:
        del k.read_unconfirmed[vma.vid]
    if k.patch["vma_start_read_recheck"] and vma.vm_lock_seq == mm.mm_lock_seq:
        cost = _up_read(k, th, vma.vid)
        k.emit("vma_start_read:seq_locked_after_trylock", vma.vid, vma.vm_lock_seq)
        k.ret(th, "vma_locked")
        return cost + k.costs["vma_check"]
    if vma.vm_lock_seq == mm.mm_lock_seq:
        k.violate(1, f"T{th.tid} read-locked {vma.label()}, which is write-locked")
    k.emit("vma_start_read:locked", vma.vid)
    k.ret(th, None)
    return k.costs["vma_check"]


@kfunc("vma_end_read", "include/linux/mm.h")
def vma_end_read(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vma_end_read``: ``rcu_read_lock(); up_read(); rcu_read_unlock()`` (reference §2.2)."""
    vma = k.mm.vmas[fr.loc["vid"]]
    if fr.pc == 0:
        k.rcu.read_lock(th.tid)
        cost = k.costs["rcu_read_lock"] + _up_read(k, th, vma.vid)
        k.emit("vma_end_read:up_read", vma.vid)
        fr.pc = 1
        return cost
    k.rcu_read_unlock(th)
    k.emit("vma_end_read:rcu_read_unlock", vma.vid)
    k.ret(th)
    return k.costs["rcu_read_lock"]


@kfunc("vma_start_write", "include/linux/mm.h")
def vma_start_write(k: Kernel, th: Thread, fr: Frame) -> int:
    """``vma_start_write``: seq check, ``down_write``, set ``vm_lock_seq``, ``up_write``."""
    vma = k.mm.vmas[fr.loc["vid"]]
    mm = k.mm
    if not k.per_vma:
        k.ret(th)
        return -1
    pc = fr.pc
    if pc == 0:
        if not k.holds_mmap_write(th):
            k.violate(2, f"T{th.tid} vma_start_write({vma.label()}) without the mmap write lock")
        if vma.vm_lock_seq == mm.mm_lock_seq:
            k.emit("vma_start_write:already_locked", vma.vid, vma.vm_lock_seq)
            k.ret(th)
            return k.costs["vma_check"]
        if vma.vm_lock.reader_tids.count(th.tid):
            k.violate(12, f"T{th.tid} waits for {vma.label()}'s write lock holding its read lock")
        fr.pc = 1
        k.call(th, "down_write", key=vma.vid)
        k.emit("vma_start_write:seq_unlocked", vma.vid, vma.vm_lock_seq)
        return k.costs["vma_check"]
    if pc == 1:
        vma.vm_lock_seq = mm.mm_lock_seq
        fr.pc = 2
        k.emit("vma_start_write:seq_set", vma.vid, vma.vm_lock_seq)
        return k.costs["plain_load"]
    cost = k.atomic(th, vma.vid)
    k.wake_all(vma.vm_lock.up_write(th.tid), vma.vid)
    k.emit("vma_start_write:up_write", vma.vid)
    k.ret(th)
    return cost


def _start_write(k: Kernel, th: Thread, vma: Vma) -> None:
    """Call ``vma_start_write`` for ``vma`` (no-op without CONFIG_PER_VMA_LOCK)."""
    if k.per_vma:
        k.call(th, "vma_start_write", vid=vma.vid)


# =====================================================================
# lock_vma_under_rcu (mm/memory.c)
# =====================================================================


@kfunc("lock_vma_under_rcu", "mm/memory.c")
def lock_vma_under_rcu(k: Kernel, th: Thread, fr: Frame) -> int:
    """``lock_vma_under_rcu``: every exit branch of reference §2.8, in 6.4's order."""
    L = fr.loc
    while True:
        pc = fr.pc
        if pc == 0:
            k.rcu.read_lock(th.tid)
            L["walk"] = MasWalk(k.mm.mm_mt, L["address"], record=False)
            fr.pc = 1
            k.emit("lock_vma_under_rcu:rcu_read_lock")
            return k.costs["rcu_read_lock"]
        if pc == 1:
            walk: MasWalk = L["walk"]
            ev = walk.step()
            if ev.kind == "use_after_free":
                k.violate(7, f"T{th.tid}'s RCU walk read a freed maple node")
            node_id = ev.node.nid if ev.node is not None else 0
            k.emit(f"mas_walk:{ev.kind}", node_id, ev.depth)
            if walk.done:
                entry = walk.entry
                L["vid"] = entry.vid if entry is not None else 0
                fr.pc = 2
            return k.costs["maple_level"]
        if pc == 2:
            if not L["vid"]:
                return _lvur_inval(k, th, fr, "no_vma")
            vma = k.mm.vmas[fr.loc["vid"]]
            if vma.state == "freed":
                k.violate(7, f"T{th.tid} reads freed {vma.label()} under RCU")
            if not vma.is_anonymous and not vma_is_tcp(k, vma):
                return _lvur_inval(k, th, fr, "not_anonymous")
            fr.pc = 3
            k.emit("lock_vma_under_rcu:anonymous", vma.vid)
            return k.costs["vma_check"]
        if pc == 3:
            vma = k.mm.vmas[fr.loc["vid"]]
            # 6.4.0 tests anon_vma here, before the VMA is locked (R-A1); the
            # fix moves the test after vma_start_read (pc 5).
            if (
                vma.anon_vma is None
                and k.patch["anon_vma_fallback"]
                and not k.patch["fix_anon_vma_check_under_lock"]
                and not vma_is_tcp(k, vma)
            ):
                return _lvur_inval(k, th, fr, "no_anon_vma")
            fr.pc = 4
            k.emit("lock_vma_under_rcu:anon_vma_ok", vma.vid)
            return k.costs["vma_check"]
        if pc == 4:
            fr.pc = 5
            k.call(th, "vma_start_read", vid=L["vid"])
            return -1
        if pc == 5:
            # vma_start_read's result: None when locked, else why it failed.
            why = L.pop("ret")
            if why is not None:
                return _lvur_inval(k, th, fr, why)
            vma = k.mm.vmas[fr.loc["vid"]]
            _check_dup_anon_vma_window(k, th, vma)
            if (
                k.patch["fix_anon_vma_check_under_lock"]
                and k.patch["anon_vma_fallback"]
                and vma.anon_vma is None
                and not vma_is_tcp(k, vma)
            ):
                # The fix: under the VMA lock a concurrent mremap(MREMAP_DONTUNMAP)
                # can no longer take the anon_vma away between test and use.
                L["inval"] = "no_anon_vma"
                fr.pc = 20
                k.call(th, "vma_end_read", vid=vma.vid)
                k.emit("lock_vma_under_rcu:no_anon_vma", vma.vid)
                return k.costs["vma_check"]
            fr.pc = 6
            continue
        if pc == 6:
            vma = k.mm.vmas[fr.loc["vid"]]
            if vma.uffd_armed and k.patch["uffd_fallback"]:
                L["inval"] = "uffd_armed"
                fr.pc = 20
                k.call(th, "vma_end_read", vid=vma.vid)
                k.emit("lock_vma_under_rcu:uffd_armed", vma.vid)
                return k.costs["vma_check"]
            fr.pc = 7
            k.emit("lock_vma_under_rcu:not_uffd", vma.vid)
            return k.costs["vma_check"]
        if pc == 7:
            vma = k.mm.vmas[fr.loc["vid"]]
            addr = L["address"]
            if vma.state == "live":
                bad = not (vma.vm_start <= addr < vma.vm_end)
            else:
                # Queued for RCU freeing: the rcu_head overlays the bounds, so
                # "vm_start" is rcu_head.next and "vm_end" the callback address
                # (kernel text).  A kernel pointer in next puts every user
                # address below vm_start; a NULL next (no callback queued behind
                # it on that CPU) makes [0, func) hold every user address, and
                # only the detached check below stops the fault.
                bad = not k.rcu.rcu_head_next_is_null("vma", vma.vid)
            if bad and k.patch["lock_vma_bounds_check"]:
                L["inval"] = "out_of_range"
                fr.pc = 20
                k.call(th, "vma_end_read", vid=vma.vid)
                k.emit("lock_vma_under_rcu:out_of_range", vma.vid, addr)
                return k.costs["vma_check"]
            fr.pc = 8
            k.emit("lock_vma_under_rcu:in_range", vma.vid)
            return k.costs["vma_check"]
        if pc == 8:
            vma = k.mm.vmas[fr.loc["vid"]]
            if vma.detached and k.patch["vma_detached_flag"]:
                fr.pc = 9
                k.call(th, "vma_end_read", vid=vma.vid)
                k.emit("lock_vma_under_rcu:detached", vma.vid)
                return k.costs["vma_check"]
            fr.pc = 10
            k.emit("lock_vma_under_rcu:attached", vma.vid)
            return k.costs["vma_check"]
        if pc == 9:
            # MISS: retry inside the same RCU section with the stale maple state.
            k.vma_lock["miss"] += 1
            L["walk"].retry()
            fr.pc = 1
            k.emit("lock_vma_under_rcu:miss_retry", L["vid"])
            return k.costs["plain_load"]
        if pc == 10:
            vma = k.mm.vmas[fr.loc["vid"]]
            k.rcu_read_unlock(th)
            _check_locked_vma(k, th, vma, L["address"])
            k.emit("lock_vma_under_rcu:locked", vma.vid)
            k.ret(th, vma.vid)
            return k.costs["rcu_read_lock"]
        # pc 20: after vma_end_read on an inval path.
        return _lvur_inval(k, th, fr, L.pop("inval"))


def _lvur_inval(k: Kernel, th: Thread, fr: Frame, reason: str) -> int:
    """The ``inval:`` label: ``rcu_read_unlock``, count VMA_LOCK_ABORT, return NULL."""
    k.rcu_read_unlock(th)
    k.vma_lock["abort"] += 1
    k.abort_reasons[reason] += 1
    _tally(th)
    k.emit(f"lock_vma_under_rcu:abort:{reason}", fr.loc.get("vid", 0))
    k.ret(th, None)
    return k.costs["rcu_read_lock"]


def _check_dup_anon_vma_window(k: Kernel, th: Thread, vma: Vma) -> None:
    """Invariant 3 for R-D1: a fault VMA-locked a VMA whose ``anon_vma`` 6.4.0's
    ``dup_anon_vma`` (mm/mmap.c) set in this write epoch before ``vma_prepare``
    write-locked it, so the fault passed the anon_vma test on an unlocked change.
    """
    seq = k.dup_anon_vma_unlocked.get(vma.vid)
    if seq is not None and seq == k.mm.mm_lock_seq:
        k.violate(
            3,
            f"dup_anon_vma set {vma.label()}'s anon_vma without its write lock and "
            f"T{th.tid} VMA-locked it in that window (R-D1)",
        )


def _check_locked_vma(k: Kernel, th: Thread, vma: Vma, address: int) -> None:
    """Invariant 5: what ``lock_vma_under_rcu`` returns."""
    if vma.detached:
        k.violate(5, f"lock_vma_under_rcu returned detached {vma.label()}")
    elif not (vma.vm_start <= address < vma.vm_end) or vma.state != "live":
        k.violate(5, f"lock_vma_under_rcu returned {vma.label()}, which does not hold {address:#x}")
    elif vma_is_tcp(k, vma):
        return
    elif (
        not vma.is_anonymous
        # With a fallback patch switched off, skipping its check is the
        # experiment, not the finding: only its consequence is reported (an
        # unlocked read of a freed neighbour, invariant 7; handle_userfault's
        # mmap_read_unlock, invariant 14), as check_modify_vma(unlocked=True).
        or (vma.anon_vma is None and k.patch["anon_vma_fallback"])
        or (vma.uffd_armed and k.patch["uffd_fallback"])
    ):
        k.violate(5, f"lock_vma_under_rcu returned {vma.label()}, which 6.4 must refuse")


# =====================================================================
# handle_mm_fault (mm/memory.c) -- abstracted per reference §13 (13)
# =====================================================================


@kfunc("handle_mm_fault", "mm/memory.c")
def handle_mm_fault(k: Kernel, th: Thread, fr: Frame) -> int:
    """``handle_mm_fault``: read the PTE, then the anonymous, COW, swap, file or uffd path."""
    L = fr.loc
    vma = k.mm.vmas[fr.loc["vid"]]
    idx = vma.page_of(L["address"])
    vma_locked = L["vma_lock"]
    pc = fr.pc
    if pc == 0:
        pte = vma.pages.get(idx)
        if pte == M.PTE_SWAP:
            if vma_locked and k.patch["swap_retry"]:
                # do_swap_page: FAULT_FLAG_VMA_LOCK -> VM_FAULT_RETRY, nothing released.
                k.emit("do_swap_page:retry_vma_lock", vma.vid, idx)
                k.ret(th, VM_FAULT_RETRY)
                return k.costs["plain_load"]
            if vma_locked and _swap_folio_locked(k, th, vma.vid, idx):
                # Without [v3 28/35]: __folio_lock_or_retry (mm/filemap.c) finds
                # the swap-cache folio locked by another swap-in and, since the
                # arch handler set FAULT_FLAG_ALLOW_RETRY, calls mmap_read_unlock
                # before waiting -- on an mmap_lock this task never took.  The
                # release is not applied to the model's rwsem: its reader count
                # is now one short of its holders, which is the breach reported.
                return _unheld_mmap_read_unlock(k, th, vma, idx, "folio_lock_or_retry")
            fr.pc = 5
            k.emit("do_swap_page:swap_in", vma.vid, idx)
            return k.costs["swap_in"]
        if pte is not None:
            if L["access"] == "write" and pte == M.PTE_WP:
                fr.pc = 5
                cost = k.costs["cow_copy"]
                if vma.anon_vma is None:
                    # wp_page_copy -> anon_vma_prepare (a write to the zero page);
                    # under the VMA lock only without [v3 26/35] (or in R-A1).
                    if vma_locked:
                        return _find_mergeable_next(k, th, fr, vma, then=5)
                    _anon_vma_prepare(k, th, vma, vma_locked)
                    cost += k.costs["anon_vma_prepare"] + k.atomic(th, "page_table_lock")
                k.emit("do_wp_page:copy", vma.vid, idx)
                return cost
            if L["access"] == "write" and pte == M.PTE_LAZYFREE:
                # The store sets the PTE's dirty bit: the lazy-free page is
                # dirty again and reclaim keeps it (madvise_free_pte_range).
                vma.pages[idx] = M.PTE_PRESENT
            k.emit("handle_pte_fault:spurious", vma.vid, idx)
            k.ret(th, VM_FAULT_OK)
            return k.costs["spurious_fault"]
        if not vma.is_anonymous:
            fr.pc = 5
            k.emit("do_fault:file", vma.vid, idx)
            return k.costs["file_fault"]
        if vma.uffd_armed and vma_locked:
            # Without [v3 29/35]: do_anonymous_page's userfaultfd_missing ->
            # handle_userfault (fs/userfaultfd.c) calls mmap_read_unlock before
            # it sleeps -- on an mmap_lock this task never took.  As for
            # folio_lock_or_retry above, the release is not applied to the
            # model's rwsem; the fault returns VM_FAULT_RETRY and the arch
            # handler retries under mmap_lock.
            return _unheld_mmap_read_unlock(k, th, vma, idx, "handle_userfault")
        if vma.uffd_armed and not vma_locked:
            # handle_userfault: drops mmap_lock, waits for the monitor, VM_FAULT_RETRY.
            fr.pc = 10
            k.emit("handle_userfault:mmap_read_unlock", vma.vid, idx)
            return _up_read(k, th, 0)
        if L["access"] != "write":
            # do_anonymous_page: a read fault maps the shared zero page,
            # write-protected; it needs no anon_vma.
            vma.pages[idx] = M.PTE_WP
            cost = k.costs["pte_install"] + k.atomic(th, f"ptl{L['address'] >> 21}")
            k.emit("do_anonymous_page:zero_page", vma.vid, idx)
            k.ret(th, VM_FAULT_OK)
            return cost
        if vma.anon_vma is None:
            if vma_locked:
                return _find_mergeable_next(k, th, fr, vma, then=4)
            _anon_vma_prepare(k, th, vma, vma_locked)
            fr.pc = 4
            k.emit("anon_vma_prepare", vma.vid, vma.anon_vma or 0)
            return k.costs["anon_vma_prepare"] + k.atomic(th, "page_table_lock")
        fr.pc = 4
        return -1
    if pc == 30:
        # reusable_anon_vma(next): next's fields, read with neither mmap_lock nor
        # next's VMA lock; then mas_prev takes the previous VMA's pointer.
        shared = _reusable_anon_vma(k, th, vma, L.pop("anon_nbr"), nbr_is_next=True)
        prev = k.mm.vma_at(vma.vm_start - 1) if shared is None and vma.vm_start else None
        L["anon_shared"] = shared
        L["anon_nbr"] = (prev.vid,) if prev is not None else ()
        fr.pc = 31
        k.emit("find_mergeable_anon_vma:mas_prev", vma.vid, prev.vid if prev is not None else 0)
        return k.costs["vma_check"] + k.costs["maple_level"]
    if pc == 31:
        # reusable_anon_vma(prev), then the rest of __anon_vma_prepare.
        shared = L.pop("anon_shared")
        prev_ids = L.pop("anon_nbr")
        if shared is None:
            shared = _reusable_anon_vma(k, th, vma, prev_ids, nbr_is_next=False)
        if shared is None:
            shared = k.mm.next_anon_vma
            k.mm.next_anon_vma += 1
        vma.anon_vma = shared
        fr.pc = L.pop("anon_then")
        cost = k.costs["vma_check"] + k.costs["anon_vma_prepare"]
        cost += k.atomic(th, "page_table_lock")
        if fr.pc == 5:
            k.emit("do_wp_page:copy", vma.vid, idx)
            return cost + k.costs["cow_copy"]
        k.emit("anon_vma_prepare", vma.vid, vma.anon_vma)
        return cost
    if pc == 4:
        fr.pc = 5
        k.emit("do_anonymous_page:vma_alloc_zeroed_movable_folio", vma.vid, idx)
        return k.costs["anon_page_alloc"]
    if pc == 5:
        if vma.state != "live" or vma.detached:
            k.violate(4, f"T{th.tid} installs a PTE in {vma.label()}, which is unmapped")
        if vma_locked and k.mm.is_write_locked(vma):
            k.violate(4, f"T{th.tid} installs a PTE in write-locked {vma.label()}")
        vma.pages[idx] = M.PTE_PRESENT
        cost = k.costs["pte_install"] + k.atomic(th, f"ptl{L['address'] >> 21}")
        k.emit("set_pte_at", vma.vid, idx)
        k.ret(th, VM_FAULT_OK)
        return cost
    # pc 10: userfault monitor resolves the fault; then retry.
    if pc == 10:
        fr.pc = 11
        k.sleep_until(th, k.now + k.costs["uffd_resolve"], k.costs["plain_load"])
        k.emit("handle_userfault:wait_monitor", vma.vid, idx)
        return k.costs["plain_load"]
    # The monitor's UFFDIO_COPY (mfill_atomic) looks the VMA up again: while the
    # fault slept without mmap_lock it may have been unmapped or moved, and then
    # nothing is filled (-ENOENT); the retried fault sees what is there now.
    if vma.state == "live" and not vma.detached and vma.vm_start <= L["address"] < vma.vm_end:
        vma.pages[idx] = M.PTE_PRESENT
    k.emit("handle_userfault:resolved", vma.vid, idx)
    k.ret(th, VM_FAULT_RETRY | 0x10000)  # RETRY with mmap_lock already released
    return k.costs["plain_load"]


def _unheld_mmap_read_unlock(k: Kernel, th: Thread, vma: Vma, idx: int, fn: str) -> int:
    """``fn`` calls ``mmap_read_unlock`` for a fault that holds only ``vma``'s VMA lock.

    What a VMA-locked fault does without [v3 28/35] (``fn`` =
    ``folio_lock_or_retry``) or [v3 29/35] (``handle_userfault``): invariant 14
    is reported, the bogus release is not applied to the model's rwsem, and the
    fault returns ``VM_FAULT_RETRY`` so that the arch handler retries under
    mmap_lock.
    """
    k.violate(
        14,
        f"T{th.tid} holds only {vma.label()}'s VMA lock; {fn} "
        "calls mmap_read_unlock on an mmap_lock it does not hold",
    )
    k.emit(f"{fn}:mmap_read_unlock", vma.vid, idx)
    k.ret(th, VM_FAULT_RETRY)
    return k.costs["plain_load"]


def _swap_folio_locked(k: Kernel, th: Thread, vid: int, idx: int) -> bool:
    """Whether another task holds the folio lock of page ``idx`` of VMA ``vid``.

    ``do_swap_page`` (mm/memory.c) keeps the swap-cache folio locked from the
    read of the swap entry until after ``set_pte_at``: in the model, while its
    ``handle_mm_fault`` frame waits at the install step (pc 5) with the PTE
    still a swap entry (the COW and file paths reach pc 5 with other PTEs).
    """
    for other in k.threads:
        if other is th:
            continue
        for f in other.frames:
            if f.fn != "handle_mm_fault" or f.pc != 5 or f.loc.get("vid") != vid:
                continue
            vma = k.mm.vmas.get(vid)
            if vma is not None and vma.page_of(f.loc["address"]) == idx:
                return vma.pages.get(idx) == M.PTE_SWAP
    return False


def _anon_vma_prepare(k: Kernel, th: Thread, vma: Vma, vma_locked: bool) -> None:
    """``__anon_vma_prepare`` (mm/rmap.c): attach an anon_vma under ``page_table_lock``.

    It first tries ``find_mergeable_anon_vma`` (mm/mmap.c): a neighbour's
    anon_vma is shared when the two could merge but for their access flags, so
    a later mprotect can merge them again.
    """
    if vma_locked:
        k.violate(5, f"fault on {vma.label()} without anon_vma under the VMA lock")
    shared = find_mergeable_anon_vma(k.mm, vma)
    if shared is not None:
        vma.anon_vma = shared
        return
    vma.anon_vma = k.mm.next_anon_vma
    k.mm.next_anon_vma += 1


def _find_mergeable_next(k: Kernel, th: Thread, fr: Frame, vma: Vma, then: int) -> int:
    """``__anon_vma_prepare`` (mm/rmap.c) under the VMA lock alone: its first step.

    ``find_mergeable_anon_vma`` (mm/mmap.c) takes the next VMA's pointer with
    ``mas_walk``, then (a later step, :func:`handle_mm_fault` pc 30) reads its
    fields in ``reusable_anon_vma``, then does the same for the previous VMA
    (pc 31).  With neither mmap_lock nor the neighbours' VMA locks held, and
    outside any RCU read section (lock_vma_under_rcu has returned), a munmap
    of a neighbour and the grace period after it can fall between pointer and
    read.  Under mmap_read_lock no writer can, so that path stays one step
    (:func:`_anon_vma_prepare`).

    Returns:
        The step's cost; the frame continues at pc 30, then at ``then``.
    """
    if k.patch["anon_vma_fallback"]:
        # Reached with the patch on only through R-A1 (the anon_vma test before
        # vma_start_read): the VMA lock path was meant to refuse this VMA.
        k.violate(5, f"fault on {vma.label()} without anon_vma under the VMA lock")
    nxt = k.mm.vma_at(vma.vm_end)
    fr.loc["anon_then"] = then
    # A tuple of ids: _frame_refs keeps a freed VMA named there in mm.vmas, so
    # the later read is reported, not a KeyError.
    fr.loc["anon_nbr"] = (nxt.vid,) if nxt is not None else ()
    fr.pc = 30
    k.emit("find_mergeable_anon_vma:mas_walk", vma.vid, nxt.vid if nxt is not None else 0)
    return k.costs["maple_level"]


def _reusable_anon_vma(
    k: Kernel, th: Thread, vma: Vma, ids: tuple[int, ...], nbr_is_next: bool
) -> int | None:
    """``reusable_anon_vma`` (mm/mmap.c) on the neighbour named in ``ids`` (empty: none).

    Reading a neighbour that was freed since its pointer was taken is a
    use-after-free (invariant 7); the model then treats it as not reusable.
    """
    if not ids:
        return None
    old = k.mm.vmas.get(ids[0])
    if old is None or old.state == "freed":
        name = old.label() if old is not None else f"{k.mm.freed_names.get(ids[0])}#{ids[0]}"
        k.violate(
            7,
            f"T{th.tid}'s find_mergeable_anon_vma for {vma.label()} reads freed {name} "
            "(held only the VMA lock of its own VMA)",
        )
        return None
    a, b = (vma, old) if nbr_is_next else (old, vma)
    if _anon_vma_compatible(a, b) and old.anon_vma_chain_singular:
        return old.anon_vma
    return None


def _anon_vma_compatible(a: Vma, b: Vma) -> bool:
    """``anon_vma_compatible`` (mm/mmap.c): ``a`` ends where ``b`` starts, same file,
    flags equal but for ``VM_ACCESS_FLAGS`` and ``VM_SOFTDIRTY``, pgoff contiguous.
    """
    return (
        a.vm_end == b.vm_start
        and a.file == b.file
        and not (a.vm_flags ^ b.vm_flags) & ~(M.VM_ACCESS_FLAGS | M.VM_SOFTDIRTY)
        and b.pgoff == a.pgoff + ((b.vm_start - a.vm_start) >> PAGE_SHIFT)
    )


def find_mergeable_anon_vma(mm: Mm, vma: Vma) -> int | None:
    """``find_mergeable_anon_vma`` (mm/mmap.c): the next VMA's anon_vma, else the
    previous one's (``reusable_anon_vma``: compatible, with a singular chain).
    """
    nxt = mm.vma_at(vma.vm_end)
    if nxt is not None and _anon_vma_compatible(vma, nxt) and nxt.anon_vma_chain_singular:
        return nxt.anon_vma
    prev = mm.vma_at(vma.vm_start - 1) if vma.vm_start else None
    if prev is not None and _anon_vma_compatible(prev, vma) and prev.anon_vma_chain_singular:
        return prev.anon_vma
    return None


# =====================================================================
# Arch fault handlers (arch/*/mm/fault.c)
# =====================================================================


def access_error(arch: str, vma: Vma, access: str) -> bool:
    """Each arch's access check on the VMA (reference §3.2)."""
    f = vma.vm_flags
    if arch == "x86":
        # arch/x86/mm/fault.c access_error(): write needs VM_WRITE; exec/read need access.
        if access == "write":
            return not f & M.VM_WRITE
        return not f & (M.VM_READ | M.VM_WRITE | M.VM_EXEC)
    if arch == "arm64":
        # do_page_fault: vm_flags from ESR: exec -> VM_EXEC, write -> VM_WRITE,
        # read -> VM_READ|VM_WRITE (|VM_EXEC without EPAN; EPAN assumed present).
        need = {"exec": M.VM_EXEC, "write": M.VM_WRITE}.get(access, M.VM_READ | M.VM_WRITE)
        return not f & need
    if arch == "powerpc":
        # access_pkey_error (no pkeys in the model) then access_error(is_write, is_exec).
        if access == "exec":
            return not f & M.VM_EXEC
        if access == "write":
            return not f & M.VM_WRITE
        return not f & (M.VM_READ | M.VM_WRITE | M.VM_EXEC)
    # s390 do_exception: DAT exceptions need any of VM_ACCESS_FLAGS; writes need VM_WRITE.
    need = M.VM_WRITE if access == "write" else M.VM_ACCESS_FLAGS
    return not f & need


@kfunc("do_user_addr_fault", "arch/x86/mm/fault.c")
def do_user_addr_fault(k: Kernel, th: Thread, fr: Frame) -> int:
    """x86 ``do_user_addr_fault``; also the arm64/powerpc/s390 handlers (same skeleton)."""
    return _arch_fault(k, th, fr)


@kfunc("do_page_fault", "arch/arm64/mm/fault.c")
def do_page_fault(k: Kernel, th: Thread, fr: Frame) -> int:
    """arm64 ``do_page_fault``."""
    return _arch_fault(k, th, fr)


@kfunc("___do_page_fault", "arch/powerpc/mm/fault.c")
def ppc_do_page_fault(k: Kernel, th: Thread, fr: Frame) -> int:
    """powerpc ``___do_page_fault``."""
    return _arch_fault(k, th, fr)


@kfunc("do_exception", "arch/s390/mm/fault.c")
def do_exception(k: Kernel, th: Thread, fr: Frame) -> int:
    """s390 ``do_exception``."""
    return _arch_fault(k, th, fr)


def _arch_fault(k: Kernel, th: Thread, fr: Frame) -> int:
    """The common skeleton of reference §3.1 with the 6.4.0 mmap_lock fallback (§3.4).

    A fault on an address without a VMA: ``lock_vma_under_rcu`` aborts
    (``no_vma``), the handler falls back to ``mmap_lock``, ``find_vma`` finds no
    VMA or one above the address that does not grow down, and the fault takes
    the bad-area path: ``mmap_read_unlock`` and SIGSEGV (arch/x86/mm/fault.c
    ``do_user_addr_fault`` -> ``bad_area``; arch/arm64/mm/fault.c
    ``__do_page_fault`` -> ``VM_FAULT_BADMAP``; arch/powerpc/mm/fault.c
    ``___do_page_fault`` -> ``bad_area``; arch/s390/mm/fault.c ``do_exception``
    -> ``out_up``).

    Stack growth with ``fix_stack_expand_write_lock`` follows 6.4.1's
    ``lock_mm_and_find_vma`` (mm/memory.c): drop the read lock, take the write
    lock, look the address up again; a VMA now covering it is used as found
    (``mmap_write_downgrade``), a stack below which it may grow is write-locked
    and expanded (then downgraded), and anything else, or a refused expansion,
    fails: the write lock is released there, and the handler's
    ``bad_area_nosemaphore`` unlocks nothing more.
    """
    L = fr.loc
    arch = k.arch
    while True:
        pc = fr.pc
        if pc == 0:
            L["t0"] = k.now
            k.fault_stats["total"] += 1
            th.faults += 1
            cost = k.costs["exc_entry"]
            if arch == "x86":
                # prefetchw(&mm->mmap_lock) at the top of do_user_addr_fault.
                cost += k.atomic(th, 0) - k.costs["atomic_local"]
            if not L["user"]:
                k.fault_stats["kernel_mode"] += 1
            if k.per_vma and L["user"]:
                fr.pc = 1
            else:
                fr.pc = 10
            k.emit("fault:entry", L["address"], 1 if L["user"] else 0)
            return cost
        if pc == 1:
            fr.pc = 2
            k.call(th, "lock_vma_under_rcu", address=L["address"])
            return -1
        if pc == 2:
            vid = L.pop("ret")
            if vid is None:
                fr.pc = 10
                continue
            L["vid"] = vid
            vma = k.mm.vmas[fr.loc["vid"]]
            if access_error(arch, vma, L["access"]):
                # Counts nothing; the mmap path repeats the check and signals.
                fr.pc = 4
                k.call(th, "vma_end_read", vid=vid)
                k.emit("fault:vma_access_error", vid)
                return k.costs["access_check"]
            fr.pc = 3
            k.call(
                th,
                "handle_mm_fault",
                vid=vid,
                address=L["address"],
                access=L["access"],
                vma_lock=True,
            )
            k.emit("fault:vma_access_ok", vid)
            return k.costs["access_check"]
        if pc == 3:
            L["fault"] = L.pop("ret")
            fr.pc = 5
            k.call(th, "vma_end_read", vid=L["vid"])
            return -1
        if pc == 4:
            L.pop("ret", None)
            fr.pc = 10
            continue
        if pc == 5:
            L.pop("ret", None)
            if not L["fault"] & VM_FAULT_RETRY:
                k.vma_lock["success"] += 1
                _tally(th)
                k.fault_stats["via_vma_lock"] += 1
                k.emit("fault:vma_lock_success", L["vid"])
                return _fault_done(k, th, fr)
            k.vma_lock["retry"] += 1
            _tally(th)
            if th.signal_pending or th.sigkill:
                # fault_signal_pending(): the arch quick exit (x86/arm64/powerpc
                # return, s390 VM_FAULT_SIGNAL); only user faults take this path.
                return _signal_quick_exit(k, th, fr)
            k.emit("fault:vma_lock_retry", L["vid"])
            fr.pc = 10
            return k.costs["plain_load"]
        if pc == 10:
            # lock_mmap: mmap_read_trylock, else mmap_read_lock (6.4.0: not killable).
            # s390's do_exception takes mmap_read_lock directly.
            if arch == "s390":
                fr.pc = 11
                k.call(th, "mmap_read_lock")
                return -1
            cost = k.atomic(th, 0)
            if k.mm.mmap_lock.down_read_trylock(th.tid):
                fr.pc = 12
                k.emit("fault:mmap_read_trylock_ok")
                return cost
            fr.pc = 11
            k.call(th, "mmap_read_lock")
            k.emit("fault:mmap_read_trylock_failed", len(k.mm.mmap_lock.waiters))
            return cost
        if pc == 11:
            L.pop("ret", None)
            fr.pc = 12
            continue
        if pc == 12:
            addr = L["address"]
            found = k.mm.find_vma(addr)
            k.emit("find_vma", found.vid if found else 0, addr)
            if found is None:
                fr.pc = 20
                return k.costs["find_vma"]
            L["vid"] = found.vid
            if found.vm_start <= addr:
                fr.pc = 14
            elif found.vm_flags & M.VM_GROWSDOWN:
                fr.pc = 13
            else:
                fr.pc = 20
            return k.costs["find_vma"]
        if pc == 13:
            if k.patch["fix_stack_expand_write_lock"]:
                # 6.4.1 lock_mm_and_find_vma: mmap_upgrade_trylock always fails, so
                # upgrade_mmap_lock_carefully drops the read lock and takes the write lock.
                fr.pc = 30
                k.call(th, "mmap_read_unlock")
                return -1
            # 6.4.0 expand_stack under the mmap *read* lock (StackRot era): the VMA
            # and the maple tree change with only anon_vma and page_table_lock held.
            return _expand_stack(k, th, fr, next_pc=14, fail_pc=20)
        if pc == 30:
            fr.pc = 31
            k.call(th, "mmap_write_lock")
            return -1
        if pc == 31:
            # lock_mm_and_find_vma, after the upgrade: the VMA found under the read
            # lock may be gone, moved or grown since; look the address up again.
            L.pop("ret", None)
            addr = L["address"]
            found = k.mm.find_vma(addr)
            if found is not None and found.vm_start > addr and found.vm_flags & M.VM_GROWSDOWN:
                L["vid"] = found.vid
                fr.pc = 32
                _start_write(k, th, found)  # "mm: lock a vma before stack expansion"
                k.emit("lock_mm_and_find_vma:stack", found.vid)
                return k.costs["find_vma"]
            k.emit("find_vma", found.vid if found else 0, addr)
            if found is not None and found.vm_start <= addr:
                # "goto success": someone else mapped or grew it meanwhile.
                L["vid"] = found.vid
                fr.pc = 33
            else:
                # No VMA, or one that does not grow down: "goto fail".
                L.pop("vid", None)
                fr.pc = 35
            return k.costs["find_vma"]
        if pc == 32:
            return _expand_stack(k, th, fr, next_pc=33, fail_pc=35)
        if pc == 33:
            # success: mmap_write_downgrade, then the fault goes on under the read lock.
            fr.pc = 34
            k.call(th, "mmap_write_downgrade")
            return -1
        if pc == 34:
            L.pop("ret", None)
            fr.pc = 14
            continue
        if pc == 35:
            # fail: lock_mm_and_find_vma releases the *write* lock and returns NULL;
            # the arch handler then goes to bad_area_nosemaphore, which unlocks nothing.
            fr.pc = 21
            k.fault_stats["sigsegv"] += 1
            k.emit("fault:bad_area_sigsegv", L["address"])
            k.call(th, "mmap_write_unlock")
            return k.costs["plain_load"]
        if pc == 14:
            vma = k.mm.vmas[fr.loc["vid"]]
            if access_error(arch, vma, L["access"]):
                fr.pc = 20
                k.emit("fault:bad_area_access_error", vma.vid)
                return k.costs["access_check"]
            fr.pc = 15
            k.call(
                th,
                "handle_mm_fault",
                vid=vma.vid,
                address=L["address"],
                access=L["access"],
                vma_lock=False,
            )
            k.emit("fault:access_ok", vma.vid)
            return k.costs["access_check"]
        if pc == 15:
            res = L.pop("ret")
            if res & VM_FAULT_RETRY and (th.sigkill or (th.signal_pending and L["user"])):
                # fault_signal_pending() after handle_mm_fault under mmap_lock: "the
                # core mm code has unlocked the mm for us"; return instead of retrying.
                # A kernel-mode fault takes it only for a fatal signal.
                return _signal_quick_exit(k, th, fr)
            if res & VM_FAULT_RETRY:
                # The mmap_lock was dropped by the callee: set FAULT_FLAG_TRIED and
                # go to the retry label, which is mmap_read_lock (no trylock).
                L["tried"] = True
                fr.pc = 11
                k.call(th, "mmap_read_lock")
                k.emit("fault:retry_tried", L["vid"])
                return k.costs["plain_load"]
            fr.pc = 16
            k.fault_stats["via_mmap_lock"] += 1
            k.call(th, "mmap_read_unlock")
            return -1
        if pc == 16:
            L.pop("ret", None)
            k.emit("fault:done_mmap_lock", L["vid"])
            return _fault_done(k, th, fr)
        # pc 20: bad_area -> mmap_read_unlock, SIGSEGV.
        if pc == 20:
            fr.pc = 21
            k.fault_stats["sigsegv"] += 1
            k.emit("fault:bad_area_sigsegv", L["address"])
            k.call(th, "mmap_read_unlock")
            return k.costs["plain_load"]
        L.pop("ret", None)
        return _fault_done(k, th, fr)


#: ``stack_guard_gap`` (mm/mmap.c): the gap kept between a growing stack and the
#: accessible VMA below it, 256 pages unless the ``stack_guard_gap=`` boot option
#: changes it.
STACK_GUARD_GAP = 256 << PAGE_SHIFT


def acct_stack_growth(mm: M.Mm, vma: Vma, size: int) -> bool:
    """``acct_stack_growth`` (mm/mmap.c): may ``vma`` grow to ``size`` bytes?

    6.4.0 tests, in order, ``may_expand_vm`` (RLIMIT_AS and RLIMIT_DATA: the
    model's limits are unlimited, so it passes), the stack limit ``size >
    rlimit(RLIMIT_STACK)`` (``Mm.rlimit_stack``, the scenario's
    ``kernel.rlimit_stack``), ``mlock_future_check`` (only ``VM_LOCKED``
    stacks; RLIMIT_MEMLOCK is not modelled), ``is_hugepage_only_range`` (false
    on every modelled arch) and the overcommit charge (never refused in the
    model).  Only the stack limit can refuse here.
    """
    return size <= mm.rlimit_stack


def _expand_stack(k: Kernel, th: Thread, fr: Frame, next_pc: int, fail_pc: int) -> int:
    """``expand_downwards`` (mm/mmap.c, via ``expand_stack``): move ``vm_start`` down.

    Two steps, in the kernel's order:

    1. The guard gap, then ``anon_vma_prepare``.  A new start closer than
       :data:`STACK_GUARD_GAP` above the end of the VMA below is ``-ENOMEM``
       (``expand_stack:guard_gap``), unless that VMA itself grows down or is
       inaccessible (``vma_is_accessible``: no ``VM_READ|VM_WRITE|VM_EXEC``).  A
       refusal sends the caller to ``fail_pc`` (SIGSEGV).  A stack without an
       ``anon_vma`` gets one (``anon_vma_prepare``, its own step): the grown stack
       is then an ordinary anonymous VMA whose next fault the VMA lock can handle.
    2. Under the anon_vma lock: a stack that already reaches the address (under
       the 6.4.0 read lock another fault may have grown it since this one's
       ``find_vma``) stays as it is (``expand_stack:raced``); otherwise
       ``vm_start`` moves down and the maple tree entry is overwritten.

    Between the two, as 6.4.0 does after ``anon_vma_lock_write``: ``grow <=
    vm_pgoff`` (the page offset must not wrap below 0) and
    :func:`acct_stack_growth`; either failing is ``-ENOMEM``
    (``expand_stack:acct_stack_growth``) and sends the caller to ``fail_pc``.

    Not modelled: the ``-EPERM`` below ``mmap_min_addr`` (no scenario name lies
    there, so no fault can ask for it).
    """
    L = fr.loc
    vma = k.mm.vmas[fr.loc["vid"]]
    new_start = L["address"] & ~(PAGE_SIZE - 1)
    if not L.get("stack_checked"):
        prev = k.mm.mm_mt.prev(vma.vm_start)
        below = prev[0] if prev is not None else None
        if (
            below is not None
            and not below.vm_flags & M.VM_GROWSDOWN
            and below.vm_flags & M.VM_ACCESS_FLAGS
            and new_start - below.vm_end < STACK_GUARD_GAP
        ):
            fr.pc = fail_pc
            k.emit("expand_stack:guard_gap", vma.vid, below.vid)
            return k.costs["vma_check"]
        if vma.anon_vma is None:
            # "We must make sure the anon_vma is allocated": anon_vma_lock_write
            # below needs one.  The caller's pc is unchanged, so the next step
            # comes back here for part 2.
            L["stack_checked"] = True
            _anon_vma_prepare(k, th, vma, vma_locked=False)
            k.emit("anon_vma_prepare:expand_stack", vma.vid, vma.anon_vma or 0)
            return k.costs["anon_vma_prepare"] + k.atomic(th, "page_table_lock")
    L.pop("stack_checked", None)
    fr.pc = next_pc
    if new_start >= vma.vm_start:
        k.emit("expand_stack:raced", vma.vid, L["address"])
        return k.costs["vma_check"]
    grow = (vma.vm_start - new_start) >> PAGE_SHIFT
    if grow > vma.pgoff or not acct_stack_growth(k.mm, vma, vma.vm_end - new_start):
        fr.pc = fail_pc
        k.emit("expand_stack:acct_stack_growth", vma.vid, vma.vm_end - new_start)
        return k.costs["vma_check"]
    k.check_modify_vma(th, vma, "vm_start (stack expansion)")
    vma.pages = {i + grow: s for i, s in vma.pages.items()}
    vma.vm_start = new_start
    k.tree_store(new_start, vma.vm_end, vma)
    k.emit("expand_stack", vma.vid, grow)
    return k.costs["maple_store"]


def _tally(th: Thread) -> None:
    """Count one ABORT/SUCCESS/RETRY against the fault being handled (invariant 11)."""
    for f in reversed(th.frames):
        if "t0" in f.loc:
            f.loc["tally"] = f.loc.get("tally", 0) + 1
            return


# The four handlers share one skeleton; dispatch straight to it on the hot path.
for _name in ARCH_HANDLER.values():
    STEP_FN[_name] = _arch_fault


def _signal_quick_exit(k: Kernel, th: Thread, fr: Frame) -> int:
    """``fault_signal_pending`` true: the handler returns, the signal is delivered, the
    access runs again.

    include/linux/sched/signal.h ``fault_signal_pending``: ``VM_FAULT_RETRY`` and a
    pending signal (any signal for a user-mode fault); arch/x86/mm/fault.c
    ``do_user_addr_fault``, arch/arm64/mm/fault.c ``do_page_fault``,
    arch/powerpc/mm/fault.c ``___do_page_fault`` return, arch/s390/mm/fault.c
    ``do_exception`` ends with ``VM_FAULT_SIGNAL``.  On the way back to user mode
    ``exit_to_user_mode_loop`` runs ``arch_do_signal_or_restart``, which dequeues
    the signal (the model's handler does nothing else); the faulting instruction
    then executes again and faults anew, which the model runs in the same frame.

    With SIGKILL pending (``fatal_signal_pending``) nothing runs again: a user
    fault returns to user mode and the thread dies there; a kernel-mode fault
    (``b`` = 1) goes to the exception fixup (x86 ``kernelmode_fixup_or_oops``,
    arm64 ``no_context``, powerpc ``SIGBUS`` -> ``bad_page_fault``, s390
    ``VM_FAULT_SIGNAL`` -> ``do_no_context``), which makes the uaccess return
    ``-EFAULT`` to its syscall.  Either way the fault op ends here.
    """
    L = fr.loc
    if L.get("tally", 0) > 1:
        k.violate(11, f"T{th.tid}'s fault counted {L['tally']} of ABORT/SUCCESS/RETRY")
    k.fault_latencies.append(k.now - L["t0"])
    if th.sigkill:
        user = bool(L["user"])
        k.emit(
            "fault:signal_pending_quick_exit",
            L.get("vid") or 0,
            1,
            "fatal signal: back to user mode to die"
            if user
            else "fatal signal, kernel mode: fixup_exception, the uaccess returns -EFAULT",
        )
        k.ret(th)
        return k.costs["plain_load"]
    k.emit("fault:signal_pending_quick_exit", L.get("vid") or 0)
    th.signal_pending = False
    fr.loc = {key: L[key] for key in ("address", "access", "user") if key in L}
    fr.pc = 0
    return k.costs["plain_load"]


def _fault_done(k: Kernel, th: Thread, fr: Frame) -> int:
    """The end of one fault: invariant 11 (one count per attempt, the VMA lock released)."""
    if fr.loc.get("tally", 0) > 1:
        k.violate(11, f"T{th.tid}'s fault counted {fr.loc['tally']} of ABORT/SUCCESS/RETRY")
    vid = fr.loc.get("vid")
    vma = k.mm.vmas.get(vid) if vid else None
    if vma is not None and th.tid in vma.vm_lock.reader_tids:
        k.violate(11, f"T{th.tid} returns from a fault still holding {vid}'s VMA read lock")
    k.fault_latencies.append(k.now - fr.loc["t0"])
    if not k.event.code:
        k.emit("fault:done", fr.loc.get("vid") or 0, k.now - fr.loc["t0"])
    k.ret(th)
    return k.costs["plain_load"]


# =====================================================================
# Scenario ops: entry points
# =====================================================================


@kfunc("fault", "arch/*/mm/fault.c")
def op_fault(k: Kernel, th: Thread, fr: Frame) -> int:
    """A user (or kernel-mode) access that faults: enter the arch handler."""
    op = fr.loc["op"]
    if fr.pc == 0:
        a = op.args
        addr = k.resolve(a["vma"], int(a.get("page", 0)))
        fr.pc = 1
        k.call(
            th,
            ARCH_HANDLER[k.arch],
            address=addr,
            access=a.get("access", "read"),
            user=bool(a.get("user", True)),
        )
        return -1
    k.ret(th)
    return -1


def _page_range(spec: Any, npages: int) -> tuple[int, int]:
    if spec is None:
        return 0, npages - 1
    if isinstance(spec, (tuple, list)):
        return int(spec[0]), int(spec[1])
    if isinstance(spec, int):
        return spec, spec
    text = str(spec)
    if "-" in text:
        a, b = text.split("-", 1)
        return int(a), int(b)
    return int(text), int(text)


@kfunc("touch", "arch/*/mm/fault.c")
def op_touch(k: Kernel, th: Thread, fr: Frame) -> int:
    """Fault every page of a range in turn (a user loop writing one byte per page)."""
    op = fr.loc["op"]
    a = op.args
    start, end = k.names[a["vma"]]
    if fr.pc == 0:
        lo, hi = _page_range(a.get("pages"), (end - start) >> PAGE_SHIFT)
        fr.loc["next"], fr.loc["last"] = lo, hi
        fr.pc = 1
    if fr.loc["next"] > fr.loc["last"] or th.sigkill:
        # Each page's fault returns to user mode, where a SIGKILL ends the loop.
        k.ret(th)
        return -1
    page = fr.loc["next"]
    fr.loc["next"] = page + 1
    k.call(
        th,
        ARCH_HANDLER[k.arch],
        address=start + page * PAGE_SIZE,
        access=a.get("access", "write"),
        user=True,
    )
    return -1


def unmapped_name(names: dict[str, tuple[int, int]], op: Any) -> str | None:
    """The VMA name ``op`` addresses that has no address yet, or None.

    A scenario names address ranges; a name gets its range when the ``mm.vmas``
    entry is set up or when the mmap (or mremap) that declares it returns.  Until
    then (another thread has not run that mmap yet, or it failed with ENOMEM or
    EFAULT) a program has no pointer to pass, so an op on the name cannot be
    issued at all.  ``hold_mmap_write`` skips such names among its ``vmas`` itself.
    A name that *was* mapped keeps its last range after an munmap: ops on it then
    reach the kernel and fail the way the syscall fails on an unmapped range.
    """
    args = op.args
    name = args.get("vma")
    if name is None and op.kind == "mmap" and args.get("at"):
        name = args["at"]["vma"]
    if name is not None and name not in names:
        return str(name)
    return None


@kfunc("no_address", "(user space)")
def op_no_address(k: Kernel, th: Thread, fr: Frame) -> int:
    """An op on a VMA name without an address is not issued (see :func:`unmapped_name`).

    The step records ``no_address`` (``a`` = the op's line in the scenario) with a
    note naming the op and the VMA; the thread goes on with its next op.
    """
    op = fr.loc["op"]
    k.emit(
        "no_address",
        op.line,
        0,
        f"{op.kind} on vma '{fr.loc['name']}', which has no address: it is not mapped yet, "
        "or the mmap/mremap that names it failed",
    )
    k.ret(th)
    return k.costs["plain_load"]


@kfunc("compute", "(user space)")
def op_compute(k: Kernel, th: Thread, fr: Frame) -> int:
    """User-space work on the CPU for ``ns``."""
    k.emit("compute", int(fr.loc["op"].args["ns"]))
    k.ret(th)
    return int(fr.loc["op"].args["ns"])


@kfunc("sleep", "kernel/time/hrtimer.c")
def op_sleep(k: Kernel, th: Thread, fr: Frame) -> int:
    """``nanosleep``: off the CPU for ``ns``."""
    if fr.pc == 0:
        fr.pc = 1
        k.sleep_until(th, k.now + int(fr.loc["op"].args["ns"]), k.costs["syscall"])
        k.emit("sleep", int(fr.loc["op"].args["ns"]))
        return k.costs["syscall"]
    k.ret(th)
    return -1


@kfunc("barrier", "(user space)")
def op_barrier(k: Kernel, th: Thread, fr: Frame) -> int:
    """A user-space barrier among every thread that names it."""
    name = fr.loc["op"].args["name"]
    if fr.pc == 0:
        fr.pc = 1
        arrived = k.barriers.setdefault(name, [])
        arrived.append(th.tid)
        if len(arrived) >= k.barrier_sizes.get(name, 1):
            waiting = list(arrived)
            k.barriers[name] = []
            for tid in waiting:
                if tid != th.tid and k.threads[tid].state == BARRIER:
                    t = k.threads[tid]
                    t.state = BLOCKED
                    k.wake(tid)
            k.emit("barrier:release", len(waiting))
            return k.costs["syscall"]
        k.emit("barrier:wait", len(arrived))
        th.state = BARRIER
        th.token += 1
        th.blocked_since = k.now
        k.release_cpu(th, k.now + k.costs["syscall"])
        return k.costs["syscall"]
    k.ret(th)
    return -1


@kfunc("hold_mmap_write", "(teaching op)")
def op_hold_mmap_write(k: Kernel, th: Thread, fr: Frame) -> int:
    """Take the mmap write lock, write-lock the named VMAs, hold for ``ns``, unlock."""
    L = fr.loc
    a = L["op"].args
    pc = fr.pc
    if pc == 0:
        fr.pc = 1
        k.call(th, "mmap_write_lock")
        return -1
    if pc == 1:
        if "todo" not in L:
            # Look the VMAs up under the lock: a name may have been unmapped, or
            # have no address yet (unmapped_name): those lock nothing.
            found = [k.mm.vma_at(k.resolve(n)) for n in a.get("vmas", []) if n in k.names]
            L["todo"] = [v for v in found if v is not None]
        while L["todo"]:
            vma = L["todo"].pop(0)
            if vma is not None:
                _start_write(k, th, vma)
                return -1
        fr.pc = 2
        k.emit("hold_mmap_write:hold", int(a["ns"]))
        return int(a["ns"])
    if pc == 2:
        fr.pc = 3
        k.call(th, "mmap_write_unlock")
        return -1
    k.ret(th)
    return -1


OP_ENTRY: dict[str, str] = {
    "fault": "fault",
    "touch": "touch",
    "compute": "compute",
    "sleep": "sleep",
    "barrier": "barrier",
    "hold_mmap_write": "hold_mmap_write",
}

__all__ = ["ARCHES", "PATCHES", "STEPS", "Kernel", "StallError", "access_error"]

# The mm operations register their step functions and op entry points on import.
import vmaviz.model.ops  # noqa: E402, F401
