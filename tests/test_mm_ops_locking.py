"""Which mm operations write-lock which VMAs, and when (reference §2.6, §2.7, §5, invariant 13).

For each op the test collects the ``vma_start_write:seq_set`` events between the
op's mmap write-lock acquisition and its ``mmap_write_unlock`` /
``mmap_write_downgrade`` (``write_sections``) and the final ``mm_lock_seq``:
one increment per unlock or downgrade, plus one for ``mm_drop_all_locks``.
"""

from __future__ import annotations

import pytest
from kernel_helpers import (
    PAGE,
    assert_clean,
    codes,
    events,
    make_scenario,
    run,
    vid_of,
    vma_name,
    write_sections,
)

from vmaviz.engine.engine import Engine

ABC = [
    {"name": "A", "pages": 4, "anon_vma": True},
    {"name": "B", "pages": 4, "anon_vma": True},
    {"name": "C", "pages": 4, "anon_vma": True},
]


def one_thread(ops, vmas=ABC, patches=None, mode=None):
    sc = make_scenario(
        vmas=vmas,
        threads=[{"name": "T", "ops": ops}],
        kernel={"patches": patches} if patches else None,
    )
    # keep_freed: these tests inspect the unmapped VMAs (their final vm_lock_seq
    # and detached flag) after the run, when the kernel would have freed them.
    e = run(sc, mode=mode, keep_freed=True)
    assert_clean(e)
    return e


def all_seq_sets_inside_sections(e, tid: int = 0) -> None:
    """vm_lock_seq is only ever set while the mmap write lock is held (invariant 2)."""
    inside = sum(len(s["locked"]) for s in write_sections(e, tid))
    assert inside == len(events(e, "vma_start_write:seq_set", tid=tid))


def split_events(e) -> list[tuple[int, int]]:
    """(original, new) of every __split_vma."""
    return [(r["a"], r["b"]) for r in events(e, "__split_vma:vm_area_dup")]


def seq_sets_in(e, fn: str) -> list[int]:
    """VMA ids write-locked from inside kernel function ``fn`` (by call stack)."""
    return [r["a"] for r in events(e, "vma_start_write:seq_set") if fn in r["stack"]]


# ---------------------------------------------------------------------- munmap


def test_munmap_whole_vma_locks_it_before_detaching_then_downgrades() -> None:
    e = one_thread([{"munmap": {"vma": "B"}}])
    b = vid_of(e, "B")
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [b]
    assert sec["seqs"] == [0]  # locked in epoch 0
    assert sec["how"] == "downgrade"
    ev = sec["events"]
    assert ev.index("vma_start_write:seq_set") < ev.index("vma_mark_detached")
    assert ev.index("vma_mark_detached") < ev.index("vma_iter_clear")
    # The downgrade is vma_end_write_all (seq 0 -> 1) followed by downgrade_write.
    assert ev[-2:] == ["vma_end_write_all", "mmap_write_downgrade"]
    assert events(e, "vma_end_write_all")[0]["a"] == 1
    assert events(e, "mmap_write_downgrade")[0]["a"] == 1
    # After the downgrade the lock is released with mmap_read_unlock: no second bump.
    c = codes(e, 0)
    assert c.index("mmap_write_downgrade") < c.index("unmap_region") < c.index("mmap_read_unlock")
    s = e.summary()
    assert s["mm_lock_seq"] == 1
    assert [v["name"] for v in s["vmas"]] == ["C", "A"]
    assert e.k.mm.vmas[b].detached
    all_seq_sets_inside_sections(e)


def test_munmap_marks_detached_while_the_vma_is_still_in_the_tree() -> None:
    # reference §2.7: vma_mark_detached right after the side-tree store, while the
    # VMA is still reachable in mm_mt; the range is cleared later.
    e = Engine(
        make_scenario(vmas=ABC, threads=[{"name": "T", "ops": [{"munmap": {"vma": "B"}}]}]),
        keep_freed=True,
    )
    e.run()
    b = vid_of(e, "B")
    start = e.k.names["B"][0]
    (det,) = events(e, "vma_mark_detached")
    (clear,) = events(e, "vma_iter_clear")
    assert det["step"] < clear["step"]
    k = e.state_at(det["step"] + 1)
    assert k.mm.vmas[b].detached
    assert k.mm.vmas[b].vm_lock_seq == k.mm.mm_lock_seq  # write-locked (invariant 6)
    found = k.mm.vma_at(start)
    assert found is not None and found.vid == b
    assert e.state_at(clear["step"] + 1).mm.vma_at(start) is None


