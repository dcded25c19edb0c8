"""The notebook API: ``simulate()`` and the ``Run`` it returns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmaviz.engine.api import STEP_COLUMNS, Run, simulate
from vmaviz.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]

#: The small scenario these CLI, API and export tests share.
TINY = (Path(__file__).resolve().parent / "data" / "tiny" / "tiny.yaml").read_text()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_simulate_path_summary_and_steps(tiny: Path) -> None:
    run = simulate(tiny)
    assert isinstance(run, Run)
    summary = run.summary()
    assert summary["mode"] == "per_vma" and summary["seed"] == 3
    df = run.steps()
    assert list(df.columns) == list(STEP_COLUMNS)
    assert list(STEP_COLUMNS) == [
        "step",
        "time_ns",
        "thread",
        "cpu",
        "event",
        "a",
        "b",
        "stack",
        "op",
    ]
    assert df.shape == (summary["steps"], 9)
    assert df["step"].tolist() == list(range(len(df)))
    assert df["time_ns"].is_monotonic_increasing
    assert set(df["thread"]) == {"t0", "t1", "w"}
    for col in ("step", "time_ns", "cpu", "a", "b", "op"):
        assert df[col].dtype.kind == "i", col
    faults = df[df.event == "fault:entry"]
    assert len(faults) == summary["faults"]["total"]
    assert faults["stack"].str.endswith("do_user_addr_fault").all()
    # Op numbers count each thread's ops, loops unrolled: t0 runs 5 ops.
    assert df[df.thread == "t0"]["op"].max() == 5
    assert "tiny" in repr(run) and "steps=" in repr(run)


def test_simulate_scenario_object_and_overrides(tiny: Path) -> None:
    scenario = load_scenario(tiny)
    run = simulate(scenario, mode="mmap_lock", arch="arm64", seed=9)
    s = run.summary()
    assert (s["mode"], s["arch"], s["seed"]) == ("mmap_lock", "arm64", 9)
    df = run.steps()
    assert df["stack"].str.contains("do_page_fault").any()
    assert not df["event"].str.startswith("lock_vma_under_rcu").any()
    # Same inputs, same run.
    again = simulate(scenario, mode="mmap_lock", arch="arm64", seed=9)
    assert again.summary()["trace_sha256"] == s["trace_sha256"]
    assert run.engine.scenario.kernel.seed == 9


def test_simulate_rejects_bad_settings(tiny: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        simulate(tiny, mode="sideways")
    with pytest.raises(ValueError, match="arch"):
        simulate(tiny, arch="vax")


def test_api_import_leaves_pandas_unloaded() -> None:
    code = "import sys, vmaviz.engine.api; print('pandas' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert res.stdout.strip() == "False"
