"""What this step changed: the difference between the snapshots before and after it.

The step callback already builds the snapshot after the step for its panels; the one
before is the previous step's, kept here per session and side (a worker-local memo),
so stepping forward builds no second snapshot. Any other move (a jump, another
worker) builds the one before from the kernel the callback already has (about 1 ms
for a hundred VMAs).

The result is small (names and ids only) and goes with the step's HTML; the browser
marks the changed rows, cells and panels with the ``changed`` CSS class and writes
the summary line (assets/editor.js: ``markChanges``).
"""

from __future__ import annotations

from typing import Any

from vmaviz.engine.view import snapshot
from vmaviz.model.kernel import Kernel
from vmaviz.ui.memo import BoundedMemo

#: The VMA table's columns (vmaviz/ui/panels.py: vma_table), by the snapshot fields
#: shown in each; the browser marks the cell of a changed field.
VMA_COLUMNS = {
    "state": 1,
    "write_locked": 1,
    "vm_lock_seq": 2,
    "read_holders": 3,
    "waiters": 3,
    "detached": 4,
    "start": 5,
    "end": 5,
    "flags": 7,
    "file": 8,
    "anon_name": 8,
    "anon_vma": 9,
}

#: The most items of each kind a step's changes name (a fork of 1,000 VMAs changes
#: them all: the summary says how many, the marks stop here).
MAX_ITEMS = 200

#: Previous snapshots kept (one per session and side).
MEMO_SIZE = 64


class SnapshotMemo:
    """The last snapshot each session and side drew, so that stepping forward does
    not build the previous one again.

    A cache only: without a hit the previous snapshot is built from the kernel
    before the step, with the same result. One per app (held by the
    :class:`~vmaviz.ui.session.RunStore`), bounded to :data:`MEMO_SIZE` entries;
    per-user state itself stays in the shared cache.
    """

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._memo: BoundedMemo[tuple[str, str], tuple[str, int, dict[str, Any]]] = BoundedMemo(
            size
        )

    def previous_snapshot(
        self, session: str, side: str, key: str, n: int, before: Kernel | None
    ) -> dict[str, Any] | None:
        """The snapshot before step ``n`` (``None`` at the initial state).

        Args:
            session: The browser session.
            side: The view's side.
            key: The run key.
            n: Steps run at the cursor.
            before: The kernel before the step, as the step callback has it.
        """
        hit = self._memo.get((session, side))
        # n - 1: the step before.  n: in compare view the other side took the
        # step and this one did not move, so nothing changed on it.
        if hit is not None and hit[0] == key and hit[1] in (n - 1, n):
            return hit[2]
        return snapshot(before) if before is not None else None

    def remember(self, session: str, side: str, key: str, n: int, snap: dict[str, Any]) -> None:
        """Keep the snapshot at ``n`` for the next step of this session and side."""
        self._memo.put((session, side), (key, n, snap))


def _tree_nodes(node: Any, out: dict[int, Any]) -> None:
    """Every node of the snapshot's maple tree by id (children by their ids)."""
    if not isinstance(node, dict) or "id" not in node:
        return
    children = node.get("children") or []
    out[int(node["id"])] = {k: v for k, v in node.items() if k != "children"} | {
        "children": [c.get("id") for c in children if isinstance(c, dict)]
    }
    for child in children:
        _tree_nodes(child, out)


def _counters(counters: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(counters, dict):
        for name, value in counters.items():
            flat.update(_counters(value, f"{prefix}{name}."))
    else:
        flat[prefix.rstrip(".")] = counters
    return flat


def step_changes(prev: dict[str, Any] | None, cur: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``prev`` to ``cur`` (``{}`` at the initial state).

    Returns:
        ``vmas`` ({VMA id: [table columns changed]}, a new VMA with every column),
        ``gone`` (names of VMAs no longer there), ``threads`` (names whose row
        changed), ``locks`` (``mmap_lock`` if it changed), ``rcu`` (bool), ``tree``
        (ids of maple nodes new or changed), ``counters`` ({name: [before, after]}).
    """
    if prev is None:
        return {}
    out: dict[str, Any] = {}
    before = {int(v["id"]): v for v in prev.get("vmas", [])}
    vmas: dict[str, list[int]] = {}
    for v in cur.get("vmas", []):
        old = before.pop(int(v["id"]), None)
        if old is None:
            vmas[str(v["id"])] = sorted(set(VMA_COLUMNS.values()))
            continue
        if old == v:
            # Most VMAs are untouched by a step: one dict comparison in C, not a
            # comparison per column (a 490-VMA run spent 5 ms a step here).
            continue
        cols = {col for f, col in VMA_COLUMNS.items() if old.get(f) != v.get(f)}
        if cols:
            vmas[str(v["id"])] = sorted(cols)
    if vmas:
        out["vmas"] = dict(list(vmas.items())[:MAX_ITEMS])
        out["vma_count"] = len(vmas)
    if before:
        out["gone"] = [str(v.get("name")) for v in before.values()][:MAX_ITEMS]
    threads_before = {t["name"]: t for t in prev.get("threads", [])}
    threads = [t["name"] for t in cur.get("threads", []) if threads_before.get(t["name"]) != t]
    if threads:
        out["threads"] = threads[:MAX_ITEMS]
    if prev.get("mmap_lock") != cur.get("mmap_lock") or prev.get("mm_lock_seq") != cur.get(
        "mm_lock_seq"
    ):
        out["locks"] = ["mmap_lock"]
    if prev.get("rcu") != cur.get("rcu") or prev.get("dead_nodes_pending") != cur.get(
        "dead_nodes_pending"
    ):
        out["rcu"] = True
    old_nodes: dict[int, Any] = {}
    new_nodes: dict[int, Any] = {}
    _tree_nodes((prev.get("tree") or {}).get("root"), old_nodes)
    _tree_nodes((cur.get("tree") or {}).get("root"), new_nodes)
    tree = [i for i, node in new_nodes.items() if old_nodes.get(i) != node]
    if tree:
        out["tree"] = tree[:MAX_ITEMS]
    c0 = _counters(prev.get("counters"))
    c1 = _counters(cur.get("counters"))
    counters = {k: [c0.get(k), v] for k, v in c1.items() if c0.get(k) != v}
    if counters:
        out["counters"] = counters
    return out
