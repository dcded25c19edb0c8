"""The scenario VMA loader: the bundled default scenario and clear errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from vmaviz.scenario_vmas import PAGE_SIZE, ScenarioError, load_vma_specs, load_vmas


def test_default_scenario(repo_root: Path) -> None:
    vmas = load_vmas(repo_root / "scenarios" / "default.yaml")
    assert 10 <= len(vmas) <= 20
    names = [name for name, _s, _e in vmas]
    assert {"[heap]", "[stack]", "thread guard", "thread stack"} <= set(names)
    assert any(name.startswith("libc.so.6") for name in names)
    for (_n, start, end), (_n2, nxt, _e2) in itertools.pairwise(vmas):
        assert start < end <= nxt  # sorted, non-overlapping
    assert all(s % PAGE_SIZE == 0 and e % PAGE_SIZE == 0 for _n, s, e in vmas)
    specs = load_vma_specs(repo_root / "scenarios" / "default.yaml")
    assert {v.prot for v in specs} <= {"none", "r", "rw", "rx", "rwx"}
    assert next(v for v in specs if v.name == "thread guard").prot == "none"


def test_hex_and_int_starts(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "vmas:\n"
        "  - {name: b, start: 0x20000, pages: 1, prot: r}\n"
        "  - {name: a, start: '0x10000', pages: 2, prot: rw}\n"
        "  - {name: c, start: 196608, pages: 1, prot: none}\n"
    )
    assert load_vmas(path) == [
        ("a", 0x10000, 0x12000),
        ("b", 0x20000, 0x21000),
        ("c", 0x30000, 0x31000),
    ]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("vmas: []", "field 'vmas'"),
        ("- 1\n- 2", "top level"),
        ("vmas:\n  - {name: x, start: 0x1000, pages: 1}", "missing field 'prot'"),
        ("vmas:\n  - {name: x, start: 0x1001, pages: 1, prot: r}", "field 'start'"),
        ("vmas:\n  - {name: x, start: zz, pages: 1, prot: r}", "field 'start'"),
        ("vmas:\n  - {name: x, start: 0x1000, pages: 0, prot: r}", "field 'pages'"),
        ("vmas:\n  - {name: x, start: 0x1000, pages: 1, prot: wx}", "field 'prot'"),
        ("vmas:\n  - {name: x, start: 0x1000, pages: 1, prot: r, foo: 1}", "unknown field"),
        ("vmas:\n  - {name: '', start: 0x1000, pages: 1, prot: r}", "field 'name'"),
        (
            "vmas:\n  - {name: x, start: 0x1000, pages: 2, prot: r}\n"
            "  - {name: y, start: 0x2000, pages: 1, prot: r}",
            "overlaps 'x'",
        ),
        ("vmas: [", "invalid YAML"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as err:
        load_vmas(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_vmas(tmp_path / "nope.yaml")
