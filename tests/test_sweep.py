"""Parameter sweeps (``vmaviz.sweep``): templating, execution, outputs and the CLI."""

from __future__ import annotations

import csv
import functools
import io
import re
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as connection_wait
from pathlib import Path

import pytest
from cli_helpers import run_vmaviz

from vmaviz import __main__ as entry
from vmaviz import cli
from vmaviz.sweep import core, executors, published
from vmaviz.sweep.core import SweepError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "sweep"
PER_THREAD = DATA / "pft-per-thread-vma.yaml"
SINGLE = DATA / "pft-single-vma.yaml"
MODES = ["per_vma", "mmap_lock"]

#: Not a pft scenario (no published data is picked for it); ``pages`` and ``threads``
#: are both placeholders.
PLAIN = """\
name: plain
description: threads fault a shared VMA of ${param:pages} pages
kernel: {cpus: 2, seed: 5}
mm:
  vmas:
    - {name: heap, pages: ${param:pages}, anon_vma: true}
threads:
  - name: t${i}
    count: ${param:threads}
    ops:
      - touch: {vma: heap, pages: "0-1"}
"""


#: Sweeps run several scenarios in the subprocess: a longer hang guard.
vmaviz = functools.partial(run_vmaviz, timeout=300)


# =====================================================================
# Parameters, expansion, substitution
# =====================================================================


def test_parse_param() -> None:
    assert core.parse_param("threads=1,4, 7") == ("threads", ["1", "4", "7"])
    assert core.parse_params(["threads=1,2", "cpus=4"]) == {"threads": ["1", "2"], "cpus": ["4"]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("threads", "expected NAME=V1,V2"),
        ("threads=", "no values given"),
        ("threads=1,,4", "empty value"),
        ("threads=1,", "empty value"),
        ("1x=2", "not a parameter name"),
    ],
)
def test_parse_param_errors(spec: str, message: str) -> None:
    with pytest.raises(SweepError, match=message) as info:
        core.parse_param(spec)
    assert info.value.usage


def test_parse_params_refuses_a_name_twice() -> None:
    with pytest.raises(SweepError, match="given twice"):
        core.parse_params(["threads=1", "threads=2"])


def test_expand_is_the_cartesian_product_first_param_slowest() -> None:
    jobs = core.expand({"threads": ["1", "4"], "cpus": [2, 8]}, MODES)
    assert len(jobs) == 2 * 2 * 2
    assert [j.index for j in jobs] == list(range(8))
    assert [(dict(j.params)["threads"], dict(j.params)["cpus"], j.mode) for j in jobs[:3]] == [
        ("1", "2", "per_vma"),
        ("1", "2", "mmap_lock"),
        ("1", "8", "per_vma"),
    ]
    assert jobs[-1].describe() == "threads=4, cpus=8, mode=mmap_lock"


@pytest.mark.parametrize(
    ("params", "modes", "message"),
    [
        ({"threads": ["1"]}, ["per-vma"], "mode must be"),
        ({"threads": ["1"]}, [], "no modes"),
        ({"threads": ["1"]}, ["per_vma", "per_vma"], "mode is given twice"),
        ({"threads": []}, MODES, "no values"),
        ({"threads": ["1", "1"]}, MODES, "value 1 given twice"),
        ({"threads": ["1\n2"]}, MODES, "line break"),
    ],
)
def test_expand_errors(params: dict, modes: list[str], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        core.expand(params, modes)


def test_substitute_replaces_every_placeholder_and_keeps_lines() -> None:
    out = core.substitute(PLAIN, {"pages": "16", "threads": "3"}, "plain.yaml")
    assert "${param:" not in out
    assert "pages: 16," in out and "count: 3" in out
    assert out.count("\n") == PLAIN.count("\n")
    assert "${i}" in out  # the loader's own templating is left alone


def test_substitute_names_file_and_line_of_a_placeholder_without_value() -> None:
    with pytest.raises(SweepError) as info:
        core.substitute(PLAIN, {"threads": "2"}, "plain.yaml")
    msg = str(info.value)
    assert "plain.yaml:2:" in msg and "plain.yaml:6:" in msg
    assert "${param:pages} has no value" in msg and "--param pages=" in msg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: ${param:}\n", "not a valid placeholder"),
        ("a: ${param:two words}\n", "not a valid placeholder"),
        ("a: 1\nb: ${param:threads\n", "file.yaml:2: unterminated"),
    ],
)
def test_substitute_malformed_placeholders(text: str, message: str) -> None:
    with pytest.raises(SweepError, match=re.escape(message)):
        core.substitute(text, {"threads": "1"}, "file.yaml")


