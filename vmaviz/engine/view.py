"""A JSON-able view of the kernel state at one step, for any frontend (the Python Tutor idea).

:func:`snapshot` turns a :class:`~vmaviz.model.kernel.Kernel` into plain dicts and
lists: the VMAs with their lock state, the maple tree (including dead nodes that
still wait for their grace period), ``mmap_lock`` holders and waiters, each
thread's state and kernel stack, RCU readers and callbacks, and the counters.
It reads the state and never changes it.
"""

from __future__ import annotations

from operator import countOf
from typing import Any

from vmaviz.model import mm as M
from vmaviz.model.kernel import ARCH_HANDLER, OP_ENTRY, Kernel
from vmaviz.model.maple import Node
from vmaviz.model.rwsem import RwSem
from vmaviz.model.sched import BLOCKED, RUNNING, Thread


def lock_state(k: Kernel, vma: M.Vma) -> str:
    """One word for a VMA's lock state (reference §1.3)."""
    if vma.state == "freed":
        return "freed"
    if vma.state == "rcu_pending":
        return "rcu_pending"
    if vma.detached:
        return "detached"
    if k.mm.is_write_locked(vma):
        return "write_locked"
    if vma.vm_lock.readers:
        return "read_locked"
    return "unlocked"


def _sem(k: Kernel, sem: RwSem) -> dict[str, Any]:
    return {
        "name": sem.name,
        **sem.count_bits(),
        "writer": _tname(k, sem.writer) if sem.writer is not None else None,
        "readers_held_by": [_tname(k, t) for t in sem.reader_tids],
        "waiters": [
            {
                "thread": _tname(k, w.tid),
                "kind": "write" if w.kind == "w" else "read",
                "since_ns": w.since_ns,
                "handoff_set": w.handoff_set,
            }
            for w in sem.waiters
        ],
        "spinners": [_tname(k, t.tid) for t in k.threads if t.spinning and _waits_on(t, sem)],
    }


def _waits_on(th: Thread, sem: RwSem) -> bool:
    return (
        bool(th.frames)
        and th.frames[-1].fn == "down_write"
        and ((th.frames[-1].loc.get("key") == 0) == (sem.name == "mmap_lock"))
    )


def _tname(k: Kernel, tid: int | None) -> str:
    if tid is None or tid < 0:
        return "rcu"
    return k.threads[tid].name


def _thread(k: Kernel, th: Thread, read_locks: dict[int, list[str]]) -> dict[str, Any]:
    state = th.state
    if state == RUNNING and th.spinning:
        state = "spinning"
    in_rcu = k.rcu.in_section(th.tid)
    return {
        "tid": th.tid,
        "name": th.name,
        "state": state,
        "cpu": th.cpu,
        "blocked_on": th.blocked_on if th.state == BLOCKED else "",
        "in_rcu": in_rcu,
        "stack": [f.fn for f in th.frames],
        "op": _op_text(th),
        "next": _next_text(k, th),
        "faults": th.faults,
        "done_ns": th.done_ns,
        "vma_read_locks": read_locks.get(th.tid, []),
    }


def _read_locks(k: Kernel) -> dict[int, list[str]]:
    """The VMAs each thread holds read-locked, by tid, in one pass over the VMAs.

    Why: asking every VMA for every thread cost threads x VMAs a snapshot.
    """
    out: dict[int, list[str]] = {}
    for v in k.mm.vmas.values():
        for tid in dict.fromkeys(v.vm_lock.reader_tids):  # once per VMA, as before
            out.setdefault(tid, []).append(v.label())
    return out


def _op_text(th: Thread) -> str:
    for f in th.frames:
        op = f.loc.get("op")
        if op is not None:
            args = ", ".join(f"{k}={v}" for k, v in op.args.items() if v not in (None, ()))
            return f"{op.kind}({args})"
    return ""


def _next_text(k: Kernel, th: Thread) -> str:
    if th.frames:
        f = th.frames[-1]
        return f"{f.fn} (step {f.pc})"
    if th.done_ns >= 0:
        return "exited"
    for ops, idx, _ in reversed(th.pc_stack):
        if idx < len(ops):
            kind = ops[idx].kind
            return f"next op: {kind} -> {OP_ENTRY.get(kind, kind)}"
    return "no more ops"


