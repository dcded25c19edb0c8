"""The subcommands of ``python -m vmaviz`` (argument parsing lives in ``__main__``).

Each ``cmd_*`` function takes the parsed arguments and returns the exit status.
Errors a user can cause (a bad scenario, an unwritable output file, the step limit)
are raised as :class:`CliError` or the library's own exceptions and turned into a
one-line message by :func:`run_command`; a traceback means a bug in vmaviz.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmaviz.engine.engine import Engine
    from vmaviz.scenario.schema import Op, Scenario

PROG = "vmaviz"
ARCHES = ("x86", "arm64", "powerpc", "s390")
MODES = ("per_vma", "mmap_lock")

#: Exit statuses: 1 for a bad scenario or a failed run, 2 for bad command-line use
#: (argparse's own convention), 130 for Ctrl-C (the shell's 128 + SIGINT).
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPT = 130

#: Set to see the traceback of an unexpected error instead of the one-line message.
DEBUG_ENV = "VMAVIZ_DEBUG"


class CliError(Exception):
    """A user error with a ready message and exit status."""

    def __init__(self, message: str, status: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand; every expected failure becomes a message and a status.

    Args:
        func: The ``cmd_*`` function.
        args: Its parsed arguments.

    Returns:
        The exit status.
    """
    from vmaviz.engine.engine import EngineError
    from vmaviz.scenario import ScenarioErrors

    try:
        return func(args)
    except ScenarioErrors as exc:
        # Already ``file:line: field: message``, one problem per line.
        print(exc, file=sys.stderr)
        return EXIT_FAIL
    except CliError as exc:
        _error(str(exc))
        return exc.status
    except EngineError as exc:
        _error(f"{getattr(args, 'file', '')}: {exc}".lstrip(": "))
        return EXIT_FAIL
    except BrokenPipeError:
        # `vmaviz export ... | head`: the reader left; say nothing.  Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAIL
    except OSError as exc:
        where = exc.filename if exc.filename is not None else getattr(args, "file", "")
        _error(f"{where}: {exc.strerror or exc}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPT
    except Exception as exc:  # the CLI contract: never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        return EXIT_FAIL


# =====================================================================
# Shared helpers
# =====================================================================


def load(path: str) -> Scenario:
    """Load a scenario file (raises :class:`ScenarioErrors` naming the file)."""
    from vmaviz.scenario import load_scenario

    return load_scenario(path)


def configure(scenario: Scenario, seed: int | None, cpus: int | None) -> Scenario:
    """Apply ``--seed``/``--cpus`` through the scenario's own range checks."""
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if cpus is not None:
        changes["cpus"] = cpus
    if not changes:
        return scenario
    try:
        return scenario.with_overrides(**changes)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def check_implemented(scenario: Scenario) -> None:
    """Refuse ops the scenario format knows but the engine does not run yet.

    The file format is ahead of the model while ops are being added; without this a
    run would stop mid-way on the first such op.
    """
    from vmaviz.model.kernel import OP_ENTRY

    missing: dict[str, int] = {}

    def walk(ops: list[Op]) -> None:
        for op in ops:
            if op.body is not None:
                walk(op.body)
            elif op.kind not in OP_ENTRY and op.kind not in missing:
                missing[op.kind] = op.line

    for th in scenario.threads:
        walk(th.ops)
    if missing:
        where = scenario.path if scenario.path is not None else scenario.name
        listed = ", ".join(f"'{k}' (line {line})" for k, line in missing.items())
        raise CliError(f"{where}: the engine does not implement op {listed} yet")


def combos(scenario: Scenario, mode: str | None, arch: str | None) -> list[tuple[str, str]]:
    """Every (mode, arch) a ``--mode``/``--arch`` pair asks for, in a stable order."""
    if mode is None:
        modes = [scenario.kernel.mode]
    elif mode == "both":
        modes = list(MODES)
    else:
        modes = [mode]
    if arch is None:
        arches = [scenario.kernel.arch]
    elif arch == "all":
        arches = list(ARCHES)
    else:
        arches = [arch]
    return [(m, a) for m in modes for a in arches]


def simulate(scenario: Scenario, mode: str, arch: str, max_steps: int | None = None) -> Engine:
    """Run one configuration to the end."""
    from vmaviz.engine.engine import run_to_end

    return run_to_end(scenario, mode, arch, max_steps)


@contextlib.contextmanager
def output(path: str | None) -> Iterator[IO[str]]:
    """``-o PATH`` opened for text writing, or stdout when no path is given."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    with target.open("w", encoding="utf-8", newline="") as f:
        yield f


# =====================================================================
# validate
# =====================================================================


def cmd_validate(args: argparse.Namespace) -> int:
    """``validate FILE...``: report every problem as ``file:line: field: message``."""
    from vmaviz.scenario import validate_main

    return validate_main(list(args.files))


# =====================================================================
# run
# =====================================================================


def cmd_run(args: argparse.Namespace) -> int:
    """``run FILE``: simulate every requested (mode, arch) and print the results."""
    scenario = configure(load(args.file), args.seed, args.cpus)
    check_implemented(scenario)
    runs = []
    if getattr(args, "schedule", None):
        runs.append(replay_schedule(scenario, args.file, args.schedule, args.max_steps))
    for mode, arch in combos(scenario, args.mode, args.arch) if not runs else []:
        engine = simulate(scenario, mode, arch, args.max_steps)
        runs.append(engine.summary())
    if args.json:
        json.dump({"scenario": scenario.name, "runs": runs}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_runs(scenario, runs))
    sys.stdout.flush()
    return 0


def replay_schedule(
    scenario: Scenario, file: str, path: str, max_steps: int | None
) -> dict[str, Any]:
    """``run FILE --schedule PATH``: one run forced along a schedule file's thread ids.

    The schedule file's mode, arch and patch settings apply; a file written for
    another scenario, a thread id the scenario lacks or a thread that cannot
    move at its step is a usage error (exit 2) naming the problem.
    """
    from vmaviz.engine.engine import Engine, EngineError
    from vmaviz.explore.schedule import file_sha256, load_schedule
    from vmaviz.explore.search import ExploreError

    try:
        sf = load_schedule(path, len(scenario.threads))
    except ExploreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if sf.sha256 != file_sha256(file):
        raise CliError(
            f"{path}: the schedule was written for another scenario"
            f" ({sf.scenario_name or '?'}, sha256 {sf.sha256[:12]}...), not {file}",
            EXIT_USAGE,
        )
    try:
        sc = scenario.with_overrides(patches=sf.patches)
    except ValueError as exc:
        raise CliError(f"{path}: {exc}", EXIT_USAGE) from None
    kwargs: dict[str, Any] = {"keyframe_every": 1 << 62, "schedule": sf.schedule}
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    engine = Engine(sc, mode=sf.mode, arch=sf.arch, **kwargs)
    try:
        engine.run()
    except EngineError as exc:
        if str(exc).startswith("schedule:"):
            raise CliError(f"{path}: {exc}", EXIT_USAGE) from None
        raise
    return engine.summary()


def _ns(value: int) -> str:
    """A duration in ns, with a readable unit beside it when large."""
    if value >= 1_000_000:
        return f"{value:,} ns ({value / 1e6:.3f} ms)"
    if value >= 1_000:
        return f"{value:,} ns ({value / 1e3:.3f} us)"
    return f"{value:,} ns"


def _kv(d: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in d.items())


def format_run(scenario: Scenario, run: dict[str, Any]) -> str:
    """One run as a block of aligned ``label  values`` lines."""
    faults = run["faults"]
    lat = faults["latency_ns"]
    counts = {k: v for k, v in faults.items() if k != "latency_ns"}
    aborts = {k: v for k, v in run["abort_reasons"].items() if v}
    mm = run["mmap_lock"]
    rows = [
        ("steps", f"{run['steps']:,}"),
        ("makespan", _ns(run["sim_ns"])),
        ("vma_lock", _kv(run["vma_lock"])),
        ("aborts", _kv(aborts) if aborts else "none"),
        ("faults", _kv(counts)),
        ("latency", "  ".join(f"{k} {v:,} ns" for k, v in lat.items())),
        (
            "mmap_lock",
            f"read_acquired {mm['read_acquired']:,}  write_acquired {mm['write_acquired']:,}",
        ),
        (
            "waits",
            f"read {mm['read_wait_ns']:,} ns  write {mm['write_wait_ns']:,} ns  max "
            f"{mm['max_wait_ns']:,} ns",
        ),
        ("rcu", _kv(run["rcu"])),
    ]
    if run.get("mm_lock_seq") is not None:
        rows.append(("mm_lock_seq", str(run["mm_lock_seq"])))
    threads = run.get("threads", [])
    if threads:
        slowest = max(threads, key=lambda t: t["done_ns"])
        blocked = sum(t["blocked_ns"] for t in threads)
        rows.append(
            (
                "threads",
                f"{len(threads)}  last done {slowest['name']} at "
                f"{slowest['done_ns']:,} ns  blocked total {blocked:,} ns",
            )
        )
    violations = run["invariant_violations"]
    rows.append(("violations", f"{len(violations)}" if violations else "none"))
    rows.append(("trace", run["trace_sha256"]))
    width = max(len(label) for label, _ in rows)
    head = f"{scenario.name}: mode {run['mode']}, arch {run['arch']}, seed {run['seed']}"
    lines = [head, "-" * len(head)]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    for v in violations[:20]:
        lines.append(f"    step {v['step']:,}: invariant {v['invariant']}: {v['message']}")
    if len(violations) > 20:
        lines.append(f"    ... and {len(violations) - 20} more (use --json for all)")
    return "\n".join(lines)


def format_comparison(runs: list[dict[str, Any]]) -> str:
    """A one-line-per-run table to compare configurations side by side."""
    cols = ("mode", "arch", "steps", "makespan_ns", "vma_ok", "abort", "p99_ns", "violations")
    rows = [
        (
            r["mode"],
            r["arch"],
            f"{r['steps']:,}",
            f"{r['sim_ns']:,}",
            f"{r['vma_lock']['success']:,}",
            f"{r['vma_lock']['abort']:,}",
            f"{r['faults']['latency_ns']['p99']:,}",
            str(len(r["invariant_violations"])),
        )
        for r in runs
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*cols), *(fmt.format(*row) for row in rows)])


def format_runs(scenario: Scenario, runs: list[dict[str, Any]]) -> str:
    """Every run's block, then a comparison table when there is more than one."""
    parts = [format_run(scenario, r) for r in runs]
    if len(runs) > 1:
        parts.append(format_comparison(runs))
    return "\n\n".join(parts)


# =====================================================================
# export
# =====================================================================


def cmd_export(args: argparse.Namespace) -> int:
    """``export FILE --format csv|perfetto``: one run's trace, to ``-o`` or stdout."""
    from vmaviz.engine import export

    scenario = configure(load(args.file), args.seed, args.cpus)
    check_implemented(scenario)
    [(mode, arch)] = combos(scenario, args.mode, args.arch)
    engine = simulate(scenario, mode, arch, args.max_steps)
    with output(args.output) as f:
        if args.format == "csv":
            export.to_csv(engine, f)
        else:
            doc = export.to_perfetto(engine, step_events=not args.no_step_events)
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
    if args.output not in (None, "-"):
        print(f"wrote {args.output}: {len(engine.trace):,} steps ({args.format})", file=sys.stderr)
    return 0


# =====================================================================
# bench
# =====================================================================


def _bench_maple(seconds: float) -> int:
    from vmaviz.bench import maple

    return maple.main(seconds=seconds)


def _bench_engine(seconds: float) -> int:
    from vmaviz.bench import engine

    return engine.main(seconds=seconds)


def _bench_ui(seconds: float) -> int:
    from vmaviz.bench import ui

    return ui.main(seconds=seconds)


def _bench_browser(seconds: float) -> int:
    from vmaviz.bench import browser

    return browser.main(seconds=seconds)


def _bench_calibration(seconds: float) -> int:
    from vmaviz.bench import calibration

    return calibration.main(seconds=seconds)


def _bench_hostile(seconds: float) -> int:
    from vmaviz.bench import hostile

    return hostile.main(seconds=seconds)


def _bench_explore(seconds: float) -> int:
    from vmaviz.bench import explore

    return explore.main(seconds=seconds)


#: name -> runner(seconds) -> status.  New benchmarks (ui, calibration) add an entry
#: here; ``bench all`` runs every entry in order and ``__main__`` offers the names.
BENCHES: dict[str, Callable[[float], int]] = {
    "maple": _bench_maple,
    "engine": _bench_engine,
    "ui": _bench_ui,
    "browser": _bench_browser,
    "calibration": _bench_calibration,
    "hostile": _bench_hostile,
    "explore": _bench_explore,
}


def cmd_bench(args: argparse.Namespace) -> int:
    """``bench [NAME|all]``: print benchmark figures (never asserts them)."""
    which = args.which or "all"
    names = list(BENCHES) if which == "all" else [which]
    status = 0
    for i, name in enumerate(names):
        if i:
            print()
        status |= BENCHES[name](args.seconds)
    return status


# =====================================================================
# explore
# =====================================================================


def cmd_explore(args: argparse.Namespace) -> int:
    """``explore FILE``: search the schedules for an invariant violation."""
    import time

    from vmaviz.explore import ExploreError, explore
    from vmaviz.explore.schedule import schedule_document, write_schedule
    from vmaviz.explore.search import parse_patch_args
    from vmaviz.sweep.executors import ExecutorUnavailable

    if args.seconds is not None and args.seconds <= 0:
        raise CliError("--seconds must be more than 0", EXIT_USAGE)
    scenario = load(args.file)
    check_implemented(scenario)
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(info: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] < (0.5 if tty else 5.0):
            return
        last[0] = now
        line = (
            f"explore: bound {info['bound']}: {info['schedules']:,} schedules,"
            f" {info['states']:,} states, {info['seconds']:.1f} s"
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr)
        sys.stderr.flush()

    try:
        patches = parse_patch_args(args.patch)
        result = explore(
            scenario,
            patches=patches,
            preemptions=args.preemptions,
            max_schedules=args.max_schedules,
            seconds=args.seconds,
            strategy=args.strategy,
            seed=args.seed,
            jobs=args.jobs,
            dask=args.dask,
            progress=progress,
            por=args.por,
        )
    except ExploreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except ExecutorUnavailable as exc:
        raise CliError(str(exc)) from None
    finally:
        if tty and last[0]:
            print(file=sys.stderr)
    if result.seed is not None:
        print(f"explore: pct seed {result.seed}", file=sys.stderr)
    if args.schedule_out and result.found:
        write_schedule(args.schedule_out, schedule_document(result, scenario.name, args.file))
        print(f"wrote {args.schedule_out}", file=sys.stderr)
    if args.json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_explore(scenario.name, result))
    sys.stdout.flush()
    return 0


