"""Fuzz and worst-case tests of the scenario loader (vmaviz issue 11).

A seeded mutation fuzzer rewrites the bundled scenarios line by line and as parsed
trees; whatever comes out, loading must give a :class:`Scenario` or only
:class:`ScenarioError` s with a file, a line (where one exists) and a field, never
another exception. The hostile files of :mod:`vmaviz.bench.hostile` (the worst a
1 MiB upload can be) must load or fail the same way, with the loader's work bounded:
that is checked by counting calls (suggestions, error reports, op entries, merged
keys), never by timing.
"""

from __future__ import annotations

import copy
import difflib
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmaviz import cli
from vmaviz.bench import hostile
from vmaviz.scenario import Scenario, ScenarioError, ScenarioErrors, load_scenario_text, loader
from vmaviz.scenario.schema import (
    MAX_ERRORS,
    MAX_FILE_BYTES,
    MAX_MERGE_ENTRIES,
    MAX_OP_ENTRIES,
    MAX_SUGGESTION_CANDIDATES,
    MAX_SUGGESTIONS,
    OPS,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BUNDLED = sorted(SCENARIOS.glob("*.yaml"))

#: Mutants per fuzzer (line and tree); each loads in a few ms.
MUTANTS = 250

#: Scalars the line fuzzer puts where a value was: empty and odd YAML, bad explicit
#: tags, special floats, huge and 5,000-digit numbers, long and unicode text, tabs,
#: anchors and aliases, Python tags, wrong nesting, stray templates.
ODD_SCALARS = [
    "{}",
    "[]",
    "~",
    "!!int x",
    "!!int abc",
    "!!int ''",
    "!!bool maybe",
    "!!bool ''",
    "!!float nan",
    "!!float x",
    "!!null x",
    ".inf",
    "-.inf",
    ".nan",
    "-0",
    "0",
    "-1",
    "1e400",
    "99999999999999999999999",
    "1" * 5000,
    "'" + "7" * 5000 + "'",
    "'0-" + "9" * 5000 + "'",
    "0x" + "f" * 5000,
    "x" * 3000,
    "é中\U0001f600",
    "\t",
    "'\t'",
    "&anc 3",
    "*anc",
    "[*anc, *anc]",
    "!!python/object:os.system x",
    "!!python/object/apply:os.system ['true']",
    "!!binary aGk=",
    "!!set {a}",
    "!!omap [a: 1]",
    "!!timestamp 2001-12-14",
    "[[[[1]]]]",
    "{a: {b: {c: 1}}}",
    "{<<: *anc}",
    "true",
    "null",
    "'${i}'",
    '"${i}${i}"',
    "${j}",
    "'0-'",
    "'5-2'",
    "'0x7ffffffff000'",
    "! x",
    "? x",
]

#: Python values the tree fuzzer puts anywhere in a parsed scenario.
ODD_VALUES: list[Any] = [
    {},
    [],
    None,
    True,
    0,
    -1,
    2**64,
    10**30,
    1.5,
    float("nan"),
    float("inf"),
    "",
    "${i}",
    "${j}",
    "0-",
    "3-1",
    "0x10000",
    "é中",
    "a" * 300,
    [1, [2]],
    {"a": 1},
    {"fault": {}},
    ["exit"],
    "exit",
    {"loop": {"times": 2, "ops": []}},
    {"vma": "heap", "page": 0},
    "T${i}",
    {"all": True},
    {"spin_poll": 0},
    {"spin_pol": 5},
]


def mutate_lines(text: str, rnd: random.Random) -> str:
    """One to three line edits: delete, duplicate, swap, replace a scalar, re-indent."""
    lines = text.split("\n")
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(lines))
        edit = rnd.randrange(6)
        if edit == 0 and len(lines) > 1:
            del lines[i]
        elif edit == 1:
            lines.insert(i, lines[i])
        elif edit == 2:
            j = rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit in (3, 4):
            line = lines[i]
            # A value starts after "key: ", "- ", "[" or ", ".
            spots = [m.end() for m in re.finditer(r": |- |\[|, ", line)]
            odd = rnd.choice(ODD_SCALARS)
            if spots:
                at = rnd.choice(spots)
                rest = line[at:]
                end = re.match(r"[^,}\]]*", rest)
                lines[i] = line[:at] + odd + rest[end.end() if end else 0 :]
            else:
                lines[i] = f"{line} {odd}"
        else:
            lines[i] = " " * rnd.choice((1, 2, 4)) + lines[i]
    return "\n".join(lines)


