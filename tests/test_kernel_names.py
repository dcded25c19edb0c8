"""Every kernel name vmaviz shows exists in Linux 6.4.0.

The names come from the model itself: the ``kfunc`` registry (stack frames), the
functions on every stack and every event-code prefix (``function:detail``) of all
bundled scenarios run in both modes (with the 6.4.0 defaults and with every patch
toggle on), the ``k.emit`` literals in the source (paths no bundled scenario
reaches), and the kernel identifiers narration and the glossary put in code spans.
Each must be listed in ``tests/data/linux-6.4-names.txt``, built from the pristine
6.4.0 tree (commit 6e5f9d87e) by ``tests/data/build_linux_names.py``, or be one of
the model events or later-version names below, each with its reason.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmaviz.engine import narrate
from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import PATCHES, STEPS
from vmaviz.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
NAMES_FILE = ROOT / "tests" / "data" / "linux-6.4-names.txt"

#: Names that are the model's, not the kernel's, and why each is shown.
MODEL_EVENTS = {
    "fault": "the arch fault handler's common steps; stacks name the real handler above it "
    "(do_user_addr_fault, do_page_fault, ___do_page_fault, do_exception)",
    "touch": "the user-space access that faults (scenario op touch)",
    "no_address": "a scenario op whose address does not resolve (user space)",
    "compute": "user-space work between syscalls (scenario op compute)",
    "sleep": "the nanosleep of scenario op sleep, one step",
    "barrier": "the scenario's user-space barrier between threads",
    "swap_out": "scenario op name for memory pressure (runs shrink_folio_list)",
    "hold_mmap_write": "a teaching op that holds mmap_lock for write",
    "syscall": "the syscall entry marker (syscall:<name>), not a kernel function",
    "rcu": "the RCU callback batch (rcu:callbacks); its stack frame is rcu_core",
}

#: Names from later kernels, used only when their patch toggle is on: name ->
#: (version, file, toggle).
LATER = {
    "lock_mm_and_find_vma": ("6.4.1", "mm/memory.c", "fix_stack_expand_write_lock"),
}

#: Code spans in narrate.py that are the model's words, not kernel identifiers.
NARRATE_MODEL_WORDS = {"engine", "narrate", "step", "key", "vid"}


def kernel_names() -> dict[str, set[str]]:
    """``tests/data/linux-6.4-names.txt`` as name -> the files that define it."""
    names: dict[str, set[str]] = {}
    for line in NAMES_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, files = line.split("\t")
        names[name] = set(files.split())
    return names


@functools.cache
def traced_names() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Stack functions and event-code prefixes of every bundled scenario.

    Returns:
        (stack functions, prefixes with every toggle at its 6.4.0 default (whatever
        the scenario sets), prefixes with every patch on).
    """
    stacks: set[str] = set()
    plain: set[str] = set()
    patched: set[str] = set()
    every = {name: True for name in PATCHES}
    merged = {name: default for name, (default, _) in PATCHES.items()}
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load_scenario(path)
        for mode in ("per_vma", "mmap_lock"):
            for patches, out in ((merged, plain), (every, patched)):
                run_sc = sc.with_overrides(patches=patches)
                trace = Engine(run_sc, mode=mode).run().trace
                out.update(code.split(":")[0] for code in trace.codes)
                for stack in trace.stacks:
                    stacks.update(stack)
    return frozenset(stacks), frozenset(plain), frozenset(patched)


def _emit_codes() -> Iterator[ast.expr]:
    """The code argument of every ``.emit(...)`` call under ``vmaviz/``."""
    for path in (ROOT / "vmaviz").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
            ):
                yield node.args[0]


