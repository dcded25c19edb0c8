"""The mm's VMA tree: a model of Linux 6.4's maple tree (``lib/maple_tree.c``) in RCU mode.

The tree is the one ``mm_init`` (``kernel/fork.c``) sets up for ``mm->mm_mt``:
``MT_FLAGS_ALLOC_RANGE | MT_FLAGS_USE_RCU``.  Every internal node is a
``maple_arange_64`` (10 slots, 9 pivots, a gap per child and ``end``/``gap``
metadata) and every leaf is a ``maple_leaf_64`` (16 slots, 15 pivots).

The write paths follow the kernel's decisions step for step so that, for the
same sequence of stores, node boundaries, pivots and height come out as the
kernel's do.  Nodes keep the kernel's raw representation (fixed pivot/slot
arrays with an implied last pivot and a metadata ``end``) because several
decisions of the kernel read that representation directly (for example
``ma_data_end`` treats a zero pivot as "unused").

What this model deliberately does not reproduce is the kernel's bookkeeping of
*which list* a retired node goes on (``ma_topiary`` free/destroy lists): after
each replacement the set of retired nodes is computed exactly (every node of the
replaced subtree that the new subtree no longer references), marked dead, and
handed to the RCU-free callback.  The end state is the same.

Readers (``mas_walk``) can be advanced one level at a time (:class:`RcuWalker`),
and restart from the root when they meet a dead node, as ``mtree_range_walk``
does after ``ma_dead_node``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vmaviz.model.pickling import tuple_state

ULONG_MAX = (1 << 64) - 1

# enum maple_type (include/linux/maple_tree.h); only the two an mm tree uses.
LEAF_64 = 1
ARANGE_64 = 3

# Per-type constants (lib/maple_tree.c mt_slots, mt_pivots, mt_min_slots).
MT_SLOTS = {LEAF_64: 16, ARANGE_64: 10}
MT_PIVOTS = {LEAF_64: 15, ARANGE_64: 9}
MT_MIN_SLOTS = {LEAF_64: 16 // 2 - 2, ARANGE_64: 10 // 2 - 1}
MAPLE_ARANGE64_META_MAX = 15  # metadata gap value meaning "no gap"
MAPLE_BIG_NODE_SLOTS = 16 * 2 + 2
# Scratch arrays are longer than the kernel's so that the kernel's harmless
# one-past-the-end writes land in spare elements instead of resizing lists.
_BIG_LEN = MAPLE_BIG_NODE_SLOTS + 20

TYPE_NAMES = {LEAF_64: "leaf64", ARANGE_64: "arange64"}

# Maple state sentinels (include/linux/maple_tree.h MAS_START, MAS_ROOT, MAS_NONE).
MAS_START = "start"
MAS_ROOT = "root"
MAS_NONE = "none"
MAS_ACTIVE = "active"


@tuple_state
class Node:
    """One ``struct maple_node`` (256 bytes in the kernel).

    ``pivot`` has one spare element: the kernel's ``mab_mas_cp`` may write one
    pivot past the array, into memory that the following slot copy overwrites.
    ``min``/``max`` are not stored by the kernel (it derives them while walking);
    they are cached here because a node's range never changes while it is live.
    """

    __slots__ = (
        "dead",
        "freed",
        "gap",
        "max",
        "meta_end",
        "meta_gap",
        "min",
        "nid",
        "parent",
        "parent_slot",
        "pivot",
        "slot",
        "type",
    )

    def __init__(self, ntype: int, nid: int = 0) -> None:
        self.type = ntype
        self.pivot: list[int] = [0] * (MT_PIVOTS[ntype] + 1)
        self.slot: list[Any] = [None] * MT_SLOTS[ntype]
        self.gap: list[int] = [0] * MT_SLOTS[ntype] if ntype == ARANGE_64 else []
        self.meta_end = 0
        self.meta_gap = 0
        self.parent: Node | None = None  # None: this is (or was) the root
        self.parent_slot = 0
        self.dead = False
        self.freed = False
        self.min = 0
        self.max = ULONG_MAX
        self.nid = nid

    @property
    def is_leaf(self) -> bool:
        return self.type == LEAF_64

    def data_end(self) -> int:
        """``ma_data_end``: the zero-based offset of the last used slot."""
        if self.type == ARANGE_64:
            return self.meta_end
        off = MT_PIVOTS[self.type] - 1
        if not self.pivot[off]:
            return self.meta_end
        if self.pivot[off] == self.max:
            return off
        return MT_PIVOTS[self.type]

    def ranges(self) -> list[tuple[int, int, Any]]:
        """Every slot of the node as ``(first, last, slot)``, in order."""
        end = self.data_end()
        out = []
        lo = self.min
        for i in range(end + 1):
            hi = self.pivot[i] if i < end else self.max
            out.append((lo, hi, self.slot[i]))
            lo = hi + 1
        return out

    def __repr__(self) -> str:
        return f"<{TYPE_NAMES[self.type]} #{self.nid} {self.min:#x}-{self.max:#x}>"


@dataclass(slots=True)
class MaState:
    """``struct ma_state``: where a walk or write is in the tree."""

    index: int
    last: int
    node: Node | None = None
    status: str = MAS_START
    min: int = 0
    max: int = ULONG_MAX
    offset: int = 0
    depth: int = 0

    def copy(self) -> MaState:
        return MaState(
            self.index,
            self.last,
            self.node,
            self.status,
            self.min,
            self.max,
            self.offset,
            self.depth,
        )

    def assign(self, other: MaState) -> None:
        """Struct assignment (``*a = *b``)."""
        self.index, self.last, self.node = other.index, other.last, other.node
        self.status, self.min, self.max = other.status, other.min, other.max
        self.offset, self.depth = other.offset, other.depth

    def reset(self) -> None:
        """``mas_reset``."""
        self.node = None
        self.status = MAS_START

    def set_node(self, node: Node | None) -> None:
        self.node = node
        self.status = MAS_ACTIVE if node is not None else MAS_NONE


@dataclass(slots=True)
class WrState:
    """``struct ma_wr_state``: the write-side view of the node being written."""

    mas: MaState
    entry: Any
    node: Node | None = None
    r_min: int = 0
    r_max: int = 0
    type: int = LEAF_64
    offset_end: int = 0
    node_end: int = 0
    end_piv: int = 0
    content: Any = None


class BigNode:
    """``struct maple_big_node``: scratch space for the slow write paths."""

    __slots__ = ("b_end", "gap", "pivot", "slot", "type")

    def __init__(self) -> None:
        n = _BIG_LEN
        self.pivot = [0] * n
        self.slot: list[Any] = [None] * n
        self.gap = [0] * n
        self.b_end = 0
        self.type = LEAF_64

    def clear(self) -> None:
        n = _BIG_LEN
        self.pivot = [0] * n
        self.slot = [None] * n
        self.gap = [0] * n
        self.b_end = 0


@dataclass(slots=True)
class Subtree:
    """``struct maple_subtree_state`` (without the topiary lists, see module doc)."""

    orig_l: MaState
    orig_r: MaState
    bn: BigNode
    l: MaState = field(default_factory=lambda: MaState(0, 0, status=MAS_NONE))  # noqa: E741
    m: MaState = field(default_factory=lambda: MaState(0, 0, status=MAS_NONE))
    r: MaState = field(default_factory=lambda: MaState(0, 0, status=MAS_NONE))


RcuFree = Callable[[list[Node]], None]


@dataclass(slots=True)
class PendingPublish:
    """A node replacement built and with its old nodes dead, not yet visible."""

    new: Node
    old: Node | None
    height: int | None
    retired: list[Node]


def free_immediately(nodes: list[Node]) -> None:
    """Trivial RCU-free callback: the grace period ends at once."""
    for n in nodes:
        n.freed = True


@dataclass(slots=True)
class StoreResult:
    """What one store did, for the trace.

    Attributes:
        op: the write path taken (``direct_replace``, ``append``,
            ``slot_store``, ``node_store``, ``bnode_store``, ``split``,
            ``rebalance``, ``spanning_store``, ``new_root``, ``root_store``).
        replaced: whether published nodes were replaced (False: changed in place).
        retired: the nodes marked dead and handed to the RCU-free callback.
        created: how many nodes were allocated.
        pending: the replacement is staged and awaits ``commit_pending``.
        new_nodes: the nodes allocated (what :meth:`MapleTree.validate_store`
            must look at besides the stored range).
    """

    op: str
    replaced: bool
    retired: list[Node]
    created: int
    pending: bool
    new_nodes: list[Node] = field(default_factory=list)


class MapleError(ValueError):
    """A store that the kernel API would refuse (``-EINVAL``)."""


def _checked_gap(node: Node, lo: int, hi: int, i: int, g: int, best: int, errors: list[str]) -> int:
    """Check ``node.gap[i]`` against its child's largest gap ``g``; the running maximum.

    One rule for the full check (:meth:`MapleTree.validate`) and the per-store one
    (:meth:`MapleTree.validate_store`).
    """
    if node.gap[i] != g:
        errors.append(
            f"node #{node.nid} [{lo:#x}-{hi:#x}]: gap[{i}] = {node.gap[i]}"
            f" but child's largest gap is {g}"
        )
    return max(best, g)


class MapleTree:
    """``struct maple_tree`` as ``mm_init`` creates ``mm->mm_mt``.

    Args:
        rcu_free: called with the nodes retired by each store, already marked
            dead.  The engine's RCU model delays their freeing until a grace
            period has passed; the default frees them immediately.
        in_rcu: ``MT_FLAGS_USE_RCU`` (``dup_mmap`` builds the child tree with
            RCU mode off and ``exit_mmap`` turns it off).
    """

    def __init__(self, rcu_free: RcuFree = free_immediately, in_rcu: bool = True) -> None:
        self.root: Any = None  # a Node, None, or a direct entry for index 0
        self.height = 0
        self.in_rcu = in_rcu
        self.rcu_free = rcu_free
        # The nodes allocated by the store in progress, by id.
        self._new: dict[int, Node] = {}
        # Node ids are per tree so that two runs of one scenario number alike.
        self.next_nid = 0
        self._pending: PendingPublish | None = None
        self._last_publish: PendingPublish | None = None
        # Nodes retired without a publication (a store that empties the tree).
        self._retired_direct: list[Node] = []
        self.staged = False
        self.stats = {
            "stores": 0,
            "in_place": 0,
            "node_store": 0,
            "split": 0,
            "rebalance": 0,
            "spanning": 0,
            "nodes_retired": 0,
        }
        self.last_op = ""

    # ------------------------------------------------------------------ helpers

    def _alloc(self, ntype: int) -> Node:
        """``mas_pop_node``: a zeroed node from the preallocated set."""
        self.next_nid += 1
        node = Node(ntype, self.next_nid)
        self._new[node.nid] = node
        return node

    @staticmethod
    def _safe_pivot(mas: MaState, pivots: list[int], piv: int, ntype: int) -> int:
        """``mas_safe_pivot``."""
        if piv >= MT_PIVOTS[ntype]:
            return mas.max
        return pivots[piv]

    @staticmethod
    def _safe_min(mas: MaState, pivots: list[int], offset: int) -> int:
        """``mas_safe_min``."""
        if offset:
            return pivots[offset - 1] + 1
        return mas.min

    def _logical_pivot(self, mas: MaState, pivots: list[int], offset: int, ntype: int) -> int:
        """``mas_logical_pivot``: an unset pivot beyond the data is ``mas->max``."""
        lpiv = self._safe_pivot(mas, pivots, offset, ntype)
        if lpiv:
            return lpiv
        if offset:
            return mas.max
        return lpiv

    @staticmethod
    def _mas_data_end(mas: MaState) -> int:
        """``mas_data_end``."""
        node = mas.node
        assert node is not None
        if node.type == ARANGE_64:
            return node.meta_end
        if node.dead:
            return 0
        off = MT_PIVOTS[node.type] - 1
        if not node.pivot[off]:
            return node.meta_end
        if node.pivot[off] == mas.max:
            return off
        return MT_PIVOTS[node.type]

    def _is_root(self, node: Node) -> bool:
        return node.parent is None

    # ------------------------------------------------------------------- gaps

    def _leaf_max_gap(self, mas: MaState) -> int:
        """``mas_leaf_max_gap``."""
        node = mas.node
        assert node is not None
        slots, pivots = node.slot, node.pivot
        max_gap = 0
        if slots[0] is None:
            max_gap = pivots[0] - mas.min + 1
            i = 2
        else:
            i = 1
        saved_max = node.max
        node.max = mas.max
        max_piv = node.data_end() - 1
        node.max = saved_max
        if mas.max == ULONG_MAX and max_piv + 1 < len(slots) and slots[max_piv + 1] is None:
            gap = ULONG_MAX - pivots[max_piv]
            max_gap = max(max_gap, gap)
        while i <= max_piv:
            if slots[i] is not None:
                i += 1
                continue
            gap = pivots[i] - pivots[i - 1]
            max_gap = max(max_gap, gap)
            i += 2  # two gaps are never adjacent
        return max_gap

    @staticmethod
    def _ma_max_gap(node: Node) -> tuple[int, int]:
        """``ma_max_gap``: the largest child gap and its offset."""
        i = offset = node.meta_end
        max_gap = 0
        while True:
            if node.gap[i] > max_gap:
                max_gap = node.gap[i]
                offset = i
            if i == 0:
                break
            i -= 1
        return max_gap, offset

    def _max_gap(self, mas: MaState) -> int:
        """``mas_max_gap``."""
        node = mas.node
        assert node is not None
        if node.is_leaf:
            return self._leaf_max_gap(mas)
        if node.meta_gap == MAPLE_ARANGE64_META_MAX:
            return 0
        return node.gap[node.meta_gap]

    def _parent_gap(self, node: Node, offset: int, new: int) -> None:
        """``mas_parent_gap``: set a parent gap and propagate upwards as needed."""
        pnode = node.parent
        while pnode is not None:
            meta_offset = pnode.meta_gap
            meta_gap = 0 if meta_offset == MAPLE_ARANGE64_META_MAX else pnode.gap[meta_offset]
            pnode.gap[offset] = new
            if meta_gap == new:
                return
            if offset != meta_offset:
                if meta_gap > new:
                    return
                pnode.meta_gap = offset
            elif new < meta_gap:
                new, pnode.meta_gap = self._ma_max_gap(pnode)
            if pnode.parent is None:
                return
            offset = pnode.parent_slot
            pnode = pnode.parent

    def _update_gap(self, mas: MaState) -> None:
        """``mas_update_gap``."""
        node = mas.node
        assert node is not None
        if self._is_root(node):
            return
        max_gap = self._max_gap(mas)
        parent = node.parent
        assert parent is not None
        if parent.gap[node.parent_slot] != max_gap:
            self._parent_gap(node, node.parent_slot, max_gap)

    # ------------------------------------------------------------- navigation

    def _mas_start(self, mas: MaState) -> Any:
        """``mas_start``: load the root, retrying while it is a dead node."""
        if mas.status == MAS_START:
            mas.min, mas.max, mas.depth = 0, ULONG_MAX, 0
            root = self.root
            if isinstance(root, Node):
                mas.depth = 1
                mas.set_node(root)
                mas.offset = 0
                return None
            if root is None:
                mas.node, mas.status = None, MAS_NONE
                mas.offset = MT_SLOTS[LEAF_64]
                return None
            mas.node, mas.status = None, MAS_ROOT
            mas.offset = MT_SLOTS[LEAF_64]
            return root if mas.index == 0 else None
        return None

    @staticmethod
    def _descend(mas: MaState) -> None:
        """``mas_descend``: follow ``mas->offset`` one level down."""
        node = mas.node
        assert node is not None
        child = node.slot[mas.offset]
        mas.node = child
        mas.min, mas.max = child.min, child.max

    @staticmethod
    def _ascend(mas: MaState) -> None:
        """``mas_ascend``: go to the parent and record our slot in it."""
        node = mas.node
        assert node is not None
        parent = node.parent
        if parent is None:
            mas.offset = 0
            return
        mas.offset = node.parent_slot
        mas.node = parent
        mas.min, mas.max = parent.min, parent.max

    def _prev_sibling(self, mas: MaState) -> bool:
        """``mas_prev_sibling``."""
        node = mas.node
        assert node is not None
        if node.parent is None or node.parent_slot == 0:
            return False
        p_slot = node.parent_slot
        self._ascend(mas)
        mas.offset = p_slot - 1
        self._descend(mas)
        return True

    def _next_sibling(self, mas: MaState) -> bool:
        """``mas_next_sibling``."""
        node = mas.node
        assert node is not None
        if node.parent is None:
            return False
        parent = mas.copy()
        self._ascend(parent)
        parent.offset = node.parent_slot + 1
        if parent.offset > self._mas_data_end(parent):
            return False
        mas.assign(parent)
        self._descend(mas)
        return True

    # -------------------------------------------------------------- publishing

    def _publish(self, mas: MaState, new: Node) -> None:
        """``mas_replace`` (and ``mas_descend_adopt``): make ``new`` visible.

        The new node takes the place of the node its parent pointer names.  Its
        new descendants adopt their children.  Every node of the old subtree that
        the new subtree no longer references is marked dead first
        (``mte_set_node_dead``, reference §6.4: dead *before* the new subtree is
        visible), then the pointer store publishes the new subtree, then the
        retired nodes go to the RCU-free callback (``ma_free_rcu``).

        With :attr:`staged` set, the publication waits for :meth:`commit_pending`
        so that the engine can run a reader in the window where the old nodes
        are already dead but the new ones are not yet reachable.
        """
        if new.parent is None:
            old = self.root
            new.min, new.max = 0, ULONG_MAX
            height: int | None = mas.depth
        else:
            old = new.parent.slot[new.parent_slot]
            new.min, new.max = mas.min, mas.max
            height = None
        self._adopt(new)
        retired = self._retired(old, new) if isinstance(old, Node) else []
        for n in retired:
            n.dead = True
        self._pending = PendingPublish(new, old if isinstance(old, Node) else None, height, retired)
        self._last_publish = self._pending
        if not self.staged:
            self.commit_pending()

    def commit_pending(self) -> PendingPublish | None:
        """Publish a staged replacement (the ``rcu_assign_pointer`` of ``mas_replace``)."""
        pending = self._pending
        if pending is None:
            return None
        self._pending = None
        new = pending.new
        if new.parent is None:
            self.root = new
            assert pending.height is not None
            self.height = pending.height
        else:
            new.parent.slot[new.parent_slot] = new
        if pending.retired:
            self.stats["nodes_retired"] += len(pending.retired)
            self.rcu_free(pending.retired)
        return pending

    def _retired(self, old: Node, new: Node) -> list[Node]:
        """The nodes of ``old``'s subtree that the new subtree does not reference."""
        kept: set[int] = set()
        stack = [new]
        while stack:
            n = stack.pop()
            if n.is_leaf:
                continue
            for c in n.slot[: n.data_end() + 1]:
                if c.nid in self._new:
                    stack.append(c)
                else:
                    kept.add(c.nid)
        retired: list[Node] = []
        stack = [old]
        while stack:
            n = stack.pop()
            if n.nid in kept or n.nid in self._new:
                continue
            retired.append(n)
            if not n.is_leaf:
                stack.extend(c for c in n.slot[: n.data_end() + 1] if isinstance(c, Node))
        return retired

    def _adopt(self, node: Node) -> None:
        """Set the parent pointers and ranges of the children of new nodes."""
        if node.is_leaf:
            return
        end = node.data_end()
        lo = node.min
        for i in range(end + 1):
            child = node.slot[i]
            hi = node.pivot[i] if i < end else node.max
            child.parent = node
            child.parent_slot = i
            if child.nid in self._new:
                child.min, child.max = lo, hi
                self._adopt(child)
            lo = hi + 1

    # ------------------------------------------------------ big node copying

    def _mas_mab_cp(
        self, mas: MaState, mas_start: int, mas_end: int, b: BigNode, mab_start: int
    ) -> None:
        """``mas_mab_cp``: copy slots ``mas_start..mas_end`` of a node into ``b``."""
        node = mas.node
        assert node is not None
        pivots = node.pivot
        i, j = mas_start, mab_start
        done = False
        if i == 0:
            b.pivot[j] = pivots[i]
            i += 1
            if i > mas_end:
                done = True
            else:
                j += 1
        if not done:
            piv_end = min(mas_end, MT_PIVOTS[node.type])
            while i < piv_end:
                b.pivot[j] = pivots[i]
                if not b.pivot[j]:
                    break
                if mas.max == b.pivot[j]:
                    done = True
                    break
                i += 1
                j += 1
            if not done and i <= mas_end:
                b.pivot[j] = self._safe_pivot(mas, pivots, i, node.type)
        j += 1
        b.b_end = j
        count = j - mab_start
        b.slot[mab_start : mab_start + count] = node.slot[mas_start : mas_start + count]
        if not node.is_leaf:
            b.gap[mab_start : mab_start + count] = node.gap[mas_start : mas_start + count]

    def _mab_mas_cp(
        self, b: BigNode, mab_start: int, mab_end: int, mas: MaState, new_max: bool
    ) -> None:
        """``mab_mas_cp``: fill the (new) node of ``mas`` from ``b``."""
        node = mas.node
        assert node is not None
        mt = node.type
        pivots, slots = node.pivot, node.slot
        if mab_end - mab_start > MT_PIVOTS[mt]:
            mab_end -= 1
        if not pivots[MT_PIVOTS[mt] - 1]:
            slots[MT_PIVOTS[mt]] = None
        i, j = mab_start, 0
        while True:
            pivots[j] = b.pivot[i]
            j += 1
            i += 1
            if not (i <= mab_end and b.pivot[i]):
                break
        slots[0 : i - mab_start] = b.slot[mab_start:i]
        if new_max:
            mas.max = b.pivot[i - 1]
        end = j - 1
        if not node.is_leaf:
            max_gap = 0
            offset = MAPLE_ARANGE64_META_MAX
            while j:
                j -= 1
                i -= 1
                node.gap[j] = b.gap[i]
                if node.gap[j] > max_gap:
                    offset = j
                    max_gap = node.gap[j]
            node.meta_gap, node.meta_end = offset, end
        else:
            self._leaf_set_meta(mas, node, end)

    @staticmethod
    def _leaf_set_meta(mas: MaState, node: Node, end: int) -> None:
        """``mas_leaf_set_meta``."""
        if MT_PIVOTS[node.type] <= end:
            return
        if node.pivot[end] and node.pivot[end] < mas.max:
            end += 1
        if end < MT_SLOTS[node.type] - 1:
            node.meta_gap, node.meta_end = 0, end

    @staticmethod
    def _mab_shift_right(b: BigNode, shift: int) -> None:
        """``mab_shift_right``."""
        size = b.b_end
        b.pivot[shift : shift + size] = b.pivot[0:size]
        b.slot[shift : shift + size] = b.slot[0:size]
        if b.type == ARANGE_64:
            b.gap[shift : shift + size] = b.gap[0:size]

    @staticmethod
    def _mab_middle_node(b: BigNode, split: int, slot_count: int) -> bool:
        """``mab_middle_node``: is a 3-way split needed?"""
        size = b.b_end
        if size >= 2 * slot_count:
            return True
        return b.slot[split] is None and size >= 2 * slot_count - 1

    @staticmethod
    def _mab_no_null_split(b: BigNode, split: int, slot_count: int) -> int:
        """``mab_no_null_split``: never end a node on a NULL slot."""
        if b.slot[split] is None:
            if split < slot_count - 1 and (b.b_end - split) > MT_MIN_SLOTS[b.type]:
                split += 1
            else:
                split -= 1
        return split

    def _mab_calc_split(self, b: BigNode) -> tuple[int, int]:
        """``mab_calc_split``: the split point, and a second one for a 3-way split."""
        b_end = b.b_end
        split = b_end // 2
        slot_count = MT_SLOTS[b.type]
        if self._mab_middle_node(b, split, slot_count):
            split = b_end // 3
            mid_split = split * 2
        else:
            mid_split = 0
        split = self._mab_no_null_split(b, split, slot_count)
        if mid_split:
            mid_split = self._mab_no_null_split(b, mid_split, slot_count)
        return split, mid_split

    def _mab_set_b_end(self, b: BigNode, mas: MaState, entry: Node | None) -> None:
        """``mab_set_b_end``: append a child node to ``b``."""
        if entry is None:
            return
        b.slot[b.b_end] = entry
        b.gap[b.b_end] = self._max_gap(mas)
        b.pivot[b.b_end] = mas.max
        b.b_end += 1

    # --------------------------------------------------------------- walking

    def _wr_node_walk(self, wr: WrState) -> None:
        """``mas_wr_node_walk``: find the offset of ``mas->index`` in this node."""
        mas = wr.mas
        node = mas.node
        assert node is not None
        wr.node = node
        pivots = node.pivot
        saved = node.max
        node.max = mas.max
        count = wr.node_end = node.data_end()
        node.max = saved
        offset = mas.offset
        lo = self._safe_min(mas, pivots, offset)
        hi: int
        if offset == count:
            hi = mas.max
        else:
            hi = pivots[offset]
            index = mas.index
            if index <= hi:
                pass
            elif not hi and offset:
                hi = mas.max
            else:
                lo = hi + 1
                found = False
                offset += 1
                while offset < count:
                    hi = pivots[offset]
                    if index <= hi:
                        found = True
                        break
                    if not hi:
                        break
                    lo = hi + 1
                    offset += 1
                if not found:
                    hi = mas.max
        wr.r_max = hi
        wr.r_min = lo
        wr.offset_end = mas.offset = offset

    def _is_span_wr(self, wr: WrState) -> bool:
        """``mas_is_span_wr``: does the write cross this node's end?"""
        last = wr.mas.last
        piv = wr.r_max
        if piv > last:
            return False
        mx = wr.mas.max
        if wr.type == LEAF_64:
            if last < mx:
                return False
            if last == mx and wr.entry is not None:
                return False
            if last == ULONG_MAX and last == mx:
                return False
        elif piv == last:
            if wr.entry is not None:
                return False
            if last == ULONG_MAX:
                return False
        return True

    def _wr_walk_descend(self, wr: WrState) -> None:
        assert wr.mas.node is not None
        wr.type = wr.mas.node.type
        self._wr_node_walk(wr)

    def _wr_walk_traverse(self, wr: WrState) -> None:
        mas = wr.mas
        mas.max, mas.min = wr.r_max, wr.r_min
        mas.node = wr.content
        mas.offset = 0
        mas.depth += 1

    def _wr_walk(self, wr: WrState) -> bool:
        """``mas_wr_walk``: walk to the leaf; False for a spanning store."""
        mas = wr.mas
        while True:
            self._wr_walk_descend(wr)
            if self._is_span_wr(wr):
                return False
            assert wr.node is not None
            wr.content = wr.node.slot[mas.offset]
            if wr.type == LEAF_64:
                return True
            self._wr_walk_traverse(wr)

    def _wr_walk_index(self, wr: WrState) -> None:
        """``mas_wr_walk_index``: walk to the leaf holding ``mas->index``."""
        mas = wr.mas
        while True:
            self._wr_walk_descend(wr)
            assert wr.node is not None
            wr.content = wr.node.slot[mas.offset]
            if wr.type == LEAF_64:
                return
            self._wr_walk_traverse(wr)

    # ------------------------------------------------------- the store paths

    def _store_b_node(self, wr: WrState, b: BigNode, offset_end: int) -> None:
        """``mas_store_b_node``: lay the node plus the new range out in ``b``."""
        mas = wr.mas
        node = wr.node
        assert node is not None
        b.type = wr.type
        b_end = 0
        slot = mas.offset
        if slot:
            self._mas_mab_cp(mas, 0, slot - 1, b, 0)
            b_end = b.b_end
            piv = b.pivot[b_end - 1]
        else:
            piv = (mas.min - 1) & ULONG_MAX
        if ((piv + 1) & ULONG_MAX) < mas.index:
            b.slot[b_end] = wr.content
            if wr.content is None:
                b.gap[b_end] = (mas.index - 1 - piv) & ULONG_MAX
            b.pivot[b_end] = mas.index - 1
            b_end += 1
        mas.offset = b_end
        b.slot[b_end] = wr.entry
        b.pivot[b_end] = mas.last
        if mas.last >= mas.max:
            b.b_end = b_end
            return
        piv = self._logical_pivot(mas, node.pivot, offset_end, wr.type)
        if piv > mas.last:
            if offset_end != slot:
                wr.content = node.slot[offset_end]
            b_end += 1
            b.slot[b_end] = wr.content
            if wr.content is None:
                b.gap[b_end] = piv - mas.last + 1
            b.pivot[b_end] = piv
        slot = offset_end + 1
        if slot > wr.node_end:
            b.b_end = b_end
            return
        b_end += 1
        self._mas_mab_cp(mas, slot, wr.node_end + 1, b, b_end)
        b.b_end -= 1

    def _wr_node_store(self, wr: WrState) -> bool:
        """``mas_wr_node_store``: rewrite one leaf (a new node in RCU mode)."""
        mas = wr.mas
        node = wr.node
        assert node is not None and mas.node is not None
        new_end = wr.node_end
        node_slots = MT_SLOTS[wr.type]
        max_piv = MT_PIVOTS[wr.type]
        offset = mas.offset
        if mas.last == wr.r_max:
            if mas.last == mas.max:
                new_end = offset
            wr.offset_end += 1
        elif mas.last < wr.r_max:
            new_end += 1
        else:
            if wr.end_piv == mas.last:
                wr.offset_end += 1
            new_end -= wr.offset_end - offset - 1
        if wr.r_min < mas.index:
            new_end += 1
        if new_end >= node_slots:
            return False
        if not self._is_root(mas.node) and new_end <= MT_MIN_SLOTS[wr.type]:
            return False

        self.next_nid += 1
        newnode = Node(wr.type, self.next_nid)
        if self.in_rcu:
            self._new[newnode.nid] = newnode
        newnode.parent, newnode.parent_slot = node.parent, node.parent_slot
        dst_p, dst_s = newnode.pivot, newnode.slot
        dst_p[0 : offset + 1] = node.pivot[0 : offset + 1]
        dst_s[0 : offset + 1] = node.slot[0 : offset + 1]
        dst_offset = offset
        if wr.r_min < mas.index:
            mas.offset += 1
            dst_s[dst_offset] = wr.content
            dst_p[dst_offset] = mas.index - 1
            dst_offset += 1
        if dst_offset < max_piv:
            dst_p[dst_offset] = mas.last
        mas.offset = dst_offset
        dst_s[dst_offset] = wr.entry
        if wr.offset_end > wr.node_end or mas.last >= mas.max:
            new_end = dst_offset
        else:
            dst_offset += 1
            copy_size = wr.node_end - wr.offset_end + 1
            dst_s[dst_offset : dst_offset + copy_size] = node.slot[
                wr.offset_end : wr.offset_end + copy_size
            ]
            if dst_offset < max_piv:
                copy_size = min(copy_size, max_piv - dst_offset)
                dst_p[dst_offset : dst_offset + copy_size] = node.pivot[
                    wr.offset_end : wr.offset_end + copy_size
                ]
            if wr.node_end == node_slots - 1 and new_end < node_slots - 1:
                dst_p[new_end] = mas.max
        del dst_p[max_piv + 1 :]
        dst_p.extend([0] * (max_piv + 1 - len(dst_p)))
        del dst_s[node_slots:]
        self._leaf_set_meta(mas, newnode, new_end)
        self.last_op = "node_store"
        self.stats["node_store"] += 1
        if self.in_rcu:
            mas.node = newnode
            self._publish(mas, newnode)
        else:
            self._copy_into(node, newnode)
        self._update_gap(mas)
        return True

    @staticmethod
    def _copy_into(dst: Node, src: Node) -> None:
        """Non-RCU mode: overwrite the node in place (``memcpy`` of the node)."""
        dst.pivot, dst.slot, dst.gap = src.pivot, src.slot, src.gap
        dst.meta_end, dst.meta_gap = src.meta_end, src.meta_gap

    def _wr_slot_store(self, wr: WrState) -> bool:
        """``mas_wr_slot_store``: in place, touching at most two adjacent slots."""
        mas = wr.mas
        node = wr.node
        assert node is not None
        offset = mas.offset
        if wr.r_max > mas.last and (wr.r_min != mas.index or offset != wr.node_end):
            return False
        lmax = mas.max if offset == wr.node_end - 1 else node.pivot[offset + 1]
        if lmax < mas.last:
            return False
        if wr.r_min == mas.index:
            if lmax == mas.last:
                return False
            node.slot[offset] = wr.entry
            node.pivot[offset] = mas.last
        else:
            if lmax != mas.last:
                return False
            if offset + 1 < MT_PIVOTS[wr.type] and (wr.entry is not None or node.pivot[offset + 1]):
                node.pivot[offset + 1] = mas.last
            node.slot[offset + 1] = wr.entry
            node.pivot[offset] = mas.index - 1
            mas.offset += 1
        self.last_op = "slot_store"
        self.stats["in_place"] += 1
        self._update_gap(mas)
        return True

    def _wr_end_piv(self, wr: WrState) -> None:
        """``mas_wr_end_piv``: find the slot holding ``mas->last``."""
        node = wr.node
        assert node is not None
        while wr.offset_end < wr.node_end and wr.mas.last > node.pivot[wr.offset_end]:
            wr.offset_end += 1
        if wr.offset_end < wr.node_end:
            wr.end_piv = node.pivot[wr.offset_end]
        else:
            wr.end_piv = wr.mas.max

    def _wr_extend_null(self, wr: WrState) -> None:
        """``mas_wr_extend_null``: a NULL store absorbs neighbouring NULLs."""
        mas = wr.mas
        node = wr.node
        assert node is not None
        if mas.last < wr.end_piv and node.slot[wr.offset_end] is None:
            mas.last = wr.end_piv
        if (
            mas.last == wr.end_piv
            and wr.node_end != wr.offset_end
            and node.slot[wr.offset_end + 1] is None
        ):
            wr.offset_end += 1
            if wr.offset_end == wr.node_end:
                mas.last = mas.max
            else:
                mas.last = node.pivot[wr.offset_end]
            wr.end_piv = mas.last
        if wr.content is None:
            mas.index = wr.r_min
        elif mas.index == wr.r_min and mas.offset and node.slot[mas.offset - 1] is None:
            mas.offset -= 1
            wr.r_min = mas.index = self._safe_min(mas, node.pivot, mas.offset)
            wr.r_max = node.pivot[mas.offset]

    def _wr_append(self, wr: WrState) -> bool:
        """``mas_wr_append``: write after the last used slot, in place.

        Linux 6.4 allows this in RCU mode; 6.5-rc7 disabled it there ("maple_tree:
        disable mas_wr_append() when other readers are possible").
        """
        node = wr.node
        assert node is not None
        mas = wr.mas
        end = wr.node_end
        new_end = end + 1
        node_pivots = MT_PIVOTS[wr.type]
        if mas.index != wr.r_min and mas.last == wr.r_max:
            if new_end < node_pivots:
                node.pivot[new_end] = node.pivot[end]
                node.meta_gap, node.meta_end = 0, new_end
            node.slot[new_end] = wr.entry
            mas.offset = new_end
            node.pivot[end] = mas.index - 1
        elif mas.index == wr.r_min and mas.last < wr.r_max:
            if new_end < node_pivots:
                node.pivot[new_end] = node.pivot[end]
            node.slot[new_end] = wr.content
            if new_end < node_pivots:
                node.meta_gap, node.meta_end = 0, new_end
            node.pivot[end] = mas.last
            node.slot[end] = wr.entry
        else:
            return False
        self.last_op = "append"
        self.stats["in_place"] += 1
        return True

    def _wr_bnode(self, wr: WrState) -> None:
        """``mas_wr_bnode``: the big-node slow path."""
        b = BigNode()
        self._store_b_node(wr, b, wr.offset_end)
        self._commit_b_node(wr, b)

    def _commit_b_node(self, wr: WrState, b: BigNode) -> None:
        """``mas_commit_b_node``: rebalance, split, or write one new node."""
        mas = wr.mas
        assert mas.node is not None
        b_end, b_type = b.b_end, b.type
        if b_end < MT_MIN_SLOTS[b_type] and not self._is_root(mas.node) and self.height > 1:
            self._rebalance(mas, b)
            return
        if b_end >= MT_SLOTS[b_type]:
            self._split(mas, b)
            return
        old = mas.node
        if not self.in_rcu:
            fresh = Node(b_type, -1)  # scratch copy, never published
            fresh.parent, fresh.parent_slot = old.parent, old.parent_slot
            fresh.min, fresh.max = old.min, old.max
            mas.node = fresh
            self._mab_mas_cp(b, 0, b.b_end, mas, False)
            mas.node = old
            self._copy_into(old, fresh)
        else:
            node = self._alloc(b_type)
            node.parent, node.parent_slot = old.parent, old.parent_slot
            mas.node = node
            self._mab_mas_cp(b, 0, b_end, mas, False)
            self._publish(mas, node)
        self.last_op = "bnode_store"
        self.stats["node_store"] += 1
        self._update_gap(mas)

    def _wr_modify(self, wr: WrState) -> None:
        """``mas_wr_modify``: pick the cheapest way to change the leaf."""
        mas = wr.mas
        node = wr.node
        assert node is not None
        # Direct replacement: exactly one existing range, only the pointer changes.
        if wr.r_min == mas.index and wr.r_max == mas.last:
            node.slot[mas.offset] = wr.entry
            self.last_op = "direct_replace"
            self.stats["in_place"] += 1
            if (wr.entry is None) != (wr.content is None):
                self._update_gap(mas)
            return
        node_slots = MT_SLOTS[wr.type]
        node_size = wr.node_end - wr.offset_end + mas.offset + 2
        if mas.max == ULONG_MAX:
            node_size += 1
        if node_size < node_slots:
            if (
                wr.entry is not None
                and wr.node_end < node_slots - 1
                and mas.offset == wr.node_end
                and self._wr_append(wr)
            ):
                if wr.content is None or wr.entry is None:
                    self._update_gap(mas)
                return
            if wr.offset_end - mas.offset <= 1 and self._wr_slot_store(wr):
                return
            if self._wr_node_store(wr):
                return
        self._wr_bnode(wr)

    def _new_root(self, mas: MaState, entry: Any) -> None:
        """``mas_new_root``: the store covers ``[0, ULONG_MAX]``."""
        old = self.root
        if entry is None and mas.index == 0 and mas.last == ULONG_MAX:
            mas.depth = 0
            self.height = 0
            self.root = None
            mas.reset()
        else:
            node = self._alloc(LEAF_64)
            node.slot[0] = entry
            node.pivot[0] = mas.last
            mas.depth = 1
            mas.set_node(node)
            mas.min, mas.max = 0, ULONG_MAX
            self._publish(mas, node)
            return
        if isinstance(old, Node):
            self._retire_all(old)

    def _retire_all(self, old: Node) -> None:
        stack, retired = [old], []
        while stack:
            n = stack.pop()
            n.dead = True
            retired.append(n)
            if not n.is_leaf:
                stack.extend(c for c in n.slot[: n.data_end() + 1] if isinstance(c, Node))
        self.stats["nodes_retired"] += len(retired)
        self._retired_direct = retired
        self.rcu_free(retired)

    def _root_expand(self, mas: MaState, entry: Any) -> None:
        """``mas_root_expand``: the first node of the tree."""
        contents = self.root
        node = self._alloc(LEAF_64)
        slot = 0
        if mas.index:
            if contents is not None:
                node.slot[slot] = contents
                if mas.index > 1:
                    slot += 1
            node.pivot[slot] = mas.index - 1
            slot += 1
        node.slot[slot] = entry
        mas.offset = slot
        node.pivot[slot] = mas.last
        if mas.last != ULONG_MAX:
            slot += 1
            node.pivot[slot] = ULONG_MAX
        mas.depth = 1
        node.meta_gap, node.meta_end = 0, slot
        mas.set_node(node)
        self.root = node
        self.height = 1

    def _store_root(self, mas: MaState, entry: Any) -> None:
        """``mas_store_root``: store into an empty or single-entry tree."""
        if entry is None:
            if not mas.index:
                self.root = None
        elif mas.last != 0 or mas.index != 0:
            self._root_expand(mas, entry)
        else:
            self.root = entry
            mas.reset()

    # ---------------------------------------------------- split and rebalance

    def _mas_new_ma_node(self, b: BigNode) -> Node:
        return self._alloc(b.type)

    def _mab_to_node(self, b: BigNode) -> tuple[int, Node, Node | None, Node | None, int]:
        """``mas_mab_to_node``: allocate one, two or three nodes for ``b``."""
        slot_count = MT_SLOTS[b.type]
        left = self._mas_new_ma_node(b)
        right = middle = None
        mid_split = 0
        if b.b_end < slot_count:
            split = b.b_end
        else:
            split, mid_split = self._mab_calc_split(b)
            right = self._mas_new_ma_node(b)
        if mid_split:
            middle = self._mas_new_ma_node(b)
        return split, left, right, middle, mid_split

    @staticmethod
    def _set_split_parent(
        mas: MaState, left: Node, right: Node | None, slot: int, split: int
    ) -> int:
        """``mas_set_split_parent``."""
        if mas.status == MAS_NONE or mas.node is None:
            return slot
        if slot <= split:
            mas.node.parent, mas.node.parent_slot = left, slot
        elif right is not None:
            mas.node.parent, mas.node.parent_slot = right, slot - split - 1
        return slot + 1

    def _set_split_parents(
        self,
        mast: Subtree,
        left: Node,
        middle: Node | None,
        right: Node | None,
        split: int,
        mid_split: int,
    ) -> None:
        """``mast_set_split_parents``."""
        if mast.l.status == MAS_NONE:
            return
        l_node: Node = left
        r_node: Node | None = middle if middle is not None else right

        def mid_check(slot: int) -> None:
            nonlocal l_node, r_node, split
            if r_node is right:
                return
            if slot < mid_split:
                return
            assert r_node is not None
            l_node, r_node, split = r_node, right, mid_split

        slot = mast.l.offset
        mid_check(slot)
        slot = self._set_split_parent(mast.l, l_node, r_node, slot, split)
        mid_check(slot)
        slot = self._set_split_parent(mast.m, l_node, r_node, slot, split)
        mid_check(slot)
        self._set_split_parent(mast.r, l_node, r_node, slot, split)

    def _cp_to_nodes(
        self,
        mast: Subtree,
        left: Node,
        middle: Node | None,
        right: Node | None,
        split: int,
        mid_split: int,
    ) -> None:
        """``mast_cp_to_nodes``."""
        new_lmax = True
        mast.l.set_node(left)
        mast.m.set_node(middle)
        mast.r.set_node(right)
        mast.l.min = mast.orig_l.min
        if split == mast.bn.b_end:
            mast.l.max = mast.orig_r.max
            new_lmax = False
        self._mab_mas_cp(mast.bn, 0, split, mast.l, new_lmax)
        left.min, left.max = mast.l.min, mast.l.max
        if middle is not None:
            self._mab_mas_cp(mast.bn, 1 + split, mid_split, mast.m, True)
            mast.m.min = mast.bn.pivot[split] + 1
            middle.min, middle.max = mast.m.min, mast.m.max
            split = mid_split
        mast.r.max = mast.orig_r.max
        if right is not None:
            self._mab_mas_cp(mast.bn, 1 + split, mast.bn.b_end, mast.r, False)
            mast.r.min = mast.bn.pivot[split] + 1
            right.min, right.max = mast.r.min, mast.r.max

    def _ascend_free(self, mast: Subtree) -> None:
        """``mast_ascend_free`` (without the freeing: see module doc)."""
        self._ascend(mast.orig_l)
        self._ascend(mast.orig_r)
        mast.orig_r.offset = 0
        mast.orig_r.index = mast.r.max
        if mast.orig_r.last < mast.orig_r.index:
            mast.orig_r.last = mast.orig_r.index
        wr = WrState(mast.orig_r, None)
        assert mast.orig_r.node is not None
        wr.type = mast.orig_r.node.type
        self._wr_node_walk(wr)
        mast.orig_l.offset = 0
        mast.orig_l.index = mast.l.min
        wr.mas = mast.orig_l
        assert mast.orig_l.node is not None
        wr.type = mast.orig_l.node.type
        self._wr_node_walk(wr)
        mast.bn.type = wr.type

    def _rebalance_next(self, mast: Subtree) -> None:
        """``mast_rebalance_next``."""
        assert mast.orig_r.node is not None
        b_end = mast.bn.b_end
        self._mas_mab_cp(mast.orig_r, 0, MT_SLOTS[mast.orig_r.node.type], mast.bn, b_end)
        mast.orig_r.last = mast.orig_r.max

    def _rebalance_prev(self, mast: Subtree) -> None:
        """``mast_rebalance_prev``."""
        end = self._mas_data_end(mast.orig_l) + 1
        b_end = mast.bn.b_end
        self._mab_shift_right(mast.bn, end)
        self._mas_mab_cp(mast.orig_l, 0, end - 1, mast.bn, 0)
        mast.l.min = mast.orig_l.min
        mast.orig_l.index = mast.orig_l.min
        mast.bn.b_end = end + b_end
        mast.l.offset += end

    def _spanning_rebalance_pull(self, mast: Subtree) -> bool:
        """``mast_spanning_rebalance``: pull in a neighbour to fix underflow."""
        r_tmp = mast.orig_r.copy()
        l_tmp = mast.orig_l.copy()
        depth = 0
        while True:
            self._ascend(mast.orig_r)
            self._ascend(mast.orig_l)
            depth += 1
            if mast.orig_r.offset < self._mas_data_end(mast.orig_r):
                mast.orig_r.offset += 1
                while True:
                    self._descend(mast.orig_r)
                    mast.orig_r.offset = 0
                    depth -= 1
                    if not depth:
                        break
                self._rebalance_next(mast)
                mast.orig_l.assign(l_tmp)
                return True
            if mast.orig_l.offset != 0:
                mast.orig_l.offset -= 1
                while True:
                    self._descend(mast.orig_l)
                    mast.orig_l.offset = self._mas_data_end(mast.orig_l)
                    depth -= 1
                    if not depth:
                        break
                self._rebalance_prev(mast)
                mast.orig_r.assign(r_tmp)
                return True
            assert mast.orig_r.node is not None
            if self._is_root(mast.orig_r.node):
                break
        mast.orig_r.assign(r_tmp)
        mast.orig_l.assign(l_tmp)
        return False

    def _combine_cp_left(self, mast: Subtree) -> None:
        """``mast_combine_cp_left``."""
        l_slot = mast.orig_l.offset
        if not l_slot:
            return
        self._mas_mab_cp(mast.orig_l, 0, l_slot - 1, mast.bn, 0)

    def _combine_cp_right(self, mast: Subtree) -> None:
        """``mast_combine_cp_right``."""
        if mast.bn.pivot[mast.bn.b_end - 1] >= mast.orig_r.max:
            return
        assert mast.orig_r.node is not None
        self._mas_mab_cp(
            mast.orig_r,
            mast.orig_r.offset + 1,
            MT_SLOTS[mast.orig_r.node.type],
            mast.bn,
            mast.bn.b_end,
        )
        mast.orig_r.last = mast.orig_r.max

    @staticmethod
    def _is_root_limits(mas: MaState) -> bool:
        """``mas_is_root_limits``."""
        return mas.min == 0 and mas.max == ULONG_MAX

    def _spanning_rebalance(self, mas: MaState, mast: Subtree, count: int) -> None:
        """``mas_spanning_rebalance``: rebuild the subtree covering both edges."""
        mast.l = MaState(mas.index, mas.index, status=MAS_NONE)
        mast.m = MaState(mas.index, mas.index, status=MAS_NONE)
        mast.r = MaState(mas.index, mas.last, status=MAS_NONE)
        left: Node | None = None
        middle: Node | None = None
        right: Node | None = None
        bn = mast.bn
        if (mast.orig_l.min != 0 or mast.orig_r.max != ULONG_MAX) and bn.b_end <= MT_MIN_SLOTS[
            bn.type
        ]:
            self._spanning_rebalance_pull(mast)
        mast.orig_l.depth = 0
        new_root = False
        while count:
            count -= 1
            bn.b_end -= 1
            assert mast.orig_l.node is not None
            bn.type = mast.orig_l.node.type
            split, left, right, middle, mid_split = self._mab_to_node(bn)
            self._set_split_parents(mast, left, middle, right, split, mid_split)
            self._cp_to_nodes(mast, left, middle, right, split, mid_split)
            bn.clear()
            bn.type = left.type
            mast.orig_l.depth += 1
            if self._is_root_limits(mast.l):
                new_root = True
                break
            self._ascend_free(mast)
            self._combine_cp_left(mast)
            mast.l.offset = bn.b_end
            self._mab_set_b_end(bn, mast.l, left)
            self._mab_set_b_end(bn, mast.m, middle)
            self._mab_set_b_end(bn, mast.r, right)
            self._combine_cp_right(mast)
            mast.orig_l.last = mast.orig_l.max
            assert mast.orig_l.node is not None
            if bn.b_end > MT_MIN_SLOTS[mast.orig_l.node.type]:
                continue
            if bn.b_end >= MT_SLOTS[mast.orig_l.node.type]:
                continue
            if self._is_root_limits(mast.orig_l):
                break
            self._spanning_rebalance_pull(mast)
            if not count:
                count += 1

        assert left is not None
        if new_root:
            top = left
            top.parent = None
            depth = mast.orig_l.depth
            l_mas = mast.l
        else:
            assert mast.orig_l.node is not None
            top = self._alloc(mast.orig_l.node.type)
            l_mas = MaState(mas.index, mas.index)
            l_mas.set_node(top)
            l_mas.min, l_mas.max = mast.orig_l.min, mast.orig_l.max
            mast.orig_l.depth += 1
            self._mab_mas_cp(bn, 0, MT_SLOTS[bn.type] - 1, l_mas, True)
            slot = 0
            left.parent, left.parent_slot = top, slot
            if middle is not None:
                slot += 1
                middle.parent, middle.parent_slot = top, slot
            if right is not None:
                slot += 1
                right.parent, right.parent_slot = top, slot
            if self._is_root_limits(mast.l):
                top.parent = None
            else:
                orig = mast.orig_l.node
                top.parent, top.parent_slot = orig.parent, orig.parent_slot
            depth = mast.orig_l.depth
        mas.depth = depth
        mas.set_node(top)
        mas.min, mas.max = l_mas.min, l_mas.max
        mas.offset = l_mas.offset
        self._wmb_replace(mas)

    def _wmb_replace(self, mas: MaState) -> None:
        """``mas_wmb_replace``: publish a rebuilt subtree, then fix gaps above it."""
        node = mas.node
        assert node is not None
        self._publish(mas, node)
        if not node.is_leaf:
            self._update_gap(mas)

    def _rebalance(self, mas: MaState, b: BigNode) -> None:
        """``mas_rebalance``: combine an underfull node with a sibling."""
        self.last_op = "rebalance"
        self.stats["rebalance"] += 1
        empty_count = self.height
        b.b_end += 1
        b_end = b.b_end
        assert mas.node is not None
        b.type = mas.node.type
        l_mas = mas.copy()
        r_mas = mas.copy()
        mast = Subtree(l_mas, r_mas, b)
        if self._next_sibling(r_mas):
            assert r_mas.node is not None
            self._mas_mab_cp(r_mas, 0, MT_SLOTS[r_mas.node.type], b, b_end)
            r_mas.last = r_mas.index = r_mas.max
        else:
            self._prev_sibling(l_mas)
            shift = self._mas_data_end(l_mas) + 1
            self._mab_shift_right(b, shift)
            mas.offset += shift
            self._mas_mab_cp(l_mas, 0, shift - 1, b, 0)
            b.b_end = shift + b_end
            l_mas.index = l_mas.last = l_mas.min
        self._spanning_rebalance(mas, mast, empty_count)

    def _split_final_node(self, mast: Subtree, mas: MaState, height: int) -> None:
        """``mas_split_final_node``: the node above the split halves."""
        assert mas.node is not None
        if self._is_root(mas.node):
            mast.bn.type = ARANGE_64
            mas.depth = height
        ancestor = self._alloc(mast.bn.type)
        assert mast.l.node is not None and mast.r.node is not None
        mast.l.node.parent, mast.l.node.parent_slot = ancestor, mast.l.offset
        mast.r.node.parent, mast.r.node.parent_slot = ancestor, mast.r.offset
        ancestor.parent, ancestor.parent_slot = mas.node.parent, mas.node.parent_slot
        mast.l.set_node(ancestor)
        self._mab_mas_cp(mast.bn, 0, MT_SLOTS[mast.bn.type] - 1, mast.l, True)
        mas.offset = mast.bn.b_end - 1

    def _fill_bnode(self, mast: Subtree, mas: MaState, skip: int) -> None:
        """``mast_fill_bnode``: build the parent level's big node after a split."""
        cp = True
        bn = mast.bn
        bn.clear()
        assert mas.node is not None
        if self._is_root(mas.node):
            cp = False
        else:
            self._ascend(mas)
            assert mas.node is not None
            # The kernel then overwrites the offset with the parent's own slot.
            mas.offset = mas.node.parent_slot if mas.node.parent is not None else 0
        if cp and mast.l.offset:
            self._mas_mab_cp(mas, 0, mast.l.offset - 1, bn, 0)
        split = bn.b_end
        self._mab_set_b_end(bn, mast.l, mast.l.node)
        mast.r.offset = bn.b_end
        self._mab_set_b_end(bn, mast.r, mast.r.node)
        if bn.pivot[bn.b_end - 1] == mas.max:
            cp = False
        if cp:
            assert mas.node is not None
            self._mas_mab_cp(mas, split + skip, MT_SLOTS[mas.node.type] - 1, bn, bn.b_end)
        bn.b_end -= 1
        assert mas.node is not None
        bn.type = mas.node.type

    def _split_data(self, mast: Subtree, mas: MaState, split: int) -> None:
        """``mast_split_data``: copy ``b`` into the left and right halves."""
        self._mab_mas_cp(mast.bn, 0, split, mast.l, True)
        assert mast.r.node is not None and mas.node is not None
        mast.r.node.pivot[0] = mast.r.max
        self._mab_mas_cp(mast.bn, split + 1, mast.bn.b_end, mast.r, False)
        mast.l.offset = mas.node.parent_slot if mas.node.parent is not None else 0
        mast.l.max = mast.bn.pivot[split]
        mast.r.min = mast.l.max + 1
        assert mast.l.node is not None
        mast.l.node.min, mast.l.node.max = mast.l.min, mast.l.max
        mast.r.node.min, mast.r.node.max = mast.r.min, mast.r.max
        if mas.node.is_leaf:
            return
        p_slot = mast.orig_l.offset
        p_slot = self._set_split_parent(mast.orig_l, mast.l.node, mast.r.node, p_slot, split)
        self._set_split_parent(mast.orig_r, mast.l.node, mast.r.node, p_slot, split)

    def _push_data(self, mas: MaState, height: int, mast: Subtree, left: bool) -> bool:
        """``mas_push_data``: move data into a sibling instead of splitting."""
        slot_total = mast.bn.b_end
        tmp = mas.copy()
        tmp.depth = mast.l.depth
        if left and not self._prev_sibling(tmp):
            return False
        if not left and not self._next_sibling(tmp):
            return False
        end = self._mas_data_end(tmp)
        slot_total += end
        assert mas.node is not None
        space = 2 * MT_SLOTS[mas.node.type] - 2
        if mast.bn.type == LEAF_64:
            space -= 1
        if mas.max == ULONG_MAX:
            space -= 1
        if slot_total >= space:
            return False
        mast.bn.b_end += 1
        if left:
            self._mab_shift_right(mast.bn, end + 1)
            self._mas_mab_cp(tmp, 0, end, mast.bn, 0)
            mast.bn.b_end = slot_total + 1
        else:
            self._mas_mab_cp(tmp, 0, end, mast.bn, mast.bn.b_end)
        split = MT_SLOTS[mast.bn.type] - 2
        if left:
            mas.assign(tmp)
            tmp.node = mast.l.node
            mast.l.assign(tmp)
        else:
            tmp.node = mast.r.node
            mast.r.assign(tmp)
            split = slot_total - split
        split = self._mab_no_null_split(mast.bn, split, MT_SLOTS[mast.bn.type])
        if left:
            mast.orig_l.offset += end + 1
        self._split_data(mast, mas, split)
        self._fill_bnode(mast, mas, 2)
        self._split_final_node(mast, mas, height + 1)
        return True

    def _split(self, mas: MaState, b: BigNode) -> None:
        """``mas_split``: split upwards, pushing left or right where that fits."""
        self.last_op = "split"
        self.stats["split"] += 1
        height = 0
        mas.depth = self.height
        l_mas = MaState(mas.index, mas.last)
        r_mas = MaState(mas.index, mas.last)
        mast = Subtree(MaState(mas.index, mas.last), MaState(mas.index, mas.last), b)
        mast.l, mast.r = l_mas, r_mas
        while True:
            height += 1
            if height > mas.depth + 1:
                break
            if MT_SLOTS[b.type] > b.b_end:
                self._split_final_node(mast, mas, height)
                break
            l_mas.assign(mas)
            r_mas.assign(mas)
            l_mas.set_node(self._mas_new_ma_node(b))
            r_mas.set_node(self._mas_new_ma_node(b))
            if self._push_data(mas, height, mast, True):
                break
            if self._push_data(mas, height, mast, False):
                break
            split, _mid = self._mab_calc_split(b)
            self._split_data(mast, mas, split)
            mast.r.max = mas.max
            assert mast.r.node is not None
            mast.r.node.max = mas.max
            self._fill_bnode(mast, mas, 1)
            mast.orig_l.assign(mast.l)
            mast.orig_r.assign(mast.r)
        # mas keeps the range of the node being replaced (the final node's level).
        mas.set_node(l_mas.node)
        self._wmb_replace(mas)

    def _wr_spanning_store(self, wr: WrState) -> None:
        """``mas_wr_spanning_store``: a store whose range crosses node boundaries."""
        self.last_op = "spanning_store"
        self.stats["spanning"] += 1
        mas = wr.mas
        if mas.index == 0 and mas.last == ULONG_MAX:
            self._new_root(mas, wr.entry)
            return
        height = self.height
        r_mas = mas.copy()
        r_wr = WrState(r_mas, wr.entry)
        if (r_mas.last + 1) & ULONG_MAX:
            r_mas.last += 1
        r_mas.index = r_mas.last
        self._wr_walk_index(r_wr)
        r_mas.last = r_mas.index = mas.last
        l_mas = mas.copy()
        l_wr = WrState(l_mas, wr.entry)
        self._wr_walk_index(l_wr)
        if wr.entry is None:
            self._extend_spanning_null(l_wr, r_wr)
            mas.offset = l_mas.offset
            mas.index = l_mas.index
            mas.last = l_mas.last = r_mas.last
        if not l_mas.index and r_mas.last == ULONG_MAX:
            mas.index, mas.last = 0, ULONG_MAX
            self._new_root(mas, wr.entry)
            return
        b = BigNode()
        self._store_b_node(l_wr, b, l_wr.node_end)
        if r_mas.max > r_mas.last:
            self._mas_mab_cp(r_mas, r_mas.offset, r_wr.node_end, b, b.b_end + 1)
        else:
            b.b_end += 1
        l_mas.index = l_mas.last = mas.index
        mast = Subtree(l_mas, r_mas, b)
        self._spanning_rebalance(mas, mast, height + 1)

    def _extend_spanning_null(self, l_wr: WrState, r_wr: WrState) -> None:
        """``mas_extend_spanning_null``: widen a NULL store over NULL neighbours."""
        l_mas, r_mas = l_wr.mas, r_wr.mas
        assert l_wr.node is not None and r_wr.node is not None
        l_slot = l_mas.offset
        if l_wr.content is None:
            l_mas.index = l_wr.r_min
        if l_mas.index == l_wr.r_min and l_slot and l_wr.node.slot[l_slot - 1] is None:
            if l_slot > 1:
                l_mas.index = l_wr.node.pivot[l_slot - 2] + 1
            else:
                l_mas.index = l_mas.min
            l_mas.offset = l_slot - 1
        if r_wr.content is None:
            if r_mas.last < r_wr.r_max:
                r_mas.last = r_wr.r_max
            r_mas.offset += 1
        elif (
            r_mas.last == r_wr.r_max
            and r_mas.last < r_mas.max
            and r_wr.node.slot[r_mas.offset + 1] is None
        ):
            r_mas.last = self._safe_pivot(r_mas, r_wr.node.pivot, r_mas.offset + 1, r_wr.type)
            r_mas.offset += 1

    def _wr_store_entry(self, wr: WrState) -> None:
        """``mas_wr_store_entry``: the top of every write."""
        mas = wr.mas
        wr.content = self._mas_start(mas)
        if mas.status in (MAS_NONE, MAS_ROOT):
            self.last_op = "root_store"
            self._store_root(mas, wr.entry)
            return
        if not self._wr_walk(wr):
            self._wr_spanning_store(wr)
            return
        self._wr_end_piv(wr)
        if wr.entry is None:
            self._wr_extend_null(wr)
        if not mas.index and mas.last == ULONG_MAX:
            self.last_op = "new_root"
            self._new_root(mas, wr.entry)
            return
        self._wr_modify(wr)

    # ------------------------------------------------------------ public API

    def store_range(
        self, first: int, last: int, entry: Any, *, staged: bool = False
    ) -> StoreResult:
        """``mtree_store_range`` / ``mas_store_gfp``: store ``entry`` over ``[first, last]``.

        ``None`` erases the range.  With ``staged`` a node replacement is built
        and its old nodes are marked dead, but the new nodes become reachable
        only at :meth:`commit_pending`.

        Raises:
            MapleError: for a bad range (the kernel's ``-EINVAL``) or while a
                staged store is still unpublished.
        """
        if not (0 <= first <= last <= ULONG_MAX):
            raise MapleError(f"bad range [{first}, {last}]")
        if self._pending is not None:
            raise MapleError("a staged store has not been published yet")
        self._new = {}
        self._last_publish = None
        self._retired_direct = []
        self.staged = staged
        self.stats["stores"] += 1
        try:
            self._wr_store_entry(WrState(MaState(first, last), entry))
        finally:
            self.staged = False
            created = self._new
            self._new = {}
        pub: PendingPublish | None = self._last_publish
        retired = list(pub.retired) if pub else list(self._retired_direct)
        return StoreResult(
            op=self.last_op,
            replaced=pub is not None or bool(retired),
            retired=retired,
            created=len(created),
            pending=self._pending is not None,
            new_nodes=list(created.values()),
        )

    def erase(self, index: int) -> Any:
        """``mtree_erase``: remove the whole range containing ``index``."""
        entry, first, last = self.lookup_range(index)
        if entry is not None:
            self.store_range(first, last, None)
        return entry

    def walk(self, index: int) -> tuple[Any, int, int]:
        """``mas_walk``: the entry at ``index`` and the range it occupies."""
        return self.lookup_range(index)

    def lookup_range(self, index: int) -> tuple[Any, int, int]:
        root = self.root
        if root is None:
            return None, 0, ULONG_MAX
        if not isinstance(root, Node):
            return (root, 0, 0) if index == 0 else (None, 1, ULONG_MAX)
        node = root
        lo, hi = 0, ULONG_MAX
        while True:
            end = node.data_end() if node.type == LEAF_64 else node.meta_end
            pivots = node.pivot
            off = 0
            while off < end and pivots[off] < index:
                off += 1
            if off:
                lo = pivots[off - 1] + 1
            if off < end:
                hi = pivots[off]
            child = node.slot[off]
            if node.is_leaf:
                return child, lo, hi
            node = child

    def load(self, index: int) -> Any:
        """``mtree_load``."""
        return self.lookup_range(index)[0]

    def items(self, start: int = 0, end: int = ULONG_MAX) -> Iterator[tuple[int, int, Any]]:
        """Every range (NULL ones included) overlapping ``[start, end]``, in order.

        Descends to the leaf holding ``start`` and then moves leaf to leaf
        through the parent pointers, as ``mas_next_node`` does.
        """
        root = self.root
        if not isinstance(root, Node):
            # An empty tree is one NULL range; a direct root entry covers index 0.
            ranges = (
                [(0, ULONG_MAX, None)] if root is None else [(0, 0, root), (1, ULONG_MAX, None)]
            )
            for lo, hi, e in ranges:
                if hi >= start and lo <= end:
                    yield lo, hi, e
            return
        leaf = self._leaf_for(start)
        while leaf is not None and leaf.min <= end:
            for lo, hi, e in leaf.ranges():
                if hi >= start and lo <= end:
                    yield lo, hi, e
            leaf = self._next_leaf(leaf)

    def items_rev(self, end: int, start: int = 0) -> Iterator[tuple[int, int, Any]]:
        """Every range overlapping ``[start, end]``, from the highest down (``mas_prev``)."""
        leaf = self._leaf_for(end)
        while leaf is not None and leaf.max >= start:
            rng = leaf.ranges()
            for j in range(len(rng) - 1, -1, -1):
                lo, hi, e = rng[j]
                if hi >= start and lo <= end:
                    yield lo, hi, e
            leaf = self._prev_leaf(leaf)

    def _leaf_for(self, index: int) -> Node | None:
        node = self.root
        if not isinstance(node, Node):
            return None
        while not node.is_leaf:
            end = node.meta_end
            off = 0
            while off < end and node.pivot[off] < index:
                off += 1
            child: Node = node.slot[off]
            node = child
        return node

    @staticmethod
    def _next_leaf(node: Node) -> Node | None:
        while node.parent is not None:
            parent = node.parent
            if node.parent_slot < parent.data_end():
                node = parent.slot[node.parent_slot + 1]
                while not node.is_leaf:
                    node = node.slot[0]
                return node
            node = parent
        return None

    @staticmethod
    def _prev_leaf(node: Node) -> Node | None:
        while node.parent is not None:
            parent = node.parent
            if node.parent_slot > 0:
                node = parent.slot[node.parent_slot - 1]
                while not node.is_leaf:
                    node = node.slot[node.data_end()]
                return node
            node = parent
        return None

    def entries(self) -> Iterator[tuple[int, int, Any]]:
        """Every non-NULL range in order (``mas_for_each``)."""
        for lo, hi, e in self.items():
            if e is not None:
                yield lo, hi, e

    def find(self, index: int, limit: int = ULONG_MAX) -> tuple[Any, int, int] | None:
        """``mt_find``/``mas_find``: the first entry at or after ``index`` up to ``limit``."""
        if self.root is not None and not isinstance(self.root, Node):
            return (self.root, 0, 0) if index == 0 else None
        leaf = self._leaf_for(index)
        while leaf is not None and leaf.min <= limit:
            end = leaf.data_end()
            pivots, slots = leaf.pivot, leaf.slot
            lo = leaf.min
            for i in range(end + 1):
                hi = pivots[i] if i < end else leaf.max
                if hi >= index and slots[i] is not None:
                    return (slots[i], lo, hi) if lo <= limit else None
                lo = hi + 1
            leaf = self._next_leaf(leaf)
        return None

    def next(self, index: int, limit: int = ULONG_MAX) -> tuple[Any, int, int] | None:
        """``mas_next``: the first entry that starts after the range holding ``index``."""
        _, _, hi = self.lookup_range(index)
        if hi >= limit or hi == ULONG_MAX:
            return None
        return self.find(hi + 1, limit)

    def prev(self, index: int, minimum: int = 0) -> tuple[Any, int, int] | None:
        """``mas_prev``: the last entry that ends before the range holding ``index``."""
        _, lo, _ = self.lookup_range(index)
        if lo == 0 or lo <= minimum:
            return None
        for r_lo, r_hi, e in self.items_rev(lo - 1, minimum):
            if e is not None:
                return e, r_lo, r_hi
        return None

    def empty_area(self, lo: int, hi: int, size: int) -> int | None:
        """``mas_empty_area``: the lowest start of a NULL run of ``size`` in ``[lo, hi]``.

        Descends using the arange gaps, as the kernel does, so whole subtrees
        without a large enough gap are skipped.
        """
        if size <= 0 or lo > hi or hi - lo + 1 < size:
            return None
        root = self.root
        if root is None:
            return lo
        if not isinstance(root, Node):
            start = max(lo, 1)
            return start if hi - start + 1 >= size else None
        return self._awalk(root, lo, hi, size, rev=False)

    def empty_area_rev(self, lo: int, hi: int, size: int) -> int | None:
        """``mas_empty_area_rev``: the highest start of a NULL run of ``size`` in ``[lo, hi]``."""
        if size <= 0 or lo > hi or hi - lo + 1 < size:
            return None
        root = self.root
        if root is None:
            return hi - size + 1
        if not isinstance(root, Node):
            return hi - size + 1 if hi - max(lo, 1) + 1 >= size else None
        return self._awalk(root, lo, hi, size, rev=True)

    def _awalk(self, node: Node, lo: int, hi: int, size: int, rev: bool) -> int | None:
        rng = node.ranges()
        order = range(len(rng) - 1, -1, -1) if rev else range(len(rng))
        for i in order:
            r_lo, r_hi, slot = rng[i]
            if r_hi < lo or r_lo > hi:
                continue
            if node.is_leaf:
                if slot is not None:
                    continue
                a, z = max(r_lo, lo), min(r_hi, hi)
                if z >= a and z - a + 1 >= size:
                    return z - size + 1 if rev else a
                continue
            if node.gap[i] < size:
                continue
            found = self._awalk(slot, lo, hi, size, rev)
            if found is not None:
                return found
        return None

    # ------------------------------------------------------------ inspection

    def nodes(self) -> Iterator[tuple[Node, int]]:
        """Every live node with its depth, in pre-order."""
        root = self.root
        if not isinstance(root, Node):
            return
        stack: list[tuple[Node, int]] = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            yield node, depth
            if not node.is_leaf:
                for i in range(node.data_end(), -1, -1):
                    child: Node = node.slot[i]
                    stack.append((child, depth + 1))

    def leaves(self) -> Iterator[Node]:
        for node, _ in self.nodes():
            if node.is_leaf:
                yield node

    def dump(self) -> dict[str, Any]:
        """The tree as the CLI contract's JSON object (see ``vmaviz.maple``)."""
        root = self.root
        if root is None:
            return {"height": 0, "root": None}
        if not isinstance(root, Node):
            return {"height": 0, "root": {"type": "direct", "entry": _entry_json(root)}}
        return {"height": self.height, "root": self._dump_node(root)}

    def _dump_node(self, node: Node) -> dict[str, Any]:
        if node.is_leaf:
            return {
                "type": "leaf64",
                "min": node.min,
                "max": node.max,
                "entries": [[lo, hi, _entry_json(e)] for lo, hi, e in node.ranges()],
            }
        end = node.data_end()
        return {
            "type": "arange64",
            "min": node.min,
            "max": node.max,
            "gaps": node.gap[: end + 1],
            "children": [self._dump_node(c) for c in node.slot[: end + 1]],
        }

    def mt_dump(self) -> str:
        """A text dump in the spirit of the kernel's ``mt_dump`` (6.4 format, decimal)."""
        lines = [f"maple_tree flags {0x303 | (self.height << 2):X}, height {self.height}"]
        for node, depth in self.nodes():
            pad = "  " * depth
            end = node.data_end()
            if node.is_leaf:
                body = " ".join(
                    f"{_entry_text(node.slot[i])} {node.pivot[i] if i < 15 else ''}"
                    for i in range(end + 1)
                )
                lines.append(
                    f"{pad}{node.min}-{node.max}: node #{node.nid} depth {depth} type 1 "
                    f"contents: {body}"
                )
            else:
                gaps = " ".join(str(g) for g in node.gap[: end + 1])
                piv = " ".join(str(p) for p in node.pivot[:end])
                lines.append(
                    f"{pad}{node.min}-{node.max}: node #{node.nid} depth {depth} type 3 "
                    f"gaps: {gaps} | {end:02x} {node.meta_gap:02x}| pivots: {piv}"
                )
        return "\n".join(lines)

    def _root_node(self, errors: list[str]) -> Node | None:
        """The root node to walk, or None (an empty tree or a single entry).

        An empty tree must have height 0; that problem goes into ``errors``.
        """
        root = self.root
        if root is None and self.height:
            errors.append(f"empty tree with height {self.height}")
        return root if isinstance(root, Node) else None

    def validate(self) -> list[str]:
        """``mt_validate``: the structural checks of reference §11.9.

        One in-order pass over the nodes, without building range lists: the
        kernel model validates the tree after every store.

        Returns a list of problems (empty when the tree is valid).
        """
        errors: list[str] = []
        root = self._root_node(errors)
        if root is None:
            return errors
        leaf_depths: set[int] = set()
        # The last range seen so far, in index order: [its last index, is it NULL].
        last: list[Any] = [None, False]
        self._validate_node(root, 0, ULONG_MAX, 1, errors, leaf_depths, None, 0, last)
        if len(leaf_depths) > 1:
            errors.append(f"leaves at different depths {sorted(leaf_depths)}")
        if leaf_depths and self.height != next(iter(leaf_depths)):
            errors.append(f"height {self.height} != actual {sorted(leaf_depths)}")
        return errors

    def _validate_node(
        self,
        node: Node,
        lo: int,
        hi: int,
        depth: int,
        errors: list[str],
        leaf_depths: set[int],
        parent: Node | None,
        pslot: int,
        last: list[Any],
    ) -> int:
        """Check one node (and, in order, its subtree); returns its largest gap."""
        end = self._check_node(node, lo, hi, errors, parent, pslot)
        if end < 0:
            return 0
        if node.type == LEAF_64:
            leaf_depths.add(depth)
            prev_hi, last_null = last
            # Across leaves the ranges tile the index space (within a leaf the
            # increasing pivots make them contiguous) and no two NULLs adjoin.
            if prev_hi is not None and node.min != prev_hi + 1:
                errors.append(f"ranges not contiguous at {node.min:#x}")
            if node.slot[0] is None and last_null:
                errors.append(f"adjacent NULL ranges at {node.min:#x}")
            last[0], last[1] = node.max, node.slot[end] is None
            return self._leaf_gap(node, end, errors)
        r_lo = node.min
        pivot, slot = node.pivot, node.slot
        best = 0
        for i in range(end + 1):
            r_hi = pivot[i] if i < end else node.max
            child = slot[i]
            if not isinstance(child, Node):
                errors.append(f"node #{node.nid} [{lo:#x}-{hi:#x}]: slot {i} is not a node")
            else:
                g = self._validate_node(
                    child, r_lo, r_hi, depth + 1, errors, leaf_depths, node, i, last
                )
                best = _checked_gap(node, lo, hi, i, g, best, errors)
            r_lo = r_hi + 1
        self._check_meta_gap(node, lo, hi, end, best, errors)
        return best

    @staticmethod
    def _check_node(
        node: Node, lo: int, hi: int, errors: list[str], parent: Node | None, pslot: int
    ) -> int:
        """The checks of one node on its own, reached as ``parent.slot[pslot]`` over ``[lo, hi]``.

        Shared by :meth:`validate` and :meth:`validate_store`: dead, cached range,
        parent pointer, slot count, minimum occupancy, increasing pivots and no
        empty last range.  Returns the node's data end, or -1 when the node is too
        broken to look inside.
        """

        def where() -> str:
            # Built only for a problem: validation runs after every tree write.
            return f"node #{node.nid} [{lo:#x}-{hi:#x}]"

        if node.dead:
            errors.append(f"{where()}: dead node reachable")
        if node.min != lo or node.max != hi:
            errors.append(f"{where()}: cached range {node.min:#x}-{node.max:#x}")
        if node.parent is not parent or (parent is not None and node.parent_slot != pslot):
            errors.append(f"{where()}: bad parent pointer")
        end = node.data_end()
        ntype = node.type
        if end >= MT_SLOTS[ntype]:
            errors.append(f"{where()}: end {end} beyond {MT_SLOTS[ntype]} slots")
            return -1
        if parent is not None and end + 1 < MT_MIN_SLOTS[ntype]:
            errors.append(f"{where()}: {end + 1} slots, below the minimum {MT_MIN_SLOTS[ntype]}")
        pivot = node.pivot
        ps = pivot[:end]
        # The pivots strictly increase within (lo, hi]: checked in C first, and
        # walked one by one (for the messages) only when something is off.
        if ps and not (
            (ps[0] > lo - 1 or ps[0] == lo == 0)
            and all(map(operator.lt, ps, ps[1:]))
            and ps[-1] <= hi
        ):
            prev = lo - 1
            for i, p in enumerate(ps):
                if p <= prev and not (i == 0 and p == lo == 0):
                    errors.append(f"{where()}: pivot {i} = {p:#x} not increasing")
                if p > hi:
                    errors.append(f"{where()}: pivot {i} = {p:#x} beyond max")
                prev = p
        if end and pivot[end - 1] >= hi:
            errors.append(f"{where()}: last slot empty range")
        return end

    @staticmethod
    def _leaf_gap(node: Node, end: int, errors: list[str] | None) -> int:
        """A leaf's largest NULL range; with ``errors``, also report two NULLs side by side."""
        slot = node.slot
        if None not in slot[: end + 1]:
            # A leaf of VMAs side by side: no gap (the common case, checked in C).
            return 0
        pivot = node.pivot
        nmin, nmax = node.min, node.max
        best = 0
        for i in range(end + 1):
            if slot[i] is None:
                r_lo = pivot[i - 1] + 1 if i else nmin
                if i and errors is not None and slot[i - 1] is None:
                    errors.append(f"adjacent NULL ranges at {r_lo:#x}")
                r_hi = pivot[i] if i < end else nmax
                if r_hi - r_lo + 1 > best:
                    best = r_hi - r_lo + 1
        return best

    @staticmethod
    def _check_meta_gap(
        node: Node, lo: int, hi: int, end: int, best: int, errors: list[str]
    ) -> None:
        """An arange node's metadata names the offset of its largest gap."""
        meta = node.meta_gap
        if best and (meta > end or node.gap[meta] != best):
            errors.append(
                f"node #{node.nid} [{lo:#x}-{hi:#x}]: metadata gap offset {meta}"
                " does not name the largest gap"
            )

    # ------------------------------------------------------ incremental check

    def validate_store(self, first: int, last: int, touched: Iterable[Node] = ()) -> list[str]:
        """The checks of :meth:`validate` on what a store over ``[first, last]`` can change.

        ``mt_validate`` (lib/maple_tree.c, CONFIG_DEBUG_MAPLE_TREE) walks the
        whole tree; the kernel has no per-store variant.  This one is the
        model's, so that checking after every store does not cost O(tree).

        A store writes only (a) the nodes on the paths to the indexes
        ``first - 1`` .. ``last + 1`` (the range itself, and the neighbouring
        ranges a NULL store absorbs), whose gaps and pivots change in place or
        which are replaced; (b) the nodes it allocates (splits and rebalances
        also rebuild siblings outside the range) and, to publish them, their
        ancestors; (c) the parents of the nodes it retires.  So the tree is
        valid after the store if it was valid before and every node of (a), (b)
        and (c) passes the per-node checks of :meth:`validate`, with each
        child that is not itself re-checked linked correctly (live, cached
        range, parent pointer, gap) and the leaves of (a)-(c) joined to their
        neighbour leaves without a hole or two NULLs in a row.  The cost is
        the height times a node's slots, not the size of the tree.

        A node changed outside those (a model bug that writes somewhere
        unexpected) is not seen here; :meth:`validate`, which the kernel model
        also runs periodically and at the end of a run, sees it.

        Args:
            first, last: the stored range (inclusive), as given to :meth:`store_range`.
            touched: nodes the store allocated or retired
                (``StoreResult.new_nodes`` and ``StoreResult.retired``).

        Returns:
            The problems found (empty when this part of the tree is valid).
        """
        errors: list[str] = []
        root = self._root_node(errors)
        if root is None:
            return errors
        # Mark every ancestor of a touched node so that the walk below goes
        # through it.  The climb is bounded: a broken parent chain must not loop.
        marked: set[int] = set()
        limit = self.height + 2
        for n in touched:
            p: Node | None = n
            for _ in range(limit):
                if p is None or id(p) in marked:
                    break
                marked.add(id(p))
                p = p.parent
        lo = first - 1 if first > 0 else 0
        hi = last + 1 if last < ULONG_MAX else ULONG_MAX
        leaves: list[tuple[Node, int]] = []
        self._validate_region(root, 0, ULONG_MAX, 1, errors, None, 0, lo, hi, marked, leaves)
        for _leaf, depth in leaves:
            if depth != self.height:
                errors.append(f"height {self.height} != actual [{depth}]")
        if not errors:
            # Leaf neighbours are found through parent pointers: only once the
            # nodes on the way are known to be sound.
            seen = {id(leaf) for leaf, _ in leaves}
            for leaf, _ in leaves:
                prev = self._neighbour_leaf(leaf, -1)
                if prev is not None:
                    self._check_leaf_join(prev, leaf, errors)
                nxt = self._neighbour_leaf(leaf, 1)
                if nxt is not None and id(nxt) not in seen:
                    self._check_leaf_join(leaf, nxt, errors)
        return errors

    def _validate_region(
        self,
        node: Node,
        lo: int,
        hi: int,
        depth: int,
        errors: list[str],
        parent: Node | None,
        pslot: int,
        first: int,
        last: int,
        marked: set[int],
        leaves: list[tuple[Node, int]],
    ) -> int:
        """:meth:`_validate_node` descending only into ``[first, last]`` and ``marked`` nodes."""
        end = self._check_node(node, lo, hi, errors, parent, pslot)
        if end < 0:
            return 0
        if node.type == LEAF_64:
            leaves.append((node, depth))
            return self._leaf_gap(node, end, errors)
        r_lo = node.min
        nmax = node.max
        pivot, slot = node.pivot, node.slot
        best = 0
        for i in range(end + 1):
            r_hi = pivot[i] if i < end else nmax
            child = slot[i]
            if type(child) is not Node:
                errors.append(f"node #{node.nid} [{lo:#x}-{hi:#x}]: slot {i} is not a node")
                r_lo = r_hi + 1
                continue
            if (r_lo <= last and r_hi >= first) or id(child) in marked:
                g = self._validate_region(
                    child, r_lo, r_hi, depth + 1, errors, node, i, first, last, marked, leaves
                )
            else:
                # Not written by this store: its content was checked before, so
                # only its link to this node is checked again, and its largest
                # gap is read off it (inline: this runs for every sibling).
                if (
                    child.dead
                    or child.min != r_lo
                    or child.max != r_hi
                    or child.parent is not node
                    or child.parent_slot != i
                ):
                    self._link_errors(child, r_lo, r_hi, errors, node, i)
                cend = child.data_end()
                if cend >= MT_SLOTS[child.type]:
                    g = 0
                elif child.type == LEAF_64:
                    g = self._leaf_gap(child, cend, None)
                else:
                    g = max(child.gap[: cend + 1])
            best = _checked_gap(node, lo, hi, i, g, best, errors)
            r_lo = r_hi + 1
        self._check_meta_gap(node, lo, hi, end, best, errors)
        return best

    @staticmethod
    def _link_errors(
        child: Node, lo: int, hi: int, errors: list[str], parent: Node, pslot: int
    ) -> None:
        """Report what is wrong with the link from ``parent.slot[pslot]`` to ``child``."""
        where = f"node #{child.nid} [{lo:#x}-{hi:#x}]"
        if child.dead:
            errors.append(f"{where}: dead node reachable")
        if child.min != lo or child.max != hi:
            errors.append(f"{where}: cached range {child.min:#x}-{child.max:#x}")
        if child.parent is not parent or child.parent_slot != pslot:
            errors.append(f"{where}: bad parent pointer")

    @staticmethod
    def _neighbour_leaf(node: Node, step: int) -> Node | None:
        """The leaf before (``step`` -1) or after (+1) ``node``, or None at either end."""
        while node.parent is not None:
            parent = node.parent
            i = node.parent_slot + step
            if 0 <= i <= parent.data_end():
                child = parent.slot[i]
                while isinstance(child, Node) and not child.is_leaf:
                    child = child.slot[0 if step > 0 else child.data_end()]
                return child if isinstance(child, Node) else None
            node = parent
        return None

    @staticmethod
    def _check_leaf_join(left: Node, right: Node, errors: list[str]) -> None:
        """Two consecutive leaves: no hole between them and no NULL on both sides."""
        if right.min != left.max + 1:
            errors.append(f"ranges not contiguous at {right.min:#x}")
        if right.slot[0] is None and left.slot[left.data_end()] is None:
            errors.append(f"adjacent NULL ranges at {right.min:#x}")


