"""Helpers shared by the kernel-model and engine tests.

Scenarios are built from plain Python data (``make_scenario``) and loaded through
the real YAML loader, so every test exercises the same path a scenario file does.
Trace helpers turn the engine's columnar trace into row dicts and answer the
questions the tests ask ("which VMAs did this op write-lock", "which branch did
this lock_vma_under_rcu call take").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

from vmaviz.engine.engine import Engine, Trace
from vmaviz.scenario import Scenario, load_scenario_text

PAGE = 4096


def make_scenario(
    vmas: list[dict[str, Any]],
    threads: list[dict[str, Any]],
    kernel: dict[str, Any] | None = None,
    costs: dict[str, int] | None = None,
    name: str = "test",
) -> Scenario:
    """A validated scenario from Python data (dumped to YAML and loaded)."""
    doc: dict[str, Any] = {
        "name": name,
        "description": "test scenario",
        "kernel": {"per_vma_lock": True, "cpus": 2, **(kernel or {})},
        "mm": {"vmas": vmas},
        "threads": threads,
    }
    if costs:
        doc["costs"] = costs
    return load_scenario_text(yaml.safe_dump(doc, sort_keys=False))


def run(sc: Scenario, mode: str | None = None, **kw: Any) -> Engine:
    """A finished engine run of ``sc``."""
    return Engine(sc, mode=mode, **kw).run()


def rows(e: Engine, start: int = 0) -> Iterator[dict[str, Any]]:
    """Every trace row from ``start`` on, as dicts (see ``Trace.row``)."""
    for i in range(start, len(e.trace)):
        yield e.trace.row(i)


def events(
    e: Engine, code: str | None = None, prefix: str | None = None, tid: int | None = None
) -> list[dict[str, Any]]:
    """Rows whose event equals ``code`` / starts with ``prefix``, optionally of one thread."""
    out = []
    for r in rows(e):
        ev = r["event"]
        if code is not None and ev != code:
            continue
        if prefix is not None and not ev.startswith(prefix):
            continue
        if tid is not None and r["tid"] != tid:
            continue
        out.append(r)
    return out


def codes(e: Engine, tid: int | None = None) -> list[str]:
    """The event codes of the run, in order (of one thread when ``tid`` is given)."""
    return [r["event"] for r in rows(e) if tid is None or r["tid"] == tid]


def vma_name(e: Engine, vid: int) -> str:
    return e.k.mm.vma_names()[vid]


def vid_of(e: Engine, name: str) -> int:
    """The id of the VMA that the scenario created under ``name`` (the first one, freed or not)."""
    names = e.k.mm.vma_names()
    for vid in sorted(names):
        if names[vid] == name:
            return vid
    raise KeyError(name)


def is_freed(k: Any, vid: int) -> bool:
    """Whether VMA ``vid`` has been freed: forgotten by the kernel, or kept with state ``freed``.

    A freed VMA is dropped from ``mm.vmas`` (its name stays in ``mm.freed_names``)
    unless a thread still refers to it or the run keeps freed VMAs.
    """
    v = k.mm.vmas.get(vid)
    return v.state == "freed" if v is not None else vid in k.mm.freed_names


def is_mmap_write_acquire(r: dict[str, Any]) -> bool:
    return r["event"].startswith("down_write:acquired") and r["a"] == 0


def write_sections(e: Engine, tid: int) -> list[dict[str, Any]]:
    """The mmap-write sections of thread ``tid``, in order.

    Each section: ``start``/``end`` step indexes (the acquisition of mmap_lock
    for write and the ``mmap_write_unlock`` / ``mmap_write_downgrade`` that ends
    it), ``how`` (``unlock`` or ``downgrade``), ``locked`` (the VMA ids whose
    ``vma_start_write:seq_set`` happened in between, in order) and ``events``
    (all codes of the thread in between).
    """
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for r in rows(e):
        if r["tid"] != tid:
            continue
        if cur is None:
            if is_mmap_write_acquire(r):
                cur = {"start": r["step"], "locked": [], "events": [], "seqs": []}
            continue
        cur["events"].append(r["event"])
        if r["event"] == "vma_start_write:seq_set":
            cur["locked"].append(r["a"])
            cur["seqs"].append(r["b"])
        if r["event"] in ("mmap_write_unlock", "mmap_write_downgrade"):
            cur["end"] = r["step"]
            cur["how"] = r["event"].split("_")[-1]
            out.append(cur)
            cur = None
    assert cur is None, f"T{tid}: mmap write section never ended"
    return out


def lvur_outcomes(e: Engine, tid: int | None = None) -> list[str]:
    """The outcome of every ``lock_vma_under_rcu`` call, in order.

    ``locked``, ``abort:<reason>``; MISS retries show up as ``miss`` entries
    before the outcome of the same call.
    """
    out = []
    for r in rows(e):
        if tid is not None and r["tid"] != tid:
            continue
        ev = r["event"]
        if ev == "lock_vma_under_rcu:locked":
            out.append("locked")
        elif ev.startswith("lock_vma_under_rcu:abort:"):
            out.append("abort:" + ev.rsplit(":", 1)[1])
        elif ev == "lock_vma_under_rcu:miss_retry":
            out.append("miss")
    return out


def nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


def assert_clean(e: Engine) -> None:
    """No invariant violation was recorded."""
    assert e.k.violations == [], e.k.violations


def at(code: str, tid: int | None = None) -> Callable[[Trace, int], bool]:
    """A ``run_until`` predicate: the row's event is ``code`` (of thread ``tid``)."""

    def pred(t: Trace, i: int) -> bool:
        r = t.row(i)
        return bool(r["event"] == code and (tid is None or r["tid"] == tid))

    return pred


def at_prefix(prefix: str, tid: int | None = None) -> Callable[[Trace, int], bool]:
    """A ``run_until`` predicate: the row's event starts with ``prefix``."""

    def pred(t: Trace, i: int) -> bool:
        r = t.row(i)
        return bool(r["event"].startswith(prefix) and (tid is None or r["tid"] == tid))

    return pred