def emitted_literals() -> set[str]:
    """The prefix of every event code written as a literal in a ``.emit(...)`` call."""
    prefixes: set[str] = set()
    for arg in _emit_codes():
        if isinstance(arg, ast.JoinedStr) and arg.values:
            arg = arg.values[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            prefixes.add(arg.value.split(":")[0])
    return prefixes


def emitted_codes() -> set[str]:
    """The literal part of every ``.emit(...)`` code (f-string holes dropped)."""
    codes: set[str] = set()
    for arg in _emit_codes():
        if isinstance(arg, ast.JoinedStr):
            parts = [v.value for v in arg.values if isinstance(v, ast.Constant)]
            codes.add(":".join(str(p).strip(":") for p in parts))
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            codes.add(arg.value)
    return codes


@functools.cache
def traced_codes() -> frozenset[str]:
    """Every full event code of the bundled scenarios, both modes, 6.4.0 defaults."""
    codes: set[str] = set()
    merged = {name: default for name, (default, _) in PATCHES.items()}
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load_scenario(path).with_overrides(patches=merged)
        for mode in ("per_vma", "mmap_lock"):
            codes.update(Engine(sc, mode=mode).run().trace.codes)
    return frozenset(codes)


def check(names: set[str] | frozenset[str], allow_later: bool = False) -> list[str]:
    known = kernel_names()
    allowed = set(known) | set(MODEL_EVENTS) | (set(LATER) if allow_later else set())
    return sorted(n for n in names if n not in allowed)


def test_names_file_is_well_formed() -> None:
    known = kernel_names()
    # The list is of what we use; every entry names a source file of the tree.
    assert len(known) > 100
    for name, files in known.items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), name
        assert files and all(re.fullmatch(r"[a-z0-9_/\-]+\.[ch]", f) for f in files), name
    # Model events and later-version names are not 6.4.0 names.
    assert not set(MODEL_EVENTS) & set(known)
    assert not set(LATER) & set(known)


def test_every_registered_kfunc_exists_in_6_4() -> None:
    assert check(set(STEPS)) == []


def test_registered_sources_are_where_6_4_defines_the_function() -> None:
    """Each kfunc's cited kernel file is one that defines it (docstrings cite the same)."""
    known = kernel_names()
    wrong = {
        name: (src, sorted(known[name]))
        for name, (_, src) in STEPS.items()
        if name in known and src not in known[name]
    }
    assert wrong == {}


def test_narration_sources_are_where_6_4_defines_the_function() -> None:
    known = kernel_names()
    sources = narrate._SOURCES
    assert check(set(sources)) == []
    wrong = {n: (f, sorted(known[n])) for n, f in sources.items() if f not in known[n]}
    assert wrong == {}
    # Aliases map an event prefix to the frame narration shows: both are real names
    # (or a model event whose frame is real).
    assert check(set(narrate._ALIASES) | set(narrate._ALIASES.values())) == []


def test_every_emitted_literal_prefix_exists_in_6_4() -> None:
    assert check(emitted_literals(), allow_later=True) == []


def test_every_traced_name_exists_in_6_4() -> None:
    stacks, plain, patched = traced_names()
    # The traces are not empty: the runs reach the fault path and the mm syscalls.
    assert {"lock_vma_under_rcu", "do_vmi_align_munmap", "show_map"} <= stacks
    assert {"vma_start_write", "mas_walk", "vma_merge"} <= plain
    assert check(stacks) == []
    # Linux 6.4.0 as merged shows only 6.4.0 names ...
    assert check(plain) == []
    # ... and names from later patches appear only with their toggle.
    assert check(patched, allow_later=True) == []


@pytest.mark.parametrize("name", sorted(LATER))
def test_later_names_appear_only_with_their_patch(name: str) -> None:
    _, plain, patched = traced_names()
    version, _, toggle = LATER[name]
    assert toggle in PATCHES and PATCHES[toggle][0] is False, (name, version)
    assert name not in plain
    # At least one bundled scenario shows the patched path (else the entry is stale).
    assert name in patched


