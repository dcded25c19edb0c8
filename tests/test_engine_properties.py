"""Properties of the deterministic engine on random multi-threaded scenarios.

With every fix patch switched on (``patches: {all: true}``) the model must never
break a reference §11 invariant, every run must finish, the same scenario and
seed must give the same trace, and ``state_at`` (keyframes + replay) must equal a
fresh run stepped the same number of times.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_helpers import make_scenario

from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import Kernel
from vmaviz.model.sched import DONE
from vmaviz.scenario import Scenario

STEP_BOUND = 100_000
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ARCH_SETTINGS = settings(SETTINGS, max_examples=30)


@st.composite
def vma_specs(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(2, 4))
    vmas = []
    for i in range(n):
        spec: dict[str, Any] = {
            "name": f"V{i}",
            "pages": draw(st.integers(2, 8)),
            "prot": draw(st.sampled_from(["rw", "rw", "r", "rwx"])),
            "anon_vma": draw(st.booleans()),
        }
        if draw(st.integers(0, 5)) == 0:
            spec["file"] = "lib.so"
        vmas.append(spec)
    return vmas


@st.composite
def page_range(draw: st.DrawFn, pages: int) -> str:
    lo = draw(st.integers(0, pages - 1))
    hi = draw(st.integers(lo, pages - 1))
    return f"{lo}-{hi}"


@st.composite
def an_op(draw: st.DrawFn, vmas: list[dict[str, Any]], fresh: list[int]) -> Any:
    v = draw(st.sampled_from(vmas))
    name, pages = v["name"], v["pages"]
    kind = draw(
        st.sampled_from(
            [
                "fault",
                "fault",
                "touch",
                "mmap",
                "munmap",
                "mprotect",
                "madvise",
                "hold_mmap_write",
                "compute",
                "swap_out",
                "uffd_register",
            ]
        )
    )
    if kind == "fault":
        return {
            "fault": {
                "vma": name,
                "page": draw(st.integers(0, pages - 1)),
                "access": draw(st.sampled_from(["read", "write"])),
                "user": draw(st.sampled_from([True, True, True, False])),
            }
        }
    if kind == "touch":
        return {"touch": {"vma": name, "pages": draw(page_range(pages))}}
    if kind == "mmap":
        fresh[0] += 1
        return {
            "mmap": {
                "name": f"M{fresh[0]}",
                "pages": draw(st.integers(1, 4)),
                "prot": draw(st.sampled_from(["rw", "r"])),
            }
        }
    if kind == "munmap":
        if draw(st.booleans()):
            return {"munmap": {"vma": name}}
        return {"munmap": {"vma": name, "pages": draw(page_range(pages))}}
    if kind == "mprotect":
        return {
            "mprotect": {
                "vma": name,
                "pages": draw(page_range(pages)),
                "prot": draw(st.sampled_from(["r", "rw", "rx"])),
            }
        }
    if kind == "madvise":
        return {
            "madvise": {
                "vma": name,
                "advice": draw(st.sampled_from(["dontneed", "hugepage", "willneed"])),
            }
        }
    if kind == "hold_mmap_write":
        names = draw(st.lists(st.sampled_from([x["name"] for x in vmas]), max_size=2, unique=True))
        return {"hold_mmap_write": {"ns": draw(st.integers(1000, 20_000)), "vmas": names}}
    if kind == "compute":
        return {"compute": {"ns": draw(st.integers(100, 10_000))}}
    if kind == "swap_out":
        return {"swap_out": {"vma": name, "pages": draw(page_range(pages))}}
    return {"uffd_register": {"vma": name}}


@st.composite
def scenarios(draw: st.DrawFn, arch: str | None = None) -> tuple[Scenario, str]:
    vmas = draw(vma_specs())
    fresh = [0]
    threads = []
    for t in range(draw(st.integers(2, 6))):
        ops = draw(st.lists(an_op(vmas, fresh), min_size=1, max_size=5))
        threads.append({"name": f"T{t}", "start_ns": draw(st.integers(0, 5000)), "ops": ops})
    kernel = {
        "cpus": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**32)),
        "arch": arch or draw(st.sampled_from(["x86", "arm64", "powerpc", "s390"])),
        "patches": {"all": True},
    }
    mode = draw(st.sampled_from(["per_vma", "mmap_lock"]))
    return make_scenario(vmas=vmas, threads=threads, kernel=kernel), mode


def fingerprint(k: Kernel) -> dict[str, Any]:
    """The fields compared between ``state_at`` and a fresh run."""
    return {
        "now": k.now,
        "steps": k.steps,
        "mm_lock_seq": k.mm.mm_lock_seq,
        "map_count": k.mm.map_count,
        "vmas": {
            vid: (v.vm_start, v.vm_end, v.vm_lock_seq, v.vm_flags, v.detached, v.state)
            for vid, v in k.mm.vmas.items()
        },
        "tree": [(lo, hi, e.vid) for lo, hi, e in k.mm.mm_mt.entries()],
        "vma_lock": dict(k.vma_lock),
        "abort_reasons": dict(k.abort_reasons),
        "fault_stats": dict(k.fault_stats),
        "threads": [(t.state, t.op_no, t.blocked_ns, t.faults) for t in k.threads],
        "mmap_lock": (
            k.mm.mmap_lock.readers,
            k.mm.mmap_lock.writer,
            [(w.tid, w.kind) for w in k.mm.mmap_lock.waiters],
        ),
        "rcu_pending": len(k.rcu.pending),
        "vmas_freed": k.vmas_freed,
        "violations": list(k.violations),
    }


def check_invariants_and_finish(case: tuple[Scenario, str]) -> None:
    sc, mode = case
    e = Engine(sc, mode=mode, max_steps=STEP_BOUND)
    while e.step():
        r = e.trace.row(len(e.trace) - 1)
        if r["event"] == "vma_start_write:seq_set":
            # vma_start_write only ever targets a VMA that is still attached and
            # not queued for freeing (munmap/exit/merges lock before detaching).
            vma = e.k.mm.vmas[r["a"]]
            assert not vma.detached and vma.state == "live", (r, vma.label())
    assert e.finished
    s = e.summary()
    assert s["invariant_violations"] == [], s["invariant_violations"]
    assert 0 < s["steps"] < STEP_BOUND
    assert all(t.state == DONE for t in e.k.threads)
    assert all(th["done_ns"] >= 0 for th in s["threads"])
    # Everything is unlocked at the end: no reader, writer or waiter anywhere.
    sem = e.k.mm.mmap_lock
    assert sem.is_free and not sem.waiters
    for v in e.k.mm.vmas.values():
        assert v.vm_lock.is_free and not v.vm_lock.waiters
    assert not e.k.rcu.nesting
    # Every queued RCU callback ran.
    assert e.k.rcu.pending == []
    assert all(v.state == "freed" for v in e.k.mm.vmas.values() if v.detached)
    # Counting (invariant 11): each fault attempt counts at most one of the three.
    vl = s["vma_lock"]
    assert vl["success"] + vl["abort"] + vl["retry"] <= s["faults"]["total"]
    assert sum(s["abort_reasons"].values()) == vl["abort"]
    if mode == "mmap_lock":
        assert vl == {"success": 0, "abort": 0, "retry": 0, "miss": 0}
        assert s["mm_lock_seq"] is None
    else:
        assert s["mm_lock_seq"] == e.k.mm.mmap_lock.stats["write_acquired"] + sum(
            1 for i in range(len(e.trace)) if e.trace.row(i)["event"] == "mm_drop_all_locks"
        )


@pytest.mark.parametrize("arch", ["x86", "arm64", "powerpc", "s390"])
def test_random_scenarios_keep_the_invariants_and_finish(arch: str) -> None:
    ARCH_SETTINGS(given(scenarios(arch))(check_invariants_and_finish))()


@SETTINGS
@given(scenarios())
def test_same_scenario_and_seed_give_the_same_trace(case: tuple[Scenario, str]) -> None:
    sc, mode = case
    a = Engine(sc, mode=mode).run().summary()
    b = Engine(sc, mode=mode).run().summary()
    assert a["trace_sha256"] == b["trace_sha256"]
    assert a == b


@SETTINGS
@given(scenarios(), st.integers(1, 97))
def test_the_run_loop_and_single_steps_give_the_same_trace(
    case: tuple[Scenario, str], chunk: int
) -> None:
    # run() inlines step() for speed; both paths, and runs cut into chunks (the
    # loop's locals written back and picked up again), must agree step for step.
    sc, mode = case
    whole = Engine(sc, mode=mode, keyframe_every=64).run()
    stepped = Engine(sc, mode=mode, keyframe_every=64)
    while stepped.step():
        pass
    chunked = Engine(sc, mode=mode, keyframe_every=64)
    while not chunked.finished:
        chunked.run(max_steps=chunk)
    assert stepped.trace.sha256() == whole.trace.sha256() == chunked.trace.sha256()
    assert fingerprint(stepped.k) == fingerprint(whole.k) == fingerprint(chunked.k)

    # The keyframes a run takes are the states a stepped run passes through.
    def last_step(k: Kernel) -> tuple[Any, ...]:
        return (k.step_tid, k.step_cpu, k.step_op, k.step_sid, k.step_fid, k.pending)

    for n, blob in whole.keyframes.items():
        kf, ref = pickle.loads(blob), stepped.state_at(n)
        assert fingerprint(kf) == fingerprint(ref)
        assert last_step(kf) == last_step(ref)


def test_different_seeds_usually_give_different_traces() -> None:
    def sc(seed: int) -> Scenario:
        return make_scenario(
            vmas=[
                {"name": "A", "pages": 8, "anon_vma": True},
                {"name": "B", "pages": 8, "anon_vma": True},
            ],
            threads=[
                {"name": "T0", "ops": [{"touch": {"vma": "A", "pages": "0-7"}}]},
                {"name": "T1", "ops": [{"touch": {"vma": "A", "pages": "0-7"}}]},
                {"name": "T2", "ops": [{"mprotect": {"vma": "A", "pages": "2-3", "prot": "r"}}]},
                {"name": "T3", "ops": [{"munmap": {"vma": "B", "pages": "4-7"}}]},
            ],
            kernel={"seed": seed, "cpus": 4},
        )

    hashes = {Engine(sc(seed)).run().summary()["trace_sha256"] for seed in range(1, 9)}
    assert len(hashes) >= 6


@SETTINGS
@given(scenarios(), st.data())
def test_state_at_equals_a_fresh_run_stepped_n_times(
    case: tuple[Scenario, str], data: st.DataObject
) -> None:
    sc, mode = case
    e = Engine(sc, mode=mode, keyframe_every=64).run()
    total = len(e.trace)
    ns = data.draw(st.lists(st.integers(0, total), min_size=1, max_size=3))
    for n in ns:
        fresh = Engine(sc, mode=mode, keyframe_every=64)
        for _ in range(n):
            assert fresh.step()
        assert fingerprint(e.state_at(n)) == fingerprint(fresh.k)
    # state_at never disturbs the run it was taken from.
    assert len(e.trace) == total
    assert fingerprint(e.state_at(total)) == fingerprint(e.k)


def test_keyframes_leave_out_the_fault_latency_log() -> None:
    # The log grows with every fault: in the keyframes it would make each one
    # larger than the last. The live kernel keeps it whole for summary().
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 64, "anon_vma": True}],
        threads=[{"name": "t", "ops": [{"touch": {"vma": "A", "pages": "0-63"}}]}],
    )
    e = Engine(sc, keyframe_every=32).run()
    faults = e.summary()["faults"]
    assert faults["total"] == 64 == len(e.k.fault_latencies)
    assert faults["latency_ns"]["max"] == max(e.k.fault_latencies) > 0
    last = max(e.keyframes)
    assert last > 0 and len(pickle.loads(e.keyframes[last]).fault_latencies) == 0
    # A restored state's log holds only the faults it replayed.
    assert len(e.state_at(len(e.trace)).fault_latencies) < 64
