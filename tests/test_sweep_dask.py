"""Sweeps on a dask cluster: ``--dask ADDRESS`` and :class:`DaskExecutor`.

dask is optional for users (requirements-dask.txt) but scripts/test.sh installs it, so
these tests run in CI. They skip only where ``distributed`` cannot be imported.
The cluster is local (two worker processes), bound to 127.0.0.1 with no dashboard.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmaviz import __main__ as entry
from vmaviz.sweep import core, executors

distributed = pytest.importorskip(
    "distributed",
    reason="dask.distributed is not installed: pip install -r requirements-dask.txt"
    " (scripts/test.sh installs it)",
)

pytestmark = pytest.mark.dask

SCENARIO = Path(__file__).resolve().parent / "data" / "sweep" / "pft-per-thread-vma.yaml"
MODES = ["per_vma", "mmap_lock"]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


def test_local_cluster_is_on_loopback(scheduler: str) -> None:
    assert scheduler.startswith("tcp://127.0.0.1:")
    ex = executors.make_executor(dask_address=scheduler)
    try:
        assert isinstance(ex, executors.DaskExecutor)
        workers = ex.client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
    finally:
        ex.shutdown()


def test_dask_executor_runs_a_sweep(scheduler: str) -> None:
    params = {"threads": [1, 2]}
    ex = executors.make_executor(dask_address=scheduler)
    try:
        calls: list[int] = []
        rows = core.run_sweep(
            SCENARIO, params, MODES, executor=ex, progress=lambda done, _: calls.append(done)
        )
    finally:
        ex.shutdown()
    assert calls == [0, 1, 2, 3, 4]
    assert rows == core.run_sweep(SCENARIO, params, MODES)  # same as inline, same order


def test_cli_dask(scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["sweep", str(SCENARIO), "--param", "threads=1,2", "--dask", scheduler]
    assert entry.main([*argv, "--out", str(tmp_path)]) == 0
    assert "4/4 runs" in capsys.readouterr().err
    with (tmp_path / "sweep.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert (tmp_path / "sweep.html").is_file()


def test_unreachable_scheduler_is_a_clear_error() -> None:
    # Port 9 (discard) on loopback: nothing listens, so every connection is refused.
    with pytest.raises(executors.ExecutorUnavailable) as info:
        executors.DaskExecutor("tcp://127.0.0.1:9", timeout=1)
    assert "cannot connect to the dask scheduler at tcp://127.0.0.1:9" in str(info.value)


def test_explore_on_dask_finds_the_same_minimal_counterexample(scheduler: str) -> None:
    """``explore --dask``: the search tree split over the cluster's workers gives the
    counterexample of the one-process search, and covers the same bound when clean."""
    from vmaviz.explore import explore
    from vmaviz.explore.races import race
    from vmaviz.scenario import load_scenario

    r = race("detached")
    sc = load_scenario(r.path)
    off = {r.patch: False}
    local = explore(sc, patches=off, preemptions=r.bound, max_schedules=50_000)
    spread = explore(sc, patches=off, preemptions=r.bound, max_schedules=50_000, dask=scheduler)
    assert spread.found and local.found
    assert spread.schedule == local.schedule and spread.violation == local.violation
    clean = explore(
        sc, patches={"all": True}, preemptions=r.bound, max_schedules=50_000, dask=scheduler
    )
    assert not clean.found and clean.exhaustive
