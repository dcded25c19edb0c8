"""Schedule files: a counterexample that ``python -m vmaviz run FILE --schedule PATH`` replays.

A schedule file is JSON::

    {"format": "vmaviz-schedule", "version": 1,
     "scenario": {"name": ..., "file": ..., "sha256": ...},
     "mode": "per_vma", "arch": "x86", "patches": {"name": true, ...},
     "schedule": [0, 0, 1, ...],
     "violation": {"invariant": 5, "step": 25, "message": ...},
     "preemptions": 1}

``schedule`` holds the thread id that moves at each step (-1: the RCU
callbacks); past its end the time-ordered scheduler runs on.  The patch
settings travel with it, so the replay runs the same kernel.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmaviz.explore.search import ExploreError, ExploreResult
from vmaviz.model.kernel import PATCHES

FORMAT = "vmaviz-schedule"
VERSION = 1


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def schedule_document(
    result: ExploreResult, scenario_name: str, scenario_path: str
) -> dict[str, Any]:
    """The schedule file's content for a result that found a counterexample."""
    if result.schedule is None or result.violation is None:
        raise ExploreError("no counterexample to write")
    v = result.violation
    return {
        "format": FORMAT,
        "version": VERSION,
        "scenario": {
            "name": scenario_name,
            "file": Path(scenario_path).name,
            "sha256": file_sha256(scenario_path),
        },
        "mode": result.mode,
        "arch": result.arch,
        "patches": dict(result.patches),
        "schedule": list(result.schedule),
        "violation": {"invariant": v.invariant, "step": v.step, "message": v.message},
        "preemptions": result.preemptions,
    }


@dataclass(frozen=True)
class ScheduleFile:
    """A loaded schedule file."""

    scenario_name: str
    sha256: str
    mode: str
    arch: str
    patches: dict[str, bool]
    schedule: list[int]


def load_schedule(path: str | Path, nthreads: int | None = None) -> ScheduleFile:
    """Read and check a schedule file.

    Args:
        path: The file.
        nthreads: The scenario's thread count, to check the thread ids.

    Raises:
        ExploreError: a malformed file, naming what is wrong.
        OSError: the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExploreError(f"{path}: not a schedule file (bad JSON: {exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ExploreError(f'{path}: not a schedule file (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise ExploreError(f"{path}: unsupported schedule file version {doc.get('version')!r}")
    sc = doc.get("scenario")
    tids = doc.get("schedule")
    patches = doc.get("patches", {})
    if not isinstance(sc, dict) or not isinstance(sc.get("sha256"), str):
        raise ExploreError(f'{path}: "scenario" must hold the scenario\'s name and sha256')
    if not isinstance(tids, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in tids
    ):
        raise ExploreError(f'{path}: "schedule" must be a list of thread ids')
    if not isinstance(patches, dict) or not all(isinstance(v, bool) for v in patches.values()):
        raise ExploreError(f'{path}: "patches" must map patch names to true or false')
    unknown = sorted(set(patches) - set(PATCHES))
    if unknown:
        raise ExploreError(f"{path}: unknown patch {unknown[0]!r}")
    if nthreads is not None:
        bad = [t for t in tids if t < -1 or t >= nthreads]
        if bad:
            raise ExploreError(
                f"{path}: thread id {bad[0]} does not fit the scenario"
                f" ({nthreads} threads: ids 0-{nthreads - 1}, or -1 for the RCU callbacks)"
            )
    mode = doc.get("mode", "per_vma")
    if mode not in ("per_vma", "mmap_lock"):
        raise ExploreError(f"{path}: unknown mode {mode!r}")
    return ScheduleFile(
        str(sc.get("name", "")),
        sc["sha256"],
        mode,
        str(doc.get("arch", "x86")),
        dict(patches),
        list(tids),
    )


def write_schedule(path: str | Path, doc: dict[str, Any]) -> None:
    """Write a schedule file (JSON, one thread id list)."""
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
