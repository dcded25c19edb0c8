"""Load the VMAs of a scenario file (YAML).

Minimal schema for now (the full scenario schema comes later)::

    vmas:
      - {name: "[heap]", start: "0x55d4c6b41000", pages: 33, prot: rw}

``start`` is a page-aligned address, as a hex string (``"0x..."``) or an integer;
``pages`` counts 4 KiB pages; ``prot`` is one of ``none, r, rw, rx, rwx``. Errors name
the file, the VMA and the field.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PAGE_SIZE = 4096
#: x86-64 4-level paging user address space limit (TASK_SIZE_MAX).
TASK_SIZE = 0x7FFFFFFFF000
PROTS = ("none", "r", "rw", "rx", "rwx")


class ScenarioError(ValueError):
    """A scenario file is missing, unparsable or has an invalid field."""


@dataclass(frozen=True)
class Vma:
    """One VMA of a scenario: ``[start, end)`` in bytes."""

    name: str
    start: int
    end: int
    prot: str

    @property
    def pages(self) -> int:
        return (self.end - self.start) // PAGE_SIZE

    def as_tuple(self) -> tuple[str, int, int]:
        return (self.name, self.start, self.end)


def _int_field(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: field '{field}': expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            pass
    raise ScenarioError(
        f"{where}: field '{field}': expected an integer or a hex string like '0x7f0000000000',"
        f" got {value!r}"
    )


def parse_vmas(data: Any, source: str = "<scenario>") -> list[Vma]:
    """Validate the parsed YAML document ``data``; return its VMAs sorted by address."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping with a 'vmas' list at the top level")
    raw = data.get("vmas")
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{source}: field 'vmas': expected a non-empty list of VMAs")

    vmas: list[Vma] = []
    for i, item in enumerate(raw):
        where = f"{source}: vmas[{i}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: expected a mapping with name, start, pages, prot")
        unknown = sorted(set(item) - {"name", "start", "pages", "prot"})
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s): {', '.join(map(str, unknown))}")
        for field in ("name", "start", "pages", "prot"):
            if field not in item:
                raise ScenarioError(f"{where}: missing field '{field}'")
        name = item["name"]
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError(f"{where}: field 'name': expected a non-empty string")
        where = f"{source}: vmas[{i}] ({name})"
        start = _int_field(item["start"], where, "start")
        if start < 0 or start % PAGE_SIZE:
            raise ScenarioError(
                f"{where}: field 'start': {start:#x} is not a page-aligned ({PAGE_SIZE:#x}) address"
            )
        pages = _int_field(item["pages"], where, "pages")
        if pages < 1:
            raise ScenarioError(f"{where}: field 'pages': must be at least 1, got {pages}")
        end = start + pages * PAGE_SIZE
        if end > TASK_SIZE:
            raise ScenarioError(
                f"{where}: field 'pages': VMA ends at {end:#x}, above TASK_SIZE {TASK_SIZE:#x}"
            )
        prot = item["prot"]
        if prot not in PROTS:
            raise ScenarioError(
                f"{where}: field 'prot': expected one of {', '.join(PROTS)}, got {prot!r}"
            )
        vmas.append(Vma(name=name, start=start, end=end, prot=prot))

    vmas.sort(key=lambda v: v.start)
    for prev, cur in itertools.pairwise(vmas):
        if cur.start < prev.end:
            raise ScenarioError(
                f"{source}: vmas ({cur.name}): field 'start': {cur.start:#x} overlaps"
                f" '{prev.name}' [{prev.start:#x}, {prev.end:#x})"
            )
    return vmas


def load_vma_specs(path: str | Path) -> list[Vma]:
    """Read and validate a scenario file; return its VMAs sorted by address."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: invalid YAML: {exc}") from exc
    return parse_vmas(data, str(path))


def load_vmas(path: str | Path) -> list[tuple[str, int, int]]:
    """Read a scenario file; return ``(name, start, end_exclusive)`` sorted by address."""
    return [vma.as_tuple() for vma in load_vma_specs(path)]
