"""Parameter sweeps: one scenario run over the cartesian product of parameter values.

A scenario file becomes a template by writing ``${param:NAME}`` where a value should
go, e.g. ``count: ${param:threads}``. Each variant is made by substituting the text
*before* it is loaded, so every ordinary field can be swept and every variant is
validated like any other file (errors name the file, the line and the value). The
names ``cpus``, ``seed`` and ``arch`` may also be swept without a placeholder: they
then override the kernel settings of the loaded scenario.

The API, in the order a caller uses it:

* :func:`parse_param` turns ``threads=1,4,7`` into ``("threads", ["1", "4", "7"])``;
* :func:`expand` lists the runs (:class:`Job`) of parameters x modes;
* :func:`plan_sweep` substitutes and validates every variant (:class:`SweepPlan`);
* :func:`execute` runs a plan on any :class:`concurrent.futures.Executor`;
* :func:`run_sweep` is plan + execute in one call;
* :func:`write_outputs` writes ``sweep.csv`` and ``sweep.html``.

Progress hook: :func:`execute` and :func:`run_sweep` take ``progress``, a callable
``progress(done, total)`` called once with ``done == 0`` before the first run starts
and then after each run completes (in completion order, from the calling thread).
A front end can use it to drive a progress bar; :class:`ProgressPrinter` is the
terminal one. It must be quick: runs that finish meanwhile wait for it.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vmaviz.model.kernel import ABORT_REASONS
from vmaviz.scenario import Scenario, ScenarioErrors, load_scenario_text
from vmaviz.scenario.schema import MAX_FILE_BYTES, MODES

#: ``progress(done, total)``; see the module docstring.
Progress = Callable[[int, int], None]

#: ``${param:NAME}``; the group is everything up to the closing brace, so a bad name
#: (``${param:}``, ``${param:a b}``) is matched and reported rather than left in place.
PLACEHOLDER_RE = re.compile(r"\$\{param:([^}\n]*)\}")
PARAM_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Names that override kernel settings when the file has no placeholder for them.
KERNEL_PARAMS = ("cpus", "seed", "arch")
#: Parameters whose values must be integers, with the smallest value allowed.
INTEGER_PARAMS = {"threads": 1, "cpus": 1, "seed": 0}

#: The result columns of every row, after the parameter columns. ``cpus``, ``seed``
#: and ``arch`` always hold the run's kernel setting, also when they are swept.
RESULT_COLUMNS: tuple[str, ...] = (
    "scenario",
    "mode",
    "arch",
    "seed",
    "cpus",
    "sim_threads",
    "steps",
    "sim_ns",
    "faults",
    "faults_per_sec",
    "faults_via_vma_lock",
    "faults_via_mmap_lock",
    "faults_kernel_mode",
    "faults_sigsegv",
    "latency_mean_ns",
    "latency_p50_ns",
    "latency_p99_ns",
    "latency_max_ns",
    "mmap_read_acquired",
    "mmap_write_acquired",
    "mmap_read_wait_ns",
    "mmap_write_wait_ns",
    "mmap_max_wait_ns",
    "vma_lock_success",
    "vma_lock_abort",
    "vma_lock_retry",
    "vma_lock_miss",
    *(f"abort_{reason}" for reason in ABORT_REASONS),
    "invariant_violations",
    "trace_sha256",
)
#: Columns that are not numbers, so not plottable as a metric.
_TEXT_COLUMNS = frozenset({"scenario", "mode", "arch", "trace_sha256"})
#: ``--metric`` values: every numeric result column, plus friendlier aliases.
METRIC_ALIASES = {"makespan_ns": "sim_ns"}
METRICS: tuple[str, ...] = (
    "faults_per_sec",
    *METRIC_ALIASES,
    *(c for c in RESULT_COLUMNS if c not in _TEXT_COLUMNS and c != "faults_per_sec"),
)

CSV_NAME = "sweep.csv"
HTML_NAME = "sweep.html"


class SweepError(ValueError):
    """A sweep that cannot be set up or run; the message is ready for the user.

    Attributes:
        usage: True for a command-line mistake (a malformed ``--param``), False for
            a problem in the scenario or a run.
    """

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


# =====================================================================
# Parameters and jobs
# =====================================================================


def parse_param(spec: str) -> tuple[str, list[str]]:
    """Parse one ``--param NAME=V1,V2,...``.

    Raises:
        SweepError: No ``=``, a bad name, or an empty value.
    """
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep:
        raise SweepError(f"--param {spec!r}: expected NAME=V1,V2,...", usage=True)
    if not PARAM_NAME_RE.fullmatch(name):
        raise SweepError(
            f"--param {spec!r}: {name!r} is not a parameter name (letters, digits, '_')",
            usage=True,
        )
    items = [v.strip() for v in values.split(",")]
    if not values.strip():
        raise SweepError(f"--param {name}: no values given", usage=True)
    if any(not v for v in items):
        raise SweepError(f"--param {name}={values}: empty value in the list", usage=True)
    return name, items


def parse_params(specs: Sequence[str]) -> dict[str, list[str]]:
    """Parse every ``--param``, keeping their order (the first one is the x axis).

    Raises:
        SweepError: A malformed ``--param`` or a name given twice.
    """
    params: dict[str, list[str]] = {}
    for spec in specs:
        name, values = parse_param(spec)
        if name in params:
            raise SweepError(f"--param {name} given twice; list all values in one", usage=True)
        params[name] = values
    return params


@dataclass(frozen=True)
class Job:
    """One run of a sweep.

    Attributes:
        index: Position in the sweep; rows come back in this order.
        params: ``(name, value)`` for each parameter, in parameter order.
        mode: ``per_vma`` or ``mmap_lock``.
    """

    index: int
    params: tuple[tuple[str, str], ...]
    mode: str

    def describe(self) -> str:
        """``threads=4, mode=per_vma``: the run in messages."""
        return ", ".join([*(f"{k}={v}" for k, v in self.params), f"mode={self.mode}"])


def _check_values(params: Mapping[str, Sequence[str | int]]) -> dict[str, list[str]]:
    """The values as strings; raises :class:`SweepError` on empty or repeated ones."""
    out: dict[str, list[str]] = {}
    for name, raw in params.items():
        if not PARAM_NAME_RE.fullmatch(name):
            raise SweepError(f"{name!r} is not a parameter name (letters, digits, '_')", usage=True)
        values = [str(v).strip() for v in raw]
        if not values:
            raise SweepError(f"parameter {name}: no values given", usage=True)
        for v in values:
            if not v:
                raise SweepError(f"parameter {name}: empty value in the list", usage=True)
            if "\n" in v or "\r" in v:
                # A line break would shift the loader's line numbers off the template's.
                raise SweepError(f"parameter {name}: value {v!r} holds a line break", usage=True)
        seen: set[str] = set()
        for v in values:
            if v in seen:
                raise SweepError(f"parameter {name}: value {v} given twice", usage=True)
            seen.add(v)
        out[name] = values
    return out


def expand(params: Mapping[str, Sequence[str | int]], modes: Sequence[str]) -> list[Job]:
    """Every run of ``params`` x ``modes``, the first parameter varying slowest.

    Args:
        params: Parameter name to its values (ints are taken as their decimal text).
        modes: Locking modes, each ``per_vma`` or ``mmap_lock``.

    Returns:
        The jobs, indexed in order.

    Raises:
        SweepError: An unknown or repeated mode, an empty value list, a repeated value.
    """
    values = _check_values(params)
    if not modes:
        raise SweepError("no modes given", usage=True)
    for mode in modes:
        if mode not in MODES:
            raise SweepError(f"mode must be per_vma or mmap_lock, got {mode!r}", usage=True)
    if len(set(modes)) != len(modes):
        raise SweepError("a mode is given twice", usage=True)
    names = list(values)
    jobs = []
    for i, combo in enumerate(itertools.product(*values.values(), modes)):
        *vals, mode = combo
        jobs.append(Job(i, tuple(zip(names, vals, strict=True)), mode))
    return jobs


def modes_for(choice: str) -> list[str]:
    """``--mode`` to the list of modes (``both`` is every mode)."""
    return list(MODES) if choice == "both" else [choice]


# =====================================================================
# Substitution and validation
# =====================================================================


def placeholders(text: str) -> list[str]:
    """The parameter names a scenario text uses, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER_RE.finditer(text)))


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def substitute(text: str, values: Mapping[str, str], filename: str = "<text>") -> str:
    """``text`` with every ``${param:NAME}`` replaced by ``values[NAME]``.

    Line numbers are kept (values hold no newline), so the loader's errors point at
    the template's lines.

    Raises:
        SweepError: A placeholder without a value, a malformed placeholder, or an
            unterminated ``${param:``; the message names the file and line.
    """
    problems: list[str] = []

    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if not PARAM_NAME_RE.fullmatch(name):
            problems.append(
                f"{filename}:{_line_of(text, m.start())}: {m.group(0)!r} is not a valid"
                " placeholder (expected ${param:NAME})"
            )
            return m.group(0)
        if name not in values:
            problems.append(
                f"{filename}:{_line_of(text, m.start())}: ${{param:{name}}} has no value"
                f" (give --param {name}=V1,V2,...)"
            )
            return m.group(0)
        return values[name]

    out = PLACEHOLDER_RE.sub(replace, text)
    if not problems:
        # Scan the template, not the output: a value may hold "${" (e.g. "buf${i}").
        for m in re.finditer(r"\$\{param:", text):
            if not PLACEHOLDER_RE.match(text, m.start()):
                problems.append(
                    f"{filename}:{_line_of(text, m.start())}: unterminated '${{param:' (expected"
                    " ${param:NAME} on one line)"
                )
    if problems:
        raise SweepError("\n".join(dict.fromkeys(problems)))
    return out


