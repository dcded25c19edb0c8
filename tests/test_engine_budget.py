"""A run's bounds: its budget (steps, time, memory), its keyframes' bytes, its per-step checks.

Time and memory are never measured here: the budget's clock and RSS reader are
injected, and costs are bounded by counting (calls, values scanned, bytes kept).
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import test_engine_properties as tep
from kernel_helpers import make_scenario

from vmaviz.engine import engine as E
from vmaviz.engine.api import simulate
from vmaviz.engine.engine import (
    BUDGET_CHECK_STEPS,
    KEYFRAME_BYTES_PER_STEP,
    Engine,
    EngineError,
    RunBudget,
    RunBudgetExceeded,
    read_rss_bytes,
)
from vmaviz.model import kernel as K
from vmaviz.model.maple import Node
from vmaviz.scenario import Scenario, load_scenario_text

GIB = 1 << 30


def busy(rounds: int = 400) -> Scenario:
    """Two threads that map, fault, mprotect and unmap for ``rounds`` rounds (~40 steps each)."""
    loop = [
        {"mmap": {"name": "tmp${i}", "pages": 2}},
        {"touch": {"vma": "tmp${i}", "pages": "0-1"}},
        {"mprotect": {"vma": "own${i}", "prot": "r"}},
        {"mprotect": {"vma": "own${i}", "prot": "rw"}},
        {"munmap": {"vma": "tmp${i}"}},
    ]
    return make_scenario(
        vmas=[{"name": f"own{i}", "pages": 4, "anon_vma": True} for i in range(2)],
        threads=[{"name": "T${i}", "count": 2, "ops": [{"loop": {"times": rounds, "ops": loop}}]}],
    )


class Ticks:
    """A fake clock: each call returns the next value of ``step`` seconds apart."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return (self.calls - 1) * self.step


def trace_prefix_equal(a: Engine, b: Engine, n: int) -> bool:
    a.trace.flush()
    b.trace.flush()
    return (
        all(getattr(a.trace, c)[:n] == getattr(b.trace, c)[:n] for c in a.trace.COLUMNS)
        and a.trace.codes[: len(b.trace.codes)] == b.trace.codes[: len(a.trace.codes)]
    )


# ------------------------------------------------------------------- budget


def test_the_step_limit_stops_a_run_with_a_budget_error() -> None:
    with pytest.raises(RunBudgetExceeded) as info:
        Engine(busy(), max_steps=500).run()
    err = info.value
    assert isinstance(err, EngineError)
    assert (err.budget, err.limit, err.step) == ("steps", 500, 500)
    assert str(err).startswith("step limit reached: 500 steps")
    assert "needs more than 500 steps" in str(err)


def test_the_time_budget_stops_the_run_loop_at_a_check() -> None:
    full = Engine(busy()).run()
    assert len(full.trace) > 4 * BUDGET_CHECK_STEPS
    clock = Ticks(1.0)
    e = Engine(busy(), budget=RunBudget(seconds=2.5, clock=clock))
    with pytest.raises(RunBudgetExceeded) as info:
        e.run()
    err = info.value
    # The clock is read at the start (0 s) and every BUDGET_CHECK_STEPS steps:
    # 1 s, 2 s, then 3 s > 2.5 s at the third check.
    stop = 3 * BUDGET_CHECK_STEPS
    assert (err.budget, err.limit, err.used, err.step) == ("seconds", 2.5, 3.0, stop)
    assert clock.calls == 4
    assert len(e.trace) == stop
    msg = str(err)
    assert msg.startswith("time limit reached: this scenario needs more than 2.5 s of run time")
    assert f"stopped at step {stop:,} of the {e.max_steps:,} allowed" in msg
    # The budget does not change what the run did, and leaves a consistent state.
    assert trace_prefix_equal(e, full, stop)
    assert tep.fingerprint(e.k) == tep.fingerprint(full.state_at(stop))


def test_the_memory_budget_stops_a_stepped_run_too() -> None:
    readings = iter([GIB, GIB, 3 * GIB])
    calls: list[int] = []

    def rss() -> int:
        calls.append(1)
        return next(readings)

    e = Engine(busy(), budget=RunBudget(rss_bytes=2 * GIB, rss=rss))
    with pytest.raises(RunBudgetExceeded) as info:
        while e.step():
            pass
    err = info.value
    assert (err.budget, err.limit, err.used) == ("memory", 2 * GIB, 3 * GIB)
    assert err.step == len(e.trace) == 3 * BUDGET_CHECK_STEPS
    assert len(calls) == 3
    assert "memory limit reached: this run needs more than 2.00 GiB of memory" in str(err)
    assert "the process used 3.00 GiB" in str(err)