def format_explore(name: str, r: Any) -> str:
    """An explore result in words: the counterexample, or what was covered."""
    what = "pct" if r.strategy == "pct" else f"at most {r.bound} preemptions"
    covered = f"{r.schedules:,} schedules, {r.states:,} distinct states, {r.seconds:.2f} s"
    if not r.found:
        scope = "all schedules" if r.exhaustive else "not exhaustive (a budget ran out):"
        return f"{name}: {scope} with {what}: {covered}, no violation"
    v = r.violation
    lines = [
        f"{name}: invariant {v.invariant} violated at step {v.step}: {v.message}",
        f"  minimal counterexample: {r.preemptions} preemptions, {r.steps} steps"
        f" (first found: {r.found_preemptions} preemptions, {r.found_steps} steps)",
        f"  searched {covered}",
        f"  schedule: {' '.join(str(t) for t in r.schedule)}",
    ]
    lines += [f"  {line}" for line in r.explanation]
    return "\n".join(lines)


# =====================================================================
# sweep
# =====================================================================


def cmd_sweep(args: argparse.Namespace) -> int:
    """``sweep FILE --param NAME=V1,V2,...``: run every combination, write CSV and HTML."""
    from vmaviz.sweep import core, published
    from vmaviz.sweep.executors import ExecutorUnavailable, make_executor, stop_now

    try:
        params = core.parse_params(args.param)
        metric = core.metric_column(args.metric)
        modes = core.modes_for(args.mode)
        plan = core.plan_sweep(args.file, params, modes, args.arch, max_steps=args.max_steps)
        for variant in plan.variants:
            check_implemented(variant)
        # Checked before the runs, so a mismatch does not cost a whole sweep.
        dataset = args.published
        if dataset is None:
            auto = published.auto_pick(plan.scenario_name)
            fits = plan.param_names[0] == "threads" and metric in published.VALUE_COLUMNS
            dataset = auto if fits else None
        elif dataset == "none":
            dataset = None
        points = core.resolve_published(dataset, args.metric, plan.param_names[0])
        executor = make_executor(min(args.jobs, len(plan.items)), args.dask)
        printer = core.ProgressPrinter()
        try:
            rows = core.execute(plan, executor, printer)
        except BaseException:
            printer.close()
            stop_now(executor)  # Ctrl-C or a failed run: do not wait for the rest
            raise
        executor.shutdown()
        csv_path, html_path = core.write_outputs(rows, args.out, points, args.metric)
    except core.SweepError as exc:
        raise CliError(str(exc), EXIT_USAGE if exc.usage else EXIT_FAIL) from None
    except ExecutorUnavailable as exc:
        raise CliError(str(exc)) from None
    print(core.format_table(rows, plan.param_names))
    sys.stdout.flush()
    overlay = f", published data {dataset}" if dataset else ""
    print(f"wrote {csv_path} and {html_path} ({len(rows)} runs{overlay})", file=sys.stderr)
    return 0