def test_placeholders_in_order() -> None:
    assert core.placeholders(PLAIN) == ["pages", "threads"]


# =====================================================================
# Planning: every variant is validated before anything runs
# =====================================================================


def test_plan_validates_each_variant() -> None:
    plan = core.plan_sweep(PER_THREAD, {"threads": ["1", "4"]}, MODES)
    assert plan.scenario_name == "pft-per-thread-vma-tiny"
    assert plan.param_names == ["threads"]
    assert len(plan.jobs) == len(plan.items) == 4
    assert [len(v.threads) for v in plan.variants] == [1, 4]
    assert plan.items[0].text == plan.items[1].text  # one variant, two modes
    assert plan.items[0].filename == str(PER_THREAD)


def test_plan_error_names_file_line_and_value() -> None:
    # The file declares buf0..buf3: a fifth thread refers to an undeclared VMA.
    with pytest.raises(SweepError) as info:
        core.plan_sweep(PER_THREAD, {"threads": ["2", "5"]}, MODES)
    msg = str(info.value)
    assert msg.startswith(f"{PER_THREAD}: invalid with threads=5:")
    assert re.search(rf"{re.escape(str(PER_THREAD))}:\d+: threads\[0\]", msg)
    assert "buf4" in msg
    assert not info.value.usage


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threads": ["1", "two"]}, "--param threads: 'two' is not an integer"),
        ({"threads": ["0"]}, "--param threads: 0 is below 1"),
        ({"threads": ["1.5"]}, "'1.5' is not an integer"),
        ({"threads": ["1"], "cpus": ["x"]}, "--param cpus: 'x' is not an integer"),
    ],
)
def test_plan_integer_params(params: dict, message: str) -> None:
    with pytest.raises(SweepError, match=re.escape(message)) as info:
        core.plan_sweep(PER_THREAD, params, MODES)
    assert str(PER_THREAD) in str(info.value)
    assert info.value.usage


def test_plan_refuses_a_param_the_file_does_not_use() -> None:
    with pytest.raises(SweepError, match=r"no \$\{param:pages\} and pages is not a kernel"):
        core.plan_sweep(PER_THREAD, {"threads": ["1"], "pages": ["4"]}, MODES)


def test_plan_refuses_a_placeholder_without_value() -> None:
    with pytest.raises(SweepError, match=r"<text>:2: \$\{param:pages\} has no value"):
        core.plan_sweep(PLAIN, {"threads": ["1"]}, MODES)


def test_plan_refuses_a_result_column_name() -> None:
    text = PLAIN.replace("${param:pages}", "${param:steps}")
    with pytest.raises(SweepError, match="taken by a result column"):
        core.plan_sweep(text, {"threads": ["1"], "steps": ["4"]}, MODES)


def test_plan_kernel_override_out_of_range_names_value() -> None:
    with pytest.raises(SweepError) as info:
        core.plan_sweep(PER_THREAD, {"threads": ["1"], "cpus": ["4", "999"]}, MODES)
    msg = str(info.value)
    assert "invalid with threads=1, cpus=999" in msg and "cpus must be an integer" in msg


def test_plan_refuses_arch_twice() -> None:
    with pytest.raises(SweepError, match="not both"):
        core.plan_sweep(PER_THREAD, {"threads": ["1"], "arch": ["x86"]}, MODES, arch="arm64")


def test_plan_unreadable_file() -> None:
    with pytest.raises(SweepError, match="cannot read the file"):
        core.plan_sweep(DATA / "missing.yaml", {"threads": ["1"]}, MODES)


