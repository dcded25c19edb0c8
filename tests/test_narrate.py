"""narrate: a specific, correct sentence for each step, with and without kernel state."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.engine.export import synced_trace
from vmaviz.engine.narrate import GLOSSARY, Narration, narrate, step_function
from vmaviz.model.kernel import STEPS
from vmaviz.scenario import load_scenario, load_scenario_text

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
RUNNABLE = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


#: Every op kind at least once (mmap, mremap, brk, fork, userfaultfd, khugepaged, ...).
ALL_OPS = """\
name: all-ops
description: every op kind once, for narration coverage
kernel: {cpus: 4, seed: 2}
mm:
  vmas:
    - {name: heap, pages: 8, anon_vma: true}
    - {name: a, pages: 16, anon_vma: true}
    - {name: f, pages: 4, file: lib.so}
    - {name: u, pages: 4, anon_vma: true}
    - {name: stack, pages: 8, anon_vma: true, growsdown: true}
threads:
  - name: W
    ops:
      - mmap: {name: n, pages: 4}
      - touch: {vma: n, pages: "0-1"}
      - mprotect: {vma: a, pages: "2-3", prot: r}
      - mprotect: {vma: a, pages: "2-3", prot: rw}
      - madvise: {vma: a, advice: dontneed}
      - madvise: {vma: a, advice: hugepage}
      - mremap: {vma: n, new_pages: 8, move: true, name: n2}
      - brk: {pages: 4}
      - brk: {pages: -2}
      - uffd_register: {vma: u}
      - fault: {vma: u, page: 0, access: write}
      - swap_out: {vma: a}
      - fault: {vma: a, page: 0, access: read}
      - fork: {}
      - fault: {vma: a, page: 1, access: write}
      - khugepaged_collapse: {vma: a}
      - mmu_notifier_register: {}
      - tcp_zerocopy_receive: {vma: a, pages: 2}
      - read_proc_maps: {}
      - fault: {vma: f, page: 1}
      - munmap: {vma: n2}
      - exit: {}
  - name: R
    ops:
      - touch: {vma: a, pages: "0-15", access: write}
      - fault: {vma: stack, page: 0, access: write}
      - fault: {vma: a, page: 3, access: write, user: false}
