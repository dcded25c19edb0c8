"""RCU (reference §6.1, §6.5, §13): unit behaviour of ``Rcu`` and VMA freeing in the engine."""

from __future__ import annotations

from kernel_helpers import at, at_prefix, is_freed, make_scenario, rows, run, vid_of

from vmaviz.engine.engine import Engine
from vmaviz.model.rcu import Rcu
from vmaviz.scenario import load_scenario

# ------------------------------------------------------------------ unit: Rcu


def test_callback_waits_for_readers_present_at_call_rcu_only() -> None:
    rcu = Rcu(grace_ns=100)
    rcu.read_lock(1)
    cb = rcu.call_rcu("vma", 7, now=0)
    assert cb.waiting_for == {1}
    rcu.read_lock(2)  # a later reader must not delay the callback
    assert rcu.ready(1000) == []  # reader 1 is still inside
    assert rcu.ready_peek(1000) is False
    rcu.read_unlock(1)
    done = rcu.ready(1000)
    assert [c.payload for c in done] == [7]
    assert rcu.in_section(2)  # reader 2 still inside, and it did not matter
    assert rcu.freed["vma"] == 1
    assert rcu.gp_completed >= 1


def test_nested_sections_release_on_the_outermost_unlock() -> None:
    rcu = Rcu(grace_ns=0)
    rcu.read_lock(1)
    rcu.read_lock(1)
    rcu.call_rcu("vma", 1, now=0)
    rcu.read_unlock(1)
    assert rcu.in_section(1)
    assert rcu.ready(10) == []
    rcu.read_unlock(1)
    assert not rcu.in_section(1)
    assert len(rcu.ready(10)) == 1


def test_callbacks_complete_in_call_rcu_order() -> None:
    rcu = Rcu(grace_ns=10)
    rcu.read_lock(1)
    rcu.call_rcu("vma", "first", now=0)  # grace period 1 starts, waits for reader 1
    rcu.read_unlock(1)
    rcu.read_lock(2)
    rcu.call_rcu("maple_node", "second", now=1)  # GP 1 in progress: needs GP 2
    rcu.call_rcu("vma", "third", now=2)
    rcu.read_unlock(2)
    assert [c.payload for c in rcu.ready(100)] == ["first"]
    assert [c.payload for c in rcu.ready(110)] == ["second", "third"]


def test_a_grace_period_waits_only_for_readers_inside_when_it_starts() -> None:
    rcu = Rcu(grace_ns=10)
    rcu.read_lock(1)
    rcu.call_rcu("vma", "a", now=0)  # GP 1 starts at 0 and waits for reader 1
    rcu.read_unlock(1)
    rcu.read_lock(1)  # a new section: GP 1 does not wait for it
    rcu.call_rcu("vma", "b", now=1)  # needs GP 2, not started yet
    assert rcu.pending[1].waiting_for == set()
    rcu.read_unlock(1)  # left before GP 2 starts: GP 2 will not wait for it
    rcu.call_rcu("vma", "c", now=2)  # no reader at all, still GP 2
    assert [c.payload for c in rcu.ready(5)] == []  # grace not over
    assert [c.payload for c in rcu.ready(11)] == ["a"]
    assert rcu.gp_started == 2 and rcu.gp_start_ns == 11
    assert [c.payload for c in rcu.ready(20)] == []
    assert [c.payload for c in rcu.ready(21)] == ["b", "c"]


def test_callbacks_queued_during_a_grace_period_run_together_after_the_next() -> None:
    # kernel/rcu/tree.c rcu_accelerate_cbs: gp_seq_req = rcu_seq_snap(&gp_seq),
    # which (kernel/rcu/rcu.h) is the end of the *next* grace period while one
    # is in progress; rcu_gp_cleanup starts that one at once (needgp), and
    # rcu_do_batch invokes every callback whose grace period has ended.
    rcu = Rcu(grace_ns=20_000)
    first = rcu.call_rcu("maple_node", "n1", now=540)
    assert first.gp == 1 and rcu.gp_in_progress and rcu.gp_started == 1
    second = rcu.call_rcu("maple_node", "n2", now=10_900)
    third = rcu.call_rcu("vma", "A", now=13_200)
    assert (second.gp, third.gp) == (2, 2)
    assert rcu.gp_started == 1  # one grace period in progress, not one per callback
    assert rcu.next_expiry() == 20_540
    assert [c.payload for c in rcu.ready(20_540)] == ["n1"]
    assert rcu.gp_completed == 1
    # Grace period 2 started when 1 ended, not when the callbacks were queued.
    assert rcu.gp_start_ns == 20_540 and rcu.next_expiry() == 40_540
    assert rcu.ready(33_200) == []  # 20 us after the third call_rcu: not yet
    assert [c.payload for c in rcu.ready(40_540)] == ["n2", "A"]
    assert rcu.gp_completed == rcu.gp_started == 2
    assert not rcu.gp_in_progress and rcu.next_expiry() is None
    # Idle again: the next call_rcu starts grace period 3 at once.
    assert rcu.call_rcu("vma", "B", now=50_000).gp == 3
    assert rcu.gp_start_ns == 50_000


