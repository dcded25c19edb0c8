"""Results that must make sense to a reader of the reference (§2.8, §2.9, §3, §4.1)."""

from __future__ import annotations

from pathlib import Path

from kernel_helpers import (
    assert_clean,
    events,
    lvur_outcomes,
    make_scenario,
    nonzero,
    run,
    vid_of,
)

from vmaviz.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
ZERO = {"success": 0, "abort": 0, "retry": 0, "miss": 0}
HOLD_NS = 50_000


def writer_and_faulters():
    """T0 holds mmap_lock for write and write-locks A for 50 us; T1 writes every page
    of B and T2 every page of A, both starting 1 us later."""
    return make_scenario(
        vmas=[
            {"name": "A", "pages": 8, "anon_vma": True},
            {"name": "B", "pages": 8, "anon_vma": True},
        ],
        threads=[
            {"name": "W", "ops": [{"hold_mmap_write": {"ns": HOLD_NS, "vmas": ["A"]}}]},
            {"name": "FB", "start_ns": 1000, "ops": [{"touch": {"vma": "B", "pages": "0-7"}}]},
            {"name": "FA", "start_ns": 1000, "ops": [{"touch": {"vma": "A", "pages": "0-7"}}]},
        ],
        kernel={"cpus": 4},
    )


def test_hold_on_a_does_not_delay_faults_on_b_in_per_vma_mode() -> None:
    e = run(writer_and_faulters(), mode="per_vma")
    s = e.summary()
    w, fb, fa = s["threads"]
    assert fb["faults"] == 8
    assert fb["blocked_ns"] == 0
    assert fb["done_ns"] < HOLD_NS  # finished while the writer still held mmap_lock
    unlock = events(e, "mmap_write_unlock", tid=0)[0]
    assert all(r["step"] < unlock["step"] for r in events(e, "fault:vma_lock_success", tid=1))
    # The faults on A itself (write-locked) do wait: vma_locked, then mmap_read_lock.
    assert lvur_outcomes(e, 2)[0] == "abort:vma_locked"
    assert fa["blocked_ns"] > HOLD_NS // 2
    assert fa["done_ns"] > w["done_ns"] - 1
    assert_clean(e)


def test_hold_on_a_delays_faults_on_b_in_mmap_lock_mode() -> None:
    e = run(writer_and_faulters(), mode="mmap_lock")
    s = e.summary()
    _, fb, _ = s["threads"]
    assert fb["faults"] == 8
    assert fb["blocked_ns"] > HOLD_NS // 2
    assert fb["done_ns"] > HOLD_NS
    assert s["vma_lock"] == ZERO
    # Per-VMA mode finishes B's work earlier than mmap_lock mode.
    per_vma = run(writer_and_faulters(), mode="per_vma").summary()
    assert per_vma["threads"][1]["done_ns"] < fb["done_ns"]
    assert per_vma["faults"]["latency_ns"]["max"] <= s["faults"]["latency_ns"]["max"]


def test_bundled_hold_write_other_vma_scenario() -> None:
    sc = load_scenario(ROOT / "scenarios" / "hold-write-other-vma.yaml")
    per_vma = run(sc, mode="per_vma").summary()
    mmap = run(sc, mode="mmap_lock").summary()
    for th in per_vma["threads"][1:]:
        assert th["blocked_ns"] == 0
    for th in mmap["threads"][1:]:
        assert th["blocked_ns"] > 0
    assert per_vma["vma_lock"] == {**ZERO, "success": 32}