def _nodes(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(obj, list):
        for j, value in enumerate(obj):
            yield from _nodes(value, (*path, j))


def mutate_tree(data: Any, rnd: random.Random) -> Any:
    """One to four edits of a parsed scenario: replace, delete, add, wrap, copy nodes."""
    for _ in range(rnd.randint(1, 4)):
        path, node = rnd.choice(list(_nodes(data)))
        if not path:
            continue
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        edit = rnd.randrange(6)
        if edit == 0:
            parent[key] = copy.deepcopy(rnd.choice(ODD_VALUES))
        elif edit == 1:
            del parent[key]
        elif edit == 2 and isinstance(parent, dict):
            name = rnd.choice(["name", "count", "ops", "pages", "vma", "start", "times", "x"])
            parent[name] = copy.deepcopy(rnd.choice(ODD_VALUES))
        elif edit == 3:
            parent[key] = [node]
        elif edit == 4:
            parent[key] = {rnd.choice(list(OPS)): node}
        else:
            parent[key] = copy.deepcopy(rnd.choice(list(_nodes(data)))[1])
    return data


def check_outcome(text: str, filename: str) -> Scenario | list[ScenarioError]:
    """Load ``text``; it must give a Scenario or well-formed ScenarioErrors only."""
    try:
        return load_scenario_text(text, filename)
    except ScenarioErrors as exc:
        errors = exc.errors
    assert errors, "ScenarioErrors without errors"
    last_line = text.count("\n") + 2
    for e in errors:
        assert isinstance(e, ScenarioError)
        assert e.file == filename
        assert e.line is None or 1 <= e.line <= last_line, e
        assert isinstance(e.field, str) and isinstance(e.message, str) and e.message, e
        # A problem in a field always has the line of that field.
        assert not e.field or e.line is not None, e
        assert loader.INTERNAL_ERROR not in e.message, f"loader bug on:\n{text}\n{e}"
        assert str(e).startswith(filename)
    return errors


def test_the_fuzzers_mutate_deterministically() -> None:
    text = BUNDLED[0].read_text()
    assert mutate_lines(text, random.Random(7)) == mutate_lines(text, random.Random(7))
    data = yaml.safe_load(text)
    first = mutate_tree(copy.deepcopy(data), random.Random(7))
    assert first == mutate_tree(copy.deepcopy(data), random.Random(7))
    assert mutate_lines(text, random.Random(8)) != text


def test_line_mutants_give_only_schema_errors() -> None:
    rnd = random.Random(20240611)
    texts = [(p.name, p.read_text()) for p in BUNDLED]
    outcomes = {"loaded": 0, "errors": 0}
    for _ in range(MUTANTS):
        name, text = rnd.choice(texts)
        result = check_outcome(mutate_lines(text, rnd), name)
        outcomes["loaded" if isinstance(result, Scenario) else "errors"] += 1
    # The mutants exercise both outcomes (a fuzzer that only breaks files, or one
    # that never does, would test little).
    assert outcomes["loaded"] > 0 and outcomes["errors"] > MUTANTS // 2


def test_tree_mutants_give_only_schema_errors() -> None:
    rnd = random.Random(11)
    datas = [(p.name, yaml.safe_load(p.read_text())) for p in BUNDLED]
    errors = 0
    for _ in range(MUTANTS):
        name, data = rnd.choice(datas)
        text = yaml.safe_dump(mutate_tree(copy.deepcopy(data), rnd), default_flow_style=None)
        errors += not isinstance(check_outcome(text, name), Scenario)
    assert errors > MUTANTS // 2


# --- hostile files --------------------------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[tuple[Any, ...]]:
    """Replace ``owner.name`` by a wrapper that records each call's arguments."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


#: What each hostile file must be refused with (``None``: it is valid).
HOSTILE_OUTCOME = {
    "unknown_names": "unknown vma 'w0_000'",
    "overlapping_vmas": "overlaps vma 'v00000'",
    "big_valid": None,
    "loop_bomb": "MAX_TOTAL_OPS",
    "deep_nesting": "(MAX_YAML_DEPTH)",
    "hidden_deep_nesting": "(MAX_YAML_DEPTH)",
    "alias_bomb": "MAX_OP_ENTRIES",
    "merge_bomb": "MAX_MERGE_ENTRIES",
    "name_list_bomb": "MAX_OP_ENTRIES",
    "zero_cost_spin": "LOOP_COSTS",
}


def test_every_hostile_generator_is_covered() -> None:
    assert set(HOSTILE_OUTCOME) == set(hostile.HOSTILE)
    assert "hostile" in cli.BENCHES


@pytest.mark.parametrize("name", sorted(HOSTILE_OUTCOME))
def test_hostile_file_loads_or_gives_schema_errors(name: str) -> None:
    text = hostile.HOSTILE[name]()
    assert len(text.encode()) <= MAX_FILE_BYTES
    result = check_outcome(text, f"{name}.yaml")
    expected = HOSTILE_OUTCOME[name]
    if expected is None:
        assert isinstance(result, Scenario)
        assert len(result.vmas) == 10_000 and len(result.threads) == 1024
        return
    assert not isinstance(result, Scenario)
    assert any(expected in e.message for e in result), "\n".join(map(str, result))
    assert len(result) <= MAX_ERRORS + 1


def test_unknown_names_cap_the_suggestion_work(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, difflib, "get_close_matches")
    errors = check_outcome(hostile.unknown_names(), "u.yaml")
    assert isinstance(errors, list) and len(errors) == MAX_ERRORS + 1
    assert "checking stopped" in errors[-1].message and "MAX_ERRORS" in errors[-1].message
    # ~200,000 unknown references, 10,000 names: at most MAX_SUGGESTIONS lookups, each
    # over at most MAX_SUGGESTION_CANDIDATES names.
    assert 0 < len(calls) <= MAX_SUGGESTIONS
    assert all(len(possibilities) <= MAX_SUGGESTION_CANDIDATES for _, possibilities in calls)


def test_checking_stops_at_max_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    reported = _counting(monkeypatch, loader._Loader, "error")
    errors = check_outcome(hostile.overlapping_vmas(), "o.yaml")
    assert isinstance(errors, list)
    # 9,999 overlaps, but nothing is even reported past error MAX_ERRORS + 1.
    assert len(reported) == MAX_ERRORS + 1
    overlaps = errors[:-1]
    assert [e.field for e in overlaps] == [f"mm.vmas[{j}].start" for j in range(1, MAX_ERRORS + 1)]
    assert [e.line for e in overlaps] == list(range(7, 7 + MAX_ERRORS))


def test_alias_expansion_is_bounded_by_op_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    for make in (hostile.alias_bomb, hostile.name_list_bomb):
        counted = _counting(monkeypatch, loader._Loader, "count_entry")
        errors = check_outcome(make(), "a.yaml")
        assert isinstance(errors, list) and "MAX_OP_ENTRIES" in errors[0].message
        assert len(counted) == MAX_OP_ENTRIES + 1
        monkeypatch.undo()


def test_merge_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    merged = 0
    real = loader._Loader._merge_sources

    def counting(self: Any, *args: Any) -> Iterator[Any]:
        nonlocal merged
        for entry in real(self, *args):
            merged += 1
            yield entry

    monkeypatch.setattr(loader._Loader, "_merge_sources", counting)
    errors = check_outcome(hostile.merge_bomb(), "m.yaml")
    assert isinstance(errors, list)
    assert errors[0].field == "look_at[11]" and "MAX_MERGE_ENTRIES" in errors[0].message
    assert merged <= MAX_MERGE_ENTRIES


def test_zero_cost_spin_is_refused_at_its_line() -> None:
    errors = check_outcome(hostile.zero_cost_spin(), "z.yaml")
    assert isinstance(errors, list)
    assert [(e.line, e.field) for e in errors] == [(4, "costs.spin_poll")]
    assert "at least 1 ns" in errors[0].message
    # Nothing else is wrong with it.
    fixed = hostile.zero_cost_spin().replace("spin_poll: 0", "spin_poll: 1")
    assert load_scenario_text(fixed).costs == {"spin_poll": 1}
