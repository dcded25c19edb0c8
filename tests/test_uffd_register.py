"""``UFFDIO_REGISTER``'s checks, as Linux 6.4.0 has them.

Written from fs/userfaultfd.c ``userfaultfd_register`` (commit 6e5f9d87e): under
``mmap_write_lock`` it finds the first VMA (``vma_find(&vmi, end)``, none is
``-EINVAL``), then a first loop over every VMA of the range checks, before anything
changes: ``vma_can_userfault`` (include/linux/userfaultfd_k.h: MISSING mode needs
``vma_is_anonymous``, hugetlb or shmem, else ``-EINVAL``), ``VM_MAYWRITE`` (else
``-EPERM``) and ``cur->vm_userfaultfd_ctx.ctx && cur->vm_userfaultfd_ctx.ctx != ctx``
(``-EBUSY``).  The second loop skips a VMA with ``ctx == ctx`` whose flags already
hold the mode, and registers the others from ``max(start, vm_start)``.
"""

from __future__ import annotations

from typing import Any

import pytest
from kernel_helpers import PAGE, events, make_scenario

from vmaviz.engine.engine import Engine
from vmaviz.model import mm as M
from vmaviz.scenario import ScenarioErrors

BASE = 0x10_0000_0000


def engine(vmas: list[dict[str, Any]], reg: dict[str, Any]) -> Engine:
    sc = make_scenario(vmas=vmas, threads=[{"name": "T", "ops": [{"uffd_register": reg}]}])
    return Engine(sc)


def layout(e: Engine) -> list[tuple[int, int, int, int, str | None]]:
    return sorted(
        (v.vm_start, v.vm_end, v.vm_flags & ~M.VM_SOFTDIRTY, v.uffd_ctx, v.file)
        for v in e.k.mm.live_vmas()
    )


def finish(e: Engine) -> Engine:
    e.run()
    assert e.finished
    return e


def vma(name: str, page: int, pages: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "start": hex(BASE + page * PAGE), "pages": pages, **kw}


def test_a_private_file_vma_is_einval_and_nothing_changes() -> None:
    # anon [0,4) then file [4,8): the first loop reaches the file VMA and refuses
    # the whole range: the anonymous VMA before it is not registered either.
    e = engine([vma("A", 0, 4), vma("F", 4, 4, file="lib.so")], {"vma": "A"})
    e.k.names["A"] = (BASE, BASE + 8 * PAGE)  # the range covers both VMAs
    before = layout(e)
    finish(e)
    (ev,) = events(e, "userfaultfd_register:einval")
    assert (ev["a"], ev["b"]) == (BASE + 4 * PAGE, BASE + 8 * PAGE)
    assert layout(e) == before
    assert not events(e, "vm_flags_reset")


def test_shared_anonymous_memory_is_shmem_and_registers() -> None:
    e = finish(engine([vma("S", 0, 4, shared=True)], {"vma": "S"}))
    (v,) = e.k.mm.live_vmas()
    assert v.uffd_ctx == M.UFFD_CTX and v.vm_flags & M.VM_UFFD_MISSING
    assert not events(e, "userfaultfd_register:einval")


def test_a_vma_without_vm_maywrite_is_eperm() -> None:
    e = engine([vma("A", 0, 4)], {"vma": "A"})
    (v,) = e.k.mm.live_vmas()
    v.vm_flags &= ~M.VM_MAYWRITE  # as a MAP_SHARED mapping of a read-only fd has it
    before = layout(e)
    finish(e)
    (ev,) = events(e, "userfaultfd_register:eperm")
    assert ev["a"] == v.vid
    assert layout(e) == before


def test_a_vma_of_another_userfaultfd_is_ebusy() -> None:
    # A is registered with context 1 (uffd: true); context 2 may not take it, nor
    # the unregistered B next to it (the check runs before any change).
    e = engine([vma("B", 0, 4), vma("A", 4, 4, uffd=True)], {"vma": "B", "uffd": 2})
    e.k.names["B"] = (BASE, BASE + 8 * PAGE)
    before = layout(e)
    finish(e)
    (ev,) = events(e, "userfaultfd_register:ebusy")
    assert ev["b"] == M.UFFD_CTX
    assert layout(e) == before


def test_the_same_context_skips_a_registered_vma_and_registers_the_rest() -> None:
    # A already registered with ctx 1: skipped; B (adjacent, same flags) merges into
    # it with ctx 1 (vma_merge with the new ctx), so one VMA covers both.
    e = engine([vma("A", 0, 4, uffd=True), vma("B", 4, 4)], {"vma": "A"})
    e.k.names["A"] = (BASE, BASE + 8 * PAGE)
    finish(e)
    assert not events(e, prefix="userfaultfd_register:")
    (v,) = e.k.mm.live_vmas()
    assert (v.vm_start, v.vm_end, v.uffd_ctx) == (BASE, BASE + 8 * PAGE, M.UFFD_CTX)


def test_a_second_context_registers_with_its_own_id() -> None:
    e = finish(engine([vma("A", 0, 4)], {"vma": "A", "uffd": 3}))
    (v,) = e.k.mm.live_vmas()
    assert v.uffd_ctx == 3 and v.vm_flags & M.VM_UFFD_MISSING


def test_holes_are_allowed_and_the_range_is_cut_at_its_ends() -> None:
    # A [0,4), hole [4,6), B [6,10); the range [2, 8) registers A's top half and B's
    # bottom half (split_vma at start and at end), leaving the hole alone.
    e = engine([vma("A", 0, 4), vma("B", 6, 4)], {"vma": "A"})
    e.k.names["A"] = (BASE + 2 * PAGE, BASE + 8 * PAGE)
    finish(e)
    got = [(s, t, ctx) for s, t, _, ctx, _ in layout(e)]
    assert got == [
        (BASE, BASE + 2 * PAGE, 0),
        (BASE + 2 * PAGE, BASE + 4 * PAGE, M.UFFD_CTX),
        (BASE + 6 * PAGE, BASE + 8 * PAGE, M.UFFD_CTX),
        (BASE + 8 * PAGE, BASE + 10 * PAGE, 0),
    ]


def test_no_vma_in_range_is_einval() -> None:
    e = engine([vma("A", 0, 4)], {"vma": "A"})
    e.k.names["A"] = (BASE + 8 * PAGE, BASE + 10 * PAGE)
    finish(e)
    (ev,) = events(e, "userfaultfd_register:einval")
    assert (ev["a"], ev["b"]) == (BASE + 8 * PAGE, BASE + 10 * PAGE)


@pytest.mark.parametrize("bad", [0, 65, "x"])
def test_the_loader_checks_the_context_id(bad: object) -> None:
    with pytest.raises(ScenarioErrors, match="uffd"):
        make_scenario(
            vmas=[vma("A", 0, 4)],
            threads=[{"name": "T", "ops": [{"uffd_register": {"vma": "A", "uffd": bad}}]}],
        )