# =====================================================================
# Running
# =====================================================================


def test_rows_columns_and_values() -> None:
    rows = core.run_sweep(PER_THREAD, {"threads": [1, 2]}, MODES)
    assert len(rows) == 4
    assert [(r["threads"], r["mode"]) for r in rows] == [
        (1, "per_vma"),
        (1, "mmap_lock"),
        (2, "per_vma"),
        (2, "mmap_lock"),
    ]
    for row in rows:
        assert list(row) == ["threads", *core.RESULT_COLUMNS]
        assert row["scenario"] == "pft-per-thread-vma-tiny"
        assert row["sim_threads"] == row["threads"]
        assert row["faults"] == 8 * row["threads"]  # each thread writes its 8 pages
        assert row["faults_per_sec"] == pytest.approx(row["faults"] / row["sim_ns"] * 1e9)
        assert row["invariant_violations"] == 0
        assert re.fullmatch(r"[0-9a-f]{64}", row["trace_sha256"])
    per_vma, mmap_lock = rows[2], rows[3]
    assert per_vma["faults_via_vma_lock"] == per_vma["faults"]
    assert mmap_lock["faults_via_mmap_lock"] == mmap_lock["faults"]
    assert mmap_lock["vma_lock_success"] == 0


def test_kernel_param_overrides_and_arch() -> None:
    rows = core.run_sweep(PER_THREAD, {"threads": [2], "cpus": [1, 2]}, ["per_vma"], "arm64")
    assert [(r["cpus"], r["arch"]) for r in rows] == [(1, "arm64"), (2, "arm64")]
    assert list(rows[0])[:2] == ["threads", "cpus"]
    # One CPU serialises the two threads: a longer makespan than with two.
    assert rows[0]["sim_ns"] > rows[1]["sim_ns"]


def test_sweep_from_text() -> None:
    rows = core.run_sweep(PLAIN, {"threads": [1, 2], "pages": [4]}, ["mmap_lock"])
    assert [r["pages"] for r in rows] == [4, 4]
    assert [r["faults"] for r in rows] == [2, 4]


def test_inline_and_process_pool_give_identical_rows() -> None:
    params = {"threads": [1, 2, 4]}
    inline = core.run_sweep(SINGLE, params, MODES, executor=executors.InlineExecutor())
    with executors.make_executor(jobs=2) as pool:
        assert isinstance(pool, ProcessPoolExecutor)
        pooled = core.run_sweep(SINGLE, params, MODES, executor=pool)
    assert pooled == inline
    assert [r["trace_sha256"] for r in pooled] == [r["trace_sha256"] for r in inline]
    assert len({r["trace_sha256"] for r in inline}) == len(inline)


