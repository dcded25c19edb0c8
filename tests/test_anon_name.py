"""``prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, ...)`` (scenario op ``set_anon_name``).

Written from Linux 6.4.0 (commit 6e5f9d87e): kernel/sys.c ``prctl_set_vma`` checks
the name (``is_valid_name_char``, ``-EINVAL``) and takes ``mmap_write_lock`` for
mm/madvise.c ``madvise_set_anon_name`` -> ``madvise_walk_vmas`` with
``madvise_vma_anon_name``: a file VMA that is not anonymous shmem is ``-EBADF``;
otherwise ``madvise_update_vma`` with the same flags and the new name: ``vma_merge``
(mm/mmap.c ``is_mergeable_vma`` requires ``anon_vma_name_eq``), else ``split_vma``,
then ``vm_flags_reset`` (write-locks the VMA) before ``replace_anon_vma_name``.
fs/proc/task_mmu.c ``show_map_vma`` prints ``[anon:NAME]``.
"""

from __future__ import annotations

from typing import Any

import pytest
from kernel_helpers import PAGE, events, make_scenario

from vmaviz.engine.engine import Engine
from vmaviz.model.ops import MAPS_NAME_COLUMN, maps_line_bytes

BASE = 0x10_0000_0000


def vma(name: str, page: int, pages: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "start": hex(BASE + page * PAGE), "pages": pages, **kw}


def run(vmas: list[dict[str, Any]], ops: list[dict[str, Any]]) -> Engine:
    e = Engine(make_scenario(vmas=vmas, threads=[{"name": "T", "ops": ops}])).run()
    assert e.finished
    return e


def spans(e: Engine) -> list[tuple[int, int, str | None]]:
    return sorted((v.vm_start - BASE, v.vm_end - BASE, v.anon_name) for v in e.k.mm.live_vmas())


def test_adjacent_vmas_with_different_names_do_not_merge_and_renaming_merges() -> None:
    # A [0,4) and B [4,8) have equal flags: naming A alone splits nothing (the whole
    # VMA) and does not merge with B; naming B the same then merges: vma_merge over
    # B's whole range with prev = A and no next is 6.4.0's case 7 ("PPPPCCCC" ->
    # "PPPPPPPP", mm/mmap.c vma_merge comment).
    ops = [
        {"set_anon_name": {"vma": "A", "name": "heap"}},
        {"set_anon_name": {"vma": "B", "name": "heap"}},
    ]
    e = run([vma("A", 0, 4), vma("B", 4, 4)], ops[:1])
    assert spans(e) == [(0, 4 * PAGE, "heap"), (4 * PAGE, 8 * PAGE, None)]
    assert not events(e, "vma_merge")
    e = run([vma("A", 0, 4), vma("B", 4, 4)], ops)
    assert spans(e) == [(0, 8 * PAGE, "heap")]
    (merge,) = events(e, "vma_merge")
    assert "case 7" in merge["note"]


def test_naming_part_of_a_vma_splits_it_and_writes_the_name_after_the_write_lock() -> None:
    e = run([vma("A", 0, 8)], [{"set_anon_name": {"vma": "A", "pages": "2-3", "name": "x"}}])
    assert spans(e) == [(0, 2 * PAGE, None), (2 * PAGE, 4 * PAGE, "x"), (4 * PAGE, 8 * PAGE, None)]
    codes = [r["event"] for r in events(e)]
    # vm_flags_reset (vma_start_write first) comes before replace_anon_vma_name.
    assert codes.index("vm_flags_reset") < codes.index("replace_anon_vma_name")
    assert e.k.violations == []


def test_a_file_vma_is_ebadf() -> None:
    e = run([vma("F", 0, 4, file="lib.so")], [{"set_anon_name": {"vma": "F", "name": "x"}}])
    assert events(e, "madvise_vma_anon_name:ebadf")
    assert spans(e) == [(0, 4 * PAGE, None)]
    assert not events(e, "vm_flags_reset")


def test_shared_anonymous_memory_can_be_named() -> None:
    e = run([vma("S", 0, 4, shared=True)], [{"set_anon_name": {"vma": "S", "name": "shm"}}])
    assert spans(e) == [(0, 4 * PAGE, "shm")]


@pytest.mark.parametrize("bad", ["a[b", "dollar$", "x" * 80])
def test_an_invalid_name_is_einval_before_any_lock(bad: str) -> None:
    e = run([vma("A", 0, 4)], [{"set_anon_name": {"vma": "A", "name": bad}}])
    assert events(e, "prctl_set_vma:einval")
    assert not events(e, prefix="mmap_write_lock")
    assert spans(e) == [(0, 4 * PAGE, None)]


def test_a_79_character_name_is_accepted_and_no_name_clears() -> None:
    ok = "n" * 79
    ops = [{"set_anon_name": {"vma": "A", "name": ok}}]
    assert spans(run([vma("A", 0, 4)], ops)) == [(0, 4 * PAGE, ok)]
    ops.append({"set_anon_name": {"vma": "A"}})
    assert spans(run([vma("A", 0, 4)], ops)) == [(0, 4 * PAGE, None)]


def test_maps_shows_anon_name() -> None:
    e = run([vma("A", 0, 4)], [{"set_anon_name": {"vma": "A", "name": "buf"}}])
    (v,) = e.k.mm.live_vmas()
    assert maps_line_bytes(v) == MAPS_NAME_COLUMN + len("[anon:buf]") + 1