@dataclass(frozen=True)
class WorkItem:
    """What a worker needs for one run: plain, picklable data.

    Attributes:
        text: The scenario text with every placeholder substituted.
        filename: The template's name, for messages.
        overrides: Kernel settings to change after loading, as ``(field, value)``.
        mode: ``per_vma`` or ``mmap_lock``.
        max_steps: The engine's step limit (``None``: its default).
    """

    text: str
    filename: str
    overrides: tuple[tuple[str, Any], ...]
    mode: str
    max_steps: int | None = None


@dataclass
class SweepPlan:
    """A validated sweep, ready to execute.

    Attributes:
        filename: The template's name, for messages.
        scenario_name: ``name:`` of the (first) variant.
        param_names: The parameters, in order (the first is the plot's x axis).
        jobs: One per run.
        items: ``items[i]`` is the work of ``jobs[i]``.
        variants: Every distinct loaded variant (one per parameter combination),
            so a caller can check them further before running.
    """

    filename: str
    scenario_name: str
    param_names: list[str]
    jobs: list[Job]
    items: list[WorkItem]
    variants: list[Scenario] = field(default_factory=list)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path}: not UTF-8 text (offset {exc.start})") from None


def _source(path_or_text: str | Path, filename: str | None) -> tuple[str, str, Path | None]:
    """(text, name for messages, path) of a file path or a YAML text."""
    if isinstance(path_or_text, Path) or "\n" not in path_or_text:
        path = Path(path_or_text)
        return _read(path), filename or str(path_or_text), path
    return path_or_text, filename or "<text>", None