def test_a_reader_inside_at_the_start_holds_back_the_whole_batch() -> None:
    rcu = Rcu(grace_ns=10)
    rcu.call_rcu("vma", "a", now=0)
    rcu.read_lock(7)
    rcu.call_rcu("vma", "b", now=1)
    rcu.call_rcu("vma", "c", now=2)
    assert [c.payload for c in rcu.ready(10)] == ["a"]  # GP 2 starts with 7 inside
    assert [cb.waiting_for for cb in rcu.pending] == [{7}, {7}]
    assert rcu.ready(1_000) == [] and not rcu.ready_peek(1_000)
    rcu.read_unlock(7)
    assert rcu.ready_peek(1_000)
    assert [c.payload for c in rcu.ready(1_000)] == ["b", "c"]
    assert rcu.gp_completed == 2


def test_grace_ns_is_honoured() -> None:
    rcu = Rcu(grace_ns=5000)
    rcu.call_rcu("vma", 1, now=1000)
    assert rcu.next_expiry() == 6000
    assert rcu.ready(5999) == []
    assert not rcu.ready_peek(5999)
    assert rcu.ready_peek(6000)
    assert len(rcu.ready(6000)) == 1
    assert rcu.pending == []


def test_unlock_outside_a_section_is_an_error() -> None:
    rcu = Rcu()
    try:
        rcu.read_unlock(3)
    except RuntimeError as exc:
        assert "outside" in str(exc)
    else:  # pragma: no cover - the assertion below documents the failure
        raise AssertionError("rcu_read_unlock outside a section was accepted")


# --------------------------------------------------- engine: RCU-deferred free

D = 100_000  # ns: how long the faulting thread stays between its walk and its checks


def fault_during_munmap(grace_ns: int = 20_000, also_unmap_b: bool = False):
    """T0 faults on A and stalls inside lock_vma_under_rcu (a slow maple walk) while
    T1 munmaps A completely (lock, detach, clear, downgrade, vm_area_free), and
    then B when ``also_unmap_b``."""
    w_ops = [{"munmap": {"vma": "A"}}] + ([{"munmap": {"vma": "B"}}] if also_unmap_b else [])
    return make_scenario(
        vmas=[
            {"name": "A", "pages": 4, "anon_vma": True},
            {"name": "B", "pages": 4, "anon_vma": True},
        ],
        threads=[
            {"name": "F", "ops": [{"fault": {"vma": "A", "page": 1, "access": "read"}}]},
            {"name": "W", "start_ns": D + 5000, "ops": w_ops},
        ],
        kernel={"rcu_grace_ns": grace_ns},
        costs={"maple_level": D},
    )


def test_vma_unmapped_under_an_rcu_reader_is_freed_only_after_it_leaves() -> None:
    e = Engine(fault_during_munmap())
    a = vid_of(e, "A")

    walked = e.run_until(at("mas_walk:found", 0))
    assert walked is not None
    free = e.run_until(at("remove_mt:remove_vma", 1), walked)
    assert free is not None
    # After vm_area_free the VMA waits for the grace period: the reader is still inside.
    k = e.state_at(free + 1)
    assert k.mm.vmas[a].state == "rcu_pending"
    assert k.rcu.in_section(0)
    assert k.rcu.pending and k.rcu.pending[0].waiting_for == {0}

    # The reader's rcu_read_unlock is the inval exit of lock_vma_under_rcu.
    unlock = e.run_until(at_prefix("lock_vma_under_rcu:abort"))
    assert unlock is not None and unlock > free
    before = e.state_at(unlock)
    assert before.mm.vmas[a].state == "rcu_pending"
    assert before.vmas_freed == 0
    # Long past the grace period, still not freed while the reader is inside.
    assert e.trace.row(unlock)["time_ns"] - e.trace.row(free)["time_ns"] > 20_000

    cb = e.run_until(
        lambda t, i: t.row(i)["event"] == "rcu:callbacks" and t.row(i)["a"] >= 1, unlock
    )
    assert cb is not None
    after = e.state_at(cb + 1)
    assert is_freed(after, a)
    assert after.vmas_freed == 1
    e.run()
    assert is_freed(e.k, a)
    assert e.k.violations == []
    # The reader touched the pending VMA, never the freed one.  A's callback was
    # the last one W queued on its CPU, so rcu_head.next (read as vm_start) is
    # NULL and [0, func) holds the address: the bounds check passes and the
    # detached check sends the fault to a MISS retry, which finds no VMA
    # (mm/memory.c lock_vma_under_rcu: bounds check, then vma->detached).
    assert e.k.vma_lock["miss"] == 1
    assert e.k.abort_reasons["no_vma"] == 1
    assert e.k.abort_reasons["out_of_range"] == 0


