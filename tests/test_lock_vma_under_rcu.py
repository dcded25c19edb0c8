"""Every exit of ``lock_vma_under_rcu`` (reference §2.8) and the counter it bumps (§2.9).

Each test builds a small scenario that forces one branch, checks from the trace
that this exact branch was taken by the thread under test, and checks the
vmstat-style counters: ABORT (+ reason) once per failed call, MISS per detached
retry, SUCCESS/RETRY counted by the arch handler.
"""

from __future__ import annotations

from kernel_helpers import (
    assert_clean,
    codes,
    events,
    lvur_outcomes,
    make_scenario,
    nonzero,
    run,
    vid_of,
)

from vmaviz.model.kernel import ABORT_REASONS

ZERO = {"success": 0, "abort": 0, "retry": 0, "miss": 0}
D = 100_000  # a slow maple walk: the fault sits between its walk and its checks


def fault(vma: str, page: int = 0, access: str = "read", **kw):
    return {"fault": {"vma": vma, "page": page, "access": access, **kw}}


def lvur_codes(e, tid: int) -> list[str]:
    """The branch events of ``lock_vma_under_rcu`` for one thread, walk steps left out."""
    return [
        c
        for c in codes(e, tid)
        if c.startswith(("lock_vma_under_rcu:", "vma_start_read:"))
        and not c.endswith("rcu_read_lock")
    ]


def only_abort(e, reason: str) -> None:
    assert e.k.vma_lock["abort"] == 1
    assert nonzero(e.k.abort_reasons) == {reason: 1}


def test_abort_reasons_are_the_inval_exits_with_start_read_split_in_two() -> None:
    # reference §2.9: no VMA, not anonymous, no anon_vma, start_read failed (seq or
    # trylock), uffd armed, out of range.
    assert set(ABORT_REASONS) == {
        "no_vma",
        "not_anonymous",
        "no_anon_vma",
        "vma_locked",
        "trylock_failed",
        "uffd_armed",
        "out_of_range",
    }


def test_success() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}],
            threads=[{"name": "T", "ops": [fault("A", 1, "write")]}],
        )
    )
    assert lvur_codes(e, 0) == [
        "lock_vma_under_rcu:anonymous",
        "lock_vma_under_rcu:anon_vma_ok",
        "vma_start_read:seq_ok",
        "vma_start_read:trylock_ok",
        "vma_start_read:locked",
        "lock_vma_under_rcu:not_uffd",
        "lock_vma_under_rcu:in_range",
        "lock_vma_under_rcu:attached",
        "lock_vma_under_rcu:locked",
    ]
    assert e.k.vma_lock == {**ZERO, "success": 1}
    assert nonzero(e.k.abort_reasons) == {}
    # Never touched mmap_lock.
    assert e.k.mm.mmap_lock.stats["read_acquired"] == 0
    assert "fault:vma_lock_success" in codes(e, 0)
    assert_clean(e)


def test_no_vma() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
            threads=[{"name": "T", "ops": [{"munmap": {"vma": "A"}}, fault("A", 2)]}],
        )
    )
    assert lvur_outcomes(e, 0) == ["abort:no_vma"]
    assert lvur_codes(e, 0) == ["lock_vma_under_rcu:abort:no_vma"]
    only_abort(e, "no_vma")
    assert e.k.fault_stats["sigsegv"] == 1
    assert_clean(e)


def test_not_anonymous() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "F", "pages": 4, "prot": "r", "file": "lib.so"}],
            threads=[{"name": "T", "ops": [fault("F", 0)]}],
        )
    )
    assert lvur_codes(e, 0) == ["lock_vma_under_rcu:abort:not_anonymous"]
    only_abort(e, "not_anonymous")
    assert e.k.fault_stats["via_mmap_lock"] == 1
    assert "do_fault:file" in codes(e, 0)
    assert_clean(e)


def test_no_anon_vma() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": False}],
            threads=[{"name": "T", "ops": [fault("A", 0, "write")]}],
        )
    )
    assert lvur_codes(e, 0) == [
        "lock_vma_under_rcu:anonymous",
        "lock_vma_under_rcu:abort:no_anon_vma",
    ]
    only_abort(e, "no_anon_vma")
    # The check comes before vma_start_read in 6.4: the VMA lock was never tried.
    assert e.k.mm.vmas[vid_of(e, "A")].vm_lock.stats["read_acquired"] == 0
    # The fallback allocates the anon_vma under mmap_lock.
    assert events(e, "anon_vma_prepare")
    assert e.k.mm.vmas[vid_of(e, "A")].anon_vma is not None
    assert_clean(e)