@dataclass(slots=True)
class WalkEvent:
    """One interleaving point of an RCU reader's walk (reference §13)."""

    kind: str  # load_root, dead_root, descend, found, dead_node, use_after_free, empty, root_entry
    node: Node | None
    depth: int


class MasWalk:
    """``mas_walk`` as an RCU reader runs it, advanced one level per :meth:`step`.

    Models ``mas_walk`` -> ``mas_state_walk`` -> ``mas_start`` ->
    ``mtree_range_walk`` (lib/maple_tree.c).  The caller is expected to hold
    ``rcu_read_lock``.  A dead node sends the walk back to the root
    (``mas_reset`` then ``mas_walk``'s retry).  After a walk finishes,
    :meth:`retry` walks again *without resetting the maple state*: as in
    ``lock_vma_under_rcu``'s ``goto retry`` (reference §2.8), the walk starts
    from the cached leaf and looks up the stale ``mas.index`` (the start of the
    range found last time), and only restarts from the root if that leaf died.
    """

    def __init__(self, tree: MapleTree, index: int, record: bool = True) -> None:
        self.tree = tree
        self.record = record
        self.mas = MaState(index, index)
        self.entry: Any = None
        self.done = False
        self.restarts = 0
        self.events: list[WalkEvent] = []
        self._cursor: Node | None = None
        self._lo = 0
        self._hi = ULONG_MAX

    def retry(self) -> None:
        """Walk again with the maple state left as the last walk set it."""
        self.done = False
        self.entry = None
        self._cursor = None

    def run(self) -> Any:
        """Step until the walk finishes; returns the entry."""
        while not self.done:
            self.step()
        return self.entry

    def _event(self, kind: str, node: Node | None) -> WalkEvent:
        ev = WalkEvent(kind, node, self.mas.depth)
        if self.record:
            self.events.append(ev)
        return ev

    def step(self) -> WalkEvent:
        """Advance the walk by one level (one node read)."""
        if self.done:
            raise RuntimeError("walk already finished")
        mas = self.mas
        if mas.status == MAS_START:
            mas.min, mas.max, mas.depth = 0, ULONG_MAX, 0
            root = self.tree.root
            if isinstance(root, Node):
                if root.dead:
                    # mas_start: the root just loaded is already dead; load it again.
                    self.restarts += 1
                    return self._event("dead_root", root)
                mas.set_node(root)
                mas.depth = 1
                self._cursor, self._lo, self._hi = root, 0, ULONG_MAX
                return self._event("load_root", root)
            self.done = True
            if root is None:
                mas.node, mas.status = None, MAS_NONE
                return self._event("empty", None)
            mas.node, mas.status = None, MAS_ROOT
            self.entry = root if mas.index == 0 else None
            return self._event("root_entry", None)
        if self._cursor is None:
            self._cursor, self._lo, self._hi = mas.node, mas.min, mas.max
        node = self._cursor
        assert node is not None
        if node.freed or node.dead:
            kind = "use_after_free" if node.freed else "dead_node"
            mas.reset()
            self._cursor = None
            self.restarts += 1
            return self._event(kind, node)
        pivots = node.pivot
        end = node.data_end()
        prev_lo, prev_hi = self._lo, self._hi
        lo, hi = self._lo, self._hi
        off = 0
        if pivots[0] >= mas.index:
            hi = pivots[0]
        else:
            off = 1
            while off < end and pivots[off] < mas.index:
                off += 1
            lo = pivots[off - 1] + 1
            if off < end and pivots[off]:
                hi = pivots[off]
        child = node.slot[off]
        if node.is_leaf:
            mas.offset, mas.index, mas.last = off, lo, hi
            mas.min, mas.max, mas.node = prev_lo, prev_hi, node
            self.entry = child
            self.done = True
            return self._event("found", node)
        self._cursor, self._lo, self._hi = child, lo, hi
        mas.depth += 1
        return self._event("descend", node)


def _entry_json(entry: Any) -> Any:
    if entry is None:
        return None
    if isinstance(entry, int):
        return entry
    ident = getattr(entry, "vid", None)
    return ident if ident is not None else str(entry)


def _entry_text(entry: Any) -> str:
    return "(nil)" if entry is None else str(_entry_json(entry))