def test_budget_checks_are_counted_per_check_interval_not_per_step() -> None:
    clock = Ticks(0.0)
    reads: list[int] = []

    def rss() -> int:
        reads.append(1)
        return 0

    e = Engine(busy(), budget=RunBudget(seconds=10.0, rss_bytes=GIB, clock=clock, rss=rss)).run()
    steps = len(e.trace)
    assert e.finished and steps > 4 * BUDGET_CHECK_STEPS
    assert len(reads) == steps // BUDGET_CHECK_STEPS
    assert clock.calls == 1 + steps // BUDGET_CHECK_STEPS
    # And a budget leaves the trace as it was.
    assert e.trace.sha256() == Engine(busy()).run().trace.sha256()


def test_simulate_takes_the_budget() -> None:
    with pytest.raises(RunBudgetExceeded, match="time limit reached"):
        simulate(busy(), budget=RunBudget(seconds=0.5, clock=Ticks(1.0)))
    with pytest.raises(ValueError, match="either budget"):
        simulate(busy(), budget=RunBudget(), max_seconds=1.0)
    # A generous real budget lets the run finish.
    run = simulate(busy(20), max_seconds=3600.0, max_rss_bytes=1 << 50)
    assert run.engine.finished


def test_an_engine_with_an_injected_budget_still_pickles() -> None:
    # The app caches finished runs pickled; a fake clock (a lambda) must not stop it.
    e = Engine(busy(20), budget=RunBudget(seconds=60.0, clock=lambda: 0.0, rss=lambda: 0)).run()
    copy = pickle.loads(pickle.dumps(e))
    assert copy.budget.seconds == 60.0 and copy.budget.clock is RunBudget().clock
    assert copy.trace.sha256() == e.trace.sha256()
    assert tep.fingerprint(copy.state_at(len(e.trace))) == tep.fingerprint(e.k)


def test_the_rss_reader_reads_this_process() -> None:
    # The budget's default reader: /proc/self/statm, in bytes (a page or more).
    rss = read_rss_bytes()
    assert rss >= 4096
    blob = bytearray(64 << 20)
    blob[::4096] = b"x" * len(blob[::4096])
    assert read_rss_bytes() > rss + (32 << 20)
    del blob


# ---------------------------------------------------------------- keyframes