def test_vma_locked_while_a_writer_holds_the_vma_write_lock() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}],
            threads=[
                {"name": "W", "ops": [{"hold_mmap_write": {"ns": 20_000, "vmas": ["A"]}}]},
                {"name": "F", "start_ns": 5000, "ops": [fault("A", 1)]},
            ],
        )
    )
    a = vid_of(e, "A")
    assert lvur_outcomes(e, 1) == ["abort:vma_locked"]
    seq_check = events(e, "vma_start_read:seq_locked", tid=1)
    assert len(seq_check) == 1
    assert seq_check[0]["a"] == a and seq_check[0]["b"] == 0  # vm_lock_seq == mm_lock_seq 0
    # The seq check fails before any trylock: the rwsem is untouched.
    assert "vma_start_read:trylock_ok" not in codes(e, 1)
    assert "vma_start_read:trylock_failed" not in codes(e, 1)
    only_abort(e, "vma_locked")
    # The fallback waits for the writer in mmap_read_lock.
    assert "fault:mmap_read_trylock_failed" in codes(e, 1)
    assert e.k.threads[1].blocked_ns > 10_000
    assert_clean(e)


def recheck_race(**patches):
    """T0 passes the first seq check of vma_start_read, then T1 runs a whole
    vma_start_write (down_write, set vm_lock_seq, up_write) before T0's trylock.
    Each check of T0 costs 50 us (``vma_check``), which opens that window."""
    return make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": True}],
        threads=[
            {"name": "F", "ops": [fault("A", 1)]},
            {
                "name": "W",
                "start_ns": 75_000,
                "ops": [{"hold_mmap_write": {"ns": 200_000, "vmas": ["A"]}}],
            },
        ],
        kernel={"patches": patches} if patches else None,
        costs={"vma_check": 50_000},
    )


def test_vma_locked_by_the_recheck_after_a_successful_trylock() -> None:
    e = run(recheck_race())
    a = vid_of(e, "A")
    assert lvur_codes(e, 0) == [
        "lock_vma_under_rcu:anonymous",
        "lock_vma_under_rcu:anon_vma_ok",
        "vma_start_read:seq_ok",
        "vma_start_read:trylock_ok",
        "vma_start_read:seq_locked_after_trylock",
        "lock_vma_under_rcu:abort:vma_locked",
    ]
    seq_ok = events(e, "vma_start_read:seq_ok", tid=0)[0]
    seq_set = events(e, "vma_start_write:seq_set", tid=1)[0]
    trylock = events(e, "vma_start_read:trylock_ok", tid=0)[0]
    assert seq_ok["step"] < seq_set["step"] < trylock["step"]
    only_abort(e, "vma_locked")
    # The read lock taken by the trylock was released again (up_read).
    assert e.k.mm.vmas[a].vm_lock.stats["read_acquired"] == 1
    assert e.k.mm.vmas[a].vm_lock.is_free
    assert_clean(e)


def test_recheck_off_read_locks_a_write_locked_vma_and_is_flagged() -> None:
    e = run(recheck_race(vma_start_read_recheck=False))
    assert lvur_outcomes(e, 0) == ["locked"]
    assert [inv for _, inv, _ in e.k.violations] == [1]


def test_trylock_failed_while_vma_start_write_waits_for_a_reader() -> None:
    # T0 holds A's read lock for a long time (a slow page allocation); T1 wants the
    # VMA write lock and queues in vma_start_write; T2's trylock then fails because
    # of the waiters bit (reference §2.1 step 2), before any vm_lock_seq change.
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}],
            threads=[
                {"name": "R", "ops": [fault("A", 0, "write")]},
                {
                    "name": "W",
                    "start_ns": 10_000,
                    "ops": [{"hold_mmap_write": {"ns": 5000, "vmas": ["A"]}}],
                },
                {"name": "F", "start_ns": 50_000, "ops": [fault("A", 1, "write")]},
            ],
            kernel={"cpus": 3},
            costs={"anon_page_alloc": 200_000},
        )
    )
    a = vid_of(e, "A")
    assert lvur_outcomes(e, 0) == ["locked"]
    assert lvur_outcomes(e, 2) == ["abort:trylock_failed"]
    failed = events(e, "vma_start_read:trylock_failed", tid=2)
    assert len(failed) == 1 and failed[0]["a"] == a
    assert failed[0]["b"] == 1  # one waiter: the writer
    queued = events(e, "down_write:queued", tid=1)
    assert queued and queued[0]["a"] == a
    assert queued[0]["step"] < failed[0]["step"]
    # The seq check passed (the writer had not set vm_lock_seq yet).
    assert "vma_start_read:seq_ok" in codes(e, 2)
    seq_set = events(e, "vma_start_write:seq_set", tid=1)
    assert seq_set and seq_set[0]["step"] > failed[0]["step"]
    assert e.k.vma_lock == {**ZERO, "abort": 1, "success": 1}
    assert nonzero(e.k.abort_reasons) == {"trylock_failed": 1}
    assert_clean(e)