def _typed(name: str, value: str, filename: str) -> Any:
    """A kernel-override value in the type the scenario expects."""
    if name in INTEGER_PARAMS:
        return _integer(name, value, filename)
    return value


def _integer(name: str, value: str, filename: str) -> int:
    lo = INTEGER_PARAMS[name]
    try:
        number = int(value, 10)
    except ValueError:
        raise SweepError(
            f"{filename}: --param {name}: {value!r} is not an integer", usage=True
        ) from None
    if number < lo:
        raise SweepError(f"{filename}: --param {name}: {value} is below {lo}", usage=True)
    return number


def plan_sweep(
    path_or_text: str | Path,
    params: Mapping[str, Sequence[str | int]],
    modes: Sequence[str],
    arch: str | None = None,
    *,
    filename: str | None = None,
    max_steps: int | None = None,
) -> SweepPlan:
    """Substitute and validate every variant of a sweep; run nothing.

    Args:
        path_or_text: A scenario file (a :class:`~pathlib.Path`, or a string without a
            newline), or the YAML text itself (a string with a newline).
        params: Parameter name to values; see the module docstring.
        modes: ``per_vma`` and/or ``mmap_lock``.
        arch: Fault-handler arch for every run (default: the scenario's, or the
            ``arch`` parameter).
        filename: The name errors show (default: the path, or ``<text>``).
        max_steps: The engine's step limit per run.

    Returns:
        The plan.

    Raises:
        SweepError: A bad parameter, a parameter the file does not use, a placeholder
            without a value, or a variant that does not load (all its errors, with the
            parameter values that made it).
    """
    text, name, path = _source(path_or_text, filename)
    jobs = expand(params, modes)
    values = _check_values(params)
    used = placeholders(text)
    for pname, pvalues in values.items():
        if pname not in used and pname not in KERNEL_PARAMS:
            raise SweepError(
                f"{name}: --param {pname}: the file has no ${{param:{pname}}} and {pname} is"
                f" not a kernel setting ({', '.join(KERNEL_PARAMS)})"
            )
        if pname in RESULT_COLUMNS and pname not in KERNEL_PARAMS:
            hint = " (use --mode)" if pname == "mode" else ""
            raise SweepError(
                f"--param {pname}: the name is taken by a result column{hint}", usage=True
            )
        if pname in INTEGER_PARAMS:
            for v in pvalues:
                _integer(pname, v, name)
    if arch is not None and "arch" in values:
        raise SweepError("give the arch with --arch or --param arch, not both", usage=True)

    items: list[WorkItem] = []
    variants: dict[tuple[tuple[str, str], ...], tuple[str, tuple[tuple[str, Any], ...]]] = {}
    loaded: list[Scenario] = []
    for job in jobs:
        key = job.params
        if key not in variants:
            text_values = {k: v for k, v in key if k in used}
            overrides = tuple((k, _typed(k, v, name)) for k, v in key if k not in used)
            if arch is not None:
                overrides += (("arch", arch),)
            variant = substitute(text, text_values, name)
            loaded.append(_validate(variant, name, path, overrides, job))
            variants[key] = (variant, overrides)
        variant, overrides = variants[key]
        items.append(WorkItem(variant, name, overrides, job.mode, max_steps))
    return SweepPlan(
        filename=name,
        scenario_name=loaded[0].name,
        param_names=list(values),
        jobs=jobs,
        items=items,
        variants=loaded,
    )


