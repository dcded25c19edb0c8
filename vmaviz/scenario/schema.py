"""The scenario data model, its limits and the table of ops.

A scenario file (YAML, see ``scenarios/*.yaml``) is loaded by
:mod:`vmaviz.scenario.loader` into the frozen dataclasses here. By the time a
:class:`Scenario` exists it is fully validated: thread templates are expanded
(``count`` copies, ``${i}`` substituted), every op carries its defaults, and every
VMA name an op refers to is declared somewhere.

The limits a file must keep to (each error that hits one names it and its value) are
listed, with what each bounds, in :data:`LIMITS`; they keep every stage of loading
bounded for any file up to ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --- Address space ------------------------------------------------------------------

PAGE_SIZE = 4096
#: Lowest address a VMA may start at: the kernel's default ``vm.mmap_min_addr``.
MMAP_MIN_ADDR = 0x10000
#: x86-64 4-level paging user limit, TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE: the kernel
#: keeps the last page below the canonical hole unmapped (a SYSRET erratum guard), so
#: a VMA may end at 0x7ffffffff000 but not beyond. Used for every arch to keep
#: scenarios portable between the arch settings.
TASK_SIZE = (1 << 47) - PAGE_SIZE

# --- Limits (each error message names the limit it hit) ----------------------------

#: Largest scenario file accepted, in bytes (also for browser uploads).
MAX_FILE_BYTES = 1 << 20
#: Threads after ``count`` expansion.
MAX_THREADS = 1024
#: Ops after loop and ``count`` expansion, counted (ops * times), never materialised.
MAX_TOTAL_OPS = 5_000_000
#: Op entries written in the file (every list item of every ``ops`` list).
MAX_OP_ENTRIES = 100_000
#: Op entries after ``count`` expansion (loop bodies not repeated). Each expanded
#: thread holds its own op list, so this bounds the loader's memory.
MAX_EXPANDED_OP_ENTRIES = 200_000
#: VMAs declared in ``mm.vmas``.
MAX_VMAS = 10_000
#: Scheduler steps of one run; enforced by the engine, exported here so the UI and the
#: docs can quote one number.
MAX_STEPS = 50_000_000
#: Largest VMA, in pages (2**36 pages of 4 KiB = 256 TiB, more than user space).
MAX_PAGES = 1 << 36
MAX_CPUS = 256
MAX_SEED = (1 << 64) - 1
MAX_RCU_GRACE_NS = 10_000_000_000
#: Largest ``rlimit_stack`` in bytes (``RLIM_INFINITY`` stands for no limit: any
#: value this large refuses no stack a scenario can hold).
MAX_RLIMIT_STACK = 1 << 47
#: RLIMIT_STACK's default soft limit (``_STK_LIM``, include/uapi/linux/resource.h): 8 MiB.
DEFAULT_RLIMIT_STACK = 8 << 20
#: Upper bound (inclusive) of every duration and start time, in ns (10 s).
MAX_NS = 10_000_000_000
#: Cost values must be below this, in ns.
COST_LIMIT_NS = 10**10
MAX_LOOP_TIMES = 1_000_000
#: Loops nest at most this deep.
MAX_LOOP_DEPTH = 8
#: Errors reported for one file. Checking stops at the first error past this, so a
#: file with millions of problems costs no more than one with a hundred.
MAX_ERRORS = 100
#: YAML nesting depth; the deepest legal scenario (8 nested loops) needs about 40.
MAX_YAML_DEPTH = 100
#: Entries copied by YAML merge keys (``<<: *anchor``) in the whole file; each merge
#: copies every key of its source, so aliases could otherwise multiply the work.
MAX_MERGE_ENTRIES = 100_000
#: Characters of a VMA, thread, barrier or file name (and of a ``${i}`` template
#: value): thread copies multiply them, so they are kept short.
MAX_NAME_CHARS = 128
#: Characters of an integer literal (``0x`` prefix, sign and ``_`` included). The
#: largest value any field takes, MAX_SEED, has 20 digits.
MAX_INT_CHARS = 64
#: "Did you mean" lookups per file; later unknown names get no suggestion.
MAX_SUGGESTIONS = 10
#: Candidate names compared per "did you mean" lookup (those closest in length and
#: sharing the first letter are kept).
MAX_SUGGESTION_CANDIDATES = 500
#: Costs that must be at least 1 ns: each is charged on every round of a loop that
#: ends only when another thread makes progress. The scheduler always runs the
#: earliest event, so a round costing 0 ns would run again at the same instant and
#: the other thread would never get its turn. ``spin_poll``: each poll of down_write's
#: optimistic spin on a running owner (kernel/locking/rwsem.c rwsem_optimistic_spin);
#: at 0 the spin never ends (the one loop of the model that provably stalls).
#: ``plain_load`` and ``maple_level``: every round of lock_vma_under_rcu's
#: VMA_LOCK_MISS ``goto retry`` (mm/memory.c; the re-walk charges ``maple_level`` per
#: level, the retry itself ``plain_load``) and of the arch fault handlers'
#: VM_FAULT_RETRY retry (``plain_load``). The model only repeats those after another
#: thread changed the tree or the page, but a round costing time keeps them safe even
#: if that ever changes.
LOOP_COSTS = ("spin_poll", "plain_load", "maple_level")

#: Every limit above, for the docs: name -> (value, what it bounds). Each error that
#: hits one names it and its value.
LIMITS: dict[str, tuple[int, str]] = {
    "MAX_FILE_BYTES": (MAX_FILE_BYTES, "bytes of a scenario file or upload (1 MiB)"),
    "MAX_VMAS": (MAX_VMAS, "VMAs in mm.vmas"),
    "MAX_THREADS": (MAX_THREADS, "threads after count expansion"),
    "MAX_OP_ENTRIES": (
        MAX_OP_ENTRIES,
        "op entries in the file, aliases expanded (each hold_mmap_write vmas item counts)",
    ),
    "MAX_EXPANDED_OP_ENTRIES": (MAX_EXPANDED_OP_ENTRIES, "op entries after count expansion"),
    "MAX_TOTAL_OPS": (MAX_TOTAL_OPS, "ops after loop and count expansion (counted, not built)"),
    "MAX_LOOP_TIMES": (MAX_LOOP_TIMES, "times of one loop"),
    "MAX_LOOP_DEPTH": (MAX_LOOP_DEPTH, "loops nested in loops"),
    "MAX_YAML_DEPTH": (MAX_YAML_DEPTH, "YAML nesting levels"),
    "MAX_MERGE_ENTRIES": (MAX_MERGE_ENTRIES, "entries copied by YAML merge keys"),
    "MAX_NAME_CHARS": (MAX_NAME_CHARS, "characters of a name or ${i} template value"),
    "MAX_INT_CHARS": (MAX_INT_CHARS, "characters of an integer literal"),
    "MAX_ERRORS": (MAX_ERRORS, "errors reported per file (checking stops after them)"),
    "MAX_SUGGESTIONS": (MAX_SUGGESTIONS, "'did you mean' lookups per file"),
    "MAX_SUGGESTION_CANDIDATES": (
        MAX_SUGGESTION_CANDIDATES,
        "names compared per 'did you mean' lookup",
    ),
    "MAX_CPUS": (MAX_CPUS, "simulated CPUs"),
    "MAX_PAGES": (MAX_PAGES, "pages of one VMA (2**36)"),
    "MAX_NS": (MAX_NS, "ns of a duration or start time (10 s)"),
    "COST_LIMIT_NS": (COST_LIMIT_NS, "costs are below this many ns"),
    "MAX_RCU_GRACE_NS": (MAX_RCU_GRACE_NS, "ns of an RCU grace period"),
    "MAX_SEED": (MAX_SEED, "scheduler seed (2**64 - 1)"),
    "MAX_STEPS": (MAX_STEPS, "scheduler steps of one run (enforced by the engine)"),
}

# --- Vocabulary ---------------------------------------------------------------------

ARCHES = ("x86", "arm64", "powerpc", "s390")
PROTS = ("none", "r", "rw", "rx", "rwx")
ACCESSES = ("read", "write", "exec")
#: The signals op ``signal`` sends: a handled one, or the fatal SIGKILL.
SIGNALS = ("SIGUSR1", "SIGKILL")
MODES = ("per_vma", "mmap_lock")
#: madvise advice handled under mmap_lock held for read (madvise_need_mmap_write()
#: is false), so they can run alongside per-VMA-lock faults.
MADVISE_READ_LOCK = (
    "dontneed",
    "willneed",
    "remove",
    "dontneed_locked",
    "cold",
    "pageout",
    "free",
    "populate_read",
    "populate_write",
    "collapse",
)
#: madvise advice that modify vm_flags, so take mmap_lock for write.
MADVISE_WRITE_LOCK = (
    "hugepage",
    "nohugepage",
    "dontfork",
    "dofork",
    "mergeable",
    "unmergeable",
    "wipeonfork",
    "keeponfork",
    "dontdump",
    "dodump",
    "random",
    "sequential",
    "normal",
)
MADVISE_ADVICE = MADVISE_READ_LOCK + MADVISE_WRITE_LOCK

SCENARIO_NAME_RE = re.compile(r"[a-z0-9_.-]+")
#: VMA and thread names. ``$``, ``{`` and ``}`` are allowed so templated threads can
#: write ``buf${i}``; the loader substitutes ``${i}`` before names are resolved.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.${}-]*")


# --- Op table -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """How one field (of an op, a VMA, the kernel settings, ...) is checked.

    Attributes:
        kind: ``int``; ``bool``; ``str`` (a non-empty string); ``text`` (free text, in
            which ``${i}`` is not special); ``name`` (a VMA or thread name); ``addr``
            (an address, int or hex string); ``choice``; ``range`` (``"a-b"``, ``"a"``
            or an int: an inclusive page range); ``vma`` (a VMA name referred to);
            ``newvma`` (a VMA name declared); ``vmas`` (a list of VMA names); ``at``
            (``{vma: NAME, page: INT}``); ``patches`` (names to bools) or ``ops`` (a
            nested op list).
        required: Whether the field must be present.
        default: Value used when absent (``None`` for "not given").
        lo: Smallest allowed int (``int`` kind).
        hi: Largest allowed int (``int`` kind).
        choices: Allowed strings (``choice`` kind).
        limit: Name of the constant behind ``hi``, quoted when a value is above it.
    """

    kind: str
    required: bool = False
    default: Any = None
    lo: int = 0
    hi: int = MAX_PAGES
    choices: tuple[str, ...] = ()
    limit: str = ""


def _req(kind: str, **kw: Any) -> FieldSpec:
    return FieldSpec(kind, required=True, **kw)


def _opt(kind: str, default: Any = None, **kw: Any) -> FieldSpec:
    return FieldSpec(kind, required=False, default=default, **kw)


_PAGE = _req("int", lo=0, hi=MAX_PAGES - 1, limit="MAX_PAGES - 1")
_NPAGES = _req("int", lo=1, hi=MAX_PAGES, limit="MAX_PAGES = 2**36")
_NS = _req("int", lo=1, hi=MAX_NS, limit="MAX_NS = 10 s")

#: Largest userfaultfd context id an op may name (``uffd_register``'s ``uffd``).
MAX_UFFD_CTX = 64

#: Every op: name -> field name -> spec. Ops whose fields are all optional may also be
#: written as a bare string (``- fork``).
OPS: dict[str, dict[str, FieldSpec]] = {
    "fault": {
        "vma": _req("vma"),
        "page": _PAGE,
        "access": _opt("choice", "read", choices=ACCESSES),
        "user": _opt("bool", True),
    },
    "touch": {
        "vma": _req("vma"),
        "pages": _req("range"),
        "access": _opt("choice", "write", choices=ACCESSES),
    },
    "mmap": {
        "name": _req("newvma"),
        "pages": _NPAGES,
        "prot": _opt("choice", "rw", choices=PROTS),
        "file": _opt("str"),
        "fixed": _opt("bool", False),
        "at": _opt("at"),
        "growsdown": _opt("bool", False),
        "shared": _opt("bool", False),
        # MAP_NORESERVE: no swap reserved (VM_NORESERVE, so no VM_ACCOUNT either).
        "noreserve": _opt("bool", False),
        # The file page mapped at the start (the mmap offset / PAGE_SIZE).
        "pgoff": _opt("int", 0, lo=0, hi=MAX_PAGES - 1, limit="MAX_PAGES - 1"),
    },
    "munmap": {"vma": _req("vma"), "pages": _opt("range")},
    "mprotect": {
        "vma": _req("vma"),
        "pages": _opt("range"),
        "prot": _req("choice", choices=PROTS),
    },
    "mremap": {
        "vma": _req("vma"),
        "new_pages": _NPAGES,
        "move": _opt("bool", False),
        "maymove": _opt("bool", False),
        "dontunmap": _opt("bool", False),
        "name": _opt("newvma"),
    },
    "madvise": {
        "vma": _req("vma"),
        "pages": _opt("range"),
        "advice": _req("choice", choices=MADVISE_ADVICE),
    },
    "brk": {"pages": _req("int", lo=-MAX_PAGES, hi=MAX_PAGES, limit="MAX_PAGES = 2**36")},
    "fork": {},
    "exit": {},
    "swap_out": {"vma": _req("vma"), "pages": _opt("range")},
    "uffd_register": {
        "vma": _req("vma"),
        # Which userfaultfd registers (its context id); VMAs with `uffd: true` have 1.
        "uffd": _opt("int", 1, lo=1, hi=MAX_UFFD_CTX, limit="MAX_UFFD_CTX"),
    },
    # prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, ...) over the range; no name clears it.
    "set_anon_name": {"vma": _req("vma"), "pages": _opt("range"), "name": _opt("str")},
    "khugepaged_collapse": {"vma": _req("vma")},
    # tgkill(2) to another thread by its name (after count expansion); SIGKILL
    # kills the whole thread group (complete_signal), SIGUSR1 is a handled signal.
    "signal": {"thread": _req("thread"), "sig": _opt("choice", "SIGUSR1", choices=SIGNALS)},
    "mmu_notifier_register": {},
    "tcp_zerocopy_receive": {
        "vma": _req("vma"),
        "pages": _opt("int", 1, lo=1, hi=MAX_PAGES, limit="MAX_PAGES = 2**36"),
    },
    "read_proc_maps": {"ns_per_vma": _opt("int", lo=0, hi=MAX_NS, limit="MAX_NS = 10 s")},
    "hold_mmap_write": {"ns": _NS, "vmas": _opt("vmas", ())},
    "compute": {"ns": _NS},
    "sleep": {"ns": _NS},
    "barrier": {"name": _req("str")},
    "loop": {
        "times": _req("int", lo=1, hi=MAX_LOOP_TIMES, limit="MAX_LOOP_TIMES"),
        "ops": _req("ops"),
    },
}


# --- Data model ---------------------------------------------------------------------


@dataclass(frozen=True)
class KernelConfig:
    """Kernel settings of a run.

    Attributes:
        per_vma_lock: ``True`` models CONFIG_PER_VMA_LOCK (faults try the VMA lock
            first); ``False`` models the pre-6.4 kernel where every fault takes
            mmap_lock.
        arch: One of :data:`ARCHES` (6.4 has per-VMA-lock faults on all four).
        cpus: Simulated CPUs, 1..:data:`MAX_CPUS`.
        seed: Seed of the deterministic scheduler.
        rcu_grace_ns: Length of an RCU grace period, in ns.
        patches: Optional model patches switched on or off, by name.
        rlimit_stack: ``RLIMIT_STACK`` in bytes, which ``acct_stack_growth``
            (mm/mmap.c) enforces on stack growth; the default is ``_STK_LIM``.
    """

    per_vma_lock: bool = True
    arch: str = "x86"
    cpus: int = 4
    seed: int = 1
    rcu_grace_ns: int = 20_000
    patches: dict[str, bool] = field(default_factory=dict)
    rlimit_stack: int = DEFAULT_RLIMIT_STACK

    @property
    def mode(self) -> str:
        """``"per_vma"`` or ``"mmap_lock"``, from :attr:`per_vma_lock`."""
        return "per_vma" if self.per_vma_lock else "mmap_lock"


@dataclass(frozen=True)
class VmaSpec:
    """One VMA of ``mm.vmas``.

    Attributes:
        name: Unique label, referred to by ops.
        start: Page-aligned start address, or ``None`` to let the engine place it
            top-down like mmap() without a hint.
        pages: Size in 4 KiB pages.
        prot: One of :data:`PROTS`.
        file: Backing file name, or ``None`` for anonymous memory.
        shared: MAP_SHARED.
        anon_vma: Whether the VMA already has its anon_vma (a first write fault
            on a VMA without one must allocate it under mmap_lock).
        growsdown: VM_GROWSDOWN (a stack).
        uffd: Armed with userfaultfd.
        line: 1-based line of the VMA in the file.
    """

    name: str
    start: int | None
    pages: int
    prot: str = "rw"
    file: str | None = None
    shared: bool = False
    anon_vma: bool = False
    growsdown: bool = False
    uffd: bool = False
    line: int = 0

    @property
    def end(self) -> int | None:
        """End address (exclusive), or ``None`` when the start is left to the engine."""
        return None if self.start is None else self.start + self.pages * PAGE_SIZE


@dataclass(frozen=True)
class Op:
    """One op of a thread.

    Attributes:
        kind: The op name, a key of :data:`OPS`.
        args: Every field of the op with defaults filled in. Page ranges are
            ``(first, last)`` tuples (inclusive); ``None`` means "the whole VMA".
        line: 1-based line of the op in the file.
        body: The nested ops of a ``loop``; ``None`` for every other op.
    """

    kind: str
    args: dict[str, Any]
    line: int
    body: list[Op] | None = None

    def count(self) -> int:
        """Ops this op stands for once loops are unrolled (a loop itself counts 0)."""
        if self.body is None:
            return 1
        return int(self.args["times"]) * count_ops(self.body)


def count_ops(ops: list[Op]) -> int:
    """Ops of ``ops`` once loops are unrolled, without unrolling them."""
    return sum(op.count() for op in ops)


@dataclass(frozen=True)
class ThreadSpec:
    """One thread, after template expansion.

    Attributes:
        name: Unique thread name (``${i}`` already substituted).
        start_ns: When the thread starts running.
        ops: What it does, in order.
        line: 1-based line of the thread (template) in the file.
    """

    name: str
    start_ns: int
    ops: list[Op]
    line: int = 0


#: Bumped when the meaning of the canonical form changes, so old cache keys die.
CANONICAL_FORMAT = 1


@dataclass(frozen=True)
class LookAtTarget:
    """Where a ``look_at`` bullet becomes visible in a run.

    Attributes:
        event: A glob (``fnmatch``) over event codes such as
            ``lock_vma_under_rcu:abort:*``: the first step emitting a matching code.
        thread: Only steps of the thread so named count (with ``event``).
        step: A fixed step index instead of an event pattern.
    """

    event: str | None = None
    thread: str | None = None
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The target as plain data (``None`` fields left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.

    Attributes:
        name: Short identifier (``[a-z0-9_.-]+``).
        description: What the scenario shows.
        question: The question it answers, if given.
        look_at: Hints of what to look at while stepping.
        look_at_targets: For each ``look_at`` bullet, where it becomes visible
            (``None`` for a plain-text bullet); empty when no bullet names one.
        kernel: Kernel settings.
        costs: Cost overrides in ns, by cost name (checked by the engine).
        vmas: The initial VMAs, in file order.
        threads: The threads, templates expanded, in file order.
        source_text: The YAML text it was loaded from, for export.
        path: The file it was loaded from (``None`` for uploads).
        overrides: Kernel fields changed by :meth:`with_overrides` since loading;
            ``source_text`` does not reflect them.
    """

    name: str
    description: str
    question: str | None
    look_at: list[str]
    kernel: KernelConfig
    costs: dict[str, int]
    vmas: list[VmaSpec]
    threads: list[ThreadSpec]
    source_text: str = field(default="", repr=False, compare=False)
    path: Path | None = field(default=None, compare=False)
    overrides: dict[str, Any] = field(default_factory=dict, compare=False)
    look_at_targets: list[LookAtTarget | None] = field(default_factory=list, compare=False)

    def op_count(self) -> int:
        """Ops of all threads once loops are unrolled."""
        return sum(count_ops(t.ops) for t in self.threads)

    def to_dict(self) -> dict[str, Any]:
        """The parsed content as plain JSON-able data (no source text, no path)."""
        data: dict[str, Any] = {
            "format": CANONICAL_FORMAT,
            "name": self.name,
            "description": self.description,
            "question": self.question,
            "look_at": list(self.look_at),
            "kernel": dataclasses.asdict(self.kernel),
            "costs": dict(self.costs),
            "vmas": [dataclasses.asdict(v) for v in self.vmas],
            "threads": [
                {
                    "name": t.name,
                    "start_ns": t.start_ns,
                    "line": t.line,
                    "ops": [_op_dict(op) for op in t.ops],
                }
                for t in self.threads
            ],
        }
        data["kernel"]["mode"] = self.kernel.mode
        return data

    def canonical(self) -> str:
        """A stable JSON string of the parsed content, for cache keys.

        Source line numbers are included on purpose: simulation results point back
        at op lines, so two files that differ only in layout must not share them.
        """
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def with_overrides(self, **kernel_fields: Any) -> Scenario:
        """A copy with kernel settings changed, e.g. from the UI controls.

        Args:
            **kernel_fields: Any of ``mode`` (``"per_vma"`` / ``"mmap_lock"``),
                ``per_vma_lock``, ``arch``, ``cpus``, ``seed``, ``rcu_grace_ns``,
                ``patches``.

        Returns:
            The new scenario; its :attr:`overrides` records every field changed.

        Raises:
            ValueError: An unknown field or a value out of range.
        """
        changes = _check_kernel_overrides(kernel_fields)
        kernel = dataclasses.replace(self.kernel, **changes)
        overrides = {**self.overrides, **kernel_fields}
        return dataclasses.replace(self, kernel=kernel, overrides=overrides)


