"""Rewrite the golden run summaries in this directory (a developer tool).

Run from anywhere after an *intended* change to the kernel model, the engine or
the cost table:

    .venv/bin/python tests/data/golden/regenerate.py

It runs every bundled scenario (``scenarios/*.yaml`` except ``default.yaml``, an
app-only file) in both modes and writes ``<scenario>.json`` with the numbers
``tests/test_golden_traces.py`` compares.  Review the diff before committing it:
every changed number is a change in simulated behaviour.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from vmaviz.engine.engine import Engine  # noqa: E402
from vmaviz.scenario import load_scenario  # noqa: E402

MODES = ("per_vma", "mmap_lock")
FIELDS = ("steps", "sim_ns", "vma_lock", "abort_reasons", "trace_sha256")


def bundled() -> list[Path]:
    return sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if p.name != "default.yaml")


def golden_for(path: Path) -> dict[str, Any]:
    sc = load_scenario(path)
    runs = {}
    for mode in MODES:
        s = Engine(sc, mode=mode).run().summary()
        runs[mode] = {f: s[f] for f in FIELDS}
    return {"scenario": path.stem, "runs": runs}


def main() -> int:
    written = []
    for path in bundled():
        out = HERE / f"{path.stem}.json"
        out.write_text(json.dumps(golden_for(path), indent=2, sort_keys=True) + "\n")
        written.append(out.name)
    stale = sorted(p.name for p in HERE.glob("*.json") if p.stem not in {b.stem for b in bundled()})
    for name in stale:
        (HERE / name).unlink()
    print(f"wrote {len(written)} golden files in {HERE}" + (f"; removed {stale}" if stale else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