"""


def run(name: str, mode: str = "per_vma", arch: str | None = None) -> Engine:
    return Engine(load_scenario(SCENARIOS / f"{name}.yaml"), mode=mode, arch=arch).run()


def first(e: Engine, code: str) -> int:
    t = synced_trace(e)
    return next(i for i in range(len(t)) if t.codes[t.code[i]] == code)


def around(e: Engine, step: int) -> Narration:
    return narrate(e, step, e.state_at(step), e.state_at(step + 1))


@pytest.fixture(scope="module")
def mprotect() -> Engine:
    return run("mprotect-vs-fault")


def test_seq_equality_names_both_seqs_and_the_writer(mprotect: Engine) -> None:
    e = mprotect
    i = first(e, "vma_start_read:seq_locked")
    seq = synced_trace(e).b[i]
    n = around(e, i)
    assert f"`vm_lock_seq` {seq} == `mm_lock_seq` {seq}" in n.text
    assert "T0 (mprotect)" in n.text
    assert "jitbuf" in n.text and "fall back to `mmap_lock`" in n.text
    assert n.function == "vma_start_read"
    assert n.source == STEPS["vma_start_read"][1] == "include/linux/mm.h"
    assert "write-locked" in n.title
    assert f"{seq} == `mm_lock_seq` {seq}" in n.reason


def test_seq_equality_without_kernel_state_uses_the_trace(mprotect: Engine) -> None:
    i = first(mprotect, "vma_start_read:seq_locked")
    n = narrate(mprotect, i)
    assert "T0 (mprotect)" in n.text
    assert "== `mm_lock_seq`" in n.text


def test_abort_reasons(mprotect: Engine) -> None:
    e = mprotect
    n = around(e, first(e, "lock_vma_under_rcu:abort:vma_locked"))
    assert "VMA_LOCK_ABORT (vma_locked)" in n.text
    assert "T0 (mprotect) holds it write-locked" in n.text
    assert "falls back to `mmap_lock`" in n.text
    assert n.function == "lock_vma_under_rcu" and n.source == "mm/memory.c"
    n = around(e, first(e, "lock_vma_under_rcu:abort:trylock_failed"))
    assert "trylock_failed" in n.title and "`down_read_trylock`" in n.text


def test_no_vma_abort_and_sigsegv() -> None:
    e = run("fault-vs-munmap")
    n = around(e, first(e, "lock_vma_under_rcu:abort:no_vma"))
    assert "no VMA covers the address" in n.text
    n = around(e, first(e, "fault:bad_area_sigsegv"))
    assert "SIGSEGV" in n.title and "T1" in n.text
    n = around(e, first(e, "vma_mark_detached"))
    assert "`victim` (vma1)" in n.text and "VMA_LOCK_MISS" in n.text
    n = around(e, first(e, "rcu:callbacks"))
    assert "grace period" in n.title and n.source == "kernel/rcu/tree.c"


def test_write_lock_epoch(mprotect: Engine) -> None:
    e = mprotect
    i = first(e, "vma_start_write:seq_set")
    n = around(e, i)
    seq = synced_trace(e).b[i]
    assert f"`vm_lock_seq` = `mm_lock_seq` = {seq}" in n.text
    assert "T0" in n.title and "jitbuf (vma1)" in n.title and "`" not in n.title
    i = first(e, "vma_end_write_all")
    new = synced_trace(e).a[i]
    n = around(e, i)
    assert f"({new - 1} → {new})" in n.text and "`jitbuf`" in n.text
    assert n.source == "include/linux/mmap_lock.h"


def test_queued_reader_names_the_writer() -> None:
    e = run("hold-write-other-vma", "mmap_lock")
    i = first(e, "down_read:queued")
    n = around(e, i)
    assert "T0 (hold_mmap_write) holds it for write" in n.text
    assert n.function == "down_read" and n.source == "kernel/locking/rwsem.c"
    n = narrate(e, i)  # without state: found in the trace
    assert "T0 (hold_mmap_write) holds it for write" in n.text
    n = around(e, first(e, "down_read:granted"))
    assert "µs" in n.title
    n = around(e, first(e, "mmap_write_unlock"))
    assert "It wakes the queue: T1 (read), T2 (read)" in n.text


@pytest.mark.parametrize(
    ("arch", "handler", "source"),
    [
        ("x86", "do_user_addr_fault", "arch/x86/mm/fault.c"),
        ("arm64", "do_page_fault", "arch/arm64/mm/fault.c"),
        ("powerpc", "___do_page_fault", "arch/powerpc/mm/fault.c"),
        ("s390", "do_exception", "arch/s390/mm/fault.c"),
    ],
)
def test_fault_entry_per_arch(arch: str, handler: str, source: str) -> None:
    e = run("hold-write-other-vma", arch=arch)
    n = around(e, first(e, "fault:entry"))
    assert n.function == handler and n.source == source
    assert f"`{handler}`" in n.text and "`lock_vma_under_rcu`" in n.text
    assert "`B` (vma2)" in n.text


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("mode", ["per_vma", "mmap_lock"])
def test_every_code_gets_a_specific_sentence(name: str, mode: str) -> None:
    e = run(name, mode)
    t = synced_trace(e)
    seen: set[str] = set()
    for i in range(len(t)):
        code = t.codes[t.code[i]]
        if code in seen:
            continue
        seen.add(code)
        for n in (around(e, i), narrate(e, i)):
            assert n.title and n.text and n.reason and n.function, (code, n)
            assert "None" not in n.text, (code, n.text)
            if code:
                # The generic fallback is "<thread>: <code>"; every recorded code is known.
                assert "` and records `" not in n.text, (code, n.text)
                assert n.source, (code, n)
    assert seen


@pytest.mark.parametrize("mode", ["per_vma", "mmap_lock"])
def test_every_op_family(mode: str) -> None:
    e = Engine(load_scenario_text(ALL_OPS, "<all ops>"), mode=mode).run()
    t = synced_trace(e)
    seen: dict[str, int] = {}
    for i in range(len(t)):
        seen.setdefault(t.codes[t.code[i]], i)
    # The scenario reaches the families the bundled scenarios do not.
    for code in (
        "syscall:mremap",
        "syscall:brk",
        "dup_mmap:vm_area_dup",
        "handle_userfault:wait_monitor",
        "khugepaged:scan",
        "show_map_vma",
        "exit_mmap",
    ):
        assert code in seen, code
    for code, i in seen.items():
        n = around(e, i)
        assert n.title and n.text and n.function and n.source, (code, n)
        assert "` and records `" not in n.text, (code, n.text)
    n = around(e, seen["handle_userfault:wait_monitor"])
    assert "userfaultfd monitor" in n.text and n.source == "fs/userfaultfd.c"


def test_unknown_and_empty_codes() -> None:
    assert step_function("", ["__vm_munmap", "vma_start_write"]) == (
        "vma_start_write",
        "include/linux/mm.h",
    )
    assert step_function("mas_walk:descend", ["touch", "lock_vma_under_rcu"]) == (
        "mas_walk",
        "lib/maple_tree.c",
    )
    assert step_function("syscall:munmap", ["__vm_munmap"]) == ("__vm_munmap", "mm/mmap.c")
    # A code the narrator has no sentence for still gets a true one from its family.
    e = run("hold-write-other-vma")
    i = first(e, "do_anonymous_page:vma_alloc_zeroed_movable_folio")
    e.trace.codes[e.trace.code[i]] = "do_anonymous_page:new_fast_path"
    try:
        n = narrate(e, i)
    finally:
        e.trace.codes[e.trace.code[i]] = "do_anonymous_page:vma_alloc_zeroed_movable_folio"
    assert "first touch of anonymous memory" in n.text and "`B` (vma2)" in n.text
    assert n.function == "do_anonymous_page" and n.source == "mm/memory.c"
    # An empty code (a step that did not describe itself) still gets a sentence.
    e = run("fault-vs-munmap")
    t = synced_trace(e)
    i = first(e, "set_pte_at") if "set_pte_at" in t.codes else 0
    saved = t.codes[t.code[i]]
    t.codes[t.code[i]] = ""
    try:
        n = narrate(e, i)
    finally:
        t.codes[t.code[i]] = saved
    assert "records no event" in n.text and n.function


def test_out_of_range() -> None:
    e = run("first-fault-anon-vma")
    n = narrate(e, 10**6)
    assert n.title == "No step 1000000" and not n.function
    assert narrate(e, -1).title == "No step -1"
    assert narrate(e, 0).to_dict()["title"]


def test_glossary() -> None:
    need = {
        "mm_lock_seq / vm_lock_seq",
        "per-VMA lock",
        "mmap_lock",
        "RCU",
        "maple tree",
        "dead node",
        "grace period",
        "lock_vma_under_rcu",
        "VMA_LOCK_SUCCESS",
        "VMA_LOCK_ABORT",
        "VMA_LOCK_RETRY",
        "VMA_LOCK_MISS",
        "detached",
        "anon_vma",
        "downgrade",
        "handoff",
        "reader stealing",
        "spinning",
    }
    assert need <= set(GLOSSARY)
    assert all(len(text) > 60 for text in GLOSSARY.values())
    assert "vma_end_write_all" in GLOSSARY["mm_lock_seq / vm_lock_seq"]