#: Event-code details (``function:detail``) that look like function names (a
#: lowercase identifier with an underscore) but are the model's words, and why.
MODEL_DETAILS = {
    "zero_page": "the shared zero page do_anonymous_page maps (ZERO_PAGE, my_zero_pfn)",
    "retry_vma_lock": "do_swap_page's VM_FAULT_RETRY under the VMA lock (a result)",
    "swap_in": "do_swap_page reads the page in (an outcome)",
    "wait_monitor": "handle_userfault sleeping until the monitor resolves the page",
    "guard_gap": "expand_stack refused by stack_guard_gap (a reason)",
    "bad_area_sigsegv": "the fault ends in SIGSEGV via bad_area (an outcome)",
    "discard_lazyfree": "try_to_unmap drops a clean MADV_FREE page (an outcome)",
    "swap_entry": "try_to_unmap leaves a swap entry (an outcome)",
    "read_lock_advice": "madvise advice that takes mmap_lock for read",
    "write_lock_advice": "madvise advice that takes mmap_lock for write",
    "uffdio_register": "the UFFDIO_REGISTER ioctl (syscall:uffdio_register)",
    "new_vma": "do_brk_flags inserts a new VMA (vm_area_alloc)",
    "expand_in_place": "mremap grows in place (an outcome)",
    "same_size": "mremap with old_len == new_len (an outcome)",
}
# The fault handler's, rwsem's, VMA-lock and maple-walk steps: the model's step names
# for branches inside one kernel function (the stack shows the function).
MODEL_DETAILS.update(
    dict.fromkeys(
        [
            "access_ok",
            "vma_access_ok",
            "vma_access_error",
            "done_mmap_lock",
            "retry_tried",
            "mmap_read_trylock_ok",
            "mmap_read_trylock_failed",
            "signal_pending_quick_exit",
            "vma_lock_retry",
            "vma_lock_success",
            "acquired_after_wait",
            "acquired_spinning",
            "retry_failed",
            "spin_end",
            "already_locked",
            "seq_set",
            "seq_unlocked",
            "seq_ok",
            "seq_locked",
            "seq_locked_after_trylock",
            "trylock_ok",
            "anon_vma_ok",
            "in_range",
            "miss_retry",
            "not_uffd",
            "dead_node",
            "load_root",
        ],
        "a branch of the function the prefix names (fault handler, rwsem, VMA lock, "
        "lock_vma_under_rcu, maple walk), not a call",
    )
)
#: Details checked although they have no underscore: function names.
FUNCTION_DETAILS = {"fork", "mmap", "munmap", "mprotect", "mremap", "brk"}


def details(codes: set[str] | frozenset[str]) -> set[str]:
    """The function-like details of ``codes``: every part after the first colon that is
    a lowercase identifier with an underscore or in :data:`FUNCTION_DETAILS`."""
    out: set[str] = set()
    for code in codes:
        for part in code.split(":")[1:]:
            if re.fullmatch(r"[a-z_][a-z0-9_]*", part) and (
                "_" in part or part in FUNCTION_DETAILS
            ):
                out.add(part)
    return out


def test_event_code_details_are_6_4_names() -> None:
    """``function:detail`` details that name a function exist in 6.4.0, or are listed
    model words (do_anonymous_page's vma_alloc_zeroed_movable_folio, khugepaged's
    alloc_charge_hpage, dup_mmap's vm_area_dup and flush_tlb_mm ...)."""
    found = details(emitted_codes() | traced_codes())
    assert {"vma_alloc_zeroed_movable_folio", "alloc_charge_hpage", "vm_area_dup"} <= found
    model = set(MODEL_DETAILS) | set(narrate.ABORT_WHY) | {"mmap_lock", "vma_lock"}
    known = kernel_names()
    wrong = sorted(d for d in found - model if d not in known and d not in MODEL_EVENTS)
    assert wrong == []
    # Model words are not kernel names, or they would not need a reason.
    assert not set(MODEL_DETAILS) & set(known)


def test_narration_code_spans_are_6_4_names() -> None:
    """Identifiers narration and the glossary put in `code spans` exist in 6.4.0."""
    text = Path(narrate.__file__).read_text()
    spans = set(re.findall(r"(?<![`:])`([a-z_][a-z0-9_]*)(?:\(\))?`(?!`)", text))
    assert {"vma_start_read", "mmap_lock", "vm_lock_seq"} <= spans
    assert check(spans - NARRATE_MODEL_WORDS, allow_later=True) == []