def test_munmap_next_to_a_growsdown_vma_does_not_downgrade() -> None:
    base = 0x7F00_0000_0000
    vmas = [
        {"name": "B", "start": hex(base), "pages": 4, "anon_vma": True},
        {"name": "S", "start": hex(base + 4 * PAGE), "pages": 4, "growsdown": True},
    ]
    e = one_thread([{"munmap": {"vma": "B"}}], vmas=vmas)
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "unlock"
    assert sec["locked"] == [vid_of(e, "B")]
    c = codes(e, 0)
    assert "mmap_write_downgrade" not in c
    assert "mmap_read_unlock" not in c
    # Page tables are freed while still holding the write lock.
    assert c.index("unmap_region") < c.index("mmap_write_unlock")
    assert e.summary()["mm_lock_seq"] == 1


def test_munmap_with_splits_locks_split_originals_and_every_unmapped_vma() -> None:
    e = one_thread([{"munmap": {"vma": "B", "pages": "1-2"}}])
    b = vid_of(e, "B")
    splits = split_events(e)
    assert len(splits) == 2
    assert splits[0][0] == b
    # Each split write-locks its original only (vma_prepare), never the new VMA.
    assert seq_sets_in(e, "__split_vma") == [orig for orig, _ in splits]
    # Every VMA that ends up unmapped is write-locked before vma_mark_detached.
    detached = events(e, "vma_mark_detached")
    assert len(detached) == 1
    victim = detached[0]["a"]
    assert e.k.mm.vmas[victim].vm_start == e.k.names["B"][0] + PAGE
    assert e.k.mm.vmas[victim].vm_end == e.k.names["B"][0] + 3 * PAGE
    locks = events(e, "vma_start_write:seq_set")
    assert any(r["a"] == victim and r["step"] < detached[0]["step"] for r in locks)
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "downgrade"
    assert e.summary()["mm_lock_seq"] == 1
    # Two pieces of B stay mapped.
    assert [v["name"] for v in e.summary()["vmas"]] == ["C", "B", "B", "A"]
    all_seq_sets_inside_sections(e)


def test_munmap_end_split_leaves_the_surviving_tail_unlocked() -> None:
    e = one_thread([{"munmap": {"vma": "B", "pages": "0-1"}}])
    start = e.k.names["B"][0]
    tail = e.k.mm.vma_at(start + 2 * PAGE)
    assert tail is not None
    (sec,) = write_sections(e, 0)
    assert tail.vid not in sec["locked"]


# -------------------------------------------------------------------- mprotect


def test_mprotect_middle_page_locks_split_original_and_changed_vma() -> None:
    e = one_thread([{"mprotect": {"vma": "B", "pages": "1", "prot": "r"}}])
    b = vid_of(e, "B")
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "unlock"
    splits = split_events(e)
    assert len(splits) == 2
    assert splits[0][0] == b
    # The original is write-locked by the split, before its bounds change.
    first_complete = sec["events"].index("vma_complete")
    assert sec["events"][:first_complete].count("vma_start_write:seq_set") == 1
    assert seq_sets_in(e, "__split_vma")[0] == b
    # The VMA whose flags change is write-locked before vm_flags_reset.
    (reset,) = events(e, "vm_flags_reset")
    changed = reset["a"]
    vma = e.k.mm.vmas[changed]
    assert (vma.vm_start, vma.vm_end) == (e.k.names["B"][0] + PAGE, e.k.names["B"][0] + 2 * PAGE)
    locks = events(e, "vma_start_write:seq_set")
    assert any(r["a"] == changed and r["step"] < reset["step"] for r in locks)
    assert e.summary()["mm_lock_seq"] == 1
    assert [v["name"] for v in e.summary()["vmas"]] == ["C", "B", "B", "B", "A"]
    all_seq_sets_inside_sections(e)


def test_mprotect_middle_page_write_locks_only_the_original() -> None:
    e = one_thread([{"mprotect": {"vma": "B", "pages": "1", "prot": "r"}}])
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [vid_of(e, "B")]


def test_mprotect_whole_vma_locks_only_that_vma() -> None:
    e = one_thread([{"mprotect": {"vma": "B", "prot": "r"}}])
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [vid_of(e, "B")]
    assert split_events(e) == []
    assert e.summary()["mm_lock_seq"] == 1


# ------------------------------------------------------------------------ mmap