def test_rcu_head_next_is_null_only_for_the_last_callback_of_its_cpu() -> None:
    # kernel/rcu/rcu_segcblist.c rcu_segcblist_enqueue: the new rcu_head gets
    # next = NULL and is linked behind its CPU's tail.
    rcu = Rcu()
    rcu.call_rcu("vma", 1, now=0, cpu=0)
    assert rcu.rcu_head_next_is_null("vma", 1)
    rcu.call_rcu("vma", 2, now=1, cpu=1)  # another CPU's list: 1's next stays NULL
    assert rcu.rcu_head_next_is_null("vma", 1)
    rcu.call_rcu("maple_node", "n", now=2, cpu=0)  # queued behind 1 on CPU 0
    assert not rcu.rcu_head_next_is_null("vma", 1)
    assert rcu.rcu_head_next_is_null("vma", 2)
    assert not rcu.rcu_head_next_is_null("vma", 99)  # not queued at all


def test_stale_reader_with_a_callback_queued_behind_sees_out_of_range_bounds() -> None:
    # W frees A, then munmaps B too while the reader is still in its walk: B's
    # (and its maple nodes') callbacks follow A's on W's CPU, so A's
    # rcu_head.next is a kernel pointer, above every user address:
    # lock_vma_under_rcu's bounds check fails (VMA_LOCK_ABORT, no MISS).
    e = run(fault_during_munmap(also_unmap_b=True))
    assert e.k.violations == []
    assert e.k.abort_reasons["out_of_range"] == 1
    assert e.k.vma_lock["miss"] == 0


def test_rcu_callback_runs_right_after_the_reader_leaves_when_grace_is_over() -> None:
    e = run(fault_during_munmap())
    trace = list(rows(e))
    unlock = next(r for r in trace if r["event"].startswith("lock_vma_under_rcu:abort"))
    cb = next(r for r in trace if r["event"] == "rcu:callbacks" and r["a"] >= 1)
    assert cb["step"] > unlock["step"]
    # The maple nodes munmap retired first started grace period 1, which waited for
    # the reader: it ends at its rcu_read_unlock (the 20 us had long passed).
    gp1 = next(r for r in trace if r["event"] == "rcu:callbacks")
    assert gp1["time_ns"] == unlock["time_ns"] and gp1["note"] == "grace period 1"
    assert gp1["a"] == 0 and gp1["b"] >= 1
    # vm_area_free came while grace period 1 was in progress: it needs grace
    # period 2, which starts when 1 ends and lasts rcu_grace_ns.
    assert cb["note"] == "grace period 2"
    assert cb["time_ns"] == unlock["time_ns"] + 20_000
    assert cb["tid"] == -1
    assert e.summary()["rcu"]["vmas_freed"] == 1
    assert e.summary()["rcu"]["grace_periods"] == 2


def munmap_then_compute(grace_ns: int):
    return make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": True}],
        threads=[{"name": "W", "ops": [{"munmap": {"vma": "A"}}, {"compute": {"ns": 500_000}}]}],
        kernel={"rcu_grace_ns": grace_ns},
    )


def vma_free_delay(grace_ns: int) -> tuple[int, int]:
    """(ns from vm_area_free to the callback that frees the VMA, vmas freed at 100 us)."""
    e = run(munmap_then_compute(grace_ns))
    trace = list(rows(e))
    queued = next(r for r in trace if r["event"] == "remove_mt:remove_vma")
    freed = next(r for r in trace if r["event"] == "rcu:callbacks" and r["a"] >= 1)
    early = Engine(munmap_then_compute(grace_ns))
    early.run_until(lambda t, i: t.row(i)["time_ns"] >= 100_000)
    return freed["time_ns"] - queued["time_ns"], early.k.vmas_freed


def test_raising_rcu_grace_ns_delays_vmas_freed() -> None:
    short_delay, short_freed = vma_free_delay(20_000)
    long_delay, long_freed = vma_free_delay(300_000)
    # munmap retires maple nodes (grace period 1 starts) just before vm_area_free,
    # which therefore waits for grace period 2: between one and two grace periods.
    assert 20_000 < short_delay < 2 * 20_000
    assert 300_000 < long_delay < 2 * 300_000
    assert short_freed == 1
    assert long_freed == 0
    # Both eventually free the VMA.
    for grace in (20_000, 300_000):
        assert run(munmap_then_compute(grace)).summary()["rcu"]["vmas_freed"] == 1


