"""Golden runs of the bundled scenarios: any change in simulated behaviour shows up here.

``tests/data/golden/<scenario>.json`` holds, for each mode, the step count, the
simulated time, the per-VMA-lock counters and the SHA-256 of the whole trace.
After an intended change to the model, the engine or the costs, regenerate them
with ``.venv/bin/python tests/data/golden/regenerate.py`` and review the diff.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
REGEN = "run `.venv/bin/python tests/data/golden/regenerate.py` and review the diff"
SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if p.name != "default.yaml")
MODES = ("per_vma", "mmap_lock")
FIELDS = ("steps", "sim_ns", "vma_lock", "abort_reasons", "trace_sha256")


def load_golden(stem: str) -> dict[str, Any]:
    path = GOLDEN / f"{stem}.json"
    assert path.exists(), f"no golden file {path.name}: {REGEN}"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_bundled_scenario_has_a_golden_file() -> None:
    assert len(SCENARIOS) >= 6
    have = {p.stem for p in GOLDEN.glob("*.json")}
    want = {p.stem for p in SCENARIOS}
    assert have == want, (
        f"golden files out of date (missing {want - have}, extra {have - want}): {REGEN}"
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_matches_golden(path: Path, mode: str) -> None:
    golden = load_golden(path.stem)
    assert golden["scenario"] == path.stem
    want = golden["runs"][mode]
    s = Engine(load_scenario(path), mode=mode).run().summary()
    got = {f: s[f] for f in FIELDS}
    diff = {f: (want[f], got[f]) for f in FIELDS if want[f] != got[f]}
    assert not diff, (
        f"{path.stem} [{mode}] differs from tests/data/golden/{path.stem}.json "
        f"(golden, now): {diff}. If the model change is intended, {REGEN}."
    )
    # The golden run itself must be sane: no invariant broken, mode as asked.
    assert s["invariant_violations"] == []
    assert s["mode"] == mode
    if mode == "mmap_lock":
        assert set(got["vma_lock"].values()) == {0}


def test_regenerate_tool_reproduces_the_stored_files() -> None:
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert [p.name for p in mod.bundled()] == [p.name for p in SCENARIOS]
    first = mod.golden_for(SCENARIOS[0])
    assert first == load_golden(SCENARIOS[0].stem), f"golden files are stale: {REGEN}"