def test_mmap_inserts_the_new_vma_unlocked_then_vm_flags_set_locks_it() -> None:
    e = one_thread([{"mmap": {"name": "N", "pages": 2, "prot": "r"}}])
    (ins,) = events(e, "vma_link:inserted")
    new = ins["a"]
    assert vma_name(e, new) == "N"
    assert ins["b"] == 0  # 6.4.0: visible in the tree before it is write-locked (R-M1)
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [new]
    (lock,) = events(e, "vma_start_write:seq_set")
    assert lock["step"] > ins["step"]
    assert lock["step"] < events(e, "vm_flags_set:softdirty")[0]["step"]
    assert e.summary()["mm_lock_seq"] == 1
    assert "N" in [v["name"] for v in e.summary()["vmas"]]


def test_mmap_fix_locks_the_new_vma_before_insertion() -> None:
    e = one_thread(
        [{"mmap": {"name": "N", "pages": 2, "prot": "r"}}],
        patches={"fix_mmap_lock_new_vma": True},
    )
    (ins,) = events(e, "vma_link:inserted")
    assert ins["b"] == 1
    (lock,) = events(e, "vma_start_write:seq_set")
    assert lock["a"] == ins["a"] and lock["step"] < ins["step"]
    # vm_flags_set finds it already locked.
    assert "vma_start_write:already_locked" in codes(e, 0)
    assert e.summary()["mm_lock_seq"] == 1


def test_mmap_expanding_a_neighbour_locks_it_via_vma_prepare() -> None:
    # Same flags as C (the lowest VMA) and adjacent below it: vma_expand of C.
    e = one_thread([{"mmap": {"name": "N", "pages": 2}}])
    c = vid_of(e, "C")
    assert "vma_link:inserted" not in codes(e, 0)
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [c]
    assert seq_sets_in(e, "vma_prepare") == [c]
    assert e.k.mm.vmas[c].npages == 6


# ------------------------------------------------------------------------ fork


def test_fork_640_locks_no_parent_vma() -> None:
    e = one_thread(["fork"])
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == []
    assert len(events(e, "dup_mmap:vm_area_dup")) == 3
    assert e.summary()["mm_lock_seq"] == 1


def test_fork_fix_locks_every_parent_vma_before_copying_it() -> None:
    e = one_thread(["fork"], patches={"fix_fork_lock_parent": True})
    (sec,) = write_sections(e, 0)
    assert sorted(sec["locked"]) == sorted(vid_of(e, n) for n in "ABC")
    for copy in events(e, "dup_mmap:vm_area_dup"):
        locks = [r for r in events(e, "vma_start_write:seq_set") if r["a"] == copy["a"]]
        assert locks and locks[0]["step"] < copy["step"]
    assert e.summary()["mm_lock_seq"] == 1


# --------------------------------------------------------------------- madvise


def test_madvise_dontneed_takes_mmap_lock_for_read_and_locks_nothing() -> None:
    e = one_thread(
        [
            {"touch": {"vma": "B", "pages": "0-3"}},
            {"madvise": {"vma": "B", "advice": "dontneed"}},
        ]
    )
    assert write_sections(e, 0) == []
    assert events(e, "vma_start_write:seq_set") == []
    reads = [r for r in events(e, "down_read:acquired") if r["a"] == 0]
    assert len(reads) == 1 and "do_madvise" in reads[0]["stack"]
    assert events(e, "madvise:read_lock_advice")[0]["a"] == 4  # four pages zapped
    assert e.summary()["mm_lock_seq"] == 0
    assert e.k.mm.mmap_lock.stats["write_acquired"] == 0


def test_madvise_write_advice_locks_the_vma() -> None:
    e = one_thread([{"madvise": {"vma": "B", "advice": "hugepage"}}])
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [vid_of(e, "B")]
    assert e.summary()["mm_lock_seq"] == 1


# ---------------------------------------------- khugepaged, notifiers, uffd, ...


def test_khugepaged_collapse_locks_its_vma() -> None:
    # hugepage_vma_check (6.4.0) needs a whole 2 MiB-aligned range in the VMA.
    vmas = [dict(v) for v in ABC]
    vmas[1].update(pages=512, start=0x7F0000000000)
    # A written page: an empty range is SCAN_PMD_NONE (find_pmd_or_thp_or_none).
    ops = [{"touch": {"vma": "B", "pages": "0-3", "access": "write"}}]
    e = one_thread([*ops, {"khugepaged_collapse": {"vma": "B"}}], vmas=vmas)
    (sec,) = write_sections(e, 0)
    b = vid_of(e, "B")
    assert sec["locked"] == [b]
    ev = sec["events"]
    assert ev.index("vma_start_write:seq_set") < ev.index("collapse_huge_page:pmdp_collapse_flush")
    assert e.summary()["mm_lock_seq"] == 1