def test_keyframes_are_thinned_to_their_budget_and_state_at_stays_exact() -> None:
    sc = busy(300)
    e = Engine(sc, keyframe_every=16, keyframe_budget=60_000).run()
    total = len(e.trace)
    steps = sorted(e.keyframes)
    sizes = {n: len(b) for n, b in e.keyframes.items()}
    assert e.keyframe_interval > 16
    assert e.keyframe_bytes == sum(s for n, s in sizes.items() if n) <= e.keyframe_budget
    # Thinning keeps every keyframe on the interval and none further apart than it.
    assert all(n % e.keyframe_interval == 0 for n in steps)
    assert all(b - a <= e.keyframe_interval for a, b in itertools.pairwise(steps))
    assert total - steps[-1] < e.keyframe_interval
    # Unthinned, the same run keeps far more.
    plain = Engine(sc, keyframe_every=16, keyframe_budget=1 << 40).run()
    assert sum(map(len, plain.keyframes.values())) > 4 * e.keyframe_budget
    # state_at replays from a kept keyframe: still the state of a fresh run.
    for n in (0, 1, 17, steps[1] - 1, steps[1], steps[-1] + 3, total // 2, total):
        n = min(n, total)
        fresh = Engine(sc)
        for _ in range(n):
            assert fresh.step()
        assert tep.fingerprint(e.state_at(n)) == tep.fingerprint(fresh.k)
    # And the kept keyframes are the states the run passed through.
    for n in steps[1:4]:
        assert tep.fingerprint(pickle.loads(e.keyframes[n])) == tep.fingerprint(plain.state_at(n))


def test_a_big_kernel_widens_the_keyframe_interval_from_the_start() -> None:
    # 2,000 VMAs pickle to hundreds of kB: at one keyframe per 16 steps that
    # would be far more than KEYFRAME_BYTES_PER_STEP.
    vmas = [{"name": f"v{i}", "pages": 1, "anon_vma": True} for i in range(2000)]
    sc = make_scenario(vmas=vmas, threads=[{"name": "t", "ops": [{"exit": {}}]}])
    e = Engine(sc, keyframe_every=16)
    kf0 = len(e.keyframes[0])
    assert kf0 > 16 * KEYFRAME_BYTES_PER_STEP
    assert e.keyframe_interval * KEYFRAME_BYTES_PER_STEP >= kf0
    assert e.keyframe_interval // 2 * KEYFRAME_BYTES_PER_STEP < kf0
    e.run()
    assert e.finished and e.k.violations == []
    assert all(
        len(b) <= e.keyframe_interval * KEYFRAME_BYTES_PER_STEP for b in e.keyframes.values()
    )
    assert tep.fingerprint(e.state_at(len(e.trace) - 5)) == tep.fingerprint(
        Engine(sc).run(max_steps=len(e.trace) - 5).k
    )


# ------------------------------------------------- invariant 9, incrementally


def many_vmas(n: int = 120, rounds: int = 40) -> Scenario:
    """``n`` VMAs (a tree of height 3) and one thread that mprotects one of them over and over."""
    return make_scenario(
        vmas=[{"name": f"v{i}", "pages": 2, "anon_vma": True} for i in range(n)],
        threads=[
            {
                "name": "t",
                "ops": [
                    {
                        "loop": {
                            "times": rounds,
                            "ops": [
                                {"mprotect": {"vma": "v3", "pages": "0", "prot": "r"}},
                                {"mprotect": {"vma": "v3", "pages": "0", "prot": "rw"}},
                            ],
                        }
                    }
                ],
            }
        ],
    )


def store_steps(e: Engine, on_store: Callable[[int, int, Any], None]) -> list[int]:
    """Wrap the run's tree so ``on_store`` runs after each store; returns the steps of stores."""
    mt = e.k.mm.mm_mt
    real = mt.store_range
    seen: list[int] = []

    def store_range(first: int, last: int, entry: Any, **kw: Any) -> Any:
        res = real(first, last, entry, **kw)
        seen.append(e.k.steps - 1)
        on_store(first, last, res)
        return res

    mt.store_range = store_range  # type: ignore[method-assign]
    return seen


def test_a_store_that_breaks_the_tree_where_it_wrote_is_reported_at_its_step() -> None:
    e = Engine(many_vmas(), keyframe_every=E.NO_KEYFRAMES)
    e.run(max_steps=200)
    assert e.k.violations == []

    def break_leaf(first: int, last: int, res: Any) -> None:
        if len(seen) == 2:
            # What a buggy write would leave: the stored leaf's pivots out of order.
            leaf = e.k.mm.mm_mt._leaf_for(first)
            assert leaf is not None
            leaf.pivot[0], leaf.pivot[1] = leaf.pivot[1], leaf.pivot[0]

    seen = store_steps(e, break_leaf)
    e.run()
    assert len(seen) >= 3
    first = e.k.violations[0]
    assert first[0] == seen[1] and first[1] == 9
    assert "maple tree invalid after" in first[2] and "not increasing" in first[2]


def test_a_break_outside_the_stores_is_found_by_the_periodic_and_final_full_checks() -> None:
    e = Engine(many_vmas(rounds=200), keyframe_every=E.NO_KEYFRAMES)
    e.run(max_steps=50)
    mt = e.k.mm.mm_mt
    assert mt.height >= 2 and e.k.violations == []
    # A leaf far from v3 (the only VMA the thread changes) loses its order.  Its
    # VMAs lie side by side, so its largest gap (0), which the stores' checks
    # read off it for its parent's gap, stays the same.
    live = e.k.mm.live_vmas()
    far = mt._leaf_for(live[len(live) // 2].vm_start)
    assert isinstance(far, Node) and None not in far.slot[: far.data_end() + 1]
    assert isinstance(far, Node) and far is not mt._leaf_for(e.k.resolve("v3"))
    far.pivot[0], far.pivot[1] = far.pivot[1], far.pivot[0]
    seen = store_steps(e, lambda *_: None)
    e.run()
    periodic = [v for v in e.k.violations if "periodic full check" in v[2]]
    final = [v for v in e.k.violations if "at the end of the run" in v[2]]
    assert periodic and final and len(e.k.violations) == len(periodic) + len(final)
    # The first full check comes within FULL_MAPLE_CHECK_STORES stores of the break.
    assert periodic[0][0] in seen[: K.FULL_MAPLE_CHECK_STORES]
    assert all("not increasing" in v[2] for v in e.k.violations)
    # The final check runs as the last thread exits (only RCU callbacks follow).
    assert e.trace.row(final[0][0])["event"] == "exit"
    assert {e.trace.row(i)["event"] for i in range(final[0][0] + 1, len(e.trace))} <= {
        "rcu:callbacks"
    }


def test_full_checks_run_every_max_of_the_period_and_map_count_stores() -> None:
    e = Engine(many_vmas(n=400, rounds=1000), keyframe_every=E.NO_KEYFRAMES)
    calls: list[int] = []
    real = e.k.mm.mm_mt.validate

    def validate() -> list[str]:
        calls.append(len(seen))
        return real()

    e.k.mm.mm_mt.validate = validate  # type: ignore[method-assign]
    seen = store_steps(e, lambda *_: None)
    e.run()
    assert e.finished and e.k.violations == []
    # The first after FULL_MAPLE_CHECK_STORES stores, then one every map_count
    # stores (400 VMAs, 401 while v3 is split), then one at the end of the run.
    assert len(seen) > 3 * 400
    assert calls[0] == K.FULL_MAPLE_CHECK_STORES
    assert all(400 <= b - a <= 401 for a, b in itertools.pairwise(calls[:-1]))
    assert len(seen) - calls[-2] < 401
    assert calls[-1] == len(seen)


def test_forgetting_freed_vmas_scans_frames_o1_times_per_freed_vma(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # exit_mmap frees every VMA with a frame that lists all of them: each pass
    # that forgets freed VMAs scans that list, so passes must get rarer.
    n = 3000
    vmas = [{"name": f"v{i}", "pages": 1, "anon_vma": True} for i in range(n)]
    sc = make_scenario(vmas=vmas, threads=[{"name": "t", "ops": [{"exit": {}}]}])
    scanned: list[int] = []
    real = K.Kernel._frame_refs

    def frame_refs(k: K.Kernel) -> tuple[set[int], int]:
        refs, count = real(k)
        scanned.append(count)
        return refs, count

    monkeypatch.setattr(K.Kernel, "_frame_refs", frame_refs)
    e = Engine(sc, keyframe_every=E.NO_KEYFRAMES).run()
    assert e.finished and e.k.vmas_freed == n
    assert e.k.mm.vmas == {} and e.k.mm.freed_held == []
    assert sum(scanned) <= 2 * K.FORGET_SCAN_PER_VMA * n
    assert len(scanned) < n // K.FORGET_BATCH // 2


def test_a_generated_scenario_with_many_vmas_runs_clean() -> None:
    # The bench's exit workload at a small size: exit_mmap over every VMA.
    from vmaviz.bench.engine import exit_yaml

    e = Engine(load_scenario_text(exit_yaml(600), "<test>")).run()
    assert e.finished and e.k.violations == [] and e.k.vmas_freed == 600


def test_the_pause_hook_runs_at_each_check_and_its_wait_is_not_run_time() -> None:
    """A background run gives way at each budget check (RunBudget.pause); the time
    spent waiting there does not count against the run's seconds."""
    full = Engine(busy()).run()
    steps = len(full.trace)
    pauses: list[int] = []
    now = [0.0]

    def clock() -> float:
        return now[0]

    def pause() -> None:
        pauses.append(1)
        now[0] += 100.0  # a long wait for a foreground request

    e = Engine(busy(), budget=RunBudget(seconds=1.0, clock=clock, pause=pause)).run()
    assert e.finished and len(e.trace) == steps
    assert len(pauses) == steps // BUDGET_CHECK_STEPS
    assert trace_prefix_equal(e, full, steps)
    # Pickles without the hook (a bound method of a server object need not pickle).
    assert pickle.loads(pickle.dumps(e)).budget.pause is None


def test_a_background_run_waits_for_a_foreground_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """vmaviz.ui.session.RunStore: yield_to_foreground returns at once when no
    request is in progress, and waits until the one in progress is done."""
    import threading
    import time

    from flask_caching import Cache

    from vmaviz.ui import session as S

    # A wait bound far above the test's own pause, so that only the release ends it.
    monkeypatch.setattr(S, "FOREGROUND_WAIT", 60.0)
    store = S.RunStore(Cache(config={"CACHE_TYPE": "NullCache"}))
    store.yield_to_foreground()  # nothing in progress: no wait
    done: list[float] = []
    with store.foreground():
        waiter = threading.Thread(target=lambda: (store.yield_to_foreground(), done.append(1)))
        waiter.start()
        time.sleep(0.1)
        assert done == []  # still waiting while the request is in progress
    waiter.join(timeout=5)
    assert done == [1]