def test_exit_mmap_frees_without_rcu() -> None:
    e = run(
        make_scenario(
            vmas=[{"name": "A", "pages": 2}, {"name": "B", "pages": 2}],
            threads=[{"name": "T", "ops": ["exit"]}],
        )
    )
    s = e.summary()
    assert s["rcu"]["vmas_freed"] == 2
    assert s["rcu"]["grace_periods"] == 0  # reference §6.3: __vm_area_free, no call_rcu
    assert all(is_freed(e.k, vid) for vid in e.k.mm.vma_names())


def test_vma_end_read_drops_the_read_lock_inside_an_rcu_section() -> None:
    # reference §2.2: rcu_read_lock(); up_read(); rcu_read_unlock().
    e = Engine(
        make_scenario(
            vmas=[{"name": "A", "pages": 2, "anon_vma": True}],
            threads=[{"name": "T", "ops": [{"fault": {"vma": "A", "page": 0, "access": "write"}}]}],
        )
    )
    a = vid_of(e, "A")
    up = e.run_until(at("vma_end_read:up_read", 0))
    assert up is not None
    k = e.state_at(up + 1)
    assert k.rcu.in_section(0)
    assert 0 not in k.mm.vmas[a].vm_lock.reader_tids
    done = e.run_until(at("vma_end_read:rcu_read_unlock", 0), up)
    assert done == up + 1
    assert not e.state_at(done + 1).rcu.in_section(0)
    # Outside vma_end_read and lock_vma_under_rcu the faulting thread is never in RCU.
    e.run()
    for i in range(len(e.trace)):
        r = e.trace.row(i)
        if r["tid"] == 0 and r["event"] == "set_pte_at":
            assert not e.state_at(i + 1).rcu.in_section(0)


def test_without_rcu_vma_free_the_stale_reader_touches_a_freed_vma() -> None:
    # [v3 10/35] off: vm_area_free frees at once; the reader still inside
    # lock_vma_under_rcu then reads the freed VMA (invariant 7).
    e = run(fault_during_munmap().with_overrides(patches={"rcu_vma_free": False}))
    assert [inv for _, inv, _ in e.k.violations] == [7]
    # The VMA was freed by munmap itself, not by an RCU callback.
    assert e.summary()["rcu"]["vmas_freed"] == 1
    assert not [r for r in rows(e) if r["event"] == "rcu:callbacks" and r["a"] > 0]


def test_a_freed_vma_is_forgotten_once_nothing_refers_to_it() -> None:
    # After the RCU callback frees A, the kernel state no longer carries it (nor
    # its lock's cache line); its name stays for labelling old events.
    e = run(fault_during_munmap())
    a = vid_of(e, "A")
    assert a not in e.k.mm.vmas
    assert e.k.mm.freed_names[a] == "A"
    assert a not in e.k.lines
    assert e.k.mm.freed_held == []
    assert e.k.violations == []
    # With keep_freed the same run keeps the freed VMA for inspection.
    kept = run(fault_during_munmap(), keep_freed=True)
    assert kept.k.mm.vmas[a].state == "freed"
    assert kept.trace.sha256() == e.trace.sha256()


def test_a_freed_vma_a_thread_still_holds_stays_until_released() -> None:
    # rcu_vma_free off: munmap frees A while F is inside lock_vma_under_rcu holding
    # it, so A stays (state freed) for F's access to be reported as invariant 7.
    e = Engine(fault_during_munmap().with_overrides(patches={"rcu_vma_free": False}))
    a = vid_of(e, "A")
    free = e.run_until(at("remove_mt:remove_vma", 1))
    assert free is not None
    k = e.state_at(free + 1)
    assert k.mm.vmas[a].state == "freed"
    assert k.mm.freed_held == [a]
    e.run()
    assert [inv for _, inv, _ in e.k.violations] == [7]


def test_default_scenario_batches_its_callbacks_into_two_grace_periods() -> None:
    e = run(load_scenario("scenarios/default.yaml"))
    cbs = [r for r in rows(e) if r["event"] == "rcu:callbacks"]
    # Three call_rcu (two batches of dead maple nodes, then the VMA): the first
    # starts grace period 1, the other two come while it runs and share period 2.
    assert [r["note"] for r in cbs] == ["grace period 1", "grace period 2"]
    assert (cbs[0]["a"], cbs[1]["a"]) == (0, 1)  # the VMA runs with the second batch
    assert cbs[1]["time_ns"] - cbs[0]["time_ns"] == e.k.rcu.grace_ns
    assert e.summary()["rcu"]["grace_periods"] == 2