def test_mmu_notifier_register_locks_every_vma_and_bumps_twice() -> None:
    e = one_thread(["mmu_notifier_register"])
    (sec,) = write_sections(e, 0)
    assert sorted(sec["locked"]) == sorted(vid_of(e, n) for n in "ABC")
    ev = sec["events"]
    # mm_take_all_locks locks all VMAs first; mm_drop_all_locks ends with
    # vma_end_write_all (still holding the write lock), then the unlock bumps again.
    assert ev.index("mm_take_all_locks") > max(
        i for i, c in enumerate(ev) if c == "vma_start_write:seq_set"
    )
    assert [r["a"] for r in events(e, "vma_end_write_all")] == [1, 2]
    assert e.summary()["mm_lock_seq"] == 2


def test_uffd_register_locks_the_vma() -> None:
    e = one_thread([{"uffd_register": {"vma": "B"}}])
    (sec,) = write_sections(e, 0)
    assert sec["locked"] == [vid_of(e, "B")]
    assert e.k.mm.vmas[vid_of(e, "B")].uffd_armed
    assert e.summary()["mm_lock_seq"] == 1


def test_mremap_move_locks_source_and_copy() -> None:
    e = one_thread([{"mremap": {"vma": "B", "new_pages": 8, "move": True}}])
    b = vid_of(e, "B")
    (sec,) = write_sections(e, 0)
    (dup,) = events(e, "copy_vma:vm_area_dup")
    new = dup["a"]
    assert sec["locked"] == [b, new]
    ev = sec["events"]
    # Source locked before copy_vma; the copy locked before it is linked.
    assert ev.index("vma_start_write:seq_set") < ev.index("copy_vma:vm_area_dup")
    assert ev.index("copy_vma:vm_area_dup") < ev.index("vma_link")
    # The old range is unmapped without downgrading.
    assert sec["how"] == "unlock"
    assert e.k.mm.vmas[b].detached
    assert e.summary()["mm_lock_seq"] == 1


def test_mremap_shrink_is_a_munmap_with_downgrade() -> None:
    e = one_thread([{"mremap": {"vma": "B", "new_pages": 2}}])
    (sec,) = write_sections(e, 0)
    assert sec["how"] == "downgrade"
    assert vid_of(e, "B") in sec["locked"]
    assert e.summary()["mm_lock_seq"] == 1


def test_brk_new_heap_inserted_unlocked_then_locked() -> None:
    e = one_thread([{"brk": {"pages": 2}}, {"brk": {"pages": 2}}])
    first, second = write_sections(e, 0)
    (link,) = events(e, "vma_link")
    heap = link["a"]
    assert vma_name(e, heap) == "[heap]"
    assert first["locked"] == [heap]
    assert first["events"].index("vma_link") < first["events"].index("vma_start_write:seq_set")
    assert second["locked"] == [heap]  # expand: vma_prepare, then vm_flags_set (no-op)
    assert e.summary()["mm_lock_seq"] == 2


def test_exit_mmap_locks_every_vma() -> None:
    e = one_thread(["exit"])
    (sec,) = write_sections(e, 0)
    assert sorted(sec["locked"]) == sorted(vid_of(e, n) for n in "ABC")
    assert e.summary()["vmas"] == []
    assert e.summary()["mm_lock_seq"] == 1


@pytest.mark.parametrize(
    "op",
    [
        {"swap_out": {"vma": "B"}},
        {"tcp_zerocopy_receive": {"vma": "B"}},
        "read_proc_maps",
    ],
)
def test_read_side_ops_lock_no_vma(op) -> None:
    e = one_thread([{"touch": {"vma": "B", "pages": "0-1"}}, op])
    assert write_sections(e, 0) == []
    assert events(e, "vma_start_write:seq_set") == []
    assert e.summary()["mm_lock_seq"] == 0


# ---------------------------------------------------- epochs and mmap_lock mode

SEQUENCE = [
    {"mprotect": {"vma": "A", "prot": "r"}},
    {"munmap": {"vma": "B", "pages": "1"}},
    {"mmap": {"name": "N", "pages": 2, "prot": "r"}},
    {"madvise": {"vma": "C", "advice": "dontneed"}},
    "fork",
    "mmu_notifier_register",
    {"hold_mmap_write": {"ns": 1000, "vmas": ["A", "C"]}},
]