def _validate(
    text: str,
    filename: str,
    path: Path | None,
    overrides: tuple[tuple[str, Any], ...],
    job: Job,
) -> Scenario:
    where = ", ".join(f"{k}={v}" for k, v in job.params) or "no parameters"
    try:
        scenario = load_scenario_text(text, filename, path=path)
    except ScenarioErrors as exc:
        raise SweepError(f"{filename}: invalid with {where}:\n{exc}") from None
    try:
        return scenario.with_overrides(**dict(overrides)) if overrides else scenario
    except ValueError as exc:
        raise SweepError(f"{filename}: invalid with {where}: {exc}") from None


# =====================================================================
# Running
# =====================================================================


def run_item(item: WorkItem) -> dict[str, Any]:
    """Run one work item and return its result columns (the worker's function).

    Loads the scenario from the text, so only plain data crosses process or machine
    boundaries.

    Raises:
        EngineError: The run cannot finish (step limit, bad cost name).
    """
    from vmaviz.engine.engine import run_to_end

    scenario = load_scenario_text(item.text, item.filename)
    if item.overrides:
        scenario = scenario.with_overrides(**dict(item.overrides))
    summary = run_to_end(scenario, item.mode, max_steps=item.max_steps).summary()
    return result_columns(scenario, summary)