def test_uffd_armed() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "U", "pages": 4, "anon_vma": True, "uffd": True}],
            threads=[{"name": "T", "ops": [fault("U", 0)]}],
        )
    )
    u = vid_of(e, "U")
    assert lvur_codes(e, 0)[-3:] == [
        "vma_start_read:locked",
        "lock_vma_under_rcu:uffd_armed",
        "lock_vma_under_rcu:abort:uffd_armed",
    ]
    only_abort(e, "uffd_armed")
    # The read lock taken by vma_start_read was dropped again (vma_end_read).
    assert e.k.mm.vmas[u].vm_lock.is_free
    assert [r["a"] for r in events(e, "vma_end_read:up_read", tid=0)] == [u]
    # The userfault is then handled under mmap_lock (handle_userfault drops it: RETRY).
    assert "handle_userfault:mmap_read_unlock" in codes(e, 0)
    assert_clean(e)


def test_out_of_range_after_a_split_behind_the_walk() -> None:
    # T0's walk finds A for page 3; before T0 locks it, T1's mprotect of page 0
    # splits A.  As in 6.4's mprotect_fixup (split_vma(vma, end, 0)) the unchanged
    # tail (pages 1-3) becomes a new VMA and A keeps page 0 only.  T1 unlocks; T0
    # then locks A and sees that the address is no longer inside it.
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
            threads=[
                {"name": "F", "ops": [fault("A", 3)]},
                {
                    "name": "W",
                    "start_ns": D + 5000,
                    "ops": [{"mprotect": {"vma": "A", "pages": "0", "prot": "r"}}],
                },
            ],
            costs={"maple_level": D},
        )
    )
    a = vid_of(e, "A")
    found = events(e, "mas_walk:found", tid=0)
    split = events(e, "__split_vma:vm_area_dup", tid=1)
    unlock = events(e, "mmap_write_unlock", tid=1)
    oor = events(e, "lock_vma_under_rcu:out_of_range", tid=0)
    assert len(oor) == 1 and oor[0]["a"] == a
    assert found[0]["step"] < split[0]["step"] < unlock[0]["step"] < oor[0]["step"]
    assert lvur_outcomes(e, 0) == ["abort:out_of_range"]
    only_abort(e, "out_of_range")
    # The fallback finds the new VMA holding page 3 and handles the fault there.
    done = events(e, "fault:done_mmap_lock", tid=0)
    assert done and done[0]["a"] != a
    assert e.k.mm.vmas[a].vm_lock.is_free
    assert_clean(e)


def test_miss_detached_vma_then_retry_with_the_stale_maple_state() -> None:
    # T0's walk finds A; T1 unmaps A (write-lock, detach, clear, downgrade) while T0
    # sits after its walk.  After the downgrade A is no longer write-locked, so T0
    # locks it, sees vma->detached: MISS and retry.  The retry re-walks from the
    # cached (now dead) leaf, restarts from the root, finds nothing: ABORT no_vma.
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
            threads=[
                {"name": "F", "ops": [fault("A", 1)]},
                {"name": "W", "start_ns": D + 5000, "ops": [{"munmap": {"vma": "A"}}]},
            ],
            costs={"maple_level": D, "free_pgtables": 500_000},
        )
    )
    a = vid_of(e, "A")
    assert lvur_outcomes(e, 0) == ["miss", "abort:no_vma"]
    assert e.k.vma_lock == {**ZERO, "abort": 1, "miss": 1}
    assert nonzero(e.k.abort_reasons) == {"no_vma": 1}
    detached = events(e, "lock_vma_under_rcu:detached", tid=0)
    downgrade = events(e, "mmap_write_downgrade", tid=1)
    assert len(detached) == 1 and detached[0]["a"] == a
    assert downgrade[0]["step"] < detached[0]["step"]
    # The retry does not start a fresh walk at the root: it re-reads the leaf it
    # cached, which the munmap replaced (dead), and only then restarts.
    f_codes = codes(e, 0)
    i = f_codes.index("lock_vma_under_rcu:miss_retry")
    walk_after = [c for c in f_codes[i + 1 :] if c.startswith("mas_walk:")]
    assert walk_after[0] == "mas_walk:dead_node"
    first_found = events(e, "mas_walk:found", tid=0)[0]
    dead = events(e, "mas_walk:dead_node", tid=0)
    assert dead[0]["a"] == first_found["a"]  # the same leaf node as the first walk
    # Still one RCU section: no rcu_read_lock between the MISS and the abort.
    assert f_codes[i:].count("lock_vma_under_rcu:rcu_read_lock") == 0
    assert e.k.fault_stats["sigsegv"] == 1
    assert_clean(e)