def test_progress_hook_counts_every_run() -> None:
    calls: list[tuple[int, int]] = []
    core.run_sweep(SINGLE, {"threads": [1, 2]}, MODES, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_engine_error_names_the_run() -> None:
    with pytest.raises(SweepError, match=r"run threads=1, mode=per_vma: step limit reached"):
        core.run_sweep(SINGLE, {"threads": [1]}, ["per_vma"], max_steps=5)


def test_rows_come_back_in_job_order_whatever_the_completion_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = core.plan_sweep(SINGLE, {"threads": [1, 2, 4]}, MODES)
    calls: list = []

    class Deferred(executors.InlineExecutor):
        """Hands out futures that only run when as_completed asks for them."""

        def submit(self, fn, /, *args, **kwargs):
            fut: Future = Future()
            calls.append((fut, fn, args))
            return fut

    def reverse_completion(futures):
        # Finish the runs last-submitted first, yielding each as it finishes.
        for fut, fn, args in reversed(calls):
            assert fut in futures
            fut.set_result(fn(*args))
            yield fut

    monkeypatch.setattr(core, "as_completed", reverse_completion)
    seen: list[int] = []
    rows = core.execute(plan, Deferred(), progress=lambda done, total: seen.append(done))
    assert seen == [0, 1, 2, 3, 4, 5, 6]
    monkeypatch.undo()
    assert rows == core.execute(plan)
    assert [(r["threads"], r["mode"]) for r in rows[:2]] == [(1, "per_vma"), (1, "mmap_lock")]


# =====================================================================
# Executors
# =====================================================================


def test_inline_executor() -> None:
    ex = executors.InlineExecutor()
    assert ex.submit(pow, 2, 5).result() == 32
    assert list(ex.map(abs, [-1, -2])) == [1, 2]
    fut = ex.submit(int, "x")
    assert fut.done() and isinstance(fut.exception(), ValueError)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(pow, 2, 2)


def test_make_executor_choices() -> None:
    assert isinstance(executors.make_executor(1), executors.InlineExecutor)
    with pytest.raises(ValueError, match="at least 1"):
        executors.make_executor(0)


def test_stop_now_terminates_busy_workers() -> None:
    pool = executors.make_executor(jobs=2)
    assert isinstance(pool, ProcessPoolExecutor)
    busy = [pool.submit(time.sleep, 600) for _ in range(3)]
    # Wait until a worker has started (spawn), so there is a process to stop.
    deadline = time.monotonic() + 120
    while not any(f.running() for f in busy) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = list((pool._processes or {}).values())
    assert workers
    executors.stop_now(pool)
    # A process's sentinel is ready once it has exited. (is_alive() can be stale here:
    # the pool's own thread reaps the workers too, racing this thread's join.)
    for proc in workers:
        assert connection_wait([proc.sentinel], timeout=60)
    # Queued runs are cancelled, the others fail: none is left running.
    for fut in busy:
        assert fut.cancelled() or isinstance(fut.exception(timeout=60), BrokenProcessPool)


def test_dask_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import now raises ImportError
    with pytest.raises(executors.ExecutorUnavailable, match=r"install requirements-dask\.txt"):
        executors.make_executor(1, "tcp://127.0.0.1:1")


def test_cli_dask_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    argv = ["sweep", str(SINGLE), "--param", "threads=1", "--dask", "tcp://127.0.0.1:1"]
    assert entry.main([*argv, "--out", str(tmp_path / "o")]) == cli.EXIT_FAIL
    err = capsys.readouterr().err
    assert "--dask needs dask.distributed: install requirements-dask.txt" in err
    assert "Traceback" not in err


# =====================================================================
# Published data
# =====================================================================


def test_published_datasets_available() -> None:
    assert {"pft_threads_single_vma", "pft_per_thread_vma"} <= set(published.available())


def test_published_spot_checks_against_calibration_tables() -> None:
    single = {(p.threads, p.mode): p for p in published.load_published("pft_threads_single_vma")}
    per_thread = {(p.threads, p.mode): p for p in published.load_published("pft_per_thread_vma")}
    assert len(single) == len(per_thread) == 20
    assert sorted({t for t, _ in single}) == [1, 4, 7, 12, 21, 30, 48, 79, 110, 128]
    # calibration.md §1b (base = mmap_lock, pvl-v2+opt = per_vma)
    assert single[(128, "mmap_lock")].faults_per_sec == 6_460_728
    assert single[(128, "per_vma")].faults_per_sec == 8_049_910
    assert single[(4, "per_vma")].faults_per_sec == 2_726_451
    assert single[(1, "mmap_lock")].faults_per_cpu_sec == 898_793
    assert single[(128, "per_vma")].faults_per_cpu_sec == 69_248
    assert single[(48, "mmap_lock")].source == "lore:87r0uqq1f9.fsf@stealth"
    # calibration.md §1c
    assert per_thread[(128, "per_vma")].faults_per_sec == 18_680_029
    assert per_thread[(128, "mmap_lock")].faults_per_sec == 6_472_971
    assert per_thread[(21, "per_vma")].faults_per_cpu_sec == 433_377
    assert per_thread[(7, "mmap_lock")].faults_per_cpu_sec == 617_154
    assert per_thread[(1, "per_vma")].source == "lore:87fsaqouyd.fsf_-_@stealth"


def test_published_load_errors(tmp_path: Path) -> None:
    with pytest.raises(published.PublishedDataError, match="unknown published dataset"):
        published.load_published("nope")
    bad = tmp_path / "bad.csv"
    bad.write_text("threads,mode\n1,per_vma\n")
    with pytest.raises(published.PublishedDataError, match="missing column"):
        published.load_published(bad)
    bad.write_text("threads,mode,faults_per_sec,faults_per_cpu_sec,source\n1,spf,2,3,x\n")
    with pytest.raises(published.PublishedDataError, match=r"bad.csv:2: mode must be"):
        published.load_published(bad)


def test_published_auto_pick() -> None:
    assert published.auto_pick("pft-per-thread-vma-tiny") == "pft_per_thread_vma"
    assert published.auto_pick("pft_per_thread") == "pft_per_thread_vma"
    assert published.auto_pick("pft-threads") == "pft_threads_single_vma"
    assert published.auto_pick("default") is None


# =====================================================================
# Outputs
# =====================================================================


def script_tags(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", html)


def test_write_outputs(tmp_path: Path) -> None:
    rows = core.run_sweep(SINGLE, {"threads": [1, 2]}, MODES)
    csv_path, html_path = core.write_outputs(
        rows, tmp_path / "out", published="pft_threads_single_vma"
    )
    assert csv_path == tmp_path / "out" / "sweep.csv" and html_path.name == "sweep.html"
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        back = list(reader)
    assert reader.fieldnames == ["threads", *core.RESULT_COLUMNS]
    assert len(back) == 4
    for row, orig in zip(back, rows, strict=True):
        assert int(row["sim_ns"]) == orig["sim_ns"]
        assert float(row["faults_per_sec"]) == orig["faults_per_sec"]  # round-trips exactly
        assert row["trace_sha256"] == orig["trace_sha256"]
    html = html_path.read_text(encoding="utf-8")
    tags = script_tags(html)
    assert tags and not [t for t in tags if "src" in t]  # plotly.js is inline, no CDN
    assert not re.search(r"<link\b[^>]*href=[\"']?https?:", html)
    assert "lore:87r0uqq1f9.fsf@stealth" in html  # published hover text
    assert "published: mmap_lock" in html and "per_vma" in html


def test_write_outputs_metric_alias_and_errors(tmp_path: Path) -> None:
    rows = core.run_sweep(SINGLE, {"threads": [1]}, ["per_vma"])
    _, html = core.write_outputs(rows, tmp_path, metric="makespan_ns")
    assert "sim_ns" in html.read_text(encoding="utf-8")
    with pytest.raises(SweepError, match="unknown metric"):
        core.write_outputs(rows, tmp_path, metric="nope")
    with pytest.raises(SweepError, match="cannot be compared with --metric latency_p99_ns"):
        core.write_outputs(rows, tmp_path, published="pft_per_thread_vma", metric="latency_p99_ns")
    with pytest.raises(SweepError, match="first --param must be threads"):
        core.write_outputs(rows, tmp_path, published="pft_per_thread_vma", x="cpus")


def test_figure_lines_per_mode_and_extra_param() -> None:
    from vmaviz.sweep import plot

    rows = core.run_sweep(PER_THREAD, {"threads": [1, 2], "cpus": [1, 2]}, MODES)
    fig = plot.sweep_figure(rows, "threads", "faults_per_sec")
    names = sorted(t.name for t in fig.data)
    assert names == sorted(f"{m}, cpus={c}" for m in MODES for c in (1, 2))
    assert all(list(t.x) == [1, 2] for t in fig.data)


def test_progress_printer_tty_and_lines() -> None:
    ticks = iter([0.0, 1.0, 2.0, 4.0])
    out = io.StringIO()
    printer = core.ProgressPrinter(out, tty=True, clock=lambda: next(ticks), width=10)
    for done in range(4):
        printer(done, 3)
    text = out.getvalue()
    assert text.startswith("\r[..........] 0/3 runs")
    assert "\r[###.......] 1/3 runs, 1.0 s elapsed, ETA 2 s" in text
    assert "\r[##########] 3/3 runs, 4.0 s elapsed" in text and text.endswith("\n")

    out = io.StringIO()
    printer = core.ProgressPrinter(out, tty=True, clock=lambda: 0.0)
    printer(0, 2)
    printer(1, 2)
    printer.close()  # an interrupted sweep: end the bar's line
    printer.close()
    assert out.getvalue().endswith("ETA 0 s    \n") and out.getvalue().count("\n") == 1

    ticks = iter([0.0, 1.0, 2.0])
    out = io.StringIO()
    printer = core.ProgressPrinter(out, tty=False, clock=lambda: next(ticks))
    for done in range(3):
        printer(done, 2)
    assert out.getvalue().splitlines() == [
        "sweep: 1/2 runs, 1.0 s elapsed, ETA 1 s",
        "sweep: 2/2 runs, 2.0 s elapsed",
    ]


# =====================================================================
# CLI
# =====================================================================


def test_cli_sweep_writes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = vmaviz("sweep", str(SINGLE), "--param", "threads=1,2", "--jobs", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "sweep.csv").is_file() and (out / "sweep.html").is_file()
    with (out / "sweep.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["threads"], r["mode"]) for r in rows] == [
        ("1", "per_vma"),
        ("1", "mmap_lock"),
        ("2", "per_vma"),
        ("2", "mmap_lock"),
    ]
    assert "faults/s" in res.stdout and len(res.stdout.splitlines()) == 5
    # stderr is not a TTY here: one progress line per finished run.
    assert res.stderr.count("sweep: ") == 4 and "4/4 runs" in res.stderr
    assert "published data pft_threads_single_vma" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_sweep_same_rows_as_the_api(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = entry.main(
        [
            "sweep",
            str(PER_THREAD),
            "--param=threads=1,2",
            "--mode=per_vma",
            "--metric=latency_p99_ns",
            f"--out={tmp_path}",
        ]
    )
    assert status == 0
    capsys.readouterr()
    with (tmp_path / "sweep.csv").open(newline="") as f:
        shas = [r["trace_sha256"] for r in csv.DictReader(f)]
    api = core.run_sweep(PER_THREAD, {"threads": [1, 2]}, ["per_vma"])
    assert shas == [r["trace_sha256"] for r in api]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--param", "threads="], cli.EXIT_USAGE, "--param threads: no values given"),
        (["--param", "threads=1,x"], cli.EXIT_USAGE, "--param threads: 'x' is not an integer"),
        (["--param", "threads=1", "--metric", "nope"], cli.EXIT_USAGE, "unknown metric 'nope'"),
        (["--param", "threads=1", "--published", "nope"], cli.EXIT_USAGE, "unknown published"),
        (
            ["--param", "threads=1", "--published", "pft_per_thread_vma", "--metric", "steps"],
            cli.EXIT_USAGE,
            "cannot be compared",
        ),
        (["--param", "threads=9"], cli.EXIT_FAIL, "invalid with threads=9"),
        (["--param", "threads=1", "--max-steps", "3"], cli.EXIT_FAIL, "step limit reached"),
    ],
)
def test_cli_sweep_errors(
    args: list[str], status: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert entry.main(["sweep", str(PER_THREAD), *args, "--out", str(tmp_path / "o")]) == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written on failure


def test_cli_sweep_unsubstituted_placeholder_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(PLAIN)
    res = vmaviz("sweep", str(path), "--param", "threads=1,2", "--out", str(tmp_path / "o"))
    assert res.returncode == cli.EXIT_FAIL
    assert f"{path}:2: ${{param:pages}} has no value" in res.stderr
    assert "Traceback" not in res.stderr
    res = vmaviz("sweep", str(path), "--param", "threads=1,two", "--param", "pages=4")
    assert res.returncode == cli.EXIT_USAGE
    assert "'two' is not an integer" in res.stderr and "Traceback" not in res.stderr


def test_cli_sweep_needs_a_param() -> None:
    res = vmaviz("sweep", str(SINGLE))
    assert res.returncode == cli.EXIT_USAGE and "--param" in res.stderr