def test_first_fault_without_anon_vma_aborts_then_later_faults_succeed() -> None:
    sc = make_scenario(
        vmas=[{"name": "buf", "pages": 8, "anon_vma": False}],
        threads=[{"name": "T", "ops": [{"touch": {"vma": "buf", "pages": "0-3"}}]}],
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["abort:no_anon_vma", "locked", "locked", "locked"]
    assert e.k.vma_lock == {**ZERO, "abort": 1, "success": 3}
    assert nonzero(e.k.abort_reasons) == {"no_anon_vma": 1}
    # anon_vma_prepare runs in the fallback, under mmap_lock held for read.
    (prep,) = events(e, "anon_vma_prepare")
    (locked,) = [r for r in events(e) if r["event"] == "fault:mmap_read_trylock_ok"]
    (unlock,) = events(e, "mmap_read_unlock")
    assert locked["step"] < prep["step"] < unlock["step"]
    assert e.summary()["vmas"][0]["anon_vma"] is True
    assert e.k.fault_stats["via_mmap_lock"] == 1
    assert e.k.fault_stats["via_vma_lock"] == 3
    assert_clean(e)


def test_bundled_first_fault_scenario() -> None:
    s = run(load_scenario(ROOT / "scenarios" / "first-fault-anon-vma.yaml")).summary()
    assert s["vma_lock"] == {**ZERO, "abort": 1, "success": 1}
    assert nonzero(s["abort_reasons"]) == {"no_anon_vma": 1}


def test_read_faults_leave_anon_vma_null_and_keep_falling_back() -> None:
    sc = make_scenario(
        vmas=[{"name": "buf", "pages": 8, "anon_vma": False}],
        threads=[
            {"name": "T", "ops": [{"touch": {"vma": "buf", "pages": "0-1", "access": "read"}}]}
        ],
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["abort:no_anon_vma", "abort:no_anon_vma"]


def test_file_backed_faults_abort_with_not_anonymous() -> None:
    sc = make_scenario(
        vmas=[
            {"name": "lib", "pages": 4, "prot": "r", "file": "libfoo.so"},
            {"name": "heap", "pages": 4, "anon_vma": True},
        ],
        threads=[
            {"name": "T0", "ops": [{"touch": {"vma": "lib", "pages": "0-3", "access": "read"}}]},
            {"name": "T1", "ops": [{"touch": {"vma": "heap", "pages": "0-3"}}]},
        ],
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["abort:not_anonymous"] * 4
    assert lvur_outcomes(e, 1) == ["locked"] * 4
    assert e.k.vma_lock == {**ZERO, "abort": 4, "success": 4}
    assert nonzero(e.k.abort_reasons) == {"not_anonymous": 4}
    assert e.summary()["threads"][0]["faults"] == 4
    assert len(events(e, "do_fault:file", tid=0)) == 4
    assert_clean(e)
    bundled = run(load_scenario(ROOT / "scenarios" / "file-backed-fault.yaml")).summary()
    assert nonzero(bundled["abort_reasons"]) == {"not_anonymous": 8}


def test_fault_on_a_swapped_page_counts_a_retry() -> None:
    sc = make_scenario(
        vmas=[{"name": "d", "pages": 4, "anon_vma": True}],
        threads=[
            {
                "name": "T",
                "ops": [
                    {"touch": {"vma": "d", "pages": "0-3"}},
                    {"swap_out": {"vma": "d", "pages": "1"}},
                    {"fault": {"vma": "d", "page": 1, "access": "read"}},
                    {"fault": {"vma": "d", "page": 1, "access": "read"}},
                ],
            }
        ],
    )
    e = run(sc)
    # 4 first touches succeed; the swapped page RETRYs once and is swapped in under
    # mmap_lock; touching it again is an ordinary (spurious) success.
    assert e.k.vma_lock == {**ZERO, "success": 5, "retry": 1}
    assert len(events(e, "do_swap_page:retry_vma_lock")) == 1
    assert len(events(e, "do_swap_page:swap_in")) == 1
    assert e.k.fault_stats["via_mmap_lock"] == 1
    assert_clean(e)
    bundled = run(load_scenario(ROOT / "scenarios" / "swap-retry.yaml")).summary()
    assert bundled["vma_lock"] == {**ZERO, "success": 8, "retry": 4}


def test_kernel_mode_faults_count_nothing() -> None:
    sc = make_scenario(
        vmas=[{"name": "d", "pages": 4, "anon_vma": True}],
        threads=[
            {
                "name": "T",
                "ops": [
                    {"fault": {"vma": "d", "page": p, "access": "write", "user": False}}
                    for p in range(4)
                ],
            }
        ],
    )
    e = run(sc)
    s = e.summary()
    assert s["vma_lock"] == ZERO
    assert set(s["abort_reasons"].values()) == {0}
    assert s["faults"]["kernel_mode"] == 4
    assert s["faults"]["via_mmap_lock"] == 4
    assert s["faults"]["total"] == 4
    assert len(e.k.mm.vmas[vid_of(e, "d")].pages) == 4
    assert_clean(e)


def test_fault_vs_munmap_bundled_scenario_makes_sense() -> None:
    s = run(load_scenario(ROOT / "scenarios" / "fault-vs-munmap.yaml")).summary()
    vl = s["vma_lock"]
    assert s["faults"]["total"] == 32
    # Every fault either succeeded under the VMA lock or aborted once (+ MISSes).
    assert vl["success"] + vl["abort"] + vl["retry"] == 32
    assert vl["success"] > 0 and s["abort_reasons"]["no_vma"] > 0
    # The faults after the unmap get SIGSEGV; the victim is gone and freed.
    assert s["faults"]["sigsegv"] >= s["abort_reasons"]["no_vma"]
    assert [v["name"] for v in s["vmas"]] == ["other"]
    assert s["rcu"]["vmas_freed"] == 1
    assert s["invariant_violations"] == []