def result_columns(scenario: Scenario, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`RESULT_COLUMNS` of a run, from ``Engine.summary()``."""
    faults = summary["faults"]
    lat = faults["latency_ns"]
    mm = summary["mmap_lock"]
    vl = summary["vma_lock"]
    sim_ns = int(summary["sim_ns"])
    total = int(faults["total"])
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "mode": summary["mode"],
        "arch": summary["arch"],
        "seed": summary["seed"],
        "cpus": scenario.kernel.cpus,
        "sim_threads": len(summary["threads"]),
        "steps": summary["steps"],
        "sim_ns": sim_ns,
        "faults": total,
        "faults_per_sec": total / sim_ns * 1e9 if sim_ns > 0 else 0.0,
        "faults_via_vma_lock": faults["via_vma_lock"],
        "faults_via_mmap_lock": faults["via_mmap_lock"],
        "faults_kernel_mode": faults["kernel_mode"],
        "faults_sigsegv": faults["sigsegv"],
        "latency_mean_ns": lat["mean"],
        "latency_p50_ns": lat["p50"],
        "latency_p99_ns": lat["p99"],
        "latency_max_ns": lat["max"],
        "mmap_read_acquired": mm["read_acquired"],
        "mmap_write_acquired": mm["write_acquired"],
        "mmap_read_wait_ns": mm["read_wait_ns"],
        "mmap_write_wait_ns": mm["write_wait_ns"],
        "mmap_max_wait_ns": mm["max_wait_ns"],
        "vma_lock_success": vl["success"],
        "vma_lock_abort": vl["abort"],
        "vma_lock_retry": vl["retry"],
        "vma_lock_miss": vl["miss"],
        **{f"abort_{r}": summary["abort_reasons"].get(r, 0) for r in ABORT_REASONS},
        "invariant_violations": len(summary["invariant_violations"]),
        "trace_sha256": summary["trace_sha256"],
    }
    return row


def _param_value(value: str) -> Any:
    """A parameter value as it goes in a row: an int when it is one, else the text."""
    return int(value) if re.fullmatch(r"-?\d+", value) else value


def execute(
    plan: SweepPlan, executor: Executor | None = None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Run every job of a plan.

    Args:
        plan: From :func:`plan_sweep`.
        executor: Where to run (default: inline, in this thread). The caller keeps
            ownership of an executor it passes and shuts it down itself.
        progress: The progress hook (module docstring).

    Returns:
        One row per job, in job order whatever order the runs finished in: the
        parameter columns, then :data:`RESULT_COLUMNS` (a result column with the
        name of a parameter, such as ``cpus``, takes the parameter's place).

    Raises:
        SweepError: A run failed in the engine (the message names the run).
    """
    from vmaviz.engine.engine import EngineError
    from vmaviz.sweep.executors import InlineExecutor

    ex = executor if executor is not None else InlineExecutor()
    total = len(plan.items)
    results: list[dict[str, Any] | None] = [None] * total
    pending: dict[Future[dict[str, Any]], int] = {}
    done = 0

    def harvest(fut: Future[dict[str, Any]]) -> None:
        nonlocal done
        index = pending.pop(fut)
        job = plan.jobs[index]
        try:
            results[index] = fut.result()
        except EngineError as exc:
            raise SweepError(f"{plan.filename}: run {job.describe()}: {exc}") from None
        except Exception as exc:
            exc.add_note(f"in sweep run {job.describe()} of {plan.filename}")
            raise
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    try:
        for index, item in enumerate(plan.items):
            pending[ex.submit(run_item, item)] = index
            # Collect what has finished while submitting: with the inline executor
            # that is every run, so progress moves during the submit loop too.
            for fut in [f for f in pending if f.done()]:
                harvest(fut)
        for fut in as_completed(list(pending)):
            harvest(fut)
    except BaseException:
        for fut in pending:
            fut.cancel()
        raise
    finally:
        if executor is None:
            ex.shutdown()
    rows = []
    for job, result in zip(plan.jobs, results, strict=True):
        assert result is not None  # every future was harvested or an error was raised
        rows.append({**{k: _param_value(v) for k, v in job.params}, **result})
    return rows


def run_sweep(
    path_or_text: str | Path,
    params: Mapping[str, Sequence[str | int]],
    modes: Sequence[str],
    arch: str | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    *,
    filename: str | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """Plan and run a sweep: :func:`plan_sweep` then :func:`execute`.

    Args:
        path_or_text: A scenario file, or its YAML text (see :func:`plan_sweep`).
        params: Parameter name to values, e.g. ``{"threads": [1, 4, 7]}``.
        modes: ``per_vma`` and/or ``mmap_lock``.
        arch: Fault-handler arch for every run (default: the scenario's).
        executor: Where to run (default: inline).
        progress: The progress hook (module docstring).
        filename: The name errors show.
        max_steps: The engine's step limit per run.

    Returns:
        One row per run, in :func:`expand` order.

    Raises:
        SweepError: Any problem with the parameters, a variant or a run.
    """
    plan = plan_sweep(path_or_text, params, modes, arch, filename=filename, max_steps=max_steps)
    return execute(plan, executor, progress)


# =====================================================================
# Outputs
# =====================================================================


def metric_column(metric: str) -> str:
    """The row column behind a ``--metric`` name.

    Raises:
        SweepError: An unknown metric.
    """
    column = METRIC_ALIASES.get(metric, metric)
    if column not in RESULT_COLUMNS or column in _TEXT_COLUMNS:
        raise SweepError(f"unknown metric {metric!r} (one of: {', '.join(METRICS)})", usage=True)
    return column


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Write rows to ``path`` (the columns of the first row, in its order)."""
    columns = list(rows[0]) if rows else [*RESULT_COLUMNS]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _csv_value(value: Any) -> Any:
    # repr() of a float is the shortest text that reads back to the same float.
    return repr(value) if isinstance(value, float) else value


def write_outputs(
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    published: Any = None,
    metric: str = "faults_per_sec",
    *,
    x: str | None = None,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Write ``sweep.csv`` and ``sweep.html`` into ``out_dir`` (created if missing).

    Args:
        rows: From :func:`execute` / :func:`run_sweep`.
        out_dir: The output directory.
        published: Published points to overlay: a dataset name or CSV path (see
            :mod:`vmaviz.sweep.published`), a list of
            :class:`~vmaviz.sweep.published.PublishedPoint`, or ``None``.
        metric: The y axis, one of :data:`METRICS`.
        x: The x axis column (default: the first column, i.e. the first parameter).
        title: The figure title (default: scenario, metric and x).

    Returns:
        The paths of the CSV and the HTML file.

    Raises:
        SweepError: An unknown metric, no rows, or published data that cannot be
            compared with this metric or x axis.
        OSError: The directory or a file cannot be written.
    """
    from vmaviz.sweep import plot

    if not rows:
        raise SweepError("no rows to write")
    column = metric_column(metric)
    x_col = x if x is not None else next(iter(rows[0]))
    points = resolve_published(published, metric, x_col)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / CSV_NAME
    html_path = out / HTML_NAME
    write_csv(rows, csv_path)
    fig = plot.sweep_figure(rows, x_col, column, points, title=title, metric_label=metric)
    plot.write_html(fig, html_path)
    return csv_path, html_path


def resolve_published(published: Any, metric: str, x: str) -> list[Any] | None:
    """Load ``published`` (if a name or path) and check it fits ``metric`` and ``x``.

    Raises:
        SweepError: The data cannot be read, has no such metric, or the x axis is not
            ``threads`` (the published points are per thread count).
    """
    from vmaviz.sweep.published import VALUE_COLUMNS, PublishedDataError, load_published

    if published is None:
        return None
    column = metric_column(metric)
    if column not in VALUE_COLUMNS:
        raise SweepError(
            f"the published data has {', '.join(VALUE_COLUMNS)} only; it cannot be compared"
            f" with --metric {metric}",
            usage=True,
        )
    if x != "threads":
        raise SweepError(
            f"the published data is per thread count; the first --param must be threads, not {x}",
            usage=True,
        )
    if isinstance(published, (str, Path)):
        try:
            return list(load_published(published))
        except PublishedDataError as exc:
            raise SweepError(str(exc), usage=True) from None
    return list(published)


# =====================================================================
# Terminal output
# =====================================================================


class ProgressPrinter:
    """The terminal progress hook: a bar on a TTY, else one line per finished run.

    Args:
        stream: Where to write (default: stderr).
        tty: Redraw one line in place (default: whether ``stream`` is a TTY).
        clock: Seconds, for elapsed time and the ETA.
        width: Characters of the bar.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int = 30,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.width = width
        self.start: float | None = None
        #: Whether a bar is drawn without its line ended (an unfinished sweep).
        self.open_line = False

    def __call__(self, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` runs have finished."""
        now = self.clock()
        if self.start is None:
            self.start = now
        if done == 0 and not self.tty:
            return
        elapsed = now - self.start
        text = f"{done}/{total} runs, {elapsed:.1f} s elapsed"
        if 0 < done < total:
            text += f", ETA {_seconds(elapsed / done * (total - done))}"
        if self.tty:
            filled = self.width * done // total if total else self.width
            bar = "#" * filled + "." * (self.width - filled)
            end = "\n" if done >= total else ""
            # Trailing spaces wipe what a longer previous line left behind.
            self.stream.write(f"\r[{bar}] {text}    {end}")
            self.open_line = not end
        else:
            self.stream.write(f"sweep: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left unfinished (the sweep stopped), so later messages start clean."""
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: float) -> str:
    if value < 60:
        return f"{math.ceil(value)} s"
    minutes, secs = divmod(math.ceil(value), 60)
    return f"{minutes} min {secs} s"


def format_table(rows: Sequence[Mapping[str, Any]], param_names: Sequence[str]) -> str:
    """A compact one-line-per-run table for the terminal."""
    cols = [
        *param_names,
        *(
            c
            for c in (
                "mode",
                "sim_ns",
                "faults",
                "faults_per_sec",
                "latency_p99_ns",
                "invariant_violations",
            )
            if c not in param_names
        ),
    ]
    heads = {
        "faults_per_sec": "faults/s",
        "latency_p99_ns": "p99_ns",
        "invariant_violations": "violations",
    }

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    table = [[heads.get(c, c) for c in cols], *([cell(r.get(c, "")) for c in cols] for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    # Numbers line up on the right, text (mode, arch) on the left.
    right = [all(_is_number(r.get(c)) for r in rows) for c in cols]
    lines = []
    for line in table:
        cells = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(line, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
