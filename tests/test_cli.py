"""``python -m vmaviz``: the command-line contract, run as a user would (subprocess)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_helpers import run_vmaviz as vmaviz

from vmaviz import __main__ as entry
from vmaviz import cli

REPO = Path(__file__).resolve().parents[1]

#: The small scenario these CLI, API and export tests share.
TINY = (Path(__file__).resolve().parent / "data" / "tiny" / "tiny.yaml").read_text()

RUN_KEYS = {
    "mode",
    "arch",
    "seed",
    "steps",
    "sim_ns",
    "vma_lock",
    "abort_reasons",
    "faults",
    "mmap_lock",
    "rcu",
    "mm_lock_seq",
    "vmas",
    "threads",
    "invariant_violations",
    "trace_sha256",
}
NESTED_KEYS = {
    "vma_lock": {"success", "abort", "retry", "miss"},
    "abort_reasons": {
        "no_vma",
        "not_anonymous",
        "no_anon_vma",
        "vma_locked",
        "trylock_failed",
        "uffd_armed",
        "out_of_range",
    },
    "faults": {"total", "via_vma_lock", "via_mmap_lock", "kernel_mode", "sigsegv", "latency_ns"},
    "mmap_lock": {
        "read_acquired",
        "write_acquired",
        "read_wait_ns",
        "write_wait_ns",
        "max_wait_ns",
    },
    "rcu": {"grace_periods", "vmas_freed", "nodes_freed"},
}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def run_json(*args: str) -> dict:
    res = vmaviz("run", *args, "--json")
    assert res.returncode == 0, res.stderr
    doc: dict = json.loads(res.stdout)
    return doc


# --- validate ------------------------------------------------------------------------


def test_validate_ok(tiny: Path) -> None:
    res = vmaviz("validate", str(tiny))
    assert res.returncode == 0
    assert "OK" in res.stdout and "tiny.yaml" in res.stdout


def test_validate_reports_file_line_field(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("touch: {vma: heap", "touch: {vma: nowhere"))
    res = vmaviz("validate", str(tiny), str(bad))
    assert res.returncode == 1
    assert "OK" in res.stdout  # the good file is still reported
    line = next(ln for ln in res.stderr.splitlines() if "nowhere" in ln)
    # file:line: field: message
    assert line.startswith(f"{bad}:")
    assert line.split(":")[1].strip().isdigit()
    assert "Traceback" not in res.stderr


# --- run -----------------------------------------------------------------------------


def test_run_json_schema(tiny: Path) -> None:
    doc = run_json(str(tiny))
    assert set(doc) == {"scenario", "runs"}
    assert doc["scenario"] == "tiny"
    [run] = doc["runs"]
    assert set(run) >= RUN_KEYS
    for key, sub in NESTED_KEYS.items():
        assert sub <= set(run[key]), key
    assert {"mean", "p50", "p99", "max"} <= set(run["faults"]["latency_ns"])
    # Defaults come from the scenario.
    assert (run["mode"], run["arch"], run["seed"]) == ("per_vma", "x86", 3)
    assert run["steps"] > 0 and run["faults"]["total"] == 12
    assert [t["name"] for t in run["threads"]] == ["t0", "t1", "w"]


def test_run_mode_both_and_arch_all(tiny: Path) -> None:
    both = run_json(str(tiny), "--mode", "both")["runs"]
    assert [r["mode"] for r in both] == ["per_vma", "mmap_lock"]
    arches = run_json(str(tiny), "--arch", "all")["runs"]
    assert [r["arch"] for r in arches] == ["x86", "arm64", "powerpc", "s390"]
    assert {r["mode"] for r in arches} == {"per_vma"}
    every = run_json(str(tiny), "--mode", "both", "--arch", "all")["runs"]
    assert len(every) == 8
    assert len({(r["mode"], r["arch"]) for r in every}) == 8


def test_run_is_deterministic_per_seed(tiny: Path) -> None:
    a = run_json(str(tiny), "--seed", "11", "--mode", "both")["runs"]
    b = run_json(str(tiny), "--seed", "11", "--mode", "both")["runs"]
    assert [r["seed"] for r in a] == [11, 11]
    assert [r["trace_sha256"] for r in a] == [r["trace_sha256"] for r in b]
    assert a == b


def test_run_overrides(tiny: Path) -> None:
    [run] = run_json(str(tiny), "--mode", "mmap_lock", "--arch", "s390", "--cpus", "1")["runs"]
    assert (run["mode"], run["arch"]) == ("mmap_lock", "s390")
    assert run["vma_lock"]["success"] == 0
    assert run["faults"]["via_mmap_lock"] == run["faults"]["total"]


def test_run_table(tiny: Path) -> None:
    res = vmaviz("run", str(tiny), "--mode", "both")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for word in (
        "tiny: mode per_vma",
        "tiny: mode mmap_lock",
        "makespan",
        "latency",
        "vma_lock",
        "violations",
    ):
        assert word in out
    # The side-by-side comparison follows the per-run blocks.
    assert "makespan_ns" in out.splitlines()[-3]


# --- export --------------------------------------------------------------------------


def test_export_csv_stdout(tiny: Path) -> None:
    [run] = run_json(str(tiny), "--mode", "mmap_lock")["runs"]
    res = vmaviz("export", str(tiny), "--format", "csv", "--mode", "mmap_lock")
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["step", "time_ns", "thread", "cpu", "event", "a", "b", "stack"]
    assert len(rows) - 1 == run["steps"]
    assert {r[2] for r in rows[1:]} == {"t0", "t1", "w"}


def test_export_perfetto_file(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    res = vmaviz("export", str(tiny), "--format", "perfetto", "--seed", "5", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["displayTimeUnit"] == "ns"
    phases = {ev["ph"] for ev in doc["traceEvents"]}
    assert {"M", "X", "C", "i"} <= phases


def test_export_rejects_multi_mode(tiny: Path) -> None:
    res = vmaviz("export", str(tiny), "--format", "csv", "--mode", "both")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


# --- bad input: a message, a nonzero status, never a traceback ----------------------


def _bad_cases(tmp_path: Path, tiny: Path) -> list[tuple[list[str], str]]:
    """(argv, text that must appear in stderr)."""
    missing = tmp_path / "missing.yaml"
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("name: [unclosed\n")
    schema = tmp_path / "schema.yaml"
    schema.write_text(TINY.replace("cpus: 2", "cpus: 0"))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    directory = tmp_path / "adir.yaml"
    directory.mkdir()
    cases: list[tuple[list[str], str]] = []
    for path in (missing, syntax, schema, binary, empty, directory):
        cases.append((["run", str(path)], path.name))
        cases.append((["validate", str(path)], path.name))
        cases.append((["export", str(path), "--format", "csv"], path.name))
    cases += [
        (["run", str(tiny), "--seed", "-1"], "seed"),
        (["run", str(tiny), "--max-steps", "5"], "step limit"),
        (["run", str(tiny), "--mode", "sideways"], "--mode"),
        (["run", str(tiny), "--cpus", "zero"], "--cpus"),
        (["export", str(tiny), "--format", "svg"], "--format"),
        (["export", str(tiny), "--format", "csv", "-o", str(tmp_path / "no" / "x.csv")], "x.csv"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
    ]
    return cases


def test_bad_input_never_tracebacks(tmp_path: Path, tiny: Path) -> None:
    for argv, needle in _bad_cases(tmp_path, tiny):
        res = vmaviz(*argv)
        assert res.returncode in (1, 2), (argv, res.returncode, res.stderr)
        assert "Traceback" not in res.stderr, argv
        assert needle in res.stderr, (argv, res.stderr)


def test_unimplemented_op_is_a_clear_error(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file format knows ops before the model runs them; pretend `compute` is new.
    from vmaviz.model.kernel import OP_ENTRY

    monkeypatch.delitem(OP_ENTRY, "compute")
    assert entry.main(["run", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert "tiny.yaml" in err and "'compute' (line 13)" in err
    assert "Traceback" not in err


def test_interrupt_and_internal_errors_in_process(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    def broken(args: object) -> int:
        raise ZeroDivisionError("model bug")

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "cmd_run", interrupted)
    assert entry.main(["run", str(tiny)]) == cli.EXIT_INTERRUPT
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(cli, "cmd_run", broken)
    assert entry.main(["run", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: model bug" in err
    assert "Traceback" not in err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        entry.main(["run", str(tiny)])


# --- bench ---------------------------------------------------------------------------


def test_bench_engine_and_maple_print_figures() -> None:
    res = vmaviz("bench", "engine", "--seconds", "0.1")
    assert res.returncode == 0, res.stderr
    assert "steps/s" in res.stdout and "bytes/step" in res.stdout
    assert "per_vma" in res.stdout and "mmap_lock" in res.stdout
    res = vmaviz("bench", "maple", "--seconds", "0.05")
    assert res.returncode == 0, res.stderr
    assert "walks/s" in res.stdout


def test_bench_names_match_registry() -> None:
    parser = entry.build_parser()
    args = parser.parse_args(["bench"])
    assert args.which is None and args.func is cli.cmd_bench
    assert set(cli.BENCHES) >= {"maple", "engine"}


def test_bench_browser_refuses_unknown_names_without_a_traceback() -> None:
    """``python -m vmaviz.bench.browser``'s own arguments: help, and a clear refusal
    of a name that is neither a bundled scenario nor a view (before any browser)."""
    import subprocess
    import sys

    from vmaviz.bench import browser

    with pytest.raises(SystemExit) as exit_:
        browser.cli(["default", "no-such-scenario"])
    assert exit_.value.code == 2

    def bench_browser(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vmaviz.bench.browser", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    res = bench_browser("--help")
    assert res.returncode == 0 and "SCENARIO|VIEW" in res.stdout
    assert "Traceback" not in res.stderr
    res = bench_browser("nope")
    assert res.returncode == 2 and "no bundled scenario 'nope'" in res.stderr
    assert "Traceback" not in res.stderr
