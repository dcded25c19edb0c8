"""Properties of the deterministic engine on random multi-threaded scenarios.

The scenarios come from ``kernel_helpers.random_scenario_doc``: every op of the
schema, loops, names used before (or after) another thread maps them, new names
of mremaps that may fail, a stack to grow, both modes, all four arches.  With
every fix patch switched on (``patches: {all: true}``) no run may raise, every
run must finish within ``STEP_BOUND`` steps, the state after every step must
satisfy the reference §11 invariants (``check_state``, plus the violations the
model records as they happen), the same scenario and seed must give the same
trace, and ``state_at`` (keyframes + replay) must equal a fresh run stepped the
same number of times.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_helpers import (
    RandomPicker,
    make_scenario,
    random_scenario_doc,
    rows,
    scenario_from_doc,
)

from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import Kernel
from vmaviz.model.rwsem import RwSem
from vmaviz.model.sched import DONE
from vmaviz.scenario import Scenario

STEP_BOUND = 100_000
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ARCH_SETTINGS = settings(SETTINGS, max_examples=100)


class DrawPicker:
    """The scenario generator's choices (``kernel_helpers.Picker``) drawn by hypothesis."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[Any]) -> Any:
        return self.draw(st.sampled_from(list(options)))


@st.composite
def scenarios(draw: st.DrawFn, arch: str | None = None) -> tuple[Scenario, str]:
    """A random valid scenario (every op of the schema; see ``random_scenario_doc``).

    Hypothesis draws each choice, so a failing scenario shrinks to a small one.
    """
    doc, mode = random_scenario_doc(DrawPicker(draw), arch=arch)
    return scenario_from_doc(doc), mode


def seeded_scenario(seed: int, arch: str | None = None) -> tuple[Scenario, str]:
    """The generator driven by ``random.Random(seed)``: larger, more varied scenarios
    than hypothesis' own choices give for the same number of examples."""
    doc, mode = random_scenario_doc(RandomPicker(seed), arch=arch)
    return scenario_from_doc(doc), mode


def any_scenarios(arch: str) -> st.SearchStrategy[tuple[Scenario, str]]:
    return st.one_of(
        scenarios(arch), st.integers(0, 2**32).map(lambda seed: seeded_scenario(seed, arch))
    )


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


def check_sem(sem: RwSem) -> None:
    """Invariant 14 and its VMA-lock twin, and the rwsem's own bookkeeping."""
    assert not (sem.writer is not None and sem.readers), sem
    assert sem.readers == len(sem.reader_tids) >= 0, sem
    assert sem.writer not in sem.reader_tids, sem
    assert all(w.tid != sem.writer for w in sem.waiters), sem


def check_state(k: Kernel, last_seq: int) -> None:
    """The §11 invariants that the state after any step must satisfy.

    The model records the ones about transitions (1, 3-8, 10-12) as violations
    when they happen; these are the ones about the state itself.
    """
    mm = k.mm
    check_sem(mm.mmap_lock)
    for v in mm.vmas.values():
        check_sem(v.vm_lock)
    # Invariant 9: each VMA once in the tree, at exactly [vm_start, vm_end - 1], live
    # (not queued for an RCU free), and map_count counts them.
    seen: set[int] = set()
    for lo, hi, v in mm.mm_mt.entries():
        assert (lo, hi) == (v.vm_start, v.vm_end - 1), (v.label(), lo, hi)
        assert v.vid not in seen, f"{v.label()} twice in the tree"
        assert v.state == "live", v.label()
        seen.add(v.vid)
    assert mm.map_count == len(seen), (mm.map_count, sorted(seen))
    if k.per_vma:
        # Invariants 2 and 13: mm_lock_seq moves by one at a time, and no VMA is
        # write-locked while nobody holds mmap_lock for write.
        assert mm.mm_lock_seq in (last_seq, last_seq + 1)
        if mm.mmap_lock.writer is None:
            locked = [v.label() for v in mm.vmas.values() if mm.is_write_locked(v)]
            assert not locked, locked
    # Every thread's kernel stack is consistent with its state.
    for th in k.threads:
        assert (th.state == DONE) == (th.done_ns >= 0), th.name
        if th.state == DONE:
            assert not th.frames, th.name


def check_invariants_and_finish(case: tuple[Scenario, str]) -> None:
    sc, mode = case
    e = Engine(sc, mode=mode, max_steps=STEP_BOUND)
    seq = e.k.mm.mm_lock_seq
    while e.step():
        r = e.trace.row(len(e.trace) - 1)
        if r["event"] == "vma_start_write:seq_set":
            # vma_start_write only ever targets a VMA that is still attached and
            # not queued for freeing (munmap/exit/merges lock before detaching).
            vma = e.k.mm.vmas[r["a"]]
            assert not vma.detached and vma.state == "live", (r, vma.label())
        check_state(e.k, seq)
        seq = e.k.mm.mm_lock_seq
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
    # With the 6.5 TCP patch tcp_zerocopy_receive's find_tcp_vma calls
    # lock_vma_under_rcu too, whose failures count as VMA_LOCK_ABORT as well.
    vl = s["vma_lock"]
    tcp_lookups = sum(
        1
        for r in rows(e)
        if r["event"] == "lock_vma_under_rcu:rcu_read_lock" and "tcp_zerocopy_receive" in r["stack"]
    )
    assert vl["success"] + vl["retry"] <= s["faults"]["total"]
    assert vl["success"] + vl["abort"] + vl["retry"] <= s["faults"]["total"] + tcp_lookups
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
    ARCH_SETTINGS(given(any_scenarios(arch))(check_invariants_and_finish))()


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
