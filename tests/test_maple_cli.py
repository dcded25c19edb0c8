"""``python -m vmaviz.maple``: the line protocol shared with the kernel oracle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from maple_helpers import PAGE, build, vma_stores

from vmaviz.model.maple import ULONG_MAX

ROOT = Path(__file__).resolve().parents[1]


def run_cli(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vmaviz.maple"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def _script(stores: list[tuple[int, int, int | None]]) -> str:
    return "".join(f"store {a} {z} {'-' if e is None else e}\n" for a, z, e in stores)


def test_store_and_dump_prints_one_json_line() -> None:
    stores = vma_stores(40, PAGE)
    proc = run_cli(_script(stores) + "dump\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stdout.endswith("\n")
    dump = json.loads(lines[0])
    assert dump == build(stores).dump()
    assert dump["height"] == 2 and dump["root"]["type"] == "arange64"
    assert dump["root"]["gaps"] == [1048576, 4096, 4096, 4096, 4096, 18446744073708015616]


def test_dump_after_each_store_and_null_entries() -> None:
    text = "store 4096 8191 1\ndump\nstore 8192 12287 2\ndump\nstore 4096 8191 -\ndump\n"
    proc = run_cli(text)
    assert proc.returncode == 0, proc.stderr
    dumps = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(dumps) == 3
    assert dumps[0]["root"]["entries"] == [
        [0, 4095, None],
        [4096, 8191, 1],
        [8192, ULONG_MAX, None],
    ]
    assert dumps[1]["root"]["entries"][2] == [8192, 12287, 2]
    assert dumps[2]["root"]["entries"] == [
        [0, 8191, None],
        [8192, 12287, 2],
        [12288, ULONG_MAX, None],
    ]


def test_empty_tree_dump() -> None:
    proc = run_cli("dump\n")
    assert proc.returncode == 0
    assert proc.stdout == '{"height": 0, "root": null}\n'


def test_direct_root_dump() -> None:
    proc = run_cli("store 0 0 5\ndump\n")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"height": 0, "root": {"type": "direct", "entry": 5}}


def test_full_range_and_max_index() -> None:
    proc = run_cli(f"store {ULONG_MAX} {ULONG_MAX} 3\nstore 0 {ULONG_MAX - 1} 4\ndump\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["root"]["entries"] == [
        [0, ULONG_MAX - 1, 4],
        [ULONG_MAX, ULONG_MAX, 3],
    ]


def test_blank_lines_and_comments_ignored() -> None:
    proc = run_cli("\n   \n# a comment\nstore 4096 8191 7\n\n\t\ndump\n\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["root"]["entries"][1] == [4096, 8191, 7]


def test_no_input_prints_nothing() -> None:
    proc = run_cli("")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("frobnicate 1 2 3", "unknown command"),
        ("store 1 2", "missing field"),
        ("store 1 2 3 4", "extra field"),
        ("store one 2 3", "non-numeric FIRST"),
        ("store 1 0x10 3", "hex LAST"),
        ("store 1 2 x", "non-numeric ENTRY"),
        ("store -1 2 3", "negative FIRST"),
        ("store 1 2 -3", "negative ENTRY"),
        ("store 5 4 1", "FIRST > LAST"),
        ("store 1 2 0", "entry 0"),
        (f"store 1 {ULONG_MAX + 1} 3", "LAST beyond 64 bits"),
        ("dump now", "dump with an argument"),
        ("store 1.5 2 3", "fractional FIRST"),
    ],
)
def test_malformed_line_exits_2_naming_the_line(bad: str, why: str) -> None:
    text = "store 4096 8191 1\n\n" + "dump\n" + bad + "\nstore 8192 12287 2\ndump\n"
    proc = run_cli(text)
    assert proc.returncode == 2, why
    assert "line 4" in proc.stderr, (why, proc.stderr)
    assert "Traceback" not in proc.stderr
    # Output produced before the bad line is kept; nothing after it runs.
    assert len(proc.stdout.splitlines()) == 1


def test_first_line_error() -> None:
    proc = run_cli("store\n")
    assert proc.returncode == 2
    assert "line 1" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_superscript_digit_is_a_protocol_error() -> None:
    proc = run_cli("store \u00b2 5 1\n")
    assert proc.returncode == 2
    assert "line 1" in proc.stderr and "Traceback" not in proc.stderr


def test_non_ascii_digits_are_rejected() -> None:
    proc = run_cli("store \u0661 5 1\ndump\n")
    assert proc.returncode == 2
    assert "line 1" in proc.stderr