def test_mm_lock_seq_counts_unlocks_downgrades_and_drop_all_locks() -> None:
    e = one_thread(SEQUENCE)
    sections = write_sections(e, 0)
    assert len(sections) == 6  # every op but the read-locked madvise
    bumps = len(events(e, "mmap_write_unlock")) + len(events(e, "mmap_write_downgrade"))
    bumps += len(events(e, "mm_drop_all_locks"))
    assert e.summary()["mm_lock_seq"] == bumps == 7
    # Every bump is +1, in order.
    assert [r["a"] for r in events(e, "vma_end_write_all")] == list(range(1, 8))
    # Each section locks in the current epoch: the seq written is the value then.
    for sec in sections:
        assert all(s == sec["seqs"][0] for s in sec["seqs"])
    all_seq_sets_inside_sections(e)
    # No VMA is write-locked once everything is unlocked (invariant 2).
    assert all(not e.k.mm.is_write_locked(v) for v in e.k.mm.live_vmas())


def test_mmap_lock_mode_write_locks_nothing() -> None:
    e = one_thread(SEQUENCE, mode="mmap_lock")
    assert events(e, "vma_start_write:seq_set") == []
    assert events(e, "vma_end_write_all") == []
    s = e.summary()
    assert s["mode"] == "mmap_lock"
    assert s["mm_lock_seq"] is None
    assert all(v["vm_lock_seq"] is None for v in s["vmas"])
    # The same ops still ran: same final layout as per_vma mode.
    per_vma = one_thread(SEQUENCE).summary()
    assert [(v["name"], v["start"], v["end"]) for v in s["vmas"]] == [
        (v["name"], v["start"], v["end"]) for v in per_vma["vmas"]
    ]


# ------------------------------------------------------------- patch toggles


def test_without_write_lock_before_detach_munmap_takes_no_vma_lock() -> None:
    # The kernel before [v3 19/35] detached VMAs unlocked by design: alone that is
    # no break; the race it opens (a fault read-locking the VMA across the detach,
    # invariant 4) is tests/test_explore.py's write-lock-before-detach.
    sc = make_scenario(
        vmas=ABC,
        threads=[{"name": "T", "ops": [{"munmap": {"vma": "B"}}]}],
        kernel={"patches": {"write_lock_before_detach": False}},
    )
    e = run(sc)
    assert events(e, "vma_start_write:seq_set") == []
    assert len(events(e, "vma_mark_detached")) == 1
    assert e.k.violations == []


def test_without_vm_flags_write_lock_mprotect_takes_no_vma_lock() -> None:
    # As above for [v3 13/35]: the race (a fault read-locking the VMA while its
    # flags change, invariant 4) is tests/test_explore.py's vm-flags-write-lock.
    sc = make_scenario(
        vmas=ABC,
        threads=[{"name": "T", "ops": [{"mprotect": {"vma": "B", "prot": "r"}}]}],
        kernel={"patches": {"vm_flags_write_lock": False}},
    )
    e = run(sc)
    assert events(e, "vma_start_write:seq_set") == []
    assert len(events(e, "vm_flags_reset")) == 1
    assert e.k.violations == []


def test_mmap_write_unlock_bumps_the_epoch_before_releasing_the_lock() -> None:
    # reference §2.6: vma_end_write_all, then up_write (VMAs readable first).
    sc = make_scenario(
        vmas=ABC, threads=[{"name": "T", "ops": [{"hold_mmap_write": {"ns": 1000, "vmas": ["B"]}}]}]
    )
    e = Engine(sc).run()
    (bump,) = events(e, "vma_end_write_all")
    (unlock,) = events(e, "mmap_write_unlock")
    assert bump["step"] < unlock["step"]
    k = e.state_at(bump["step"] + 1)
    assert k.mm.mm_lock_seq == 1
    assert k.mm.mmap_lock.writer == 0  # still held for write
    assert not k.mm.is_write_locked(k.mm.vmas[vid_of(e, "B")])
    assert e.state_at(unlock["step"] + 1).mm.mmap_lock.writer is None


def test_hold_mmap_write_looks_its_vmas_up_under_the_lock() -> None:
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
        threads=[
            {"name": "U", "ops": [{"munmap": {"vma": "A"}}]},
            {
                "name": "H",
                "start_ns": 150,
                "ops": [{"hold_mmap_write": {"ns": 1000, "vmas": ["A"]}}],
            },
        ],
        kernel={"rcu_grace_ns": 400},
    )
    e = run(sc)
    # A is unmapped by the time H holds mmap_lock: there is nothing to lock.
    assert events(e, "vma_start_write:seq_set", tid=1) == []
    assert e.k.violations == []