def _op_dict(op: Op) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": op.kind, "args": op.args, "line": op.line}
    if op.body is not None:
        data["body"] = [_op_dict(o) for o in op.body]
    return data


def _is_int(value: Any) -> bool:
    # bool is an int subclass; `cpus: true` must not mean one CPU.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_kernel_overrides(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate :meth:`Scenario.with_overrides` arguments; return KernelConfig changes."""
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "mode":
            if value not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, got {value!r}")
            changes["per_vma_lock"] = value == "per_vma"
        elif key == "per_vma_lock":
            if not isinstance(value, bool):
                raise ValueError(f"per_vma_lock must be a bool, got {value!r}")
            changes[key] = value
        elif key == "arch":
            if value not in ARCHES:
                raise ValueError(f"arch must be one of {', '.join(ARCHES)}, got {value!r}")
            changes[key] = value
        elif key in ("cpus", "seed", "rcu_grace_ns"):
            lo, hi = {"cpus": (1, MAX_CPUS), "seed": (0, MAX_SEED)}.get(key, (0, MAX_RCU_GRACE_NS))
            if not _is_int(value) or not lo <= value <= hi:
                raise ValueError(f"{key} must be an integer in {lo}..{hi}, got {value!r}")
            changes[key] = value
        elif key == "patches":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and k and isinstance(v, bool) for k, v in value.items()
            ):
                raise ValueError(f"patches must map patch names to bools, got {value!r}")
            # Imported here: the schema stays importable without the kernel model.
            from vmaviz.model.kernel import PATCHES

            unknown = sorted(set(value) - set(PATCHES) - {"all"})
            if unknown:
                raise ValueError(f"unknown patch {unknown[0]!r} (known: {', '.join(PATCHES)}, all)")
            changes[key] = dict(value)
        else:
            raise ValueError(
                f"unknown kernel setting {key!r} (expected mode, per_vma_lock, arch, cpus,"
                " seed, rcu_grace_ns or patches)"
            )
    return changes