def node_summary(n: Node, names: dict[int, str]) -> dict[str, Any]:
    """One maple node as plain data, without its children.

    Leaves have ``entries`` ``[first, last, vma_id | None, name | None]``, internal
    nodes ``pivots`` and ``gaps``.
    """
    out: dict[str, Any] = {
        "id": n.nid,
        "type": "leaf64" if n.is_leaf else "arange64",
        "min": n.min,
        "max": n.max,
        "dead": n.dead,
        "freed": n.freed,
    }
    if n.is_leaf:
        out["entries"] = [
            [
                lo,
                hi,
                (e.vid if e is not None else None),
                names.get(e.vid) if e is not None else None,
            ]
            for lo, hi, e in n.ranges()
        ]
    else:
        end = n.data_end()
        out["pivots"] = n.pivot[:end]
        out["gaps"] = n.gap[: end + 1]
    return out


def _node(n: Node, names: dict[int, str]) -> dict[str, Any]:
    out = node_summary(n, names)
    if not n.is_leaf:
        out["children"] = [_node(c, names) for c in n.slot[: n.data_end() + 1]]
    return out


def snapshot(k: Kernel) -> dict[str, Any]:
    """The state of ``k`` as plain data (see module doc)."""
    mm = k.mm
    # By identity, as a set: a list's ``in`` made the snapshot quadratic in the VMAs.
    live = {id(v) for v in mm.live_vmas()}
    names = mm.vma_names()
    vmas = []
    for v in mm.vmas.values():
        if v.state == "freed":
            continue
        if v.state == "live" and not v.detached and id(v) not in live:
            continue
        swapped = countOf(v.pages.values(), M.PTE_SWAP)
        vmas.append(
            {
                "id": v.vid,
                "name": v.name,
                "start": v.vm_start,
                "end": v.vm_end,
                "flags": M.flags_text(v.vm_flags),
                "anonymous": v.is_anonymous,
                "file": v.file,
                "anon_name": v.anon_name,
                "anon_vma": v.anon_vma,
                "vm_lock_seq": v.vm_lock_seq if k.per_vma else None,
                "write_locked": mm.is_write_locked(v),
                "readers": list(v.vm_lock.reader_tids),
                "read_holders": [_tname(k, t) for t in v.vm_lock.reader_tids],
                "waiters": [_tname(k, w.tid) for w in v.vm_lock.waiters],
                "detached": v.detached,
                "state": lock_state(k, v),
                "pages_present": len(v.pages) - swapped,
                "pages_swapped": swapped,
            }
        )
    vmas.sort(key=lambda d: (d["start"], d["id"]))
    root = mm.mm_mt.root
    read_locks = _read_locks(k)
    pending_nodes = [n.nid for cb in k.rcu.pending if cb.kind == "maple_node" for n in cb.payload]
    return {
        "now_ns": k.now,
        "mode": "per_vma" if k.per_vma else "mmap_lock",
        "arch": k.arch,
        "handler": ARCH_HANDLER[k.arch],
        "mm_lock_seq": mm.mm_lock_seq if k.per_vma else None,
        "map_count": mm.map_count,
        "vmas": vmas,
        "tree": {
            "height": mm.mm_mt.height,
            "root": _node(root, names) if isinstance(root, Node) else None,
        },
        "dead_nodes_pending": pending_nodes,
        "mmap_lock": _sem(k, mm.mmap_lock),
        "threads": [_thread(k, th, read_locks) for th in k.threads],
        "rcu": {
            "readers": [_tname(k, t) for t in k.rcu.readers()],
            "pending": [
                {
                    "kind": cb.kind,
                    "what": (
                        names.get(cb.payload, str(cb.payload))
                        if cb.kind == "vma"
                        else f"{len(cb.payload)} maple nodes"
                    ),
                    "queued_ns": cb.queued_ns,
                    "waiting_for": [_tname(k, t) for t in sorted(cb.waiting_for)],
                    # The grace period it runs after, and whether that one has
                    # started (else it waits for the one in progress to end).
                    "gp": cb.gp,
                    "gp_started": cb.gp <= k.rcu.gp_started,
                }
                for cb in k.rcu.pending
            ],
            "grace_periods": k.rcu.gp_completed,
            "grace_ns": k.rcu.grace_ns,
        },
        "counters": {
            "vma_lock": dict(k.vma_lock),
            "abort_reasons": dict(k.abort_reasons),
            "faults": dict(k.fault_stats),
        },
        "violations": [{"step": s, "invariant": i, "message": m} for s, i, m in k.violations],
        "patches": dict(k.patch),
    }