def test_miss_can_repeat_and_counts_once_per_retry() -> None:
    # The counters: MISS is not an exit, the call goes on and ends with exactly one
    # ABORT (or a lock).
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
            threads=[
                {"name": "F", "ops": [fault("A", 1)]},
                {"name": "W", "start_ns": D + 5000, "ops": [{"munmap": {"vma": "A"}}]},
            ],
            costs={"maple_level": D, "free_pgtables": 500_000},
        )
    )
    outcomes = lvur_outcomes(e, 0)
    assert outcomes.count("miss") == e.k.vma_lock["miss"]
    calls = len(events(e, "lock_vma_under_rcu:rcu_read_lock", tid=0))
    exits = [o for o in outcomes if o != "miss"]
    assert len(exits) == calls == 1


# ------------------------------------------------------------- patch toggles


def first_fault_no_anon_vma(**patches):
    return make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": False}],
        threads=[{"name": "T", "ops": [fault("A", 0, "write")]}],
        kernel={"patches": patches} if patches else None,
    )


def test_anon_vma_fallback_off_lets_the_fault_through_and_is_flagged() -> None:
    on = run(first_fault_no_anon_vma())
    off = run(first_fault_no_anon_vma(anon_vma_fallback=False))
    assert lvur_outcomes(on, 0) == ["abort:no_anon_vma"]
    assert on.k.violations == []
    # Without [v3 26/35] the VMA is locked and the fault allocates the anon_vma
    # under the VMA lock alone.  The skipped check is the experiment, not a
    # finding: with no neighbour unmapped meanwhile nothing breaks (the race is
    # scenarios/races/anon-vma-fallback.yaml, invariant 7).
    assert lvur_outcomes(off, 0) == ["locked"]
    assert off.k.vma_lock == {**ZERO, "success": 1}
    assert off.k.violations == []
    # anon_vma_prepare ran with only the VMA read lock: mmap_lock was never taken,
    # and find_mergeable_anon_vma walked to the (absent) neighbours in steps.
    assert len(events(off, "anon_vma_prepare")) == 1
    assert len(events(off, "find_mergeable_anon_vma:mas_walk")) == 1
    assert off.k.mm.mmap_lock.stats["read_acquired"] == 0
    assert off.k.mm.vmas[1].anon_vma is not None


def test_uffd_fallback_off_locks_an_armed_vma_and_is_flagged() -> None:
    sc = make_scenario(
        vmas=[{"name": "U", "pages": 4, "anon_vma": True, "uffd": True}],
        threads=[{"name": "T", "ops": [fault("U", 0)]}],
        kernel={"patches": {"uffd_fallback": False}},
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["locked"]
    # Not the skipped check (invariant 5) but its consequence: handle_userfault
    # releases an mmap_lock the VMA-locked fault never took (invariant 14).
    assert [inv for _, inv, _ in e.k.violations] == [14]
    assert e.k.vma_lock["retry"] == 1
    # The retry under mmap_read_lock runs the real userfault.
    assert len(events(e, "handle_userfault:mmap_read_unlock")) == 2
    assert e.k.mm.mmap_lock.stats["read_acquired"] >= 1


def test_detached_flag_off_returns_a_detached_vma_and_is_flagged() -> None:
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
        threads=[
            {"name": "F", "ops": [fault("A", 1)]},
            {"name": "W", "start_ns": D + 5000, "ops": [{"munmap": {"vma": "A"}}]},
        ],
        kernel={"patches": {"vma_detached_flag": False}},
        costs={"maple_level": D, "free_pgtables": 500_000},
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["locked"]
    assert e.k.vma_lock["miss"] == 0
    assert any(inv == 5 for _, inv, _ in e.k.violations)


def test_bounds_check_off_returns_the_wrong_vma_and_is_flagged() -> None:
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
        threads=[
            {"name": "F", "ops": [fault("A", 3)]},
            {
                "name": "W",
                "start_ns": D + 5000,
                "ops": [{"mprotect": {"vma": "A", "pages": "0", "prot": "r"}}],
            },
        ],
        kernel={"patches": {"lock_vma_bounds_check": False}},
        costs={"maple_level": D},
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["locked"]
    assert any(inv == 5 for _, inv, _ in e.k.violations)
